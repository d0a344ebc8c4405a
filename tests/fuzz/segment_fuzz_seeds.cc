// Writes seed inputs for segment_fuzz into DIR: real segment files (open and
// sealed, with checkpoints, seals and a recovery frame) made by the store on a
// FakeEnv and signed with the fuzz key (fuzz_key.h).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engine/format.h"
#include "engine/store.h"
#include "hsm/soft_signer.h"
#include "io/fake_env.h"
#include "tests/fuzz/fuzz_key.h"

using namespace logseal;

namespace {

bool write(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out);
}

Status ingest(io::FakeEnv& env, const std::string& key_path, unsigned records) {
  auto signer = hsm::load_soft_signer(key_path);
  if (!signer.ok()) return signer.status();
  engine::StoreOptions opt;
  opt.stream.segment_bytes = 16 << 10;
  opt.stream.batch_bytes = 4096;
  opt.stream.checkpoint_ms = 1;
  opt.stream.record_bytes_max = 4096;
  opt.log = [](const std::string&) {};
  auto store = engine::Store::open(env, "/d", std::shared_ptr<hsm::Signer>(std::move(signer).value()), opt);
  if (!store.ok()) return store.status();
  auto s = store.value()->stream("s");
  if (!s.ok()) return s.status();
  for (unsigned i = 0; i < records; ++i) {
    std::string raw = "<14>1 2024-01-01T00:00:00Z h app - - - seed record " + std::to_string(i);
    format::RecordView v;
    v.received_ns = 1700000000000000000 + i;
    v.source = "seed";
    v.fields = i % 2 ? "{\"k\":\"v\"}" : "";
    std::string view;
    if (i % 3 == 2) {
      // A syslog view (FORMAT 5.1): hostname and msg as spans of the raw bytes.
      format::SyslogView sv;
      sv.facility = 1;
      sv.severity = 6;
      sv.spans[1] = {static_cast<uint32_t>(raw.find(" h ") + 1), 1};
      size_t msg = raw.find("seed record");
      sv.spans[6] = {static_cast<uint32_t>(msg), static_cast<uint32_t>(raw.size() - msg)};
      view.resize(format::kSyslogViewBytes);
      format::encode_syslog_view(sv, reinterpret_cast<uint8_t*>(view.data()));
      v.fields = view;
    }
    v.raw = raw;
    auto idx = s.value()->append(v);
    if (!idx.ok()) return idx.status();
    if (i % 10 == 9) (void)s.value()->wait_durable(idx.value(), std::chrono::seconds(10));
  }
  (void)s.value()->wait_durable(records - 1, std::chrono::seconds(10));
  return store.value()->close();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  std::string dir = argv[1];
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  char key_tmpl[] = "/tmp/segment_fuzz_seeds.XXXXXX";
  if (::mkdtemp(key_tmpl) == nullptr) return 2;
  std::string key_path = std::string(key_tmpl) + "/signing-key.pem";
  {
    std::ofstream k(key_path);
    k << fuzz::kFuzzPrivateKeyPem;
  }
  io::FakeEnv env(1);
  Status st = ingest(env, key_path, 60);
  // A torn tail, so the second ingest records a recovery frame.
  if (st.ok()) {
    auto names = env.list_dir("/d/s");
    if (names.ok() && !names->empty()) {
      if (auto* f = env.file_bytes("/d/s/" + names->back())) f->insert(f->end(), 512, 0x5a);
    }
    st = ingest(env, key_path, 5);
  }
  ::unlink(key_path.c_str());
  ::rmdir(key_tmpl);
  if (!st.ok()) {
    std::fprintf(stderr, "segment_fuzz_seeds: %s\n", st.to_string().c_str());
    return 1;
  }
  auto names = env.list_dir("/d/s");
  if (!names.ok()) return 1;
  int n = 0;
  for (const auto& name : names.value()) {
    auto bytes = env.read_file("/d/s/" + name);
    if (!bytes.ok() || !write(dir + "/" + name, bytes.value())) return 1;
    ++n;
  }
  std::printf("wrote %d seed segments to %s\n", n, dir.c_str());
  return 0;
}
