// logseal-loadgen: a cheap load generator for every logseald input. Messages are
// built once at start; fire-and-forget TCP is a loop of large write(2)s of one
// pre-framed buffer, UDP is sendmmsg(2) of its datagrams, so on a 2-core box the
// generator is not what limits the server. It reports what it sent (or what was
// acknowledged), acknowledgement latency where the protocol has one, and its
// own CPU use.
//
//   logseal-loadgen --target 127.0.0.1:5514 --proto tcp-octet|tcp-lf|udp|relp|tls|http
//                   [--connections N] [--messages N | --seconds S] [--size BYTES]
//                   [--corpus FILE (one message per line)] [--rate MSGS_PER_S] [--json]
//     relp: [--window N (unacknowledged per connection, default 128)]
//     tls:  --ca PEM [--cert PEM --key PEM]       (RFC 5425, octet-counted)
//     http: [--batch EVENTS (default 100)] [--path /v1/events|/v1/k8s-audit]
//           (--messages and --rate count events; latency is per request)
#include "bench/loadgen.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>

namespace loadgen {

void die(const std::string& s) {
  std::fprintf(stderr, "logseal-loadgen: %s\n", s.c_str());
  std::exit(2);
}

std::vector<std::string> make_messages(const Args& a) {
  std::vector<std::string> out;
  if (!a.corpus.empty()) {
    std::ifstream in(a.corpus, std::ios::binary);
    if (!in) die("cannot read " + a.corpus);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) out.push_back(line);
    }
    if (out.empty()) die(a.corpus + " has no lines");
    return out;
  }
  // RFC 5424 messages of exactly `size` bytes, each different (a counter), the
  // way a busy host's audit lines look.
  for (int i = 0; i < 1024; ++i) {
    char head[160];
    std::snprintf(head, sizeof head,
                  "<86>1 2026-11-26T05:00:00.%06dZ host%03d sshd %d - - Accepted publickey for user%04d from "
                  "192.0.2.%d port %d ssh2: ",
                  i * 7, i % 100, 1000 + i, i, i % 250, 40000 + i);
    std::string m = head;
    while (m.size() < a.size) m += "ED25519 SHA256:abcdefghijklmnopqrstuvwxyz0123456789 ";
    m.resize(a.size);
    out.push_back(m);
  }
  return out;
}

sockaddr_in target(const Args& a) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(a.port));
  if (inet_pton(AF_INET, a.host.c_str(), &sa.sin_addr) != 1) die("bad host " + a.host);
  return sa;
}

int connect_tcp(const Args& a) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket: " + std::string(std::strerror(errno)));
  sockaddr_in sa = target(a);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    die("connect " + a.host + ":" + std::to_string(a.port) + ": " + std::strerror(errno));
  }
  return fd;
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// ---- latency histogram ----

namespace {
constexpr size_t kExact = 128;  // values below are their own bucket
constexpr size_t kSub = 64;     // sub-buckets per power of two from 2^7 up
constexpr size_t kBuckets = kExact + (64 - 7) * kSub;
}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(kBuckets) {}

size_t LatencyHistogram::bucket_of(uint64_t ns) {
  if (ns < kExact) return static_cast<size_t>(ns);
  unsigned msb = 63u - static_cast<unsigned>(__builtin_clzll(ns));  // >= 7
  uint64_t top = ns >> (msb - 6);                                   // 64..127
  return kExact + (msb - 7) * kSub + static_cast<size_t>(top - kSub);
}

uint64_t LatencyHistogram::bucket_low(size_t b) {
  if (b < kExact) return b;
  size_t k = b - kExact;
  unsigned msb = static_cast<unsigned>(k / kSub) + 7;
  uint64_t top = k % kSub + kSub;
  return top << (msb - 6);
}

void LatencyHistogram::add(uint64_t ns) {
  ++counts_[bucket_of(ns)];
  ++count_;
  max_ns_ = std::max(max_ns_, ns);
}

