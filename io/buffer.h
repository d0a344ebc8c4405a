// Aligned buffers for O_DIRECT and a bounded pool of them, set up at start-up so
// the hot path never allocates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace logseal::io {

// O_DIRECT alignment of offsets, lengths and buffer addresses. 4096 covers every
// logical block size seen on Linux block devices in practice; the probe at start-up
// checks it works on the data directory's filesystem.
inline constexpr size_t kBlockBytes = 4096;

inline constexpr uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// An owning, kBlockBytes-aligned, zero-initialised buffer. Move-only.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t size_bytes);  // size rounded up to kBlockBytes
  ~AlignedBuffer();
  AlignedBuffer(AlignedBuffer&& other) noexcept;
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_bytes_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_bytes_ = 0;
};

// A fixed number of equal AlignedBuffers, allocated in the constructor.
// Thread-safe. acquire() returns nullptr when all are in use: callers treat that
// as backpressure (wait for a completion), never allocate more.
class BufferPool {
 public:
  BufferPool(size_t buffer_bytes, size_t buffers_max);
  AlignedBuffer* acquire();
  void release(AlignedBuffer* buffer);
  size_t buffer_bytes() const { return buffer_bytes_; }
  size_t available() const;

 private:
  size_t buffer_bytes_;
  std::vector<std::unique_ptr<AlignedBuffer>> all_;
  mutable std::mutex mu_;
  std::vector<AlignedBuffer*> free_;
};

}  // namespace logseal::io
