#include "hsm/tpm_signer.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <utility>

#include <unistd.h>

#include "hsm/ossl_util.h"
#include "hsm/sha256.h"
#include "hsm/tpm_keyfile.h"

namespace logseal::hsm {

namespace {

constexpr char kKeyFile[] = "signing-key.pem";
constexpr char kPubFile[] = "signing-key.pub.pem";
constexpr size_t kMaxKeyFileBytes = 64 * 1024;
// NV indexes in the owner range 0x01000000..0x013FFFFF; the key picks one from
// its id, and the next ones if that is taken.
constexpr uint32_t kNvOwnerFirst = 0x01000000;
constexpr uint32_t kNvOwnerMask = 0x003FFFFF;

// ---- error messages ------------------------------------------------------------

// The TPM response code without the handle/parameter/session number, so the
// cases below can be matched whatever argument the TPM blamed.
TSS2_RC base_rc(TSS2_RC rc) {
  if ((rc & 0xFFFF0000u) != 0) return rc;     // a TSS layer (TCTI, ESAPI, MU...)
  if (rc & 0x80) return (rc & 0x3F) | 0x80;   // format one
  return rc & 0xFFF;
}

std::string rc_text(TSS2_RC rc) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%x", rc);
  return std::string(Tss2_RC_Decode(rc)) + " (" + buf + ")";
}

Status tpm_error(const std::string& what, TSS2_RC rc) {
  TSS2_RC b = base_rc(rc);
  uint32_t layer = rc >> TSS2_RC_LAYER_SHIFT;
  std::string detail = rc_text(rc);
  if (layer == (TSS2_TCTI_RC_LAYER >> TSS2_RC_LAYER_SHIFT)) {
    return unavailable(what + ": the TPM could not be reached through its TCTI: " + detail);
  }
  switch (b) {
    case TPM2_RC_LOCKOUT:
      return failed_precondition(what + ": the TPM is in dictionary-attack lockout; wait for it to recover "
                                 "or clear it with `tpm2_dictionarylockout -c`: " + detail);
    case TPM2_RC_OBJECT_MEMORY:
    case TPM2_RC_SESSION_MEMORY:
    case TPM2_RC_OBJECT_HANDLES:
      return resource_exhausted(what + ": the TPM has no free object or session slot (another program holds "
                                "them; with a resource manager /dev/tpmrm0 this does not happen; "
                                "`tpm2_flushcontext -t` frees them): " + detail);
    case TPM2_RC_INITIALIZE:
      return unavailable(what + ": the TPM has not been started (TPM2_Startup missing): " + detail);
    case TPM2_RC_POLICY_FAIL:
    case TPM2_RC_VALUE | TPM2_RC_FMT1:
      break;
    case TPM2_RC_INTEGRITY:
      return failed_precondition(what + ": the TPM rejects the key blob (made by a different TPM, or the "
                                 "owner hierarchy was cleared since): " + detail);
    default:
      break;
  }
  return unavailable(what + ": " + detail);
}

// ---- RAII over the TSS --------------------------------------------------------

struct EsysFree {
  template <typename T>
  void operator()(T* p) const { Esys_Free(p); }
};
template <typename T>
using EsysPtr = std::unique_ptr<T, EsysFree>;

class Tpm {
 public:
  static Result<std::unique_ptr<Tpm>> connect(const std::string& tcti) {
    auto t = std::unique_ptr<Tpm>(new Tpm());
    TSS2_RC rc = Tss2_TctiLdr_Initialize(tcti.c_str(), &t->tcti_);
    if (rc != TSS2_RC_SUCCESS) {
      return unavailable("no TPM reachable at TCTI \"" + tcti + "\" (" + rc_text(rc) +
                         "); on a machine without /dev/tpmrm0 run swtpm and set --tcti or LOGSEAL_TCTI");
    }
    rc = Esys_Initialize(&t->esys_, t->tcti_, nullptr);
    if (rc != TSS2_RC_SUCCESS) return tpm_error("connect to the TPM at \"" + tcti + "\"", rc);
    return t;
  }
  ~Tpm() {
    if (esys_ != nullptr) Esys_Finalize(&esys_);
    if (tcti_ != nullptr) Tss2_TctiLdr_Finalize(&tcti_);
  }
  ESYS_CONTEXT* ctx() { return esys_; }

