#include "engine/store.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "engine/audit.h"
#include "engine/merkle.h"
#include "engine/segment_reader.h"
#include "engine/store_internal.h"
#include "hsm/sha256.h"
#include "io/buffer.h"
#include "io/durable_writer.h"

namespace logseal::engine {

using namespace format;
using Clock = std::chrono::steady_clock;
using io::align_up;

namespace {

int64_t unix_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Leaf hash of a record without materialising it: SHA-256(0x00 || fixed || source
// || fields || raw), the same bytes encode_record writes after its length prefix.
Hash32 record_leaf(const RecordView& r) {
  thread_local Sha256 h;
  uint8_t fixed[1 + kRecFixedBytes];
  fixed[0] = 0x00;
  encode_record_fixed(r, fixed + 1);
  h.update(fixed, sizeof fixed);
  h.update(r.source.data(), r.source.size());
  h.update(r.fields.data(), r.fields.size());
  h.update(r.raw.data(), r.raw.size());
  return h.finish();
}

// Leaf messages up to this size are gathered into one buffer each so that two
// of them can be hashed together (sha256_x2); larger ones are rare and are
// hashed in place.
constexpr size_t kLeafGatherBytesMax = 64 * 1024;

// Writes 0x00 || record (without its length prefix) into out, which it sizes.
void gather_leaf(const RecordView& r, std::vector<uint8_t>& out) {
  out.resize(1 + kRecFixedBytes + r.source.size() + r.fields.size() + r.raw.size());
  uint8_t* p = out.data();
  *p++ = 0x00;
  encode_record_fixed(r, p);
  p += kRecFixedBytes;
  for (std::string_view part : {r.source, r.fields, r.raw}) {
    if (!part.empty()) std::memcpy(p, part.data(), part.size());
    p += part.size();
  }
}

// The leaf hashes of records[0, n) into leaves (appended), two at a time when
// the CPU hashes pairs faster than singles.
void record_leaves(std::span<const RecordView> records, std::vector<Hash32>& leaves) {
  size_t i = 0;
  if (sha256_x2_accelerated()) {
    thread_local std::vector<uint8_t> ga, gb;
    auto leaf_bytes = [](const RecordView& r) {
      return 1 + kRecFixedBytes + r.source.size() + r.fields.size() + r.raw.size();
    };
    for (; i + 1 < records.size(); i += 2) {
      if (leaf_bytes(records[i]) > kLeafGatherBytesMax || leaf_bytes(records[i + 1]) > kLeafGatherBytesMax) {
        leaves.push_back(record_leaf(records[i]));
        leaves.push_back(record_leaf(records[i + 1]));
        continue;
      }
      gather_leaf(records[i], ga);
      gather_leaf(records[i + 1], gb);
      Hash32 a, b;
      sha256_x2(ga, gb, a, b);
      leaves.push_back(a);
      leaves.push_back(b);
    }
  }
  for (; i < records.size(); ++i) leaves.push_back(record_leaf(records[i]));
}

}  // namespace

// ---------------------------------------------------------------------------
// Signer jobs
// ---------------------------------------------------------------------------

struct Store::SignJob {
  Snapshot snapshot;
  std::string stream;
  HeadState* heads = nullptr;  // the stream's head chain, advanced by the signer thread
  std::function<void(Result<SignedBody>)> done;
  // Signing latency and failures, for /metrics (the stream's counters).
  std::atomic<int64_t>* last_sign_us = nullptr;
  std::atomic<uint64_t>* sign_failures = nullptr;
  bool abandon_on_stop = true;
};

// A signer and the thread that signs with it: jobs of the streams it serves, in
// order. Guarded by mu (queue, stop, status).
struct Store::SignerWorker {
  std::shared_ptr<hsm::Signer> signer;
  bool store_default = false;
  std::vector<std::string> streams;  // set_stream_signer() names, under Store::signers_mu_
  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<std::unique_ptr<SignJob>> queue;
  bool stop = false;
  Status status;
  std::thread thread;
};

// ---------------------------------------------------------------------------
// Stream internals
// ---------------------------------------------------------------------------

namespace {

struct Segment {
  uint64_t seq = 0;
  uint64_t first_index = 0;
  int64_t created_ns = 0;
  std::string path;
  std::unique_ptr<io::AppendFile> file;
  uint64_t offset = 0;     // next write offset
  uint32_t frame_seq = 0;  // next frame_seq
  Hash32 chain{};          // chain at offset
  uint64_t tree_end = 0;   // stream tree size after this segment's last batch
  unsigned batches_in_flight = 0;
  bool rolled = false;
  bool seal_queued = false;
  Snapshot seal;  // valid when rolled
};

struct BatchBuf {
  std::unique_ptr<io::AlignedBuffer> buf;
  std::vector<Hash32> leaves;
};

enum class WriteKind { kHeader, kBatch, kSigned };

struct InFlight {
  uint64_t tag = 0;
  WriteKind kind = WriteKind::kBatch;
  Segment* seg = nullptr;
  BatchBuf* batch = nullptr;
  uint64_t end_offset = 0;
  uint64_t tree_size = 0;
  Hash32 root{};
  Hash32 chain{};
  uint32_t records = 0;
  size_t bytes = 0;
};

// The last durable frame boundary of the open segment: what a checkpoint covers.
struct DurablePoint {
  Segment* seg = nullptr;
  uint64_t offset = 0;
  uint64_t tree_size = 0;
  Hash32 root{};
  Hash32 chain{};
};

}  // namespace

struct Stream::Impl {
  Stream* self = nullptr;
  Store* store = nullptr;
  io::Env* env = nullptr;
  StreamOptions opt;
  std::string name;
  std::string dir;
  size_t buffer_bytes = 0;

  // ---- shared with producers and the signer thread (mu) ----
  mutable std::mutex mu;
  std::condition_variable space_cv;   // producers wait for staging room
  std::condition_variable writer_cv;  // the writer waits for work
  BatchBuf* staging = nullptr;
  size_t staging_used = kFrameHeaderBytes;
  uint32_t staging_records = 0;
  Clock::time_point staging_first;
  uint64_t next_index = 0;
  bool closing = false;
  bool writer_done = false;  // the writer thread has left its loop: nothing more becomes durable
  bool roll_requested = false;
  Status failed;
  std::deque<SignedBody> signed_ready;
  std::vector<std::function<void(uint64_t)>> durable_callbacks;
  Stream::SignedCopy latest;
  uint64_t records_appended = 0;

  std::mutex durable_mu;
  std::condition_variable durable_cv;

