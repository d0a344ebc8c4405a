// Byte surgery: one test per finding kind the verifier reports (engine/verify.h),
// each made by editing a good data directory the way an attacker or a failing
// disk would — recomputing the XXH3 checksums where the edit is meant to get
// past them, so that only the cryptography (or the structure checks) catch it.
// And: flipping any single byte of a segment file is always found.
#include "engine/verify.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "engine/key_rotation.h"
#include "engine/reader.h"
#include "hsm/sha256.h"
#include "engine/store.h"
#include "io/fake_env.h"
#include "tests/test_util.h"

namespace logseal::engine {
namespace {

using namespace logseal::test;
using format::FrameType;

constexpr const char* kDir = "/data";
constexpr const char* kStreamDir = "/data/app";
constexpr uint64_t kRecords = 300;

class VerifyTest : public ::testing::Test {
 protected:
  // One good data directory for the whole suite, copied per test.
  static void SetUpTestSuite() {
    tmp_ = new TempDir("verify_test");
    key_ = new TestKey(make_soft_key(tmp_->sub("key")));
    other_key_ = new TestKey(make_soft_key(tmp_->sub("other-key")));
    base_ = new io::FakeEnv(3);
    Status st = ingest(*base_, kDir, key_->signer(), small_options(), "app", make_raws(0, kRecords), nullptr, 20);
    ASSERT_TRUE(st.ok()) << st.to_string();
  }
  static void TearDownTestSuite() {
    delete base_;
    delete other_key_;
    delete key_;
    delete tmp_;
  }

  void SetUp() override {
    env_ = copy_to_mutable_fake(*base_, kDir);
    segs_ = segment_paths(*env_, kStreamDir);
    // Batches of 4 or 8 KiB in 16 KiB segments: 5 to 15 segments.
    ASSERT_GE(segs_.size(), 5u) << "the base directory should have several segments";
    auto r = verify_report(*env_, kDir, *key_);
    ASSERT_TRUE(r.ok()) << describe(r);
  }

  std::vector<uint8_t>& file(size_t i) {
    std::vector<uint8_t>* f = env_->file_bytes(segs_.at(i));
    LS_ASSERT(f != nullptr);
    return *f;
  }
  // The n-th frame of type t in segment i (n counts from 0; -1: the last one).
  FrameInfo frame(size_t i, FrameType t, int n = 0) {
    std::vector<FrameInfo> of_type;
    for (auto& f : frames_of(file(i))) {
      if (f.header.type == t) of_type.push_back(f);
    }
    EXPECT_FALSE(of_type.empty()) << "segment " << i << " has no frame of type " << static_cast<int>(t);
    if (of_type.empty()) return {};
    return n < 0 ? of_type.back() : of_type.at(static_cast<size_t>(n));
  }
  std::vector<std::string> kinds(VerifyOptions o = {}) {
    report_ = verify_report(*env_, kDir, *key_, std::move(o));
    return kinds_of(report_);
  }
  // Finds kind and says what was found otherwise.
  void expect_kind(const std::string& kind, VerifyOptions o = {}) {
    auto k = kinds(std::move(o));
    EXPECT_TRUE(has_kind(k, kind)) << "expected a " << kind << " finding, got:\n" << describe(report_);
  }
  const Finding* finding_of(const std::string& kind) const {
    for (auto& f : report_.findings) {
      if (f.kind == kind) return &f;
    }
    return nullptr;
  }
  void rename(size_t a, const std::string& to) { ASSERT_TRUE(env_->rename(segs_.at(a), to).ok()); }

