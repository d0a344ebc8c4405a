#include "ingest/backfill.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <vector>

#include "ingest/syslog_fields.h"

namespace logseal::ingest {

Result<Framing> parse_input_format(const std::string& name) {
  if (name == "lines") return Framing::kLines;
  if (name == "syslog-octet") return Framing::kOctetCounted;
  if (name == "syslog-lf") return Framing::kLf;
  // jsonl is not a framing: the tool calls backfill_jsonl_file() for it.
  if (name == "pgaudit-csvlog" || name == "pgaudit-jsonlog") {
    return unimplemented("input format '" + name + "' is not supported by this build yet (supported: lines, syslog-octet, syslog-lf)");
  }
  return invalid_argument("unknown input format '" + name + "' (lines, syslog-octet, syslog-lf)");
}

Status backfill_file(engine::Stream& stream, Framing framing, const std::string& path, size_t message_bytes_max,
                     BackfillStats& stats) {
  // Reading a file is the tool's input, not the engine's data path: plain read(2).
  int fd = path == "-" ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_status("open " + path, errno);
  std::string source = path == "-" ? "stdin" : "file:" + path;
  Framer framer(framing, message_bytes_max);
  Status append_error;
  auto deliver = [&](std::string_view msg, bool truncated) {
    if (!append_error.ok()) return;
    format::RecordView r;
    uint8_t view[format::kSyslogViewBytes];
    bool parsed = false;
    if (framing != Framing::kLines) {
      parsed = make_syslog_view(parse_syslog(msg), msg, view);
      if (parsed) r.fields = std::string_view(reinterpret_cast<const char*>(view), sizeof view);
    }
    r.flags = static_cast<uint8_t>((truncated ? format::kRecordFlagTruncated : 0) |
                                   (framing != Framing::kLines && !parsed ? format::kRecordFlagUnparsed : 0));
    r.received_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    r.source = source;
    r.raw = msg;
    auto idx = stream.append(r);
    if (!idx.ok()) {
      append_error = idx.status();
      return;
    }
    stats.records++;
    stats.bytes += msg.size();
    if (truncated) stats.truncated++;
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
      st = framer.finish(deliver);
      break;
    }
    st = framer.feed(std::string_view(buf.data(), static_cast<size_t>(n)), deliver);
    if (!st.ok() || !append_error.ok()) break;
  }
  if (fd != STDIN_FILENO) ::close(fd);
  if (!append_error.ok()) return append_error;
  return st.with_context(path);
}

}  // namespace logseal::ingest
