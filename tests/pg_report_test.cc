// `logseal report pg-roles` (ingest/pg_report.h): the policy file (parse errors
// name the line, matching rules table-driven), and the report over a real store
// whose records are csvlog rows read by the real csvlog reader and turned into
// fields by the real pgaudit parser, sealed with chosen received times.
#include "ingest/pg_report.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/merkle.h"
#include "engine/reader.h"
#include "engine/store.h"
#include "ingest/pg_logfile.h"
#include "ingest/pg_records.h"
#include "tests/test_util.h"

namespace logseal::ingest {
namespace {

constexpr int64_t kBaseNs = 1764127774000000000;  // 2025-11-26T03:29:34Z
constexpr int64_t kSecondNs = 1000000000;

// ---- glob and policy ----------------------------------------------------------

TEST(PgGlob, Table) {
  struct Case {
    const char* pattern;
    const char* text;
    bool match;
  } cases[] = {
      {"public.orders", "public.orders", true}, {"public.orders", "public.orders2", false},
      {"public.items*", "public.items", true},  {"public.items*", "public.items_a", true},
      {"public.items*", "public.item", false},  {"*", "public.x", true},
      {"*.orders", "sales.orders", true},       {"public.?", "public.a", true},
      {"public.[ab]", "public.c", false},       {"SELECT", "select", false},
      {"CREATE *", "CREATE TABLE", true},       {"public.orders", "", false},
  };
  for (const Case& c : cases) EXPECT_EQ(pg_glob_match(c.pattern, c.text), c.match) << c.pattern << " vs " << c.text;
}

TEST(PgPolicy, ParseErrorsNameTheLine) {
  struct Case {
    std::string toml;
    std::string want;  // substring of the message, which always names "policy p.toml line N"
  } cases[] = {
      {"[roles.app]\nclasses = [\"READ\", \"SELEKT\"]\n", "line 2: unknown class 'SELEKT'"},
      {"[roles.app]\nclasses = [\n  \"READ\",\n  \"BOGUS\",\n]\n", "line 4: unknown class 'BOGUS'"},
      {"[roles.app]\nclasses = [\"READ\"]\nobject = [\"x\"]\n", "line 3: unknown key 'roles.app.object'"},
      {"\n[roles.app]\ncommands = [\"SELECT\"]\n", "line 2: roles.app has no classes"},
      {"[roles.app]\nclasses = \"READ\"\n", "line 2: roles.app.classes must be an array of strings"},
      {"[roles.app]\nclasses = [\"READ\", 3]\n", "line 2: roles.app.classes must hold only strings"},
      {"[roles.app]\nclasses = [\"READ\"]\nobjects = [\"\"]\n", "line 3: roles.app.objects holds an empty pattern"},
      {"[role.app]\nclasses = [\"READ\"]\n", "line 1: unknown key 'role'"},
      {"roles = 5\n", "line 1: roles must be a table"},
      {"[roles]\napp = 1\n", "line 2: roles.app must be a table"},
      {"[roles.app]\nclasses = [\"READ\"\n", "line 2"},  // TOML syntax: unterminated array
  };
  for (const Case& c : cases) {
    Result<PgRolePolicy> p = PgRolePolicy::parse(c.toml, "p.toml");
    ASSERT_FALSE(p.ok()) << c.toml;
    EXPECT_EQ(p.status().code(), Code::kInvalidArgument);
    EXPECT_NE(p.status().message().find("policy p.toml " + c.want), std::string::npos)
        << "want [" << c.want << "] got [" << p.status().message() << "]";
  }
}

TEST(PgPolicy, MatchingRules) {
  Result<PgRolePolicy> p = PgRolePolicy::parse(R"(
# the application may read and write its own tables, and set session options
[roles.app]
classes  = ["READ", "WRITE", "MISC"]
commands = ["SELECT", "INSERT", "UPDATE", "SET", "BEGIN", "COMMIT"]
objects  = ["public.orders", "public.items*"]

# reporting: reads anything in schema report, any command of READ
[roles."report-bot"]
classes = ["READ"]
objects = ["report.*"]

# a role with a table but no objects: object-less statements only
[roles.ops]
classes = ["MISC", "ROLE"]
)",
                                               "p.toml");
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ(p->roles().size(), 3u);
  struct Case {
    const char* role;
    bool known;
    const char* class_name;
    const char* command;
    const char* object;
    std::vector<std::string> want;
  } cases[] = {
      {"app", true, "READ", "SELECT", "public.orders", {}},
      {"app", true, "WRITE", "INSERT", "public.items_b", {}},
      {"app", true, "MISC", "SET", "", {}},     // object-less: class and command decide
      {"app", true, "READ", "SELECT", "", {}},  // SELECT 1
      {"app", true, "READ", "SELECT", "public.payroll", {"object public.payroll not allowed"}},
      {"app", true, "WRITE", "DELETE", "public.orders", {"command DELETE not allowed"}},
      {"app", true, "DDL", "CREATE TABLE", "", {"class DDL not allowed", "command CREATE TABLE not allowed"}},
      {"app", true, "ROLE", "GRANT", "public.orders", {"class ROLE not allowed", "command GRANT not allowed"}},
      {"app",
       true,
       "DDL",
       "DROP TABLE",
       "public.x",
       {"class DDL not allowed", "command DROP TABLE not allowed", "object public.x not allowed"}},
      {"report-bot", true, "READ", "SELECT", "report.daily", {}},
      {"report-bot", true, "READ", "SELECT", "public.orders", {"object public.orders not allowed"}},
      {"report-bot", true, "WRITE", "UPDATE", "report.daily", {"class WRITE not allowed"}},
      {"ops", true, "ROLE", "GRANT", "", {}},
      {"ops", true, "MISC", "VACUUM", "public.orders", {"object public.orders not allowed"}},
      {"alice", true, "READ", "SELECT", "public.orders", {"role alice not in policy"}},
      {"APP", true, "READ", "SELECT", "public.orders", {"role APP not in policy"}},  // names are exact
      {"", false, "READ", "SELECT", "public.orders", {"role unknown (no postgres.user)"}},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(p->check(c.role, c.known, c.class_name, c.command, c.object), c.want)
        << c.role << " " << c.class_name << " " << c.command << " " << c.object;
  }
}

// ---- the report over a store ----------------------------------------------------

// A PostgreSQL 15 csvlog row (26 columns) of a LOG entry with this message.
std::string csv_row(const std::string& user, int pid, const std::string& time, const std::string& message) {
  std::string quoted;
  for (char c : message) {
    quoted += c;
    if (c == '"') quoted += '"';
  }
  std::string u = user.empty() ? "" : "\"" + user + "\"";
  return time + " UTC," + u + ",\"shop\"," + std::to_string(pid) + ",\"[local]\",6b07a79e.521d,3,\"SELECT\"," + time +
         " UTC,3/2,0,LOG,00000,\"" + quoted + "\",,,,,,,,,\"psql\",\"client backend\",,0\n";
}

struct Row {
  std::string user;
  int pid;
  std::string message;
};

// The workload: index i is received at kBaseNs + i seconds.
const std::vector<Row> kRows = {
    {"app", 100, "connection authorized: user=app database=shop"},  // 0: not an AUDIT entry
    {"app", 100,
     "AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.orders,\"SELECT * FROM public.orders o, public.items_a i\",<none>"},
    {"app", 100,
     "AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.items_a,\"SELECT * FROM public.orders o, public.items_a i\",<none>"},
    {"app", 100, "AUDIT: SESSION,2,1,WRITE,INSERT,TABLE,public.orders,INSERT INTO public.orders VALUES (1),<none>"},
    {"app", 100, "AUDIT: SESSION,3,1,READ,SELECT,TABLE,public.payroll,SELECT salary FROM public.payroll,<none>"},
    {"app", 100, "AUDIT: SESSION,4,1,WRITE,DELETE,TABLE,public.orders,DELETE FROM public.orders,<none>"},
    {"app", 100, "AUDIT: SESSION,5,1,DDL,CREATE TABLE,,,\"CREATE TABLE t (a int,\n  b text)\",<none>"},
    {"app", 100, "AUDIT: SESSION,6,1,MISC,SET,,,SET search_path = public,<none>"},
    {"alice", 300, "AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.orders,SELECT * FROM public.orders,<none>"},
    {"", 400, "AUDIT: SESSION,7,1,READ,SELECT,,,SELECT 1,<none>"},
    {"app", 100, "AUDIT: SESSION,x,1,READ"},  // 10: looks like AUDIT, does not parse: pg_error
    {"app", 200, "AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.items_b,SELECT * FROM public.items_b,<none>"},
};

constexpr const char* kPolicy = R"(
[roles.app]
classes  = ["READ", "WRITE", "MISC"]
commands = ["SELECT", "INSERT", "UPDATE", "SET"]
objects  = ["public.orders", "public.items*"]
)";

