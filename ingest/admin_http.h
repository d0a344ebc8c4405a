// The HTTP listener's admin endpoints and the auditors' read API.
//
//   GET  /metrics                 Prometheus text                      open
//   GET  /healthz                 "ok" or 503 with the reason          open
//   GET  /v1/checkpoint?stream=S  latest signed checkpoint (`logseal   open; kCheckpoint once
//                                 checkpoint` text)                     authorize is set
//   GET  /v1/streams              JSON: the streams the caller may see  any of read/verify/checkpoint
//   GET  /v1/records?stream=S&since=T&until=T&where=F=V...&limit=N
//                                 NDJSON, exactly `logseal export       kRead
//                                 --format jsonl` (chunked)
//   GET  /v1/proof?stream=S&index=N
//                                 exactly `logseal prove`               kRead
//   POST /v1/hold?stream=S&on=true|false  legal hold statement         kAdmin
//   POST /v1/roll?stream=S        roll the open segment                 kAdmin
//
// Access: AdminHandlers::authorize decides every read API and admin call (deny
// by default: unset, they answer 403 "access control is not configured").
// Refusals (401/403), exports, proofs, holds and rolls are sealed into the
// `_audit` stream through AdminHandlers::audit.
//
// Not on the data path: an accept thread hands each connection to a short
// lived thread, at most kConnectionsMax at once (more get 503 at once), so a
// client that connects and stalls cannot hold /healthz up. Requests are bounded
// (8 KiB of headers, 5 s to send them); one request per connection. A records
// export streams with chunked transfer encoding, about 64 KiB at a time, and
// stops when the client stops reading for 10 s or the listener stops.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "base/status.h"
#include "ingest/record_export.h"

namespace logseal::ingest {

enum class ApiAction { kRead, kVerify, kCheckpoint, kAdmin };
const char* api_action_name(ApiAction a);  // "read", "verify", "checkpoint", "admin"

struct ApiCaller {
  std::string bearer_token;  // from "Authorization: Bearer ..." (empty if none)
  std::string peer_address;  // "127.0.0.1:5555"
};
struct ApiDecision {
  int status = 403;      // 200 allowed; 401 no/unknown credential; 403 not allowed
  std::string identity;  // who, for logs and _audit
  std::string why;       // reason text for 401/403 bodies and _audit
};

struct AdminHandlers {
  std::function<std::string()> metrics;  // Prometheus text
  // Ok when healthy; the message says what is wrong otherwise.
  std::function<Status()> health;
  // Text of the latest checkpoint of a stream, or NotFound.
  std::function<Result<std::string>(const std::string& stream)> checkpoint;

  // Unset means no access control is configured: then the read API and admin
  // actions answer 403 "access control is not configured" (deny by default),
  // while /metrics, /healthz and /v1/checkpoint stay open as before.
  // Called on connection threads, concurrently: must be thread-safe.
  std::function<ApiDecision(const ApiCaller&, const std::string& stream, ApiAction)> authorize;

  // The read API over a store (ingest/read_api.h fills these). Each is called
  // on a connection thread, concurrently with the others.
  // Every stream of the data directory, by name, sorted.
  std::function<Result<std::vector<std::string>>()> stream_names;
  // One stream's summary as a JSON object (GET /v1/streams); NotFound when absent.
  std::function<Result<std::string>(const std::string& stream)> stream_json;
  // Runs an export of one stream into sink (record_export.h); NotFound for an
  // unknown stream.
  std::function<Status(const ExportSelection&, const std::function<bool(std::string_view)>& sink, ExportStats*)>
      records;
  // `logseal prove` text; NotFound / InvalidArgument as prove_record.
  std::function<Result<std::string>(const std::string& stream, uint64_t index)> proof;
  // Seals a legal hold statement; note says who asked. Returns the statement's index.
  std::function<Result<uint64_t>(const std::string& stream, bool on, const std::string& note)> hold;
  // Asks the stream to roll its open segment; returns that segment's sequence number.
  std::function<Result<uint64_t>(const std::string& stream)> roll;
  // Seals one `_audit` record (engine/audit.h: action, JSON member list).
  std::function<void(const std::string& action, const std::string& members)> audit;
};

class AdminHttp {
 public:
  static Result<std::unique_ptr<AdminHttp>> start(const std::string& address, AdminHandlers handlers);
  ~AdminHttp();
  void stop();
  std::string bound_address() const { return bound_; }

  static constexpr size_t kHeaderBytesMax = 8192;
  static constexpr size_t kChunkBytes = 64 * 1024;

 private:
  struct Request;
  AdminHttp() = default;
  void run();
  void serve(int fd, const std::string& peer);
  void route(int fd, Request& req);
  // Asks authorize; answers 401/403 (and audits the refusal) unless allowed.
  bool allowed(int fd, const Request& req, const std::string& stream, ApiAction action, ApiDecision* decision);
  void refuse(int fd, const Request& req, const std::string& stream, const ApiDecision& d);
  // The ?stream= of a read API or admin call once the caller may do action on it;
  // nullopt when an answer (400 without it, 401, 403) was sent instead.
  std::optional<std::string> authorized_stream(int fd, const Request& req, ApiAction action, ApiDecision* decision);
  // True when the data directory holds stream; answers 404 (or the listing's error) otherwise.
  bool stream_exists(int fd, const std::string& stream);
  void serve_streams(int fd, Request& req);
  void serve_records(int fd, Request& req);
  void serve_proof(int fd, Request& req);
  void serve_hold(int fd, Request& req);
  void serve_roll(int fd, Request& req);
  void audit(const std::string& action, const std::string& members);

  static constexpr int kConnectionsMax = 16;
  std::atomic<int> active_{0};
  int listen_fd_ = -1;
  std::string bound_;
  AdminHandlers handlers_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// "a%2Fb+c" -> "a/b c"; InvalidArgument for a bad escape.
Result<std::string> percent_decode(std::string_view s);
// key=value pairs of a query string, decoded, in order (repeated keys repeat).
Result<std::vector<std::pair<std::string, std::string>>> parse_query(std::string_view query);

// sd_notify(3) without libsystemd: a datagram to $NOTIFY_SOCKET. No-op without it.
void sd_notify_text(const std::string& text);

}  // namespace logseal::ingest
