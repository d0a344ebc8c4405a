// pgaudit: AUDIT payload parser, log_line_prefix matcher, syslog reassembler and
// the csvlog/jsonlog readers. The corpus tests check the reassembled syslog
// entries of a real PostgreSQL+pgaudit run against the same run's csvlog and
// jsonlog, which PostgreSQL wrote without splitting or escaping.
#include "ingest/pgaudit.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "ingest/framing.h"
#include "ingest/pg_logfile.h"
#include "ingest/pg_prefix.h"
#include "ingest/pg_reassembler.h"
#include "ingest/syslog_parse.h"

namespace logseal::ingest {
namespace {

// ---------------------------------------------------------------------------
// AUDIT payload

TEST(PgAudit, PlainRecord) {
  std::string m = "AUDIT: SESSION,2,1,ROLE,CREATE ROLE,,,CREATE ROLE auditor NOLOGIN;,<none>";
  Result<AuditRecord> r = parse_audit(m);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->audit_type.view(), "SESSION");
  EXPECT_EQ(r->statement_id, 2u);
  EXPECT_EQ(r->substatement_id, 1u);
  EXPECT_EQ(r->class_name.view(), "ROLE");
  EXPECT_EQ(r->command.view(), "CREATE ROLE");
  EXPECT_EQ(r->object_type.view(), "");
  EXPECT_EQ(r->object_name.view(), "");
  EXPECT_EQ(r->statement.view(), "CREATE ROLE auditor NOLOGIN;");
  EXPECT_EQ(r->parameter.view(), "<none>");
  EXPECT_FALSE(r->has_rows);
  // Nothing needed unescaping: every field is a view into the input.
  EXPECT_FALSE(r->statement.is_owned());
  EXPECT_EQ(r->statement.view().data(), m.data() + m.find("CREATE ROLE auditor"));
}

TEST(PgAudit, QuotedFieldsAndRows) {
  std::string m =
      "AUDIT: OBJECT,7,3,WRITE,INSERT,TABLE,\"public.\"\"odd,name\"\"\","
      "\"INSERT INTO t VALUES ('a,b', 'say \"\"hi\"\"', 'Zoë 東京')\n  RETURNING id;\",<not logged>,42";
  Result<AuditRecord> r = parse_audit(m);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->audit_type.view(), "OBJECT");
  EXPECT_EQ(r->object_name.view(), "public.\"odd,name\"");
  EXPECT_TRUE(r->object_name.is_owned());
  EXPECT_EQ(r->statement.view(), "INSERT INTO t VALUES ('a,b', 'say \"hi\"', 'Zoë 東京')\n  RETURNING id;");
  EXPECT_EQ(r->parameter.view(), "<not logged>");
  EXPECT_TRUE(r->has_rows);
  EXPECT_EQ(r->rows, 42);
  // A quoted field without doubled quotes needs no copy.
  Result<AuditRecord> r2 = parse_audit("AUDIT: SESSION,1,1,READ,SELECT,,,\"SELECT 1, 2\",<none>");
  ASSERT_TRUE(r2.ok());
  EXPECT_FALSE(r2->statement.is_owned());
  EXPECT_EQ(r2->statement.view(), "SELECT 1, 2");
}

TEST(PgAudit, ParametersQuotedTwice) {
  // As pgaudit logged the corpus's prepared statement (run1-all, PID 21024).
  std::string m =
      "AUDIT: SESSION,9,1,READ,SELECT,TABLE,public.payments,\"PREPARE pay_lookup (int, text) AS\n"
      "  SELECT id, amount, memo FROM payments WHERE customer_id = $1 AND memo <> $2;\","
      "\"1,\"\"a,b \"\"\"\"c\"\"\"\" 'd' 東京\"\"\"";
  Result<AuditRecord> r = parse_audit(m);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->parameter.view(), "1,\"a,b \"\"c\"\" 'd' 東京\"");
  Result<std::vector<std::string>> params = split_audit_parameters(r->parameter.view());
  ASSERT_TRUE(params.ok()) << params.status().to_string();
  ASSERT_EQ(params->size(), 2u);
  EXPECT_EQ((*params)[0], "1");
  EXPECT_EQ((*params)[1], "a,b \"c\" 'd' 東京");

  Result<std::vector<std::string>> nulls = split_audit_parameters(",x,");
  ASSERT_TRUE(nulls.ok());
  EXPECT_EQ(*nulls, (std::vector<std::string>{"", "x", ""}));
  Result<std::vector<std::string>> none = split_audit_parameters("<none>");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(split_audit_parameters("<not logged>").status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(split_audit_parameters("\"open").status().code(), Code::kInvalidArgument);
}

TEST(PgAudit, TrailingLinesOnlyWithConsumed) {
  std::string m = "AUDIT: SESSION,1,1,MISC,SET,,,SET x = 1;,<none>\nLOCATION:  somewhere";
  EXPECT_FALSE(parse_audit(m).ok());
  size_t consumed = 0;
  Result<AuditRecord> r = parse_audit(m, &consumed);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(consumed, m.find('\n'));
  EXPECT_EQ(r->parameter.view(), "<none>");
}

