#include "ingest/pg_prefix.h"

#include <algorithm>
#include <charconv>

namespace logseal::ingest {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string_view trim_spaces(std::string_view v) {
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  return v;
}

// Length of "YYYY-MM-DD HH:MM:SS[.f+] ZONE" at the start of s, 0 if none.
size_t timestamp_length(std::string_view s) {
  static constexpr std::string_view kShape = "dddd-dd-dd dd:dd:dd";
  if (s.size() < kShape.size()) return 0;
  for (size_t i = 0; i < kShape.size(); ++i) {
    if (kShape[i] == 'd' ? !is_digit(s[i]) : s[i] != kShape[i]) return 0;
  }
  size_t i = kShape.size();
  if (i < s.size() && s[i] == '.') {
    size_t j = i + 1;
    while (j < s.size() && is_digit(s[j])) ++j;
    if (j == i + 1) return 0;
    i = j;
  }
  if (i >= s.size() || s[i] != ' ') return 0;
  size_t j = i + 1;
  while (j < s.size() && s[j] != ' ' && s[j] != '\n') ++j;
  return j == i + 1 ? 0 : j;
}

}  // namespace

bool split_severity(std::string_view rest, std::string_view& severity, std::string_view& message) {
  size_t i = 0;
  while (i < rest.size() && rest[i] >= 'A' && rest[i] <= 'Z') ++i;
  if (i == 0 || rest.substr(i, 3) != ":  ") return false;
  severity = rest.substr(0, i);
  message = rest.substr(i + 3);
  return true;
}

Result<PgLinePrefix> PgLinePrefix::compile(std::string_view log_line_prefix) {
  if (log_line_prefix.find('\n') != std::string_view::npos) {
    return invalid_argument("log_line_prefix: byte " + std::to_string(log_line_prefix.find('\n')) +
                            ": LF in the prefix is not supported");
  }
  PgLinePrefix p;
  p.source_ = std::string(log_line_prefix);
  auto literal = [&](std::string_view text) {
    if (p.tokens_.empty() || p.tokens_.back().kind != Kind::kLiteral) p.tokens_.push_back(Token{});
    p.tokens_.back().literal.append(text);
  };
  const std::string_view f = log_line_prefix;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] != '%') {
      literal(f.substr(i, 1));
      continue;
    }
    if (++i >= f.size()) break;  // trailing '%': PostgreSQL prints nothing
    bool padded = false;
    if (f[i] == '-' || is_digit(f[i])) {
      padded = true;
      if (f[i] == '-') ++i;
      while (i < f.size() && is_digit(f[i])) ++i;
      if (i >= f.size()) break;
    }
    Token t;
    t.padded = padded;
    switch (f[i]) {
      case 'u': t.kind = Kind::kFreeText, t.field = Field::kUser; break;
      case 'd': t.kind = Kind::kFreeText, t.field = Field::kDatabase; break;
      case 'a': t.kind = Kind::kFreeText, t.field = Field::kApplication; break;
      case 'b':
      case 'i': t.kind = Kind::kFreeText; break;
      case 'h': t.kind = Kind::kWord, t.field = Field::kClient; break;
      case 'r': t.kind = Kind::kWord, t.field = Field::kClientRemote; break;
      case 'c':
      case 'v':
      case 'e': t.kind = Kind::kWord; break;
      case 'p': t.kind = Kind::kNumber, t.field = Field::kPid; break;
      case 'P':
      case 'l':
      case 'x':
      case 'Q': t.kind = Kind::kNumber; break;
      case 'm': t.kind = Kind::kTimestamp, t.field = Field::kTimeM; break;
      case 't': t.kind = Kind::kTimestamp, t.field = Field::kTimeT; break;
      case 's': t.kind = Kind::kTimestamp; break;
      case 'n': t.kind = Kind::kEpoch, t.field = Field::kTimeN; break;
      case 'q': t.kind = Kind::kStop; break;
      case '%': literal("%"); continue;
      default: continue;  // unknown escape: PostgreSQL prints nothing
    }
    p.tokens_.push_back(std::move(t));
  }
  return p;
}

struct PgLinePrefix::State {
  std::string_view line;
  PgPrefixMatch* out = nullptr;
  int steps = 0;
  size_t furthest = 0;
  int time_rank = 0;  // 3 %m, 2 %t, 1 %n: the best time escape assigned so far
};

