// SHA-256 for the hot paths (one leaf hash per record, one node hash per append).
//
// Two implementations, chosen at compile time:
//  - Default: OpenSSL's low-level SHA256_Init/Update/Final on a stack or heap
//    SHA256_CTX. These are deprecated in OpenSSL 3 but still shipped, use the
//    same SHA-NI assembly, and skip the provider dispatch of EVP. Measured on
//    the build host (AMD EPYC, SHA-NI, OpenSSL 3.0.19, 1M hashes, best of 5,
//    quiet machine): ~245 ns per 300-byte hash against ~295 ns for EVP with a
//    prefetched MD and a reused thread_local EVP_MD_CTX, and ~120 vs ~170 ns
//    for a 65-byte Merkle node. EVP_Digest (a context allocated per call) was
//    ~400 ns; SHA256() goes through EVP_Q_digest in 3.0 and was ~650 ns.
//  - When the deprecated API is compiled out (-DOPENSSL_NO_DEPRECATED, or an
//    OpenSSL built no-deprecated; either defines OPENSSL_NO_DEPRECATED_3_0):
//    EVP with the SHA256 MD fetched once and a reused context.
// Both produce identical digests; hsm_test and merkle_test pass on either.
#include "hsm/sha256.h"

// Defines OPENSSL_NO_DEPRECATED_3_0 (via macros.h) when the deprecated API is
// not available; it must come before the test below.
#include <openssl/opensslconf.h>

#include "base/assert.h"

#if defined(OPENSSL_NO_DEPRECATED_3_0)
#define LS_SHA256_USE_EVP 1
#include <openssl/evp.h>
#else
#define LS_SHA256_USE_EVP 0
#include <openssl/sha.h>
#endif

namespace logseal {

#if LS_SHA256_USE_EVP

namespace {

// Fetched once: an implicit fetch (EVP_sha256()) costs a provider lookup per
// init. Deliberately never freed: it must outlive every static or thread_local
// hasher, including ones destroyed after OpenSSL's own atexit cleanup ran.
const EVP_MD* sha256_md() {
  static const EVP_MD* const md = [] {
    EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    LS_ASSERT_MSG(m != nullptr, "OpenSSL has no SHA256");
    return m;
  }();
  return md;
}

void init_ctx(EVP_MD_CTX* ctx) {
  LS_ASSERT(EVP_DigestInit_ex2(ctx, sha256_md(), nullptr) == 1);
}

// One context per thread for the one-shot: allocating an EVP_MD_CTX per call
// (what EVP_Digest does) is measurably slower.
struct ThreadCtx {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ThreadCtx() { LS_ASSERT(ctx != nullptr); }
  ~ThreadCtx() { EVP_MD_CTX_free(ctx); }
  ThreadCtx(const ThreadCtx&) = delete;
  ThreadCtx& operator=(const ThreadCtx&) = delete;
};

}  // namespace

Hash32 sha256(std::span<const uint8_t> data) {
  thread_local ThreadCtx t;
  init_ctx(t.ctx);
  LS_ASSERT(EVP_DigestUpdate(t.ctx, data.data(), data.size()) == 1);
  Hash32 out;
  unsigned int len = 0;
  LS_ASSERT(EVP_DigestFinal_ex(t.ctx, out.data(), &len) == 1 && len == out.size());
  return out;
}

Sha256::Sha256() {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  LS_ASSERT(ctx != nullptr);
  init_ctx(ctx);
  ctx_ = ctx;
}

Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Sha256::update(const void* data, size_t len_bytes) {
  LS_ASSERT(EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, len_bytes) == 1);
}

Hash32 Sha256::finish() {
  auto* ctx = static_cast<EVP_MD_CTX*>(ctx_);
  Hash32 out;
  unsigned int len = 0;
  LS_ASSERT(EVP_DigestFinal_ex(ctx, out.data(), &len) == 1 && len == out.size());
  init_ctx(ctx);
  return out;
}

#else  // low-level API

// The low-level API is deprecated, not removed. The warning is silenced only for
// these four functions, so any other deprecated call still fails -Werror.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

Hash32 sha256(std::span<const uint8_t> data) {
  // The context lives on the stack: no allocation, no shared state, thread-safe.
  SHA256_CTX ctx;
  LS_ASSERT(SHA256_Init(&ctx) == 1);
  LS_ASSERT(SHA256_Update(&ctx, data.data(), data.size()) == 1);
  Hash32 out;
  LS_ASSERT(SHA256_Final(out.data(), &ctx) == 1);
  return out;
}

Sha256::Sha256() {
  auto* ctx = new SHA256_CTX;
  LS_ASSERT(SHA256_Init(ctx) == 1);
  ctx_ = ctx;
}

Sha256::~Sha256() { delete static_cast<SHA256_CTX*>(ctx_); }

void Sha256::update(const void* data, size_t len_bytes) {
  LS_ASSERT(SHA256_Update(static_cast<SHA256_CTX*>(ctx_), data, len_bytes) == 1);
}

Hash32 Sha256::finish() {
  auto* ctx = static_cast<SHA256_CTX*>(ctx_);
  Hash32 out;
  LS_ASSERT(SHA256_Final(out.data(), ctx) == 1);
  LS_ASSERT(SHA256_Init(ctx) == 1);
  return out;
}

#pragma GCC diagnostic pop

#endif

}  // namespace logseal