TEST(PgAudit, MalformedNamesPositionAndField) {
  struct Case {
    std::string input;
    std::string expect;  // substring of the error
  } cases[] = {
      {"SESSION,1,1,READ,SELECT,,,x,<none>", "byte 0: not an AUDIT record"},
      {"AUDIT: SESSIONX,1,1,READ,SELECT,,,x,<none>", "byte 7 (audit_type)"},
      {"AUDIT: SESSION,a,1,READ,SELECT,,,x,<none>", "byte 15 (statement_id): not a decimal number"},
      {"AUDIT: SESSION,1,,READ,SELECT,,,x,<none>", "byte 17 (substatement_id)"},
      {"AUDIT: SESSION,1,1,READ,SELECT,,,x", "byte 34 (parameter): missing field"},
      {"AUDIT: SESSION,1,1,READ,SELECT,,,\"x,<none>", "byte 33 (statement): quoted field not closed"},
      {"AUDIT: SESSION,1,1,READ,SELECT,,,\"x\"y,<none>", "byte 36 (statement): expected ','"},
      {"AUDIT: SESSION,1,1,READ,SELECT,,,x\"y,<none>", "byte 34 (statement): quote inside unquoted field"},
      {"AUDIT: SESSION,1,1,READ,SELECT,,,x,<none>,12x", "byte 42 (rows): not a decimal number"},
      {"AUDIT: SESSION,1,1,READ,SELECT,,,x,<none>,1,2", "(rows): text after the last field"},
      {"AUDIT: SESSION,1,1,READ,SELECT,,,x\ry,<none>", "(statement): CR outside quotes"},
  };
  for (const Case& c : cases) {
    Result<AuditRecord> r = parse_audit(c.input);
    ASSERT_FALSE(r.ok()) << c.input;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos)
        << c.input << " -> " << r.status().message() << " (wanted " << c.expect << ")";
  }
}

// ---------------------------------------------------------------------------
// log_line_prefix

PgLinePrefix compile_or_die(std::string_view p) {
  Result<PgLinePrefix> r = PgLinePrefix::compile(p);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return std::move(r).value();
}

TEST(PgPrefix, CorpusPrefixWithSpacesInApplication) {
  PgLinePrefix p = compile_or_die("%m [%p] user=%u db=%d app=%a client=%h ");
  PgPrefixMatch m;
  std::string line =
      "2026-11-26 03:29:35.218 UTC [21039] user=zoë.müller db=appdb app=DBeaver 23.2.0 - SQLEditor <Zo??, "
      "\"Q3\".sql> client=127.0.0.1 LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,x,<none>";
  ASSERT_TRUE(p.match(line, m).ok());
  EXPECT_EQ(m.fields.time, "2026-11-26 03:29:35.218 UTC");
  EXPECT_EQ(m.fields.pid, 21039);
  EXPECT_EQ(m.fields.user, "zoë.müller");
  EXPECT_EQ(m.fields.database, "appdb");
  EXPECT_EQ(m.fields.application, "DBeaver 23.2.0 - SQLEditor <Zo??, \"Q3\".sql>");
  EXPECT_EQ(m.fields.client, "127.0.0.1");
  EXPECT_TRUE(m.rest.starts_with("LOG:  AUDIT: "));

  // The postmaster: every session field empty.
  ASSERT_TRUE(p.match("2026-11-26 03:29:34.320 UTC [21011] user= db= app= client= LOG:  ready", m).ok());
  EXPECT_EQ(m.fields.user, "");
  EXPECT_EQ(m.fields.application, "");
  EXPECT_EQ(m.rest, "LOG:  ready");
}

TEST(PgPrefix, StopAtQForNonSessionProcesses) {
  PgLinePrefix p = compile_or_die("%m [%p] %q%u@%d %a %h ");
  PgPrefixMatch m;
  ASSERT_TRUE(p.match("2026-11-26 03:29:34.320 UTC [21011] LOG:  checkpoint starting: time", m).ok());
  EXPECT_FALSE(m.session);
  EXPECT_EQ(m.fields.pid, 21011);
  EXPECT_EQ(m.fields.user, "");
  EXPECT_EQ(m.rest, "LOG:  checkpoint starting: time");

  ASSERT_TRUE(p.match("2026-11-26 03:29:34.320 UTC [7] alice@shop my app 10.0.0.1 ERROR:  boom", m).ok());
  EXPECT_TRUE(m.session);
  EXPECT_EQ(m.fields.user, "alice");
  EXPECT_EQ(m.fields.database, "shop");
  EXPECT_EQ(m.fields.application, "my app");
  EXPECT_EQ(m.fields.client, "10.0.0.1");
  EXPECT_EQ(m.rest, "ERROR:  boom");
}

TEST(PgPrefix, SyslogStylePrefixRemoteHostPortEscapesPadding) {
  PgLinePrefix p = compile_or_die("%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%r %% %Z%-8e| ");
  PgPrefixMatch m;
  ASSERT_TRUE(p.match("2026-11-26 03:29:34 CET [42]: [3-1] user=bob,db=x,app=psql,client=10.1.2.3(5432) % "
                      "42P01   | ERROR:  relation does not exist",
                      m)
                  .ok());
  EXPECT_EQ(m.fields.time, "2026-11-26 03:29:34 CET");
  EXPECT_EQ(m.fields.pid, 42);
  EXPECT_EQ(m.fields.user, "bob");
  EXPECT_EQ(m.fields.database, "x");
  EXPECT_EQ(m.fields.application, "psql");
  EXPECT_EQ(m.fields.client, "10.1.2.3");
  EXPECT_EQ(m.rest, "ERROR:  relation does not exist");

  PgLinePrefix n = compile_or_die("%n %p %");
  ASSERT_TRUE(n.match("1700000000.123 99 LOG:  x", m).ok());
  EXPECT_EQ(m.fields.time, "1700000000.123");
  EXPECT_EQ(m.fields.pid, 99);

  PgLinePrefix empty = compile_or_die("");
  ASSERT_TRUE(empty.match("LOG:  AUDIT: x", m).ok());
  EXPECT_EQ(m.rest, "LOG:  AUDIT: x");
}

