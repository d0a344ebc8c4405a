// The ingest HTTP listener for JSON audit events (separate from the admin
// listener, which stays a small thread-per-connection server off the data path):
//   POST /v1/events      one JSON object, an array of objects, or NDJSON
//   POST /v1/k8s-audit   an audit.k8s.io/v1 EventList (the API server's webhook)
// Each event becomes one record: its exact bytes as raw, the extracted fields
// (ingest/json_events.h), the client identity as source.
//
// Answers:
//   200  every record of the request is durable (same durability notification
//        as RELP acks): {"accepted":N,"stream":S,"first_index":A,"last_index":B}
//   400  malformed JSON (reason and byte offset), bad HTTP; nothing of the request
//        was appended: the whole body is validated first
//   404 / 405  unknown path / not POST
//   413  body over body_bytes_max (refused from Content-Length before reading the
//        body when it is known), or one event over the record limit
//   415  a Content-Encoding other than identity (gzip bodies are refused, not sealed)
//   431  request headers over header_bytes_max
//   401 / 403  access control (HttpServerOptions::access): no known identity /
//        not allowed into the stream; decided from the headers, body not read
//   503 + Retry-After  overload: requests_in_flight_max requests already wait for
//        durability, buffered bodies over buffered_bytes_max, the stream's queue
//        is full, or the stream stopped. Nothing of such a request was appended,
//        except when the stream stopped or durability timed out after appending
//        (then the records may be sealed; the sender's retry may duplicate them).
//
// Threads: one event-loop thread (epoll, non-blocking sockets) for all
// connections of all HTTP listeners. HTTP/1.1 parsing by the nodejs http-parser
// (keep-alive, Content-Length and chunked bodies, pipelined requests answered in
// order: while a request waits for durability its connection is not read). TLS
// through TlsSession (memory BIOs), as the syslog listeners.
//
// Bounded: connections (connections_max; more are answered 503 and closed, or just
// closed on HTTPS, where an answer would need a handshake first),
// header bytes, body bytes per request, body bytes buffered across connections,
// requests waiting for durability, bytes read per wake-up.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "engine/store.h"
#include "ingest/access.h"
#include "ingest/metrics.h"
#include "ingest/refusals.h"
#include "ingest/tls.h"

namespace logseal::ingest {

struct HttpListenerSpec {
  std::string address;                   // as for ListenerSpec
  std::string events_stream = "events";  // POST /v1/events
  std::string k8s_stream = "k8s-audit";  // POST /v1/k8s-audit
  std::shared_ptr<TlsContext> tls;       // HTTPS when set
  // The listener's name in logseal_refused_total and _audit records
  // (logseald: `name` of its TOML table, else "http-PORT" / "https-PORT").
  std::string name;
};

struct HttpServerOptions {
  size_t body_bytes_max = 16u << 20;
  size_t event_bytes_max = 512u << 10;   // the caller makes the record limit fit
  size_t header_bytes_max = 64u << 10;
  unsigned connections_max = 1024;
  unsigned requests_in_flight_max = 256;  // appended, waiting for durability
  size_t buffered_bytes_max = 256u << 20;  // request bodies held across connections
  unsigned idle_timeout_s = 120;
  unsigned durable_timeout_ms = 30000;
  // Access control (ingest/access.h); null or not enabled(): every request is
  // accepted as before. When enabled, a request is identified by its client
  // certificate, else its "Authorization: Bearer TOKEN", else its source address,
  // before its body is read: 401 (with WWW-Authenticate: Bearer) when that
  // identifies no one, 403 when the identity may not ingest into the endpoint's
  // stream; the connection is closed and nothing of the request is sealed.
  // refusals must be set when access->enabled(). Both outlive the server.
  const AccessPolicy* access = nullptr;
  RefusalLog* refusals = nullptr;
};

class HttpEventServer {
 public:
  static Result<std::unique_ptr<HttpEventServer>> start(std::vector<HttpListenerSpec> listeners, engine::Store& store,
                                                        HttpServerOptions options);
  ~HttpEventServer();
  // Stops accepting and reading; answers requests already appended once durable
  // (up to 5 s), closes every connection, joins.
  void stop();
  std::string bound_address(size_t i) const { return i < bound_.size() ? bound_[i] : ""; }
  // Two per listener: /v1/events, then /v1/k8s-audit.
  const std::vector<std::unique_ptr<ListenerMetrics>>& metrics() const { return metrics_; }

  struct Loop;

 private:
  HttpEventServer() = default;
  std::vector<HttpListenerSpec> specs_;
  std::vector<std::string> bound_;
  std::vector<std::unique_ptr<ListenerMetrics>> metrics_;
  std::unique_ptr<Loop> loop_;
  std::thread thread_;
};

}  // namespace logseal::ingest
