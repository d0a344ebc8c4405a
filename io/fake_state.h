// FakeEnv's shared state: the in-memory file system, the queued writes of every
// fake ring, and the seeded generator that draws every fault. Private to io/
// (fake_env.cc, fake_ring.cc).
//
// Namespace model: a path maps to an inode (shared, so a renamed or removed file
// keeps its bytes for handles still open, as on POSIX). `files` is what the running
// process sees; `durable_files` is what survives crash(). sync_dir(d) copies the
// entries of d from the first to the second. Directories are durable at once
// (make_dirs syncs their parents in the POSIX env too).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "io/fake_env.h"

namespace logseal::io {

struct FakeInode {
  std::vector<uint8_t> bytes;  // durable bytes: writes land here on completion
  unsigned mode = 0644;
  bool immutable = false;
};
using InodePtr = std::shared_ptr<FakeInode>;

struct FakeWrite {
  InodePtr inode;
  uint64_t offset;
  const uint8_t* buf;  // read when the write completes or tears, as the kernel would
  size_t len_bytes;
  uint64_t user_data;
  bool eio_armed;  // fail_next_write() was pending when it was submitted
};

struct FakeOpenFile {
  InodePtr inode;
  uint64_t epoch;
};

struct FakeEnv::State {
  State(uint64_t seed, FaultConfig fault_config) : rng(seed), faults(fault_config) {}

  // One lock for everything: the fake is for tests, where simplicity beats
  // throughput, and crash() must see a consistent snapshot.
  std::mutex mu;
  std::mt19937_64 rng;
  FaultConfig faults;
  bool crashed = false;
  // Bumped by crash(): handles and rings from before it belong to the dead process
  // and fail even after restart().
  uint64_t epoch = 0;
  uint64_t writes_submitted = 0;
  uint64_t crash_at_write = 0;  // value of writes_submitted that crashes; 0: none
  bool fail_next_write = false;
  bool writes_held = false;  // hold_writes()
  uint64_t capacity_bytes = UINT64_MAX;  // set_capacity_bytes()

  // Bytes of every file the process sees (the capacity model's used space).
  uint64_t used_bytes_locked() const;

  std::map<std::string, InodePtr> files;
  std::map<std::string, InodePtr> durable_files;
  std::set<std::string> dirs;
  std::map<int, FakeOpenFile> open_files;  // by AppendFile::handle()
  int next_handle = 1;
  std::map<uint64_t, std::vector<FakeWrite>> ring_queues;  // by ring id
  uint64_t next_ring_id = 1;

  // The helpers below expect mu held.
  Status alive() const;  // io_error "crashed" while crashed
  bool dir_exists(const std::string& path) const;
  void sync_dir_locked(const std::string& dir);
  void crash_locked();
  // Uniform in [lo, hi]; Bernoulli(p). Own arithmetic rather than <random>
  // distributions, whose output differs between standard libraries, so a seed
  // replays the same run everywhere.
  uint64_t uniform(uint64_t lo, uint64_t hi);
  bool chance(double p);
};

// "a/b//c/" -> "a/b/c"; "/" stays "/".
std::string fake_normalize(const std::string& path);
// Parent directory of a normalised path: "a/b" -> "a", "/a" -> "/", "a" -> ".".
std::string fake_parent(const std::string& path);
// Applies len_bytes of buf at offset, growing the file with zeros as needed.
void fake_apply(FakeInode& inode, uint64_t offset, const uint8_t* buf, size_t len_bytes);

std::unique_ptr<AppendFile> make_fake_append_file(std::shared_ptr<FakeEnv::State> state,
                                                  std::string path, InodePtr inode);
std::unique_ptr<Ring> make_fake_ring(std::shared_ptr<FakeEnv::State> state, unsigned entries);

}  // namespace logseal::io