class PgReport : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = test::make_soft_key(dir_.sub("key"));
    data_ = dir_.sub("data");
    auto policy = PgRolePolicy::parse(kPolicy, "policy.toml");
    ASSERT_TRUE(policy.ok()) << policy.status().to_string();
    policy_ = std::move(policy).value();
  }

  // Seals kRows as the csvlog backfill does (raw = the row, fields from the real
  // parser), with received times the test chooses.
  void seal(engine::StoreOptions options, bool close = true) {
    std::string csv;
    for (size_t i = 0; i < kRows.size(); ++i) {
      csv +=
          csv_row(kRows[i].user, kRows[i].pid, "2026-11-26 03:29:" + std::to_string(10 + i) + ".000", kRows[i].message);
    }
    std::vector<std::pair<std::string, std::string>> records;  // raw, fields
    PgCsvlogReader reader;
    PgOnEntry on = [&](const PgEntry& e) {
      std::string fields;
      append_pg_fields_json(e, {}, fields);
      records.emplace_back(std::string(e.text), fields);
    };
    ASSERT_TRUE(reader.feed(csv, on).ok());
    ASSERT_TRUE(reader.finish(on).ok());
    ASSERT_EQ(records.size(), kRows.size());
    auto store = engine::Store::open(io::posix_env(), data_, key_.signer(), options);
    ASSERT_TRUE(store.ok()) << store.status().to_string();
    auto stream = (*store)->stream("pg");
    ASSERT_TRUE(stream.ok());
    for (size_t i = 0; i < records.size(); ++i) {
      format::RecordView r;
      r.received_ns = kBaseNs + static_cast<int64_t>(i) * kSecondNs;
      r.source = "file:pg.csv";
      r.raw = records[i].first;
      r.fields = records[i].second;
      auto idx = (*stream)->append(r);
      ASSERT_TRUE(idx.ok());
      ASSERT_EQ(*idx, i);
      if (!close && i == 0) {
        // The store signs its first checkpoint as soon as records are durable,
        // the next only after checkpoint_ms: wait for that first one, so what
        // follows stays unsigned while the store is open.
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while ((*stream)->signed_size() < 1 && std::chrono::steady_clock::now() < deadline) {
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        ASSERT_EQ((*stream)->signed_size(), 1u);
      }
    }
    ASSERT_TRUE((*stream)->wait_durable(records.size() - 1, std::chrono::milliseconds(10000)));
    if (close) {
      ASSERT_TRUE((*store)->close().ok());
    } else {
      open_store_ = std::move(store).value();
    }
  }

  Result<PgRoleReport> report(int64_t since_ns = INT64_MIN, int64_t until_ns = INT64_MAX, bool with_policy = true) {
    PgReportOptions o;
    o.stream = "pg";
    o.since_ns = since_ns;
    o.until_ns = until_ns;
    o.policy = with_policy ? &policy_ : nullptr;
    return build_pg_role_report(io::posix_env(), data_, o);
  }

  // Rolls the stream and appends one more record: a second segment.
  void add_second_segment() {
    auto store = engine::Store::open(io::posix_env(), data_, key_.signer(), test::small_options());
    ASSERT_TRUE(store.ok()) << store.status().to_string();
    auto stream = (*store)->stream("pg");
    ASSERT_TRUE(stream.ok());
    (*stream)->request_roll();
    format::RecordView rec;
    rec.received_ns = kBaseNs + 100 * kSecondNs;
    rec.source = "test";
    rec.raw = "after the roll";
    ASSERT_TRUE((*stream)->append(rec).ok());
    ASSERT_TRUE((*store)->close().ok());
  }

  std::vector<std::string> segment_files() {
    std::vector<std::string> v;
    for (const auto& e : std::filesystem::directory_iterator(data_ + "/pg")) v.push_back(e.path().string());
    std::sort(v.begin(), v.end());
    return v;
  }

  static std::vector<uint64_t> indexes(const PgRoleReport& r) {
    std::vector<uint64_t> v;
    for (const PgViolation& x : r.violations) v.push_back(x.index);
    return v;
  }

  test::TempDir dir_{"pg-report"};
  test::TestKey key_;
  std::string data_;
  PgRolePolicy policy_;
  std::unique_ptr<engine::Store> open_store_;
};

