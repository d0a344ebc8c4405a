// Tests of io/: buffers, the POSIX env over a real file system and io_uring, the
// DurableWriter over scripted and fake rings, and FakeEnv's fault model.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "io/buffer.h"
#include "io/durable_writer.h"
#include "io/env.h"
#include "io/fake_env.h"

namespace logseal::io {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMiB = size_t{1} << 20;

// ---------------------------------------------------------------------------
// Helpers

std::string test_root() {
  const char* env = std::getenv("LOGSEAL_TEST_TMP");
  return (env != nullptr && *env != '\0') ? env : "/tmp";
}

// chattr -i. make_immutable() on the real env really sets the flag when the test
// runs as root, and an immutable file cannot be removed, so every file goes
// through this before the temp directory is deleted.
void clear_immutable(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return;
  int flags = 0;
  if (::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && (flags & FS_IMMUTABLE_FL)) {
    flags &= ~FS_IMMUTABLE_FL;
    (void)::ioctl(fd, FS_IOC_SETFLAGS, &flags);
  }
  ::close(fd);
}

bool is_immutable(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  int flags = 0;
  bool immutable = ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && (flags & FS_IMMUTABLE_FL);
  ::close(fd);
  return immutable;
}

// A fresh directory under `parent`, removed (immutable flags cleared first) on
// destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& parent) {
    std::error_code ec;
    fs::create_directories(parent, ec);
    std::string templ = parent + "/io_test.XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) != nullptr) path_ = buf.data();
  }
  ~TempDir() {
    if (path_.empty()) return;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(path_, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      clear_immutable(it->path().string());
    }
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void fill_pattern(AlignedBuffer& buf, uint64_t seed) {
  for (size_t i = 0; i < buf.size(); ++i)
    buf.data()[i] = static_cast<uint8_t>((i * 131 + seed * 7 + (i >> 12)) & 0xff);
}

// The value of a Result, or a recorded test failure and T{} (value() would trap).
template <typename T>
T must(Result<T> result) {
  if (!result.ok()) {
    ADD_FAILURE() << result.status().to_string();
    return T{};
  }
  return std::move(result).value();
}

// Runs writes of the given buffers back to back from offset 0 through a
// DurableWriter, reaping as needed; returns the reports in order.
std::vector<DurableWriter::Done> write_all(DurableWriter& writer, AppendFile& file,
                                           std::vector<AlignedBuffer>& bufs, uint64_t offset = 0) {
  std::vector<DurableWriter::Done> done;
  for (size_t i = 0; i < bufs.size(); ++i) {
    while (true) {
      Status st = writer.start(file, offset, bufs[i].data(), bufs[i].size(), i);
      if (st.code() != Code::kResourceExhausted) {
        if (!st.ok()) done.push_back({i, st});  // never started: reported here
        break;
      }
      Status reaped = writer.reap(true, -1, done);
      if (!reaped.ok()) break;
    }
    offset += bufs[i].size();
  }
  while (writer.outstanding() > 0) {
    if (!writer.reap(true, -1, done).ok()) break;
  }
  return done;
}

// Forwards to another ring and records the order completions arrive in.
class RecordingRing final : public Ring {
 public:
  explicit RecordingRing(Ring& inner) : inner_(inner) {}
  Status submit_write(AppendFile& file, uint64_t offset, const void* buf, size_t len_bytes,
                      uint64_t user_data) override {
    return inner_.submit_write(file, offset, buf, len_bytes, user_data);
  }
  Status wait(unsigned min_complete, int64_t timeout_us, std::vector<Completion>& out) override {
    size_t before = out.size();
    Status st = inner_.wait(min_complete, timeout_us, out);
    for (size_t i = before; i < out.size(); ++i) trace.push_back({out[i].user_data, out[i].result});
    return st;
  }
  unsigned in_flight() const override { return inner_.in_flight(); }

  std::vector<std::pair<uint64_t, int32_t>> trace;

 private:
  Ring& inner_;
};

// A ring whose completions the test writes: `respond` answers each submission
// (queued for the next wait), or the test pushes into `ready` by hand.
class ScriptedRing final : public Ring {
 public:
  struct Request {
    uint64_t offset;
    const void* buf;
    size_t len_bytes;
    uint64_t user_data;
  };
  Status submit_write(AppendFile&, uint64_t offset, const void* buf, size_t len_bytes,
                      uint64_t user_data) override {
    if (!submit_status.ok()) return submit_status;
    Request req{offset, buf, len_bytes, user_data};
    submitted.push_back(req);
    if (respond) ready.push_back({user_data, respond(req)});
    return ok_status();
  }
  Status wait(unsigned, int64_t, std::vector<Completion>& out) override {
    if (!wait_status.ok()) return wait_status;
    out.insert(out.end(), ready.begin(), ready.end());
    ready.clear();
    return ok_status();
  }
  unsigned in_flight() const override { return 0; }

  std::function<int32_t(const Request&)> respond;
  std::vector<Request> submitted;
  std::deque<Completion> ready;
  Status submit_status;
  Status wait_status;
};

class NullFile final : public AppendFile {
 public:
  const std::string& path() const override { return path_; }
  Result<uint64_t> size() override { return uint64_t{0}; }
  Status truncate(uint64_t) override { return ok_status(); }
  Status sync() override { return ok_status(); }
  int handle() const override { return -1; }

 private:
  std::string path_ = "scripted";
};

// ---------------------------------------------------------------------------
// Buffers

TEST(AlignedBufferTest, AlignedZeroedAndRoundedUp) {
  AlignedBuffer buf(5000);
  ASSERT_NE(buf.data(), nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(buf.data()) % kBlockBytes, 0u);
  EXPECT_EQ(buf.size(), 8192u);
  for (size_t i = 0; i < buf.size(); ++i) ASSERT_EQ(buf.data()[i], 0) << i;

  AlignedBuffer moved(std::move(buf));
  EXPECT_EQ(moved.size(), 8192u);
  EXPECT_EQ(buf.data(), nullptr);  // NOLINT: moved-from state is part of the contract
  EXPECT_EQ(buf.size(), 0u);
  AlignedBuffer assigned;
  assigned = std::move(moved);
  EXPECT_EQ(assigned.size(), 8192u);
  EXPECT_EQ(AlignedBuffer(0).data(), nullptr);
}

TEST(BufferPoolTest, BoundedAcquireAndRelease) {
  BufferPool pool(4096, 3);
  EXPECT_EQ(pool.buffer_bytes(), 4096u);
  EXPECT_EQ(pool.available(), 3u);
  AlignedBuffer* a = pool.acquire();
  AlignedBuffer* b = pool.acquire();
  AlignedBuffer* c = pool.acquire();
  ASSERT_TRUE(a && b && c);
  EXPECT_NE(a, b);
  EXPECT_EQ(pool.acquire(), nullptr);  // backpressure, not growth
  EXPECT_EQ(pool.available(), 0u);
  pool.release(b);
  EXPECT_EQ(pool.available(), 1u);
  EXPECT_EQ(pool.acquire(), b);
  pool.release(a);
  pool.release(b);
  pool.release(c);
  EXPECT_EQ(pool.available(), 3u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a->data()) % kBlockBytes, 0u);
}

