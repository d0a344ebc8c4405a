// Tests of the store: append / durable / close on the real env (O_DIRECT,
// io_uring) and on FakeEnv, rolling, reopening, a slow signer, a failed write,
// and one test per row of the recovery decision table in engine/store.cc.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "engine/reader.h"
#include "engine/store.h"
#include "engine/store_internal.h"
#include "engine/verify.h"
#include "io/fake_env.h"
#include "tests/test_util.h"

namespace logseal::engine {
namespace {

using namespace logseal::test;
using format::FrameType;

// Polls pred every millisecond up to timeout; true when it held.
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

std::vector<uint8_t> read_or_fail(io::Env& env, const std::string& path) {
  auto b = env.read_file(path);
  EXPECT_TRUE(b.ok()) << b.status().to_string();
  return b.ok() ? std::move(b).value() : std::vector<uint8_t>{};
}

bool is_sealed(const std::vector<uint8_t>& file) {
  auto frames = frames_of(file);
  return !frames.empty() && frames.back().header.type == FrameType::kSeal;
}

// Expects the stream to hold exactly raws[0..n) at indexes 0..n.
void expect_records(io::Env& env, const std::string& data_dir, const std::string& stream,
                    const std::vector<std::string>& raws) {
  auto got = read_raws(env, data_dir, stream);
  ASSERT_EQ(got.size(), raws.size());
  uint64_t i = 0;
  for (const auto& [index, raw] : got) {
    ASSERT_EQ(index, i);
    ASSERT_EQ(raw, raws[i]) << "record " << i;
    ++i;
  }
}

void expect_verified(io::Env& env, const std::string& data_dir, const TestKey& key, uint64_t records) {
  auto r = verify_report(env, data_dir, key);
  EXPECT_TRUE(r.ok()) << describe(r);
  ASSERT_EQ(r.streams.size(), 1u);
  EXPECT_EQ(r.streams[0].records, records);
  EXPECT_EQ(r.streams[0].signed_records, records);
}

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override { key_ = make_soft_key(tmp_.sub("key")); }
  TempDir tmp_{"engine_test"};
  TestKey key_;
};

// ---------------------------------------------------------------------------
// Append, durable, close

void append_durable_close(io::Env& env, const std::string& data_dir, const TestKey& key) {
  StoreOptions opt = small_options();
  opt.stream.segment_bytes = 64 << 20;
  auto store = Store::open(env, data_dir, key.signer(), opt);
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  auto s = store.value()->stream("app");
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  Stream* stream = s.value();
  EXPECT_TRUE(stream->health().ok());
  std::atomic<uint64_t> reported{0};
  stream->add_durable_callback([&](uint64_t n) {
    uint64_t prev = reported.load();
    EXPECT_GE(n, prev) << "durable size went backwards";
    reported.store(n);
  });
  auto raws = make_raws(0, 500);
  for (uint64_t i = 0; i < raws.size(); ++i) {
    auto idx = stream->append(record_view(raws[i]));
    ASSERT_TRUE(idx.ok()) << idx.status().to_string();
    ASSERT_EQ(idx.value(), i);
  }
  ASSERT_TRUE(stream->wait_durable(499, std::chrono::seconds(30)));
  EXPECT_EQ(stream->durable_size(), 500u);
  // The callback runs after waiters are woken.
  EXPECT_TRUE(wait_until([&] { return reported.load() == 500u; })) << reported.load();
  EXPECT_EQ(stream->stats().records, 500u);
  // The same Stream for the same name.
  auto again = store.value()->stream("app");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.value(), stream);
  ASSERT_TRUE(store.value()->close().ok());
  expect_records(env, data_dir, "app", raws);
  expect_verified(env, data_dir, key, 500);
  auto cp = latest_checkpoint(env, data_dir, "app");
  ASSERT_TRUE(cp.ok()) << cp.status().to_string();
  EXPECT_EQ(cp->decoded.tree_size, 500u);
}

TEST_F(EngineTest, AppendDurableCloseOnPosixEnv) {
  std::string dir = tmp_.sub("data");
  ASSERT_TRUE(io::posix_env().make_dirs(dir).ok());
  Status probe = io::posix_env().probe_direct(dir);
  if (!probe.ok()) GTEST_SKIP() << "no O_DIRECT in the test directory: " << probe.to_string();
  auto ring = io::posix_env().make_ring(8);
  if (!ring.ok()) GTEST_SKIP() << "no io_uring: " << ring.status().to_string();
  append_durable_close(io::posix_env(), dir, key_);
}

TEST_F(EngineTest, AppendDurableCloseOnFakeEnv) {
  io::FakeEnv env(7);
  append_durable_close(env, "/data", key_);
}

// ---------------------------------------------------------------------------
// Rolling

