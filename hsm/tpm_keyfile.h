// The on-disk form of a TPM-wrapped key: the standard "TSS2 PRIVATE KEY" PEM
// (the ASN.1 TPMKey structure that tpm2-openssl and tpm2-tss-engine read), so the
// same file also works with those tools, followed by a few "logseal-..." text
// lines that PEM readers skip.
//
//   TPMKey ::= SEQUENCE {
//     type       OBJECT IDENTIFIER,             -- 2.23.133.10.1.3 (loadable key)
//     emptyAuth  [0] EXPLICIT BOOLEAN OPTIONAL,
//     policy     [1] EXPLICIT SEQUENCE OF TPMPolicy OPTIONAL,
//     secret     [2] EXPLICIT OCTET STRING OPTIONAL,
//     parent     INTEGER,                        -- 0x40000001: the owner hierarchy
//     pubkey     OCTET STRING,                   -- marshalled TPM2B_PUBLIC
//     privkey    OCTET STRING }                  -- marshalled TPM2B_PRIVATE
//   TPMPolicy ::= SEQUENCE { commandCode [0] EXPLICIT INTEGER,
//                            commandPolicy [1] EXPLICIT OCTET STRING }
//
// The text lines carry what the standard form has no field for: the Name of the
// storage primary the key was made under (to tell "a different TPM, or its owner
// was cleared" from other load failures) and the NV counter index of the key.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace logseal::hsm {

inline constexpr uint32_t kTpmOwnerHierarchy = 0x40000001;
inline constexpr uint32_t kTpmCcPolicyPcr = 0x0000017F;

struct TpmPolicyStep {
  uint32_t command_code = 0;
  std::vector<uint8_t> command_policy;  // the command's marshalled parameters
};

struct TpmKeyFile {
  bool empty_auth = true;
  std::vector<TpmPolicyStep> policy;
  uint32_t parent = kTpmOwnerHierarchy;
  std::vector<uint8_t> public_blob;   // marshalled TPM2B_PUBLIC
  std::vector<uint8_t> private_blob;  // marshalled TPM2B_PRIVATE
  // logseal lines
  std::vector<uint8_t> parent_name;   // TPM2B_NAME contents of the storage primary
  uint32_t nv_counter_index = 0;      // 0: none
};

std::string encode_tpm_key_file(const TpmKeyFile& key);

// DataLoss with the reason for anything that is not a well-formed key file of
// this form (wrong PEM label, bad DER, unknown OID, a secret field: imported keys
// are not supported).
Result<TpmKeyFile> decode_tpm_key_file(std::string_view text);

}  // namespace logseal::hsm
