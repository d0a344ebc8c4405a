// Retention, legal hold, pruning and the disk-full policy (engine/retention.h,
// docs/FORMAT.md section 5.4), on the real engine over FakeEnv: a prune seals a
// signed record and verify accepts the shortened chain and reports it; removing
// segments any other way, or forging the record, is a finding; a held stream and
// records inside the minimum are never pruned; a full disk refuses new records
// and harms nothing sealed.
#include "engine/retention.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "engine/merkle.h"
#include "engine/reader.h"
#include "engine/store.h"
#include "engine/verify.h"
#include "io/fake_env.h"
#include "tests/test_util.h"

namespace logseal::engine {
namespace {

using namespace logseal::test;

constexpr const char* kDir = "/data";
constexpr const char* kStreamDir = "/data/app";
constexpr int64_t kDay = kNsPerDay;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

uint64_t seq_of(const std::string& path) {
  auto slash = path.rfind('/');
  return *format::parse_segment_file_name(path.substr(slash + 1));
}

bool has_note(const VerifyReport& r, const std::string& needle) {
  for (auto& s : r.streams) {
    for (auto& n : s.notes) {
      if (n.find(needle) != std::string::npos) return true;
    }
  }
  return false;
}

class RetentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = std::make_unique<TempDir>("retention_test");
    key_ = std::make_unique<TestKey>(make_soft_key(tmp_->sub("key")));
    env_ = std::make_unique<io::FakeEnv>(7);
    Status st = ingest(*env_, kDir, key_->signer(), small_options(), "app", make_raws(0, 200), nullptr, 20);
    ASSERT_TRUE(st.ok()) << st.to_string();
    segs_ = segment_paths(*env_, kStreamDir);
    ASSERT_GE(segs_.size(), 4u) << "several sealed segments are needed";
  }

