#include "ingest/field_filter.h"

#include <simdjson.h>

namespace logseal::ingest {

struct FieldFilter::Parser {
  simdjson::dom::parser dom;
  simdjson::padded_string buf;
};

FieldFilter::FieldFilter() : parser_(std::make_unique<Parser>()) {}
FieldFilter::~FieldFilter() = default;
FieldFilter::FieldFilter(FieldFilter&&) noexcept = default;
FieldFilter& FieldFilter::operator=(FieldFilter&&) noexcept = default;

Result<FieldFilter> FieldFilter::parse(const std::vector<std::string>& conditions) {
  FieldFilter f;
  for (const std::string& text : conditions) {
    size_t eq = text.find('=');
    if (eq == std::string::npos || eq == 0) {
      return invalid_argument("--where '" + text + "': expected FIELD=VALUE or FIELD~=VALUE (e.g. pgaudit.class=WRITE)");
    }
    Condition c;
    std::string path = text.substr(0, eq);
    if (path.back() == '~') {
      c.substring = true;
      path.pop_back();
    }
    c.value = text.substr(eq + 1);
    size_t start = 0;
    while (true) {
      size_t dot = path.find('.', start);
      std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      if (part.empty()) return invalid_argument("--where '" + text + "': empty part in field path '" + path + "'");
      c.path.push_back(part);
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    f.roots_.push_back(c.path[0]);
    f.conditions_.push_back(std::move(c));
  }
  return f;
}

namespace {

bool value_matches(simdjson::dom::element v, const std::string& want, bool substring) {
  // Named results throughout: simdjson's temporaries trip GCC's dangling-pointer check.
  std::string text;
  std::string_view s;
  int64_t i = 0;
  uint64_t u = 0;
  bool b = false;
  simdjson::dom::array arr;
  if (v.get(s) == simdjson::SUCCESS) {
    return substring ? s.find(want) != std::string_view::npos : s == want;
  } else if (v.get(arr) == simdjson::SUCCESS) {
    for (simdjson::dom::element e : arr) {
      if (value_matches(e, want, substring)) return true;
    }
    return false;
  } else if (v.is_int64() && v.get(i) == simdjson::SUCCESS) {
    text = std::to_string(i);
  } else if (v.is_uint64() && v.get(u) == simdjson::SUCCESS) {
    text = std::to_string(u);
  } else if (v.get(b) == simdjson::SUCCESS) {
    text = b ? "true" : "false";
  } else if (v.is_double()) {
    text = simdjson::to_string(v);
  } else {
    return false;  // objects and null
  }
  return substring ? text.find(want) != std::string::npos : text == want;
}

}  // namespace

bool FieldFilter::matches(std::string_view fields_json) {
  if (conditions_.empty()) return true;
  // Cheap rejection before parsing: each root key must appear in the text.
  for (const std::string& r : roots_) {
    if (fields_json.find("\"" + r + "\"") == std::string_view::npos) return false;
  }
  parser_->buf = simdjson::padded_string(fields_json);
  simdjson::dom::element root;
  if (parser_->dom.parse(parser_->buf).get(root) != simdjson::SUCCESS) return false;
  for (const Condition& c : conditions_) {
    simdjson::dom::element v = root;
    for (const std::string& part : c.path) {
      simdjson::dom::object obj;
      if (v.get(obj) != simdjson::SUCCESS) return false;
      if (obj[part].get(v) != simdjson::SUCCESS) return false;
    }
    if (!value_matches(v, c.value, c.substring)) return false;
  }
  return true;
}

}  // namespace logseal::ingest
