#include "ingest/pg_backfill.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <vector>

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
  int fd = path == "-" ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_status("open " + path, errno);
  std::string source = path == "-" ? "stdin" : "file:" + path;
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
    r.source = source;
    r.fields = fields;
    r.raw = e.text;
    auto idx = stream.append(r);
    if (!idx.ok()) {
      append_error = idx.status();
      return;
    }
    stats.records++;
    stats.bytes += e.text.size();
    if (stats.first_index == UINT64_MAX) stats.first_index = idx.value();
    stats.last_index = idx.value();
  };
  std::vector<char> buf(1 << 20);
  Status st;
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      st = errno_status("read " + path, errno);
      break;
    }
    if (n == 0) {
      st = format == PgLogFormat::kCsvlog ? csv.finish(deliver) : json.finish(deliver);
      break;
    }
    std::string_view data(buf.data(), static_cast<size_t>(n));
    st = format == PgLogFormat::kCsvlog ? csv.feed(data, deliver) : json.feed(data, deliver);
    if (!st.ok() || !append_error.ok()) break;
  }
  if (fd != STDIN_FILENO) ::close(fd);
  if (!append_error.ok()) return append_error;
  return st.with_context(path);
}

}  // namespace logseal::ingest
