// PostgreSQL entries as records (ingest/pg_records.h) in a real store, the
// verifier's bad-reassembly check (ingest/pg_verify.h) against honest and forged
// records, and export's --where filter (ingest/field_filter.h).
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <thread>
#include <string>
#include <vector>

#include "engine/export.h"
#include "engine/reader.h"
#include "engine/retention.h"
#include "engine/store.h"
#include "ingest/field_filter.h"
#include "ingest/pg_records.h"
#include "ingest/pg_verify.h"
#include "ingest/syslog_fields.h"
#include "ingest/syslog_parse.h"
#include "tests/test_util.h"

namespace logseal::ingest {
namespace {

// What rsyslog forwards (RFC 5424 template: a space before MSG) for PostgreSQL's
// syslog pieces of backend 7: an AUDIT entry in three pieces (a multi-line
// statement with TABs escaped as #011), then the start of the next entry.
const std::vector<std::string> kMessages = {
    "<134>1 2026-11-26T03:29:34.953+00:00 db1 postgres 7 - -  [5-1] 2026-11-26 03:29:34.953 UTC [7] alice@app psql "
    "[local] LOG:  AUDIT: SESSION,4,1,READ,SELECT,TABLE,public.t,\"SELECT name,",
    "<134>1 2026-11-26T03:29:34.953+00:00 db1 postgres 7 - -  [5-2] #011#011city, 'Zoë'",
    "<134>1 2026-11-26T03:29:34.953+00:00 db1 postgres 7 - -  [5-3] #011FROM public.t;\",<none>,2",
    "<134>1 2026-11-26T03:29:35.000+00:00 db1 postgres 7 - -  [6-1] 2026-11-26 03:29:35.000 UTC [7] alice@app psql "
    "[local] LOG:  duration: 1 ms",
    "<134>1 2026-11-26T03:29:35.000+00:00 db1 sshd 9 - -  not postgres",
};
constexpr const char* kEntry =
    "2026-11-26 03:29:34.953 UTC [7] alice@app psql [local] LOG:  AUDIT: SESSION,4,1,READ,SELECT,TABLE,public.t,"
    "\"SELECT name,\n\tcity, 'Zoë'\nFROM public.t;\",<none>,2";

format::RecordView syslog_record(const std::string& raw, uint8_t* view) {
  format::RecordView r;
  r.received_ns = 1700000000000000000;
  r.source = "tcp:127.0.0.1:1";
  r.raw = raw;
  EXPECT_TRUE(make_syslog_view(parse_syslog(raw), raw, view));
  r.fields = std::string_view(reinterpret_cast<const char*>(view), format::kSyslogViewBytes);
  return r;
}

class PgRecords : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = test::make_soft_key(dir_.sub("key"));
    data_ = dir_.sub("data");
  }

  // What the syslog server does per message: append it, then feed the stream's
  // reassembly with the index it got.
  void ingest_messages(const std::vector<std::string>& msgs, PgListenerOptions opt = {}) {
    opt.enabled = true;
    if (opt.log_line_prefix.empty()) opt.log_line_prefix = "%m [%p] %q%u@%d %a %h ";
    auto store = engine::Store::open(io::posix_env(), data_, key_.signer(), test::small_options());
    ASSERT_TRUE(store.ok()) << store.status().to_string();
    auto stream = (*store)->stream("pg");
    ASSERT_TRUE(stream.ok());
    auto pg = PgStreamIngest::create(**stream, opt);
    ASSERT_TRUE(pg.ok()) << pg.status().to_string();
    for (const std::string& m : msgs) {
      uint8_t view[format::kSyslogViewBytes];
      auto idx = (*stream)->append(syslog_record(m, view));
      ASSERT_TRUE(idx.ok());
      SyslogFields f = parse_syslog(m);
      if ((*pg)->wants(f.app_name)) (*pg)->add(f, *idx, 1700000000000000000);
    }
    (*pg)->flush_all(1700000001000000000);
    stats_ = (*pg)->stats();
    ASSERT_TRUE((*store)->close().ok());
  }

