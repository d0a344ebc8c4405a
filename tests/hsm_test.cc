#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/bytes.h"
#include "hsm/public_key.h"
#include "hsm/sha256.h"
#include "hsm/signer.h"
#include "hsm/soft_signer.h"
#include "hsm/tpm_keyfile.h"
#include "hsm/tpm_signer.h"

namespace logseal::hsm {
namespace {

// A fresh directory per test under $LOGSEAL_TEST_TMP (or /tmp), removed after.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("LOGSEAL_TEST_TMP");
    std::string root = (base && *base) ? base : "/tmp";
    std::string cmd = "mkdir -p '" + root + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
    std::string tmpl = root + "/hsm_test.XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    const char* made = ::mkdtemp(buf.data());
    EXPECT_NE(made, nullptr) << tmpl;
    path_ = made ? made : tmpl;
  }
  ~TempDir() {
    std::string cmd = "rm -rf '" + path_ + "'";
    (void)std::system(cmd.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Runs a shell command; returns its stdout, and its exit status in *status.
std::string run(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) {
    *status = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  *status = ::pclose(p);
  return out;
}

void write_file(const std::string& path, std::span<const uint8_t> data) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  ASSERT_TRUE(f.good()) << path;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

Hash32 digest_of(std::string_view s) { return sha256(as_bytes(s)); }

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(to_hex(sha256({})), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(to_hex(digest_of("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // FIPS 180-2 two-block vector.
  EXPECT_EQ(to_hex(digest_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, IncrementalMatchesOneShotAndResets) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>(i * 31 + 7));
  Sha256 h;
  // Uneven pieces cross block boundaries at every offset.
  for (size_t at = 0, step = 1; at < data.size(); at += step, step = step % 97 + 1) {
    size_t n = std::min(step, data.size() - at);
    h.update(data.data() + at, n);
  }
  EXPECT_EQ(h.finish(), sha256(as_bytes(data)));
  // finish() reset the state: a second use starts from scratch.
  h.update(as_bytes(std::string_view("abc")));
  EXPECT_EQ(h.finish(), digest_of("abc"));
  EXPECT_EQ(h.finish(), sha256({}));
}

TEST(Sha256, ThreadsGetTheSameAnswers) {
  const Hash32 want = digest_of("logseal");
  std::vector<std::thread> threads;
  std::vector<int> bad(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) bad[t] += digest_of("logseal") != want;
    });
  }
  for (auto& th : threads) th.join();
  for (int b : bad) EXPECT_EQ(b, 0);
}

// sha256_x2 against sha256 (OpenSSL) for every pair of lengths around the
// padding edges (55/56 bytes: one or two tail blocks; 64: a whole block) and
// for lengths far apart, so one lane runs on alone. A known vector too.
TEST(Sha256, PairsMatchSingleDigests) {
  std::vector<uint8_t> a(4200), b(4200);
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = static_cast<uint8_t>(i * 131 + 7);
    b[i] = static_cast<uint8_t>(i * 29 + 3);
  }
  std::vector<size_t> lengths;
  for (size_t n = 0; n <= 130; ++n) lengths.push_back(n);
  for (size_t n : {183, 191, 192, 300, 405, 447, 448, 1000, 4096, 4200}) lengths.push_back(n);
  for (size_t la : lengths) {
    for (size_t lb : lengths) {
      Hash32 ha, hb;
      std::span<const uint8_t> sa(a.data(), la), sb(b.data() + 1, std::min(lb, b.size() - 1));
      sha256_x2(sa, sb, ha, hb);
      ASSERT_EQ(ha, sha256(sa)) << la << " / " << lb;
      ASSERT_EQ(hb, sha256(sb)) << la << " / " << lb;
    }
  }
  Hash32 h1, h2;
  std::string abc = "abc";
  sha256_x2(as_bytes(abc), {}, h1, h2);
  EXPECT_EQ(to_hex(h1), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(to_hex(h2), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  std::cout << "sha256_x2 on SHA extensions: " << (sha256_x2_accelerated() ? "yes" : "no") << "\n";
}

TEST(SignerKind, Names) {
  EXPECT_STREQ(signer_kind_name(SignerKind::kSoft), "soft");
  EXPECT_STREQ(signer_kind_name(SignerKind::kTpm), "tpm");
  EXPECT_STREQ(signer_kind_name(static_cast<SignerKind>(9)), "unknown");
}

TEST(SoftSigner, KeygenLoadSignVerify) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/keys/nested";  // keygen creates missing dirs
  auto id = soft_keygen(dir);
  ASSERT_TRUE(id.ok()) << id.status().to_string();

  const std::string key_path = dir + "/signing-key.pem";
  const std::string pub_path = dir + "/signing-key.pub.pem";
  struct stat st;
  ASSERT_EQ(::stat(key_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(::stat(pub_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_NE(read_file(key_path).find("-----BEGIN PRIVATE KEY-----"), std::string::npos)
      << "expected PKCS#8";

  auto signer = load_soft_signer(key_path);
  ASSERT_TRUE(signer.ok()) << signer.status().to_string();
  Signer& s = **signer;
  EXPECT_EQ(s.kind(), SignerKind::kSoft);
  EXPECT_EQ(s.key_id(), *id);
  EXPECT_EQ(s.key_id(), sha256(s.public_key_der()));

  auto ev = s.evidence();
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->tpm_clock_ms, 0u);
  EXPECT_EQ(ev->tpm_reset_count, 0u);
  EXPECT_EQ(ev->tpm_restart_count, 0u);
  EXPECT_EQ(ev->tpm_safe, 0u);
  EXPECT_EQ(ev->nv_counter, 0u);

  auto pub = PublicKey::load_pem_file(pub_path);
  ASSERT_TRUE(pub.ok()) << pub.status().to_string();
  EXPECT_EQ(pub->der(), s.public_key_der());
  EXPECT_EQ(pub->key_id(), *id);
  EXPECT_EQ(pub->key_id(), sha256(pub->der()));
  EXPECT_EQ(pub->pem(), read_file(pub_path));

  const Hash32 digest = digest_of("checkpoint body");
  auto sig = s.sign_digest(digest);
  ASSERT_TRUE(sig.ok()) << sig.status().to_string();
  EXPECT_GE(sig->size(), 8u);
  EXPECT_LE(sig->size(), 72u);
  EXPECT_TRUE(pub->verify_digest(digest, *sig));

  // A flipped byte anywhere, a different digest, a truncated or empty signature: all fail.
  for (size_t i = 0; i < sig->size(); ++i) {
    std::vector<uint8_t> bad = *sig;
    bad[i] ^= 0x01;
    EXPECT_FALSE(pub->verify_digest(digest, bad)) << "byte " << i;
  }
  EXPECT_FALSE(pub->verify_digest(digest_of("checkpoint bodY"), *sig));
  EXPECT_FALSE(pub->verify_digest(digest, std::span(*sig).first(sig->size() - 1)));
  EXPECT_FALSE(pub->verify_digest(digest, {}));

  // Another key does not verify this key's signature.
  ASSERT_TRUE(soft_keygen(tmp.path() + "/other").ok());
  auto other = PublicKey::load_pem_file(tmp.path() + "/other/signing-key.pub.pem");
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->key_id(), pub->key_id());
  EXPECT_FALSE(other->verify_digest(digest, *sig));
}

TEST(SoftSigner, KeygenTwiceIsAlreadyExistsAndKeepsTheKey) {
  TempDir tmp;
  auto first = soft_keygen(tmp.path());
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  const std::string before = read_file(tmp.path() + "/signing-key.pem");
  auto second = soft_keygen(tmp.path());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kAlreadyExists) << second.status().to_string();
  EXPECT_EQ(read_file(tmp.path() + "/signing-key.pem"), before);
  auto signer = load_soft_signer(tmp.path() + "/signing-key.pem");
  ASSERT_TRUE(signer.ok());
  EXPECT_EQ((*signer)->key_id(), *first);
}

TEST(SoftSigner, KeyIdMatchesOpensslCli) {
  TempDir tmp;
  auto id = soft_keygen(tmp.path());
  ASSERT_TRUE(id.ok()) << id.status().to_string();
  int status = 0;
  std::string out = run("openssl pkey -pubin -in '" + tmp.path() +
                            "/signing-key.pub.pem' -outform DER | sha256sum",
                        &status);
  ASSERT_EQ(status, 0) << out;
  ASSERT_GE(out.size(), 64u) << out;
  EXPECT_EQ(out.substr(0, 64), to_hex(*id));

  // The public key OpenSSL derives from our private key file is the same one.
  out = run("openssl pkey -in '" + tmp.path() + "/signing-key.pem' -pubout -outform DER | sha256sum",
            &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_EQ(out.substr(0, 64), to_hex(*id));
}

TEST(SoftSigner, OpensslCliAcceptsOurSignature) {
  TempDir tmp;
  ASSERT_TRUE(soft_keygen(tmp.path()).ok());
  auto signer = load_soft_signer(tmp.path() + "/signing-key.pem");
  ASSERT_TRUE(signer.ok()) << signer.status().to_string();

  const std::string msg = "seal head: stream=7 size=123456 root=...\n";
  const std::string msg_path = tmp.path() + "/msg";
  const std::string sig_path = tmp.path() + "/sig.der";
  write_file(msg_path, as_bytes(msg));
  for (int i = 0; i < 5; ++i) {  // several signatures: DER lengths vary
    auto sig = (*signer)->sign_digest(digest_of(msg));
    ASSERT_TRUE(sig.ok()) << sig.status().to_string();
    write_file(sig_path, *sig);
    int status = 0;
    std::string out = run("openssl dgst -sha256 -verify '" + tmp.path() +
                              "/signing-key.pub.pem' -signature '" + sig_path + "' '" + msg_path +
                              "' 2>&1",
                          &status);
    EXPECT_EQ(status, 0) << out;
    EXPECT_NE(out.find("Verified OK"), std::string::npos) << out;
  }

  // And the other way: the CLI's signature verifies with PublicKey.
  int status = 0;
  std::string out = run("openssl dgst -sha256 -sign '" + tmp.path() + "/signing-key.pem' -out '" +
                            sig_path + "' '" + msg_path + "' 2>&1",
                        &status);
  ASSERT_EQ(status, 0) << out;
  std::string cli_sig = read_file(sig_path);
  auto pub = PublicKey::load_pem_file(tmp.path() + "/signing-key.pub.pem");
  ASSERT_TRUE(pub.ok());
  EXPECT_TRUE(pub->verify_digest(digest_of(msg), as_bytes(cli_sig)));
  EXPECT_FALSE(pub->verify_digest(digest_of(msg + "x"), as_bytes(cli_sig)));
}

TEST(SoftSigner, LoadsSec1PemFromOpenssl) {
  TempDir tmp;
  const std::string path = tmp.path() + "/sec1.pem";
  int status = 0;
  std::string out = run("openssl ecparam -name prime256v1 -genkey -noout -out '" + path + "' 2>&1",
                        &status);
  ASSERT_EQ(status, 0) << out;
  ASSERT_NE(read_file(path).find("BEGIN EC PRIVATE KEY"), std::string::npos);
  auto signer = load_soft_signer(path);
  ASSERT_TRUE(signer.ok()) << signer.status().to_string();
  auto pub = PublicKey::from_der((*signer)->public_key_der());
  ASSERT_TRUE(pub.ok());
  auto sig = (*signer)->sign_digest(digest_of("x"));
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(pub->verify_digest(digest_of("x"), *sig));
}

TEST(SoftSigner, RejectsOtherKeyTypes) {
  TempDir tmp;
  int status = 0;
  const std::string rsa = tmp.path() + "/rsa.pem";
  std::string out = run("openssl genrsa -out '" + rsa + "' 2048 2>&1", &status);
  ASSERT_EQ(status, 0) << out;
  auto signer = load_soft_signer(rsa);
  ASSERT_FALSE(signer.ok());
  EXPECT_EQ(signer.status().code(), Code::kInvalidArgument) << signer.status().to_string();
  EXPECT_NE(signer.status().message().find("P-256"), std::string::npos) << signer.status().to_string();

  // An RSA public key is rejected by PublicKey too.
  const std::string rsa_pub = tmp.path() + "/rsa.pub.pem";
  out = run("openssl pkey -in '" + rsa + "' -pubout -out '" + rsa_pub + "' 2>&1", &status);
  ASSERT_EQ(status, 0) << out;
  auto pub = PublicKey::load_pem_file(rsa_pub);
  ASSERT_FALSE(pub.ok());
  EXPECT_EQ(pub.status().code(), Code::kInvalidArgument) << pub.status().to_string();

  // EC, but the wrong curve.
  const std::string p384 = tmp.path() + "/p384.pem";
  out = run("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out '" + p384 + "' 2>&1",
            &status);
  ASSERT_EQ(status, 0) << out;
  signer = load_soft_signer(p384);
  ASSERT_FALSE(signer.ok());
  EXPECT_EQ(signer.status().code(), Code::kInvalidArgument) << signer.status().to_string();
  const std::string p384_pub = tmp.path() + "/p384.pub.pem";
  out = run("openssl pkey -in '" + p384 + "' -pubout -out '" + p384_pub + "' 2>&1", &status);
  ASSERT_EQ(status, 0) << out;
  pub = PublicKey::load_pem_file(p384_pub);
  ASSERT_FALSE(pub.ok());
  EXPECT_EQ(pub.status().code(), Code::kInvalidArgument) << pub.status().to_string();

  // Ed25519.
  const std::string ed = tmp.path() + "/ed.pem";
  out = run("openssl genpkey -algorithm ED25519 -out '" + ed + "' 2>&1", &status);
  ASSERT_EQ(status, 0) << out;
  signer = load_soft_signer(ed);
  ASSERT_FALSE(signer.ok());
  EXPECT_EQ(signer.status().code(), Code::kInvalidArgument) << signer.status().to_string();
}

TEST(SoftSigner, MissingAndGarbageKeyFiles) {
  TempDir tmp;
  auto missing = load_soft_signer(tmp.path() + "/nope.pem");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);

  const std::string junk = tmp.path() + "/junk.pem";
  write_file(junk, as_bytes(std::string_view("-----BEGIN PRIVATE KEY-----\nnot base64\n")));
  auto bad = load_soft_signer(junk);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kDataLoss) << bad.status().to_string();

  // An encrypted key is refused, without prompting for a password.
  const std::string enc = tmp.path() + "/enc.pem";
  int status = 0;
  std::string out = run("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
                        "-aes-128-cbc -pass pass:secret -out '" + enc + "' 2>&1 </dev/null",
                        &status);
  ASSERT_EQ(status, 0) << out;
  bad = load_soft_signer(enc);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kDataLoss) << bad.status().to_string();
}

TEST(PublicKey, DerAndPemRoundTrip) {
  TempDir tmp;
  ASSERT_TRUE(soft_keygen(tmp.path()).ok());
  auto pub = PublicKey::load_pem_file(tmp.path() + "/signing-key.pub.pem");
  ASSERT_TRUE(pub.ok());
  auto from_der = PublicKey::from_der(pub->der());
  ASSERT_TRUE(from_der.ok());
  EXPECT_EQ(from_der->key_id(), pub->key_id());
  auto from_pem = PublicKey::from_pem(pub->pem());
  ASSERT_TRUE(from_pem.ok());
  EXPECT_EQ(from_pem->der(), pub->der());

  // Moves keep the key usable.
  PublicKey moved = std::move(*from_pem);
  EXPECT_EQ(moved.key_id(), pub->key_id());
  moved = std::move(*from_der);
  EXPECT_EQ(moved.key_id(), pub->key_id());

  // Trailing bytes, truncation, garbage.
  std::vector<uint8_t> der = pub->der();
  der.push_back(0);
  EXPECT_EQ(PublicKey::from_der(der).status().code(), Code::kInvalidArgument);
  der.resize(der.size() - 2);
  EXPECT_EQ(PublicKey::from_der(der).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(PublicKey::from_der({}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(PublicKey::from_pem("hello").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(PublicKey::load_pem_file(tmp.path() + "/none.pem").status().code(), Code::kNotFound);
}

TEST(PublicKey, CompressedPointHasTheSameKeyId) {
  TempDir tmp;
  ASSERT_TRUE(soft_keygen(tmp.path()).ok());
  const std::string pub_path = tmp.path() + "/signing-key.pub.pem";
  int status = 0;
  std::string out = run("openssl ec -pubin -in '" + pub_path + "' -conv_form compressed -outform DER "
                        "2>/dev/null | od -An -v -tx1 | tr -d ' \\n'",
                        &status);
  ASSERT_EQ(status, 0) << out;
  auto compressed = from_hex(out);
  ASSERT_TRUE(compressed.has_value()) << out;
  auto pub = PublicKey::load_pem_file(pub_path);
  ASSERT_TRUE(pub.ok());
  ASSERT_NE(*compressed, pub->der());
  auto from_compressed = PublicKey::from_der(*compressed);
  ASSERT_TRUE(from_compressed.ok()) << from_compressed.status().to_string();
  EXPECT_EQ(from_compressed->der(), pub->der());
  EXPECT_EQ(from_compressed->key_id(), pub->key_id());
}

TEST(OpenSigner, Specs) {
  TempDir tmp;
  auto id = soft_keygen(tmp.path());
  ASSERT_TRUE(id.ok());
  auto s = open_signer("soft:" + tmp.path() + "/signing-key.pem");
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ((*s)->key_id(), *id);

  auto tpm = open_signer("tpm:" + tmp.path() + "/no-such-key.pem");
  ASSERT_FALSE(tpm.ok());
  EXPECT_EQ(tpm.status().code(), Code::kNotFound) << tpm.status().to_string();
  // A software key given as a TPM key: named as such, before any TPM is touched.
  auto wrong = open_signer("tpm:" + tmp.path() + "/signing-key.pem");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("not a TPM key file"), std::string::npos) << wrong.status().to_string();

  EXPECT_EQ(open_signer("hsm:/x").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(open_signer("soft").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(open_signer("soft:").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(open_signer("soft:" + tmp.path() + "/missing.pem").status().code(), Code::kNotFound);
}

TEST(SlowSigner, WaitsThenDelegates) {
  TempDir tmp;
  ASSERT_TRUE(soft_keygen(tmp.path()).ok());
  auto inner = load_soft_signer(tmp.path() + "/signing-key.pem");
  ASSERT_TRUE(inner.ok());
  const Hash32 id = (*inner)->key_id();
  const std::vector<uint8_t> der = (*inner)->public_key_der();
  auto slow = make_slow_signer(std::move(*inner), 50);
  EXPECT_EQ(slow->kind(), SignerKind::kSoft);
  EXPECT_EQ(slow->key_id(), id);
  EXPECT_EQ(slow->public_key_der(), der);
  EXPECT_TRUE(slow->evidence().ok());

  const Hash32 digest = digest_of("slow");
  auto start = std::chrono::steady_clock::now();
  auto sig = slow->sign_digest(digest);
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(sig.ok());
  EXPECT_GE(elapsed, std::chrono::milliseconds(50));
  auto pub = PublicKey::from_der(der);
  ASSERT_TRUE(pub.ok());
  EXPECT_TRUE(pub->verify_digest(digest, *sig));
}

TEST(PublicKey, VerifyIsThreadSafe) {
  TempDir tmp;
  ASSERT_TRUE(soft_keygen(tmp.path()).ok());
  auto signer = load_soft_signer(tmp.path() + "/signing-key.pem");
  ASSERT_TRUE(signer.ok());
  auto pub = PublicKey::from_der((*signer)->public_key_der());
  ASSERT_TRUE(pub.ok());
  const Hash32 digest = digest_of("shared");
  auto sig = (*signer)->sign_digest(digest);
  ASSERT_TRUE(sig.ok());
  std::vector<int> good(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) good[t] += pub->verify_digest(digest, *sig);
    });
  }
  for (auto& th : threads) th.join();
  for (int g : good) EXPECT_EQ(g, 50);
}

// ---- the TSS2 PRIVATE KEY file form (the TPM itself is tested in tpm_e2e_test) ----

TpmKeyFile sample_key_file(bool with_policy) {
  TpmKeyFile k;
  k.public_blob = std::vector<uint8_t>(90, 0x11);
  k.private_blob = std::vector<uint8_t>(200, 0x22);  // long-form DER lengths
  k.parent_name = std::vector<uint8_t>(34, 0x0b);
  k.nv_counter_index = 0x0112054d;
  if (with_policy) k.policy.push_back({kTpmCcPolicyPcr, std::vector<uint8_t>(40, 0x33)});
  return k;
}

TEST(TpmKeyFile, RoundTrip) {
  for (bool policy : {false, true}) {
    TpmKeyFile k = sample_key_file(policy);
    std::string text = encode_tpm_key_file(k);
    EXPECT_EQ(text.rfind("-----BEGIN TSS2 PRIVATE KEY-----\n", 0), 0u);
    auto d = decode_tpm_key_file(text);
    ASSERT_TRUE(d.ok()) << d.status().to_string();
    EXPECT_TRUE(d->empty_auth);
    EXPECT_EQ(d->parent, kTpmOwnerHierarchy);
    EXPECT_EQ(d->public_blob, k.public_blob);
    EXPECT_EQ(d->private_blob, k.private_blob);
    EXPECT_EQ(d->parent_name, k.parent_name);
    EXPECT_EQ(d->nv_counter_index, k.nv_counter_index);
    ASSERT_EQ(d->policy.size(), policy ? 1u : 0u);
    if (policy) {
      EXPECT_EQ(d->policy[0].command_code, kTpmCcPolicyPcr);
      EXPECT_EQ(d->policy[0].command_policy, k.policy[0].command_policy);
    }
  }
}

TEST(TpmKeyFile, OpensslParsesTheDer) {
  TempDir tmp;
  std::string path = tmp.path() + "/k.pem";
  std::ofstream(path) << encode_tpm_key_file(sample_key_file(true));
  FILE* p = ::popen(("openssl asn1parse -in " + path + " 2>&1").c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  EXPECT_EQ(::pclose(p), 0) << out;
  EXPECT_NE(out.find("2.23.133.10.1.3"), std::string::npos) << out;
  EXPECT_NE(out.find("40000001"), std::string::npos) << out;
}

TEST(TpmKeyFile, DamageIsAClearError) {
  std::string good = encode_tpm_key_file(sample_key_file(false));
  EXPECT_FALSE(decode_tpm_key_file("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").ok());
  EXPECT_NE(decode_tpm_key_file("hello").status().message().find("not a TPM key file"), std::string::npos);
  // No END line.
  EXPECT_FALSE(decode_tpm_key_file(good.substr(0, good.find("-----END"))).ok());
  // A changed base64 character changes the DER: the structure check or a field
  // length catches most; none may crash. Each position in the body is tried.
  size_t body = good.find('\n') + 1, end = good.find("-----END");
  for (size_t i = body; i < end; ++i) {
    if (good[i] == '\n') continue;
    std::string bad = good;
    bad[i] = bad[i] == 'A' ? 'B' : 'A';
    (void)decode_tpm_key_file(bad);
  }
  // Truncated DER.
  std::string cut = good;
  cut.erase(body + 8, 12);
  EXPECT_FALSE(decode_tpm_key_file(cut).ok());
  // Bad logseal lines.
  EXPECT_FALSE(decode_tpm_key_file(good + "logseal-nv-counter-index: zero\n").ok());
  EXPECT_FALSE(decode_tpm_key_file(good + "logseal-parent-name: xyz\n").ok());
}

TEST(TpmSigner, PcrListParsing) {
  auto l = parse_pcr_list("0,7,23");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l.value(), (std::vector<unsigned>{0, 7, 23}));
  EXPECT_FALSE(parse_pcr_list("").ok());
  EXPECT_FALSE(parse_pcr_list("24").ok());
  EXPECT_FALSE(parse_pcr_list("7,").ok());
  EXPECT_FALSE(parse_pcr_list("a").ok());
}

}  // namespace
}  // namespace logseal::hsm
