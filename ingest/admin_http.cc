#include "ingest/admin_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <system_error>

#include "engine/export.h"
#include "ingest/field_filter.h"
#include "ingest/net_address.h"

namespace logseal::ingest {

const char* api_action_name(ApiAction a) {
  switch (a) {
    case ApiAction::kRead:
      return "read";
    case ApiAction::kVerify:
      return "verify";
    case ApiAction::kCheckpoint:
      return "checkpoint";
    case ApiAction::kAdmin:
      return "admin";
  }
  return "?";
}

Result<std::unique_ptr<AdminHttp>> AdminHttp::start(const std::string& address, AdminHandlers handlers) {
  std::unique_ptr<AdminHttp> a(new AdminHttp());
  a->handlers_ = std::move(handlers);
  LS_ASSIGN_OR_RETURN(a->listen_fd_, listen_tcp(address, "http"));
  a->bound_ = bound_address_of(a->listen_fd_);
  a->thread_ = std::thread([p = a.get()] { p->run(); });
  return a;
}

AdminHttp::~AdminHttp() { stop(); }

void AdminHttp::stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  // Connection threads notice stop_ within their poll interval (an export
  // between two chunks).
  while (active_.load() > 0) ::usleep(10 * 1000);
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
}

namespace {

std::string peer_of(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (ss.ss_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  if (ss.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
    return "[" + std::string(host) + "]:" + std::to_string(port);
  }
  return "unknown";
}

}  // namespace

void AdminHttp::run() {
  while (!stop_.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    int rc = ::poll(&p, 1, 200);
    if (rc <= 0) continue;
    sockaddr_storage ss{};
    socklen_t ss_len = sizeof ss;
    int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &ss_len, SOCK_CLOEXEC);
    if (fd < 0) {
      // Out of descriptors (EMFILE/ENFILE) or a connection reset before accept:
      // back off instead of spinning on a listener that stays readable.
      ::usleep(100 * 1000);
      continue;
    }
    if (active_.load() >= kConnectionsMax) {
      static const char kBusy[] =
          "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      ::send(fd, kBusy, sizeof kBusy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      ::close(fd);
      continue;
    }
    // A client that stops reading an export gives up its thread after this.
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    active_.fetch_add(1);
    try {
      std::thread([this, fd, peer = peer_of(ss)] {
        serve(fd, peer);
        ::close(fd);
        active_.fetch_sub(1);
      }).detach();
    } catch (const std::system_error&) {
      // No thread to be had (EAGAIN under resource exhaustion): refuse this one.
      active_.fetch_sub(1);
      ::close(fd);
    }
  }
}

namespace {

bool send_all(int fd, std::string_view s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

const char* reason_of(int code) {
  switch (code) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Internal Server Error";
  }
}

void respond(int fd, int code, const std::string& content_type, const std::string& body,
             const std::string& extra_headers = "") {
  std::string h = "HTTP/1.1 " + std::to_string(code) + " " + reason_of(code) + "\r\nContent-Type: " + content_type +
                  "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra_headers +
                  "Connection: close\r\n\r\n";
  send_all(fd, h + body);
}

void respond_text(int fd, int code, const std::string& text, const std::string& extra_headers = "") {
  respond(fd, code, "text/plain; charset=utf-8", text + "\n", extra_headers);
}

// A handler's error as an HTTP answer: the status's message is the body.
void respond_status(int fd, const Status& st) {
  int code = 500;
  switch (st.code()) {
    case Code::kNotFound:
      code = 404;
      break;
    case Code::kInvalidArgument:
      code = 400;
      break;
    case Code::kFailedPrecondition:
      code = 409;
      break;
    case Code::kUnavailable:
    case Code::kResourceExhausted:
      code = 503;
      break;
    default:
      break;
  }
  respond_text(fd, code, st.message());
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return std::string(s);
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

}  // namespace

Result<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%') {
      int hi = i + 2 < s.size() ? hex_value(s[i + 1]) : -1;
      int lo = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
      if (hi < 0 || lo < 0)
        return invalid_argument("bad percent escape at byte " + std::to_string(i) + " of the query");
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> parse_query(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t pos = 0;
  while (pos <= query.size() && !query.empty()) {
    size_t amp = query.find('&', pos);
    std::string_view kv = query.substr(pos, amp == std::string_view::npos ? std::string_view::npos : amp - pos);
    if (!kv.empty()) {
      size_t eq = kv.find('=');
      LS_ASSIGN_OR_RETURN(std::string key, percent_decode(kv.substr(0, eq)));
      std::string value;
      if (eq != std::string_view::npos) {
        LS_ASSIGN_OR_RETURN(value, percent_decode(kv.substr(eq + 1)));
      }
      out.emplace_back(std::move(key), std::move(value));
    }
    if (amp == std::string_view::npos) break;
    pos = amp + 1;
  }
  return out;
}

struct AdminHttp::Request {
  std::string method;
  std::string path;
  std::vector<std::pair<std::string, std::string>> query;
  ApiCaller caller;