  // ---- writer thread only ----
  std::vector<BatchBuf> buffers;
  std::vector<BatchBuf*> free_buffers;
  std::unique_ptr<io::AlignedBuffer> small_buf;  // headers and signed frames, one at a time
  std::unique_ptr<io::Ring> ring;
  std::unique_ptr<io::DurableWriter> writer;
  std::unique_ptr<Segment> current;
  std::deque<std::unique_ptr<Segment>> sealing;  // rolled, seal not yet written
  merkle::MerkleFrontier frontier;
  uint64_t tree_written = 0;
  std::deque<InFlight> in_flight;
  uint64_t next_tag = 1;
  DurablePoint durable;
  bool durable_uncovered = false;  // batches or recovery frames not yet in a snapshot
  bool checkpoint_outstanding = false;
  Clock::time_point next_checkpoint;
  unsigned batches_in_flight = 0;
  HeadState heads;  // signer thread after open
  std::atomic<uint64_t> bytes_written{0}, batches{0}, segments_sealed{0}, checkpoints{0}, sign_failures{0};
  std::atomic<uint64_t> segment_seq_now{0};
  std::atomic<int64_t> last_sign_us{0};
  std::thread thread;
  // Disk-full policy (opt.disk_reserve_bytes): set by the writer thread, read by
  // append().
  std::atomic<bool> disk_full{false};
  std::atomic<uint64_t> disk_full_refused{0};
  std::atomic<uint64_t> disk_free_bytes{0};
  uint64_t disk_reserve_effective = 0;
  Clock::time_point next_space_check{};

  void log(const std::string& s) const { store->log(s); }

  // Compares the free space with the reserve and sets disk_full; logs each
  // change. A file system that cannot answer statvfs leaves the state as it was
  // (said once in the log): the policy must not stop a working stream.
  void check_space() {
    if (opt.disk_reserve_bytes == 0) return;
    next_space_check = Clock::now() + std::chrono::milliseconds(100);
    auto free = env->free_bytes(dir);
    if (!free.ok()) {
      if (disk_free_bytes.exchange(UINT64_MAX) != UINT64_MAX) {
        log("<4>stream " + name + ": cannot query free space: " + free.status().to_string());
      }
      return;
    }
    disk_free_bytes.store(free.value(), std::memory_order_relaxed);
    bool full = free.value() < disk_reserve_effective;
    if (full == disk_full.load(std::memory_order_relaxed)) return;
    disk_full.store(full, std::memory_order_release);
    if (full && name == kAuditStream) {
      // `_audit` records pass a full disk (append()): nothing is refused here.
      log("<4>stream " + name + ": " + std::to_string(free.value()) + " bytes free under " + dir +
          ", below the reserve of " + std::to_string(disk_reserve_effective) +
          " bytes; its governance records are still written");
    } else if (full) {
      log("<3>stream " + name + ": disk full: " + std::to_string(free.value()) + " bytes free under " + dir +
          ", below the reserve of " + std::to_string(disk_reserve_effective) +
          " bytes; new records are refused (disk_full=refuse), sealed segments are untouched");
    } else {
      log("<5>stream " + name + ": " + std::to_string(free.value()) + " bytes free again under " + dir +
          "; accepting records");
    }
  }

  Status fail(const Status& st) {
    {
      std::lock_guard<std::mutex> lk(mu);
      if (failed.ok()) failed = st;
    }
    log("<2>stream " + name + " stopped: " + st.to_string());
    space_cv.notify_all();
    writer_cv.notify_all();
    {
      // wait_durable() checks `failed` under durable_mu: take it so the wake-up
      // cannot fall between a waiter's check and its wait.
      std::lock_guard<std::mutex> lk(durable_mu);
    }
    durable_cv.notify_all();
    return st;
  }

  // ---- writes ----

  Status submit(InFlight w, const uint8_t* data, size_t len) {
    w.tag = next_tag++;
    Status st = writer->start(*w.seg->file, w.seg->offset, data, len, w.tag);
    if (!st.ok()) return st;
    w.seg->offset += len;
    w.end_offset = w.seg->offset;
    bytes_written.fetch_add(len, std::memory_order_relaxed);
    in_flight.push_back(w);
    return ok_status();
  }

  // Reaps completions in order. block: wait up to timeout_us for at least one.
  // Every reported write leaves in_flight, also after a failed one: the
  // DurableWriter reports a failure together with every later write, and
  // dropping those reports would leave in_flight waiting for them forever
  // (wait_all() would spin).
  Status reap(bool block, int64_t timeout_us) {
    std::vector<io::DurableWriter::Done> done;
    Status ring = writer->reap(block, timeout_us, done);
    Status first;
    for (const auto& d : done) {
      LS_ASSERT(!in_flight.empty() && in_flight.front().tag == d.tag);
      InFlight w = in_flight.front();
      in_flight.pop_front();
      if (!first.ok()) continue;  // nothing after a failed write is durable
      if (!d.status.ok()) {
        first = d.status.with_context("write to " + w.seg->path);
        continue;
      }
      on_durable(w);
    }
    if (!first.ok()) return first;
    return ring;
  }

  Status wait_all() {
    while (!in_flight.empty()) LS_RETURN_IF_ERROR(reap(true, -1));
    return ok_status();
  }

  void on_durable(const InFlight& w) {
    if (w.kind == WriteKind::kBatch) {
      w.seg->batches_in_flight--;
      batches_in_flight--;
      free_buffers.push_back(w.batch);
      batches.fetch_add(1, std::memory_order_relaxed);
      durable_uncovered = true;
      if (w.seg == current.get()) {
        durable = DurablePoint{w.seg, w.end_offset, w.tree_size, w.root, w.chain};
      }
      {
        std::lock_guard<std::mutex> lk(durable_mu);
        self->durable_size_.store(w.tree_size, std::memory_order_release);
      }
      durable_cv.notify_all();
      // Copied under the lock (a listener may add one meanwhile); a handful, once per batch.
      std::vector<std::function<void(uint64_t)>> cbs;
      {
        std::lock_guard<std::mutex> lk(mu);
        cbs = durable_callbacks;
      }
      for (auto& cb : cbs) cb(w.tree_size);
      writer_cv.notify_all();  // a buffer is free: a waiting swap can go on
      if (w.seg->rolled && w.seg->batches_in_flight == 0 && !w.seg->seal_queued) queue_seal(w.seg);
    } else if (w.kind == WriteKind::kHeader) {
      if (w.seg == current.get() && durable.seg != current.get()) {
        durable = DurablePoint{w.seg, w.end_offset, w.tree_size, w.root, w.chain};
      }
    }
  }

  Status create_segment(uint64_t seq, const Hash32& prev_chain) {
    auto seg = std::make_unique<Segment>();
    seg->seq = seq;
    seg->first_index = frontier.size();
    seg->created_ns = unix_now_ns();
    seg->path = dir + "/" + segment_file_name(seq);
    LS_ASSIGN_OR_RETURN(seg->file, env->create_append(seg->path));
    SegmentHeader h;
    h.segment_seq = seq;
    h.first_index = seg->first_index;
    h.created_ns = seg->created_ns;
    h.stream = name;
    h.prev_chain = prev_chain;
    h.frontier = frontier.hashes();
    encode_header(h, small_buf->data());
    seg->chain = chain_start({small_buf->data(), kHeaderBytes});
    seg->tree_end = seg->first_index;
    current = std::move(seg);
    segment_seq_now.store(seq);
    InFlight w;
    w.kind = WriteKind::kHeader;
    w.seg = current.get();
    w.tree_size = frontier.size();
    w.root = frontier.root();
    w.chain = current->chain;
    LS_RETURN_IF_ERROR(submit(w, small_buf->data(), kHeaderBytes));
    // small_buf is reused by the next header or signed frame: wait now.
    return wait_all();
  }

