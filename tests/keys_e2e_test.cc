// Per-stream signing keys through the real logseald and logseal: a staging
// stream signed by a key of its own ([streams.NAME] signer) next to production
// on the daemon's key; both verify with both keys, the staging stream alone is
// unknown-key with the production key only; a stream never switches key
// silently (logseald refuses to start, naming `logseal key rotate`), and after
// `logseal key rotate --stream` it does. `_audit` holds a key-in-use record per
// signer at each start and the key-rotate record, and verifies. Without access
// control the read API answers 403.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/e2e_util.h"

namespace logseal::e2e {
namespace {

using namespace std::chrono_literals;
using Kind = ListenerConfig::Kind;

// staging_signer: a full SIGNER (soft:KEY or tpm:KEY).
std::string config(const std::string& data_dir, const std::string& prod_key, const std::string& staging_signer) {
  return "data_dir = \"" + data_dir + "\"\nsigner = \"soft:" + prod_key +
         "\"\nhttp = \"127.0.0.1:0\"\ncheckpoint_ms = 100\n"
         "[streams.staging]\nsigner = \"" +
         staging_signer +
         "\"\n"
         "[[listener]]\nkind = \"syslog-tcp\"\naddress = \"127.0.0.1:0\"\nstream = \"prod\"\n"
         "[[listener]]\nkind = \"syslog-tcp\"\naddress = \"127.0.0.1:0\"\nstream = \"staging\"\n";
}

bool send_lines(uint16_t port, const std::string& tag, int n) {
  int fd = connect_tcp(port);
  if (fd < 0) return false;
  std::string data;
  for (int i = 0; i < n; ++i) data += "<14>Nov 26 10:00:00 host app: " + tag + " line " + std::to_string(i) + "\n";
  bool ok = send_all(fd, data);
  ::close(fd);
  return ok;
}

std::vector<Json> audit_of(const std::string& data_dir) {
  std::vector<Json> records, out;
  EXPECT_TRUE(export_jsonl(data_dir, "_audit", &records));
  for (const auto& r : records) out.push_back(r["fields"]["audit"]);
  return out;
}

class KeysE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    prod_ = make_soft_key(tmp_.sub("prod"));
    staging_ = make_soft_key(tmp_.sub("staging"));
    third_ = make_soft_key(tmp_.sub("third"));
    data_ = tmp_.sub("data");
  }
  Daemon daemon(const std::string& staging_key, const std::string& name) {
    std::string conf = tmp_.sub(name + ".toml");
    EXPECT_TRUE(write_file(conf, config(data_, prod_.key_pem, "soft:" + staging_key)));
    DaemonConfig c;
    c.config_file = conf;
    c.listeners = {{Kind::kTcp, "prod"}, {Kind::kTcp, "staging"}};
    return Daemon(c, tmp_.sub(name + ".log"));
  }
  // The key id: SHA-256 of the public key's DER (DESIGN.md, keygen).
  static std::string key_id(const SoftKey& k) {
    RunResult der = run({"/bin/sh", "-c", "openssl pkey -pubin -in '" + k.pub_pem + "' -outform DER | sha256sum"});
    return der.out.substr(0, 64);
  }

  TempDir tmp_{"keys-e2e"};
  SoftKey prod_, staging_, third_;
  std::string data_;
};