TEST_F(PgReport, SummaryPerRoleAndViolationsWithProofs) {
  seal(test::small_options());
  Result<PgRoleReport> r = report();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->records_scanned, kRows.size());
  EXPECT_EQ(r->audit_records, 10u);
  EXPECT_EQ(r->audit_errors, 1u);

  ASSERT_EQ(r->roles.size(), 3u);
  EXPECT_EQ(r->roles[0].role, "alice");
  EXPECT_EQ(r->roles[1].role, "app");
  EXPECT_EQ(r->roles[2].role, "(unknown)");
  EXPECT_FALSE(r->roles[2].known);
  const PgRoleSummary& app = r->roles[1];
  EXPECT_EQ(app.records, 8u);
  // Records 1 and 2 are one statement (two objects); pid 200 is another backend.
  EXPECT_EQ(app.statements, 7u);
  EXPECT_EQ(app.first.index, 1u);
  EXPECT_EQ(app.first.received_ns, kBaseNs + kSecondNs);
  EXPECT_EQ(app.first.pg_time, "2026-11-26 03:29:11.000 UTC");
  EXPECT_EQ(app.last.index, 11u);
  EXPECT_EQ(app.last.pg_time, "2026-11-26 03:29:21.000 UTC");
  EXPECT_EQ(app.databases, (std::set<std::string>{"shop"}));
  EXPECT_EQ(app.classes, (std::map<std::string, uint64_t>{{"READ", 4}, {"WRITE", 2}, {"DDL", 1}, {"MISC", 1}}));
  EXPECT_EQ(app.commands, (std::map<std::string, uint64_t>{
                              {"SELECT", 4}, {"INSERT", 1}, {"DELETE", 1}, {"CREATE TABLE", 1}, {"SET", 1}}));
  using Obj = std::pair<std::string, std::string>;
  EXPECT_EQ(app.objects, (std::map<Obj, uint64_t>{{{"TABLE", "public.orders"}, 3},
                                                  {{"TABLE", "public.items_a"}, 1},
                                                  {{"TABLE", "public.payroll"}, 1},
                                                  {{"TABLE", "public.items_b"}, 1}}));
  EXPECT_EQ(r->roles[0].records, 1u);
  EXPECT_EQ(r->roles[2].records, 1u);

  // Exactly the statements outside the policy, each with its reasons.
  EXPECT_EQ(indexes(*r), (std::vector<uint64_t>{4, 5, 6, 8, 9}));
  std::map<uint64_t, std::vector<std::string>> why;
  for (const PgViolation& v : r->violations) why[v.index] = v.reasons;
  EXPECT_EQ(why[4], (std::vector<std::string>{"object public.payroll not allowed"}));
  EXPECT_EQ(why[5], (std::vector<std::string>{"command DELETE not allowed"}));
  EXPECT_EQ(why[6], (std::vector<std::string>{"class DDL not allowed", "command CREATE TABLE not allowed"}));
  EXPECT_EQ(why[8], (std::vector<std::string>{"role alice not in policy"}));
  EXPECT_EQ(why[9], (std::vector<std::string>{"role unknown (no postgres.user)"}));
  EXPECT_EQ(r->violations[2].statement, "CREATE TABLE t (a int,\n  b text)");

  // Every listed record is provable against the latest signed checkpoint, and the
  // reader's own proof of it verifies against that checkpoint's root.
  ASSERT_TRUE(r->checkpoint.present);
  EXPECT_EQ(r->checkpoint.tree_size, kRows.size());
  EXPECT_TRUE(r->checkpoint.root_checked);
  for (const PgViolation& v : r->violations) {
    EXPECT_TRUE(v.provable) << v.index;
    auto proof = engine::prove_record(io::posix_env(), data_, "pg", v.index);
    ASSERT_TRUE(proof.ok()) << proof.status().to_string();
    EXPECT_EQ(proof->checkpoint.decoded.root, r->checkpoint.root);
    EXPECT_TRUE(merkle::verify_inclusion(merkle::leaf_hash(proof->record), v.index, proof->checkpoint.decoded.tree_size,
                                         proof->path, proof->checkpoint.decoded.root));
    auto rec = format::decode_record(proof->record);
    ASSERT_TRUE(rec.ok());
    EXPECT_NE(rec->raw.find(kRows[v.index].message.substr(0, 20)), std::string_view::npos) << rec->raw;
  }

  // Text: a row per violation, with the prove command.
  std::string text = format_pg_role_report_text(*r, data_);
  EXPECT_NE(text.find("policy policy.toml: 5 pgaudit records outside the policy"), std::string::npos) << text;
  EXPECT_NE(text.find("CREATE TABLE t (a int, b text)"), std::string::npos) << text;
  EXPECT_NE(text.find("logseal prove " + data_ + " --stream pg --index INDEX"), std::string::npos) << text;
  EXPECT_NE(text.find("1 entries look like AUDIT records but did not parse"), std::string::npos) << text;

  // JSON: valid, same violations, each with its prove command.
  std::string json = format_pg_role_report_json(*r, data_);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(json).get(doc), simdjson::SUCCESS) << json;
  simdjson::dom::array vs;
  ASSERT_EQ(doc["violations"].get(vs), simdjson::SUCCESS);
  ASSERT_EQ(vs.size(), 5u);
  std::vector<uint64_t> json_idx;
  for (simdjson::dom::element v : vs) {
    uint64_t idx = 0;
    std::string_view prove;
    ASSERT_EQ(v["index"].get(idx), simdjson::SUCCESS);
    ASSERT_EQ(v["prove"].get(prove), simdjson::SUCCESS);
    EXPECT_EQ(prove, "logseal prove " + data_ + " --stream pg --index " + std::to_string(idx));
    json_idx.push_back(idx);
  }
  EXPECT_EQ(json_idx, indexes(*r));
  uint64_t tree_size = 0;
  ASSERT_EQ(doc["checkpoint"]["tree_size"].get(tree_size), simdjson::SUCCESS);
  EXPECT_EQ(tree_size, kRows.size());
}

