#include "ingest/syslog_parse.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "engine/export.h"
#include "ingest/framing.h"

namespace logseal::ingest {
namespace {

using Kind = SyslogFields::Kind;

// ---------------------------------------------------------------------------
// A small strict JSON reader (RFC 8259), written here so the test does not trust
// the code it checks: it rejects raw control bytes in strings, bad escapes, lone
// surrogates, trailing bytes and invalid UTF-8, and decodes strings so values can
// be compared with the parsed views.

struct JsonValue {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject } type = Type::kNull;
  std::string text;  // string value (decoded) or number text
  std::vector<JsonValue> items;
  std::map<std::string, JsonValue> members;
};

class JsonReader {
 public:
  explicit JsonReader(std::string_view s) : s_(s) {}

  bool read_document(JsonValue& v) {
    if (!engine::valid_utf8(s_)) return fail("not UTF-8");
    skip_ws();
    if (!read_value(v, 0)) return false;
    skip_ws();
    return pos_ == s_.size() || fail("trailing bytes");
  }
  const std::string& error() const { return error_; }

 private:
  static constexpr int kDepthMax = 64;

  bool fail(const std::string& why) {
    if (error_.empty()) error_ = why + " at byte " + std::to_string(pos_);
    return false;
  }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return fail("bad literal");
    pos_ += word.size();
    return true;
  }
  bool read_value(JsonValue& v, int depth) {
    if (depth > kDepthMax) return fail("too deep");
    if (pos_ >= s_.size()) return fail("unexpected end");
    char c = s_[pos_];
    if (c == '{') return read_object(v, depth);
    if (c == '[') return read_array(v, depth);
    if (c == '"') {
      v.type = JsonValue::Type::kString;
      return read_string(v.text);
    }
    if (c == 't' || c == 'f') {
      v.type = JsonValue::Type::kBool;
      return literal(c == 't' ? "true" : "false");
    }
    if (c == 'n') return literal("null");
    v.type = JsonValue::Type::kNumber;
    return read_number(v.text);
  }
  bool read_object(JsonValue& v, int depth) {
    v.type = JsonValue::Type::kObject;
    ++pos_;
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == '}') return ++pos_, true;
    for (;;) {
      skip_ws();
      std::string key;
      if (pos_ >= s_.size() || s_[pos_] != '"' || !read_string(key)) return fail("bad key");
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != ':') return fail("expected ':'");
      ++pos_;
      skip_ws();
      if (v.members.count(key) != 0) return fail("duplicate key " + key);
      if (!read_value(v.members[key], depth + 1)) return false;
      skip_ws();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') return ++pos_, true;
      return fail("expected ',' or '}'");
    }
  }
  bool read_array(JsonValue& v, int depth) {
    v.type = JsonValue::Type::kArray;
    ++pos_;
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == ']') return ++pos_, true;
    for (;;) {
      skip_ws();
      v.items.emplace_back();
      if (!read_value(v.items.back(), depth + 1)) return false;
      skip_ws();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == ']') return ++pos_, true;
      return fail("expected ',' or ']'");
    }
  }
  bool read_number(std::string& out) {
    size_t start = pos_;
    if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
    auto digits = [&] {
      size_t d = pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      return pos_ - d;
    };
    size_t int_start = pos_;
    size_t n = digits();
    if (n == 0 || (n > 1 && s_[int_start] == '0')) return fail("bad number");
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (digits() == 0) return fail("bad fraction");
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (digits() == 0) return fail("bad exponent");
    }
    out.assign(s_.substr(start, pos_ - start));
    return true;
  }
  bool hex4(uint32_t& cp) {
    if (pos_ + 4 > s_.size()) return fail("short \\u");
    cp = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s_[pos_++];
      size_t d = std::string_view("0123456789abcdef").find(static_cast<char>(c | 0x20));
      if (!std::isxdigit(static_cast<unsigned char>(c)) || d == std::string_view::npos) return fail("bad hex");
      cp = cp << 4 | static_cast<uint32_t>(d);
    }
    return true;
  }
  static void put_utf8(uint32_t cp, std::string& out) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | cp >> 6);
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | cp >> 12);
      out += static_cast<char>(0x80 | (cp >> 6 & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | cp >> 18);
      out += static_cast<char>(0x80 | (cp >> 12 & 0x3f));
      out += static_cast<char>(0x80 | (cp >> 6 & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }
  bool read_string(std::string& out) {
    ++pos_;  // opening quote
    while (pos_ < s_.size()) {
      auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') return ++pos_, true;
      if (c < 0x20) return fail("raw control byte in string");
      if (c != '\\') {
        out += static_cast<char>(c);
        ++pos_;
        continue;
      }
      if (++pos_ >= s_.size()) return fail("unterminated escape");
      char e = s_[pos_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!hex4(cp)) return false;
          if (cp >= 0xdc00 && cp <= 0xdfff) return fail("lone low surrogate");
          if (cp >= 0xd800 && cp <= 0xdbff) {
            uint32_t lo = 0;
            if (s_.substr(pos_, 2) != "\\u") return fail("lone high surrogate");
            pos_ += 2;
            if (!hex4(lo)) return false;
            if (lo < 0xdc00 || lo > 0xdfff) return fail("bad low surrogate");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          }
          put_utf8(cp, out);
          break;
        }
        default:
          return fail("bad escape");
      }
    }
    return fail("unterminated string");
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::string error_;
};

// Renders f as JSON, checks it is valid, and returns the members of "syslog".
std::map<std::string, JsonValue> json_members(const SyslogFields& f) {
  std::string out = "prefix:";
  EXPECT_TRUE(append_syslog_json(f, out));
  EXPECT_TRUE(out.starts_with("prefix:")) << "must append, not replace";
  std::string_view json = std::string_view(out).substr(7);
  JsonValue doc;
  JsonReader reader(json);
  EXPECT_TRUE(reader.read_document(doc)) << reader.error() << "\n" << json;
  EXPECT_EQ(doc.type, JsonValue::Type::kObject);
  EXPECT_EQ(doc.members.size(), 1u);
  auto it = doc.members.find("syslog");
  if (it == doc.members.end()) {
    ADD_FAILURE() << "no syslog object: " << json;
    return {};
  }
  EXPECT_EQ(it->second.type, JsonValue::Type::kObject);
  return it->second.members;
}

