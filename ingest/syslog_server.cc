#include "ingest/syslog_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <deque>
#include <optional>
#include <span>
#include <unordered_map>

#include "ingest/framing.h"
#include "ingest/net_address.h"
#include "ingest/relp.h"
#include "ingest/syslog_fields.h"
#include "ingest/syslog_parse.h"

namespace logseal::ingest {

namespace {

constexpr unsigned kRingEntries = 512;
constexpr unsigned kRecvBuffers = 256;          // provided buffers per thread (power of two)
constexpr size_t kRecvBufferBytes = 16 * 1024;  // 4 MiB per thread in all
constexpr int kBufferGroup = 1;
constexpr size_t kUdpDatagramBytesMax = 65536;
// Records per append batch: one 16 KiB receive buffer of 300-byte messages is
// ~55; short messages may give more, and a full batch is simply flushed early.
constexpr size_t kBatchRecordsMax = 512;

enum Op : uint64_t { kOpAccept = 1, kOpRecv = 2, kOpUdp = 3, kOpSend = 5, kOpEvent = 6, kOpCancel = 7 };
uint64_t tag(Op op, uint64_t id) { return (static_cast<uint64_t>(op) << 56) | id; }
Op tag_op(uint64_t t) { return static_cast<Op>(t >> 56); }
uint64_t tag_id(uint64_t t) { return t & ((1ull << 56) - 1); }

int64_t unix_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string errno_text(int e) { return std::strerror(e); }

int64_t steady_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
constexpr int64_t kAcceptRetryNs = 100 * 1000 * 1000;

// Creates a bound socket with SO_REUSEPORT, so each ingest thread can have its own.
Result<int> bind_listener(const ListenerSpec& spec, const std::string& address) {
  bool tcp = spec.kind != ListenerSpec::Kind::kSyslogUdp;
  return bind_socket(address, tcp, listener_kind_name(spec.kind));
}

// A duplicate of a socket systemd passed, for one ingest thread. Every thread
// shares the one socket (the kernel hands each connection or datagram to one of
// them); the duplicate is closed by the thread, the original stays with the caller.
Result<int> adopt_listener(const ListenerSpec& spec) {
  bool tcp = spec.kind != ListenerSpec::Kind::kSyslogUdp;
  int type = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(spec.fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
    return errno_status(std::string("passed socket for ") + listener_kind_name(spec.kind), errno);
  }
  if (type != (tcp ? SOCK_STREAM : SOCK_DGRAM)) {
    return invalid_argument(std::string("passed socket for ") + listener_kind_name(spec.kind) + " " +
                            bound_address_of(spec.fd) + " is a " + (type == SOCK_STREAM ? "stream" : "datagram") +
                            " socket; " + listener_kind_name(spec.kind) + " needs " +
                            (tcp ? "ListenStream=" : "ListenDatagram="));
  }
  if (tcp) {
    int listening = 0;
    len = sizeof listening;
    if (::getsockopt(spec.fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening == 0) {
      return invalid_argument(std::string("passed socket for ") + listener_kind_name(spec.kind) + " " +
                              bound_address_of(spec.fd) + " is not listening (the socket unit needs Accept=no)");
    }
  } else {
    // systemd does not set it; the drop counter in /metrics depends on it.
    int one = 1;
    ::setsockopt(spec.fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
  }
  int fd = ::fcntl(spec.fd, F_DUPFD_CLOEXEC, 3);
  if (fd < 0) return errno_status("dup passed socket", errno);
  return fd;
}

}  // namespace

const char* listener_kind_name(ListenerSpec::Kind k) {
  switch (k) {
    case ListenerSpec::Kind::kSyslogTcp:
      return "syslog-tcp";
    case ListenerSpec::Kind::kSyslogUdp:
      return "syslog-udp";
    case ListenerSpec::Kind::kRelp:
      return "relp";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------

struct SyslogServer::Worker {
  SyslogServer* server = nullptr;
  ServerOptions opt;
  std::vector<engine::Stream*> streams;  // per listener
  std::vector<PgStreamIngest*> pg;       // per listener: the stream's PostgreSQL reassembly, or null
  bool flushes_pg = false;               // this thread runs the reassembly's flush timer
  const SyslogAccess* access = nullptr;  // access control and routing, or null
  std::vector<int> fds;                  // per listener: listening TCP socket or UDP socket
  // Per listener: when accept ran out of descriptors or memory, the time (steady
  // clock ns) to re-arm it; 0 while armed. Re-arming at once would spin.
  std::vector<int64_t> accept_retry_ns;
  std::vector<bool> accept_backoff_logged;
  io_uring ring{};
  bool ring_ok = false;
  io_uring_buf_ring* br = nullptr;
  size_t br_bytes = 0;
  std::vector<char> recv_mem;
  std::thread thread;
  std::atomic<int64_t> loop_ns{0};  // steady clock, each pass of run()'s loop

  struct Udp {
    msghdr msg{};
    iovec iov{};
    sockaddr_storage peer{};
    std::vector<char> data;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(uint32_t))];
    uint32_t last_drops = 0;
    // Access control: the identity of the last datagram's source address, so a
    // steady sender is looked up once, not per datagram (the policy never changes).
    std::array<uint8_t, 16> who_address{};
    const Identity* who = nullptr;
    bool who_known = false;
  };
  std::vector<std::unique_ptr<Udp>> udp;  // per listener (null for TCP)

  struct Conn {
    int fd = -1;
    size_t listener = 0;
    std::string source;
    Framer framer;
    int64_t last_active_ns = 0;
    bool closing = false;
    bool read_done = false;           // the last recv completion has arrived
    std::unique_ptr<TlsSession> tls;  // TLS listeners
    bool identity_known = false;      // the TLS handshake is done and source names the peer
    std::string plain;                // scratch: decrypted bytes of one recv
    // Access control (SyslogServer::access_ set): the sender's identity once known
    // and its address; refused: a TLS peer refused, nothing more of it is read.
    const Identity* who = nullptr;
    sockaddr_storage peer{};
    bool refused = false;
    // RELP only.
    std::unique_ptr<RelpSession> relp;
    struct Pending {
      enum class Kind { kOk, kError, kClose, kRefused } kind;
      uint64_t txnr;
      uint64_t index;                    // kOk: answered once stream->durable_size() > index
      engine::Stream* stream = nullptr;  // kOk: the stream the record went to
    };
    // Appended messages wait here for their index until the batch holding them
    // is flushed (index kIndexUnknown until then); std::deque keeps references
    // stable while more are pushed.
    std::deque<Pending> pending;
    std::string out;      // responses not yet handed to the kernel
    std::string sending;  // the buffer of the send in flight (never touched meanwhile)
    bool send_inflight = false;
    bool close_after_send = false;
    Conn(size_t l, std::string src, size_t max) : listener(l), source(std::move(src)), framer(Framing::kAuto, max) {}
  };
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns;
  uint64_t next_conn_id = 1;

  // ---- batched appends ----
  // The messages framed from one receive go to their stream together
  // (Stream::append_batch: the stream lock once per receive, not per message;
  // the listener's counters once per batch, so ingest threads do not fight over
  // their cache lines). A batch holds the records of one listener and one
  // stream in arrival order, and is flushed when the next record goes elsewhere,
  // when it is full, and always before the receive buffer its views point into
  // is recycled or the connection whose source it names goes away. A message
  // outside that buffer (a frame that spanned two receives lives in the
  // framer's own buffer only during the callback) is copied into `arena` first.
  static constexpr uint64_t kIndexUnknown = UINT64_MAX;
  struct Batch {
    size_t listener = 0;
    engine::Stream* stream = nullptr;
    std::vector<format::RecordView> records;                           // capacity kBatchRecordsMax
    std::vector<std::array<uint8_t, format::kSyslogViewBytes>> views;  // the fields of records[i]
    std::vector<Conn::Pending*> acks;  // RELP: the answer waiting for records[i]'s index, or null
    std::vector<uint64_t> indexes;
    std::string arena;    // capacity message_bytes_max: copies of messages not in the receive buffer
    bool failed = false;  // a record was refused since the flag was last cleared
  } batch;
  int event_fd = -1;  // the writer signals durable progress here (RELP acks)
  uint64_t event_buf = 0;
  std::string reply_scratch;

  ~Worker() {
    for (auto& [id, c] : conns) {
      if (c->fd >= 0) ::close(c->fd);
    }
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
    if (ring_ok) io_uring_queue_exit(&ring);
    if (br != nullptr) ::munmap(br, br_bytes);
    if (event_fd >= 0) ::close(event_fd);
  }

  Status setup() {
    int rc = io_uring_queue_init(kRingEntries, &ring, 0);
    if (rc < 0) return unimplemented("io_uring_queue_init: " + errno_text(-rc));
    ring_ok = true;
    br_bytes = kRecvBuffers * sizeof(io_uring_buf);
    void* mem = ::mmap(nullptr, br_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) return errno_status("mmap buffer ring", errno);
    br = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_ring_init(br);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uint64_t>(br);
    reg.ring_entries = kRecvBuffers;
    reg.bgid = kBufferGroup;
    rc = io_uring_register_buf_ring(&ring, &reg, 0);
    if (rc < 0) return unimplemented("io_uring provided buffer rings are not available: " + errno_text(-rc));
    recv_mem.resize(kRecvBuffers * kRecvBufferBytes);
    for (unsigned i = 0; i < kRecvBuffers; ++i) {
      io_uring_buf_ring_add(br, recv_mem.data() + i * kRecvBufferBytes, kRecvBufferBytes, static_cast<uint16_t>(i),
                            io_uring_buf_ring_mask(kRecvBuffers), static_cast<int>(i));
    }
    io_uring_buf_ring_advance(br, kRecvBuffers);
    batch.records.reserve(kBatchRecordsMax);
    batch.views.resize(kBatchRecordsMax);
    batch.acks.reserve(kBatchRecordsMax);
    batch.indexes.resize(kBatchRecordsMax);
    batch.arena.reserve(opt.message_bytes_max);
    event_fd = ::eventfd(0, EFD_CLOEXEC);  // blocking: io_uring polls it
    if (event_fd < 0) return errno_status("eventfd", errno);
    return ok_status();
  }

  void arm_event() {
    io_uring_sqe* s = sqe();
    io_uring_prep_read(s, event_fd, &event_buf, sizeof event_buf, 0);
    io_uring_sqe_set_data64(s, tag(kOpEvent, 0));
  }

  // ---- sending (RELP answers, TLS records) ----

  // Queues plaintext for the peer: as is, or through the TLS session.
  void emit(Conn& c, std::string_view plain) {
    if (plain.empty()) return;
    if (!c.tls) {
      c.out.append(plain);
      return;
    }
    if (c.tls->write(plain).ok()) move_tls_output(c);
  }

  void move_tls_output(Conn& c) {
    std::string_view pending = c.tls->pending_output();
    c.out.append(pending);
    c.tls->consume_output(pending.size());
  }

  // ---- RELP ----

  void start_send(uint64_t id, Conn& c) {
    if (c.send_inflight || c.fd < 0) return;
    if (c.sending.empty()) c.sending.swap(c.out);
    if (c.sending.empty()) {
      if (c.close_after_send) begin_close(c);
      return;
    }
    io_uring_sqe* s = sqe();
    io_uring_prep_send(s, c.fd, c.sending.data(), c.sending.size(), MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, tag(kOpSend, id));
    c.send_inflight = true;
  }

  void on_send(uint64_t id, const io_uring_cqe* cqe) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    Conn& c = *it->second;
    c.send_inflight = false;
    if (cqe->res < 0) {
      c.sending.clear();
      c.out.clear();
      c.pending.clear();
      begin_close(c);
    } else {
      c.sending.erase(0, static_cast<size_t>(cqe->res));
      start_send(id, c);
    }
    maybe_release(id);
  }

  // Answers, in command order, every pending RELP command that can be answered
  // now: an ok once its record is durable, errors and the close in their turn.
  void flush_relp(uint64_t id, Conn& c) {
    std::string& reply = reply_scratch;
    reply.clear();
    while (!c.pending.empty()) {
      const Conn::Pending& p = c.pending.front();
      if (p.kind == Conn::Pending::Kind::kOk) {
        if (p.index >= p.stream->durable_size()) break;
        RelpSession::append_ok(p.txnr, reply);
      } else if (p.kind == Conn::Pending::Kind::kRefused) {
        RelpSession::append_error(p.txnr, 500, "refused by access control: not allowed to write to this stream", reply);
      } else if (p.kind == Conn::Pending::Kind::kError) {
        RelpSession::append_error(p.txnr, 500, "command not supported", reply);
      } else {
        RelpSession::append_close_response(p.txnr, reply);
        RelpSession::append_serverclose(reply);
        c.close_after_send = true;
      }
      c.pending.pop_front();
    }
    if (server->stop_.load() && c.pending.empty() && !c.close_after_send) {
      // Shutting down: everything received is answered; tell omrelp to reconnect.
      RelpSession::append_serverclose(reply);
      c.close_after_send = true;
    }
    emit(c, reply);
    if (c.close_after_send && c.tls) {
      c.tls->shutdown();
      move_tls_output(c);
    }
    start_send(id, c);
  }

  void on_relp_data(uint64_t id, Conn& c, std::string_view data, int64_t now) {
    size_t l = c.listener;
    batch.failed = false;
    Status st = c.relp->feed(data, [&](const RelpSession::Command& cmd) {
      switch (cmd.kind) {
        case RelpSession::Command::Kind::kOpen: {
          // Answered at once, but behind any answers still pending, in order.
          std::string open;
          RelpSession::append_open_response(cmd.txnr, cmd.data, open);
          emit(c, open);
          if (!c.relp->opened()) c.close_after_send = true;
          break;
        }
        case RelpSession::Command::Kind::kSyslog: {
          c.pending.push_back({Conn::Pending::Kind::kOk, cmd.txnr, kIndexUnknown});
          Sender sender{c.who, reinterpret_cast<const sockaddr*>(&c.peer)};
          deliver(l, cmd.data, cmd.truncated, c.source, now, data, &c.pending.back(), &sender);
          if (sender.refused) {
            c.pending.back().kind = Conn::Pending::Kind::kRefused;
          } else {
            c.pending.back().stream = sender.stream;
          }
          break;
        }
        case RelpSession::Command::Kind::kClose:
          c.pending.push_back({Conn::Pending::Kind::kClose, cmd.txnr, 0});
          break;
        case RelpSession::Command::Kind::kOther:
          c.pending.push_back({Conn::Pending::Kind::kError, cmd.txnr, 0});
          break;
      }
    });
    flush_batch();
    if (batch.failed) {
      // The stream refused a message (it stopped, or the disk is full): close
      // without answering what is pending; omrelp resends it.
      c.pending.clear();
      c.close_after_send = true;
    }
    if (!st.ok()) {
      server->metrics_[l]->framing_errors.fetch_add(1, std::memory_order_relaxed);
      server->log("<4>" + c.source + ": closing: " + st.message());
      c.close_after_send = true;
    }
    flush_relp(id, c);
  }

  // A connection goes away only when nothing of it is in the kernel any more:
  // its last recv has completed and no send is in flight (the kernel may still
  // read a send's buffer). RELP answers still due at shutdown keep it a while.
  void maybe_release(uint64_t id) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    Conn& c = *it->second;
    if (!c.read_done || c.send_inflight) return;
    if (c.relp && !c.pending.empty() && server->stop_.load() && !c.closing) return;  // acks still due
    if ((!c.out.empty() || !c.sending.empty()) && !c.closing && c.fd >= 0) {
      start_send(id, c);
      if (c.send_inflight) return;
    }
    close_conn(id, "");
  }

