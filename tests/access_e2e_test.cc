// End-to-end tests of access control and routing (README "Roles and retention"):
// the real logseald with a TOML config of identities, roles and routes, real TLS
// with certificates made by the openssl CLI, real sockets for TLS syslog, RELP
// (plain and TLS), UDP and HTTP events. Every (credential, transport, stream) row
// of a table is checked against where its record landed (or that it landed
// nowhere), /metrics, the `_audit` stream, and `logseal verify`.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e_util.h"

namespace logseal::e2e {
namespace {

using namespace std::chrono_literals;

// A client certificate from the test CA: subject subj ("/CN=x/O=y"), SAN san.
struct ClientCert {
  std::string pem, key;
};
ClientCert issue_client_cert(const TlsFiles& t, const std::string& name, const std::string& subj,
                             const std::string& san) {
  ClientCert c{t.dir + "/" + name + ".pem", t.dir + "/" + name + ".key"};
  std::string openssl = find_program("openssl");
  std::string ext = t.dir + "/" + name + ".ext", csr = t.dir + "/" + name + ".csr";
  EXPECT_TRUE(write_file(ext, "subjectAltName=" + san +
                                  "\nextendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n"
                                  "keyUsage=critical,digitalSignature\n"));
  RunResult r = run({openssl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", c.key,
                     "-out", csr, "-subj", subj});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  static int serial = 2000;
  r = run({openssl, "x509", "-req", "-in", csr, "-CA", t.ca_pem, "-CAkey", t.ca_key, "-set_serial",
           std::to_string(++serial), "-out", c.pem, "-days", "2", "-extfile", ext});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  return c;
}

// A TCP connection from a chosen loopback address (127.0.0.2 is "elsewhere":
// outside every source range of the test config), optionally TLS with a client
// certificate. Blocking, with a receive timeout.
class Client {
 public:
  Client(uint16_t port, const std::string& from, const ClientCert* cert, bool tls) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    ::inet_pton(AF_INET, from.c_str(), &src.sin_addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) return;
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) return;
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (!tls) {
      ok_ = true;
      return;
    }
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    if (cert != nullptr && (SSL_CTX_use_certificate_chain_file(ctx_, cert->pem.c_str()) != 1 ||
                            SSL_CTX_use_PrivateKey_file(ctx_, cert->key.c_str(), SSL_FILETYPE_PEM) != 1)) {
      ADD_FAILURE() << "cannot load " << cert->pem;
      return;
    }
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    ok_ = SSL_connect(ssl_) == 1;
  }
  ~Client() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return ok_; }
  bool send(const std::string& data) {
    if (ssl_ != nullptr)
      return SSL_write(ssl_, data.data(), static_cast<int>(data.size())) == static_cast<int>(data.size());
    return send_all(fd_, data);
  }
  // Some bytes, "" at the peer's close or the timeout.
  std::string recv_some() {
    char buf[4096];
    int n = ssl_ != nullptr ? SSL_read(ssl_, buf, sizeof buf) : static_cast<int>(::recv(fd_, buf, sizeof buf, 0));
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  }
  // True when the server ends the connection within the receive timeout.
  bool closed_by_peer() {
    for (int i = 0; i < 10; ++i) {
      char buf[4096];
      int n = ssl_ != nullptr ? SSL_read(ssl_, buf, sizeof buf) : static_cast<int>(::recv(fd_, buf, sizeof buf, 0));
      if (n == 0) return true;
      if (n < 0) {
        if (ssl_ == nullptr && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
        if (ssl_ != nullptr) {
          int e = SSL_get_error(ssl_, n);
          if (e == SSL_ERROR_WANT_READ && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
        }
        return true;
      }
    }
    return false;
  }

 private:
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  bool ok_ = false;
};

// RELP as omrelp speaks it: open, one syslog command; the server's answer code
// for it (200 / 500), 0 when the connection ended without one.
int relp_send(Client& c, const std::string& msg, std::string* answer = nullptr) {
  const std::string offer = "relp_version=0\nrelp_software=logseal-test\ncommands=syslog";
  if (!c.send("1 open " + std::to_string(offer.size()) + " " + offer + "\n")) return 0;
  if (!c.send("2 syslog " + std::to_string(msg.size()) + " " + msg + "\n")) return 0;
  std::string in;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    // Frames: TXNR SP COMMAND SP DATALEN [SP DATA] LF
    size_t pos = 0;
    while (pos < in.size()) {
      size_t sp1 = in.find(' ', pos), sp2 = sp1 == std::string::npos ? sp1 : in.find(' ', sp1 + 1);
      if (sp2 == std::string::npos) break;
      size_t end_len = in.find_first_of(" \n", sp2 + 1);
      if (end_len == std::string::npos) break;
      size_t len = std::stoul(in.substr(sp2 + 1, end_len - sp2 - 1));
      size_t data_at = end_len + (len > 0 ? 1 : 0);
      if (in.size() < data_at + len + 1) break;
      std::string txnr = in.substr(pos, sp1 - pos);
      std::string data = in.substr(data_at, len);
      if (txnr == "2") {
        if (answer != nullptr) *answer = data;
        return std::stoi(data.substr(0, 3));
      }
      pos = data_at + len + 1;
    }
    std::string more = c.recv_some();
    if (more.empty()) return 0;
    in += more;
  }
  return 0;
}

