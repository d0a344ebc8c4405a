#include "engine/verify.h"

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "engine/export.h"
#include "engine/key_rotation.h"
#include "engine/merkle.h"
#include "engine/retention.h"
#include "engine/segment_reader.h"
#include "hsm/sha256.h"

namespace logseal::engine {

using namespace format;

namespace {

struct SignedInfo {
  uint64_t offset = 0;
  CheckpointBody body;
  Hash32 head{};
};

// What one segment's job found, for the checks between segments.
struct SegmentSummary {
  std::string path;
  uint64_t file_seq = 0;  // from the file name
  bool read_ok = false;
  bool header_ok = false;
  SegmentHeader header;
  bool walked_to_end = false;  // every byte accounted for
  // The file ends inside a frame or inside its header: what a reader sees while
  // logseald is writing (accepted on the last segment with --allow-unsigned-tail).
  bool tail_incomplete = false;
  bool sealed = false;
  CheckpointBody seal;
  uint64_t records_end = 0;  // tree size after the last good batch
  std::vector<SignedInfo> signed_frames;
  uint64_t bytes = 0;
  uint64_t recoveries = 0;
  std::vector<std::string> notes;
  std::vector<Finding> findings;
  // Key rotation statements met in this segment, with their record index.
  struct Rotation {
    uint64_t offset = 0;
    uint64_t index = 0;
    KeyRotation statement;
  };
  std::vector<Rotation> rotations;
  // Retention statements (prune, legal hold) met in this segment.
  struct Retention {
    uint64_t offset = 0;
    uint64_t index = 0;
    RetentionStatement statement;
  };
  std::vector<Retention> retentions;
  // Signatures by keys the auditor did not give: checked once the key rotation
  // statements of every segment are known (the key may have been handed over).
  struct Deferred {
    uint64_t offset = 0;
    Hash32 key_id{};
    Hash32 head{};
    std::vector<uint8_t> signature;
    bool seal = false;
    uint64_t tree_size = 0;
  };
  std::vector<Deferred> deferred;
};

// A finding in segment s of stream (file, segment number and stream filled in).
void add_finding(SegmentSummary& s, const std::string& stream, std::string kind, int64_t offset, std::string msg,
                 int64_t rec = -1, int64_t count = -1) {
  Finding f;
  f.kind = std::move(kind);
  f.file = s.path;
  f.offset = offset;
  f.stream = stream;
  f.segment = static_cast<int64_t>(s.header_ok ? s.header.segment_seq : s.file_seq);
  f.record_index = rec;
  f.record_count = count;
  f.message = std::move(msg);
  s.findings.push_back(std::move(f));
}

const hsm::PublicKey* find_key(const VerifyOptions& o, const Hash32& key_id) {
  if (o.keys == nullptr) return nullptr;
  for (const auto& k : *o.keys) {
    if (k.key_id() == key_id) return &k;
  }
  return nullptr;
}

bool all_zero(std::span<const uint8_t> b) {
  return std::all_of(b.begin(), b.end(), [](uint8_t c) { return c == 0; });
}

std::string kind_for_stop(const std::string& why) {
  if (why.find("past the end") != std::string::npos || why.find("cut short") != std::string::npos) return "truncated";
  if (why.find("frame sequence") != std::string::npos) return "reordered";
  if (why.find("follow the seal") != std::string::npos) return "trailing-data";
  return "bad-checksum";
}

void verify_segment(SegmentSummary& s, std::span<const uint8_t> file, const std::string& stream,
                    const VerifyOptions& opt) {
  auto finding = [&](std::string kind, int64_t offset, std::string msg, int64_t rec = -1, int64_t count = -1) {
    add_finding(s, stream, std::move(kind), offset, std::move(msg), rec, count);
  };
  s.bytes = file.size();
  auto hdr = decode_header(file);
  if (!hdr.ok()) {
    const std::string& m = hdr.status().message();
    bool short_file = m.find("short") != std::string::npos;
    s.tail_incomplete = short_file;
    finding(m.find("checksum") != std::string::npos ? "bad-checksum" : short_file ? "truncated" : "bad-header", 0, m);
    return;
  }
  s.header_ok = true;
  s.header = hdr.value();
  if (s.header.segment_seq != s.file_seq) {
    finding("reordered", 0,
            "file name says segment " + std::to_string(s.file_seq) + " but its header says " +
                std::to_string(s.header.segment_seq));
  }
  if (s.header.stream != stream) {
    finding("reordered", 0, "segment belongs to stream '" + s.header.stream + "', found in '" + stream + "'");
  }
  auto fr = merkle::MerkleFrontier::from(s.header.first_index, s.header.frontier);
  if (!fr.ok()) {
    finding("bad-header", 0, fr.status().message());
    return;
  }
  merkle::MerkleFrontier frontier = std::move(fr).value();

  struct Boundary {
    Hash32 chain;
    uint64_t tree_size;
    Hash32 root;
  };
  std::map<uint64_t, Boundary> boundaries;
  Hash32 chain = chain_start(file);
  boundaries[kHeaderBytes] = {chain, frontier.size(), frontier.root()};
  uint64_t last_batch_end = kHeaderBytes;
  uint64_t last_signed_tree = s.header.first_index;
  bool stop_all = false;

  WalkResult walk = walk_frames(file, [&](const FrameView& f) {
    const FrameHeader& h = f.header;
    if (h.first_index != frontier.size()) {
      finding("chain-break", static_cast<int64_t>(f.offset),
              "frame starts at record " + std::to_string(h.first_index) + " but " + std::to_string(frontier.size()) +
                  " records precede it");
      stop_all = true;
      return false;
    }
    if (h.type == FrameType::kBatch) {
      uint64_t index = frontier.size();
      // The batch's records (views into the frame) are hashed together after the
      // walk, in pairs where the CPU allows (merkle::leaf_hashes).
      thread_local std::vector<std::span<const uint8_t>> recs;
      thread_local std::vector<Hash32> leaves;
      recs.clear();
      leaves.clear();
      Status st = for_each_record(f.body, h.record_count, [&](std::span<const uint8_t> rec) {
        auto r = decode_record(rec);
        if (!r.ok()) return r.status().with_context("record " + std::to_string(index));
        if (r->kind == RecordKind::kKeyRotation) {
          auto kr = decode_key_rotation(as_bytes(r->raw));
          if (!kr.ok()) return kr.status().with_context("record " + std::to_string(index));
          if (kr->stream != stream) {
            return data_loss("record " + std::to_string(index) + ": key rotation statement names stream '" +
                             kr->stream + "'");
          }
          s.rotations.push_back({f.offset, index, std::move(kr).value()});
        } else if (r->kind == RecordKind::kRetention) {
          auto rt = decode_retention(as_bytes(r->raw));
          if (!rt.ok()) return rt.status().with_context("record " + std::to_string(index));
          if (rt->stream != stream) {
            return data_loss("record " + std::to_string(index) + ": retention statement names stream '" + rt->stream +
                             "'");
          }
          s.retentions.push_back({f.offset, index, std::move(rt).value()});
        }
        recs.push_back(rec);
        ++index;
        return ok_status();
      });
      merkle::leaf_hashes(recs, leaves);
      for (const Hash32& leaf : leaves) frontier.append(leaf);
      if (!st.ok()) {
        finding("bad-record", static_cast<int64_t>(f.offset), st.message(), static_cast<int64_t>(index));
        stop_all = true;
        return false;
      }
      chain = chain_next(chain, f.frame.first(kFrameHeaderBytes));
      last_batch_end = f.offset + h.span_bytes;
    } else if (h.type == FrameType::kRecovery) {
      auto r = decode_recovery(f.body);
      if (!r.ok()) {
        finding("bad-record", static_cast<int64_t>(f.offset), r.status().message());
        stop_all = true;
        return false;
      }
      s.recoveries++;
      s.notes.push_back(s.path + ": recovery at offset " + std::to_string(f.offset) + ": cut " +
                        std::to_string(r->cut_bytes) + " bytes at offset " + std::to_string(r->cut_offset) + " (" +
                        r->reason + ")");
      chain = chain_next(chain, f.frame);
    } else {
      auto sf = split_signed_frame(f.body);
      auto body = sf.ok() ? decode_checkpoint_body(sf->body) : Result<CheckpointBody>(sf.status());
      if (!body.ok()) {
        finding("bad-checksum", static_cast<int64_t>(f.offset), body.status().message());
        stop_all = true;
        return false;
      }
      const CheckpointBody& b = body.value();
      bool is_seal = h.type == FrameType::kSeal;
      int64_t off = static_cast<int64_t>(f.offset);
      if ((b.kind == CheckpointKind::kSeal) != is_seal) finding("chain-break", off, "frame type and body kind differ");
      if (b.stream != stream || b.segment_seq != s.header.segment_seq || b.segment_first != s.header.first_index) {
        finding("chain-break", off,
                "checkpoint names stream '" + b.stream + "' segment " + std::to_string(b.segment_seq) +
                    ", not this segment");
      }
      auto it = boundaries.find(b.covered_offset);
      if (it == boundaries.end()) {
        finding("chain-break", off,
                "checkpoint covers up to offset " + std::to_string(b.covered_offset) +
                    ", which is not a frame boundary before it");
      } else {
        if (it->second.chain != b.frame_chain) {
          finding("chain-break", off,
                  "frame chain up to offset " + std::to_string(b.covered_offset) +
                      " differs from the signed one: a frame was changed, added or removed");
        }
        if (it->second.tree_size != b.tree_size) {
          finding("chain-break", off,
                  "checkpoint counts " + std::to_string(b.tree_size) + " records, the file " +
                      std::to_string(it->second.tree_size));
        } else if (it->second.root != b.root) {
          finding("root-mismatch", off,
                  "Merkle root of records " + std::to_string(last_signed_tree) + ".." + std::to_string(b.tree_size) +
                      " differs from the signed root: a record was changed",
                  static_cast<int64_t>(last_signed_tree), static_cast<int64_t>(b.tree_size - last_signed_tree));
        }
      }
      const hsm::PublicKey* key = find_key(opt, b.key_id);
      if (key == nullptr) {
        s.deferred.push_back({f.offset, b.key_id, head_of(sf->body),
                              std::vector<uint8_t>(sf->signature.begin(), sf->signature.end()), is_seal, b.tree_size});
      } else if (!key->verify_digest(head_of(sf->body), sf->signature)) {
        finding("bad-signature", off, std::string(is_seal ? "seal" : "checkpoint") + " signature does not verify");
      }
      if (opt.require_tpm && b.signer_kind != hsm::SignerKind::kTpm) {
        finding("soft-signer", off, "signed by a software key, and --require-tpm was given");
      }
      Hash32 head = head_of(sf->body);
      if (!s.signed_frames.empty()) {
        const SignedInfo& prev = s.signed_frames.back();
        if (b.prev_head != prev.head || b.head_seq != prev.body.head_seq + 1) {
          finding("chain-break", off, "checkpoint does not follow the previous checkpoint of this segment");
        }
        if (b.tree_size < prev.body.tree_size)
          finding("rollback", off, "checkpoint counts fewer records than the one before");
      }
      if (is_seal) {
        if (b.tree_size != frontier.size() || b.covered_offset < last_batch_end) {
          finding("chain-break", off, "seal does not cover every record of the segment");
        }
        s.sealed = true;
        s.seal = b;
      }
      s.signed_frames.push_back(SignedInfo{f.offset, b, head});
      last_signed_tree = std::max(last_signed_tree, b.tree_size);
      chain = chain_next(chain, f.frame);
    }
    boundaries[f.offset + h.span_bytes] = {chain, frontier.size(), frontier.root()};
    return true;
  });
  s.records_end = frontier.size();
  if (stop_all) return;
  if (!walk.stop.ok()) {
    std::string why = walk.stop.message();
    uint64_t at = walk.valid_end;
    std::string kind = kind_for_stop(why);
    if (kind == "bad-checksum" && all_zero(file.subspan(at))) kind = "torn-tail";
    s.tail_incomplete = kind == "truncated";
    finding(kind, static_cast<int64_t>(at), why + (kind == "torn-tail" ? " (the rest of the file is zeros)" : ""),
            static_cast<int64_t>(frontier.size()));
    return;
  }
  s.walked_to_end = true;
}

struct StreamCheck {
  std::string name;
  std::string dir;
  std::vector<SegmentSummary> segments;  // sorted by file seq
  std::vector<Finding> findings;
};

}  // namespace

Result<VerifyReport> verify_data_dir(io::Env& env, const std::string& data_dir, const VerifyOptions& opt) {
  if (!env.is_dir(data_dir)) return not_found("data directory " + data_dir + " does not exist");
  LS_ASSIGN_OR_RETURN(std::vector<std::string> entries, env.list_dir(data_dir));
  std::vector<StreamCheck> streams;
  VerifyReport report;
  for (const auto& e : entries) {
    std::string p = data_dir + "/" + e;
    if (!env.is_dir(p) || !valid_stream_name(e)) continue;
    if (!opt.only_stream.empty() && e != opt.only_stream) continue;
    LS_ASSIGN_OR_RETURN(std::vector<std::string> files, env.list_dir(p));
    StreamCheck sc;
    sc.name = e;
    sc.dir = p;
    for (const auto& f : files) {
      if (f == ".lock") continue;
      auto seq = parse_segment_file_name(f);
      if (!seq) {
        Finding fd;
        fd.kind = "unexpected-file";
        fd.file = p + "/" + f;
        fd.stream = e;
        fd.message = "file that is not a segment in a stream directory";
        sc.findings.push_back(fd);
        continue;
      }
      SegmentSummary s;
      s.path = p + "/" + f;
      s.file_seq = *seq;
      sc.segments.push_back(std::move(s));
    }
    std::sort(sc.segments.begin(), sc.segments.end(),
              [](const SegmentSummary& a, const SegmentSummary& b) { return a.file_seq < b.file_seq; });
    if (sc.segments.empty() && sc.findings.empty()) continue;
    streams.push_back(std::move(sc));
  }

  // Per-segment work, in parallel.
  std::vector<std::pair<StreamCheck*, SegmentSummary*>> work;
  for (auto& sc : streams) {
    for (auto& s : sc.segments) work.emplace_back(&sc, &s);
  }
  std::atomic<size_t> next{0};
  std::mutex io_mu;
  Status io_failure;
  auto worker = [&] {
    while (true) {
      size_t i = next.fetch_add(1);
      if (i >= work.size()) return;
      auto [sc, s] = work[i];
      auto bytes = env.read_file(s->path);
      if (!bytes.ok()) {
        std::lock_guard<std::mutex> lk(io_mu);
        if (io_failure.ok()) io_failure = bytes.status();
        continue;
      }
      s->read_ok = true;
      verify_segment(*s, bytes.value(), sc->name, opt);
    }
  };
  unsigned jobs = std::max(1u, std::min<unsigned>(opt.jobs, static_cast<unsigned>(work.size())));
  std::vector<std::thread> threads;
  for (unsigned j = 1; j < jobs; ++j) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  if (!io_failure.ok()) return io_failure;

  // Key rotation: a statement signed by a trusted key makes its new key trusted.
  // Repeated until nothing changes, so a chain of rotations is followed from the
  // first key alone, in whatever order the streams hold them.
  std::vector<hsm::PublicKey> handed_over;
  auto lookup = [&](const Hash32& id) -> const hsm::PublicKey* {
    if (const hsm::PublicKey* k = find_key(opt, id)) return k;
    for (const auto& k : handed_over) {
      if (k.key_id() == id) return &k;
    }
    return nullptr;
  };
  std::set<const KeyRotation*> rotations_done;
  // Where each stream hands over to each key: a checkpoint of that stream signed
  // by the new key must come after it (streams made later have no statement).
  std::map<std::pair<std::string, Hash32>, uint64_t> handed_at;
  for (bool progress = true; progress;) {
    progress = false;
    for (auto& sc : streams) {
      for (auto& s : sc.segments) {
        for (auto& r : s.rotations) {
          if (rotations_done.count(&r.statement) != 0) continue;
          const hsm::PublicKey* old_key = lookup(r.statement.old_key_id);
          if (old_key == nullptr) continue;
          rotations_done.insert(&r.statement);
          progress = true;
          Hash32 digest = sha256(encode_key_rotation_body(r.statement));
          auto new_key = hsm::PublicKey::from_der(r.statement.new_key_der);
          if (!old_key->verify_digest(digest, r.statement.signature)) {
            add_finding(s, sc.name, "bad-signature", static_cast<int64_t>(r.offset),
                        "key rotation statement's signature does not verify", static_cast<int64_t>(r.index));
          } else if (!new_key.ok()) {
            add_finding(s, sc.name, "bad-record", static_cast<int64_t>(r.offset),
                        "key rotation statement names an unusable key: " + new_key.status().message(),
                        static_cast<int64_t>(r.index));
          } else {
            s.notes.push_back(s.path + ": record " + std::to_string(r.index) + " hands key " +
                              to_hex(r.statement.old_key_id) + " over to key " + to_hex(new_key->key_id()) + " (" +
                              hsm::signer_kind_name(r.statement.new_kind) + ")");
            auto at = handed_at.try_emplace({sc.name, new_key->key_id()}, r.index).first;
            at->second = std::min(at->second, r.index);
            if (lookup(new_key->key_id()) == nullptr) handed_over.push_back(std::move(new_key).value());
          }
        }
      }
    }
  }
  for (auto& sc : streams) {
    for (auto& s : sc.segments) {
      for (auto& d : s.deferred) {
        const hsm::PublicKey* key = lookup(d.key_id);
        if (key == nullptr) {
          add_finding(s, sc.name, "unknown-key", static_cast<int64_t>(d.offset),
                      "signed by key " + to_hex(d.key_id) +
                          ", which is not among the given public keys nor handed over to by one of them");
        } else if (!key->verify_digest(d.head, d.signature)) {
          add_finding(s, sc.name, "bad-signature", static_cast<int64_t>(d.offset),
                      std::string(d.seal ? "seal" : "checkpoint") + " signature does not verify");
        } else if (auto at = handed_at.find({sc.name, d.key_id}); at != handed_at.end() && d.tree_size <= at->second) {
          add_finding(s, sc.name, "unknown-key", static_cast<int64_t>(d.offset),
                      "signed by key " + to_hex(d.key_id) + " before record " + std::to_string(at->second) +
                          " handed the stream over to it");
        }
      }
    }
  }

  // Links between segments, the head chain, coverage.
  for (auto& sc : streams) {
    StreamReport sr;
    sr.name = sc.name;
    auto finding = [&](std::string kind, const SegmentSummary* s, int64_t offset, std::string msg, int64_t rec = -1,
                       int64_t count = -1) {
      Finding f;
      f.kind = std::move(kind);
      f.file = s != nullptr ? s->path : sc.dir;
      f.offset = offset;
      f.stream = sc.name;
      f.segment = s != nullptr ? static_cast<int64_t>(s->file_seq) : -1;
      f.record_index = rec;
      f.record_count = count;
      f.message = std::move(msg);
      sc.findings.push_back(std::move(f));
    };
    std::map<uint64_t, const SegmentSummary*> by_header_seq;
    const SignedInfo* last_signed = nullptr;
    // A TPM key's NV counter goes up by one or more at every signature and never
    // back, and its clock only goes back after a power loss (safe = 0, reset
    // count up): along the head chain, either going backwards means signatures
    // from two histories were put together. Keyed by key id.
    std::map<Hash32, const SignedInfo*> last_tpm;
    auto check_tpm_evidence = [&](const SignedInfo& si, const SegmentSummary* seg) {
      if (si.body.signer_kind != hsm::SignerKind::kTpm) return;
      auto [it, fresh] = last_tpm.try_emplace(si.body.key_id, &si);
      if (fresh) return;
      const hsm::Evidence& p = it->second->body.evidence;
      const hsm::Evidence& c = si.body.evidence;
      if (c.nv_counter <= p.nv_counter) {
        finding("tpm-rollback", seg, static_cast<int64_t>(si.offset),
                "TPM counter " + std::to_string(c.nv_counter) + " is not above the previous checkpoint's " +
                    std::to_string(p.nv_counter) + " (same key): this checkpoint was signed before the one it follows");
      } else if (c.tpm_clock_ms < p.tpm_clock_ms && !(c.tpm_safe == 0 && c.tpm_reset_count > p.tpm_reset_count)) {
        finding("tpm-rollback", seg, static_cast<int64_t>(si.offset),
                "TPM clock " + std::to_string(c.tpm_clock_ms) + " ms is before the previous checkpoint's " +
                    std::to_string(p.tpm_clock_ms) + " ms (same key) without a power loss in between");
      }
      it->second = &si;
    };
    // Retention statements (FORMAT.md section 5.4), in index order. Only those a
    // signed checkpoint or seal covers count: anyone with write access can add
    // bytes to an unsigned tail, but not under a signature.
    uint64_t signed_max = 0;
    for (auto& s : sc.segments) {
      for (auto& si : s.signed_frames) signed_max = std::max(signed_max, si.body.tree_size);
    }
    struct RetentionRef {
      const SegmentSummary* seg;
      const SegmentSummary::Retention* r;
    };
    std::vector<RetentionRef> retentions;
    for (auto& s : sc.segments) {
      for (auto& r : s.retentions) retentions.push_back({&s, &r});
    }
    std::sort(retentions.begin(), retentions.end(),
              [](const RetentionRef& a, const RetentionRef& b) { return a.r->index < b.r->index; });
    const uint64_t first_file_seq = sc.segments.empty() ? 0 : sc.segments.front().file_seq;
    const RetentionStatement* cover = nullptr;  // the prune the first remaining segment follows
    uint64_t cover_index = 0;
    int64_t hold_index = -1;
    uint64_t pruned_upto = 0;  // records 0..pruned_upto-1 were pruned by counted statements
    for (const RetentionRef& rr : retentions) {
      const RetentionStatement& st = rr.r->statement;
      const std::string at = "record " + std::to_string(rr.r->index);
      if (rr.r->index >= signed_max) {
        sr.notes.push_back(rr.seg->path + ": " + at +
                           " is a retention statement not yet covered by a signature; "
                           "ignored: " +
                           describe_retention(st));
        continue;
      }
      if (st.op == RetentionOp::kHoldOn || st.op == RetentionOp::kHoldOff) {
        hold_index = st.op == RetentionOp::kHoldOn ? static_cast<int64_t>(rr.r->index) : -1;
        sr.notes.push_back(at + ": " + describe_retention(st));
        continue;
      }
      sr.notes.push_back(at + ": " + describe_retention(st));
      pruned_upto = std::max(pruned_upto, st.tree_size);
      if (hold_index >= 0) {
        finding("prune-under-hold", rr.seg, static_cast<int64_t>(rr.r->offset),
                at + " prunes segments " + std::to_string(st.first_seq) + ".." + std::to_string(st.last_seq) +
                    " while the legal hold set by record " + std::to_string(hold_index) + " is on",
                static_cast<int64_t>(rr.r->index));
      }
      if (st.last_seq >= rr.seg->file_seq) {
        finding("bad-prune", rr.seg, static_cast<int64_t>(rr.r->offset),
                at + " claims to prune segment " + std::to_string(st.last_seq) +
                    ", which is not before the segment that holds the record",
                static_cast<int64_t>(rr.r->index));
        continue;
      }
      // A pruned range whose last segment is still here (the prune was cut short
      // before it removed everything, or a copy was kept): its seal must be the
      // one the record names.
      for (auto& s : sc.segments) {
        if (s.file_seq != st.last_seq || !s.sealed || s.signed_frames.empty()) continue;
        if (s.signed_frames.back().head != st.last_head || s.seal.tree_size != st.tree_size ||
            s.seal.frame_chain != st.last_frame_chain) {
          finding("bad-prune", &s, static_cast<int64_t>(s.signed_frames.back().offset),
                  at + " names a seal of segment " + std::to_string(st.last_seq) + " other than the one on disk",
                  static_cast<int64_t>(rr.r->index));
        }
      }
      if (first_file_seq > 0 && st.first_seq <= first_file_seq && first_file_seq <= st.last_seq + 1 &&
          (cover == nullptr || st.last_seq > cover->last_seq)) {
        cover = &st;
        cover_index = rr.r->index;
      }
    }
    if (hold_index >= 0) sr.notes.push_back("legal hold is on (record " + std::to_string(hold_index) + ")");
    // The head chain continues from the last pruned seal, as the record names it.
    SignedInfo pruned_head;
    uint64_t expected_seq = 0;
    if (cover != nullptr) {
      expected_seq = first_file_seq;
      pruned_head.head = cover->last_head;
      pruned_head.body.head_seq = cover->last_head_seq;
      if (first_file_seq <= cover->last_seq) {
        sr.notes.push_back("segments " + std::to_string(cover->first_seq) + ".." + std::to_string(first_file_seq - 1) +
                           " were removed by the prune of record " + std::to_string(cover_index) + "; segments " +
                           std::to_string(first_file_seq) + ".." + std::to_string(cover->last_seq) +
                           " of its range are still here (an interrupted prune)");
      }
    }
    for (size_t i = 0; i < sc.segments.size(); ++i) {
      SegmentSummary& s = sc.segments[i];
      bool last = i + 1 == sc.segments.size();
      if (last && opt.allow_unsigned_tail && s.tail_incomplete && s.findings.size() == 1) {
        // A live logseald is writing this segment's header or its last write:
        // not yet part of the stream, like an unsigned tail.
        sr.notes.push_back(s.path + ": the end of the file is still being written (" + s.findings[0].message +
                           "); read up to offset " + std::to_string(s.findings[0].offset));
        s.findings.clear();
        s.walked_to_end = s.header_ok;
      }
      for (auto& f : s.findings) sc.findings.push_back(f);
      sr.segments++;
      sr.bytes += s.bytes;
      sr.recoveries += s.recoveries;
      for (auto& n : s.notes) sr.notes.push_back(n);
      if (s.file_seq != expected_seq) {
        finding("missing-segment", &s, -1,
                s.file_seq > expected_seq ? "segments " + std::to_string(expected_seq) + ".." +
                                                std::to_string(s.file_seq - 1) + " are missing"
                                          : "segment number repeats");
      }
      expected_seq = s.file_seq + 1;
      if (!s.header_ok) {
        last_signed = nullptr;
        continue;
      }
      if (auto it = by_header_seq.find(s.header.segment_seq); it != by_header_seq.end()) {
        finding("duplicate-segment", &s, 0, "same segment as " + it->second->path);
      }
      by_header_seq[s.header.segment_seq] = &s;
      // Link to the previous segment.
      const SegmentSummary* prev = i > 0 ? &sc.segments[i - 1] : nullptr;
      if (s.header.segment_seq == 0) {
        if (s.header.first_index != 0 || s.header.prev_chain != Hash32{}) {
          finding("chain-break", &s, 0, "segment 0 does not start an empty stream");
        }
      } else if (prev != nullptr && prev->header_ok && prev->file_seq + 1 == s.file_seq) {
        if (!prev->sealed) {
          if (prev->walked_to_end) {
            finding("truncated", prev, static_cast<int64_t>(prev->bytes),
                    "segment has no seal but is not the last one: its end was cut off",
                    static_cast<int64_t>(prev->records_end));
          }
        } else {
          auto root = merkle::MerkleFrontier::from(s.header.first_index, s.header.frontier);
          if (s.header.prev_chain != prev->seal.frame_chain || s.header.first_index != prev->seal.tree_size ||
              !root.ok() || root->root() != prev->seal.root) {
            finding("chain-break", &s, 0,
                    "header does not continue the seal of segment " + std::to_string(prev->file_seq));
          }
        }
      }
      if (s.header_ok && s.header.segment_seq == 0 && i == 0) {
        // Nothing before: the head chain starts from zeros.
        last_signed = nullptr;
      }
      if (i == 0 && cover != nullptr && s.file_seq == cover->last_seq + 1) {
        // The predecessor was pruned: check the link against the signed record.
        auto root = merkle::MerkleFrontier::from(s.header.first_index, s.header.frontier);
        if (s.header.prev_chain != cover->last_frame_chain || s.header.first_index != cover->tree_size || !root.ok() ||
            root->root() != cover->last_root) {
          finding("chain-break", &s, 0,
                  "header does not continue the seal of pruned segment " + std::to_string(cover->last_seq) +
                      " as the prune of record " + std::to_string(cover_index) + " names it");
        }
        last_signed = &pruned_head;
      }
      // Head chain across segments.
      for (size_t k = 0; k < s.signed_frames.size(); ++k) {
        const SignedInfo& si = s.signed_frames[k];
        if (k == 0) {
          bool first_ever = s.header.segment_seq == 0;
          Hash32 want = last_signed != nullptr ? last_signed->head : Hash32{};
          uint64_t want_seq = last_signed != nullptr ? last_signed->body.head_seq + 1 : 0;
          if ((last_signed != nullptr || first_ever) && (si.body.prev_head != want || si.body.head_seq != want_seq)) {
            finding("chain-break", &s, static_cast<int64_t>(si.offset),
                    "first checkpoint of the segment does not follow the last signed head before it");
          }
        }
        sr.checkpoints++;
        check_tpm_evidence(si, &s);
      }
      if (!s.signed_frames.empty()) {
        last_signed = &s.signed_frames.back();
        sr.last_head_hex = to_hex(last_signed->head);
        sr.last_signed_ns = last_signed->body.time_ns;
      }
      sr.records = s.records_end;
      uint64_t signed_upto = s.header.first_index;
      for (auto& si : s.signed_frames) signed_upto = std::max(signed_upto, si.body.tree_size);
      if (s.sealed) signed_upto = s.records_end;
      sr.signed_records = std::min(signed_upto, s.records_end);
      if (last && s.sealed) {
        finding("missing-segment", &s, -1,
                "the last segment is sealed, but a sealed segment always has a successor: segment " +
                    std::to_string(s.file_seq + 1) + " and any after it were removed",
                static_cast<int64_t>(s.records_end));
      }
      if (last && !s.sealed && s.walked_to_end) {
        sr.open_segment = true;
        if (s.records_end > signed_upto) {
          uint64_t n = s.records_end - signed_upto;
          std::string msg = std::to_string(n) + " records (index " + std::to_string(signed_upto) +
                            " on) are not covered by a signature";
          if (opt.allow_unsigned_tail) {
            sr.notes.push_back(s.path + ": " + msg + " (allowed by --allow-unsigned-tail)");
          } else {
            finding("unsigned-tail", &s, -1, msg + " (a running logseald signs them within a checkpoint interval)",
                    static_cast<int64_t>(signed_upto), static_cast<int64_t>(n));
          }
        }
      }
    }
    // Anchors for this stream.
    for (const Anchor& a : opt.anchors) {
      if (a.body.stream != sc.name) continue;
      bool found = false;
      for (auto& s : sc.segments) {
        for (auto& si : s.signed_frames) {
          if (to_hex(si.head) == to_hex(head_of(a.body_bytes))) found = true;
        }
      }
      // With a TPM key, a checkpoint signed after the anchor (a higher counter)
      // that does not continue it shows writing went on from an older copy.
      const SignedInfo* after = nullptr;
      if (!found && a.body.signer_kind == hsm::SignerKind::kTpm) {
        for (auto& s : sc.segments) {
          for (auto& si : s.signed_frames) {
            if (after == nullptr && si.body.key_id == a.body.key_id && si.body.signer_kind == hsm::SignerKind::kTpm &&
                si.body.evidence.nv_counter > a.body.evidence.nv_counter) {
              after = &si;
            }
          }
        }
      }
      if (found) {
        sr.notes.push_back("anchor at " + std::to_string(a.body.tree_size) + " records is part of the chain");
      } else if (a.body.tree_size <= pruned_upto && a.body.tree_size <= sr.records) {
        // Its checkpoint went with a pruned segment: the signed prune statement
        // vouches for that range, and nothing on disk can be compared with it.
        sr.notes.push_back("anchor at " + std::to_string(a.body.tree_size) +
                           " records lies in the pruned range (records 0.." + std::to_string(pruned_upto) +
                           "): it can no longer be checked against the data");
      } else if (after != nullptr) {
        finding("rollback", nullptr, -1,
                "the data was rolled back to an older copy and writing went on: the checkpoint at " +
                    std::to_string(after->body.tree_size) + " records has TPM counter " +
                    std::to_string(after->body.evidence.nv_counter) + ", signed after the anchor (counter " +
                    std::to_string(a.body.evidence.nv_counter) + ", " + std::to_string(a.body.tree_size) +
                    " records), yet the anchor's checkpoint is not in its history");
      } else if (a.body.tree_size > sr.records) {
        // Not by segment count: a rewritten history may hold more records in
        // fewer segments than the anchor's, and that is a rollback, not a cut.
        finding("truncated", nullptr, -1,
                "the anchor signed " + std::to_string(a.body.tree_size) + " records (segment " +
                    std::to_string(a.body.segment_seq) + ") but the data holds only " + std::to_string(sr.records) +
                    " records: the tail was removed",
                static_cast<int64_t>(sr.records));
      } else {
        finding("rollback", nullptr, -1,
                "the anchor's checkpoint (" + std::to_string(a.body.tree_size) +
                    " records) is not in the data: the history was rewritten or rolled back");
      }
    }
    for (auto& f : sc.findings) report.findings.push_back(f);
    report.streams.push_back(std::move(sr));
  }
  // Anchors naming streams that are not there at all.
  for (const Anchor& a : opt.anchors) {
    bool present = std::any_of(streams.begin(), streams.end(), [&](auto& s) { return s.name == a.body.stream; });
    if (!present) {
      Finding f;
      f.kind = "truncated";
      f.stream = a.body.stream;
      f.file = data_dir;
      f.message = "the anchor names stream '" + a.body.stream + "', which is not in the data directory";
      report.findings.push_back(f);
    }
    const hsm::PublicKey* key = lookup(a.body.key_id);
    if (key == nullptr) {
      Finding f;
      f.kind = "unknown-key";
      f.stream = a.body.stream;
      f.message = "the anchor is signed by key " + to_hex(a.body.key_id) + ", which is not among the given keys";
      report.findings.push_back(f);
    } else if (!key->verify_digest(head_of(a.body_bytes), a.signature)) {
      Finding f;
      f.kind = "bad-anchor";
      f.stream = a.body.stream;
      f.message = "the anchor's signature does not verify";
      report.findings.push_back(f);
    }
  }
  return report;
}

// ---- anchors ---------------------------------------------------------------

std::string format_anchor(std::span<const uint8_t> body_bytes, std::span<const uint8_t> signature) {
  auto b = decode_checkpoint_body(body_bytes);
  LS_ASSERT(b.ok());
  std::ostringstream o;
  o << "logseal-checkpoint v1\n";
  o << "stream: " << b->stream << "\n";
  o << "kind: " << (b->kind == CheckpointKind::kSeal ? "seal" : "checkpoint") << "\n";
  o << "segment: " << b->segment_seq << "\n";
  o << "tree-size: " << b->tree_size << "\n";
  o << "root: " << to_hex(b->root) << "\n";
  o << "head: " << to_hex(head_of(body_bytes)) << "\n";
  o << "head-seq: " << b->head_seq << "\n";
  o << "time-ns: " << b->time_ns << "\n";
  o << "key-id: " << to_hex(b->key_id) << "\n";
  o << "signer: " << hsm::signer_kind_name(b->signer_kind) << "\n";
  if (b->signer_kind == hsm::SignerKind::kTpm) {
    o << "tpm-counter: " << b->evidence.nv_counter << "\n";
    o << "tpm-clock: " << b->evidence.tpm_clock_ms << " ms, reset " << b->evidence.tpm_reset_count << ", restart "
      << b->evidence.tpm_restart_count << ", safe " << unsigned{b->evidence.tpm_safe} << "\n";
  }
  o << "body: " << base64_encode(body_bytes) << "\n";
  o << "signature: " << base64_encode(signature) << "\n";
  return o.str();
}

Result<Anchor> parse_anchor(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  std::optional<std::vector<uint8_t>> body, sig;
  bool magic = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line == "logseal-checkpoint v1") magic = true;
    if (line.rfind("body: ", 0) == 0) body = base64_decode(line.substr(6));
    if (line.rfind("signature: ", 0) == 0) sig = base64_decode(line.substr(11));
  }
  if (!magic) return invalid_argument("not a logseal checkpoint (first line must be 'logseal-checkpoint v1')");
  if (!body || !sig) return invalid_argument("checkpoint text lacks a valid 'body:' or 'signature:' line");
  if (body->size() != kCheckpointBodyBytes) return invalid_argument("checkpoint body has the wrong size");
  auto b = decode_checkpoint_body(*body);
  if (!b.ok()) return invalid_argument("checkpoint body is not valid: " + b.status().message());
  Anchor a;
  a.body = b.value();
  a.body_bytes = std::move(*body);
  a.signature = std::move(*sig);
  return a;
}