  // Seals the open segment at its current end and opens the next one. Waits for
  // the open segment's writes first, so a crash never leaves a newer segment whose
  // header names bytes of the older one that did not reach the disk.
  Status roll() {
    LS_RETURN_IF_ERROR(wait_all());
    Segment* old = current.get();
    old->rolled = true;
    old->seal = Snapshot{CheckpointKind::kSeal, old->seq,   old->first_index, frontier.size(),
                         frontier.root(),       old->chain, old->offset};
    Hash32 prev_chain = old->chain;
    uint64_t seq = old->seq + 1;
    sealing.push_back(std::move(current));
    queue_seal(sealing.back().get());
    log("<6>stream " + name + " rolled segment " + std::to_string(old->seq) + " at " + std::to_string(old->offset) +
        " bytes");
    return create_segment(seq, prev_chain);
  }

  void queue_seal(Segment* seg) {
    seg->seal_queued = true;
    enqueue(seg->seal);
  }

  void enqueue(const Snapshot& snap) {
    Store::SignJob job;
    job.snapshot = snap;
    job.stream = name;
    job.heads = &heads;
    job.last_sign_us = &last_sign_us;
    job.sign_failures = &sign_failures;
    job.done = [this](Result<SignedBody> r) {
      if (!r.ok()) return;  // the signer only gives up on stop; records stay unsigned
      {
        std::lock_guard<std::mutex> lk(mu);
        signed_ready.push_back(std::move(r).value());
      }
      writer_cv.notify_all();
    };
    store->enqueue_sign(std::move(job));
  }

  void maybe_checkpoint(bool force) {
    if (checkpoint_outstanding || !durable_uncovered || durable.seg != current.get() || durable.seg == nullptr) return;
    if (!force && Clock::now() < next_checkpoint) return;
    checkpoint_outstanding = true;
    durable_uncovered = false;
    next_checkpoint = Clock::now() + std::chrono::milliseconds(opt.checkpoint_ms);
    enqueue(Snapshot{CheckpointKind::kCheckpoint, current->seq, current->first_index, durable.tree_size, durable.root,
                     durable.chain, durable.offset});
  }

  Segment* find_segment(uint64_t seq) {
    if (current && current->seq == seq) return current.get();
    for (auto& s : sealing) {
      if (s->seq == seq) return s.get();
    }
    return nullptr;
  }

  // Writes signed checkpoint and seal frames in the order the signer made them.
  Status write_signed() {
    while (true) {
      SignedBody sb;
      {
        std::lock_guard<std::mutex> lk(mu);
        if (signed_ready.empty()) return ok_status();
        sb = std::move(signed_ready.front());
        signed_ready.pop_front();
      }
      Segment* seg = find_segment(sb.snapshot.segment_seq);
      LS_ASSERT(seg != nullptr);
      bool is_seal = sb.snapshot.kind == CheckpointKind::kSeal;
      LS_RETURN_IF_ERROR(write_signed_frame(seg, sb));
      if (seg == current.get()) {
        durable.offset = seg->offset;
        durable.chain = seg->chain;
      }
      {
        std::lock_guard<std::mutex> lk(mu);
        latest.body = sb.body;
        latest.signature = sb.signature;
      }
      uint64_t prev = self->signed_size_.load();
      if (sb.snapshot.tree_size > prev) self->signed_size_.store(sb.snapshot.tree_size, std::memory_order_release);
      checkpoints.fetch_add(1, std::memory_order_relaxed);
      if (is_seal) {
        LS_RETURN_IF_ERROR(finish_seal(seg));
      } else {
        checkpoint_outstanding = false;
      }
    }
  }

  Status finish_seal(Segment* seg) {
    std::string path = seg->path;
    seg->file.reset();
    LS_RETURN_IF_ERROR(env->make_read_only(path));
    if (store->options_.immutable_segments) {
      LS_ASSIGN_OR_RETURN(bool immutable, env->make_immutable(path));
      (void)immutable;  // without CAP_LINUX_IMMUTABLE the file stays read-only only
    }
    LS_RETURN_IF_ERROR(env->sync_dir(dir));
    segments_sealed.fetch_add(1, std::memory_order_relaxed);
    auto it = std::find_if(sealing.begin(), sealing.end(), [&](auto& s) { return s.get() == seg; });
    LS_ASSERT(it != sealing.end());
    sealing.erase(it);
    log("<6>stream " + name + " sealed " + path);
    return ok_status();
  }

  // Builds the batch frame in b (records already at [64, used)), rolls if the
  // segment is full, and submits one aligned write.
  Status submit_batch(BatchBuf* b, size_t used, uint32_t records) {
    size_t span = align_up(used, kBlockBytes);
    bool has_records = current->tree_end > current->first_index;
    bool age_due = opt.segment_age_s > 0 &&
                   unix_now_ns() - current->created_ns >= static_cast<int64_t>(opt.segment_age_s) * 1000000000;
    if (has_records && (current->offset + span > opt.segment_bytes || age_due)) LS_RETURN_IF_ERROR(roll());
    uint8_t* f = b->buf->data();
    std::memset(f + used, 0, span - used);
    FrameHeader h;
    h.type = FrameType::kBatch;
    h.body_bytes = static_cast<uint32_t>(used - kFrameHeaderBytes);
    h.span_bytes = static_cast<uint32_t>(span);
    h.frame_seq = current->frame_seq++;
    h.record_count = records;
    h.first_index = frontier.size();
    seal_frame_header(h, f);
    LS_ASSERT(b->leaves.size() == records);
    for (const Hash32& leaf : b->leaves) frontier.append(leaf);
    tree_written = frontier.size();
    current->tree_end = tree_written;
    current->chain = chain_next(current->chain, {f, kFrameHeaderBytes});
    current->batches_in_flight++;
    batches_in_flight++;
    InFlight w;
    w.kind = WriteKind::kBatch;
    w.seg = current.get();
    w.batch = b;
    w.tree_size = tree_written;
    w.root = frontier.root();
    w.chain = current->chain;
    w.records = records;
    return submit(w, f, span);
  }

  // Writes one checkpoint or seal frame (one block) at the segment's end and
  // waits until it is durable.
  Status write_signed_frame(Segment* seg, const SignedBody& sb) {
    bool is_seal = sb.snapshot.kind == CheckpointKind::kSeal;
    uint8_t* f = small_buf->data();
    std::memset(f, 0, kBlockBytes);
    size_t body_bytes = encode_signed_frame(sb.body, sb.signature, f + kFrameHeaderBytes);
    FrameHeader h;
    h.type = is_seal ? FrameType::kSeal : FrameType::kCheckpoint;
    h.body_bytes = static_cast<uint32_t>(body_bytes);
    h.span_bytes = kBlockBytes;
    h.frame_seq = seg->frame_seq++;
    h.first_index = seg == current.get() ? frontier.size() : seg->tree_end;
    seal_frame_header(h, f);
    seg->chain = chain_next(seg->chain, {f, kBlockBytes});
    InFlight w;
    w.kind = WriteKind::kSigned;
    w.seg = seg;
    w.tree_size = h.first_index;
    w.chain = seg->chain;
    LS_RETURN_IF_ERROR(submit(w, f, kBlockBytes));
    return wait_all();
  }

