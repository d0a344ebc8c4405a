// Counters of the ingest side, exported by /metrics (Prometheus text) together
// with each stream's StreamStats. Lock-free: listeners bump them on their threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace logseal::ingest {

struct ListenerMetrics {
  std::string name;    // e.g. "syslog-tcp 127.0.0.1:5514"
  std::string kind;    // syslog-tcp, syslog-udp
  std::string stream;
  std::atomic<uint64_t> messages{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> unparsed{0};           // sealed raw, flagged
  std::atomic<uint64_t> connections_total{0};
  std::atomic<uint64_t> connections_open{0};
  // drops and cuts, by cause
  std::atomic<uint64_t> truncated{0};          // frames cut at the size limit (kept, flagged)
  std::atomic<uint64_t> framing_errors{0};     // connections closed on broken framing
  std::atomic<uint64_t> framing_fallbacks{0};  // digit-led frames taken as LF-framed
  std::atomic<uint64_t> refused_connections{0};  // over the connection limit
  std::atomic<uint64_t> idle_closed{0};        // closed after the idle timeout
  std::atomic<uint64_t> kernel_drops{0};       // UDP datagrams the kernel dropped (SO_RXQ_OVFL)
  std::atomic<uint64_t> append_errors{0};      // the stream refused a record (stopped or closing)
  std::atomic<uint64_t> refused_requests{0};   // HTTP requests answered 4xx/5xx: nothing of them sealed
};

}  // namespace logseal::ingest