// Appends raws one by one and waits for each batch-worth to be durable so the
// segments fill gradually.
void roll_by_size(io::Env& env, const std::string& data_dir, const TestKey& key) {
  StoreOptions opt = small_options();  // 16 KiB segments, 4 KiB batches
  auto raws = make_raws(0, 400);
  ASSERT_TRUE(ingest(env, data_dir, key.signer(), opt, "app", raws).ok());
  auto segs = segment_paths(env, data_dir + "/app");
  ASSERT_GE(segs.size(), 4u) << "400 records of ~150 bytes in 16 KiB segments";
  uint64_t next_first = 0;
  for (size_t i = 0; i < segs.size(); ++i) {
    auto file = read_or_fail(env, segs[i]);
    auto h = format::decode_header(file);
    ASSERT_TRUE(h.ok()) << segs[i] << ": " << h.status().to_string();
    EXPECT_EQ(h->segment_seq, i);
    EXPECT_EQ(h->first_index, next_first) << segs[i];
    auto st = read_segment_state(file);
    ASSERT_TRUE(st.ok());
    next_first = st->frontier.size();
    EXPECT_EQ(st->cut_offset, st->file_bytes) << segs[i] << ": " << st->cut_reason;
    // The roll rule: a batch goes into a segment only when it is the first one
    // there or the segment stays within segment_bytes.
    bool first_batch = true;
    for (const auto& fr : frames_of(file)) {
      if (fr.header.type != FrameType::kBatch) continue;
      if (!first_batch) {
        EXPECT_LE(fr.offset + fr.header.span_bytes, opt.stream.segment_bytes) << segs[i];
      }
      first_batch = false;
    }
    if (i + 1 < segs.size()) {
      EXPECT_TRUE(is_sealed(file)) << segs[i] << " is not the last segment but has no seal";
    } else {
      EXPECT_FALSE(is_sealed(file)) << "the last segment is the open one";
    }
  }
  EXPECT_EQ(next_first, raws.size());
  expect_records(env, data_dir, "app", raws);
  expect_verified(env, data_dir, key, raws.size());
}

TEST_F(EngineTest, RollBySegmentBytesOnFakeEnv) {
  io::FakeEnv env(11);
  roll_by_size(env, "/data", key_);
}