  io_uring_sqe* sqe() {
    io_uring_sqe* s = io_uring_get_sqe(&ring);
    if (s == nullptr) {
      io_uring_submit(&ring);
      s = io_uring_get_sqe(&ring);
    }
    LS_ASSERT(s != nullptr);
    return s;
  }

  void arm_accept(size_t l) {
    io_uring_sqe* s = sqe();
    io_uring_prep_multishot_accept(s, fds[l], nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(s, tag(kOpAccept, l));
  }

  void arm_recv(uint64_t id, int fd) {
    io_uring_sqe* s = sqe();
    io_uring_prep_recv_multishot(s, fd, nullptr, 0, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = kBufferGroup;
    io_uring_sqe_set_data64(s, tag(kOpRecv, id));
  }

  void arm_udp(size_t l) {
    Udp& u = *udp[l];
    u.iov.iov_base = u.data.data();
    u.iov.iov_len = u.data.size();
    u.msg = msghdr{};
    u.msg.msg_name = &u.peer;
    u.msg.msg_namelen = sizeof u.peer;
    u.msg.msg_iov = &u.iov;
    u.msg.msg_iovlen = 1;
    u.msg.msg_control = u.control;
    u.msg.msg_controllen = sizeof u.control;
    io_uring_sqe* s = sqe();
    io_uring_prep_recvmsg(s, fds[l], &u.msg, 0);
    io_uring_sqe_set_data64(s, tag(kOpUdp, l));
  }

  void recycle(uint16_t bid) {
    io_uring_buf_ring_add(br, recv_mem.data() + size_t{bid} * kRecvBufferBytes, kRecvBufferBytes, bid,
                          io_uring_buf_ring_mask(kRecvBuffers), 0);
    io_uring_buf_ring_advance(br, 1);
  }

  // Who sent a message, for access control and routing; deliver() says where it
  // went (stream) or that it was refused.
  struct Sender {
    const Identity* who = nullptr;
    const sockaddr* peer = nullptr;
    bool refused = false;
    engine::Stream* stream = nullptr;
  };

  // Adds one message to the batch of the stream it is routed to (flushing the
  // batch first when that is another stream). `buffer` is the receive data msg
  // came from (valid until the batch is flushed); a msg outside it is copied.
  // ack, when not null, gets the record's index once it is known (kIndexUnknown
  // stays when the stream refuses it; batch.failed says so). sender, when not
  // null, names who sent it and learns where it went or that access control
  // refused it (then nothing is appended).
  void deliver(size_t l, std::string_view msg, bool truncated, std::string_view source, int64_t now_ns,
               std::string_view buffer, Conn::Pending* ack = nullptr, Sender* sender = nullptr) {
    SyslogFields f = parse_syslog(msg);
    RouteTarget to{streams[l], pg[l]};
    if (access != nullptr && access->checks(l)) {
      const RouteTarget* t = access->decide(l, to, sender != nullptr ? sender->who : nullptr,
                                            sender != nullptr ? sender->peer : nullptr, f);
      if (t == nullptr) {
        if (sender != nullptr) sender->refused = true;
        return;
      }
      to = *t;
    }
    if (sender != nullptr) sender->stream = to.stream;
    if (batch.stream != nullptr && (batch.stream != to.stream || batch.listener != l)) flush_batch();
    if (to.pg != nullptr) {
      deliver_pg(l, to, f, msg, truncated, source, now_ns, ack);
      return;
    }
    if (batch.records.size() == kBatchRecordsMax) flush_batch();
    auto at_of = [](std::string_view v) { return reinterpret_cast<uintptr_t>(v.data()); };
    if (at_of(msg) < at_of(buffer) || at_of(msg) + msg.size() > at_of(buffer) + buffer.size()) {
      // A frame that spanned two receives: copied, and its fields parsed again
      // so that they point into the copy.
      if (batch.arena.size() + msg.size() > batch.arena.capacity()) flush_batch();
      size_t at = batch.arena.size();
      batch.arena.append(msg);
      msg = std::string_view(batch.arena).substr(at, msg.size());
      f = parse_syslog(msg);
    }
    size_t i = batch.records.size();
    bool parsed = make_syslog_view(f, msg, batch.views[i].data());
    format::RecordView& r = batch.records.emplace_back();
    r.flags = static_cast<uint8_t>((parsed ? 0 : format::kRecordFlagUnparsed) |
                                   (truncated ? format::kRecordFlagTruncated : 0));
    r.received_ns = now_ns;
    r.source = source;
    if (parsed)
      r.fields = std::string_view(reinterpret_cast<const char*>(batch.views[i].data()), format::kSyslogViewBytes);
    r.raw = msg;
    batch.acks.push_back(ack);
    batch.listener = l;
    batch.stream = to.stream;
  }

  // A message for a stream with PostgreSQL reassembly is appended at once: the
  // reassembly needs its parsed fields and its index, and must see messages in
  // stream order.
  void deliver_pg(size_t l, const RouteTarget& to, const SyslogFields& f, std::string_view msg, bool truncated,
                  std::string_view source, int64_t now_ns, Conn::Pending* ack) {
    flush_batch();
    ListenerMetrics& m = *server->metrics_[l];
    uint8_t view[format::kSyslogViewBytes];
    bool parsed = make_syslog_view(f, msg, view);
    format::RecordView r;
    r.flags = static_cast<uint8_t>((parsed ? 0 : format::kRecordFlagUnparsed) |
                                   (truncated ? format::kRecordFlagTruncated : 0));
    r.received_ns = now_ns;
    r.source = source;
    if (parsed) r.fields = std::string_view(reinterpret_cast<const char*>(view), sizeof view);
    r.raw = msg;
    auto idx = to.stream->append(r);
    if (!idx.ok()) {
      m.append_errors.fetch_add(1, std::memory_order_relaxed);
      batch.failed = true;
      return;
    }
    if (ack != nullptr) ack->index = idx.value();
    // After the append, so the fragment's index is known and below the index of
    // the entry record built from it.
    if (parsed && to.pg->wants(f.app_name)) to.pg->add(f, idx.value(), now_ns);
    m.messages.fetch_add(1, std::memory_order_relaxed);
    m.bytes.fetch_add(msg.size(), std::memory_order_relaxed);
    if (!parsed) m.unparsed.fetch_add(1, std::memory_order_relaxed);
    if (truncated) m.truncated.fetch_add(1, std::memory_order_relaxed);
  }

  // Appends the batch to its stream and empties it. A refused record is counted
  // and skipped, as a single append would be; the ones after it still go in.
  void flush_batch() {
    size_t n = batch.records.size();
    if (n == 0) return;
    ListenerMetrics& m = *server->metrics_[batch.listener];
    std::span<const format::RecordView> records(batch.records);
    std::span<uint64_t> indexes(batch.indexes.data(), n);
    uint64_t messages = 0, bytes = 0, unparsed = 0, truncated = 0, errors = 0;
    size_t done = 0;
    while (done < n) {
      size_t appended = 0;
      Status st = batch.stream->append_batch(records.subspan(done), indexes.subspan(done), appended);
      for (size_t i = done; i < done + appended; ++i) {
        const format::RecordView& r = records[i];
        messages++;
        bytes += r.raw.size();
        if (r.flags & format::kRecordFlagUnparsed) unparsed++;
        if (r.flags & format::kRecordFlagTruncated) truncated++;
        if (batch.acks[i] != nullptr) batch.acks[i]->index = indexes[i];
      }
      done += appended;
      if (!st.ok()) {
        errors++;
        done++;
        batch.failed = true;
      }
    }
    m.messages.fetch_add(messages, std::memory_order_relaxed);
    m.bytes.fetch_add(bytes, std::memory_order_relaxed);
    if (unparsed != 0) m.unparsed.fetch_add(unparsed, std::memory_order_relaxed);
    if (truncated != 0) m.truncated.fetch_add(truncated, std::memory_order_relaxed);
    if (errors != 0) m.append_errors.fetch_add(errors, std::memory_order_relaxed);
    batch.records.clear();
    batch.acks.clear();
    batch.arena.clear();
    batch.stream = nullptr;
  }

  // A message of a TCP or TLS syslog connection. A record refused on a TLS
  // connection ends the connection: its sender is known by certificate and
  // writes where it may not, so nothing more of it is read.
  // `buffer` as for deliver().
  void deliver_from(Conn& c, std::string_view msg, bool truncated, int64_t now, std::string_view buffer) {
    if (c.refused) return;
    if (access == nullptr) {
      deliver(c.listener, msg, truncated, c.source, now, buffer);
      return;
    }
    Sender sender{c.who, reinterpret_cast<const sockaddr*>(&c.peer)};
    deliver(c.listener, msg, truncated, c.source, now, buffer, nullptr, &sender);
    if (sender.refused && c.tls) {
      c.refused = true;
      server->log("<4>" + c.source + ": closing: a record was refused by access control");
      c.tls->shutdown();
      move_tls_output(c);
      c.close_after_send = true;
    }
  }

  // After a TLS handshake: the peer's identity by its certificate, or by its
  // address when it presented none. An unknown peer is refused and closed.
  void admit_tls(Conn& c) {
    TlsPeer peer{c.tls->peer_subject(), std::span<const std::string>(c.tls->peer_sans())};
    const sockaddr* sa = reinterpret_cast<const sockaddr*>(&c.peer);
    c.who = access->identify(&peer, sa);
    if (c.who != nullptr || !access->enforcing()) return;
    c.refused = true;
    access->refuse_connection(c.listener, sa, c.tls->peer_subject(), streams[c.listener]->name());
    server->log("<4>" + c.source +
                ": closing: " + (peer.subject.empty() && peer.sans.empty() ? "its address" : "its certificate") +
                " identifies no one ([[identity]])");
    c.tls->shutdown();
    move_tls_output(c);
    c.close_after_send = true;
  }

  void close_conn(uint64_t id, const std::string& why) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    Conn& c = *it->second;
    ListenerMetrics& m = *server->metrics_[c.listener];
    if (!why.empty())
      server->log("<5>" + std::string(listener_kind_name(server->specs_[c.listener].kind)) + " " + c.source + ": " +
                  why);
    if (c.fd >= 0) ::close(c.fd);
    m.connections_open.fetch_sub(1, std::memory_order_relaxed);
    conns.erase(it);
  }

  // Shuts a connection down; it is closed when its last recv completion arrives.
  void begin_close(Conn& c) {
    if (c.closing) return;
    c.closing = true;
    ::shutdown(c.fd, SHUT_RDWR);
  }

  void on_accept(size_t l, const io_uring_cqe* cqe) {
    ListenerMetrics& m = *server->metrics_[l];
    bool more = cqe->flags & IORING_CQE_F_MORE;
    bool stopping = server->stop_.load();
    if (cqe->res < 0) {
      int err = -cqe->res;
      if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        // Out of descriptors or memory: the pending connection stays in the
        // backlog; retry in a moment instead of spinning on the same error.
        if (!more && !stopping) accept_retry_ns[l] = steady_now_ns() + kAcceptRetryNs;
        if (!accept_backoff_logged[l]) {
          accept_backoff_logged[l] = true;
          server->log("<4>accept on " + server->bound_[l] + ": " + errno_text(err) +
                      "; retrying every 100 ms until descriptors are free");
        }
        return;
      }
      if (!more && !stopping) arm_accept(l);
      // At stop the listening socket is shut down and accept ends with EINVAL: expected, not a warning.
      if (err != ECANCELED && !stopping) server->log("<4>accept on " + server->bound_[l] + ": " + errno_text(err));
      return;
    }
    if (!more && !stopping) arm_accept(l);
    if (accept_backoff_logged[l]) {
      accept_backoff_logged[l] = false;
      server->log("<5>accept on " + server->bound_[l] + ": accepting again");
    }
    int fd = cqe->res;
    if (conns.size() >= opt.connections_max) {
      m.refused_connections.fetch_add(1, std::memory_order_relaxed);
      ::close(fd);
      return;
    }
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len);
    uint64_t id = next_conn_id++;
    auto c =
        std::make_unique<Conn>(l, "tcp:" + address_text(reinterpret_cast<sockaddr*>(&peer)), opt.message_bytes_max);
    c->fd = fd;
    c->last_active_ns = unix_now_ns();
    if (access != nullptr) {
      c->peer = peer;
      if (!server->specs_[l].tls) c->who = access->identify(nullptr, reinterpret_cast<const sockaddr*>(&peer));
    }
    if (server->specs_[l].tls) {
      c->tls = std::make_unique<TlsSession>(server->specs_[l].tls);
      c->source = "tls:" + c->source.substr(4);
    }
    if (server->specs_[l].kind == ListenerSpec::Kind::kRelp) {
      // Acks are small writes: without TCP_NODELAY, Nagle holds each one until the
      // client's delayed ACK (40 ms), which caps a 128-message window at ~3k msgs/s.
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      c->relp = std::make_unique<RelpSession>(opt.message_bytes_max);
      c->source = (c->tls ? "relp+tls:" : "relp:") + c->source.substr(c->source.find(':') + 1);
    }
    conns[id] = std::move(c);
    m.connections_total.fetch_add(1, std::memory_order_relaxed);
    m.connections_open.fetch_add(1, std::memory_order_relaxed);
    arm_recv(id, fd);
  }

