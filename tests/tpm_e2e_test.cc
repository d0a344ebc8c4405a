// The TPM signer against a real TPM 2.0 simulator (swtpm), started per test on
// free 127.0.0.1 ports with its own state directory: keygen, seals verified with
// --require-tpm, an independent OpenSSL check of a checkpoint signature, a key
// blob refused by a second TPM, a PCR-bound key across a PCR extend and a reboot,
// a TPM that vanishes under a running logseald, and a rolled-back data directory.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "base/bytes.h"
#include "hsm/public_key.h"
#include "hsm/sha256.h"
#include "hsm/tpm_signer.h"
#include "tests/e2e_util.h"

namespace logseal::e2e {
namespace {

Hash32 sha_of(const std::string& s) {
  return sha256(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

class TpmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!Swtpm::available()) GTEST_SKIP() << "swtpm or tpm2-tools not installed (scripts/install-deps installs them)";
  }

  std::string logseal() const { return bin_dir() + "/logseal"; }

  RunResult cli(std::vector<std::string> args, const std::string& input = "") {
    args.insert(args.begin(), logseal());
    return run(args, Millis(60000), input, {"TSS2_LOG=all+none"});
  }

  static std::string lines(int from, int to) {
    std::string s;
    for (int i = from; i < to; ++i) s += "tpm test record " + std::to_string(i) + "\n";
    return s;
  }

