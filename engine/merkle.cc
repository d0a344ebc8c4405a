#include "engine/merkle.h"

#include <bit>
#include <cstring>

#include "base/assert.h"
#include "hsm/sha256.h"

namespace logseal::merkle {

namespace {

constexpr uint8_t kLeafPrefix = 0x00;
constexpr uint8_t kNodePrefix = 0x01;
// Records up to this size are hashed from one stack buffer with the one-shot
// (the common case: log records are a few hundred bytes); larger ones stream.
constexpr size_t kStackLeafBytes = 2048;
// One subtree root per bit of a 64-bit size.
constexpr size_t kMaxFrontier = 64;

// Largest power of two strictly less than n (n >= 2): RFC 6962's split point.
uint64_t split_point(uint64_t n) {
  LS_ASSERT(n >= 2);
  return std::bit_floor(n - 1);
}

// MTH(leaves) by the same left-to-right folding the frontier does, with a fixed
// stack: O(n) hashes, no allocation, no recursion.
Hash32 mth(std::span<const Hash32> leaves) {
  if (leaves.empty()) return empty_root();
  Hash32 stack[kMaxFrontier];
  size_t top = 0;
  uint64_t count = 0;
  for (const Hash32& leaf : leaves) {
    Hash32 h = leaf;
    for (uint64_t c = count; c & 1; c >>= 1) h = node_hash(stack[--top], h);
    stack[top++] = h;
    ++count;
  }
  Hash32 r = stack[top - 1];
  for (size_t i = top - 1; i-- > 0;) r = node_hash(stack[i], r);
  return r;
}

// RFC 6962 §2.1.1 PATH(m, D[n]), appended bottom-up (the recursion emits the
// deepest sibling first because each level appends after recursing).
void path(uint64_t m, std::span<const Hash32> d, std::vector<Hash32>* out) {
  uint64_t n = d.size();
  if (n <= 1) return;
  uint64_t k = split_point(n);
  if (m < k) {
    path(m, d.first(k), out);
    out->push_back(mth(d.subspan(k)));
  } else {
    path(m - k, d.subspan(k), out);
    out->push_back(mth(d.first(k)));
  }
}

// RFC 6962 §2.1.2 SUBPROOF(m, D[n], b).
void subproof(uint64_t m, std::span<const Hash32> d, bool b, std::vector<Hash32>* out) {
  uint64_t n = d.size();
  if (m == n) {
    if (!b) out->push_back(mth(d));
    return;
  }
  uint64_t k = split_point(n);
  if (m <= k) {
    subproof(m, d.first(k), b, out);
    out->push_back(mth(d.subspan(k)));
  } else {
    subproof(m - k, d.subspan(k), false, out);
    out->push_back(mth(d.first(k)));
  }
}

// Shifts fn and sn right together until fn's low bit is set or fn is 0
// (the "right-shift ... until" steps of RFC 9162).
void shift_until_odd(uint64_t* fn, uint64_t* sn) {
  if (*fn == 0) return;
  int z = std::countr_zero(*fn);
  *fn >>= z;
  *sn >>= z;
}

}  // namespace

Hash32 leaf_hash(std::span<const uint8_t> record) {
  if (record.size() < kStackLeafBytes) {
    uint8_t buf[kStackLeafBytes];
    buf[0] = kLeafPrefix;
    if (!record.empty()) std::memcpy(buf + 1, record.data(), record.size());
    return sha256({buf, record.size() + 1});
  }
  Sha256 h;
  h.update(&kLeafPrefix, 1);
  h.update(record);
  return h.finish();
}

void leaf_hashes(std::span<const std::span<const uint8_t>> records, std::vector<Hash32>& out) {
  size_t i = 0;
  if (sha256_x2_accelerated()) {
    // 0x00 || record needs the record behind a prefix byte: small records are
    // copied into two stack buffers, larger ones hashed one at a time.
    uint8_t a[kStackLeafBytes], b[kStackLeafBytes];
    for (; i + 1 < records.size(); i += 2) {
      std::span<const uint8_t> ra = records[i], rb = records[i + 1];
      if (ra.size() >= kStackLeafBytes || rb.size() >= kStackLeafBytes) {
        out.push_back(leaf_hash(ra));
        out.push_back(leaf_hash(rb));
        continue;
      }
      a[0] = kLeafPrefix;
      b[0] = kLeafPrefix;
      if (!ra.empty()) std::memcpy(a + 1, ra.data(), ra.size());
      if (!rb.empty()) std::memcpy(b + 1, rb.data(), rb.size());
      Hash32 ha, hb;
      sha256_x2({a, ra.size() + 1}, {b, rb.size() + 1}, ha, hb);
      out.push_back(ha);
      out.push_back(hb);
    }
  }
  for (; i < records.size(); ++i) out.push_back(leaf_hash(records[i]));
}

Hash32 node_hash(const Hash32& left, const Hash32& right) {
  uint8_t buf[1 + 2 * sizeof(Hash32)];
  buf[0] = kNodePrefix;
  std::memcpy(buf + 1, left.data(), left.size());
  std::memcpy(buf + 1 + left.size(), right.data(), right.size());
  return sha256(buf);
}

Hash32 empty_root() {
  static const Hash32 kEmpty = sha256({});
  return kEmpty;
}

Result<MerkleFrontier> MerkleFrontier::from(uint64_t size, std::vector<Hash32> hashes) {
  if (hashes.size() != static_cast<size_t>(std::popcount(size))) {
    return invalid_argument("Merkle frontier of size " + std::to_string(size) + " needs " +
                            std::to_string(std::popcount(size)) + " hashes, got " + std::to_string(hashes.size()));
  }
  MerkleFrontier f;
  f.size_ = size;
  f.hashes_ = std::move(hashes);
  f.hashes_.reserve(kMaxFrontier);
  return f;
}

void MerkleFrontier::append(const Hash32& leaf) {
  LS_ASSERT(size_ != UINT64_MAX);
  // Reserved once for the deepest possible frontier, so appends never allocate
  // (a default-constructed or copied frontier reserves on its first append).
  if (hashes_.capacity() < kMaxFrontier) hashes_.reserve(kMaxFrontier);
  // Each trailing 1 bit of size_ is a perfect subtree the same height as the
  // carry: merge them, like binary increment. Amortised one node hash per leaf.
  Hash32 carry = leaf;
  for (uint64_t s = size_; s & 1; s >>= 1) {
    carry = node_hash(hashes_.back(), carry);
    hashes_.pop_back();
  }
  hashes_.push_back(carry);
  ++size_;
}

Hash32 MerkleFrontier::root() const {
  if (hashes_.empty()) return empty_root();
  // Fold right to left: the smallest (rightmost) subtrees join first, as the
  // RFC 6962 split of a non-power-of-two tree does.
  Hash32 r = hashes_.back();
  for (size_t i = hashes_.size() - 1; i-- > 0;) r = node_hash(hashes_[i], r);
  return r;
}

Hash32 root_of(std::span<const Hash32> leaves) { return mth(leaves); }

std::vector<Hash32> inclusion_proof(std::span<const Hash32> leaves, uint64_t index) {
  LS_ASSERT_MSG(index < leaves.size(), "inclusion proof index out of range");
  std::vector<Hash32> out;
  out.reserve(64);
  path(index, leaves, &out);
  return out;
}

namespace {

// MTH of stream leaves [lo, lo + n) when [0, prefix.size()) is known only by
// its frontier (an aligned block per set bit, largest first).
struct PrefixTree {
  const MerkleFrontier& prefix;
  std::span<const Hash32> leaves;  // stream indexes prefix.size() ..

