// Store and Stream: the sealed segment store.
//
// A Store is a data directory. Each stream lives in DATA_DIR/<stream>/ as a chain
// of segment files (docs/FORMAT.md) and has its own writer thread; one signer
// thread per signer signs checkpoints and seals for the streams that signer
// serves (the store's signer, or a stream's own: set_stream_signer()), so a slow
// signer (a hardware TPM, ~200 ms) never sits on the write path: checkpoints simply
// cover more records. A failing signer holds up only the streams it signs.
//
// Data flow of one record:
//   append() (caller's thread: leaf hash, encode into the staging batch buffer)
//   -> writer thread closes the batch at batch_bytes or batch_delay_us, one aligned
//      O_DIRECT write with RWF_DSYNC (up to writes_in_flight_max in flight)
//   -> completion, in order: durable_size() advances, waiters are woken, the
//      durable callback runs
//   -> every checkpoint_ms a snapshot of the durable state goes to the signer
//      thread; the signed frame comes back and the writer appends it
//   -> at segment_bytes or segment_age_s the segment is rolled: its seal is signed
//      and written when its last batch is durable, then it is made read-only and
//      immutable.
//
// Failure policy (STYLE.md): a failed write stops the stream (health() turns
// non-ok, appends fail, nothing more is acknowledged); the daemon exits and the
// next start recovers from disk.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "engine/format.h"
#include "hsm/signer.h"
#include "io/env.h"

namespace logseal::engine {

struct StreamOptions {
  uint64_t segment_bytes = 64ull << 20;  // roll when a segment reaches this size
  uint64_t segment_age_s = 0;            // roll when a segment is this old (0: never)
  uint32_t checkpoint_ms = 1000;         // sign a checkpoint this often while data arrives
  size_t batch_bytes = 1u << 20;         // close a batch at this many bytes ...
  uint32_t batch_delay_us = 1000;        // ... or when its first record is this old
  unsigned writes_in_flight_max = 2;     // batch writes outstanding per stream
  size_t record_bytes_max = 1u << 20;    // larger records are refused
  // Disk-full policy "refuse": while the file system holding the stream has
  // fewer free bytes than this, new log records are refused (ResourceExhausted)
  // instead of running the disk full, so a write never fails half-way and
  // nothing sealed is harmed. Raised to at least what the stream may still have
  // staged or in flight plus a seal and the next segment header (those were
  // accepted and are written into the reserve). Governance records (key rotation,
  // retention, and the `_audit` stream) pass: a prune must be able to seal its
  // record to free space.
  // 0: off.
  uint64_t disk_reserve_bytes = 0;
};

struct StreamStats {
  uint64_t records = 0;          // appended (accepted into the queue) since the stream opened
  uint64_t next_index = 0;       // index the next record gets: records in the stream, durable or queued
  uint64_t durable_records = 0;  // durable on disk
  uint64_t signed_records = 0;   // covered by a signed checkpoint or seal on disk
  uint64_t bytes_written = 0;    // to segment files
  uint64_t batches = 0;
  uint64_t segments_sealed = 0;
  uint64_t checkpoints = 0;
  uint64_t queue_bytes = 0;  // staged, not yet written
  uint64_t segment_seq = 0;  // the open segment
  uint64_t sign_failures = 0;
  double last_sign_ms = 0;
  bool disk_full = false;           // new records are refused (disk_reserve_bytes)
  uint64_t disk_full_refused = 0;   // records refused because of it
  uint64_t disk_free_bytes = 0;     // at the last check (0 when the policy is off)
  uint64_t disk_reserve_bytes = 0;  // the effective reserve (0 when the policy is off)
};

class Store;

class Stream {
 public:
  ~Stream();
  const std::string& name() const { return name_; }

  // Appends one record. Blocks while the staging buffer is full (backpressure)
  // unless block is false, then ResourceExhausted. Returns the record's index in
  // the stream. InvalidArgument for a record over record_bytes_max or a source
  // over 65535 bytes; FailedPrecondition once the stream is closing or failed.
  // Thread-safe.
  Result<uint64_t> append(const format::RecordView& record, bool block = true);

  // Appends several records in order: the batched form of append() for a
  // listener that has framed and parsed every message of one receive buffer.
  // Leaf hashes are computed on the caller's thread before the stream lock is
  // taken; the lock is then taken once (again only after waiting for room), so
  // the per-record cost under the lock is one copy into the staging batch.
  // The views must stay valid during the call only.
  //
  // On return `appended` records (a prefix of `records`) were accepted, and
  // indexes[i] (when indexes is not empty; it must then hold records.size()
  // entries) is the index of record i for i < appended. Indexes increase with i;
  // they are consecutive unless the call had to wait for room, when another
  // producer may append in between. Stops at the first record it refuses and
  // returns why, with append()'s codes: InvalidArgument for that record (the
  // caller may go on after it), ResourceExhausted for a full disk or, when
  // block is false, a full staging buffer, FailedPrecondition once the stream
  // is closing or failed. Thread-safe.
  Status append_batch(std::span<const format::RecordView> records, std::span<uint64_t> indexes, size_t& appended,
                      bool block = true);