bool send_udp_from(const std::string& from, uint16_t port, const std::string& msg) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in src{};
  src.sin_family = AF_INET;
  ::inet_pton(AF_INET, from.c_str(), &src.sin_addr);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) == 0;
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
  ok = ok && ::sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&dst), sizeof dst) ==
                 static_cast<ssize_t>(msg.size());
  ::close(fd);
  return ok;
}

// One HTTP POST from a chosen address; the status code (0: no answer).
int http_post_from(const std::string& from, uint16_t port, const std::string& path, const std::string& body,
                   const std::string& token, std::string* response = nullptr) {
  Client c(port, from, nullptr, false);
  if (!c.ok()) return 0;
  std::string req = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
                    (token.empty() ? "" : "Authorization: Bearer " + token + "\r\n") +
                    "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  if (!c.send(req)) return 0;
  std::string in;
  for (std::string more = c.recv_some(); !more.empty(); more = c.recv_some()) in += more;
  if (response != nullptr) *response = in;
  if (in.rfind("HTTP/1.1 ", 0) != 0 || in.size() < 12) return 0;
  return std::stoi(in.substr(9, 3));
}

std::string msg5424(const std::string& app, const std::string& text) {
  return "<134>1 2026-11-26T10:00:00.000Z host1 " + app + " 77 - - " + text;
}

class AccessE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    // SSL_write to a connection the daemon closed (a refused TLS sender) must be an
    // error, not the end of the test process.
    ::signal(SIGPIPE, SIG_IGN);
    tmp_ = std::make_unique<TempDir>("access");
    key_ = make_soft_key(tmp_->sub("key"));
    data_ = tmp_->sub("data");
  }
  // Every stream's records, raw.
  std::vector<std::string> records(const std::string& stream) {
    std::vector<std::string> out;
    EXPECT_TRUE(export_raw(data_, stream, &out));
    return out;
  }
  std::unique_ptr<TempDir> tmp_;
  SoftKey key_;
  std::string data_;
};

// The example config of README "Roles and retention" (systemd/examples/roles.toml)
// with this test's paths and ports 0: it loads, routes and refuses as documented.
std::string adapt_example(std::string text, const std::map<std::string, std::string>& repl) {
  for (auto& [from, to] : repl) {
    size_t at = 0;
    while ((at = text.find(from, at)) != std::string::npos) {
      text.replace(at, from.size(), to);
      at += to.size();
    }
  }
  return text;
}

