// The JSON events listener in-process, over real sockets: HTTP framing edge cases
// (keep-alive, chunked bodies cut anywhere, pipelining, byte-by-byte requests,
// Expect: 100-continue), every refusal status, the bounds, and that 200 comes
// only after the request's records are durable.
#include "ingest/http_events.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <thread>

#include "engine/reader.h"
#include "io/env.h"
#include "io/fake_env.h"
#include "tests/test_util.h"

namespace logseal::ingest {
namespace {

using test::TempDir;

struct Response {
  int status = 0;  // 0: none (closed or timed out)
  std::string headers, body;
  bool has(const std::string& header_line) const { return headers.find(header_line) != std::string::npos; }
};

class Client {
 public:
  explicit Client(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  bool send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // Reads one response (Content-Length framed, as the server always answers).
  Response read(int timeout_ms = 10000) {
    Response r;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (true) {
      size_t end = buf_.find("\r\n\r\n");
      if (end != std::string::npos) {
        std::string head = buf_.substr(0, end + 2);
        size_t cl = head.find("Content-Length: ");
        size_t len = cl == std::string::npos ? 0 : std::stoul(head.substr(cl + 16));
        if (buf_.size() >= end + 4 + len) {
          r.status = std::stoi(head.substr(9, 3));
          r.headers = head;
          r.body = buf_.substr(end + 4, len);
          buf_.erase(0, end + 4 + len);
          return r;
        }
      }
      int left = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count());
      if (left <= 0) return r;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, left) <= 0) return r;
      char b[65536];
      ssize_t n = ::recv(fd_, b, sizeof b, 0);
      if (n <= 0) return r;
      buf_.append(b, static_cast<size_t>(n));
    }
  }
  // True when the server closed the connection (EOF) within the timeout.
  bool closed_by_peer(int timeout_ms = 5000) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return false;
    char b[4096];
    return ::recv(fd_, b, sizeof b, 0) == 0;
  }

 private:
  int fd_ = -1;
  std::string buf_;
};

bool test_wait(const std::function<bool()>& pred, int timeout_ms = 10000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

std::string post(const std::string& path, const std::string& body, const std::string& content_type = "",
                 const std::string& extra = "") {
  return "POST " + path + " HTTP/1.1\r\nHost: x\r\n" +
         (content_type.empty() ? "" : "Content-Type: " + content_type + "\r\n") + extra +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string chunked(const std::string& path, const std::vector<std::string>& chunks) {
  std::string r = "POST " + path + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (auto& c : chunks) {
    char n[32];
    std::snprintf(n, sizeof n, "%zx\r\n", c.size());
    r += n + c + "\r\n";
  }
  return r + "0\r\n\r\n";
}

class HttpEventsTest : public ::testing::Test {
 protected:
  void start(HttpServerOptions opt = {}, uint32_t batch_delay_us = 200, io::Env* env = nullptr) {
    key_ = test::make_soft_key(tmp_.sub("key"));
    engine::StoreOptions so = test::small_options();
    so.stream.record_bytes_max = 1 << 20;
    so.stream.segment_bytes = 1 << 20;
    so.stream.batch_bytes = 1 << 16;
    so.stream.batch_delay_us = batch_delay_us;
    so.immutable_segments = false;
    auto store = engine::Store::open(env ? *env : io::posix_env(), env ? "/data" : tmp_.sub("data"), key_.signer(), so);
    ASSERT_TRUE(store.ok()) << store.status().to_string();
    store_ = std::move(store).value();
    HttpListenerSpec spec;
    spec.address = "127.0.0.1:0";
    auto s = HttpEventServer::start({spec}, *store_, opt);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    server_ = std::move(s).value();
    std::string addr = server_->bound_address(0);
    port_ = static_cast<uint16_t>(std::stoi(addr.substr(addr.rfind(':') + 1)));
    events_ = store_->stream("events").value();
  }
  void TearDown() override {
    if (server_) server_->stop();
    if (store_) {
      EXPECT_TRUE(store_->close().ok());
    }
  }
  std::map<uint64_t, std::string> raws(const std::string& stream = "events") {
    return test::read_raws(io::posix_env(), tmp_.sub("data"), stream);
  }

  TempDir tmp_{"http_events_test"};
  test::TestKey key_;
  std::unique_ptr<engine::Store> store_;
  std::unique_ptr<HttpEventServer> server_;
  engine::Stream* events_ = nullptr;
  uint16_t port_ = 0;
};

TEST_F(HttpEventsTest, KeepAliveChunkedPipelinedAndByteByByte) {
  start();
  Client c(port_);
  ASSERT_TRUE(c.ok());
  // 1: NDJSON by Content-Type.
  ASSERT_TRUE(c.send(post("/v1/events", "{\"a\":1}\n{\"a\":2}\n", "application/x-ndjson")));
  Response r = c.read();
  ASSERT_EQ(r.status, 200) << r.headers << r.body;
  EXPECT_EQ(r.body, "{\"accepted\":2,\"stream\":\"events\",\"first_index\":0,\"last_index\":1}");
  // 2: chunked, chunks cut inside JSON tokens.
  ASSERT_TRUE(c.send(chunked("/v1/events", {"[{\"b\":", "\"x\"},{\"b\"", ":\"y\"},{\"b\":\"z\"}]"})));
  r = c.read();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("\"accepted\":3"), std::string::npos) << r.body;
  // 3: two requests in one write (pipelined): answered in order.
  ASSERT_TRUE(c.send(post("/v1/events", "{\"c\":1}", "application/json") + post("/v1/events", "{\"c\":2}")));
  r = c.read();
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"first_index\":5"), std::string::npos) << r.body;
  r = c.read();
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"first_index\":6"), std::string::npos) << r.body;
  // 4: one byte per send.
  std::string req = post("/v1/events?x=1", "{\"d\":\"slow\"}");
  for (char ch : req) {
    ASSERT_TRUE(c.send(std::string(1, ch)));
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  r = c.read();
  ASSERT_EQ(r.status, 200) << r.body;
  // 5: Expect: 100-continue gets the interim answer before the body is sent.
  std::string body = "{\"e\":1}";
  ASSERT_TRUE(c.send("POST /v1/events HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n"));
  r = c.read();
  ASSERT_EQ(r.status, 100);
  ASSERT_TRUE(c.send(body));
  r = c.read();
  ASSERT_EQ(r.status, 200) << r.body;

  server_->stop();
  ASSERT_TRUE(store_->close().ok());
  auto got = raws();
  std::vector<std::string> want = {"{\"a\":1}", "{\"a\":2}", "{\"b\":\"x\"}",    "{\"b\":\"y\"}", "{\"b\":\"z\"}",
                                   "{\"c\":1}", "{\"c\":2}", "{\"d\":\"slow\"}", "{\"e\":1}"};
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(got[i], want[i]) << i;
  store_.reset();
}

