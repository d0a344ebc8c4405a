// End-to-end tests of logseald behind a real rsyslogd (Debian's, installed by
// scripts/install-deps). The test writes messages into rsyslog's imtcp input on
// 127.0.0.1; rsyslog forwards them to logseald with the action under test.
//
// Extending: add a TEST_F on RsyslogForward that
//   1. starts logseald with the listener the action needs (start_daemon; for the
//      TLS kinds make_tls() first),
//   2. calls start_rsyslog() with the action text, plus any module(load=...) or
//      global(...) lines in the "MODULES" variable and any other {{VAR}} they use,
//   3. send_messages(), then forward_and_check() (or wait_all(), anything else,
//      then finish_and_check()).
// The whole config is kConfigTemplate; {{WORKDIR}}, {{INPUT_PORT}} and
// {{TARGET_PORT}} are always set. README.md ("Sending logs to logseald") shows the
// RELP and TLS actions used here.
//
// RELP (omrelp: rsyslog-relp) and TLS (omfwd with the gtls / ossl netstream
// drivers: rsyslog-gnutls / rsyslog-openssl; omrelp tls="on") need those
// packages; a test whose module is missing is skipped. Certificates are made with
// the openssl CLI in the test's temporary directory (make_tls_files).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
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

// Whether rsyslog's loadable module NAME (e.g. "omrelp", "lmnsd_gtls") is installed.
bool rsyslog_module_installed(const std::string& name) {
  for (const char* dir : {"/usr/lib/x86_64-linux-gnu/rsyslog", "/usr/lib/aarch64-linux-gnu/rsyslog",
                          "/usr/lib64/rsyslog", "/usr/lib/rsyslog"}) {
    if (file_exists(std::string(dir) + "/" + name + ".so")) return true;
  }
  return false;
}

// What check_stored expects of every record besides its message.
struct Expect {
  bool allow_duplicates = false;  // RELP after a reconnect is at-least-once
  std::string source_prefix;      // e.g. "relp:127.0.0.1:"
  std::string source_contains;    // e.g. " subject=CN=logseal-e2e-client"
};

