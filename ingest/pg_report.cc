#include "ingest/pg_report.h"

#include <fnmatch.h>
#include <simdjson.h>
#include <toml++/toml.h>

#include <algorithm>

#include "engine/export.h"
#include "engine/merkle.h"
#include "engine/reader.h"

namespace logseal::ingest {

namespace {

constexpr std::string_view kUnknownRole = "(unknown)";
constexpr std::string_view kClasses[] = {"READ", "WRITE", "FUNCTION", "ROLE", "DDL", "MISC", "MISC_SET"};

// The longest prefix of s of at most max_bytes that does not cut a UTF-8 sequence.
std::string_view utf8_prefix(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  size_t n = max_bytes;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xc0) == 0x80) --n;
  return s.substr(0, n);
}

std::string policy_error(const std::string& name, int64_t line, const std::string& what) {
  return "policy " + name + " line " + std::to_string(line) + ": " + what;
}

// A TOML array of non-empty strings; InvalidArgument naming the line otherwise.
Result<std::vector<std::string>> string_list(const toml::node& node, const std::string& name, const std::string& key) {
  const toml::array* arr = node.as_array();
  int64_t line = static_cast<int64_t>(node.source().begin.line);
  if (arr == nullptr) return invalid_argument(policy_error(name, line, key + " must be an array of strings"));
  std::vector<std::string> out;
  for (const toml::node& e : *arr) {
    std::optional<std::string> s = e.value<std::string>();
    int64_t eline = static_cast<int64_t>(e.source().begin.line);
    if (!s) return invalid_argument(policy_error(name, eline, key + " must hold only strings"));
    if (s->empty()) return invalid_argument(policy_error(name, eline, key + " holds an empty pattern"));
    out.push_back(std::move(*s));
  }
  return out;
}

bool any_match(const std::vector<std::string>& patterns, std::string_view text) {
  for (const std::string& p : patterns) {
    if (pg_glob_match(p, text)) return true;
  }
  return false;
}

}  // namespace

bool pg_glob_match(std::string_view pattern, std::string_view text) {
  // fnmatch needs NUL-terminated strings; a NUL inside either cannot match
  // anything a policy names.
  std::string p(pattern), t(text);
  if (p.find('\0') != std::string::npos || t.find('\0') != std::string::npos) return false;
  return ::fnmatch(p.c_str(), t.c_str(), 0) == 0;
}

bool is_pgaudit_class(std::string_view name) {
  return std::find(std::begin(kClasses), std::end(kClasses), name) != std::end(kClasses);
}

// ---- policy -------------------------------------------------------------------

Result<PgRolePolicy> PgRolePolicy::parse(std::string_view text, const std::string& name) {
  toml::table doc;
  // toml++ reports errors by exception; they stop here, as a Status.
  try {
    doc = toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    return invalid_argument(
        policy_error(name, static_cast<int64_t>(e.source().begin.line), std::string(e.description())));
  }
  PgRolePolicy policy;
  policy.name_ = name;
  for (auto&& [key, node] : doc) {
    int64_t line = static_cast<int64_t>(key.source().begin.line);
    if (key.str() != "roles") {
      return invalid_argument(
          policy_error(name, line, "unknown key '" + std::string(key.str()) + "' (expected [roles.NAME])"));
    }
    const toml::table* roles = node.as_table();
    if (roles == nullptr) {
      return invalid_argument(policy_error(name, line, "roles must be a table of [roles.NAME] tables"));
    }
    for (auto&& [role_key, role_node] : *roles) {
      int64_t rline = static_cast<int64_t>(role_key.source().begin.line);
      std::string role(role_key.str());
      const toml::table* t = role_node.as_table();
      if (t == nullptr) return invalid_argument(policy_error(name, rline, "roles." + role + " must be a table"));
      if (role.empty()) return invalid_argument(policy_error(name, rline, "empty role name"));
      PgRoleAllowance a;
      a.role = role;
      a.line = rline;
      bool have_classes = false;
      for (auto&& [k, v] : *t) {
        int64_t kline = static_cast<int64_t>(k.source().begin.line);
        std::string where = "roles." + role + "." + std::string(k.str());
        if (k.str() == "classes") {
          LS_ASSIGN_OR_RETURN(a.classes, string_list(v, name, where));
          for (size_t i = 0; i < a.classes.size(); ++i) {
            if (!is_pgaudit_class(a.classes[i])) {
              const toml::node* e = v.as_array()->get(i);
              return invalid_argument(policy_error(
                  name, static_cast<int64_t>(e->source().begin.line),
                  "unknown class '" + a.classes[i] + "' (READ, WRITE, FUNCTION, ROLE, DDL, MISC, MISC_SET)"));
            }
          }
          have_classes = true;
        } else if (k.str() == "commands") {
          LS_ASSIGN_OR_RETURN(a.commands, string_list(v, name, where));
          a.commands_given = true;
        } else if (k.str() == "objects") {
          LS_ASSIGN_OR_RETURN(a.objects, string_list(v, name, where));
        } else {
          return invalid_argument(
              policy_error(name, kline, "unknown key '" + where + "' (expected classes, commands, objects)"));
        }
      }
      if (!have_classes) {
        return invalid_argument(
            policy_error(name, rline, "roles." + role + " has no classes (e.g. classes = [\"READ\"])"));
      }
      policy.roles_.emplace(role, std::move(a));
    }
  }
  return policy;
}