TEST_F(EngineTest, RollBySegmentBytesOnPosixEnvSealsReadOnly) {
  std::string dir = tmp_.sub("data");
  ASSERT_TRUE(io::posix_env().make_dirs(dir).ok());
  Status probe = io::posix_env().probe_direct(dir);
  if (!probe.ok()) GTEST_SKIP() << "no O_DIRECT in the test directory: " << probe.to_string();
  roll_by_size(io::posix_env(), dir, key_);
  auto segs = segment_paths(io::posix_env(), dir + "/app");
  for (size_t i = 0; i + 1 < segs.size(); ++i) {
    struct stat st;
    ASSERT_EQ(::stat(segs[i].c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0222, 0u) << segs[i] << " is sealed but still writable";
  }
}

TEST_F(EngineTest, RequestRollSealsAtTheNextBatchBoundary) {
  io::FakeEnv env(12);
  StoreOptions opt = small_options();
  opt.stream.segment_bytes = 64 << 20;
  auto store = Store::open(env, "/data", key_.signer(), opt);
  ASSERT_TRUE(store.ok());
  auto s = store.value()->stream("app");
  ASSERT_TRUE(s.ok());
  Stream* stream = s.value();
  auto raws = make_raws(0, 30);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(stream->append(record_view(raws[i])).ok());
  ASSERT_TRUE(stream->wait_durable(9, std::chrono::seconds(10)));
  stream->request_roll();
  ASSERT_TRUE(wait_until([&] { return stream->stats().segment_seq == 1; }));
  ASSERT_TRUE(wait_until([&] { return stream->stats().segments_sealed == 1; }));
  for (int i = 10; i < 30; ++i) ASSERT_TRUE(stream->append(record_view(raws[i])).ok());
  ASSERT_TRUE(stream->wait_durable(29, std::chrono::seconds(10)));
  // A roll of a segment without records is a no-op.
  ASSERT_TRUE(store.value()->close().ok());
  auto segs = segment_paths(env, "/data/app");
  ASSERT_EQ(segs.size(), 2u);
  auto f0 = read_or_fail(env, segs[0]);
  auto f1 = read_or_fail(env, segs[1]);
  EXPECT_TRUE(is_sealed(f0));
  EXPECT_FALSE(is_sealed(f1));
  auto h1 = format::decode_header(f1);
  ASSERT_TRUE(h1.ok());
  EXPECT_EQ(h1->first_index, 10u);
  expect_records(env, "/data", "app", raws);
  expect_verified(env, "/data", key_, 30);
}

TEST_F(EngineTest, RequestRollOfAnEmptySegmentDoesNothing) {
  io::FakeEnv env(13);
  auto store = Store::open(env, "/data", key_.signer(), small_options());
  ASSERT_TRUE(store.ok());
  auto s = store.value()->stream("app");
  ASSERT_TRUE(s.ok());
  s.value()->request_roll();
  ASSERT_TRUE(store.value()->close().ok());
  EXPECT_EQ(segment_paths(env, "/data/app").size(), 1u);
  auto r = verify_report(env, "/data", key_);
  EXPECT_TRUE(r.ok()) << describe(r);
}

// ---------------------------------------------------------------------------
// Reopening

TEST_F(EngineTest, ReopenContinuesTheStream) {
  io::FakeEnv env(21);
  StoreOptions opt = small_options();
  auto first = make_raws(0, 100);
  auto second = make_raws(100, 100);
  std::vector<uint64_t> idx1, idx2;
  ASSERT_TRUE(ingest(env, "/data", key_.signer(), opt, "app", first, &idx1).ok());
  ASSERT_TRUE(ingest(env, "/data", key_.signer(), opt, "app", second, &idx2).ok());
  ASSERT_EQ(idx2.size(), 100u);
  for (uint64_t i = 0; i < 100; ++i) {
    EXPECT_EQ(idx1[i], i);
    EXPECT_EQ(idx2[i], 100 + i);
  }
  auto all = first;
  all.insert(all.end(), second.begin(), second.end());
  expect_records(env, "/data", "app", all);
  expect_verified(env, "/data", key_, 200);
  // A third time, with nothing appended: still verifies.
  ASSERT_TRUE(ingest(env, "/data", key_.signer(), opt, "app", {}).ok());
  expect_verified(env, "/data", key_, 200);
}

TEST_F(EngineTest, ReopenOnPosixEnvContinuesTheStream) {
  std::string dir = tmp_.sub("data");
  ASSERT_TRUE(io::posix_env().make_dirs(dir).ok());
  if (!io::posix_env().probe_direct(dir).ok()) GTEST_SKIP() << "no O_DIRECT in the test directory";
  StoreOptions opt = small_options();
  auto first = make_raws(0, 150);
  auto second = make_raws(150, 150);
  std::vector<uint64_t> idx2;
  ASSERT_TRUE(ingest(io::posix_env(), dir, key_.signer(), opt, "app", first).ok());
  ASSERT_TRUE(ingest(io::posix_env(), dir, key_.signer(), opt, "app", second, &idx2).ok());
  ASSERT_EQ(idx2.front(), 150u);
  ASSERT_EQ(idx2.back(), 299u);
  auto all = first;
  all.insert(all.end(), second.begin(), second.end());
  expect_records(io::posix_env(), dir, "app", all);
  expect_verified(io::posix_env(), dir, key_, 300);
}

TEST_F(EngineTest, SeveralStreamsAreIndependent) {
  io::FakeEnv env(22);
  auto store = Store::open(env, "/data", key_.signer(), small_options());
  ASSERT_TRUE(store.ok());
  auto a = store.value()->stream("a");
  auto b = store.value()->stream("b.audit");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE(store.value()->stream("../x").ok());
  EXPECT_FALSE(store.value()->stream("").ok());
  auto ra = make_raws(0, 50, "a");
  auto rb = make_raws(0, 70, "b");
  for (auto& r : ra) ASSERT_TRUE(a.value()->append(record_view(r)).ok());
  for (auto& r : rb) ASSERT_TRUE(b.value()->append(record_view(r)).ok());
  ASSERT_TRUE(a.value()->wait_durable(49, std::chrono::seconds(10)));
  ASSERT_TRUE(b.value()->wait_durable(69, std::chrono::seconds(10)));
  auto names = store.value()->list_streams();
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(names.value(), (std::vector<std::string>{"a", "b.audit"}));
  ASSERT_TRUE(store.value()->close().ok());
  expect_records(env, "/data", "a", ra);
  expect_records(env, "/data", "b.audit", rb);
  auto r = verify_report(env, "/data", key_);
  EXPECT_TRUE(r.ok()) << describe(r);
  EXPECT_EQ(r.streams.size(), 2u);
}

TEST_F(EngineTest, AppendRefusesOversizeRecordsAndAppendsAfterClose) {
  io::FakeEnv env(23);
  auto store = Store::open(env, "/data", key_.signer(), small_options());
  ASSERT_TRUE(store.ok());
  auto s = store.value()->stream("app");
  ASSERT_TRUE(s.ok());
  std::string big(9000, 'x');  // record_bytes_max is 8192 in small_options()
  auto r = s.value()->append(record_view(big));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  ASSERT_TRUE(s.value()->append(record_view("fits")).ok());
  ASSERT_TRUE(store.value()->close().ok());
  EXPECT_FALSE(store.value()->stream("app").ok()) << "a closed store opens no stream";
  expect_verified(env, "/data", key_, 1);
}

// append_batch: several producers, each batch larger than the staging buffer
// (so every call waits for room at least once): every record lands once, at
// the index the call reported, and each producer's indexes increase.
TEST_F(EngineTest, AppendBatchGivesEachRecordItsIndexAcrossWaitsForRoom) {
  io::FakeEnv env(25);
  auto store = Store::open(env, "/data", key_.signer(), small_options());
  ASSERT_TRUE(store.ok());
  auto s = store.value()->stream("app");
  ASSERT_TRUE(s.ok());
  Stream* stream = s.value();
  constexpr int kProducers = 3;
  constexpr int kBatches = 6;
  constexpr int kPerBatch = 400;  // ~12 KiB of records: more than one staging buffer
  std::vector<std::vector<std::string>> raws(kProducers);
  std::vector<std::vector<uint64_t>> indexes(kProducers);
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    raws[p] = make_raws(0, kBatches * kPerBatch, "p" + std::to_string(p));
    indexes[p].resize(raws[p].size());
    producers.emplace_back([&, p] {
      for (int b = 0; b < kBatches; ++b) {
        std::vector<format::RecordView> views;
        for (int i = 0; i < kPerBatch; ++i) views.push_back(record_view(raws[p][b * kPerBatch + i]));
        size_t appended = 0;
        std::span<uint64_t> out(indexes[p].data() + b * kPerBatch, kPerBatch);
        Status st = stream->append_batch(views, out, appended);
        EXPECT_TRUE(st.ok()) << st.to_string();
        EXPECT_EQ(appended, static_cast<size_t>(kPerBatch));
      }
    });
  }
  for (auto& t : producers) t.join();
  uint64_t total = kProducers * kBatches * kPerBatch;
  ASSERT_TRUE(stream->wait_durable(total - 1, std::chrono::seconds(30)));
  ASSERT_TRUE(store.value()->close().ok());
  auto got = read_raws(env, "/data", "app");
  ASSERT_EQ(got.size(), total);
  for (int p = 0; p < kProducers; ++p) {
    for (size_t i = 0; i < raws[p].size(); ++i) {
      if (i > 0) {
        ASSERT_GT(indexes[p][i], indexes[p][i - 1]) << "producer " << p << " record " << i;
      }
      ASSERT_EQ(got[indexes[p][i]], raws[p][i]) << "producer " << p << " record " << i;
    }
  }
  expect_verified(env, "/data", key_, total);
}

