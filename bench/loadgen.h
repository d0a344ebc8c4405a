// Shared pieces of logseal-loadgen: its arguments, the message corpus, a latency
// histogram and CPU accounting. Each protocol lives in its own file
// (loadgen.cc: TCP, TLS and UDP syslog; loadgen_relp.cc; loadgen_tls.cc: the TLS
// client; loadgen_http.cc)
// and reports a LoadResult that main() prints.
#pragma once

#include <netinet/in.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace loadgen {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string host = "127.0.0.1";
  int port = 5514;
  std::string proto = "tcp-octet";
  unsigned connections = 1;
  uint64_t messages = 1000000;  // in total over all connections (HTTP: events)
  double seconds = 0;           // run for this long instead of a message count
  size_t size = 300;
  std::string corpus;
  double rate = 0;  // messages (HTTP: events) per second over all connections; 0 = flat out
  bool json = false;
  // RELP: commands sent and not yet acknowledged, per connection (omrelp's default).
  unsigned window = 128;
  // TLS: CA that the server certificate must chain to; optional client certificate.
  std::string ca_file, cert_file, key_file;
  // HTTP: events per POST and the path.
  unsigned batch = 100;
  std::string path = "/v1/events";
};

[[noreturn]] void die(const std::string& s);

// The messages to send: the corpus file's lines, or 1024 distinct RFC 5424
// messages of exactly a.size bytes.
std::vector<std::string> make_messages(const Args& a);

sockaddr_in target(const Args& a);
// A connected blocking TCP socket to the target (dies on failure).
int connect_tcp(const Args& a);

// Log-linear histogram of nanosecond latencies: exact below 128 ns, then 64
// sub-buckets per power of two (under 1.6% error), fixed size whatever the run
// length, so recording is one increment.
class LatencyHistogram {
 public:
  LatencyHistogram();
  void add(uint64_t ns);
  void merge(const LatencyHistogram& o);
  uint64_t count() const { return count_; }
  uint64_t max_ns() const { return max_ns_; }
  // The q-quantile (0..1), as the middle of its bucket (never above max).
  uint64_t quantile_ns(double q) const;

 private:
  static size_t bucket_of(uint64_t ns);
  static uint64_t bucket_low(size_t b);
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t max_ns_ = 0;
};

struct LoadResult {
  uint64_t messages = 0;       // sent (fire-and-forget) or acknowledged (RELP, HTTP)
  uint64_t payload_bytes = 0;  // message bytes of those messages
  uint64_t wire_bytes = 0;     // bytes written to the sockets, framing included
  uint64_t refused = 0;        // RELP: non-200 responses; HTTP: non-200 requests
  uint64_t requests = 0;       // HTTP: requests answered 200
  LatencyHistogram latency;    // RELP: per message; HTTP: per request
  bool has_latency = false;
  std::vector<std::string> errors;

  // Adds one connection's counts, latencies and errors to these.
  void add(const LoadResult& o);
};

// A TLS client connection (OpenSSL) for --proto tls: verifies the server
// certificate against a.ca_file and the target address, presents
// a.cert_file/a.key_file when given. Blocking.
class TlsConnection {
 public:
  virtual ~TlsConnection() = default;
  // Writes all of data; false (with error() set) on failure.
  virtual bool write_all(std::string_view data) = 0;
  // Sends close_notify and waits briefly for the server to close.
  virtual void shutdown() = 0;
  virtual const std::string& error() const = 0;
};
// Dies with a clear message when the handshake fails.
std::unique_ptr<TlsConnection> connect_tls(const Args& a);

// Each protocol's runner: sends per a, returns what was sent or acknowledged.
LoadResult run_stream(const Args& a);  // tcp-octet, tcp-lf, udp, tls (RFC 5425 octet-counted)
LoadResult run_relp(const Args& a);
LoadResult run_http(const Args& a);

double cpu_seconds();

}  // namespace loadgen