TEST_F(AccessE2E, TableOfCredentialsTransportsAndStreams) {
  TlsFiles tls = make_tls_files(tmp_->sub("tls"));
  ClientCert prod = issue_client_cert(tls, "prod", "/O=Example/CN=pg-prod", "DNS:pg-prod.example.org");
  ClientCert staging = issue_client_cert(tls, "staging", "/O=Example/CN=pg-staging", "DNS:staging.example.org");
  ClientCert stranger = issue_client_cert(tls, "stranger", "/O=Elsewhere/CN=stranger", "DNS:stranger.example.org");
  const std::string sender_token = "sender-token-0123456789abcdef";
  const std::string auditor_token = "auditor-token-0123456789abcdef";
  RunResult h1 = run({logseal_path(), "token", "hash"}, 10s, sender_token + "\n");
  RunResult h2 = run({logseal_path(), "token", "hash"}, 10s, auditor_token);
  ASSERT_EQ(h1.exit_code, 0) << describe(h1);
  ASSERT_EQ(h2.exit_code, 0) << describe(h2);
  std::string sender_hash = h1.out.substr(0, 64), auditor_hash = h2.out.substr(0, 64);

  std::string conf = tmp_->sub("logseald.toml");
  ASSERT_TRUE(write_file(
      conf,
      "data_dir = \"" + data_ + "\"\nsigner = \"soft:" + key_.key_pem +
          "\"\nhttp = \"127.0.0.1:0\"\ncheckpoint_ms = 200\n"
          "[tls]\ncert = \"" +
          tls.server_pem + "\"\nkey = \"" + tls.server_key + "\"\nca = \"" + tls.ca_pem +
          "\"\n"
          "[[listener]]\nname = \"syslog-tls\"\nkind = \"syslog-tls\"\naddress = \"127.0.0.1:0\"\nstream = \"tls-in\"\n"
          "[[listener]]\nname = \"relp-tls\"\nkind = \"relp-tls\"\naddress = \"127.0.0.1:0\"\nstream = "
          "\"relp-tls-in\"\n"
          "[[listener]]\nname = \"relp\"\nkind = \"relp\"\naddress = \"127.0.0.1:0\"\nstream = \"relp-in\"\n"
          "[[listener]]\nname = \"udp\"\nkind = \"syslog-udp\"\naddress = \"127.0.0.1:0\"\nstream = \"udp-in\"\n"
          "[[listener]]\nname = \"events\"\nkind = \"http\"\naddress = \"127.0.0.1:0\"\nstream = \"events\"\n"
          "k8s_stream = \"k8s\"\n"
          // identities
          "[[identity]]\nname = \"pg-prod\"\nkind = \"service\"\ntls_subject = \"CN=pg-prod,O=Example\"\n"
          "roles = [\"prod-sender\"]\n"
          "[[identity]]\nname = \"pg-staging\"\nkind = \"service\"\ntls_san = [\"staging.example.org\"]\n"
          "roles = [\"staging-sender\"]\n"
          "[[identity]]\nname = \"loopback\"\nkind = \"service\"\nsource = [\"127.0.0.1/32\"]\n"
          "roles = [\"local-sender\"]\n"
          "[[identity]]\nname = \"k8s-webhook\"\nkind = \"service\"\ntoken_sha256 = [\"" +
          sender_hash +
          "\"]\n"
          "roles = [\"events-sender\"]\n"
          "[[identity]]\nname = \"auditor\"\nkind = \"human\"\ntoken_sha256 = \"" +
          auditor_hash +
          "\"\n"
          "roles = [\"reader\"]\n"
          // roles
          "[[role]]\nname = \"prod-sender\"\nstreams = [\"db-prod\", \"tls-in\", \"relp-tls-in\"]\nactions = "
          "[\"ingest\"]\n"
          "[[role]]\nname = \"staging-sender\"\nstreams = [\"*-staging\"]\nactions = [\"ingest\", \"verify\"]\n"
          "[[role]]\nname = \"local-sender\"\nstreams = [\"udp-in\", \"relp-in\"]\nactions = [\"ingest\"]\n"
          "[[role]]\nname = \"events-sender\"\nstreams = [\"events\"]\nactions = [\"ingest\"]\n"
          "[[role]]\nname = \"reader\"\nstreams = [\"*\"]\nactions = [\"read\", \"verify\"]\n"
          // routes
          "[[route]]\nlistener = \"syslog-tls\"\nmatch = { app_name = \"postgres\" }\nstream = \"db-prod\"\n"
          "[[route]]\nlistener = \"relp-tls\"\nidentity = \"pg-staging\"\nstream = \"db-staging\"\n"
          "[[route]]\nlistener = \"udp\"\nmatch = { app_name = \"postgres\" }\nstream = \"db-prod\"\n"));
  DaemonConfig dc;
  dc.config_file = conf;
  dc.listeners = {{ListenerConfig::Kind::kSyslogTls, "tls-in"},
                  {ListenerConfig::Kind::kRelpTls, "relp-tls-in"},
                  {ListenerConfig::Kind::kRelp, "relp-in"},
                  {ListenerConfig::Kind::kUdp, "udp-in"}};
  Daemon d(dc, tmp_->sub("logseald.log"));
  ASSERT_TRUE(d.start());
  EXPECT_EQ(d.log_lines_with("access control is on"), 1u) << d.log();
  EXPECT_EQ(d.log_lines_with("access control is off"), 0u) << d.log();
  std::smatch m;
  std::string ready = d.ready_line();
  std::regex hre(R"(http-events=127\.0\.0\.1:([0-9]+))");
  ASSERT_TRUE(std::regex_search(ready, m, hre)) << ready;
  const uint16_t http_events = static_cast<uint16_t>(std::stoi(m[1].str()));

  enum class Via { kTls, kRelpTls, kRelp, kUdp, kLogger, kHttpEvents, kHttpK8s };
  struct Row {
    std::string what;
    Via via;
    const ClientCert* cert;  // TLS kinds
    std::string from;        // source address
    std::string token;       // HTTP
    std::string app;
    std::string stream;  // where the record lands; "" when refused
    std::string refused_reason;
  };
  const std::string L = "127.0.0.1", elsewhere = "127.0.0.2";
  std::vector<Row> rows = {
      {"prod cert, postgres over TLS syslog: routed to db-prod", Via::kTls, &prod, L, "", "postgres", "db-prod", ""},
      {"prod cert, other app over TLS syslog: the listener's stream", Via::kTls, &prod, L, "", "web", "tls-in", ""},
      {"a staging certificate cannot write into a production stream", Via::kTls, &staging, L, "", "postgres", "",
       "not-allowed"},
      {"staging cert into the TLS listener's own stream", Via::kTls, &staging, L, "", "web", "", "not-allowed"},
      {"unknown certificate over TLS syslog", Via::kTls, &stranger, L, "", "web", "", "unknown-identity"},
      {"no certificate from an unknown address over TLS syslog", Via::kTls, nullptr, elsewhere, "", "web", "",
       "unknown-identity"},
      {"staging cert over RELP-TLS: routed to db-staging", Via::kRelpTls, &staging, L, "", "postgres", "db-staging",
       ""},
      {"prod cert over RELP-TLS", Via::kRelpTls, &prod, L, "", "web", "relp-tls-in", ""},
      {"unknown certificate over RELP-TLS", Via::kRelpTls, &stranger, L, "", "web", "", "unknown-identity"},
      {"loopback range over RELP", Via::kRelp, nullptr, L, "", "web", "relp-in", ""},
      {"no credential over RELP", Via::kRelp, nullptr, elsewhere, "", "web", "", "unknown-identity"},
      {"loopback range over UDP", Via::kUdp, nullptr, L, "", "web", "udp-in", ""},
      {"logger(1) over UDP from the loopback range", Via::kLogger, nullptr, L, "", "web", "udp-in", ""},
      {"logger(1) as postgres: routed into a stream the range may not write", Via::kLogger, nullptr, L, "", "postgres",
       "", "not-allowed"},
      {"loopback range routed into a stream it may not write", Via::kUdp, nullptr, L, "", "postgres", "",
       "not-allowed"},
      {"no credential over UDP", Via::kUdp, nullptr, elsewhere, "", "web", "", "unknown-identity"},
      {"sender token over HTTP", Via::kHttpEvents, nullptr, L, sender_token, "", "events", ""},
      {"sender token into a stream it may not write", Via::kHttpK8s, nullptr, L, sender_token, "", "", "not-allowed"},
      {"an auditor token can never write", Via::kHttpEvents, nullptr, L, auditor_token, "", "", "not-allowed"},
      {"unknown token over HTTP", Via::kHttpEvents, nullptr, L, "not-a-known-token", "", "", "unknown-identity"},
      {"no credential over HTTP", Via::kHttpEvents, nullptr, elsewhere, "", "", "", "unknown-identity"},
  };
  std::map<std::string, size_t> expected_count;    // stream -> records
  std::map<std::string, double> expected_refused;  // listener|stream|reason -> count
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    SCOPED_TRACE(r.what);
    std::string marker = "row-" + std::to_string(i) + "-marker";
    std::string msg = msg5424(r.app, marker);
    std::string listener, target;
    switch (r.via) {
      case Via::kTls: {
        listener = "syslog-tls";
        Client c(d.port("tls-in"), r.from, r.cert, true);
        ASSERT_TRUE(c.ok());
        ASSERT_TRUE(c.send(octet_frame(msg)));
        if (r.stream.empty()) {
          EXPECT_TRUE(c.closed_by_peer()) << "a refused TLS sender's connection stays open";
        } else {
          EXPECT_TRUE(d.wait_records(r.stream, expected_count[r.stream] + 1)) << d.log();
        }
        target = r.stream.empty() ? (r.app == "postgres" ? "db-prod" : "tls-in") : r.stream;
        break;
      }
      case Via::kRelpTls:
      case Via::kRelp: {
        bool tls = r.via == Via::kRelpTls;
        listener = tls ? "relp-tls" : "relp";
        Client c(d.port(tls ? "relp-tls-in" : "relp-in"), r.from, r.cert, tls);
        ASSERT_TRUE(c.ok());
        std::string answer;
        int code = relp_send(c, msg, &answer);
        if (!r.stream.empty()) {
          EXPECT_EQ(code, 200) << answer;
        } else if (r.cert != nullptr) {
          EXPECT_EQ(code, 0) << "an unknown certificate is closed after the handshake: " << answer;
        } else {
          EXPECT_EQ(code, 500) << answer;
          EXPECT_NE(answer.find("refused by access control"), std::string::npos) << answer;
        }
        target = r.stream.empty() ? (tls ? "relp-tls-in" : "relp-in") : r.stream;
        break;
      }
      case Via::kUdp:
      case Via::kLogger:
        listener = "udp";
        if (r.via == Via::kUdp) {
          ASSERT_TRUE(send_udp_from(r.from, d.port("udp-in"), msg));
        } else {
          std::string logger = find_program("logger");
          if (logger.empty()) continue;  // util-linux absent: the raw UDP rows cover the path
          RunResult lr = run({logger, "-n", "127.0.0.1", "-P", std::to_string(d.port("udp-in")), "-d", "--rfc5424",
                              "-t", r.app, marker});
          ASSERT_EQ(lr.exit_code, 0) << describe(lr);
        }
        if (!r.stream.empty()) {
          EXPECT_TRUE(d.wait_records(r.stream, expected_count[r.stream] + 1)) << d.log();
        }
        target = r.stream.empty() ? (r.app == "postgres" ? "db-prod" : "udp-in") : r.stream;
        break;
      case Via::kHttpEvents:
      case Via::kHttpK8s: {
        listener = "events";
        bool k8s = r.via == Via::kHttpK8s;
        std::string body = "{\"event\":\"" + marker + "\"}";
        std::string response;
        int code = http_post_from(r.from, http_events, k8s ? "/v1/k8s-audit" : "/v1/events", body, r.token, &response);
        int want = r.stream.empty() ? (r.refused_reason == "not-allowed" ? 403 : 401) : 200;
        EXPECT_EQ(code, want) << response;
        if (want == 401) {
          EXPECT_NE(response.find("WWW-Authenticate: Bearer"), std::string::npos) << response;
        }
        target = r.stream.empty() ? (k8s ? "k8s" : "events") : r.stream;
        break;
      }
    }
    if (!r.stream.empty()) {
      ++expected_count[r.stream];
    } else {
      expected_refused[listener + "|" + target + "|" + r.refused_reason] += 1;
    }
  }
  // /metrics: every refusal counted by listener, stream and reason.
  for (auto& [key, n] : expected_refused) {
    size_t a = key.find('|'), b = key.find('|', a + 1);
    std::vector<std::string> labels = {"listener=\"" + key.substr(0, a) + "\"",
                                       "stream=\"" + key.substr(a + 1, b - a - 1) + "\"",
                                       "reason=\"" + key.substr(b + 1) + "\""};
    EXPECT_TRUE(wait_until([&] { return metric(d.metrics(), "logseal_refused_total", labels) == n; }, 10s))
        << key << "\n"
        << d.metrics();
  }
  for (auto& [stream, n] : expected_count) EXPECT_TRUE(d.wait_records(stream, n)) << stream;
  EXPECT_EQ(d.stop(), std::optional<int>(0)) << d.log();

  // Each accepted row's record is in its stream and nowhere else; refused ones nowhere.
  std::map<std::string, std::string> all;  // stream -> every record's bytes
  for (const char* s : {"tls-in", "relp-tls-in", "relp-in", "udp-in", "events", "k8s", "db-prod", "db-staging"}) {
    std::string joined;
    auto recs = records(s);
    for (auto& r : recs) joined += r + "\n";
    all[s] = joined;
    EXPECT_EQ(recs.size(), expected_count[s]) << s << ":\n" << joined;
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    std::string marker = "row-" + std::to_string(i) + "-marker";
    for (auto& [s, joined] : all) {
      bool here = joined.find(marker) != std::string::npos;
      EXPECT_EQ(here, s == rows[i].stream) << rows[i].what << ": stream " << s;
    }
  }
  // _audit: the config load, and every refusal (the first of each key at once;
  // no key repeats within a second here, so one record per refusal).
  std::vector<Json> audit;
  ASSERT_TRUE(export_jsonl(data_, "_audit", &audit));
  size_t refusals = 0, config_loads = 0;
  std::map<std::string, double> audited;
  for (const Json& a : audit) {
    auto rec = Json::parse(json_record_raw(a));
    ASSERT_TRUE(rec.has_value());
    std::string action = rec->get_string("audit.action");
    if (action == "config-load") {
      ++config_loads;
      EXPECT_EQ(rec->get_string("audit.config"), conf);
      EXPECT_EQ(rec->get_string("audit.sha256").size(), 64u);
      EXPECT_TRUE((*rec)["audit"]["access_control"].boolean());
      EXPECT_EQ((*rec)["audit"]["identities"].number(), 5);
      EXPECT_EQ((*rec)["audit"]["roles"].number(), 5);
      EXPECT_EQ((*rec)["audit"]["routes"].number(), 3);
    } else if (action == "access-refused") {
      ++refusals;
      audited[rec->get_string("audit.listener") + "|" + rec->get_string("audit.stream") + "|" +
              rec->get_string("audit.reason")] += (*rec)["audit"]["count"].number();
    }
  }
  EXPECT_EQ(config_loads, 1u);
  EXPECT_GE(refusals, expected_refused.size());
  EXPECT_EQ(audited, expected_refused);
  // The staging certificate's refusal names the identity; an unknown one its address and subject.
  bool staging_named = false, stranger_named = false;
  for (const Json& a : audit) {
    auto rec = Json::parse(json_record_raw(a));
    if (rec->get_string("audit.identity") == "pg-staging" && rec->get_string("audit.stream") == "db-prod") {
      staging_named = true;
    }
    if (rec->get_string("audit.detail").find("CN=stranger") != std::string::npos &&
        rec->get_string("audit.source") == "127.0.0.1") {
      stranger_named = true;
    }
  }
  EXPECT_TRUE(staging_named);
  EXPECT_TRUE(stranger_named);
  RunResult v = verify(data_, key_.pub_pem);
  EXPECT_EQ(v.exit_code, 0) << describe(v);
}

