// libFuzzer target for the JSON audit event parser (ingest/json_events.h):
// arbitrary bytes as a body in every form, on both endpoints, and as a jsonl line.
// Nothing may crash, hang or read out of bounds; on success every event span lies
// inside the body and is one object, and every fields text is a JSON object that
// simdjson accepts; on failure the offset lies inside the body.
//
// Build: cmake -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang -DLOGSEAL_FUZZ=ON;
// run: bin/json_events_fuzz [DIR].
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/assert.h"
#include "ingest/json_events.h"

using namespace logseal::ingest;

namespace {

void check_fields(const std::string& fields) {
  LS_ASSERT(!fields.empty() && fields[0] == '{');
  static simdjson::dom::parser parser;
  simdjson::dom::element el;
  LS_ASSERT(parser.parse(fields).get(el) == simdjson::SUCCESS);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static JsonEventParser parser(1 << 16);
  std::string body(reinterpret_cast<const char*>(data), size);
  body.reserve(size + kJsonPaddingBytes);
  std::vector<JsonEvent> events;
  for (JsonBodyForm form : {JsonBodyForm::kAuto, JsonBodyForm::kJson, JsonBodyForm::kNdjson}) {
    for (bool k8s : {false, true}) {
      JsonBodyError err;
      if (parser.parse_body(body, form, k8s, events, err)) {
        for (const JsonEvent& e : events) {
          LS_ASSERT(e.offset_bytes + e.size_bytes <= size);
          LS_ASSERT(e.size_bytes >= 2 && body[e.offset_bytes] == '{' && body[e.offset_bytes + e.size_bytes - 1] == '}');
          check_fields(e.fields);
        }
      } else {
        LS_ASSERT(events.empty());
        LS_ASSERT(err.offset_bytes <= size);
        LS_ASSERT(!err.reason.empty());
      }
    }
  }
  std::string fields;
  JsonBodyError err;
  if (parser.parse_event(body, false, fields, err)) {
    check_fields(fields);
  } else {
    LS_ASSERT(err.offset_bytes <= size);
  }
  return 0;
}