  // Answers 400 for a parameter outside `known` or a single-valued one given twice.
  bool check_params(int fd, std::initializer_list<const char*> known,
                    std::initializer_list<const char*> repeatable = {}) {
    std::vector<std::string> seen;
    for (const auto& [k, v] : query) {
      bool ok = false;
      for (const char* n : known) ok = ok || k == n;
      if (!ok) {
        std::string list;
        for (const char* n : known) list += (list.empty() ? "" : ", ") + std::string(n);
        respond_text(fd, 400, "unknown parameter '" + k + "' for " + path + " (" + list + ")");
        return false;
      }
      bool repeat = false;
      for (const char* n : repeatable) repeat = repeat || k == n;
      if (!repeat) {
        for (const auto& s : seen) {
          if (s == k) {
            respond_text(fd, 400, "parameter '" + k + "' is given more than once");
            return false;
          }
        }
        seen.push_back(k);
      }
    }
    return true;
  }
  std::optional<std::string> param(const std::string& key) const {
    for (const auto& [k, v] : query) {
      if (k == key) return v;
    }
    return std::nullopt;
  }
  std::vector<std::string> params(const std::string& key) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : query) {
      if (k == key) out.push_back(v);
    }
    return out;
  }
};

namespace {

Result<uint64_t> parse_u64(const std::string& name, const std::string& text) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size()) {
    return invalid_argument("parameter '" + name + "' must be a non-negative integer, not '" + text + "'");
  }
  return v;
}

// "\"identity\":..,\"peer\":..": who asked, for `_audit` members.
std::string who_members(const std::string& identity, const ApiCaller& caller) {
  return "\"identity\":" + engine::json_escape(identity.empty() ? "unknown" : identity) +
         ",\"peer\":" + engine::json_escape(caller.peer_address);
}

}  // namespace

void AdminHttp::audit(const std::string& action, const std::string& members) {
  if (handlers_.audit) handlers_.audit(action, members);
}

void AdminHttp::serve(int fd, const std::string& peer) {
  std::string raw;
  char buf[2048];
  int waited_ms = 0;
  while (raw.find("\r\n\r\n") == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    int rc = ::poll(&p, 1, 100);
    if (rc < 0 || stop_.load()) return;
    if (rc == 0) {
      waited_ms += 100;
      if (waited_ms >= 5000) return;
      continue;
    }
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;
    raw.append(buf, static_cast<size_t>(n));
    if (raw.size() > kHeaderBytesMax) {
      respond_text(fd, 431, "request headers over 8 KiB");
      return;
    }
  }
  raw.resize(raw.find("\r\n\r\n") + 2);
  size_t eol = raw.find("\r\n");
  std::string line = raw.substr(0, eol);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string::npos ? std::string::npos : line.find(' ', sp1 + 1);
  if (sp2 == std::string::npos) {
    respond_text(fd, 400, "malformed request line");
    return;
  }
  Request req;
  req.method = line.substr(0, sp1);
  std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  size_t qm = target.find('?');
  req.path = target.substr(0, qm);
  if (qm != std::string::npos) {
    auto q = parse_query(std::string_view(target).substr(qm + 1));
    if (!q.ok()) {
      respond_text(fd, 400, q.status().message());
      return;
    }
    req.query = std::move(q).value();
  }
  req.caller.peer_address = peer;
  for (size_t pos = eol + 2; pos < raw.size();) {
    size_t end = raw.find("\r\n", pos);
    std::string h = raw.substr(pos, end - pos);
    pos = end + 2;
    size_t colon = h.find(':');
    if (colon == std::string::npos) continue;
    if (iequals(trim(h.substr(0, colon)), "authorization")) {
      std::string v = trim(h.substr(colon + 1));
      if (v.size() > 7 && iequals(v.substr(0, 7), "bearer ")) req.caller.bearer_token = trim(v.substr(7));
    }
  }
  route(fd, req);
}

