// logseal-loadgen --proto relp: RELP as rsyslog's omrelp speaks it (librelp):
//   C: 1 open LEN relp_version=0\nrelp_software=...\ncommands=syslog\n
//   S: 1 rsp LEN 200 OK\n...
//   C: 2 syslog LEN MSG\n   3 syslog ...   (up to --window unacknowledged)
//   S: 2 rsp 6 200 OK\n     (in txnr order; logseald answers once durable)
//   C: N close 0\n          S: N rsp 0\n0 serverclose 0\n
// Each connection keeps up to `window` commands in flight and times every
// message from the moment its frame is written to the moment its rsp is read,
// which with logseald is the time to durable storage.
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <string_view>
#include <thread>

#include "bench/loadgen.h"

namespace loadgen {

namespace {

constexpr uint64_t kTxnrMax = 999999999;  // RELP: TXNR = 1*9DIGIT, then wraps to 1
constexpr auto kDrainTimeout = std::chrono::seconds(60);

struct Frame {
  uint64_t txnr = 0;
  std::string_view command;
  std::string_view data;
};

// Parses one frame "TXNR SP COMMAND SP DATALEN [SP DATA] LF" at the front of in.
// Returns the bytes it spans, 0 when more bytes are needed, -1 when malformed.
long parse_frame(std::string_view in, Frame& f) {
  size_t p = 0;
  auto number = [&](uint64_t& v) -> int {
    size_t start = p;
    v = 0;
    while (p < in.size() && in[p] >= '0' && in[p] <= '9') {
      if (p - start == 9) return -1;
      v = v * 10 + static_cast<uint64_t>(in[p++] - '0');
    }
    if (p == in.size()) return 0;
    return p > start ? 1 : -1;
  };
  int r = number(f.txnr);
  if (r <= 0) return r;
  if (in[p++] != ' ') return -1;
  size_t c0 = p;
  while (p < in.size() && ((in[p] >= 'a' && in[p] <= 'z') || (in[p] >= 'A' && in[p] <= 'Z'))) ++p;
  if (p == in.size()) return 0;
  if (p == c0 || in[p] != ' ') return -1;
  f.command = in.substr(c0, p - c0);
  ++p;
  uint64_t len = 0;
  r = number(len);
  if (r <= 0) return r;
  if (len == 0) {
    if (in[p] != '\n') return -1;
    f.data = {};
    return static_cast<long>(p + 1);
  }
  if (in[p++] != ' ') return -1;
  if (in.size() < p + len + 1) return 0;
  if (in[p + len] != '\n') return -1;
  f.data = in.substr(p, len);
  return static_cast<long>(p + len + 1);
}

void append_number(uint64_t v, std::string& out) {
  char tmp[24];
  auto res = std::to_chars(tmp, tmp + sizeof tmp, v);
  out.append(tmp, res.ptr);
}

class RelpConnection {
 public:
  RelpConnection(const Args& a, const std::vector<std::string>& msgs, size_t first_msg, uint64_t quota,
                 Clock::time_point deadline, LoadResult& out)
      : a_(a), msgs_(msgs), next_msg_(first_msg), quota_(quota), deadline_(deadline), out_(out) {
    in_flight_.resize(a.window);
  }