TEST(PgPrefix, MismatchIsAnErrorWithPosition) {
  PgLinePrefix p = compile_or_die("%m [%p] ");
  PgPrefixMatch m;
  Status st = p.match("2026-11-26 03:29:34.320 UTC (21011) LOG:  x", m);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("byte 27"), std::string::npos) << st.message();
  // A line that matches the prefix but has no severity after it.
  EXPECT_FALSE(p.match("2026-11-26 03:29:34.320 UTC [1] hello", m).ok());
  EXPECT_FALSE(PgLinePrefix::compile("%m\n[%p]").ok());
}

// ---------------------------------------------------------------------------
// Reassembler on hand-made fragments

struct Collected {
  std::string text;
  std::vector<uint64_t> ids;
  uint32_t flags = 0;
  std::string severity, message, user, database, application, client, time;
  int64_t pid = -1;
  bool prefix_ok = false;
  bool audit = false;
  std::string audit_error;
  std::string statement, class_name, command, object_type, object_name, parameter;
  std::string audit_type;
  uint64_t statement_id = 0, substatement_id = 0;
};

Collected collect(const PgEntry& e) {
  Collected c;
  c.text = std::string(e.text);
  c.ids.assign(e.fragment_ids.begin(), e.fragment_ids.end());
  c.flags = e.flags;
  c.severity = std::string(e.severity);
  c.message = std::string(e.message);
  c.user = std::string(e.postgres.user);
  c.database = std::string(e.postgres.database);
  c.application = std::string(e.postgres.application);
  c.client = std::string(e.postgres.client);
  c.time = std::string(e.postgres.time);
  c.pid = e.postgres.pid;
  c.prefix_ok = e.prefix_status.ok();
  c.audit_error = e.audit_status.message();
  if (e.audit != nullptr) {
    c.audit = true;
    c.audit_type = std::string(e.audit->audit_type.view());
    c.statement_id = e.audit->statement_id;
    c.substatement_id = e.audit->substatement_id;
    c.class_name = std::string(e.audit->class_name.view());
    c.command = std::string(e.audit->command.view());
    c.object_type = std::string(e.audit->object_type.view());
    c.object_name = std::string(e.audit->object_name.view());
    c.statement = std::string(e.audit->statement.view());
    c.parameter = std::string(e.audit->parameter.view());
  }
  return c;
}

SyslogFields fragment(std::string_view procid, std::string_view msg) {
  SyslogFields f;
  f.kind = SyslogFields::Kind::kRfc3164;
  f.hostname = "db1";
  f.app_name = "postgres";
  f.procid = procid;
  f.msg = msg;
  return f;
}

class ReassemblerTest : public ::testing::Test {
 protected:
  PgReassembler make(PgSyslogOptions options = {}, std::string_view prefix = "%m [%p] ") {
    return PgReassembler(options, compile_or_die(prefix), [this](const PgEntry& e) { out_.push_back(collect(e)); });
  }
  std::vector<Collected> out_;
};

TEST_F(ReassemblerTest, ContinuationLinesTabsAndCr) {
  PgReassembler r = make();
  std::vector<std::string> msgs = {
      "[5-1] 2026-11-26 03:29:34.953 UTC [7] LOG:  AUDIT: SESSION,4,1,READ,SELECT,,,\"SELECT name,",
      "[5-2] #011#011city#015",
      "[5-3] #011FROM t;\",<none>",
      "[6-1] 2026-11-26 03:29:34.953 UTC [7] LOG:  next",
  };
  for (size_t i = 0; i < msgs.size(); ++i) r.add(fragment("7", msgs[i]), 100 + i, 1);
  ASSERT_EQ(out_.size(), 1u);  // [6-1] waits: more pieces could follow
  EXPECT_EQ(out_[0].ids, (std::vector<uint64_t>{100, 101, 102}));
  EXPECT_EQ(out_[0].flags, 0u);
  ASSERT_TRUE(out_[0].audit) << out_[0].audit_error;
  EXPECT_EQ(out_[0].statement, "SELECT name,\n\tcity\r\nFROM t;");
  r.flush_all();
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[1].message, "next");
  EXPECT_FALSE(out_[1].audit);
}

// Builds the pieces PostgreSQL's write_syslog() makes of one line, so the cut
// rules are checked against the algorithm rather than against themselves.
std::vector<std::string> pg_split_line(std::string_view line) {
  std::vector<std::string> pieces;
  while (!line.empty()) {
    size_t n = std::min(line.size(), kPgSyslogPieceBytes);
    // pg_mbcliplen: never inside a UTF-8 character.
    while (n < line.size() && n > 0 && (static_cast<unsigned char>(line[n]) & 0xC0) == 0x80) --n;
    if (n < line.size() && line[n] != ' ') {
      size_t i = n - 1;
      while (i > 0 && line[i] != ' ') --i;
      if (i > 0) n = i;
    }
    pieces.emplace_back(line.substr(0, n));
    line.remove_prefix(n);
  }
  return pieces;
}

