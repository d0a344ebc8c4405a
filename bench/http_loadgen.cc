// logseal-http-loadgen: load for the JSON events listener. Each connection sends
// POST requests of --batch events over one keep-alive connection, one request at
// a time (a request is answered 200 only once its records are durable, so this
// measures the acknowledged rate, as a webhook sender sees it). Bodies are built
// once at start. Reports requests/s and events/s.
//
//   logseal-http-loadgen --target 127.0.0.1:8081 [--path /v1/events|/v1/k8s-audit]
//                        [--batch 100] [--requests 2000 | --seconds S] [--connections 1] [--json]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string host = "127.0.0.1";
  int port = 8081;
  std::string path = "/v1/events";
  unsigned batch = 100;
  uint64_t requests = 2000;  // per connection
  double seconds = 0;
  unsigned connections = 1;
  bool json = false;
};

[[noreturn]] void die(const std::string& s) {
  std::fprintf(stderr, "logseal-http-loadgen: %s\n", s.c_str());
  std::exit(2);
}

std::string k8s_event(uint64_t i) {
  return "{\"level\":\"Metadata\",\"auditID\":\"0b7c3a1e-0000-4000-8000-" + std::to_string(100000000000 + i) +
         "\",\"stage\":\"ResponseComplete\",\"requestURI\":\"/api/v1/namespaces/payments/secrets/db\",\"verb\":\"get\","
         "\"user\":{\"username\":\"system:serviceaccount:payments:billing-api\",\"groups\":[\"system:authenticated\"]},"
         "\"sourceIPs\":[\"192.0.2.17\"],\"userAgent\":\"billing-api/2.3.1\",\"objectRef\":{\"resource\":\"secrets\","
         "\"namespace\":\"payments\",\"name\":\"db\",\"apiVersion\":\"v1\"},\"responseStatus\":{\"metadata\":{},"
         "\"code\":200},\"requestReceivedTimestamp\":\"2026-11-26T03:30:00.101202Z\",\"stageTimestamp\":"
         "\"2026-11-26T03:30:00.104019Z\"}";
}

std::string body_for(const Args& a, unsigned conn) {
  bool k8s = a.path == "/v1/k8s-audit";
  std::string b = k8s ? "{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"metadata\":{},\"items\":[" : "";
  for (unsigned i = 0; i < a.batch; ++i) {
    uint64_t n = uint64_t{conn} * 1000000 + i;
    if (k8s) {
      b += (i ? "," : "") + k8s_event(n);
    } else {
      b += "{\"time\":\"2026-11-26T03:30:00.101202Z\",\"user\":\"alice\",\"action\":\"refund\",\"order\":" +
           std::to_string(n) + ",\"amount\":12.5,\"client\":{\"ip\":\"192.0.2.7\"}}\n";
    }
  }
  if (k8s) b += "]}";
  std::string req = "POST " + a.path + " HTTP/1.1\r\nHost: " + a.host + "\r\nContent-Type: " +
                    (k8s ? "application/json" : "application/x-ndjson") + "\r\nContent-Length: " +
                    std::to_string(b.size()) + "\r\n\r\n";
  return req + b;
}

struct Result {
  uint64_t ok = 0, refused = 0;
  std::string error;
};

void run_conn(const Args& a, unsigned conn, Clock::time_point deadline, Result& res) {
  std::string req = body_for(a, conn);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(a.port));
  if (::inet_pton(AF_INET, a.host.c_str(), &sa.sin_addr) != 1) die("bad host " + a.host);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) die("connect: " + std::string(std::strerror(errno)));
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::string in;
  char buf[8192];
  for (uint64_t r = 0; a.seconds > 0 ? Clock::now() < deadline : r < a.requests; ++r) {
    size_t off = 0;
    while (off < req.size()) {
      ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
      if (n <= 0) {
        res.error = "send: " + std::string(std::strerror(errno));
        ::close(fd);
        return;
      }
      off += static_cast<size_t>(n);
    }
    // One response: headers, then Content-Length bytes.
    while (true) {
      size_t end = in.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t cl = in.find("Content-Length: ");
        size_t len = cl != std::string::npos && cl < end ? std::strtoul(in.c_str() + cl + 16, nullptr, 10) : 0;
        if (in.size() >= end + 4 + len) {
          int status = std::atoi(in.c_str() + 9);
          (status == 200 ? res.ok : res.refused)++;
          in.erase(0, end + 4 + len);
          break;
        }
      }
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        res.error = "connection closed by the server";
        ::close(fd);
        return;
      }
      in.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) die(k + " needs a value");
      return argv[++i];
    };
    if (k == "--target") {
      std::string t = val();
      size_t c = t.rfind(':');
      if (c == std::string::npos) die("--target HOST:PORT");
      a.host = t.substr(0, c);
      a.port = std::atoi(t.c_str() + c + 1);
    } else if (k == "--path") {
      a.path = val();
    } else if (k == "--batch") {
      a.batch = static_cast<unsigned>(std::atoi(val().c_str()));
    } else if (k == "--requests") {
      a.requests = std::strtoull(val().c_str(), nullptr, 10);
    } else if (k == "--seconds") {
      a.seconds = std::atof(val().c_str());
    } else if (k == "--connections") {
      a.connections = static_cast<unsigned>(std::atoi(val().c_str()));
    } else if (k == "--json") {
      a.json = true;
    } else {
      die("unknown option " + k);
    }
  }
  if (a.batch == 0 || a.connections == 0) die("--batch and --connections must be > 0");
  std::vector<Result> results(a.connections);
  std::vector<std::thread> threads;
  auto t0 = Clock::now();
  auto deadline = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(a.seconds));
  for (unsigned c = 0; c < a.connections; ++c) threads.emplace_back([&, c] { run_conn(a, c, deadline, results[c]); });
  for (auto& t : threads) t.join();
  double s = std::chrono::duration<double>(Clock::now() - t0).count();
  uint64_t ok = 0, refused = 0;
  for (auto& r : results) {
    ok += r.ok;
    refused += r.refused;
    if (!r.error.empty()) std::fprintf(stderr, "logseal-http-loadgen: %s\n", r.error.c_str());
  }
  double rps = ok / s, eps = ok * a.batch / s;
  if (a.json) {
    std::printf("{\"requests_ok\":%llu,\"requests_refused\":%llu,\"batch\":%u,\"connections\":%u,\"seconds\":%.3f,"
                "\"requests_per_s\":%.1f,\"events_per_s\":%.1f}\n",
                static_cast<unsigned long long>(ok), static_cast<unsigned long long>(refused), a.batch, a.connections, s,
                rps, eps);
  } else {
    std::printf("%llu requests of %u events answered 200 (%llu refused) over %u keep-alive connection(s) in %.3f s: "
                "%.1f requests/s, %.0f events/s\n",
                static_cast<unsigned long long>(ok), a.batch, static_cast<unsigned long long>(refused), a.connections, s,
                rps, eps);
  }
  return refused == 0 ? 0 : 1;
}
