// logseal-loadgen: a cheap syslog load generator. Messages are framed once into a
// large buffer at start; sending is a loop of large write(2)s of that buffer
// (TCP) or sendmmsg(2) of its datagrams (UDP), so on a 2-core box the generator
// is not what limits the server. It reports what it sent and its own CPU use.
//
//   logseal-loadgen --target 127.0.0.1:5514 --proto tcp-octet|tcp-lf|udp
//                   [--connections N] [--messages N | --seconds S] [--size BYTES]
//                   [--corpus FILE (one message per line)] [--rate MSGS_PER_S] [--json]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string host = "127.0.0.1";
  int port = 5514;
  std::string proto = "tcp-octet";
  unsigned connections = 1;
  uint64_t messages = 1000000;
  double seconds = 0;
  size_t size = 300;
  std::string corpus;
  double rate = 0;  // messages per second over all connections; 0 = flat out
  bool json = false;
};

[[noreturn]] void die(const std::string& s) {
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

// One buffer holding every message framed once (TCP), repeated to ~4 MiB.
std::string frame_all(const std::vector<std::string>& msgs, const std::string& proto, uint64_t& per_buffer) {
  std::string buf;
  per_buffer = 0;
  while (buf.size() < (4u << 20)) {
    for (const auto& m : msgs) {
      if (proto == "tcp-octet") {
        buf += std::to_string(m.size());
        buf += ' ';
        buf += m;
      } else {
        buf += m;
        buf += '\n';
      }
      ++per_buffer;
    }
  }
  return buf;
}

sockaddr_in target(const Args& a) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(a.port));
  if (inet_pton(AF_INET, a.host.c_str(), &sa.sin_addr) != 1) die("bad host " + a.host);
  return sa;
}

struct Counters {
  std::atomic<uint64_t> messages{0};
  std::atomic<uint64_t> bytes{0};
};

// TCP: write whole framed buffers; the last one is cut at a frame boundary when a
// message count is given.
void tcp_sender(const Args& a, const std::string& buf, uint64_t per_buffer, const std::vector<size_t>& ends,
                uint64_t quota, Clock::time_point deadline, Counters& c) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa = target(a);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) die("connect: " + std::string(std::strerror(errno)));
  uint64_t sent = 0;
  double per_conn_rate = a.rate > 0 ? a.rate / a.connections : 0;
  auto t0 = Clock::now();
  while (sent < quota && Clock::now() < deadline) {
    uint64_t n = std::min<uint64_t>(per_buffer, quota - sent);
    size_t len = n == per_buffer ? buf.size() : ends[n - 1];
    if (per_conn_rate > 0) {
      // Paced: send in slices of ~1 ms worth of messages.
      uint64_t slice = std::max<uint64_t>(1, static_cast<uint64_t>(per_conn_rate / 1000));
      n = std::min<uint64_t>(n, slice);
      len = ends[n - 1];
      auto due = t0 + std::chrono::duration<double>(static_cast<double>(sent) / per_conn_rate);
      std::this_thread::sleep_until(due);
    }
    size_t off = 0;
    while (off < len) {
      ssize_t w = ::write(fd, buf.data() + off, len - off);
      if (w < 0) {
        if (errno == EINTR) continue;
        die("write: " + std::string(std::strerror(errno)));
      }
      off += static_cast<size_t>(w);
    }
    sent += n;
    c.messages.fetch_add(n, std::memory_order_relaxed);
    c.bytes.fetch_add(len, std::memory_order_relaxed);
  }
  ::shutdown(fd, SHUT_WR);
  // Wait for the server to close or a short grace, so every byte was read.
  char tmp[256];
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  while (::read(fd, tmp, sizeof tmp) > 0) {
  }
  ::close(fd);
}

