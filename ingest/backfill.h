// Backfill: seals existing logs (files or stdin) into a stream without the
// daemon (`logseal ingest`). Each message becomes one record holding its exact
// bytes; messages over the size limit are cut and flagged.
#pragma once

#include <cstdint>
#include <string>

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
