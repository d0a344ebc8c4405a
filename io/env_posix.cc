// The POSIX Env: plain syscalls for files and directories, O_DIRECT segment files,
// and the io_uring ring from ring_posix.cc. Every error names the operation, the
// path and strerror, because an operator reads it in the journal with no other
// context.
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

#include "base/assert.h"
#include "io/buffer.h"
#include "io/io_internal.h"

namespace logseal::io {

Status sys_status(const std::string& what, const std::string& path, int err) {
  std::string message = what + " " + path + ": " + std::strerror(err);
  if (err == ENOENT) return not_found(std::move(message));
  if (err == EEXIST) return Status(Code::kAlreadyExists, std::move(message));
  return io_error(std::move(message));
}

namespace {

// Closes on scope exit; close errors on read-only or already-synced descriptors
// carry no information, so they are ignored (and never retried on EINTR: on Linux
// the descriptor is gone either way).
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

int open_retry(const std::string& path, int flags, mode_t mode = 0) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

std::string parent_dir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status fsync_dir(const std::string& dir) {
  UniqueFd fd(open_retry(dir, O_RDONLY | O_DIRECTORY));
  if (fd.get() < 0) return sys_status("open directory", dir, errno);
  if (::fsync(fd.get()) != 0) return sys_status("fsync directory", dir, errno);
  return ok_status();
}

Status write_all(int fd, const uint8_t* data, size_t len_bytes, const std::string& path) {
  size_t done = 0;
  while (done < len_bytes) {
    ssize_t n = ::write(fd, data + done, len_bytes - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_status("write", path, errno);
    if (n == 0) return io_error("write " + path + ": wrote 0 bytes");
    done += static_cast<size_t>(n);
  }
  return ok_status();
}

// A unique sibling name for temporary files, so concurrent callers never collide.
std::string temp_name(const std::string& path, const char* what) {
  static std::atomic<uint64_t> counter{0};
  return path + "." + what + "." + std::to_string(::getpid()) + "." +
         std::to_string(counter.fetch_add(1)) + ".tmp";
}

Status direct_unsupported(const std::string& dir) {
  return unimplemented("O_DIRECT is not supported on " + dir + " (file system " +
                       fs_type_name_of(dir) +
                       "): put the data directory on a block-device file system such as ext4 "
                       "or xfs");
}

class PosixAppendFile final : public AppendFile {
 public:
  PosixAppendFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  const std::string& path() const override { return path_; }

  Result<uint64_t> size() override {
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) return sys_status("fstat", path_, errno);
    return static_cast<uint64_t>(st.st_size);
  }

  Status truncate(uint64_t size_bytes) override {
    int ret;
    do {
      ret = ::ftruncate(fd_.get(), static_cast<off_t>(size_bytes));
    } while (ret != 0 && errno == EINTR);
    if (ret != 0) return sys_status("ftruncate to " + std::to_string(size_bytes), path_, errno);
    return sync();
  }

  Status sync() override {
    if (::fdatasync(fd_.get()) != 0) return sys_status("fdatasync", path_, errno);
    return ok_status();
  }

  int handle() const override { return fd_.get(); }

 private:
  std::string path_;
  UniqueFd fd_;
};

class PosixEnv final : public Env {
 public:
  Status make_dirs(const std::string& path) override {
    if (path.empty()) return invalid_argument("make_dirs: empty path");
    size_t pos = 0;
    while (pos != std::string::npos) {
      pos = path.find('/', pos + 1);
      std::string prefix = path.substr(0, pos);
      if (prefix.empty() || prefix == "/") continue;
      if (::mkdir(prefix.c_str(), 0755) == 0) {
        // A new directory entry is durable only after its parent is synced; doing
        // it here makes make_dirs durable when it returns, as FakeEnv models it.
        LS_RETURN_IF_ERROR(fsync_dir(parent_dir(prefix)));
        continue;
      }
      if (errno != EEXIST) return sys_status("mkdir", prefix, errno);
      if (!is_dir(prefix)) return sys_status("mkdir", prefix, ENOTDIR);
    }
    return ok_status();
  }

  Result<std::vector<std::string>> list_dir(const std::string& path) override {
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) return sys_status("opendir", path, errno);
    std::vector<std::string> names;
    errno = 0;
    while (dirent* entry = ::readdir(dir)) {
      std::string name = entry->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
      errno = 0;
    }
    int err = errno;
    ::closedir(dir);
    if (err != 0) return sys_status("readdir", path, err);
    std::sort(names.begin(), names.end());
    return names;
  }

  bool exists(const std::string& path) override {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
  }

  bool is_dir(const std::string& path) override {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  }

  Status sync_dir(const std::string& path) override { return fsync_dir(path); }