TEST_F(HttpEventsTest, OkComesOnlyAfterTheRecordsAreDurable) {
  // A long batch delay opens a wide window between append and durable.
  start({}, 300 * 1000);
  Client c(port_);
  for (int i = 0; i < 3; ++i) {
    std::string body;
    for (int j = 0; j < 10; ++j) body += "{\"i\":" + std::to_string(i * 10 + j) + "}\n";
    ASSERT_TRUE(c.send(post("/v1/events", body, "application/x-ndjson")));
    Response r = c.read();
    ASSERT_EQ(r.status, 200) << r.body;
    // The answer names the last index; it must be durable by now.
    size_t at = r.body.find("\"last_index\":");
    ASSERT_NE(at, std::string::npos);
    uint64_t last = std::stoull(r.body.substr(at + 13));
    EXPECT_EQ(last, static_cast<uint64_t>(i * 10 + 9));
    EXPECT_GT(events_->durable_size(), last);
  }
}

TEST_F(HttpEventsTest, RefusalsAndTheirStatus) {
  HttpServerOptions opt;
  opt.body_bytes_max = 4096;
  opt.header_bytes_max = 2048;
  start(opt);
  {
    Client c(port_);
    ASSERT_TRUE(c.send("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_EQ(c.read().status, 404);
  }
  {
    Client c(port_);
    ASSERT_TRUE(c.send("GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n"));
    Response r = c.read();
    EXPECT_EQ(r.status, 405);
    EXPECT_TRUE(r.has("Allow: POST"));
  }
  {
    // Over the limit by Content-Length: refused before the body is sent.
    Client c(port_);
    ASSERT_TRUE(c.send("POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"));
    Response r = c.read();
    EXPECT_EQ(r.status, 413);
    EXPECT_TRUE(c.closed_by_peer());
  }
  {
    // Over the limit while reading a chunked body.
    Client c(port_);
    ASSERT_TRUE(c.send(chunked("/v1/events", {"[" + std::string(3000, ' '), std::string(3000, ' ') + "]"})));
    EXPECT_EQ(c.read().status, 413);
  }
  {
    Client c(port_);
    ASSERT_TRUE(c.send("POST /v1/events HTTP/1.1\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n"));
    EXPECT_EQ(c.read().status, 431);
  }
  {
    Client c(port_);
    ASSERT_TRUE(c.send(post("/v1/events", "\x1f\x8b...", "application/json", "Content-Encoding: gzip\r\n")));
    EXPECT_EQ(c.read().status, 415);
  }
  {
    Client c(port_);
    ASSERT_TRUE(c.send("this is not HTTP\r\n\r\n"));
    Response r = c.read();
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find("bad HTTP"), std::string::npos) << r.body;
  }
  {
    // Malformed JSON: 400 with the offset; the connection stays usable; nothing
    // of the request is appended, not even its valid first event.
    Client c(port_);
    ASSERT_TRUE(c.send(post("/v1/events", "{\"ok\":1}\n{\"bad\":tru}\n", "application/x-ndjson")));
    Response r = c.read();
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find("\"offset\":"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("event 2"), std::string::npos) << r.body;
    ASSERT_TRUE(c.send(post("/v1/events", "{\"after\":1}")));
    r = c.read();
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find("\"first_index\":0"), std::string::npos) << r.body;
  }
  {
    Client c(port_);
    ASSERT_TRUE(c.send(
        post("/v1/k8s-audit", "{\"kind\":\"EventList\",\"apiVersion\":\"v1\",\"items\":[]}", "application/json")));
    Response r = c.read();
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find("audit.k8s.io"), std::string::npos) << r.body;
  }
  EXPECT_EQ(events_->stats().records, 1u);
}

