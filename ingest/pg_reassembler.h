// Reassembly of PostgreSQL's syslog output into logical log entries.
//
// What arrives (PostgreSQL 15 elog.c write_syslog(), rsyslog in between; see
// ../shared/corpus/README.md). PostgreSQL formats an entry as for stderr: prefix,
// "LOG:  ", the message with a TAB inserted after every LF, and further lines
// (DETAIL, HINT, STATEMENT ...) each with its own prefix. With
// syslog_split_messages=on (default) it then sends one syslog message per line,
// cutting lines longer than 900 bytes (at the last whitespace within the 900 bytes
// when there is one, never inside a UTF-8 character; the whitespace at a cut
// starts the next piece), each piece as
//   "[SEQ-CHUNK] piece"   syslog_sequence_numbers=on (default)
//   "[CHUNK] piece"       syslog_sequence_numbers=off
// SEQ counts entries per backend process; CHUNK counts pieces from 1. With
// syslog_split_messages=off the whole entry is one message, "[SEQ] entry" or just
// "entry". rsyslog (parser.escapeControlCharactersOnReceive, on by default)
// replaces control characters with '#' and three octal digits: TAB "#011", CR "#015".
// rsyslog's RFC 5424 forwarding template puts a space before MSG.
//
// How an entry is rebuilt:
// - Fragments are grouped by key = hostname + app_name + procid. A fragment
//   whose SEQ differs from the pending one (or, without sequence numbers, whose
//   CHUNK is 1) ends the pending entry: PostgreSQL sends all pieces of one entry
//   before the next, from one process.
// - "#ooo" with ooo an octal control character (000-037, 177) is undone. A
//   statement that holds the literal text "#011" is therefore read as a TAB: rsyslog
//   does not escape '#', so the two cannot be told apart.
// - Piece N+1 joins piece N either as the continuation of a cut line (no separator)
//   or as a new line (LF, and the TAB PostgreSQL inserted after a LF is dropped,
//   so an AUDIT statement equals the csvlog's). It is a cut when
//     (a) piece N is 897..900 bytes (a cut with no whitespace to back up to; 897
//         because a UTF-8 character is never split) and piece N+1 does not start
//         with TAB, or
//     (b) piece N+1 starts with whitespace, piece N + piece N+1 exceed 900 bytes,
//         and piece N+1 has no whitespace in its first 900 - len(N) bytes after
//         the first (PostgreSQL backed up to the last whitespace of the window).
//   Lengths are of the unescaped bytes. Misreadings need a line of exactly 897-900
//   bytes, or a cut landing on a TAB, or a continuation line starting with a TAB
//   followed by a long run without whitespace.
// - Without sequence numbers the same rules apply; an entry ends at the next
//   CHUNK 1, so two processes' entries are only kept apart by procid.
// - With syslog_split_messages=off each message is a whole entry.
// - A message without the expected "[...]" prefix (some other program using the
//   same tag, or a relay that rewrote it) is an entry of its own, flagged
//   kPgEntryUnsequenced.
//
// Bounds (nothing is dropped; an entry that hits one is emitted flagged):
// - entry_bytes_max / fragments_max per entry: the entry is emitted with
//   kPgEntryOversized and the rest of it continues as a kPgEntryContinued entry.
// - keys_max pending keys and pending_bytes_max over all of them: the entry whose
//   last fragment is oldest is emitted with kPgEntryEvicted.
// - An entry is complete when the next one of its key starts; the last one of a
//   key waits for flush_older_than() (the caller's timer) or flush_all().
//
// Emitted entries carry the prefix fields (when a log_line_prefix is given) and,
// for an AUDIT record, the parsed pgaudit fields. Other lines are emitted as plain
// entries with audit == nullptr.
//
// Not thread-safe: one reassembler per ingest thread (keys never span streams).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "ingest/pg_prefix.h"
#include "ingest/pgaudit.h"
#include "ingest/syslog_parse.h"

namespace logseal::ingest {

struct PgSyslogOptions {
  bool sequence_numbers = true;  // the server's syslog_sequence_numbers
  bool split_messages = true;    // the server's syslog_split_messages
  size_t entry_bytes_max = 1 << 20;
  size_t fragments_max = 4096;
  size_t keys_max = 1024;
  size_t pending_bytes_max = 64 << 20;
};

// PostgreSQL's piece limit (PG_SYSLOG_LIMIT in elog.c).
inline constexpr size_t kPgSyslogPieceBytes = 900;

class PgReassembler {
 public:
  // Called once per entry; the entry and everything it points to are valid during
  // the call only.
  using OnEntry = PgOnEntry;

  // prefix: the server's compiled log_line_prefix, or nullopt to leave
  // fields/severity/message unset (prefix_status then says so).
  PgReassembler(PgSyslogOptions options, std::optional<PgLinePrefix> prefix, OnEntry on_entry);
  ~PgReassembler();

  // Feeds one syslog message (its parsed fields; msg is what PostgreSQL sent,
  // after the relay's escaping). id is the caller's handle for it (the record
  // index); time is the caller's clock in any unit, used only by flush_older_than.
  // May emit entries (never the one just fed when more pieces can follow).
  void add(const SyslogFields& message, uint64_t id, int64_t time);

  // Emits every pending entry whose last fragment's time is < time.
  void flush_older_than(int64_t time);
  // Emits every pending entry (end of input, shutdown).
  void flush_all();

  size_t pending_keys() const { return pending_.size(); }
  size_t pending_bytes() const { return pending_bytes_; }

 private:
  struct Pending;

  void start(Pending& p, uint64_t seq, uint32_t chunk, uint32_t flags);
  void append_piece(Pending& p, std::string_view piece, uint32_t chunk, uint64_t id, int64_t time);
  void emit(Pending& p);
  void emit_single(std::string_view text, uint64_t id, uint32_t flags);
  void evict_oldest();
  void build_entry(std::string_view text, std::span<const uint64_t> ids, uint32_t flags);

  PgSyslogOptions options_;
  std::optional<PgLinePrefix> prefix_;
  OnEntry on_entry_;
  std::unordered_map<std::string, std::unique_ptr<Pending>> pending_;
  size_t pending_bytes_ = 0;
  // Scratch, reused across calls so steady state does not allocate per fragment.
  std::string key_;
  std::string piece_;
  std::vector<uint64_t> single_id_;
  AuditRecord audit_;
};

// Undoes rsyslog's "#ooo" escaping of control characters (see above) into out.
void pg_unescape_rsyslog(std::string_view in, std::string& out);

}  // namespace logseal::ingest
