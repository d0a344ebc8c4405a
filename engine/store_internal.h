// Internals shared by store.cc and recovery.cc. Not part of the engine's API.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "engine/format.h"
#include "engine/merkle.h"
#include "io/env.h"

namespace logseal::engine {

// What the signer thread needs to build a checkpoint or seal body; taken by the
// writer at a durable frame boundary.
struct Snapshot {
  format::CheckpointKind kind = format::CheckpointKind::kCheckpoint;
  uint64_t segment_seq = 0;
  uint64_t segment_first = 0;
  uint64_t tree_size = 0;
  Hash32 root{};
  Hash32 frame_chain{};
  uint64_t covered_offset = 0;
};

// The head chain of a stream: touched only by the signer thread once the stream
// is open (recovery sets it before).
struct HeadState {
  Hash32 prev_head{};  // head of the last signed body (zeros before the first)
  uint64_t head_seq = 0;  // head_seq the next body gets
};

// A signed frame body ready to be written.
struct SignedBody {
  Snapshot snapshot;
  std::vector<uint8_t> body;  // kCheckpointBodyBytes
  std::vector<uint8_t> signature;
};

// State of a segment at a frame boundary, as recovery reconstructs it.
struct SegmentState {
  format::SegmentHeader header;
  uint64_t offset = 0;       // next frame offset (end of the last kept frame)
  uint32_t frame_seq = 0;    // frame_seq of the next frame
  Hash32 chain{};            // frame chain at offset
  merkle::MerkleFrontier frontier;  // tree at offset
  bool sealed = false;
  std::optional<format::CheckpointBody> seal;  // when sealed
  // Last signed body in this segment (checkpoint or seal).
  std::optional<Hash32> last_head;
  uint64_t last_head_seq = 0;
  uint64_t last_signed_tree_size = 0;
  std::vector<uint8_t> last_signed_body;
  std::vector<uint8_t> last_signed_signature;
  // Frame boundaries from the end of the last batch (the header's end when there
  // is none) up to offset, each with the chain there. A roll happens at one of
  // them; recovery of a crash in a roll looks up the one the next segment's
  // header names, since checkpoint frames may follow it (signed before the seal,
  // written after the roll).
  struct Boundary {
    uint64_t offset = 0;
    Hash32 chain{};
  };
  std::vector<Boundary> since_last_batch;
  // Where a torn tail begins (file size when there is none) and why.
  uint64_t cut_offset = 0;
  uint64_t file_bytes = 0;
  std::string cut_reason;
};

// Walks a segment file and returns its state at the last block-aligned frame
// boundary whose frames are all good (the boundary recovery cuts at). DataLoss if
// the header is bad.
Result<SegmentState> read_segment_state(std::span<const uint8_t> file);

}  // namespace logseal::engine
