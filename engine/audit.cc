#include "engine/audit.h"

#include <chrono>

#include "engine/export.h"

namespace logseal::engine {

Result<uint64_t> append_audit(Store& store, std::string_view action, std::string_view members) {
  int64_t now =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::string json = "{\"audit\":{\"action\":" + json_escape(action) + ",\"time_ns\":" + std::to_string(now);
  if (!members.empty()) {
    json += ",";
    json += members;
  }
  json += "}}";
  LS_ASSIGN_OR_RETURN(Stream * stream, store.stream(kAuditStream));
  format::RecordView r;
  r.received_ns = now;
  r.source = "logseal:audit";
  r.fields = json;
  r.raw = json;
  return stream->append(r);
}

}  // namespace logseal::engine