// ---------------------------------------------------------------------------
// POSIX env on a real file system

class PosixEnvTest : public ::testing::Test {
 protected:
  PosixEnvTest() : dir_(test_root()) {}
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty()) << "mkdtemp under " << test_root() << " failed";
  }
  std::string path(const std::string& name) const { return dir_.path() + "/" + name; }
  Env& env_ = posix_env();
  TempDir dir_;
};

TEST_F(PosixEnvTest, ProbeDirectWorksOnTheTestDirectory) {
  Status st = env_.probe_direct(dir_.path());
  if (st.code() == Code::kUnimplemented)
    GTEST_SKIP() << "test directory lacks O_DIRECT: " << st.to_string();
  ASSERT_TRUE(st.ok()) << st.to_string();
  auto names = env_.list_dir(dir_.path());
  ASSERT_TRUE(names.ok());
  EXPECT_TRUE(names->empty()) << "the probe file was left behind";
  EXPECT_EQ(env_.probe_direct(path("missing")).code(), Code::kNotFound);
}

TEST_F(PosixEnvTest, ProbeDirectOnTmpfsIsUnimplemented) {
  struct statfs st {};
  if (::statfs("/dev/shm", &st) != 0 || static_cast<unsigned long>(st.f_type) != TMPFS_MAGIC) {
    GTEST_SKIP() << "/dev/shm is not a tmpfs here";
  }
  TempDir shm("/dev/shm");
  ASSERT_FALSE(shm.path().empty());
  // Refused whether or not this kernel's tmpfs takes O_DIRECT (Linux 6.6 on):
  // a memory file system keeps nothing across a reboot.
  Status status = env_.probe_direct(shm.path());
  EXPECT_EQ(status.code(), Code::kUnimplemented) << status.to_string();
  EXPECT_EQ(status.message(), "the data directory " + shm.path() +
                                  " is on tmpfs, which keeps nothing across a reboot: put it on a "
                                  "block-device file system such as ext4 or xfs");
}

// ramfs never supports O_DIRECT, so it exercises the Unimplemented path on kernels
// whose tmpfs does. Mounting needs a private mount namespace, done in a child.
TEST_F(PosixEnvTest, ProbeDirectOnRamfsIsUnimplemented) {
  std::string mnt = path("ramfs");
  ASSERT_EQ(::mkdir(mnt.c_str(), 0755), 0);
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(pipe_fds[0]);
    std::string answer;
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("ramfs", mnt.c_str(), "ramfs", 0, nullptr) != 0) {
      answer = std::string("SKIP ") + std::strerror(errno);
    } else {
      answer = posix_env().probe_direct(mnt).to_string();
    }
    (void)!::write(pipe_fds[1], answer.data(), answer.size());
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  std::string answer;
  char chunk[512];
  ssize_t n;
  while ((n = ::read(pipe_fds[0], chunk, sizeof chunk)) > 0)
    answer.append(chunk, static_cast<size_t>(n));
  ::close(pipe_fds[0]);
  int wstatus = 0;
  ASSERT_EQ(::waitpid(pid, &wstatus, 0), pid);
  if (answer.rfind("SKIP", 0) == 0) GTEST_SKIP() << "cannot mount ramfs: " << answer;
  EXPECT_EQ(answer, "UNIMPLEMENTED: O_DIRECT is not supported on " + mnt +
                        " (file system ramfs): put the data directory on a block-device file "
                        "system such as ext4 or xfs");
}

