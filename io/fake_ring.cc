// FakeEnv's ring and append files, and the fault model of writes: EIO, short
// writes, and torn or dropped writes on crash (fake_env.h).
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <numeric>
#include <thread>
#include <utility>

#include "base/assert.h"
#include "io/buffer.h"
#include "io/fake_state.h"
#include "io/io_internal.h"

namespace logseal::io {

Status FakeEnv::State::alive() const {
  if (crashed) return io_error("fake env: crashed (Input/output error until restart())");
  return ok_status();
}

uint64_t FakeEnv::State::uniform(uint64_t lo, uint64_t hi) {
  LS_ASSERT(lo <= hi);
  uint64_t span = hi - lo + 1;
  if (span == 0) return rng();  // the full 64-bit range
  return lo + rng() % span;     // the modulo bias is irrelevant for tests
}

bool FakeEnv::State::chance(double p) {
  if (p <= 0.0) return false;  // draws nothing, so zero faults leave the stream alone
  double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
  return u < p;
}

void fake_apply(FakeInode& inode, uint64_t offset, const uint8_t* buf, size_t len_bytes) {
  if (len_bytes == 0) return;
  auto end = static_cast<size_t>(offset + len_bytes);
  if (inode.bytes.size() < end) inode.bytes.resize(end, 0);
  std::memcpy(inode.bytes.data() + offset, buf, len_bytes);
}

void FakeEnv::State::crash_locked() {
  for (auto& [ring_id, queue] : ring_queues) {
    for (const FakeWrite& w : queue) {
      if (!faults.torn_on_crash || !chance(0.5)) continue;  // dropped whole
      // Torn: the device wrote some sectors in order before power went, and maybe
      // scribbled over the next one.
      uint64_t sectors = w.len_bytes / kSectorBytes;
      uint64_t kept = uniform(0, sectors);
      fake_apply(*w.inode, w.offset, w.buf, static_cast<size_t>(kept * kSectorBytes));
      if (kept < sectors && chance(0.5)) {
        uint8_t garbage[kSectorBytes];
        for (uint8_t& b : garbage) b = static_cast<uint8_t>(rng());
        fake_apply(*w.inode, w.offset + kept * kSectorBytes, garbage, kSectorBytes);
      }
    }
    queue.clear();
  }
  // Directory changes not followed by sync_dir never reached the disk.
  files = durable_files;
  crashed = true;
  ++epoch;
}

namespace {

class FakeAppendFile final : public AppendFile {
 public:
  FakeAppendFile(std::shared_ptr<FakeEnv::State> state, std::string path, int handle, uint64_t epoch)
      : state_(std::move(state)), path_(std::move(path)), handle_(handle), epoch_(epoch) {}
  ~FakeAppendFile() override {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->open_files.erase(handle_);
  }

  const std::string& path() const override { return path_; }

  Result<uint64_t> size() override {
    std::lock_guard<std::mutex> lock(state_->mu);
    LS_RETURN_IF_ERROR(usable());
    return static_cast<uint64_t>(inode().bytes.size());
  }

  Status truncate(uint64_t size_bytes) override {
    std::lock_guard<std::mutex> lock(state_->mu);
    LS_RETURN_IF_ERROR(usable());
    if (inode().immutable) return io_error("ftruncate " + path_ + ": Operation not permitted (immutable)");
    inode().bytes.resize(static_cast<size_t>(size_bytes), 0);  // durable at once (model)
    return ok_status();
  }

  Status sync() override {
    std::lock_guard<std::mutex> lock(state_->mu);
    return usable();  // completed writes are durable already
  }

  int handle() const override { return handle_; }

 private:
  Status usable() const {
    LS_RETURN_IF_ERROR(state_->alive());
    if (epoch_ != state_->epoch) return io_error(path_ + ": stale handle opened before a crash");
    return ok_status();
  }
  FakeInode& inode() { return *state_->open_files.at(handle_).inode; }

  std::shared_ptr<FakeEnv::State> state_;
  std::string path_;
  int handle_;
  uint64_t epoch_;
};

class FakeRing final : public Ring {
 public:
  FakeRing(std::shared_ptr<FakeEnv::State> state, unsigned entries, uint64_t ring_id, uint64_t epoch)
      : state_(std::move(state)), entries_(entries), ring_id_(ring_id), epoch_(epoch) {}
  ~FakeRing() override {
    // Queued writes are dropped, not applied: their buffers may be gone by now.
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->ring_queues.erase(ring_id_);
  }

  Status submit_write(AppendFile& file, uint64_t offset, const void* buf, size_t len_bytes,
                      uint64_t user_data) override {
    // The same alignment the POSIX ring asserts, so misuse traps in tests first.
    LS_ASSERT(len_bytes > 0 && len_bytes <= kRingWriteBytesMax);
    LS_ASSERT(is_sector_aligned(offset) && is_sector_aligned(len_bytes));
    LS_ASSERT(is_sector_aligned(reinterpret_cast<uintptr_t>(buf)));
    std::lock_guard<std::mutex> lock(state_->mu);
    LS_RETURN_IF_ERROR(usable());
    auto it = state_->open_files.find(file.handle());
    LS_ASSERT_MSG(it != state_->open_files.end(), "file is not open in this FakeEnv");
    if (it->second.epoch != state_->epoch) {
      return io_error(file.path() + ": stale handle opened before a crash");
    }
    std::vector<FakeWrite>& queue = state_->ring_queues[ring_id_];
    if (queue.size() >= entries_) {
      return resource_exhausted("fake ring: " + std::to_string(queue.size()) + " requests in flight");
    }
    queue.push_back(FakeWrite{it->second.inode, offset, static_cast<const uint8_t*>(buf), len_bytes, user_data,
                              state_->fail_next_write});
    state_->fail_next_write = false;
    ++state_->writes_submitted;
    if (state_->crash_at_write != 0 && state_->writes_submitted == state_->crash_at_write) {
      state_->crash_at_write = 0;
      state_->crash_locked();  // tears or drops this write too
      return state_->alive();
    }
    return ok_status();
  }

