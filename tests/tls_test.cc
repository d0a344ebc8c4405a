#include "ingest/tls.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

extern char** environ;

namespace logseal::ingest {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr auto kTimeout = std::chrono::seconds(20);

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// ---------------------------------------------------------------------------
// Test PKI, made once per run with the openssl CLI so the code under test does
// not grade its own certificates.

class Pki {
 public:
  // Made on first use, so listing the tests runs no openssl.
  static Pki& get() {
    if (instance_ == nullptr) instance_ = new Pki();
    return *instance_;
  }
  static void destroy() {
    if (instance_ == nullptr) return;
    instance_->remove();
    delete instance_;
    instance_ = nullptr;
  }
  const std::string& dir() const { return dir_; }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  bool ok() const { return ok_; }
  const std::string& log() const { return log_text_; }

  // CA-signed server config; ca_file is the test CA.
  TlsServerConfig server_config(bool with_ca = true, bool require = false) const {
    TlsServerConfig c;
    c.cert_file = path("server.crt");
    c.key_file = path("server.key");
    if (with_ca) c.ca_file = path("ca.crt");
    c.require_client_cert = require;
    return c;
  }

  void remove() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

 private:
  Pki() {
    const char* env = std::getenv("LOGSEAL_TEST_TMP");
    std::string root = env != nullptr && env[0] != '\0' ? env : "/tmp";
    std::error_code ec;
    fs::create_directories(root, ec);
    dir_ = root + "/tls_test." + std::to_string(::getpid());
    fs::remove_all(dir_, ec);
    fs::create_directories(dir_, ec);
    ok_ = generate();
    if (!ok_) log_text_ = read_file(path("openssl.log"));
  }

  bool run(const std::string& args) {
    std::string cmd = "cd '" + dir_ + "' && openssl " + args + " >>openssl.log 2>&1";
    return std::system(cmd.c_str()) == 0;
  }

  bool key(const std::string& name) {
    return run("genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " + name + ".key");
  }

  bool ca(const std::string& name, const std::string& cn) {
    write_file(path(name + ".cnf"),
               "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = " + cn +
                   "\n[v3_ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n"
                   "subjectKeyIdentifier = hash\n");
    return key(name) && run("req -x509 -new -config " + name + ".cnf -extensions v3_ca -key " + name +
                            ".key -days 2 -out " + name + ".crt");
  }

  bool leaf(const std::string& name, const std::string& ca, const std::string& subj, const std::string& eku,
            const std::string& san, int serial) {
    write_file(path(name + ".ext"), "basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n"
                                    "extendedKeyUsage = " + eku + "\nsubjectAltName = " + san + "\n");
    return key(name) &&
           run("req -new -config req.cnf -key " + name + ".key -subj '" + subj + "' -out " + name + ".csr") &&
           run("x509 -req -in " + name + ".csr -CA " + ca + ".crt -CAkey " + ca + ".key -set_serial " +
               std::to_string(serial) + " -days 2 -extfile " + name + ".ext -out " + name + ".crt");
  }

  bool generate() {
    write_file(path("req.cnf"), "[req]\ndistinguished_name = dn\n[dn]\n");
    write_file(path("garbage.pem"), "this is not a certificate\n");
    return ca("ca", "logseal test CA") && ca("ca2", "other CA") &&
           leaf("server", "ca", "/CN=localhost", "serverAuth", "IP:127.0.0.1,DNS:localhost", 2) &&
           leaf("client", "ca", "/CN=sender1", "clientAuth", "DNS:sender1.example", 3) &&
           leaf("multi", "ca", "/C=DE/O=Acme, Inc/CN=multi", "clientAuth",
                "DNS:multi.example,IP:10.0.0.7,IP:2001:db8::7,email:ops@example.com,URI:spiffe://example/multi", 4) &&
           // Same subject as the real client, signed by a CA the server does not trust.
           leaf("intruder", "ca2", "/CN=sender1", "clientAuth", "DNS:sender1.example", 5) &&
           run("genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes256 -pass pass:secret -out encrypted.key");
  }

