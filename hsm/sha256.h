// SHA-256 on OpenSSL (SHA-NI where the CPU has it). Used for record leaves, Merkle
// nodes, heads and key ids.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "base/bytes.h"

namespace logseal {

Hash32 sha256(std::span<const uint8_t> data);

// Incremental SHA-256. Cheap to construct; not thread-safe (one per thread).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t len_bytes);
  void update(std::span<const uint8_t> data) { update(data.data(), data.size()); }
  Hash32 finish();  // resets for reuse

 private:
  void* ctx_;
};

}  // namespace logseal
