#include "ingest/http_events.h"

#include <fcntl.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "engine/export.h"
#include "ingest/json_events.h"
#include "ingest/net_address.h"
#include "ingest/syslog_access.h"

namespace logseal::ingest {

namespace {

constexpr size_t kReadChunkBytes = 64 * 1024;
constexpr size_t kReadPerWakeBytes = 4 * kReadChunkBytes;  // fairness between connections
constexpr int kEpollEventsMax = 256;
constexpr uint64_t kListenerTag = 1ull << 62;
constexpr uint64_t kWakeTag = 1ull << 61;
constexpr int64_t kStopGraceNs = 5'000'000'000;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
int64_t unix_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const char* reason_phrase(int code) {
  switch (code) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// The durable callback outlives the server (a stream keeps its callbacks): it
// writes the eventfd only while the loop holds it open.
struct Waker {
  std::mutex mu;
  int fd = -1;
  void wake() {
    std::lock_guard<std::mutex> lk(mu);
    if (fd < 0) return;
    uint64_t one = 1;
    ssize_t n = ::write(fd, &one, sizeof one);
    (void)n;  // EAGAIN: the counter is non-zero already; the loop will wake
  }
};

}  // namespace

struct HttpEventServer::Loop {
  HttpEventServer* server = nullptr;
  engine::Store* store = nullptr;
  HttpServerOptions opt;
  std::shared_ptr<Waker> waker = std::make_shared<Waker>();
  int epfd = -1;
  int evfd = -1;
  std::vector<int> listen_fds;
  std::vector<int64_t> accept_retry_ns;  // per listener: re-add to epoll at (0: active)
  std::vector<engine::Stream*> streams;  // 2 per listener: events, k8s
  std::atomic<bool> stop{false};
  JsonEventParser json;
  http_parser_settings settings{};
  std::vector<JsonEvent> events;  // scratch of one request
  std::string read_buf;
  size_t buffered_bytes = 0;      // request bodies held, all connections
  unsigned in_flight = 0;         // requests waiting for durability

  struct Conn {
    Loop* loop = nullptr;
    uint64_t id = 0;
    int fd = -1;
    size_t listener = 0;
    std::string source;
    std::unique_ptr<TlsSession> tls;
    bool identity_known = false;
    http_parser parser{};
    // The request being parsed.
    std::string url, hfield, hvalue, content_type, content_encoding, authorization;
    sockaddr_storage peer{};  // for access control by source address
    bool in_value = false;
    bool expect_continue = false;
    size_t header_bytes = 0;
    std::string body;
    bool message_complete = false;
    int reject = 0;  // status to answer, set by a parser callback that stops parsing
    std::string reject_reason;
    std::string in;  // plaintext read, not yet parsed (pipelined while waiting)
    // Waiting for durability.
    bool waiting = false;
    engine::Stream* wait_stream = nullptr;
    uint64_t wait_index = 0;
    int64_t wait_deadline_ns = 0;
    std::string ok_body;
    bool keep_alive = true;
    // Output.
    std::string out;
    size_t out_pos = 0;
    bool close_after_send = false;
    bool read_closed = false;
    int64_t last_active_ns = 0;
    uint32_t mask = 0;
  };
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns;
  std::unordered_set<uint64_t> waiting;
  uint64_t next_id = 1;

  explicit Loop(const HttpServerOptions& o) : opt(o), json(o.event_bytes_max) {
    read_buf.resize(kReadChunkBytes);
    http_parser_settings_init(&settings);
    settings.on_message_begin = on_message_begin;
    settings.on_url = on_url;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
  }

  ~Loop() {
    {
      std::lock_guard<std::mutex> lk(waker->mu);
      waker->fd = -1;
    }
    for (auto& [id, c] : conns) {
      if (c->fd >= 0) ::close(c->fd);
    }
    for (int fd : listen_fds) {
      if (fd >= 0) ::close(fd);
    }
    if (evfd >= 0) ::close(evfd);
    if (epfd >= 0) ::close(epfd);
  }

  void log(const std::string& line) const { store->log(line); }
  ListenerMetrics& metrics_of(const Conn& c, bool k8s) { return *server->metrics_[2 * c.listener + (k8s ? 1 : 0)]; }

  // ---- http-parser callbacks (parser->data is the Conn) ----

  static Conn& conn(http_parser* p) { return *static_cast<Conn*>(p->data); }

