#include "ingest/json_events.h"

#include <simdjson.h>

#include <cstdio>

#include "engine/export.h"

namespace logseal::ingest {

static_assert(kJsonPaddingBytes >= simdjson::SIMDJSON_PADDING, "callers pad for simdjson");

namespace od = simdjson::ondemand;
namespace dom = simdjson::dom;

namespace {

std::string_view trim_ws(std::string_view s) {
  size_t b = 0;
  while (b < s.size() && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r' || s[b] == '\n')) ++b;
  size_t e = s.size();
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\n')) --e;
  return s.substr(b, e - b);
}

// Offset of the first byte that does not start a valid UTF-8 sequence (RFC 3629:
// no overlongs, no surrogates, at most U+10FFFF); s.size() when all is valid.
// simdjson reports invalid UTF-8 for the whole input without a position.
size_t first_invalid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return i;
    uint32_t cp = c & (len == 2 ? 0x1f : len == 3 ? 0x0f : 0x07);
    for (size_t k = 1; k < len; ++k) {
      auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return i;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
      return i;
    }
    i += len;
  }
  return s.size();
}

// ---- field extraction (from a validated DOM element) ----

void add_key(std::string_view key, bool& first, std::string& o) {
  if (!first) o += ',';
  first = false;
  engine::append_json_escaped(key, o);
  o += ':';
}

// Copies member `key` of obj when it is a string.
void copy_string(dom::object obj, std::string_view key, bool& first, std::string& o) {
  std::string_view v;
  if (obj[key].get_string().get(v) == simdjson::SUCCESS) {
    add_key(key, first, o);
    engine::append_json_escaped(v, o);
  }
}

// Copies member `key` when it is an array of strings (other elements are left out).
void copy_string_array(dom::object obj, std::string_view key, bool& first, std::string& o) {
  dom::array arr;
  if (obj[key].get_array().get(arr) != simdjson::SUCCESS) return;
  add_key(key, first, o);
  o += '[';
  bool f = true;
  for (dom::element el : arr) {
    std::string_view v;
    if (el.get_string().get(v) != simdjson::SUCCESS) continue;
    if (!f) o += ',';
    f = false;
    engine::append_json_escaped(v, o);
  }
  o += ']';
}

// {"username","uid","groups"} of a user-like member.
void copy_user(dom::object obj, std::string_view key, bool& first, std::string& o) {
  dom::object u;
  if (obj[key].get_object().get(u) != simdjson::SUCCESS) return;
  add_key(key, first, o);
  o += '{';
  bool f = true;
  copy_string(u, "username", f, o);
  copy_string(u, "uid", f, o);
  copy_string_array(u, "groups", f, o);
  o += '}';
}

void k8s_fields(dom::object ev, std::string& o) {
  o += "{\"k8s\":{";
  bool first = true;
  for (std::string_view k : {"auditID", "stage", "verb", "level", "requestURI"}) copy_string(ev, k, first, o);
  copy_user(ev, "user", first, o);
  copy_user(ev, "impersonatedUser", first, o);
  copy_string_array(ev, "sourceIPs", first, o);
  copy_string(ev, "userAgent", first, o);
  dom::object ref;
  if (ev["objectRef"].get_object().get(ref) == simdjson::SUCCESS) {
    add_key("objectRef", first, o);
    o += '{';
    bool f = true;
    for (std::string_view k : {"resource", "namespace", "name", "apiGroup", "apiVersion", "subresource"}) {
      copy_string(ref, k, f, o);
    }
    o += '}';
  }
  dom::object status;
  int64_t code = 0;
  if (ev["responseStatus"].get_object().get(status) == simdjson::SUCCESS &&
      status["code"].get_int64().get(code) == simdjson::SUCCESS) {
    add_key("responseStatus", first, o);
    o += "{\"code\":" + std::to_string(code) + "}";
  }
  copy_string(ev, "requestReceivedTimestamp", first, o);
  copy_string(ev, "stageTimestamp", first, o);
  o += "}}";
}

bool is_k8s_event(dom::object ev) {
  std::string_view kind, api;
  return ev["kind"].get_string().get(kind) == simdjson::SUCCESS && kind == "Event" &&
         ev["apiVersion"].get_string().get(api) == simdjson::SUCCESS && api.starts_with("audit.k8s.io/");
}

void generic_fields(dom::object ev, std::string& o) {
  o += "{\"event\":{";
  bool first = true;
  size_t n = 0;
  for (dom::key_value_pair kv : ev) {
    if (n == kEventFieldsMax) break;
    dom::element v = kv.value;
    switch (v.type()) {
      case dom::element_type::STRING: {
        std::string_view s = v.get_string().value_unsafe();
        if (s.size() > kEventStringBytesMax) continue;
        add_key(kv.key, first, o);
        engine::append_json_escaped(s, o);
        break;
      }
      case dom::element_type::INT64: add_key(kv.key, first, o); o += std::to_string(v.get_int64().value_unsafe()); break;
      case dom::element_type::UINT64:
        add_key(kv.key, first, o);
        o += std::to_string(v.get_uint64().value_unsafe());
        break;
      case dom::element_type::DOUBLE: {
        char b[40];
        std::snprintf(b, sizeof b, "%.17g", v.get_double().value_unsafe());
        add_key(kv.key, first, o);
        o += b;
        break;
      }
      case dom::element_type::BOOL:
        add_key(kv.key, first, o);
        o += v.get_bool().value_unsafe() ? "true" : "false";
        break;
      case dom::element_type::NULL_VALUE: add_key(kv.key, first, o); o += "null"; break;
      default: continue;  // objects and arrays stay in the raw bytes only
    }
    ++n;
  }
  o += "}}";
}

}  // namespace

