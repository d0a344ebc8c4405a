#include "io/buffer.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "base/assert.h"

namespace logseal::io {

AlignedBuffer::AlignedBuffer(size_t size_bytes)
    : size_bytes_(static_cast<size_t>(align_up(size_bytes, kBlockBytes))) {
  if (size_bytes_ == 0) return;
  data_ = static_cast<uint8_t*>(std::aligned_alloc(kBlockBytes, size_bytes_));
  // Buffers are allocated at start-up only (STYLE.md: bounded, no hot-path
  // allocation), so running out of memory here is a set-up failure, not a path
  // that callers could recover from.
  LS_ASSERT_MSG(data_ != nullptr, "aligned_alloc failed");
  // Zeroed so that the padding of a partly filled block never leaks old bytes
  // into a segment file.
  std::memset(data_, 0, size_bytes_);
}

AlignedBuffer::~AlignedBuffer() { std::free(data_); }

AlignedBuffer::AlignedBuffer(AlignedBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_bytes_(std::exchange(other.size_bytes_, 0)) {}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& other) noexcept {
  if (this != &other) {
    std::free(data_);
    data_ = std::exchange(other.data_, nullptr);
    size_bytes_ = std::exchange(other.size_bytes_, 0);
  }
  return *this;
}

BufferPool::BufferPool(size_t buffer_bytes, size_t buffers_max)
    : buffer_bytes_(static_cast<size_t>(align_up(buffer_bytes, kBlockBytes))) {
  LS_ASSERT(buffer_bytes_ > 0);
  LS_ASSERT(buffers_max > 0);
  all_.reserve(buffers_max);
  free_.reserve(buffers_max);
  for (size_t i = 0; i < buffers_max; ++i) {
    all_.push_back(std::make_unique<AlignedBuffer>(buffer_bytes_));
    free_.push_back(all_.back().get());
  }
  // acquire() pops from the back; reversing hands out buffers in allocation order,
  // which keeps tests and traces easy to read.
  std::reverse(free_.begin(), free_.end());
}

AlignedBuffer* BufferPool::acquire() {
  std::lock_guard<std::mutex> lock(mu_);
  if (free_.empty()) return nullptr;
  AlignedBuffer* buffer = free_.back();
  free_.pop_back();
  return buffer;
}

void BufferPool::release(AlignedBuffer* buffer) {
  LS_ASSERT(buffer != nullptr);
  std::lock_guard<std::mutex> lock(mu_);
  // A foreign buffer or a double release would corrupt the pool silently; both are
  // programmer errors, and the pool is small enough to check every time.
  LS_ASSERT_MSG(
      std::any_of(all_.begin(), all_.end(), [&](const auto& b) { return b.get() == buffer; }),
      "buffer does not belong to this pool");
  LS_ASSERT_MSG(std::find(free_.begin(), free_.end(), buffer) == free_.end(),
                "buffer released twice");
  LS_ASSERT(free_.size() < all_.size());
  free_.push_back(buffer);
}

size_t BufferPool::available() const {
  std::lock_guard<std::mutex> lock(mu_);
  return free_.size();
}

}  // namespace logseal::io