  // Appends records as they are given (forgeries).
  void append_raw_records(const std::vector<std::pair<std::string, std::string>>& raw_and_fields) {
    auto store = engine::Store::open(io::posix_env(), data_, key_.signer(), test::small_options());
    ASSERT_TRUE(store.ok());
    auto stream = (*store)->stream("pg");
    ASSERT_TRUE(stream.ok());
    for (const auto& [raw, fields] : raw_and_fields) {
      format::RecordView r;
      r.received_ns = 1700000002000000000;
      r.source = "pg-reassembly";
      r.raw = raw;
      r.fields = fields;
      ASSERT_TRUE((*stream)->append(r).ok());
    }
    ASSERT_TRUE((*store)->close().ok());
  }

  std::vector<std::pair<std::string, std::string>> records() {
    std::vector<std::pair<std::string, std::string>> out;
    EXPECT_TRUE(engine::for_each_record(io::posix_env(), data_, "pg", [&](const engine::StoredRecord& r) {
                  std::string fields;
                  engine::append_fields_json(r.view.fields, r.view.raw, fields);
                  out.emplace_back(std::string(r.view.raw), fields);
                  return true;
                }).ok());
    return out;
  }

  std::vector<engine::Finding> check(PgVerifyStats* stats = nullptr) {
    std::vector<engine::Finding> findings;
    PgVerifyStats s;
    EXPECT_TRUE(verify_pg_reassembly(io::posix_env(), data_, "pg", findings, s).ok());
    if (stats) *stats = s;
    return findings;
  }

  test::TempDir dir_{"pg-records"};
  test::TestKey key_;
  std::string data_;
  PgStreamStats stats_;
};

TEST_F(PgRecords, AuditEntryBecomesOneRecordNamingItsFragments) {
  ingest_messages(kMessages);
  // Fragments 0..3 as received; the AUDIT entry is complete when [6-1] (index 3)
  // starts the next entry of backend 7, so it is record 4, before sshd's message
  // (5), which is not PostgreSQL's. "duration" is a plain entry: no record.
  EXPECT_EQ(stats_.fragments, 4u);
  EXPECT_EQ(stats_.entries, 2u);
  EXPECT_EQ(stats_.records, 1u);
  EXPECT_EQ(stats_.audit_records, 1u);
  auto recs = records();
  ASSERT_EQ(recs.size(), 6u);
  for (size_t i : {0, 1, 2, 3, 5}) EXPECT_EQ(recs[i].second.rfind("{\"syslog\":", 0), 0u) << recs[i].second;
  EXPECT_EQ(recs[4].first, kEntry);
  EXPECT_EQ(recs[4].second,
            "{\"pgaudit\":{\"audit_type\":\"SESSION\",\"statement_id\":4,\"substatement_id\":1,\"class\":\"READ\","
            "\"command\":\"SELECT\",\"object_type\":\"TABLE\",\"object_name\":\"public.t\",\"statement\":\"SELECT "
            "name,\\n\\tcity, 'Zoë'\\nFROM public.t;\",\"parameter\":\"<none>\",\"rows\":2},\"postgres\":{\"user\":"
            "\"alice\",\"database\":\"app\",\"application\":\"psql\",\"client\":\"[local]\",\"pid\":7,\"time\":"
            "\"2026-11-26 03:29:34.953 UTC\",\"severity\":\"LOG\"},\"pg_fragments\":[0,1,2],\"pg_flags\":[]}");
  PgVerifyStats s;
  EXPECT_TRUE(check(&s).empty());
  EXPECT_EQ(s.reassembled_records, 1u);
  EXPECT_EQ(s.fragments, 3u);
  EXPECT_EQ(s.unclaimed_audit_fragments, 0u);
}