// A refused record ends the call: the ones before it are in, the caller goes
// on after it; a closed stream takes nothing.
TEST_F(EngineTest, AppendBatchStopsAtTheFirstRefusedRecord) {
  io::FakeEnv env(26);
  auto store = Store::open(env, "/data", key_.signer(), small_options());
  ASSERT_TRUE(store.ok());
  auto s = store.value()->stream("app");
  ASSERT_TRUE(s.ok());
  Stream* stream = s.value();
  std::string big(9000, 'x');  // record_bytes_max is 8192 in small_options()
  std::vector<std::string> raws = {"a", "b", big, "c"};
  std::vector<format::RecordView> views;
  for (auto& r : raws) views.push_back(record_view(r));
  std::vector<uint64_t> idx(views.size(), 99);
  size_t appended = 7;
  Status st = stream->append_batch(views, idx, appended);
  EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.to_string();
  ASSERT_EQ(appended, 2u);
  EXPECT_EQ(idx[0], 0u);
  EXPECT_EQ(idx[1], 1u);
  st = stream->append_batch(std::span(views).subspan(3), {}, appended);
  ASSERT_TRUE(st.ok()) << st.to_string();
  EXPECT_EQ(appended, 1u);
  ASSERT_TRUE(store.value()->close().ok());
  st = stream->append_batch(views, {}, appended);
  EXPECT_EQ(st.code(), Code::kFailedPrecondition) << st.to_string();
  EXPECT_EQ(appended, 0u);
  expect_records(env, "/data", "app", {"a", "b", "c"});
  expect_verified(env, "/data", key_, 3);
}

TEST_F(EngineTest, CloseWakesWaitersOfRecordsThatNeverCome) {
  io::FakeEnv env(24);
  auto store = Store::open(env, "/data", key_.signer(), small_options());
  ASSERT_TRUE(store.ok());
  auto s = store.value()->stream("app");
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(s.value()->append(record_view("one")).ok());
  std::atomic<int> woke{0};
  std::atomic<bool> result{true};
  Stream* stream = s.value();
  // Record 5 is never appended: close must wake the waiter (false) rather than
  // leave it asleep for its whole timeout.
  std::thread waiter([&] {
    result = stream->wait_durable(5, std::chrono::seconds(60));
    woke = 1;
  });
  ASSERT_TRUE(stream->wait_durable(0, std::chrono::seconds(10)));
  std::thread closer([&] { EXPECT_TRUE(store.value()->close().ok()); });
  bool done = wait_until([&] { return woke.load() == 1; }, std::chrono::seconds(30));
  closer.join();
  if (!done) {
    // Unblock it for the join below: nothing else will.
    ADD_FAILURE() << "wait_durable was not woken by close()";
  }
  waiter.join();
  EXPECT_FALSE(result.load());
}

// ---------------------------------------------------------------------------
// A slow signer never sits on the write path

TEST_F(EngineTest, SlowSignerDoesNotBlockAppends) {
  io::FakeEnv env(31);
  StoreOptions opt = small_options();
  opt.stream.segment_bytes = 64 << 10;
  opt.stream.checkpoint_ms = 1;
  auto store = Store::open(env, "/data", key_.slow_signer(200), opt);
  ASSERT_TRUE(store.ok());
  auto s = store.value()->stream("app");
  ASSERT_TRUE(s.ok());
  Stream* stream = s.value();
  auto raws = make_raws(0, 3000);
  for (uint64_t i = 0; i < raws.size(); ++i) {
    auto idx = stream->append(record_view(raws[i]));
    ASSERT_TRUE(idx.ok()) << idx.status().to_string();
    ASSERT_EQ(idx.value(), i);
  }
  ASSERT_TRUE(stream->wait_durable(raws.size() - 1, std::chrono::seconds(60)));
  EXPECT_EQ(stream->durable_size(), raws.size());
  EXPECT_TRUE(stream->health().ok());
  ASSERT_TRUE(store.value()->close().ok());
  expect_records(env, "/data", "app", raws);
  expect_verified(env, "/data", key_, raws.size());
}

// A signer that fails while `failing` is set (a TPM that went away).
class FlakySigner final : public hsm::Signer {
 public:
  explicit FlakySigner(std::shared_ptr<hsm::Signer> inner) : inner_(std::move(inner)) {}
  hsm::SignerKind kind() const override { return inner_->kind(); }
  const std::vector<uint8_t>& public_key_der() const override { return inner_->public_key_der(); }
  const Hash32& key_id() const override { return inner_->key_id(); }
  Result<hsm::Evidence> evidence() override { return inner_->evidence(); }
  Result<std::vector<uint8_t>> sign_digest(const Hash32& digest) override {
    if (failing.load()) return unavailable("test signer is failing");
    return inner_->sign_digest(digest);
  }
  std::atomic<bool> failing{false};

 private:
  std::shared_ptr<hsm::Signer> inner_;
};