  // Recovery: truncates seg's file at st.cut_offset (== seg->offset) and
  // appends a recovery frame that records what was cut and why.
  Status cut_torn_tail(Segment* seg, std::span<const uint8_t> file, const SegmentState& st) {
    LS_ASSERT(seg->offset == st.cut_offset && st.cut_offset < file.size());
    std::span<const uint8_t> cut = file.subspan(st.cut_offset);
    Recovery r;
    r.cut_offset = st.cut_offset;
    r.cut_bytes = cut.size();
    r.cut_sha256 = sha256(cut);
    r.recovered_ns = unix_now_ns();
    r.reason = st.cut_reason.substr(0, kRecoveryReasonBytesMax);
    LS_RETURN_IF_ERROR(seg->file->truncate(st.cut_offset));
    uint8_t* f = small_buf->data();
    std::memset(f, 0, kBlockBytes);
    size_t body = recovery_body_bytes(r);
    encode_recovery(r, f + kFrameHeaderBytes);
    FrameHeader h;
    h.type = FrameType::kRecovery;
    h.body_bytes = static_cast<uint32_t>(body);
    h.span_bytes = kBlockBytes;
    h.frame_seq = seg->frame_seq++;
    h.first_index = st.frontier.size();
    seal_frame_header(h, f);
    seg->chain = chain_next(seg->chain, {f, kBlockBytes});
    InFlight w;
    w.kind = WriteKind::kSigned;
    w.seg = seg;
    LS_RETURN_IF_ERROR(submit(w, f, kBlockBytes));
    LS_RETURN_IF_ERROR(wait_all());
    log("<4>stream " + name + ": cut a torn tail of " + std::to_string(r.cut_bytes) + " bytes at offset " +
        std::to_string(r.cut_offset) + " of " + seg->path + " (" + r.reason + ")");
    return ok_status();
  }

  // append()'s checks of one record before it is hashed: size limits and the
  // disk-full policy. Any thread, without mu.
  Status admit(const RecordView& record);

  // Signs on the signer thread and waits (recovery only: the writer is not running).
  Result<SignedBody> sign_now(const Snapshot& snap, HeadState* hs);
  Status recover();
  Status setup_buffers();

  bool drained() const {
    std::lock_guard<std::mutex> lk(mu);
    return staging_records == 0 && signed_ready.empty();
  }

  void writer_loop();
};

void Stream::Impl::writer_loop() {
  Clock::time_point close_deadline{};
  bool gave_up = false;
  while (true) {
    if (opt.disk_reserve_bytes != 0 && Clock::now() >= next_space_check) check_space();
    Status st = reap(false, 0);
    if (st.ok()) st = write_signed();
    if (!st.ok()) {
      (void)fail(st);
      break;
    }
    std::unique_lock<std::mutex> lk(mu);
    if (!failed.ok()) break;
    auto now = Clock::now();
    // Group commit sized by load: with no batch write in flight the disk is
    // idle, so the records staged go at once (a RELP or HTTP sender waits for
    // them); while a write is in flight the next batch grows until it is
    // full, batch_delay_us passes, or the write completes.
    bool due =
        staging_records > 0 && (batches_in_flight == 0 || staging_used >= opt.batch_bytes || closing ||
                                roll_requested || now - staging_first >= std::chrono::microseconds(opt.batch_delay_us));
    if (due && batches_in_flight < opt.writes_in_flight_max && !free_buffers.empty()) {
      BatchBuf* b = staging;
      size_t used = staging_used;
      uint32_t records = staging_records;
      staging = free_buffers.back();
      free_buffers.pop_back();
      staging->leaves.clear();
      staging_used = kFrameHeaderBytes;
      staging_records = 0;
      lk.unlock();
      space_cv.notify_all();
      // Before every batch: the records staged meanwhile were accepted against
      // the last check, and each batch may use up part of the reserve.
      check_space();
      st = submit_batch(b, used, records);
      if (!st.ok()) {
        (void)fail(st);
        break;
      }
      continue;
    }
    bool roll_now = roll_requested && staging_records == 0;
    if (roll_now) roll_requested = false;
    bool is_closing = closing;
    uint32_t staged = staging_records;
    lk.unlock();
    if (roll_now && current->tree_end > current->first_index) {
      st = roll();
      if (!st.ok()) {
        (void)fail(st);
        break;
      }
    }
    maybe_checkpoint(is_closing);
    if (is_closing && staged == 0 && in_flight.empty()) {
      if (!checkpoint_outstanding && sealing.empty() && !durable_uncovered && drained()) break;
      if (close_deadline == Clock::time_point{}) {
        close_deadline = Clock::now() + std::chrono::milliseconds(store->options_.close_sign_timeout_ms);
      } else if (Clock::now() > close_deadline) {
        gave_up = true;
        break;
      }
    }
    // Wait for work: a completion when writes are in flight, else a producer,
    // the signer, or the batch delay / checkpoint timers.
    int64_t timeout_us = 50000;
    if (!in_flight.empty()) {
      // Producers cannot wake a wait on the ring: when a batch could start now
      // (records staged and a write slot free), poll briefly so a batch that fills
      // meanwhile goes out within ~100 us instead of after the next completion.
      bool could_start = staged > 0 && batches_in_flight < opt.writes_in_flight_max && !free_buffers.empty();
      st = reap(true, could_start ? 100 : 1000);
      if (!st.ok()) {
        (void)fail(st);
        break;
      }
      continue;
    }
    lk.lock();
    if (staging_records > 0) {
      auto left = staging_first + std::chrono::microseconds(opt.batch_delay_us) - Clock::now();
      timeout_us = std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(left).count());
    }
    if (durable_uncovered && !checkpoint_outstanding) {
      auto left = next_checkpoint - Clock::now();
      timeout_us = std::min<int64_t>(
          timeout_us, std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(left).count()));
    }
    // Nothing is in flight here, so staged records are due at once (see `due`).
    if (timeout_us > 0 && signed_ready.empty() && staging_records == 0) {
      writer_cv.wait_for(lk, std::chrono::microseconds(timeout_us));
    }
  }
  if (gave_up) {
    uint64_t unsigned_records = durable.tree_size - self->signed_size();
    log("<3>stream " + name + ": the signer did not answer within the close timeout; " +
        std::to_string(unsigned_records) +
        " records are not yet covered by a signature (they are signed at the next start)");
    std::lock_guard<std::mutex> lk(mu);
    if (failed.ok()) failed = unavailable("signer did not cover the last records before close");
  }
  // Let outstanding writes finish before buffers go away.
  (void)wait_all();
  {
    std::lock_guard<std::mutex> lk(mu);
    closing = true;
    writer_done = true;
  }
  space_cv.notify_all();
  {
    // Under durable_mu, so a waiter between its predicate and its wait cannot
    // miss this wake-up.
    std::lock_guard<std::mutex> lk(durable_mu);
  }
  durable_cv.notify_all();
}

// ---------------------------------------------------------------------------
// Opening a stream: set-up and recovery
// ---------------------------------------------------------------------------

