// Two SHA-256 digests at once with the x86 SHA extensions (see sha256.h).
//
// Why: one record leaf hash per record is the largest cost of ingest. With SHA
// extensions a single message is bound by the latency of SHA256RNDS2 (each
// pair of rounds needs the previous pair's result), so the unit idles between
// them; the rounds of a second, independent message fill those gaps. Measured
// in logseal-bench-micro (BM_LeafHashPair against BM_LeafHash).
//
// The round structure follows Intel's "Intel SHA Extensions" paper (2013): the
// state is kept as ABEF / CDGH, four message words per step, the schedule
// built with SHA256MSG1 / SHA256MSG2. On CPUs without the extensions (or other
// architectures) sha256_x2 hashes each message through sha256().
#include <algorithm>
#include <cstring>

#include "base/assert.h"
#include "hsm/sha256.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define LS_SHA256_X2_SHANI 1
#else
#define LS_SHA256_X2_SHANI 0
#endif

namespace logseal {

#if LS_SHA256_X2_SHANI

namespace {

constexpr size_t kBlockBytes = 64;

alignas(16) constexpr uint32_t kRoundConstants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

constexpr uint32_t kInitialState[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                       0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

bool cpu_has_sha_extensions() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(1, &a, &b, &c, &d) == 0) return false;
  bool ssse3 = (c & (1u << 9)) != 0;
  bool sse41 = (c & (1u << 19)) != 0;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d) == 0) return false;
  bool sha = (b & (1u << 29)) != 0;
  return ssse3 && sse41 && sha;
}

// The state of one message in the ABEF / CDGH layout the instructions use.
struct LaneState {
  __m128i abef;
  __m128i cdgh;
};

#define LS_SHA_TARGET __attribute__((target("sha,sse4.1,ssse3")))

LS_SHA_TARGET LaneState load_state(const uint32_t h[8]) {
  __m128i tmp = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&h[0]));  // ABCD
  __m128i st1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&h[4]));  // EFGH
  tmp = _mm_shuffle_epi32(tmp, 0xB1);                                      // CDAB
  st1 = _mm_shuffle_epi32(st1, 0x1B);                                      // EFGH -> HGFE
  LaneState s;
  s.abef = _mm_alignr_epi8(tmp, st1, 8);     // ABEF
  s.cdgh = _mm_blend_epi16(st1, tmp, 0xF0);  // CDGH
  return s;
}

LS_SHA_TARGET void store_digest(const LaneState& s, uint8_t out[32]) {
  __m128i tmp = _mm_shuffle_epi32(s.abef, 0x1B);   // FEBA
  __m128i st1 = _mm_shuffle_epi32(s.cdgh, 0xB1);   // DCHG
  __m128i abcd = _mm_blend_epi16(tmp, st1, 0xF0);  // DCBA
  __m128i efgh = _mm_alignr_epi8(st1, tmp, 8);     // HGFE
  // Words in big-endian byte order.
  const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  abcd = _mm_shuffle_epi8(abcd, bswap);
  efgh = _mm_shuffle_epi8(efgh, bswap);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), abcd);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16), efgh);
}