  static TempDir* tmp_;
  static TestKey* key_;
  static TestKey* other_key_;
  static io::FakeEnv* base_;
  std::unique_ptr<io::FakeEnv> env_;
  std::vector<std::string> segs_;
  VerifyReport report_;
};
TempDir* VerifyTest::tmp_ = nullptr;
TestKey* VerifyTest::key_ = nullptr;
TestKey* VerifyTest::other_key_ = nullptr;
io::FakeEnv* VerifyTest::base_ = nullptr;

TEST_F(VerifyTest, GoodDirectoryHasNoFindings) {
  auto k = kinds();
  EXPECT_TRUE(k.empty()) << describe(report_);
  ASSERT_EQ(report_.streams.size(), 1u);
  EXPECT_EQ(report_.streams[0].records, kRecords);
  EXPECT_EQ(report_.streams[0].signed_records, kRecords);
  EXPECT_EQ(report_.streams[0].segments, segs_.size());
  EXPECT_TRUE(report_.streams[0].open_segment);
  // In parallel: the same answer.
  VerifyOptions o;
  o.jobs = 4;
  EXPECT_TRUE(kinds(o).empty()) << describe(report_);
}

// ---- checksums and structure ----------------------------------------------------

TEST_F(VerifyTest, BadChecksumInABatchBody) {
  FrameInfo b = frame(1, FrameType::kBatch);
  file(1)[b.offset + format::kFrameHeaderBytes + 30] ^= 0x01;
  expect_kind("bad-checksum");
  const Finding* f = finding_of("bad-checksum");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->file, segs_[1]);
  EXPECT_EQ(f->offset, static_cast<int64_t>(b.offset));
  EXPECT_EQ(f->segment, 1);
  EXPECT_EQ(f->stream, "app");
}

TEST_F(VerifyTest, BadChecksumInTheSegmentHeader) {
  file(2)[format::kHdrCreatedNs] ^= 0x10;
  expect_kind("bad-checksum");
  EXPECT_EQ(finding_of("bad-checksum")->offset, 0);
}

TEST_F(VerifyTest, BadHeaderWithAGoodChecksum) {
  // A format version this build does not read, checksum recomputed.
  put_u16(file(2).data() + format::kHdrVersion, 2);
  reseal_header(file(2));
  expect_kind("bad-header");
  EXPECT_FALSE(has_kind(kinds(), "bad-checksum")) << describe(report_);
}

TEST_F(VerifyTest, BadRecordLengthInAForgedFrame) {
  // The first record's u32 length runs past the batch body; both frame
  // checksums are recomputed, so only the record structure check sees it.
  FrameInfo b = frame(1, FrameType::kBatch);
  uint8_t* body = file(1).data() + b.offset + format::kFrameHeaderBytes;
  put_u32(body, get_u32(body) + 100000);
  reseal_frame(file(1), b.offset, b.header);
  expect_kind("bad-record");
  EXPECT_FALSE(has_kind(kinds(), "bad-checksum")) << describe(report_);
  EXPECT_EQ(finding_of("bad-record")->offset, static_cast<int64_t>(b.offset));
}

TEST_F(VerifyTest, BadRecordFieldsInAForgedFrame) {
  // Inside the record: the raw length no longer adds up to the record size.
  FrameInfo b = frame(1, FrameType::kBatch);
  uint8_t* rec = file(1).data() + b.offset + format::kFrameHeaderBytes + 4;
  put_u32(rec + format::kRecRawLen, get_u32(rec + format::kRecRawLen) + 1);
  reseal_frame(file(1), b.offset, b.header);
  expect_kind("bad-record");
  EXPECT_EQ(finding_of("bad-record")->record_index, static_cast<int64_t>(b.header.first_index));
}

TEST_F(VerifyTest, RootMismatchWhenARecordByteIsChangedAndChecksumsRecomputed) {
  FrameInfo b = frame(2, FrameType::kBatch);
  uint8_t* rec = file(2).data() + b.offset + format::kFrameHeaderBytes + 4;
  uint32_t source_len = get_u16(rec + format::kRecSourceLen);
  rec[format::kRecFixedBytes + source_len + 5] ^= 0x20;  // a byte of the raw message
  reseal_frame(file(2), b.offset, b.header);
  auto k = kinds();
  EXPECT_TRUE(has_kind(k, "root-mismatch")) << describe(report_);
  EXPECT_FALSE(has_kind(k, "bad-checksum")) << describe(report_);
  const Finding* f = finding_of("root-mismatch");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->segment, 2);
}

TEST_F(VerifyTest, ChainBreakWhenAHeaderDoesNotContinueTheSeal) {
  file(3)[format::kHdrPrevChain + 7] ^= 0x01;
  reseal_header(file(3));
  expect_kind("chain-break");
  EXPECT_EQ(finding_of("chain-break")->segment, 3);
}