  // Number of records durable on disk (indexes below it are durable).
  uint64_t durable_size() const { return durable_size_.load(std::memory_order_acquire); }
  // Waits until record index is durable (true), the timeout passes or the stream
  // fails (false).
  bool wait_durable(uint64_t index, std::chrono::milliseconds timeout);
  // Adds a function called on the writer thread after each durable advance with
  // the new durable_size(). Several listeners may wait on one stream (RELP and
  // HTTP), so callbacks add up; they live as long as the stream. Must be cheap
  // and must not append.
  void add_durable_callback(std::function<void(uint64_t)> fn);
  // Records covered by a signed checkpoint or seal written to disk.
  uint64_t signed_size() const { return signed_size_.load(std::memory_order_acquire); }

  // Seals the open segment at the next batch boundary and opens the next (SIGHUP).
  void request_roll();
  // Ok while the stream can take records. (A full disk is not a failure: see
  // StreamStats::disk_full.)
  Status health() const;
  StreamStats stats() const;
  // The latest signed checkpoint written to disk: body and signature (empty when
  // none yet).
  struct SignedCopy {
    std::vector<uint8_t> body;
    std::vector<uint8_t> signature;
  };
  SignedCopy latest_signed() const;

 private:
  friend class Store;
  struct Impl;
  Stream(std::string name, std::unique_ptr<Impl> impl);
  std::string name_;
  std::unique_ptr<Impl> impl_;
  std::atomic<uint64_t> durable_size_{0};
  std::atomic<uint64_t> signed_size_{0};
};

struct StoreOptions {
  StreamOptions stream;
  // How long close() waits for the signer to cover the last records before it
  // gives up (they are signed at the next start).
  uint32_t close_sign_timeout_ms = 30000;
  // Make sealed segments immutable (chattr +i) where CAP_LINUX_IMMUTABLE is held.
  // Off only for benchmarks and tests that delete their data afterwards.
  bool immutable_segments = true;
  // Log lines (journald priority prefix included) go here; default stderr.
  std::function<void(const std::string&)> log;
};

class Store {
 public:
  // Opens (creating if needed) a data directory. Probes O_DIRECT there.
  static Result<std::unique_ptr<Store>> open(io::Env& env, const std::string& data_dir,
                                             std::shared_ptr<hsm::Signer> signer, StoreOptions options);
  ~Store();  // close() if not closed

  // Opens a stream, creating it or recovering its open segment (cuts a torn tail
  // and records a recovery frame; seals a segment left unsealed by a crash during
  // a roll). Thread-safe; returns the same Stream for the same name.
  Result<Stream*> stream(const std::string& name);
  // Names of streams present in the data directory.
  Result<std::vector<std::string>> list_streams();
  // The streams opened so far (by stream()), sorted by name. The pointers stay
  // valid until close().
  std::vector<Stream*> open_streams();

  // Stops accepting, drains every stream, writes a final signed checkpoint,
  // waits for pending seals, stops the threads. Returns the first error met
  // (a failed stream, or records left unsigned because the signer failed).
  Status close();

  const std::string& data_dir() const { return data_dir_; }
  io::Env& env() { return env_; }
  // The store's signer: signs every stream without one of its own.
  hsm::Signer& signer();

  // Gives stream `name` a signer of its own (production and staging never share
  // a key). Must be called before stream(name) opens the stream (FailedPrecondition
  // after; InvalidArgument for a bad name). The same signer object may serve
  // several streams; each distinct signer gets its own signer thread.
  Status set_stream_signer(const std::string& name, std::shared_ptr<hsm::Signer> signer);
  // The signer of a stream: its own, or the store's. Thread-safe.
  hsm::Signer& signer_for(const std::string& stream);

  // One signer and how its last attempt went.
  struct SignerState {
    bool store_default = false;        // the store's signer (streams without their own)
    std::vector<std::string> streams;  // the streams given to it by set_stream_signer()
    hsm::SignerKind kind = hsm::SignerKind::kSoft;
    Hash32 key_id{};
    Status status;  // OK unless the last attempt failed
    // "store signer soft key 1a2b3c4d..." or "signer tpm key ... of stream(s) a,b": for logs and /healthz.
    std::string describe() const;
  };
  std::vector<SignerState> signers() const;  // the store's first
  // OK unless a signer's last attempt failed (then that error, naming the
  // signer and its streams): the TPM is gone or refuses. Ingest goes on
  // meanwhile; /healthz reports this.
  Status signer_status() const;
  void log(const std::string& line) const;

 private:
  friend class Stream;
  struct SignJob;
  struct SignerWorker;
  Store(io::Env& env, std::string data_dir, std::shared_ptr<hsm::Signer> signer, StoreOptions options);
  void signer_loop(SignerWorker& w);
  void enqueue_sign(SignJob job);
  SignerWorker& worker_for(const std::string& stream) const;
  void start_worker(SignerWorker& w);

  io::Env& env_;
  std::string data_dir_;
  StoreOptions options_;

  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Stream>> streams_;
  bool closed_ = false;

  // Signer workers: the store's first, then one per distinct stream signer.
  // The vector only grows (set_stream_signer), under signers_mu_; workers live
  // until the Store is destroyed.
  mutable std::mutex signers_mu_;
  std::vector<std::unique_ptr<SignerWorker>> signers_;
  std::map<std::string, SignerWorker*> stream_signers_;  // by stream name
};

}  // namespace logseal::engine