  void flush(ESYS_TR& h) {
    if (h != ESYS_TR_NONE) {
      (void)Esys_FlushContext(esys_, h);
      h = ESYS_TR_NONE;
    }
  }

  // The ECC storage primary of TPM_NOTES.md (the template tpm2-openssl uses),
  // so blobs made under it load there too. Deterministic: recreated each time.
  Result<ESYS_TR> create_primary(std::vector<uint8_t>* name_out) {
    TPM2B_SENSITIVE_CREATE sens{};
    TPM2B_PUBLIC pub{};
    pub.publicArea.type = TPM2_ALG_ECC;
    pub.publicArea.nameAlg = TPM2_ALG_SHA256;
    pub.publicArea.objectAttributes = TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT |
                                      TPMA_OBJECT_NODA | TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                      TPMA_OBJECT_SENSITIVEDATAORIGIN;
    auto& ecc = pub.publicArea.parameters.eccDetail;
    ecc.symmetric.algorithm = TPM2_ALG_AES;
    ecc.symmetric.keyBits.aes = 128;
    ecc.symmetric.mode.aes = TPM2_ALG_CFB;
    ecc.scheme.scheme = TPM2_ALG_NULL;
    ecc.curveID = TPM2_ECC_NIST_P256;
    ecc.kdf.scheme = TPM2_ALG_NULL;
    TPM2B_DATA outside{};
    TPML_PCR_SELECTION creation_pcr{};
    ESYS_TR handle = ESYS_TR_NONE;
    TSS2_RC rc = Esys_CreatePrimary(esys_, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens,
                                    &pub, &outside, &creation_pcr, &handle, nullptr, nullptr, nullptr, nullptr);
    if (rc != TSS2_RC_SUCCESS) return tpm_error("create the storage primary key under the owner hierarchy", rc);
    if (name_out != nullptr) {
      TPM2B_NAME* name = nullptr;
      rc = Esys_TR_GetName(esys_, handle, &name);
      if (rc != TSS2_RC_SUCCESS) {
        flush(handle);
        return tpm_error("read the storage primary's name", rc);
      }
      name_out->assign(name->name, name->name + name->size);
      Esys_Free(name);
    }
    return handle;
  }