  static inline Pki* instance_ = nullptr;
  std::string dir_;
  std::string log_text_;
  bool ok_ = false;
};

class PkiEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { Pki::destroy(); }
};
const auto* const kPkiEnv = ::testing::AddGlobalTestEnvironment(new PkiEnvironment);

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::signal(SIGPIPE, SIG_IGN);
    ASSERT_TRUE(Pki::get().ok()) << "openssl CLI failed:\n" << Pki::get().log();
  }
  const Pki& pki() const { return Pki::get(); }
  std::shared_ptr<TlsContext> context(const TlsServerConfig& config) {
    auto ctx = TlsContext::create(config);
    EXPECT_TRUE(ctx.ok()) << ctx.status().to_string();
    return ctx.ok() ? ctx.value() : nullptr;
  }
};

// ---------------------------------------------------------------------------
// TlsContext errors

TEST_F(TlsTest, ContextLoadsGoodConfig) {
  EXPECT_TRUE(TlsContext::create(pki().server_config(false)).ok());
  EXPECT_TRUE(TlsContext::create(pki().server_config(true, true)).ok());
}

TEST_F(TlsTest, ContextErrorsNameTheProblem) {
  TlsServerConfig c = pki().server_config();
  c.cert_file = pki().path("missing.crt");
  auto r = TlsContext::create(c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_NE(r.status().message().find("missing.crt"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("No such file"), std::string::npos) << r.status().message();

  c = pki().server_config();
  c.cert_file = pki().path("garbage.pem");
  r = TlsContext::create(c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("cert_file"), std::string::npos) << r.status().message();

  c = pki().server_config();
  c.key_file = pki().path("client.key");  // a valid key, for another certificate
  r = TlsContext::create(c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("does not match"), std::string::npos) << r.status().message();

  c = pki().server_config();
  c.key_file = pki().path("encrypted.key");  // must fail, never prompt on a tty
  r = TlsContext::create(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("encrypted keys are not supported"), std::string::npos)
      << r.status().message();

  c = pki().server_config();
  c.ca_file = pki().path("garbage.pem");
  r = TlsContext::create(c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("ca_file"), std::string::npos) << r.status().message();

  c = pki().server_config(false, true);
  r = TlsContext::create(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("require_client_cert needs ca_file"), std::string::npos);

  c = pki().server_config();
  c.key_file = "";
  r = TlsContext::create(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("key_file is not set"), std::string::npos);
  EXPECT_EQ(ERR_peek_error(), 0u) << "error queue must be left empty";
}

// ---------------------------------------------------------------------------
// In-memory client: an OpenSSL client SSL built here, talking to a TlsSession
// through the test's own pump.

struct SslCtxFree {
  void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
};
struct SslFree {
  void operator()(SSL* p) const { SSL_free(p); }
};

struct ClientOptions {
  std::string cert;  // base name under the PKI dir ("client"), "" for none
  int max_version = 0;
  bool legacy = false;  // allow TLS 1.0/1.1 on the client, to check the server refuses them
};

class MemClient {
 public:
  MemClient(const Pki& pki, const ClientOptions& o) {
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    EXPECT_TRUE(ctx_);
    SSL_CTX_load_verify_file(ctx_.get(), pki.path("ca.crt").c_str());
    SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);
    if (o.legacy) {
      SSL_CTX_set_security_level(ctx_.get(), 0);
      SSL_CTX_set_min_proto_version(ctx_.get(), TLS1_VERSION);
      SSL_CTX_set_cipher_list(ctx_.get(), "DEFAULT:@SECLEVEL=0");
    }
    if (o.max_version != 0) SSL_CTX_set_max_proto_version(ctx_.get(), o.max_version);
    if (!o.cert.empty()) {
      EXPECT_EQ(SSL_CTX_use_certificate_file(ctx_.get(), pki.path(o.cert + ".crt").c_str(), SSL_FILETYPE_PEM), 1);
      EXPECT_EQ(SSL_CTX_use_PrivateKey_file(ctx_.get(), pki.path(o.cert + ".key").c_str(), SSL_FILETYPE_PEM), 1);
    }
    ssl_.reset(SSL_new(ctx_.get()));
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in_, -1);
    SSL_set_bio(ssl_.get(), in_, out_);
    SSL_set1_host(ssl_.get(), "localhost");
    SSL_set_connect_state(ssl_.get());
  }

  SSL* ssl() { return ssl_.get(); }
  BIO* in() { return in_; }
  BIO* out() { return out_; }

  // Handshakes, sends queued plaintext, reads what arrived. False on a client error.
  bool step() {
    if (failed) return false;
    if (!SSL_is_init_finished(ssl_.get())) {
      int r = SSL_do_handshake(ssl_.get());
      if (r != 1) {
        int e = SSL_get_error(ssl_.get(), r);
        if (e == SSL_ERROR_WANT_READ) return true;
        failed = true;
        ERR_clear_error();
        return false;
      }
    }
    while (!to_send.empty()) {
      size_t n = 0;
      if (SSL_write_ex(ssl_.get(), to_send.data(), std::min<size_t>(to_send.size(), 16384), &n) != 1) {
        failed = true;
        ERR_clear_error();
        return false;
      }
      to_send.erase(0, n);
    }
    for (;;) {
      char buf[4096];
      size_t n = 0;
      int r = SSL_read_ex(ssl_.get(), buf, sizeof(buf), &n);
      if (r == 1) {
        plain.append(buf, n);
        continue;
      }
      int e = SSL_get_error(ssl_.get(), r);
      if (e == SSL_ERROR_ZERO_RETURN) closed = true;
      else if (e != SSL_ERROR_WANT_READ) failed = true;
      ERR_clear_error();
      return !failed;
    }
  }

  std::string to_send;
  std::string plain;
  bool closed = false;
  bool failed = false;

 private:
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx_;
  std::unique_ptr<SSL, SslFree> ssl_;
  BIO* in_ = nullptr;   // owned by ssl_
  BIO* out_ = nullptr;  // owned by ssl_
};