JsonBodyForm body_form_from_content_type(std::string_view ct) {
  ct = trim_ws(ct.substr(0, ct.find(';')));
  auto eq = [&](std::string_view want) {
    if (ct.size() != want.size()) return false;
    for (size_t i = 0; i < ct.size(); ++i) {
      char c = ct[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if (c != want[i]) return false;
    }
    return true;
  };
  if (eq("application/json")) return JsonBodyForm::kJson;
  if (eq("application/x-ndjson") || eq("application/jsonl") || eq("application/jsonlines") ||
      eq("application/x-jsonlines")) {
    return JsonBodyForm::kNdjson;
  }
  return JsonBodyForm::kAuto;
}

struct JsonEventParser::Impl {
  dom::parser dom_parser;
  od::parser od_parser;
  bool dom_ready = false;

  // Sized once for the largest event; the parser's buffers are reused.
  bool ensure_dom(size_t event_bytes_max) {
    if (!dom_ready) dom_ready = !dom_parser.allocate(std::max<size_t>(event_bytes_max, 4096), kJsonDepthMax);
    return dom_ready;
  }

  // Where in text simdjson's on-demand walk stops: the byte offset of the first
  // problem. DOM parsing (the authority on validity) reports no position, so
  // this runs only on the error path.
  size_t locate(std::string_view text, size_t padded_bytes) {
    od::document doc;
    if (od_parser.iterate(simdjson::padded_string_view(text.data(), text.size(), padded_bytes)).get(doc)) return 0;
    auto where = [&]() -> size_t {
      const char* p = nullptr;
      if (doc.current_location().get(p) != simdjson::SUCCESS || p == nullptr) return text.size();
      return static_cast<size_t>(p - text.data());
    };
    od::value root;
    if (doc.get_value().get(root)) return where();
    if (walk(root, 0)) return where();
    // The walk found nothing (it is more lenient than the DOM parser): trailing
    // content or a problem it skipped; the location is as good as it gets.
    return where();
  }

  // Visits every value; true on the first error.
  bool walk(od::value v, size_t depth) {
    if (depth > kJsonDepthMax) return true;
    od::json_type t;
    if (v.type().get(t)) return true;
    switch (t) {
      case od::json_type::object: {
        od::object obj;
        if (v.get_object().get(obj)) return true;
        for (auto field : obj) {
          od::field f;
          if (std::move(field).get(f)) return true;
          std::string_view key;
          if (f.unescaped_key().get(key)) return true;
          if (walk(f.value(), depth + 1)) return true;
        }
        return false;
      }
      case od::json_type::array: {
        od::array arr;
        if (v.get_array().get(arr)) return true;
        for (auto el : arr) {
          od::value e;
          if (el.get(e)) return true;
          if (walk(e, depth + 1)) return true;
        }
        return false;
      }
      case od::json_type::string: {
        std::string_view s;
        return v.get_string().get(s) != simdjson::SUCCESS;
      }
      case od::json_type::number: {
        od::number n;
        return v.get_number().get(n) != simdjson::SUCCESS;
      }
      case od::json_type::boolean: {
        bool b;
        return v.get_bool().get(b) != simdjson::SUCCESS;
      }
      case od::json_type::null: {
        bool is_null = false;
        return v.is_null().get(is_null) != simdjson::SUCCESS || !is_null;
      }
    }
    return true;
  }
};

JsonEventParser::JsonEventParser(size_t event_bytes_max) : impl_(new Impl()), event_bytes_max_(event_bytes_max) {}
JsonEventParser::~JsonEventParser() = default;

namespace {

bool fail(JsonBodyError& error, JsonBodyError::Kind kind, std::string reason, size_t offset) {
  error.kind = kind;
  error.reason = std::move(reason);
  error.offset_bytes = offset;
  return false;
}

}  // namespace

bool JsonEventParser::parse_event(std::string_view text, bool force_k8s, std::string& fields, JsonBodyError& error) {
  Impl& m = *impl_;
  fields.clear();
  if (text.size() > event_bytes_max_) {
    return fail(error, JsonBodyError::Kind::kTooLarge,
                "event is " + std::to_string(text.size()) + " bytes, over the limit of " +
                    std::to_string(event_bytes_max_),
                0);
  }
  if (!m.ensure_dom(event_bytes_max_)) return fail(error, JsonBodyError::Kind::kTooLarge, "out of memory for the JSON parser", 0);
  dom::element el;
  auto err = m.dom_parser.parse(text.data(), text.size(), false).get(el);
  if (err) {
    size_t at = err == simdjson::UTF8_ERROR ? first_invalid_utf8(text) : m.locate(text, text.size() + kJsonPaddingBytes);
    return fail(error, JsonBodyError::Kind::kMalformed, std::string("malformed JSON: ") + simdjson::error_message(err),
                at);
  }
  dom::object obj;
  if (el.get_object().get(obj)) return fail(error, JsonBodyError::Kind::kMalformed, "an event must be a JSON object", 0);
  fields.reserve(256);
  if (force_k8s || is_k8s_event(obj)) {
    k8s_fields(obj, fields);
  } else {
    generic_fields(obj, fields);
  }
  return true;
}

bool JsonEventParser::parse_body(std::string_view body, JsonBodyForm form, bool k8s_list, std::vector<JsonEvent>& events,
                                 JsonBodyError& error) {
  events.clear();
  Impl& m = *impl_;
  auto failed = [&](JsonBodyError::Kind kind, std::string reason, size_t offset) {
    events.clear();
    return fail(error, kind, std::move(reason), offset);
  };
  // One event at body[offset, offset + size): validate, extract, keep.
  auto take = [&](size_t offset, size_t size, bool force_k8s) {
    JsonEvent ev;
    ev.offset_bytes = offset;
    ev.size_bytes = size;
    JsonBodyError e;
    if (!parse_event(body.substr(offset, size), force_k8s, ev.fields, e)) {
      std::string n = "event " + std::to_string(events.size() + 1) + ": ";
      return failed(e.kind, n + e.reason, offset + e.offset_bytes);
    }
    events.push_back(std::move(ev));
    return true;
  };
  std::string_view trimmed = trim_ws(body);
  if (trimmed.empty()) return failed(JsonBodyError::Kind::kMalformed, "empty body: no events", 0);
  size_t start = static_cast<size_t>(trimmed.data() - body.data());
  if (k8s_list) form = JsonBodyForm::kJson;
  if (form == JsonBodyForm::kAuto) form = trimmed[0] == '[' || trimmed[0] != '{' ? JsonBodyForm::kJson : JsonBodyForm::kAuto;

  if (form == JsonBodyForm::kNdjson) {
    size_t pos = 0;
    while (pos < body.size()) {
      size_t nl = body.find('\n', pos);
      size_t end = nl == std::string_view::npos ? body.size() : nl;
      std::string_view line = trim_ws(body.substr(pos, end - pos));
      if (!line.empty()) {
        size_t off = static_cast<size_t>(line.data() - body.data());
        if (line[0] != '{') return failed(JsonBodyError::Kind::kMalformed, "NDJSON: each line must be one JSON object", off);
        if (!take(off, line.size(), false)) return false;
      }
      pos = end + 1;
    }
    return true;
  }

  // One JSON value (kJson), or in kAuto a body starting with '{' that may turn out
  // to be NDJSON. The on-demand parser walks the outer structure (document,
  // array, EventList) and hands each event's exact span to parse_event(); values
  // it skips (EventList metadata) are validated the same way.
  od::document doc;
  auto err = m.od_parser.iterate(simdjson::padded_string_view(body.data(), body.size(), body.size() + kJsonPaddingBytes))
                 .get(doc);
  auto od_fail = [&](simdjson::error_code e) {
    const char* p = nullptr;
    size_t at = doc.current_location().get(p) == simdjson::SUCCESS && p != nullptr
                    ? static_cast<size_t>(p - body.data())
                    : m.locate(body, body.size() + kJsonPaddingBytes);
    return failed(JsonBodyError::Kind::kMalformed, std::string("malformed JSON: ") + simdjson::error_message(e), at);
  };
  if (err) {
    size_t at = err == simdjson::UTF8_ERROR ? first_invalid_utf8(body) : 0;
    return failed(JsonBodyError::Kind::kMalformed, std::string("malformed JSON: ") + simdjson::error_message(err), at);
  }
  auto span_of = [&](std::string_view raw) { return static_cast<size_t>(raw.data() - body.data()); };
  // Validates a value that is not an event (skipped, but the body must be valid).
  auto check_other = [&](od::value v) -> bool {
    od::json_type t;
    if (auto e = v.type().get(t)) return od_fail(e);
    std::string_view raw;
    simdjson::error_code e = simdjson::SUCCESS;
    if (t == od::json_type::object) {
      od::object o;
      e = v.get_object().get(o);
      if (!e) e = o.raw_json().get(raw);
    } else if (t == od::json_type::array) {
      od::array a;
      e = v.get_array().get(a);
      if (!e) e = a.raw_json().get(raw);
    } else {
      raw = trim_ws(v.raw_json_token());
    }
    if (e) return od_fail(e);
    raw = trim_ws(raw);
    if (!m.ensure_dom(event_bytes_max_)) return failed(JsonBodyError::Kind::kTooLarge, "out of memory for the JSON parser", 0);
    dom::element el;
    if (auto de = m.dom_parser.parse(raw.data(), raw.size(), false).get(el)) {
      size_t off = span_of(raw);
      return failed(JsonBodyError::Kind::kMalformed, std::string("malformed JSON: ") + simdjson::error_message(de),
                    off + m.locate(raw, body.size() - off + kJsonPaddingBytes));
    }
    return true;
  };
  auto take_object = [&](od::value v, bool force_k8s) -> bool {
    od::json_type t;
    if (auto e = v.type().get(t)) return od_fail(e);
    if (t != od::json_type::object) {
      return failed(JsonBodyError::Kind::kMalformed, "event " + std::to_string(events.size() + 1) + " is not a JSON object",
                    span_of(v.raw_json_token()));
    }
    od::object o;
    std::string_view raw;
    if (auto e = v.get_object().get(o)) return od_fail(e);
    if (auto e = o.raw_json().get(raw)) return od_fail(e);
    raw = trim_ws(raw);  // raw_json() runs up to the next token
    return take(span_of(raw), raw.size(), force_k8s);
  };
  auto location = [&]() -> size_t {
    const char* p = nullptr;
    if (doc.current_location().get(p) != simdjson::SUCCESS || p == nullptr) return body.size();
    return static_cast<size_t>(p - body.data());
  };
  auto at_end = [&]() -> bool {
    // Anything but whitespace after the value is an error in kJson.
    const char* p = nullptr;
    if (doc.current_location().get(p) != simdjson::SUCCESS || p == nullptr) return true;
    return trim_ws(body.substr(static_cast<size_t>(p - body.data()))).empty();
  };

  od::json_type root_type;
  if (auto e = doc.type().get(root_type)) return od_fail(e);
  if (root_type != od::json_type::object && root_type != od::json_type::array) {
    return failed(JsonBodyError::Kind::kMalformed,
                  k8s_list ? "expected an audit.k8s.io EventList object"
                           : "expected a JSON object, an array of objects, or NDJSON",
                  start);
  }
  od::value root;
  if (auto e = doc.get_value().get(root)) return od_fail(e);

  if (k8s_list) {
    if (root_type != od::json_type::object) {
      return failed(JsonBodyError::Kind::kMalformed, "expected an audit.k8s.io EventList object", start);
    }
    od::object obj;
    if (auto e = root.get_object().get(obj)) return od_fail(e);
    std::string kind, api;
    bool have_items = false;
    for (auto field : obj) {
      od::field f;
      if (auto e = std::move(field).get(f)) return od_fail(e);
      std::string_view key;
      if (auto e = f.unescaped_key().get(key)) return od_fail(e);
      od::value v = f.value();
      if (key == "items") {
        od::array arr;
        if (auto e = v.get_array().get(arr)) return od_fail(e);
        have_items = true;
        for (auto el : arr) {
          od::value ev;
          if (auto e = el.get(ev)) return od_fail(e);
          if (!take_object(ev, true)) return false;
        }
      } else if (key == "kind" || key == "apiVersion") {
        std::string_view s;
        if (auto e = v.get_string().get(s)) return od_fail(e);
        (key == "kind" ? kind : api) = std::string(s);
      } else if (!check_other(v)) {
        return false;
      }
    }
    if (!at_end()) return failed(JsonBodyError::Kind::kMalformed, "malformed JSON: content after the EventList", 0);
    if (!api.starts_with("audit.k8s.io/")) {
      return failed(JsonBodyError::Kind::kMalformed,
                    "apiVersion is '" + api + "', expected audit.k8s.io/v1 (an audit EventList)", start);
    }
    if (kind == "Event") {
      events.clear();
      return take(start, trimmed.size(), true);
    }
    if (kind != "EventList" || !have_items) {
      return failed(JsonBodyError::Kind::kMalformed, "expected kind EventList with items (got kind '" + kind + "')",
                    start);
    }
    return true;
  }

  if (root_type == od::json_type::array) {
    od::array arr;
    if (auto e = root.get_array().get(arr)) return od_fail(e);
    for (auto el : arr) {
      od::value ev;
      if (auto e = el.get(ev)) return od_fail(e);
      if (!take_object(ev, false)) return false;
    }
    if (!at_end()) {
      return failed(JsonBodyError::Kind::kMalformed, "malformed JSON: content after the array", location());
    }
    return true;
  }
  if (root_type != od::json_type::object) {
    return failed(JsonBodyError::Kind::kMalformed, "expected a JSON object, an array of objects, or NDJSON", start);
  }
  // A body that starts with '{': one object, or (kAuto) NDJSON when more follows
  // the first object.
  od::object obj;
  std::string_view raw;
  if (auto e = root.get_object().get(obj)) return od_fail(e);
  if (auto e = obj.raw_json().get(raw)) return od_fail(e);
  raw = trim_ws(raw);
  if (at_end()) return take(span_of(raw), raw.size(), false);
  if (form == JsonBodyForm::kAuto) return parse_body(body, JsonBodyForm::kNdjson, false, events, error);
  return failed(JsonBodyError::Kind::kMalformed,
                "malformed JSON: content after the object (send NDJSON as application/x-ndjson)", location());
}

}  // namespace logseal::ingest