// ---- output ----------------------------------------------------------------

std::string finding_to_text(const Finding& f) {
  std::ostringstream o;
  o << "FINDING " << f.kind << ": " << f.message;
  o << " [stream=" << (f.stream.empty() ? "-" : f.stream);
  if (f.segment >= 0) o << " segment=" << f.segment;
  if (!f.file.empty()) o << " file=" << f.file;
  if (f.offset >= 0) o << " offset=" << f.offset;
  if (f.record_index >= 0) o << " record=" << f.record_index;
  if (f.record_count >= 0) o << " records=" << f.record_count;
  o << "]";
  return o.str();
}

namespace {
std::string json_str(const std::string& s) { return json_escape(s); }
}  // namespace

std::string report_to_json(const VerifyReport& r) {
  std::ostringstream o;
  o << "{\"ok\":" << (r.ok() ? "true" : "false") << ",\"findings\":[";
  for (size_t i = 0; i < r.findings.size(); ++i) {
    const Finding& f = r.findings[i];
    if (i) o << ",";
    o << "{\"kind\":" << json_str(f.kind) << ",\"message\":" << json_str(f.message)
      << ",\"stream\":" << json_str(f.stream) << ",\"file\":" << json_str(f.file) << ",\"offset\":" << f.offset
      << ",\"segment\":" << f.segment << ",\"record\":" << f.record_index << ",\"records\":" << f.record_count << "}";
  }
  o << "],\"streams\":[";
  for (size_t i = 0; i < r.streams.size(); ++i) {
    const StreamReport& s = r.streams[i];
    if (i) o << ",";
    o << "{\"name\":" << json_str(s.name) << ",\"segments\":" << s.segments << ",\"records\":" << s.records
      << ",\"signed_records\":" << s.signed_records << ",\"bytes\":" << s.bytes << ",\"checkpoints\":" << s.checkpoints
      << ",\"recoveries\":" << s.recoveries << ",\"open_segment\":" << (s.open_segment ? "true" : "false")
      << ",\"last_head\":" << json_str(s.last_head_hex) << ",\"last_signed_ns\":" << s.last_signed_ns << ",\"notes\":[";
    for (size_t k = 0; k < s.notes.size(); ++k) o << (k ? "," : "") << json_str(s.notes[k]);
    o << "]}";
  }
  o << "]}";
  return o.str();
}

}  // namespace logseal::engine