void PgLinePrefix::assign(const Token& t, std::string_view value, State& st) const {
  if (t.padded) value = trim_spaces(value);
  PgFields& f = st.out->fields;
  switch (t.field) {
    case Field::kNone: break;
    case Field::kUser: f.user = value; break;
    case Field::kDatabase: f.database = value; break;
    case Field::kApplication: f.application = value; break;
    case Field::kClient: f.client = value; break;
    case Field::kClientRemote:
      // "host(port)" or "[local]"; %h wins when both are present.
      if (f.client.empty()) {
        if (value.ends_with(')')) {
          size_t open = value.rfind('(');
          if (open != std::string_view::npos) value = value.substr(0, open);
        }
        f.client = value;
      }
      break;
    case Field::kPid: {
      int64_t pid = -1;
      if (!value.empty()) std::from_chars(value.data(), value.data() + value.size(), pid);
      f.pid = pid;
      break;
    }
    case Field::kTimeM:
    case Field::kTimeT:
    case Field::kTimeN: {
      int rank = t.field == Field::kTimeM ? 3 : t.field == Field::kTimeT ? 2 : 1;
      if (rank > st.time_rank) {
        st.time_rank = rank;
        f.time = value;
      }
      break;
    }
  }
}

bool PgLinePrefix::match_from(size_t token, size_t pos, State& st) const {
  if (++st.steps > kMatchStepsMax) return false;
  st.furthest = std::max(st.furthest, pos);
  const std::string_view line = st.line;
  auto finish_here = [&](size_t at) {
    std::string_view sev, msg;
    if (!split_severity(line.substr(at), sev, msg)) return false;
    st.out->rest = line.substr(at);
    return true;
  };
  if (token == tokens_.size()) return finish_here(pos);
  const Token& t = tokens_[token];
  switch (t.kind) {
    case Kind::kLiteral:
      if (line.substr(pos).starts_with(t.literal)) return match_from(token + 1, pos + t.literal.size(), st);
      return false;
    case Kind::kStop:
      if (match_from(token + 1, pos, st)) return true;
      if (finish_here(pos)) {
        st.out->session = false;
        return true;
      }
      return false;
    case Kind::kFreeText:
    case Kind::kWord: {
      // Candidate ends, shortest first: where the next literal occurs (or
      // anywhere when another escape follows), never past the end of the first
      // line, and for a word never past a space (padding aside).
      size_t limit = line.find('\n', pos);
      if (limit == std::string_view::npos) limit = line.size();
      size_t from = pos;
      if (t.kind == Kind::kWord) {
        if (t.padded) {
          while (from < limit && line[from] == ' ') ++from;
        }
        size_t sp = line.find(' ', from);
        if (sp != std::string_view::npos && sp < limit) {
          limit = sp;
          if (t.padded) {
            while (limit < line.size() && line[limit] == ' ') ++limit;
          }
        }
      }
      const bool literal_next = token + 1 < tokens_.size() && tokens_[token + 1].kind == Kind::kLiteral;
      const std::string& next = literal_next ? tokens_[token + 1].literal : std::string();
      for (size_t e = pos; e <= limit;) {
        if (literal_next) {
          size_t hit = line.find(next, e);
          if (hit == std::string_view::npos || hit > limit) return false;
          e = hit;
        }
        if (match_from(token + 1, e, st)) {
          assign(t, line.substr(pos, e - pos), st);
          return true;
        }
        if (st.steps > kMatchStepsMax) return false;
        ++e;
      }
      return false;
    }
    case Kind::kNumber: {
      size_t e = pos;
      if (t.padded) {
        while (e < line.size() && line[e] == ' ') ++e;
      }
      if (e < line.size() && line[e] == '-') ++e;
      while (e < line.size() && is_digit(line[e])) ++e;
      if (t.padded) {
        while (e < line.size() && line[e] == ' ') ++e;
      }
      if (!match_from(token + 1, e, st)) return false;
      assign(t, line.substr(pos, e - pos), st);
      return true;
    }
    case Kind::kTimestamp: {
      size_t n = timestamp_length(line.substr(pos));
      if (n == 0 || !match_from(token + 1, pos + n, st)) return false;
      assign(t, line.substr(pos, n), st);
      return true;
    }
    case Kind::kEpoch: {
      size_t e = pos;
      while (e < line.size() && is_digit(line[e])) ++e;
      if (e == pos || e >= line.size() || line[e] != '.') return false;
      size_t d = ++e;
      while (e < line.size() && is_digit(line[e])) ++e;
      if (e == d || !match_from(token + 1, e, st)) return false;
      assign(t, line.substr(pos, e - pos), st);
      return true;
    }
  }
  return false;
}

Status PgLinePrefix::match(std::string_view line, PgPrefixMatch& out) const {
  out = PgPrefixMatch{};
  State st;
  st.line = line;
  st.out = &out;
  if (match_from(0, 0, st)) return ok_status();
  out = PgPrefixMatch{};
  if (st.steps > kMatchStepsMax) {
    return invalid_argument("log_line_prefix: gave up after " + std::to_string(kMatchStepsMax) + " steps");
  }
  return invalid_argument("log_line_prefix \"" + source_ + "\" does not match: byte " + std::to_string(st.furthest) +
                          " (matched that far, then no severity or literal)");
}

}  // namespace logseal::ingest
