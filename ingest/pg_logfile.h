// Readers of PostgreSQL's csvlog and jsonlog files, for backfill
// (`logseal ingest --format pgaudit-csvlog|pgaudit-jsonlog`). Both carry the
// prefix fields as columns/keys, so no log_line_prefix is needed, and no
// reassembly: a record is whole.
//
// csvlog (PostgreSQL 15 docs, "Using CSV-Format Log Output"): one record per row,
// RFC 4180 quoting (text columns quoted, inner quotes doubled, LF inside quotes),
// rows end with LF. Columns used: log_time (0), user_name (1), database_name (2),
// process_id (3), connection_from (4, "host:port" or "[local]"), error_severity
// (11), message (13), application_name (22). 23 to 26 columns are accepted
// (PostgreSQL 12 to 16 layouts); anything else is an error.
//
// jsonlog (PostgreSQL 15+): one JSON object per line. Keys used: timestamp, user,
// dbname, pid, remote_host, application_name, error_severity, message; absent keys
// leave the field empty (PostgreSQL omits empty values). Parsed with simdjson, which
// validates the whole line (UTF-8 included) before anything is read from it.
//
// Both are incremental: feed() takes bytes as a file read returns them, so a
// record may span calls. A record longer than record_bytes_max is
// ResourceExhausted. A malformed record is InvalidArgument naming the record
// number (from 1) and the byte offset of its start in the whole input; every
// record before it has been delivered, and the reader stays failed.
//
// Entry text is the record's bytes without the final LF. Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "ingest/pgaudit.h"

namespace logseal::ingest {

class PgCsvlogReader {
 public:
  explicit PgCsvlogReader(size_t record_bytes_max = 1 << 20);

  Status feed(std::string_view data, const PgOnEntry& on_entry);
  // End of input: a last row without its LF is delivered; input ending inside a
  // quoted field is InvalidArgument.
  Status finish(const PgOnEntry& on_entry);

  uint64_t records() const { return records_; }

 private:
  Status drain(const PgOnEntry& on_entry, bool at_end);
  Status deliver(std::string_view record, const PgOnEntry& on_entry);

  size_t record_bytes_max_;
  std::string buf_;         // bytes not yet delivered, from buf_start_
  size_t buf_start_ = 0;
  size_t scan_pos_ = 0;     // buf_ offset up to which quotes were tracked
  bool in_quotes_ = false;  // quote state at scan_pos_
  uint64_t offset_ = 0;     // input offset of buf_[buf_start_]
  uint64_t records_ = 0;
  Status failed_;
  // Per-record scratch, reused.
  std::vector<std::string_view> columns_;
  std::vector<std::string> unquoted_;
  AuditRecord audit_;
};

class PgJsonlogReader {
 public:
  explicit PgJsonlogReader(size_t record_bytes_max = 1 << 20);
  ~PgJsonlogReader();

  Status feed(std::string_view data, const PgOnEntry& on_entry);
  // End of input: a last line without its LF is delivered.
  Status finish(const PgOnEntry& on_entry);

  uint64_t records() const { return records_; }

 private:
  struct Parser;
  Status deliver(std::string_view line, const PgOnEntry& on_entry);

  size_t record_bytes_max_;
  std::unique_ptr<Parser> parser_;
  std::string buf_;
  uint64_t offset_ = 0;  // input offset of buf_[0]
  uint64_t records_ = 0;
  Status failed_;
  AuditRecord audit_;
};

}  // namespace logseal::ingest