struct Stored {
  size_t records = 0, distinct = 0, duplicates = 0;
};

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
    if (HasFailure() && first_daemon_) std::printf("---- first logseald log\n%s\n", first_daemon_->log().c_str());
    if (HasFailure() && daemon_) std::printf("---- logseald log\n%s\n", daemon_->log().c_str());
  }

  // Makes the CA, server and client certificates (tls_).
  void make_tls() {
    tls_ = make_tls_files(tmp_->sub("tls"));
    ASSERT_FALSE(HasFailure());
  }
  // {{CA}}, {{CERT}}, {{KEY}}: the CA and the client's certificate and key, for rsyslogd.
  std::map<std::string, std::string> tls_vars() const {
    return {{"CA", tls_.ca_pem}, {"CERT", tls_.client_pem}, {"KEY", tls_.client_key}};
  }
  // What the source of a record from the client certificate's connection contains.
  std::string client_identity() const { return " subject=CN=" + tls_.client_cn + " san=DNS:" + tls_.client_dns; }

  DaemonConfig daemon_config(const ListenerConfig& listener, bool require_client_cert) {
    DaemonConfig c;
    c.data_dir = data_dir_;
    c.key_pem = key_.key_pem;
    c.listeners = {listener};
    if (listener.kind == Kind::kSyslogTls || listener.kind == Kind::kRelpTls) {
      c.tls_cert = tls_.server_pem;
      c.tls_key = tls_.server_key;
      c.tls_ca = tls_.ca_pem;
      c.tls_require_client_cert = require_client_cert;
    }
    return c;
  }

  // TLS kinds: make_tls() first; the daemon gets --tls-ca (client certificates
  // are requested and verified) and, when asked, --tls-require-client-cert.
  void start_daemon(ListenerConfig listener, bool require_client_cert = false) {
    stream_ = listener.stream;
    daemon_config_ = daemon_config(listener, require_client_cert);
    daemon_ = std::make_unique<Daemon>(daemon_config_, tmp_->sub("logseald.log"));
    ASSERT_TRUE(daemon_->start());
  }

  // Stops the daemon, which becomes first_daemon_: SIGTERM (it must exit 0) or
  // SIGKILL (a crash).
  void stop_first_daemon(int sig = SIGTERM) {
    if (sig != SIGTERM) daemon_->signal(sig);
    auto code = daemon_->stop(20s);
    EXPECT_EQ(code, std::optional<int>(sig == SIGTERM ? 0 : 128 + sig)) << "first logseald's exit";
    first_daemon_ = std::move(daemon_);
  }
  // Starts another daemon on the same data directory and listener (same port).
  void start_second_daemon() {
    daemon_ = std::make_unique<Daemon>(daemon_config_, tmp_->sub("logseald-2.log"));
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
    vars["MODULES"] = RsyslogProcess::render(vars["MODULES"], vars);  // may use {{CA}} etc. too
    rsyslog_ = std::make_unique<RsyslogProcess>(tmp_->sub("rsyslog"));
    ASSERT_TRUE(rsyslog_->start(kConfigTemplate, vars, {input_port_}));
  }

  // Writes n RFC 5424 messages into rsyslog's imtcp input over one connection
  // (LF framing); returns their MSG texts.
  std::vector<std::string> send_messages(const std::string& tag, int n) {
    std::vector<std::string> texts;
    std::string wire = build_messages(tag, n, &texts);
    int fd = connect_tcp(input_port_);
    EXPECT_GE(fd, 0) << "cannot connect to rsyslog's imtcp on 127.0.0.1:" << input_port_;
    if (fd < 0) return {};
    EXPECT_TRUE(send_all(fd, wire));
    ::close(fd);
    return texts;
  }

  // Waits until the daemon has appended n records (polling /metrics).
  void wait_all(size_t n) {
    bool all = daemon_->wait_records(stream_, n, 20s);
    ASSERT_TRUE(all) << daemon_->records(stream_) << " of " << n << " messages arrived";
  }

  // Stops rsyslogd and the daemon (both must exit 0), verifies (exit 0), and checks
  // the stored records against the sent texts (check_stored).
  Stored finish_and_check(const std::vector<std::string>& texts, const Expect& expect = {}) {
    auto rc = rsyslog_->stop();
    EXPECT_EQ(rc, std::optional<int>(0)) << "rsyslogd did not exit cleanly";
    auto code = daemon_->stop(20s);
    EXPECT_EQ(code, std::optional<int>(0)) << daemon_->log();
    RunResult v = verify(data_dir_, key_.pub_pem);
    EXPECT_EQ(v.exit_code, 0) << describe(v);
    return check_stored(texts, expect);
  }

  // Waits for every message at the daemon, checks nothing more (duplicates)
  // arrives, then finish_and_check.
  Stored forward_and_check(const std::vector<std::string>& texts, const Expect& expect = {}) {
    EXPECT_FALSE(texts.empty());
    wait_all(texts.size());
    if (HasFatalFailure()) return {};
    std::this_thread::sleep_for(200ms);  // nothing more (duplicates) may arrive
    if (!expect.allow_duplicates) {
      EXPECT_EQ(daemon_->records(stream_), texts.size());
    }
    return finish_and_check(texts, expect);
  }

  // Exports the stream and matches each record to the sent message it holds
  // (by its "TAG message NNNN of N" part, then the whole text): every record holds
  // one sent message, every sent message is stored, at most once unless
  // allow_duplicates (duplicates are counted and printed either way). Checks the
  // parsed fields and the source of every record.
  Stored check_stored(const std::vector<std::string>& texts, const Expect& expect) {
    Stored out;
    std::vector<std::string> raws;
    std::vector<Json> js;
    EXPECT_TRUE(export_raw(data_dir_, stream_, &raws));
    EXPECT_TRUE(export_jsonl(data_dir_, stream_, &js));
    EXPECT_EQ(raws.size(), js.size());
    if (texts.empty() || raws.size() != js.size()) return out;
    out.records = raws.size();
    const std::string head = texts[0].substr(0, texts[0].find(" message ") + 9);  // "TAG message "
    auto key_of = [](const std::string& text, size_t from) {
      size_t end = text.find(" via rsyslog", from);
      return end == std::string::npos ? std::string() : text.substr(from, end - from);
    };
    std::unordered_map<std::string, size_t> index;
    for (size_t k = 0; k < texts.size(); ++k) index[key_of(texts[k], 0)] = k;
    std::vector<size_t> count(texts.size(), 0);
    std::set<std::string> sources;
    int shown = 0;
    for (size_t i = 0; i < raws.size(); ++i) {
      size_t at = raws[i].find(head);
      auto it = at == std::string::npos ? index.end() : index.find(key_of(raws[i], at));
      if (it == index.end() || raws[i].find(texts[it->second]) == std::string::npos) {
        ADD_FAILURE() << "record " << i << " holds no sent message: " << raws[i];
        continue;
      }
      size_t which = it->second;
      if (++count[which] > 1 && shown++ < 10) {
        std::printf("duplicate: message %zu stored again as record %zu\n", which, i);
      }
      EXPECT_EQ(json_record_raw(js[i]), raws[i]);
      EXPECT_FALSE(js[i].has("unparsed")) << raws[i];
      EXPECT_FALSE(js[i].has("truncated")) << raws[i];
      EXPECT_EQ(js[i].get_string("fields.syslog.app_name"), "e2e-rsyslog") << raws[i];
      std::string msg = js[i].get_string("fields.syslog.msg");
      EXPECT_NE(msg.find(texts[which]), std::string::npos) << "fields.syslog.msg: " << msg;
      EXPECT_EQ(js[i]["fields"]["syslog"]["facility"].number(), 1);
      EXPECT_EQ(js[i]["fields"]["syslog"]["severity"].number(), 6);
      std::string source = js[i].get_string("source");
      sources.insert(source);
      EXPECT_EQ(source.rfind(expect.source_prefix, 0), 0u) << "source of record " << i << ": " << source;
      EXPECT_NE(source.find(expect.source_contains), std::string::npos)
          << "source of record " << i << ": " << source;
    }
    size_t missing = 0;
    for (size_t k = 0; k < texts.size(); ++k) {
      if (count[k] == 0) {
        if (missing++ < 10) ADD_FAILURE() << "message " << k << " was not stored: " << texts[k];
      } else {
        ++out.distinct;
        out.duplicates += count[k] - 1;
      }
    }
    EXPECT_EQ(missing, 0u) << missing << " of " << texts.size() << " messages were not stored";
    if (!expect.allow_duplicates) {
      EXPECT_EQ(out.duplicates, 0u) << "messages stored more than once";
    }
    std::printf("stream %s: %zu records, %zu distinct of %zu sent, %zu duplicates, %zu connection(s)",
                stream_.c_str(), out.records, out.distinct, texts.size(), out.duplicates, sources.size());
    if (!sources.empty()) std::printf(", e.g. source \"%s\"", sources.begin()->c_str());
    std::printf("\n");
    ::testing::Test::RecordProperty("records", static_cast<int>(out.records));
    ::testing::Test::RecordProperty("duplicates", static_cast<int>(out.duplicates));
    return out;
  }

  // Builds the RFC 5424 lines of n messages (LF framed) and their MSG texts.
  static std::string build_messages(const std::string& tag, int n, std::vector<std::string>* texts) {
    std::string wire;
    for (int i = 0; i < n; ++i) {
      char b[200];
      std::snprintf(b, sizeof b, "%s message %04d of %d via rsyslog: \"quoted\", [bracketed], Zo\xc3\xab \xe6\x9d\xb1\xe4\xba\xac",
                    tag.c_str(), i, n);
      texts->push_back(b);
      wire += "<14>1 2024-05-01T00:00:00.000000Z e2e-host e2e-rsyslog 4242 E2E - " + std::string(b) + "\n";
    }
    return wire;
  }

  std::unique_ptr<TempDir> tmp_;
  SoftKey key_;
  std::string data_dir_, stream_;
  std::unique_ptr<Daemon> daemon_, first_daemon_;
  DaemonConfig daemon_config_;
  TlsFiles tls_;
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