void LatencyHistogram::merge(const LatencyHistogram& o) {
  for (size_t i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
  count_ += o.count_;
  max_ns_ = std::max(max_ns_, o.max_ns_);
}

void LoadResult::add(const LoadResult& o) {
  messages += o.messages;
  payload_bytes += o.payload_bytes;
  wire_bytes += o.wire_bytes;
  refused += o.refused;
  requests += o.requests;
  latency.merge(o.latency);
  errors.insert(errors.end(), o.errors.begin(), o.errors.end());
}

uint64_t LatencyHistogram::quantile_ns(double q) const {
  if (count_ == 0) return 0;
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t b = 0; b < kBuckets; ++b) {
    seen += counts_[b];
    if (seen >= rank) {
      uint64_t lo = bucket_low(b);
      uint64_t hi = b + 1 < kBuckets ? bucket_low(b + 1) : lo;
      return std::min(max_ns_, lo + (hi - lo) / 2);
    }
  }
  return max_ns_;
}

// ---- fire-and-forget TCP and UDP ----

namespace {

struct StreamCounters {
  std::atomic<uint64_t> messages{0};
  std::atomic<uint64_t> payload_bytes{0};
  std::atomic<uint64_t> wire_bytes{0};
  std::mutex errors_mu;
  std::vector<std::string> errors;
};

// One buffer holding every message framed once, repeated to ~4 MiB; ends[i] is
// the end offset of message i in it, payload[i] the message bytes up to there.
struct Framed {
  std::string buf;
  std::vector<size_t> ends;
  std::vector<uint64_t> payload;
};

Framed frame_all(const std::vector<std::string>& msgs, const std::string& proto) {
  Framed f;
  uint64_t payload = 0;
  while (f.buf.size() < (4u << 20)) {
    for (const auto& m : msgs) {
      if (proto != "tcp-lf") {  // tcp-octet and tls: RFC 6587 / RFC 5425 octet counting
        f.buf += std::to_string(m.size());
        f.buf += ' ';
        f.buf += m;
      } else {
        f.buf += m;
        f.buf += '\n';
      }
      payload += m.size();
      f.ends.push_back(f.buf.size());
      f.payload.push_back(payload);
    }
  }
  return f;
}

// TCP and TLS: write whole framed buffers; the last one is cut at a frame
// boundary when a message count is given.
void stream_sender(const Args& a, const Framed& f, uint64_t quota, Clock::time_point deadline, StreamCounters& c) {
  int fd = -1;
  std::unique_ptr<TlsConnection> tls;
  if (a.proto == "tls") {
    tls = connect_tls(a);
  } else {
    fd = connect_tcp(a);
  }
  auto fail = [&](const std::string& why) {
    std::lock_guard lk(c.errors_mu);
    c.errors.push_back(why);
  };
  auto write_all = [&](const char* p, size_t len) {
    if (tls) {
      if (tls->write_all(std::string_view(p, len))) return true;
      fail(tls->error());
      return false;
    }
    size_t off = 0;
    while (off < len) {
      ssize_t w = ::send(fd, p + off, len - off, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EINTR) continue;
        fail("send: " + std::string(std::strerror(errno)));
        return false;
      }
      off += static_cast<size_t>(w);
    }
    return true;
  };
  const uint64_t per_buffer = f.ends.size();
  uint64_t sent = 0;
  double per_conn_rate = a.rate > 0 ? a.rate / a.connections : 0;
  auto t0 = Clock::now();
  bool ok = true;
  while (ok && sent < quota && Clock::now() < deadline) {
    uint64_t n = std::min<uint64_t>(per_buffer, quota - sent);
    if (per_conn_rate > 0) {
      // Paced: send in slices of ~1 ms worth of messages.
      uint64_t slice = std::max<uint64_t>(1, static_cast<uint64_t>(per_conn_rate / 1000));
      n = std::min<uint64_t>(n, slice);
      auto due = t0 + std::chrono::duration_cast<Clock::duration>(
                          std::chrono::duration<double>(static_cast<double>(sent) / per_conn_rate));
      std::this_thread::sleep_until(due);
    }
    size_t len = f.ends[n - 1];
    if (!(ok = write_all(f.buf.data(), len))) break;
    sent += n;
    c.messages.fetch_add(n, std::memory_order_relaxed);
    c.payload_bytes.fetch_add(f.payload[n - 1], std::memory_order_relaxed);
    c.wire_bytes.fetch_add(len, std::memory_order_relaxed);
  }
  if (tls) {
    if (ok) tls->shutdown();
    return;
  }
  ::shutdown(fd, SHUT_WR);
  // Wait for the server to close or a short grace, so every byte was read.
  char tmp[256];
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  while (ok && ::read(fd, tmp, sizeof tmp) > 0) {
  }
  ::close(fd);
}