  void on_recv(uint64_t id, const io_uring_cqe* cqe) {
    auto it = conns.find(id);
    bool has_buf = cqe->flags & IORING_CQE_F_BUFFER;
    uint16_t bid = static_cast<uint16_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
    if (it == conns.end()) {
      if (has_buf) recycle(bid);
      return;
    }
    Conn& c = *it->second;
    bool more = cqe->flags & IORING_CQE_F_MORE;
    if (cqe->res > 0) {
      int64_t now = unix_now_ns();
      c.last_active_ns = now;
      std::string_view data(recv_mem.data() + size_t{bid} * kRecvBufferBytes, static_cast<size_t>(cqe->res));
      size_t l = c.listener;
      if (c.tls) {
        c.plain.clear();
        Status ts = c.tls->feed(data, c.plain);
        if (has_buf) recycle(bid);
        has_buf = false;
        move_tls_output(c);  // handshake records, or the alert after an error
        if (c.tls->handshake_done() && !c.identity_known) {
          c.identity_known = true;
          if (!c.tls->peer_subject().empty()) {
            c.source += " subject=" + c.tls->peer_subject();
            for (const auto& san : c.tls->peer_sans()) c.source += " san=" + san;
          }
          if (access != nullptr) admit_tls(c);
        }
        if (!ts.ok()) {
          server->metrics_[l]->framing_errors.fetch_add(1, std::memory_order_relaxed);
          server->log("<4>" + c.source + ": closing: " + ts.message());
          c.close_after_send = true;
        } else if (c.tls->peer_closed()) {
          c.tls->shutdown();
          move_tls_output(c);
          c.close_after_send = true;
        }
        start_send(id, c);
        data = c.refused ? std::string_view() : std::string_view(c.plain);
        if (c.close_after_send && data.empty()) {
          if (!more && (c.closing || server->stop_.load()))
            finish_conn(id);
          else if (!more && !c.closing)
            arm_recv(id, c.fd);
          return;
        }
      }
      if (c.relp) {
        on_relp_data(id, c, data, now);
        if (has_buf) recycle(bid);
        if (!more && !c.closing && !server->stop_.load()) arm_recv(id, c.fd);
        if (!more && (c.closing || server->stop_.load())) finish_conn(id);
        return;
      }
      Status st = c.framer.feed(
          data, [&](std::string_view msg, bool truncated) { deliver_from(c, msg, truncated, now, data); });
      flush_batch();
      if (has_buf) recycle(bid);
      if (c.refused) start_send(id, c);
      if (!st.ok()) {
        server->metrics_[l]->framing_errors.fetch_add(1, std::memory_order_relaxed);
        server->log("<4>" + c.source + ": closing: " + st.message());
        begin_close(c);
      }
      if (!more && !c.closing && !server->stop_.load()) arm_recv(id, c.fd);
      if (!more && (c.closing || server->stop_.load())) finish_conn(id);
      return;
    }
    if (has_buf) recycle(bid);
    if (cqe->res == -ENOBUFS && !c.closing && !server->stop_.load()) {
      // All provided buffers are in use: re-arm; they return as messages are appended.
      if (!more) arm_recv(id, c.fd);
      return;
    }
    // 0: the peer closed; < 0: an error or our shutdown.
    if (!more) finish_conn(id, cqe->res < 0 && cqe->res != -ECANCELED && !c.closing ? errno_text(-cqe->res) : "");
  }