TEST_F(VerifyTest, ChainBreakWhenACheckpointFrameIsRemoved) {
  // Drop a checkpoint frame that has frames after it and renumber those,
  // checksums recomputed: the signed frames after it no longer follow the head
  // chain, nor cover the frame chain they signed.
  size_t seg = segs_.size();
  size_t drop = 0;
  std::vector<FrameInfo> frames;
  for (size_t i = 0; i < segs_.size() && seg == segs_.size(); ++i) {
    frames = frames_of(file(i));
    for (size_t k = 0; k + 1 < frames.size(); ++k) {
      if (frames[k].header.type == FrameType::kCheckpoint) {
        seg = i;
        drop = k;
        break;
      }
    }
  }
  ASSERT_LT(seg, segs_.size()) << "no checkpoint with a frame after it";
  std::vector<uint8_t>& f = file(seg);
  uint64_t at = frames[drop].offset;
  uint64_t span = frames[drop].header.span_bytes;
  f.erase(f.begin() + static_cast<long>(at), f.begin() + static_cast<long>(at + span));
  for (size_t i = drop + 1; i < frames.size(); ++i) {
    format::FrameHeader h = frames[i].header;
    h.frame_seq--;
    reseal_frame(f, frames[i].offset - span, h);
  }
  auto k = kinds();
  EXPECT_TRUE(has_kind(k, "chain-break")) << describe(report_);
  EXPECT_FALSE(has_kind(k, "bad-checksum")) << describe(report_);
}

// ---- signatures and keys -----------------------------------------------------------

TEST_F(VerifyTest, BadSignatureOnASeal) {
  FrameInfo s = frame(1, FrameType::kSeal);
  uint8_t* body = file(1).data() + s.offset + format::kFrameHeaderBytes;
  uint16_t sig_len = get_u16(body + format::kCheckpointBodyBytes);
  body[format::kCheckpointBodyBytes + 2 + sig_len - 1] ^= 0x01;  // last byte of S
  reseal_frame(file(1), s.offset, s.header);
  auto k = kinds();
  EXPECT_TRUE(has_kind(k, "bad-signature")) << describe(report_);
  EXPECT_FALSE(has_kind(k, "bad-checksum")) << describe(report_);
  EXPECT_EQ(finding_of("bad-signature")->offset, static_cast<int64_t>(s.offset));
}

TEST_F(VerifyTest, BadSignatureWhenASignedBodyIsChanged) {
  // Claim more records in a checkpoint body: the head changes, the signature
  // no longer matches it.
  size_t last = segs_.size() - 1;
  FrameInfo c = frame(last, FrameType::kCheckpoint, -1);
  uint8_t* body = file(last).data() + c.offset + format::kFrameHeaderBytes;
  body[format::kCkTimeNs] ^= 0x01;
  reseal_frame(file(last), c.offset, c.header);
  expect_kind("bad-signature");
}

TEST_F(VerifyTest, UnknownKey) {
  VerifyOptions o;
  o.keys = &other_key_->keys;
  auto k = kinds(o);
  EXPECT_TRUE(has_kind(k, "unknown-key")) << describe(report_);
  EXPECT_FALSE(has_kind(k, "bad-signature")) << describe(report_);
  // With both keys it verifies.
  std::vector<hsm::PublicKey> both;
  for (const auto& path : {other_key_->pub_path, key_->pub_path}) {
    auto k = hsm::PublicKey::load_pem_file(path);
    ASSERT_TRUE(k.ok());
    both.push_back(std::move(k).value());
  }
  o.keys = &both;
  EXPECT_TRUE(kinds(o).empty()) << describe(report_);
}

TEST_F(VerifyTest, SoftSignerRejectedWhenTpmIsRequired) {
  VerifyOptions o;
  o.require_tpm = true;
  expect_kind("soft-signer", o);
}

// ---- segments: missing, duplicate, reordered, truncated, trailing ---------------------

TEST_F(VerifyTest, MissingMiddleSegment) {
  ASSERT_TRUE(env_->remove(segs_[2]).ok());
  expect_kind("missing-segment");
}

TEST_F(VerifyTest, MissingLastSegmentsLeaveASealedLastOne) {
  ASSERT_TRUE(env_->remove(segs_.back()).ok());
  expect_kind("missing-segment");
  const Finding* f = finding_of("missing-segment");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->segment, static_cast<int64_t>(segs_.size() - 2));
}

