// The io_uring Ring of the POSIX env. Every write carries RWF_DSYNC, so its
// completion means the bytes (and the metadata needed to read them back, such as
// the new file size) are on stable storage: there is no separate fsync to order
// against the writes (io_uring does not order requests, liburing docs).
#include <liburing.h>
#include <linux/fs.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "base/assert.h"
#include "io/io_internal.h"

namespace logseal::io {
namespace {

constexpr int64_t kTimeoutUsMax = int64_t{30} * 365 * 24 * 3600 * 1'000'000;

class UringRing final : public Ring {
 public:
  explicit UringRing(unsigned entries) : entries_(entries) {}
  ~UringRing() override {
    // Closing the ring does not cancel writes already in the kernel; their buffers
    // belong to the caller, who must not free them before they are reported
    // (DurableWriter guarantees that on every path except a process exit).
    if (initialised_) io_uring_queue_exit(&ring_);
  }

  Status init() {
    int ret = io_uring_queue_init(entries_, &ring_, 0);
    if (ret == 0) {
      initialised_ = true;
      return ok_status();
    }
    int err = -ret;
    std::string detail =
        std::string("io_uring_queue_init(") + std::to_string(entries_) + "): " + std::strerror(err);
    switch (err) {
      case ENOSYS:
      case EPERM:
      case EACCES:
        return unimplemented("io_uring is not available (" + detail +
                             "): the kernel lacks it, kernel.io_uring_disabled is set, or a "
                             "seccomp filter (container runtime, systemd SystemCallFilter=) "
                             "blocks io_uring_setup");
      case ENOMEM:
        return resource_exhausted(detail +
                                  " (on kernels before 5.12 the ring counts against "
                                  "RLIMIT_MEMLOCK: raise LimitMEMLOCK)");
      case EINVAL:
        return invalid_argument(detail);
      default:
        return io_error(detail);
    }
  }

  Status submit_write(AppendFile& file, uint64_t offset, const void* buf, size_t len_bytes,
                      uint64_t user_data) override {
    // Misaligned O_DIRECT writes fail with EINVAL in the kernel; catching them here
    // points at the caller instead of at a confusing completion.
    LS_ASSERT(len_bytes > 0 && len_bytes <= kRingWriteBytesMax);
    LS_ASSERT(is_sector_aligned(offset) && is_sector_aligned(len_bytes));
    LS_ASSERT(is_sector_aligned(reinterpret_cast<uintptr_t>(buf)));
    // Bound what is outstanding by the ring size, so the completion queue (twice
    // the submission queue) can never overflow.
    if (in_flight_ >= entries_) {
      return resource_exhausted("io_uring: " + std::to_string(in_flight_) + " requests in flight");
    }
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) return resource_exhausted("io_uring: submission queue full");
    io_uring_prep_write(sqe, file.handle(), buf, static_cast<unsigned>(len_bytes), offset);
    sqe->rw_flags = RWF_DSYNC;
    io_uring_sqe_set_data64(sqe, user_data);
    ++in_flight_;
    return ok_status();
  }

  Status wait(unsigned min_complete, int64_t timeout_us, std::vector<Completion>& out) override {
    LS_RETURN_IF_ERROR(submit_queued());
    // Waiting for more than the kernel holds would sleep until the timeout (or
    // forever); wait for what can complete instead.
    min_complete = std::min(min_complete, in_flight_ - std::min(in_flight_, queued()));
    // Clamped so the deadline arithmetic cannot overflow; 30 years is "forever".
    timeout_us = std::min<int64_t>(timeout_us, kTimeoutUsMax);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(timeout_us);
    unsigned reaped = reap(out);
    while (reaped < min_complete) {
      __kernel_timespec ts{};
      __kernel_timespec* ts_ptr = nullptr;
      if (timeout_us >= 0) {
        auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        ts.tv_sec = left.count() / 1'000'000'000;
        ts.tv_nsec = left.count() % 1'000'000'000;
        ts_ptr = &ts;
      }
      io_uring_cqe* cqe = nullptr;
      int ret = io_uring_wait_cqes(&ring_, &cqe, min_complete - reaped, ts_ptr, nullptr);
      if (ret == -ETIME) break;
      if (ret < 0 && ret != -EINTR && ret != -EAGAIN) {
        return io_error(std::string("io_uring_wait_cqes: ") + std::strerror(-ret));
      }
      reaped += reap(out);
      // Requests that did not fit into the kernel earlier (EAGAIN/EBUSY) go in now
      // that completions freed room.
      LS_RETURN_IF_ERROR(submit_queued());
    }
    return ok_status();
  }

  unsigned in_flight() const override { return in_flight_; }

 private:
  // Prepared entries the kernel has not taken yet. Asked from the ring rather than
  // counted, because liburing may flush them itself (its timeout SQE on kernels
  // without IORING_FEAT_EXT_ARG).
  unsigned queued() { return io_uring_sq_ready(&ring_); }

  Status submit_queued() {
    while (queued() > 0) {
      int ret = io_uring_submit(&ring_);
      if (ret == -EINTR) continue;
      if (ret == -EAGAIN || ret == -EBUSY) {
        // The kernel is short of resources or the completion queue needs reaping;
        // what is already in flight will make room, so try again after reaping.
        if (in_flight_ > queued()) return ok_status();
        return resource_exhausted(std::string("io_uring_submit: ") + std::strerror(-ret));
      }
      if (ret < 0) return io_error(std::string("io_uring_submit: ") + std::strerror(-ret));
      if (ret == 0) break;  // nothing was taken; do not spin
    }
    return ok_status();
  }

  unsigned reap(std::vector<Completion>& out) {
    unsigned reaped = 0;
    io_uring_cqe* cqe = nullptr;
    while (io_uring_peek_cqe(&ring_, &cqe) == 0 && cqe != nullptr) {
      out.push_back(Completion{io_uring_cqe_get_data64(cqe), cqe->res});
      io_uring_cqe_seen(&ring_, cqe);
      LS_ASSERT(in_flight_ > 0);
      --in_flight_;
      ++reaped;
    }
    return reaped;
  }

  io_uring ring_{};
  bool initialised_ = false;
  unsigned entries_;
  unsigned in_flight_ = 0;  // prepared or in the kernel, not yet reaped
};

}  // namespace

Result<std::unique_ptr<Ring>> make_uring_ring(unsigned entries) {
  if (entries == 0) return invalid_argument("make_ring: entries must be > 0");
  auto ring = std::make_unique<UringRing>(entries);
  LS_RETURN_IF_ERROR(ring->init().with_context("make_ring"));
  return std::unique_ptr<Ring>(std::move(ring));
}

}  // namespace logseal::io