 private:
  Tpm() = default;
  TSS2_TCTI_CONTEXT* tcti_ = nullptr;
  ESYS_CONTEXT* esys_ = nullptr;
};

TPML_PCR_SELECTION pcr_selection(const std::vector<unsigned>& pcrs) {
  TPML_PCR_SELECTION sel{};
  sel.count = 1;
  sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
  sel.pcrSelections[0].sizeofSelect = 3;
  for (unsigned p : pcrs) sel.pcrSelections[0].pcrSelect[p / 8] |= static_cast<uint8_t>(1u << (p % 8));
  return sel;
}

std::string pcr_list_text(const TPML_PCR_SELECTION& sel) {
  std::string out;
  for (uint32_t i = 0; i < sel.count; ++i) {
    for (unsigned p = 0; p < sel.pcrSelections[i].sizeofSelect * 8u; ++p) {
      if (sel.pcrSelections[i].pcrSelect[p / 8] & (1u << (p % 8))) {
        if (!out.empty()) out += ",";
        out += std::to_string(p);
      }
    }
  }
  return "sha256:" + out;
}

// The PolicyPCR pcrDigest: SHA-256 over the selected PCR values in index order,
// as the TPM computes it.
Result<TPM2B_DIGEST> current_pcr_digest(Tpm& tpm, const TPML_PCR_SELECTION& sel) {
  std::vector<uint8_t> concat;
  TPML_PCR_SELECTION want = sel;
  // PCR_Read returns at most 8 values per call; ask again for what is left.
  for (int round = 0; round < 4; ++round) {
    bool any = false;
    for (uint32_t b = 0; b < want.pcrSelections[0].sizeofSelect; ++b) any |= want.pcrSelections[0].pcrSelect[b] != 0;
    if (!any) break;
    UINT32 counter = 0;
    TPML_PCR_SELECTION* out_sel = nullptr;
    TPML_DIGEST* values = nullptr;
    TSS2_RC rc = Esys_PCR_Read(tpm.ctx(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &want, &counter, &out_sel, &values);
    if (rc != TSS2_RC_SUCCESS) return tpm_error("read PCRs", rc);
    EsysPtr<TPML_PCR_SELECTION> os(out_sel);
    EsysPtr<TPML_DIGEST> vs(values);
    if (values->count == 0) return failed_precondition("the TPM has no SHA-256 PCR bank for " + pcr_list_text(sel));
    for (uint32_t i = 0; i < values->count; ++i) {
      concat.insert(concat.end(), values->digests[i].buffer, values->digests[i].buffer + values->digests[i].size);
    }
    for (uint32_t b = 0; b < 3; ++b) want.pcrSelections[0].pcrSelect[b] &= ~out_sel->pcrSelections[0].pcrSelect[b];
  }
  Hash32 h = sha256(concat);
  TPM2B_DIGEST d{};
  d.size = 32;
  std::memcpy(d.buffer, h.data(), 32);
  return d;
}

// ---- marshalling ------------------------------------------------------------------

template <typename T, TSS2_RC (*Fn)(const T*, uint8_t[], size_t, size_t*)>
std::vector<uint8_t> marshal(const T& v) {
  std::vector<uint8_t> buf(sizeof(T) + 16);
  size_t off = 0;
  TSS2_RC rc = Fn(&v, buf.data(), buf.size(), &off);
  LS_ASSERT(rc == TSS2_RC_SUCCESS);
  buf.resize(off);
  return buf;
}

template <typename T, TSS2_RC (*Fn)(const uint8_t[], size_t, size_t*, T*)>
Result<T> unmarshal(const std::vector<uint8_t>& buf, size_t* off, const char* what) {
  T v{};
  TSS2_RC rc = Fn(buf.data(), buf.size(), off, &v);
  if (rc != TSS2_RC_SUCCESS) return data_loss(std::string("TPM key file: bad ") + what + ": " + rc_text(rc));
  return v;
}

// The PolicyPCR step as the key file stores it: pcrDigest then pcrs, the
// command's parameters in order.
struct PcrPolicy {
  TPM2B_DIGEST digest{};
  TPML_PCR_SELECTION selection{};
};

Result<PcrPolicy> decode_pcr_policy(const std::vector<uint8_t>& b) {
  size_t off = 0;
  PcrPolicy p;
  LS_ASSIGN_OR_RETURN(p.digest, (unmarshal<TPM2B_DIGEST, Tss2_MU_TPM2B_DIGEST_Unmarshal>(b, &off, "pcrDigest")));
  LS_ASSIGN_OR_RETURN(p.selection,
                      (unmarshal<TPML_PCR_SELECTION, Tss2_MU_TPML_PCR_SELECTION_Unmarshal>(b, &off, "PCR selection")));
  if (off != b.size()) return data_loss("TPM key file: bytes after the PolicyPCR parameters");
  return p;
}

// ---- public key --------------------------------------------------------------------

Result<std::vector<uint8_t>> spki_from_tpm_public(const TPM2B_PUBLIC& pub) {
  const TPMT_PUBLIC& a = pub.publicArea;
  if (a.type != TPM2_ALG_ECC || a.parameters.eccDetail.curveID != TPM2_ECC_NIST_P256) {
    return data_loss("TPM key is not an ECC P-256 key");
  }
  const auto& x = a.unique.ecc.x;
  const auto& y = a.unique.ecc.y;
  if (x.size > 32 || y.size > 32) return data_loss("TPM key has an oversized public point");
  uint8_t point[65] = {0x04};
  std::memcpy(point + 1 + 32 - x.size, x.buffer, x.size);  // left-pad to 32 bytes
  std::memcpy(point + 33 + 32 - y.size, y.buffer, y.size);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
  OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point);
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  OSSL_PARAM_BLD_free(bld);
  internal::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  int ok = ctx != nullptr && params != nullptr && EVP_PKEY_fromdata_init(ctx.get()) == 1 &&
           EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) == 1;
  OSSL_PARAM_free(params);
  internal::PkeyPtr key(raw);
  if (!ok) return data_loss("TPM key's public point is not on P-256: " + internal::openssl_error());
  LS_RETURN_IF_ERROR(internal::check_p256(key.get(), "TPM public key"));
  return internal::p256_spki_der(key.get());
}

