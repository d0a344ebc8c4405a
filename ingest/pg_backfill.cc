#include "ingest/pg_backfill.h"

#include <chrono>

#include "ingest/pg_logfile.h"
#include "ingest/pg_records.h"

namespace logseal::ingest {

std::optional<PgLogFormat> parse_pg_log_format(const std::string& name) {
  if (name == "pgaudit-csvlog") return PgLogFormat::kCsvlog;
  if (name == "pgaudit-jsonlog") return PgLogFormat::kJsonlog;
  return std::nullopt;
}

Status backfill_pg_file(engine::Stream& stream, PgLogFormat format, const std::string& path,
                        size_t record_bytes_max, BackfillStats& stats) {
  LS_ASSIGN_OR_RETURN(BackfillInput in, BackfillInput::open(path));
  PgCsvlogReader csv(record_bytes_max);
  PgJsonlogReader json(record_bytes_max);
  std::string fields;
  Status append_error;
  PgOnEntry deliver = [&](const PgEntry& e) {
    if (!append_error.ok()) return;
    fields.clear();
    append_pg_fields_json(e, {}, fields);
    format::RecordView r;
    r.received_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    r.source = in.source();
    r.fields = fields;
    r.raw = e.text;
    auto idx = stream.append(r);
    if (!idx.ok()) {
      append_error = idx.status();
      return;
    }
    stats.appended(idx.value(), e.text.size());
  };
  Status st = in.read_all(
      [&](std::string_view data) {
        LS_RETURN_IF_ERROR(format == PgLogFormat::kCsvlog ? csv.feed(data, deliver) : json.feed(data, deliver));
        return append_error;
      },
      [&] { return format == PgLogFormat::kCsvlog ? csv.finish(deliver) : json.finish(deliver); });
  if (!append_error.ok()) return append_error;
  return st.with_context(path);
}

}  // namespace logseal::ingest