TEST_F(ReassemblerTest, NineHundredByteCutsAtSpacesInsideWordsAndUtf8) {
  std::string words = "SELECT 1 FROM t WHERE x IN (";
  for (int i = 0; i < 400; ++i) words += "'user" + std::to_string(i) + "@example.com', ";
  words += "'end');";
  std::string nospace = "INSERT INTO d VALUES ('";
  for (int i = 0; i < 700; ++i) nospace += "Zoë東京-";
  nospace += "');";
  for (const std::string& stmt : {words, nospace}) {
    out_.clear();
    PgReassembler r = make();
    std::string entry = "2026-11-26 03:29:35.100 UTC [9] LOG:  AUDIT: SESSION,1,1,WRITE,INSERT,,,\"" + stmt + "\",<none>";
    std::vector<std::string> pieces = pg_split_line(entry);
    ASSERT_GT(pieces.size(), 3u);
    for (size_t i = 0; i < pieces.size(); ++i) {
      r.add(fragment("9", "[12-" + std::to_string(i + 1) + "] " + pieces[i]), i, 0);
    }
    r.flush_all();
    ASSERT_EQ(out_.size(), 1u);
    EXPECT_EQ(out_[0].text, entry);
    EXPECT_EQ(out_[0].ids.size(), pieces.size());
    ASSERT_TRUE(out_[0].audit) << out_[0].audit_error;
    EXPECT_EQ(out_[0].statement, stmt);
  }
}

TEST_F(ReassemblerTest, SequenceNumbersOff) {
  PgSyslogOptions o;
  o.sequence_numbers = false;
  PgReassembler r = make(o);
  r.add(fragment("7", "[1] 2026-11-26 03:29:34.953 UTC [7] LOG:  AUDIT: SESSION,1,1,DDL,CREATE TABLE,,,\"CREATE TABLE t ("), 1, 0);
  r.add(fragment("8", "[1] 2026-11-26 03:29:34.954 UTC [8] LOG:  other process"), 2, 0);
  r.add(fragment("7", "[2] #011a int"), 3, 0);
  r.add(fragment("7", "[3] #011);\",<none>"), 4, 0);
  r.add(fragment("7", "[1] 2026-11-26 03:29:34.955 UTC [7] LOG:  next entry"), 5, 0);
  ASSERT_EQ(out_.size(), 1u);
  ASSERT_TRUE(out_[0].audit) << out_[0].audit_error;
  EXPECT_EQ(out_[0].statement, "CREATE TABLE t (\na int\n);");
  EXPECT_EQ(out_[0].ids, (std::vector<uint64_t>{1, 3, 4}));
  r.flush_all();
  ASSERT_EQ(out_.size(), 3u);

  // syslog_split_messages=off as well: each message is one entry; rsyslog escaped
  // the LF and the TAB that follows it.
  out_.clear();
  o.split_messages = false;
  PgReassembler whole = make(o);
  SyslogFields f = fragment("7", " 2026-11-26 03:29:34.953 UTC [7] LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,\"SELECT 1,#012#0112;\",<none>");
  f.kind = SyslogFields::Kind::kRfc5424;
  whole.add(f, 9, 0);
  ASSERT_EQ(out_.size(), 1u);
  ASSERT_TRUE(out_[0].audit) << out_[0].audit_error << " / " << out_[0].text;
  EXPECT_EQ(out_[0].statement, "SELECT 1,\n\t2;");  // undivided: PostgreSQL's TAB stays
}

TEST_F(ReassemblerTest, BoundsFlagNeverDrop) {
  PgSyslogOptions o;
  o.entry_bytes_max = 100;
  o.keys_max = 2;
  PgReassembler r = make(o);
  // An oversized entry: 5 pieces of 40 bytes.
  std::string head = "2026-11-26 03:29:34.953 UTC [1] LOG:  x";
  r.add(fragment("1", "[1-1] " + head), 10, 1);
  for (int i = 2; i <= 5; ++i) r.add(fragment("1", "[1-" + std::to_string(i) + "] #011" + std::string(40, 'a' + i)), 9 + i, 1);
  // Three more keys with keys_max = 2: the oldest is evicted.
  r.add(fragment("2", "[1-1] 2026-11-26 03:29:34.953 UTC [2] LOG:  two"), 20, 2);
  r.add(fragment("3", "[1-1] 2026-11-26 03:29:34.953 UTC [3] LOG:  three"), 21, 3);
  r.add(fragment("4", "[1-1] 2026-11-26 03:29:34.953 UTC [4] LOG:  four"), 22, 4);
  // Out of order: chunk 1 again for key 4's sequence number.
  r.add(fragment("4", "[1-1] 2026-11-26 03:29:34.953 UTC [4] LOG:  four again"), 23, 5);
  // Unsequenced.
  r.add(fragment("4", "not from postgres"), 24, 6);
  r.flush_older_than(4);
  r.flush_all();
  std::multiset<uint64_t> ids;
  uint32_t all_flags = 0;
  for (const Collected& c : out_) {
    ids.insert(c.ids.begin(), c.ids.end());
    all_flags |= c.flags;
    EXPECT_LE(c.text.size(), o.entry_bytes_max) << c.text;
  }
  EXPECT_EQ(ids, (std::multiset<uint64_t>{10, 11, 12, 13, 14, 20, 21, 22, 23, 24}));
  EXPECT_TRUE(all_flags & kPgEntryOversized);
  EXPECT_TRUE(all_flags & kPgEntryContinued);
  EXPECT_TRUE(all_flags & kPgEntryEvicted);
  EXPECT_TRUE(all_flags & kPgEntryOutOfOrder);
  EXPECT_TRUE(all_flags & kPgEntryUnsequenced);
  EXPECT_EQ(r.pending_keys(), 0u);
  EXPECT_EQ(r.pending_bytes(), 0u);

  // A gap: chunk 3 without chunk 2.
  out_.clear();
  PgReassembler g = make();
  g.add(fragment("1", "[1-1] 2026-11-26 03:29:34.953 UTC [1] LOG:  x"), 1, 0);
  g.add(fragment("1", "[1-3] #011y"), 2, 0);
  g.flush_all();
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_TRUE(out_[0].flags & kPgEntryGap);
}