  std::unique_ptr<Store> open_store(StoreOptions o = small_options()) {
    auto s = Store::open(*env_, kDir, key_->signer(), std::move(o));
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  PruneRequest by_max_age(uint32_t max_days, int64_t now) {
    PruneRequest r;
    r.policy.max_days = max_days;
    r.trigger = PruneTrigger::kMaxAge;
    r.now_ns = now;
    r.note = "test";
    return r;
  }

  Result<PruneResult> prune(const PruneRequest& req) {
    auto store = open_store();
    if (!store) return internal_error("no store");
    auto r = prune_stream(*store, "app", req);
    Status closed = store->close();
    if (r.ok() && !closed.ok()) return closed;
    return r;
  }

  std::unique_ptr<TempDir> tmp_;
  std::unique_ptr<TestKey> key_;
  std::unique_ptr<io::FakeEnv> env_;
  std::vector<std::string> segs_;
};

TEST_F(RetentionTest, PruneThenVerifyPassesAndReportsThePrune) {
  auto r = prune(by_max_age(30, now_ns() + 31 * kDay));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_TRUE(r->pruned) << r->why;
  // Every sealed segment went; the open one (the last) stays.
  EXPECT_EQ(r->statement.first_seq, 0u);
  EXPECT_EQ(r->statement.last_seq, seq_of(segs_.back()) - 1);
  EXPECT_EQ(r->paths.size(), segs_.size() - 1);
  for (auto& p : r->paths) EXPECT_FALSE(env_->exists(p)) << p;
  EXPECT_TRUE(env_->exists(segs_.back()));

  VerifyReport rep = verify_report(*env_, kDir, *key_);
  EXPECT_TRUE(rep.ok()) << describe(rep);
  EXPECT_TRUE(has_note(rep, "pruned segments 0.." + std::to_string(r->statement.last_seq))) << describe(rep);
  EXPECT_TRUE(has_note(rep, "by max-age")) << describe(rep);
  EXPECT_TRUE(has_note(rep, "retention_max_days=30"));
  std::string json = report_to_json(rep);
  EXPECT_NE(json.find("pruned segments 0.."), std::string::npos) << json;

  // The prune is in the appliance's own audit stream too.
  auto audit = read_raws(*env_, kDir, "_audit");
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_NE(audit.begin()->second.find("\"action\":\"retention-prune\""), std::string::npos) << audit.begin()->second;
  EXPECT_NE(audit.begin()->second.find("\"stream\":\"app\""), std::string::npos);

  // The stream goes on after a restart: more segments, a second prune, verify.
  Status st = ingest(*env_, kDir, key_->signer(), small_options(), "app", make_raws(200, 150), nullptr, 20);
  ASSERT_TRUE(st.ok()) << st.to_string();
  rep = verify_report(*env_, kDir, *key_);
  EXPECT_TRUE(rep.ok()) << describe(rep);
  auto r2 = prune(by_max_age(30, now_ns() + 31 * kDay));
  ASSERT_TRUE(r2.ok()) << r2.status().to_string();
  ASSERT_TRUE(r2->pruned) << r2->why;
  EXPECT_EQ(r2->statement.first_seq, r->statement.last_seq + 1);
  EXPECT_EQ(r2->statement.first_index, r->statement.tree_size);
  rep = verify_report(*env_, kDir, *key_);
  EXPECT_TRUE(rep.ok()) << describe(rep);
  // What is left still reads back from the first remaining record on.
  auto raws = read_raws(*env_, kDir, "app");
  ASSERT_FALSE(raws.empty());
  EXPECT_EQ(raws.begin()->first, r2->statement.tree_size);
  // And proves against the latest checkpoint; a pruned record cannot be proven.
  for (uint64_t i : {r2->statement.tree_size, r2->statement.tree_size + 1, raws.rbegin()->first}) {
    auto proof = prove_record(*env_, kDir, "app", i);
    ASSERT_TRUE(proof.ok()) << i << ": " << proof.status().to_string();
    EXPECT_TRUE(merkle::verify_inclusion(merkle::leaf_hash(proof->record), i, proof->checkpoint.decoded.tree_size,
                                         proof->path, proof->checkpoint.decoded.root))
        << i;
  }
  EXPECT_EQ(prove_record(*env_, kDir, "app", 0).status().code(), Code::kNotFound);
}

TEST_F(RetentionTest, ManualDeletionIsAMissingSegment) {
  ASSERT_TRUE(env_->remove_sealed(segs_[0]).ok());
  ASSERT_TRUE(env_->remove_sealed(segs_[1]).ok());
  EXPECT_TRUE(has_kind(verify_kinds(*env_, kDir, *key_), "missing-segment"));
}

TEST_F(RetentionTest, DeletingMoreThanThePruneRecordNamesIsAMissingSegment) {
  PruneRequest req;
  req.trigger = PruneTrigger::kDiskFull;  // oldest first, one segment
  req.segments_max = 1;
  auto r = prune(req);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_TRUE(r->pruned);
  EXPECT_EQ(r->statement.last_seq, 0u);
  EXPECT_TRUE(verify_report(*env_, kDir, *key_).ok());
  // The prune covered segment 0 only; segment 1 goes by hand.
  ASSERT_TRUE(env_->remove_sealed(segs_[1]).ok());
  EXPECT_TRUE(has_kind(verify_kinds(*env_, kDir, *key_), "missing-segment"));
}

TEST_F(RetentionTest, InterruptedPruneStillVerifies) {
  // The record is sealed, but only the first file was removed (a crash).
  auto store = open_store();
  ASSERT_TRUE(store);
  PruneRequest req = by_max_age(1, now_ns() + 2 * kDay);
  req.wait_signed = false;
  auto r = prune_stream(*store, "app", req);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_TRUE(store->close().ok());
  ASSERT_GE(r->paths.size(), 2u);
  ASSERT_TRUE(env_->remove_sealed(r->paths[0]).ok());
  VerifyReport rep = verify_report(*env_, kDir, *key_);
  EXPECT_TRUE(rep.ok()) << describe(rep);
  EXPECT_TRUE(has_note(rep, "an interrupted prune")) << describe(rep);
  // Finishing it later.
  ASSERT_TRUE(remove_pruned(*env_, kStreamDir, {r->paths.begin() + 1, r->paths.end()}).ok());
  rep = verify_report(*env_, kDir, *key_);
  EXPECT_TRUE(rep.ok()) << describe(rep);
}

// Finds the (only) retention statement in a segment file: offset of its raw bytes.
size_t statement_offset(const std::vector<uint8_t>& file) {
  auto it = std::search(file.begin(), file.end(), std::begin(kRetentionMagic), std::end(kRetentionMagic));
  EXPECT_NE(it, file.end());
  return static_cast<size_t>(it - file.begin());
}

TEST_F(RetentionTest, ModifiedPruneRecordFailsVerify) {
  auto r = prune(by_max_age(30, now_ns() + 31 * kDay));
  ASSERT_TRUE(r.ok() && r->pruned);
  std::string last = segment_paths(*env_, kStreamDir).back();
  std::vector<uint8_t>* f = env_->file_bytes(last);
  ASSERT_NE(f, nullptr);
  size_t at = statement_offset(*f);
  auto frames = frames_of(*f);
  // An attacker rewrites the last pruned head (offset 72 of the statement) and
  // recomputes the frame's checksums: the signed Merkle root no longer matches.
  (*f)[at + 72] ^= 0x01;
  bool resealed = false;
  for (auto& fr : frames) {
    if (fr.offset < at && at < fr.offset + fr.header.span_bytes) {
      reseal_frame(*f, fr.offset, fr.header);
      resealed = true;
    }
  }
  ASSERT_TRUE(resealed);
  auto kinds = verify_kinds(*env_, kDir, *key_);
  EXPECT_TRUE(has_kind(kinds, "root-mismatch")) << ::testing::PrintToString(kinds);
}

TEST_F(RetentionTest, PruneRecordUnderAnotherKeyFailsVerify) {
  // An attacker with write access but not the key deletes the oldest segments
  // and seals a prune record of their own, with their own key.
  TestKey attacker = make_soft_key(tmp_->sub("attacker"));
  auto files = segment_paths(*env_, kStreamDir);
  auto st = Store::open(*env_, kDir, attacker.signer(), small_options());
  ASSERT_TRUE(st.ok());
  auto stream = st.value()->stream("app");
  ASSERT_TRUE(stream.ok());
  RetentionStatement forged;
  forged.op = RetentionOp::kPrune;
  forged.trigger = PruneTrigger::kBefore;
  forged.stream = "app";
  forged.time_ns = now_ns();
  forged.first_seq = 0;
  forged.last_seq = 1;
  ASSERT_TRUE(append_retention(*stream.value(), forged, "logseal:prune").ok());
  ASSERT_TRUE(st.value()->close().ok());
  ASSERT_TRUE(env_->remove_sealed(files[0]).ok());
  ASSERT_TRUE(env_->remove_sealed(files[1]).ok());
  auto kinds = verify_kinds(*env_, kDir, *key_);
  EXPECT_TRUE(has_kind(kinds, "unknown-key")) << ::testing::PrintToString(kinds);
  EXPECT_TRUE(has_kind(kinds, "chain-break")) << ::testing::PrintToString(kinds);
}

TEST_F(RetentionTest, UnsignedPruneRecordDoesNotExcuseDeletedSegments) {
  // A statement in the unsigned tail (the store stopped before a checkpoint
  // covered it: FakeEnv crash) counts for nothing.
  auto files = segment_paths(*env_, kStreamDir);
  {
    StoreOptions o = small_options();
    o.stream.checkpoint_ms = 3600 * 1000;  // no checkpoint before the crash
    auto st = Store::open(*env_, kDir, key_->signer(), o);
    ASSERT_TRUE(st.ok());
    auto stream = st.value()->stream("app");
    ASSERT_TRUE(stream.ok());
    // The first checkpoint after open comes at once; the next in an hour.
    std::string first = record_raw(7777);
    auto i0 = stream.value()->append(record_view(first));
    ASSERT_TRUE(i0.ok());
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (stream.value()->signed_size() <= i0.value() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_GT(stream.value()->signed_size(), i0.value());
    RetentionStatement s;
    s.op = RetentionOp::kPrune;
    s.trigger = PruneTrigger::kBefore;
    s.stream = "app";
    s.time_ns = now_ns();
    s.first_seq = 0;
    s.last_seq = 0;
    auto index = append_retention(*stream.value(), s, "logseal:prune");
    ASSERT_TRUE(index.ok());
    ASSERT_TRUE(stream.value()->wait_durable(index.value(), std::chrono::seconds(10)));
    env_->crash();
    (void)st.value()->close();
  }
  env_->restart();
  ASSERT_TRUE(env_->remove_sealed(files[0]).ok());
  VerifyOptions o;
  o.allow_unsigned_tail = true;
  VerifyReport rep = verify_report(*env_, kDir, *key_, o);
  EXPECT_TRUE(has_kind(kinds_of(rep), "missing-segment")) << describe(rep);
  EXPECT_TRUE(has_note(rep, "not yet covered by a signature")) << describe(rep);
}

TEST_F(RetentionTest, SignedRecordNamingAnotherSealIsAFinding) {
  // Even a statement the key signed must match the seal on disk (bad-prune)
  // and the next segment's header (chain-break once the files are gone).
  auto store = open_store();
  ASSERT_TRUE(store);
  auto stream = store->stream("app");
  ASSERT_TRUE(stream.ok());
  RetentionStatement s;
  s.op = RetentionOp::kPrune;
  s.trigger = PruneTrigger::kBefore;
  s.stream = "app";
  s.time_ns = now_ns();
  s.first_seq = 0;
  s.last_seq = 0;
  s.tree_size = 1;
  s.last_head[0] = 0x42;
  ASSERT_TRUE(append_retention(*stream.value(), s, "logseal:prune").ok());
  ASSERT_TRUE(store->close().ok());
  EXPECT_TRUE(has_kind(verify_kinds(*env_, kDir, *key_), "bad-prune"));
  ASSERT_TRUE(env_->remove_sealed(segs_[0]).ok());
  EXPECT_TRUE(has_kind(verify_kinds(*env_, kDir, *key_), "chain-break"));
}

TEST_F(RetentionTest, HeldStreamIsNeverPruned) {
  {
    auto store = open_store();
    ASSERT_TRUE(store);
    auto stream = store->stream("app");
    ASSERT_TRUE(stream.ok());
    RetentionStatement h;
    h.op = RetentionOp::kHoldOn;
    h.stream = "app";
    h.time_ns = now_ns();
    h.note = "case 4711";
    ASSERT_TRUE(append_retention(*stream.value(), h, "logseal:hold").ok());
    ASSERT_TRUE(store->close().ok());
  }
  auto held = read_hold(*env_, kDir, "app");
  ASSERT_TRUE(held.ok());
  EXPECT_TRUE(held.value());
  auto r = prune(by_max_age(30, now_ns() + 365 * kDay));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("legal hold"), std::string::npos) << r.status().to_string();
  for (auto& p : segs_) EXPECT_TRUE(env_->exists(p)) << p;
  VerifyReport rep = verify_report(*env_, kDir, *key_);
  EXPECT_TRUE(rep.ok()) << describe(rep);
  EXPECT_TRUE(has_note(rep, "legal hold is on")) << describe(rep);
  // The refusal is audited.
  auto audit = read_raws(*env_, kDir, "_audit");
  ASSERT_FALSE(audit.empty());
  EXPECT_NE(audit.rbegin()->second.find("retention-prune-refused"), std::string::npos) << audit.rbegin()->second;

  // A hold by configuration refuses too, even with no statement.
  PruneRequest cfg = by_max_age(30, now_ns() + 365 * kDay);
  {
    auto store = open_store();
    ASSERT_TRUE(store);
    auto stream = store->stream("app");
    ASSERT_TRUE(stream.ok());
    RetentionStatement off;
    off.op = RetentionOp::kHoldOff;
    off.stream = "app";
    off.time_ns = now_ns();
    ASSERT_TRUE(append_retention(*stream.value(), off, "logseal:hold").ok());
    ASSERT_TRUE(store->close().ok());
  }
  cfg.policy.legal_hold = true;
  r = prune(cfg);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kFailedPrecondition);
  for (auto& p : segs_) EXPECT_TRUE(env_->exists(p)) << p;
  // Lifted in the stream and not configured: the prune goes ahead.
  cfg.policy.legal_hold = false;
  r = prune(cfg);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->pruned) << r->why;
  EXPECT_TRUE(verify_report(*env_, kDir, *key_).ok());
}