// Routing without access control: app_name=postgres goes to db-prod, everything
// else to the listener's stream, and the PostgreSQL reassembly follows the routed
// records (the AUDIT entry record lands in db-prod with its fragments).
TEST_F(AccessE2E, RoutesPostgresToItsStreamAndReassemblesThere) {
  std::string conf = tmp_->sub("route.toml");
  ASSERT_TRUE(
      write_file(conf, "data_dir = \"" + data_ + "\"\nsigner = \"soft:" + key_.key_pem +
                           "\"\nhttp = \"127.0.0.1:0\"\ncheckpoint_ms = 200\n"
                           "[[listener]]\nkind = \"syslog-tcp\"\naddress = \"127.0.0.1:0\"\nstream = \"plain-in\"\n"
                           "name = \"plain\"\npg_log_line_prefix = \"%m [%p] %q%u@%d %a %h \"\n"
                           "[[route]]\nlistener = \"plain\"\nmatch = { app_name = \"postgres\" }\n"
                           "stream = \"db-prod\"\n"));
  DaemonConfig dc;
  dc.config_file = conf;
  dc.listeners = {{ListenerConfig::Kind::kTcp, "plain-in"}};
  Daemon d(dc, tmp_->sub("logseald.log"));
  ASSERT_TRUE(d.start());
  EXPECT_EQ(d.log_lines_with("<4>logseald: access control is off"), 1u) << d.log();
  const std::vector<std::string> msgs = {
      "<134>1 2026-11-26T03:29:34.953+00:00 db1 postgres 7 - -  [5-1] 2026-11-26 03:29:34.953 UTC [7] alice@app psql "
      "[local] LOG:  AUDIT: SESSION,4,1,READ,SELECT,TABLE,public.t,\"SELECT name,",
      "<134>1 2026-11-26T03:29:34.953+00:00 db1 postgres 7 - -  [5-2] #011FROM public.t;\",<none>,2",
      "<134>1 2026-11-26T03:29:35.000+00:00 db1 postgres 7 - -  [6-1] 2026-11-26 03:29:35.000 UTC [7] alice@app psql "
      "[local] LOG:  duration: 1 ms",
      "<134>1 2026-11-26T03:29:35.000+00:00 db1 sshd 9 - -  not postgres",
  };
  std::string frames;
  for (auto& msg : msgs) frames += octet_frame(msg);
  int fd = connect_tcp(d.port("plain-in"));
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, frames));
  ::close(fd);
  EXPECT_TRUE(d.wait_records("plain-in", 1));
  // Three fragments and the AUDIT entry built from the first two.
  EXPECT_TRUE(wait_until([&] { return d.stream_metric("logseal_stream_records_total", "db-prod") >= 4.0; }, 10s))
      << d.metrics();
  EXPECT_EQ(d.stop(), std::optional<int>(0)) << d.log();
  auto plain = records("plain-in");
  ASSERT_EQ(plain.size(), 1u);
  EXPECT_NE(plain[0].find("not postgres"), std::string::npos);
  std::vector<Json> db;
  ASSERT_TRUE(export_jsonl(data_, "db-prod", &db));
  ASSERT_EQ(db.size(), 4u);
  size_t audits = 0;
  for (const Json& r : db) {
    if (r["fields"].has("pgaudit")) {
      ++audits;
      EXPECT_EQ(r.get_string("fields.pgaudit.object_name"), "public.t");
    }
  }
  EXPECT_EQ(audits, 1u);
  RunResult v = verify(data_, key_.pub_pem);
  EXPECT_EQ(v.exit_code, 0) << describe(v);
}

