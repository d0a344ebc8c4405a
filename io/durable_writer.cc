// DurableWriter (see the header for the contract).
//
// Bookkeeping: pending_[i] has ring user_data first_id_ + i and at most one
// request in the ring at a time (a short or retried write is resubmitted only
// after its completion arrived), so a completion always maps to exactly one entry.
//
// Failure: the first final error sets failure_. The failed entry and every later
// one are reported with an error; a later entry still in the ring is marked by a
// non-ok status while complete is false, and is reported when its completion
// arrives, never before: the caller frees or reuses a buffer once its write is
// reported, and the kernel may still be reading it. Earlier entries are still
// reported ok when all their bytes completed, since they are durable, but nothing
// is resubmitted after a failure: the caller is about to stop.
#include "io/durable_writer.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "io/buffer.h"
#include "io/io_internal.h"

namespace logseal::io {
namespace {

// Resubmissions of one write after -EAGAIN, -EINTR or a zero-byte completion.
// Bounded (STYLE.md): a device that keeps refusing is a failed device.
constexpr unsigned kRetriesMax = 16;
constexpr int64_t kTimeoutUsMax = int64_t{30} * 365 * 24 * 3600 * 1'000'000;

std::string describe(const AppendFile& file, uint64_t offset, size_t len_bytes) {
  return "write of " + std::to_string(len_bytes) + " bytes at offset " + std::to_string(offset) +
         " to " + file.path();
}

}  // namespace

DurableWriter::DurableWriter(Ring& ring, unsigned writes_in_flight_max)
    : ring_(ring), writes_in_flight_max_(writes_in_flight_max) {
  LS_ASSERT(writes_in_flight_max_ > 0);
  scratch_.reserve(writes_in_flight_max_);
}

Status DurableWriter::start(AppendFile& file, uint64_t offset, const void* buf, size_t len_bytes,
                            uint64_t tag) {
  if (failed()) return failure_.with_context("an earlier write failed");
  LS_ASSERT(len_bytes > 0 && len_bytes <= kRingWriteBytesMax);
  LS_ASSERT(offset % kBlockBytes == 0 && len_bytes % kBlockBytes == 0);
  LS_ASSERT(reinterpret_cast<uintptr_t>(buf) % kBlockBytes == 0);
  if (pending_.size() >= writes_in_flight_max_) {
    return resource_exhausted("durable writer: " + std::to_string(pending_.size()) +
                              " writes outstanding");
  }
  LS_ASSERT(next_id_ == first_id_ + pending_.size());
  Status status = ring_.submit_write(file, offset, buf, len_bytes, next_id_);
  if (status.code() == Code::kResourceExhausted) return status;
  if (!status.ok()) {
    // The write never reached the ring, so it gets no entry. Earlier writes are
    // still reported as they complete; later start() calls fail.
    failure_ = status.with_context("submit " + describe(file, offset, len_bytes));
    return failure_;
  }
  pending_.push_back(Pending{&file, offset, static_cast<const uint8_t*>(buf), len_bytes, 0, tag, 0,
                             false, ok_status()});
  ++next_id_;
  return ok_status();
}

Status DurableWriter::reap(bool block, int64_t timeout_us, std::vector<Done>& out) {
  // Marks pending_[index] failed with status, and every later entry with
  // failure_: complete ones now, in-flight ones when their completion arrives.
  auto fail_from = [this](size_t index, Status status) {
    LS_ASSERT(!status.ok());
    if (!failed()) failure_ = status;
    pending_[index].complete = true;
    pending_[index].status = std::move(status);
    for (size_t j = index + 1; j < pending_.size(); ++j) {
      // A later write that completed was durable, but it is not durable for its
      // senders any more: an earlier byte of the segment is missing.
      if (pending_[j].status.ok())
        pending_[j].status = failure_.with_context("an earlier write failed");
    }
  };

  auto resubmit = [&](size_t index) {
    Pending& p = pending_[index];
    if (failed()) {
      // Not resubmitted; and later writes, even complete ones, now follow a hole.
      fail_from(index, failure_.with_context("stopped after a write failed"));
      return;
    }
    Status status = ring_.submit_write(*p.file, p.offset + p.done_bytes, p.buf + p.done_bytes,
                                       p.len_bytes - p.done_bytes, first_id_ + index);
    if (!status.ok()) {
      fail_from(index, status.with_context("resubmit " + describe(*p.file, p.offset, p.len_bytes)));
    }
  };

  auto on_completion = [&](const Completion& c) {
    LS_ASSERT_MSG(c.user_data >= first_id_ && c.user_data - first_id_ < pending_.size(),
                  "completion for an unknown write");
    auto index = static_cast<size_t>(c.user_data - first_id_);
    Pending& p = pending_[index];
    LS_ASSERT_MSG(!p.complete, "second completion for one request");
    if (!p.status.ok()) {  // doomed by an earlier failure; the ring is done with buf
      p.complete = true;
      return;
    }
    // Built only on the failure paths: no allocation per completion.
    auto what = [&p] { return describe(*p.file, p.offset, p.len_bytes); };
    if (c.result < 0) {
      int err = -c.result;
      if (err == EAGAIN || err == EINTR) {
        if (p.retries < kRetriesMax) {
          ++p.retries;
          resubmit(index);
          return;
        }
        fail_from(index, io_error(what() + ": " + std::strerror(err) + " (gave up after " +
                                  std::to_string(kRetriesMax) + " retries)"));
        return;
      }
      fail_from(index, io_error(what() + ": " + std::strerror(err)));
      return;
    }
    auto transferred = static_cast<size_t>(c.result);
    LS_ASSERT_MSG(transferred <= p.len_bytes - p.done_bytes,
                  "completion reports more bytes than requested");
    p.done_bytes += transferred;
    if (p.done_bytes == p.len_bytes) {
      p.complete = true;
      return;
    }
    if (!is_sector_aligned(transferred)) {
      // The remainder would start off a sector boundary, which O_DIRECT refuses.
      fail_from(index, io_error(what() + ": completed short by " + std::to_string(transferred) +
                                " bytes, not a multiple of 512, so the remainder cannot be "
                                "resubmitted with O_DIRECT"));
      return;
    }
    if (transferred == 0) {
      // No progress: counts as a retry. A short completion that moved at least a
      // sector forward does not, since those rounds are bounded by len / 512.
      if (p.retries >= kRetriesMax) {
        fail_from(index, io_error(what() + ": no progress after " + std::to_string(kRetriesMax) +
                                  " retries"));
        return;
      }
      ++p.retries;
    }
    resubmit(index);
  };

  Status ring_status;
  if (!pending_.empty()) {
    timeout_us = std::min<int64_t>(timeout_us, kTimeoutUsMax);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(timeout_us);
    // Each round reaps what has completed (resubmitting remainders and retries),
    // or waits for the front write up to the time left when blocking.
    for (bool first = true; ring_status.ok() && !pending_.empty(); first = false) {
      bool front_done = pending_.front().complete;
      if (!first && (!block || front_done)) break;
      int64_t left_us = -1;
      if (timeout_us >= 0) {
        left_us = std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(
                                           deadline - std::chrono::steady_clock::now())
                                           .count());
        if (!first && left_us == 0) break;
      }
      scratch_.clear();
      ring_status = ring_.wait((block && !front_done) ? 1 : 0, left_us, scratch_);
      for (const Completion& c : scratch_) on_completion(c);
    }
    if (!ring_status.ok()) {
      // The ring can no longer report completions. Waiting for ones that may never
      // come would hang the caller, who stops on this error anyway; so everything
      // outstanding is reported failed now.
      ring_status = ring_status.with_context("ring wait");
      for (size_t i = 0; i < pending_.size(); ++i) {
        if (!pending_[i].complete && pending_[i].status.ok()) {
          fail_from(i, ring_status);
          break;
        }
      }
      for (Pending& p : pending_) p.complete = true;
    }
  }
  while (!pending_.empty() && pending_.front().complete) {
    out.push_back(Done{pending_.front().tag, std::move(pending_.front().status)});
    pending_.pop_front();
    ++first_id_;
  }
  return ring_status;
}

}  // namespace logseal::io