  static std::string field(const std::string& text, const std::string& key) {
    for (const auto& l : split_lines(text)) {
      if (l.rfind(key + ": ", 0) == 0) return l.substr(key.size() + 2);
    }
    return "";
  }
};

TEST_F(TpmTest, KeygenSealVerifyRequireTpmAndOpensslAgrees) {
  TempDir tmp("tpm");
  Swtpm tpm(tmp.sub("swtpm"));
  ASSERT_TRUE(tpm.start());
  const std::string key = tmp.sub("key");
  RunResult kg = cli({"keygen", "--signer", "tpm", "--tcti", tpm.tcti(), "--out", key});
  ASSERT_EQ(kg.exit_code, 0) << describe(kg);

  // The printed key id is SHA-256 of the public key's DER.
  auto pub = hsm::PublicKey::load_pem_file(key + "/signing-key.pub.pem");
  ASSERT_TRUE(pub.ok()) << pub.status().to_string();
  EXPECT_EQ(split_lines(kg.out).at(0), to_hex(pub->key_id()));
  // The blob is in the standard TSS2 PRIVATE KEY form, readable only by its owner.
  std::string pem = read_file(key + "/signing-key.pem");
  EXPECT_EQ(pem.rfind("-----BEGIN TSS2 PRIVATE KEY-----", 0), 0u) << pem;
  struct stat st {};
  ASSERT_EQ(::stat((key + "/signing-key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // keygen never overwrites a key.
  RunResult again = cli({"keygen", "--signer", "tpm", "--tcti", tpm.tcti(), "--out", key});
  EXPECT_EQ(again.exit_code, 2) << describe(again);
  EXPECT_NE(again.err.find("exists"), std::string::npos) << again.err;

  const std::string data = tmp.sub("data");
  RunResult in = cli({"ingest", data, "--stream", "app", "--signer", "tpm:" + key + "/signing-key.pem", "--tcti",
                      tpm.tcti(), "--format", "lines", "--segment-bytes", "65536"},
                     lines(0, 3000));
  ASSERT_EQ(in.exit_code, 0) << describe(in);
  RunResult v = cli({"verify", data, "--pubkey", key + "/signing-key.pub.pem", "--require-tpm"});
  EXPECT_EQ(v.exit_code, 0) << describe(v);

  // Every seal and checkpoint says TPM, with a counter that went up.
  RunResult ins = cli({"inspect", list_files(data + "/app").at(0), "--json"});
  ASSERT_EQ(ins.exit_code, 0) << describe(ins);
  auto js = Json::parse(ins.out);
  ASSERT_TRUE(js.has_value()) << ins.out;
  double last_counter = 0;
  int signed_frames = 0;
  for (const auto& f : (*js)["frames"].array()) {
    if (!f.has("signer")) continue;
    signed_frames++;
    EXPECT_EQ(f["signer"].str(), "tpm");
    ASSERT_TRUE(f.has("tpm"));
    EXPECT_GT(f["tpm"]["nv_counter"].number(), last_counter);
    last_counter = f["tpm"]["nv_counter"].number();
    EXPECT_TRUE(f["tpm"]["safe"].boolean());
  }
  EXPECT_GE(signed_frames, 1);

  // Independent check: OpenSSL verifies the checkpoint's signature over
  // SHA-256(body) with only the exported public key...
  RunResult cp = cli({"checkpoint", data, "--stream", "app"});
  ASSERT_EQ(cp.exit_code, 0) << describe(cp);
  EXPECT_EQ(field(cp.out, "signer"), "tpm");
  EXPECT_NE(field(cp.out, "tpm-counter"), "");
  auto body = base64_decode(field(cp.out, "body"));
  auto sig = base64_decode(field(cp.out, "signature"));
  ASSERT_FALSE(body.empty() || sig.empty());
  Hash32 head = sha_of(body);
  ASSERT_TRUE(write_file(tmp.sub("head.bin"), std::string(head.begin(), head.end())));
  ASSERT_TRUE(write_file(tmp.sub("sig.der"), sig));
  RunResult ok = run({find_program("openssl"), "pkeyutl", "-verify", "-pubin", "-inkey", key + "/signing-key.pub.pem",
                      "-in", tmp.sub("head.bin"), "-sigfile", tmp.sub("sig.der")});
  EXPECT_EQ(ok.exit_code, 0) << describe(ok);
  // ...and rejects it for a body with one bit changed.
  head[5] ^= 0x01;
  ASSERT_TRUE(write_file(tmp.sub("head.bin"), std::string(head.begin(), head.end())));
  RunResult bad = run({find_program("openssl"), "pkeyutl", "-verify", "-pubin", "-inkey", key + "/signing-key.pub.pem",
                       "-in", tmp.sub("head.bin"), "-sigfile", tmp.sub("sig.der")});
  EXPECT_NE(bad.exit_code, 0) << describe(bad);

  // The same key file loads in tpm2-openssl (the standard form) and yields the
  // same public key.
  if (file_exists("/usr/lib/x86_64-linux-gnu/ossl-modules/tpm2.so")) {
    RunResult p = run({find_program("openssl"), "pkey", "-provider", "tpm2", "-provider", "default", "-in",
                       key + "/signing-key.pem", "-pubout"},
                      Millis(30000), "", {"TPM2OPENSSL_TCTI=" + tpm.tcti(), "TSS2_LOG=all+none"});
    EXPECT_EQ(p.exit_code, 0) << describe(p);
    EXPECT_EQ(p.out, read_file(key + "/signing-key.pub.pem"));
  }

  // A software-signed directory fails --require-tpm.
  RunResult sk = cli({"keygen", "--signer", "soft", "--out", tmp.sub("soft")});
  ASSERT_EQ(sk.exit_code, 0) << describe(sk);
  RunResult sin = cli({"ingest", tmp.sub("softdata"), "--stream", "app", "--signer",
                       "soft:" + tmp.sub("soft") + "/signing-key.pem", "--format", "lines"},
                      lines(0, 10));
  ASSERT_EQ(sin.exit_code, 0) << describe(sin);
  RunResult sv = cli({"verify", tmp.sub("softdata"), "--pubkey", tmp.sub("soft") + "/signing-key.pub.pem",
                      "--require-tpm"});
  EXPECT_EQ(sv.exit_code, 1) << describe(sv);
  EXPECT_NE(sv.out.find("soft-signer"), std::string::npos) << sv.out;
}

TEST_F(TpmTest, KeyBlobCopiedToAnotherTpmIsRefused) {
  TempDir tmp("tpm");
  Swtpm a(tmp.sub("swtpm-a")), b(tmp.sub("swtpm-b"));
  ASSERT_TRUE(a.start());
  ASSERT_TRUE(b.start());
  RunResult kg = cli({"keygen", "--signer", "tpm", "--tcti", a.tcti(), "--out", tmp.sub("key")});
  ASSERT_EQ(kg.exit_code, 0) << describe(kg);
  RunResult in = cli({"ingest", tmp.sub("data"), "--stream", "app", "--signer",
                      "tpm:" + tmp.sub("key") + "/signing-key.pem", "--tcti", b.tcti(), "--format", "lines"},
                     lines(0, 5));
  EXPECT_EQ(in.exit_code, 2) << describe(in);
  EXPECT_NE(in.err.find("different TPM"), std::string::npos) << in.err;
  // Nothing was written with a key that cannot sign.
  EXPECT_FALSE(file_exists(tmp.sub("data") + "/app"));
}

TEST_F(TpmTest, NoTpmIsAClearError) {
  TempDir tmp("tpm");
  Swtpm a(tmp.sub("swtpm"));
  ASSERT_TRUE(a.start());
  RunResult kg = cli({"keygen", "--signer", "tpm", "--tcti", a.tcti(), "--out", tmp.sub("key")});
  ASSERT_EQ(kg.exit_code, 0) << describe(kg);
  a.stop();
  for (const std::string& tcti : {a.tcti(), std::string("device:") + tmp.sub("no-such-tpm")}) {
    RunResult in = cli({"ingest", tmp.sub("data"), "--stream", "app", "--signer",
                        "tpm:" + tmp.sub("key") + "/signing-key.pem", "--tcti", tcti, "--format", "lines"},
                       lines(0, 5));
    EXPECT_EQ(in.exit_code, 2) << describe(in);
    EXPECT_NE(in.err.find("no TPM reachable"), std::string::npos) << tcti << ": " << in.err;
    RunResult k2 = cli({"keygen", "--signer", "tpm", "--tcti", tcti, "--out", tmp.sub("key2")});
    EXPECT_EQ(k2.exit_code, 2) << describe(k2);
    EXPECT_NE(k2.err.find("no TPM reachable"), std::string::npos) << k2.err;
  }
}

// Without a resource manager, objects another program left loaded fill the TPM's
// few transient slots: a clear error, and it works once they are flushed.
TEST_F(TpmTest, FullObjectMemoryIsAClearError) {
  TempDir tmp("tpm");
  Swtpm tpm(tmp.sub("swtpm"));
  ASSERT_TRUE(tpm.start());
  for (int i = 0; i < 3; ++i) {
    RunResult p = tpm.tool({"tpm2_createprimary", "-C", "o", "-c", tmp.sub("p" + std::to_string(i) + ".ctx")});
    ASSERT_EQ(p.exit_code, 0) << describe(p);
  }
  RunResult kg = cli({"keygen", "--signer", "tpm", "--tcti", tpm.tcti(), "--out", tmp.sub("key")});
  EXPECT_EQ(kg.exit_code, 2) << describe(kg);
  EXPECT_NE(kg.err.find("no free object or session slot"), std::string::npos) << kg.err;
  EXPECT_FALSE(file_exists(tmp.sub("key") + "/signing-key.pem"));
  RunResult f = tpm.tool({"tpm2_flushcontext", "-t"});
  ASSERT_EQ(f.exit_code, 0) << describe(f);
  kg = cli({"keygen", "--signer", "tpm", "--tcti", tpm.tcti(), "--out", tmp.sub("key")});
  EXPECT_EQ(kg.exit_code, 0) << describe(kg);
}

// In-process: the signer object against the TPM; a PCR-bound key stops signing
// once the PCR is extended, and signs again after a (simulated) reboot.
TEST_F(TpmTest, PcrBoundKeyStopsAfterExtendAndSignsAfterReboot) {
  TempDir tmp("tpm");
  Swtpm tpm(tmp.sub("swtpm"));
  ASSERT_TRUE(tpm.start());
  hsm::TpmKeygenOptions opt;
  opt.tcti = tpm.tcti();
  opt.pcrs = {7};
  ::setenv("TSS2_LOG", "all+none", 1);
  auto id = hsm::tpm_keygen(tmp.sub("key"), opt);
  ASSERT_TRUE(id.ok()) << id.status().to_string();
  auto pub = hsm::PublicKey::load_pem_file(tmp.sub("key") + "/signing-key.pub.pem");
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(pub->key_id(), id.value());
  const std::string key = tmp.sub("key") + "/signing-key.pem";
  Hash32 digest = sha_of("checkpoint body");

  uint64_t counter = 0;
  {
    auto s = hsm::load_tpm_signer(key, tpm.tcti());
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    EXPECT_EQ(s.value()->kind(), hsm::SignerKind::kTpm);
    for (int i = 0; i < 3; ++i) {
      auto ev = s.value()->evidence();
      ASSERT_TRUE(ev.ok()) << ev.status().to_string();
      EXPECT_GT(ev->nv_counter, counter);
      counter = ev->nv_counter;
      auto sig = s.value()->sign_digest(digest);
      ASSERT_TRUE(sig.ok()) << sig.status().to_string();
      EXPECT_TRUE(pub->verify_digest(digest, sig.value()));
    }
  }  // released: swtpm serves one connection at a time

  RunResult ext = tpm.tool({"tpm2_pcrextend", "7:sha256=" + std::string(64, 'a')});
  ASSERT_EQ(ext.exit_code, 0) << describe(ext);
  {
    auto s = hsm::load_tpm_signer(key, tpm.tcti());
    ASSERT_TRUE(s.ok()) << s.status().to_string();  // the key loads; it may not sign
    auto sig = s.value()->sign_digest(digest);
    ASSERT_FALSE(sig.ok());
    EXPECT_EQ(sig.status().code(), Code::kFailedPrecondition);
    EXPECT_NE(sig.status().message().find("PCRs sha256:7"), std::string::npos) << sig.status().to_string();
  }

  ASSERT_TRUE(tpm.reboot());
  {
    auto s = hsm::load_tpm_signer(key, tpm.tcti());
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    auto ev = s.value()->evidence();
    ASSERT_TRUE(ev.ok()) << ev.status().to_string();
    EXPECT_GT(ev->nv_counter, counter);  // the counter survives the reboot and keeps rising
    auto sig = s.value()->sign_digest(digest);
    ASSERT_TRUE(sig.ok()) << sig.status().to_string();
    EXPECT_TRUE(pub->verify_digest(digest, sig.value()));
  }
}

// The TPM goes away under a running logseald: ingest continues, /healthz and
// /metrics say so, and once the TPM is back the records are signed.
TEST_F(TpmTest, DaemonKeepsIngestingWhileTheTpmIsGoneAndSignsWhenBack) {
  TempDir tmp("tpm");
  Swtpm tpm(tmp.sub("swtpm"));
  ASSERT_TRUE(tpm.start());
  RunResult kg = cli({"keygen", "--signer", "tpm", "--tcti", tpm.tcti(), "--out", tmp.sub("key")});
  ASSERT_EQ(kg.exit_code, 0) << describe(kg);

  DaemonConfig cfg;
  cfg.data_dir = tmp.sub("data");
  cfg.signer = "tpm:" + tmp.sub("key") + "/signing-key.pem";
  cfg.checkpoint_ms = 100;
  cfg.extra_args = {"--tcti", tpm.tcti()};
  cfg.env = {"TSS2_LOG=all+none"};
  cfg.listeners = {{ListenerConfig::Kind::kTcp, "app", 0}};
  Daemon d(cfg, tmp.sub("logseald.log"));
  ASSERT_TRUE(d.start());
  int fd = connect_tcp(d.port("app"));
  ASSERT_GE(fd, 0);
  std::string batch;
  for (int i = 0; i < 500; ++i) batch += "<14>1 2026-11-26T10:00:00Z h app - - - before " + std::to_string(i) + "\n";
  ASSERT_TRUE(send_all(fd, batch));
  ASSERT_TRUE(d.wait_records("app", 500));
  ASSERT_TRUE(wait_until([&] { return d.stream_metric("logseal_stream_signed_records", "app") == 500; }, Millis(10000)))
      << d.metrics();

  tpm.stop();  // the TPM is gone (the daemon still holds a dead connection)
  batch.clear();
  for (int i = 0; i < 500; ++i) batch += "<14>1 2026-11-26T10:00:01Z h app - - - during " + std::to_string(i) + "\n";
  ASSERT_TRUE(send_all(fd, batch));
  ASSERT_TRUE(d.wait_records("app", 1000)) << d.log();
  ASSERT_TRUE(wait_until([&] { return d.stream_metric("logseal_signer_failures_total", "app").value_or(0) > 0; },
                         Millis(10000)))
      << d.metrics();
  HttpResponse h = http_get(d.http_port(), "/healthz");
  EXPECT_EQ(h.status, 503) << h.body;
  EXPECT_NE(h.body.find("TPM"), std::string::npos) << h.body;
  EXPECT_EQ(d.stream_metric("logseal_stream_signed_records", "app"), 500);

  ASSERT_TRUE(tpm.start());  // back, same state, same ports
  ASSERT_TRUE(wait_until([&] { return d.stream_metric("logseal_stream_signed_records", "app") == 1000; },
                         Millis(20000)))
      << d.metrics() << d.log();
  h = http_get(d.http_port(), "/healthz");
  EXPECT_EQ(h.status, 200) << h.body;
  ::close(fd);
  ASSERT_EQ(d.stop(), 0) << d.log();
  RunResult v = cli({"verify", cfg.data_dir, "--pubkey", tmp.sub("key") + "/signing-key.pub.pem", "--require-tpm"});
  EXPECT_EQ(v.exit_code, 0) << describe(v);
  EXPECT_NE(v.out.find("1000 records"), std::string::npos) << v.out;
}

// Replace the data directory by an older copy and keep going: verify, given an
// anchor saved before the rollback, reports it from the TPM counter.
TEST_F(TpmTest, RollbackIsReportedGivenALaterAnchor) {
  TempDir tmp("tpm");
  Swtpm tpm(tmp.sub("swtpm"));
  ASSERT_TRUE(tpm.start());
  const std::string key = tmp.sub("key");
  ASSERT_EQ(cli({"keygen", "--signer", "tpm", "--tcti", tpm.tcti(), "--out", key}).exit_code, 0);
  const std::string data = tmp.sub("data");
  auto ingest = [&](int from, int to) {
    return cli({"ingest", data, "--stream", "app", "--signer", "tpm:" + key + "/signing-key.pem", "--tcti", tpm.tcti(),
                "--format", "lines"},
               lines(from, to));
  };
  ASSERT_EQ(ingest(0, 100).exit_code, 0);
  RunResult cp = run({"/bin/cp", "-a", data, tmp.sub("old")});
  ASSERT_EQ(cp.exit_code, 0) << describe(cp);
  ASSERT_EQ(ingest(100, 300).exit_code, 0);
  RunResult anchor = cli({"checkpoint", data, "--stream", "app"});
  ASSERT_EQ(anchor.exit_code, 0) << describe(anchor);
  ASSERT_TRUE(write_file(tmp.sub("anchor.txt"), anchor.out));

  remove_tree(data);
  ASSERT_EQ(::rename(tmp.sub("old").c_str(), data.c_str()), 0);
  ASSERT_EQ(ingest(1000, 1050).exit_code, 0);  // writing goes on from the old copy

  RunResult v = cli({"verify", data, "--pubkey", key + "/signing-key.pub.pem", "--anchor", tmp.sub("anchor.txt")});
  EXPECT_EQ(v.exit_code, 1) << describe(v);
  EXPECT_NE(v.out.find("FINDING rollback"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("TPM counter"), std::string::npos) << v.out;
}

// Key rotation with TPM keys: the old key signs the hand-over; verify follows it
// with only the first public key.
TEST_F(TpmTest, KeyRotationIsFollowedFromTheFirstKey) {
  TempDir tmp("tpm");
  Swtpm tpm(tmp.sub("swtpm"));
  ASSERT_TRUE(tpm.start());
  const std::string a = tmp.sub("key-a"), b = tmp.sub("key-b"), data = tmp.sub("data");
  ASSERT_EQ(cli({"keygen", "--signer", "tpm", "--tcti", tpm.tcti(), "--out", a}).exit_code, 0);
  ASSERT_EQ(cli({"keygen", "--signer", "tpm", "--tcti", tpm.tcti(), "--out", b}).exit_code, 0);
  for (const std::string stream : {"app", "db"}) {
    RunResult in = cli({"ingest", data, "--stream", stream, "--signer", "tpm:" + a + "/signing-key.pem", "--tcti",
                        tpm.tcti(), "--format", "lines"},
                       lines(0, 100));
    ASSERT_EQ(in.exit_code, 0) << describe(in);
  }
  RunResult rot = cli({"key", "rotate", data, "--signer", "tpm:" + a + "/signing-key.pem", "--new-pubkey",
                       b + "/signing-key.pub.pem", "--tcti", tpm.tcti()});
  ASSERT_EQ(rot.exit_code, 0) << describe(rot);
  RunResult in = cli({"ingest", data, "--stream", "app", "--signer", "tpm:" + b + "/signing-key.pem", "--tcti",
                      tpm.tcti(), "--format", "lines"},
                     lines(100, 200));
  ASSERT_EQ(in.exit_code, 0) << describe(in);

  RunResult v = cli({"verify", data, "--pubkey", a + "/signing-key.pub.pem", "--require-tpm"});
  EXPECT_EQ(v.exit_code, 0) << describe(v);
  EXPECT_NE(v.out.find("over to key"), std::string::npos) << v.out;
  // Only the new key: the records before the hand-over are not vouched for.
  RunResult vb = cli({"verify", data, "--pubkey", b + "/signing-key.pub.pem"});
  EXPECT_EQ(vb.exit_code, 1) << describe(vb);
  EXPECT_NE(vb.out.find("unknown-key"), std::string::npos) << vb.out;
  // Rotating to the key in use is refused.
  RunResult same = cli({"key", "rotate", data, "--signer", "tpm:" + b + "/signing-key.pem", "--new-pubkey",
                        b + "/signing-key.pub.pem", "--tcti", tpm.tcti()});
  EXPECT_EQ(same.exit_code, 2) << describe(same);
  // The old key cannot hand over streams the new key now signs.
  RunResult stale = cli({"key", "rotate", data, "--signer", "tpm:" + a + "/signing-key.pem", "--new-pubkey",
                         b + "/signing-key.pub.pem", "--tcti", tpm.tcti()});
  EXPECT_EQ(stale.exit_code, 2) << describe(stale);
  EXPECT_NE(stale.err.find("not by the --signer key"), std::string::npos) << stale.err;
}

}  // namespace
}  // namespace logseal::e2e