TEST_F(EngineTest, RecordsLeftUnsignedByAFailedSignerAreSignedAtTheNextStart) {
  io::FakeEnv env(32);
  StoreOptions opt = small_options();
  opt.close_sign_timeout_ms = 300;
  auto flaky = std::make_shared<FlakySigner>(key_.signer());
  auto raws = make_raws(0, 50);
  {
    auto store = Store::open(env, "/data", flaky, opt);
    ASSERT_TRUE(store.ok());
    auto s = store.value()->stream("app");
    ASSERT_TRUE(s.ok());
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(s.value()->append(record_view(raws[i])).ok());
    ASSERT_TRUE(s.value()->wait_durable(19, std::chrono::seconds(10)));
    ASSERT_TRUE(wait_until([&] { return s.value()->signed_size() == 20; }));
    flaky->failing = true;
    for (int i = 20; i < 50; ++i) ASSERT_TRUE(s.value()->append(record_view(raws[i])).ok());
    // Ingest goes on without the signer.
    ASSERT_TRUE(s.value()->wait_durable(49, std::chrono::seconds(10)));
    EXPECT_TRUE(s.value()->health().ok());
    EXPECT_EQ(s.value()->signed_size(), 20u);
    Status st = store.value()->close();
    EXPECT_FALSE(st.ok()) << "close reports the records it could not sign";
  }
  {
    auto r = verify_report(env, "/data", key_);
    EXPECT_TRUE(has_kind(kinds_of(r), "unsigned-tail")) << describe(r);
  }
  // The next start signs them.
  ASSERT_TRUE(ingest(env, "/data", key_.signer(), opt, "app", {}).ok());
  expect_records(env, "/data", "app", raws);
  expect_verified(env, "/data", key_, 50);
}

// ---------------------------------------------------------------------------
// A failed write stops the stream

TEST_F(EngineTest, WriteErrorStopsTheStreamAndAcknowledgesNothingAfterIt) {
  io::FakeEnv env(41);
  StoreOptions opt = small_options();
  auto store = Store::open(env, "/data", key_.signer(), opt);
  ASSERT_TRUE(store.ok());
  auto s = store.value()->stream("app");
  ASSERT_TRUE(s.ok());
  Stream* stream = s.value();
  std::atomic<uint64_t> reported{0};
  stream->add_durable_callback([&](uint64_t n) { reported.store(n); });
  auto raws = make_raws(0, 200);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(stream->append(record_view(raws[i])).ok());
  ASSERT_TRUE(stream->wait_durable(99, std::chrono::seconds(10)));
  // Quiet: every durable record covered, nothing in flight.
  ASSERT_TRUE(wait_until([&] { return stream->signed_size() == 100; }));
  env.fail_next_write();
  uint64_t appended = 100;
  for (int i = 100; i < 200; ++i) {
    auto r = stream->append(record_view(raws[i]));
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Code::kFailedPrecondition);
      break;
    }
    ++appended;
  }
  ASSERT_TRUE(wait_until([&] { return !stream->health().ok(); })) << "the failed write did not stop the stream";
  EXPECT_FALSE(stream->wait_durable(100, std::chrono::milliseconds(100)));
  EXPECT_EQ(stream->durable_size(), 100u);
  EXPECT_EQ(reported.load(), 100u);
  auto r = stream->append(record_view("after the failure"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kFailedPrecondition);
  EXPECT_FALSE(store.value()->close().ok()) << "close reports the failed stream";
  EXPECT_GT(appended, 100u);
  // On disk: the first 100 records and nothing after them.
  auto got = read_raws(env, "/data", "app");
  EXPECT_EQ(got.size(), 100u);
  // The next start recovers and continues after record 99.
  auto more = make_raws(100, 10, "again");
  std::vector<uint64_t> idx;
  ASSERT_TRUE(ingest(env, "/data", key_.signer(), opt, "app", more, &idx).ok());
  EXPECT_EQ(idx.front(), 100u);
  auto all = make_raws(0, 100);
  all.insert(all.end(), more.begin(), more.end());
  expect_records(env, "/data", "app", all);
  expect_verified(env, "/data", key_, 110);
}

// ---------------------------------------------------------------------------
// Recovery decision table (engine/store.cc, above Stream::Impl::recover), one
// test per row.

class RecoveryTest : public EngineTest {
 protected:
  // A closed stream "app" in /data of a FakeEnv with n records.
  std::unique_ptr<io::FakeEnv> make_stream(uint64_t n, StoreOptions opt) {
    auto env = std::make_unique<io::FakeEnv>(51);
    raws_ = make_raws(0, n);
    EXPECT_TRUE(ingest(*env, "/data", key_.signer(), opt, "app", raws_).ok());
    return env;
  }
  Result<std::vector<uint64_t>> append_more(io::Env& env, uint64_t n, const StoreOptions& opt) {
    auto more = make_raws(raws_.size(), n, "more");
    std::vector<uint64_t> idx;
    LS_RETURN_IF_ERROR(ingest(env, "/data", key_.signer(), opt, "app", more, &idx));
    raws_.insert(raws_.end(), more.begin(), more.end());
    return idx;
  }
  std::vector<std::string> raws_;
};

TEST_F(RecoveryTest, Row1NoSegmentCreatesSegmentZero) {
  io::FakeEnv env(52);
  ASSERT_TRUE(env.make_dirs("/data/app").ok());  // the stream directory, empty
  ASSERT_TRUE(ingest(env, "/data", key_.signer(), small_options(), "app", make_raws(0, 3)).ok());
  auto segs = segment_paths(env, "/data/app");
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0], "/data/app/" + format::segment_file_name(0));
  expect_verified(env, "/data", key_, 3);
}