TEST_F(HttpEventsTest, OverloadAnswers503WithRetryAfter) {
  HttpServerOptions opt;
  opt.requests_in_flight_max = 1;
  opt.connections_max = 2;
  io::FakeEnv env(11);
  start(opt, 200, &env);
  env.hold_writes(true);  // a's request waits for durability until released
  Client a(port_), b(port_);
  ASSERT_TRUE(a.send(post("/v1/events", "{\"a\":1}")));
  ASSERT_TRUE(test_wait([&] { return events_->stats().records == 1; }));
  // a's request waits for durability: the one slot is taken.
  ASSERT_TRUE(b.send(post("/v1/events", "{\"b\":1}")));
  Response rb = b.read();
  EXPECT_EQ(rb.status, 503) << rb.body;
  EXPECT_TRUE(rb.has("Retry-After: 1"));
  env.hold_writes(false);
  EXPECT_EQ(a.read().status, 200);
  // b was closed with its 503 (its body was never read); a stays open. With c1
  // that makes connections_max, so c2 is answered 503 and closed.
  Client c1(port_);
  Client c2(port_);
  Response rc = c2.read();
  EXPECT_EQ(rc.status, 503);
  EXPECT_TRUE(rc.has("Retry-After: 1"));
  EXPECT_TRUE(c2.closed_by_peer());
  // c1 was accepted: it is served.
  ASSERT_TRUE(c1.send(post("/v1/events", "{\"c\":1}")));
  EXPECT_EQ(c1.read().status, 200);
  EXPECT_EQ(events_->stats().records, 2u);
  // The store runs on env, which ends with this test.
  server_->stop();
  EXPECT_TRUE(store_->close().ok());
  server_.reset();
  store_.reset();
}

TEST_F(HttpEventsTest, AFailedWriteIsNeverAnswered200) {
  io::FakeEnv env(3);
  start({}, 200, &env);
  Client c(port_);
  ASSERT_TRUE(c.send(post("/v1/events", "{\"a\":1}")));
  ASSERT_EQ(c.read().status, 200);
  // The batch holding the next request's record fails: the stream stops, and the
  // request that waits for it is answered 503, never 200.
  env.fail_next_write();
  ASSERT_TRUE(c.send(post("/v1/events", "{\"b\":1}")));
  Response r = c.read();
  EXPECT_EQ(r.status, 503) << r.body;
  // The failed write is the batch's (the waiting request is answered 503), or a
  // checkpoint's just before it (the request is refused before its append):
  // either way 503, and the record is not durable.
  EXPECT_TRUE(r.body.find("not confirmed durable") != std::string::npos ||
              r.body.find("not accepting records") != std::string::npos ||
              r.body.find("has stopped") != std::string::npos)
      << r.body;
  EXPECT_EQ(events_->durable_size(), 1u);
  // Later requests are refused before anything is appended.
  Client d(port_);
  ASSERT_TRUE(d.send(post("/v1/events", "{\"c\":1}")));
  r = d.read();
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_TRUE(r.has("Retry-After: 1"));
  EXPECT_NE(r.body.find("not accepting records"), std::string::npos) << r.body;
  server_->stop();
  EXPECT_FALSE(store_->close().ok());  // the stream failed; close says so
  store_.reset();
}

TEST_F(HttpEventsTest, ConnectionCloseAndHttp10AreHonoured) {
  start();
  Client c(port_);
  ASSERT_TRUE(c.send(post("/v1/events", "{\"a\":1}", "", "Connection: close\r\n")));
  Response r = c.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.has("Connection: close"));
  EXPECT_TRUE(c.closed_by_peer());
  Client d(port_);
  ASSERT_TRUE(d.send("POST /v1/events HTTP/1.0\r\nContent-Length: 7\r\n\r\n{\"b\":2}"));
  r = d.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(d.closed_by_peer());
  // Both Content-Length and chunked: refused as bad HTTP (request smuggling).
  Client e(port_);
  ASSERT_TRUE(
      e.send("POST /v1/events HTTP/1.1\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n"
             "7\r\n{\"c\":3}\r\n0\r\n\r\n"));
  EXPECT_EQ(e.read().status, 400);
  EXPECT_EQ(events_->stats().records, 2u);
}

}  // namespace
}  // namespace logseal::ingest