std::vector<std::string> PgRolePolicy::check(std::string_view role, bool role_known, std::string_view class_name,
                                             std::string_view command, std::string_view object_name) const {
  std::vector<std::string> why;
  if (!role_known) {
    why.push_back("role unknown (no postgres.user)");
    return why;
  }
  auto it = roles_.find(role);
  if (it == roles_.end()) {
    why.push_back("role " + std::string(role) + " not in policy");
    return why;
  }
  const PgRoleAllowance& a = it->second;
  if (std::find(a.classes.begin(), a.classes.end(), class_name) == a.classes.end()) {
    why.push_back("class " + std::string(class_name) + " not allowed");
  }
  if (a.commands_given && !any_match(a.commands, command)) {
    why.push_back("command " + std::string(command) + " not allowed");
  }
  if (!object_name.empty() && !any_match(a.objects, object_name)) {
    why.push_back("object " + std::string(object_name) + " not allowed");
  }
  return why;
}

// ---- report --------------------------------------------------------------------

namespace {

// Named results throughout: simdjson's temporaries trip GCC's dangling-pointer check.
std::string json_string(simdjson::dom::object o, const char* key) {
  std::string_view v;
  simdjson::simdjson_result<simdjson::dom::element> e = o[key];
  if (e.get(v) != simdjson::SUCCESS) return {};
  return std::string(v);
}

bool json_string_present(simdjson::dom::object o, const char* key, std::string* out) {
  std::string_view v;
  simdjson::simdjson_result<simdjson::dom::element> e = o[key];
  if (e.get(v) != simdjson::SUCCESS) return false;
  *out = std::string(v);
  return true;
}

int64_t json_int(simdjson::dom::object o, const char* key, int64_t fallback) {
  int64_t v = 0;
  simdjson::simdjson_result<simdjson::dom::element> e = o[key];
  if (e.get(v) != simdjson::SUCCESS) return fallback;
  return v;
}

uint64_t json_uint(simdjson::dom::object o, const char* key) {
  uint64_t v = 0;
  simdjson::simdjson_result<simdjson::dom::element> e = o[key];
  if (e.get(v) != simdjson::SUCCESS) return 0;
  return v;
}

struct StatementKey {
  uint64_t statement_id = 0, substatement_id = 0;
  bool operator==(const StatementKey&) const = default;
};

}  // namespace

