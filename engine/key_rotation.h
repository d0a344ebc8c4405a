// Key rotation statements (docs/FORMAT.md section 5.3): a record in the stream,
// signed by the key in use, that names the key taking over. A verifier given
// only the first public key follows the chain of statements to every later key.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "hsm/signer.h"
#include "io/env.h"

namespace logseal::engine {

inline constexpr char kKeyRotationMagic[8] = {'L', 'S', 'E', 'A', 'L', 'K', 'R', '1'};

struct KeyRotation {
  std::string stream;
  Hash32 old_key_id{};
  hsm::SignerKind new_kind = hsm::SignerKind::kTpm;  // as declared by the operator
  std::vector<uint8_t> new_key_der;                  // SubjectPublicKeyInfo DER
  int64_t time_ns = 0;
  std::vector<uint8_t> signature;  // ECDSA by the old key over SHA-256(body)
};

// The signed body: magic, new_kind, stream_len, der_len, time_ns, old_key_id,
// stream, der.
std::vector<uint8_t> encode_key_rotation_body(const KeyRotation& k);
// body ‖ u16 sig_len ‖ signature: the record's raw bytes.
std::vector<uint8_t> encode_key_rotation(const KeyRotation& k);
// DataLoss unless raw is exactly one well-formed statement.
Result<KeyRotation> decode_key_rotation(std::span<const uint8_t> raw);
// The record's fields: {"key_rotation":{"old_key_id":..,"new_key_id":..,"new_signer":..}}.
std::string key_rotation_fields_json(const KeyRotation& k);

// Start-up guard against a silent change of key: the key about to sign `stream`
// must be the key of its latest signed checkpoint, or the new key of a rotation
// statement that key signed (`logseal key rotate`), found in the segments from
// the latest checkpoint's on. FailedPrecondition otherwise, naming both keys and
// `logseal key rotate`. OK for a stream that does not exist or has no signed
// checkpoint yet. Reads only; safe on a live directory.
Status check_stream_key(io::Env& env, const std::string& data_dir, const std::string& stream, const Hash32& key_id);

}  // namespace logseal::engine