  static int reject(Conn& c, int status, std::string why) {
    c.reject = status;
    c.reject_reason = std::move(why);
    return -1;  // stops http_parser_execute with a callback error
  }

  static int on_message_begin(http_parser* p) {
    Conn& c = conn(p);
    c.url.clear();
    c.hfield.clear();
    c.hvalue.clear();
    c.content_type.clear();
    c.content_encoding.clear();
    c.authorization.clear();
    c.in_value = false;
    c.expect_continue = false;
    c.header_bytes = 0;
    c.loop->release_body(c);
    c.message_complete = false;
    return 0;
  }

  static int count_header(Conn& c, size_t n) {
    c.header_bytes += n;
    if (c.header_bytes > c.loop->opt.header_bytes_max) {
      return reject(c, 431, "request headers over " + std::to_string(c.loop->opt.header_bytes_max) + " bytes");
    }
    return 0;
  }

  static int on_url(http_parser* p, const char* at, size_t n) {
    Conn& c = conn(p);
    if (count_header(c, n) != 0) return -1;
    c.url.append(at, n);
    return 0;
  }

  static void finish_header(Conn& c) {
    if (iequals(c.hfield, "content-type")) c.content_type = c.hvalue;
    if (iequals(c.hfield, "content-encoding")) c.content_encoding = c.hvalue;
    if (iequals(c.hfield, "authorization")) c.authorization = c.hvalue;
    if (iequals(c.hfield, "expect") && iequals(c.hvalue, "100-continue")) c.expect_continue = true;
    c.hfield.clear();
    c.hvalue.clear();
  }

  static int on_header_field(http_parser* p, const char* at, size_t n) {
    Conn& c = conn(p);
    if (count_header(c, n) != 0) return -1;
    if (c.in_value) finish_header(c);
    c.in_value = false;
    c.hfield.append(at, n);
    return 0;
  }

  static int on_header_value(http_parser* p, const char* at, size_t n) {
    Conn& c = conn(p);
    if (count_header(c, n) != 0) return -1;
    c.in_value = true;
    c.hvalue.append(at, n);
    return 0;
  }

  // Routing and the limits that can be decided before the body is read: refusing
  // then spares reading (and buffering) a body that would be refused anyway.
  static int on_headers_complete(http_parser* p) {
    Conn& c = conn(p);
    Loop& l = *c.loop;
    if (c.in_value) finish_header(c);
    std::string_view path = std::string_view(c.url).substr(0, c.url.find('?'));
    if (path != "/v1/events" && path != "/v1/k8s-audit") {
      return reject(c, 404, "no such endpoint (POST /v1/events or /v1/k8s-audit)");
    }
    if (p->method != HTTP_POST) return reject(c, 405, "only POST is allowed here");
    if (l.opt.access != nullptr && l.opt.access->enabled()) {
      if (int refused = l.check_access(c, path == "/v1/k8s-audit"); refused != 0) return refused;
    }
    // The raw bytes sealed are the bytes of the JSON as sent; a compressed body
    // would be neither parseable nor what the sender meant to seal.
    if (!c.content_encoding.empty() && !iequals(c.content_encoding, "identity")) {
      return reject(c, 415, "Content-Encoding '" + c.content_encoding + "' is not supported; send the JSON uncompressed");
    }
    bool has_length = (p->flags & F_CONTENTLENGTH) != 0;
    uint64_t length = has_length ? p->content_length : 0;
    if (has_length && length > l.opt.body_bytes_max) {
      return reject(c, 413, "body of " + std::to_string(length) + " bytes is over the limit of " +
                                std::to_string(l.opt.body_bytes_max));
    }
    if (l.in_flight >= l.opt.requests_in_flight_max) {
      return reject(c, 503, "too many requests waiting for durability; retry");
    }
    if (l.buffered_bytes + length > l.opt.buffered_bytes_max) return reject(c, 503, "too many bodies buffered; retry");
    // One allocation for a body of known length (plus simdjson's padding).
    if (has_length) c.body.reserve(length + kJsonPaddingBytes);
    if (c.expect_continue) l.emit(c, "HTTP/1.1 100 Continue\r\n\r\n");
    return 0;
  }

