// Reading a stream back: records in order, leaves, the latest signed checkpoint,
// inclusion proofs. Read-only, like the verifier: safe on a copy or on the live
// data directory of a running logseald (it reads only whole, good frames and
// stops quietly at a tail that is being written).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "engine/format.h"
#include "io/env.h"

namespace logseal::engine {

struct StoredRecord {
  uint64_t index = 0;
  uint64_t segment_seq = 0;
  format::RecordView view;  // valid during the callback only
  std::span<const uint8_t> bytes;  // the record bytes the leaf hash covers
};

// Streams in a data directory, sorted.
Result<std::vector<std::string>> list_streams(io::Env& env, const std::string& data_dir);

// Calls fn for each record of the stream in index order; fn returns false to stop.
// Stops at the first frame that is not good (a tail still being written, or
// damage: run verify for that).
Status for_each_record(io::Env& env, const std::string& data_dir, const std::string& stream,
                       const std::function<bool(const StoredRecord&)>& fn);

// Where for_each_record left a segment before its end: a frame that is not good.
// In the newest segment of a live directory that may be a write still landing;
// anywhere else it is damage (`logseal verify` names it). Readers that must not
// report a silently shortened stream ask for these.
struct ReadGap {
  uint64_t segment_seq = 0;
  uint64_t offset = 0;      // the first byte of the segment file not read
  uint64_t next_index = 0;  // the index the next record of the segment would have had
  bool newest_segment = false;
  Status why;  // DataLoss from the frame walk
};
Status for_each_record(io::Env& env, const std::string& data_dir, const std::string& stream,
                       const std::function<bool(const StoredRecord&)>& fn, std::vector<ReadGap>* gaps);

struct SignedCheckpoint {
  std::vector<uint8_t> body;  // kCheckpointBodyBytes
  std::vector<uint8_t> signature;
  format::CheckpointBody decoded;
};
// The last checkpoint or seal written in the stream. NotFound when none yet.
Result<SignedCheckpoint> latest_checkpoint(io::Env& env, const std::string& data_dir, const std::string& stream);

// An inclusion proof of one record against a signed checkpoint.
struct InclusionProof {
  std::string stream;
  uint64_t index = 0;
  std::vector<uint8_t> record;  // the record bytes (leaf = H(0x00 || record))
  std::vector<Hash32> path;
  SignedCheckpoint checkpoint;
};
Result<InclusionProof> prove_record(io::Env& env, const std::string& data_dir, const std::string& stream,
                                    uint64_t index);
std::string format_proof(const InclusionProof& p);
Result<InclusionProof> parse_proof(const std::string& text);

}  // namespace logseal::engine