  Hash32 block(uint64_t lo, uint64_t n) const {
    // The frontier block starting at lo must be exactly n leaves.
    uint64_t start = 0;
    size_t i = 0;
    for (int bit = 63; bit >= 0; --bit) {
      uint64_t b = uint64_t{1} << bit;
      if (!(prefix.size() & b)) continue;
      if (start == lo) {
        LS_ASSERT_MSG(b == n, "a proof needs a subtree of the pruned prefix that is not a frontier block");
        return prefix.hashes()[i];
      }
      start += b;
      ++i;
    }
    LS_ASSERT_MSG(false, "a proof needs a subtree of the pruned prefix that is not a frontier block");
    return {};
  }

  Hash32 mth_range(uint64_t lo, uint64_t n) const {
    uint64_t f = prefix.size();
    if (lo >= f) return mth(leaves.subspan(lo - f, n));
    if (lo + n <= f) return block(lo, n);
    uint64_t k = split_point(n);
    return node_hash(mth_range(lo, k), mth_range(lo + k, n - k));
  }

  void path(uint64_t m, uint64_t lo, uint64_t n, std::vector<Hash32>* out) const {
    if (n <= 1) return;
    uint64_t k = split_point(n);
    if (m < k) {
      path(m, lo, k, out);
      out->push_back(mth_range(lo + k, n - k));
    } else {
      path(m - k, lo + k, n - k, out);
      out->push_back(mth_range(lo, k));
    }
  }
};

}  // namespace

std::vector<Hash32> inclusion_proof_after(const MerkleFrontier& prefix, std::span<const Hash32> leaves,
                                          uint64_t index) {
  uint64_t size = prefix.size() + leaves.size();
  LS_ASSERT_MSG(index >= prefix.size() && index < size, "inclusion proof index out of range");
  std::vector<Hash32> out;
  out.reserve(64);
  PrefixTree{prefix, leaves}.path(index, 0, size, &out);
  return out;
}

bool verify_inclusion(const Hash32& leaf, uint64_t index, uint64_t size, std::span<const Hash32> proof,
                      const Hash32& root) {
  if (index >= size) return false;
  uint64_t fn = index;
  uint64_t sn = size - 1;
  Hash32 r = leaf;
  for (const Hash32& p : proof) {
    if (sn == 0) return false;  // proof longer than the path
    if ((fn & 1) || fn == sn) {
      r = node_hash(p, r);
      if (!(fn & 1)) shift_until_odd(&fn, &sn);
    } else {
      r = node_hash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && r == root;
}

std::vector<Hash32> consistency_proof(std::span<const Hash32> leaves, uint64_t old_size) {
  LS_ASSERT_MSG(old_size <= leaves.size(), "consistency proof old size beyond the tree");
  std::vector<Hash32> out;
  // The empty tree is consistent with everything and a tree with itself: both
  // proofs are empty (RFC 9162 §2.1.4).
  if (old_size == 0 || old_size == leaves.size()) return out;
  out.reserve(64);
  subproof(old_size, leaves, true, &out);
  return out;
}

bool verify_consistency(uint64_t old_size, uint64_t new_size, const Hash32& old_root, const Hash32& new_root,
                        std::span<const Hash32> proof) {
  if (old_size > new_size) return false;
  if (old_size == new_size) return proof.empty() && old_root == new_root;
  // Every tree extends the empty one, but only if old_root really is its root.
  if (old_size == 0) return proof.empty() && old_root == empty_root();
  // RFC 9162 §2.1.4.2, with 0 < old_size < new_size.
  if (proof.empty()) return false;
  size_t i = 0;
  // When old_size is a power of two the old tree is a complete subtree of the
  // new one and the proof omits it: start from old_root itself.
  Hash32 fr;
  if (std::has_single_bit(old_size)) {
    fr = old_root;
  } else {
    fr = proof[i++];
  }
  Hash32 sr = fr;
  uint64_t fn = old_size - 1;
  uint64_t sn = new_size - 1;
  while (fn & 1) {
    fn >>= 1;
    sn >>= 1;
  }
  for (; i < proof.size(); ++i) {
    const Hash32& c = proof[i];
    if (sn == 0) return false;
    if ((fn & 1) || fn == sn) {
      fr = node_hash(c, fr);
      sr = node_hash(c, sr);
      if (!(fn & 1)) shift_until_odd(&fn, &sn);
    } else {
      sr = node_hash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return fr == old_root && sr == new_root && sn == 0;
}

}  // namespace logseal::merkle