  // The connection has ended: deliver a last unterminated line, then close.
  void finish_conn(uint64_t id, const std::string& why = "") {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    Conn& c = *it->second;
    c.read_done = true;
    if (c.relp) {
      if (!why.empty()) server->log("<5>" + c.source + ": " + why);
      if (!server->stop_.load()) {
        // The client went away: its unanswered commands are resent on reconnect.
        c.pending.clear();
        c.closing = true;
      }
      maybe_release(id);
      return;
    }
    size_t l = c.listener;
    int64_t now = unix_now_ns();
    server->metrics_[l]->framing_fallbacks.fetch_add(c.framer.framing_fallbacks(), std::memory_order_relaxed);
    Status st = c.framer.finish([&](std::string_view msg, bool truncated) {
      // When the daemon ended the connection (shutdown, idle timeout, framing
      // error) a frame may be incomplete: keep what was read, flagged as cut.
      deliver_from(c, msg, truncated || server->stop_.load() || c.closing, now, {});
    });
    flush_batch();
    if (!st.ok()) {
      server->metrics_[l]->framing_errors.fetch_add(1, std::memory_order_relaxed);
      server->log("<5>" + c.source + ": connection ended inside a frame: " + st.message());
    } else if (!why.empty()) {
      server->log("<5>" + c.source + ": " + why);
    }
    maybe_release(id);
  }