  Status rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return sys_status("rename " + from + " to", to, errno);
    }
    return ok_status();
  }

  Status remove(const std::string& path) override {
    if (::unlink(path.c_str()) == 0) return ok_status();
    int err = errno;
    if (err == EISDIR) {
      if (::rmdir(path.c_str()) == 0) return ok_status();
      return sys_status("rmdir", path, errno);
    }
    Status status = sys_status("unlink", path, err);
    if (err == EPERM && is_immutable(path)) {
      // The most likely reason on a data directory: a sealed segment. Say so, since
      // "Operation not permitted" for root is otherwise puzzling.
      return Status(status.code(), status.message() +
                                       " (the file is immutable: chattr -i needs "
                                       "CAP_LINUX_IMMUTABLE)");
    }
    return status;
  }

  Status remove_sealed(const std::string& path) override {
    UniqueFd fd(open_retry(path, O_RDONLY | O_NONBLOCK));
    if (fd.get() < 0) return sys_status("open", path, errno);
    int flags = 0;
    if (::ioctl(fd.get(), FS_IOC_GETFLAGS, &flags) == 0 && (flags & FS_IMMUTABLE_FL)) {
      flags &= ~FS_IMMUTABLE_FL;
      if (::ioctl(fd.get(), FS_IOC_SETFLAGS, &flags) != 0) {
        int err = errno;
        Status status = sys_status("ioctl FS_IOC_SETFLAGS clear immutable", path, err);
        if (err == EPERM) {
          return Status(status.code(), status.message() + " (clearing the immutable flag of a sealed segment needs "
                                                          "CAP_LINUX_IMMUTABLE)");
        }
        return status;
      }
    }
    ::close(fd.release());
    return remove(path);
  }

  Result<uint64_t> free_bytes(const std::string& path) override {
    struct statvfs st {};
    if (::statvfs(path.c_str(), &st) != 0) return sys_status("statvfs", path, errno);
    return static_cast<uint64_t>(st.f_bavail) * static_cast<uint64_t>(st.f_frsize);
  }

  Result<uint64_t> file_size(const std::string& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return sys_status("stat", path, errno);
    return static_cast<uint64_t>(st.st_size);
  }

  Result<std::vector<uint8_t>> read_file(const std::string& path) override {
    UniqueFd fd(open_retry(path, O_RDONLY));
    if (fd.get() < 0) return sys_status("open", path, errno);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return sys_status("fstat", path, errno);
    std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
    size_t done = 0;
    // Read to EOF rather than trusting st_size: the file may grow meanwhile (an open
    // segment read by the verifier), and a short read is not an error.
    while (true) {
      if (done == bytes.size()) bytes.resize(std::max<size_t>(bytes.size() * 2, 4096));
      ssize_t n = ::read(fd.get(), bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return sys_status("read", path, errno);
      if (n == 0) break;
      done += static_cast<size_t>(n);
    }
    bytes.resize(done);
    return bytes;
  }

  Status write_file_atomic(const std::string& path, const std::string& contents,
                           unsigned mode) override {
    std::string tmp = temp_name(path, "atomic");
    UniqueFd fd(open_retry(tmp, O_WRONLY | O_CREAT | O_EXCL, static_cast<mode_t>(mode)));
    if (fd.get() < 0) return sys_status("create", tmp, errno);
    Status status = [&]() -> Status {
      // The umask may have cleared bits of mode; keys and anchors need exactly it.
      if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0)
        return sys_status("fchmod", tmp, errno);
      LS_RETURN_IF_ERROR(write_all(fd.get(), reinterpret_cast<const uint8_t*>(contents.data()),
                                   contents.size(), tmp));
      if (::fsync(fd.get()) != 0) return sys_status("fsync", tmp, errno);
      // close can report a deferred write error (NFS); check it before publishing.
      if (::close(fd.release()) != 0) return sys_status("close", tmp, errno);
      if (::rename(tmp.c_str(), path.c_str()) != 0)
        return sys_status("rename " + tmp + " to", path, errno);
      return ok_status();
    }();
    if (!status.ok()) {
      ::unlink(tmp.c_str());
      return status.with_context("write_file_atomic");
    }
    return fsync_dir(parent_dir(path)).with_context("write_file_atomic");
  }

  Status make_read_only(const std::string& path) override {
    if (::chmod(path.c_str(), 0444) != 0) return sys_status("chmod 0444", path, errno);
    return ok_status();
  }

  Result<bool> make_immutable(const std::string& path) override {
    UniqueFd fd(open_retry(path, O_RDONLY | O_NONBLOCK));
    if (fd.get() < 0) return sys_status("open", path, errno);
    int flags = 0;  // the kernel reads and writes an int, despite the ioctl's long
    if (::ioctl(fd.get(), FS_IOC_GETFLAGS, &flags) != 0) {
      if (flag_unsupported(errno)) return false;
      return sys_status("ioctl FS_IOC_GETFLAGS", path, errno);
    }
    if (flags & FS_IMMUTABLE_FL) return true;
    flags |= FS_IMMUTABLE_FL;
    if (::ioctl(fd.get(), FS_IOC_SETFLAGS, &flags) != 0) {
      // EPERM: no CAP_LINUX_IMMUTABLE. The others: the file system has no such flag.
      if (errno == EPERM || flag_unsupported(errno)) return false;
      return sys_status("ioctl FS_IOC_SETFLAGS immutable", path, errno);
    }
    return true;
  }

  Status probe_direct(const std::string& dir) override {
    if (!is_dir(dir)) return sys_status("probe O_DIRECT in", dir, ENOENT);
    std::string probe = temp_name(dir + "/.logseal-probe", "direct");
    UniqueFd fd(open_retry(probe, O_RDWR | O_CREAT | O_EXCL | O_DIRECT, 0600));
    if (fd.get() < 0) {
      if (errno == EINVAL) return direct_unsupported(dir);
      return sys_status("probe O_DIRECT: create", probe, errno);
    }
    Status status = [&]() -> Status {
      AlignedBuffer out(kBlockBytes);
      AlignedBuffer in(kBlockBytes);
      for (size_t i = 0; i < kBlockBytes; ++i) out.data()[i] = static_cast<uint8_t>(i * 7 + 1);
      ssize_t n = ::pwrite(fd.get(), out.data(), kBlockBytes, 0);
      // Some file systems accept the open but refuse the aligned I/O itself.
      if (n < 0 && errno == EINVAL) return direct_unsupported(dir);
      if (n < 0) return sys_status("probe O_DIRECT: write", probe, errno);
      if (static_cast<size_t>(n) != kBlockBytes)
        return io_error("probe O_DIRECT: short write to " + probe);
      if (::fdatasync(fd.get()) != 0) return sys_status("probe O_DIRECT: fdatasync", probe, errno);
      n = ::pread(fd.get(), in.data(), kBlockBytes, 0);
      if (n < 0 && errno == EINVAL) return direct_unsupported(dir);
      if (n < 0) return sys_status("probe O_DIRECT: read", probe, errno);
      if (static_cast<size_t>(n) != kBlockBytes ||
          std::memcmp(in.data(), out.data(), kBlockBytes) != 0) {
        return io_error("probe O_DIRECT: block read back from " + probe +
                        " differs from the one written");
      }
      return ok_status();
    }();
    if (::unlink(probe.c_str()) != 0 && status.ok())
      status = sys_status("probe O_DIRECT: unlink", probe, errno);
    if (!status.ok()) return status;
    // Kernels from 6.6 accept O_DIRECT on tmpfs, but a memory file system loses
    // every sealed record at reboot: refuse it as well.
    std::string fs = fs_type_name_of(dir);
    if (fs == "tmpfs" || fs == "ramfs") {
      return unimplemented("the data directory " + dir + " is on " + fs +
                           ", which keeps nothing across a reboot: put it on a block-device file system "
                           "such as ext4 or xfs");
    }
    return status;
  }

  Result<std::unique_ptr<AppendFile>> create_append(const std::string& path) override {
    UniqueFd fd(open_retry(path, O_CREAT | O_EXCL | O_WRONLY | O_DIRECT, 0644));
    if (fd.get() < 0) {
      if (errno == EINVAL) return direct_unsupported(parent_dir(path));
      return sys_status("create", path, errno);
    }
    LS_RETURN_IF_ERROR(fsync_dir(parent_dir(path)).with_context("create " + path));
    return std::unique_ptr<AppendFile>(std::make_unique<PosixAppendFile>(path, fd.release()));
  }

  Result<std::unique_ptr<AppendFile>> open_append(const std::string& path) override {
    UniqueFd fd(open_retry(path, O_WRONLY | O_DIRECT));
    if (fd.get() < 0) {
      int err = errno;
      if (err == EINVAL) return direct_unsupported(parent_dir(path));
      if (err == EPERM && is_immutable(path)) {
        return failed_precondition("open_append " + path + ": the file is immutable (sealed)");
      }
      struct stat st {};
      if (err == EACCES && ::stat(path.c_str(), &st) == 0 && (st.st_mode & 0222) == 0) {
        return failed_precondition("open_append " + path + ": the file is read-only (sealed)");
      }
      return sys_status("open for append", path, err);
    }
    // root bypasses the 0444 mode of a sealed segment; refuse explicitly so that
    // WORM holds even without CAP_LINUX_IMMUTABLE, as FakeEnv enforces it.
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return sys_status("fstat", path, errno);
    if ((st.st_mode & 0222) == 0) {
      return failed_precondition("open_append " + path + ": the file is read-only (sealed)");
    }
    return std::unique_ptr<AppendFile>(std::make_unique<PosixAppendFile>(path, fd.release()));
  }

  Result<std::unique_ptr<Ring>> make_ring(unsigned entries) override {
    return make_uring_ring(entries);
  }

 private:
  static bool flag_unsupported(int err) {
    return err == ENOTTY || err == EOPNOTSUPP || err == EINVAL || err == ENOSYS;
  }

  static bool is_immutable(const std::string& path) {
    UniqueFd fd(open_retry(path, O_RDONLY | O_NONBLOCK));
    int flags = 0;
    return fd.get() >= 0 && ::ioctl(fd.get(), FS_IOC_GETFLAGS, &flags) == 0 &&
           (flags & FS_IMMUTABLE_FL);
  }
};

}  // namespace

Env& posix_env() {
  // Stateless, so one shared instance serves every thread.
  static PosixEnv env;
  return env;
}

}  // namespace logseal::io