TEST_F(ReassemblerTest, FlushOlderThan) {
  PgReassembler r = make();
  r.add(fragment("1", "[1-1] 2026-11-26 03:29:34.953 UTC [1] LOG:  a"), 1, 10);
  r.add(fragment("2", "[1-1] 2026-11-26 03:29:34.953 UTC [2] LOG:  b"), 2, 20);
  r.flush_older_than(15);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].message, "a");
  EXPECT_EQ(r.pending_keys(), 1u);
}

TEST(PgUnescape, RsyslogControlCharacters) {
  std::string out;
  pg_unescape_rsyslog("a#011b#015#012#177 #040 #09 #", out);
  EXPECT_EQ(out, "a\tb\r\n\x7f #040 #09 #");
}

// ---------------------------------------------------------------------------
// The corpus (../shared/corpus/run1-all): 442 syslog messages, 119 AUDIT records.

std::string corpus_dir() {
  if (const char* env = std::getenv("LOGSEAL_CORPUS"); env != nullptr && *env != '\0') return env;
#ifdef LOGSEAL_SOURCE_DIR
  std::string source_dir = LOGSEAL_SOURCE_DIR;
#else
  std::string source_dir = __FILE__;
  for (int up = 0; up < 2; ++up) source_dir = source_dir.substr(0, source_dir.rfind('/'));
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

constexpr std::string_view kCorpusPrefix = "%m [%p] user=%u db=%d app=%a client=%h ";

std::vector<std::string> frames_of(const std::string& bytes, Framing framing) {
  std::vector<std::string> out;
  Framer framer(framing, 1 << 20);
  auto on = [&](std::string_view m, bool) { out.emplace_back(m); };
  EXPECT_TRUE(framer.feed(bytes, on).ok());
  EXPECT_TRUE(framer.finish(on).ok());
  return out;
}

std::vector<std::string> datagrams_of(const std::string& raw, const std::string& index) {
  std::vector<std::string> out;
  std::istringstream lines(index);
  std::string line;
  while (std::getline(lines, line)) {
    size_t o = line.find("\"offset\": "), l = line.find("\"length\": ");
    if (o == std::string::npos || l == std::string::npos) continue;
    uint64_t offset = std::strtoull(line.c_str() + o + 10, nullptr, 10);
    uint64_t length = std::strtoull(line.c_str() + l + 10, nullptr, 10);
    if (offset + length <= raw.size()) out.push_back(raw.substr(offset, length));
  }
  return out;
}

std::vector<Collected> reassemble(const std::vector<std::string>& messages) {
  std::vector<Collected> out;
  PgReassembler r({}, compile_or_die(kCorpusPrefix), [&](const PgEntry& e) { out.push_back(collect(e)); });
  for (size_t i = 0; i < messages.size(); ++i) r.add(parse_syslog(messages[i]), i, 0);
  r.flush_all();
  return out;
}

std::vector<Collected> read_csvlog(const std::string& bytes, size_t chunk_bytes) {
  std::vector<Collected> out;
  PgCsvlogReader reader;
  auto on = [&](const PgEntry& e) { out.push_back(collect(e)); };
  for (size_t i = 0; i < bytes.size(); i += chunk_bytes) {
    Status st = reader.feed(std::string_view(bytes).substr(i, chunk_bytes), on);
    EXPECT_TRUE(st.ok()) << st.to_string();
  }
  Status st = reader.finish(on);
  EXPECT_TRUE(st.ok()) << st.to_string();
  return out;
}

std::vector<Collected> read_jsonlog(const std::string& bytes, size_t chunk_bytes) {
  std::vector<Collected> out;
  PgJsonlogReader reader;
  auto on = [&](const PgEntry& e) { out.push_back(collect(e)); };
  for (size_t i = 0; i < bytes.size(); i += chunk_bytes) {
    Status st = reader.feed(std::string_view(bytes).substr(i, chunk_bytes), on);
    EXPECT_TRUE(st.ok()) << st.to_string();
  }
  Status st = reader.finish(on);
  EXPECT_TRUE(st.ok()) << st.to_string();
  return out;
}

void expect_same_audit(const Collected& a, const Collected& b, const std::string& what) {
  EXPECT_EQ(a.message, b.message) << what;
  EXPECT_EQ(a.audit_type, b.audit_type) << what;
  EXPECT_EQ(a.statement_id, b.statement_id) << what;
  EXPECT_EQ(a.substatement_id, b.substatement_id) << what;
  EXPECT_EQ(a.class_name, b.class_name) << what;
  EXPECT_EQ(a.command, b.command) << what;
  EXPECT_EQ(a.object_type, b.object_type) << what;
  EXPECT_EQ(a.object_name, b.object_name) << what;
  EXPECT_EQ(a.statement, b.statement) << what;
  EXPECT_EQ(a.parameter, b.parameter) << what;
  EXPECT_EQ(a.user, b.user) << what;
  EXPECT_EQ(a.database, b.database) << what;
  EXPECT_EQ(a.application, b.application) << what;
  EXPECT_EQ(a.client, b.client) << what;
  EXPECT_EQ(a.time, b.time) << what;
  EXPECT_EQ(a.pid, b.pid) << what;
}

// AUDIT entries per PID, in order.
std::map<int64_t, std::vector<Collected>> audits_by_pid(const std::vector<Collected>& entries) {
  std::map<int64_t, std::vector<Collected>> m;
  for (const Collected& c : entries) {
    if (c.audit) m[c.pid].push_back(c);
  }
  return m;
}

class PgCorpus : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!read_file(corpus_dir() + "/run1-all/postgresql.csv", csv_) ||
        !read_file(corpus_dir() + "/run1-all/postgresql.json", json_)) {
      GTEST_SKIP() << "corpus not found under " << corpus_dir();
    }
    csv_entries_ = read_csvlog(csv_, 1 << 20);
  }

  // Every fragment in exactly one entry; every AUDIT record parsed, complete, and
  // equal to the csvlog's (message text included, so every cut, continuation
  // line, #011 and #015 was undone exactly).
  void check(const std::vector<std::string>& messages) {
    ASSERT_EQ(messages.size(), 442u);
    std::vector<Collected> entries = reassemble(messages);
    std::vector<int> seen(messages.size(), 0);
    size_t audits = 0;
    for (const Collected& c : entries) {
      for (uint64_t id : c.ids) seen[id]++;
      EXPECT_EQ(c.flags, 0u) << c.text;
      EXPECT_TRUE(c.prefix_ok) << c.text;
      EXPECT_EQ(c.audit_error, "") << c.text;
      if (c.audit) ++audits;
    }
    for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], 1) << "fragment " << i;
    EXPECT_EQ(audits, 119u);
    auto syslog_audits = audits_by_pid(entries);
    auto csv_audits = audits_by_pid(csv_entries_);
    ASSERT_EQ(syslog_audits.size(), csv_audits.size());
    for (const auto& [pid, list] : csv_audits) {
      const auto& got = syslog_audits[pid];
      ASSERT_EQ(got.size(), list.size()) << "pid " << pid;
      for (size_t i = 0; i < list.size(); ++i) {
        expect_same_audit(got[i], list[i], "pid " + std::to_string(pid) + " #" + std::to_string(i));
      }
    }
    // Every other csvlog entry is there too: same PID, time and severity, and the
    // syslog entry's message starts with the csvlog message (syslog adds the
    // DETAIL/HINT/STATEMENT lines to the same entry). 184 csvlog entries; syslog
    // has 2 more from before the logging collector started.
    EXPECT_EQ(entries.size(), csv_entries_.size() + 2);
    std::map<int64_t, size_t> next;
    std::map<int64_t, std::vector<const Collected*>> plain;
    for (const Collected& c : entries) plain[c.pid].push_back(&c);
    for (const Collected& want : csv_entries_) {
      auto& list = plain[want.pid];
      size_t& i = next[want.pid];
      while (i < list.size() && !(list[i]->time == want.time && list[i]->severity == want.severity &&
                                  list[i]->message.starts_with(want.message))) {
        ++i;
      }
      ASSERT_LT(i, list.size()) << "csvlog entry not found in syslog: " << want.text;
      std::string_view after = std::string_view(list[i]->message).substr(want.message.size());
      // stderr and syslog append the error position to the message.
      EXPECT_TRUE(after.empty() || after[0] == '\n' || after.starts_with(" at character ")) << want.text;
      ++i;
    }
  }

  std::string csv_, json_;
  std::vector<Collected> csv_entries_;
};