TEST_F(VerifyTest, MissingFirstSegment) {
  ASSERT_TRUE(env_->remove(segs_[0]).ok());
  expect_kind("missing-segment");
}

TEST_F(VerifyTest, DuplicateSegment) {
  // Segment 1's bytes stored again under segment 2's name.
  put_file(*env_, segs_[2], file(1));
  expect_kind("duplicate-segment");
}

TEST_F(VerifyTest, ReorderedSegmentFiles) {
  std::string tmp = std::string(kStreamDir) + "/swap.tmp";
  rename(1, tmp);
  rename(2, segs_[1]);
  ASSERT_TRUE(env_->rename(tmp, segs_[2]).ok());
  expect_kind("reordered");
}

TEST_F(VerifyTest, SegmentMovedToAnotherStream) {
  ASSERT_TRUE(env_->make_dirs("/data/other").ok());
  put_file(*env_, "/data/other/" + format::segment_file_name(0), file(0));
  expect_kind("reordered");
}

TEST_F(VerifyTest, TruncatedMidFrame) {
  size_t last = segs_.size() - 1;
  FrameInfo b = frame(last, FrameType::kBatch, -1);
  file(last).resize(b.offset + 100);
  expect_kind("truncated");
  EXPECT_EQ(finding_of("truncated")->offset, static_cast<int64_t>(b.offset));
}

// A live logseald: its last write (or a new segment's header) is still landing.
// verify --allow-unsigned-tail reads up to it and says so; without the flag, and
// anywhere but the last segment, it stays a finding.
TEST_F(VerifyTest, LastWriteInProgressIsAcceptedOnlyWithAllowUnsignedTail) {
  size_t last = segs_.size() - 1;
  FrameInfo b = frame(last, FrameType::kBatch, -1);
  file(last).resize(b.offset + 100);
  VerifyOptions o;
  o.allow_unsigned_tail = true;
  EXPECT_TRUE(kinds(o).empty()) << describe(report_);
  EXPECT_FALSE(report_.streams.at(0).notes.empty());
  expect_kind("truncated");  // without the flag
}

TEST_F(VerifyTest, WriteInProgressInANonLastSegmentIsStillAFinding) {
  FrameInfo b = frame(1, FrameType::kBatch);
  file(1).resize(b.offset + 100);
  VerifyOptions o;
  o.allow_unsigned_tail = true;
  expect_kind("truncated", o);
}

TEST_F(VerifyTest, TruncatedInsideAFrameHeader) {
  FrameInfo b = frame(1, FrameType::kBatch);
  file(1).resize(b.offset + 20);
  expect_kind("truncated");
}

TEST_F(VerifyTest, TruncatedInsideTheSegmentHeader) {
  file(2).resize(1000);
  expect_kind("truncated");
}

TEST_F(VerifyTest, TruncatedSealOfANonLastSegment) {
  FrameInfo s = frame(2, FrameType::kSeal);
  file(2).resize(s.offset);
  expect_kind("truncated");
  EXPECT_EQ(finding_of("truncated")->segment, 2);
}

TEST_F(VerifyTest, TrailingDataAfterASeal) {
  std::vector<uint8_t>& f = file(1);
  for (int i = 0; i < 4096; ++i) f.push_back(static_cast<uint8_t>(i * 13 + 1));
  expect_kind("trailing-data");
}

TEST_F(VerifyTest, TornTailOfZeros) {
  std::vector<uint8_t>& f = file(segs_.size() - 1);
  f.insert(f.end(), 8192, 0);
  expect_kind("torn-tail");
}

TEST_F(VerifyTest, UnsignedTailWhenTheLastCheckpointIsCutAway) {
  size_t last = segs_.size() - 1;
  FrameInfo c = frame(last, FrameType::kCheckpoint, -1);
  FrameInfo b = frame(last, FrameType::kBatch, -1);
  ASSERT_GT(c.offset, b.offset) << "the last checkpoint follows the last batch";
  file(last).resize(c.offset);
  expect_kind("unsigned-tail");
  const Finding* f = finding_of("unsigned-tail");
  ASSERT_NE(f, nullptr);
  EXPECT_GT(f->record_count, 0);
  EXPECT_EQ(static_cast<uint64_t>(f->record_index + f->record_count), kRecords);
  // Allowed on request, and then only a note.
  VerifyOptions o;
  o.allow_unsigned_tail = true;
  EXPECT_TRUE(kinds(o).empty()) << describe(report_);
  EXPECT_FALSE(report_.streams.at(0).notes.empty());
}

