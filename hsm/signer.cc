#include "hsm/signer.h"

#include <chrono>
#include <thread>
#include <utility>

#include "hsm/soft_signer.h"
#include "hsm/tpm_signer.h"

namespace logseal::hsm {

const char* signer_kind_name(SignerKind kind) {
  switch (kind) {
    case SignerKind::kSoft: return "soft";
    case SignerKind::kTpm: return "tpm";
  }
  // A kind read from a damaged or newer file: name it rather than trap.
  return "unknown";
}

Result<std::unique_ptr<Signer>> open_signer(const std::string& spec) {
  size_t colon = spec.find(':');
  if (colon == std::string::npos) {
    return invalid_argument("signer spec \"" + spec + "\" is not KIND:KEYFILE (soft:PATH or tpm:PATH)");
  }
  std::string kind = spec.substr(0, colon);
  std::string path = spec.substr(colon + 1);
  if (kind != "soft" && kind != "tpm") {
    return invalid_argument("unknown signer kind \"" + kind + "\" (expected soft or tpm)");
  }
  if (path.empty()) return invalid_argument("signer spec \"" + spec + "\" has no key file");
  if (kind == "tpm") return load_tpm_signer(path, default_tcti());
  return load_soft_signer(path);
}

namespace {

// Delegates everything; only sign_digest is slowed, because that is the call
// whose latency (a TPM's ~200 ms) the engine has to hide from ingest.
class SlowSigner final : public Signer {
 public:
  SlowSigner(std::unique_ptr<Signer> inner, unsigned delay_ms)
      : inner_(std::move(inner)), delay_ms_(delay_ms) {}

  SignerKind kind() const override { return inner_->kind(); }
  const std::vector<uint8_t>& public_key_der() const override { return inner_->public_key_der(); }
  const Hash32& key_id() const override { return inner_->key_id(); }
  Result<Evidence> evidence() override { return inner_->evidence(); }
  Result<std::vector<uint8_t>> sign_digest(const Hash32& digest) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
    return inner_->sign_digest(digest);
  }

 private:
  std::unique_ptr<Signer> inner_;
  unsigned delay_ms_;
};

}  // namespace

std::unique_ptr<Signer> make_slow_signer(std::unique_ptr<Signer> inner, unsigned delay_ms) {
  LS_ASSERT(inner != nullptr);
  return std::make_unique<SlowSigner>(std::move(inner), delay_ms);
}

}  // namespace logseal::hsm
