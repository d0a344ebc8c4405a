// The `logseal` CLI as a user runs it (DESIGN.md, "logseal CLI" and exit
// codes): a subprocess per command, on a real data directory, with a captured
// syslog corpus.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/test_util.h"

#ifndef LOGSEAL_SOURCE_DIR
#define LOGSEAL_SOURCE_DIR "."
#endif

namespace logseal {
namespace {

using namespace logseal::test;

std::string self_dir() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string p(buf, static_cast<size_t>(n));
  return p.substr(0, p.find_last_of('/'));
}

std::string logseal_bin() { return self_dir() + "/logseal"; }

std::string corpus_dir() {
  if (const char* c = std::getenv("LOGSEAL_CORPUS"); c != nullptr && *c != '\0') return c;
  return std::string(LOGSEAL_SOURCE_DIR) + "/../shared/corpus";
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream o;
  o << in.rdbuf();
  return o.str();
}

void write_all(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

struct Proc {
  int code = -1;
  std::string out;
  std::string err;
};

// Runs logseal with args; stdin from /dev/null.
Proc run_cli(const std::string& scratch, const std::vector<std::string>& args) {
  static int counter = 0;
  std::string out_path = scratch + "/out." + std::to_string(counter);
  std::string err_path = scratch + "/err." + std::to_string(counter);
  ++counter;
  std::string bin = logseal_bin();
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(bin.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    int in = ::open("/dev/null", O_RDONLY);
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || err < 0) ::_exit(127);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  Proc r;
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid) return r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_all(out_path);
  r.err = read_all(err_path);
  ::unlink(out_path.c_str());
  ::unlink(err_path.c_str());
  return r;
}

std::string show(const Proc& r) {
  return "exit " + std::to_string(r.code) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

size_t count_lines(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n' ? 1 : 0;
  return n;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    input_ = corpus_dir() + "/run1-all/syslog-rfc5424-octet.conn001.raw";
    if (::access(input_.c_str(), R_OK) != 0) GTEST_SKIP() << "corpus not found: " << input_;
    ASSERT_EQ(::access(logseal_bin().c_str(), X_OK), 0) << logseal_bin() << " is not built";
    scratch_ = tmp_.sub("scratch");
    ASSERT_EQ(::mkdir(scratch_.c_str(), 0755), 0);
    key_dir_ = tmp_.sub("key");
    data_ = tmp_.sub("data");
    Proc k = run_cli(scratch_, {"keygen", "--signer", "soft", "--out", key_dir_});
    ASSERT_EQ(k.code, 0) << show(k);
    ASSERT_EQ(k.out.size(), 65u) << "a 64-digit hex key id and a newline: " << k.out;
    pub_ = key_dir_ + "/signing-key.pub.pem";
  }

  Proc ingest_corpus() {
    return run_cli(scratch_, {"ingest", data_, "--stream", "syslog", "--signer",
                              "soft:" + key_dir_ + "/signing-key.pem", "--format", "syslog-octet", input_});
  }
  Proc verify_cli(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"verify", data_, "--pubkey", pub_};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_cli(scratch_, args);
  }

  TempDir tmp_{"cli_test"};
  std::string input_, scratch_, key_dir_, data_, pub_;
};