Result<PgRoleReport> build_pg_role_report(io::Env& env, const std::string& data_dir, const PgReportOptions& options) {
  if (options.stream.empty()) return invalid_argument("--stream is required");
  PgRoleReport report;
  report.stream = options.stream;
  report.has_policy = options.policy != nullptr;
  if (options.policy != nullptr) report.policy_name = options.policy->name();

  // The checkpoint first: records written after it was read are then simply
  // beyond its tree_size, never "missing" from a checkpoint read later.
  Result<engine::SignedCheckpoint> cp = engine::latest_checkpoint(env, data_dir, options.stream);
  if (cp.ok()) {
    report.checkpoint.present = true;
    report.checkpoint.tree_size = cp->decoded.tree_size;
    report.checkpoint.root = cp->decoded.root;
    report.checkpoint.time_ns = cp->decoded.time_ns;
    report.checkpoint.key_id = cp->decoded.key_id;
  } else if (cp.status().code() != Code::kNotFound) {
    return cp.status();
  }
  const uint64_t covered = report.checkpoint.tree_size;

  merkle::MerkleFrontier frontier;
  std::map<std::string, PgRoleSummary> known;
  PgRoleSummary unknown;
  unknown.role = kUnknownRole;
  unknown.known = false;
  std::map<int64_t, StatementKey> last_statement;  // per backend pid (-1: pid not logged)
  simdjson::dom::parser parser;
  std::string fields_json;
  Status inner;
  std::vector<engine::ReadGap> gaps;
  uint64_t next_index = 0;

  Status st = engine::for_each_record(
      env, data_dir, options.stream,
      [&](const engine::StoredRecord& r) {
        // Records missing in the middle (a damaged batch: the reader goes on with
        // the next segment) would make the report quietly understate; a prefix
        // not in the directory (pruned) only rules out proofs from here.
        if (report.records_scanned == 0) {
          report.first_index = r.index;
        } else if (r.index != next_index) {
          inner = data_loss("records " + std::to_string(next_index) + " to " + std::to_string(r.index - 1) +
                            " of stream " + options.stream + " cannot be read; run `logseal verify`");
          return false;
        }
        next_index = r.index + 1;
        ++report.records_scanned;
        if (report.first_index == 0 && r.index < covered) frontier.append(merkle::leaf_hash(r.bytes));
        if (r.view.received_ns < options.since_ns || r.view.received_ns >= options.until_ns) return true;
        // Only JSON fields can hold pgaudit (a syslog view is binary spans): skip the
        // fragments and other records without parsing them.
        std::string_view f = r.view.fields;
        bool has_audit = f.find("\"pgaudit\":") != std::string_view::npos;
        bool has_error = f.find("\"pg_error\":") != std::string_view::npos;
        if (!has_audit && !has_error) return true;
        fields_json.clear();
        engine::append_fields_json(r.view.fields, r.view.raw, fields_json);
        simdjson::dom::object root;
        if (parser.parse(fields_json).get(root) != simdjson::SUCCESS) {
          inner = data_loss("record " + std::to_string(r.index) + " of stream " + options.stream +
                            " has fields that are not a JSON object; run `logseal verify`");
          return false;
        }
        simdjson::dom::object pga;
        simdjson::simdjson_result<simdjson::dom::element> pga_e = root["pgaudit"];
        if (pga_e.get(pga) != simdjson::SUCCESS) {
          if (has_error) ++report.audit_errors;
          return true;
        }
        ++report.audit_records;
        simdjson::dom::object pg;
        simdjson::simdjson_result<simdjson::dom::element> pg_e = root["postgres"];
        bool have_pg = pg_e.get(pg) == simdjson::SUCCESS;
        std::string user, database, pg_time;
        int64_t pid = -1;
        bool role_known = have_pg && json_string_present(pg, "user", &user) && !user.empty();
        if (have_pg) {
          database = json_string(pg, "database");
          pg_time = json_string(pg, "time");
          pid = json_int(pg, "pid", -1);
        }
        std::string class_name = json_string(pga, "class");
        std::string command = json_string(pga, "command");
        std::string object_type = json_string(pga, "object_type");
        std::string object_name = json_string(pga, "object_name");
        StatementKey key{json_uint(pga, "statement_id"), json_uint(pga, "substatement_id")};

        PgRoleSummary* s = &unknown;
        if (role_known) {
          auto [it, fresh] = known.try_emplace(user);
          s = &it->second;
          if (fresh) s->role = user;
        }
        PgSeen seen{r.index, r.view.received_ns, pg_time};
        if (s->records == 0) s->first = seen;
        s->last = seen;
        ++s->records;
        // pgaudit writes one record per object of a statement, back to back in its
        // backend, all with the same ids: a statement is a run of equal ids per pid.
        auto [ls, fresh_pid] = last_statement.try_emplace(pid, key);
        if (fresh_pid || !(ls->second == key)) ++s->statements;
        ls->second = key;
        if (!database.empty()) s->databases.insert(database);
        ++s->classes[class_name];
        ++s->commands[command];
        if (!object_type.empty() || !object_name.empty()) ++s->objects[{object_type, object_name}];

        if (options.policy != nullptr) {
          std::vector<std::string> why = options.policy->check(user, role_known, class_name, command, object_name);
          if (!why.empty()) {
            PgViolation v;
            v.index = r.index;
            v.received_ns = r.view.received_ns;
            v.role = role_known ? user : std::string(kUnknownRole);
            v.role_known = role_known;
            v.database = database;
            v.pg_time = pg_time;
            v.class_name = class_name;
            v.command = command;
            v.object_type = object_type;
            v.object_name = object_name;
            std::string statement = json_string(pga, "statement");
            std::string_view kept = utf8_prefix(statement, kPgReportStatementBytesMax);
            v.statement_truncated = kept.size() < statement.size();
            v.statement = std::string(kept);
            v.reasons = std::move(why);
            v.provable = report.first_index == 0 && r.index < covered;
            report.violations.push_back(std::move(v));
          }
        }
        return true;
      },
      &gaps);
  LS_RETURN_IF_ERROR(st);
  LS_RETURN_IF_ERROR(inner);
  // Records are contiguous (checked above). A segment read short lost no record
  // when the record after it was read anyway (the next segment starts there: a
  // seal still being written after a roll, on a running logseald) or when it is
  // the last one read (the newest segment's tail, on a running logseald); both
  // may also be damage, so they are said, not hidden. Otherwise records are gone.
  for (const engine::ReadGap& g : gaps) {
    // Record g.next_index was read (a later segment starts there) or nothing
    // follows it: no record is known to be lost. Before the first record read: lost.
    if (report.records_scanned > 0 && g.next_index < report.first_index) {
      return data_loss("segment " + std::to_string(g.segment_seq) + " of stream " + options.stream +
                       " cannot be read past offset " + std::to_string(g.offset) + " (" + g.why.message() +
                       "); records from " + std::to_string(g.next_index) + " are missing; run `logseal verify`");
    }
    report.tail_unread = true;
    report.tail_segment_seq = g.segment_seq;
    report.tail_offset = g.offset;
    report.tail_why = g.why.message();
  }
  if (report.checkpoint.present && report.first_index == 0) {
    report.checkpoint.root_checked = true;
    if (frontier.size() != covered) {
      return data_loss("stream " + options.stream + " holds " + std::to_string(frontier.size()) +
                       " readable records, its latest checkpoint " + std::to_string(covered) +
                       "; run `logseal verify`");
    }
    if (frontier.root() != report.checkpoint.root) {
      return data_loss("the records of stream " + options.stream +
                       " do not match the latest checkpoint's root; run `logseal verify`");
    }
  }
  for (auto& [name, s] : known) report.roles.push_back(std::move(s));
  if (unknown.records > 0) report.roles.push_back(std::move(unknown));
  return report;
}

