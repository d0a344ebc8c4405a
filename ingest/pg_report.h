// `logseal report pg-roles`: what each database role did, from the pgaudit records
// of a stream, and which audited statements fall outside a role policy.
//
// Which records count: every record whose fields hold `pgaudit` (docs/FORMAT.md
// 5.2): reassembled syslog entries and backfilled csvlog/jsonlog rows. Syslog
// fragments carry only a syslog view and are never read as audit records, so each
// audit record counts once. Records with `pg_error` (they look like AUDIT entries
// but did not parse) are counted apart, so a wrong log_line_prefix is not silence.
//
// The role is `postgres.user` (the session user, %u / user_name); a record without
// it is reported under "(unknown)" and is always outside a policy.
//
// Policy file (TOML), one table per role, keyed by the role name exactly as
// PostgreSQL logs it:
//
//   [roles.app]
//   classes  = ["READ", "WRITE", "MISC"]             # required: pgaudit classes
//   commands = ["SELECT", "INSERT", "UPDATE", "BEGIN", "COMMIT"]   # optional globs
//   objects  = ["public.orders", "public.items*"]    # optional globs on object_name
//
// An audit record (role R, class C, command M, object O) is inside the policy when
//   1. R has a table (no table: no allowance at all; deny by default);
//   2. C is one of R's classes (READ, WRITE, FUNCTION, ROLE, DDL, MISC, MISC_SET);
//   3. `commands` is absent, or M matches one of its patterns;
//   4. O is empty, or O matches one of R's `objects` patterns (none given: no
//      object is allowed).
// Rule 4 lets object-less statements through on their class and command alone:
// pgaudit logs no object for SET/SHOW/BEGIN, SELECT without a relation, ROLE
// statements, session DDL with log_catalog off, or COPY ... FROM STDIN. To forbid
// such statements, leave their class out or list the allowed commands. Patterns are
// fnmatch(3) globs without flags (`*` also matches '.'), case-sensitive; a class
// must be spelled as pgaudit logs it (upper case). Unknown keys, unknown classes,
// empty patterns and wrong types are errors naming the file and line.
//
// Every listed record carries an inclusion proof reference: its index, the
// `logseal prove` command that prints the proof, and whether the latest signed
// checkpoint covers it. The report reads that checkpoint before the records and
// recomputes the Merkle root over the first tree_size records: a root that does
// not match is DataLoss (exit 1), so "provable" is established, not assumed. The
// checkpoint's signature is checked by `logseal check-proof` / `verify` with the
// public key, which the report does not need.
//
// Memory: summaries grow with distinct roles, classes, commands and objects, the
// violation list with the records outside the policy (it is the output); each
// violation keeps at most kPgReportStatementBytesMax bytes of its statement (the
// record itself has all of it). The Merkle check keeps a frontier, O(log n).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "io/env.h"

namespace logseal::ingest {

inline constexpr size_t kPgReportStatementBytesMax = 1024;

// fnmatch(3) with no flags: `*`, `?`, `[...]`; `*` crosses '.'.
bool pg_glob_match(std::string_view pattern, std::string_view text);

// The classes pgaudit logs (pgaudit.c, CLASS_*).
bool is_pgaudit_class(std::string_view name);

struct PgRoleAllowance {
  std::string role;
  std::vector<std::string> classes;
  bool commands_given = false;
  std::vector<std::string> commands;  // globs
  std::vector<std::string> objects;   // globs on object_name
  int64_t line = 0;                   // where the table starts, for messages
};

class PgRolePolicy {
 public:
  // text: the TOML; name: the file name used in messages ("policy FILE line N: ...").
  static Result<PgRolePolicy> parse(std::string_view text, const std::string& name);

  // Why the record is outside the policy, one reason per failed rule (rule 1 alone
  // when the role has no table); empty when it is inside. role_known false: the
  // record has no postgres.user.
  std::vector<std::string> check(std::string_view role, bool role_known, std::string_view class_name,
                                 std::string_view command, std::string_view object_name) const;

  const std::map<std::string, PgRoleAllowance, std::less<>>& roles() const { return roles_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::map<std::string, PgRoleAllowance, std::less<>> roles_;
};

// When a role was seen: the record's index and received time, and the time
// PostgreSQL printed (empty when the source did not carry it).
struct PgSeen {
  uint64_t index = 0;
  int64_t received_ns = 0;
  std::string pg_time;
};

struct PgRoleSummary {
  std::string role;  // "(unknown)" when !known
  bool known = true;
  uint64_t records = 0;     // audit records
  uint64_t statements = 0;  // distinct (statement_id, substatement_id) runs per backend
  PgSeen first, last;
  std::set<std::string> databases;
  std::map<std::string, uint64_t> classes;
  std::map<std::string, uint64_t> commands;
  std::map<std::pair<std::string, std::string>, uint64_t> objects;  // (object_type, object_name)
};

struct PgViolation {
  uint64_t index = 0;
  int64_t received_ns = 0;
  std::string role;  // "(unknown)" when !role_known
  bool role_known = true;
  std::string database, pg_time;
  std::string class_name, command, object_type, object_name;
  std::string statement;  // at most kPgReportStatementBytesMax bytes
  bool statement_truncated = false;
  std::vector<std::string> reasons;
  bool provable = false;  // index < the latest signed checkpoint's tree_size
};

struct PgCheckpointRef {
  bool present = false;
  uint64_t tree_size = 0;
  Hash32 root{};
  int64_t time_ns = 0;
  Hash32 key_id{};
  // The stream's records were hashed and gave this checkpoint's root. False when
  // the first readable record is not 0 (records before it are not in the data
  // directory), so nothing can be proven against it here.
  bool root_checked = false;
};

struct PgReportOptions {
  std::string stream;
  int64_t since_ns = INT64_MIN;          // received at or after
  int64_t until_ns = INT64_MAX;          // received before
  const PgRolePolicy* policy = nullptr;  // nullptr: summary only
};

struct PgRoleReport {
  std::string stream;
  uint64_t first_index = 0;          // of the first record read
  uint64_t records_scanned = 0;      // every record of the stream read
  uint64_t audit_records = 0;        // with fields.pgaudit, inside the time range
  uint64_t audit_errors = 0;         // with pg_error, inside the time range
  std::vector<PgRoleSummary> roles;  // known roles by name, then "(unknown)"
  bool has_policy = false;
  std::string policy_name;
  std::vector<PgViolation> violations;  // in index order
  PgCheckpointRef checkpoint;
  // A segment could not be read to its end without losing a record (the newest
  // segment's tail, or a seal landing after a roll, when logseald runs; else
  // damage). The report covers the records before it and says so. (Records
  // missing between segments are DataLoss, no report.)
  bool tail_unread = false;
  uint64_t tail_segment_seq = 0;
  uint64_t tail_offset = 0;
  std::string tail_why;
};

// Reads the stream once. NotFound / InvalidArgument for a missing stream or bad
// options; DataLoss when the records do not hash to the latest signed checkpoint
// or records are missing between the first and the last one read.
Result<PgRoleReport> build_pg_role_report(io::Env& env, const std::string& data_dir, const PgReportOptions& options);

// The `logseal prove` command line that prints the proof of one record.
std::string pg_prove_command(const std::string& data_dir, const std::string& stream, uint64_t index);

// Text: a table of roles, a block per role, then the violations (with a policy).
std::string format_pg_role_report_text(const PgRoleReport& report, const std::string& data_dir);
// One JSON object (README "Database role report" shows the shape).
std::string format_pg_role_report_json(const PgRoleReport& report, const std::string& data_dir);

}  // namespace logseal::ingest