TEST_F(CliTest, IngestVerifyAndExportRoundTrip) {
  Proc in = ingest_corpus();
  ASSERT_EQ(in.code, 0) << show(in);
  EXPECT_NE(in.err.find("ingested 442 records"), std::string::npos) << show(in);
  EXPECT_NE(in.err.find("indexes 0..441"), std::string::npos) << show(in);

  Proc v = verify_cli();
  EXPECT_EQ(v.code, 0) << show(v);
  EXPECT_NE(v.out.find("VERIFIED"), std::string::npos) << show(v);
  Proc vj = verify_cli({"--json"});
  EXPECT_EQ(vj.code, 0) << show(vj);
  EXPECT_NE(vj.out.find("\"ok\":true"), std::string::npos) << show(vj);
  EXPECT_NE(vj.out.find("\"records\":442"), std::string::npos) << show(vj);

  Proc raw = run_cli(scratch_, {"export", data_, "--stream", "syslog", "--format", "raw"});
  ASSERT_EQ(raw.code, 0) << raw.err;
  std::string input = read_all(input_);
  EXPECT_EQ(raw.out.size(), input.size());
  EXPECT_TRUE(raw.out == input) << "export --format raw is not byte-identical to the input";

  Proc jl = run_cli(scratch_, {"export", data_, "--format", "jsonl"});
  ASSERT_EQ(jl.code, 0) << jl.err;
  EXPECT_EQ(count_lines(jl.out), 442u);
  std::istringstream lines(jl.out);
  std::string line;
  size_t i = 0;
  while (std::getline(lines, line)) {
    ASSERT_FALSE(line.empty());
    EXPECT_EQ(line.front(), '{');
    EXPECT_EQ(line.back(), '}');
    EXPECT_NE(line.find("\"index\":" + std::to_string(i)), std::string::npos) << line;
    EXPECT_NE(line.find("\"stream\":\"syslog\""), std::string::npos) << line;
    ++i;
  }

  Proc ins = run_cli(scratch_, {"inspect", data_ + "/syslog/" + format::segment_file_name(0)});
  EXPECT_EQ(ins.code, 0) << show(ins);
  EXPECT_FALSE(ins.out.empty());
}

TEST_F(CliTest, ProveAndCheckProof) {
  ASSERT_EQ(ingest_corpus().code, 0);
  Proc p = run_cli(scratch_, {"prove", data_, "--stream", "syslog", "--index", "17"});
  ASSERT_EQ(p.code, 0) << show(p);
  std::string proof = scratch_ + "/proof.txt";
  write_all(proof, p.out);
  Proc c = run_cli(scratch_, {"check-proof", proof, "--pubkey", pub_});
  EXPECT_EQ(c.code, 0) << show(c);
  EXPECT_NE(c.out.find("VERIFIED"), std::string::npos) << show(c);

  // The same proof claimed for another record.
  std::string tampered = p.out;
  size_t at = tampered.find("index: 17\n");
  ASSERT_NE(at, std::string::npos) << p.out;
  tampered.replace(at, 10, "index: 18\n");
  write_all(proof, tampered);
  Proc t = run_cli(scratch_, {"check-proof", proof, "--pubkey", pub_});
  EXPECT_EQ(t.code, 1) << show(t);

  // A changed record in the proof.
  tampered = p.out;
  at = tampered.find("record: ");
  ASSERT_NE(at, std::string::npos);
  char& ch = tampered[at + 20];
  ch = ch == 'A' ? 'B' : 'A';
  write_all(proof, tampered);
  t = run_cli(scratch_, {"check-proof", proof, "--pubkey", pub_});
  EXPECT_EQ(t.code, 1) << show(t);

  // Checked with a key that did not sign it.
  Proc k2 = run_cli(scratch_, {"keygen", "--signer", "soft", "--out", tmp_.sub("key2")});
  ASSERT_EQ(k2.code, 0);
  write_all(proof, p.out);
  t = run_cli(scratch_, {"check-proof", proof, "--pubkey", tmp_.sub("key2") + "/signing-key.pub.pem"});
  EXPECT_EQ(t.code, 1) << show(t);

  // A record past the signed tree is a usage error.
  Proc past = run_cli(scratch_, {"prove", data_, "--stream", "syslog", "--index", "442"});
  EXPECT_EQ(past.code, 2) << show(past);
}

