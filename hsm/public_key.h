// Public keys for verification: everything an offline auditor needs.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"

namespace logseal::hsm {

class PublicKey {
 public:
  // From a PEM SubjectPublicKeyInfo file (must be EC P-256).
  static Result<PublicKey> load_pem_file(const std::string& path);
  static Result<PublicKey> from_pem(const std::string& pem);
  static Result<PublicKey> from_der(std::span<const uint8_t> der);

  PublicKey(PublicKey&&) noexcept;
  PublicKey& operator=(PublicKey&&) noexcept;
  ~PublicKey();

  const std::vector<uint8_t>& der() const { return der_; }
  const Hash32& key_id() const { return key_id_; }  // SHA-256 of der()
  std::string pem() const;
  // True when sig_der is a valid ECDSA signature of digest by this key. Thread-safe.
  bool verify_digest(const Hash32& digest, std::span<const uint8_t> sig_der) const;

 private:
  PublicKey() = default;
  void* pkey_ = nullptr;  // EVP_PKEY*
  std::vector<uint8_t> der_;
  Hash32 key_id_{};
};

}  // namespace logseal::hsm