// Every view of f lies inside input (or is empty): the parser never points elsewhere.
void expect_views_inside(const SyslogFields& f, std::string_view input) {
  for (std::string_view v : {f.timestamp, f.hostname, f.app_name, f.procid, f.msgid, f.structured_data, f.msg}) {
    if (v.empty()) continue;
    EXPECT_GE(v.data(), input.data());
    EXPECT_LE(v.data() + v.size(), input.data() + input.size());
  }
}

// Checks the JSON of a message against its views: valid, numbers as numbers, each
// present string equal to its view when that is valid UTF-8, NILVALUEs omitted.
void expect_json_matches(const SyslogFields& f) {
  auto m = json_members(f);
  ASSERT_EQ(m.count("facility"), 1u);
  EXPECT_EQ(m["facility"].type, JsonValue::Type::kNumber);
  EXPECT_EQ(m["facility"].text, std::to_string(f.facility));
  EXPECT_EQ(m["severity"].text, std::to_string(f.severity));
  const std::pair<const char*, std::string_view> fields[] = {
      {"timestamp", f.timestamp}, {"hostname", f.hostname}, {"app_name", f.app_name},
      {"procid", f.procid},       {"msgid", f.msgid},       {"structured_data", f.structured_data},
  };
  for (const auto& [name, view] : fields) {
    bool absent = view.empty() || view == "-";
    EXPECT_EQ(m.count(name), absent ? 0u : 1u) << name;
    if (!absent && engine::valid_utf8(view)) {
      EXPECT_EQ(m[name].text, view) << name;
    }
  }
  ASSERT_EQ(m.count("msg"), 1u);
  if (engine::valid_utf8(f.msg)) {
    EXPECT_EQ(m["msg"].text, f.msg);
  }
}

// ---------------------------------------------------------------------------
// RFC 5424

TEST(SyslogParse5424, AllFieldsWithStructuredDataEscapes) {
  // logger-direct/logger-octet.conn001.raw, abridged: \" \] \\ inside values, an
  // empty value, two elements, UTF-8 in a value and in MSG.
  std::string_view m =
      "<85>1 2026-11-26T03:30:04.393292+00:00 vm pam_unix 21620 AUTH "
      "[timeQuality tzKnown=\"1\" isSynced=\"0\"][audit@32473 user=\"zo\xc3\xab\" "
      "note=\"quote \\\" bracket \\] backslash \\\\ done\" empty=\"\"] session opened for \xe6\x9d\xb1";
  SyslogFields f = parse_syslog(m);
  EXPECT_EQ(f.kind, Kind::kRfc5424);
  EXPECT_EQ(f.facility, 10);  // authpriv
  EXPECT_EQ(f.severity, 5);   // notice
  EXPECT_EQ(f.timestamp, "2026-11-26T03:30:04.393292+00:00");
  EXPECT_EQ(f.hostname, "vm");
  EXPECT_EQ(f.app_name, "pam_unix");
  EXPECT_EQ(f.procid, "21620");
  EXPECT_EQ(f.msgid, "AUTH");
  EXPECT_EQ(f.structured_data,
            "[timeQuality tzKnown=\"1\" isSynced=\"0\"][audit@32473 user=\"zo\xc3\xab\" "
            "note=\"quote \\\" bracket \\] backslash \\\\ done\" empty=\"\"]");
  EXPECT_EQ(f.msg, "session opened for \xe6\x9d\xb1");
  EXPECT_FALSE(f.has_bom);
  expect_json_matches(f);
}

TEST(SyslogParse5424, SdValueEndingInEscapedBackslashAndBracketInValue) {
  // "a\\" ends with an escaped backslash, so the next '"' closes it; an unescaped
  // ']' inside quotes does not end the element.
  SyslogFields f = parse_syslog("<14>1 - h a - - [x@1 p=\"a\\\\\" q=\"]\"][y@2] text");
  EXPECT_EQ(f.kind, Kind::kRfc5424);
  EXPECT_EQ(f.structured_data, "[x@1 p=\"a\\\\\" q=\"]\"][y@2]");
  EXPECT_EQ(f.msg, "text");
}

TEST(SyslogParse5424, NilValuesAreKeptInViewsAndOmittedFromJson) {
  SyslogFields f = parse_syslog("<13>1 - - app - - - nil timestamp and hostname");
  EXPECT_EQ(f.kind, Kind::kRfc5424);
  EXPECT_EQ(f.timestamp, "-");
  EXPECT_EQ(f.hostname, "-");
  EXPECT_EQ(f.app_name, "app");
  EXPECT_EQ(f.procid, "-");
  EXPECT_EQ(f.msgid, "-");
  EXPECT_EQ(f.structured_data, "-");
  EXPECT_EQ(f.msg, "nil timestamp and hostname");
  std::string out;
  ASSERT_TRUE(append_syslog_json(f, out));
  EXPECT_EQ(out, R"({"syslog":{"facility":1,"severity":5,"app_name":"app","msg":"nil timestamp and hostname"}})");
}

TEST(SyslogParse5424, AllNil) {
  SyslogFields f = parse_syslog("<0>1 - - - - - -");
  EXPECT_EQ(f.kind, Kind::kRfc5424);
  EXPECT_EQ(f.facility, 0);
  EXPECT_EQ(f.severity, 0);
  EXPECT_EQ(f.structured_data, "-");
  EXPECT_EQ(f.msg, "");
  std::string out;
  ASSERT_TRUE(append_syslog_json(f, out));
  EXPECT_EQ(out, R"({"syslog":{"facility":0,"severity":0,"msg":""}})");
}

TEST(SyslogParse5424, NoMsgPart) {
  for (std::string_view m : {"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [a@1 b=\"c\"]",
                             "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [a@1 b=\"c\"]\n"}) {
    SyslogFields f = parse_syslog(m);
    EXPECT_EQ(f.kind, Kind::kRfc5424);
    EXPECT_EQ(f.structured_data, "[a@1 b=\"c\"]");
    EXPECT_EQ(f.msg, "");
    EXPECT_EQ(f.msgid, "ID47");
  }
}

