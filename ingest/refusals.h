// What access control refused, told three ways without ever flooding any of them:
//  - counters: logseal_refused_total{listener,stream,reason} in /metrics;
//  - log lines: the first refusal per (listener, reason) at once, then one line a
//    minute with the count of that minute;
//  - `_audit` records (engine/audit.h, action "access-refused"): the first refusal
//    per (listener, identity or source address, stream, reason, what) at once,
//    then at most one record per second per key carrying the count since the last
//    one (detail is the first refusal's).
//    Members: listener, identity or source, stream, reason, what (record,
//    connection or request), count, and detail (e.g. the certificate subject of an
//    unknown sender) when there is one.
//
// Thread-safe: the ingest threads and the HTTP loop call refuse(); a flusher
// thread (start()/stop()) writes the pending counts. Refusal is not the common
// path: a mutex guards the tables. Bounded: at most kRefusalKeysMax aggregation
// keys; past that, refusals are counted under source "(other)". stop() writes
// every pending count, so it runs before the store closes.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>

#include "engine/store.h"
#include "ingest/access.h"

namespace logseal::ingest {

enum class RefusalReason : uint8_t { kUnknownIdentity, kNotAllowed };
const char* refusal_reason_name(RefusalReason r);  // "unknown-identity", "not-allowed"

inline constexpr size_t kRefusalKeysMax = 4096;

class RefusalLog {
 public:
  // store: where `_audit` records go (null: none, e.g. in unit tests); log: one
  // line each (syslog priority prefix "<4>").
  RefusalLog(engine::Store* store, std::function<void(const std::string&)> log);
  ~RefusalLog();
  RefusalLog(const RefusalLog&) = delete;
  RefusalLog& operator=(const RefusalLog&) = delete;

  void start();
  void stop();

  // One refusal. who: the identity when the sender is known (then `source` is
  // only logged), else null and source (an address without port) names it.
  // what: "record", "connection" or "request".
  void refuse(std::string_view listener, const Identity* who, std::string_view source, std::string_view stream,
              RefusalReason reason, std::string_view what, std::string_view detail = {});

  // Appends the logseal_refused_total family (nothing when there was no refusal).
  void append_metrics(std::string& out) const;
  uint64_t total() const;

  // Writes due aggregated records and log lines now (the flusher calls it; tests too).
  void flush(bool everything);

 private:
  struct Aggregate {
    std::string listener, who, stream, what, detail;
    bool known = false;  // who is an identity name (else a source address)
    RefusalReason reason = RefusalReason::kUnknownIdentity;
    int64_t last_audit_ns = 0;
    uint64_t pending = 0;
  };
  struct LogState {
    int64_t last_log_ns = 0;
    uint64_t since_log = 0;
  };
  void write_audit(const Aggregate& a, uint64_t count);

  engine::Store* store_;
  std::function<void(const std::string&)> log_;
  mutable std::mutex mu_;
  std::map<std::string, Aggregate, std::less<>> aggregates_;
  std::map<std::string, LogState, std::less<>> log_state_;                          // listener \x1f reason
  std::map<std::tuple<std::string, std::string, RefusalReason>, uint64_t> counts_;  // listener, stream, reason
  uint64_t total_ = 0;
  std::thread thread_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool started_ = false;
};

}  // namespace logseal::ingest