// ---- output --------------------------------------------------------------------

namespace {

std::string shell_quote(const std::string& s) {
  bool plain = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.' || c == '/' || c == ':' || c == '=' || c == '+' || c == ',' || c == '@';
  });
  if (plain) return s;
  std::string o = "'";
  for (char c : s) {
    if (c == '\'') {
      o += "'\\''";
    } else {
      o += c;
    }
  }
  return o + "'";
}

// One line of at most max_chars code points: control characters become spaces,
// runs of white space one space, a cut ends in "...".
std::string display(std::string_view s, size_t max_chars) {
  std::string o;
  size_t chars = 0;
  bool space = false;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == ' ' || c == 0x7f) {
      if (!space && !o.empty()) {
        if (chars >= max_chars) return o + "...";
        o += ' ';
        ++chars;
      }
      space = true;
      continue;
    }
    space = false;
    if ((c & 0xc0) != 0x80) {
      if (chars >= max_chars) return o + "...";
      ++chars;
    }
    o += static_cast<char>(c);
  }
  while (!o.empty() && o.back() == ' ') o.pop_back();
  return o;
}

size_t display_width(std::string_view s) {
  size_t n = 0;
  for (char c : s) {
    if ((static_cast<unsigned char>(c) & 0xc0) != 0x80) ++n;
  }
  return n;
}