TEST_F(PgReport, TimeRangeAndNoPolicy) {
  seal(test::small_options());
  // Records 3..7 only.
  Result<PgRoleReport> r = report(kBaseNs + 3 * kSecondNs, kBaseNs + 8 * kSecondNs);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->audit_records, 5u);
  ASSERT_EQ(r->roles.size(), 1u);
  EXPECT_EQ(r->roles[0].first.index, 3u);
  EXPECT_EQ(r->roles[0].last.index, 7u);
  EXPECT_EQ(indexes(*r), (std::vector<uint64_t>{4, 5, 6}));

  Result<PgRoleReport> all = report(INT64_MIN, INT64_MAX, false);
  ASSERT_TRUE(all.ok());
  EXPECT_FALSE(all->has_policy);
  EXPECT_TRUE(all->violations.empty());
  EXPECT_EQ(all->roles.size(), 3u);
  std::string text = format_pg_role_report_text(*all, data_);
  EXPECT_EQ(text.find("policy"), std::string::npos) << text;
  EXPECT_NE(text.find("TABLE public.orders 3"), std::string::npos) << text;
}

TEST_F(PgReport, RecordsAfterTheLatestCheckpointArePending) {
  engine::StoreOptions o = test::small_options();
  o.stream.checkpoint_ms = 3600 * 1000;  // no checkpoint while the store is open
  seal(o, /*close=*/false);
  Result<PgRoleReport> r = report();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(indexes(*r), (std::vector<uint64_t>{4, 5, 6, 8, 9}));
  ASSERT_TRUE(r->checkpoint.present);
  // The first checkpoint covers the first record, or the first two when the
  // second was durable before the signer took its snapshot: either way every
  // violation (from record 4 on) is after it.
  EXPECT_GE(r->checkpoint.tree_size, 1u);
  EXPECT_LE(r->checkpoint.tree_size, 4u);
  for (const PgViolation& v : r->violations) {
    EXPECT_FALSE(v.provable) << v.index << " checkpoint of " << r->checkpoint.tree_size;
  }
  EXPECT_NE(format_pg_role_report_text(*r, data_).find("pending"), std::string::npos);
  ASSERT_TRUE(open_store_->close().ok());  // signs the final checkpoint
  r = report();
  ASSERT_TRUE(r.ok());
  for (const PgViolation& v : r->violations) EXPECT_TRUE(v.provable) << v.index;
}