TEST_F(PosixEnvTest, DurableWriterOverRealRingWritesInOrder) {
  auto ring = env_.make_ring(8);
  if (ring.status().code() == Code::kUnimplemented) GTEST_SKIP() << ring.status().to_string();
  ASSERT_TRUE(ring.ok()) << ring.status().to_string();
  auto file = env_.create_append(path("segment-1"));
  if (file.status().code() == Code::kUnimplemented) GTEST_SKIP() << file.status().to_string();
  ASSERT_TRUE(file.ok()) << file.status().to_string();

  std::vector<AlignedBuffer> bufs;
  for (size_t size : {kBlockBytes, kMiB, kBlockBytes, kMiB, 2 * kBlockBytes, kMiB, kBlockBytes}) {
    bufs.emplace_back(size);
    fill_pattern(bufs.back(), bufs.size());
  }
  DurableWriter writer(**ring, 4);
  std::vector<DurableWriter::Done> done = write_all(writer, **file, bufs);
  ASSERT_EQ(done.size(), bufs.size());
  for (size_t i = 0; i < done.size(); ++i) {
    EXPECT_EQ(done[i].tag, i);
    EXPECT_TRUE(done[i].status.ok()) << done[i].status.to_string();
  }
  EXPECT_FALSE(writer.failed());
  EXPECT_EQ((*ring)->in_flight(), 0u);

  std::vector<uint8_t> expected;
  for (const auto& b : bufs) expected.insert(expected.end(), b.data(), b.data() + b.size());
  auto size = (*file)->size();
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, expected.size());
  auto read = env_.read_file(path("segment-1"));
  ASSERT_TRUE(read.ok()) << read.status().to_string();
  EXPECT_TRUE(*read == expected);

  // Recovery cuts a torn tail through the same file type.
  file->reset();
  auto reopened = env_.open_append(path("segment-1"));
  ASSERT_TRUE(reopened.ok()) << reopened.status().to_string();
  ASSERT_TRUE((*reopened)->truncate(kBlockBytes).ok());
  EXPECT_TRUE((*reopened)->sync().ok());
  EXPECT_EQ(must(env_.file_size(path("segment-1"))), kBlockBytes);
}

TEST_F(PosixEnvTest, RingWaitTimesOutWithoutWork) {
  auto ring = env_.make_ring(4);
  if (ring.status().code() == Code::kUnimplemented) GTEST_SKIP() << ring.status().to_string();
  ASSERT_TRUE(ring.ok());
  std::vector<Completion> out;
  EXPECT_TRUE((*ring)->wait(1, 1000, out).ok());
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(env_.make_ring(0).status().code(), Code::kInvalidArgument);
}

TEST_F(PosixEnvTest, CreateAppendRefusesAnExistingFile) {
  auto first = env_.create_append(path("seg"));
  if (first.status().code() == Code::kUnimplemented) GTEST_SKIP() << first.status().to_string();
  ASSERT_TRUE(first.ok());
  auto second = env_.create_append(path("seg"));
  EXPECT_EQ(second.status().code(), Code::kAlreadyExists);
  EXPECT_NE(second.status().message().find(path("seg")), std::string::npos);
  EXPECT_EQ(env_.open_append(path("nope")).status().code(), Code::kNotFound);
}

TEST_F(PosixEnvTest, FilesAndDirectories) {
  ASSERT_TRUE(env_.make_dirs(path("a/b/c")).ok());
  ASSERT_TRUE(env_.make_dirs(path("a/b/c")).ok());  // exists: fine
  EXPECT_TRUE(env_.is_dir(path("a/b/c")));

  ASSERT_TRUE(env_.write_file_atomic(path("a/key"), "secret", 0600).ok());
  ASSERT_TRUE(env_.write_file_atomic(path("a/anchor"), "v1", 0644).ok());
  ASSERT_TRUE(env_.write_file_atomic(path("a/anchor"), "v2", 0644).ok());  // replaces
  struct stat st {};
  ASSERT_EQ(::stat(path("a/key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto key = env_.read_file(path("a/key"));
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(std::string(key->begin(), key->end()), "secret");
  std::vector<uint8_t> anchor = must(env_.read_file(path("a/anchor")));
  EXPECT_EQ(std::string(anchor.begin(), anchor.end()), "v2");

  auto names = env_.list_dir(path("a"));
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"anchor", "b", "key"}));  // sorted, no temp files

  EXPECT_TRUE(env_.exists(path("a/key")));
  EXPECT_FALSE(env_.is_dir(path("a/key")));
  EXPECT_EQ(must(env_.file_size(path("a/key"))), 6u);
  ASSERT_TRUE(env_.rename(path("a/key"), path("a/key2")).ok());
  EXPECT_FALSE(env_.exists(path("a/key")));
  ASSERT_TRUE(env_.sync_dir(path("a")).ok());
  ASSERT_TRUE(env_.remove(path("a/key2")).ok());
  ASSERT_TRUE(env_.remove(path("a/b/c")).ok());  // empty directory

  Status missing = env_.remove(path("a/key2"));
  EXPECT_EQ(missing.code(), Code::kNotFound);
  EXPECT_NE(missing.message().find(path("a/key2")), std::string::npos);
  EXPECT_NE(missing.message().find("No such file or directory"), std::string::npos);
  EXPECT_EQ(env_.read_file(path("nope")).status().code(), Code::kNotFound);
  EXPECT_EQ(env_.file_size(path("nope")).status().code(), Code::kNotFound);
  EXPECT_EQ(env_.list_dir(path("nope")).status().code(), Code::kNotFound);
  EXPECT_FALSE(env_.rename(path("nope"), path("x")).ok());
  EXPECT_FALSE(env_.write_file_atomic(path("nodir/x"), "x", 0644).ok());
}