TEST(SyslogParse5424, Rfc5424Examples) {
  // RFC 5424 §6.5 examples 1 and 3.
  SyslogFields f = parse_syslog(
      "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xEF\xBB\xBF'su root' failed for lonvick on "
      "/dev/pts/8");
  EXPECT_EQ(f.kind, Kind::kRfc5424);
  EXPECT_EQ(f.facility, 4);
  EXPECT_EQ(f.severity, 2);
  EXPECT_EQ(f.hostname, "mymachine.example.com");
  EXPECT_EQ(f.app_name, "su");
  EXPECT_TRUE(f.has_bom);
  EXPECT_EQ(f.msg, "'su root' failed for lonvick on /dev/pts/8");

  f = parse_syslog(
      "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" "
      "eventSource=\"Application\" eventID=\"1011\"] \xEF\xBB\xBF"
      "An application event log entry...");
  EXPECT_EQ(f.kind, Kind::kRfc5424);
  EXPECT_EQ(f.structured_data, "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"]");
  EXPECT_TRUE(f.has_bom);
  EXPECT_EQ(f.msg, "An application event log entry...");
  // RFC 5424 §6.5 example 2: timestamp with an offset and microseconds.
  f = parse_syslog(
      "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.");
  EXPECT_EQ(f.kind, Kind::kRfc5424);
  EXPECT_EQ(f.timestamp, "2003-08-24T05:14:15.000003-07:00");
  EXPECT_EQ(f.procid, "8710");
  EXPECT_EQ(f.msg, "%% It's time to make the do-nuts.");
}

TEST(SyslogParse5424, BomOnlyAtStartOfMsg) {
  SyslogFields f = parse_syslog("<13>1 - h a - - - x\xEF\xBB\xBFy");
  EXPECT_FALSE(f.has_bom);
  EXPECT_EQ(f.msg, "x\xEF\xBB\xBFy");
  f = parse_syslog("<13>1 - h a - - - \xEF\xBB\xBF");
  EXPECT_TRUE(f.has_bom);
  EXPECT_EQ(f.msg, "");
}

TEST(SyslogParse5424, LeadingSpaceOfMsgIsContent) {
  // rsyslog's RSYSLOG_SyslogProtocol23Format forwards the 3164 MSG with its space.
  SyslogFields f = parse_syslog("<134>1 2026-11-26T03:29:34.321057+00:00 vm postgres 21011 - -  [1-1] LOG:  x\n");
  EXPECT_EQ(f.kind, Kind::kRfc5424);
  EXPECT_EQ(f.msg, " [1-1] LOG:  x");
}

TEST(SyslogParse5424, MalformedSdKeepsHeaderAndShowsRestAsMsg) {
  for (std::string_view sd : {"[unterminated", "[a b]", "[a b=\"c]", "[a]x", "[]", "-x", "[a b=c]", "[a@1 b=\"v\" ]"}) {
    std::string m = "<13>1 2026-11-26T03:29:34Z host app 12 ID " + std::string(sd) + " tail";
    SyslogFields f = parse_syslog(m);
    EXPECT_EQ(f.kind, Kind::kRfc5424) << sd;
    EXPECT_EQ(f.app_name, "app");
    EXPECT_EQ(f.msgid, "ID");
    EXPECT_EQ(f.structured_data, "") << sd;
    EXPECT_EQ(f.msg, std::string(sd) + " tail") << sd;
    expect_json_matches(f);
  }
}

TEST(SyslogParse5424, BadHeaderFallsBackToRfc3164) {
  // Not a timestamp, a field too long (APP-NAME > 48), header cut short: not
  // RFC 5424, so the bytes after PRI become the RFC 3164 msg.
  std::string long_app(49, 'a');
  for (std::string m :
       {std::string("<13>1 yesterday host app - - - x"), "<13>1 2026-11-26T03:29:34Z host " + long_app + " - - - x",
        std::string("<13>1 2026-11-26T03:29:34Z host app"), std::string("<13>1 2026-11-26 03:29:34 h a - - - x"),
        std::string("<13>1 2026-11-26T03:29:34 h a - - - x")}) {
    SyslogFields f = parse_syslog(m);
    EXPECT_EQ(f.kind, Kind::kRfc3164) << m;
    EXPECT_EQ(f.msg, std::string_view(m).substr(4)) << m;
    EXPECT_EQ(f.app_name, "") << m;
  }
  // Exactly 48 bytes is allowed.
  std::string m48 = "<13>1 - h " + std::string(48, 'a') + " - - - x";  // views point into m48
  SyslogFields f = parse_syslog(m48);
  EXPECT_EQ(f.kind, Kind::kRfc5424);
  EXPECT_EQ(f.app_name.size(), 48u);
}

// Every byte value at every position of a 21-byte header field (the scan takes
// eight bytes at a time, then byte by byte): a word byte keeps the field whole,
// SP, a control byte or DEL ends it there and the header is not the one sent.
TEST(SyslogParse5424, EveryByteAtEveryPositionOfAHeaderField) {
  for (size_t k = 0; k < 21; ++k) {
    for (int b = 1; b < 256; ++b) {
      std::string host(21, 'h');
      host[k] = static_cast<char>(b);
      std::string m = "<13>1 2026-11-26T03:29:34.5Z " + host + " app 12 ID - x";
      SyslogFields f = parse_syslog(m);
      bool word = b > 0x20 && b != 0x7f;
      if (word) {
        ASSERT_EQ(f.kind, Kind::kRfc5424) << "byte " << b << " at " << k;
        ASSERT_EQ(f.hostname, host) << "byte " << b << " at " << k;
        ASSERT_EQ(f.msgid, "ID") << "byte " << b << " at " << k;
      } else {
        ASSERT_FALSE(f.kind == Kind::kRfc5424 && f.hostname == host) << "byte " << b << " at " << k;
      }
    }
  }
}

// The timestamp shape, one position at a time: each fixed digit, dash, 'T'
// (either case) and colon is checked.
TEST(SyslogParse5424, TimestampShapeIsCheckedAtEveryPosition) {
  const std::string good = "2026-11-26T03:29:34.123+01:00";
  EXPECT_EQ(parse_syslog("<13>1 " + good + " h a - - - x").kind, Kind::kRfc5424);
  std::string lower = good;
  lower[10] = 't';
  EXPECT_EQ(parse_syslog("<13>1 " + lower + " h a - - - x").kind, Kind::kRfc5424);
  for (size_t k = 0; k < 19; ++k) {
    std::string t = good;
    t[k] = std::isdigit(static_cast<unsigned char>(t[k])) ? 'x' : '7';
    SyslogFields f = parse_syslog("<13>1 " + t + " h a - - - x");
    EXPECT_EQ(f.kind, Kind::kRfc3164) << t;
  }
}