TEST_F(RetentionTest, PruneWhileHeldIsAFindingEvenWhenSigned) {
  // A prune record written while a hold is on (the tool refuses; a compromised
  // appliance could still sign one) is reported.
  auto store = open_store();
  ASSERT_TRUE(store);
  auto stream = store->stream("app");
  ASSERT_TRUE(stream.ok());
  RetentionStatement h;
  h.op = RetentionOp::kHoldOn;
  h.stream = "app";
  h.time_ns = now_ns();
  ASSERT_TRUE(append_retention(*stream.value(), h, "logseal:hold").ok());
  ASSERT_TRUE(store->close().ok());
  // prune_stream refuses (read_hold); write the statement directly, as a
  // compromised appliance holding the key could.
  auto store2 = open_store();
  auto stream2 = store2->stream("app");
  ASSERT_TRUE(stream2.ok());
  RetentionStatement p;
  p.op = RetentionOp::kPrune;
  p.trigger = PruneTrigger::kMaxAge;
  p.stream = "app";
  p.time_ns = now_ns();
  ASSERT_TRUE(append_retention(*stream2.value(), p, "logseal:prune").ok());
  ASSERT_TRUE(store2->close().ok());
  EXPECT_TRUE(has_kind(verify_kinds(*env_, kDir, *key_), "prune-under-hold"));
}