TEST_F(AccessE2E, ExampleConfigOfTheReadmeWorks) {
  std::string example = read_file(std::string(LOGSEAL_SOURCE_DIR) + "/docs/examples/roles.toml");
  ASSERT_FALSE(example.empty());
  TlsFiles tls = make_tls_files(tmp_->sub("tls"));
  ClientCert prod = issue_client_cert(tls, "prod", "/O=Example/CN=pg-prod", "DNS:pg-prod.example.org");
  ClientCert staging = issue_client_cert(tls, "staging", "/O=Example/CN=pg-staging", "DNS:pg-staging.example.org");
  const std::string k8s_token = "k8s-token-for-the-example", auditor_token = "auditor-token-for-the-example",
                    ops_token = "ops-token-for-the-example";
  SoftKey staging_key = make_soft_key(tmp_->sub("staging-key"));
  std::string conf = tmp_->sub("roles.toml");
  ASSERT_TRUE(write_file(
      conf, "checkpoint_ms = 200\n" +
                adapt_example(example, {{"/var/lib/logseal", data_},
                                        {"tpm:/etc/logseal/signing-key.pem", "soft:" + key_.key_pem},
                                        {"/etc/logseal/server.pem", tls.server_pem},
                                        {"/etc/logseal/server.key", tls.server_key},
                                        {"/etc/logseal/ca.pem", tls.ca_pem},
                                        {"0.0.0.0:6514", "127.0.0.1:0"},
                                        {"0.0.0.0:2514", "127.0.0.1:0"},
                                        {"0.0.0.0:8081", "127.0.0.1:0"},
                                        {"127.0.0.1:8080", "127.0.0.1:0"},
                                        {"3d4b6e6f0b2b3f0b0a4bd3c9f7f2d1a8c6e5b4a3928170f6e5d4c3b2a1908f7e",
                                         run({logseal_path(), "token", "hash"}, 10s, k8s_token).out.substr(0, 64)},
                                        {"a3f1c2d4e5b6a7980f1e2d3c4b5a69788f9e0d1c2b3a49586f7e8d9c0b1a2f3e",
                                         run({logseal_path(), "token", "hash"}, 10s, auditor_token).out.substr(0, 64)},
                                        {"5e0c9a7b3d1f2e4a6c8b0d9e7f5a3c1b2d4e6f8a0b9c7d5e3f1a2b4c6d8e0f9a",
                                         run({logseal_path(), "token", "hash"}, 10s, ops_token).out.substr(0, 64)},
                                        {"tpm:/etc/logseal/staging-key.pem", "soft:" + staging_key.key_pem}})));
  DaemonConfig dc;
  dc.config_file = conf;
  dc.listeners = {{ListenerConfig::Kind::kSyslogTls, "syslog"}, {ListenerConfig::Kind::kRelp, "network"}};
  Daemon d(dc, tmp_->sub("logseald.log"));
  ASSERT_TRUE(d.start());
  EXPECT_EQ(d.log_lines_with("access control is on: 6 identities, 6 roles"), 1u) << d.log();
  EXPECT_EQ(d.log_lines_with("stream db-prod: retention_min_days=365 retention_max_days=2555"), 1u) << d.log();
  std::smatch m;
  std::string ready = d.ready_line();
  ASSERT_TRUE(std::regex_search(ready, m, std::regex(R"(http-events=127\.0\.0\.1:([0-9]+))"))) << ready;
  const uint16_t events = static_cast<uint16_t>(std::stoi(m[1].str()));
  {
    Client c(d.port("syslog"), "127.0.0.1", &prod, true);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c.send(octet_frame(msg5424("postgres", "prod statement")) + octet_frame(msg5424("cron", "prod cron"))));
    EXPECT_TRUE(d.wait_records("db-prod", 1));
    EXPECT_TRUE(d.wait_records("syslog", 1));
  }
  {
    Client c(d.port("syslog"), "127.0.0.1", &staging, true);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c.send(octet_frame(msg5424("postgres", "staging statement"))));
    EXPECT_TRUE(d.wait_records("db-staging", 1)) << d.log();
  }
  {
    Client c(d.port("network"), "127.0.0.1", nullptr, false);  // not in 10.20.0.0/16
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(relp_send(c, msg5424("switch", "link down")), 500);
  }
  const std::string k8s_body =
      "{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"items\":[{\"auditID\":\"a1\"}]}";
  EXPECT_EQ(http_post_from("127.0.0.1", events, "/v1/k8s-audit", k8s_body, k8s_token), 200);
  EXPECT_EQ(http_post_from("127.0.0.1", events, "/v1/k8s-audit", k8s_body, auditor_token), 403);
  EXPECT_EQ(http_post_from("127.0.0.1", events, "/v1/events", "{\"x\":1}", k8s_token), 403);
  // The read API: the auditor reads, ops holds but cannot read, a sender's token
  // cannot read.
  ASSERT_TRUE(std::regex_search(ready, m, std::regex(R"( http=127\.0\.0\.1:([0-9]+))"))) << ready;
  const std::string api = "http://127.0.0.1:" + m[1].str();
  auto api_status = [&](const std::string& method, const std::string& target, const std::string& token) {
    RunResult r = run({find_program("curl"), "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", method, "-H",
                       "Authorization: Bearer " + token, api + target},
                      20s);
    return r.exit_code == 0 ? std::atoi(r.out.c_str()) : 0;
  };
  EXPECT_EQ(api_status("GET", "/v1/records?stream=db-prod", auditor_token), 200);
  EXPECT_EQ(api_status("GET", "/v1/records?stream=db-prod", ops_token), 403);
  EXPECT_EQ(api_status("GET", "/v1/records?stream=k8s-audit", k8s_token), 403);
  EXPECT_EQ(api_status("POST", "/v1/hold?stream=db-staging&on=true", auditor_token), 403);
  EXPECT_EQ(api_status("POST", "/v1/hold?stream=db-staging&on=true", ops_token), 200);
  EXPECT_EQ(d.stop(), std::optional<int>(0)) << d.log();
  EXPECT_EQ(records("db-prod").size(), 1u);
  EXPECT_EQ(records("db-staging").size(), 2u);  // the statement and the legal hold
  EXPECT_EQ(records("syslog").size(), 1u);
  EXPECT_EQ(records("network").size(), 0u);
  EXPECT_EQ(records("k8s-audit").size(), 1u);
  // db-staging is signed by its own key: with the main key alone it is unknown.
  RunResult one = verify(data_, key_.pub_pem);
  EXPECT_EQ(one.exit_code, 1) << describe(one);
  EXPECT_NE(one.out.find("unknown-key"), std::string::npos) << describe(one);
  RunResult v = run({logseal_path(), "verify", data_, "--pubkey", key_.pub_pem, "--pubkey", staging_key.pub_pem}, 60s);
  EXPECT_EQ(v.exit_code, 0) << describe(v);
}

