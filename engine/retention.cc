#include "engine/retention.h"

#include <algorithm>
#include <cstring>
#include <thread>

#include "base/assert.h"
#include "engine/audit.h"
#include "engine/export.h"
#include "engine/reader.h"
#include "engine/store_internal.h"
#include "engine/verify.h"

namespace logseal::engine {

using namespace format;

namespace {

int64_t unix_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string rfc3339(int64_t ns) {
  time_t secs = static_cast<time_t>(ns / 1000000000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Field offsets of a retention statement (FORMAT.md section 5.4).
constexpr size_t kRtOp = 8;
constexpr size_t kRtTrigger = 9;
constexpr size_t kRtStreamLen = 10;
constexpr size_t kRtReserved0 = 11;  // u8 zero
constexpr size_t kRtNoteLen = 12;    // u16
constexpr size_t kRtReserved1 = 14;  // u16 zero
constexpr size_t kRtTimeNs = 16;
constexpr size_t kRtMinDays = 24;
constexpr size_t kRtMaxDays = 28;
constexpr size_t kRtCutoffNs = 32;
constexpr size_t kRtFirstSeq = 40;
constexpr size_t kRtLastSeq = 48;
constexpr size_t kRtFirstIndex = 56;
constexpr size_t kRtTreeSize = 64;
constexpr size_t kRtLastHead = 72;
constexpr size_t kRtLastHeadSeq = 104;
constexpr size_t kRtLastChain = 112;
constexpr size_t kRtLastRoot = 144;
constexpr size_t kRtLastSealNs = 176;
constexpr size_t kRtReserved2 = 184;  // 8 zero bytes
static_assert(kRtReserved2 + 8 == kRetentionFixedBytes);

}  // namespace

const char* retention_op_name(RetentionOp op) {
  switch (op) {
    case RetentionOp::kPrune:
      return "prune";
    case RetentionOp::kHoldOn:
      return "hold-on";
    case RetentionOp::kHoldOff:
      return "hold-off";
  }
  return "?";
}

const char* prune_trigger_name(PruneTrigger t) {
  switch (t) {
    case PruneTrigger::kNone:
      return "none";
    case PruneTrigger::kMaxAge:
      return "max-age";
    case PruneTrigger::kBefore:
      return "before";
    case PruneTrigger::kDiskFull:
      return "disk-full";
  }
  return "?";
}

const char* disk_full_policy_name(DiskFullPolicy p) { return p == DiskFullPolicy::kPrune ? "prune" : "refuse"; }

Result<DiskFullPolicy> parse_disk_full_policy(const std::string& s) {
  if (s == "refuse") return DiskFullPolicy::kRefuse;
  if (s == "prune") return DiskFullPolicy::kPrune;
  return invalid_argument("disk_full must be \"refuse\" or \"prune\", not \"" + s + "\"");
}

Status check_policy(const RetentionPolicy& p) {
  if (p.max_days != 0 && p.max_days < p.min_days) {
    return invalid_argument("retention_max_days (" + std::to_string(p.max_days) + ") is below retention_min_days (" +
                            std::to_string(p.min_days) + ")");
  }
  return ok_status();
}

std::vector<uint8_t> encode_retention(const RetentionStatement& s) {
  LS_ASSERT(s.stream.size() <= kStreamNameBytesMax && s.note.size() <= kRetentionNoteBytesMax);
  std::vector<uint8_t> b(kRetentionFixedBytes + s.stream.size() + s.note.size(), 0);
  uint8_t* p = b.data();
  std::memcpy(p, kRetentionMagic, 8);
  p[kRtOp] = static_cast<uint8_t>(s.op);
  p[kRtTrigger] = static_cast<uint8_t>(s.trigger);
  p[kRtStreamLen] = static_cast<uint8_t>(s.stream.size());
  put_u16(p + kRtNoteLen, static_cast<uint16_t>(s.note.size()));
  put_u64(p + kRtTimeNs, static_cast<uint64_t>(s.time_ns));
  put_u32(p + kRtMinDays, s.min_days);
  put_u32(p + kRtMaxDays, s.max_days);
  put_u64(p + kRtCutoffNs, static_cast<uint64_t>(s.cutoff_ns));
  put_u64(p + kRtFirstSeq, s.first_seq);
  put_u64(p + kRtLastSeq, s.last_seq);
  put_u64(p + kRtFirstIndex, s.first_index);
  put_u64(p + kRtTreeSize, s.tree_size);
  std::memcpy(p + kRtLastHead, s.last_head.data(), 32);
  put_u64(p + kRtLastHeadSeq, s.last_head_seq);
  std::memcpy(p + kRtLastChain, s.last_frame_chain.data(), 32);
  std::memcpy(p + kRtLastRoot, s.last_root.data(), 32);
  put_u64(p + kRtLastSealNs, static_cast<uint64_t>(s.last_seal_ns));
  std::memcpy(p + kRetentionFixedBytes, s.stream.data(), s.stream.size());
  if (!s.note.empty()) std::memcpy(p + kRetentionFixedBytes + s.stream.size(), s.note.data(), s.note.size());
  return b;
}

Result<RetentionStatement> decode_retention(std::span<const uint8_t> raw) {
  if (raw.size() < kRetentionFixedBytes) return data_loss("retention statement is too short");
  const uint8_t* p = raw.data();
  if (std::memcmp(p, kRetentionMagic, 8) != 0) return data_loss("retention statement has a bad magic");
  RetentionStatement s;
  uint8_t op = p[kRtOp];
  if (op < 1 || op > 3) return data_loss("retention statement has an unknown op");
  s.op = static_cast<RetentionOp>(op);
  uint8_t trigger = p[kRtTrigger];
  if (trigger > 3 || (s.op == RetentionOp::kPrune) != (trigger != 0)) {
    return data_loss("retention statement has a bad trigger for its op");
  }
  s.trigger = static_cast<PruneTrigger>(trigger);
  size_t stream_len = p[kRtStreamLen];
  size_t note_len = get_u16(p + kRtNoteLen);
  if (p[kRtReserved0] != 0 || get_u16(p + kRtReserved1) != 0 ||
      std::any_of(p + kRtReserved2, p + kRetentionFixedBytes, [](uint8_t c) { return c != 0; })) {
    return data_loss("retention statement has non-zero reserved bytes");
  }
  if (stream_len == 0 || stream_len > kStreamNameBytesMax || note_len > kRetentionNoteBytesMax ||
      raw.size() != kRetentionFixedBytes + stream_len + note_len) {
    return data_loss("retention statement's lengths do not add up to its size");
  }
  s.time_ns = static_cast<int64_t>(get_u64(p + kRtTimeNs));
  s.min_days = get_u32(p + kRtMinDays);
  s.max_days = get_u32(p + kRtMaxDays);
  s.cutoff_ns = static_cast<int64_t>(get_u64(p + kRtCutoffNs));
  s.first_seq = get_u64(p + kRtFirstSeq);
  s.last_seq = get_u64(p + kRtLastSeq);
  s.first_index = get_u64(p + kRtFirstIndex);
  s.tree_size = get_u64(p + kRtTreeSize);
  std::memcpy(s.last_head.data(), p + kRtLastHead, 32);
  s.last_head_seq = get_u64(p + kRtLastHeadSeq);
  std::memcpy(s.last_frame_chain.data(), p + kRtLastChain, 32);
  std::memcpy(s.last_root.data(), p + kRtLastRoot, 32);
  s.last_seal_ns = static_cast<int64_t>(get_u64(p + kRtLastSealNs));
  s.stream.assign(reinterpret_cast<const char*>(p + kRetentionFixedBytes), stream_len);
  s.note.assign(reinterpret_cast<const char*>(p + kRetentionFixedBytes + stream_len), note_len);
  if (s.op == RetentionOp::kPrune) {
    if (s.last_seq < s.first_seq || s.tree_size < s.first_index) {
      return data_loss("retention statement names an empty or reversed range");
    }
  } else if (s.first_seq != 0 || s.last_seq != 0 || s.first_index != 0 || s.tree_size != 0 || s.last_head != Hash32{} ||
             s.last_head_seq != 0 || s.last_frame_chain != Hash32{} || s.last_root != Hash32{} || s.last_seal_ns != 0 ||
             s.cutoff_ns != 0) {
    return data_loss("hold statement carries prune fields");
  }
  return s;
}

std::string retention_fields_json(const RetentionStatement& s) {
  std::string o = std::string("{\"retention\":{\"op\":\"") + retention_op_name(s.op) + "\"";
  o += ",\"time_ns\":" + std::to_string(s.time_ns);
  o += ",\"retention_min_days\":" + std::to_string(s.min_days);
  o += ",\"retention_max_days\":" + std::to_string(s.max_days);
  if (s.op == RetentionOp::kPrune) {
    o += std::string(",\"trigger\":\"") + prune_trigger_name(s.trigger) + "\"";
    o += ",\"cutoff_ns\":" + std::to_string(s.cutoff_ns);
    o += ",\"segments\":[" + std::to_string(s.first_seq) + "," + std::to_string(s.last_seq) + "]";
    o += ",\"records\":[" + std::to_string(s.first_index) + "," + std::to_string(s.tree_size) + "]";
    o += ",\"last_head\":\"" + to_hex(s.last_head) + "\"";
  }
  o += ",\"note\":" + json_escape(s.note) + "}}";
  return o;
}

std::string describe_retention(const RetentionStatement& s) {
  std::string policy =
      "retention_min_days=" + std::to_string(s.min_days) + " retention_max_days=" + std::to_string(s.max_days);
  std::string note = s.note.empty() ? "" : " (" + s.note + ")";
  if (s.op == RetentionOp::kPrune) {
    return "pruned segments " + std::to_string(s.first_seq) + ".." + std::to_string(s.last_seq) + " (records " +
           std::to_string(s.first_index) + ".." + std::to_string(s.tree_size) + ", " +
           std::to_string(s.tree_size - s.first_index) + " records) at " + rfc3339(s.time_ns) + " by " +
           prune_trigger_name(s.trigger) + ", cutoff " + rfc3339(s.cutoff_ns) + ", policy " + policy +
           "; last pruned seal head " + to_hex(s.last_head) + note;
  }
  return std::string(s.op == RetentionOp::kHoldOn ? "legal hold set" : "legal hold lifted") + " at " +
         rfc3339(s.time_ns) + ", policy " + policy + note;
}

Result<uint64_t> append_retention(Stream& stream, const RetentionStatement& s, const std::string& source) {
  std::vector<uint8_t> raw = encode_retention(s);
  std::string fields = retention_fields_json(s);
  RecordView r;
  r.kind = RecordKind::kRetention;
  r.received_ns = s.time_ns;
  r.source = source;
  r.fields = fields;
  r.raw = std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size());
  return stream.append(r);
}

Result<bool> read_hold(io::Env& env, const std::string& data_dir, const std::string& stream) {
  bool held = false;
  Status bad;
  LS_RETURN_IF_ERROR(for_each_record(env, data_dir, stream, [&](const StoredRecord& r) {
    if (r.view.kind != RecordKind::kRetention) return true;
    auto s = decode_retention(as_bytes(r.view.raw));
    if (!s.ok()) {
      bad = s.status().with_context("record " + std::to_string(r.index));
      return false;
    }
    if (s->op == RetentionOp::kHoldOn) held = true;
    if (s->op == RetentionOp::kHoldOff) held = false;
    return true;
  }));
  LS_RETURN_IF_ERROR(bad);
  return held;
}

Status remove_pruned(io::Env& env, const std::string& stream_dir, const std::vector<std::string>& paths) {
  for (const auto& p : paths) {
    LS_RETURN_IF_ERROR(env.remove_sealed(p));
    LS_RETURN_IF_ERROR(env.sync_dir(stream_dir));
  }
  return ok_status();
}

namespace {
Result<PruneResult> prune_stream_inner(Store& store, const std::string& stream_name, const PruneRequest& req);
}  // namespace

Result<PruneResult> prune_stream(Store& store, const std::string& stream_name, const PruneRequest& req) {
  auto r = prune_stream_inner(store, stream_name, req);
  if (!req.audit) return r;
  std::string m = "\"stream\":" + json_escape(stream_name) + ",\"trigger\":\"" + prune_trigger_name(req.trigger) +
                  "\",\"retention_min_days\":" + std::to_string(req.policy.min_days) +
                  ",\"retention_max_days\":" + std::to_string(req.policy.max_days) +
                  ",\"note\":" + json_escape(req.note);
  Result<uint64_t> a = uint64_t{0};
  if (!r.ok()) {
    if (req.audit_refused) {
      a = append_audit(store, "retention-prune-refused", m + ",\"error\":" + json_escape(r.status().to_string()));
    }
  } else if (r->pruned) {
    const RetentionStatement& st = r->statement;
    a = append_audit(store, "retention-prune",
                     m + ",\"record\":" + std::to_string(r->index) + ",\"segments\":[" + std::to_string(st.first_seq) +
                         "," + std::to_string(st.last_seq) + "],\"records\":[" + std::to_string(st.first_index) + "," +
                         std::to_string(st.tree_size) + "],\"last_head\":\"" + to_hex(st.last_head) + "\"");
  } else if (req.audit_nothing) {
    a = append_audit(store, "retention-run", m + ",\"pruned\":false,\"why\":" + json_escape(r->why));
  }
  if (!a.ok()) store.log("<3>stream " + stream_name + ": cannot write the audit record: " + a.status().to_string());
  return r;
}

Result<uint64_t> set_legal_hold(Store& store, const std::string& stream_name, bool on, const std::string& note) {
  LS_ASSIGN_OR_RETURN(Stream * stream, store.stream(stream_name));
  RetentionStatement st;
  st.op = on ? RetentionOp::kHoldOn : RetentionOp::kHoldOff;
  st.stream = stream_name;
  st.time_ns = unix_now_ns();
  st.note = note.substr(0, kRetentionNoteBytesMax);
  LS_ASSIGN_OR_RETURN(uint64_t index, append_retention(*stream, st, "logseal:hold"));
  LS_RETURN_IF_ERROR(append_audit(store, on ? "legal-hold-on" : "legal-hold-off",
                                  "\"stream\":" + json_escape(stream_name) + ",\"record\":" + std::to_string(index) +
                                      ",\"note\":" + json_escape(st.note))
                         .status());
  store.log("<5>stream " + stream_name + ": record " + std::to_string(index) + " " + describe_retention(st));
  return index;
}

namespace {

Result<PruneResult> prune_stream_inner(Store& store, const std::string& stream_name, const PruneRequest& req) {
  LS_RETURN_IF_ERROR(check_policy(req.policy));
  io::Env& env = store.env();
  const std::string dir = store.data_dir() + "/" + stream_name;
  const int64_t now = req.now_ns != 0 ? req.now_ns : unix_now_ns();
  PruneResult out;

  // Open (recover) the stream first: a torn tail of its open segment is cut and
  // recorded, so the verification below sees the stream as it continues.
  LS_ASSIGN_OR_RETURN(Stream * stream, store.stream(stream_name));
  if (req.policy.legal_hold) {
    return failed_precondition("stream " + stream_name + " is under legal hold (configured); nothing was pruned");
  }
  LS_ASSIGN_OR_RETURN(bool held, read_hold(env, store.data_dir(), stream_name));
  if (held) {
    return failed_precondition("stream " + stream_name +
                               " is under legal hold (hold statement in the stream; lift it with `logseal hold "
                               "--off`); nothing was pruned");
  }

  // Never inside the minimum: a segment sealed after min_cutoff may hold a
  // record younger than retention_min_days (every record of a segment was
  // received before its seal was signed).
  const int64_t min_cutoff = now - static_cast<int64_t>(req.policy.min_days) * kNsPerDay;
  int64_t cutoff = min_cutoff;
  switch (req.trigger) {
    case PruneTrigger::kMaxAge:
      if (req.policy.max_days == 0) {
        out.why = "no retention_max_days is set: records are kept forever";
        return out;
      }
      cutoff = std::min(cutoff, now - static_cast<int64_t>(req.policy.max_days) * kNsPerDay);
      break;
    case PruneTrigger::kBefore:
      cutoff = std::min(cutoff, req.before_ns);
      break;
    case PruneTrigger::kDiskFull:
      break;
    case PruneTrigger::kNone:
      return invalid_argument("prune needs a trigger");
  }

  // Plan: the oldest sealed segments, contiguous, each sealed before the cutoff,
  // never the last segment (the open one, which always exists).
  LS_ASSIGN_OR_RETURN(std::vector<std::string> names, env.list_dir(dir));
  std::vector<uint64_t> seqs;
  for (auto& n : names) {
    if (auto seq = parse_segment_file_name(n)) seqs.push_back(*seq);
  }
  std::sort(seqs.begin(), seqs.end());
  RetentionStatement st;
  st.op = RetentionOp::kPrune;
  st.trigger = req.trigger;
  st.stream = stream_name;
  st.min_days = req.policy.min_days;
  st.max_days = req.policy.max_days;
  st.cutoff_ns = cutoff;
  st.note = req.note.substr(0, kRetentionNoteBytesMax);
  std::vector<std::string> paths;
  uint64_t chosen_bytes = 0;
  for (size_t i = 0; i + 1 < seqs.size(); ++i) {
    if (req.segments_max != 0 && paths.size() >= req.segments_max) break;
    if (req.bytes_min != 0 && chosen_bytes >= req.bytes_min) break;
    if (i > 0 && seqs[i] != seqs[i - 1] + 1) {
      return failed_precondition("stream " + stream_name + " has a gap before segment " + std::to_string(seqs[i]) +
                                 "; run `logseal verify`");
    }
    std::string path = dir + "/" + segment_file_name(seqs[i]);
    LS_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, env.read_file(path));
    auto state = read_segment_state(bytes);
    if (!state.ok()) return state.status().with_context("segment " + path + "; run `logseal verify`");
    if (state->cut_offset != state->file_bytes) {
      return failed_precondition("segment " + path + " is damaged (" + state->cut_reason +
                                 "); run `logseal verify`; nothing was pruned");
    }
    if (!state->sealed || !state->seal || !state->last_head) break;  // a seal still being written
    const CheckpointBody& seal = *state->seal;
    if (seal.time_ns > cutoff) break;
    if (paths.empty()) {
      st.first_seq = seqs[i];
      st.first_index = state->header.first_index;
    }
    st.last_seq = seqs[i];
    st.tree_size = seal.tree_size;
    st.last_head = *state->last_head;
    st.last_head_seq = state->last_head_seq;
    st.last_frame_chain = seal.frame_chain;
    st.last_root = seal.root;
    st.last_seal_ns = seal.time_ns;
    paths.push_back(path);
    chosen_bytes += bytes.size();
  }
  if (paths.empty()) {
    out.why = "no sealed segment of stream " + stream_name + " was sealed before " + rfc3339(cutoff) +
              (req.policy.min_days > 0 ? " (retention_min_days=" + std::to_string(req.policy.min_days) + ")" : "");
    return out;
  }

