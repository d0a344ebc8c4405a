// The Signer interface: signs 32-byte digests (checkpoint and seal heads) with a
// key that, for the TPM signer, never leaves the TPM.
//
// Threading contract: sign_digest() and evidence() may block for a long time (a
// hardware TPM takes ~200 ms per signature), so the engine calls them only from
// its signer thread, never from ingest or the segment writer. Other methods are
// cheap and thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"

namespace logseal::hsm {

// Recorded in every checkpoint and seal (docs/FORMAT.md).
enum class SignerKind : uint8_t { kSoft = 1, kTpm = 2 };
const char* signer_kind_name(SignerKind kind);

// What a TPM adds to a seal so rollback can be seen (zeros for the soft signer).
struct Evidence {
  uint64_t tpm_clock_ms = 0;
  uint32_t tpm_reset_count = 0;
  uint32_t tpm_restart_count = 0;
  uint8_t tpm_safe = 0;
  uint64_t nv_counter = 0;
};

class Signer {
 public:
  virtual ~Signer() = default;
  virtual SignerKind kind() const = 0;
  // SubjectPublicKeyInfo DER of the P-256 public key.
  virtual const std::vector<uint8_t>& public_key_der() const = 0;
  // SHA-256 of public_key_der().
  virtual const Hash32& key_id() const = 0;
  // Evidence to put in the body that is about to be signed (signer thread only).
  virtual Result<Evidence> evidence() = 0;
  // ECDSA P-256 signature of digest, DER encoded (signer thread only).
  virtual Result<std::vector<uint8_t>> sign_digest(const Hash32& digest) = 0;
};

// Builds a signer from a spec "soft:KEYFILE" or "tpm:KEYFILE" (the TPM reached through
// $LOGSEAL_TCTI, default device:/dev/tpmrm0). InvalidArgument for an unknown kind,
// NotFound / DataLoss for key files, the TPM signer's errors (hsm/tpm_signer.h).
Result<std::unique_ptr<Signer>> open_signer(const std::string& spec);

// A signer wrapper for tests and the benchmark's slow-signer mode: sleeps delay_ms
// before each signature.
std::unique_ptr<Signer> make_slow_signer(std::unique_ptr<Signer> inner, unsigned delay_ms);

}  // namespace logseal::hsm