struct PumpStats {
  size_t feeds = 0;
  size_t max_plain_per_feed_excess = 0;  // plaintext from one feed minus the bytes fed, at most
};

// Moves bytes between client and session, at most `step` bytes per delivery (a
// random size in [1, step] when random is set), until neither side moves. Returns
// the session's first error (after handing its alert to the client).
Status pump(MemClient& client, TlsSession& session, std::string& server_plain, size_t step,
            PumpStats* stats = nullptr, std::mt19937* random = nullptr) {
  std::vector<char> buf(step);
  for (int rounds = 0; rounds < 10'000'000; ++rounds) {
    bool moved = false;
    client.step();
    while (BIO_ctrl_pending(client.out()) > 0) {
      size_t want = step;
      if (random != nullptr) want = std::uniform_int_distribution<size_t>(1, step)(*random);
      int n = BIO_read(client.out(), buf.data(), static_cast<int>(want));
      if (n <= 0) break;
      moved = true;
      size_t before = server_plain.size();
      Status st = session.feed(std::string_view(buf.data(), static_cast<size_t>(n)), server_plain);
      size_t got = server_plain.size() - before;
      if (stats != nullptr) {
        ++stats->feeds;
        if (got > static_cast<size_t>(n)) {
          stats->max_plain_per_feed_excess = std::max(stats->max_plain_per_feed_excess, got - n);
        }
      }
      EXPECT_LE(got, static_cast<size_t>(n) + kTlsRecordMax) << "plaintext per feed must be bounded";
      if (!st.ok()) {
        std::string_view out = session.pending_output();
        BIO_write(client.in(), out.data(), static_cast<int>(out.size()));
        session.consume_output(out.size());
        client.step();
        return st;
      }
    }
    while (!session.pending_output().empty()) {
      std::string_view out = session.pending_output();
      size_t n = std::min(out.size(), step);
      if (random != nullptr) n = std::min(out.size(), std::uniform_int_distribution<size_t>(1, step)(*random));
      BIO_write(client.in(), out.data(), static_cast<int>(n));
      session.consume_output(n);
      moved = true;
      client.step();
    }
    if (!moved) return ok_status();
  }
  ADD_FAILURE() << "pump did not settle";
  return internal_error("pump did not settle");
}