TEST_F(KeysE2E, TwoStreamsTwoKeysVerifyAndNoStreamSwitchesKeySilently) {
  const std::string prod_id = key_id(prod_), staging_id = key_id(staging_), third_id = key_id(third_);
  ASSERT_EQ(prod_id.size(), 64u);
  {
    Daemon d = daemon(staging_.key_pem, "first");
    ASSERT_TRUE(d.start());
    ASSERT_TRUE(send_lines(d.port("prod"), "prod", 50));
    ASSERT_TRUE(send_lines(d.port("staging"), "staging", 30));
    ASSERT_TRUE(d.wait_records("prod", 50));
    ASSERT_TRUE(d.wait_records("staging", 30));
    std::string m = d.metrics();
    EXPECT_EQ(metric(m, "logseal_signer_up", {"streams=\"*\"", "key_id=\"" + prod_id + "\""}), std::optional<double>(1))
        << m;
    EXPECT_EQ(metric(m, "logseal_signer_up", {"streams=\"staging\"", "key_id=\"" + staging_id + "\""}),
              std::optional<double>(1))
        << m;
    // Without access control the read API is refused; the open endpoints answer.
    for (std::string target : {"/v1/streams", "/v1/records?stream=prod", "/v1/proof?stream=prod&index=0"}) {
      HttpResponse r = http_get(d.http_port(), target);
      EXPECT_EQ(r.status, 403) << target << ": " << r.body;
      EXPECT_NE(r.body.find("access control is not configured"), std::string::npos) << r.body;
    }
    EXPECT_EQ(http_get(d.http_port(), "/healthz").status, 200);
    // Open as before: the latest checkpoint (once the staging key has signed one).
    EXPECT_TRUE(
        wait_until([&] { return http_get(d.http_port(), "/v1/checkpoint?stream=staging").status == 200; }, 10s));
    EXPECT_EQ(d.stop(), std::optional<int>(0)) << d.log();
  }
  RunResult both = run({logseal_path(), "verify", data_, "--pubkey", prod_.pub_pem, "--pubkey", staging_.pub_pem});
  EXPECT_EQ(both.exit_code, 0) << describe(both);
  RunResult prod_only = run({logseal_path(), "verify", data_, "--pubkey", prod_.pub_pem});
  EXPECT_EQ(prod_only.exit_code, 1) << describe(prod_only);
  EXPECT_NE(prod_only.out.find("unknown-key"), std::string::npos) << prod_only.out;
  for (const std::string& line : split_lines(prod_only.out)) {
    if (line.find("unknown-key") == std::string::npos) continue;
    EXPECT_NE(line.find("staging"), std::string::npos) << line;
  }
  RunResult cp = run({logseal_path(), "checkpoint", data_, "--stream", "staging"});
  EXPECT_NE(cp.out.find(staging_id), std::string::npos) << cp.out;

  // The key-in-use records of this start, and the refusals.
  auto audit = audit_of(data_);
  int in_use = 0;
  for (const auto& a : audit) {
    if (a.get_string("action") != "key-in-use") continue;
    in_use++;
    if (a["default"].boolean()) {
      EXPECT_EQ(a.get_string("key_id"), prod_id);
      EXPECT_EQ(a["streams"].array().size(), 0u);
    } else {
      EXPECT_EQ(a.get_string("key_id"), staging_id);
      ASSERT_EQ(a["streams"].array().size(), 1u);
      EXPECT_EQ(a["streams"].array()[0].str(), "staging");
    }
    EXPECT_EQ(a.get_string("signer"), "soft");
  }
  EXPECT_EQ(in_use, 2);
  int refused = 0;
  for (const auto& a : audit) refused += a.get_string("action") == "api-refused" ? 1 : 0;
  EXPECT_EQ(refused, 3);

  // Offline commands keep each stream's key: `logseal ingest` with the wrong key
  // is refused, and `logseal hold` on staging needs the key of `_audit` too.
  RunResult wrong = run({logseal_path(), "ingest", data_, "--stream", "staging", "--signer", "soft:" + prod_.key_pem,
                         "--format", "lines"},
                        Millis(30000), "x\n");
  EXPECT_EQ(wrong.exit_code, 2) << describe(wrong);
  EXPECT_NE(wrong.err.find("logseal key rotate"), std::string::npos) << describe(wrong);
  RunResult hold_no = run({logseal_path(), "hold", data_, "--stream", "staging", "--signer", "soft:" + staging_.key_pem,
                           "--on", "--note", "case 9"});
  EXPECT_EQ(hold_no.exit_code, 2) << describe(hold_no);
  EXPECT_NE(hold_no.err.find("--audit-signer"), std::string::npos) << describe(hold_no);
  RunResult hold = run({logseal_path(), "hold", data_, "--stream", "staging", "--signer", "soft:" + staging_.key_pem,
                        "--on", "--note", "case 9", "--audit-signer", "soft:" + prod_.key_pem});
  EXPECT_EQ(hold.exit_code, 0) << describe(hold);
  RunResult held = run({logseal_path(), "verify", data_, "--pubkey", prod_.pub_pem, "--pubkey", staging_.pub_pem});
  EXPECT_EQ(held.exit_code, 0) << describe(held);

  // Staging configured with another key: refused, pointing to key rotate.
  {
    std::string conf = tmp_.sub("switched.toml");
    ASSERT_TRUE(write_file(conf, config(data_, prod_.key_pem, "soft:" + third_.key_pem)));
    RunResult r = run({logseald_path(), "--config", conf}, Millis(20000));
    EXPECT_EQ(r.exit_code, 2) << describe(r);
    EXPECT_NE(r.err.find("stream staging is signed by key " + staging_id), std::string::npos) << describe(r);
    EXPECT_NE(r.err.find("logseal key rotate"), std::string::npos) << describe(r);
  }
  // The daemon's key for everything (staging included): refused as well.
  {
    RunResult r = run({logseald_path(), "--data-dir", data_, "--signer", "soft:" + prod_.key_pem, "--syslog-tcp",
                       "127.0.0.1:0,stream=prod"},
                      Millis(20000));
    EXPECT_EQ(r.exit_code, 2) << describe(r);
    EXPECT_NE(r.err.find("stream staging is signed by key"), std::string::npos) << describe(r);
  }

  // Hand staging over to the third key; `_audit` (the daemon's key) records it.
  RunResult rot =
      run({logseal_path(), "key", "rotate", data_, "--signer", "soft:" + staging_.key_pem, "--new-pubkey",
           third_.pub_pem, "--new-kind", "soft", "--stream", "staging", "--audit-signer", "soft:" + prod_.key_pem});
  ASSERT_EQ(rot.exit_code, 0) << describe(rot);
  EXPECT_EQ(rot.out, third_id + "\n");
  {
    Daemon d = daemon(third_.key_pem, "rotated");
    ASSERT_TRUE(d.start()) << d.log();
    ASSERT_TRUE(send_lines(d.port("staging"), "after", 10));
    ASSERT_TRUE(d.wait_records("staging", 10));
    EXPECT_EQ(d.stop(), std::optional<int>(0)) << d.log();
  }
  // The first staging key alone still reaches the third through the hand-over.
  RunResult after = run({logseal_path(), "verify", data_, "--pubkey", prod_.pub_pem, "--pubkey", staging_.pub_pem});
  EXPECT_EQ(after.exit_code, 0) << describe(after);
  RunResult cp2 = run({logseal_path(), "checkpoint", data_, "--stream", "staging"});
  EXPECT_NE(cp2.out.find(third_id), std::string::npos) << cp2.out;
  bool rotated = false;
  in_use = 0;
  for (const auto& a : audit_of(data_)) {
    if (a.get_string("action") == "key-rotate") {
      rotated = true;
      EXPECT_EQ(a.get_string("old_key_id"), staging_id);
      EXPECT_EQ(a.get_string("new_key_id"), third_id);
      ASSERT_EQ(a["streams"].array().size(), 1u);
      EXPECT_EQ(a["streams"].array()[0].str(), "staging");
    }
    if (a.get_string("action") == "key-in-use" && a.get_string("key_id") == third_id) in_use++;
  }
  EXPECT_TRUE(rotated);
  EXPECT_EQ(in_use, 1);
}