void udp_sender(const Args& a, const std::vector<std::string>& msgs, uint64_t quota, Clock::time_point deadline,
                StreamCounters& c) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa = target(a);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) die("connect udp");
  constexpr size_t kBatch = 64;
  std::vector<mmsghdr> hdrs(kBatch);
  std::vector<iovec> iov(kBatch);
  uint64_t sent = 0;
  double per_conn_rate = a.rate > 0 ? a.rate / a.connections : 0;
  auto t0 = Clock::now();
  size_t next = 0;
  while (sent < quota && Clock::now() < deadline) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kBatch, quota - sent));
    for (size_t i = 0; i < n; ++i) {
      const std::string& m = msgs[(next + i) % msgs.size()];
      iov[i].iov_base = const_cast<char*>(m.data());
      iov[i].iov_len = m.size();
      hdrs[i] = mmsghdr{};
      hdrs[i].msg_hdr.msg_iov = &iov[i];
      hdrs[i].msg_hdr.msg_iovlen = 1;
    }
    if (per_conn_rate > 0) {
      std::this_thread::sleep_until(t0 + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(static_cast<double>(sent) / per_conn_rate)));
    }
    int r = ::sendmmsg(fd, hdrs.data(), static_cast<unsigned>(n), 0);
    if (r < 0) {
      if (errno == EINTR || errno == ECONNREFUSED) continue;
      die("sendmmsg: " + std::string(std::strerror(errno)));
    }
    uint64_t bytes = 0;
    for (int i = 0; i < r; ++i) bytes += iov[static_cast<size_t>(i)].iov_len;
    next += static_cast<size_t>(r);
    sent += static_cast<uint64_t>(r);
    c.messages.fetch_add(static_cast<uint64_t>(r), std::memory_order_relaxed);
    c.payload_bytes.fetch_add(bytes, std::memory_order_relaxed);
    c.wire_bytes.fetch_add(bytes, std::memory_order_relaxed);
  }
  ::close(fd);
}

}  // namespace

LoadResult run_stream(const Args& a) {
  std::vector<std::string> msgs = make_messages(a);
  Framed framed;
  if (a.proto != "udp") framed = frame_all(msgs, a.proto);
  auto deadline =
      a.seconds > 0
          ? Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(a.seconds))
          : Clock::time_point::max();
  uint64_t quota_total = a.seconds > 0 ? UINT64_MAX / 2 : a.messages;
  StreamCounters c;
  std::vector<std::thread> th;
  for (unsigned i = 0; i < a.connections; ++i) {
    uint64_t quota = quota_total / a.connections + (i < quota_total % a.connections ? 1 : 0);
    if (a.proto == "udp") {
      th.emplace_back([&, quota] { udp_sender(a, msgs, quota, deadline, c); });
    } else {
      th.emplace_back([&, quota] { stream_sender(a, framed, quota, deadline, c); });
    }
  }
  for (auto& t : th) t.join();
  LoadResult r;
  r.messages = c.messages.load();
  r.payload_bytes = c.payload_bytes.load();
  r.wire_bytes = c.wire_bytes.load();
  r.errors = std::move(c.errors);
  return r;
}

}  // namespace loadgen