// ---- RELP (omrelp) ------------------------------------------------------------------

constexpr const char* kOmrelpModule = R"(module(load="omrelp"))";
constexpr const char* kOmrelp = R"(action(type="omrelp" target="127.0.0.1" port="{{TARGET_PORT}}"))";

// Every message once, each acknowledged only when durable; no reconnect, so no
// resend and no duplicate.
TEST_F(RsyslogForward, OmrelpExactlyOnce) {
  if (!rsyslog_module_installed("omrelp")) GTEST_SKIP() << "omrelp is not installed (rsyslog-relp)";
  start_daemon({Kind::kRelp, "rsyslog-relp"});
  start_rsyslog(kOmrelp, {{"MODULES", kOmrelpModule}});
  ASSERT_FALSE(HasFatalFailure());
  forward_and_check(send_messages("relp", 2000), {false, "relp:127.0.0.1:", ""});
}

// logseald is stopped and started again on the same data directory and port while
// rsyslogd sends a steady stream through omrelp with an action queue that retries.
// rsyslogd resends what was not acknowledged, so every message sent into rsyslogd
// must be stored at the end: none lost. Duplicates are allowed (RELP is
// at-least-once across a reconnect): counted and printed.
constexpr const char* kOmrelpQueued = R"(action(type="omrelp" target="127.0.0.1" port="{{TARGET_PORT}}"
         queue.type="LinkedList" queue.size="100000" queue.timeoutShutdown="10000"
         action.resumeRetryCount="-1" action.resumeInterval="1"))";