TEST_F(CliTest, UsageAndIoErrorsExitTwo) {
  Proc missing = run_cli(scratch_, {"verify", tmp_.sub("no-such-dir"), "--pubkey", pub_});
  EXPECT_EQ(missing.code, 2) << show(missing);
  Proc unknown = run_cli(scratch_, {"verify", data_, "--pubkey", pub_, "--no-such-option"});
  EXPECT_EQ(unknown.code, 2) << show(unknown);
  Proc none = run_cli(scratch_, {});
  EXPECT_EQ(none.code, 2) << show(none);
  Proc badcmd = run_cli(scratch_, {"frobnicate"});
  EXPECT_EQ(badcmd.code, 2) << show(badcmd);
  Proc nokey = run_cli(scratch_, {"verify", data_, "--pubkey", tmp_.sub("nokey.pem")});
  EXPECT_EQ(nokey.code, 2) << show(nokey);
  Proc badfmt = run_cli(scratch_, {"ingest", data_, "--stream", "s", "--signer",
                                   "soft:" + key_dir_ + "/signing-key.pem", "--format", "no-such-format", input_});
  EXPECT_EQ(badfmt.code, 2) << show(badfmt);
  Proc again = run_cli(scratch_, {"keygen", "--signer", "soft", "--out", key_dir_});
  EXPECT_EQ(again.code, 2) << "never overwrite a key: " << show(again);
}

TEST_F(CliTest, SecondIngestContinuesTheStream) {
  ASSERT_EQ(ingest_corpus().code, 0);
  Proc second = ingest_corpus();
  ASSERT_EQ(second.code, 0) << show(second);
  EXPECT_NE(second.err.find("indexes 442..883"), std::string::npos) << show(second);
  Proc v = verify_cli({"--json"});
  EXPECT_EQ(v.code, 0) << show(v);
  EXPECT_NE(v.out.find("\"records\":884"), std::string::npos) << show(v);
  Proc raw = run_cli(scratch_, {"export", data_, "--format", "raw"});
  ASSERT_EQ(raw.code, 0);
  std::string input = read_all(input_);
  EXPECT_TRUE(raw.out == input + input);
}

TEST_F(CliTest, CheckpointAsAnchor) {
  ASSERT_EQ(ingest_corpus().code, 0);
  Proc cp = run_cli(scratch_, {"checkpoint", data_, "--stream", "syslog"});
  ASSERT_EQ(cp.code, 0) << show(cp);
  std::string anchor = scratch_ + "/anchor.txt";
  write_all(anchor, cp.out);
  Proc v = verify_cli({"--anchor", anchor});
  EXPECT_EQ(v.code, 0) << show(v);
  // The anchor from this state against the data after more was sealed: fine.
  ASSERT_EQ(ingest_corpus().code, 0);
  v = verify_cli({"--anchor", anchor});
  EXPECT_EQ(v.code, 0) << show(v);
}

TEST_F(CliTest, FlippedByteFailsVerify) {
  ASSERT_EQ(ingest_corpus().code, 0);
  std::string seg = data_ + "/syslog/" + format::segment_file_name(0);
  // A sealed segment is immutable and read-only when the tests run as root.
  clear_immutable(seg);
  ASSERT_EQ(::chmod(seg.c_str(), 0644), 0);
  int fd = ::open(seg.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  off_t at = 5000;  // inside the first batch
  unsigned char b = 0;
  ASSERT_EQ(::pread(fd, &b, 1, at), 1);
  b ^= 0x04;
  ASSERT_EQ(::pwrite(fd, &b, 1, at), 1);
  ::close(fd);
  Proc v = verify_cli();
  EXPECT_EQ(v.code, 1) << show(v);
  EXPECT_NE(v.out.find("FINDING"), std::string::npos) << show(v);
  EXPECT_NE(v.out.find("offset="), std::string::npos) << show(v);
}

}  // namespace
}  // namespace logseal

