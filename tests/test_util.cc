#include "tests/test_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "engine/reader.h"
#include "hsm/soft_signer.h"

namespace logseal::test {

namespace fs = std::filesystem;

std::string test_tmp_root() {
  const char* env = std::getenv("LOGSEAL_TEST_TMP");
  std::string root = (env != nullptr && *env != '\0') ? env : "/tmp";
  std::error_code ec;
  fs::create_directories(root, ec);
  return root;
}

void clear_immutable(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return;
  int flags = 0;
  if (::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && (flags & FS_IMMUTABLE_FL) != 0) {
    flags &= ~FS_IMMUTABLE_FL;
    (void)::ioctl(fd, FS_IOC_SETFLAGS, &flags);
  }
  ::close(fd);
}

void remove_tree(const std::string& path) {
  if (path.empty()) return;
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    clear_immutable(path);
    ::chmod(path.c_str(), 0755);
    if (DIR* d = ::opendir(path.c_str())) {
      std::vector<std::string> names;
      while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") names.push_back(n);
      }
      ::closedir(d);
      for (const auto& n : names) remove_tree(path + "/" + n);
    }
    ::rmdir(path.c_str());
  } else {
    if (S_ISREG(st.st_mode)) clear_immutable(path);
    ::unlink(path.c_str());
  }
}

TempDir::TempDir(const std::string& prefix) {
  std::string name = prefix;
  if (const auto* info = ::testing::UnitTest::GetInstance()->current_test_info()) {
    name += std::string(".") + info->test_suite_name() + "." + info->name();
  }
  for (char& c : name) {
    if (c == '/') c = '_';
  }
  std::string templ = test_tmp_root() + "/" + name + ".XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp " << templ << ": " << std::strerror(errno);
    return;
  }
  path_ = buf.data();
}

TempDir::~TempDir() { remove_tree(path_); }

std::shared_ptr<hsm::Signer> TestKey::signer() const {
  auto s = hsm::load_soft_signer(key_path);
  EXPECT_TRUE(s.ok()) << s.status().to_string();
  if (!s.ok()) return nullptr;
  return std::shared_ptr<hsm::Signer>(std::move(s).value());
}

std::shared_ptr<hsm::Signer> TestKey::slow_signer(unsigned delay_ms) const {
  auto s = hsm::load_soft_signer(key_path);
  EXPECT_TRUE(s.ok()) << s.status().to_string();
  if (!s.ok()) return nullptr;
  return std::shared_ptr<hsm::Signer>(hsm::make_slow_signer(std::move(s).value(), delay_ms));
}

TestKey make_soft_key(const std::string& dir) {
  TestKey k;
  std::error_code ec;
  fs::create_directories(dir, ec);
  k.dir = dir;
  k.key_path = dir + "/signing-key.pem";
  k.pub_path = dir + "/signing-key.pub.pem";
  auto id = hsm::soft_keygen(dir);
  EXPECT_TRUE(id.ok()) << id.status().to_string();
  auto pub = hsm::PublicKey::load_pem_file(k.pub_path);
  EXPECT_TRUE(pub.ok()) << pub.status().to_string();
  if (pub.ok()) {
    if (id.ok()) {
      EXPECT_EQ(to_hex(pub->key_id()), to_hex(id.value()));
    }
    k.keys.push_back(std::move(pub).value());
  }
  return k;
}

std::string record_raw(uint64_t i, const std::string& tag) {
  std::string s =
      "<13>1 2024-01-01T00:00:00Z host app " + std::to_string(i) + " " + tag + " - record " + std::to_string(i) + " ";
  // 0..199 filler bytes, every byte value, so lengths and contents vary.
  size_t n = (i * 37) % 200;
  for (size_t k = 0; k < n; ++k) s.push_back(static_cast<char>((i + k * 7) & 0xff));
  return s;
}

format::RecordView record_view(const std::string& raw, int64_t received_ns) {
  format::RecordView v;
  v.kind = format::RecordKind::kLog;
  v.received_ns = received_ns;
  v.source = "test:127.0.0.1:1";
  v.raw = raw;
  return v;
}

engine::StoreOptions small_options() {
  engine::StoreOptions o;
  o.stream.segment_bytes = 16 << 10;
  o.stream.batch_bytes = 4096;
  o.stream.batch_delay_us = 200;
  o.stream.checkpoint_ms = 2;
  o.stream.record_bytes_max = 8192;
  o.close_sign_timeout_ms = 30000;
  // Quiet unless LOGSEAL_TEST_LOG is set (then the store's log lines go to stderr).
  if (std::getenv("LOGSEAL_TEST_LOG") == nullptr) o.log = [](const std::string&) {};
  return o;
}

std::vector<std::string> make_raws(uint64_t first, uint64_t n, const std::string& tag) {
  std::vector<std::string> v;
  v.reserve(n);
  for (uint64_t i = first; i < first + n; ++i) v.push_back(record_raw(i, tag));
  return v;
}

