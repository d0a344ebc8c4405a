#include "ingest/syslog_parse.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstdint>
#include <cstring>

#include "engine/export.h"

namespace logseal::ingest {

namespace {

using Kind = SyslogFields::Kind;

constexpr size_t kNpos = std::string_view::npos;
constexpr int kPriMax = 191;  // facility 23 (local7) * 8 + severity 7 (debug)
// RFC 5424 §6 field maxima. A longer field means the bytes are not an RFC 5424
// header; the message then falls back to RFC 3164 handling, losing nothing.
constexpr size_t kHostnameBytesMax = 255;
constexpr size_t kAppNameBytesMax = 48;
constexpr size_t kProcidBytesMax = 128;
constexpr size_t kMsgidBytesMax = 32;
constexpr size_t kSdNameBytesMax = 32;
// "2026-11-26T03:29:34.123456789+00:00" is 35; RFC 5424 itself allows 32.
constexpr size_t kTimestampBytesMax = 40;
// A "tag" longer than this is a word of text, not a program name (RFC 3164
// allows 32; rsyslog accepts more, real tags such as "postfix/smtpd" are short).
constexpr size_t kTagBytesMax = 128;
constexpr size_t kRfc3164TimestampBytes = 15;  // "Mmm dd hh:mm:ss"
constexpr size_t kFractionDigitsMax = 9;
constexpr std::string_view kMonths = "JanFebMarAprMayJunJulAugSepOctNovDec";
constexpr std::string_view kBom = "\xEF\xBB\xBF";
constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_alnum(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// NILVALUE (RFC 5424 §6).
bool is_nil(std::string_view field) { return field.size() == 1 && field[0] == '-'; }

// A header or tag byte: anything but SP and control characters. Non-ASCII is
// let through (RFC 5424 says PRINTUSASCII, but refusing a UTF-8 hostname would
// only push the whole header into msg and help nobody).
bool is_word_byte(char c) {
  auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u != 0x7f;
}

// Drops the frame terminator: trailing NULs (some UDP senders), then one LF
// (rsyslog's RFC 5424 template puts one inside each octet-counted frame), then
// the CR of a CR LF. A lone trailing CR stays: it is content.
std::string_view strip_terminator(std::string_view s) {
  while (!s.empty() && s.back() == '\0') s.remove_suffix(1);
  if (!s.empty() && s.back() == '\n') {
    s.remove_suffix(1);
    if (!s.empty() && s.back() == '\r') s.remove_suffix(1);
  }
  return s;
}

// "<" 1*3DIGIT ">" with a value 0..191. Returns the bytes it spans, 0 if absent.
size_t parse_pri(std::string_view s, int& pri) {
  if (s.size() < 3 || s[0] != '<') return 0;
  int value = 0;
  size_t i = 1;
  while (i < s.size() && i <= 3 && is_digit(s[i])) {
    value = value * 10 + (s[i] - '0');
    ++i;
  }
  if (i == 1 || i >= s.size() || s[i] != '>' || value > kPriMax) return 0;
  pri = value;
  return i + 1;
}

// Matches `pattern` at the start of s, where 'd' is any digit and every other
// pattern byte must match exactly.
bool match_shape(std::string_view s, std::string_view pattern) {
  if (s.size() < pattern.size()) return false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == 'd' ? !is_digit(s[i]) : s[i] != pattern[i]) return false;
  }
  return true;
}

// Digits of an optional ".1*9DIGIT" fraction at s[pos]; returns the bytes it spans.
size_t fraction_bytes(std::string_view s, size_t pos) {
  if (pos >= s.size() || s[pos] != '.') return 0;
  size_t i = pos + 1;
  while (i < s.size() && i - pos - 1 < kFractionDigitsMax && is_digit(s[i])) ++i;
  return i == pos + 1 ? 0 : i - pos;
}

// RFC 3339 as RFC 5424 §6.2.3 uses it: YYYY-MM-DDThh:mm:ss[.frac](Z|+hh:mm|-hh:mm),
// the whole of t. Shape only: a wrong calendar date is still a timestamp field.
bool is_rfc3339(std::string_view t) {
  if (t.size() < 20) return false;
  const char* p = t.data();
  // Fixed positions, tested at once rather than through match_shape: every
  // RFC 5424 message has one of these.
  bool shape = is_digit(p[0]) & is_digit(p[1]) & is_digit(p[2]) & is_digit(p[3]) & (p[4] == '-') & is_digit(p[5]) &
               is_digit(p[6]) & (p[7] == '-') & is_digit(p[8]) & is_digit(p[9]) & ((p[10] | 0x20) == 't') &
               is_digit(p[11]) & is_digit(p[12]) & (p[13] == ':') & is_digit(p[14]) & is_digit(p[15]) & (p[16] == ':') &
               is_digit(p[17]) & is_digit(p[18]);
  if (!shape) return false;
  size_t i = 19;
  i += fraction_bytes(t, i);
  std::string_view zone = t.substr(i);
  if (zone == "Z" || zone == "z") return true;
  return zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && match_shape(zone.substr(1), "dd:dd");
}

// The end of the run of word bytes in s[pos, end): the first SP, control byte
// or DEL, or end. Eight bytes per step (a header field is 1 to ~40 bytes, and
// this scan was a hot spot byte by byte): in a word, a byte below 0x21 or equal
// to 0x7f sets the top bit of its lane. Borrows run only towards higher lanes,
// so the lowest set lane is the first such byte even when a higher lane is a
// false positive.
size_t word_end(std::string_view s, size_t pos, size_t end) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHigh = 0x8080808080808080ull;
  size_t i = pos;
  while (i + 8 <= end) {
    uint64_t x;
    std::memcpy(&x, s.data() + i, 8);
    uint64_t below = (x - kOnes * 0x21) & ~x & kHigh;  // a byte < 0x21
    uint64_t del = x ^ (kOnes * 0x7f);
    del = (del - kOnes) & ~del & kHigh;  // a byte == 0x7f
    uint64_t hit = below | del;
    if (hit != 0) return i + static_cast<size_t>(std::countr_zero(hit) / 8);
    i += 8;
  }
  while (i < end && is_word_byte(s[i])) ++i;
  return i;
}