  static int on_body(http_parser* p, const char* at, size_t n) {
    Conn& c = conn(p);
    Loop& l = *c.loop;
    if (c.body.size() + n > l.opt.body_bytes_max) {
      return reject(c, 413, "body is over the limit of " + std::to_string(l.opt.body_bytes_max) + " bytes");
    }
    if (l.buffered_bytes + n > l.opt.buffered_bytes_max) return reject(c, 503, "too many bodies buffered; retry");
    c.body.append(at, n);
    l.buffered_bytes += n;
    return 0;
  }

  static int on_message_complete(http_parser* p) {
    Conn& c = conn(p);
    c.message_complete = true;
    // Pausing makes http_parser_execute return right after this message, so a
    // pipelined next request waits until this one is answered.
    http_parser_pause(p, 1);
    return 0;
  }

  // Access control of one request: 0 when allowed, else reject()'s -1 (401/403).
  int check_access(Conn& c, bool k8s) {
    const AccessPolicy& policy = *opt.access;
    const std::string& stream = streams[2 * c.listener + (k8s ? 1 : 0)]->name();
    std::string_view token;
    std::string_view auth = c.authorization;
    if (auth.size() > 7 && iequals(auth.substr(0, 7), "bearer ")) {
      token = auth.substr(7);
      while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
      while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
    }
    TlsPeer peer;
    if (c.tls) peer = TlsPeer{c.tls->peer_subject(), std::span<const std::string>(c.tls->peer_sans())};
    const sockaddr* sa = reinterpret_cast<const sockaddr*>(&c.peer);
    bool credential = !auth.empty() || !peer.subject.empty() || !peer.sans.empty();
    // An Authorization header that is not a bearer token is a credential too:
    // it identifies no one rather than falling back to the source address.
    bool other_auth = !auth.empty() && token.empty() && peer.subject.empty() && peer.sans.empty();
    const Identity* who = other_auth ? nullptr : policy.identify(c.tls ? &peer : nullptr, token, sa);
    const std::string& name = server->specs_[c.listener].name;
    if (who == nullptr) {
      std::string detail = !peer.subject.empty() ? std::string(peer.subject)
                           : !auth.empty()       ? std::string("unknown or malformed bearer token")
                                                 : std::string();
      opt.refusals->refuse(name, nullptr, host_text(sa), stream, RefusalReason::kUnknownIdentity, "request", detail);
      return reject(c, 401,
                    credential ? "the credential presented identifies no one"
                               : "no identity: send Authorization: Bearer TOKEN or a client certificate");
    }
    if (!policy.allowed(who, stream, Action::kIngest)) {
      opt.refusals->refuse(name, who, host_text(sa), stream, RefusalReason::kNotAllowed, "request");
      return reject(c, 403, "identity " + who->name + " may not ingest into stream " + stream);
    }
    return 0;
  }

  void release_body(Conn& c) {
    buffered_bytes -= c.body.size();
    c.body.clear();
    if (c.body.capacity() > kReadChunkBytes) std::string().swap(c.body);
  }

  // ---- output ----

  void emit(Conn& c, std::string_view plain) {
    if (c.tls) {
      if (!c.tls->write(plain).ok()) return;
      std::string_view pending = c.tls->pending_output();
      c.out.append(pending);
      c.tls->consume_output(pending.size());
    } else {
      c.out.append(plain);
    }
  }

  void respond(Conn& c, int status, const std::string& body, bool keep_alive, bool retry_after = false) {
    if (status >= 400) {
      bool k8s = std::string_view(c.url).substr(0, c.url.find('?')) == "/v1/k8s-audit";
      metrics_of(c, k8s).refused_requests.fetch_add(1, std::memory_order_relaxed);
    }
    std::string r = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) +
                    "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    if (retry_after) r += "Retry-After: 1\r\n";
    if (status == 405) r += "Allow: POST\r\n";
    if (status == 401) r += "WWW-Authenticate: Bearer\r\n";
    if (!keep_alive) r += "Connection: close\r\n";
    r += "\r\n";
    r += body;
    emit(c, r);
    if (!keep_alive) {
      c.close_after_send = true;
      if (c.tls) {
        c.tls->shutdown();
        std::string_view pending = c.tls->pending_output();
        c.out.append(pending);
        c.tls->consume_output(pending.size());
      }
    }
  }

  static std::string error_body(const std::string& why, long long offset = -1) {
    std::string b = "{\"error\":";
    engine::append_json_escaped_lossy(why, b);
    if (offset >= 0) b += ",\"offset\":" + std::to_string(offset);
    b += "}";
    return b;
  }