// Startup errors: exit 2 with a message naming the entry.
TEST_F(AccessE2E, BadPoliciesStopTheStart) {
  const std::string head = "data_dir = \"" + data_ + "\"\nsigner = \"soft:" + key_.key_pem +
                           "\"\n[[listener]]\nkind = \"syslog-tcp\"\naddress = \"127.0.0.1:0\"\nname = \"in\"\n";
  struct Case {
    std::string text, expect;
  };
  std::vector<Case> cases = {
      {"[[identity]]\nname = \"svc\"\nkind = \"service\"\nsource = \"127.0.0.1/32\"\nroles = [\"r\"]\n"
       "[[role]]\nname = \"r\"\nstreams = [\"*\"]\nactions = [\"read\"]\n",
       "service identity 'svc' holds role 'r' with action 'read'"},
      {"[[identity]]\nname = \"svc\"\nkind = \"service\"\nsource = \"127.0.0.1/33\"\n", "prefix length"},
      {"[[route]]\nlistener = \"nope\"\nstream = \"x\"\n", "listener 'nope' is not a syslog listener"},
      {"[[listener]]\nkind = \"syslog-udp\"\naddress = \"127.0.0.1:0\"\nname = \"in\"\n",
       "two listeners are named 'in'"},
  };
  for (const Case& c : cases) {
    std::string conf = tmp_->sub("bad.toml");
    ASSERT_TRUE(write_file(conf, head + c.text));
    RunResult r = run({logseald_path(), "--config", conf}, 20s);
    EXPECT_EQ(r.exit_code, 2) << describe(r);
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.expect << "\n" << describe(r);
  }
}

TEST_F(AccessE2E, TokenNewPrintsATokenAndItsConfigLine) {
  RunResult r = run({logseal_path(), "token", "new"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  auto lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_EQ(lines[0].size(), 43u);  // 32 bytes, base64url without padding
  EXPECT_EQ(lines[0].find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos);
  RunResult h = run({logseal_path(), "token", "hash"}, 10s, lines[0] + "\n");
  ASSERT_EQ(h.exit_code, 0) << describe(h);
  EXPECT_EQ(lines[1], "token_sha256 = \"" + h.out.substr(0, 64) + "\"");
  RunResult again = run({logseal_path(), "token", "new"});
  EXPECT_NE(split_lines(again.out)[0], lines[0]);
  RunResult abc = run({logseal_path(), "token", "hash"}, 10s, "abc");
  EXPECT_EQ(abc.out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n");
  RunResult empty = run({logseal_path(), "token", "hash"}, 10s, "");
  EXPECT_EQ(empty.exit_code, 2);
}

}  // namespace
}  // namespace logseal::e2e
