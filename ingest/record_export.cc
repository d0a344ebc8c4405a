#include "ingest/record_export.h"

#include "engine/export.h"
#include "engine/reader.h"
#include "ingest/field_filter.h"

namespace logseal::ingest {

Result<ExportFormat> parse_export_format(const std::string& name) {
  if (name == "jsonl") return ExportFormat::kJsonl;
  if (name == "raw") return ExportFormat::kRaw;
  if (name == "lines") return ExportFormat::kLines;
  return invalid_argument("format must be jsonl, raw or lines, not '" + name + "'");
}

Status export_records(io::Env& env, const std::string& data_dir, const ExportSelection& sel,
                      const std::function<bool(std::string_view)>& sink, ExportStats* stats, size_t chunk_bytes) {
  ExportStats local;
  ExportStats& st = stats != nullptr ? *stats : local;
  st = ExportStats{};
  LS_ASSIGN_OR_RETURN(FieldFilter filter, FieldFilter::parse(sel.where));
  std::vector<std::string> streams = sel.streams;
  if (streams.empty()) {
    LS_ASSIGN_OR_RETURN(streams, engine::list_streams(env, data_dir));
  }
  std::string out;
  std::string fields_json;
  bool done = false;
  auto flush = [&] {
    if (out.empty() || st.stopped) return;
    st.bytes += out.size();
    if (!sink(out)) st.stopped = true;
    out.clear();
  };
  for (const auto& s : streams) {
    Status rs = engine::for_each_record(env, data_dir, s, [&](const engine::StoredRecord& r) {
      if (r.view.received_ns < sel.since_ns || r.view.received_ns >= sel.until_ns) return true;
      if (!filter.empty()) {
        fields_json.clear();
        engine::append_fields_json(r.view.fields, r.view.raw, fields_json);
        if (!filter.matches(fields_json)) return true;
      }
      switch (sel.format) {
        case ExportFormat::kRaw:
          out += std::to_string(r.view.raw.size());
          out += ' ';
          out += r.view.raw;
          break;
        case ExportFormat::kLines: {
          std::string_view raw = r.view.raw;
          if (!raw.empty() && raw.back() == '\n') raw.remove_suffix(1);
          out += raw;
          out += '\n';
          break;
        }
        case ExportFormat::kJsonl:
          out += engine::record_to_json(s, r);
          out += '\n';
          break;
      }
      st.records++;
      if (out.size() >= chunk_bytes) flush();
      if (st.stopped || (sel.limit != 0 && st.records >= sel.limit)) {
        done = true;
        return false;
      }
      return true;
    });
    if (!rs.ok()) {
      flush();
      return rs;
    }
    if (done) break;
  }
  flush();
  return ok_status();
}

}  // namespace logseal::ingest