void udp_sender(const Args& a, const std::vector<std::string>& msgs, uint64_t quota, Clock::time_point deadline,
                Counters& c) {
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
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; ++i) {
      const std::string& m = msgs[next++ % msgs.size()];
      iov[i].iov_base = const_cast<char*>(m.data());
      iov[i].iov_len = m.size();
      hdrs[i] = mmsghdr{};
      hdrs[i].msg_hdr.msg_iov = &iov[i];
      hdrs[i].msg_hdr.msg_iovlen = 1;
      bytes += m.size();
    }
    if (per_conn_rate > 0) {
      std::this_thread::sleep_until(t0 + std::chrono::duration<double>(static_cast<double>(sent) / per_conn_rate));
    }
    int r = ::sendmmsg(fd, hdrs.data(), static_cast<unsigned>(n), 0);
    if (r < 0) {
      if (errno == EINTR || errno == ECONNREFUSED) continue;
      die("sendmmsg: " + std::string(std::strerror(errno)));
    }
    sent += static_cast<uint64_t>(r);
    c.messages.fetch_add(static_cast<uint64_t>(r), std::memory_order_relaxed);
    c.bytes.fetch_add(bytes, std::memory_order_relaxed);
  }
  ::close(fd);
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
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
    if (k == "--target") {
      std::string t = val();
      size_t colon = t.rfind(':');
      if (colon == std::string::npos) die("--target HOST:PORT");
      a.host = t.substr(0, colon);
      a.port = std::atoi(t.substr(colon + 1).c_str());
    } else if (k == "--proto") {
      a.proto = val();
    } else if (k == "--connections") {
      a.connections = static_cast<unsigned>(std::stoul(val()));
    } else if (k == "--messages") {
      a.messages = std::stoull(val());
    } else if (k == "--seconds") {
      a.seconds = std::stod(val());
    } else if (k == "--size") {
      a.size = std::stoull(val());
    } else if (k == "--corpus") {
      a.corpus = val();
    } else if (k == "--rate") {
      a.rate = std::stod(val());
    } else if (k == "--json") {
      a.json = true;
    } else {
      die("unknown argument " + k + " (see bench/loadgen.cc)");
    }
  }
  if (a.proto != "tcp-octet" && a.proto != "tcp-lf" && a.proto != "udp") die("--proto tcp-octet|tcp-lf|udp");
  if (a.connections == 0) die("--connections must be at least 1");
  std::vector<std::string> msgs = make_messages(a);
  uint64_t per_buffer = 0;
  std::string buf;
  std::vector<size_t> ends;  // end offset of each message in buf
  if (a.proto != "udp") {
    buf = frame_all(msgs, a.proto, per_buffer);
    ends.reserve(per_buffer);
    size_t off = 0;
    for (uint64_t i = 0; i < per_buffer; ++i) {
      const std::string& m = msgs[i % msgs.size()];
      off += (a.proto == "tcp-octet" ? std::to_string(m.size()).size() + 1 : 0) + m.size() + (a.proto == "tcp-lf" ? 1 : 0);
      ends.push_back(off);
    }
  }
  auto deadline = a.seconds > 0 ? Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                     std::chrono::duration<double>(a.seconds))
                                : Clock::time_point::max();
  uint64_t quota_total = a.seconds > 0 ? UINT64_MAX / 2 : a.messages;
  Counters c;
  double cpu0 = cpu_seconds();
  auto t0 = Clock::now();
  std::vector<std::thread> th;
  for (unsigned i = 0; i < a.connections; ++i) {
    uint64_t quota = quota_total / a.connections + (i < quota_total % a.connections ? 1 : 0);
    if (a.proto == "udp") {
      th.emplace_back([&, quota] { udp_sender(a, msgs, quota, deadline, c); });
    } else {
      th.emplace_back([&, quota] { tcp_sender(a, buf, per_buffer, ends, quota, deadline, c); });
    }
  }
  for (auto& t : th) t.join();
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  double cpu = cpu_seconds() - cpu0;
  uint64_t m = c.messages.load(), b = c.bytes.load();
  if (a.json) {
    std::printf("{\"messages\":%llu,\"bytes\":%llu,\"seconds\":%.3f,\"msgs_per_s\":%.0f,\"mb_per_s\":%.1f,"
                "\"cpu_seconds\":%.3f}\n",
                static_cast<unsigned long long>(m), static_cast<unsigned long long>(b), secs, m / secs,
                b / secs / 1e6, cpu);
  } else {
    std::printf("sent %llu messages, %llu bytes in %.3f s: %.0f msgs/s, %.1f MB/s; loadgen CPU %.2f s (%.0f%% of one core)\n",
                static_cast<unsigned long long>(m), static_cast<unsigned long long>(b), secs, m / secs,
                b / secs / 1e6, cpu, 100 * cpu / secs);
  }
  return 0;
}