TEST_F(PgCorpus, Rfc5424OctetCounted) {
  LOAD_OR_SKIP(raw, "run1-all/syslog-rfc5424-octet.conn001.raw");
  check(frames_of(raw, Framing::kOctetCounted));
}

TEST_F(PgCorpus, Rfc3164Lf) {
  LOAD_OR_SKIP(raw, "run1-all/syslog-rfc3164-lf.conn001.raw");
  check(frames_of(raw, Framing::kLf));
}

TEST_F(PgCorpus, Rfc3164Udp) {
  LOAD_OR_SKIP(raw, "run1-all/syslog-rfc3164.udp.raw");
  LOAD_OR_SKIP(idx, "run1-all/syslog-rfc3164.udp.idx.jsonl");
  check(datagrams_of(raw, idx));
}

TEST_F(PgCorpus, CsvlogAndJsonlogAgree) {
  ASSERT_EQ(csv_entries_.size(), 184u);
  // Fed in small pieces: records span feed() calls.
  std::vector<Collected> csv_small = read_csvlog(csv_, 7);
  std::vector<Collected> json = read_jsonlog(json_, 13);
  ASSERT_EQ(json.size(), 184u);
  ASSERT_EQ(csv_small.size(), 184u);
  size_t audits = 0;
  for (size_t i = 0; i < json.size(); ++i) {
    const Collected& c = csv_entries_[i];
    EXPECT_EQ(c.text, csv_small[i].text);
    EXPECT_EQ(c.severity, json[i].severity);
    EXPECT_EQ(c.audit, json[i].audit);
    EXPECT_EQ(c.audit_error, "");
    EXPECT_EQ(json[i].audit_error, "");
    if (c.audit) {
      ++audits;
      expect_same_audit(c, json[i], "entry " + std::to_string(i));
    } else {
      EXPECT_EQ(c.message, json[i].message);
      EXPECT_EQ(c.pid, json[i].pid);
    }
  }
  EXPECT_EQ(audits, 119u);
}

