#include "ingest/pgaudit.h"

#include <charconv>

namespace logseal::ingest {
namespace {

constexpr const char* kFieldNames[] = {"audit_type", "statement_id", "substatement_id", "class",     "command",
                                       "object_type", "object_name", "statement",       "parameter", "rows"};

Status bad(size_t pos, size_t field, const std::string& why) {
  return invalid_argument("pgaudit: byte " + std::to_string(pos) + " (" + kFieldNames[field] + "): " + why);
}

// One CSV field as append_valid_csv writes it, starting at pos. On return pos is
// at the ',' / LF / end that follows it.
Status read_field(std::string_view s, size_t& pos, size_t field, PgText& out) {
  if (pos < s.size() && s[pos] == '"') {
    const size_t start = pos + 1;
    size_t i = start;
    bool doubled = false;
    for (;;) {
      size_t q = s.find('"', i);
      if (q == std::string_view::npos) return bad(pos, field, "quoted field not closed");
      if (q + 1 < s.size() && s[q + 1] == '"') {
        doubled = true;
        i = q + 2;
        continue;
      }
      std::string_view inner = s.substr(start, q - start);
      if (!doubled) {
        out = PgText::borrowed(inner);
      } else {
        std::string u;
        u.reserve(inner.size());
        for (size_t k = 0; k < inner.size(); ++k) {
          u.push_back(inner[k]);
          if (inner[k] == '"') ++k;  // the second quote of a pair
        }
        out = PgText::owned(std::move(u));
      }
      pos = q + 1;
      if (pos < s.size() && s[pos] != ',' && s[pos] != '\n') {
        return bad(pos, field, "expected ',' after quoted field");
      }
      return ok_status();
    }
  }
  const size_t start = pos;
  while (pos < s.size() && s[pos] != ',' && s[pos] != '\n') {
    if (s[pos] == '"') return bad(pos, field, "quote inside unquoted field");
    if (s[pos] == '\r') return bad(pos, field, "CR outside quotes");
    ++pos;
  }
  out = PgText::borrowed(s.substr(start, pos - start));
  return ok_status();
}

template <typename T>
Status read_number(std::string_view s, size_t& pos, size_t field, T& out) {
  const size_t start = pos;
  while (pos < s.size() && s[pos] != ',' && s[pos] != '\n') ++pos;
  std::string_view digits = s.substr(start, pos - start);
  const char* end = digits.data() + digits.size();
  auto [p, ec] = std::from_chars(digits.data(), end, out);
  if (digits.empty() || ec != std::errc() || p != end) return bad(start, field, "not a decimal number");
  return ok_status();
}

Status expect_comma(std::string_view s, size_t& pos, size_t next_field) {
  if (pos >= s.size() || s[pos] != ',') return bad(pos, next_field, "missing field");
  ++pos;
  return ok_status();
}

}  // namespace

Result<AuditRecord> parse_audit(std::string_view message, size_t* consumed_bytes) {
  if (!message.starts_with(kAuditTag)) return invalid_argument("pgaudit: byte 0: not an AUDIT record");
  AuditRecord r;
  size_t pos = kAuditTag.size();
  LS_RETURN_IF_ERROR(read_field(message, pos, 0, r.audit_type));
  if (r.audit_type.view() != "SESSION" && r.audit_type.view() != "OBJECT") {
    return bad(kAuditTag.size(), 0, "audit type is neither SESSION nor OBJECT");
  }
  LS_RETURN_IF_ERROR(expect_comma(message, pos, 1));
  LS_RETURN_IF_ERROR(read_number(message, pos, 1, r.statement_id));
  LS_RETURN_IF_ERROR(expect_comma(message, pos, 2));
  LS_RETURN_IF_ERROR(read_number(message, pos, 2, r.substatement_id));
  PgText* text_fields[] = {&r.class_name,  &r.command,   &r.object_type,
                           &r.object_name, &r.statement, &r.parameter};
  for (size_t k = 0; k < 6; ++k) {
    LS_RETURN_IF_ERROR(expect_comma(message, pos, 3 + k));
    LS_RETURN_IF_ERROR(read_field(message, pos, 3 + k, *text_fields[k]));
  }
  if (pos < message.size() && message[pos] == ',') {
    ++pos;
    LS_RETURN_IF_ERROR(read_number(message, pos, 9, r.rows));
    r.has_rows = true;
  }
  if (pos < message.size()) {
    // Only a LF can be here (read_field stops at ',' or LF; a ',' was taken as rows).
    if (consumed_bytes == nullptr) return bad(pos, r.has_rows ? 9 : 8, "text after the last field");
    if (r.has_rows && message[pos] == ',') return bad(pos, 9, "text after the last field");
  }
  if (consumed_bytes != nullptr) *consumed_bytes = pos;
  return r;
}

Result<std::vector<std::string>> split_audit_parameters(std::string_view parameter) {
  std::vector<std::string> values;
  if (parameter == "<none>") return values;
  if (parameter == "<not logged>") return failed_precondition("pgaudit: parameters not logged");
  size_t pos = 0;
  for (;;) {
    PgText v;
    LS_RETURN_IF_ERROR(read_field(parameter, pos, 8, v).with_context("parameter " + std::to_string(values.size() + 1)));
    if (pos < parameter.size() && parameter[pos] == '\n') {
      return invalid_argument("pgaudit: parameter list: byte " + std::to_string(pos) + ": LF outside quotes");
    }
    values.emplace_back(v.view());
    if (pos >= parameter.size()) return values;
    ++pos;  // the ','
  }
}

}  // namespace logseal::ingest
