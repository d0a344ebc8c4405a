// FakeEnv: an in-memory Env for tests that runs the real engine against injected
// faults, deterministically from one seed (print the seed on failure).
//
// Model of durability (matches what the engine may assume from the POSIX env):
// - a write is applied to the file's durable bytes when its completion is
//   returned by Ring::wait (the POSIX ring writes with RWF_DSYNC);
// - a created file, a rename or a remove is durable only after sync_dir of its
//   directory; crash() undoes the ones that were not synced;
// - truncate() is durable when it returns.
//
// Faults (each drawn per write from the seeded generator, or armed one-shot):
// - EIO on a write (completion result -EIO, nothing written);
// - short write (a prefix of whole 512-byte sectors is written, result = bytes);
// - crash(): every write queued or in flight is dropped, or torn (a random
//   prefix of 512-byte sectors reaches the file, possibly followed by a sector of
//   garbage), unsynced directory changes are undone, and every later call fails
//   with EIO until restart(), which models a reboot: the durable state remains.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "io/env.h"

namespace logseal::io {

struct FaultConfig {
  double eio_per_write = 0.0;    // probability a write completes with -EIO
  double short_per_write = 0.0;  // probability a write completes short
  bool torn_on_crash = true;     // in-flight writes may be partly applied on crash()
};

class FakeEnv final : public Env {
 public:
  explicit FakeEnv(uint64_t seed, FaultConfig faults = {});
  ~FakeEnv() override;

  void set_faults(FaultConfig faults);
  // The next write submitted fails with -EIO (one-shot).
  void fail_next_write();
  // While held, submitted writes stay in flight: Ring::wait completes none (it
  // waits up to 1 ms, as a slow disk would) until hold_writes(false).
  void hold_writes(bool held);
  // Crash now (see above). Thread-safe; may be called from any thread while the
  // engine runs.
  void crash();
  // Crash automatically when the n-th write (counting from now, 1-based) is
  // submitted: that write and every write still in flight are dropped or torn.
  void crash_at_write(uint64_t n);
  bool crashed() const;
  // Reboot: clears the crashed state. Files keep their durable bytes.
  void restart();
  uint64_t writes_submitted() const;
  // Disk capacity model: free_bytes() is capacity minus the bytes of every file,
  // and a write that would grow the files past capacity completes with -ENOSPC.
  // Default: unlimited.
  void set_capacity_bytes(uint64_t capacity_bytes);
  // Direct access for byte surgery in tests.
  std::vector<uint8_t>* file_bytes(const std::string& path);

  Status make_dirs(const std::string& path) override;
  Result<std::vector<std::string>> list_dir(const std::string& path) override;
  bool exists(const std::string& path) override;
  bool is_dir(const std::string& path) override;
  Status sync_dir(const std::string& path) override;
  Status rename(const std::string& from, const std::string& to) override;
  Status remove(const std::string& path) override;
  Status remove_sealed(const std::string& path) override;
  Result<uint64_t> free_bytes(const std::string& path) override;
  Result<uint64_t> file_size(const std::string& path) override;
  Result<std::vector<uint8_t>> read_file(const std::string& path) override;
  Status write_file_atomic(const std::string& path, const std::string& contents, unsigned mode) override;
  Status make_read_only(const std::string& path) override;
  Result<bool> make_immutable(const std::string& path) override;
  Status probe_direct(const std::string& dir) override;
  Result<std::unique_ptr<AppendFile>> create_append(const std::string& path) override;
  Result<std::unique_ptr<AppendFile>> open_append(const std::string& path) override;
  Result<std::unique_ptr<Ring>> make_ring(unsigned entries) override;

  struct State;  // implementation detail, shared with the fake ring and files

 private:
  std::shared_ptr<State> state_;
};

}  // namespace logseal::io
