#include "hsm/public_key.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <utility>

#include "hsm/ossl_util.h"
#include "hsm/sha256.h"

namespace logseal::hsm {

using internal::BioPtr;
using internal::PkeyCtxPtr;
using internal::PkeyPtr;

namespace {

// A public key PEM is a few hundred bytes; anything much larger is not one.
constexpr size_t kMaxPemBytes = 64 * 1024;

// Every factory funnels through here (a free function because the header has no
// private helper to declare it in). der is re-encoded from the parsed key, with
// the uncompressed point, rather than copied from the input, so one key has one
// key id whatever encoding it arrived in.
Status adopt(PkeyPtr key, void** pkey_out, std::vector<uint8_t>* der_out, Hash32* key_id_out) {
  LS_RETURN_IF_ERROR(internal::check_p256(key.get(), "public key"));
  LS_ASSIGN_OR_RETURN(*der_out, internal::p256_spki_der(key.get()));
  *key_id_out = sha256(*der_out);
  *pkey_out = key.release();
  return ok_status();
}

}  // namespace

Result<PublicKey> PublicKey::from_der(std::span<const uint8_t> der) {
  if (der.empty()) return invalid_argument("empty public key DER");
  const unsigned char* p = der.data();
  PkeyPtr key(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  if (key == nullptr) {
    return invalid_argument("not a SubjectPublicKeyInfo DER public key: " + internal::openssl_error());
  }
  if (p != der.data() + der.size()) {
    return invalid_argument("public key DER has " + std::to_string(der.data() + der.size() - p) +
                            " trailing bytes");
  }
  PublicKey pk;
  LS_RETURN_IF_ERROR(adopt(std::move(key), &pk.pkey_, &pk.der_, &pk.key_id_));
  return pk;
}

Result<PublicKey> PublicKey::from_pem(const std::string& pem) {
  if (pem.size() > kMaxPemBytes) return invalid_argument("public key PEM is too large");
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  LS_ASSERT(bio != nullptr);
  PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) {
    return invalid_argument("no PEM \"PUBLIC KEY\" (SubjectPublicKeyInfo) found: " +
                            internal::openssl_error());
  }
  PublicKey pk;
  LS_RETURN_IF_ERROR(adopt(std::move(key), &pk.pkey_, &pk.der_, &pk.key_id_));
  return pk;
}

Result<PublicKey> PublicKey::load_pem_file(const std::string& path) {
  LS_ASSIGN_OR_RETURN(std::string pem, internal::read_small_file(path, kMaxPemBytes));
  auto pk = from_pem(pem);
  if (!pk.ok()) return pk.status().with_context(path);
  return pk;
}

PublicKey::PublicKey(PublicKey&& other) noexcept
    : pkey_(std::exchange(other.pkey_, nullptr)),
      der_(std::move(other.der_)),
      key_id_(other.key_id_) {}

PublicKey& PublicKey::operator=(PublicKey&& other) noexcept {
  if (this != &other) {
    EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_));
    pkey_ = std::exchange(other.pkey_, nullptr);
    der_ = std::move(other.der_);
    key_id_ = other.key_id_;
  }
  return *this;
}

PublicKey::~PublicKey() { EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_)); }

std::string PublicKey::pem() const { return internal::spki_pem(der_); }

bool PublicKey::verify_digest(const Hash32& digest, std::span<const uint8_t> sig_der) const {
  if (pkey_ == nullptr || sig_der.empty()) return false;
  // A context per call: EVP_PKEY is safe to share read-only between threads, a
  // context is not.
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, static_cast<EVP_PKEY*>(pkey_), nullptr));
  bool ok = ctx != nullptr && EVP_PKEY_verify_init(ctx.get()) == 1 &&
            EVP_PKEY_verify(ctx.get(), sig_der.data(), sig_der.size(), digest.data(),
                            digest.size()) == 1;
  // A bad signature is an answer, not an error: leave no entry in the queue.
  if (!ok) ERR_clear_error();
  return ok;
}

}  // namespace logseal::hsm