std::vector<uint8_t> der_signature(const TPMS_SIGNATURE_ECDSA& s) {
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(s.signatureR.buffer, s.signatureR.size, nullptr);
  BIGNUM* ss = BN_bin2bn(s.signatureS.buffer, s.signatureS.size, nullptr);
  LS_ASSERT(sig != nullptr && r != nullptr && ss != nullptr);
  ECDSA_SIG_set0(sig, r, ss);
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig, &der);
  LS_ASSERT(len > 0);
  std::vector<uint8_t> out(der, der + len);
  OPENSSL_free(der);
  ECDSA_SIG_free(sig);
  return out;
}

// ---- the signer -----------------------------------------------------------------------

class TpmSigner final : public Signer {
 public:
  TpmSigner(std::string path, std::string tcti, TpmKeyFile file, TPM2B_PUBLIC pub, TPM2B_PRIVATE priv,
            std::optional<PcrPolicy> policy, std::vector<uint8_t> der)
      : path_(std::move(path)),
        tcti_(std::move(tcti)),
        file_(std::move(file)),
        pub_(pub),
        priv_(priv),
        policy_(std::move(policy)),
        der_(std::move(der)),
        key_id_(sha256(der_)) {}

  ~TpmSigner() override { disconnect(); }

  SignerKind kind() const override { return SignerKind::kTpm; }
  const std::vector<uint8_t>& public_key_der() const override { return der_; }
  const Hash32& key_id() const override { return key_id_; }

  // Loads the key and opens what signing needs. Called at open (to fail fast
  // with a clear error) and again after any TPM failure: a TPM that restarted
  // has forgotten the loaded key and the session.
  Status connect() {
    if (tpm_ != nullptr) return ok_status();
    LS_ASSIGN_OR_RETURN(tpm_, Tpm::connect(tcti_));
    Status st = load();
    if (!st.ok()) disconnect();
    return st;
  }