  // ---- requests ----

  void handle_request(Conn& c) {
    c.message_complete = false;
    c.keep_alive = http_should_keep_alive(&c.parser) != 0;
    bool k8s = std::string_view(c.url).substr(0, c.url.find('?')) == "/v1/k8s-audit";
    engine::Stream* stream = streams[2 * c.listener + (k8s ? 1 : 0)];
    ListenerMetrics& m = metrics_of(c, k8s);
    auto refuse = [&](int status, const std::string& why, long long offset, bool retry) {
      release_body(c);
      respond(c, status, error_body(why, offset), c.keep_alive, retry);
    };
    if (in_flight >= opt.requests_in_flight_max) return refuse(503, "too many requests waiting for durability; retry", -1, true);
    // simdjson reads up to kJsonPaddingBytes past the data.
    c.body.reserve(c.body.size() + kJsonPaddingBytes);
    JsonBodyError err;
    if (!json.parse_body(c.body, body_form_from_content_type(c.content_type), k8s, events, err)) {
      log("<5>" + c.source + ": " + c.url + ": refused: " + err.reason + " (byte " + std::to_string(err.offset_bytes) + ")");
      bool too_large = err.kind == JsonBodyError::Kind::kTooLarge;
      return refuse(too_large ? 413 : 400, err.reason, static_cast<long long>(err.offset_bytes), false);
    }
    if (events.empty()) {
      release_body(c);
      return respond(c, 200, "{\"accepted\":0,\"stream\":" + engine::json_escape(stream->name()) + "}", c.keep_alive);
    }
    Status health = stream->health();
    if (!health.ok()) return refuse(503, "stream " + stream->name() + " is not accepting records: " + health.message(), -1, true);
    int64_t received = unix_now_ns();
    uint64_t first = 0, last = 0;
    for (size_t i = 0; i < events.size(); ++i) {
      format::RecordView r;
      r.received_ns = received;
      r.source = c.source;
      r.fields = events[i].fields;
      r.raw = std::string_view(c.body).substr(events[i].offset_bytes, events[i].size_bytes);
      // The first record must not block: a full queue then refuses the whole
      // request with nothing appended. Once one is in, the rest follow (blocking
      // like the syslog threads do), so a request is never sealed in part.
      auto idx = stream->append(r, i > 0);
      if (!idx.ok()) {
        m.append_errors.fetch_add(1, std::memory_order_relaxed);
        if (i == 0 && idx.status().code() == Code::kResourceExhausted) {
          return refuse(503, "stream " + stream->name() + " queue is full; retry", -1, true);
        }
        log("<3>" + c.source + ": appending to stream " + stream->name() + " failed after " + std::to_string(i) +
            " records: " + idx.status().to_string());
        c.keep_alive = false;
        return refuse(i == 0 ? 503 : 500, "stream " + stream->name() + ": " + idx.status().message(), -1, i == 0);
      }
      if (i == 0) first = idx.value();
      last = idx.value();
    }
    m.messages.fetch_add(events.size(), std::memory_order_relaxed);
    m.bytes.fetch_add(c.body.size(), std::memory_order_relaxed);
    release_body(c);
    c.ok_body = "{\"accepted\":" + std::to_string(events.size()) + ",\"stream\":" + engine::json_escape(stream->name()) +
                ",\"first_index\":" + std::to_string(first) + ",\"last_index\":" + std::to_string(last) + "}";
    c.waiting = true;
    c.wait_stream = stream;
    c.wait_index = last;
    c.wait_deadline_ns = now_ns() + int64_t{opt.durable_timeout_ms} * 1'000'000;
    ++in_flight;
    waiting.insert(c.id);
  }

  // Answers c's request if its last record is durable (or can never be). True
  // when it was answered.
  bool check_durable(Conn& c) {
    if (!c.waiting) return false;
    int status = 0;
    std::string body;
    if (c.wait_stream->durable_size() > c.wait_index) {
      status = 200;
      body = std::move(c.ok_body);
    } else if (!c.wait_stream->health().ok() || now_ns() > c.wait_deadline_ns) {
      status = 503;
      body = error_body("records appended but not confirmed durable: " +
                        (c.wait_stream->health().ok() ? std::string("timed out") : c.wait_stream->health().message()));
      c.keep_alive = false;
      log("<3>" + c.source + ": request to stream " + c.wait_stream->name() + " answered 503: not durable");
    } else {
      return false;
    }
    c.waiting = false;
    --in_flight;
    waiting.erase(c.id);
    respond(c, status, body, c.keep_alive && !c.read_closed, status == 503);
    return true;
  }

