// Helpers shared by the engine, crash, verify and CLI tests: temporary
// directories (removed even when sealed segments were made immutable), soft
// keys, building a store with N records, reading records back, verifying, and
// locating frames for byte surgery.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/format.h"
#include "engine/segment_reader.h"
#include "engine/store.h"
#include "engine/verify.h"
#include "hsm/public_key.h"
#include "hsm/signer.h"
#include "io/env.h"
#include "io/fake_env.h"

namespace logseal::test {

// $LOGSEAL_TEST_TMP (created if needed), else /tmp.
std::string test_tmp_root();

// Clears FS_IMMUTABLE_FL (chattr -i) on one path; quiet when it cannot.
void clear_immutable(const std::string& path);
// rm -rf that first clears the immutable flag of every entry (sealed segments
// are made immutable when the tests run as root).
void remove_tree(const std::string& path);

// A fresh, unique directory under test_tmp_root(), removed with remove_tree()
// on destruction. The prefix should name the test (tests run in parallel).
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "logseal");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A software key in dir (signing-key.pem, signing-key.pub.pem) and its public key.
struct TestKey {
  std::string dir;
  std::string key_path;
  std::string pub_path;
  std::vector<hsm::PublicKey> keys;  // exactly one: this key's public half
  // A new signer for this key (each Store takes its own).
  std::shared_ptr<hsm::Signer> signer() const;
  std::shared_ptr<hsm::Signer> slow_signer(unsigned delay_ms) const;
};
// Creates the key in dir (made if needed). Fails the calling test on error.
TestKey make_soft_key(const std::string& dir);

// The deterministic record number i of a test: its raw bytes vary in length and
// content with i (and tag), so records are distinguishable.
std::string record_raw(uint64_t i, const std::string& tag = "r");
format::RecordView record_view(const std::string& raw, int64_t received_ns = 1700000000000000000);

// Small segments and batches, quick checkpoints: many frames from few records.
engine::StoreOptions small_options();

// Opens a store on env at data_dir, appends raws (in order) to stream, waits
// for every one to be durable, closes. Returns the close status; the indexes
// the records got are appended to indexes when given. wait_every > 0: also
// waits for durability after every wait_every records, which keeps batches
// small and so gives more frames and segments.
Status ingest(io::Env& env, const std::string& data_dir, std::shared_ptr<hsm::Signer> signer,
              const engine::StoreOptions& options, const std::string& stream, const std::vector<std::string>& raws,
              std::vector<uint64_t>* indexes = nullptr, uint64_t wait_every = 0);
// n records record_raw(first .. first + n - 1, tag).
std::vector<std::string> make_raws(uint64_t first, uint64_t n, const std::string& tag = "r");

// Every record of the stream, in index order: index -> raw bytes. Fails the
// calling test when the reader fails.
std::map<uint64_t, std::string> read_raws(io::Env& env, const std::string& data_dir, const std::string& stream);

// Runs verify_data_dir; fails the calling test when it returns an error.
engine::VerifyReport verify_report(io::Env& env, const std::string& data_dir, const TestKey& key,
                                   engine::VerifyOptions options = {});
// The findings' kinds, sorted.
std::vector<std::string> verify_kinds(io::Env& env, const std::string& data_dir, const TestKey& key,
                                      engine::VerifyOptions options = {});
std::vector<std::string> kinds_of(const engine::VerifyReport& r);
bool has_kind(const std::vector<std::string>& kinds, const std::string& kind);
std::string describe(const engine::VerifyReport& r);  // every finding, one a line

// Segment files of a stream directory, sorted by sequence number: full paths.
std::vector<std::string> segment_paths(io::Env& env, const std::string& stream_dir);

// One frame of a segment file, as walk_frames saw it.
struct FrameInfo {
  uint64_t offset = 0;
  format::FrameHeader header;
};
std::vector<FrameInfo> frames_of(const std::vector<uint8_t>& file);
// Re-seals the frame at offset (recomputes its body and header checksums) after
// an edit of its body, with header h (e.g. the decoded header, edited).
void reseal_frame(std::vector<uint8_t>& file, uint64_t offset, const format::FrameHeader& h);
// Recomputes the segment header checksum after an edit of the header block.
void reseal_header(std::vector<uint8_t>& file);

// Copies every directory and file under root from src to a new FakeEnv whose
// files are ordinary (not read-only or immutable), so a test can remove and
// rename sealed segments.
std::unique_ptr<io::FakeEnv> copy_to_mutable_fake(io::Env& src, const std::string& root, uint64_t seed = 1);
// Replaces (or creates) a file in a FakeEnv with bytes.
void put_file(io::FakeEnv& env, const std::string& path, const std::vector<uint8_t>& bytes);

}  // namespace logseal::test