// The same over TLS (--relp-tls), with a client certificate.
constexpr const char* kOmrelpTlsQueued = R"(action(type="omrelp" target="127.0.0.1" port="{{TARGET_PORT}}"
         tls="on" tls.caCert="{{CA}}" tls.myCert="{{CERT}}" tls.myPrivKey="{{KEY}}"
         tls.authMode="name" tls.permittedPeer=["localhost"]
         queue.type="LinkedList" queue.size="100000" queue.timeoutShutdown="10000"
         action.resumeRetryCount="-1" action.resumeInterval="1"))";

class RsyslogRelpRestart : public RsyslogForward {
 protected:
  // sig: SIGTERM (the daemon drains, acks what it read, exits 0) or SIGKILL (a
  // crash: records stored but not yet acked are sent again, so duplicates are
  // expected; the next start recovers the open segment).
  // tls: over --relp-tls (omrelp tls="on", librelp's default TLS library).
  void restart_while_sending(int sig, bool tls = false) {
    if (!rsyslog_module_installed("omrelp")) GTEST_SKIP() << "omrelp is not installed (rsyslog-relp)";
    uint16_t port = free_port(true);
    ASSERT_NE(port, 0);
    std::string name = std::string("rsyslog-relp") + (tls ? "-tls" : "") + (sig == SIGKILL ? "-crash" : "-restart");
    std::map<std::string, std::string> vars;
    if (tls) {
      make_tls();
      ASSERT_FALSE(HasFatalFailure());
      vars = tls_vars();
    }
    vars["MODULES"] = kOmrelpModule;
    start_daemon({tls ? Kind::kRelpTls : Kind::kRelp, name, port}, tls);
    start_rsyslog(tls ? kOmrelpTlsQueued : kOmrelpQueued, vars);
    ASSERT_FALSE(HasFatalFailure());

    // 8000 messages over ~1 s: 500 every 50 ms, over one imtcp connection. The
    // bursts keep omrelp's window full, so the stop comes with commands in flight.
    constexpr int kTotal = 8000, kChunk = 500;
    std::vector<std::string> texts;
    std::string wire = build_messages(sig == SIGKILL ? "crash" : "restart", kTotal, &texts);
    std::vector<size_t> ends;  // end offset of each message in wire
    for (size_t pos = 0; (pos = wire.find('\n', pos)) != std::string::npos; ++pos) ends.push_back(pos + 1);
    ASSERT_EQ(ends.size(), static_cast<size_t>(kTotal));
    int fd = connect_tcp(input_port_);
    ASSERT_GE(fd, 0) << "cannot connect to rsyslog's imtcp on 127.0.0.1:" << input_port_;
    std::atomic<bool> sent_ok{true};
    std::thread sender([&] {
      size_t from = 0;
      for (int i = kChunk; i <= kTotal; i += kChunk) {
        size_t to = ends[static_cast<size_t>(i) - 1];
        if (!send_all(fd, std::string_view(wire).substr(from, to - from))) {
          sent_ok = false;
          return;
        }
        from = to;
        std::this_thread::sleep_for(50ms);
      }
    });

    // Mid-stream: stop the daemon, leave it down a moment, start it again.
    bool some = daemon_->wait_records(stream_, 600, 15s);
    uint64_t before_stop = daemon_->records(stream_);
    std::vector<std::string> first_run;
    bool exported = false;
    if (some) {
      stop_first_daemon(sig);
      exported = export_raw(data_dir_, stream_, &first_run);  // the first run's records, on disk
      std::this_thread::sleep_for(300ms);
      start_second_daemon();
    }
    sender.join();
    ::close(fd);
    ASSERT_TRUE(some) << "no messages arrived before the restart: " << before_stop;
    ASSERT_FALSE(HasFatalFailure());
    ASSERT_TRUE(exported);
    ASSERT_TRUE(sent_ok.load()) << "writing into rsyslogd failed";
    ASSERT_LT(first_run.size(), texts.size()) << "the restart came too late to matter";

    // rsyslogd resends; wait for at least as many records as were sent, then until
    // nothing more arrives for a second (its queue is empty by then).
    size_t first = first_run.size();
    bool all = wait_until([&] { return first + daemon_->records(stream_) >= texts.size(); }, 20s, 20ms);
    EXPECT_TRUE(all) << first << " + " << daemon_->records(stream_) << " of " << texts.size() << " arrived";
    uint64_t last = daemon_->records(stream_);
    auto quiet_since = std::chrono::steady_clock::now();
    wait_until(
        [&] {
          uint64_t now = daemon_->records(stream_);
          if (now != last) {
            last = now;
            quiet_since = std::chrono::steady_clock::now();
          }
          return std::chrono::steady_clock::now() - quiet_since > 1s;
        },
        10s, 50ms);
    Stored st = finish_and_check(texts, {true, tls ? "relp+tls:127.0.0.1:" : "relp:127.0.0.1:",
                                         tls ? client_identity() : ""});
    std::printf("%s%s: first run stored %zu (stopped at >= %llu), second run %zu; %zu duplicates\n",
                sig == SIGKILL ? "SIGKILL" : "SIGTERM", tls ? " (RELP over TLS)" : "", first,
                static_cast<unsigned long long>(before_stop), st.records - first, st.duplicates);
  }
};