TEST_F(PgCorpus, HandCheckedRecords) {
  // The prepared statement with a parameter list quoted twice (PID 21024).
  bool found = false;
  for (const Collected& c : csv_entries_) {
    if (c.audit && c.command == "SELECT" && c.statement.starts_with("PREPARE pay_lookup") &&
        c.parameter != "<none>") {
      found = true;
      EXPECT_EQ(c.statement,
                "PREPARE pay_lookup (int, text) AS\n  SELECT id, amount, memo FROM payments WHERE customer_id = $1 "
                "AND memo <> $2;");
      Result<std::vector<std::string>> p = split_audit_parameters(c.parameter);
      ASSERT_TRUE(p.ok());
      EXPECT_EQ(*p, (std::vector<std::string>{"1", "a,b \"c\" 'd' 東京"}));
      EXPECT_EQ(c.user, "app_svc");
      EXPECT_EQ(c.application, "billing-api/2.3.1");
      EXPECT_EQ(c.client, "127.0.0.1");
    }
  }
  EXPECT_TRUE(found);
  // CREATE ROLE ... PASSWORD is redacted by pgaudit.
  bool redacted = false;
  for (const Collected& c : csv_entries_) {
    if (c.audit && c.statement.find("<REDACTED>") != std::string::npos) redacted = true;
  }
  EXPECT_TRUE(redacted);
}

TEST(PgLogfile, MalformedInputNamesRecordAndByte) {
  PgCsvlogReader csv;
  auto ignore = [](const PgEntry&) {};
  std::string good =
      "2026-11-26 03:29:34.386 UTC,,,21011,,6b07a79e.5213,1,,2026-11-26 03:29:34 UTC,,0,LOG,00000,\"x\",,,,,,,,,"
      "\"\",\"postmaster\",,0\n";
  ASSERT_TRUE(csv.feed(good, ignore).ok());
  Status st = csv.feed("a,\"b\"c\n", ignore);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("csvlog record 2 (byte " + std::to_string(good.size()) + ")"), std::string::npos)
      << st.message();
  PgCsvlogReader unterminated;
  ASSERT_TRUE(unterminated.feed("a,\"b\n", ignore).ok());
  EXPECT_FALSE(unterminated.finish(ignore).ok());
  PgCsvlogReader few;
  EXPECT_NE(few.feed("a,b,c\n", ignore).message().find("3 columns"), std::string::npos);

  PgJsonlogReader json;
  ASSERT_TRUE(json.feed("{\"pid\":1,\"message\":\"x\"}\n", ignore).ok());
  st = json.feed("{\"pid\":1,\"message\":\"x\"\n", ignore);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("jsonlog record 2 (byte 24)"), std::string::npos) << st.message();
  PgJsonlogReader types;
  EXPECT_NE(types.feed("{\"pid\":\"1\"}\n", ignore).message().find("pid is not an integer"), std::string::npos);
  PgJsonlogReader dup;
  EXPECT_NE(dup.feed("{\"message\":\"a\",\"message\":\"b\"}\n", ignore).message().find("duplicate"),
            std::string::npos);
  PgJsonlogReader big(16);
  EXPECT_EQ(big.feed("{\"message\":\"0123456789abcdef\"}\n", ignore).code(), Code::kResourceExhausted);
}

// ---------------------------------------------------------------------------
// A real PostgreSQL 15 with pgaudit, started here: a private cluster on a unix
// socket only (no TCP), as user nobody when the test runs as root (initdb refuses
// root). Its csvlog and jsonlog are read back and every AUDIT record of the
// workload is checked against the SQL that was sent.

constexpr const char* kPgBin = "/usr/lib/postgresql/15/bin";

// Runs argv (as nobody when root), stdout/stderr to log; returns the PID.
pid_t spawn(const std::vector<std::string>& argv, const std::string& log) {
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd >= 0) {
    ::dup2(fd, 1);
    ::dup2(fd, 2);
  }
  if (::getuid() == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(126);
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execv(args[0], args.data());
  ::_exit(127);
}

int run(const std::vector<std::string>& argv, const std::string& log) {
  pid_t pid = spawn(argv, log);
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class RealPostgres : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* f : {"initdb", "postgres", "psql", "pg_isready"}) {
      if (::access((std::string(kPgBin) + "/" + f).c_str(), X_OK) != 0) {
        GTEST_SKIP() << "PostgreSQL 15 not installed (" << kPgBin << "/" << f
                     << "); scripts/install-deps installs postgresql-15 postgresql-15-pgaudit";
      }
    }
    if (::access("/usr/lib/postgresql/15/lib/pgaudit.so", R_OK) != 0) {
      GTEST_SKIP() << "pgaudit not installed; scripts/install-deps installs postgresql-15-pgaudit";
    }
    char tmpl[] = "/tmp/logseal-pgaudit-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
    if (::getuid() == 0) {
      ASSERT_EQ(::chown(dir_.c_str(), 65534, 65534), 0);
    }
    log_ = dir_ + "/test.log";
    ASSERT_EQ(run({std::string(kPgBin) + "/initdb", "-D", dir_ + "/data", "-U", "postgres", "--auth=trust",
                   "--no-sync", "-E", "UTF8", "--locale=C"},
                  log_),
              0)
        << "initdb failed; see " << log_;
    std::ofstream conf(dir_ + "/data/postgresql.conf", std::ios::app);
    conf << "listen_addresses = ''\n"
         << "unix_socket_directories = '" << dir_ << "'\n"
         << "port = 5432\n"
         << "shared_preload_libraries = 'pgaudit'\n"
         << "logging_collector = on\n"
         << "log_destination = 'csvlog,jsonlog'\n"
         << "log_directory = '" << dir_ << "/log'\n"
         << "log_filename = 'pg.log'\n"
         << "lc_messages = 'C'\n"
         << "pgaudit.log = 'all'\n"
         << "pgaudit.log_relation = on\n"
         << "pgaudit.log_parameter = on\n"
         << "pgaudit.log_rows = on\n"
         << "pgaudit.log_catalog = off\n";
    conf.close();
    pid_ = spawn({std::string(kPgBin) + "/postgres", "-D", dir_ + "/data"}, log_);
    ASSERT_GT(pid_, 0);
    bool ready = false;
    for (int i = 0; i < 300 && !ready; ++i) {
      ready = run({std::string(kPgBin) + "/pg_isready", "-q", "-h", dir_, "-p", "5432"}, log_) == 0;
      if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(ready) << "postgres did not start; see " << log_;
  }

  void TearDown() override {
    stop();
    if (!dir_.empty() && !HasFailure()) std::filesystem::remove_all(dir_);
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGINT);  // fast shutdown; the logging collector flushes first
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  std::string dir_, log_;
  pid_t pid_ = -1;
};