TEST_F(VerifyTest, UnexpectedFileInAStreamDirectory) {
  put_file(*env_, std::string(kStreamDir) + "/notes.txt", {'h', 'i'});
  expect_kind("unexpected-file");
}

// ---- anchors: rollback and truncation --------------------------------------------------

Anchor anchor_of(io::Env& env) {
  auto cp = latest_checkpoint(env, kDir, "app");
  EXPECT_TRUE(cp.ok()) << cp.status().to_string();
  auto a = parse_anchor(format_anchor(cp->body, cp->signature));
  EXPECT_TRUE(a.ok()) << a.status().to_string();
  return std::move(a).value();
}

TEST_F(VerifyTest, AnchorFromALaterStateFindsTruncation) {
  // The data is restored from an earlier copy (env_), the anchor was kept from
  // a later state.
  auto later = copy_to_mutable_fake(*env_, kDir);
  ASSERT_TRUE(ingest(*later, kDir, key_->signer(), small_options(), "app", make_raws(kRecords, 100)).ok());
  VerifyOptions o;
  o.anchors.push_back(anchor_of(*later));
  // The later state itself is consistent with its anchor.
  auto good = verify_report(*later, kDir, *key_, o);
  EXPECT_TRUE(good.ok()) << describe(good);
  expect_kind("truncated", o);
}

TEST_F(VerifyTest, AnchorFromAnotherHistoryFindsRollback) {
  // Anchor from state A (kRecords + 100 records); then the data is rolled back
  // to the kRecords copy and a different history of kRecords + 200 records is
  // written, in one large segment: more records in fewer segments than A.
  auto a = copy_to_mutable_fake(*env_, kDir);
  ASSERT_TRUE(ingest(*a, kDir, key_->signer(), small_options(), "app", make_raws(kRecords, 100, "first")).ok());
  VerifyOptions o;
  o.anchors.push_back(anchor_of(*a));
  StoreOptions big = small_options();
  big.stream.segment_bytes = 64 << 20;
  ASSERT_TRUE(ingest(*env_, kDir, key_->signer(), big, "app", make_raws(kRecords, 200, "second")).ok());
  ASSERT_LT(segment_paths(*env_, kStreamDir).size(), o.anchors[0].body.segment_seq + 1);
  auto k = kinds(o);
  EXPECT_TRUE(has_kind(k, "rollback")) << describe(report_);
  // Without the anchor, the rewritten history verifies on its own.
  EXPECT_TRUE(kinds().empty()) << describe(report_);
}

TEST_F(VerifyTest, AnchorWithABadSignature) {
  Anchor a = anchor_of(*env_);
  a.signature.back() ^= 0x01;
  VerifyOptions o;
  o.anchors.push_back(a);
  expect_kind("bad-anchor", o);
}

TEST_F(VerifyTest, AnchorForAStreamThatIsGone) {
  VerifyOptions o;
  o.anchors.push_back(anchor_of(*env_));
  for (auto& s : segs_) ASSERT_TRUE(env_->remove(s).ok());
  ASSERT_TRUE(env_->remove(kStreamDir).ok());
  expect_kind("truncated", o);
}

TEST_F(VerifyTest, MissingDataDirectoryIsAnErrorNotAFinding) {
  VerifyOptions o;
  o.keys = &key_->keys;
  auto r = verify_data_dir(*env_, "/nowhere", o);
  EXPECT_FALSE(r.ok());
}

// ---- every byte ------------------------------------------------------------------------