Status Stream::Impl::setup_buffers() {
  buffer_bytes = align_up(opt.batch_bytes + opt.record_bytes_max + 4 + kFrameHeaderBytes + kBlockBytes, kBlockBytes);
  size_t leaves_max = buffer_bytes / (4 + kRecFixedBytes) + 1;
  buffers.resize(opt.writes_in_flight_max + 1);
  for (auto& b : buffers) {
    b.buf = std::make_unique<io::AlignedBuffer>(buffer_bytes);
    b.leaves.reserve(leaves_max);
    free_buffers.push_back(&b);
  }
  staging = free_buffers.back();
  free_buffers.pop_back();
  small_buf = std::make_unique<io::AlignedBuffer>(kBlockBytes);
  LS_ASSIGN_OR_RETURN(ring, env->make_ring(opt.writes_in_flight_max * 2 + 8));
  writer = std::make_unique<io::DurableWriter>(*ring, opt.writes_in_flight_max + 2);
  return ok_status();
}

Result<SignedBody> Stream::Impl::sign_now(const Snapshot& snap, HeadState* hs) {
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  Result<SignedBody> out = unavailable("not signed");
  Store::SignJob job;
  job.snapshot = snap;
  job.stream = name;
  job.heads = hs;
  job.done = [&](Result<SignedBody> r) {
    std::lock_guard<std::mutex> lk(m);
    out = std::move(r);
    done = true;
    cv.notify_all();
  };
  store->enqueue_sign(std::move(job));
  std::unique_lock<std::mutex> lk(m);
  cv.wait(lk, [&] { return done; });
  return out;
}

// Recovery decision table (each row has a test in tests/recovery_test.cc):
//
// | last segment on disk                         | action                                   |
// |----------------------------------------------|------------------------------------------|
// | none                                         | create segment 0                         |
// | header torn, file <= one block               | remove it (a crash while rolling), retry |
// | header bad, file larger                      | refuse: DataLoss, run verify             |
// | sealed, nothing after the seal               | create the next segment                  |
// | bytes after the seal                         | refuse: DataLoss, run verify             |
// | open, previous segment sealed (or none)      | cut a torn tail, write a recovery frame  |
// | open, previous segment open (crash in roll)  | seal the previous one, then as above     |
Status Stream::Impl::recover() {
  LS_RETURN_IF_ERROR(env->make_dirs(dir));
  LS_RETURN_IF_ERROR(env->sync_dir(store->data_dir()));
  LS_RETURN_IF_ERROR(setup_buffers());
  LS_ASSIGN_OR_RETURN(std::vector<std::string> names, env->list_dir(dir));
  std::vector<uint64_t> seqs;
  for (auto& n : names) {
    if (auto seq = parse_segment_file_name(n)) seqs.push_back(*seq);
  }
  std::sort(seqs.begin(), seqs.end());

  auto path_of = [&](uint64_t seq) { return dir + "/" + segment_file_name(seq); };
  std::optional<SegmentState> state;
  std::vector<uint8_t> bytes;
  while (!seqs.empty()) {
    LS_ASSIGN_OR_RETURN(bytes, env->read_file(path_of(seqs.back())));
    auto st = read_segment_state(bytes);
    if (st.ok()) {
      state = std::move(st).value();
      break;
    }
    if (bytes.size() > kHeaderBytes) {
      return st.status().with_context("segment " + path_of(seqs.back()) +
                                      " cannot be recovered; run `logseal verify` on the data directory");
    }
    log("<4>stream " + name + ": removing " + path_of(seqs.back()) + " whose header never reached the disk (" +
        st.status().message() + ")");
    LS_RETURN_IF_ERROR(env->remove(path_of(seqs.back())));
    LS_RETURN_IF_ERROR(env->sync_dir(dir));
    seqs.pop_back();
  }

  if (!state) {  // a new stream
    LS_RETURN_IF_ERROR(create_segment(0, Hash32{}));
    durable_uncovered = false;
    return ok_status();
  }

  uint64_t seq = state->header.segment_seq;
  if (seq != seqs.back()) {
    return data_loss("segment file " + path_of(seqs.back()) + " holds segment " + std::to_string(seq) +
                     "; run `logseal verify`");
  }

  // The head chain continues from the last signed body on disk.
  auto heads_before = [&](uint64_t s) -> Result<HeadState> {
    while (s > 0) {
      --s;
      if (!std::binary_search(seqs.begin(), seqs.end(), s)) break;
      LS_ASSIGN_OR_RETURN(std::vector<uint8_t> b, env->read_file(path_of(s)));
      LS_ASSIGN_OR_RETURN(SegmentState ps, read_segment_state(b));
      if (ps.last_head) return HeadState{*ps.last_head, ps.last_head_seq + 1};
    }
    return HeadState{};
  };

  if (state->sealed) {
    if (state->cut_offset != state->file_bytes) {
      return data_loss("segment " + path_of(seq) + " has bytes after its seal; run `logseal verify`");
    }
    (void)env->make_read_only(path_of(seq));
    (void)env->make_immutable(path_of(seq));
    frontier = state->frontier;
    heads = HeadState{*state->last_head, state->last_head_seq + 1};
    self->durable_size_.store(frontier.size());
    self->signed_size_.store(frontier.size());
    next_index = frontier.size();
    latest.body = state->last_signed_body;
    latest.signature = state->last_signed_signature;
    LS_RETURN_IF_ERROR(create_segment(seq + 1, state->seal->frame_chain));
    durable_uncovered = false;
    return ok_status();
  }

  // An open segment. First: were segments before it left unsealed by a crash in
  // a roll? Rolls do not wait for seals, so several may be: every segment from
  // the oldest unsealed one on. They are sealed oldest first, so the head chain
  // runs through them in order.
  std::vector<uint64_t> unsealed;  // newest first
  for (uint64_t k = seq; k > 0 && std::binary_search(seqs.begin(), seqs.end(), k - 1); --k) {
    LS_ASSIGN_OR_RETURN(std::vector<uint8_t> pb, env->read_file(path_of(k - 1)));
    LS_ASSIGN_OR_RETURN(SegmentState prev, read_segment_state(pb));
    if (prev.sealed) {
      // A crash between writing this seal and making the file read-only leaves
      // it writable: finish that now (both calls are idempotent).
      (void)env->make_read_only(path_of(k - 1));
      if (store->options_.immutable_segments) (void)env->make_immutable(path_of(k - 1));
      break;
    }
    unsealed.push_back(k - 1);
  }
  std::optional<HeadState> running;  // the head chain after the last seal written here
  for (auto it = unsealed.rbegin(); it != unsealed.rend(); ++it) {
    uint64_t k = *it;
    LS_ASSIGN_OR_RETURN(std::vector<uint8_t> pb, env->read_file(path_of(k)));
    LS_ASSIGN_OR_RETURN(SegmentState prev, read_segment_state(pb));
    SegmentHeader next_header;
    if (k + 1 == seq) {
      next_header = state->header;
    } else {
      LS_ASSIGN_OR_RETURN(std::vector<uint8_t> nb, env->read_file(path_of(k + 1)));
      LS_ASSIGN_OR_RETURN(next_header, decode_header(nb));
    }
    // The next segment's header names the roll point: the chain there and the
    // tree size. After it this segment may hold checkpoint frames (signed before
    // its seal, written after the roll) and a torn tail (the seal's write);
    // never a batch, since roll() waits for every write first.
    const SegmentState::Boundary* roll_point = nullptr;
    for (const auto& b : prev.since_last_batch) {
      if (b.chain == next_header.prev_chain) roll_point = &b;
    }
    auto next_start = merkle::MerkleFrontier::from(next_header.first_index, next_header.frontier);
    if (roll_point == nullptr || prev.frontier.size() != next_header.first_index || !next_start.ok() ||
        next_start->root() != prev.frontier.root()) {
      return data_loss("segment " + path_of(k) + " is unsealed and does not end where segment " +
                       std::to_string(k + 1) + " begins; run `logseal verify`");
    }
    HeadState hs;
    if (prev.last_head) {
      hs = HeadState{*prev.last_head, prev.last_head_seq + 1};
    } else if (running) {
      hs = *running;
    } else {
      LS_ASSIGN_OR_RETURN(hs, heads_before(k));
    }
    // The seal covers the segment up to the roll point, so it links to the
    // next header exactly as a seal written by roll() does.
    Snapshot snap{CheckpointKind::kSeal,   k,
                  prev.header.first_index, prev.frontier.size(),
                  prev.frontier.root(),    roll_point->chain,
                  roll_point->offset};
    LS_ASSIGN_OR_RETURN(SignedBody sb, sign_now(snap, &hs));
    Segment ps;
    ps.seq = k;
    ps.path = path_of(k);
    LS_ASSIGN_OR_RETURN(ps.file, env->open_append(ps.path));
    ps.offset = prev.cut_offset;
    ps.frame_seq = prev.frame_seq;
    ps.chain = prev.chain;
    ps.tree_end = prev.frontier.size();
    ps.first_index = prev.header.first_index;
    if (prev.cut_offset < prev.file_bytes) LS_RETURN_IF_ERROR(cut_torn_tail(&ps, pb, prev));
    LS_RETURN_IF_ERROR(write_signed_frame(&ps, sb));
    ps.file.reset();
    LS_RETURN_IF_ERROR(env->make_read_only(ps.path));
    (void)env->make_immutable(ps.path);
    LS_RETURN_IF_ERROR(env->sync_dir(dir));
    log("<4>stream " + name + ": sealed segment " + std::to_string(k) + " left open by a crash");
    running = hs;
    if (!state->last_head) {
      state->last_signed_body = sb.body;
      state->last_signed_signature = sb.signature;
      heads = hs;
      self->signed_size_.store(prev.frontier.size());
    }
  }

  auto seg = std::make_unique<Segment>();
  seg->seq = seq;
  seg->first_index = state->header.first_index;
  seg->created_ns = state->header.created_ns;
  seg->path = path_of(seq);
  LS_ASSIGN_OR_RETURN(seg->file, env->open_append(seg->path));
  seg->offset = state->cut_offset;
  seg->frame_seq = state->frame_seq;
  seg->chain = state->chain;
  frontier = state->frontier;
  seg->tree_end = frontier.size();
  current = std::move(seg);
  segment_seq_now.store(seq);
  next_index = frontier.size();
  self->durable_size_.store(frontier.size());
  if (state->last_head) {
    heads = HeadState{*state->last_head, state->last_head_seq + 1};
    self->signed_size_.store(state->last_signed_tree_size);
  } else if (heads.head_seq == 0 && seq > 0) {
    LS_ASSIGN_OR_RETURN(heads, heads_before(seq));
    self->signed_size_.store(state->header.first_index);
  }
  latest.body = state->last_signed_body;
  latest.signature = state->last_signed_signature;

  if (state->cut_offset < state->file_bytes) {
    LS_RETURN_IF_ERROR(cut_torn_tail(current.get(), bytes, *state));
  }
  durable = DurablePoint{current.get(), current->offset, frontier.size(), frontier.root(), current->chain};
  durable_uncovered = self->signed_size() < frontier.size() || state->cut_offset < state->file_bytes;
  return ok_status();
}