  void on_udp(size_t l, const io_uring_cqe* cqe) {
    Udp& u = *udp[l];
    ListenerMetrics& m = *server->metrics_[l];
    if (cqe->res >= 0) {
      for (cmsghdr* cm = CMSG_FIRSTHDR(&u.msg); cm != nullptr; cm = CMSG_NXTHDR(&u.msg, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_RXQ_OVFL) {
          uint32_t drops;
          std::memcpy(&drops, CMSG_DATA(cm), sizeof drops);
          if (drops > u.last_drops) m.kernel_drops.fetch_add(drops - u.last_drops, std::memory_order_relaxed);
          u.last_drops = drops;
        }
      }
      bool truncated = (u.msg.msg_flags & MSG_TRUNC) != 0;
      size_t n = std::min<size_t>(static_cast<size_t>(cqe->res), opt.message_bytes_max);
      if (n < static_cast<size_t>(cqe->res)) truncated = true;
      std::string source = "udp:" + address_text(reinterpret_cast<sockaddr*>(&u.peer));
      std::string_view msg(u.data.data(), n);
      // A trailing LF or NUL is framing some senders add, but the raw bytes stay exact.
      if (!msg.empty()) {
        Sender sender;
        if (access != nullptr) {
          const sockaddr* sa = reinterpret_cast<const sockaddr*>(&u.peer);
          std::array<uint8_t, 16> a{};
          if (!address_bytes(sa, a) || !u.who_known || a != u.who_address) {
            u.who = access->identify(nullptr, sa);
            u.who_address = a;
            u.who_known = true;
          }
          sender = Sender{u.who, sa};
        }
        deliver(l, msg, truncated, source, unix_now_ns(), msg, nullptr, access != nullptr ? &sender : nullptr);
        // The record's source names `source`, which ends here.
        flush_batch();
      }
    } else if (cqe->res != -ECANCELED) {
      server->log("<4>udp " + server->bound_[l] + ": " + errno_text(-cqe->res));
    }
    if (!server->stop_.load()) arm_udp(l);
  }

