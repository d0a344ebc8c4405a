// Software ECDSA P-256 signer on OpenSSL. Development and tests only: every seal
// it makes says so (SignerKind::kSoft) and `verify --require-tpm` rejects it.
#pragma once

#include <memory>
#include <string>

#include "hsm/signer.h"

namespace logseal::hsm {

// Creates a new P-256 key; writes DIR/signing-key.pem (PKCS#8 PEM, mode 0600) and
// DIR/signing-key.pub.pem (SubjectPublicKeyInfo PEM, mode 0644). AlreadyExists if
// signing-key.pem is there (never overwrite a key). Returns the key id.
Result<Hash32> soft_keygen(const std::string& dir);

// Loads a private key PEM written by soft_keygen (or any P-256 PKCS#8/SEC1 PEM).
Result<std::unique_ptr<Signer>> load_soft_signer(const std::string& key_path);

}  // namespace logseal::hsm
