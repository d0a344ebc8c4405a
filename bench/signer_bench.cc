// Signer latency: evidence() + sign_digest() per checkpoint, as the store's signer
// thread calls them, for a software key (baseline, same run) and any signer spec
// given (e.g. a TPM key through $LOGSEAL_TCTI). Prints p50/p99/max and signatures/s.
//
// Usage: logseal-bench-signer [--signer SPEC]... [--n N]
//   bench/signer-latency runs it against a private swtpm.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "hsm/sha256.h"
#include "hsm/signer.h"
#include "hsm/soft_signer.h"

using namespace logseal;
using Clock = std::chrono::steady_clock;

namespace {

[[noreturn]] void die(const std::string& m) {
  std::fprintf(stderr, "logseal-bench-signer: %s\n", m.c_str());
  std::exit(2);
}

void measure(const std::string& label, hsm::Signer& s, unsigned n) {
  std::vector<double> ms;
  ms.reserve(n);
  Hash32 digest{};
  auto t_all = Clock::now();
  for (unsigned i = 0; i < n; ++i) {
    digest[0] = static_cast<uint8_t>(i);
    digest[1] = static_cast<uint8_t>(i >> 8);
    auto t0 = Clock::now();
    auto ev = s.evidence();
    if (!ev.ok()) die(label + ": evidence: " + ev.status().to_string());
    auto sig = s.sign_digest(digest);
    if (!sig.ok()) die(label + ": sign: " + sig.status().to_string());
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  double total = std::chrono::duration<double>(Clock::now() - t_all).count();
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) { return ms[std::min(ms.size() - 1, static_cast<size_t>(p * ms.size()))]; };
  std::printf("%-40s %6u %9.3f %9.3f %9.3f %10.0f\n", label.c_str(), n, pct(0.5), pct(0.99), ms.back(), n / total);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> specs;
  unsigned n = 500;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (i + 1 >= argc) die("missing value for " + k);
    if (k == "--signer") specs.push_back(argv[++i]);
    else if (k == "--n") n = static_cast<unsigned>(std::stoul(argv[++i]));
    else die("unknown option " + k);
  }
  std::string dir = std::filesystem::temp_directory_path() / ("logseal-bench-signer-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  auto id = hsm::soft_keygen(dir);
  if (!id.ok()) die(id.status().to_string());
  std::printf("%-40s %6s %9s %9s %9s %10s\n", "signer (evidence + sign)", "n", "p50_ms", "p99_ms", "max_ms", "sigs/s");
  auto soft = hsm::open_signer("soft:" + dir + "/signing-key.pem");
  if (!soft.ok()) die(soft.status().to_string());
  measure("soft (baseline)", *soft.value(), n);
  for (const auto& spec : specs) {
    auto s = hsm::open_signer(spec);
    if (!s.ok()) die(spec + ": " + s.status().to_string());
    // Named by the key's directory: DIR/signing-key.pem -> DIR's last part.
    std::string path = spec.substr(spec.find(':') + 1);
    std::string dir_of = path.substr(0, path.rfind('/'));
    measure(std::string(hsm::signer_kind_name(s.value()->kind())) + " " + dir_of.substr(dir_of.rfind('/') + 1),
            *s.value(), n);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