namespace logseal {
namespace {

// Retention (README "Retention and legal hold"): hold, prune, verify's report,
// and a segment deleted by hand after a prune.
TEST_F(CliTest, HoldPruneAndVerifyReportThePrune) {
  std::string signer = "soft:" + key_dir_ + "/signing-key.pem";
  // Each run's batch (up to 1 MiB) goes into a segment of its own past 16 KiB.
  for (int i = 0; i < 3; ++i) {
    Proc in = run_cli(scratch_, {"ingest", data_, "--stream", "syslog", "--signer", signer, "--format",
                                 "syslog-octet", "--segment-bytes", "16384", input_});
    ASSERT_EQ(in.code, 0) << show(in);
  }
  std::string dir = data_ + "/syslog";
  ASSERT_EQ(::access((dir + "/" + format::segment_file_name(2)).c_str(), F_OK), 0) << "several segments expected";

  Proc on = run_cli(scratch_, {"hold", data_, "--stream", "syslog", "--signer", signer, "--on", "--note", "case 17"});
  ASSERT_EQ(on.code, 0) << show(on);
  std::vector<std::string> prune = {"prune", data_, "--stream", "syslog", "--signer", signer,
                                    "--before", "2200-01-01T00:00:00Z", "--note", "test"};
  Proc held = run_cli(scratch_, prune);
  EXPECT_EQ(held.code, 2) << show(held);
  EXPECT_NE(held.err.find("legal hold"), std::string::npos) << show(held);
  EXPECT_EQ(::access((dir + "/" + format::segment_file_name(0)).c_str(), F_OK), 0);

  Proc off = run_cli(scratch_, {"hold", data_, "--stream", "syslog", "--signer", signer, "--off"});
  ASSERT_EQ(off.code, 0) << show(off);
  Proc inside = run_cli(scratch_, {"prune", data_, "--stream", "syslog", "--signer", signer, "--retention-min-days",
                                   "1", "--before", "2200-01-01T00:00:00Z"});
  EXPECT_EQ(inside.code, 0) << show(inside);
  EXPECT_NE(inside.err.find("nothing to prune"), std::string::npos) << show(inside);
  Proc nothing_says = run_cli(scratch_, {"prune", data_, "--stream", "syslog", "--signer", signer});
  EXPECT_EQ(nothing_says.code, 2) << show(nothing_says);

  Proc p = run_cli(scratch_, prune);
  ASSERT_EQ(p.code, 0) << show(p);
  EXPECT_NE(p.out.find("pruned segments 0.."), std::string::npos) << show(p);
  EXPECT_NE(::access((dir + "/" + format::segment_file_name(0)).c_str(), F_OK), 0) << "segment 0 is still there";

  Proc v = verify_cli();
  EXPECT_EQ(v.code, 0) << show(v);
  EXPECT_NE(v.out.find("pruned segments 0.."), std::string::npos) << show(v);
  // Every step is in the appliance's audit stream, in order.
  Proc audit = run_cli(scratch_, {"export", data_, "--stream", "_audit", "--format", "lines"});
  ASSERT_EQ(audit.code, 0) << show(audit);
  std::vector<std::string> actions = {"legal-hold-on", "retention-prune-refused", "legal-hold-off", "retention-run",
                                      "retention-prune"};
  size_t at = 0;
  for (const auto& a : actions) {
    size_t found = audit.out.find("\"action\":\"" + a + "\"", at);
    ASSERT_NE(found, std::string::npos) << a << " missing (in order) in:\n" << audit.out;
    at = found + 1;
  }
  Proc vj = verify_cli({"--json"});
  EXPECT_EQ(vj.code, 0) << show(vj);
  EXPECT_NE(vj.out.find("pruned segments 0.."), std::string::npos) << show(vj);

  // More records, then a sealed segment removed by hand: missing-segment.
  for (int i = 0; i < 2; ++i) {
    Proc more = run_cli(scratch_, {"ingest", data_, "--stream", "syslog", "--signer", signer, "--format",
                                   "syslog-octet", "--segment-bytes", "16384", input_});
    ASSERT_EQ(more.code, 0) << show(more);
  }
  std::vector<std::string> segs = test::segment_paths(io::posix_env(), dir);
  ASSERT_GE(segs.size(), 3u);
  test::clear_immutable(segs[0]);
  ASSERT_EQ(::unlink(segs[0].c_str()), 0);
  Proc bad = verify_cli();
  EXPECT_EQ(bad.code, 1) << show(bad);
  EXPECT_NE(bad.out.find("missing-segment"), std::string::npos) << show(bad);
}

}  // namespace
}  // namespace logseal