void AdminHttp::route(int fd, Request& req) {
  const std::string& path = req.path;
  auto method_is = [&](const char* m) {
    if (req.method == m) return true;
    respond_text(fd, 405, std::string("use ") + m + " for " + path, std::string("Allow: ") + m + "\r\n");
    return false;
  };
  if (path == "/metrics") {
    if (method_is("GET")) respond(fd, 200, "text/plain; version=0.0.4", handlers_.metrics());
  } else if (path == "/healthz") {
    if (!method_is("GET")) return;
    Status st = handlers_.health();
    if (st.ok()) {
      respond_text(fd, 200, "ok");
    } else {
      respond_text(fd, 503, st.message());
    }
  } else if (path == "/v1/checkpoint") {
    if (!method_is("GET") || !req.check_params(fd, {"stream"})) return;
    std::string stream = req.param("stream").value_or("");
    if (stream.empty()) {
      respond_text(fd, 400, "missing ?stream=NAME");
      return;
    }
    // Open as before while no access control is configured.
    ApiDecision d;
    if (handlers_.authorize && !allowed(fd, req, stream, ApiAction::kCheckpoint, &d)) return;
    auto text = handlers_.checkpoint(stream);
    if (!text.ok()) {
      respond_status(fd, text.status());
    } else {
      respond(fd, 200, "text/plain", text.value());
    }
  } else if ((path == "/v1/streams" || path == "/v1/records" || path == "/v1/proof" || path == "/v1/hold" ||
              path == "/v1/roll") &&
             (!handlers_.stream_names || !handlers_.stream_json || !handlers_.records || !handlers_.proof ||
              !handlers_.hold || !handlers_.roll)) {
    respond_text(fd, 404, "the read API is not served here");
  } else if (path == "/v1/streams") {
    if (method_is("GET")) serve_streams(fd, req);
  } else if (path == "/v1/records") {
    if (method_is("GET")) serve_records(fd, req);
  } else if (path == "/v1/proof") {
    if (method_is("GET")) serve_proof(fd, req);
  } else if (path == "/v1/hold") {
    if (method_is("POST")) serve_hold(fd, req);
  } else if (path == "/v1/roll") {
    if (method_is("POST")) serve_roll(fd, req);
  } else {
    respond_text(fd, 404,
                 "no such endpoint (GET /metrics, /healthz, /v1/checkpoint, /v1/streams, /v1/records, /v1/proof; "
                 "POST /v1/hold, /v1/roll)");
  }
}

std::optional<std::string> AdminHttp::authorized_stream(int fd, const Request& req, ApiAction action,
                                                        ApiDecision* decision) {
  std::string stream = req.param("stream").value_or("");
  if (stream.empty()) {
    respond_text(fd, 400, "missing ?stream=NAME");
    return std::nullopt;
  }
  if (!allowed(fd, req, stream, action, decision)) return std::nullopt;
  return stream;
}

bool AdminHttp::stream_exists(int fd, const std::string& stream) {
  auto names = handlers_.stream_names();
  if (!names.ok()) {
    respond_status(fd, names.status());
    return false;
  }
  if (std::find(names->begin(), names->end(), stream) == names->end()) {
    respond_text(fd, 404, "no stream '" + stream + "'");
    return false;
  }
  return true;
}

void AdminHttp::refuse(int fd, const Request& req, const std::string& stream, const ApiDecision& d) {
  int code = d.status == 401 ? 401 : 403;
  std::string why = d.why.empty() ? (code == 401 ? "no valid credential" : "not allowed") : d.why;
  audit("api-refused", who_members(d.identity, req.caller) + ",\"method\":" + engine::json_escape(req.method) +
                           ",\"path\":" + engine::json_escape(req.path) + ",\"stream\":" + engine::json_escape(stream) +
                           ",\"status\":" + std::to_string(code) + ",\"why\":" + engine::json_escape(why));
  respond_text(fd, code, why, code == 401 ? "WWW-Authenticate: Bearer realm=\"logseal\"\r\n" : "");
}