TEST_F(RetentionTest, NeverPrunesInsideTheMinimum) {
  const int64_t now = now_ns();
  // Every segment was sealed just now. With a minimum of 10 days, 5 days from
  // now nothing may go, whatever --before says.
  PruneRequest req;
  req.policy.min_days = 10;
  req.trigger = PruneTrigger::kBefore;
  req.before_ns = now + 365 * kDay;
  req.now_ns = now + 5 * kDay;
  auto r = prune(req);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_FALSE(r->pruned);
  EXPECT_NE(r->why.find("retention_min_days=10"), std::string::npos) << r->why;
  // Nor the disk-full policy.
  req.trigger = PruneTrigger::kDiskFull;
  r = prune(req);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->pruned);
  // Nor a maximum below... which is refused outright.
  PruneRequest bad = by_max_age(5, now);
  bad.policy.min_days = 10;
  r = prune(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  for (auto& p : segs_) EXPECT_TRUE(env_->exists(p)) << p;
  // Once the minimum has passed, they may go.
  req.trigger = PruneTrigger::kBefore;
  req.now_ns = now + 11 * kDay;
  r = prune(req);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->pruned);
  // The cutoff never reaches into the minimum.
  EXPECT_LE(r->statement.cutoff_ns, req.now_ns - 10 * kDay);
  EXPECT_TRUE(verify_report(*env_, kDir, *key_).ok());
}