  // Parses buffered plaintext until it runs out, a request waits, or an error.
  void parse_pending(Conn& c) {
    while (!c.waiting && !c.close_after_send && !c.in.empty()) {
      size_t n = http_parser_execute(&c.parser, &settings, c.in.data(), c.in.size());
      http_errno e = HTTP_PARSER_ERRNO(&c.parser);
      c.in.erase(0, std::min(n, c.in.size()));
      if (e == HPE_PAUSED) {
        http_parser_pause(&c.parser, 0);
        if (c.message_complete) handle_request(c);
        continue;
      }
      if (e != HPE_OK) {
        int status = c.reject != 0 ? c.reject : 400;
        std::string why = c.reject != 0 ? c.reject_reason : std::string("bad HTTP: ") + http_errno_description(e);
        bool retry = status == 503;
        release_body(c);
        c.in.clear();
        // Access refusals are logged (rate-limited) by the RefusalLog.
        if (status != 401 && status != 403) log("<5>" + c.source + ": " + std::to_string(status) + ": " + why);
        // The rest of the stream cannot be framed any more: answer and close.
        respond(c, status, error_body(why), false, retry);
        c.reject = 0;
        break;
      }
      if (n == 0) break;
    }
  }

  // ---- connections ----

  void set_mask(Conn& c) {
    uint32_t want = 0;
    if (!c.waiting && !c.close_after_send && !c.read_closed) want |= EPOLLIN;
    if (c.out_pos < c.out.size()) want |= EPOLLOUT;
    if (want == c.mask) return;
    epoll_event ev{};
    ev.events = want;
    ev.data.u64 = c.id;
    ::epoll_ctl(epfd, EPOLL_CTL_MOD, c.fd, &ev);
    c.mask = want;
  }

  void close_conn(uint64_t id) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    Conn& c = *it->second;
    if (c.waiting) {
      --in_flight;
      waiting.erase(id);
    }
    release_body(c);
    ::epoll_ctl(epfd, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    server->metrics_[2 * c.listener]->connections_open.fetch_sub(1, std::memory_order_relaxed);
    conns.erase(it);
  }

  // Sends what is queued; closes when done and asked to. False when closed.
  bool flush(Conn& c) {
    while (c.out_pos < c.out.size()) {
      ssize_t n = ::send(c.fd, c.out.data() + c.out_pos, c.out.size() - c.out_pos, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        close_conn(c.id);
        return false;
      }
      c.out_pos += static_cast<size_t>(n);
    }
    if (c.out_pos == c.out.size()) {
      c.out.clear();
      c.out_pos = 0;
      if (c.close_after_send || (c.read_closed && !c.waiting)) {
        close_conn(c.id);
        return false;
      }
    }
    set_mask(c);
    return true;
  }

  void on_readable(Conn& c) {
    size_t total = 0;
    while (total < kReadPerWakeBytes && !c.waiting && !c.close_after_send) {
      ssize_t n = ::recv(c.fd, read_buf.data(), read_buf.size(), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        close_conn(c.id);
        return;
      }
      if (n == 0) {
        c.read_closed = true;
        break;
      }
      total += static_cast<size_t>(n);
      c.last_active_ns = now_ns();
      std::string_view data(read_buf.data(), static_cast<size_t>(n));
      if (c.tls) {
        std::string plain;
        Status st = c.tls->feed(data, plain);
        std::string_view pending = c.tls->pending_output();
        c.out.append(pending);
        c.tls->consume_output(pending.size());
        if (c.tls->handshake_done() && !c.identity_known) {
          c.identity_known = true;
          if (!c.tls->peer_subject().empty()) {
            c.source += " subject=" + c.tls->peer_subject();
            for (const auto& san : c.tls->peer_sans()) c.source += " san=" + san;
          }
        }
        if (!st.ok()) {
          log("<4>" + c.source + ": closing: " + st.message());
          c.close_after_send = true;
          break;
        }
        c.in.append(plain);
        if (c.tls->peer_closed()) c.read_closed = true;
      } else {
        c.in.append(data);
      }
      parse_pending(c);
      if (c.read_closed) break;
    }
    if (c.read_closed && !c.waiting && c.out_pos == c.out.size()) {
      close_conn(c.id);
      return;
    }
    flush(c);
  }