std::string pattern(size_t n, unsigned seed) {
  std::string s(n, '\0');
  std::mt19937 rng(seed);
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

TEST_F(TlsTest, InMemoryWithoutClientCertificate) {
  auto ctx = context(pki().server_config());
  ASSERT_TRUE(ctx);
  TlsSession session(ctx);
  MemClient client(pki(), {});
  client.to_send = "<13>1 2024-01-01T00:00:00Z host app - - - hello\n";
  std::string plain;
  ASSERT_TRUE(pump(client, session, plain, 1 << 20).ok());
  EXPECT_TRUE(session.handshake_done());
  EXPECT_FALSE(client.failed);
  EXPECT_EQ(plain, "<13>1 2024-01-01T00:00:00Z host app - - - hello\n");
  EXPECT_EQ(session.peer_subject(), "");
  EXPECT_TRUE(session.peer_sans().empty());
  EXPECT_EQ(session.connection_summary().rfind("TLSv1.3 ", 0), 0u) << session.connection_summary();

  ASSERT_TRUE(session.write("200 OK\n").ok());
  ASSERT_TRUE(pump(client, session, plain, 1 << 20).ok());
  EXPECT_EQ(client.plain, "200 OK\n");
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST_F(TlsTest, InMemoryClientIdentity) {
  auto ctx = context(pki().server_config(true, true));
  ASSERT_TRUE(ctx);
  {
    TlsSession session(ctx);
    MemClient client(pki(), {.cert = "client", .max_version = 0, .legacy = false});
    client.to_send = "x";
    std::string plain;
    ASSERT_TRUE(pump(client, session, plain, 1 << 20).ok());
    EXPECT_EQ(plain, "x");
    EXPECT_EQ(session.peer_subject(), "CN=sender1");
    EXPECT_EQ(session.peer_sans(), std::vector<std::string>{"DNS:sender1.example"});
  }
  {
    TlsSession session(ctx);
    MemClient client(pki(), {.cert = "multi", .max_version = 0, .legacy = false});
    client.to_send = "y";
    std::string plain;
    ASSERT_TRUE(pump(client, session, plain, 1 << 20).ok());
    EXPECT_EQ(plain, "y");
    // RFC 2253: most specific first, the comma in "Acme, Inc" escaped.
    EXPECT_EQ(session.peer_subject(), "CN=multi,O=Acme\\, Inc,C=DE");
    EXPECT_EQ(session.peer_sans(),
              (std::vector<std::string>{"DNS:multi.example", "IP:10.0.0.7", "IP:2001:db8::7", "email:ops@example.com",
                                        "URI:spiffe://example/multi"}));
  }
}

TEST_F(TlsTest, InMemoryTls12) {
  auto ctx = context(pki().server_config());
  ASSERT_TRUE(ctx);
  TlsSession session(ctx);
  MemClient client(pki(), {.cert = "client", .max_version = TLS1_2_VERSION, .legacy = false});
  client.to_send = "over 1.2\n";
  std::string plain;
  ASSERT_TRUE(pump(client, session, plain, 1 << 20).ok());
  EXPECT_EQ(plain, "over 1.2\n");
  EXPECT_EQ(session.connection_summary().rfind("TLSv1.2 ECDHE-", 0), 0u) << session.connection_summary();
  EXPECT_EQ(session.peer_subject(), "CN=sender1");
}

TEST_F(TlsTest, InMemoryRefusesTls11) {
  auto ctx = context(pki().server_config());
  ASSERT_TRUE(ctx);
  TlsSession session(ctx);
  MemClient client(pki(), {.cert = "", .max_version = TLS1_1_VERSION, .legacy = true});
  std::string plain;
  Status st = pump(client, session, plain, 1 << 20);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("unsupported protocol"), std::string::npos) << st.message();
  EXPECT_TRUE(client.failed) << "the client must get the alert";
}

// Byte-at-a-time delivery in both directions, then 1 MiB each way in random
// slices: every byte arrives once, in order, and no feed returns more plaintext
// than it was given plus one record.
TEST_F(TlsTest, InMemoryByteAtATimeAndLargePayloads) {
  auto ctx = context(pki().server_config(true, true));
  ASSERT_TRUE(ctx);
  TlsSession session(ctx);
  MemClient client(pki(), {.cert = "client", .max_version = 0, .legacy = false});
  const std::string small = pattern(3000, 1);
  client.to_send = small;
  std::string plain;
  PumpStats stats;
  ASSERT_TRUE(pump(client, session, plain, 1, &stats).ok());
  EXPECT_EQ(plain, small);
  // The byte that completes a record releases its whole plaintext, never more.
  EXPECT_LE(stats.max_plain_per_feed_excess, 16384u);
  EXPECT_GT(stats.feeds, 3000u);

  const std::string big_in = pattern(1 << 20, 2);
  const std::string big_out = pattern(1 << 20, 3);
  plain.clear();
  client.to_send = big_in;
  ASSERT_TRUE(session.write(big_out).ok());
  // Output for 1 MiB: the plaintext plus per-record overhead, nothing more.
  EXPECT_GE(session.pending_output().size(), big_out.size());
  EXPECT_LE(session.pending_output().size(), big_out.size() + 64 * 64);
  std::mt19937 rng(7);
  ASSERT_TRUE(pump(client, session, plain, 70000, &stats, &rng).ok());
  EXPECT_TRUE(plain == big_in) << "server got " << plain.size() << " bytes";
  EXPECT_TRUE(client.plain == big_out) << "client got " << client.plain.size() << " bytes";

  // 1 MiB in one feed: decrypted fully, output stays bounded by the input.
  plain.clear();
  client.to_send = big_in;
  client.step();
  std::string wire(BIO_ctrl_pending(client.out()), '\0');
  BIO_read(client.out(), wire.data(), static_cast<int>(wire.size()));
  ASSERT_TRUE(session.feed(wire, plain).ok());
  EXPECT_TRUE(plain == big_in);
  EXPECT_LE(session.pending_output().size(), 1024u);
}

TEST_F(TlsTest, InMemoryByteAtATimeOneMiB) {
  auto ctx = context(pki().server_config());
  ASSERT_TRUE(ctx);
  TlsSession session(ctx);
  MemClient client(pki(), {});
  const std::string big = pattern(1 << 20, 4);
  client.to_send = big;
  std::string plain;
  PumpStats stats;
  ASSERT_TRUE(pump(client, session, plain, 1, &stats).ok());
  EXPECT_TRUE(plain == big) << plain.size();
  EXPECT_LE(stats.max_plain_per_feed_excess, 16384u);
}

TEST_F(TlsTest, GracefulCloseBothWays) {
  auto ctx = context(pki().server_config());
  ASSERT_TRUE(ctx);
  {
    TlsSession session(ctx);
    MemClient client(pki(), {});
    std::string plain;
    ASSERT_TRUE(pump(client, session, plain, 1 << 20).ok());
    session.shutdown();
    session.shutdown();  // idempotent
    ASSERT_TRUE(pump(client, session, plain, 1 << 20).ok());
    EXPECT_TRUE(client.closed);
    EXPECT_EQ(session.write("late").code(), Code::kUnavailable);
  }
  {
    TlsSession session(ctx);
    MemClient client(pki(), {});
    client.to_send = "last words";
    std::string plain;
    ASSERT_TRUE(pump(client, session, plain, 1 << 20).ok());
    EXPECT_EQ(SSL_shutdown(client.ssl()), 0);  // close_notify sent, the answer not yet seen
    ASSERT_TRUE(pump(client, session, plain, 1 << 20).ok());
    EXPECT_EQ(plain, "last words");
    EXPECT_TRUE(session.peer_closed());
    session.shutdown();
    ASSERT_TRUE(pump(client, session, plain, 1 << 20).ok());
    EXPECT_EQ(SSL_shutdown(client.ssl()), 1);  // both sides closed
    // Bytes after close_notify are ignored.
    EXPECT_TRUE(session.feed("junk", plain).ok());
    EXPECT_EQ(plain, "last words");
  }
}

TEST_F(TlsTest, WriteBeforeHandshakeIsRefused) {
  auto ctx = context(pki().server_config());
  ASSERT_TRUE(ctx);
  TlsSession session(ctx);
  EXPECT_EQ(session.write("early").code(), Code::kFailedPrecondition);
  session.shutdown();  // no handshake yet: nothing to send, no crash
  EXPECT_TRUE(session.pending_output().empty());
  EXPECT_FALSE(session.handshake_done());
  EXPECT_EQ(session.peer_subject(), "");
}

TEST_F(TlsTest, GarbageInsteadOfClientHello) {
  auto ctx = context(pki().server_config());
  ASSERT_TRUE(ctx);
  {
    TlsSession session(ctx);
    std::string plain;
    // A plaintext syslog sender pointed at the TLS port.
    Status st = session.feed("<13>1 2024-01-01T00:00:00Z host app - - - hello\n", plain);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.code(), Code::kInvalidArgument);
    EXPECT_NE(st.message().find("TLS handshake: "), std::string::npos) << st.message();
    EXPECT_TRUE(plain.empty());
    // Final: every later call returns the same error, nothing crashes.
    EXPECT_EQ(session.feed("more", plain).message(), st.message());
    EXPECT_EQ(session.write("x").message(), st.message());
    session.shutdown();
    session.consume_output(session.pending_output().size());
    EXPECT_EQ(session.error().message(), st.message());
    EXPECT_EQ(ERR_peek_error(), 0u);
  }
  {
    TlsSession session(ctx);
    std::string plain;
    Status st = session.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n", plain);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find("http request"), std::string::npos) << st.message();
  }
  // Random bytes, including ones that start like a handshake record: either an
  // error or a wait for more, never a crash, never plaintext.
  std::mt19937 rng(42);
  for (int i = 0; i < 500; ++i) {
    TlsSession session(ctx);
    std::string junk = pattern(std::uniform_int_distribution<size_t>(1, 3000)(rng), 100 + i);
    if (i % 2 == 0) {
      junk[0] = 0x16;
      if (junk.size() > 2) {
        junk[1] = 0x03;
        junk[2] = 0x01;
      }
    }
    std::string plain;
    Status st = session.feed(junk, plain);
    EXPECT_TRUE(plain.empty());
    if (!st.ok()) {
      EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.to_string();
    }
    EXPECT_EQ(ERR_peek_error(), 0u);
  }
}