bool AdminHttp::allowed(int fd, const Request& req, const std::string& stream, ApiAction action,
                        ApiDecision* decision) {
  if (!handlers_.authorize) {
    ApiDecision d;
    d.status = 403;
    d.why = "access control is not configured";
    refuse(fd, req, stream, d);
    return false;
  }
  *decision = handlers_.authorize(req.caller, stream, action);
  if (decision->status == 200) return true;
  refuse(fd, req, stream, *decision);
  return false;
}

void AdminHttp::serve_streams(int fd, Request& req) {
  if (!req.check_params(fd, {})) return;
  if (!handlers_.authorize) {
    ApiDecision d;
    allowed(fd, req, "", ApiAction::kRead, &d);
    return;
  }
  // Who is asking does not depend on the stream: an unknown or missing
  // credential is a 401 even where there is no stream to list.
  ApiDecision who = handlers_.authorize(req.caller, "", ApiAction::kRead);
  if (who.status == 401) {
    refuse(fd, req, "", who);
    return;
  }
  auto names = handlers_.stream_names();
  if (!names.ok()) {
    respond_status(fd, names.status());
    return;
  }
  std::string body = "{\"streams\":[";
  bool first = true;
  std::optional<ApiDecision> unauthenticated;
  std::string identity;
  for (const std::string& name : names.value()) {
    bool visible = false;
    for (ApiAction a : {ApiAction::kRead, ApiAction::kVerify, ApiAction::kCheckpoint}) {
      ApiDecision d = handlers_.authorize(req.caller, name, a);
      if (d.status == 200) {
        visible = true;
        identity = d.identity;
        break;
      }
      if (d.status == 401) unauthenticated = d;
    }
    if (!visible) continue;
    auto js = handlers_.stream_json(name);
    if (!js.ok()) {
      if (js.status().code() == Code::kNotFound) continue;  // removed meanwhile
      respond_status(fd, js.status());
      return;
    }
    body += first ? "" : ",";
    body += js.value();
    first = false;
  }
  body += "]}\n";
  // An unknown or missing credential sees nothing: that is a 401, not an empty list.
  if (first && unauthenticated) {
    refuse(fd, req, "", *unauthenticated);
    return;
  }
  respond(fd, 200, "application/json", body);
}

void AdminHttp::serve_records(int fd, Request& req) {
  if (!req.check_params(fd, {"stream", "since", "until", "where", "limit"}, {"where"})) return;
  ApiDecision d;
  std::optional<std::string> named = authorized_stream(fd, req, ApiAction::kRead, &d);
  if (!named) return;
  const std::string& stream = *named;
  ExportSelection sel;
  sel.streams = {stream};
  sel.format = ExportFormat::kJsonl;
  sel.where = req.params("where");
  for (const char* name : {"since", "until"}) {
    auto v = req.param(name);
    if (!v) continue;
    auto t = engine::parse_time_ns(*v);
    if (!t.ok()) {
      respond_text(fd, 400, std::string("parameter '") + name + "': " + t.status().message());
      return;
    }
    (std::string(name) == "since" ? sel.since_ns : sel.until_ns) = t.value();
  }
  if (auto v = req.param("limit")) {
    auto n = parse_u64("limit", *v);
    if (!n.ok()) {
      respond_text(fd, 400, n.status().message());
      return;
    }
    sel.limit = n.value();
  }
  {
    // Bad conditions are a 400 before the answer starts.
    auto f = FieldFilter::parse(sel.where);
    if (!f.ok()) {
      respond_text(fd, 400, "parameter 'where': " + f.status().message());
      return;
    }
  }
  if (!stream_exists(fd, stream)) return;
  bool started = false, client_gone = false;
  auto sink = [&](std::string_view chunk) {
    if (stop_.load()) return false;
    if (!started) {
      started = true;
      if (!send_all(fd,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n"
                    "Cache-Control: no-store\r\nConnection: close\r\n\r\n")) {
        client_gone = true;
        return false;
      }
    }
    char size[32];
    int n = std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
    if (!send_all(fd, std::string_view(size, static_cast<size_t>(n))) || !send_all(fd, chunk) ||
        !send_all(fd, "\r\n")) {
      client_gone = true;
      return false;
    }
    return true;
  };
  ExportStats stats;
  Status st = handlers_.records(sel, sink, &stats);
  bool complete = st.ok() && !stats.stopped;
  std::string where_json = "[";
  for (size_t i = 0; i < sel.where.size(); ++i) where_json += (i ? "," : "") + engine::json_escape(sel.where[i]);
  where_json += "]";
  audit("api-export", who_members(d.identity, req.caller) + ",\"stream\":" + engine::json_escape(stream) +
                          ",\"since\":" + engine::json_escape(req.param("since").value_or("")) + ",\"until\":" +
                          engine::json_escape(req.param("until").value_or("")) + ",\"where\":" + where_json +
                          ",\"limit\":" + std::to_string(sel.limit) + ",\"records\":" + std::to_string(stats.records) +
                          ",\"complete\":" + (complete ? "true" : "false") +
                          (st.ok() ? std::string() : ",\"error\":" + engine::json_escape(st.to_string())));
  if (!st.ok() && !started) {
    respond_status(fd, st);
    return;
  }
  if (!complete) return;  // cut short: no final chunk, so the client sees an incomplete answer
  if (!started) {
    send_all(fd,
             "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n"
             "Cache-Control: no-store\r\nConnection: close\r\n\r\n0\r\n\r\n");
  } else if (!client_gone) {
    send_all(fd, "0\r\n\r\n");
  }
}