// Rows of cells as left-aligned columns, two spaces apart.
void append_table(const std::vector<std::vector<std::string>>& rows, std::string& out) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], display_width(row[i]));
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(width[i] - display_width(row[i]) + 2, ' ');
    }
    out += line;
    out += '\n';
  }
}

std::string counts(const std::map<std::string, uint64_t>& m) {
  std::vector<std::pair<std::string, uint64_t>> v(m.begin(), m.end());
  // Most frequent first: what a role mostly does reads first.
  std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string o;
  for (const auto& [k, n] : v) {
    if (!o.empty()) o += ", ";
    o += display(k.empty() ? "(none)" : k, 60) + " " + std::to_string(n);
  }
  return o;
}

std::string seen_text(const PgSeen& s) {
  std::string o = "record " + std::to_string(s.index) + ", received " + engine::rfc3339_ns(s.received_ns);
  if (!s.pg_time.empty()) o += ", postgres " + s.pg_time;
  return o;
}

std::string object_text(const std::string& type, const std::string& name) {
  if (type.empty() && name.empty()) return "-";
  if (type.empty()) return name;
  if (name.empty()) return type;
  return type + " " + name;
}

void append_str(std::string_view s, std::string& out) { engine::append_json_escaped_lossy(s, out); }

void append_seen_json(const PgSeen& s, std::string& o) {
  o += "{\"index\":" + std::to_string(s.index) + ",\"received\":";
  append_str(engine::rfc3339_ns(s.received_ns), o);
  if (!s.pg_time.empty()) {
    o += ",\"postgres_time\":";
    append_str(s.pg_time, o);
  }
  o += "}";
}

void append_counts_json(const std::map<std::string, uint64_t>& m, std::string& o) {
  o += "{";
  bool first = true;
  for (const auto& [k, n] : m) {
    if (!first) o += ",";
    first = false;
    append_str(k, o);
    o += ":" + std::to_string(n);
  }
  o += "}";
}

}  // namespace

std::string pg_prove_command(const std::string& data_dir, const std::string& stream, uint64_t index) {
  return "logseal prove " + shell_quote(data_dir) + " --stream " + shell_quote(stream) + " --index " +
         std::to_string(index);
}

