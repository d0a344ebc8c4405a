// Backfill of PostgreSQL's own log files (`logseal ingest --format
// pgaudit-csvlog|pgaudit-jsonlog`): one record per log entry, raw = the entry's
// bytes as the file holds them (a csvlog row, quotes and embedded LFs included; a
// jsonlog line), without the final LF; fields = append_pg_fields_json (pgaudit for
// AUDIT entries, postgres for all). Kept apart from backfill.* (the syslog and
// line formats) because it needs the pgaudit readers and their JSON fields.
#pragma once

#include <string>

#include "base/status.h"
#include "engine/store.h"
#include "ingest/backfill.h"

namespace logseal::ingest {

enum class PgLogFormat { kCsvlog, kJsonlog };

// "pgaudit-csvlog" / "pgaudit-jsonlog"; nullopt for any other format name.
std::optional<PgLogFormat> parse_pg_log_format(const std::string& name);

// Reads path ("-" for stdin) and appends one record per entry. A malformed entry
// stops the file with InvalidArgument naming the file, the record number and its
// byte offset; every entry before it is sealed (stats say how many).
Status backfill_pg_file(engine::Stream& stream, PgLogFormat format, const std::string& path,
                        size_t record_bytes_max, BackfillStats& stats);

}  // namespace logseal::ingest