TEST_F(PosixEnvTest, ReadOnlyFileIsNotOpenedForAppend) {
  auto file = env_.create_append(path("sealed"));
  if (file.status().code() == Code::kUnimplemented) GTEST_SKIP() << file.status().to_string();
  ASSERT_TRUE(file.ok());
  file->reset();
  ASSERT_TRUE(env_.make_read_only(path("sealed")).ok());
  // Even root, which ignores the mode, must not reopen a sealed segment.
  EXPECT_EQ(env_.open_append(path("sealed")).status().code(), Code::kFailedPrecondition);
}

TEST_F(PosixEnvTest, MakeImmutableAnswersWithoutError) {
  ASSERT_TRUE(env_.write_file_atomic(path("sealed"), "data", 0644).ok());
  auto made = env_.make_immutable(path("sealed"));
  ASSERT_TRUE(made.ok()) << made.status().to_string();
  if (!*made) GTEST_SKIP() << "no CAP_LINUX_IMMUTABLE or no flag support here (answered false)";
  EXPECT_TRUE(is_immutable(path("sealed")));
  auto again = env_.make_immutable(path("sealed"));  // idempotent
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(*again);
  EXPECT_EQ(env_.open_append(path("sealed")).status().code(), Code::kFailedPrecondition);
  Status removed = env_.remove(path("sealed"));
  EXPECT_FALSE(removed.ok());
  EXPECT_NE(removed.message().find("immutable"), std::string::npos) << removed.message();
  clear_immutable(path("sealed"));  // remove() has no way back, by design
  EXPECT_TRUE(env_.remove(path("sealed")).ok());
  EXPECT_EQ(env_.make_immutable(path("missing")).status().code(), Code::kNotFound);
}

TEST_F(PosixEnvTest, RemoveSealedClearsTheImmutableFlag) {
  // Retention's one way to delete a sealed segment (engine/retention.h).
  ASSERT_TRUE(env_.write_file_atomic(path("sealed"), "data", 0644).ok());
  ASSERT_TRUE(env_.make_read_only(path("sealed")).ok());
  auto made = env_.make_immutable(path("sealed"));
  ASSERT_TRUE(made.ok()) << made.status().to_string();
  if (!*made) GTEST_SKIP() << "no CAP_LINUX_IMMUTABLE or no flag support here (answered false)";
  ASSERT_FALSE(env_.remove(path("sealed")).ok());
  Status removed = env_.remove_sealed(path("sealed"));
  EXPECT_TRUE(removed.ok()) << removed.to_string();
  EXPECT_FALSE(env_.exists(path("sealed")));
  EXPECT_EQ(env_.remove_sealed(path("sealed")).code(), Code::kNotFound);
}

TEST_F(PosixEnvTest, FreeBytesIsWhatStatvfsSays) {
  auto free = env_.free_bytes(path(""));
  ASSERT_TRUE(free.ok()) << free.status().to_string();
  struct statvfs st {};
  ASSERT_EQ(::statvfs(path("").c_str(), &st), 0);
  uint64_t want = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  // Other tests write meanwhile: within 64 MiB.
  EXPECT_LT(free.value() > want ? free.value() - want : want - free.value(), 64ull << 20);
  EXPECT_GT(free.value(), 0u);
  EXPECT_FALSE(env_.free_bytes(path("no/such/dir")).ok());
}

// ---------------------------------------------------------------------------
// DurableWriter over a scripted ring: the completion cases io_uring can produce

class ScriptedWriterTest : public ::testing::Test {
 protected:
  ScriptedWriterTest() : buf_(64 * 1024) {}
  const void* at(size_t offset) const { return buf_.data() + offset; }
  ScriptedRing ring_;
  NullFile file_;
  AlignedBuffer buf_;
};

TEST_F(ScriptedWriterTest, EagainAndEintrAreRetried) {
  int calls = 0;
  ring_.respond = [&](const ScriptedRing::Request& r) {
    ++calls;
    if (calls == 1) return -EAGAIN;
    if (calls == 2) return -EINTR;
    return static_cast<int32_t>(r.len_bytes);
  };
  DurableWriter writer(ring_);
  ASSERT_TRUE(writer.start(file_, 0, at(0), 8192, 7).ok());
  std::vector<DurableWriter::Done> done;
  ASSERT_TRUE(writer.reap(true, -1, done).ok());
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].tag, 7u);
  EXPECT_TRUE(done[0].status.ok()) << done[0].status.to_string();
  EXPECT_EQ(ring_.submitted.size(), 3u);
  EXPECT_EQ(ring_.submitted[2].offset, 0u);
  EXPECT_EQ(ring_.submitted[2].len_bytes, 8192u);
}

