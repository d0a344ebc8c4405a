// pgaudit records inside PostgreSQL log messages: the AUDIT payload parser and the
// entry type that every PostgreSQL input (syslog reassembly, csvlog, jsonlog) yields.
//
// The AUDIT payload, as pgaudit 1.7 writes it (pgaudit.c, log_audit_event):
//
//   AUDIT: <audit_type>,<statement_id>,<substatement_id>,<class>,<command>,
//          <object_type>,<object_name>,<statement>,<parameter>[,<rows>]
//
// - audit_type is SESSION or OBJECT; statement_id and substatement_id are decimal;
//   rows (pgaudit.log_rows=on) is decimal and is the only optional field.
// - Every text field goes through pgaudit's append_valid_csv: it is double-quoted
//   only when it holds a comma, a double quote, CR or LF, and inner double quotes
//   are doubled. Single quotes are never escaped. Empty fields (object type and
//   name of a statement without an object) are empty, unquoted.
// - `<not logged>`, `<none>`, `<REDACTED>` and `???` are pgaudit's own markers and
//   stay as text.
// - parameter, when logged, is itself a CSV list (each value through
//   append_valid_csv, NULLs empty) and then quoted again as a field, so quotes
//   multiply; split_audit_parameters undoes the inner level.
//
// Parsing is strict: a quote inside an unquoted field, CR or LF outside quotes, a
// quoted field not followed by ',' or the end, a missing field, a non-decimal id
// or extra text after the last field is InvalidArgument naming the byte offset
// (from the start of the text passed in) and the field.
//
// Lifetime: AuditRecord fields are views into the parsed text when no unescaping
// was needed (unquoted, or quoted without doubled quotes), else they own their
// unescaped copy. The input must outlive the record; the record may be copied or
// moved freely.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace logseal::ingest {

// A field's text: a view into the input, or an owned copy when undoing the CSV
// quoting changed the bytes. view() is valid as long as both the input and this
// object live.
class PgText {
 public:
  PgText() = default;
  static PgText borrowed(std::string_view v) {
    PgText t;
    t.view_ = v;
    return t;
  }
  static PgText owned(std::string s) {
    PgText t;
    t.owned_ = std::move(s);
    t.is_owned_ = true;
    return t;
  }
  std::string_view view() const { return is_owned_ ? std::string_view(owned_) : view_; }
  bool is_owned() const { return is_owned_; }
  bool operator==(std::string_view s) const { return view() == s; }

 private:
  std::string_view view_;
  std::string owned_;
  bool is_owned_ = false;
};

// One pgaudit record (DESIGN.md `fields.pgaudit`).
struct AuditRecord {
  PgText audit_type;  // SESSION or OBJECT
  uint64_t statement_id = 0;
  uint64_t substatement_id = 0;
  PgText class_name;  // READ, WRITE, FUNCTION, ROLE, DDL, MISC, MISC_SET
  PgText command;
  PgText object_type;
  PgText object_name;
  PgText statement;
  PgText parameter;
  bool has_rows = false;
  int64_t rows = 0;
};

inline constexpr std::string_view kAuditTag = "AUDIT: ";

// True when a PostgreSQL message (the text after "LOG:  ") is a pgaudit record.
inline bool is_audit_message(std::string_view message) { return message.starts_with(kAuditTag); }

// Parses a message that starts with "AUDIT: " (the text after the severity).
// With consumed_bytes == nullptr the record must span all of message. Otherwise
// parsing also stops at a LF after the last field (the lines PostgreSQL appends
// after the message, e.g. LOCATION with log_error_verbosity=verbose) and
// *consumed_bytes says where the record ended.
Result<AuditRecord> parse_audit(std::string_view message, size_t* consumed_bytes = nullptr);

// Splits a logged parameter list (AuditRecord::parameter after the field's own
// quoting was undone) into values; a NULL parameter is an empty value. "<none>"
// (no parameters) gives an empty list; "<not logged>" is FailedPrecondition.
Result<std::vector<std::string>> split_audit_parameters(std::string_view parameter);

// `fields.postgres` of an entry: from the log_line_prefix (syslog, stderr), or
// the columns of csvlog and jsonlog. Views into the entry's text; empty when the
// source does not carry the field.
struct PgFields {
  std::string_view user;
  std::string_view database;
  std::string_view application;
  std::string_view client;  // host only: "(port)" of %r and ":port" of csvlog dropped
  std::string_view time;    // as PostgreSQL printed it (%m, %t or %n; log_time; timestamp)
  int64_t pid = -1;         // -1 when absent
};

// Flags of a reassembled entry. Only the syslog reassembler sets them; csvlog and
// jsonlog entries are whole by construction.
enum PgEntryFlag : uint32_t {
  // A fragment of the entry is known to be missing: chunk numbers skipped.
  kPgEntryGap = 1u << 0,
  // The entry's first fragment was not chunk 1: its start was emitted earlier
  // (bounds, timeout, out of order) or never arrived.
  kPgEntryContinued = 1u << 1,
  // Cut at entry_bytes_max or fragments_max; the rest follows as a kPgEntryContinued entry.
  kPgEntryOversized = 1u << 2,
  // Emitted early to respect keys_max or pending_bytes_max; more fragments of the
  // same entry may follow as a kPgEntryContinued entry.
  kPgEntryEvicted = 1u << 3,
  // A fragment arrived with a chunk number at or below one already seen for the
  // same sequence number (duplicated or reordered delivery).
  kPgEntryOutOfOrder = 1u << 4,
  // The syslog message had no [seq-chunk] prefix although one was expected; it is
  // an entry of its own.
  kPgEntryUnsequenced = 1u << 5,
};
inline constexpr uint32_t kPgEntryIncompleteMask =
    kPgEntryGap | kPgEntryContinued | kPgEntryOversized | kPgEntryOutOfOrder;

// One logical PostgreSQL log entry. Everything is a view, valid only during the
// callback that receives the entry.
struct PgEntry {
  // Syslog: the reassembled entry (prefix, severity, message and any further
  // lines such as DETAIL, joined with LF). csvlog/jsonlog: the record's bytes.
  std::string_view text;
  // Syslog: the caller's ids of the fragments, in arrival order. Empty otherwise.
  std::span<const uint64_t> fragment_ids;
  uint32_t flags = 0;  // PgEntryFlag bits
  PgFields postgres;
  // Syslog: ok when the line prefix matched; else why not (fields then empty,
  // severity and message unset). Always ok for csvlog/jsonlog.
  Status prefix_status;
  std::string_view severity;  // LOG, ERROR, ... ; DETAIL etc. never start an entry
  std::string_view message;   // after "SEVERITY:  "
  // Non-null when message is an AUDIT record that parsed; points at storage owned
  // by the producer, valid during the callback.
  const AuditRecord* audit = nullptr;
  // Non-ok when message starts with "AUDIT: " but does not parse (audit is null).
  Status audit_status;

  bool incomplete() const { return (flags & kPgEntryIncompleteMask) != 0; }
};

// Receives entries from the reassembler and the log file readers.
using PgOnEntry = std::function<void(const PgEntry& entry)>;

}  // namespace logseal::ingest