// One RFC 5424 header field: 1..max_bytes word bytes, then SP. On success the
// field is in `out` and pos is past the SP.
bool take_field(std::string_view s, size_t& pos, size_t max_bytes, std::string_view& out) {
  size_t end = std::min(s.size(), pos + max_bytes);
  size_t i = word_end(s, pos, end);
  if (i == pos || i >= s.size() || s[i] != ' ') return false;
  out = s.substr(pos, i - pos);
  pos = i + 1;
  return true;
}

// SD-NAME (RFC 5424 §6.3): 1..32 printable ASCII except '=', SP, ']' and '"'.
size_t sd_name_bytes(std::string_view s, size_t pos) {
  size_t end = std::min(s.size(), pos + kSdNameBytesMax);
  size_t i = pos;
  while (i < end) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c <= ' ' || c >= 0x7f || c == '=' || c == ']' || c == '"') break;
    ++i;
  }
  return i - pos;
}

// STRUCTURED-DATA starting at pos: "-" or one or more "[SD-ID *(SP NAME="VALUE")]".
// Returns one past its end, or kNpos when malformed.
size_t scan_structured_data(std::string_view s, size_t pos) {
  if (pos < s.size() && s[pos] == '-') return pos + 1;
  if (pos >= s.size() || s[pos] != '[') return kNpos;
  while (pos < s.size() && s[pos] == '[') {
    ++pos;
    size_t n = sd_name_bytes(s, pos);  // SD-ID
    if (n == 0) return kNpos;
    pos += n;
    for (;;) {
      if (pos >= s.size()) return kNpos;
      if (s[pos] == ']') {
        ++pos;
        break;
      }
      if (s[pos] != ' ') return kNpos;
      ++pos;
      n = sd_name_bytes(s, pos);  // PARAM-NAME
      if (n == 0) return kNpos;
      pos += n;
      if (pos + 1 >= s.size() || s[pos] != '=' || s[pos + 1] != '"') return kNpos;
      pos += 2;
      // PARAM-VALUE ends at the first '"' not preceded by an escaping backslash.
      // RFC 5424 §6.3.3 escapes only '"', '\' and ']', and treats a backslash before
      // anything else as a literal; skipping the byte after every backslash finds
      // the same end, because the only byte whose meaning changes is '"'.
      while (pos < s.size() && s[pos] != '"') pos += s[pos] == '\\' ? 2 : 1;
      if (pos >= s.size()) return kNpos;
      ++pos;  // closing '"'
    }
  }
  return pos;
}