TEST_F(ScriptedWriterTest, RetriesAreBounded) {
  ring_.respond = [](const ScriptedRing::Request&) { return -EAGAIN; };
  DurableWriter writer(ring_);
  ASSERT_TRUE(writer.start(file_, 0, at(0), 4096, 1).ok());
  std::vector<DurableWriter::Done> done;
  ASSERT_TRUE(writer.reap(true, -1, done).ok());
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].status.code(), Code::kIoError);
  EXPECT_NE(done[0].status.message().find("gave up after 16 retries"), std::string::npos)
      << done[0].status.message();
  EXPECT_EQ(ring_.submitted.size(), 17u);
  EXPECT_TRUE(writer.failed());
}

TEST_F(ScriptedWriterTest, ShortCompletionResubmitsTheRemainder) {
  int calls = 0;
  ring_.respond = [&](const ScriptedRing::Request& r) {
    return ++calls == 1 ? 1536 : static_cast<int32_t>(r.len_bytes);
  };
  DurableWriter writer(ring_);
  ASSERT_TRUE(writer.start(file_, 4096, at(0), 8192, 1).ok());
  std::vector<DurableWriter::Done> done;
  ASSERT_TRUE(writer.reap(true, -1, done).ok());
  ASSERT_EQ(done.size(), 1u);
  EXPECT_TRUE(done[0].status.ok());
  ASSERT_EQ(ring_.submitted.size(), 2u);
  EXPECT_EQ(ring_.submitted[1].offset, 4096u + 1536u);
  EXPECT_EQ(ring_.submitted[1].buf, at(1536));
  EXPECT_EQ(ring_.submitted[1].len_bytes, 8192u - 1536u);
}

TEST_F(ScriptedWriterTest, UnalignedShortCompletionIsFinal) {
  ring_.respond = [](const ScriptedRing::Request&) { return 1000; };
  DurableWriter writer(ring_);
  ASSERT_TRUE(writer.start(file_, 0, at(0), 4096, 1).ok());
  std::vector<DurableWriter::Done> done;
  ASSERT_TRUE(writer.reap(true, -1, done).ok());
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].status.code(), Code::kIoError);
  EXPECT_NE(done[0].status.message().find("not a multiple of 512"), std::string::npos);
  EXPECT_EQ(ring_.submitted.size(), 1u);
}

TEST_F(ScriptedWriterTest, FailureIsReportedInOrderAndNeverBeforeTheRingIsDone) {
  DurableWriter writer(ring_, 4);
  for (uint64_t i = 0; i < 4; ++i)
    ASSERT_TRUE(writer.start(file_, i * 4096, at(i * 4096), 4096, i).ok());
  EXPECT_EQ(writer.start(file_, 16384, at(16384), 4096, 4).code(), Code::kResourceExhausted);
  // Write 3 completes first, then write 1 fails; 0 and 2 are still in the ring.
  ring_.ready = {{3, 4096}, {1, -EIO}};
  std::vector<DurableWriter::Done> done;
  ASSERT_TRUE(writer.reap(false, 0, done).ok());
  EXPECT_TRUE(done.empty());  // write 0 is not complete: nothing may be reported
  EXPECT_TRUE(writer.failed());
  EXPECT_FALSE(writer.start(file_, 16384, at(16384), 4096, 4).ok());

  ring_.ready = {{0, 4096}};
  ASSERT_TRUE(writer.reap(false, 0, done).ok());
  // 0 ok, 1 failed; 2 must wait for its completion even though it is doomed,
  // because the kernel may still be reading its buffer.
  ASSERT_EQ(done.size(), 2u);
  EXPECT_TRUE(done[0].status.ok());
  EXPECT_EQ(done[1].status.code(), Code::kIoError);
  EXPECT_NE(done[1].status.message().find("Input/output error"), std::string::npos);
  EXPECT_EQ(writer.outstanding(), 2u);

  ring_.ready = {{2, 4096}};
  ASSERT_TRUE(writer.reap(false, 0, done).ok());
  ASSERT_EQ(done.size(), 4u);
  EXPECT_EQ(done[2].tag, 2u);
  EXPECT_FALSE(done[2].status.ok());  // durable, but after a hole
  EXPECT_FALSE(done[3].status.ok());
  EXPECT_EQ(writer.outstanding(), 0u);
}

TEST_F(ScriptedWriterTest, NothingIsResubmittedAfterAFailure) {
  DurableWriter writer(ring_, 4);
  for (uint64_t i = 0; i < 3; ++i)
    ASSERT_TRUE(writer.start(file_, i * 4096, at(i * 4096), 4096, i).ok());
  // 2 fails, 1 completes, then 0 completes short: its remainder is not written,
  // so 1 must not be reported durable either.
  ring_.ready = {{2, -ENOSPC}, {1, 4096}, {0, 512}};
  std::vector<DurableWriter::Done> done;
  ASSERT_TRUE(writer.reap(false, 0, done).ok());
  ASSERT_EQ(done.size(), 3u);
  EXPECT_FALSE(done[0].status.ok());
  EXPECT_FALSE(done[1].status.ok());
  EXPECT_NE(done[2].status.message().find("No space left on device"), std::string::npos);
  EXPECT_EQ(ring_.submitted.size(), 3u);
}