TEST_F(TlsTest, TamperedRecordAfterHandshakeFails) {
  auto ctx = context(pki().server_config());
  ASSERT_TRUE(ctx);
  TlsSession session(ctx);
  MemClient client(pki(), {});
  std::string plain;
  ASSERT_TRUE(pump(client, session, plain, 1 << 20).ok());
  client.to_send = "secret message";
  client.step();
  std::string wire(BIO_ctrl_pending(client.out()), '\0');
  BIO_read(client.out(), wire.data(), static_cast<int>(wire.size()));
  ASSERT_GT(wire.size(), 10u);
  wire[wire.size() - 3] ^= 0x40;
  Status st = session.feed(wire, plain);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message().rfind("TLS: ", 0), 0u) << st.message();
  EXPECT_TRUE(plain.empty());
  EXPECT_FALSE(session.pending_output().empty()) << "an alert for the peer";
}

// ---------------------------------------------------------------------------
// Against a real `openssl s_client` over a loopback TCP socket.

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void flush(int fd, TlsSession& session) {
  std::string_view out = session.pending_output();
  if (out.empty()) return;
  send_all(fd, out);  // a peer that went away just loses it
  session.consume_output(out.size());
}

struct SClientResult {
  Status status;  // the session's error, if any
  std::string plain;
  std::string client_log;
  bool handshake_done = false;
  std::string subject;
  std::vector<std::string> sans;
  std::string summary;
};

