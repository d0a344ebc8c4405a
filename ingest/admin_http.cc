#include "ingest/admin_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include "ingest/net_address.h"

namespace logseal::ingest {

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
  // Connection threads notice stop_ within their poll interval.
  while (active_.load() > 0) ::usleep(10 * 1000);
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
}

void AdminHttp::run() {
  while (!stop_.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    int rc = ::poll(&p, 1, 200);
    if (rc <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
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
    active_.fetch_add(1);
    try {
      std::thread([this, fd] {
        serve(fd);
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

void send_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return;
    }
    off += static_cast<size_t>(n);
  }
}

void respond(int fd, int code, const char* reason, const std::string& content_type, const std::string& body) {
  std::string h = "HTTP/1.1 " + std::to_string(code) + " " + reason + "\r\nContent-Type: " + content_type +
                  "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  send_all(fd, h + body);
}

std::string query_param(const std::string& query, const std::string& key) {
  size_t pos = 0;
  while (pos < query.size()) {
    size_t amp = query.find('&', pos);
    std::string kv = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    size_t eq = kv.find('=');
    if (eq != std::string::npos && kv.substr(0, eq) == key) return kv.substr(eq + 1);
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return "";
}

}  // namespace

void AdminHttp::serve(int fd) {
  std::string req;
  char buf[2048];
  int waited_ms = 0;
  while (req.find("\r\n\r\n") == std::string::npos) {
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
    req.append(buf, static_cast<size_t>(n));
    if (req.size() > 8192) {
      respond(fd, 431, "Request Header Fields Too Large", "text/plain", "request headers over 8 KiB\n");
      return;
    }
  }
  size_t sp1 = req.find(' ');
  size_t sp2 = sp1 == std::string::npos ? std::string::npos : req.find(' ', sp1 + 1);
  if (sp2 == std::string::npos) {
    respond(fd, 400, "Bad Request", "text/plain", "malformed request line\n");
    return;
  }
  std::string method = req.substr(0, sp1);
  std::string target = req.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string path = target.substr(0, target.find('?'));
  std::string query = target.find('?') == std::string::npos ? "" : target.substr(target.find('?') + 1);
  if (method != "GET") {
    respond(fd, 405, "Method Not Allowed", "text/plain", "only GET is served here\n");
    return;
  }
  if (path == "/metrics") {
    respond(fd, 200, "OK", "text/plain; version=0.0.4", handlers_.metrics());
  } else if (path == "/healthz") {
    Status st = handlers_.health();
    if (st.ok()) {
      respond(fd, 200, "OK", "text/plain", "ok\n");
    } else {
      respond(fd, 503, "Service Unavailable", "text/plain", st.message() + "\n");
    }
  } else if (path == "/v1/checkpoint") {
    std::string stream = query_param(query, "stream");
    if (stream.empty()) {
      respond(fd, 400, "Bad Request", "text/plain", "missing ?stream=NAME\n");
      return;
    }
    auto text = handlers_.checkpoint(stream);
    if (!text.ok()) {
      respond(fd, text.status().code() == Code::kNotFound ? 404 : 400, "Not Found", "text/plain",
              text.status().message() + "\n");
    } else {
      respond(fd, 200, "OK", "text/plain", text.value());
    }
  } else {
    respond(fd, 404, "Not Found", "text/plain", "no such endpoint (/metrics, /healthz, /v1/checkpoint?stream=S)\n");
  }
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
