#include "ingest/backfill.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <utility>
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

Result<BackfillInput> BackfillInput::open(const std::string& path) {
  int fd = path == "-" ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_status("open " + path, errno);
  return BackfillInput(fd, path);
}

BackfillInput::BackfillInput(int fd, std::string path)
    : fd_(fd), path_(std::move(path)), source_(path_ == "-" ? "stdin" : "file:" + path_) {}

BackfillInput::BackfillInput(BackfillInput&& o) noexcept
    : fd_(o.fd_), path_(std::move(o.path_)), source_(std::move(o.source_)) {
  o.fd_ = -1;
}

BackfillInput::~BackfillInput() {
  if (fd_ >= 0 && fd_ != STDIN_FILENO) ::close(fd_);
}

Status BackfillInput::read_all(const std::function<Status(std::string_view)>& on_data,
                               const std::function<Status()>& on_end) {
  std::vector<char> buf(1 << 20);
  while (true) {
    ssize_t n = ::read(fd_, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status("read " + path_, errno);
    }
    if (n == 0) return on_end();
    LS_RETURN_IF_ERROR(on_data(std::string_view(buf.data(), static_cast<size_t>(n))));
  }
}

Status backfill_file(engine::Stream& stream, Framing framing, const std::string& path, size_t message_bytes_max,
                     BackfillStats& stats) {
  LS_ASSIGN_OR_RETURN(BackfillInput in, BackfillInput::open(path));
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
    r.source = in.source();
    r.raw = msg;
    auto idx = stream.append(r);
    if (!idx.ok()) {
      append_error = idx.status();
      return;
    }
    stats.appended(idx.value(), msg.size());
    if (truncated) stats.truncated++;
  };
  Status st = in.read_all(
      [&](std::string_view data) {
        LS_RETURN_IF_ERROR(framer.feed(data, deliver));
        return append_error;
      },
      [&] { return framer.finish(deliver); });
  if (!append_error.ok()) return append_error;
  return st.with_context(path);
}

}  // namespace logseal::ingest