class SClient {
 public:
  // Starts `openssl s_client` against 127.0.0.1:port, stdout and stderr to log.
  SClient(const Pki& pki, int port, const std::vector<std::string>& extra, const std::string& log)
      : log_(log) {
    std::vector<std::string> args = {"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port),
                                     "-CAfile", pki.path("ca.crt"), "-verify_return_error", "-verify_ip",
                                     "127.0.0.1", "-nocommands", "-no_ign_eof"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    stdin_ = fds[1];
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[0], 0);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    int rc = ::posix_spawnp(&pid_, "openssl", &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[0]);
    EXPECT_EQ(rc, 0) << "posix_spawnp openssl: " << std::strerror(rc);
    if (rc != 0) pid_ = -1;
  }
  ~SClient() {
    close_stdin();
    stop();
  }

  bool running() const { return pid_ > 0; }
  void write_stdin(const std::string& text) {
    ASSERT_GE(stdin_, 0);
    ASSERT_EQ(::write(stdin_, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  }
  void close_stdin() {
    if (stdin_ >= 0) ::close(stdin_);
    stdin_ = -1;
  }
  // Waits up to `wait` for s_client to exit, then stops it by its PID.
  void stop(std::chrono::milliseconds wait = std::chrono::milliseconds(0)) {
    if (pid_ <= 0) return;
    auto deadline = Clock::now() + wait;
    for (;;) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_ || (r < 0 && errno != EINTR)) break;
      if (Clock::now() >= deadline) {
        ::kill(pid_, SIGTERM);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
  }
  std::string log() const { return read_file(log_); }

 private:
  std::string log_;
  pid_t pid_ = -1;
  int stdin_ = -1;
};

// Accepts one connection from s_client and pumps it through a TlsSession. s_client
// sends `lines`; once they all arrived the server answers `reply`, waits to see it
// in s_client's output, then closes s_client's stdin so it shuts down.
SClientResult run_s_client(const Pki& pki, std::shared_ptr<TlsContext> ctx, const std::vector<std::string>& extra,
                           const std::string& lines, const std::string& reply) {
  SClientResult res;
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(lfd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(::listen(lfd, 1), 0);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len), 0);

  static int run = 0;
  SClient client(pki, ntohs(addr.sin_port), extra, pki.path("s_client." + std::to_string(++run) + ".log"));
  if (!client.running()) {
    ::close(lfd);
    res.status = internal_error("no s_client");
    return res;
  }
  client.write_stdin(lines);

  pollfd lp{lfd, POLLIN, 0};
  int pr = ::poll(&lp, 1, static_cast<int>(std::chrono::milliseconds(kTimeout).count()));
  int fd = pr == 1 ? ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC) : -1;
  ::close(lfd);
  if (fd < 0) {
    ADD_FAILURE() << "s_client did not connect; its log:\n" << client.log();
    res.status = internal_error("no connection");
    return res;
  }

