// PostgreSQL's log_line_prefix, compiled once into a matcher that splits a log line
// into the prefix's fields and the rest ("LOG:  message...").
//
// Escapes (PostgreSQL 15, elog.c log_line_prefix()) and how each is matched:
//   %u user, %d database, %a application, %b backend type, %i command tag
//        free text (may hold spaces; see "ambiguity" below)
//   %h client host, %r host(port), %c session id, %v virtual xid, %e SQLSTATE
//        one word: no space
//   %p pid, %P leader pid, %l line number, %x xid, %Q query id
//        decimal, possibly empty (%P, %v outside a parallel group / transaction) or
//        negative (%Q)
//   %m, %t, %s  "YYYY-MM-DD HH:MM:SS[.fff] ZONE" (ZONE one word, e.g. UTC, CET, +03)
//   %n   epoch seconds with milliseconds, "1700000000.123"
//   %q   ends the prefix in processes without a session (postmaster, background
//        workers); the line may stop here
//   %%   a literal '%'
//   other escapes and a trailing lone '%' print nothing in PostgreSQL, so they match
//        nothing here
// A numeric padding ("%-10u", "%8p") pads with spaces; matched values are trimmed.
//
// Fields: user (%u), database (%d), application (%a), client (%h, else the host
// part of %r), pid (%p), time (%m, else %t, else %n). Other escapes are matched
// and skipped.
//
// Ambiguity rules. Free-text fields end where the rest of the prefix matches, so
// "%a %h " with application "DBeaver 23.2.0 - SQLEditor" works: the matcher tries
// the shortest value first and backtracks to longer ones until the whole prefix
// matches AND the rest starts with a severity ("[A-Z]+:  ", which PostgreSQL
// always writes with lc_messages=C). The first such split wins, so a value that
// itself contains the next literal followed by text that also matches the rest of
// the prefix and a severity (e.g. an application named "x 127.0.0.1 LOG:  y")
// is split at its first possible point. %q is tried both ways, session first.
// Adjacent free-text escapes ("%u%d") are accepted but split shortest-first.
// Backtracking is bounded (kMatchStepsMax); past it the line does not match.
// Translated severities (lc_messages other than C) are not recognised.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "ingest/pgaudit.h"

namespace logseal::ingest {

struct PgPrefixMatch {
  PgFields fields;
  std::string_view rest;  // from the severity on: "LOG:  AUDIT: ..."
  bool session = true;    // false when the line stopped at %q
};

class PgLinePrefix {
 public:
  static constexpr int kMatchStepsMax = 4096;

  // Compiles log_line_prefix. Fails for a prefix holding a LF: PostgreSQL would
  // print it as two lines, which syslog delivers as two fragments.
  static Result<PgLinePrefix> compile(std::string_view log_line_prefix);

  // Splits line. InvalidArgument naming the byte offset where matching got
  // furthest when the prefix does not match.
  Status match(std::string_view line, PgPrefixMatch& out) const;

  const std::string& source() const { return source_; }

 private:
  enum class Kind : uint8_t {
    kLiteral,
    kFreeText,  // %u %d %a %b %i
    kWord,      // %h %r %c %v %e
    kNumber,    // %p %P %l %x %Q
    kTimestamp, // %m %t %s
    kEpoch,     // %n
    kStop,      // %q
  };
  enum class Field : uint8_t { kNone, kUser, kDatabase, kApplication, kClient, kClientRemote, kPid, kTimeM, kTimeT, kTimeN };
  struct Token {
    Kind kind = Kind::kLiteral;
    Field field = Field::kNone;
    bool padded = false;
    std::string literal;  // kLiteral
  };
  struct State;

  bool match_from(size_t token, size_t pos, State& st) const;
  void assign(const Token& t, std::string_view value, State& st) const;

  std::string source_;
  std::vector<Token> tokens_;
};

// Splits "SEVERITY:  message" into its parts; false when rest does not start with
// a severity ("[A-Z]+:  ").
bool split_severity(std::string_view rest, std::string_view& severity, std::string_view& message);

}  // namespace logseal::ingest