TEST_F(ScriptedWriterTest, RingFailureReportsEverythingOutstanding) {
  DurableWriter writer(ring_, 4);
  ASSERT_TRUE(writer.start(file_, 0, at(0), 4096, 0).ok());
  ASSERT_TRUE(writer.start(file_, 4096, at(4096), 4096, 1).ok());
  ring_.wait_status = io_error("ring broke");
  std::vector<DurableWriter::Done> done;
  EXPECT_FALSE(writer.reap(true, -1, done).ok());
  ASSERT_EQ(done.size(), 2u);
  EXPECT_FALSE(done[0].status.ok());
  EXPECT_FALSE(done[1].status.ok());
  EXPECT_TRUE(writer.failed());
}

TEST_F(ScriptedWriterTest, SubmitFailureFailsLaterStarts) {
  ring_.respond = [](const ScriptedRing::Request& r) { return static_cast<int32_t>(r.len_bytes); };
  DurableWriter writer(ring_, 4);
  ASSERT_TRUE(writer.start(file_, 0, at(0), 4096, 0).ok());
  ring_.submit_status = io_error("submit broke");
  EXPECT_FALSE(writer.start(file_, 4096, at(4096), 4096, 1).ok());
  ring_.submit_status = ok_status();
  EXPECT_FALSE(writer.start(file_, 4096, at(4096), 4096, 1).ok());
  std::vector<DurableWriter::Done> done;
  ASSERT_TRUE(writer.reap(true, -1, done).ok());
  ASSERT_EQ(done.size(), 1u);
  EXPECT_TRUE(done[0].status.ok());  // it is durable, and it came first
}

// ---------------------------------------------------------------------------
// FakeEnv

class FakeEnvTest : public ::testing::Test {
 protected:
  static std::vector<AlignedBuffer> make_buffers(size_t count, size_t size_bytes) {
    std::vector<AlignedBuffer> bufs;
    for (size_t i = 0; i < count; ++i) {
      bufs.emplace_back(size_bytes);
      fill_pattern(bufs.back(), i + 1);
    }
    return bufs;
  }
  static std::vector<uint8_t> concat(const std::vector<AlignedBuffer>& bufs) {
    std::vector<uint8_t> out;
    for (const auto& b : bufs) out.insert(out.end(), b.data(), b.data() + b.size());
    return out;
  }
};

TEST_F(FakeEnvTest, ShortWritesAreCompletedByDurableWriter) {
  FakeEnv env(1, FaultConfig{.eio_per_write = 0.0, .short_per_write = 1.0, .torn_on_crash = true});
  ASSERT_TRUE(env.make_dirs("/data/s1").ok());
  auto file = env.create_append("/data/s1/seg");
  ASSERT_TRUE(file.ok());
  auto ring = env.make_ring(8);
  ASSERT_TRUE(ring.ok());
  std::vector<AlignedBuffer> bufs = make_buffers(8, 64 * 1024);
  DurableWriter writer(**ring, 4);
  auto done = write_all(writer, **file, bufs);
  ASSERT_EQ(done.size(), bufs.size());
  for (size_t i = 0; i < done.size(); ++i) {
    EXPECT_EQ(done[i].tag, i);
    EXPECT_TRUE(done[i].status.ok()) << done[i].status.to_string();
  }
  EXPECT_GT(env.writes_submitted(), bufs.size());  // remainders were resubmitted
  EXPECT_TRUE(must(env.read_file("/data/s1/seg")) == concat(bufs));
}

TEST_F(FakeEnvTest, EioFailsThatWriteAndEveryLaterOne) {
  FakeEnv env(2);
  ASSERT_TRUE(env.make_dirs("d").ok());
  auto file = env.create_append("d/seg");
  auto ring = env.make_ring(8);
  ASSERT_TRUE(file.ok() && ring.ok());
  std::vector<AlignedBuffer> bufs = make_buffers(4, 4096);
  DurableWriter writer(**ring, 4);
  ASSERT_TRUE(writer.start(**file, 0, bufs[0].data(), 4096, 0).ok());
  env.fail_next_write();
  for (uint64_t i = 1; i < 4; ++i)
    ASSERT_TRUE(writer.start(**file, i * 4096, bufs[i].data(), 4096, i).ok());
  std::vector<DurableWriter::Done> done;
  while (writer.outstanding() > 0) ASSERT_TRUE(writer.reap(true, -1, done).ok());
  ASSERT_EQ(done.size(), 4u);
  EXPECT_TRUE(done[0].status.ok());
  EXPECT_EQ(done[1].status.code(), Code::kIoError);
  EXPECT_NE(done[1].status.message().find("Input/output error"), std::string::npos);
  EXPECT_FALSE(done[2].status.ok());
  EXPECT_FALSE(done[3].status.ok());
  EXPECT_TRUE(writer.failed());
  EXPECT_FALSE(writer.start(**file, 16384, bufs[0].data(), 4096, 9).ok());
}

TEST_F(FakeEnvTest, OutOfOrderCompletionsAreReportedInOrder) {
  FakeEnv env(3);
  ASSERT_TRUE(env.make_dirs("d").ok());
  auto file = env.create_append("d/seg");
  auto fake_ring = env.make_ring(8);
  ASSERT_TRUE(file.ok() && fake_ring.ok());
  RecordingRing ring(**fake_ring);
  std::vector<AlignedBuffer> bufs = make_buffers(200, 4096);
  DurableWriter writer(ring, 8);
  auto done = write_all(writer, **file, bufs);
  ASSERT_EQ(done.size(), bufs.size());
  for (size_t i = 0; i < done.size(); ++i) {
    ASSERT_EQ(done[i].tag, i);
    ASSERT_TRUE(done[i].status.ok());
  }
  size_t inversions = 0;
  for (size_t i = 1; i < ring.trace.size(); ++i)
    inversions += ring.trace[i].first < ring.trace[i - 1].first;
  EXPECT_GT(inversions, 0u) << "the fake should complete writes out of order";
  EXPECT_TRUE(must(env.read_file("d/seg")) == concat(bufs));
}