TEST_F(RetentionTest, TamperedStreamIsNotPruned) {
  // A prune record would vouch for the segments it removes: refuse instead.
  std::vector<uint8_t>* f = env_->file_bytes(segs_[0]);
  ASSERT_NE(f, nullptr);
  // copy_to_mutable_fake is not needed: FakeEnv byte access ignores the mode.
  (*f)[format::kHeaderBytes + 100] ^= 0xff;
  auto r = prune(by_max_age(30, now_ns() + 31 * kDay));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("nothing was pruned"), std::string::npos) << r.status().to_string();
  EXPECT_TRUE(env_->exists(segs_[0]));
}

TEST_F(RetentionTest, StreamWithAChangedRecordIsNotPruned) {
  // Checksums recomputed, so only the signatures show the change: the prune
  // must not vouch for it by deleting the evidence.
  std::vector<uint8_t>* f = env_->file_bytes(segs_[1]);
  ASSERT_NE(f, nullptr);
  auto frames = frames_of(*f);
  ASSERT_FALSE(frames.empty());
  ASSERT_EQ(frames[0].header.type, format::FrameType::kBatch);
  (*f)[frames[0].offset + format::kFrameHeaderBytes + 4 + format::kRecFixedBytes + 3] ^= 0x20;  // in the source
  reseal_frame(*f, frames[0].offset, frames[0].header);
  auto r = prune(by_max_age(30, now_ns() + 31 * kDay));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("does not verify"), std::string::npos) << r.status().to_string();
  for (auto& p : segs_) EXPECT_TRUE(env_->exists(p)) << p;
}

TEST_F(RetentionTest, DiskFullRefusesNewRecordsWithoutHarmingSealedOnes) {
  StoreOptions o = small_options();
  o.stream.disk_reserve_bytes = 1;  // raised to what the stream may still write (about 92 KiB here)
  uint64_t used = 0;
  for (auto& p : segment_paths(*env_, kStreamDir)) used += env_->file_size(p).value();
  // Room for the reserve and about a dozen segments of 16 KiB more.
  env_->set_capacity_bytes(used + (92u << 10) + (200u << 10));

  auto st = Store::open(*env_, kDir, key_->signer(), o);
  ASSERT_TRUE(st.ok());
  auto stream = st.value()->stream("app");
  ASSERT_TRUE(stream.ok());
  uint64_t accepted = 0, refused = 0;
  uint64_t last_index = 0;
  for (uint64_t i = 0; i < 20000 && refused == 0; ++i) {
    std::string raw = record_raw(1000 + i);
    auto idx = stream.value()->append(record_view(raw));
    if (idx.ok()) {
      accepted++;
      last_index = idx.value();
      // Keep the store writing as it goes, so free space is measured often.
      if (accepted % 10 == 0) {
        ASSERT_TRUE(stream.value()->wait_durable(idx.value(), std::chrono::seconds(10)));
      }
    } else {
      ASSERT_EQ(idx.status().code(), Code::kResourceExhausted) << idx.status().to_string();
      EXPECT_NE(idx.status().message().find("disk full"), std::string::npos);
      refused++;
    }
  }
  ASSERT_EQ(refused, 1u) << "the disk never filled: " << accepted << " records accepted";
  ASSERT_TRUE(stream.value()->wait_durable(last_index, std::chrono::seconds(10)));
  EXPECT_TRUE(stream.value()->health().ok()) << stream.value()->health().to_string();
  StreamStats stats = stream.value()->stats();
  EXPECT_TRUE(stats.disk_full);
  EXPECT_EQ(stats.disk_full_refused, 1u);
  // Still refusing on the next try; the stream did not fail.
  EXPECT_EQ(stream.value()->append(record_view(record_raw(99999))).status().code(), Code::kResourceExhausted);
  Status closed = st.value()->close();
  EXPECT_TRUE(closed.ok()) << closed.to_string();
  // Everything accepted is there and verifies.
  env_->set_capacity_bytes(UINT64_MAX);
  VerifyReport rep = verify_report(*env_, kDir, *key_);
  EXPECT_TRUE(rep.ok()) << describe(rep);
  auto raws = read_raws(*env_, kDir, "app");
  EXPECT_EQ(raws.size(), 200 + accepted);
  EXPECT_EQ(raws.rbegin()->first, last_index);
}