  TlsSession session(ctx);
  bool replied = false;
  auto deadline = Clock::now() + kTimeout;
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) < 0) break;
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;  // s_client closed (after its close_notify, or on an error)
      Status st = session.feed(std::string_view(buf, static_cast<size_t>(n)), res.plain);
      flush(fd, session);  // the handshake flight, or the alert on an error
      if (!st.ok()) {
        res.status = st;
        // Lingering close: stop sending, read until the peer closes, so the
        // close does not turn into an RST that could destroy the alert in flight.
        ::shutdown(fd, SHUT_WR);
        auto until = Clock::now() + std::chrono::seconds(5);
        while (Clock::now() < until) {
          pollfd q{fd, POLLIN, 0};
          if (::poll(&q, 1, 100) == 1 && ::recv(fd, buf, sizeof(buf), 0) <= 0) break;
        }
        break;
      }
      if (session.peer_closed()) {
        session.shutdown();
        flush(fd, session);
        break;
      }
    }
    if (!replied && session.handshake_done() && res.plain.size() >= lines.size()) {
      replied = true;
      res.subject = session.peer_subject();
      res.sans = session.peer_sans();
      res.summary = session.connection_summary();
      EXPECT_TRUE(session.write(reply).ok());
      flush(fd, session);
      // Close stdin only once s_client printed the reply, or its EOF handling
      // could race the reply's arrival.
      auto until = Clock::now() + kTimeout;
      while (client.log().find(reply) == std::string::npos && Clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      client.close_stdin();
    }
  }
  res.handshake_done = session.handshake_done();
  if (res.subject.empty()) {
    res.subject = session.peer_subject();
    res.sans = session.peer_sans();
  }
  ::close(fd);
  client.close_stdin();
  client.stop(std::chrono::seconds(5));
  res.client_log = client.log();
  return res;
}

