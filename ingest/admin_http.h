// The HTTP listener's admin endpoints: GET /metrics (Prometheus text), GET /healthz,
// GET /v1/checkpoint?stream=S (the latest signed checkpoint, `logseal checkpoint`
// text). Not on the data path: an accept thread hands each connection to a short
// lived thread, at most kConnectionsMax at once (more get 503 at once), so a client
// that connects and stalls cannot hold /healthz up. Requests are bounded (8 KiB of
// headers, 5 s).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "base/status.h"

namespace logseal::ingest {

struct AdminHandlers {
  std::function<std::string()> metrics;  // Prometheus text
  // Ok when healthy; the message says what is wrong otherwise.
  std::function<Status()> health;
  // Text of the latest checkpoint of a stream, or NotFound.
  std::function<Result<std::string>(const std::string& stream)> checkpoint;
};

class AdminHttp {
 public:
  static Result<std::unique_ptr<AdminHttp>> start(const std::string& address, AdminHandlers handlers);
  ~AdminHttp();
  void stop();
  std::string bound_address() const { return bound_; }

 private:
  AdminHttp() = default;
  void run();
  void serve(int fd);
  static constexpr int kConnectionsMax = 16;
  std::atomic<int> active_{0};
  int listen_fd_ = -1;
  std::string bound_;
  AdminHandlers handlers_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// sd_notify(3) without libsystemd: a datagram to $NOTIFY_SOCKET. No-op without it.
void sd_notify_text(const std::string& text);

}  // namespace logseal::ingest