TEST_F(RecoveryTest, Row2TornHeaderOfTheNewestSegmentIsRemoved) {
  StoreOptions opt = small_options();
  opt.stream.segment_bytes = 64 << 20;
  io::FakeEnv env(53);
  raws_ = make_raws(0, 40);
  {
    auto store = Store::open(env, "/data", key_.signer(), opt);
    ASSERT_TRUE(store.ok());
    auto s = store.value()->stream("app");
    ASSERT_TRUE(s.ok());
    for (auto& r : raws_) ASSERT_TRUE(s.value()->append(record_view(r)).ok());
    ASSERT_TRUE(s.value()->wait_durable(39, std::chrono::seconds(10)));
    ASSERT_TRUE(wait_until([&] { return s.value()->signed_size() == 40; }));
    // The roll writes the next segment's header first: crash on that write.
    env.crash_at_write(1);
    s.value()->request_roll();
    ASSERT_TRUE(wait_until([&] { return env.crashed(); }));
    EXPECT_FALSE(store.value()->close().ok());
  }
  env.restart();
  std::string newest = "/data/app/" + format::segment_file_name(1);
  ASSERT_TRUE(env.exists(newest)) << "create_append made the entry durable";
  auto torn = read_or_fail(env, newest);
  ASSERT_LE(torn.size(), format::kHeaderBytes);
  ASSERT_FALSE(format::decode_header(torn).ok()) << "the header write was dropped or torn";
  auto idx = append_more(env, 5, opt);
  ASSERT_TRUE(idx.ok()) << idx.status().to_string();
  EXPECT_EQ(idx->front(), 40u);
  // Segment 1 was removed and segment 0 goes on as the open segment.
  auto segs = segment_paths(env, "/data/app");
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_FALSE(is_sealed(read_or_fail(env, segs[0])));
  expect_records(env, "/data", "app", raws_);
  expect_verified(env, "/data", key_, 45);
}

TEST_F(RecoveryTest, Row3BadHeaderOfALargerFileIsRefused) {
  auto env0 = make_stream(120, small_options());
  auto env = copy_to_mutable_fake(*env0, "/data");
  auto segs = segment_paths(*env, "/data/app");
  ASSERT_GE(segs.size(), 2u);
  std::vector<uint8_t>* f = env->file_bytes(segs.back());
  ASSERT_NE(f, nullptr);
  ASSERT_GT(f->size(), format::kHeaderBytes);
  (*f)[format::kHdrCreatedNs] ^= 0x40;  // checksum mismatch
  auto store = Store::open(*env, "/data", key_.signer(), small_options());
  ASSERT_TRUE(store.ok());
  auto s = store.value()->stream("app");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Code::kDataLoss) << s.status().to_string();
  // Nothing was removed or rewritten.
  EXPECT_EQ(segment_paths(*env, "/data/app"), segs);
}

TEST_F(RecoveryTest, Row4SealedLastSegmentGetsASuccessor) {
  StoreOptions opt = small_options();
  auto env0 = make_stream(200, opt);
  auto env = copy_to_mutable_fake(*env0, "/data");
  auto segs = segment_paths(*env, "/data/app");
  ASSERT_GE(segs.size(), 3u);
  // Keep segments 0 and 1 (sealed): as if the crash came before segment 2's
  // entry reached the disk. The records of the removed segment go too.
  for (size_t i = 2; i < segs.size(); ++i) ASSERT_TRUE(env->remove(segs[i]).ok());
  auto f1 = read_or_fail(*env, segs[1]);
  ASSERT_TRUE(is_sealed(f1));
  auto st1 = read_segment_state(f1);
  ASSERT_TRUE(st1.ok());
  raws_.resize(st1->frontier.size());
  auto idx = append_more(*env, 20, opt);
  ASSERT_TRUE(idx.ok()) << idx.status().to_string();
  EXPECT_EQ(idx->front(), st1->frontier.size());
  auto after = segment_paths(*env, "/data/app");
  ASSERT_GE(after.size(), 3u);
  auto h2 = format::decode_header(read_or_fail(*env, after[2]));
  ASSERT_TRUE(h2.ok());
  EXPECT_EQ(h2->segment_seq, 2u);
  EXPECT_EQ(h2->first_index, st1->frontier.size());
  expect_records(*env, "/data", "app", raws_);
  expect_verified(*env, "/data", key_, raws_.size());
}

TEST_F(RecoveryTest, Row5BytesAfterASealAreRefused) {
  StoreOptions opt = small_options();
  auto env0 = make_stream(200, opt);
  auto env = copy_to_mutable_fake(*env0, "/data");
  auto segs = segment_paths(*env, "/data/app");
  ASSERT_GE(segs.size(), 3u);
  for (size_t i = 2; i < segs.size(); ++i) ASSERT_TRUE(env->remove(segs[i]).ok());
  std::vector<uint8_t>* f = env->file_bytes(segs[1]);
  ASSERT_NE(f, nullptr);
  f->insert(f->end(), format::kBlockBytes, 0);
  auto store = Store::open(*env, "/data", key_.signer(), opt);
  ASSERT_TRUE(store.ok());
  auto s = store.value()->stream("app");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Code::kDataLoss) << s.status().to_string();
}