// pos is just past "<PRI>1 ". Fills f and returns true when the header
// TIMESTAMP HOSTNAME APP-NAME PROCID MSGID is well formed; leaves f alone otherwise.
bool parse_rfc5424(std::string_view s, size_t pos, SyslogFields& f) {
  std::string_view timestamp, hostname, app_name, procid, msgid;
  if (!take_field(s, pos, kTimestampBytesMax, timestamp)) return false;
  if (!is_nil(timestamp) && !is_rfc3339(timestamp)) return false;
  if (!take_field(s, pos, kHostnameBytesMax, hostname) || !take_field(s, pos, kAppNameBytesMax, app_name) ||
      !take_field(s, pos, kProcidBytesMax, procid) || !take_field(s, pos, kMsgidBytesMax, msgid)) {
    return false;
  }
  f.kind = Kind::kRfc5424;
  f.timestamp = timestamp;
  f.hostname = hostname;
  f.app_name = app_name;
  f.procid = procid;
  f.msgid = msgid;
  size_t sd_end = scan_structured_data(s, pos);
  if (sd_end == kNpos || (sd_end < s.size() && s[sd_end] != ' ')) {
    // The header is sound, so keep it, but show every byte after MSGID as msg
    // rather than guess where a broken SD ends.
    f.msg = s.substr(pos);
    return true;
  }
  f.structured_data = s.substr(pos, sd_end - pos);
  f.msg = s.substr(std::min(s.size(), sd_end + 1));  // empty: no MSG part
  if (f.msg.starts_with(kBom)) {
    f.msg.remove_prefix(kBom.size());
    f.has_bom = true;
  }
  return true;
}

// Bytes of an RFC 3164 timestamp at pos ("Mmm dd hh:mm:ss", day space-padded,
// optional fraction) that is followed by SP or the end; 0 if there is none.
size_t rfc3164_timestamp_bytes(std::string_view s, size_t pos) {
  std::string_view t = s.substr(pos);
  if (t.size() < kRfc3164TimestampBytes) return 0;
  bool month = false;
  for (size_t m = 0; m < kMonths.size() && !month; m += 3) {
    month = t[0] == kMonths[m] && t[1] == kMonths[m + 1] && t[2] == kMonths[m + 2];
  }
  if (!month || t[3] != ' ' || !(t[4] == ' ' || is_digit(t[4])) || !is_digit(t[5])) return 0;
  if (!match_shape(t.substr(6), " dd:dd:dd")) return 0;
  size_t n = kRfc3164TimestampBytes + fraction_bytes(t, kRfc3164TimestampBytes);
  return n == t.size() || t[n] == ' ' ? n : 0;
}

// Bytes of an RFC 3339 timestamp at pos followed by SP or the end (rsyslog's
// RSYSLOG_ForwardFormat and syslog-ng's ISO form put one where 3164 has its own).
size_t rfc3339_word_bytes(std::string_view s, size_t pos) {
  size_t end = std::min(s.size(), pos + kTimestampBytesMax + 1);
  size_t i = pos;
  while (i < end && s[i] != ' ') ++i;
  if (i < s.size() && s[i] != ' ') return 0;
  return is_rfc3339(s.substr(pos, i - pos)) ? i - pos : 0;
}

// TAG at pos, rsyslog's rule: word bytes up to ':' or SP; a ':' belongs to the
// tag and one SP after it is a separator; a SP ends the tag and is a separator.
// A trailing "[PID]" becomes procid. With colon_required (no timestamp seen, so
// the word could be anything) only "TAG:" followed by SP or the end is taken.
void take_tag(std::string_view s, size_t& pos, bool colon_required, SyslogFields& f) {
  size_t end = std::min(s.size(), pos + kTagBytesMax);
  size_t i = pos;
  while (i < end && s[i] != ':' && is_word_byte(s[i])) ++i;
  bool colon = i < s.size() && s[i] == ':';
  bool space = i < s.size() && s[i] == ' ';
  if (!colon && !space && i < s.size()) return;  // too long or a control byte: text
  if (!colon && i == pos) return;                // no word at all
  if (colon_required && (!colon || (i + 1 < s.size() && s[i + 1] != ' '))) return;
  std::string_view tag = s.substr(pos, i - pos);
  pos = i;
  if (colon) ++pos;
  if (pos < s.size() && s[pos] == ' ') ++pos;
  size_t open = tag.find('[');
  if (open != kNpos && tag.back() == ']') {
    f.app_name = tag.substr(0, open);
    f.procid = tag.substr(open + 1, tag.size() - open - 2);
  } else {
    f.app_name = tag;
  }
}