TEST(SyslogParse5424, OtherVersionIsNotRfc5424) {
  SyslogFields f = parse_syslog("<13>2 - h a - - - x");
  EXPECT_EQ(f.kind, Kind::kRfc3164);
  EXPECT_EQ(f.msg, "2 - h a - - - x");
}

// ---------------------------------------------------------------------------
// PRI and terminators

TEST(SyslogParsePri, Bounds) {
  SyslogFields f = parse_syslog("<0>1 - - - - - - x");
  EXPECT_EQ(f.kind, Kind::kRfc5424);
  EXPECT_EQ(f.facility, 0);
  EXPECT_EQ(f.severity, 0);
  f = parse_syslog("<191>Nov 26 03:30:06 vm prio: local7.debug");
  EXPECT_EQ(f.kind, Kind::kRfc3164);
  EXPECT_EQ(f.facility, 23);
  EXPECT_EQ(f.severity, 7);
  for (std::string_view bad : {"<192>1 - - - - - - x", "<999>x", "<1000>x", "<>x", "<-1>x", "<13", "13>x", "<1a>x",
                               "< 13>x", "<0013>x", "", "<", "<>", "Nov 26 03:30:06 vm prio: no pri", "\n"}) {
    f = parse_syslog(bad);
    EXPECT_EQ(f.kind, Kind::kUnparsed) << bad;
    EXPECT_EQ(f.facility, -1);
    EXPECT_EQ(f.severity, -1);
    EXPECT_EQ(f.msg, bad);
    EXPECT_EQ(f.msg.data(), bad.data());
    std::string out = "keep";
    EXPECT_FALSE(append_syslog_json(f, out));
    EXPECT_EQ(out, "keep");
  }
}

TEST(SyslogParsePri, PriOnlyOrGarbageAfterPriIsRfc3164) {
  SyslogFields f = parse_syslog("<13>");
  EXPECT_EQ(f.kind, Kind::kRfc3164);
  EXPECT_EQ(f.msg, "");
  f = parse_syslog("<13>just some text, no header");
  EXPECT_EQ(f.kind, Kind::kRfc3164);
  EXPECT_EQ(f.timestamp, "");
  EXPECT_EQ(f.hostname, "");
  EXPECT_EQ(f.app_name, "");
  EXPECT_EQ(f.msg, "just some text, no header");
  expect_json_matches(f);
  f = parse_syslog("<13>http://example.com/ is not a tag");
  EXPECT_EQ(f.app_name, "");
  EXPECT_EQ(f.msg, "http://example.com/ is not a tag");
}

TEST(SyslogParsePri, TerminatorsAreNotMsg) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {std::string_view("<13>1 - h a - - - m\n"), "m"},
      {std::string_view("<13>1 - h a - - - m\r\n"), "m"},
      {std::string_view("<13>1 - h a - - - m\0", 20), "m"},
      {std::string_view("<13>1 - h a - - - m\n\0", 21), "m"},
      {std::string_view("<13>1 - h a - - - m\r"), "m\r"},    // a lone CR is content
      {std::string_view("<13>1 - h a - - - m\n\n"), "m\n"},  // only one terminator
      {std::string_view("<13>Nov 26 03:30:05 vm t: m\r\n"), "m"},
      {std::string_view("<13>\n"), ""},
  };
  for (const auto& [in, msg] : cases) {
    SyslogFields f = parse_syslog(in);
    EXPECT_NE(f.kind, Kind::kUnparsed);
    EXPECT_EQ(f.msg, msg);
  }
}

// ---------------------------------------------------------------------------
// RFC 3164

TEST(SyslogParse3164, RsyslogTraditionalForwardFormat) {
  SyslogFields f = parse_syslog("<134>Nov 26 03:29:34 vm postgres[21011]: [1-1] 2026-11-26 LOG:  pgaudit");
  EXPECT_EQ(f.kind, Kind::kRfc3164);
  EXPECT_EQ(f.facility, 16);
  EXPECT_EQ(f.severity, 6);
  EXPECT_EQ(f.timestamp, "Nov 26 03:29:34");
  EXPECT_EQ(f.hostname, "vm");
  EXPECT_EQ(f.app_name, "postgres");
  EXPECT_EQ(f.procid, "21011");
  EXPECT_EQ(f.msgid, "");
  EXPECT_EQ(f.structured_data, "");
  EXPECT_EQ(f.msg, "[1-1] 2026-11-26 LOG:  pgaudit");
  expect_json_matches(f);
}

TEST(SyslogParse3164, SpacePaddedDay) {
  SyslogFields f = parse_syslog("<38>Feb  5 17:32:18 10.0.0.99 sshd[1234]: Accepted publickey");
  EXPECT_EQ(f.timestamp, "Feb  5 17:32:18");
  EXPECT_EQ(f.hostname, "10.0.0.99");
  EXPECT_EQ(f.app_name, "sshd");
  EXPECT_EQ(f.procid, "1234");
  EXPECT_EQ(f.msg, "Accepted publickey");
}

TEST(SyslogParse3164, RfcExampleWithTagWithoutPid) {
  // RFC 3164 §5.4 example 1.
  SyslogFields f = parse_syslog("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8");
  EXPECT_EQ(f.hostname, "mymachine");
  EXPECT_EQ(f.app_name, "su");
  EXPECT_EQ(f.procid, "");
  EXPECT_EQ(f.msg, "'su root' failed for lonvick on /dev/pts/8");
}

TEST(SyslogParse3164, NoHostnameLocalForms) {
  // What logger(1) and glibc syslog(3) write to /dev/log, and rsyslog relays.
  SyslogFields f = parse_syslog("<13>Nov 26 03:30:05 zoe[42]: hello");
  EXPECT_EQ(f.hostname, "");
  EXPECT_EQ(f.app_name, "zoe");
  EXPECT_EQ(f.procid, "42");
  EXPECT_EQ(f.msg, "hello");
  f = parse_syslog("<13>Nov 26 03:30:05 sudo: zoe : TTY=pts/0");
  EXPECT_EQ(f.hostname, "");
  EXPECT_EQ(f.app_name, "sudo");
  EXPECT_EQ(f.msg, "zoe : TTY=pts/0");
  f = parse_syslog("<13>Nov 26 03:30:05 postfix/smtpd[7]: connect");
  EXPECT_EQ(f.hostname, "");
  EXPECT_EQ(f.app_name, "postfix/smtpd");
  EXPECT_EQ(f.procid, "7");
}