TEST_F(RetentionTest, DiskFullWithoutTheReserveStopsTheStream) {
  // The reason for the reserve: without it the disk fills mid-write (ENOSPC)
  // and the stream stops.
  uint64_t used = 0;
  for (auto& p : segment_paths(*env_, kStreamDir)) used += env_->file_size(p).value();
  env_->set_capacity_bytes(used + (64u << 10));
  auto st = Store::open(*env_, kDir, key_->signer(), small_options());
  ASSERT_TRUE(st.ok());
  auto stream = st.value()->stream("app");
  ASSERT_TRUE(stream.ok());
  Status last;
  for (uint64_t i = 0; i < 20000; ++i) {
    auto idx = stream.value()->append(record_view(record_raw(1000 + i)));
    if (!idx.ok()) {
      last = idx.status();
      break;
    }
    if (i % 10 == 0) (void)stream.value()->wait_durable(idx.value(), std::chrono::seconds(10));
  }
  EXPECT_EQ(last.code(), Code::kFailedPrecondition) << last.to_string();
  EXPECT_FALSE(stream.value()->health().ok());
  (void)st.value()->close();
}

TEST_F(RetentionTest, DiskFullPruneFreesSpaceAndRecordsGoOn) {
  // disk_full = "prune": the oldest sealed segment beyond the minimum goes (with
  // its record), space comes back, and appends are accepted again.
  StoreOptions o = small_options();
  o.stream.disk_reserve_bytes = 1;
  auto st = Store::open(*env_, kDir, key_->signer(), o);
  ASSERT_TRUE(st.ok());
  auto stream = st.value()->stream("app");
  ASSERT_TRUE(stream.ok());
  // Now full: 64 KiB free, below the reserve of about 92 KiB (room for the
  // prune record and its checkpoint).
  uint64_t now_used = 0;
  for (auto& p : segment_paths(*env_, kStreamDir)) now_used += env_->file_size(p).value();
  env_->set_capacity_bytes(now_used + (64u << 10));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!stream.value()->stats().disk_full && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(stream.value()->stats().disk_full);
  EXPECT_EQ(stream.value()->append(record_view(record_raw(5000))).status().code(), Code::kResourceExhausted);
  // Prune until there is room (the daemon's disk-full loop does the same).
  PruneRequest req;
  req.trigger = PruneTrigger::kDiskFull;
  req.policy.disk_full = DiskFullPolicy::kPrune;
  auto r = prune_stream(*st.value(), "app", req);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_TRUE(r->pruned) << r->why;
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (stream.value()->stats().disk_full && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(stream.value()->stats().disk_full) << "pruning " << r->paths.size() << " segments freed no room";
  EXPECT_TRUE(stream.value()->append(record_view(record_raw(5001))).ok());
  ASSERT_TRUE(st.value()->close().ok());
  VerifyReport rep = verify_report(*env_, kDir, *key_);
  EXPECT_TRUE(rep.ok()) << describe(rep);
  EXPECT_TRUE(has_note(rep, "by disk-full")) << describe(rep);
}

// The same on a real file system: a small loop-mounted ext4 (root only; a
// missing loop device or mkfs is a skip), the POSIX env and io_uring.
class LoopFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for a loop mount";
    tmp_ = std::make_unique<TempDir>("retention_loopfs");
    std::string img = tmp_->sub("fs.img");
    mnt_ = tmp_->sub("mnt");
    std::string cmd = "truncate -s 24M " + img + " && mkfs.ext4 -q -F " + img + " >/dev/null 2>&1 && mkdir -p " + mnt_ +
                      " && mount -o loop " + img + " " + mnt_ + " 2>/dev/null";
    if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "cannot make and loop-mount a small ext4: " << cmd;
    mounted_ = true;
    key_ = std::make_unique<TestKey>(make_soft_key(tmp_->sub("key")));
  }
  void TearDown() override {
    if (mounted_) {
      std::string cmd = "umount " + mnt_ + " || umount -l " + mnt_;
      EXPECT_EQ(std::system(cmd.c_str()), 0);
    }
  }
  std::unique_ptr<TempDir> tmp_;
  std::string mnt_;
  bool mounted_ = false;
  std::unique_ptr<TestKey> key_;
};

