// Selecting and formatting records for `logseal export` and the read API
// (GET /v1/records): one loop, so both print exactly the same bytes for the same
// selection. Reads the data directory like the verifier (engine/reader.h): on a
// copy, or live under a running logseald.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "io/env.h"

namespace logseal::ingest {

enum class ExportFormat { kJsonl, kRaw, kLines };
// "jsonl", "raw", "lines"; InvalidArgument otherwise.
Result<ExportFormat> parse_export_format(const std::string& name);

struct ExportSelection {
  std::vector<std::string> streams;  // in this order; empty: every stream of the directory
  int64_t since_ns = INT64_MIN;      // received at or after
  int64_t until_ns = INT64_MAX;      // received before
  std::vector<std::string> where;    // FieldFilter conditions (ingest/field_filter.h), all must hold
  uint64_t limit = 0;                // at most this many records (0: no limit)
  ExportFormat format = ExportFormat::kJsonl;
};

struct ExportStats {
  uint64_t records = 0;  // records written
  uint64_t bytes = 0;
  bool stopped = false;  // the sink refused more (a client gone)
};

// Runs the selection and hands the output to sink in pieces of about
// chunk_bytes (the last one shorter; nothing for an empty result), so memory
// stays bounded whatever the size of the stream. sink returns false to stop
// (stats.stopped). InvalidArgument for a bad where condition, NotFound for a
// stream that does not exist, and the reader's errors.
Status export_records(io::Env& env, const std::string& data_dir, const ExportSelection& selection,
                      const std::function<bool(std::string_view)>& sink, ExportStats* stats = nullptr,
                      size_t chunk_bytes = 1 << 20);

}  // namespace logseal::ingest