Result<Stream*> Store::stream(const std::string& name) {
  if (!valid_stream_name(name)) {
    return invalid_argument("stream name '" + name +
                            "' is not valid (1-63 of A-Z a-z 0-9 _ - ., not starting with . or -)");
  }
  std::lock_guard<std::mutex> lk(mu_);
  if (closed_) return failed_precondition("store is closed");
  auto it = streams_.find(name);
  if (it != streams_.end()) return it->second.get();
  auto impl = std::make_unique<Stream::Impl>();
  impl->store = this;
  impl->env = &env_;
  impl->opt = options_.stream;
  impl->name = name;
  impl->dir = data_dir_ + "/" + name;
  std::unique_ptr<Stream> s(new Stream(name, std::move(impl)));
  Stream::Impl* si = s->impl_.get();
  LS_RETURN_IF_ERROR(si->recover().with_context("open stream " + name));
  si->next_checkpoint = Clock::now();
  if (si->opt.disk_reserve_bytes != 0) {
    // What the stream may still write after it starts refusing: every staging
    // buffer, a seal and the next segment's header, and a few checkpoints.
    uint64_t committed = static_cast<uint64_t>(si->buffers.size()) * si->buffer_bytes + 8 * kBlockBytes;
    si->disk_reserve_effective = std::max<uint64_t>(si->opt.disk_reserve_bytes, committed);
    si->check_space();
  }
  si->thread = std::thread([si] { si->writer_loop(); });
  Stream* out = s.get();
  streams_[name] = std::move(s);
  return out;
}

// ---------------------------------------------------------------------------
// Stream
// ---------------------------------------------------------------------------

Stream::Stream(std::string name, std::unique_ptr<Impl> impl) : name_(std::move(name)), impl_(std::move(impl)) {
  impl_->self = this;
}

Stream::~Stream() {
  if (impl_ && impl_->thread.joinable()) {
    {
      std::lock_guard<std::mutex> lk(impl_->mu);
      impl_->closing = true;
    }
    impl_->writer_cv.notify_all();
    impl_->thread.join();
  }
}

Result<uint64_t> Stream::append(const RecordView& record, bool block) {
  uint64_t index = 0;
  size_t appended = 0;
  LS_RETURN_IF_ERROR(append_batch({&record, 1}, {&index, 1}, appended, block));
  LS_ASSERT(appended == 1);
  return index;
}

Status Stream::Impl::admit(const RecordView& record) {
  size_t n = encoded_record_bytes(record);
  if (n - 4 > opt.record_bytes_max) {
    return invalid_argument("record of " + std::to_string(n - 4) + " bytes is over the limit of " +
                            std::to_string(opt.record_bytes_max));
  }
  if (record.source.size() > UINT16_MAX) return invalid_argument("record source is over 65535 bytes");
  // Governance records pass a full disk: they are few and small, and a prune
  // must be able to seal its statement (and its `_audit` entry) to make room.
  if (record.kind == RecordKind::kLog && name != kAuditStream && disk_full.load(std::memory_order_acquire)) {
    disk_full_refused.fetch_add(1, std::memory_order_relaxed);
    return resource_exhausted("stream " + name + ": disk full (" +
                              std::to_string(disk_free_bytes.load(std::memory_order_relaxed)) +
                              " bytes free, reserve " + std::to_string(disk_reserve_effective) +
                              "); new records are refused by the disk_full=refuse policy");
  }
  return ok_status();
}

