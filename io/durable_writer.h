// DurableWriter: writes aligned buffers through a Ring and reports each write
// once, when all of its bytes are durable, in submission order.
//
// It hides what io_uring may do (liburing examples/tests): short transfers are
// resubmitted for the remainder; -EAGAIN and -EINTR are resubmitted (bounded
// retries); any other error (-EIO, -ENOSPC, ...) or -ECANCELED is final and
// reported for that write and for every later one (the caller must stop: a failed
// write on the data path is not retried, STYLE.md).
//
// In-order reporting matters: a record is durable for its sender only when every
// earlier byte of the segment is too, otherwise recovery would cut it.
//
// Thread: owned by one thread (the stream's writer).
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "base/status.h"
#include "io/env.h"

namespace logseal::io {

class DurableWriter {
 public:
  explicit DurableWriter(Ring& ring, unsigned writes_in_flight_max = 4);

  // Starts a write of len_bytes at offset (all multiples of kBlockBytes). buf must
  // stay valid until the write is reported. Returns ResourceExhausted if
  // writes_in_flight_max writes are outstanding (call reap first).
  Status start(AppendFile& file, uint64_t offset, const void* buf, size_t len_bytes, uint64_t tag);

  struct Done {
    uint64_t tag;
    Status status;  // ok: all bytes durable
  };
  // Waits for at least one write to be reported when block is true and any is
  // outstanding (up to timeout_us, < 0 forever), then appends every write that is
  // now complete, in start() order, to out.
  Status reap(bool block, int64_t timeout_us, std::vector<Done>& out);

  unsigned outstanding() const { return static_cast<unsigned>(pending_.size()); }
  bool failed() const { return !failure_.ok(); }

 private:
  struct Pending {
    AppendFile* file;
    uint64_t offset;
    const uint8_t* buf;
    size_t len_bytes;
    size_t done_bytes;
    uint64_t tag;
    unsigned retries;
    bool complete;
    Status status;
  };
  Ring& ring_;
  unsigned writes_in_flight_max_;
  uint64_t next_id_ = 0;     // ring user_data of pending_.front() is first_id_
  uint64_t first_id_ = 0;
  std::deque<Pending> pending_;
  Status failure_;
  std::vector<Completion> scratch_;
};

}  // namespace logseal::io