// pos is just past "<PRI>". Never fails: whatever is not recognised is msg.
void parse_rfc3164(std::string_view s, size_t pos, SyslogFields& f) {
  f.kind = Kind::kRfc3164;
  size_t ts_bytes = rfc3164_timestamp_bytes(s, pos);
  if (ts_bytes == 0 && pos < s.size() && s[pos] == ' ') {
    // HP ProCurve and a few others put a SP before the timestamp; rsyslog
    // accepts that too.
    ts_bytes = rfc3164_timestamp_bytes(s, pos + 1);
    if (ts_bytes != 0) ++pos;
  }
  if (ts_bytes == 0) ts_bytes = rfc3339_word_bytes(s, pos);
  if (ts_bytes == 0) {
    take_tag(s, pos, /*colon_required=*/true, f);
    f.msg = s.substr(pos);
    return;
  }
  f.timestamp = s.substr(pos, ts_bytes);
  pos = std::min(s.size(), pos + ts_bytes + 1);
  // HOSTNAME only when the word is made of hostname bytes and ends at SP or the
  // end: "sudo:", "sudo[12]:" are tags of a local message without a hostname.
  size_t end = std::min(s.size(), pos + kHostnameBytesMax);
  size_t i = pos;
  while (i < end && (is_alnum(s[i]) || s[i] == '.' || s[i] == '_' || s[i] == '-')) ++i;
  if (i > pos && (i == s.size() || s[i] == ' ')) {
    f.hostname = s.substr(pos, i - pos);
    pos = std::min(s.size(), i + 1);
  }
  take_tag(s, pos, /*colon_required=*/false, f);
  f.msg = s.substr(pos);
}

// Length of the UTF-8 sequence its lead byte announces (1 for ASCII and for
// bytes that cannot lead one).
size_t utf8_lead_bytes(unsigned char c) {
  if ((c & 0xe0) == 0xc0) return 2;
  if ((c & 0xf0) == 0xe0) return 3;
  if ((c & 0xf8) == 0xf0) return 4;
  return 1;
}

// ASCII is valid UTF-8. This OR-reduction vectorises, unlike valid_utf8's byte
// walk, and most fields (and many messages) are ASCII.
bool is_ascii(std::string_view s) {
  unsigned char bits = 0;
  for (char c : s) bits |= static_cast<unsigned char>(c);
  return bits < 0x80;
}

// Appends s as a JSON string with engine::append_json_escaped (export's own
// escaping, appended in place: no temporary per field). Bytes that do not start
// a valid UTF-8 sequence become U+FFFD first; validity is judged by valid_utf8
// itself, so the result always passes the same check export uses.
void append_json_string(std::string_view s, std::string& out) {
  if (is_ascii(s) || engine::valid_utf8(s)) {
    engine::append_json_escaped(s, out);
    return;
  }
  std::string repaired;
  repaired.reserve(s.size() + 16);
  size_t i = 0;
  while (i < s.size()) {
    size_t n = utf8_lead_bytes(static_cast<unsigned char>(s[i]));
    if (i + n <= s.size() && engine::valid_utf8(s.substr(i, n))) {
      repaired.append(s.substr(i, n));
      i += n;
    } else {
      repaired.append(kReplacementChar);
      ++i;
    }
  }
  engine::append_json_escaped(repaired, out);
}

void append_int(int value, std::string& out) {
  char buf[16];
  char* end = std::to_chars(buf, buf + sizeof buf, value).ptr;  // cannot fail: 16 bytes hold any int
  out.append(buf, static_cast<size_t>(end - buf));
}

// A field that is absent (empty) or NILVALUE is left out rather than written as
// "-", so a consumer never mistakes the placeholder for a value.
void append_optional_field(std::string_view name, std::string_view value, std::string& out) {
  if (value.empty() || is_nil(value)) return;
  out += ",\"";
  out += name;
  out += "\":";
  append_json_string(value, out);
}

}  // namespace

SyslogFields parse_syslog(std::string_view message) {
  SyslogFields f;
  int pri = 0;
  size_t pos = parse_pri(message, pri);
  if (pos == 0) {
    f.msg = message;
    return f;
  }
  // The terminator never reaches into the PRI: that ends with '>'.
  std::string_view s = strip_terminator(message);
  f.facility = pri / 8;
  f.severity = pri % 8;
  if (s.size() >= pos + 2 && s[pos] == '1' && s[pos + 1] == ' ' && parse_rfc5424(s, pos + 2, f)) return f;
  parse_rfc3164(s, pos, f);
  return f;
}

bool append_syslog_json(const SyslogFields& f, std::string& out) {
  if (f.kind == Kind::kUnparsed) return false;
  out += "{\"syslog\":{\"facility\":";
  append_int(f.facility, out);
  out += ",\"severity\":";
  append_int(f.severity, out);
  append_optional_field("timestamp", f.timestamp, out);
  append_optional_field("hostname", f.hostname, out);
  append_optional_field("app_name", f.app_name, out);
  append_optional_field("procid", f.procid, out);
  append_optional_field("msgid", f.msgid, out);
  append_optional_field("structured_data", f.structured_data, out);
  // msg is always written, even empty: it is the one field every reader expects.
  out += ",\"msg\":";
  append_json_string(f.msg, out);
  out += "}}";
  return true;
}

}  // namespace logseal::ingest
