#include "hsm/soft_signer.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>
#include <utility>

#include "hsm/ossl_util.h"
#include "hsm/sha256.h"

namespace logseal::hsm {

using internal::BioPtr;
using internal::PkeyCtxPtr;
using internal::PkeyPtr;

namespace {

constexpr char kKeyFile[] = "signing-key.pem";
constexpr char kPubFile[] = "signing-key.pub.pem";
// A P-256 PKCS#8 PEM is ~240 bytes; the cap only stops us reading a wrong file.
constexpr size_t kMaxKeyFileBytes = 64 * 1024;

class SoftSigner final : public Signer {
 public:
  SoftSigner(PkeyPtr key, std::vector<uint8_t> der)
      : key_(std::move(key)), der_(std::move(der)), key_id_(sha256(der_)) {}

  SignerKind kind() const override { return SignerKind::kSoft; }
  const std::vector<uint8_t>& public_key_der() const override { return der_; }
  const Hash32& key_id() const override { return key_id_; }
  // No hardware clock or counter to attest: all zeros, as the format expects.
  Result<Evidence> evidence() override { return Evidence{}; }

  Result<std::vector<uint8_t>> sign_digest(const Hash32& digest) override {
    // The digest goes to EVP_PKEY_sign as is (no second hash), so the result is
    // exactly what `openssl dgst -sha256 -sign` makes for a message whose
    // SHA-256 is digest. A fresh context per call keeps this object stateless.
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key_.get(), nullptr));
    if (ctx == nullptr || EVP_PKEY_sign_init(ctx.get()) != 1) {
      return internal_error("ECDSA sign init: " + internal::openssl_error());
    }
    size_t len = 0;
    if (EVP_PKEY_sign(ctx.get(), nullptr, &len, digest.data(), digest.size()) != 1) {
      return internal_error("ECDSA signature size: " + internal::openssl_error());
    }
    std::vector<uint8_t> sig(len);
    if (EVP_PKEY_sign(ctx.get(), sig.data(), &len, digest.data(), digest.size()) != 1) {
      return internal_error("ECDSA sign: " + internal::openssl_error());
    }
    sig.resize(len);  // DER length varies (70..72 bytes) with the leading bits of r, s
    return sig;
  }

 private:
  PkeyPtr key_;
  std::vector<uint8_t> der_;
  Hash32 key_id_;
};

// Encrypted PEMs are not supported; without this callback OpenSSL would prompt
// on the controlling terminal, which a daemon must never do.
int no_password(char*, int, int, void*) { return -1; }

// Wipes a string holding key material before it is freed.
struct Cleanser {
  std::string& s;
  ~Cleanser() { OPENSSL_cleanse(s.data(), s.size()); }
};

}  // namespace

Result<Hash32> soft_keygen(const std::string& dir) {
  LS_RETURN_IF_ERROR(internal::make_dirs(dir));
  const std::string key_path = dir + "/" + kKeyFile;
  const std::string pub_path = dir + "/" + kPubFile;

  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (key == nullptr) return internal_error("P-256 keygen: " + internal::openssl_error());
  LS_RETURN_IF_ERROR(internal::check_p256(key.get(), "generated key"));
  LS_ASSIGN_OR_RETURN(std::vector<uint8_t> der, internal::p256_spki_der(key.get()));

  // A secure-memory BIO is cleansed when freed, so the PEM does not linger.
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (bio == nullptr ||
      PEM_write_bio_PKCS8PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return internal_error("encode PKCS#8: " + internal::openssl_error());
  }
  char* pem = nullptr;
  long pem_len = BIO_get_mem_data(bio.get(), &pem);
  LS_ASSERT(pem_len > 0 && pem != nullptr);

  // O_EXCL makes the existence check and the create one step: two keygens
  // racing cannot both win, and an existing key is never overwritten.
  LS_RETURN_IF_ERROR(internal::write_new_file(key_path, pem, static_cast<size_t>(pem_len), 0600, true));
  const std::string pub_pem = internal::spki_pem(der);
  Status st = internal::write_new_file(pub_path, pub_pem.data(), pub_pem.size(), 0644, false);
  if (st.ok()) st = internal::fsync_dir(dir);
  if (!st.ok()) {
    // Either both files describe the new key or neither exists: a private key
    // without its public half would make the next keygen fail AlreadyExists.
    ::unlink(key_path.c_str());
    return st;
  }
  return sha256(der);
}

Result<std::unique_ptr<Signer>> load_soft_signer(const std::string& key_path) {
  LS_ASSIGN_OR_RETURN(std::string pem, internal::read_small_file(key_path, kMaxKeyFileBytes));
  Cleanser wipe{pem};

  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  LS_ASSERT(bio != nullptr);
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr));
  if (key == nullptr) {
    return data_loss(key_path + ": no unencrypted PEM private key (PKCS#8 or SEC1) found: " +
                     internal::openssl_error());
  }
  LS_RETURN_IF_ERROR(internal::check_p256(key.get(), key_path));

  // A damaged file can hold a public point that does not match the private
  // scalar; every seal would then carry a key id that fails to verify.
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (ctx == nullptr || EVP_PKEY_pairwise_check(ctx.get()) != 1) {
    return data_loss(key_path + ": private and public key do not match: " + internal::openssl_error());
  }
  LS_ASSIGN_OR_RETURN(std::vector<uint8_t> der, internal::p256_spki_der(key.get()));
  return std::unique_ptr<Signer>(std::make_unique<SoftSigner>(std::move(key), std::move(der)));
}

}  // namespace logseal::hsm