  void run() {
    fd_ = connect_tcp(a_);
    if (!open_session()) return;
    int fl = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &fl, sizeof fl);
    double per_conn_rate = a_.rate > 0 ? a_.rate / a_.connections : 0;
    auto t0 = Clock::now();
    Clock::time_point drain_until = Clock::time_point::max();
    while (true) {
      auto now = Clock::now();
      bool sending = sent_ < quota_ && now < deadline_;
      if (!sending && inflight_ == 0) break;
      if (!sending && drain_until == Clock::time_point::max()) drain_until = now + kDrainTimeout;
      if (now > drain_until) {
        fail("no acknowledgement for " + std::to_string(inflight_) + " messages within 60 s");
        return;
      }
      // Frames to add: the free part of the window, limited by the pace. Like omrelp,
      // refill as soon as there is room: waiting for a larger gap made rsyslog's
      // imrelp, which answers one message at a time, more than twice as slow.
      uint64_t can = sending ? std::min<uint64_t>(a_.window - inflight_, quota_ - sent_) : 0;
      int timeout_ms = 1000;
      if (per_conn_rate > 0 && can > 0) {
        double due = std::chrono::duration<double>(now - t0).count() * per_conn_rate;
        uint64_t allowed = static_cast<uint64_t>(due) + 1;
        can = allowed > sent_ ? std::min<uint64_t>(can, allowed - sent_) : 0;
        if (can == 0) {
          double wait_s =
              (static_cast<double>(sent_) / per_conn_rate) - std::chrono::duration<double>(now - t0).count();
          // At least 1 ms: messages go out in slices of about 1 ms of the rate,
          // not one wake-up per message.
          timeout_ms = std::max(1, static_cast<int>(wait_s * 1000));
        }
      }
      if (can > 0) build(can, now);
      if (send_off_ < send_buf_.size()) {
        if (!flush()) return;
        if (can > 0) continue;  // keep filling the window before waiting
      }
      if (!wait_and_read(send_off_ < send_buf_.size(), timeout_ms)) return;
    }
    close_session();
  }

 private:
  void fail(const std::string& why) {
    out_.errors.push_back("relp connection: " + why);
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool write_all_blocking(std::string_view s) {
    while (!s.empty()) {
      ssize_t w = ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EINTR) continue;
        fail(std::string("send: ") + std::strerror(errno));
        return false;
      }
      s.remove_prefix(static_cast<size_t>(w));
    }
    return true;
  }