Status ingest(io::Env& env, const std::string& data_dir, std::shared_ptr<hsm::Signer> signer,
              const engine::StoreOptions& options, const std::string& stream, const std::vector<std::string>& raws,
              std::vector<uint64_t>* indexes, uint64_t wait_every) {
  LS_ASSIGN_OR_RETURN(std::unique_ptr<engine::Store> store,
                      engine::Store::open(env, data_dir, std::move(signer), options));
  LS_ASSIGN_OR_RETURN(engine::Stream * s, store->stream(stream));
  uint64_t last = 0;
  bool any = false;
  for (const auto& raw : raws) {
    LS_ASSIGN_OR_RETURN(uint64_t index, s->append(record_view(raw)));
    if (indexes != nullptr) indexes->push_back(index);
    last = index;
    any = true;
    if (wait_every > 0 && (index + 1) % wait_every == 0 && !s->wait_durable(index, std::chrono::seconds(30))) break;
  }
  if (any && !s->wait_durable(last, std::chrono::seconds(30))) {
    Status h = s->health();
    (void)store->close();
    return h.ok() ? internal_error("records did not become durable") : h;
  }
  return store->close();
}

std::map<uint64_t, std::string> read_raws(io::Env& env, const std::string& data_dir, const std::string& stream) {
  std::map<uint64_t, std::string> out;
  Status st = engine::for_each_record(env, data_dir, stream, [&](const engine::StoredRecord& r) {
    EXPECT_EQ(out.count(r.index), 0u) << "index " << r.index << " read twice";
    out[r.index] = std::string(r.view.raw);
    return true;
  });
  EXPECT_TRUE(st.ok()) << st.to_string();
  return out;
}

engine::VerifyReport verify_report(io::Env& env, const std::string& data_dir, const TestKey& key,
                                   engine::VerifyOptions options) {
  if (options.keys == nullptr) options.keys = &key.keys;
  auto r = engine::verify_data_dir(env, data_dir, options);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  if (!r.ok()) return {};
  return std::move(r).value();
}

std::vector<std::string> kinds_of(const engine::VerifyReport& r) {
  std::vector<std::string> kinds;
  for (const auto& f : r.findings) kinds.push_back(f.kind);
  std::sort(kinds.begin(), kinds.end());
  return kinds;
}

std::vector<std::string> verify_kinds(io::Env& env, const std::string& data_dir, const TestKey& key,
                                      engine::VerifyOptions options) {
  return kinds_of(verify_report(env, data_dir, key, std::move(options)));
}

bool has_kind(const std::vector<std::string>& kinds, const std::string& kind) {
  return std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
}

std::string describe(const engine::VerifyReport& r) {
  std::ostringstream o;
  for (const auto& f : r.findings) o << engine::finding_to_text(f) << "\n";
  for (const auto& s : r.streams) {
    for (const auto& n : s.notes) o << "note: " << n << "\n";
  }
  return o.str();
}

std::vector<std::string> segment_paths(io::Env& env, const std::string& stream_dir) {
  std::vector<std::pair<uint64_t, std::string>> segs;
  auto names = env.list_dir(stream_dir);
  EXPECT_TRUE(names.ok()) << names.status().to_string();
  if (!names.ok()) return {};
  for (const auto& n : names.value()) {
    if (auto seq = format::parse_segment_file_name(n)) segs.emplace_back(*seq, stream_dir + "/" + n);
  }
  std::sort(segs.begin(), segs.end());
  std::vector<std::string> out;
  for (auto& s : segs) out.push_back(s.second);
  return out;
}

std::vector<FrameInfo> frames_of(const std::vector<uint8_t>& file) {
  std::vector<FrameInfo> out;
  engine::walk_frames(file, [&](const engine::FrameView& f) {
    out.push_back(FrameInfo{f.offset, f.header});
    return true;
  });
  return out;
}

void reseal_frame(std::vector<uint8_t>& file, uint64_t offset, const format::FrameHeader& h) {
  format::seal_frame_header(h, file.data() + offset);
}

void reseal_header(std::vector<uint8_t>& file) {
  // The header checksum is XXH3-128 of [0, kHdrChecksum), low half first
  // (docs/FORMAT.md); computed here independently of format.cc.
  XXH128_hash_t h = XXH3_128bits(file.data(), format::kHdrChecksum);
  put_u64(file.data() + format::kHdrChecksum, h.low64);
  put_u64(file.data() + format::kHdrChecksum + 8, h.high64);
}

namespace {

void copy_tree(io::Env& src, io::FakeEnv& dst, const std::string& path) {
  if (src.is_dir(path)) {
    Status st = dst.make_dirs(path);
    EXPECT_TRUE(st.ok()) << st.to_string();
    auto names = src.list_dir(path);
    EXPECT_TRUE(names.ok()) << names.status().to_string();
    if (!names.ok()) return;
    for (const auto& n : names.value()) copy_tree(src, dst, path + "/" + n);
    return;
  }
  auto bytes = src.read_file(path);
  EXPECT_TRUE(bytes.ok()) << bytes.status().to_string();
  if (!bytes.ok()) return;
  put_file(dst, path, bytes.value());
}

}  // namespace

std::unique_ptr<io::FakeEnv> copy_to_mutable_fake(io::Env& src, const std::string& root, uint64_t seed) {
  auto dst = std::make_unique<io::FakeEnv>(seed);
  copy_tree(src, *dst, root);
  return dst;
}

void put_file(io::FakeEnv& env, const std::string& path, const std::vector<uint8_t>& bytes) {
  if (std::vector<uint8_t>* b = env.file_bytes(path)) {
    *b = bytes;
    return;
  }
  Status st = env.write_file_atomic(path, std::string(bytes.begin(), bytes.end()), 0644);
  EXPECT_TRUE(st.ok()) << st.to_string();
}

}  // namespace logseal::test
