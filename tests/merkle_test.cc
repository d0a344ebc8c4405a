#include "engine/merkle.h"

#include <gtest/gtest.h>

#include <bit>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "hsm/sha256.h"

namespace logseal::merkle {
namespace {

// The definitions of RFC 6962 §2.1 written as literally as possible, with no
// shared code with merkle.cc beyond SHA-256 itself.
Hash32 ref_hash(uint8_t prefix, std::span<const uint8_t> a, std::span<const uint8_t> b = {}) {
  std::vector<uint8_t> buf;
  buf.push_back(prefix);
  buf.insert(buf.end(), a.begin(), a.end());
  buf.insert(buf.end(), b.begin(), b.end());
  return sha256(buf);
}

uint64_t ref_split(uint64_t n) {
  uint64_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

// MTH over leaf hashes D[lo, hi).
Hash32 ref_mth(const std::vector<Hash32>& d, uint64_t lo, uint64_t hi) {
  uint64_t n = hi - lo;
  if (n == 0) return sha256({});
  if (n == 1) return d[lo];
  uint64_t k = ref_split(n);
  return ref_hash(0x01, ref_mth(d, lo, lo + k), ref_mth(d, lo + k, hi));
}

std::vector<Hash32> ref_path(const std::vector<Hash32>& d, uint64_t m, uint64_t lo, uint64_t hi) {
  uint64_t n = hi - lo;
  if (n <= 1) return {};
  uint64_t k = ref_split(n);
  std::vector<Hash32> out;
  if (m < k) {
    out = ref_path(d, m, lo, lo + k);
    out.push_back(ref_mth(d, lo + k, hi));
  } else {
    out = ref_path(d, m - k, lo + k, hi);
    out.push_back(ref_mth(d, lo, lo + k));
  }
  return out;
}

// Which side each sibling of leaf m is on, bottom-up ('L' or 'R'), in a tree of n.
std::string ref_shape(uint64_t m, uint64_t n) {
  if (n <= 1) return "";
  uint64_t k = ref_split(n);
  return m < k ? ref_shape(m, k) + "R" : ref_shape(m - k, n - k) + "L";
}

std::vector<Hash32> ref_subproof(const std::vector<Hash32>& d, uint64_t m, uint64_t lo, uint64_t hi, bool b) {
  uint64_t n = hi - lo;
  if (m == n) return b ? std::vector<Hash32>{} : std::vector<Hash32>{ref_mth(d, lo, hi)};
  uint64_t k = ref_split(n);
  std::vector<Hash32> out;
  if (m <= k) {
    out = ref_subproof(d, m, lo, lo + k, b);
    out.push_back(ref_mth(d, lo + k, hi));
  } else {
    out = ref_subproof(d, m - k, lo + k, hi, false);
    out.push_back(ref_mth(d, lo, lo + k));
  }
  return out;
}

std::vector<Hash32> make_leaves(uint64_t n) {
  std::vector<Hash32> leaves;
  leaves.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    std::string rec = "record " + std::to_string(i) + std::string(i % 17, 'x');
    leaves.push_back(leaf_hash(as_bytes(rec)));
  }
  return leaves;
}

Hash32 h(const char* hex) {
  auto b = from_hex(hex);
  EXPECT_TRUE(b.has_value() && b->size() == 32) << hex;
  Hash32 out{};
  if (b && b->size() == 32) std::copy(b->begin(), b->end(), out.begin());
  return out;
}

Hash32 flip(Hash32 x) {
  x[7] ^= 0x20;
  return x;
}

// The Certificate Transparency reference data (RFC 6962 test vectors as used by
// the CT, Trillian and transparency-dev test suites).
std::vector<std::vector<uint8_t>> ct_inputs() {
  std::vector<std::vector<uint8_t>> out;
  for (const char* hex :
       {"", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"}) {
    out.push_back(*from_hex(hex));
  }
  return out;
}

const char* const kCtRoots[] = {
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

TEST(Merkle, HashPrefixes) {
  const std::vector<uint8_t> rec = {1, 2, 3};
  EXPECT_EQ(leaf_hash(rec), ref_hash(0x00, rec));
  EXPECT_EQ(leaf_hash({}), ref_hash(0x00, {}));
  Hash32 a = leaf_hash(rec), b = leaf_hash({});
  EXPECT_EQ(node_hash(a, b), ref_hash(0x01, a, b));
  EXPECT_NE(node_hash(a, b), node_hash(b, a));
  EXPECT_EQ(to_hex(empty_root()), kCtRoots[0]);
  EXPECT_EQ(root_of({}), empty_root());
  EXPECT_EQ(MerkleFrontier().root(), empty_root());
}

TEST(Merkle, LeafHashOfLargeRecords) {
  // Around and beyond the one-shot stack buffer, both code paths.
  for (size_t n : {0, 1, 63, 64, 300, 2046, 2047, 2048, 2049, 5000, 100000}) {
    std::vector<uint8_t> rec(n);
    for (size_t i = 0; i < n; ++i) rec[i] = static_cast<uint8_t>(i * 131 + n);
    EXPECT_EQ(leaf_hash(rec), ref_hash(0x00, rec)) << n;
  }
}

// The batched form gives leaf_hash's digests for every mix of sizes, odd counts
// and records on either side of the stack-buffer limit.
TEST(Merkle, LeafHashesMatchLeafHash) {
  std::vector<std::vector<uint8_t>> data;
  uint32_t x = 12345;
  for (size_t n : {0, 1, 54, 55, 56, 63, 64, 119, 300, 2046, 2047, 2048, 2049, 5000, 7, 300, 301}) {
    std::vector<uint8_t> d(n);
    for (auto& b : d) b = static_cast<uint8_t>((x = x * 1103515245 + 12345) >> 24);
    data.push_back(std::move(d));
  }
  for (size_t count = 0; count <= data.size(); ++count) {
    std::vector<std::span<const uint8_t>> recs;
    for (size_t i = 0; i < count; ++i) recs.emplace_back(data[i]);
    std::vector<Hash32> out = {Hash32{}};  // appended to, not replaced
    merkle::leaf_hashes(recs, out);
    ASSERT_EQ(out.size(), count + 1);
    for (size_t i = 0; i < count; ++i) EXPECT_EQ(out[i + 1], merkle::leaf_hash(recs[i])) << count << " " << i;
  }
}

TEST(Merkle, CtVectors) {
  auto inputs = ct_inputs();
  std::vector<Hash32> leaves;
  for (const auto& in : inputs) leaves.push_back(leaf_hash(in));
  MerkleFrontier f;
  for (size_t n = 0; n <= leaves.size(); ++n) {
    EXPECT_EQ(to_hex(root_of(std::span(leaves).first(n))), kCtRoots[n]) << n;
    EXPECT_EQ(to_hex(f.root()), kCtRoots[n]) << n;
    if (n < leaves.size()) f.append(leaves[n]);
  }

  // Inclusion: leaf 0 and leaf 5 of 8, leaf 2 of 3, leaf 1 of 5.
  struct Incl {
    uint64_t index, size;
    std::vector<const char*> proof;
  };
  const Incl incl[] = {
      {0,
       8,
       {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
      {5,
       8,
       {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
      {2, 3, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
      {1,
       5,
       {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
  };
  for (const Incl& v : incl) {
    std::vector<Hash32> want;
    for (const char* p : v.proof) want.push_back(h(p));
    auto got = inclusion_proof(std::span(leaves).first(v.size), v.index);
    EXPECT_EQ(got, want) << v.index << "/" << v.size;
    EXPECT_TRUE(verify_inclusion(leaves[v.index], v.index, v.size, want, h(kCtRoots[v.size])));
  }

  struct Cons {
    uint64_t m, n;
    std::vector<const char*> proof;
  };
  const Cons cons[] = {
      {1, 1, {}},
      {1,
       8,
       {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
      {6,
       8,
       {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
      {2,
       5,
       {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
  };
  for (const Cons& v : cons) {
    std::vector<Hash32> want;
    for (const char* p : v.proof) want.push_back(h(p));
    auto got = consistency_proof(std::span(leaves).first(v.n), v.m);
    EXPECT_EQ(got, want) << v.m << "->" << v.n;
    EXPECT_TRUE(verify_consistency(v.m, v.n, h(kCtRoots[v.m]), h(kCtRoots[v.n]), want));
  }
}

TEST(Merkle, RootMatchesReferenceAndFrontierAtEverySize) {
  auto leaves = make_leaves(1100);
  MerkleFrontier f;
  for (uint64_t n = 0; n <= leaves.size(); ++n) {
    if (n <= 300 || n % 97 == 0 || std::has_single_bit(n) || n == leaves.size()) {
      Hash32 want = ref_mth(leaves, 0, n);
      ASSERT_EQ(root_of(std::span(leaves).first(n)), want) << n;
      ASSERT_EQ(f.root(), want) << n;
    } else {
      ASSERT_EQ(f.root(), root_of(std::span(leaves).first(n))) << n;
    }
    ASSERT_EQ(f.size(), n);
    ASSERT_EQ(f.hashes().size(), static_cast<size_t>(std::popcount(n))) << n;
    if (n < leaves.size()) f.append(leaves[n]);
  }
}

TEST(Merkle, FrontierHashesAreTheSubtreeRoots) {
  auto leaves = make_leaves(45);  // 45 = 32 + 8 + 4 + 1
  MerkleFrontier f;
  for (const Hash32& l : leaves) f.append(l);
  ASSERT_EQ(f.hashes().size(), 4u);
  EXPECT_EQ(f.hashes()[0], ref_mth(leaves, 0, 32));
  EXPECT_EQ(f.hashes()[1], ref_mth(leaves, 32, 40));
  EXPECT_EQ(f.hashes()[2], ref_mth(leaves, 40, 44));
  EXPECT_EQ(f.hashes()[3], ref_mth(leaves, 44, 45));
}

TEST(Merkle, FrontierFromRoundTrip) {
  auto leaves = make_leaves(200);
  MerkleFrontier f;
  for (uint64_t n = 0; n < leaves.size(); ++n) {
    auto g = MerkleFrontier::from(f.size(), f.hashes());
    ASSERT_TRUE(g.ok()) << g.status().to_string();
    EXPECT_EQ(g->size(), f.size());
    EXPECT_EQ(g->hashes(), f.hashes());
    EXPECT_EQ(g->root(), f.root());
    // The restored frontier keeps going exactly like the original.
    for (uint64_t m = n; m < std::min<uint64_t>(n + 5, leaves.size()); ++m) g->append(leaves[m]);
    uint64_t end = std::min<uint64_t>(n + 5, leaves.size());
    EXPECT_EQ(g->root(), root_of(std::span(leaves).first(end))) << n;
    f.append(leaves[n]);
  }
  // Wrong hash count for the size.
  EXPECT_EQ(MerkleFrontier::from(5, {Hash32{}}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(MerkleFrontier::from(0, {Hash32{}}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(MerkleFrontier::from(4, {}).status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(MerkleFrontier::from(0, {}).ok());
  EXPECT_TRUE(MerkleFrontier::from(UINT64_MAX, std::vector<Hash32>(64)).ok());
}

TEST(Merkle, FrontierAppendDoesNotAllocateInSteadyState) {
  auto leaves = make_leaves(1);
  MerkleFrontier f;
  f.append(leaves[0]);
  const Hash32* data = f.hashes().data();
  for (int i = 0; i < 5000; ++i) f.append(leaves[0]);
  EXPECT_EQ(f.hashes().data(), data);  // never reallocated
  EXPECT_GE(f.hashes().capacity(), 64u);
}

TEST(Merkle, InclusionProofsForEveryIndex) {
  auto leaves = make_leaves(70);
  for (uint64_t n = 1; n <= 70; ++n) {
    auto d = std::span<const Hash32>(leaves).first(n);
    const Hash32 root = ref_mth(leaves, 0, n);
    for (uint64_t i = 0; i < n; ++i) {
      auto proof = inclusion_proof(d, i);
      ASSERT_EQ(proof, ref_path(leaves, i, 0, n)) << i << "/" << n;
      ASSERT_TRUE(verify_inclusion(leaves[i], i, n, proof, root)) << i << "/" << n;

      EXPECT_FALSE(verify_inclusion(flip(leaves[i]), i, n, proof, root));  // wrong leaf
      EXPECT_FALSE(verify_inclusion(leaves[i], i, n, proof, flip(root)));  // wrong root
      EXPECT_FALSE(verify_inclusion(leaves[i], n, n, proof, root));        // index out of range
      EXPECT_FALSE(verify_inclusion(leaves[i], i, 0, proof, root));
      for (uint64_t j = 0; j < n; ++j) {  // wrong index
        if (j != i) {
          EXPECT_FALSE(verify_inclusion(leaves[i], j, n, proof, root)) << i << "@" << j;
        }
      }
      // Wrong size. A proof does not commit to the size on its own: sizes in
      // which leaf i has the same path shape compute the very same root (the
      // signed head binds size and root together). Every other size must fail.
      for (uint64_t s = i + 1; s <= n + 70; ++s) {
        if (s == n) continue;
        bool same_shape = ref_shape(i, s) == ref_shape(i, n);
        EXPECT_EQ(verify_inclusion(leaves[i], i, s, proof, root), same_shape) << i << "/" << s;
      }
      if (!proof.empty()) {  // truncated, or one hash tampered
        EXPECT_FALSE(verify_inclusion(leaves[i], i, n, std::span(proof).first(proof.size() - 1), root));
        for (size_t k = 0; k < proof.size(); ++k) {
          auto bad = proof;
          bad[k] = flip(bad[k]);
          EXPECT_FALSE(verify_inclusion(leaves[i], i, n, bad, root));
        }
      }
      auto longer = proof;  // an extra hash
      longer.push_back(leaves[0]);
      EXPECT_FALSE(verify_inclusion(leaves[i], i, n, longer, root));
    }
  }
}

TEST(Merkle, ConsistencyProofsForAllPairs) {
  auto leaves = make_leaves(64);
  std::vector<Hash32> roots;
  for (uint64_t n = 0; n <= 64; ++n) roots.push_back(ref_mth(leaves, 0, n));
  for (uint64_t n = 1; n <= 64; ++n) {
    auto d = std::span<const Hash32>(leaves).first(n);
    for (uint64_t m = 1; m <= n; ++m) {
      auto proof = consistency_proof(d, m);
      std::vector<Hash32> want = m == n ? std::vector<Hash32>{} : ref_subproof(leaves, m, 0, n, true);
      ASSERT_EQ(proof, want) << m << "->" << n;
      ASSERT_TRUE(verify_consistency(m, n, roots[m], roots[n], proof)) << m << "->" << n;

      EXPECT_FALSE(verify_consistency(m, n, flip(roots[m]), roots[n], proof)) << m << "->" << n;
      EXPECT_FALSE(verify_consistency(m, n, roots[m], flip(roots[n]), proof)) << m << "->" << n;
      if (m < n) {  // swapped
        EXPECT_FALSE(verify_consistency(n, m, roots[n], roots[m], proof));
      }
      for (size_t k = 0; k < proof.size(); ++k) {
        auto bad = proof;
        bad[k] = flip(bad[k]);
        EXPECT_FALSE(verify_consistency(m, n, roots[m], roots[n], bad)) << m << "->" << n << " #" << k;
      }
      if (!proof.empty()) {
        EXPECT_FALSE(verify_consistency(m, n, roots[m], roots[n], std::span(proof).first(proof.size() - 1)));
      }
      auto longer = proof;
      longer.push_back(leaves[0]);
      EXPECT_FALSE(verify_consistency(m, n, roots[m], roots[n], longer)) << m << "->" << n;
      // The proof is bound to its sizes.
      if (n < 64) {
        EXPECT_FALSE(verify_consistency(m, n + 1, roots[m], roots[n + 1], proof));
      }
      if (m > 1 && m < n) {
        EXPECT_FALSE(verify_consistency(m - 1, n, roots[m - 1], roots[n], proof));
      }
    }
  }
  // The empty tree: consistent with anything, given the real empty root and no proof.
  EXPECT_TRUE(consistency_proof(leaves, 0).empty());
  EXPECT_TRUE(verify_consistency(0, 10, empty_root(), roots[10], {}));
  EXPECT_FALSE(verify_consistency(0, 10, roots[3], roots[10], {}));
  EXPECT_FALSE(verify_consistency(0, 10, empty_root(), roots[10], std::span(roots).first(1)));
  EXPECT_TRUE(verify_consistency(0, 0, empty_root(), empty_root(), {}));
  EXPECT_FALSE(verify_consistency(5, 3, roots[5], roots[3], {}));
}

TEST(Merkle, LargerTreeProofs) {
  auto leaves = make_leaves(1000);
  const Hash32 root = root_of(leaves);
  for (uint64_t i : {0ull, 1ull, 511ull, 512ull, 767ull, 998ull, 999ull}) {
    auto proof = inclusion_proof(leaves, i);
    EXPECT_TRUE(verify_inclusion(leaves[i], i, leaves.size(), proof, root)) << i;
  }
  for (uint64_t m : {1ull, 3ull, 255ull, 256ull, 513ull, 999ull, 1000ull}) {
    auto proof = consistency_proof(leaves, m);
    EXPECT_TRUE(verify_consistency(m, leaves.size(), root_of(std::span(leaves).first(m)), root, proof)) << m;
  }
}

// A pruned front (FORMAT.md 5.4): proofs from the prefix's frontier and the
// remaining leaves equal the RFC 6962 reference over all leaves.
TEST(Merkle, InclusionProofsAfterAPrunedPrefix) {
  auto leaves = make_leaves(70);
  for (uint64_t n = 1; n <= 70; ++n) {
    for (uint64_t f = 0; f < n; ++f) {
      MerkleFrontier prefix;
      for (uint64_t i = 0; i < f; ++i) prefix.append(leaves[i]);
      auto rest = std::span<const Hash32>(leaves).subspan(f, n - f);
      for (uint64_t i = f; i < n; ++i) {
        auto proof = inclusion_proof_after(prefix, rest, i);
        ASSERT_EQ(proof, ref_path(leaves, i, 0, n)) << i << " in " << n << " after " << f;
        ASSERT_TRUE(verify_inclusion(leaves[i], i, n, proof, ref_mth(leaves, 0, n)));
      }
    }
  }
}

}  // namespace
}  // namespace logseal::merkle
