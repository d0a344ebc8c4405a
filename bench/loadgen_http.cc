// logseal-loadgen --proto http: load for the JSON events listener
// (logseald --http-events). Each connection POSTs --batch events per request over
// one keep-alive connection, one request at a time: a request is answered 200
// only once its records are durable, so this measures the acknowledged rate and
// the per-request latency a webhook sender sees. Bodies are built once at start
// (NDJSON for /v1/events, an audit.k8s.io/v1 EventList for /v1/k8s-audit).
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "bench/loadgen.h"

namespace loadgen {

namespace {

std::string k8s_event(uint64_t i) {
  return "{\"level\":\"Metadata\",\"auditID\":\"0b7c3a1e-0000-4000-8000-" + std::to_string(100000000000 + i) +
         "\",\"stage\":\"ResponseComplete\",\"requestURI\":\"/api/v1/namespaces/payments/secrets/db\",\"verb\":\"get\","
         "\"user\":{\"username\":\"system:serviceaccount:payments:billing-api\",\"groups\":[\"system:authenticated\"]},"
         "\"sourceIPs\":[\"192.0.2.17\"],\"userAgent\":\"billing-api/2.3.1\",\"objectRef\":{\"resource\":\"secrets\","
         "\"namespace\":\"payments\",\"name\":\"db\",\"apiVersion\":\"v1\"},\"responseStatus\":{\"metadata\":{},"
         "\"code\":200},\"requestReceivedTimestamp\":\"2026-11-26T03:30:00.101202Z\",\"stageTimestamp\":"
         "\"2026-11-26T03:30:00.104019Z\"}";
}

struct Request {
  std::string bytes;  // the whole request, headers and body
  size_t body_bytes = 0;
};

Request request_for(const Args& a, unsigned conn) {
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
  Request r;
  r.body_bytes = b.size();
  r.bytes = "POST " + a.path + " HTTP/1.1\r\nHost: " + a.host +
            "\r\nContent-Type: " + (k8s ? "application/json" : "application/x-ndjson") +
            "\r\nContent-Length: " + std::to_string(b.size()) + "\r\n\r\n" + b;
  return r;
}

void run_conn(const Args& a, unsigned conn, uint64_t requests, Clock::time_point deadline, LoadResult& res) {
  Request req = request_for(a, conn);
  int fd = connect_tcp(a);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  double per_conn_rps = a.rate > 0 ? a.rate / a.batch / a.connections : 0;
  std::string in;
  char buf[8192];
  auto t0 = Clock::now();
  for (uint64_t r = 0; r < requests && Clock::now() < deadline; ++r) {
    if (per_conn_rps > 0) {
      std::this_thread::sleep_until(t0 + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(static_cast<double>(r) / per_conn_rps)));
    }
    auto sent_at = Clock::now();
    size_t off = 0;
    while (off < req.bytes.size()) {
      ssize_t n = ::send(fd, req.bytes.data() + off, req.bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        res.errors.push_back("http send: " + std::string(std::strerror(errno)));
        ::close(fd);
        return;
      }
      off += static_cast<size_t>(n);
    }
    res.wire_bytes += req.bytes.size();
    // One response: headers, then Content-Length bytes.
    while (true) {
      size_t end = in.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t cl = in.find("Content-Length: ");
        size_t len = cl != std::string::npos && cl < end ? std::strtoul(in.c_str() + cl + 16, nullptr, 10) : 0;
        if (in.size() >= end + 4 + len) {
          int status = in.size() > 12 ? std::atoi(in.c_str() + 9) : 0;
          if (status == 200) {
            ++res.requests;
            res.messages += a.batch;
            res.payload_bytes += req.body_bytes;
            res.latency.add(static_cast<uint64_t>(std::chrono::nanoseconds(Clock::now() - sent_at).count()));
          } else {
            ++res.refused;
          }
          in.erase(0, end + 4 + len);
          break;
        }
      }
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        res.errors.push_back("http: connection closed by the server");
        ::close(fd);
        return;
      }
      in.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
}

}  // namespace

LoadResult run_http(const Args& a) {
  if (a.batch == 0) die("--batch must be at least 1");
  auto deadline =
      a.seconds > 0
          ? Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(a.seconds))
          : Clock::time_point::max();
  // --messages counts events; each connection sends whole batches.
  uint64_t requests_total = a.seconds > 0 ? UINT64_MAX / 2 : (a.messages + a.batch - 1) / a.batch;
  std::vector<LoadResult> per(a.connections);
  std::vector<std::thread> th;
  for (unsigned c = 0; c < a.connections; ++c) {
    uint64_t n = requests_total / a.connections + (c < requests_total % a.connections ? 1 : 0);
    th.emplace_back([&, c, n] { run_conn(a, c, n, deadline, per[c]); });
  }
  for (auto& t : th) t.join();
  LoadResult r;
  r.has_latency = true;
  for (const LoadResult& p : per) r.add(p);
  return r;
}

}  // namespace loadgen