TEST_F(RecoveryTest, Row6TornTailIsCutAndARecoveryFrameRecorded) {
  StoreOptions opt = small_options();
  opt.stream.segment_bytes = 64 << 20;
  auto env = make_stream(60, opt);
  auto segs = segment_paths(*env, "/data/app");
  ASSERT_EQ(segs.size(), 1u);
  std::vector<uint8_t>* f = env->file_bytes(segs[0]);
  ASSERT_NE(f, nullptr);
  uint64_t end = f->size();
  auto frames = frames_of(*f);
  ASSERT_GE(frames.size(), 2u);
  // A torn batch write: its first two sectors (a good-looking frame header of an
  // old batch, whose frame sequence and body checksum are wrong here), then a
  // sector of garbage, then nothing.
  std::vector<uint8_t> torn(f->begin() + static_cast<long>(frames[0].offset),
                            f->begin() + static_cast<long>(frames[0].offset) + 1024);
  for (int i = 0; i < 512; ++i) torn.push_back(static_cast<uint8_t>(i * 31 + 7));
  f->insert(f->end(), torn.begin(), torn.end());
  auto idx = append_more(*env, 10, opt);
  ASSERT_TRUE(idx.ok()) << idx.status().to_string();
  EXPECT_EQ(idx->front(), 60u);
  auto file = read_or_fail(*env, segs[0]);
  auto after = frames_of(file);
  bool found = false;
  for (const auto& fr : after) {
    if (fr.header.type != FrameType::kRecovery) continue;
    EXPECT_EQ(fr.offset, end) << "the recovery frame sits where the cut was";
    auto rec = format::decode_recovery(
        std::span<const uint8_t>(file).subspan(fr.offset + format::kFrameHeaderBytes, fr.header.body_bytes));
    ASSERT_TRUE(rec.ok());
    EXPECT_EQ(rec->cut_offset, end);
    EXPECT_EQ(rec->cut_bytes, torn.size());
    EXPECT_FALSE(rec->reason.empty());
    found = true;
  }
  EXPECT_TRUE(found) << "no recovery frame";
  expect_records(*env, "/data", "app", raws_);
  auto r = verify_report(*env, "/data", key_);
  EXPECT_TRUE(r.ok()) << describe(r);
  ASSERT_EQ(r.streams.size(), 1u);
  EXPECT_EQ(r.streams[0].recoveries, 1u);
  bool noted = false;
  for (auto& n : r.streams[0].notes) noted = noted || n.find("recovery") != std::string::npos;
  EXPECT_TRUE(noted) << describe(r);
}

// The chain at every frame boundary of a segment file, as the verifier computes it.
std::vector<std::pair<uint64_t, Hash32>> chain_boundaries(const std::vector<uint8_t>& file) {
  std::vector<std::pair<uint64_t, Hash32>> out;
  Hash32 chain = format::chain_start(file);
  out.emplace_back(format::kHeaderBytes, chain);
  walk_frames(file, [&](const FrameView& f) {
    chain = format::chain_next(chain,
                               f.header.type == FrameType::kBatch ? f.frame.first(format::kFrameHeaderBytes) : f.frame);
    out.emplace_back(f.offset + f.header.span_bytes, chain);
    return true;
  });
  return out;
}

// Crash in a roll after the next segment's header is durable and before the
// seal of the previous one is: the previous segment is sealed at reopen.
void crash_between_roll_and_seal(const TestKey& key, bool torn_seal, bool checkpoint_after_roll) {
  StoreOptions opt = small_options();
  opt.stream.segment_bytes = 64 << 20;
  // Once every durable record is covered, no checkpoint is due until new
  // records come; with the slow signer, only the first one is made.
  if (checkpoint_after_roll) opt.stream.checkpoint_ms = 600000;
  io::FaultConfig faults;
  faults.torn_on_crash = false;
  io::FakeEnv env(54, faults);
  auto raws = make_raws(0, 25);
  {
    // With a slow signer the first checkpoint is still being signed when the
    // roll happens, so it is written into the rolled segment after the roll
    // point, and the seal after it.
    auto store = Store::open(env, "/data", checkpoint_after_roll ? key.slow_signer(300) : key.signer(), opt);
    ASSERT_TRUE(store.ok());
    auto s = store.value()->stream("app");
    ASSERT_TRUE(s.ok());
    for (auto& r : raws) ASSERT_TRUE(s.value()->append(record_view(r)).ok());
    ASSERT_TRUE(s.value()->wait_durable(24, std::chrono::seconds(10)));
    if (checkpoint_after_roll) {
      // Let the writer hand the checkpoint to the signer (it does right after
      // the batch is durable) before the roll.
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      ASSERT_EQ(s.value()->signed_size(), 0u);
      env.crash_at_write(3);  // 1: segment 1's header, 2: the checkpoint, 3: the seal
    } else {
      ASSERT_TRUE(wait_until([&] { return s.value()->signed_size() == 25; }));
      env.crash_at_write(2);  // 1: segment 1's header, 2: the seal
    }
    s.value()->request_roll();
    ASSERT_TRUE(wait_until([&] { return env.crashed(); }));
    (void)store.value()->close();
  }
  env.restart();
  auto segs = segment_paths(env, "/data/app");
  ASSERT_EQ(segs.size(), 2u);
  std::vector<uint8_t>* f0 = env.file_bytes(segs[0]);
  ASSERT_NE(f0, nullptr);
  ASSERT_FALSE(is_sealed(*f0));
  auto h1 = format::decode_header(read_or_fail(env, segs[1]));
  ASSERT_TRUE(h1.ok()) << "segment 1's header is durable";
  auto bounds = chain_boundaries(*f0);
  ASSERT_FALSE(bounds.empty());
  if (checkpoint_after_roll) {
    // The precondition of this case: a checkpoint frame after the roll point.
    ASSERT_NE(bounds.back().second, h1->prev_chain) << "no frame after the roll point in segment 0";
    bool roll_point = false;
    for (auto& b : bounds) roll_point = roll_point || b.second == h1->prev_chain;
    ASSERT_TRUE(roll_point);
  } else {
    ASSERT_EQ(bounds.back().second, h1->prev_chain);
  }
  uint64_t end0 = f0->size();
  if (torn_seal) {
    // The seal write was torn: one sector of a frame-looking header and garbage.
    auto frames = frames_of(*f0);
    std::vector<uint8_t> torn(f0->begin() + static_cast<long>(frames.back().offset),
                              f0->begin() + static_cast<long>(frames.back().offset) + 512);
    torn.resize(1024, 0xA5);
    f0->insert(f0->end(), torn.begin(), torn.end());
  }
  auto more = make_raws(25, 5, "more");
  std::vector<uint64_t> idx;
  Status st = ingest(env, "/data", key.signer(), opt, "app", more, &idx);
  ASSERT_TRUE(st.ok()) << st.to_string();
  EXPECT_EQ(idx.front(), 25u);
  auto file0 = read_or_fail(env, segs[0]);
  EXPECT_TRUE(is_sealed(file0)) << "segment 0 was sealed at reopen";
  EXPECT_GE(file0.size(), end0 + format::kBlockBytes);
  raws.insert(raws.end(), more.begin(), more.end());
  expect_records(env, "/data", "app", raws);
  auto r = verify_report(env, "/data", key);
  EXPECT_TRUE(r.ok()) << describe(r);
}