const std::string kLines =
    "<13>1 2024-05-01T12:00:00Z host1 app 1 - - first line\n"
    "<14>1 2024-05-01T12:00:01Z host1 app 1 - - second line, with \xc3\xa9 UTF-8\n"
    "<15>1 2024-05-01T12:00:02Z host1 app 1 - - third\n";

TEST_F(TlsTest, SClientWithoutClientCertificate) {
  auto ctx = context(pki().server_config());
  ASSERT_TRUE(ctx);
  SClientResult r = run_s_client(pki(), ctx, {}, kLines, "reply-from-logseal-1");
  ASSERT_TRUE(r.status.ok()) << r.status.to_string() << "\n" << r.client_log;
  EXPECT_TRUE(r.handshake_done);
  EXPECT_EQ(r.plain, kLines);
  EXPECT_EQ(r.subject, "");
  EXPECT_TRUE(r.sans.empty());
  EXPECT_NE(r.client_log.find("reply-from-logseal-1"), std::string::npos) << r.client_log;
  EXPECT_EQ(r.summary.rfind("TLSv1.3 ", 0), 0u) << r.summary;
}

TEST_F(TlsTest, SClientWithClientCertificate) {
  auto ctx = context(pki().server_config(true, true));
  ASSERT_TRUE(ctx);
  SClientResult r = run_s_client(
      pki(), ctx, {"-cert", pki().path("client.crt"), "-key", pki().path("client.key")}, kLines, "reply-2");
  ASSERT_TRUE(r.status.ok()) << r.status.to_string() << "\n" << r.client_log;
  EXPECT_EQ(r.plain, kLines);
  EXPECT_EQ(r.subject, "CN=sender1");
  EXPECT_EQ(r.sans, std::vector<std::string>{"DNS:sender1.example"});
  EXPECT_NE(r.client_log.find("reply-2"), std::string::npos) << r.client_log;
}

TEST_F(TlsTest, SClientTls12WithClientCertificate) {
  auto ctx = context(pki().server_config(true, true));
  ASSERT_TRUE(ctx);
  SClientResult r = run_s_client(
      pki(), ctx, {"-tls1_2", "-cert", pki().path("client.crt"), "-key", pki().path("client.key")}, kLines,
      "reply-3");
  ASSERT_TRUE(r.status.ok()) << r.status.to_string() << "\n" << r.client_log;
  EXPECT_EQ(r.plain, kLines);
  EXPECT_EQ(r.subject, "CN=sender1");
  EXPECT_EQ(r.summary.rfind("TLSv1.2 ", 0), 0u) << r.summary;
}

TEST_F(TlsTest, SClientMissingRequiredCertificateIsRefused) {
  auto ctx = context(pki().server_config(true, true));
  ASSERT_TRUE(ctx);
  SClientResult r = run_s_client(pki(), ctx, {}, kLines, "never");
  ASSERT_FALSE(r.status.ok());
  EXPECT_EQ(r.status.code(), Code::kInvalidArgument);
  EXPECT_NE(r.status.message().find("peer did not present a certificate"), std::string::npos)
      << r.status.message();
  EXPECT_TRUE(r.plain.empty());
  EXPECT_EQ(r.subject, "");
  // The alert reached the client.
  EXPECT_NE(r.client_log.find("alert"), std::string::npos) << r.client_log;
}

TEST_F(TlsTest, SClientCertificateFromAnotherCaIsRefused) {
  for (bool require : {true, false}) {
    auto ctx = context(pki().server_config(true, require));
    ASSERT_TRUE(ctx);
    SClientResult r = run_s_client(
        pki(), ctx, {"-cert", pki().path("intruder.crt"), "-key", pki().path("intruder.key")}, kLines, "never");
    ASSERT_FALSE(r.status.ok()) << "require=" << require;
    EXPECT_NE(r.status.message().find("certificate verify failed: "), std::string::npos) << r.status.message();
    EXPECT_TRUE(r.plain.empty());
    EXPECT_EQ(r.subject, "") << "an unverified identity must not show";
  }
}

}  // namespace
}  // namespace logseal::ingest
