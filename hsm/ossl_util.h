// Internal to hsm/: OpenSSL ownership helpers and the P-256 key checks shared by
// the soft signer and PublicKey. Nothing outside hsm/ includes this.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"

namespace logseal::hsm::internal {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const;
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;

// Drains this thread's OpenSSL error queue into one line, so a failure reports
// OpenSSL's reason and leaves no stale entry for the next, unrelated call.
std::string openssl_error();

// InvalidArgument unless key is EC on the named curve P-256 (explicit curve
// parameters are rejected too: they are how curve-substitution attacks start).
// `what` names the key in the message.
Status check_p256(EVP_PKEY* key, const std::string& what);

// The SubjectPublicKeyInfo DER of a P-256 key, always with the uncompressed
// point, so the key id (SHA-256 of this) depends on the key, not on how a file
// happened to encode it. key must have passed check_p256.
Result<std::vector<uint8_t>> p256_spki_der(EVP_PKEY* key);

// PEM ("PUBLIC KEY") of a SubjectPublicKeyInfo DER.
std::string spki_pem(const std::vector<uint8_t>& der);

// Reads a whole small file (keys); NotFound if it does not exist. The caller
// cleanses it if it holds a secret.
Result<std::string> read_small_file(const std::string& path, size_t max_bytes);

// Creates every missing component of dir, new ones 0700 (they hold keys).
Status make_dirs(const std::string& dir);

// Writes a new file with exactly `mode`, fsynced. exclusive: AlreadyExists
// rather than touch an existing file. On failure nothing is left behind.
Status write_new_file(const std::string& path, const char* data, size_t len, unsigned mode, bool exclusive);

// Makes new directory entries durable.
Status fsync_dir(const std::string& dir);

}  // namespace logseal::hsm::internal