// A changed record byte: the batch checksum stops the reader there. In a segment
// before the newest that is DataLoss (the CLI's exit 1), never a report; in the
// newest (which may be a live tail) the report covers what precedes it and says
// where it stopped, and proves nothing that no checkpoint before it covers.
TEST_F(PgReport, DamagedRecordIsDataLossOrAnUnreadTail) {
  seal(test::small_options());
  add_second_segment();
  ASSERT_TRUE(report().ok());
  bool flipped = false;
  for (const auto& e : std::filesystem::directory_iterator(data_ + "/pg")) {
    std::string path = e.path().string();
    test::clear_immutable(path);
    std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    std::string bytes;
    {
      std::ifstream in(path, std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    size_t at = bytes.find("public.payroll");
    if (at == std::string::npos) continue;
    bytes[at + 7] ^= 0x01;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    flipped = true;
  }
  ASSERT_TRUE(flipped);
  std::vector<std::string> segments;
  for (const auto& e : std::filesystem::directory_iterator(data_ + "/pg")) segments.push_back(e.path().string());
  ASSERT_GE(segments.size(), 2u);
  Result<PgRoleReport> r = report();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kDataLoss) << r.status().to_string();
  EXPECT_NE(r.status().message().find("logseal verify"), std::string::npos) << r.status().to_string();

  // Only the damaged segment left: it is now the newest.
  std::sort(segments.begin(), segments.end());
  for (size_t i = 1; i < segments.size(); ++i) {
    test::clear_immutable(segments[i]);
    std::filesystem::remove(segments[i]);
  }
  r = report();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->tail_unread);
  EXPECT_LT(r->records_scanned, kRows.size());
  for (const PgViolation& v : r->violations) {
    EXPECT_FALSE(v.provable && v.index >= r->checkpoint.tree_size) << v.index;
  }
  EXPECT_NE(format_pg_role_report_text(*r, data_).find("run `logseal verify`"), std::string::npos);
}

// The first segment gone (as after pruning): the report covers what is there,
// and says that nothing can be proven against the checkpoint from here.
TEST_F(PgReport, MissingPrefixRulesOutProofsOnly) {
  seal(test::small_options());
  add_second_segment();
  std::vector<std::string> segments = segment_files();
  ASSERT_GE(segments.size(), 2u);
  test::clear_immutable(segments[0]);
  std::filesystem::remove(segments[0]);
  Result<PgRoleReport> r = report();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->first_index, kRows.size());
  EXPECT_EQ(r->audit_records, 0u);
  EXPECT_FALSE(r->checkpoint.root_checked);
  EXPECT_NE(format_pg_role_report_text(*r, data_).find("records before 12 are not in the data directory"),
            std::string::npos);
}

TEST_F(PgReport, MissingStreamIsAnError) {
  seal(test::small_options());
  PgReportOptions o;
  o.stream = "nope";
  Result<PgRoleReport> r = build_pg_role_report(io::posix_env(), data_, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound) << r.status().to_string();
}

}  // namespace
}  // namespace logseal::ingest
