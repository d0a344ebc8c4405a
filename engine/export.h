// Formatting records for `logseal export` and the read API: raw octet-counted
// frames, lines, and JSON lines (DESIGN.md gives the JSON shape).
#pragma once

#include <string>
#include <string_view>

#include "engine/reader.h"

namespace logseal::engine {

bool valid_utf8(std::string_view s);
std::string json_escape(std::string_view s);  // with the quotes
void append_json_escaped(std::string_view s, std::string& out);  // appends, with the quotes
std::string rfc3339_ns(int64_t unix_ns);       // 2026-11-26T04:52:17.123456789Z
// Parses RFC 3339 (Z or +hh:mm offset, optional fraction) or plain unix seconds.
Result<int64_t> parse_time_ns(const std::string& text);

void append_json_escaped_lossy(std::string_view s, std::string& out);  // invalid UTF-8 -> U+FFFD
// A record's fields as a JSON object: {} when empty, the JSON text as stored, or a
// syslog view rendered as {"syslog":{"facility":..,"severity":..,"timestamp":..,...,"msg":..}}.
void append_fields_json(std::string_view fields, std::string_view raw, std::string& out);

// {"stream","index","received","source","raw"|"raw_base64","flags","fields"}
std::string record_to_json(const std::string& stream, const StoredRecord& r);

}  // namespace logseal::engine