std::string format_pg_role_report_text(const PgRoleReport& r, const std::string& data_dir) {
  std::string o;
  o += "stream " + r.stream + ": " + std::to_string(r.records_scanned) + " records read, " +
       std::to_string(r.audit_records) + " pgaudit records by " + std::to_string(r.roles.size()) + " role" +
       (r.roles.size() == 1 ? "" : "s") + "\n";
  if (r.tail_unread) {
    o += "note: segment " + std::to_string(r.tail_segment_seq) + " was read up to offset " +
         std::to_string(r.tail_offset) + " only (" + r.tail_why +
         "): a write still landing if logseald is running, else damage: run `logseal verify`\n";
  }
  if (r.first_index > 0) {
    o += "note: records before " + std::to_string(r.first_index) +
         " are not in the data directory: no record can be proven against the latest checkpoint here\n";
  }
  if (r.audit_errors > 0) {
    o += "note: " + std::to_string(r.audit_errors) +
         " entries look like AUDIT records but did not parse (pg_error) and are not counted; "
         "see `logseal export " +
         shell_quote(data_dir) + " --stream " + shell_quote(r.stream) + " --where pg_error~=`\n";
  }
  if (!r.roles.empty()) {
    o += "\n";
    std::vector<std::vector<std::string>> rows = {
        {"ROLE", "RECORDS", "STATEMENTS", "CLASSES", "FIRST SEEN", "LAST SEEN"}};
    for (const PgRoleSummary& s : r.roles) {
      std::string classes;
      for (const auto& [c, n] : s.classes) classes += (classes.empty() ? "" : ",") + c;
      rows.push_back({display(s.role, 40), std::to_string(s.records), std::to_string(s.statements), classes,
                      engine::rfc3339_ns(s.first.received_ns), engine::rfc3339_ns(s.last.received_ns)});
    }
    append_table(rows, o);
  }
  for (const PgRoleSummary& s : r.roles) {
    o += "\nrole " + display(s.role, 80) + "\n";
    std::vector<std::vector<std::string>> rows;
    rows.push_back({"  first seen", seen_text(s.first)});
    rows.push_back({"  last seen", seen_text(s.last)});
    std::string dbs;
    for (const std::string& d : s.databases) dbs += (dbs.empty() ? "" : ", ") + display(d, 60);
    rows.push_back({"  databases", dbs.empty() ? "-" : dbs});
    rows.push_back({"  classes", counts(s.classes)});
    rows.push_back({"  commands", counts(s.commands)});
    std::map<std::string, uint64_t> objects;
    for (const auto& [k, n] : s.objects) objects[object_text(k.first, k.second)] += n;
    rows.push_back({"  objects", objects.empty() ? "-" : counts(objects)});
    append_table(rows, o);
  }
  if (!r.has_policy) return o;

  o += "\npolicy " + r.policy_name + ": " + std::to_string(r.violations.size()) + " pgaudit record" +
       (r.violations.size() == 1 ? "" : "s") + " outside the policy\n";
  if (r.checkpoint.present) {
    o += "latest signed checkpoint: " + std::to_string(r.checkpoint.tree_size) + " records, root " +
         to_hex(r.checkpoint.root) + ", signed " + engine::rfc3339_ns(r.checkpoint.time_ns) + " by key " +
         to_hex(r.checkpoint.key_id) + "; records below " + std::to_string(r.checkpoint.tree_size) +
         " are provable against it\n";
  } else {
    o += "no signed checkpoint yet: no record can be proven\n";
  }
  if (r.violations.empty()) return o;
  o += "\n";
  std::vector<std::vector<std::string>> rows = {
      {"INDEX", "PROOF", "ROLE", "CLASS", "COMMAND", "OBJECT", "WHY", "STATEMENT"}};
  for (const PgViolation& v : r.violations) {
    std::string why;
    for (const std::string& w : v.reasons) why += (why.empty() ? "" : "; ") + w;
    rows.push_back({std::to_string(v.index), v.provable ? "yes" : "pending", display(v.role, 40), v.class_name,
                    display(v.command, 40), display(object_text(v.object_type, v.object_name), 60), display(why, 120),
                    display(v.statement, 60)});
  }
  append_table(rows, o);
  o += "\nproof of a listed record: logseal prove " + shell_quote(data_dir) + " --stream " + shell_quote(r.stream) +
       " --index INDEX > proof.txt && logseal check-proof proof.txt --pubkey signing-key.pub.pem\n";
  bool pending =
      std::any_of(r.violations.begin(), r.violations.end(), [](const PgViolation& v) { return !v.provable; });
  if (pending) o += "pending: not yet covered by a signed checkpoint; provable after the next one\n";
  return o;
}

