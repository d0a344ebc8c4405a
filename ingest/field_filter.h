// `logseal export --where`: conditions on a record's parsed fields, ANDed.
//
//   FIELD=VALUE    the field equals VALUE exactly (bytes, case-sensitive)
//   FIELD~=VALUE   the field contains VALUE (substring)
//
// FIELD is a dotted path into the fields object as export shows it:
// `pgaudit.class`, `postgres.user`, `syslog.app_name`, `k8s.verb`. Strings compare
// as text; numbers and booleans by their JSON spelling (`pgaudit.rows=1`,
// `postgres.pid=4242`); an array matches when one of its elements does (e.g.
// `pg_flags=gap`). A record without the field does not match. Keys holding a '.'
// cannot be named (no field of this appliance has one).
//
// Not thread-safe (one parser, reused per record).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace logseal::ingest {

class FieldFilter {
 public:
  FieldFilter();
  ~FieldFilter();
  FieldFilter(FieldFilter&&) noexcept;
  FieldFilter& operator=(FieldFilter&&) noexcept;

  // InvalidArgument naming the condition when it has no '=' or an empty path part.
  static Result<FieldFilter> parse(const std::vector<std::string>& conditions);

  bool empty() const { return conditions_.empty(); }
  // The first path part of every condition ("pgaudit", "syslog", ...): a record
  // whose fields cannot hold them all is rejected without being parsed.
  const std::vector<std::string>& roots() const { return roots_; }
  // fields_json: the record's fields as export renders them. False for invalid JSON.
  bool matches(std::string_view fields_json);

 private:
  struct Condition {
    std::vector<std::string> path;
    std::string value;
    bool substring = false;
  };
  struct Parser;
  std::vector<Condition> conditions_;
  std::vector<std::string> roots_;
  std::unique_ptr<Parser> parser_;
};

}  // namespace logseal::ingest