  Result<Evidence> evidence() override {
    LS_RETURN_IF_ERROR(connect());
    Evidence ev;
    if (nv_ != ESYS_TR_NONE) {
      TSS2_RC rc = Esys_NV_Increment(tpm_->ctx(), nv_, nv_, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE);
      if (rc != TSS2_RC_SUCCESS) return fail(tpm_error("increment the key's NV counter", rc));
      TPM2B_MAX_NV_BUFFER* data = nullptr;
      rc = Esys_NV_Read(tpm_->ctx(), nv_, nv_, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, 8, 0, &data);
      if (rc != TSS2_RC_SUCCESS) return fail(tpm_error("read the key's NV counter", rc));
      EsysPtr<TPM2B_MAX_NV_BUFFER> d(data);
      if (data->size != 8) return fail(data_loss("the key's NV counter is not 8 bytes"));
      for (int i = 0; i < 8; ++i) ev.nv_counter = (ev.nv_counter << 8) | data->buffer[i];
    }
    TPMS_TIME_INFO* ti = nullptr;
    TSS2_RC rc = Esys_ReadClock(tpm_->ctx(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &ti);
    if (rc != TSS2_RC_SUCCESS) return fail(tpm_error("read the TPM clock", rc));
    EsysPtr<TPMS_TIME_INFO> t(ti);
    ev.tpm_clock_ms = ti->clockInfo.clock;
    ev.tpm_reset_count = ti->clockInfo.resetCount;
    ev.tpm_restart_count = ti->clockInfo.restartCount;
    ev.tpm_safe = ti->clockInfo.safe ? 1 : 0;
    return ev;
  }

  Result<std::vector<uint8_t>> sign_digest(const Hash32& digest) override {
    LS_RETURN_IF_ERROR(connect());
    ESYS_TR auth = ESYS_TR_PASSWORD;
    if (policy_) {
      // The policy digest resets after every command it authorised.
      TSS2_RC rc = Esys_PolicyPCR(tpm_->ctx(), session_, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &policy_->digest,
                                  &policy_->selection);
      if (rc != TSS2_RC_SUCCESS) {
        TSS2_RC b = base_rc(rc);
        if (b == (TPM2_RC_VALUE | TPM2_RC_FMT1) || b == TPM2_RC_POLICY_FAIL) {
          return fail(failed_precondition("the key is bound to PCRs " + pcr_list_text(policy_->selection) +
                                          " and their values changed since it was made (boot chain or "
                                          "configuration changed?); it cannot sign until they match again: " +
                                          rc_text(rc)));
        }
        return fail(tpm_error("PolicyPCR", rc));
      }
      auth = session_;
    }
    TPM2B_DIGEST d{};
    d.size = 32;
    std::memcpy(d.buffer, digest.data(), 32);
    TPMT_SIG_SCHEME scheme{};
    scheme.scheme = TPM2_ALG_ECDSA;
    scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    TPMT_TK_HASHCHECK ticket{};
    ticket.tag = TPM2_ST_HASHCHECK;
    ticket.hierarchy = TPM2_RH_NULL;
    TPMT_SIGNATURE* sig = nullptr;
    TSS2_RC rc = Esys_Sign(tpm_->ctx(), key_, auth, ESYS_TR_NONE, ESYS_TR_NONE, &d, &scheme, &ticket, &sig);
    if (rc != TSS2_RC_SUCCESS) return fail(tpm_error("sign with the TPM key", rc));
    EsysPtr<TPMT_SIGNATURE> s(sig);
    if (sig->sigAlg != TPM2_ALG_ECDSA) return fail(internal_error("the TPM returned a non-ECDSA signature"));
    return der_signature(sig->signature.ecdsa);
  }

 private:
  Status fail(Status st) {
    disconnect();
    return st;
  }

  void disconnect() {
    if (tpm_ == nullptr) return;
    tpm_->flush(key_);
    tpm_->flush(session_);
    if (nv_ != ESYS_TR_NONE) {
      (void)Esys_TR_Close(tpm_->ctx(), &nv_);
      nv_ = ESYS_TR_NONE;
    }
    tpm_.reset();
  }

  Status load() {
    std::vector<uint8_t> name;
    LS_ASSIGN_OR_RETURN(ESYS_TR primary, tpm_->create_primary(&name));
    if (!file_.parent_name.empty() && name != file_.parent_name) {
      tpm_->flush(primary);
      return failed_precondition(path_ + ": this key was made by a different TPM, or this TPM's owner hierarchy "
                                 "was cleared since (the storage primary's name is " + to_hex(name) +
                                 ", the key was made under " + to_hex(file_.parent_name) +
                                 "); make a new key with `logseal keygen --signer tpm`");
    }
    TSS2_RC rc = Esys_Load(tpm_->ctx(), primary, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &priv_, &pub_, &key_);
    // Only the key is needed from here; a transient slot is precious (3 on swtpm).
    tpm_->flush(primary);
    if (rc != TSS2_RC_SUCCESS) return tpm_error(path_ + ": load the key into the TPM", rc);
    if (policy_) {
      TPMT_SYM_DEF sym{};
      sym.algorithm = TPM2_ALG_NULL;
      rc = Esys_StartAuthSession(tpm_->ctx(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                 nullptr, TPM2_SE_POLICY, &sym, TPM2_ALG_SHA256, &session_);
      if (rc != TSS2_RC_SUCCESS) return tpm_error("start a policy session", rc);
      rc = Esys_TRSess_SetAttributes(tpm_->ctx(), session_, TPMA_SESSION_CONTINUESESSION, 0xff);
      if (rc != TSS2_RC_SUCCESS) return tpm_error("set the policy session's attributes", rc);
    }
    if (file_.nv_counter_index != 0) {
      rc = Esys_TR_FromTPMPublic(tpm_->ctx(), file_.nv_counter_index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv_);
      if (rc != TSS2_RC_SUCCESS) {
        char idx[16];
        std::snprintf(idx, sizeof idx, "0x%08x", file_.nv_counter_index);
        return failed_precondition(path_ + ": the key's NV counter " + idx +
                                   " is not defined in this TPM (owner cleared, or index undefined): " + rc_text(rc));
      }
    }
    return ok_status();
  }

  const std::string path_;
  const std::string tcti_;
  const TpmKeyFile file_;
  TPM2B_PUBLIC pub_;
  TPM2B_PRIVATE priv_;
  std::optional<PcrPolicy> policy_;
  const std::vector<uint8_t> der_;
  const Hash32 key_id_;

  std::unique_ptr<Tpm> tpm_;
  ESYS_TR key_ = ESYS_TR_NONE;
  ESYS_TR session_ = ESYS_TR_NONE;
  ESYS_TR nv_ = ESYS_TR_NONE;
};

// Defines the key's NV counter (owner-authorised define; the index's own empty
// auth increments and reads it) and increments it once so it can be read.
Result<uint32_t> define_nv_counter(Tpm& tpm, const Hash32& key_id) {
  uint32_t seed = (uint32_t{key_id[0]} << 16) | (uint32_t{key_id[1]} << 8) | key_id[2];
  for (uint32_t attempt = 0; attempt < 64; ++attempt) {
    uint32_t index = kNvOwnerFirst | ((seed + attempt) & kNvOwnerMask);
    TPM2B_AUTH auth{};
    TPM2B_NV_PUBLIC info{};
    info.nvPublic.nvIndex = index;
    info.nvPublic.nameAlg = TPM2_ALG_SHA256;
    // ORDERLY: increments live in TPM RAM and reach NV at orderly shutdown; after
    // a power loss the TPM moves the counter forward past any value it handed out,
    // so it still never repeats, without wearing NV at every checkpoint.
    info.nvPublic.attributes = (TPM2_NT_COUNTER << TPMA_NV_TPM2_NT_SHIFT) | TPMA_NV_AUTHWRITE | TPMA_NV_AUTHREAD |
                               TPMA_NV_NO_DA | TPMA_NV_ORDERLY;
    info.nvPublic.dataSize = 8;
    ESYS_TR nv = ESYS_TR_NONE;
    TSS2_RC rc = Esys_NV_DefineSpace(tpm.ctx(), ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                     &auth, &info, &nv);
    if (base_rc(rc) == TPM2_RC_NV_DEFINED) continue;
    if (rc != TSS2_RC_SUCCESS) return tpm_error("define the key's NV counter", rc);
    rc = Esys_NV_Increment(tpm.ctx(), nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE);
    (void)Esys_TR_Close(tpm.ctx(), &nv);
    if (rc != TSS2_RC_SUCCESS) return tpm_error("initialise the key's NV counter", rc);
    return index;
  }
  return resource_exhausted("no free NV index for the key's counter in the owner range");
}

}  // namespace

std::string default_tcti() {
  const char* env = std::getenv("LOGSEAL_TCTI");
  if (env != nullptr && *env != '\0') return env;
  return "device:/dev/tpmrm0";
}

Result<std::vector<unsigned>> parse_pcr_list(const std::string& text) {
  std::vector<unsigned> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string part = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    char* end = nullptr;
    unsigned long v = std::strtoul(part.c_str(), &end, 10);
    if (part.empty() || *end != '\0' || v > 23) {
      return invalid_argument("--pcrs \"" + text + "\": expected PCR indexes 0..23 separated by commas");
    }
    out.push_back(static_cast<unsigned>(v));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

Result<Hash32> tpm_keygen(const std::string& dir, const TpmKeygenOptions& options) {
  const std::string tcti = options.tcti.empty() ? default_tcti() : options.tcti;
  const std::string key_path = dir + "/" + kKeyFile;
  const std::string pub_path = dir + "/" + kPubFile;
  LS_RETURN_IF_ERROR(internal::make_dirs(dir));
  if (::access(key_path.c_str(), F_OK) == 0) {
    return Status(Code::kAlreadyExists, key_path + " exists; refusing to overwrite a key");
  }
  LS_ASSIGN_OR_RETURN(std::unique_ptr<Tpm> tpm, Tpm::connect(tcti));
  TpmKeyFile file;
  LS_ASSIGN_OR_RETURN(ESYS_TR primary, tpm->create_primary(&file.parent_name));

  TPM2B_PUBLIC in{};
  in.publicArea.type = TPM2_ALG_ECC;
  in.publicArea.nameAlg = TPM2_ALG_SHA256;
  in.publicArea.objectAttributes = TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                   TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_NODA;
  auto& ecc = in.publicArea.parameters.eccDetail;
  ecc.symmetric.algorithm = TPM2_ALG_NULL;
  ecc.scheme.scheme = TPM2_ALG_ECDSA;
  ecc.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
  ecc.curveID = TPM2_ECC_NIST_P256;
  ecc.kdf.scheme = TPM2_ALG_NULL;

  if (options.pcrs.empty()) {
    in.publicArea.objectAttributes |= TPMA_OBJECT_USERWITHAUTH;
  } else {
    // Bound to PCRs: authPolicy = PolicyPCR(current values), and userWithAuth
    // clear (with it set, an empty password would bypass the policy).
    PcrPolicy p;
    p.selection = pcr_selection(options.pcrs);
    auto digest = current_pcr_digest(*tpm, p.selection);
    if (!digest.ok()) {
      tpm->flush(primary);
      return digest.status();
    }
    p.digest = digest.value();
    TPMT_SYM_DEF sym{};
    sym.algorithm = TPM2_ALG_NULL;
    ESYS_TR trial = ESYS_TR_NONE;
    TSS2_RC rc = Esys_StartAuthSession(tpm->ctx(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                       ESYS_TR_NONE, nullptr, TPM2_SE_TRIAL, &sym, TPM2_ALG_SHA256, &trial);
    if (rc == TSS2_RC_SUCCESS) {
      rc = Esys_PolicyPCR(tpm->ctx(), trial, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &p.digest, &p.selection);
    }
    TPM2B_DIGEST* policy = nullptr;
    if (rc == TSS2_RC_SUCCESS) {
      rc = Esys_PolicyGetDigest(tpm->ctx(), trial, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &policy);
    }
    tpm->flush(trial);
    if (rc != TSS2_RC_SUCCESS) {
      tpm->flush(primary);
      return tpm_error("compute the PCR policy", rc);
    }
    in.publicArea.authPolicy = *policy;
    Esys_Free(policy);
    std::vector<uint8_t> cp = marshal<TPM2B_DIGEST, Tss2_MU_TPM2B_DIGEST_Marshal>(p.digest);
    std::vector<uint8_t> sel = marshal<TPML_PCR_SELECTION, Tss2_MU_TPML_PCR_SELECTION_Marshal>(p.selection);
    cp.insert(cp.end(), sel.begin(), sel.end());
    file.policy.push_back({kTpmCcPolicyPcr, std::move(cp)});
  }

  TPM2B_SENSITIVE_CREATE sens{};
  TPM2B_DATA outside{};
  TPML_PCR_SELECTION creation_pcr{};
  TPM2B_PRIVATE* out_priv = nullptr;
  TPM2B_PUBLIC* out_pub = nullptr;
  TSS2_RC rc = Esys_Create(tpm->ctx(), primary, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &in, &outside,
                           &creation_pcr, &out_priv, &out_pub, nullptr, nullptr, nullptr);
  tpm->flush(primary);
  if (rc != TSS2_RC_SUCCESS) return tpm_error("create the signing key in the TPM", rc);
  EsysPtr<TPM2B_PRIVATE> priv(out_priv);
  EsysPtr<TPM2B_PUBLIC> pub(out_pub);
  LS_ASSIGN_OR_RETURN(std::vector<uint8_t> der, spki_from_tpm_public(*pub));
  Hash32 id = sha256(der);
  LS_ASSIGN_OR_RETURN(file.nv_counter_index, define_nv_counter(*tpm, id));
  file.public_blob = marshal<TPM2B_PUBLIC, Tss2_MU_TPM2B_PUBLIC_Marshal>(*pub);
  file.private_blob = marshal<TPM2B_PRIVATE, Tss2_MU_TPM2B_PRIVATE_Marshal>(*priv);

  const std::string pem = encode_tpm_key_file(file);
  LS_RETURN_IF_ERROR(internal::write_new_file(key_path, pem.data(), pem.size(), 0600, true));
  const std::string pub_pem = internal::spki_pem(der);
  Status st = internal::write_new_file(pub_path, pub_pem.data(), pub_pem.size(), 0644, false);
  if (st.ok()) st = internal::fsync_dir(dir);
  if (!st.ok()) {
    ::unlink(key_path.c_str());
    return st;
  }
  return id;
}

Result<std::unique_ptr<Signer>> load_tpm_signer(const std::string& key_path, const std::string& tcti) {
  LS_ASSIGN_OR_RETURN(std::string text, internal::read_small_file(key_path, kMaxKeyFileBytes));
  auto file = decode_tpm_key_file(text);
  if (!file.ok()) return data_loss(key_path + ": " + file.status().message());
  TpmKeyFile f = std::move(file).value();
  if (f.parent != kTpmOwnerHierarchy) {
    return data_loss(key_path + ": the key's parent is not the owner hierarchy's storage primary");
  }
  size_t off = 0;
  LS_ASSIGN_OR_RETURN(TPM2B_PUBLIC pub,
                      (unmarshal<TPM2B_PUBLIC, Tss2_MU_TPM2B_PUBLIC_Unmarshal>(f.public_blob, &off, "public blob")));
  off = 0;
  LS_ASSIGN_OR_RETURN(TPM2B_PRIVATE priv,
                      (unmarshal<TPM2B_PRIVATE, Tss2_MU_TPM2B_PRIVATE_Unmarshal>(f.private_blob, &off, "private blob")));
  std::optional<PcrPolicy> policy;
  for (const auto& step : f.policy) {
    if (step.command_code != kTpmCcPolicyPcr || policy) {
      return data_loss(key_path + ": only a single PolicyPCR step is supported in a key's policy");
    }
    auto p = decode_pcr_policy(step.command_policy);
    if (!p.ok()) return data_loss(key_path + ": " + p.status().message());
    policy = p.value();
  }
  LS_ASSIGN_OR_RETURN(std::vector<uint8_t> der, spki_from_tpm_public(pub));
  auto signer = std::make_unique<TpmSigner>(key_path, tcti.empty() ? default_tcti() : tcti, std::move(f), pub, priv,
                                            std::move(policy), std::move(der));
  LS_RETURN_IF_ERROR(signer->connect());
  return std::unique_ptr<Signer>(std::move(signer));
}

}  // namespace logseal::hsm