TEST_F(LoopFsTest, FullDiskRefusesRecordsThenAPruneMakesRoom) {
  io::Env& env = io::posix_env();
  const std::string data = mnt_ + "/data";
  StoreOptions o = small_options();
  o.stream.segment_bytes = 256 << 10;
  o.stream.disk_reserve_bytes = 2 << 20;
  auto st = Store::open(env, data, key_->signer(), o);
  if (st.status().code() == Code::kUnimplemented) GTEST_SKIP() << st.status().to_string();
  ASSERT_TRUE(st.ok()) << st.status().to_string();
  auto stream = st.value()->stream("app");
  ASSERT_TRUE(stream.ok());
  uint64_t accepted = 0, last_index = 0;
  Status refused;
  std::string pad(900, 'x');
  for (uint64_t i = 0; i < 200000; ++i) {
    std::string raw = record_raw(i) + pad;
    auto idx = stream.value()->append(record_view(raw));
    if (!idx.ok()) {
      refused = idx.status();
      break;
    }
    accepted++;
    last_index = idx.value();
    if (accepted % 50 == 0) {
      ASSERT_TRUE(stream.value()->wait_durable(last_index, std::chrono::seconds(30)));
    }
  }
  ASSERT_EQ(refused.code(), Code::kResourceExhausted) << "accepted " << accepted << ": " << refused.to_string();
  EXPECT_NE(refused.message().find("disk full"), std::string::npos) << refused.to_string();
  ASSERT_TRUE(stream.value()->wait_durable(last_index, std::chrono::seconds(30)));
  EXPECT_TRUE(stream.value()->health().ok()) << stream.value()->health().to_string();
  auto free = env.free_bytes(data);
  ASSERT_TRUE(free.ok());
  EXPECT_GT(free.value(), 0u) << "the reserve must keep the disk from filling";
  // Records inside the minimum are not pruned even though the disk is full.
  PruneRequest keep;
  keep.trigger = PruneTrigger::kDiskFull;
  keep.policy.min_days = 1;
  auto k = prune_stream(*st.value(), "app", keep);
  ASSERT_TRUE(k.ok()) << k.status().to_string();
  EXPECT_FALSE(k->pruned);
  // disk_full = "prune" beyond a minimum of 0: the oldest segments go.
  PruneRequest req;
  req.trigger = PruneTrigger::kDiskFull;
  req.policy.disk_full = DiskFullPolicy::kPrune;
  req.segments_max = 4;
  auto r = prune_stream(*st.value(), "app", req);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_TRUE(r->pruned) << r->why;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (stream.value()->stats().disk_full && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::string after = record_raw(999999);
  EXPECT_TRUE(stream.value()->append(record_view(after)).ok());
  Status closed = st.value()->close();
  ASSERT_TRUE(closed.ok()) << closed.to_string();
  VerifyReport rep = verify_report(env, data, *key_);
  EXPECT_TRUE(rep.ok()) << describe(rep);
  EXPECT_TRUE(has_note(rep, "by disk-full")) << describe(rep);
  auto raws = read_raws(env, data, "app");
  ASSERT_FALSE(raws.empty());
  EXPECT_EQ(raws.begin()->first, r->statement.tree_size);
  // Every record accepted after the pruned range, the prune record and the last one.
  EXPECT_EQ(raws.rbegin()->first, last_index + 2);
}

// logseald's runner (RetentionRunner) with disk_full = "prune": it notices the
// store's disk-full state and prunes oldest-first until records are accepted
// again; with a hold it prunes nothing and the stream keeps refusing.
TEST_F(RetentionTest, RunnerPrunesOnAFullDiskUnlessHeld) {
  for (bool held : {true, false}) {
    SCOPED_TRACE(held ? "held" : "not held");
    StoreOptions o = small_options();
    o.stream.disk_reserve_bytes = 1;  // about 92 KiB here
    env_->set_capacity_bytes(UINT64_MAX);
    auto st = Store::open(*env_, kDir, key_->signer(), o);
    ASSERT_TRUE(st.ok());
    auto stream = st.value()->stream("app");
    ASSERT_TRUE(stream.ok());
    // Every file counts (the other streams too): 64 KiB left, below the reserve.
    uint64_t used = UINT64_MAX - env_->free_bytes(kDir).value();
    std::vector<std::string> before = segment_paths(*env_, kStreamDir);
    env_->set_capacity_bytes(used + (64u << 10));
    RetentionSchedule sched;
    sched.policies["app"].disk_full = DiskFullPolicy::kPrune;
    sched.policies["app"].legal_hold = held;
    sched.disk_check = std::chrono::milliseconds(20);
    RetentionRunner runner(*st.value(), sched);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    bool refused_seen = false;
    while (std::chrono::steady_clock::now() < deadline) {
      std::string raw = record_raw(4000);
      auto idx = stream.value()->append(record_view(raw));
      if (!idx.ok()) {
        ASSERT_EQ(idx.status().code(), Code::kResourceExhausted);
        refused_seen = true;
      } else if (refused_seen) {
        break;  // accepted again after a refusal: room was made
      }
      if (held && runner.prune_failures() >= 2) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!held) {
      // Records accepted meanwhile may dip below the reserve again; the runner
      // goes on pruning until it is back.
      // Settled: not full for longer than the store's 100 ms check interval.
      auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      auto clear_since = std::chrono::steady_clock::now();
      while (std::chrono::steady_clock::now() < until) {
        if (stream.value()->stats().disk_full) clear_since = std::chrono::steady_clock::now();
        if (std::chrono::steady_clock::now() - clear_since > std::chrono::milliseconds(300)) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    runner.stop();
    EXPECT_TRUE(refused_seen);
    if (held) {
      EXPECT_EQ(runner.segments_pruned(), 0u);
      EXPECT_GE(runner.prune_failures(), 2u);
      EXPECT_TRUE(stream.value()->stats().disk_full);
      for (auto& p : before) EXPECT_TRUE(env_->exists(p)) << p;
    } else {
      EXPECT_GE(runner.segments_pruned(), 1u);
      EXPECT_FALSE(stream.value()->stats().disk_full);
      EXPECT_FALSE(env_->exists(before.front()));
    }
    env_->set_capacity_bytes(UINT64_MAX);
    ASSERT_TRUE(st.value()->close().ok());
    VerifyReport rep = verify_report(*env_, kDir, *key_);
    EXPECT_TRUE(rep.ok()) << describe(rep);
  }
  auto audit = read_raws(*env_, kDir, "_audit");
  bool pruned = false;
  int refused = 0;
  for (auto& [i, raw] : audit) {
    refused += raw.find("retention-prune-refused") != std::string::npos ? 1 : 0;
    pruned |= raw.find("\"action\":\"retention-prune\"") != std::string::npos &&
              raw.find("\"trigger\":\"disk-full\"") != std::string::npos;
  }
  EXPECT_EQ(refused, 1) << "a refusal repeated every check is audited once";
  EXPECT_TRUE(pruned);
}

TEST(RetentionStatementTest, RoundTripAndStrictDecoding) {
  RetentionStatement s;
  s.op = RetentionOp::kPrune;
  s.trigger = PruneTrigger::kMaxAge;
  s.stream = "db-prod";
  s.time_ns = 1700000000000000000;
  s.min_days = 30;
  s.max_days = 365;
  s.first_seq = 3;
  s.last_seq = 9;
  s.first_index = 100;
  s.tree_size = 900;
  s.last_head[5] = 7;
  s.note = "quarterly";
  auto raw = encode_retention(s);
  auto d = decode_retention(raw);
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->stream, "db-prod");
  EXPECT_EQ(d->last_seq, 9u);
  EXPECT_EQ(d->last_head, s.last_head);
  EXPECT_EQ(d->note, "quarterly");
  // Every cut is refused, and so is a byte after the end.
  for (size_t n = 0; n < raw.size(); ++n) {
    EXPECT_FALSE(decode_retention(std::span<const uint8_t>(raw.data(), n)).ok()) << n;
  }
  auto longer = raw;
  longer.push_back(0);
  EXPECT_FALSE(decode_retention(longer).ok());
  // A hold with prune fields, a reversed range, a non-zero reserved byte.
  RetentionStatement h = s;
  h.op = RetentionOp::kHoldOn;
  h.trigger = PruneTrigger::kNone;
  EXPECT_FALSE(decode_retention(encode_retention(h)).ok());
  RetentionStatement rev = s;
  rev.last_seq = 1;
  EXPECT_FALSE(decode_retention(encode_retention(rev)).ok());
  auto res = raw;
  res[190] = 1;
  EXPECT_FALSE(decode_retention(res).ok());
}

}  // namespace
}  // namespace logseal::engine