  void check_idle() {
    if (opt.idle_timeout_s == 0) return;
    int64_t limit = unix_now_ns() - int64_t{opt.idle_timeout_s} * 1000000000;
    for (auto& [id, c] : conns) {
      if (!c->closing && c->last_active_ns < limit) {
        server->metrics_[c->listener]->idle_closed.fetch_add(1, std::memory_order_relaxed);
        server->log("<5>" + c->source + ": closing after " + std::to_string(opt.idle_timeout_s) + " s idle");
        begin_close(*c);
      }
    }
  }

  void on_durable_event() {
    std::vector<uint64_t> ids;
    for (auto& [id, c] : conns) {
      if (c->relp) ids.push_back(id);
    }
    for (uint64_t id : ids) {
      auto it = conns.find(id);
      if (it == conns.end()) continue;
      flush_relp(id, *it->second);
      maybe_release(id);
    }
    arm_event();
  }

  void run() {
    accept_retry_ns.assign(fds.size(), 0);
    accept_backoff_logged.assign(fds.size(), false);
    for (size_t l = 0; l < fds.size(); ++l) {
      if (server->specs_[l].kind == ListenerSpec::Kind::kSyslogUdp) {
        arm_udp(l);
      } else {
        arm_accept(l);
      }
    }
    arm_event();
    auto last_idle_check = std::chrono::steady_clock::now();
    auto last_pg_flush = last_idle_check;
    bool stopping = false;
    auto stop_deadline = std::chrono::steady_clock::time_point{};
    while (true) {
      loop_ns.store(steady_now_ns(), std::memory_order_relaxed);
      __kernel_timespec ts{0, 100 * 1000 * 1000};
      io_uring_cqe* cqe = nullptr;
      int rc = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, nullptr);
      if (rc < 0 && rc != -ETIME && rc != -EINTR) {
        server->log("<2>ingest thread: io_uring wait failed: " + errno_text(-rc));
        break;
      }
      unsigned head;
      unsigned seen = 0;
      io_uring_for_each_cqe(&ring, head, cqe) {
        ++seen;
        uint64_t t = io_uring_cqe_get_data64(cqe);
        switch (tag_op(t)) {
          case kOpAccept:
            on_accept(tag_id(t), cqe);
            break;
          case kOpRecv:
            on_recv(tag_id(t), cqe);
            break;
          case kOpUdp:
            on_udp(tag_id(t), cqe);
            break;
          case kOpSend:
            on_send(tag_id(t), cqe);
            break;
          case kOpEvent:
            on_durable_event();
            break;
          default:
            break;
        }
      }
      io_uring_cq_advance(&ring, seen);
      auto now = std::chrono::steady_clock::now();
      for (size_t l = 0; l < accept_retry_ns.size(); ++l) {
        if (accept_retry_ns[l] != 0 && steady_now_ns() >= accept_retry_ns[l] && !server->stop_.load()) {
          accept_retry_ns[l] = 0;
          arm_accept(l);
        }
      }
      if (now - last_idle_check > std::chrono::seconds(1)) {
        check_idle();
        last_idle_check = now;
      }
      // PostgreSQL entries whose last fragment is old enough are complete. One
      // thread runs the timer; the reassembly is shared by all (per-stream lock).
      if (flushes_pg && now - last_pg_flush > std::chrono::milliseconds(200)) {
        int64_t wall = unix_now_ns();
        for (auto& [name, p] : server->pg_) p->flush_due(wall);
        last_pg_flush = now;
      }
      if (server->stop_.load() && !stopping) {
        stopping = true;
        stop_deadline = now + std::chrono::seconds(5);
        // Stop accepting and reading: shut listeners and connections down; the
        // completions that follow deliver what was already read.
        for (size_t l = 0; l < fds.size(); ++l) {
          if (fds[l] < 0) continue;
          if (server->specs_[l].fd >= 0) {
            // A socket from systemd: shutting it down would end its listening for
            // systemd too (and for the next start), so only our request on it ends.
            io_uring_sqe* s = sqe();
            bool is_udp = server->specs_[l].kind == ListenerSpec::Kind::kSyslogUdp;
            io_uring_prep_cancel64(s, tag(is_udp ? kOpUdp : kOpAccept, l), 0);
            io_uring_sqe_set_data64(s, tag(kOpCancel, l));
          } else {
            ::shutdown(fds[l], SHUT_RDWR);
          }
        }
        for (auto& [id, c] : conns) {
          if (c->relp) {
            // Stop reading; the acks of what was read still go out, then serverclose.
            ::shutdown(c->fd, SHUT_RD);
          } else {
            begin_close(*c);
          }
        }
      }
      if (stopping) {
        // Durable progress may not wake us (the event is per batch): poll RELP acks.
        std::vector<uint64_t> ids;
        for (auto& [id, c] : conns) {
          if (c->relp) ids.push_back(id);
        }
        for (uint64_t id : ids) {
          auto it = conns.find(id);
          if (it != conns.end()) {
            flush_relp(id, *it->second);
            maybe_release(id);
          }
        }
      }
      if (stopping && (conns.empty() || now > stop_deadline)) break;
    }
    // Whatever is still open: deliver partial frames, close.
    std::vector<uint64_t> ids;
    for (auto& [id, c] : conns) ids.push_back(id);
    for (uint64_t id : ids) finish_conn(id);
  }
};