// SIGTERM: nothing lost; every record the first daemon read was acked before it closed.
TEST_F(RsyslogRelpRestart, SigtermLosesNothing) { restart_while_sending(SIGTERM); }

// SIGKILL: nothing lost either, since "200 OK" only ever follows durability.
TEST_F(RsyslogRelpRestart, SigkillLosesNothing) { restart_while_sending(SIGKILL); }

// The same over TLS: the TLS session is closed after the last ack (close_notify).
TEST_F(RsyslogRelpRestart, TlsSigtermLosesNothing) { restart_while_sending(SIGTERM, true); }
TEST_F(RsyslogRelpRestart, TlsSigkillLosesNothing) { restart_while_sending(SIGKILL, true); }

// ---- TLS (omfwd with a TLS netstream driver) -----------------------------------------

// The client certificate goes to every TLS netstream driver through these globals.
constexpr const char* kTlsGlobals =
    R"(global(DefaultNetstreamDriverCAFile="{{CA}}" DefaultNetstreamDriverCertFile="{{CERT}}" DefaultNetstreamDriverKeyFile="{{KEY}}"))";
constexpr const char* kOmfwdTls = R"(action(type="omfwd" target="127.0.0.1" port="{{TARGET_PORT}}" protocol="tcp"
         StreamDriver="{{DRIVER}}" StreamDriverMode="1" StreamDriverAuthMode="x509/name"
         StreamDriverPermittedPeers="localhost" TCP_Framing="octet-counted"
         template="RSYSLOG_SyslogProtocol23Format" action.resumeRetryCount="-1"))";

class RsyslogTls : public RsyslogForward, public ::testing::WithParamInterface<std::tuple<std::string, bool>> {
 protected:

  // A TLS client without a certificate (openssl s_client, no -cert) against a
  // daemon that requires one: the handshake fails, nothing it sent is stored.
  void refuse_client_without_certificate(size_t records_before) {
    std::string openssl = find_program("openssl");
    ASSERT_FALSE(openssl.empty());
    std::string in = tmp_->sub("nocert-in.txt"), out = tmp_->sub("nocert-out.txt");
    ASSERT_TRUE(write_file(in, "<14>1 2024-05-01T00:00:00Z e2e-host e2e-nocert 1 - - no client certificate\n"));
    size_t refusals_before = daemon_->log_lines_with("peer did not present a certificate");
    SpawnOptions o;
    o.stdin_path = in;
    o.stdout_path = out;
    o.stderr_path = out;
    Child client = Child::spawn({openssl, "s_client", "-connect", "127.0.0.1:" + std::to_string(daemon_->port(stream_)),
                                 "-CAfile", tls_.ca_pem, "-servername", "localhost", "-verify_return_error",
                                 "-ign_eof"},
                                o);
    ASSERT_TRUE(client.started());
    bool refused = wait_until(
        [&] { return daemon_->log_lines_with("peer did not present a certificate") > refusals_before; }, 10s, 20ms);
    // It ends when the daemon closes the connection; stopped by PID otherwise.
    auto code = client.wait(5s);
    if (!code) code = client.stop(SIGTERM, 2s);
    EXPECT_TRUE(refused) << "no refusal in the daemon's log; s_client said:\n" << read_file(out);
    EXPECT_NE(code, std::optional<int>(0)) << "s_client without a certificate exited 0:\n" << read_file(out);
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(daemon_->records(stream_), records_before) << "a client without a certificate got a record in";
  }
};

TEST_P(RsyslogTls, Omfwd) {
  const auto& [driver, require] = GetParam();
  if (!rsyslog_module_installed("lmnsd_" + driver)) {
    GTEST_SKIP() << "rsyslog's " << driver << " netstream driver is not installed (rsyslog-"
                 << (driver == "gtls" ? "gnutls" : "openssl") << ")";
  }
  make_tls();
  ASSERT_FALSE(HasFatalFailure());
  start_daemon({Kind::kSyslogTls, "rsyslog-tls-" + driver + (require ? "-required" : "")}, require);
  auto vars = tls_vars();
  vars["DRIVER"] = driver;
  vars["MODULES"] = kTlsGlobals;
  start_rsyslog(kOmfwdTls, vars);
  ASSERT_FALSE(HasFatalFailure());
  std::vector<std::string> texts = send_messages("tls-" + driver, 500);
  wait_all(texts.size());
  ASSERT_FALSE(HasFatalFailure());
  if (require) {
    refuse_client_without_certificate(texts.size());
    ASSERT_FALSE(HasFatalFailure());
  }
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(daemon_->records(stream_), texts.size());
  finish_and_check(texts, {false, "tls:127.0.0.1:", client_identity()});
}

INSTANTIATE_TEST_SUITE_P(Drivers, RsyslogTls,
                         ::testing::Combine(::testing::Values("gtls", "ossl"), ::testing::Bool()),
                         [](const auto& info) {
                           return std::get<0>(info.param) + (std::get<1>(info.param) ? "_RequireClientCert"
                                                                                     : "_OptionalClientCert");
                         });

// ---- RELP over TLS (omrelp tls="on") ----------------------------------------------------

// librelp's TLS library is chosen per module load.
constexpr const char* kOmrelpTlsModule = R"(module(load="omrelp" tls.tlsLib="{{TLSLIB}}"))";
constexpr const char* kOmrelpTls = R"(action(type="omrelp" target="127.0.0.1" port="{{TARGET_PORT}}"
         tls="on" tls.caCert="{{CA}}" tls.myCert="{{CERT}}" tls.myPrivKey="{{KEY}}"
         tls.authMode="name" tls.permittedPeer=["localhost"]))";

class RsyslogRelpTls : public RsyslogTls {};

TEST_P(RsyslogRelpTls, Omrelp) {
  const auto& [tlslib, require] = GetParam();
  if (!rsyslog_module_installed("omrelp")) GTEST_SKIP() << "omrelp is not installed (rsyslog-relp)";
  make_tls();
  ASSERT_FALSE(HasFatalFailure());
  start_daemon({Kind::kRelpTls, "rsyslog-relp-tls-" + tlslib}, require);
  auto vars = tls_vars();
  vars["TLSLIB"] = tlslib;
  vars["MODULES"] = kOmrelpTlsModule;
  start_rsyslog(kOmrelpTls, vars);
  ASSERT_FALSE(HasFatalFailure());
  forward_and_check(send_messages("relp-tls-" + tlslib, 1000), {false, "relp+tls:127.0.0.1:", client_identity()});
}

// librelp's two TLS back ends; the daemon requires a client certificate.
INSTANTIATE_TEST_SUITE_P(TlsLibs, RsyslogRelpTls,
                         ::testing::Combine(::testing::Values("gnutls", "openssl"), ::testing::Values(true)),
                         [](const auto& info) { return std::get<0>(info.param); });

}  // namespace
}  // namespace logseal::e2e
