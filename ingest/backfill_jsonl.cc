// `logseal ingest --format jsonl` (backfill.h).
#include <chrono>

#include "ingest/backfill.h"
#include "ingest/json_events.h"

namespace logseal::ingest {

Status backfill_jsonl_file(engine::Stream& stream, const std::string& path, size_t event_bytes_max,
                           BackfillStats& stats) {
  LS_ASSIGN_OR_RETURN(BackfillInput in, BackfillInput::open(path));
  JsonEventParser parser(event_bytes_max);
  std::string line;  // one line, padded for simdjson
  std::string fields;
  uint64_t line_no = 0;
  uint64_t line_offset = 0;  // of the current line in the file
  uint64_t file_offset = 0;
  bool too_long = false;
  // A line over the limit is not buffered whole: a bounded buffer, then an error.
  const size_t line_bytes_max = event_bytes_max + 4096;
  auto finish_line = [&]() -> Status {
    ++line_no;
    std::string_view text = line;
    size_t b = 0;
    while (b < text.size() && (text[b] == ' ' || text[b] == '\t' || text[b] == '\r')) ++b;
    size_t e = text.size();
    while (e > b && (text[e - 1] == ' ' || text[e - 1] == '\t' || text[e - 1] == '\r')) --e;
    text = text.substr(b, e - b);
    auto where = [&](size_t at) {
      return path + ": line " + std::to_string(line_no) + " (byte " + std::to_string(line_offset + b + at) + "): ";
    };
    if (too_long) {
      return invalid_argument(where(0) + "line is over the limit of " + std::to_string(event_bytes_max) + " bytes");
    }
    if (text.empty()) return ok_status();
    line.reserve(line.size() + kJsonPaddingBytes);
    text = std::string_view(line).substr(b, e - b);
    JsonBodyError err;
    if (!parser.parse_event(text, false, fields, err)) return invalid_argument(where(err.offset_bytes) + err.reason);
    format::RecordView r;
    r.received_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    r.source = in.source();
    r.fields = fields;
    r.raw = text;
    auto idx = stream.append(r);
    if (!idx.ok()) return idx.status();
    stats.appended(idx.value(), text.size());
    return ok_status();
  };
  return in.read_all(
      [&](std::string_view data) {
        Status st;
        while (!data.empty() && st.ok()) {
          size_t nl = data.find('\n');
          std::string_view part = data.substr(0, nl);
          if (line.size() + part.size() > line_bytes_max) {
            too_long = true;
          } else if (!too_long) {
            line.append(part);
          }
          if (nl == std::string_view::npos) {
            file_offset += part.size();
            break;
          }
          st = finish_line();
          file_offset += part.size() + 1;
          line.clear();
          too_long = false;
          line_offset = file_offset;
          data.remove_prefix(nl + 1);
        }
        return st;
      },
      [&] { return !line.empty() || too_long ? finish_line() : ok_status(); });
}

}  // namespace logseal::ingest
