// Role x action through the real logseald: the read API and admin actions
// (GET /v1/streams, /v1/records, /v1/proof, /v1/checkpoint; POST /v1/hold,
// /v1/roll) under a TOML policy of identities with bearer tokens. Every row of
// the table is one (credential, request) pair and the status the policy must
// give; refusals must be sealed in `_audit`, and the data directory, `_audit`
// included, must verify afterwards.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/e2e_util.h"

namespace logseal::e2e {
namespace {

using namespace std::chrono_literals;

struct Answer {
  int status = 0;
  std::string body;
};

// curl with an optional bearer token; the HTTP status and body.
Answer call(uint16_t port, const std::string& method, const std::string& target, const std::string& token,
            const std::string& body_file) {
  std::vector<std::string> argv = {find_program("curl"), "-sS", "-o", body_file, "-w", "%{http_code}", "-X", method};
  if (!token.empty()) {
    argv.push_back("-H");
    argv.push_back("Authorization: Bearer " + token);
  }
  argv.push_back("http://127.0.0.1:" + std::to_string(port) + target);
  RunResult r = run(argv, 20s);
  Answer a;
  if (r.exit_code == 0) a.status = std::atoi(r.out.c_str());
  a.body = read_file(body_file);
  return a;
}

std::string token_hash(const std::string& token) {
  RunResult r = run({logseal_path(), "token", "hash"}, 10s, token);
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  return r.out.substr(0, 64);
}

TEST(AccessApiE2E, EveryRoleAndActionPairAsConfigured) {
  TempDir tmp("access-api");
  SoftKey key = make_soft_key(tmp.sub("key"));
  std::string data = tmp.sub("data");
  const std::string sender = "sender-token-7f3a9c0d5e1b", auditor = "auditor-token-2b8e4f6a1c9d",
                    admin = "admin-token-5d1c7e3b9a2f", staging_auditor = "staging-auditor-token-8c2a6e4d0b1f";
  std::string conf = tmp.sub("logseald.toml");
  ASSERT_TRUE(write_file(
      conf, "data_dir = \"" + data + "\"\nsigner = \"soft:" + key.key_pem +
                "\"\nhttp = \"127.0.0.1:0\"\ncheckpoint_ms = 100\n"
                "[[listener]]\nname = \"tcp\"\nkind = \"syslog-tcp\"\naddress = \"127.0.0.1:0\"\nstream = \"prod\"\n"
                "[[route]]\nmatch = { app_name = \"staging*\" }\nstream = \"staging\"\n"
                // a service account: sends, and may fetch checkpoints of prod
                "[[identity]]\nname = \"sender\"\nkind = \"service\"\nsource = [\"127.0.0.1/32\"]\n"
                "token_sha256 = [\"" +
                token_hash(sender) +
                "\"]\nroles = [\"sender\"]\n"
                "[[identity]]\nname = \"auditor\"\nkind = \"human\"\ntoken_sha256 = [\"" +
                token_hash(auditor) +
                "\"]\nroles = [\"auditor\"]\n"
                "[[identity]]\nname = \"admin\"\nkind = \"human\"\ntoken_sha256 = [\"" +
                token_hash(admin) +
                "\"]\nroles = [\"admin\"]\n"
                "[[identity]]\nname = \"staging-auditor\"\nkind = \"human\"\ntoken_sha256 = [\"" +
                token_hash(staging_auditor) +
                "\"]\nroles = [\"staging-auditor\"]\n"
                "[[role]]\nname = \"sender\"\nstreams = [\"prod\", \"staging\"]\nactions = [\"ingest\"]\n"
                "[[role]]\nname = \"sender-checkpoint\"\nstreams = [\"prod\"]\nactions = [\"checkpoint\"]\n"
                "[[role]]\nname = \"auditor\"\nstreams = [\"prod\"]\nactions = [\"read\", \"verify\"]\n"
                "[[role]]\nname = \"admin\"\nstreams = [\"prod\"]\nactions = [\"admin\", \"checkpoint\"]\n"
                "[[role]]\nname = \"staging-auditor\"\nstreams = [\"staging\"]\nactions = [\"read\"]\n"));
  // The sender also holds sender-checkpoint.
  std::string text = read_file(conf);
  text.replace(text.find("roles = [\"sender\"]"), 18, "roles = [\"sender\", \"sender-checkpoint\"]");
  ASSERT_TRUE(write_file(conf, text));

  DaemonConfig dc;
  dc.config_file = conf;
  dc.listeners = {{ListenerConfig::Kind::kTcp, "prod"}};
  Daemon d(dc, tmp.sub("logseald.log"));
  ASSERT_TRUE(d.start());
  ASSERT_NE(d.http_port(), 0);
  int fd = connect_tcp(d.port("prod"));
  ASSERT_GE(fd, 0);
  std::string frames;
  for (int i = 0; i < 5; ++i) frames += octet_frame("<14>1 2026-11-26T10:00:00Z h app - - - prod " + std::to_string(i));
  for (int i = 0; i < 3; ++i) {
    frames += octet_frame("<14>1 2026-11-26T10:00:00Z h staging-app - - - staging " + std::to_string(i));
  }
  ASSERT_TRUE(send_all(fd, frames));
  ::close(fd);
  ASSERT_TRUE(d.wait_records("prod", 5));
  ASSERT_TRUE(d.wait_records("staging", 3));
  // Proofs need a signed checkpoint covering the record.
  ASSERT_TRUE(
      wait_until([&] { return d.stream_metric("logseal_stream_signed_records", "prod").value_or(0) >= 5; }, 10s));

  struct Row {
    const char* who;
    std::string token;
    std::string method, target;
    int status;
  };
  const std::string none, unknown = "not-a-token-anyone-has";
  std::vector<Row> rows = {
      // read: the auditor of the stream only
      {"auditor reads prod", auditor, "GET", "/v1/records?stream=prod", 200},
      {"sender cannot read", sender, "GET", "/v1/records?stream=prod", 403},
      {"admin cannot read", admin, "GET", "/v1/records?stream=prod", 403},
      {"staging auditor cannot read prod", staging_auditor, "GET", "/v1/records?stream=prod", 403},
      {"staging auditor reads staging", staging_auditor, "GET", "/v1/records?stream=staging", 200},
      {"auditor cannot read staging", auditor, "GET", "/v1/records?stream=staging", 403},
      {"no token", none, "GET", "/v1/records?stream=prod", 401},
      {"unknown token", unknown, "GET", "/v1/records?stream=prod", 401},
      {"auditor proves prod", auditor, "GET", "/v1/proof?stream=prod&index=2", 200},
      {"sender cannot prove", sender, "GET", "/v1/proof?stream=prod&index=2", 403},
      {"no token cannot prove", none, "GET", "/v1/proof?stream=prod&index=2", 401},
      // checkpoint: sender and admin hold it on prod
      {"sender fetches the checkpoint", sender, "GET", "/v1/checkpoint?stream=prod", 200},
      {"admin fetches the checkpoint", admin, "GET", "/v1/checkpoint?stream=prod", 200},
      {"auditor has no checkpoint right", auditor, "GET", "/v1/checkpoint?stream=prod", 403},
      {"no token, no checkpoint", none, "GET", "/v1/checkpoint?stream=prod", 401},
      // admin: hold and roll on prod, nothing on staging
      {"auditor cannot hold", auditor, "POST", "/v1/hold?stream=prod&on=true", 403},
      {"sender cannot hold", sender, "POST", "/v1/hold?stream=prod&on=true", 403},
      {"admin holds prod", admin, "POST", "/v1/hold?stream=prod&on=true", 200},
      {"admin cannot roll staging", admin, "POST", "/v1/roll?stream=staging", 403},
      {"admin rolls prod", admin, "POST", "/v1/roll?stream=prod", 200},
      {"staging auditor cannot roll staging", staging_auditor, "POST", "/v1/roll?stream=staging", 403},
      // listing
      {"no token cannot list", none, "GET", "/v1/streams", 401},
      {"auditor lists", auditor, "GET", "/v1/streams", 200},
  };
  int refused = 0;
  for (const Row& r : rows) {
    SCOPED_TRACE(r.who);
    Answer a = call(d.http_port(), r.method, r.target, r.token, tmp.sub("body"));
    EXPECT_EQ(a.status, r.status) << r.method << " " << r.target << ": " << a.body;
    if (r.status == 401 || r.status == 403) ++refused;
  }

  // What each caller sees in /v1/streams: only streams it holds a read, verify or
  // checkpoint right on.
  Answer aud = call(d.http_port(), "GET", "/v1/streams", auditor, tmp.sub("body"));
  EXPECT_NE(aud.body.find("\"prod\""), std::string::npos) << aud.body;
  EXPECT_EQ(aud.body.find("\"staging\""), std::string::npos) << aud.body;
  Answer st = call(d.http_port(), "GET", "/v1/streams", staging_auditor, tmp.sub("body"));
  EXPECT_NE(st.body.find("\"staging\""), std::string::npos) << st.body;
  EXPECT_EQ(st.body.find("\"prod\""), std::string::npos) << st.body;

  // The records the auditor read are prod's five (and the hold statement the
  // admin sealed into prod), not staging's.
  Answer recs = call(d.http_port(), "GET", "/v1/records?stream=prod", auditor, tmp.sub("body"));
  size_t sent = 0, held = 0;
  for (const std::string& line : split_lines(recs.body)) {
    if (line.find("\"source\":\"tcp:") != std::string::npos) ++sent;
    if (line.find("\"op\":\"hold-on\"") != std::string::npos) ++held;
  }
  EXPECT_EQ(sent, 5u) << recs.body;
  EXPECT_EQ(held, 1u) << recs.body;
  EXPECT_EQ(split_lines(recs.body).size(), 6u) << recs.body;
  EXPECT_EQ(recs.body.find("staging 0"), std::string::npos);

  ASSERT_EQ(d.stop(), 0) << d.log();
  // Every refusal is a sealed `_audit` record; the reads and the hold are there too.
  RunResult ex = run({logseal_path(), "export", data, "--stream", "_audit", "--format", "jsonl"}, 30s);
  ASSERT_EQ(ex.exit_code, 0) << describe(ex);
  size_t api_refused = 0, api_export = 0, hold_on = 0;
  for (const std::string& line : split_lines(ex.out)) {
    if (line.find("\\\"api-refused\\\"") != std::string::npos || line.find("\"api-refused\"") != std::string::npos) {
      ++api_refused;
    }
    if (line.find("api-export") != std::string::npos) ++api_export;
    if (line.find("legal-hold-on") != std::string::npos) ++hold_on;
  }
  EXPECT_EQ(api_refused, static_cast<size_t>(refused)) << ex.out;
  EXPECT_GE(api_export, 3u) << ex.out;
  EXPECT_EQ(hold_on, 1u) << ex.out;
  RunResult v = verify(data, key.pub_pem);
  EXPECT_EQ(v.exit_code, 0) << describe(v);
}

}  // namespace
}  // namespace logseal::e2e
