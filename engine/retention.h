// Retention, legal hold and pruning (docs/FORMAT.md section 5.4).
//
// A stream keeps every record at least retention_min_days and may drop whole
// sealed segments once they are older than retention_max_days. Nothing is ever
// deleted silently: a prune first seals a retention statement into the stream
// itself (the range removed, the head, chain and root of the last removed seal,
// the policy, the time), waits until a signed checkpoint covers it, and only
// then removes the files, oldest first. `logseal verify` then checks the first
// remaining segment against the statement instead of the missing file; a
// segment removed without one stays `missing-segment`.
//
// A legal hold (a statement with op hold-on, or the configured flag) stops every
// prune of the stream until a hold-off statement lifts it.
//
// Thread: prune_stream() and append_hold() run on any thread; they use only the
// Store's public API, so they work on a live logseald store (the daemon's
// retention timer and disk-full policy) and offline (`logseal prune`, with
// logseald stopped, since two writers must never share a stream).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "engine/store.h"
#include "hsm/public_key.h"
#include "io/env.h"

namespace logseal::engine {

inline constexpr char kRetentionMagic[8] = {'L', 'S', 'E', 'A', 'L', 'R', 'T', '1'};
inline constexpr size_t kRetentionFixedBytes = 192;  // then stream, then note
inline constexpr size_t kRetentionNoteBytesMax = 1024;
inline constexpr int64_t kNsPerDay = 86400ll * 1000000000ll;

enum class RetentionOp : uint8_t { kPrune = 1, kHoldOn = 2, kHoldOff = 3 };
// Why a prune ran: the policy's maximum age, an explicit --before, or the
// disk-full policy (oldest segments beyond the minimum).
enum class PruneTrigger : uint8_t { kNone = 0, kMaxAge = 1, kBefore = 2, kDiskFull = 3 };
enum class DiskFullPolicy : uint8_t { kRefuse = 1, kPrune = 2 };

const char* retention_op_name(RetentionOp op);
const char* prune_trigger_name(PruneTrigger t);
const char* disk_full_policy_name(DiskFullPolicy p);
Result<DiskFullPolicy> parse_disk_full_policy(const std::string& s);

struct RetentionPolicy {
  uint32_t min_days = 0;    // records are kept at least this long: never pruned inside it
  uint32_t max_days = 0;    // segments older than this may be pruned; 0: kept forever
  bool legal_hold = false;  // configured hold, on top of hold statements in the stream
  DiskFullPolicy disk_full = DiskFullPolicy::kRefuse;
};
// InvalidArgument when max_days is set below min_days.
Status check_policy(const RetentionPolicy& p);

// A retention statement: the raw bytes of a kRetention record.
struct RetentionStatement {
  RetentionOp op = RetentionOp::kPrune;
  PruneTrigger trigger = PruneTrigger::kNone;
  std::string stream;
  int64_t time_ns = 0;
  uint32_t min_days = 0;  // the policy in force
  uint32_t max_days = 0;
  int64_t cutoff_ns = 0;  // prune: segments sealed before this were eligible
  // Prune only (zero otherwise): segments first_seq..last_seq, records
  // first_index..tree_size-1, and the seal of segment last_seq.
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  uint64_t first_index = 0;
  uint64_t tree_size = 0;
  Hash32 last_head{};
  uint64_t last_head_seq = 0;
  Hash32 last_frame_chain{};
  Hash32 last_root{};
  int64_t last_seal_ns = 0;
  std::string note;  // who and why, as the operator wrote it (text)
};

std::vector<uint8_t> encode_retention(const RetentionStatement& s);
// DataLoss unless raw is exactly one well-formed statement.
Result<RetentionStatement> decode_retention(std::span<const uint8_t> raw);
// {"retention":{"op":"prune",...}}: informational, the verifier reads raw.
std::string retention_fields_json(const RetentionStatement& s);
// One line for reports: what, when, which range, which policy.
std::string describe_retention(const RetentionStatement& s);

// Appends a statement to the stream as a kRetention record; returns its index.
Result<uint64_t> append_retention(Stream& stream, const RetentionStatement& s, const std::string& source);

// Legal hold as the stream's records say: the op of the last hold statement
// (false when there is none). Reads every record of the stream.
Result<bool> read_hold(io::Env& env, const std::string& data_dir, const std::string& stream);

struct PruneRequest {
  RetentionPolicy policy;
  PruneTrigger trigger = PruneTrigger::kMaxAge;
  int64_t before_ns = 0;      // kBefore: prune segments sealed before this
  int64_t now_ns = 0;         // 0: the system clock
  uint64_t segments_max = 0;  // 0: no limit
  // Stop once the chosen segments add up to this many bytes (0: no limit): the
  // disk-full policy frees what the reserve lacks, not everything eligible.
  uint64_t bytes_min = 0;
  std::string note;
  // Keys to verify the stream with before anything is removed (a prune must not
  // vouch for segments that were tampered with); null or empty: the store
  // signer's key. Not owned; must outlive the call.
  const std::vector<hsm::PublicKey>* keys = nullptr;
  // How long to wait for a signed checkpoint to cover the statement.
  std::chrono::milliseconds sign_timeout{60000};
  // Seal the outcome in the `_audit` stream (engine/audit.h): a prune, a
  // refusal, and, with audit_nothing, a run that found nothing to prune.
  bool audit = true;
  bool audit_nothing = true;
  bool audit_refused = true;
  // Offline (logseal prune) the caller closes the store, which signs the final
  // checkpoint, then calls remove_pruned(); online, prune_stream waits for the
  // running store's next checkpoint itself.
  bool wait_signed = true;
};

struct PruneResult {
  bool pruned = false;  // false: nothing was eligible (why says so)
  std::string why;
  RetentionStatement statement;
  uint64_t index = 0;              // of the statement record
  std::vector<std::string> paths;  // removed (or to remove, when !wait_signed)
};

// Plans and runs a prune of stream (see the file comment). FailedPrecondition
// for a held stream or one that does not verify; nothing is written to the
// stream then (only the refusal to `_audit`).
Result<PruneResult> prune_stream(Store& store, const std::string& stream, const PruneRequest& req);
// Seals a hold-on or hold-off statement into stream and the change into
// `_audit`; returns the statement's index.
Result<uint64_t> set_legal_hold(Store& store, const std::string& stream, bool on, const std::string& note);
// Removes the planned files, oldest first, each removal synced before the
// next, so a crash leaves a prefix removed, which verify accepts.
Status remove_pruned(io::Env& env, const std::string& stream_dir, const std::vector<std::string>& paths);

// logseald's retention: a thread that prunes each configured stream past its
// retention_max_days every interval, and, for streams with disk_full = "prune",
// the oldest sealed segment beyond the minimum whenever the store reports the
// disk full (StreamStats::disk_full), one segment at a time until it is not.
// Streams without a policy are never pruned. Outcomes go to the store's log.
struct RetentionSchedule {
  std::map<std::string, RetentionPolicy> policies;  // by stream name
  std::chrono::seconds interval{3600};
  std::chrono::milliseconds disk_check{1000};
};

class RetentionRunner {
 public:
  RetentionRunner(Store& store, RetentionSchedule schedule);
  ~RetentionRunner();  // stop()
  RetentionRunner(const RetentionRunner&) = delete;
  RetentionRunner& operator=(const RetentionRunner&) = delete;
  void stop();
  uint64_t segments_pruned() const { return segments_pruned_.load(); }
  uint64_t prune_failures() const { return prune_failures_.load(); }

 private:
  void loop();
  void run_one(Stream& stream, const RetentionPolicy& policy, PruneTrigger trigger);

  Store& store_;
  RetentionSchedule schedule_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::map<std::string, std::string> last_why_;  // by stream: said once, not every second
  std::map<std::string, bool> refusal_audited_;  // by stream: a disk-full refusal is in _audit already
  std::atomic<uint64_t> segments_pruned_{0};
  std::atomic<uint64_t> prune_failures_{0};
  std::thread thread_;
};

}  // namespace logseal::engine