  // Reads until one whole frame is at the front of in_ (blocking socket).
  bool read_frame_blocking(Frame& f, long& used) {
    char buf[4096];
    while ((used = parse_frame(in_, f)) == 0) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        fail(n == 0 ? "server closed the connection" : std::string("recv: ") + std::strerror(errno));
        return false;
      }
      in_.append(buf, static_cast<size_t>(n));
    }
    if (used < 0) {
      fail("malformed frame from the server");
      return false;
    }
    return true;
  }

  bool open_session() {
    std::string_view offers = "relp_version=0\nrelp_software=logseal-loadgen\ncommands=syslog";
    std::string open = "1 open " + std::to_string(offers.size()) + " " + std::string(offers) + "\n";
    if (!write_all_blocking(open)) return false;
    Frame f;
    long used = 0;
    if (!read_frame_blocking(f, used)) return false;
    if (f.txnr != 1 || f.command != "rsp" || f.data.substr(0, 3) != "200") {
      fail("open refused: " + std::string(f.data.substr(0, f.data.find('\n'))));
      return false;
    }
    in_.erase(0, static_cast<size_t>(used));
    txnr_ = 2;
    return true;
  }

  void build(uint64_t n, Clock::time_point now) {
    if (send_off_ == send_buf_.size()) {
      send_buf_.clear();
      send_off_ = 0;
    }
    for (uint64_t i = 0; i < n; ++i) {
      const std::string& m = msgs_[next_msg_++ % msgs_.size()];
      size_t before = send_buf_.size();
      append_number(txnr_, send_buf_);
      send_buf_ += " syslog ";
      append_number(m.size(), send_buf_);
      send_buf_ += ' ';
      send_buf_ += m;
      send_buf_ += '\n';
      out_.wire_bytes += send_buf_.size() - before;
      in_flight_[(head_ + inflight_) % a_.window] = Pending{txnr_, now, m.size()};
      ++inflight_;
      ++sent_;
      txnr_ = txnr_ == kTxnrMax ? 1 : txnr_ + 1;
    }
  }

  // Writes what the socket takes now (non-blocking).
  bool flush() {
    while (send_off_ < send_buf_.size()) {
      ssize_t w = ::send(fd_, send_buf_.data() + send_off_, send_buf_.size() - send_off_, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
        fail(std::string("send: ") + std::strerror(errno));
        return false;
      }
      send_off_ += static_cast<size_t>(w);
    }
    return true;
  }

  bool wait_and_read(bool want_write, int timeout_ms) {
    pollfd p{fd_, static_cast<short>(POLLIN | (want_write ? POLLOUT : 0)), 0};
    int r = ::poll(&p, 1, timeout_ms);
    if (r < 0 && errno != EINTR) {
      fail(std::string("poll: ") + std::strerror(errno));
      return false;
    }
    if (r <= 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR))) return true;
    char buf[16384];
    ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return true;
      fail(std::string("recv: ") + std::strerror(errno));
      return false;
    }
    if (n == 0) {
      fail("server closed the connection with " + std::to_string(inflight_) + " messages unacknowledged");
      return false;
    }
    in_.append(buf, static_cast<size_t>(n));
    auto now = Clock::now();
    size_t off = 0;
    while (true) {
      Frame f;
      long used = parse_frame(std::string_view(in_).substr(off), f);
      if (used == 0) break;
      if (used < 0) {
        fail("malformed frame from the server");
        return false;
      }
      off += static_cast<size_t>(used);
      if (f.txnr == 0) {  // "0 serverclose 0": the server is going away
        fail("server sent serverclose with " + std::to_string(inflight_) + " messages unacknowledged");
        return false;
      }
      if (f.command != "rsp" || inflight_ == 0 || in_flight_[head_].txnr != f.txnr) {
        fail("unexpected frame '" + std::to_string(f.txnr) + " " + std::string(f.command) +
             "' (RELP answers in txnr order)");
        return false;
      }
      const Pending& pd = in_flight_[head_];
      if (f.data.substr(0, 3) == "200") {
        ++out_.messages;
        out_.payload_bytes += pd.size_bytes;
        out_.latency.add(static_cast<uint64_t>(std::chrono::nanoseconds(now - pd.sent).count()));
      } else {
        ++out_.refused;
      }
      head_ = (head_ + 1) % a_.window;
      --inflight_;
    }
    in_.erase(0, off);
    return true;
  }

  void close_session() {
    std::string close;
    append_number(txnr_, close);
    close += " close 0\n";
    if (!write_all_blocking(close)) return;
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    Frame f;
    long used = 0;
    if (read_frame_blocking(f, used) && (f.txnr != txnr_ || f.command != "rsp")) {
      out_.errors.push_back("relp connection: close answered with '" + std::string(f.command) + "'");
    }
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  struct Pending {
    uint64_t txnr = 0;
    Clock::time_point sent;
    size_t size_bytes = 0;
  };

  const Args& a_;
  const std::vector<std::string>& msgs_;
  size_t next_msg_;
  uint64_t quota_;
  Clock::time_point deadline_;
  LoadResult& out_;
  int fd_ = -1;
  uint64_t txnr_ = 1;
  uint64_t sent_ = 0;
  // Ring of unacknowledged messages in txnr order: head_ is the oldest.
  std::vector<Pending> in_flight_;
  size_t head_ = 0;
  uint64_t inflight_ = 0;
  std::string send_buf_;
  size_t send_off_ = 0;
  std::string in_;
};

}  // namespace

LoadResult run_relp(const Args& a) {
  if (a.window == 0) die("--window must be at least 1");
  std::vector<std::string> msgs = make_messages(a);
  auto deadline =
      a.seconds > 0
          ? Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(a.seconds))
          : Clock::time_point::max();
  uint64_t quota_total = a.seconds > 0 ? UINT64_MAX / 2 : a.messages;
  std::vector<LoadResult> per(a.connections);
  std::vector<std::thread> th;
  for (unsigned i = 0; i < a.connections; ++i) {
    uint64_t quota = quota_total / a.connections + (i < quota_total % a.connections ? 1 : 0);
    th.emplace_back([&, i, quota] {
      RelpConnection c(a, msgs, i * 97, quota, deadline, per[i]);
      c.run();
    });
  }
  for (auto& t : th) t.join();
  LoadResult r;
  r.has_latency = true;
  for (const LoadResult& p : per) r.add(p);
  return r;
}

}  // namespace loadgen