TEST_F(RecoveryTest, Row7CrashBetweenRollAndSealIsSealedAtReopen) {
  crash_between_roll_and_seal(key_, /*torn_seal=*/false, /*checkpoint_after_roll=*/false);
}

TEST_F(RecoveryTest, Row7TornSealOfARolledSegmentIsCutAndSealedAtReopen) {
  crash_between_roll_and_seal(key_, /*torn_seal=*/true, /*checkpoint_after_roll=*/false);
}

TEST_F(RecoveryTest, Row7CheckpointWrittenAfterTheRollPointIsSealedAtReopen) {
  crash_between_roll_and_seal(key_, /*torn_seal=*/false, /*checkpoint_after_roll=*/true);
}

TEST_F(RecoveryTest, Row7CheckpointAfterTheRollPointAndTornSealAreSealedAtReopen) {
  crash_between_roll_and_seal(key_, /*torn_seal=*/true, /*checkpoint_after_roll=*/true);
}

// Rolls do not wait for seals: with a slow signer several rolled segments can
// be unsealed at a crash. All of them are sealed at reopen, oldest first.
TEST_F(RecoveryTest, Row7SeveralRolledSegmentsAreSealedAtReopen) {
  StoreOptions opt = small_options();
  opt.stream.checkpoint_ms = 600000;
  io::FaultConfig faults;
  faults.torn_on_crash = false;
  io::FakeEnv env(56, faults);
  std::vector<std::string> raws;
  {
    auto store = Store::open(env, "/data", key_.slow_signer(300), opt);
    ASSERT_TRUE(store.ok());
    auto s = store.value()->stream("app");
    ASSERT_TRUE(s.ok());
    for (uint64_t i = 0; i < 1000 && s.value()->stats().segment_seq < 3; ++i) {
      raws.push_back(record_raw(i));
      auto idx = s.value()->append(record_view(raws.back()));
      ASSERT_TRUE(idx.ok());
      if (i % 20 == 19) {
        ASSERT_TRUE(s.value()->wait_durable(idx.value(), std::chrono::seconds(10)));
      }
    }
    ASSERT_TRUE(s.value()->wait_durable(raws.size() - 1, std::chrono::seconds(10)));
    ASSERT_GE(s.value()->stats().segment_seq, 3u);
    env.crash();
    (void)store.value()->close();
  }
  env.restart();
  auto segs = segment_paths(env, "/data/app");
  ASSERT_GE(segs.size(), 4u);
  size_t unsealed_before_last = 0;
  for (size_t i = 0; i + 1 < segs.size(); ++i) unsealed_before_last += is_sealed(read_or_fail(env, segs[i])) ? 0 : 1;
  ASSERT_GE(unsealed_before_last, 2u) << "the precondition: several rolled segments without a seal";
  auto more = make_raws(raws.size(), 5, "more");
  std::vector<uint64_t> idx;
  Status st = ingest(env, "/data", key_.signer(), opt, "app", more, &idx);
  ASSERT_TRUE(st.ok()) << st.to_string();
  EXPECT_EQ(idx.front(), raws.size());
  for (size_t i = 0; i + 1 < segs.size(); ++i) {
    EXPECT_TRUE(is_sealed(read_or_fail(env, segs[i]))) << segs[i];
  }
  raws.insert(raws.end(), more.begin(), more.end());
  expect_records(env, "/data", "app", raws);
  expect_verified(env, "/data", key_, raws.size());
}

}  // namespace
}  // namespace logseal::engine