TEST_F(PgRecords, FragmentsRemovedByAPruneAreNotAFinding) {
  // The fragments of an entry end one segment, its record starts the next; a
  // signed prune then removes the first segment (FORMAT.md 5.4).
  {
    auto store = engine::Store::open(io::posix_env(), data_, key_.signer(), test::small_options());
    ASSERT_TRUE(store.ok()) << store.status().to_string();
    auto stream = (*store)->stream("pg");
    ASSERT_TRUE(stream.ok());
    PgListenerOptions opt;
    opt.enabled = true;
    opt.log_line_prefix = "%m [%p] %q%u@%d %a %h ";
    auto pg = PgStreamIngest::create(**stream, opt);
    ASSERT_TRUE(pg.ok()) << pg.status().to_string();
    for (size_t i = 0; i < kMessages.size(); ++i) {
      if (i == 3) {
        // Roll after the three pieces of the AUDIT entry.
        ASSERT_TRUE((*stream)->wait_durable(2, std::chrono::seconds(10)));
        (*stream)->request_roll();
        for (int k = 0; k < 1000 && (*stream)->stats().segment_seq == 0; ++k) {
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        ASSERT_EQ((*stream)->stats().segment_seq, 1u);
      }
      uint8_t view[format::kSyslogViewBytes];
      auto idx = (*stream)->append(syslog_record(kMessages[i], view));
      ASSERT_TRUE(idx.ok());
      SyslogFields f = parse_syslog(kMessages[i]);
      if ((*pg)->wants(f.app_name)) (*pg)->add(f, *idx, 1700000000000000000);
    }
    (*pg)->flush_all(1700000001000000000);
    ASSERT_TRUE((*store)->close().ok());
  }
  {
    auto store = engine::Store::open(io::posix_env(), data_, key_.signer(), test::small_options());
    ASSERT_TRUE(store.ok());
    engine::PruneRequest req;
    req.trigger = engine::PruneTrigger::kDiskFull;
    req.segments_max = 1;
    auto r = engine::prune_stream(**store, "pg", req);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    ASSERT_TRUE(r->pruned) << r->why;
    EXPECT_EQ(r->statement.tree_size, 3u);
    ASSERT_TRUE((*store)->close().ok());
    EXPECT_FALSE(io::posix_env().exists(r->paths.at(0)));
  }
  PgVerifyStats s;
  auto findings = check(&s);
  EXPECT_TRUE(findings.empty()) << findings.front().message;
  EXPECT_EQ(s.fragments_pruned, 1u);
}

TEST_F(PgRecords, VerifierCountsAuditFragmentsWithoutTheirRecord) {
  // As if the daemon died before the AUDIT entry completed: its fragments are
  // sealed, no record names them; another entry's record exists.
  PgListenerOptions opt;
  opt.app_names = {"nothing"};
  ingest_messages(kMessages, opt);
  append_raw_records({{"2026-11-26 03:29:35.000 UTC [7] alice@app psql [local] LOG:  duration: 1 ms",
                       "{\"pg_fragments\":[3],\"pg_flags\":[]}"}});
  PgVerifyStats s;
  EXPECT_TRUE(check(&s).empty());
  EXPECT_EQ(s.reassembled_records, 1u);
  EXPECT_EQ(s.unclaimed_audit_fragments, 1u);  // [5-1], the start of the AUDIT entry
}

TEST_F(PgRecords, WrongPrefixGivesRecordsWithPgError) {
  PgListenerOptions opt;
  opt.log_line_prefix = "%t <%p> ";  // not what the server uses
  ingest_messages(kMessages, opt);
  EXPECT_EQ(stats_.records, 1u);
  EXPECT_EQ(stats_.errors, 1u);
  auto recs = records();
  ASSERT_EQ(recs.size(), 6u);
  EXPECT_NE(recs[4].second.find("\"pg_error\":\"log_line_prefix: "), std::string::npos) << recs[4].second;
  EXPECT_EQ(recs[4].second.find("\"pgaudit\""), std::string::npos);
  EXPECT_TRUE(check().empty());
}

TEST_F(PgRecords, SplitMessagesOffIsRebuiltByTheVerifier) {
  PgListenerOptions opt;
  opt.split_messages = false;
  opt.sequence_numbers = false;
  // With syslog_split_messages=off the entry is one message; rsyslog escapes its LFs.
  ingest_messages({"<134>1 2026-11-26T03:29:34.953+00:00 db1 postgres 7 - -  2026-11-26 03:29:34.953 UTC [7] "
                   "alice@app psql [local] LOG:  AUDIT: SESSION,1,1,WRITE,INSERT,,,\"INSERT INTO t VALUES (1,#012#0112)\",<none>"},
                  opt);
  EXPECT_EQ(stats_.audit_records, 1u);
  EXPECT_TRUE(check().empty());
}

TEST_F(PgRecords, VerifierFindsForgedReassemblies) {
  ingest_messages(kMessages);
  auto recs = records();
  ASSERT_EQ(recs.size(), 6u);
  const std::string honest = recs[4].second;
  auto replace = [](std::string s, const std::string& from, const std::string& to) {
    size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  std::string altered_raw = replace(kEntry, "Zoë", "Zoe");
  // Each forgery is a record of its own (indexes 6..11).
  append_raw_records({
      {altered_raw, replace(honest, "[0,1,2]", "[3]")},                                 // 6: raw not rebuilt
      {kEntry, replace(honest, "[0,1,2]", "[0,1,2]")},                                  // 7: fragments counted twice
      {kEntry, replace(honest, "[0,1,2]", "[4]")},                                      // 8: not a syslog record
      {kEntry, replace(honest, "[0,1,2]", "[9]")},                                      // 9: does not precede
      {"x", replace(honest, "[0,1,2]", "[]")},                                          // 10: empty
      {kEntry, replace(honest, "[0,1,2]", "[1]")},                                      // 11: claimed by 4
  });
  std::vector<engine::Finding> f = check();
  std::map<int64_t, std::string> by_index;
  for (const auto& x : f) {
    EXPECT_EQ(x.kind, "bad-reassembly");
    EXPECT_EQ(x.stream, "pg");
    by_index[x.record_index] += x.message + ";";
  }
  EXPECT_EQ(by_index.size(), 6u) << ::testing::PrintToString(by_index);
  EXPECT_NE(by_index[6].find("do not reassemble to its raw bytes"), std::string::npos) << by_index[6];
  EXPECT_NE(by_index[7].find("also claimed by record 4"), std::string::npos) << by_index[7];
  EXPECT_NE(by_index[8].find("is not a parsed syslog record"), std::string::npos) << by_index[8];
  EXPECT_NE(by_index[9].find("does not precede"), std::string::npos) << by_index[9];
  EXPECT_NE(by_index[10].find("pg_fragments is empty"), std::string::npos) << by_index[10];
  EXPECT_NE(by_index[11].find("also claimed by record 4"), std::string::npos) << by_index[11];
  EXPECT_EQ(by_index.count(4), 0u);  // the honest record still verifies
}

TEST_F(PgRecords, VerifierComparesPgauditWithTheRawText) {
  // A fresh stream with only the fragments, then a record whose raw and fragments
  // are right but whose fields lie about the row count.
  std::vector<std::string> msgs(kMessages.begin(), kMessages.begin() + 3);
  PgListenerOptions opt;
  opt.app_names = {"nothing"};  // no reassembly: only the fragments are sealed
  ingest_messages(msgs, opt);
  std::string fields =
      "{\"pgaudit\":{\"audit_type\":\"SESSION\",\"statement_id\":4,\"substatement_id\":1,\"class\":\"READ\","
      "\"command\":\"SELECT\",\"object_type\":\"TABLE\",\"object_name\":\"public.t\",\"statement\":\"SELECT "
      "name,\\n\\tcity, 'Zoë'\\nFROM public.t;\",\"parameter\":\"<none>\",\"rows\":ROWS},\"pg_fragments\":[0,1,2],"
      "\"pg_flags\":[]}";
  std::string good = fields, bad = fields;
  good.replace(good.find("ROWS"), 4, "2");
  bad.replace(bad.find("ROWS"), 4, "3");
  append_raw_records({{kEntry, bad}});
  std::vector<engine::Finding> f = check();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].record_index, 3);
  EXPECT_NE(f[0].message.find("fields.pgaudit.rows differs"), std::string::npos) << f[0].message;
}