TEST_F(RealPostgres, CsvlogAndJsonlogOfAWorkload) {
  const std::string create = "CREATE TABLE t1 (id int PRIMARY KEY, name text, note text);";
  const std::string insert = "INSERT INTO t1 VALUES (1, 'Zoë 東京', 'says \"hi\", then ''bye''');";
  const std::string select = "SELECT id,\n\tname\n  FROM t1\n WHERE note LIKE '%,%';";
  const std::string prepare = "PREPARE q (int, text) AS SELECT * FROM t1 WHERE id = $1 AND name <> $2;";
  const std::string execute = "EXECUTE q(1, 'a,b \"c\" ''d''');";
  const std::string update = "UPDATE t1 SET note = E'line1\\nline2' WHERE id = 1;";
  {
    std::ofstream sql(dir_ + "/workload.sql");
    for (const std::string* s : {&create, &insert, &select, &prepare, &execute, &update}) sql << *s << "\n";
  }
  ASSERT_EQ(run({std::string(kPgBin) + "/psql", "-X", "-q", "-h", dir_, "-p", "5432", "-U", "postgres", "-d",
                 "postgres", "-v", "ON_ERROR_STOP=1", "-f", dir_ + "/workload.sql"},
                log_),
            0)
      << "psql failed; see " << log_;
  stop();

  std::string csv, json;
  ASSERT_TRUE(read_file(dir_ + "/log/pg.csv", csv)) << dir_;
  ASSERT_TRUE(read_file(dir_ + "/log/pg.json", json)) << dir_;
  std::vector<Collected> from_csv = read_csvlog(csv, 4096);
  std::vector<Collected> from_json = read_jsonlog(json, 4096);
  ASSERT_EQ(from_csv.size(), from_json.size());
  std::vector<Collected> audits;
  for (size_t i = 0; i < from_csv.size(); ++i) {
    EXPECT_EQ(from_csv[i].audit_error, "") << from_csv[i].text;
    EXPECT_EQ(from_json[i].audit_error, "") << from_json[i].text;
    ASSERT_EQ(from_csv[i].audit, from_json[i].audit) << from_csv[i].text;
    if (!from_csv[i].audit) continue;
    expect_same_audit(from_csv[i], from_json[i], from_csv[i].text);
    audits.push_back(from_csv[i]);
  }
  auto find = [&](const std::string& statement, const std::string& command) -> const Collected* {
    for (const Collected& c : audits) {
      if (c.statement == statement && c.command == command) return &c;
    }
    ADD_FAILURE() << "no AUDIT record with command " << command << " and statement " << statement;
    return nullptr;
  };
  if (const Collected* c = find(create, "CREATE TABLE")) {
    EXPECT_EQ(c->class_name, "DDL");
    EXPECT_EQ(c->object_name, "");  // no object on session DDL with log_catalog off
    EXPECT_EQ(c->user, "postgres");
    EXPECT_EQ(c->database, "postgres");
    EXPECT_EQ(c->application, "psql");
    EXPECT_EQ(c->client, "[local]");
  }
  if (const Collected* c = find(insert, "INSERT")) {
    EXPECT_EQ(c->class_name, "WRITE");
    EXPECT_EQ(c->object_type, "TABLE");
    EXPECT_EQ(c->object_name, "public.t1");
    EXPECT_EQ(c->parameter, "<none>");
  }
  if (const Collected* c = find(select, "SELECT")) {
    EXPECT_EQ(c->class_name, "READ");
  }
  if (const Collected* c = find(update, "UPDATE")) {
    EXPECT_EQ(c->class_name, "WRITE");
  }
  bool with_parameters = false;
  for (const Collected& c : audits) {
    if (c.statement != prepare || c.parameter == "<none>") continue;
    with_parameters = true;
    Result<std::vector<std::string>> p = split_audit_parameters(c.parameter);
    ASSERT_TRUE(p.ok()) << p.status().to_string();
    EXPECT_EQ(*p, (std::vector<std::string>{"1", "a,b \"c\" 'd'"}));
  }
  EXPECT_TRUE(with_parameters) << "no AUDIT record of the prepared statement with its parameters";
  // pgaudit.log_rows = on: every record carries a row count.
  for (const Collected& c : audits) {
    Result<AuditRecord> r = parse_audit(c.message);
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->has_rows) << c.message;
    if (c.command == "INSERT" && c.statement == insert) {
      EXPECT_EQ(r->rows, 1);
    }
  }
}

}  // namespace
}  // namespace logseal::ingest