  // A prune record vouches for what it removes: refuse when the stream does not
  // verify, or tampering would be laundered by deleting its evidence.
  std::vector<hsm::PublicKey> own;
  if (req.keys == nullptr || req.keys->empty()) {
    LS_ASSIGN_OR_RETURN(hsm::PublicKey k, hsm::PublicKey::from_der(store.signer_for(stream_name).public_key_der()));
    own.push_back(std::move(k));
  }
  VerifyOptions vo;
  vo.keys = own.empty() ? req.keys : &own;
  vo.allow_unsigned_tail = true;  // a live store's open segment
  vo.only_stream = stream_name;
  LS_ASSIGN_OR_RETURN(VerifyReport report, verify_data_dir(env, store.data_dir(), vo));
  for (const Finding& f : report.findings) {
    if (f.stream != stream_name) continue;
    return failed_precondition("stream " + stream_name +
                               " does not verify, so nothing was pruned (a prune record "
                               "would vouch for the segments it removes): " +
                               finding_to_text(f));
  }

  st.time_ns = unix_now_ns();
  LS_ASSIGN_OR_RETURN(uint64_t index, append_retention(*stream, st, "logseal:prune"));
  out.pruned = true;
  out.statement = st;
  out.index = index;
  out.paths = paths;
  if (!req.wait_signed) return out;
  // Only a statement covered by a signed checkpoint counts for verify: remove
  // nothing before one is on disk.
  auto deadline = std::chrono::steady_clock::now() + req.sign_timeout;
  while (stream->signed_size() <= index) {
    LS_RETURN_IF_ERROR(stream->health());
    if (std::chrono::steady_clock::now() > deadline) {
      return unavailable("the prune record of stream " + stream_name + " (record " + std::to_string(index) +
                         ") was not covered by a signed checkpoint in time; nothing was removed");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  LS_RETURN_IF_ERROR(remove_pruned(env, dir, paths));
  store.log("<5>stream " + stream_name + ": record " + std::to_string(index) + " " + describe_retention(st));
  return out;
}

}  // namespace

// ---- logseald's runner -------------------------------------------------------

RetentionRunner::RetentionRunner(Store& store, RetentionSchedule schedule)
    : store_(store), schedule_(std::move(schedule)) {
  thread_ = std::thread([this] { loop(); });
}

RetentionRunner::~RetentionRunner() { stop(); }

void RetentionRunner::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RetentionRunner::run_one(Stream& stream, const RetentionPolicy& policy, PruneTrigger trigger) {
  const std::string& name = stream.name();
  PruneRequest req;
  req.policy = policy;
  req.trigger = trigger;
  if (trigger == PruneTrigger::kDiskFull) {
    // What the reserve lacks, and a quarter of it more, so one prune (whose
    // record, checkpoint and audit entry cost a few blocks) makes real room
    // instead of freeing one small segment at a time.
    StreamStats stats = stream.stats();
    uint64_t lack =
        stats.disk_reserve_bytes > stats.disk_free_bytes ? stats.disk_reserve_bytes - stats.disk_free_bytes : 0;
    req.bytes_min = lack + stats.disk_reserve_bytes / 4;
  }
  // A disk-full check that finds nothing to prune repeats every second: only
  // prunes and refusals go to `_audit` then (the log says the rest once).
  req.audit_nothing = trigger != PruneTrigger::kDiskFull;
  bool& refusal_audited = refusal_audited_[name];
  req.audit_refused = trigger != PruneTrigger::kDiskFull || !refusal_audited;
  req.note = trigger == PruneTrigger::kDiskFull ? "logseald: disk full, disk_full = \"prune\""
                                                : "logseald: retention_max_days";
  auto r = prune_stream(store_, name, req);
  if (trigger == PruneTrigger::kDiskFull) refusal_audited = !r.ok();
  std::string why;
  if (!r.ok()) {
    prune_failures_.fetch_add(1, std::memory_order_relaxed);
    why = "<4>stream " + name + ": retention (" + prune_trigger_name(trigger) + "): " + r.status().to_string();
  } else if (r->pruned) {
    segments_pruned_.fetch_add(r->paths.size(), std::memory_order_relaxed);
    last_why_.erase(name);
    return;  // prune_stream logged it
  } else if (trigger == PruneTrigger::kDiskFull) {
    why = "<3>stream " + name + ": disk full and nothing may be pruned: " + r->why + "; new records stay refused";
  }
  if (!why.empty() && last_why_[name] != why) {
    store_.log(why);
    last_why_[name] = why;
  }
}

void RetentionRunner::loop() {
  auto next_age_run = std::chrono::steady_clock::now();
  while (true) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      if (cv_.wait_for(lk, schedule_.disk_check, [&] { return stop_; })) return;
    }
    std::map<std::string, Stream*> open;
    for (Stream* s : store_.open_streams()) open[s->name()] = s;
    for (const auto& [name, policy] : schedule_.policies) {
      auto it = open.find(name);
      // A stream that stopped (a failed write) waits for the daemon's restart.
      if (policy.disk_full == DiskFullPolicy::kPrune && it != open.end() && it->second->health().ok() &&
          it->second->stats().disk_full) {
        run_one(*it->second, policy, PruneTrigger::kDiskFull);
      }
    }
    if (std::chrono::steady_clock::now() < next_age_run) continue;
    next_age_run = std::chrono::steady_clock::now() + schedule_.interval;
    for (const auto& [name, policy] : schedule_.policies) {
      // Only streams that exist: a prune must not create one.
      if (policy.max_days == 0 || !store_.env().is_dir(store_.data_dir() + "/" + name)) continue;
      auto s = store_.stream(name);
      if (!s.ok() || !s.value()->health().ok()) continue;
      run_one(*s.value(), policy, PruneTrigger::kMaxAge);
    }
  }
}

}  // namespace logseal::engine