  void accept_all(size_t l) {
    while (true) {
      sockaddr_storage peer{};
      socklen_t len = sizeof peer;
      int fd = ::accept4(listen_fds[l], reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // The connection stays in the backlog; look again in a moment rather
          // than spin on a listener that stays readable.
          ::epoll_ctl(epfd, EPOLL_CTL_DEL, listen_fds[l], nullptr);
          accept_retry_ns[l] = now_ns() + 100'000'000;
          log("<4>accept on " + server->bound_[l] + ": " + std::strerror(errno) + "; retrying in 100 ms");
        }
        return;
      }
      ListenerMetrics& m = *server->metrics_[2 * l];
      if (conns.size() >= opt.connections_max || stop.load()) {
        m.refused_connections.fetch_add(1, std::memory_order_relaxed);
        if (!server->specs_[l].tls) {
          static const char kBusy[] =
              "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
          ssize_t n = ::send(fd, kBusy, sizeof kBusy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
          (void)n;
        }
        ::close(fd);
        continue;
      }
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto c = std::make_unique<Conn>();
      c->loop = this;
      c->id = next_id++;
      c->fd = fd;
      c->listener = l;
      bool https = server->specs_[l].tls != nullptr;
      c->source = (https ? "https:" : "http:") + address_text(reinterpret_cast<sockaddr*>(&peer));
      c->peer = peer;
      if (https) c->tls = std::make_unique<TlsSession>(server->specs_[l].tls);
      http_parser_init(&c->parser, HTTP_REQUEST);
      c->parser.data = c.get();
      c->last_active_ns = now_ns();
      c->mask = EPOLLIN;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = c->id;
      if (::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        ::close(fd);
        continue;
      }
      m.connections_total.fetch_add(1, std::memory_order_relaxed);
      m.connections_open.fetch_add(1, std::memory_order_relaxed);
      conns[c->id] = std::move(c);
    }
  }

  void check_waiting() {
    std::vector<uint64_t> ids(waiting.begin(), waiting.end());
    for (uint64_t id : ids) {
      auto it = conns.find(id);
      if (it == conns.end()) continue;
      Conn& c = *it->second;
      if (!check_durable(c)) continue;
      // Answered: go on with a pipelined request already read, then send.
      parse_pending(c);
      flush(c);
    }
  }

  void check_idle() {
    if (opt.idle_timeout_s == 0) return;
    int64_t limit = now_ns() - int64_t{opt.idle_timeout_s} * 1'000'000'000;
    std::vector<uint64_t> ids;
    for (auto& [id, c] : conns) {
      if (!c->waiting && c->last_active_ns < limit) ids.push_back(id);
    }
    for (uint64_t id : ids) {
      server->metrics_[2 * conns[id]->listener]->idle_closed.fetch_add(1, std::memory_order_relaxed);
      close_conn(id);
    }
  }