void AdminHttp::serve_proof(int fd, Request& req) {
  if (!req.check_params(fd, {"stream", "index"})) return;
  ApiDecision d;
  std::optional<std::string> named = authorized_stream(fd, req, ApiAction::kRead, &d);
  if (!named) return;
  const std::string& stream = *named;
  auto index_text = req.param("index");
  if (!index_text) {
    respond_text(fd, 400, "missing &index=N");
    return;
  }
  auto index = parse_u64("index", *index_text);
  if (!index.ok()) {
    respond_text(fd, 400, index.status().message());
    return;
  }
  auto text = handlers_.proof(stream, index.value());
  if (!text.ok()) {
    respond_status(fd, text.status());
    return;
  }
  audit("api-proof", who_members(d.identity, req.caller) + ",\"stream\":" + engine::json_escape(stream) +
                         ",\"index\":" + std::to_string(index.value()));
  respond(fd, 200, "text/plain", text.value());
}

void AdminHttp::serve_hold(int fd, Request& req) {
  if (!req.check_params(fd, {"stream", "on"})) return;
  ApiDecision d;
  std::optional<std::string> named = authorized_stream(fd, req, ApiAction::kAdmin, &d);
  if (!named) return;
  const std::string& stream = *named;
  std::string on = req.param("on").value_or("");
  if (on != "true" && on != "false") {
    respond_text(fd, 400, "parameter 'on' must be true or false");
    return;
  }
  if (!stream_exists(fd, stream)) return;
  std::string note =
      "read API: " + (d.identity.empty() ? std::string("unknown") : d.identity) + " from " + req.caller.peer_address;
  auto index = handlers_.hold(stream, on == "true", note);
  if (!index.ok()) {
    respond_status(fd, index.status());
    return;
  }
  respond(fd, 200, "application/json",
          "{\"stream\":" + engine::json_escape(stream) + ",\"legal_hold\":" + on +
              ",\"record\":" + std::to_string(index.value()) + "}\n");
}

void AdminHttp::serve_roll(int fd, Request& req) {
  if (!req.check_params(fd, {"stream"})) return;
  ApiDecision d;
  std::optional<std::string> named = authorized_stream(fd, req, ApiAction::kAdmin, &d);
  if (!named) return;
  const std::string& stream = *named;
  if (!stream_exists(fd, stream)) return;
  auto seq = handlers_.roll(stream);
  if (!seq.ok()) {
    respond_status(fd, seq.status());
    return;
  }
  audit("api-roll", who_members(d.identity, req.caller) + ",\"stream\":" + engine::json_escape(stream) +
                        ",\"segment\":" + std::to_string(seq.value()));
  respond(fd, 200, "application/json",
          "{\"stream\":" + engine::json_escape(stream) + ",\"rolling_segment\":" + std::to_string(seq.value()) + "}\n");
}

void sd_notify_text(const std::string& text) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  size_t len = std::strlen(path);
  if (len >= sizeof sa.sun_path) return;
  std::memcpy(sa.sun_path, path, len);
  if (sa.sun_path[0] == '@') sa.sun_path[0] = '\0';  // abstract namespace
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  ::sendto(fd, text.data(), text.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sa),
           static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len));
  ::close(fd);
}

}  // namespace logseal::ingest