TEST(SyslogParse3164, TagColonWithoutSpace) {
  SyslogFields f = parse_syslog("<13>Nov 26 03:30:05 vm app:message right after");
  EXPECT_EQ(f.app_name, "app");
  EXPECT_EQ(f.msg, "message right after");
  f = parse_syslog("<13>Nov 26 03:30:05 vm app[9]:x");
  EXPECT_EQ(f.procid, "9");
  EXPECT_EQ(f.msg, "x");
}

TEST(SyslogParse3164, TagWithoutColon) {
  // rsyslog forwards a relayed RFC 5424 message's tag without a colon.
  SyslogFields f = parse_syslog("<85>Nov 26 03:30:08 vm pam_unix[21792] relayed through rsyslog: session opened");
  EXPECT_EQ(f.hostname, "vm");
  EXPECT_EQ(f.app_name, "pam_unix");
  EXPECT_EQ(f.procid, "21792");
  EXPECT_EQ(f.msg, "relayed through rsyslog: session opened");
  f = parse_syslog("<166>Nov 26 03:30:08 vm bulk-export [0000] relayed;");
  EXPECT_EQ(f.app_name, "bulk-export");
  EXPECT_EQ(f.procid, "");
  EXPECT_EQ(f.msg, "[0000] relayed;");
}

TEST(SyslogParse3164, TagEndsAtSpaceLikeRsyslog) {
  // logger -t 'weird tag with spaces': rsyslog's rule (a tag ends at SP) gives
  // the first word; following it keeps the two in agreement.
  SyslogFields f =
      parse_syslog("<13>Nov 26 03:30:06 vm weird tag with spaces: [not-sd key=\"v\"] message: with: colons");
  EXPECT_EQ(f.app_name, "weird");
  EXPECT_EQ(f.msg, "tag with spaces: [not-sd key=\"v\"] message: with: colons");
}

TEST(SyslogParse3164, EmptyAndSpacesOnlyMsg) {
  SyslogFields f = parse_syslog("<13>Nov 26 03:30:05 vm stdin-reader: ");
  EXPECT_EQ(f.app_name, "stdin-reader");
  EXPECT_EQ(f.msg, "");
  f = parse_syslog("<13>Nov 26 03:30:05 vm stdin-reader:    ");
  EXPECT_EQ(f.msg, "   ");
  f = parse_syslog("<13>Nov 26 03:30:05 vm stdin-reader:");
  EXPECT_EQ(f.app_name, "stdin-reader");
  EXPECT_EQ(f.msg, "");
  f = parse_syslog("<13>Nov 26 03:30:05");
  EXPECT_EQ(f.kind, Kind::kRfc3164);
  EXPECT_EQ(f.timestamp, "Nov 26 03:30:05");
  EXPECT_EQ(f.msg, "");
}

TEST(SyslogParse3164, Rfc3339TimestampForwardFormat) {
  // rsyslog RSYSLOG_ForwardFormat: 3164 layout with a high-precision timestamp.
  SyslogFields f = parse_syslog("<134>2026-11-26T03:29:34.321057+00:00 vm postgres[21011]: [1-1] x");
  EXPECT_EQ(f.kind, Kind::kRfc3164);
  EXPECT_EQ(f.timestamp, "2026-11-26T03:29:34.321057+00:00");
  EXPECT_EQ(f.hostname, "vm");
  EXPECT_EQ(f.app_name, "postgres");
  EXPECT_EQ(f.procid, "21011");
  EXPECT_EQ(f.msg, "[1-1] x");
}

TEST(SyslogParse3164, FractionAndLeadingSpaceTimestamps) {
  SyslogFields f = parse_syslog("<13>Nov 26 03:30:05.123 vm app: x");
  EXPECT_EQ(f.timestamp, "Nov 26 03:30:05.123");
  EXPECT_EQ(f.hostname, "vm");
  f = parse_syslog("<13> Nov 26 03:30:05 vm app: x");
  EXPECT_EQ(f.timestamp, "Nov 26 03:30:05");
  EXPECT_EQ(f.app_name, "app");
  EXPECT_EQ(f.msg, "x");
}

TEST(SyslogParse3164, NoTimestampTakesOnlyAClearTag) {
  SyslogFields f = parse_syslog("<13>sudo: zoe : TTY=pts/0");
  EXPECT_EQ(f.kind, Kind::kRfc3164);
  EXPECT_EQ(f.timestamp, "");
  EXPECT_EQ(f.app_name, "sudo");
  EXPECT_EQ(f.msg, "zoe : TTY=pts/0");
  f = parse_syslog("<13>Foo 26 03:30:05 vm app: x");  // not a month
  EXPECT_EQ(f.timestamp, "");
  EXPECT_EQ(f.msg, "Foo 26 03:30:05 vm app: x");
}

TEST(SyslogParse3164, LongWordIsNotATag) {
  std::string word(200, 'x');
  std::string m = "<13>Nov 26 03:30:05 vm " + word + " tail";  // views point into m
  SyslogFields f = parse_syslog(m);
  EXPECT_EQ(f.hostname, "vm");
  EXPECT_EQ(f.app_name, "");
  EXPECT_EQ(f.msg, word + " tail");
}

// ---------------------------------------------------------------------------
// JSON

TEST(SyslogJson, ExactShapeAndEscapes) {
  SyslogFields f = parse_syslog(
      "<134>1 2026-11-26T03:29:34Z vm postgres 21011 ID [a@1 k=\"q\\\"\"] tab\there \"quoted\" back\\slash\x01");
  std::string out;
  ASSERT_TRUE(append_syslog_json(f, out));
  EXPECT_EQ(out, R"({"syslog":{"facility":16,"severity":6,"timestamp":"2026-11-26T03:29:34Z","hostname":"vm",)"
                 R"("app_name":"postgres","procid":"21011","msgid":"ID","structured_data":"[a@1 k=\"q\\\"\"]",)"
                 R"("msg":"tab\there \"quoted\" back\\slash\u0001"}})");
  expect_json_matches(f);
}

