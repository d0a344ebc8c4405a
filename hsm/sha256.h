// SHA-256 on OpenSSL (SHA-NI where the CPU has it). Used for record leaves, Merkle
// nodes, heads and key ids.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "base/bytes.h"

namespace logseal {

Hash32 sha256(std::span<const uint8_t> data);

// The digests of two independent messages (sha256_x2.cc). With the x86 SHA
// extensions the two are hashed together, their rounds interleaved, which costs
// little more than one of them; elsewhere it is two sha256() calls. Same
// digests as sha256() either way. Thread-safe.
void sha256_x2(std::span<const uint8_t> a, std::span<const uint8_t> b, Hash32& out_a, Hash32& out_b);
// True when sha256_x2 runs on the SHA extensions (for benchmarks and tests).
bool sha256_x2_accelerated();

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