TEST_F(FakeEnvTest, CrashUndoesUnsyncedDirectoryChanges) {
  FakeEnv env(4);
  ASSERT_TRUE(env.make_dirs("/data").ok());
  ASSERT_TRUE(env.write_file_atomic("/data/a", "A", 0644).ok());     // durable
  ASSERT_TRUE(env.write_file_atomic("/data/keep", "K", 0644).ok());  // durable
  ASSERT_TRUE(env.rename("/data/a", "/data/b").ok());                // not synced
  ASSERT_TRUE(env.remove("/data/keep").ok());                        // not synced
  EXPECT_EQ(must(env.list_dir("/data")), (std::vector<std::string>{"b"}));

  env.crash();
  EXPECT_TRUE(env.crashed());
  EXPECT_FALSE(env.exists("/data/a"));
  EXPECT_EQ(env.read_file("/data/a").status().code(), Code::kIoError);
  EXPECT_EQ(env.list_dir("/data").status().code(), Code::kIoError);
  EXPECT_FALSE(env.make_dirs("/x").ok());
  EXPECT_FALSE(env.make_ring(4).ok());
  env.restart();

  EXPECT_EQ(must(env.list_dir("/data")), (std::vector<std::string>{"a", "keep"}));
  ASSERT_TRUE(env.rename("/data/a", "/data/b").ok());
  ASSERT_TRUE(env.sync_dir("/data").ok());
  env.crash();
  env.restart();
  EXPECT_EQ(must(env.list_dir("/data")), (std::vector<std::string>{"b", "keep"}));
  auto b = env.read_file("/data/b");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(std::string(b->begin(), b->end()), "A");
}

TEST_F(FakeEnvTest, RestartKeepsDurableBytesAndKillsOldHandles) {
  FakeEnv env(5);
  ASSERT_TRUE(env.make_dirs("d").ok());
  auto file = env.create_append("d/seg");
  auto ring = env.make_ring(4);
  ASSERT_TRUE(file.ok() && ring.ok());
  std::vector<AlignedBuffer> bufs = make_buffers(3, 8192);
  DurableWriter writer(**ring, 4);
  auto done = write_all(writer, **file, bufs);
  ASSERT_EQ(done.size(), 3u);
  for (const auto& d : done) ASSERT_TRUE(d.status.ok());

  env.crash();
  EXPECT_FALSE((*file)->size().ok());
  env.restart();
  EXPECT_FALSE(env.crashed());
  EXPECT_TRUE(must(env.read_file("d/seg")) == concat(bufs));
  // Handles and rings of the crashed process stay dead after the reboot.
  EXPECT_FALSE((*file)->size().ok());
  EXPECT_FALSE((*ring)->submit_write(**file, 0, bufs[0].data(), 8192, 1).ok());
  auto reopened = env.open_append("d/seg");
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ(must((*reopened)->size()), 3u * 8192);
  ASSERT_TRUE((*reopened)->truncate(8192).ok());
  EXPECT_EQ(must(env.file_size("d/seg")), 8192u);
}

TEST_F(FakeEnvTest, CrashWithWritesInFlightFailsThemAll) {
  FakeEnv env(6);
  ASSERT_TRUE(env.make_dirs("d").ok());
  auto file = env.create_append("d/seg");
  auto ring = env.make_ring(4);
  ASSERT_TRUE(file.ok() && ring.ok());
  std::vector<AlignedBuffer> bufs = make_buffers(3, 4096);
  DurableWriter writer(**ring, 4);
  for (uint64_t i = 0; i < 3; ++i)
    ASSERT_TRUE(writer.start(**file, i * 4096, bufs[i].data(), 4096, i).ok());
  env.crash();
  EXPECT_EQ((*ring)->in_flight(), 0u);
  std::vector<DurableWriter::Done> done;
  EXPECT_FALSE(writer.reap(true, -1, done).ok());
  ASSERT_EQ(done.size(), 3u);
  for (const auto& d : done) EXPECT_FALSE(d.status.ok());
}

