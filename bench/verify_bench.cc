// Verification throughput: MB/s of segment data per core, against plain SHA-256
// of the same bytes in the same run.
//
// Builds a data directory with the store (records of --size bytes, soft key,
// 64 MiB segments, so there are several segments to verify in parallel), then
// times the verification library (engine::verify_data_dir, what `logseal verify`
// runs) over it with each --jobs value, and SHA-256 (OpenSSL, one core) over
// every segment file's bytes held in memory (hashing alone, the ceiling). The
// verifier reads the files from the page cache: one untimed pass warms it. Verification does more than hash the bytes
// (XXH3 of every frame, a SHA-256 leaf per record, the Merkle tree, the frame chain, signatures), so the ratio says
// what that costs per byte.
//
// Usage: logseal-bench-verify [--dir DIR] [--mib N] [--size BYTES] [--jobs 1,2] [--rounds N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/store.h"
#include "engine/verify.h"
#include "hsm/public_key.h"
#include "hsm/sha256.h"
#include "hsm/signer.h"
#include "hsm/soft_signer.h"
#include "io/env.h"

using namespace logseal;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string dir = "bench-verify-tmp";
  uint64_t mib = 512;
  size_t size = 300;
  std::vector<unsigned> jobs = {1, 2};
  unsigned rounds = 3;
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "logseal-bench-verify: %s\n", what.c_str());
  std::exit(2);
}

void check(const Status& st, const char* what) {
  if (!st.ok()) die(std::string(what) + ": " + st.to_string());
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Fills DIR/data with about `mib` MiB of records; returns the record count.
uint64_t build_store(const Args& a, const std::string& data, const std::string& key_dir) {
  auto signer = hsm::open_signer("soft:" + key_dir + "/signing-key.pem");
  check(signer.status(), "signer");
  engine::StoreOptions opt;
  opt.log = [](const std::string&) {};
  opt.immutable_segments = false;  // the run deletes its data afterwards
  auto store = engine::Store::open(io::posix_env(), data, std::move(signer).value(), opt);
  check(store.status(), "store");
  auto stream = store.value()->stream("bench");
  check(stream.status(), "stream");
  std::string raw = "<134>1 2026-11-26T03:29:34.321057+00:00 db1 postgres 21011 AUDIT - ";
  while (raw.size() < a.size) raw += "abcdefghijklmnopqrstuvwxyz0123456789 ";
  raw.resize(a.size);
  format::RecordView r;
  r.source = "tcp:127.0.0.1:40122";
  r.raw = raw;
  r.received_ns = 1795669441386353899;
  uint64_t count = std::max<uint64_t>(1, (a.mib << 20) / a.size);
  uint64_t last = 0;
  for (uint64_t i = 0; i < count; ++i) {
    auto idx = stream.value()->append(r);
    if (!idx.ok()) die("append: " + idx.status().to_string());
    last = idx.value();
  }
  if (!stream.value()->wait_durable(last, std::chrono::minutes(5))) die("records did not become durable");
  check(store.value()->close(), "close");
  return count;
}

std::vector<std::string> segment_files(const std::string& data) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(data)) {
    if (e.is_regular_file() && e.path().extension() == ".lsg") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value for " + k);
      return argv[++i];
    };
    if (k == "--dir") {
      a.dir = val();
    } else if (k == "--mib") {
      a.mib = std::stoull(val());
    } else if (k == "--size") {
      a.size = std::stoull(val());
    } else if (k == "--rounds") {
      a.rounds = static_cast<unsigned>(std::stoul(val()));
    } else if (k == "--jobs") {
      a.jobs.clear();
      std::string v = val();
      for (size_t p = 0; p < v.size();) {
        size_t c = v.find(',', p);
        if (c == std::string::npos) c = v.size();
        a.jobs.push_back(static_cast<unsigned>(std::stoul(v.substr(p, c - p))));
        p = c + 1;
      }
    } else {
      die("unknown argument " + k + " (see bench/verify_bench.cc)");
    }
  }
  if (a.size == 0 || a.mib == 0 || a.rounds == 0 || a.jobs.empty()) die("--size, --mib, --rounds, --jobs must be > 0");
  for (unsigned j : a.jobs) {
    if (j == 0) die("--jobs values must be >= 1");
  }
  std::filesystem::remove_all(a.dir);
  std::filesystem::create_directories(a.dir);
  std::string key_dir = a.dir + "/key", data = a.dir + "/data";
  check(hsm::soft_keygen(key_dir).status(), "keygen");
  auto t0 = Clock::now();
  uint64_t records = build_store(a, data, key_dir);
  double build_s = seconds_since(t0);
  std::vector<std::string> files = segment_files(data);
  // The segment bytes in memory: the SHA-256 baseline hashes these, so it measures
  // hashing alone (the verifier also reads the files, from the page cache).
  std::vector<std::vector<uint8_t>> contents;
  uint64_t bytes = 0;
  for (const auto& f : files) {
    auto b = io::posix_env().read_file(f);
    check(b.status(), "read segment");
    bytes += b.value().size();
    contents.push_back(std::move(b).value());
  }
  std::printf("%llu records of %zu bytes, %zu segments, %.1f MiB of segment data (written in %.1f s)\n",
              static_cast<unsigned long long>(records), a.size, files.size(), static_cast<double>(bytes) / (1 << 20),
              build_s);

  auto key = hsm::PublicKey::load_pem_file(key_dir + "/signing-key.pub.pem");
  check(key.status(), "public key");
  std::vector<hsm::PublicKey> keys;
  keys.push_back(std::move(key).value());

  // SHA-256 (OpenSSL) of the same bytes, one core.
  auto sha_pass = [&] {
    auto t = Clock::now();
    Sha256 h;
    for (const auto& c : contents) h.update(c);
    (void)h.finish();
    return seconds_since(t);
  };
  auto verify_pass = [&](unsigned jobs) {
    engine::VerifyOptions opt;
    opt.keys = &keys;
    opt.jobs = jobs;
    auto t = Clock::now();
    auto rep = engine::verify_data_dir(io::posix_env(), data, opt);
    double s = seconds_since(t);
    check(rep.status(), "verify");
    if (!rep.value().ok()) die("verification found problems: " + engine::finding_to_text(rep.value().findings[0]));
    return s;
  };
  (void)verify_pass(1);  // the files are in the page cache now; this warms the rest
  double mb = static_cast<double>(bytes) / 1e6;
  double sha_best = 1e30;
  for (unsigned r = 0; r < a.rounds; ++r) sha_best = std::min(sha_best, sha_pass());
  double sha_mbs = mb / sha_best;
  std::printf("%-24s %10s %10s %14s %16s\n", "", "seconds", "MB/s", "MB/s per core", "vs SHA-256/core");
  std::printf("%-24s %10.3f %10.1f %14.1f %16s\n", "sha256 (OpenSSL, 1 core)", sha_best, sha_mbs, sha_mbs, "1.00");
  for (unsigned j : a.jobs) {
    double best = 1e30;
    for (unsigned r = 0; r < a.rounds; ++r) best = std::min(best, verify_pass(j));
    double mbs = mb / best;
    double cores = std::min<double>(j, std::max<double>(1, static_cast<double>(files.size())));
    std::printf("%-24s %10.3f %10.1f %14.1f %16.2f\n", ("verify --jobs " + std::to_string(j)).c_str(), best, mbs,
                mbs / cores, mbs / cores / sha_mbs);
  }
  std::printf("(best of %u rounds each; per core = MB/s / min(jobs, segments))\n", a.rounds);
  std::filesystem::remove_all(a.dir);
  return 0;
}