// ---- --where -----------------------------------------------------------------------

TEST(FieldFilter, ParsesAndMatches) {
  EXPECT_FALSE(FieldFilter::parse({"pgaudit.class"}).ok());
  EXPECT_FALSE(FieldFilter::parse({"=x"}).ok());
  EXPECT_FALSE(FieldFilter::parse({"pgaudit..class=x"}).ok());
  const std::string rec =
      "{\"pgaudit\":{\"class\":\"WRITE\",\"statement\":\"INSERT INTO accounts VALUES ('Zoë')\",\"rows\":1},"
      "\"postgres\":{\"user\":\"alice\",\"pid\":4242},\"pg_flags\":[\"gap\",\"continued\"]}";
  auto m = [&](std::vector<std::string> c, const std::string& json) {
    auto f = FieldFilter::parse(c);
    EXPECT_TRUE(f.ok());
    return f->matches(json);
  };
  EXPECT_TRUE(m({}, rec));
  EXPECT_TRUE(m({"pgaudit.class=WRITE"}, rec));
  EXPECT_FALSE(m({"pgaudit.class=write"}, rec));  // exact, case-sensitive
  EXPECT_FALSE(m({"pgaudit.class=WRIT"}, rec));
  EXPECT_TRUE(m({"pgaudit.class~=RIT"}, rec));
  EXPECT_TRUE(m({"pgaudit.statement~=Zoë"}, rec));
  EXPECT_TRUE(m({"postgres.user=alice", "pgaudit.class=WRITE"}, rec));
  EXPECT_FALSE(m({"postgres.user=alice", "pgaudit.class=READ"}, rec));  // AND
  EXPECT_TRUE(m({"postgres.pid=4242"}, rec));
  EXPECT_TRUE(m({"pgaudit.rows=1"}, rec));
  EXPECT_TRUE(m({"pg_flags=gap"}, rec));
  EXPECT_FALSE(m({"pg_flags=oversized"}, rec));
  EXPECT_FALSE(m({"pgaudit.object_name=x"}, rec));  // absent
  EXPECT_FALSE(m({"pgaudit=x"}, rec));              // an object is never equal to text
  EXPECT_FALSE(m({"postgres.user.name=alice"}, rec));
  EXPECT_FALSE(m({"pgaudit.class=WRITE"}, "{\"syslog\":{\"app_name\":\"postgres\"}}"));
  EXPECT_FALSE(m({"pgaudit.class=WRITE"}, "{\"pgaudit\":"));  // not JSON
  // A syslog view as export renders it.
  std::string raw = "<134>1 2026-11-26T03:29:34.953Z db1 postgres 7 - - hello";
  uint8_t view[format::kSyslogViewBytes];
  ASSERT_TRUE(make_syslog_view(parse_syslog(raw), raw, view));
  std::string json;
  engine::append_fields_json(std::string_view(reinterpret_cast<const char*>(view), sizeof view), raw, json);
  EXPECT_TRUE(m({"syslog.app_name=postgres", "syslog.severity=6"}, json)) << json;
  EXPECT_FALSE(m({"syslog.app_name=sshd"}, json));
}

}  // namespace
}  // namespace logseal::ingest