std::string format_pg_role_report_json(const PgRoleReport& r, const std::string& data_dir) {
  std::string o = "{\"stream\":";
  append_str(r.stream, o);
  o += ",\"first_index\":" + std::to_string(r.first_index) + ",\"records_read\":" + std::to_string(r.records_scanned) +
       ",\"pgaudit_records\":" + std::to_string(r.audit_records) + ",\"pg_errors\":" + std::to_string(r.audit_errors) +
       ",\"roles\":[";
  for (size_t i = 0; i < r.roles.size(); ++i) {
    const PgRoleSummary& s = r.roles[i];
    if (i > 0) o += ",";
    o += "{\"role\":";
    append_str(s.role, o);
    o += std::string(",\"known\":") + (s.known ? "true" : "false");
    o += ",\"records\":" + std::to_string(s.records) + ",\"statements\":" + std::to_string(s.statements);
    o += ",\"first_seen\":";
    append_seen_json(s.first, o);
    o += ",\"last_seen\":";
    append_seen_json(s.last, o);
    o += ",\"databases\":[";
    bool first = true;
    for (const std::string& d : s.databases) {
      if (!first) o += ",";
      first = false;
      append_str(d, o);
    }
    o += "],\"classes\":";
    append_counts_json(s.classes, o);
    o += ",\"commands\":";
    append_counts_json(s.commands, o);
    o += ",\"objects\":[";
    first = true;
    for (const auto& [k, n] : s.objects) {
      if (!first) o += ",";
      first = false;
      o += "{\"object_type\":";
      append_str(k.first, o);
      o += ",\"object_name\":";
      append_str(k.second, o);
      o += ",\"records\":" + std::to_string(n) + "}";
    }
    o += "]}";
  }
  o += "]";
  if (r.tail_unread) {
    o += ",\"tail_unread\":{\"segment_seq\":" + std::to_string(r.tail_segment_seq) +
         ",\"offset\":" + std::to_string(r.tail_offset) + ",\"why\":";
    append_str(r.tail_why, o);
    o += "}";
  } else {
    o += ",\"tail_unread\":null";
  }
  if (r.checkpoint.present) {
    o += ",\"checkpoint\":{\"tree_size\":" + std::to_string(r.checkpoint.tree_size) + ",\"root\":\"" +
         to_hex(r.checkpoint.root) + "\",\"signed\":";
    append_str(engine::rfc3339_ns(r.checkpoint.time_ns), o);
    o += ",\"key_id\":\"" + to_hex(r.checkpoint.key_id) + "\"}";
  } else {
    o += ",\"checkpoint\":null";
  }
  if (!r.has_policy) {
    o += ",\"policy\":null}\n";
    return o;
  }
  o += ",\"policy\":";
  append_str(r.policy_name, o);
  o += ",\"violations\":[";
  for (size_t i = 0; i < r.violations.size(); ++i) {
    const PgViolation& v = r.violations[i];
    if (i > 0) o += ",";
    o += "{\"index\":" + std::to_string(v.index) + ",\"received\":";
    append_str(engine::rfc3339_ns(v.received_ns), o);
    o += ",\"role\":";
    append_str(v.role, o);
    o += std::string(",\"role_known\":") + (v.role_known ? "true" : "false");
    o += ",\"database\":";
    append_str(v.database, o);
    o += ",\"postgres_time\":";
    append_str(v.pg_time, o);
    o += ",\"class\":";
    append_str(v.class_name, o);
    o += ",\"command\":";
    append_str(v.command, o);
    o += ",\"object_type\":";
    append_str(v.object_type, o);
    o += ",\"object_name\":";
    append_str(v.object_name, o);
    o += ",\"statement\":";
    append_str(v.statement, o);
    o += std::string(",\"statement_truncated\":") + (v.statement_truncated ? "true" : "false");
    o += ",\"reasons\":[";
    for (size_t j = 0; j < v.reasons.size(); ++j) {
      if (j > 0) o += ",";
      append_str(v.reasons[j], o);
    }
    o += std::string("],\"provable\":") + (v.provable ? "true" : "false") + ",\"prove\":";
    append_str(pg_prove_command(data_dir, r.stream, v.index), o);
    o += "}";
  }
  o += "]}\n";
  return o;
}

}  // namespace logseal::ingest
