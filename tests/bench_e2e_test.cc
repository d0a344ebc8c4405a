// End-to-end: the benchmark tools run and report what happened. No timing is
// asserted (performance is measured in bench/, never in a test); what is checked
// is that every message the generator counts really arrived, that refusals are
// reported, and that bench/compare runs every row and writes its JSON.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/e2e_util.h"

namespace logseal::e2e {
namespace {

std::string loadgen_path() { return bin_dir() + "/logseal-loadgen"; }

// The port of "KIND=127.0.0.1:PORT" in a ready line; 0 when absent.
uint16_t ready_port(const std::string& ready, const std::string& kind) {
  std::string needle = kind + "=127.0.0.1:";
  size_t at = ready.find(needle);
  return at == std::string::npos ? 0 : static_cast<uint16_t>(std::stoul(ready.substr(at + needle.size())));
}

ListenerConfig listener(ListenerConfig::Kind kind, const std::string& stream) {
  ListenerConfig l;
  l.kind = kind;
  l.stream = stream;
  return l;
}

Json parse_json_line(const std::string& out) {
  auto lines = split_lines(out);
  auto j = lines.empty() ? std::nullopt : Json::parse(lines.back());
  return j ? *j : Json();
}

TEST(BenchLoadgen, RelpCountsAcknowledgedMessagesAndLatency) {
  TempDir dir("bench");
  SoftKey key = make_soft_key(dir.sub("key"));
  DaemonConfig c;
  c.data_dir = dir.sub("data");
  c.key_pem = key.key_pem;
  c.listeners.push_back(listener(ListenerConfig::Kind::kRelp, "r"));
  Daemon d(c, dir.sub("logseald.log"));
  ASSERT_TRUE(d.start());
  RunResult r = run({loadgen_path(), "--target", "127.0.0.1:" + std::to_string(d.port("r")), "--proto", "relp",
                     "--messages", "3000", "--connections", "2", "--window", "16", "--json"},
                    Millis(60000));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  Json j = parse_json_line(r.out);
  EXPECT_EQ(j["messages"].number(), 3000);
  EXPECT_EQ(j["refused"].number(), 0);
  EXPECT_EQ(j["latency_us"]["count"].number(), 3000);
  EXPECT_GT(j["latency_us"]["p50"].number(), 0);
  EXPECT_LE(j["latency_us"]["p50"].number(), j["latency_us"]["p99"].number());
  EXPECT_LE(j["latency_us"]["p99"].number(), j["latency_us"]["max"].number());
  // Acknowledged means durable: the daemon says so before it is even stopped.
  EXPECT_EQ(d.stream_metric("logseal_stream_durable_records", "r"), 3000);
  EXPECT_EQ(d.stop(), 0);
}

TEST(BenchLoadgen, TlsDeliversEveryFrameAndRefusesAnUnknownCa) {
  TempDir dir("bench");
  SoftKey key = make_soft_key(dir.sub("key"));
  TlsFiles tls = make_tls_files(dir.sub("tls"));
  DaemonConfig c;
  c.data_dir = dir.sub("data");
  c.key_pem = key.key_pem;
  c.listeners.push_back(listener(ListenerConfig::Kind::kSyslogTls, "t"));
  c.tls_cert = tls.server_pem;
  c.tls_key = tls.server_key;
  Daemon d(c, dir.sub("logseald.log"));
  ASSERT_TRUE(d.start());
  std::string target = "127.0.0.1:" + std::to_string(d.port("t"));
  RunResult r = run({loadgen_path(), "--target", target, "--proto", "tls", "--ca", tls.ca_pem, "--messages", "2000",
                     "--connections", "2", "--size", "500", "--json"},
                    Millis(60000));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(parse_json_line(r.out)["messages"].number(), 2000);
  auto durable = [&] { return d.stream_metric("logseal_stream_durable_records", "t").value_or(-1); };
  EXPECT_TRUE(wait_until([&] { return durable() == 2000; }, Millis(20000))) << durable();
  // A CA the server's certificate does not chain to: exit 2 with the reason.
  TempDir other("bench-ca");
  TlsFiles wrong = make_tls_files(other.path());
  RunResult bad = run({loadgen_path(), "--target", target, "--proto", "tls", "--ca", wrong.ca_pem, "--messages", "10"},
                      Millis(30000));
  EXPECT_EQ(bad.exit_code, 2) << describe(bad);
  EXPECT_NE(bad.err.find("TLS handshake"), std::string::npos) << bad.err;
  EXPECT_EQ(d.stop(), 0);
  EXPECT_EQ(verify(dir.sub("data"), key.pub_pem).exit_code, 0);
}

TEST(BenchLoadgen, HttpCountsEventsOfAcknowledgedRequests) {
  TempDir dir("bench");
  SoftKey key = make_soft_key(dir.sub("key"));
  DaemonConfig c;
  c.data_dir = dir.sub("data");
  c.key_pem = key.key_pem;
  c.extra_args = {"--http-events", "127.0.0.1:0"};
  Daemon d(c, dir.sub("logseald.log"));
  ASSERT_TRUE(d.start());
  uint16_t port = ready_port(d.ready_line(), "http-events");
  ASSERT_NE(port, 0) << d.ready_line();
  RunResult r = run({loadgen_path(), "--target", "127.0.0.1:" + std::to_string(port), "--proto", "http", "--batch",
                     "50", "--messages", "1000", "--connections", "2", "--json"},
                    Millis(60000));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  Json j = parse_json_line(r.out);
  EXPECT_EQ(j["messages"].number(), 1000);
  EXPECT_EQ(j["requests"].number(), 20);
  EXPECT_EQ(j["latency_us"]["count"].number(), 20);
  EXPECT_EQ(d.stream_metric("logseal_stream_durable_records", "events"), 1000);
  EXPECT_EQ(d.stop(), 0);
}

// bench/compare --quick: every row present in the JSON, each "ok" (or "skipped"
// when a peer cannot be installed here, which makes the test a skip).
TEST(BenchCompare, QuickRunWritesEveryRow) {
  TempDir dir("compare");
  std::string json_path = dir.sub("compare.json");
  RunResult r = run({std::string(LOGSEAL_SOURCE_DIR) + "/bench/compare", "--quick", "--json", json_path, "--bin",
                     bin_dir(), "--work-dir", dir.path(), "--peers-dir", test_tmp_root() + "/peers", "--timeout", "60"},
                    Millis(110000));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  auto j = Json::parse(read_file(json_path));
  ASSERT_TRUE(j.has_value()) << "not JSON: " << read_file(json_path);
  const Json& rows = (*j)["rows"];
  std::vector<std::string> skipped;
  for (const char* key :
       {"ff.logseald-soft", "ff.logseald-tpm", "ff.rsyslog", "ff.syslog-ng", "dur.logseald-relp", "dur.rsyslog-relp",
        "dur.rsyslog-relp-sync", "dur.syslog-ng-fsync", "lat.logseald-relp", "disk.fio", "disk.fio-nosync",
        "disk.logseald-large", "verify.jobs1", "verify.jobs2", "verify.sha256sum", "verify.openssl-sha256"}) {
    SCOPED_TRACE(key);
    ASSERT_TRUE(rows.has(key)) << "row missing";
    const Json& row = rows[key];
    std::string status = row["status"].str();
    if (status == "skipped") {
      skipped.push_back(std::string(key) + ": " + row["reason"].str());
      continue;
    }
    ASSERT_EQ(status, "ok") << row["reason"].str();
    EXPECT_GT(row["mb_per_s"].number(), 0);
    if (row.has("msgs_per_s")) {
      EXPECT_GT(row["msgs_per_s"].number(), 0);
    }
  }
  // Rows that measure logseald carry its memory use.
  EXPECT_GT(rows["ff.logseald-soft"]["rss_hwm_mib"].number(), 0);
  EXPECT_GE(rows["lat.logseald-relp"]["latency_us"]["count"].number(), 1);
  EXPECT_EQ((*j)["targets"].array().size(), 8u);
  EXPECT_FALSE((*j)["machine"].get_string("cpu").empty());
  // The printed table names every section.
  for (const char* s : {"fire-and-forget", "durable", "latency", "disk", "verify", "targets"}) {
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
  }
  if (!skipped.empty()) {
    std::string why;
    for (const auto& s : skipped) why += s + "; ";
    GTEST_SKIP() << "peers not available: " << why;
  }
}

}  // namespace
}  // namespace logseal::e2e
