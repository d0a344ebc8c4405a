#include "ingest/pg_reassembler.h"

#include <algorithm>
#include <charconv>

namespace logseal::ingest {
namespace {

// PostgreSQL cuts at isspace() in the C locale; LF never occurs inside a piece.
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r'; }

// A cut piece is at most kPgSyslogPieceBytes long and at least 3 bytes shorter
// only because pg_mbcliplen keeps a UTF-8 character (up to 4 bytes) whole.
constexpr size_t kPieceBytesMin = kPgSyslogPieceBytes - 3;

// Whether next continues prev's line (a cut) rather than starting a new line;
// the rules are in the header.
bool is_cut(size_t prev_bytes, std::string_view next) {
  if (next.empty()) return false;
  if (prev_bytes >= kPieceBytesMin && prev_bytes <= kPgSyslogPieceBytes) return next[0] != '\t';
  if (prev_bytes >= kPieceBytesMin || !is_space(next[0])) return false;
  if (prev_bytes + next.size() <= kPgSyslogPieceBytes) return false;
  const size_t window = std::min(kPieceBytesMin - prev_bytes, next.size());
  for (size_t i = 1; i < window; ++i) {
    if (is_space(next[i])) return false;
  }
  return true;
}

bool parse_uint(std::string_view s, uint64_t& v) {
  if (s.empty() || s.size() > 19) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

void pg_unescape_rsyslog(std::string_view in, std::string& out) {
  out.clear();
  size_t i = 0;
  while (i < in.size()) {
    size_t hash = in.find('#', i);
    if (hash == std::string_view::npos) break;
    out.append(in.substr(i, hash - i));
    if (hash + 3 < in.size() && in[hash + 1] >= '0' && in[hash + 1] <= '1' && in[hash + 2] >= '0' &&
        in[hash + 2] <= '7' && in[hash + 3] >= '0' && in[hash + 3] <= '7') {
      int v = (in[hash + 1] - '0') * 64 + (in[hash + 2] - '0') * 8 + (in[hash + 3] - '0');
      if (v < 0x20 || v == 0x7f) {
        out.push_back(static_cast<char>(v));
        i = hash + 4;
        continue;
      }
    }
    out.push_back('#');
    i = hash + 1;
  }
  out.append(in.substr(i));
}

struct PgReassembler::Pending {
  std::string key;
  std::string text;
  std::vector<uint64_t> ids;
  uint64_t seq = 0;
  uint32_t last_chunk = 0;
  size_t last_piece_bytes = 0;
  int64_t last_time = 0;
  uint32_t flags = 0;
};

PgReassembler::PgReassembler(PgSyslogOptions options, std::optional<PgLinePrefix> prefix, OnEntry on_entry)
    : options_(options), prefix_(std::move(prefix)), on_entry_(std::move(on_entry)) {
  LS_ASSERT(options_.keys_max > 0 && options_.fragments_max > 0 && options_.entry_bytes_max > 0);
  single_id_.resize(1);
}

PgReassembler::~PgReassembler() = default;

void PgReassembler::build_entry(std::string_view text, std::span<const uint64_t> ids, uint32_t flags) {
  PgEntry e;
  e.text = text;
  e.fragment_ids = ids;
  e.flags = flags;
  if (!prefix_) {
    e.prefix_status = failed_precondition("no log_line_prefix configured");
  } else {
    PgPrefixMatch m;
    e.prefix_status = prefix_->match(text, m);
    if (e.prefix_status.ok()) {
      e.postgres = m.fields;
      split_severity(m.rest, e.severity, e.message);
    }
  }
  if (is_audit_message(e.message)) {
    size_t consumed = 0;
    Result<AuditRecord> r = parse_audit(e.message, &consumed);
    if (r.ok()) {
      audit_ = std::move(r).value();
      e.audit = &audit_;
    } else {
      e.audit_status = r.status();
    }
  }
  on_entry_(e);
}

void PgReassembler::emit_single(std::string_view text, uint64_t id, uint32_t flags) {
  single_id_[0] = id;
  build_entry(text, single_id_, flags);
}

void PgReassembler::emit(Pending& p) {
  // Take it out of the map first: the callback may not re-enter, but the key's
  // slot must be free for the fragment that caused the emission.
  auto it = pending_.find(p.key);
  LS_ASSERT(it != pending_.end() && it->second.get() == &p);
  std::unique_ptr<Pending> owned = std::move(it->second);
  pending_.erase(it);
  LS_ASSERT(pending_bytes_ >= p.text.size());
  pending_bytes_ -= p.text.size();
  build_entry(p.text, p.ids, p.flags);
}

void PgReassembler::evict_oldest() {
  Pending* oldest = nullptr;
  for (auto& [key, p] : pending_) {
    if (oldest == nullptr || p->last_time < oldest->last_time ||
        (p->last_time == oldest->last_time && p->key < oldest->key)) {
      oldest = p.get();
    }
  }
  LS_ASSERT(oldest != nullptr);
  oldest->flags |= kPgEntryEvicted;
  emit(*oldest);
}

void PgReassembler::start(Pending& p, uint64_t seq, uint32_t chunk, uint32_t flags) {
  p.text.clear();
  p.ids.clear();
  p.seq = seq;
  p.last_chunk = chunk - 1;
  p.last_piece_bytes = 0;
  p.flags = flags | (chunk != 1 ? uint32_t{kPgEntryContinued} : 0u);
}

void PgReassembler::append_piece(Pending& p, std::string_view piece, uint32_t chunk, uint64_t id, int64_t time) {
  const size_t before = p.text.size();
  if (p.ids.empty()) {
    p.text.append(piece);
  } else {
    if (chunk != p.last_chunk + 1) p.flags |= kPgEntryGap;
    if (is_cut(p.last_piece_bytes, piece)) {
      p.text.append(piece);
    } else {
      p.text.push_back('\n');
      // The TAB PostgreSQL's append_with_tabs put after the LF.
      p.text.append(piece.starts_with('\t') ? piece.substr(1) : piece);
    }
  }
  pending_bytes_ += p.text.size() - before;
  p.ids.push_back(id);
  p.last_chunk = chunk;
  p.last_piece_bytes = piece.size();
  p.last_time = time;
}

void PgReassembler::add(const SyslogFields& message, uint64_t id, int64_t time) {
  std::string_view msg = message.msg;
  const bool bracketed = options_.sequence_numbers || options_.split_messages;
  if (bracketed) {
    while (msg.starts_with(' ')) msg.remove_prefix(1);
  } else if (message.kind == SyslogFields::Kind::kRfc5424 && msg.starts_with(' ')) {
    msg.remove_prefix(1);  // rsyslog's RFC 5424 template; see the header
  }
  uint64_t seq = 0;
  uint64_t chunk = 1;
  if (bracketed) {
    size_t close = msg.find("] ");
    bool ok = msg.starts_with('[') && close != std::string_view::npos;
    if (ok) {
      std::string_view inside = msg.substr(1, close - 1);
      if (options_.sequence_numbers && options_.split_messages) {
        size_t dash = inside.find('-');
        ok = dash != std::string_view::npos && parse_uint(inside.substr(0, dash), seq) &&
             parse_uint(inside.substr(dash + 1), chunk) && chunk >= 1 && chunk <= UINT32_MAX;
      } else if (options_.sequence_numbers) {
        ok = parse_uint(inside, seq);
      } else {
        ok = parse_uint(inside, chunk) && chunk >= 1 && chunk <= UINT32_MAX;
      }
    }
    if (!ok) {
      pg_unescape_rsyslog(msg, piece_);
      emit_single(piece_, id, kPgEntryUnsequenced);
      return;
    }
    msg.remove_prefix(close + 2);
  }
  pg_unescape_rsyslog(msg, piece_);
  if (!options_.split_messages) {
    emit_single(piece_, id, 0);
    return;
  }

  key_.assign(message.hostname);
  key_.push_back('\0');
  key_.append(message.app_name);
  key_.push_back('\0');
  key_.append(message.procid);

  auto it = pending_.find(key_);
  Pending* p = it == pending_.end() ? nullptr : it->second.get();
  const uint32_t c = static_cast<uint32_t>(chunk);
  uint32_t new_flags = 0;
  if (p != nullptr) {
    const bool same_entry = options_.sequence_numbers ? p->seq == seq : c != 1;
    if (!same_entry) {
      emit(*p);
      p = nullptr;
    } else if (c <= p->last_chunk) {
      // Duplicate or reordered delivery: close what we have, keep this apart.
      emit(*p);
      p = nullptr;
      new_flags = kPgEntryOutOfOrder;
    } else if (p->text.size() + piece_.size() + 1 > options_.entry_bytes_max ||
               p->ids.size() >= options_.fragments_max) {
      // The rest continues as a new entry of the same sequence number.
      p->flags |= kPgEntryOversized;
      emit(*p);
      p = nullptr;
      new_flags = kPgEntryContinued;
    }
  }
  if (p == nullptr) {
    while (pending_.size() >= options_.keys_max) evict_oldest();
    auto fresh = std::make_unique<Pending>();
    fresh->key = key_;
    p = fresh.get();
    pending_.emplace(key_, std::move(fresh));
    start(*p, seq, c, new_flags);
  }
  append_piece(*p, piece_, c, id, time);
  while (pending_bytes_ > options_.pending_bytes_max && !pending_.empty()) evict_oldest();
}

void PgReassembler::flush_older_than(int64_t time) {
  std::vector<Pending*> due;
  for (auto& [key, p] : pending_) {
    if (p->last_time < time) due.push_back(p.get());
  }
  std::sort(due.begin(), due.end(), [](const Pending* a, const Pending* b) {
    return a->last_time != b->last_time ? a->last_time < b->last_time : a->key < b->key;
  });
  for (Pending* p : due) emit(*p);
}

void PgReassembler::flush_all() {
  std::vector<Pending*> all;
  for (auto& [key, p] : pending_) all.push_back(p.get());
  std::sort(all.begin(), all.end(), [](const Pending* a, const Pending* b) {
    return a->last_time != b->last_time ? a->last_time < b->last_time : a->key < b->key;
  });
  for (Pending* p : all) emit(*p);
}

}  // namespace logseal::ingest