TEST(SyslogJson, InvalidUtf8BecomesReplacementCharacter) {
  SyslogFields f = parse_syslog("<13>1 - vm odd - - - invalid utf8 \xff\xfe, cut \xe6\x9d, ok \xc3\xab, esc \x1b[31m");
  ASSERT_EQ(f.kind, Kind::kRfc5424);
  auto m = json_members(f);
  EXPECT_EQ(m["msg"].text,
            "invalid utf8 \xEF\xBF\xBD\xEF\xBF\xBD, cut \xEF\xBF\xBD\xEF\xBF\xBD, ok \xc3\xab, esc \x1b[31m");
  // Surrogates and overlong forms are invalid too (valid_utf8's rules).
  f = parse_syslog("<13>1 - vm odd - - - \xed\xa0\x80 \xc0\xaf");
  m = json_members(f);
  EXPECT_EQ(m["msg"].text, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD");
  // Invalid bytes in a header field (allowed through) are repaired the same way.
  f = parse_syslog("<13>Nov 26 03:30:05 vm t\xff[1]: x");
  m = json_members(f);
  EXPECT_EQ(m["app_name"].text, "t\xEF\xBF\xBD");
}

TEST(SyslogJson, AppendsToExistingText) {
  SyslogFields f = parse_syslog("<13>1 - - - - - - x");
  std::string out = "{\"fields\":";
  ASSERT_TRUE(append_syslog_json(f, out));
  out += "}";
  JsonValue doc;
  JsonReader reader(out);
  EXPECT_TRUE(reader.read_document(doc)) << reader.error();
}

// ---------------------------------------------------------------------------
// Robustness: every prefix of real messages, and random bytes after a PRI, parse
// without reading outside the input (ASan run) and give valid JSON.

TEST(SyslogParseRobust, EveryPrefixAndRandomBytes) {
  const std::string samples[] = {
      "<85>1 2026-11-26T03:30:04.393292+00:00 vm pam_unix 21620 AUTH [timeQuality tzKnown=\"1\"][a@1 n=\"q \\\" "
      "b \\] s \\\\ d\" e=\"\"] \xEF\xBB\xBFsession \xe6\x9d\xb1\n",
      "<134>Nov 26 03:29:34 vm postgres[21011]: [1-1] LOG:  x\r\n",
      "<13>Nov  6 03:30:05 app[1]:x",
      "<134>2026-11-26T03:29:34.321057+00:00 vm postgres[21011]: y",
  };
  for (const std::string& s : samples) {
    for (size_t n = 0; n <= s.size(); ++n) {
      // A heap copy of exactly n bytes so ASan sees any read past the end.
      std::vector<char> buf(s.begin(), s.begin() + static_cast<ptrdiff_t>(n));
      std::string_view in(buf.data(), buf.size());
      SyslogFields f = parse_syslog(in);
      expect_views_inside(f, in);
      if (f.kind != Kind::kUnparsed) expect_json_matches(f);
    }
  }
  std::mt19937 rng(20261126);  // fixed seed: reproducible
  const char alphabet[] = "<>1 -[]=\"\\:0123456789TZ.+Nov aA\xff\xc3\xab\n\r";
  for (int round = 0; round < 20000; ++round) {
    std::vector<char> buf;
    std::string head = round % 2 ? "<13>1 " : "<13>";
    buf.assign(head.begin(), head.end());
    size_t len = rng() % 40;
    for (size_t k = 0; k < len; ++k) buf.push_back(alphabet[rng() % (sizeof alphabet - 1)]);
    std::string_view in(buf.data(), buf.size());
    SyslogFields f = parse_syslog(in);
    ASSERT_NE(f.kind, Kind::kUnparsed);
    expect_views_inside(f, in);
    std::string out;
    ASSERT_TRUE(append_syslog_json(f, out));
    JsonValue doc;
    JsonReader reader(out);
    ASSERT_TRUE(reader.read_document(doc)) << reader.error() << "\n" << out;
  }
}

// ---------------------------------------------------------------------------
// The corpus: real traffic from rsyslog, logger and PostgreSQL+pgaudit
// (/work/shared/corpus/README.md).

// LOGSEAL_CORPUS, else <source dir>/../shared/corpus. The source dir comes from
// LOGSEAL_SOURCE_DIR when the build defines it, else from this file's own path.
std::string corpus_dir() {
  if (const char* env = std::getenv("LOGSEAL_CORPUS"); env != nullptr && *env != '\0') return env;
#ifdef LOGSEAL_SOURCE_DIR
  std::string source_dir = LOGSEAL_SOURCE_DIR;
#else
  std::string source_dir = __FILE__;
  for (int up = 0; up < 2; ++up) source_dir = source_dir.substr(0, source_dir.rfind('/'));  // drop /tests/<file>
#endif
  return source_dir + "/../shared/corpus";
}

bool read_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

#define LOAD_OR_SKIP(var, rel)                                               \
  std::string var;                                                           \
  if (!read_file(corpus_dir() + "/" + (rel), var)) {                         \
    GTEST_SKIP() << "corpus file missing: " << corpus_dir() << "/" << (rel); \
  }

std::vector<std::string> split_frames(const std::string& bytes, Framing framing) {
  std::vector<std::string> out;
  Framer framer(framing, 1 << 20);
  auto on_message = [&](std::string_view m, bool truncated) {
    EXPECT_FALSE(truncated);
    out.emplace_back(m);
  };
  Status st = framer.feed(bytes, on_message);
  EXPECT_TRUE(st.ok()) << st.to_string();
  st = framer.finish(on_message);
  EXPECT_TRUE(st.ok()) << st.to_string();
  return out;
}

// Number after "key": in one line of an .idx.jsonl file.
uint64_t json_line_number(const std::string& line, const std::string& key) {
  size_t at = line.find("\"" + key + "\":");
  EXPECT_NE(at, std::string::npos) << key << " in " << line;
  if (at == std::string::npos) return 0;
  return std::strtoull(line.c_str() + at + key.size() + 3, nullptr, 10);
}

std::vector<std::string> split_datagrams(const std::string& raw, const std::string& index) {
  std::vector<std::string> out;
  std::istringstream lines(index);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    uint64_t offset = json_line_number(line, "offset");
    uint64_t length = json_line_number(line, "length");
    EXPECT_LE(offset + length, raw.size());
    if (offset + length > raw.size()) break;
    out.push_back(raw.substr(offset, length));
  }
  return out;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Common checks for the PostgreSQL captures: local0, LOG/ERROR/FATAL, app postgres.
void expect_postgres(const SyslogFields& f, Kind kind, const std::string& raw) {
  EXPECT_EQ(f.kind, kind) << raw;
  EXPECT_EQ(f.facility, 16) << raw;  // local0
  EXPECT_TRUE(f.severity == 6 || f.severity == 4 || f.severity == 3) << raw;
  EXPECT_EQ(f.hostname, "vm") << raw;
  EXPECT_EQ(f.app_name, "postgres") << raw;
  EXPECT_TRUE(all_digits(f.procid)) << raw;
  EXPECT_FALSE(f.msg.ends_with("\n")) << raw;
  expect_json_matches(f);
}

TEST(SyslogCorpus, Run1Rfc5424OctetCounted) {
  LOAD_OR_SKIP(bytes, "run1-all/syslog-rfc5424-octet.conn001.raw");
  std::vector<std::string> messages = split_frames(bytes, Framing::kOctetCounted);
  ASSERT_EQ(messages.size(), 442u);
  size_t audit = 0;
  for (const std::string& m : messages) {
    EXPECT_TRUE(m.ends_with("\n"));  // rsyslog's template puts the LF inside the frame
    SyslogFields f = parse_syslog(m);
    expect_postgres(f, Kind::kRfc5424, m);
    EXPECT_EQ(f.msgid, "-");
    EXPECT_EQ(f.structured_data, "-");
    EXPECT_TRUE(f.timestamp.starts_with("2026-11-26T03:"));
    if (f.msg.find("AUDIT:") != std::string_view::npos) ++audit;
  }
  EXPECT_EQ(audit, 119u);  // README: 119 carry AUDIT:
}

TEST(SyslogCorpus, Run1Rfc3164LfAndUdpAgree) {
  LOAD_OR_SKIP(lf_bytes, "run1-all/syslog-rfc3164-lf.conn001.raw");
  LOAD_OR_SKIP(udp_raw, "run1-all/syslog-rfc3164.udp.raw");
  LOAD_OR_SKIP(udp_index, "run1-all/syslog-rfc3164.udp.idx.jsonl");
  std::vector<std::string> lf = split_frames(lf_bytes, Framing::kLf);
  std::vector<std::string> udp = split_datagrams(udp_raw, udp_index);
  ASSERT_EQ(lf.size(), 442u);
  ASSERT_EQ(udp.size(), 442u);
  for (size_t i = 0; i < lf.size(); ++i) {
    SyslogFields a = parse_syslog(lf[i]);
    SyslogFields b = parse_syslog(udp[i]);
    expect_postgres(a, Kind::kRfc3164, lf[i]);
    expect_postgres(b, Kind::kRfc3164, udp[i]);
    EXPECT_EQ(a.timestamp.size(), 15u);
    EXPECT_EQ(a.msg, b.msg);
  }
}

TEST(SyslogCorpus, Run1SameEventsInBothFormsGiveTheSameFields) {
  LOAD_OR_SKIP(octet_bytes, "run1-all/syslog-rfc5424-octet.conn001.raw");
  LOAD_OR_SKIP(lf_bytes, "run1-all/syslog-rfc3164-lf.conn001.raw");
  std::vector<std::string> a = split_frames(octet_bytes, Framing::kOctetCounted);
  std::vector<std::string> b = split_frames(lf_bytes, Framing::kLf);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    SyslogFields f5424 = parse_syslog(a[i]);
    SyslogFields f3164 = parse_syslog(b[i]);
    EXPECT_EQ(f5424.facility, f3164.facility);
    EXPECT_EQ(f5424.severity, f3164.severity);
    EXPECT_EQ(f5424.procid, f3164.procid);
    // rsyslog keeps the SP after "postgres[PID]:" in its MSG and the RFC 5424
    // template writes it out; the RFC 3164 parser treats it as a separator.
    EXPECT_EQ(std::string(f5424.msg), " " + std::string(f3164.msg)) << i;
  }
}