// One 64-byte block into each of the two states, the two round sequences
// interleaved. With b == nullptr only lane a advances.
template <bool kTwo>
LS_SHA_TARGET inline void compress(LaneState& sa, const uint8_t* a, LaneState& sb, const uint8_t* b) {
  const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i wa[4], wb[4];
  LaneState save_a = sa, save_b = sb;
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) {
    __m128i k = _mm_load_si128(reinterpret_cast<const __m128i*>(&kRoundConstants[4 * i]));
    if (i < 4) {
      wa[i] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + 16 * i)), bswap);
      if constexpr (kTwo)
        wb[i] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16 * i)), bswap);
    } else {
      // W[4i..4i+3] from W[4(i-4)..], W[4(i-3)..], W[4(i-2)..], W[4(i-1)..].
      __m128i t = _mm_sha256msg1_epu32(wa[i & 3], wa[(i - 3) & 3]);
      t = _mm_add_epi32(t, _mm_alignr_epi8(wa[(i - 1) & 3], wa[(i - 2) & 3], 4));
      wa[i & 3] = _mm_sha256msg2_epu32(t, wa[(i - 1) & 3]);
      if constexpr (kTwo) {
        __m128i u = _mm_sha256msg1_epu32(wb[i & 3], wb[(i - 3) & 3]);
        u = _mm_add_epi32(u, _mm_alignr_epi8(wb[(i - 1) & 3], wb[(i - 2) & 3], 4));
        wb[i & 3] = _mm_sha256msg2_epu32(u, wb[(i - 1) & 3]);
      }
    }
    __m128i ma = _mm_add_epi32(wa[i & 3], k);
    __m128i mb = ma;
    if constexpr (kTwo) mb = _mm_add_epi32(wb[i & 3], k);
    sa.cdgh = _mm_sha256rnds2_epu32(sa.cdgh, sa.abef, ma);
    if constexpr (kTwo) sb.cdgh = _mm_sha256rnds2_epu32(sb.cdgh, sb.abef, mb);
    ma = _mm_shuffle_epi32(ma, 0x0E);
    if constexpr (kTwo) mb = _mm_shuffle_epi32(mb, 0x0E);
    sa.abef = _mm_sha256rnds2_epu32(sa.abef, sa.cdgh, ma);
    if constexpr (kTwo) sb.abef = _mm_sha256rnds2_epu32(sb.abef, sb.cdgh, mb);
  }
  sa.abef = _mm_add_epi32(sa.abef, save_a.abef);
  sa.cdgh = _mm_add_epi32(sa.cdgh, save_a.cdgh);
  if constexpr (kTwo) {
    sb.abef = _mm_add_epi32(sb.abef, save_b.abef);
    sb.cdgh = _mm_add_epi32(sb.cdgh, save_b.cdgh);
  }
}

// One message as a sequence of blocks: its whole blocks in place, then one or
// two padded tail blocks built here (FIPS 180-4 5.1.1: 0x80, zeros, the bit
// length as a big-endian u64).
struct Blocks {
  const uint8_t* data;
  size_t whole;  // blocks read from data
  size_t total;  // whole + tail blocks
  alignas(16) uint8_t tail[2 * kBlockBytes];

  explicit Blocks(std::span<const uint8_t> m) : data(m.data()), whole(m.size() / kBlockBytes) {
    size_t rest = m.size() % kBlockBytes;
    size_t tail_blocks = rest + 1 + 8 <= kBlockBytes ? 1 : 2;
    std::memset(tail, 0, sizeof tail);
    if (rest != 0) std::memcpy(tail, m.data() + whole * kBlockBytes, rest);
    tail[rest] = 0x80;
    uint64_t bits = static_cast<uint64_t>(m.size()) * 8;
    uint8_t* len = tail + tail_blocks * kBlockBytes - 8;
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
    total = whole + tail_blocks;
  }
  const uint8_t* block(size_t i) const { return i < whole ? data + i * kBlockBytes : tail + (i - whole) * kBlockBytes; }
};

LS_SHA_TARGET void sha256_x2_shani(std::span<const uint8_t> a, std::span<const uint8_t> b, uint8_t out_a[32],
                                   uint8_t out_b[32]) {
  Blocks ba(a), bb(b);
  LaneState sa = load_state(kInitialState);
  LaneState sb = sa;
  size_t both = std::min(ba.total, bb.total);
  for (size_t i = 0; i < both; ++i) compress<true>(sa, ba.block(i), sb, bb.block(i));
  for (size_t i = both; i < ba.total; ++i) compress<false>(sa, ba.block(i), sb, nullptr);
  for (size_t i = both; i < bb.total; ++i) compress<false>(sb, bb.block(i), sa, nullptr);
  store_digest(sa, out_a);
  store_digest(sb, out_b);
}

const bool kHaveShaExtensions = cpu_has_sha_extensions();

}  // namespace

bool sha256_x2_accelerated() { return kHaveShaExtensions; }

void sha256_x2(std::span<const uint8_t> a, std::span<const uint8_t> b, Hash32& out_a, Hash32& out_b) {
  if (!kHaveShaExtensions) {
    out_a = sha256(a);
    out_b = sha256(b);
    return;
  }
  sha256_x2_shani(a, b, out_a.data(), out_b.data());
}

#else  // no SHA extensions on this architecture

bool sha256_x2_accelerated() { return false; }

void sha256_x2(std::span<const uint8_t> a, std::span<const uint8_t> b, Hash32& out_a, Hash32& out_b) {
  out_a = sha256(a);
  out_b = sha256(b);
}

#endif

}  // namespace logseal
