// The one seam for syscalls. Every file and ring operation the engine makes goes
// through an Env, so tests can run the real engine over FakeEnv (fake_env.h),
// which injects EIO, short writes, torn writes and crashes.
//
// Threading: an Env is shared by threads; its methods are thread-safe. A Ring and
// an AppendFile belong to one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"

namespace logseal::io {

// A segment file opened with O_DIRECT for appending writes (through a Ring) and
// for cutting a torn tail at recovery.
class AppendFile {
 public:
  virtual ~AppendFile() = default;
  virtual const std::string& path() const = 0;
  // Current size in bytes as the file system reports it.
  virtual Result<uint64_t> size() = 0;
  // ftruncate to size_bytes, then fdatasync. Only used by recovery.
  virtual Status truncate(uint64_t size_bytes) = 0;
  // fdatasync.
  virtual Status sync() = 0;
  // Opaque handle used by the Ring implementation of the same Env (the fd for
  // the POSIX env, a file number for the fake).
  virtual int handle() const = 0;
};

struct Completion {
  uint64_t user_data = 0;
  int32_t result = 0;  // bytes transferred (may be short), or -errno
};

// An io_uring (or its fake). Writes are durable when their completion arrives:
// the POSIX ring submits them with RWF_DSYNC. The kernel may complete requests in
// any order and may complete a write short; DurableWriter (durable_writer.h)
// handles that, the engine never calls a Ring directly for data.
class Ring {
 public:
  virtual ~Ring() = default;
  // Queues a write of len_bytes from buf at offset. buf, offset and len_bytes are
  // multiples of kBlockBytes (buf: address). Does not block. Returns
  // ResourceExhausted when the submission queue is full.
  virtual Status submit_write(AppendFile& file, uint64_t offset, const void* buf, size_t len_bytes,
                              uint64_t user_data) = 0;
  // Submits what is queued and waits until at least min_complete completions are
  // available or timeout_us passes (timeout_us < 0: no timeout; min_complete 0:
  // just reap). Appends completions to out. EINTR is retried internally.
  virtual Status wait(unsigned min_complete, int64_t timeout_us, std::vector<Completion>& out) = 0;
  // Requests queued or in flight, not yet returned by wait().
  virtual unsigned in_flight() const = 0;
};

class Env {
 public:
  virtual ~Env() = default;

  // mkdir -p; succeeds if it exists.
  virtual Status make_dirs(const std::string& path) = 0;
  // Names (not paths) of entries in a directory, sorted, without "." and "..".
  virtual Result<std::vector<std::string>> list_dir(const std::string& path) = 0;
  virtual bool exists(const std::string& path) = 0;
  virtual bool is_dir(const std::string& path) = 0;
  // fsync of the directory, so created, renamed or removed entries are durable.
  virtual Status sync_dir(const std::string& path) = 0;
  virtual Status rename(const std::string& from, const std::string& to) = 0;
  virtual Status remove(const std::string& path) = 0;
  // Removes a sealed segment: clears FS_IMMUTABLE_FL (chattr -i) when it is set,
  // then unlinks. Only retention calls this, after a signed prune record covers
  // the file. PermissionDenied-like errors name the missing capability.
  virtual Status remove_sealed(const std::string& path) = 0;
  // Bytes available to this process on the file system holding path (statvfs
  // f_bavail * f_frsize): what the store's disk-full policy compares with its
  // reserve.
  virtual Result<uint64_t> free_bytes(const std::string& path) = 0;
  virtual Result<uint64_t> file_size(const std::string& path) = 0;
  // Reads the whole file with buffered I/O (verifier and readers; never for writing).
  virtual Result<std::vector<uint8_t>> read_file(const std::string& path) = 0;
  // Writes a small file atomically: temp file, fsync, rename, fsync dir (keys, anchors).
  virtual Status write_file_atomic(const std::string& path, const std::string& contents,
                                   unsigned mode) = 0;

  // chmod 0444.
  virtual Status make_read_only(const std::string& path) = 0;
  // Sets FS_IMMUTABLE_FL (chattr +i) with the FS_IOC_SETFLAGS ioctl. Returns false
  // (not an error) when the process lacks CAP_LINUX_IMMUTABLE or the file system
  // does not support the flag; any other failure is an error.
  virtual Result<bool> make_immutable(const std::string& path) = 0;

  // Checks that O_DIRECT works in dir: creates a temporary file there with O_DIRECT,
  // writes and reads one kBlockBytes block, removes it. Unimplemented with a clear
  // message naming the directory and the file system when it does not (tmpfs
  // answers EINVAL to open with O_DIRECT).
  virtual Status probe_direct(const std::string& dir) = 0;

  // Creates a new file (O_CREAT|O_EXCL|O_WRONLY|O_DIRECT|O_CLOEXEC, mode 0644) and
  // syncs its directory so the entry is durable.
  virtual Result<std::unique_ptr<AppendFile>> create_append(const std::string& path) = 0;
  // Opens an existing, not yet sealed file for appending (O_WRONLY|O_DIRECT). Only
  // recovery of the open segment uses this; sealed segments are never opened for
  // writing.
  virtual Result<std::unique_ptr<AppendFile>> open_append(const std::string& path) = 0;

  // A ring with room for entries requests in flight.
  virtual Result<std::unique_ptr<Ring>> make_ring(unsigned entries) = 0;
};

// The real Env: POSIX syscalls and liburing.
Env& posix_env();

}  // namespace logseal::io