struct Parsed {
  std::string raw;
  SyslogFields f;
};

std::vector<Parsed> parse_all(std::vector<std::string> messages) {
  std::vector<Parsed> out(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    out[i].raw = std::move(messages[i]);
    out[i].f = parse_syslog(out[i].raw);  // views into out[i].raw, which does not move again
  }
  return out;
}

const Parsed* find_raw(const std::vector<Parsed>& all, std::string_view needle) {
  for (const Parsed& p : all) {
    if (p.raw.find(needle) != std::string::npos) return &p;
  }
  return nullptr;
}

TEST(SyslogCorpus, LoggerDirect) {
  std::vector<std::string> octet, lf;
  for (int conn = 1; conn <= 7; ++conn) {
    LOAD_OR_SKIP(bytes, "logger-direct/logger-octet.conn00" + std::to_string(conn) + ".raw");
    for (std::string& m : split_frames(bytes, Framing::kOctetCounted)) octet.push_back(std::move(m));
  }
  for (int conn = 1; conn <= 5; ++conn) {
    LOAD_OR_SKIP(bytes, "logger-direct/logger-lf.conn00" + std::to_string(conn) + ".raw");
    for (std::string& m : split_frames(bytes, Framing::kLf)) lf.push_back(std::move(m));
  }
  LOAD_OR_SKIP(udp_raw, "logger-direct/logger.udp.raw");
  LOAD_OR_SKIP(udp_index, "logger-direct/logger.udp.idx.jsonl");
  std::vector<Parsed> all_octet = parse_all(octet), all_lf = parse_all(lf),
                      all_udp = parse_all(split_datagrams(udp_raw, udp_index));
  EXPECT_EQ(all_octet.size(), 11u);  // README: 11 + 10 + 11
  EXPECT_EQ(all_lf.size(), 10u);
  EXPECT_EQ(all_udp.size(), 11u);

  for (const auto* all : {&all_octet, &all_lf, &all_udp}) {
    for (const Parsed& p : *all) {
      if (p.raw == "second line, after a raw LF") {
        // logger-lf.conn003: a raw LF inside an LF-framed message makes its second
        // line a message of its own, with no PRI; it must stay unparsed.
        EXPECT_EQ(p.f.kind, Kind::kUnparsed);
        continue;
      }
      EXPECT_NE(p.f.kind, Kind::kUnparsed) << p.raw;
      EXPECT_FALSE(p.f.app_name.empty()) << p.raw;
      expect_json_matches(p.f);
    }
  }

  // Structured data with every escape, over all three transports.
  for (const auto* all : {&all_octet, &all_lf, &all_udp}) {
    const Parsed* p = find_raw(*all, "pam_unix");
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->f.kind, Kind::kRfc5424);
    EXPECT_EQ(p->f.msgid, "AUTH");
    EXPECT_TRUE(all_digits(p->f.procid));
    EXPECT_TRUE(p->f.structured_data.starts_with("[timeQuality "));
    EXPECT_TRUE(p->f.structured_data.ends_with("note=\"quote \\\" bracket \\] backslash \\\\ done\" empty=\"\"]"));
    EXPECT_TRUE(p->f.msg.starts_with("session") || p->f.msg.starts_with("authentication failure"));
  }
  const Parsed* p = find_raw(all_octet, "billing-api");  // two SD elements after timeQuality
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->f.structured_data,
            "[timeQuality tzKnown=\"1\" isSynced=\"0\"][origin ip=\"127.0.0.1\" software=\"billing-api\"]"
            "[corp@32473 tenant=\"acme, inc.\" amount=\"99999.99\"]");
  EXPECT_EQ(p->f.msg, "refund issued: amount=99999.99 currency=EUR memo=\"tab\there\"");
  EXPECT_EQ(p->f.facility, 19);
  EXPECT_EQ(p->f.severity, 4);

  // The 3.7 KiB message in all transports; the one logger cut inside a UTF-8 char.
  size_t big = 0;
  for (const auto* all : {&all_octet, &all_lf, &all_udp}) {
    for (const Parsed& q : *all) {
      if (q.f.app_name != "bulk-export") continue;
      EXPECT_EQ(q.f.kind, Kind::kRfc5424);
      EXPECT_TRUE(q.f.msg.starts_with("EXPORT batch=42 [0000]"));
      if (q.f.msg.size() > 3000) ++big;
    }
  }
  EXPECT_EQ(big, 3u);
  p = nullptr;
  for (const Parsed& q : all_octet) {
    if (q.raw.ends_with("viewed record #16 in \xe6")) p = &q;  // logger-octet.conn004
  }
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(engine::valid_utf8(p->f.msg));
  EXPECT_TRUE(json_members(p->f)["msg"].text.ends_with("record #16 in \xEF\xBF\xBD"));

  // UDP datagrams: one per logger call in commands.txt.
  p = find_raw(all_udp, "invalid utf8");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(json_members(p->f)["msg"].text,
            "invalid utf8 \xEF\xBF\xBD\xEF\xBF\xBD, ANSI \x1b[31mred\x1b[0m, bell \a end");
  p = find_raw(all_udp, "BOM-prefixed");
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(p->f.has_bom);
  EXPECT_EQ(p->f.msg, "BOM-prefixed UTF-8 message: Zo\xc3\xab \xe6\x9d\xb1\xe4\xba\xac");
  p = find_raw(all_udp, "nil timestamp");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->f.timestamp, "-");
  EXPECT_EQ(p->f.hostname, "-");
  EXPECT_EQ(json_members(p->f).count("timestamp"), 0u);
  p = find_raw(all_udp, "no structured data at all");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->f.structured_data, "-");
  p = find_raw(all_udp, "kern.emerg requested");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->f.facility, 1);  // logger maps kern to user: <8>
  EXPECT_EQ(p->f.severity, 0);
  p = find_raw(all_udp, "<191>");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->f.kind, Kind::kRfc3164);
  EXPECT_EQ(p->f.facility, 23);
  EXPECT_EQ(p->f.severity, 7);
  EXPECT_EQ(p->f.app_name, "prio");
  EXPECT_EQ(p->f.msg, "local7.debug");
  p = find_raw(all_udp, "cron:");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->f.msg, "(root) CMD (/usr/local/bin/backup.sh --full)");
  p = find_raw(all_udp, "multiline: first line\nsecond line");  // UDP keeps the LF inside
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->f.msg, "first line\nsecond line");

  // logger reading stdin: empty, spaces-only, TABs and a trailing CR.
  std::vector<std::string_view> stdin_5424, stdin_3164;
  for (const Parsed& q : all_octet) {
    if (q.f.app_name == "stdin-reader") stdin_5424.push_back(q.f.msg);
  }
  for (const Parsed& q : all_lf) {
    if (q.f.app_name == "stdin-reader") stdin_3164.push_back(q.f.msg);
  }
  const std::vector<std::string_view> expected = {"line one", "", "   ", "line\twith\ttabs\r",
                                                  "last line without newline"};
  EXPECT_EQ(stdin_5424, expected);
  EXPECT_EQ(stdin_3164, expected);
}