// One stream on a TPM key (swtpm), the others on the daemon's soft key: every
// seal of staging says tpm, the rest soft; both keys verify the directory, and
// /metrics has one signer line per key.
TEST_F(KeysE2E, OneStreamOnATpmKey) {
  if (!Swtpm::available()) GTEST_SKIP() << "swtpm or tpm2-tools not installed (scripts/install-deps installs them)";
  Swtpm tpm(tmp_.sub("swtpm"));
  ASSERT_TRUE(tpm.start());
  std::string key = tmp_.sub("tpm-key");
  RunResult kg = run({logseal_path(), "keygen", "--signer", "tpm", "--tcti", tpm.tcti(), "--out", key});
  ASSERT_EQ(kg.exit_code, 0) << describe(kg);
  std::string tpm_id = kg.out.substr(0, 64);
  std::string conf = tmp_.sub("tpm.toml");
  ASSERT_TRUE(write_file(
      conf, "tcti = \"" + tpm.tcti() + "\"\n" + config(data_, prod_.key_pem, "tpm:" + key + "/signing-key.pem")));
  {
    DaemonConfig c;
    c.config_file = conf;
    c.listeners = {{Kind::kTcp, "prod"}, {Kind::kTcp, "staging"}};
    Daemon d(c, tmp_.sub("tpm.log"));
    ASSERT_TRUE(d.start());
    ASSERT_TRUE(send_lines(d.port("prod"), "prod", 20));
    ASSERT_TRUE(send_lines(d.port("staging"), "staging", 20));
    ASSERT_TRUE(d.wait_records("staging", 20));
    std::string m = d.metrics();
    EXPECT_EQ(metric(m, "logseal_signer_up", {"kind=\"tpm\"", "streams=\"staging\"", "key_id=\"" + tpm_id + "\""}),
              std::optional<double>(1))
        << m;
    EXPECT_EQ(metric(m, "logseal_signer_up", {"kind=\"soft\"", "streams=\"*\""}), std::optional<double>(1)) << m;
    EXPECT_EQ(d.stop(), std::optional<int>(0)) << d.log();
  }
  RunResult v = run(
      {logseal_path(), "verify", data_, "--pubkey", prod_.pub_pem, "--pubkey", key + "/signing-key.pub.pem", "--json"});
  EXPECT_EQ(v.exit_code, 0) << describe(v);
  RunResult cp = run({logseal_path(), "checkpoint", data_, "--stream", "staging"});
  EXPECT_NE(cp.out.find(tpm_id), std::string::npos) << cp.out;
  EXPECT_NE(cp.out.find("tpm"), std::string::npos) << cp.out;
  bool tpm_in_use = false;
  for (const auto& a : audit_of(data_)) {
    if (a.get_string("action") == "key-in-use" && a.get_string("key_id") == tpm_id) {
      tpm_in_use = true;
      EXPECT_EQ(a.get_string("signer"), "tpm");
    }
  }
  EXPECT_TRUE(tpm_in_use);
}

}  // namespace
}  // namespace logseal::e2e
