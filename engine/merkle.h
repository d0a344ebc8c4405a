// RFC 6962 / RFC 9162 Merkle tree of a stream's records.
//   leaf = SHA-256(0x00 || record bytes)
//   node = SHA-256(0x01 || left || right)
// The tree of n leaves splits at the largest power of two k < n (RFC 6962 §2.1).
//
// MerkleFrontier is the compact state a writer keeps (and a segment header
// stores): the roots of the perfect subtrees that make up the tree, largest
// (leftmost) first, one per set bit of the size. It appends in O(log n) amortised
// O(1) and gives the root at any size, so a segment can be verified on its own.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"

namespace logseal::merkle {

Hash32 leaf_hash(std::span<const uint8_t> record);
// leaf_hash of each record, appended to out in order; two at a time where the
// CPU hashes pairs faster (sha256_x2). Same digests as leaf_hash.
void leaf_hashes(std::span<const std::span<const uint8_t>> records, std::vector<Hash32>& out);
Hash32 node_hash(const Hash32& left, const Hash32& right);
// Root of the empty tree: SHA-256 of the empty string (RFC 6962).
Hash32 empty_root();

class MerkleFrontier {
 public:
  MerkleFrontier() = default;
  // From a stored frontier; InvalidArgument unless hashes.size() == popcount(size).
  static Result<MerkleFrontier> from(uint64_t size, std::vector<Hash32> hashes);

  void append(const Hash32& leaf);
  uint64_t size() const { return size_; }
  // The subtree roots, largest first (popcount(size()) of them).
  const std::vector<Hash32>& hashes() const { return hashes_; }
  Hash32 root() const;

 private:
  uint64_t size_ = 0;
  std::vector<Hash32> hashes_;
};

// Root of leaves[0..n).
Hash32 root_of(std::span<const Hash32> leaves);

// RFC 6962 PATH(m, D[n]) for leaves[0..size): hashes from the leaf's sibling up.
std::vector<Hash32> inclusion_proof(std::span<const Hash32> leaves, uint64_t index);
// The same PATH for a stream whose first prefix.size() records are gone (a
// pruned front, FORMAT.md 5.4): leaves are records prefix.size() .. on, index
// is a stream index at or after prefix.size(). Every sibling that lies wholly
// in the missing prefix is one of the prefix's frontier subtrees (the RFC 6962
// split puts the largest power of two first), so the frontier is all it needs.
std::vector<Hash32> inclusion_proof_after(const MerkleFrontier& prefix, std::span<const Hash32> leaves, uint64_t index);
// RFC 9162 §2.1.3.2 verification.
bool verify_inclusion(const Hash32& leaf, uint64_t index, uint64_t size, std::span<const Hash32> proof,
                      const Hash32& root);

// RFC 6962 PROOF(m, D[n]) for the first old_size leaves against leaves[0..n).
std::vector<Hash32> consistency_proof(std::span<const Hash32> leaves, uint64_t old_size);
// RFC 9162 §2.1.4.2 verification.
bool verify_consistency(uint64_t old_size, uint64_t new_size, const Hash32& old_root, const Hash32& new_root,
                        std::span<const Hash32> proof);

}  // namespace logseal::merkle