// crash_at_write tears the in-flight write: over many seeds every outcome shows
// up, and the bytes acknowledged before never change.
TEST_F(FakeEnvTest, CrashAtWriteTearsButKeepsDurableBytes) {
  constexpr size_t kTailBytes = 16 * 512;
  size_t dropped = 0, torn = 0, garbage = 0, whole = 0;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    FakeEnv env(seed);
    ASSERT_TRUE(env.make_dirs("d").ok());
    auto file = env.create_append("d/seg");
    auto ring = env.make_ring(4);
    ASSERT_TRUE(file.ok() && ring.ok());
    std::vector<AlignedBuffer> head = make_buffers(2, 4096);
    DurableWriter writer(**ring, 4);
    auto done = write_all(writer, **file, head);
    ASSERT_EQ(done.size(), 2u);
    AlignedBuffer tail(kTailBytes);
    fill_pattern(tail, 99);

    env.crash_at_write(1);
    EXPECT_FALSE(writer.start(**file, 8192, tail.data(), kTailBytes, 2).ok());
    EXPECT_TRUE(env.crashed());
    env.restart();

    auto bytes = env.read_file("d/seg");
    ASSERT_TRUE(bytes.ok());
    std::vector<uint8_t> durable = concat(head);
    ASSERT_GE(bytes->size(), durable.size());
    ASSERT_TRUE(std::equal(durable.begin(), durable.end(), bytes->begin()));
    size_t extra = bytes->size() - durable.size();
    ASSERT_EQ(extra % 512, 0u);
    ASSERT_LE(extra, kTailBytes);
    // A prefix of the tail's sectors, then at most one sector of garbage.
    size_t matching = 0;
    while (matching < extra &&
           std::equal(bytes->begin() + 8192 + matching, bytes->begin() + 8192 + matching + 512,
                      tail.data() + matching)) {
      matching += 512;
    }
    ASSERT_GE(matching + 512, extra) << "more than one sector differs";
    if (extra == 0) {
      ++dropped;
    } else if (matching == kTailBytes) {
      ++whole;
    } else if (matching < extra) {
      ++garbage;
    } else {
      ++torn;
    }
  }
  EXPECT_GT(dropped, 0u);
  EXPECT_GT(torn, 0u);
  EXPECT_GT(garbage, 0u);
  EXPECT_GT(whole, 0u);
}

TEST_F(FakeEnvTest, SealedFilesAreNeverReopenedForWriting) {
  FakeEnv env(7);
  ASSERT_TRUE(env.make_dirs("d").ok());
  auto file = env.create_append("d/seg");
  ASSERT_TRUE(file.ok());
  auto immutable = env.make_immutable("d/seg");
  ASSERT_TRUE(immutable.ok());
  EXPECT_TRUE(*immutable);
  EXPECT_EQ(env.open_append("d/seg").status().code(), Code::kFailedPrecondition);
  EXPECT_FALSE(env.remove("d/seg").ok());
  EXPECT_FALSE(env.rename("d/seg", "d/other").ok());
  // A write through a handle opened before the seal fails too.
  auto ring = env.make_ring(4);
  ASSERT_TRUE(ring.ok());
  AlignedBuffer buf(4096);
  DurableWriter writer(**ring, 4);
  ASSERT_TRUE(writer.start(**file, 0, buf.data(), 4096, 0).ok());
  std::vector<DurableWriter::Done> done;
  ASSERT_TRUE(writer.reap(true, -1, done).ok());
  ASSERT_EQ(done.size(), 1u);
  EXPECT_NE(done[0].status.message().find("Operation not permitted"), std::string::npos);

  ASSERT_TRUE(env.write_file_atomic("d/ro", "x", 0644).ok());
  ASSERT_TRUE(env.make_read_only("d/ro").ok());
  EXPECT_EQ(env.open_append("d/ro").status().code(), Code::kFailedPrecondition);
  EXPECT_TRUE(env.probe_direct("d").ok());
  EXPECT_EQ(env.create_append("d/ro").status().code(), Code::kAlreadyExists);
  EXPECT_EQ(env.create_append("nodir/x").status().code(), Code::kNotFound);
}

TEST_F(FakeEnvTest, FileBytesAllowsSurgery) {
  FakeEnv env(8);
  ASSERT_TRUE(env.write_file_atomic("f", "abc", 0644).ok());
  std::vector<uint8_t>* bytes = env.file_bytes("f");
  ASSERT_NE(bytes, nullptr);
  (*bytes)[1] = 'X';
  auto read = env.read_file("f");
  EXPECT_EQ(std::string(read->begin(), read->end()), "aXc");
  EXPECT_EQ(env.file_bytes("missing"), nullptr);
}

// One run with every fault on: the trace of completions and the final bytes.
std::pair<std::vector<std::pair<uint64_t, int32_t>>, std::vector<uint8_t>> faulty_run(
    uint64_t seed) {
  FakeEnv env(seed,
              FaultConfig{.eio_per_write = 0.02, .short_per_write = 0.3, .torn_on_crash = true});
  (void)env.make_dirs("d");
  auto file = env.create_append("d/seg");
  auto fake_ring = env.make_ring(8);
  RecordingRing ring(**fake_ring);
  std::vector<AlignedBuffer> bufs;
  for (size_t i = 0; i < 40; ++i) {
    bufs.emplace_back(16384);
    fill_pattern(bufs.back(), i);
  }
  DurableWriter writer(ring, 6);
  (void)write_all(writer, **file, bufs);
  // Straight to the ring: the writer may have stopped after an EIO already.
  env.crash_at_write(1);
  AlignedBuffer tail(16384);
  fill_pattern(tail, 99);
  (void)(*fake_ring)->submit_write(**file, 40 * 16384, tail.data(), tail.size(), 99);
  env.restart();
  return {ring.trace, must(env.read_file("d/seg"))};
}

TEST_F(FakeEnvTest, DeterministicForASeed) {
  auto first = faulty_run(42);
  auto second = faulty_run(42);
  EXPECT_EQ(first.first, second.first);
  EXPECT_TRUE(first.second == second.second);
  auto other = faulty_run(43);
  EXPECT_NE(first.first, other.first);
}

}  // namespace
}  // namespace logseal::io
