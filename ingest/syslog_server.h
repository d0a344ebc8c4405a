// Syslog listeners on io_uring: TCP (RFC 6587 octet counting and LF framing on the
// same port, decided per frame), UDP (one message per datagram) and RELP (each
// message acknowledged with "200 OK" only after the batch holding it is durable).
//
// Threads: `threads` ingest threads, each with its own io_uring, its own
// SO_REUSEPORT listening sockets (the kernel spreads connections), multishot
// accept, and multishot recv into a ring of provided buffers. A thread frames,
// parses and appends on its own; when a stream's queue is full, append blocks and
// the thread stops reading, so TCP senders block in the kernel (backpressure),
// never a drop. UDP drops in the kernel are counted from SO_RXQ_OVFL.
//
// Bounded: buffers are set up at start; a connection holds at most one partial
// message (message_bytes_max); connections over connections_max are closed at once.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "engine/store.h"
#include "ingest/metrics.h"
#include "ingest/pg_records.h"
#include "ingest/syslog_access.h"
#include "ingest/tls.h"

namespace logseal::ingest {

struct ListenerSpec {
  // kRelp: RELP as rsyslog's omrelp speaks it; "200 OK" only once durable.
  enum class Kind { kSyslogTcp, kSyslogUdp, kRelp } kind = Kind::kSyslogTcp;
  std::string address;  // "127.0.0.1:5514", "[::1]:5514", ":5514" (all addresses)
  // A socket already bound (and, for TCP kinds, listening) that systemd passed
  // (socket activation); -1: bind `address`. The server uses duplicates of it and
  // never shuts it down, because systemd holds the same socket for the next start.
  // The caller keeps ownership of this descriptor.
  int fd = -1;
  std::string stream;  // stream the records go to (unless a [[route]] says otherwise)
  // The listener's name, as [[route]] rules and logseal_refused_total name it;
  // "" : KIND[-tls]-PORT with the bound port (e.g. "syslog-tcp-tls-6514").
  std::string name;
  // TCP and RELP only: when set, connections speak TLS (RFC 5425 for syslog); the
  // verified client identity (certificate subject and SANs) goes into each
  // record's source.
  std::shared_ptr<TlsContext> tls;
  // PostgreSQL servers log to this listener: their messages are also fed to the
  // stream's reassembly (pg_records.h), which adds one record per AUDIT entry.
  // Listeners sharing a stream must agree on these options.
  PgListenerOptions pg;
};
const char* listener_kind_name(ListenerSpec::Kind k);

struct ServerOptions {
  unsigned threads = 1;
  size_t message_bytes_max = 64 * 1024;  // longer frames are cut and flagged
  unsigned connections_max = 4096;       // per thread
  unsigned idle_timeout_s = 600;         // close a connection silent this long (0: never)
  // Access control and routing (ingest/access.h); null: open ingest, no routes.
  // refusals must be set when access->enabled(). Both outlive the server.
  const AccessPolicy* access = nullptr;
  RefusalLog* refusals = nullptr;
};

class SyslogServer {
 public:
  // Binds every listener (errors name the address), then starts the threads.
  static Result<std::unique_ptr<SyslogServer>> start(std::vector<ListenerSpec> listeners, engine::Store& store,
                                                     ServerOptions options);
  ~SyslogServer();
  // Stops reading and accepting, finishes the messages already read, joins.
  void stop();
  // The steady-clock time (ns) of the last loop pass of the ingest thread that
  // passed least recently. Each thread passes at least every 100 ms while it is
  // not blocked, so an old value means a thread is stuck (the watchdog's proof of
  // life for ingest).
  int64_t oldest_loop_ns() const;
  // The bound address of listener i (after port 0 is resolved), e.g. "127.0.0.1:40211".
  std::string bound_address(size_t i) const;
  const std::vector<std::unique_ptr<ListenerMetrics>>& metrics() const { return metrics_; }
  // The PostgreSQL reassembly of each stream that has one, by stream name.
  const std::map<std::string, std::unique_ptr<PgStreamIngest>>& pg_streams() const { return pg_; }

  struct Worker;

 private:
  SyslogServer() = default;
  void log(const std::string& line) const;
  engine::Store* store_ = nullptr;
  std::vector<ListenerSpec> specs_;
  std::vector<std::string> bound_;
  std::vector<std::unique_ptr<ListenerMetrics>> metrics_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::map<std::string, std::unique_ptr<PgStreamIngest>> pg_;
  std::unique_ptr<SyslogAccess> access_;  // null without identities and routes
  std::atomic<bool> stop_{false};
  bool stopped_ = false;
};

}  // namespace logseal::ingest
