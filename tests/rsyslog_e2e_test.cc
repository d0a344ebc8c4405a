// End-to-end tests of logseald behind a real rsyslogd (Debian's, installed by
// scripts/install-deps). The test writes messages into rsyslog's imtcp input on
// 127.0.0.1; rsyslog forwards them to logseald with the action under test.
//
// Extending (RELP, TLS): add a TEST_F on RsyslogForward that
//   1. starts logseald with the listener the action needs (start_daemon),
//   2. calls start_rsyslog() with the action text, plus any module(load=...)
//      lines in the "MODULES" variable and any other {{VAR}} it uses,
//   3. send_messages(), then forward_and_check().
// The whole config is kConfigTemplate; {{WORKDIR}}, {{INPUT_PORT}} and
// {{TARGET_PORT}} are always set.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e_util.h"

namespace logseal::e2e {
namespace {

using namespace std::chrono_literals;
using Kind = ListenerConfig::Kind;

// rsyslogd: no /dev/log (imuxsock is not loaded), its own work directory, one
// imtcp input on 127.0.0.1 bound to the "forward" ruleset that holds only the
// action under test. rsyslogd's own notices go to a file in the work directory,
// so they never reach logseald and the counts stay exact.
constexpr const char* kConfigTemplate = R"(
global(workDirectory="{{WORKDIR}}" maxMessageSize="64k" processInternalMessages="on")
module(load="imtcp")
{{MODULES}}
input(type="imtcp" address="127.0.0.1" port="{{INPUT_PORT}}" ruleset="forward")
ruleset(name="forward") {
  {{ACTION}}
}
*.* action(type="omfile" file="{{WORKDIR}}/rsyslogd-internal.log")
)";

class RsyslogForward : public ::testing::Test {
 protected:
  void SetUp() override {
    if (RsyslogProcess::binary().empty()) GTEST_SKIP() << "rsyslogd is not installed (run scripts/install-deps)";
    ASSERT_TRUE(file_exists(logseald_path())) << logseald_path();
    ASSERT_TRUE(file_exists(logseal_path())) << logseal_path();
    tmp_ = std::make_unique<TempDir>("rsyslog-e2e");
    ASSERT_FALSE(tmp_->path().empty());
    key_ = make_soft_key(tmp_->sub("key"));
    ASSERT_FALSE(HasFailure());
    data_dir_ = tmp_->sub("data");
  }

  void TearDown() override {
    // rsyslogd first (it holds connections to logseald), then logseald.
    if (rsyslog_) rsyslog_->stop();
    if (daemon_) daemon_->stop();
    if (HasFailure() && rsyslog_) {
      std::printf("---- rsyslogd output\n%s\n---- rsyslogd internal log\n%s\n", rsyslog_->log().c_str(),
                  read_file(rsyslog_->dir() + "/work/rsyslogd-internal.log").c_str());
    }
    if (HasFailure() && daemon_) std::printf("---- logseald log\n%s\n", daemon_->log().c_str());
  }

  void start_daemon(ListenerConfig listener) {
    stream_ = listener.stream;
    DaemonConfig c;
    c.data_dir = data_dir_;
    c.key_pem = key_.key_pem;
    c.listeners = {listener};
    daemon_ = std::make_unique<Daemon>(c, tmp_->sub("logseald.log"));
    ASSERT_TRUE(daemon_->start());
  }

  // Starts rsyslogd forwarding to the daemon's listener with `action`.
  void start_rsyslog(const std::string& action, std::map<std::string, std::string> vars = {}) {
    ASSERT_TRUE(daemon_) << "start_daemon first";
    input_port_ = free_port(true);
    ASSERT_NE(input_port_, 0);
    vars["INPUT_PORT"] = std::to_string(input_port_);
    vars["TARGET_PORT"] = std::to_string(daemon_->port(stream_));
    vars["ACTION"] = RsyslogProcess::render(action, vars);
    if (vars.count("MODULES") == 0) vars["MODULES"] = "";
    rsyslog_ = std::make_unique<RsyslogProcess>(tmp_->sub("rsyslog"));
    ASSERT_TRUE(rsyslog_->start(kConfigTemplate, vars, {input_port_}));
  }

  // Writes n RFC 5424 messages into rsyslog's imtcp input over one connection
  // (LF framing); returns their MSG texts.
  std::vector<std::string> send_messages(const std::string& tag, int n) {
    std::vector<std::string> texts;
    std::string wire;
    for (int i = 0; i < n; ++i) {
      char b[200];
      std::snprintf(b, sizeof b, "%s message %04d of %d via rsyslog: \"quoted\", [bracketed], Zo\xc3\xab \xe6\x9d\xb1\xe4\xba\xac",
                    tag.c_str(), i, n);
      texts.push_back(b);
      wire += "<14>1 2024-05-01T00:00:00.000000Z e2e-host e2e-rsyslog 4242 E2E - " + std::string(b) + "\n";
    }
    int fd = connect_tcp(input_port_);
    EXPECT_GE(fd, 0) << "cannot connect to rsyslog's imtcp on 127.0.0.1:" << input_port_;
    if (fd < 0) return {};
    EXPECT_TRUE(send_all(fd, wire));
    ::close(fd);
    return texts;
  }