TEST(SyslogCorpus, RsyslogSelf) {
  LOAD_OR_SKIP(octet_bytes, "rsyslog-self/rsyslog-self-rfc5424-octet.conn001.raw");
  LOAD_OR_SKIP(lf_bytes, "rsyslog-self/rsyslog-self-rfc3164-lf.conn001.raw");
  std::vector<Parsed> a = parse_all(split_frames(octet_bytes, Framing::kOctetCounted));
  std::vector<Parsed> b = parse_all(split_frames(lf_bytes, Framing::kLf));
  EXPECT_EQ(a.size(), 62u);
  EXPECT_EQ(b.size(), 62u);
  for (const Parsed& p : a) {
    EXPECT_EQ(p.f.kind, Kind::kRfc5424) << p.raw;
    expect_json_matches(p.f);
  }
  for (const Parsed& p : b) {
    EXPECT_EQ(p.f.kind, Kind::kRfc3164) << p.raw;
    expect_json_matches(p.f);
  }
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    // Both forwards of one event agree on PRI and, where rsyslog had a real
    // program name, on it.
    EXPECT_EQ(a[i].f.facility, b[i].f.facility);
    EXPECT_EQ(a[i].f.severity, b[i].f.severity);
    EXPECT_EQ(a[i].f.app_name, b[i].f.app_name) << a[i].raw << "\n" << b[i].raw;
  }
  const Parsed* p = find_raw(a, "rsyslogd was HUPed");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->f.app_name, "rsyslogd");
  EXPECT_EQ(p->f.structured_data, "-");
  EXPECT_TRUE(p->f.msg.starts_with("[origin software=\"rsyslogd\""));
  p = find_raw(b, "rsyslogd-pstats:");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->f.app_name, "rsyslogd-pstats");
  EXPECT_TRUE(p->f.msg.starts_with("{ \"name\""));
}

}  // namespace
}  // namespace logseal::ingest
