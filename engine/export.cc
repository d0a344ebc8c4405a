#include "engine/export.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace logseal::engine {

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    // ASCII fast path, 8 bytes at a time: most log text is ASCII.
    while (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = cp << 6 | (p[i + k] & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += len;
  }
  return true;
}

void append_json_escaped(std::string_view s, std::string& o) {
  o += '"';
  size_t run = 0;  // start of the current run of bytes that need no escape
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) continue;
    o.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\r': o += "\\r"; break;
      case '\t': o += "\\t"; break;
      case '\b': o += "\\b"; break;
      case '\f': o += "\\f"; break;
      default: {
        char b[8];
        std::snprintf(b, sizeof b, "\\u%04x", c);
        o += b;
      }
    }
  }
  o.append(s.data() + run, s.size() - run);
  o += '"';
}

std::string json_escape(std::string_view s) {
  std::string o;
  o.reserve(s.size() + 2);
  append_json_escaped(s, o);
  return o;
}

std::string rfc3339_ns(int64_t unix_ns) {
  time_t secs = static_cast<time_t>(unix_ns / 1000000000);
  long frac = static_cast<long>(unix_ns % 1000000000);
  if (frac < 0) {
    frac += 1000000000;
    secs -= 1;
  }
  struct tm tm;
  gmtime_r(&secs, &tm);
  char b[64];
  std::snprintf(b, sizeof b, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  return b;
}

Result<int64_t> parse_time_ns(const std::string& text) {
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos && text.size() < 12) {
    return static_cast<int64_t>(std::stoll(text)) * 1000000000;
  }
  int y, mo, d, h, mi, s;
  int used = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &used) != 6 || used != 19) {
    return invalid_argument("time '" + text + "' is not RFC 3339 (2026-11-26T04:52:17Z) or unix seconds");
  }
  struct tm tm = {};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  int64_t secs = static_cast<int64_t>(timegm(&tm));
  int64_t frac_ns = 0;
  size_t p = 19;
  if (p < text.size() && text[p] == '.') {
    ++p;
    int64_t scale = 100000000;
    while (p < text.size() && text[p] >= '0' && text[p] <= '9') {
      frac_ns += (text[p] - '0') * scale;
      scale /= 10;
      ++p;
    }
  }
  if (p < text.size() && (text[p] == 'Z' || text[p] == 'z') && p + 1 == text.size()) {
    // UTC
  } else if (p + 6 == text.size() && (text[p] == '+' || text[p] == '-') && text[p + 3] == ':') {
    int oh = std::atoi(text.substr(p + 1, 2).c_str());
    int om = std::atoi(text.substr(p + 4, 2).c_str());
    int64_t off = (oh * 3600 + om * 60) * (text[p] == '+' ? 1 : -1);
    secs -= off;
  } else {
    return invalid_argument("time '" + text + "' needs a zone: Z or +hh:mm");
  }
  // Unix nanoseconds in an int64 span 1677..2262; beyond, the product wraps.
  if (secs > INT64_MAX / 1000000000 - 1 || secs < INT64_MIN / 1000000000 + 1) {
    return invalid_argument("time '" + text + "' is out of range (1678..2262)");
  }
  return secs * 1000000000 + frac_ns;
}

// Like append_json_escaped, but bytes that are not valid UTF-8 become U+FFFD, so
// the JSON text is always valid (the raw record keeps the original bytes).
void append_json_escaped_lossy(std::string_view s, std::string& o) {
  if (valid_utf8(s)) {
    append_json_escaped(s, o);
    return;
  }
  std::string clean;
  clean.reserve(s.size() + 8);
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (len != 0 && i + len <= s.size() && valid_utf8(s.substr(i, len))) {
      clean.append(s.data() + i, len);
      i += len;
    } else {
      clean += "\xEF\xBF\xBD";
      ++i;
    }
  }
  append_json_escaped(clean, o);
}

void append_fields_json(std::string_view fields, std::string_view raw, std::string& o) {
  if (fields.empty()) {
    o += "{}";
    return;
  }
  if (static_cast<uint8_t>(fields[0]) != format::kFieldsSyslogView) {
    o += fields;
    return;
  }
  auto v = format::decode_syslog_view(as_bytes(fields), raw.size());
  if (!v.ok()) {
    o += "{}";
    return;
  }
  o += "{\"syslog\":{\"facility\":" + std::to_string(v->facility) + ",\"severity\":" + std::to_string(v->severity);
  for (size_t i = 0; i < format::kSyslogViewFields; ++i) {
    const auto& sp = v->spans[i];
    bool is_msg = i + 1 == format::kSyslogViewFields;
    if (sp.length == 0 && !is_msg) continue;
    o += ",\"";
    o += format::kSyslogViewNames[i];
    o += "\":";
    append_json_escaped_lossy(raw.substr(sp.offset, sp.length), o);
  }
  o += "}}";
}

std::string record_to_json(const std::string& stream, const StoredRecord& r) {
  std::string o = "{\"stream\":" + json_escape(stream) + ",\"index\":" + std::to_string(r.index) +
                  ",\"received\":" + json_escape(rfc3339_ns(r.view.received_ns)) +
                  ",\"source\":" + json_escape(r.view.source);
  if (valid_utf8(r.view.raw)) {
    o += ",\"raw\":" + json_escape(r.view.raw);
  } else {
    o += ",\"raw_base64\":\"" +
         base64_encode({reinterpret_cast<const uint8_t*>(r.view.raw.data()), r.view.raw.size()}) + "\"";
  }
  if (r.view.flags & format::kRecordFlagUnparsed) o += ",\"unparsed\":true";
  if (r.view.flags & format::kRecordFlagTruncated) o += ",\"truncated\":true";
  o += ",\"fields\":";
  append_fields_json(r.view.fields, r.view.raw, o);
  o += "}";
  return o;
}

}  // namespace logseal::engine