  Status wait(unsigned min_complete, int64_t timeout_us, std::vector<Completion>& out) override {
    // Never blocks unless writes are held: whatever is queued can complete now.
    // Fewer than min_complete are returned only when fewer are queued, which a
    // timeout stands in for.
    bool held = false;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      held = state_->writes_held;
    }
    if (held) {
      std::this_thread::sleep_for(std::chrono::microseconds(std::clamp<int64_t>(timeout_us, 0, 1000)));
      return ok_status();
    }
    std::lock_guard<std::mutex> lock(state_->mu);
    LS_RETURN_IF_ERROR(usable());
    std::vector<FakeWrite>& queue = state_->ring_queues[ring_id_];
    if (queue.empty()) return ok_status();
    // A random subset completes, in random order: the kernel promises no order.
    uint64_t queued = queue.size();
    auto completing = static_cast<size_t>(state_->uniform(std::min<uint64_t>(min_complete, queued), queued));
    std::vector<size_t> order(queue.size());
    std::iota(order.begin(), order.end(), size_t{0});
    for (size_t i = 0; i < completing; ++i) {  // partial Fisher-Yates
      std::swap(order[i], order[static_cast<size_t>(state_->uniform(i, order.size() - 1))]);
    }
    std::vector<bool> done(queue.size(), false);
    for (size_t i = 0; i < completing; ++i) {
      out.push_back(complete(queue[order[i]]));
      done[order[i]] = true;
    }
    std::vector<FakeWrite> rest;
    for (size_t i = 0; i < queue.size(); ++i) {
      if (!done[i]) rest.push_back(std::move(queue[i]));
    }
    queue = std::move(rest);
    return ok_status();
  }

  unsigned in_flight() const override {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (!usable().ok()) return 0;  // a crash dropped them; they never complete
    auto it = state_->ring_queues.find(ring_id_);
    return it == state_->ring_queues.end() ? 0 : static_cast<unsigned>(it->second.size());
  }

 private:
  Status usable() const {
    LS_RETURN_IF_ERROR(state_->alive());
    if (epoch_ != state_->epoch) return io_error("fake ring: created before a crash");
    return ok_status();
  }

  Completion complete(const FakeWrite& w) {
    Completion c{w.user_data, 0};
    // Real kernels refuse writes to an immutable inode; a sealed segment being
    // written is an engine bug the fake should surface.
    uint64_t grows =
        w.offset + w.len_bytes > w.inode->bytes.size() ? w.offset + w.len_bytes - w.inode->bytes.size() : 0;
    if (w.inode->immutable) {
      c.result = -EPERM;
    } else if (grows > 0 && state_->capacity_bytes != UINT64_MAX &&
               state_->used_bytes_locked() + grows > state_->capacity_bytes) {
      c.result = -ENOSPC;  // the capacity model (set_capacity_bytes)
    } else if (w.eio_armed || state_->chance(state_->faults.eio_per_write)) {
      c.result = -EIO;
    } else if (w.len_bytes > kSectorBytes && state_->chance(state_->faults.short_per_write)) {
      uint64_t sectors = state_->uniform(1, w.len_bytes / kSectorBytes - 1);
      auto written = static_cast<size_t>(sectors * kSectorBytes);
      fake_apply(*w.inode, w.offset, w.buf, written);
      c.result = static_cast<int32_t>(written);
    } else {
      fake_apply(*w.inode, w.offset, w.buf, w.len_bytes);
      c.result = static_cast<int32_t>(w.len_bytes);
    }
    return c;
  }

  std::shared_ptr<FakeEnv::State> state_;
  unsigned entries_;
  uint64_t ring_id_;
  uint64_t epoch_;
};

}  // namespace

std::unique_ptr<AppendFile> make_fake_append_file(std::shared_ptr<FakeEnv::State> state, std::string path,
                                                  InodePtr inode) {
  int handle = state->next_handle++;
  uint64_t epoch = state->epoch;
  state->open_files[handle] = FakeOpenFile{std::move(inode), epoch};
  return std::make_unique<FakeAppendFile>(std::move(state), std::move(path), handle, epoch);
}

std::unique_ptr<Ring> make_fake_ring(std::shared_ptr<FakeEnv::State> state, unsigned entries) {
  uint64_t ring_id = state->next_ring_id++;
  uint64_t epoch = state->epoch;
  state->ring_queues[ring_id];
  return std::make_unique<FakeRing>(std::move(state), entries, ring_id, epoch);
}

}  // namespace logseal::io