namespace {

using namespace loadgen;

void print_result(const Args& a, const LoadResult& r, double secs, double cpu) {
  double rate = secs > 0 ? static_cast<double>(r.messages) / secs : 0;
  double mbs = secs > 0 ? static_cast<double>(r.payload_bytes) / secs / 1e6 : 0;
  double wire_mbs = secs > 0 ? static_cast<double>(r.wire_bytes) / secs / 1e6 : 0;
  auto us = [&](double q) { return static_cast<double>(r.latency.quantile_ns(q)) / 1e3; };
  if (a.json) {
    std::printf(
        "{\"proto\":\"%s\",\"connections\":%u,\"messages\":%llu,\"bytes\":%llu,\"wire_bytes\":%llu,"
        "\"seconds\":%.3f,\"msgs_per_s\":%.0f,\"mb_per_s\":%.1f,\"wire_mb_per_s\":%.1f,"
        "\"cpu_seconds\":%.3f,\"rate_target\":%.0f,\"refused\":%llu,\"errors\":%zu",
        a.proto.c_str(), a.connections, static_cast<unsigned long long>(r.messages),
        static_cast<unsigned long long>(r.payload_bytes), static_cast<unsigned long long>(r.wire_bytes), secs, rate,
        mbs, wire_mbs, cpu, a.rate, static_cast<unsigned long long>(r.refused), r.errors.size());
    if (a.proto == "relp") std::printf(",\"window\":%u", a.window);
    if (a.proto == "http") {
      std::printf(",\"batch\":%u,\"requests\":%llu,\"requests_per_s\":%.1f", a.batch,
                  static_cast<unsigned long long>(r.requests), secs > 0 ? static_cast<double>(r.requests) / secs : 0);
    }
    if (r.has_latency) {
      std::printf(",\"latency_us\":{\"count\":%llu,\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f}",
                  static_cast<unsigned long long>(r.latency.count()), us(0.5), us(0.99), us(0.999),
                  static_cast<double>(r.latency.max_ns()) / 1e3);
    }
    std::printf("}\n");
  } else {
    const char* verb = r.has_latency ? "acknowledged" : "sent";
    std::printf("%s %llu messages (%llu message bytes, %llu on the wire) in %.3f s: %.0f msgs/s, %.1f MB/s", verb,
                static_cast<unsigned long long>(r.messages), static_cast<unsigned long long>(r.payload_bytes),
                static_cast<unsigned long long>(r.wire_bytes), secs, rate, mbs);
    if (a.proto == "http") {
      std::printf(" (%llu requests of %u events)", static_cast<unsigned long long>(r.requests), a.batch);
    }
    if (r.refused) std::printf("; %llu refused", static_cast<unsigned long long>(r.refused));
    std::printf("; loadgen CPU %.2f s (%.0f%% of one core)\n", cpu, secs > 0 ? 100 * cpu / secs : 0);
    if (r.has_latency) {
      std::printf("%s latency: p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us\n",
                  a.proto == "http" ? "request" : "message", us(0.5), us(0.99), us(0.999),
                  static_cast<double>(r.latency.max_ns()) / 1e3);
    }
  }
  for (const auto& e : r.errors) std::fprintf(stderr, "logseal-loadgen: %s\n", e.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value for " + k);
      return argv[++i];
    };
    auto number = [&]() -> double {
      std::string v = val();
      char* end = nullptr;
      double d = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || d < 0) die(k + ": not a number: " + v);
      return d;
    };
    if (k == "--target") {
      std::string t = val();
      size_t colon = t.rfind(':');
      if (colon == std::string::npos) die("--target HOST:PORT");
      a.host = t.substr(0, colon);
      a.port = std::atoi(t.substr(colon + 1).c_str());
    } else if (k == "--proto") {
      a.proto = val();
    } else if (k == "--connections") {
      a.connections = static_cast<unsigned>(number());
    } else if (k == "--messages") {
      a.messages = static_cast<uint64_t>(number());
    } else if (k == "--seconds") {
      a.seconds = number();
    } else if (k == "--size") {
      a.size = static_cast<size_t>(number());
    } else if (k == "--corpus") {
      a.corpus = val();
    } else if (k == "--rate") {
      a.rate = number();
    } else if (k == "--window") {
      a.window = static_cast<unsigned>(number());
    } else if (k == "--ca") {
      a.ca_file = val();
    } else if (k == "--cert") {
      a.cert_file = val();
    } else if (k == "--key") {
      a.key_file = val();
    } else if (k == "--batch") {
      a.batch = static_cast<unsigned>(number());
    } else if (k == "--path") {
      a.path = val();
    } else if (k == "--json") {
      a.json = true;
    } else {
      die("unknown argument " + k + " (see bench/loadgen.cc)");
    }
  }
  bool stream = a.proto == "tcp-octet" || a.proto == "tcp-lf" || a.proto == "udp" || a.proto == "tls";
  if (!stream && a.proto != "relp" && a.proto != "http") die("--proto tcp-octet|tcp-lf|udp|relp|tls|http");
  if (a.connections == 0) die("--connections must be at least 1");
  if (a.size == 0) die("--size must be at least 1");
  double cpu0 = cpu_seconds();
  auto t0 = Clock::now();
  LoadResult r = stream ? run_stream(a) : a.proto == "relp" ? run_relp(a) : run_http(a);
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  print_result(a, r, secs, cpu_seconds() - cpu0);
  return r.errors.empty() && r.refused == 0 ? 0 : 1;
}