Status Stream::append_batch(std::span<const RecordView> records, std::span<uint64_t> indexes, size_t& appended,
                            bool block) {
  Impl& s = *impl_;
  LS_ASSERT(indexes.empty() || indexes.size() >= records.size());
  appended = 0;
  // Outside the lock: the checks and the leaf hashes (the costly part). The
  // vector keeps its capacity per thread: no allocation per call once warm.
  thread_local std::vector<Hash32> leaves;
  leaves.clear();
  size_t admitted = records.size();
  Status refused;
  for (size_t i = 0; i < records.size(); ++i) {
    refused = s.admit(records[i]);
    if (!refused.ok()) {
      admitted = i;
      break;
    }
  }
  if (admitted == 0) return refused;
  record_leaves(records.first(admitted), leaves);
  bool wake_writer = false;
  Status st = refused;
  {
    std::unique_lock<std::mutex> lk(s.mu);
    size_t i = 0;
    while (i < admitted) {
      if (!s.failed.ok()) {
        st = failed_precondition("stream " + s.name + " has stopped: " + s.failed.message());
        break;
      }
      if (s.closing) {
        st = failed_precondition("stream " + s.name + " is closing");
        break;
      }
      const RecordView& r = records[i];
      size_t n = encoded_record_bytes(r);
      if (s.staging_used + n > s.buffer_bytes - kBlockBytes) {
        if (!block) {
          st = resource_exhausted("stream " + s.name + " queue is full");
          break;
        }
        s.writer_cv.notify_one();
        wake_writer = false;
        s.space_cv.wait(lk);
        continue;
      }
      encode_record(r, s.staging->buf->data() + s.staging_used);
      s.staging->leaves.push_back(leaves[i]);
      if (s.staging_records == 0) {
        s.staging_first = Clock::now();
        wake_writer = true;
      }
      s.staging_used += n;
      s.staging_records++;
      s.records_appended++;
      if (s.staging_used >= s.opt.batch_bytes) wake_writer = true;
      if (!indexes.empty()) indexes[i] = s.next_index;
      s.next_index++;
      appended = ++i;
    }
  }
  if (wake_writer) s.writer_cv.notify_one();
  return st;
}

bool Stream::wait_durable(uint64_t index, std::chrono::milliseconds timeout) {
  Impl& s = *impl_;
  std::unique_lock<std::mutex> lk(s.durable_mu);
  return s.durable_cv.wait_for(lk, timeout, [&] {
    if (durable_size_.load(std::memory_order_acquire) > index) return true;
    std::lock_guard<std::mutex> g(s.mu);
    // Not s.thread.joinable(): close() may be joining the thread right now, and
    // the thread object is not safe to read then (nor does its joinable() turn
    // false before the join returns, which left waiters asleep until timeout).
    return !s.failed.ok() || s.writer_done;
  }) && durable_size_.load(std::memory_order_acquire) > index;
}

void Stream::add_durable_callback(std::function<void(uint64_t)> fn) {
  std::lock_guard<std::mutex> lk(impl_->mu);
  impl_->durable_callbacks.push_back(std::move(fn));
}

void Stream::request_roll() {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->roll_requested = true;
  }
  impl_->writer_cv.notify_all();
}

Status Stream::health() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->failed;
}

StreamStats Stream::stats() const {
  const Impl& s = *impl_;
  StreamStats st;
  {
    std::lock_guard<std::mutex> lk(s.mu);
    st.records = s.records_appended;
    st.next_index = s.next_index;
    st.queue_bytes = s.staging_used - kFrameHeaderBytes;
  }
  st.durable_records = durable_size();
  st.signed_records = signed_size();
  st.bytes_written = s.bytes_written.load();
  st.batches = s.batches.load();
  st.segments_sealed = s.segments_sealed.load();
  st.checkpoints = s.checkpoints.load();
  st.segment_seq = s.segment_seq_now.load();
  st.sign_failures = s.sign_failures.load();
  st.last_sign_ms = static_cast<double>(s.last_sign_us.load()) / 1000.0;
  st.disk_full = s.disk_full.load();
  st.disk_full_refused = s.disk_full_refused.load();
  st.disk_free_bytes = s.opt.disk_reserve_bytes != 0 ? s.disk_free_bytes.load() : 0;
  st.disk_reserve_bytes = s.disk_reserve_effective;
  return st;
}

Stream::SignedCopy Stream::latest_signed() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->latest;
}

// ---------------------------------------------------------------------------
// Store
// ---------------------------------------------------------------------------

Store::Store(io::Env& env, std::string data_dir, std::shared_ptr<hsm::Signer> signer, StoreOptions options)
    : env_(env), data_dir_(std::move(data_dir)), options_(std::move(options)) {
  auto w = std::make_unique<SignerWorker>();
  w->signer = std::move(signer);
  w->store_default = true;
  signers_.push_back(std::move(w));
}

Result<std::unique_ptr<Store>> Store::open(io::Env& env, const std::string& data_dir,
                                           std::shared_ptr<hsm::Signer> signer, StoreOptions options) {
  LS_ASSERT(signer != nullptr);
  if (options.stream.batch_bytes < kBlockBytes || options.stream.writes_in_flight_max == 0 ||
      options.stream.segment_bytes < 2 * kBlockBytes || options.stream.checkpoint_ms == 0) {
    return invalid_argument(
        "store options out of range (batch_bytes >= 4096, segment_bytes >= 8192, checkpoint_ms >= 1)");
  }
  LS_RETURN_IF_ERROR(env.make_dirs(data_dir).with_context("data directory " + data_dir));
  LS_RETURN_IF_ERROR(env.probe_direct(data_dir));
  std::unique_ptr<Store> store(new Store(env, data_dir, std::move(signer), std::move(options)));
  store->start_worker(*store->signers_.front());
  return store;
}

Store::~Store() { (void)close(); }

void Store::start_worker(SignerWorker& w) {
  w.thread = std::thread([this, &w] { signer_loop(w); });
}

Status Store::set_stream_signer(const std::string& name, std::shared_ptr<hsm::Signer> signer) {
  LS_ASSERT(signer != nullptr);
  if (!valid_stream_name(name)) return invalid_argument("stream name '" + name + "' is not valid");
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (closed_) return failed_precondition("store is closed");
    if (streams_.count(name) != 0) {
      return failed_precondition("stream " + name + " is open already; its signer is set before it opens");
    }
  }
  std::lock_guard<std::mutex> lk(signers_mu_);
  if (stream_signers_.count(name) != 0) return failed_precondition("stream " + name + " has a signer already");
  SignerWorker* w = nullptr;
  for (auto& x : signers_) {
    if (x->signer == signer) w = x.get();
  }
  if (w == nullptr) {
    auto nw = std::make_unique<SignerWorker>();
    nw->signer = std::move(signer);
    w = nw.get();
    signers_.push_back(std::move(nw));
    start_worker(*w);
  }
  w->streams.push_back(name);
  stream_signers_[name] = w;
  return ok_status();
}

Store::SignerWorker& Store::worker_for(const std::string& stream) const {
  std::lock_guard<std::mutex> lk(signers_mu_);
  auto it = stream_signers_.find(stream);
  return it != stream_signers_.end() ? *it->second : *signers_.front();
}

hsm::Signer& Store::signer() { return *signers_.front()->signer; }

hsm::Signer& Store::signer_for(const std::string& stream) { return *worker_for(stream).signer; }