  void run() {
    epoll_event evs[kEpollEventsMax];
    int64_t last_idle = now_ns();
    bool stopping = false;
    int64_t stop_deadline = 0;
    while (true) {
      int n = ::epoll_wait(epfd, evs, kEpollEventsMax, 50);
      if (n < 0 && errno != EINTR) {
        log(std::string("<2>http events: epoll_wait failed: ") + std::strerror(errno));
        break;
      }
      for (int i = 0; i < n; ++i) {
        uint64_t tag = evs[i].data.u64;
        if (tag == kWakeTag) {
          uint64_t v;
          ssize_t r = ::read(evfd, &v, sizeof v);
          (void)r;
          continue;
        }
        if (tag & kListenerTag) {
          if (!stopping) accept_all(static_cast<size_t>(tag & ~kListenerTag));
          continue;
        }
        auto it = conns.find(tag);
        if (it == conns.end()) continue;
        Conn& c = *it->second;
        if (evs[i].events & EPOLLOUT) {
          if (!flush(c)) continue;
        }
        if ((evs[i].events & (EPOLLHUP | EPOLLERR)) && c.waiting) {
          // Reset by the peer while its request waits: the answer cannot arrive,
          // and epoll would report the hang-up on every pass. Its records stay.
          close_conn(c.id);
          continue;
        }
        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
      }
      // Durable progress: cheap to check on every pass (a set of waiting requests).
      check_waiting();
      int64_t now = now_ns();
      for (size_t l = 0; l < listen_fds.size(); ++l) {
        if (accept_retry_ns[l] != 0 && now >= accept_retry_ns[l] && !stopping) {
          accept_retry_ns[l] = 0;
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.u64 = kListenerTag | l;
          ::epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fds[l], &ev);
        }
      }
      if (now - last_idle > 1'000'000'000) {
        check_idle();
        last_idle = now;
      }
      if (stop.load() && !stopping) {
        stopping = true;
        stop_deadline = now + kStopGraceNs;
        for (int fd : listen_fds) ::epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nullptr);
        // Requests already appended are answered once durable; the rest close.
        std::vector<uint64_t> ids;
        for (auto& [id, c] : conns) {
          if (!c->waiting) ids.push_back(id);
        }
        for (uint64_t id : ids) close_conn(id);
      }
      if (stopping) {
        std::vector<uint64_t> done;
        for (auto& [id, c] : conns) {
          if (!c->waiting && c->out_pos == c->out.size()) done.push_back(id);
        }
        for (uint64_t id : done) close_conn(id);
        if (conns.empty() || now > stop_deadline) break;
      }
    }
  }
};

Result<std::unique_ptr<HttpEventServer>> HttpEventServer::start(std::vector<HttpListenerSpec> listeners,
                                                                engine::Store& store, HttpServerOptions options) {
  std::unique_ptr<HttpEventServer> s(new HttpEventServer());
  s->specs_ = std::move(listeners);
  auto loop = std::make_unique<Loop>(options);
  loop->server = s.get();
  loop->store = &store;
  loop->epfd = ::epoll_create1(EPOLL_CLOEXEC);
  if (loop->epfd < 0) return errno_status("epoll_create1", errno);
  loop->evfd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (loop->evfd < 0) return errno_status("eventfd", errno);
  loop->waker->fd = loop->evfd;
  epoll_event wev{};
  wev.events = EPOLLIN;
  wev.data.u64 = kWakeTag;
  ::epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->evfd, &wev);
  std::vector<engine::Stream*> woken;
  for (size_t l = 0; l < s->specs_.size(); ++l) {
    const HttpListenerSpec& spec = s->specs_[l];
    const char* kind = spec.tls ? "https-events" : "http-events";
    LS_ASSIGN_OR_RETURN(int fd, bind_socket(spec.address, true, kind));
    loop->listen_fds.push_back(fd);
    // accept_all() takes connections until EAGAIN: the loop must never block there.
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    s->bound_.push_back(bound_address_of(fd));
    if (s->specs_[l].name.empty()) {
      s->specs_[l].name = std::string(spec.tls ? "https-" : "http-") + s->bound_[l].substr(s->bound_[l].rfind(':') + 1);
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kListenerTag | l;
    ::epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev);
    for (const std::string* name : {&spec.events_stream, &spec.k8s_stream}) {
      LS_ASSIGN_OR_RETURN(engine::Stream * st, store.stream(*name));
      loop->streams.push_back(st);
      auto m = std::make_unique<ListenerMetrics>();
      m->kind = kind;
      m->stream = *name;
      m->name = std::string(kind) + " " + s->bound_[l] + (name == &spec.events_stream ? " /v1/events" : " /v1/k8s-audit");
      s->metrics_.push_back(std::move(m));
      // 2xx waits for durability: the stream's writer wakes the loop after each
      // durable batch (once per stream, however many listeners use it).
      if (std::find(woken.begin(), woken.end(), st) == woken.end()) {
        woken.push_back(st);
        st->add_durable_callback([w = loop->waker](uint64_t) { w->wake(); });
      }
    }
  }
  loop->accept_retry_ns.assign(loop->listen_fds.size(), 0);
  s->loop_ = std::move(loop);
  s->thread_ = std::thread([p = s->loop_.get()] { p->run(); });
  return s;
}

HttpEventServer::~HttpEventServer() { stop(); }

void HttpEventServer::stop() {
  if (!loop_) return;
  loop_->stop.store(true);
  loop_->waker->wake();
  if (thread_.joinable()) thread_.join();
}

}  // namespace logseal::ingest