// A small directory: a sealed segment of a few KiB, then the open one.
class FlipEveryByteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = make_soft_key(tmp_.sub("key"));
    StoreOptions opt = small_options();
    opt.stream.segment_bytes = 64 << 20;
    auto store = Store::open(env_, kDir, key_.signer(), opt);
    ASSERT_TRUE(store.ok());
    auto s = store.value()->stream("app");
    ASSERT_TRUE(s.ok());
    auto raws = make_raws(0, 20);
    for (int i = 0; i < 12; ++i) ASSERT_TRUE(s.value()->append(record_view(raws[i])).ok());
    ASSERT_TRUE(s.value()->wait_durable(11, std::chrono::seconds(10)));
    s.value()->request_roll();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (s.value()->stats().segments_sealed == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_EQ(s.value()->stats().segments_sealed, 1u);
    for (int i = 12; i < 20; ++i) ASSERT_TRUE(s.value()->append(record_view(raws[i])).ok());
    ASSERT_TRUE(s.value()->wait_durable(19, std::chrono::seconds(10)));
    ASSERT_TRUE(store.value()->close().ok());
    segs_ = segment_paths(env_, kStreamDir);
    ASSERT_EQ(segs_.size(), 2u);
    auto r = verify_report(env_, kDir, key_);
    ASSERT_TRUE(r.ok()) << describe(r);
  }

  void flip_every_byte(size_t seg) {
    std::vector<uint8_t>* f = env_.file_bytes(segs_.at(seg));
    ASSERT_NE(f, nullptr);
    // A verify per byte: keep the file small. An idle writer writes each record
    // at once, so the 8 records of the open segment may take up to 8 batches.
    ASSERT_LE(f->size(), 64u << 10) << "keep the file small: a verify per byte";
    VerifyOptions o;
    o.keys = &key_.keys;
    size_t missed = 0;
    for (size_t i = 0; i < f->size(); ++i) {
      (*f)[i] ^= 0x01;
      auto r = verify_data_dir(env_, kDir, o);
      (*f)[i] ^= 0x01;
      ASSERT_TRUE(r.ok()) << r.status().to_string();
      if (r->findings.empty()) {
        ADD_FAILURE() << "flipping byte " << i << " of " << segs_[seg] << " went unnoticed";
        if (++missed > 10) return;
      }
    }
    // And with the file as it was: clean again.
    auto r = verify_report(env_, kDir, key_);
    EXPECT_TRUE(r.ok()) << describe(r);
  }

  TempDir tmp_{"verify_test_flip"};
  TestKey key_;
  io::FakeEnv env_{5};
  std::vector<std::string> segs_;
};

TEST_F(FlipEveryByteTest, SealedSegment) {
  auto frames = frames_of(*env_.file_bytes(segs_[0]));
  ASSERT_FALSE(frames.empty());
  ASSERT_EQ(frames.back().header.type, FrameType::kSeal);
  flip_every_byte(0);
}

TEST_F(FlipEveryByteTest, OpenSegment) { flip_every_byte(1); }

// ---- key rotation and TPM evidence --------------------------------------------

// Appends one key rotation statement (old -> new_pub) to stream, signed by
// `by` (normally the old key), and closes.
Status append_rotation(io::Env& env, const TestKey& old_key, std::shared_ptr<hsm::Signer> by, const TestKey& new_key,
                       const std::string& stream) {
  KeyRotation k;
  k.stream = stream;
  k.old_key_id = old_key.keys[0].key_id();
  k.new_kind = hsm::SignerKind::kSoft;
  k.new_key_der = new_key.keys[0].der();
  k.time_ns = 1700000000000000000;
  auto sig = by->sign_digest(sha256(encode_key_rotation_body(k)));
  if (!sig.ok()) return sig.status();
  k.signature = sig.value();
  auto store = Store::open(env, kDir, old_key.signer(), small_options());
  if (!store.ok()) return store.status();
  auto s = store.value()->stream(stream);
  if (!s.ok()) return s.status();
  std::vector<uint8_t> raw = encode_key_rotation(k);
  std::string fields = key_rotation_fields_json(k);
  format::RecordView r;
  r.kind = format::RecordKind::kKeyRotation;
  r.received_ns = k.time_ns;
  r.source = "test";
  r.fields = fields;
  r.raw = std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size());
  auto idx = s.value()->append(r);
  if (!idx.ok()) return idx.status();
  return store.value()->close();
}