std::string Store::SignerState::describe() const {
  std::string s = std::string(store_default ? "store signer " : "signer ") + hsm::signer_kind_name(kind) + " key " +
                  to_hex(key_id).substr(0, 16);
  if (!streams.empty()) {
    s += streams.size() == 1 ? " of stream " : " of streams ";
    for (size_t i = 0; i < streams.size(); ++i) s += (i ? "," : "") + streams[i];
  }
  return s;
}

std::vector<Store::SignerState> Store::signers() const {
  std::vector<SignerState> out;
  std::lock_guard<std::mutex> lk(signers_mu_);
  for (const auto& w : signers_) {
    SignerState st;
    st.store_default = w->store_default;
    st.streams = w->streams;
    st.kind = w->signer->kind();
    st.key_id = w->signer->key_id();
    {
      std::lock_guard<std::mutex> wl(w->mu);
      st.status = w->status;
    }
    out.push_back(std::move(st));
  }
  return out;
}

void Store::log(const std::string& line) const {
  if (options_.log) {
    options_.log(line);
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

Result<std::vector<std::string>> Store::list_streams() {
  LS_ASSIGN_OR_RETURN(std::vector<std::string> names, env_.list_dir(data_dir_));
  std::vector<std::string> out;
  for (auto& n : names) {
    if (valid_stream_name(n) && env_.is_dir(data_dir_ + "/" + n)) out.push_back(n);
  }
  return out;
}

std::vector<Stream*> Store::open_streams() {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<Stream*> out;
  for (auto& [name, s] : streams_) out.push_back(s.get());
  return out;
}

Status Store::signer_status() const {
  // With one signer its error reads as before; with several it names the signer.
  std::vector<SignerState> all = signers();
  for (const SignerState& s : all) {
    if (s.status.ok()) continue;
    return all.size() == 1 ? s.status : s.status.with_context(s.describe());
  }
  return ok_status();
}

void Store::enqueue_sign(SignJob job) {
  SignerWorker& w = worker_for(job.stream);
  {
    std::lock_guard<std::mutex> lk(w.mu);
    w.queue.push_back(std::make_unique<SignJob>(std::move(job)));
  }
  w.cv.notify_all();
}

void Store::signer_loop(SignerWorker& w) {
  hsm::Signer* signer = w.signer.get();
  unsigned failures = 0;
  std::string last_failure;
  Clock::time_point last_failure_log{};
  while (true) {
    SignJob* job = nullptr;
    {
      std::unique_lock<std::mutex> lk(w.mu);
      w.cv.wait(lk, [&] { return w.stop || !w.queue.empty(); });
      if (w.stop) break;
      job = w.queue.front().get();
    }
    auto t0 = Clock::now();
    Status st;
    SignedBody sb;
    auto ev = signer->evidence();
    if (!ev.ok()) st = ev.status();
    if (st.ok()) {
      CheckpointBody b;
      b.kind = job->snapshot.kind;
      b.signer_kind = signer->kind();
      b.stream = job->stream;
      b.segment_seq = job->snapshot.segment_seq;
      b.segment_first = job->snapshot.segment_first;
      b.tree_size = job->snapshot.tree_size;
      b.root = job->snapshot.root;
      b.prev_head = job->heads->prev_head;
      b.frame_chain = job->snapshot.frame_chain;
      b.covered_offset = job->snapshot.covered_offset;
      b.time_ns = unix_now_ns();
      b.key_id = signer->key_id();
      b.evidence = ev.value();
      b.head_seq = job->heads->head_seq;
      sb.snapshot = job->snapshot;
      sb.body.resize(kCheckpointBodyBytes);
      encode_checkpoint_body(b, sb.body.data());
      Hash32 head = head_of(sb.body);
      auto sig = signer->sign_digest(head);
      if (!sig.ok()) {
        st = sig.status();
      } else {
        sb.signature = std::move(sig).value();
        job->heads->prev_head = head;
        job->heads->head_seq++;
      }
    }
    if (!st.ok()) {
      failures++;
      if (job->sign_failures != nullptr) job->sign_failures->fetch_add(1, std::memory_order_relaxed);
      // A TPM that is gone stays gone for a while: say so at once, then only
      // when the reason changes or once a minute, not at every retry.
      std::string why = st.to_string();
      if (why != last_failure || Clock::now() - last_failure_log > std::chrono::seconds(60)) {
        log(std::string("<3>signer ") + hsm::signer_kind_name(signer->kind()) + " key " +
            to_hex(signer->key_id()).substr(0, 16) + " failed for stream " + job->stream + " (attempt " +
            std::to_string(failures) + "): " + why +
            "; ingest continues, the records are signed when the signer is back");
        last_failure = why;
        last_failure_log = Clock::now();
      }
      std::unique_lock<std::mutex> lk(w.mu);
      w.status = st;
      w.cv.wait_for(lk, std::chrono::milliseconds(std::min(1000u, 50u * failures)), [&] { return w.stop; });
      continue;
    }
    if (failures > 0) {
      {
        std::lock_guard<std::mutex> lk(w.mu);
        w.status = ok_status();
      }
      log("<5>signer is back for stream " + job->stream + " after " + std::to_string(failures) + " failed attempts");
      last_failure.clear();
    }
    failures = 0;
    if (job->last_sign_us != nullptr) {
      job->last_sign_us->store(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count(),
                               std::memory_order_relaxed);
    }
    std::unique_ptr<SignJob> owned;
    {
      std::lock_guard<std::mutex> lk(w.mu);
      owned = std::move(w.queue.front());
      w.queue.pop_front();
    }
    owned->done(std::move(sb));
  }
  // Stopping: the jobs left are abandoned (their records are signed at the next start).
  std::deque<std::unique_ptr<SignJob>> left;
  {
    std::lock_guard<std::mutex> lk(w.mu);
    left.swap(w.queue);
  }
  for (auto& j : left) j->done(unavailable("store is closing"));
}

Status Store::close() {
  std::map<std::string, std::unique_ptr<Stream>> streams;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (closed_) return ok_status();
    closed_ = true;
    streams.swap(streams_);
  }
  for (auto& [name, s] : streams) {
    {
      std::lock_guard<std::mutex> lk(s->impl_->mu);
      s->impl_->closing = true;
    }
    s->impl_->writer_cv.notify_all();
  }
  Status first;
  for (auto& [name, s] : streams) {
    if (s->impl_->thread.joinable()) s->impl_->thread.join();
    Status st = s->health();
    if (!st.ok() && first.ok()) first = st.with_context("stream " + name);
  }
  std::vector<SignerWorker*> workers;
  {
    std::lock_guard<std::mutex> lk(signers_mu_);
    for (auto& w : signers_) workers.push_back(w.get());
  }
  for (SignerWorker* w : workers) {
    {
      std::lock_guard<std::mutex> lk(w->mu);
      w->stop = true;
    }
    w->cv.notify_all();
  }
  for (SignerWorker* w : workers) {
    if (w->thread.joinable()) w->thread.join();
  }
  {
    // The Streams live on until the Store is destroyed: a caller may still be
    // inside wait_durable() or append() on another thread (they return false or
    // FailedPrecondition now); destroying the Streams here would pull them from
    // under it. stream() refuses to hand them out again (closed_).
    std::lock_guard<std::mutex> lk(mu_);
    streams_ = std::move(streams);
  }
  return first;
}

}  // namespace logseal::engine