  // Waits for every message at the daemon (polling /metrics), stops rsyslogd and
  // the daemon, verifies, and checks each record against the sent texts.
  void forward_and_check(const std::vector<std::string>& texts) {
    ASSERT_FALSE(texts.empty());
    bool all = daemon_->wait_records(stream_, texts.size(), 20s);
    ASSERT_TRUE(all) << daemon_->records(stream_) << " of " << texts.size() << " messages arrived";
    std::this_thread::sleep_for(200ms);  // nothing more (duplicates) may arrive
    EXPECT_EQ(daemon_->records(stream_), texts.size());
    auto rc = rsyslog_->stop();
    EXPECT_EQ(rc, std::optional<int>(0)) << "rsyslogd did not exit cleanly";
    auto code = daemon_->stop(20s);
    EXPECT_EQ(code, std::optional<int>(0)) << daemon_->log();
    RunResult v = verify(data_dir_, key_.pub_pem);
    EXPECT_EQ(v.exit_code, 0) << describe(v);

    std::vector<std::string> raws;
    ASSERT_TRUE(export_raw(data_dir_, stream_, &raws));
    std::vector<Json> js;
    ASSERT_TRUE(export_jsonl(data_dir_, stream_, &js));
    ASSERT_EQ(raws.size(), texts.size());
    ASSERT_EQ(js.size(), texts.size());
    std::set<size_t> seen;
    for (size_t i = 0; i < raws.size(); ++i) {
      // Which message is it? Each text appears in exactly one record, exactly once.
      size_t which = texts.size();
      for (size_t k = 0; k < texts.size(); ++k) {
        if (raws[i].find(texts[k]) != std::string::npos) which = k;
      }
      ASSERT_LT(which, texts.size()) << "record " << i << " holds no sent message: " << raws[i];
      EXPECT_TRUE(seen.insert(which).second) << "message " << which << " arrived twice";
      EXPECT_EQ(json_record_raw(js[i]), raws[i]);
      EXPECT_FALSE(js[i].has("unparsed")) << raws[i];
      EXPECT_FALSE(js[i].has("truncated")) << raws[i];
      EXPECT_EQ(js[i].get_string("fields.syslog.app_name"), "e2e-rsyslog") << raws[i];
      std::string msg = js[i].get_string("fields.syslog.msg");
      EXPECT_NE(msg.find(texts[which]), std::string::npos) << "fields.syslog.msg: " << msg;
      EXPECT_EQ(js[i]["fields"]["syslog"]["facility"].number(), 1);
      EXPECT_EQ(js[i]["fields"]["syslog"]["severity"].number(), 6);
    }
    EXPECT_EQ(seen.size(), texts.size());
  }

  std::unique_ptr<TempDir> tmp_;
  SoftKey key_;
  std::string data_dir_, stream_;
  std::unique_ptr<Daemon> daemon_;
  std::unique_ptr<RsyslogProcess> rsyslog_;
  uint16_t input_port_ = 0;
};

constexpr int kMessages = 200;

TEST_F(RsyslogForward, OmfwdTcpOctetCounted) {
  start_daemon({Kind::kTcp, "rsyslog-octet"});
  start_rsyslog(R"(action(type="omfwd" target="127.0.0.1" port="{{TARGET_PORT}}" protocol="tcp"
         TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format"
         action.resumeRetryCount="-1"))");
  ASSERT_FALSE(HasFatalFailure());
  forward_and_check(send_messages("octet", kMessages));
  // RFC 5424 on the wire: the header survives the trip.
  std::vector<std::string> raws;
  ASSERT_TRUE(export_raw(data_dir_, stream_, &raws));
  for (const auto& r : raws) ASSERT_EQ(r.rfind("<14>1 2024-05-01T00:00:00", 0), 0u) << r;
}

TEST_F(RsyslogForward, OmfwdTcpLfFramed) {
  start_daemon({Kind::kTcp, "rsyslog-lf"});
  start_rsyslog(R"(action(type="omfwd" target="127.0.0.1" port="{{TARGET_PORT}}" protocol="tcp"
         template="RSYSLOG_TraditionalForwardFormat" action.resumeRetryCount="-1"))");
  ASSERT_FALSE(HasFatalFailure());
  forward_and_check(send_messages("lf", kMessages));
}

TEST_F(RsyslogForward, OmfwdUdp) {
  start_daemon({Kind::kUdp, "rsyslog-udp"});
  start_rsyslog(R"(action(type="omfwd" target="127.0.0.1" port="{{TARGET_PORT}}" protocol="udp"
         template="RSYSLOG_TraditionalForwardFormat"))");
  ASSERT_FALSE(HasFatalFailure());
  forward_and_check(send_messages("udp", kMessages));
}

}  // namespace
}  // namespace logseal::e2e