class KeyRotationTest : public ::testing::Test {
 protected:
  TempDir tmp_{"verify_test_rotation"};
  TestKey a_ = make_soft_key(tmp_.sub("a"));
  TestKey b_ = make_soft_key(tmp_.sub("b"));
  TestKey c_ = make_soft_key(tmp_.sub("c"));
  io::FakeEnv env_{7};
};

TEST_F(KeyRotationTest, FirstKeyAloneVerifiesAChainOfRotations) {
  ASSERT_TRUE(ingest(env_, kDir, a_.signer(), small_options(), "app", make_raws(0, 50)).ok());
  ASSERT_TRUE(append_rotation(env_, a_, a_.signer(), b_, "app").ok());
  ASSERT_TRUE(ingest(env_, kDir, b_.signer(), small_options(), "app", make_raws(50, 50)).ok());
  // b hands over to c in turn.
  ASSERT_TRUE(append_rotation(env_, b_, b_.signer(), c_, "app").ok());
  ASSERT_TRUE(ingest(env_, kDir, c_.signer(), small_options(), "app", make_raws(100, 50)).ok());

  auto r = verify_report(env_, kDir, a_);
  EXPECT_TRUE(r.ok()) << describe(r);
  ASSERT_EQ(r.streams.size(), 1u);
  EXPECT_EQ(r.streams[0].records, 152u);
  size_t handovers = 0;
  for (const auto& n : r.streams[0].notes) handovers += n.find("over to key") != std::string::npos;
  EXPECT_EQ(handovers, 2u);
  // The last key alone does not vouch for what came before it.
  EXPECT_TRUE(has_kind(verify_kinds(env_, kDir, c_), "unknown-key"));
}

TEST_F(KeyRotationTest, StatementNotSignedByTheOldKeyIsRejected) {
  ASSERT_TRUE(ingest(env_, kDir, a_.signer(), small_options(), "app", make_raws(0, 50)).ok());
  // Claims to come from a, but b signed it: b tries to vouch for itself.
  ASSERT_TRUE(append_rotation(env_, a_, b_.signer(), b_, "app").ok());
  ASSERT_TRUE(ingest(env_, kDir, b_.signer(), small_options(), "app", make_raws(50, 50)).ok());
  auto kinds = verify_kinds(env_, kDir, a_);
  EXPECT_TRUE(has_kind(kinds, "bad-signature"));
  EXPECT_TRUE(has_kind(kinds, "unknown-key"));  // b's checkpoints stay unvouched
}

// Evidence as a TPM would give it, scripted: kind TPM, a counter that the test
// sets, a clock that advances.
class ScriptedTpmSigner final : public hsm::Signer {
 public:
  ScriptedTpmSigner(std::shared_ptr<hsm::Signer> inner, uint64_t first_counter)
      : inner_(std::move(inner)), counter_(first_counter) {}
  hsm::SignerKind kind() const override { return hsm::SignerKind::kTpm; }
  const std::vector<uint8_t>& public_key_der() const override { return inner_->public_key_der(); }
  const Hash32& key_id() const override { return inner_->key_id(); }
  Result<hsm::Evidence> evidence() override {
    hsm::Evidence e;
    e.nv_counter = counter_++;
    e.tpm_clock_ms = 1000 + counter_;
    e.tpm_safe = 1;
    return e;
  }
  Result<std::vector<uint8_t>> sign_digest(const Hash32& d) override { return inner_->sign_digest(d); }

 private:
  std::shared_ptr<hsm::Signer> inner_;
  uint64_t counter_;
};

TEST_F(KeyRotationTest, TpmCounterGoingBackAlongTheChainIsReported) {
  ASSERT_TRUE(ingest(env_, kDir, std::make_shared<ScriptedTpmSigner>(a_.signer(), 1000), small_options(), "app",
                     make_raws(0, 50)).ok());
  auto good = verify_kinds(env_, kDir, a_);
  EXPECT_TRUE(good.empty());
  // A later session whose counter is lower: signed before the earlier ones.
  ASSERT_TRUE(ingest(env_, kDir, std::make_shared<ScriptedTpmSigner>(a_.signer(), 10), small_options(), "app",
                     make_raws(50, 50)).ok());
  EXPECT_TRUE(has_kind(verify_kinds(env_, kDir, a_), "tpm-rollback"));
}

}  // namespace
}  // namespace logseal::engine
