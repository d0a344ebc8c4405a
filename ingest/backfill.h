// Backfill: seals existing logs (files or stdin) into a stream without the
// daemon (`logseal ingest`). Each message becomes one record holding its exact
// bytes; messages over the size limit are cut and flagged.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "engine/store.h"
#include "ingest/framing.h"

namespace logseal::ingest {

struct BackfillStats {
  uint64_t records = 0;
  uint64_t truncated = 0;
  uint64_t bytes = 0;
  uint64_t first_index = UINT64_MAX;
  uint64_t last_index = 0;

  // One record of `bytes` appended at stream index `index`.
  void appended(uint64_t index, size_t bytes) {
    records++;
    this->bytes += bytes;
    if (first_index == UINT64_MAX) first_index = index;
    last_index = index;
  }
};

// What every backfill reads: a file, or stdin for "-". Reading a file is the
// tool's input, not the engine's data path: plain read(2) in 1 MiB chunks.
class BackfillInput {
 public:
  // errno status "open PATH" when the file cannot be opened.
  static Result<BackfillInput> open(const std::string& path);
  BackfillInput(BackfillInput&& o) noexcept;
  BackfillInput& operator=(BackfillInput&&) = delete;
  ~BackfillInput();

  // The records' source: "stdin" or "file:PATH".
  const std::string& source() const { return source_; }
  // Hands every chunk to on_data, then calls on_end at the end of the input;
  // stops at the first status that is not OK (a read error: "read PATH") and
  // returns it.
  Status read_all(const std::function<Status(std::string_view)>& on_data, const std::function<Status()>& on_end);

 private:
  BackfillInput(int fd, std::string path);
  int fd_;
  std::string path_;
  std::string source_;
};

// Parses "lines", "syslog-octet", "syslog-lf". InvalidArgument (with the list of
// formats) otherwise; Unimplemented for formats this build does not parse yet.
Result<Framing> parse_input_format(const std::string& name);

// Reads path ("-" for stdin) and appends every message to stream. On a framing
// error, every message before it is kept (appended) and the error names the file
// and byte.
Status backfill_file(engine::Stream& stream, Framing framing, const std::string& path, size_t message_bytes_max,
                     BackfillStats& stats);

// `--format jsonl`: one JSON object per line (blank lines skipped), e.g. a
// Kubernetes audit log file. Each becomes a record holding the line's exact bytes
// (without surrounding whitespace and the line end) and the fields the HTTP
// listener extracts (ingest/json_events.h: fields.k8s for audit.k8s.io Events).
// A malformed or oversize line stops the backfill with an error naming the file,
// line and byte; the records before it are kept (appended), as for framing errors.
Status backfill_jsonl_file(engine::Stream& stream, const std::string& path, size_t event_bytes_max,
                           BackfillStats& stats);

}  // namespace logseal::ingest