Result<std::unique_ptr<SyslogServer>> SyslogServer::start(std::vector<ListenerSpec> listeners, engine::Store& store,
                                                          ServerOptions options) {
  std::unique_ptr<SyslogServer> s(new SyslogServer());
  s->specs_ = std::move(listeners);
  s->store_ = &store;
  if (options.threads == 0) options.threads = 1;
  std::vector<engine::Stream*> streams;
  for (auto& spec : s->specs_) {
    LS_ASSIGN_OR_RETURN(engine::Stream * st, store.stream(spec.stream));
    streams.push_back(st);
    auto m = std::make_unique<ListenerMetrics>();
    m->kind = listener_kind_name(spec.kind);
    m->stream = spec.stream;
    s->metrics_.push_back(std::move(m));
  }
  // One PostgreSQL reassembly per stream (see PgStreamIngest for why not per thread).
  // A routed record's reassembly is the one of the stream it is routed to, with
  // the options of the listener it came from.
  auto pg_of = [&](engine::Stream& stream, const PgListenerOptions& opt) -> Result<PgStreamIngest*> {
    auto it = s->pg_.find(stream.name());
    if (it == s->pg_.end()) {
      LS_ASSIGN_OR_RETURN(auto p, PgStreamIngest::create(stream, opt));
      it = s->pg_.emplace(stream.name(), std::move(p)).first;
    } else {
      const PgListenerOptions& a = it->second->options();
      if (a.log_line_prefix != opt.log_line_prefix || a.app_names != opt.app_names ||
          a.sequence_numbers != opt.sequence_numbers || a.split_messages != opt.split_messages ||
          a.flush_ms != opt.flush_ms) {
        return invalid_argument(
            "listeners of stream " + stream.name() +
            " disagree on their PostgreSQL options (pg_*): one reassembly per stream needs one setting");
      }
    }
    return it->second.get();
  };
  std::vector<PgStreamIngest*> pg;
  for (size_t l = 0; l < s->specs_.size(); ++l) {
    const ListenerSpec& spec = s->specs_[l];
    if (!spec.pg.enabled) {
      pg.push_back(nullptr);
      continue;
    }
    LS_ASSIGN_OR_RETURN(PgStreamIngest * p, pg_of(*streams[l], spec.pg));
    pg.push_back(p);
  }
  // Streams a RELP listener's records may land in: each wakes the threads for acks.
  std::vector<engine::Stream*> relp_streams;
  for (size_t l = 0; l < s->specs_.size(); ++l) {
    if (s->specs_[l].kind == ListenerSpec::Kind::kRelp) relp_streams.push_back(streams[l]);
  }
  for (unsigned t = 0; t < options.threads; ++t) {
    auto w = std::make_unique<Worker>();
    w->server = s.get();
    w->opt = options;
    w->streams = streams;
    w->pg = pg;
    w->flushes_pg = t == 0;
    LS_RETURN_IF_ERROR(w->setup());
    for (size_t l = 0; l < s->specs_.size(); ++l) {
      // The first thread binds the address as given (port 0 gets resolved); the
      // others bind the resolved address with SO_REUSEPORT.
      int fd = -1;
      if (s->specs_[l].fd >= 0) {
        LS_ASSIGN_OR_RETURN(fd, adopt_listener(s->specs_[l]));
      } else {
        std::string addr = t == 0 ? s->specs_[l].address : s->bound_[l];
        LS_ASSIGN_OR_RETURN(fd, bind_listener(s->specs_[l], addr));
      }
      w->fds.push_back(fd);
      if (t == 0) {
        s->bound_.push_back(bound_address_of(fd));
        s->metrics_[l]->name = std::string(listener_kind_name(s->specs_[l].kind)) + " " + s->bound_[l];
        if (s->specs_[l].name.empty()) {
          s->specs_[l].name = std::string(listener_kind_name(s->specs_[l].kind)) + (s->specs_[l].tls ? "-tls-" : "-") +
                              s->bound_[l].substr(s->bound_[l].rfind(':') + 1);
        }
      }
      if (s->specs_[l].kind == ListenerSpec::Kind::kSyslogUdp) {
        auto u = std::make_unique<Worker::Udp>();
        u->data.resize(kUdpDatagramBytesMax + 1);
        w->udp.push_back(std::move(u));
      } else {
        w->udp.push_back(nullptr);
      }
    }
    s->workers_.push_back(std::move(w));
  }
  // Access control and routing, once the listeners' names are known (bound ports).
  if (options.access != nullptr && (options.access->enabled() || !options.access->routes().empty())) {
    std::vector<std::string> names;
    for (const ListenerSpec& spec : s->specs_) names.push_back(spec.name);
    s->access_ = std::make_unique<SyslogAccess>(options.access, options.refusals, names);
    for (size_t l = 0; l < s->specs_.size(); ++l) {
      const ListenerSpec& spec = s->specs_[l];
      for (const std::string& name : s->access_->route_streams(l)) {
        LS_ASSIGN_OR_RETURN(engine::Stream * st, store.stream(name));
        RouteTarget t{st, nullptr};
        if (spec.pg.enabled) {
          LS_ASSIGN_OR_RETURN(t.pg, pg_of(*st, spec.pg));
        }
        s->access_->set_target(l, name, t);
        if (spec.kind == ListenerSpec::Kind::kRelp) relp_streams.push_back(st);
      }
    }
    for (auto& w : s->workers_) w->access = s->access_.get();
  }
  // RELP acks wait for durability: the stream's writer wakes every ingest thread
  // after each durable batch (one eventfd write per worker per batch).
  std::vector<int> event_fds;
  for (auto& w : s->workers_) event_fds.push_back(w->event_fd);
  std::sort(relp_streams.begin(), relp_streams.end());
  relp_streams.erase(std::unique(relp_streams.begin(), relp_streams.end()), relp_streams.end());
  for (engine::Stream* rs : relp_streams) {
    rs->add_durable_callback([event_fds](uint64_t) {
      uint64_t one = 1;
      for (int fd : event_fds) {
        ssize_t n = ::write(fd, &one, sizeof one);
        (void)n;  // EAGAIN: the counter is already non-zero, the worker will wake
      }
    });
  }
  for (auto& w : s->workers_) {
    Worker* wp = w.get();
    wp->loop_ns.store(steady_now_ns(), std::memory_order_relaxed);
    wp->thread = std::thread([wp] { wp->run(); });
  }
  return s;
}

SyslogServer::~SyslogServer() { stop(); }

void SyslogServer::stop() {
  stop_.store(true);
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
  // No fragment arrives any more: what is pending is complete as far as this run
  // knows. Emitted here, before the caller closes the store, so it is sealed.
  if (!stopped_) {
    stopped_ = true;
    for (auto& [name, p] : pg_) p->flush_all(unix_now_ns());
  }
}

int64_t SyslogServer::oldest_loop_ns() const {
  int64_t oldest = INT64_MAX;
  for (auto& w : workers_) oldest = std::min(oldest, w->loop_ns.load(std::memory_order_relaxed));
  return oldest;
}

std::string SyslogServer::bound_address(size_t i) const { return i < bound_.size() ? bound_[i] : ""; }

void SyslogServer::log(const std::string& line) const { store_->log(line); }

}  // namespace logseal::ingest
