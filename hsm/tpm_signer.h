// The TPM 2.0 signer (tpm2-tss ESAPI): an ECDSA P-256 key made inside the TPM
// under the owner's ECC storage primary; only its TPM-wrapped blob is on disk
// (docs/FORMAT.md "TPM keys", hsm/tpm_keyfile.h).
//
// Every signature also increments an NV counter that belongs to the key, and the
// evidence read with it (TPM clock, reset and restart counts, the counter) goes
// into the signed body, so a verifier can see a data directory rolled back to an
// older copy: the TPM's counter never goes back.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "hsm/signer.h"

namespace logseal::hsm {

// $LOGSEAL_TCTI, or device:/dev/tpmrm0 (the kernel resource manager).
std::string default_tcti();

struct TpmKeygenOptions {
  std::string tcti;            // empty: default_tcti()
  std::vector<unsigned> pcrs;  // SHA-256 bank; empty: not bound to PCRs
};

// Creates the key in the TPM and its NV counter; writes DIR/signing-key.pem (the
// TSS2 PRIVATE KEY form, mode 0600) and DIR/signing-key.pub.pem. AlreadyExists if
// a key is there. Returns the key id.
Result<Hash32> tpm_keygen(const std::string& dir, const TpmKeygenOptions& options);

// Loads the key into the TPM reached through tcti (empty: default_tcti()).
// Errors name the cause: no TPM at the TCTI, a different TPM or a cleared owner
// hierarchy, PCRs that changed, dictionary-attack lockout, no free object slot.
Result<std::unique_ptr<Signer>> load_tpm_signer(const std::string& key_path, const std::string& tcti);

// "a,b,c" -> PCR indexes 0..23. InvalidArgument otherwise.
Result<std::vector<unsigned>> parse_pcr_list(const std::string& text);

}  // namespace logseal::hsm
