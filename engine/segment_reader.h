// Reading segment files: the one walker that recovery, the verifier, export and
// inspect share. It checks what can be checked frame by frame (magic, header and
// body checksums, frame sequence, zero padding) and stops at the first frame that
// fails, reporting why and where; the caller decides what that means (recovery
// cuts a torn tail, the verifier reports a finding).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "base/status.h"
#include "engine/format.h"

namespace logseal::engine {

struct FrameView {
  uint64_t offset = 0;  // of the frame header in the file
  format::FrameHeader header;
  std::span<const uint8_t> frame;  // the whole span: header, body, padding
  std::span<const uint8_t> body;   // body bytes only
};

struct WalkResult {
  uint64_t valid_end = format::kHeaderBytes;  // offset just after the last good frame
  uint32_t frames = 0;
  bool sealed = false;  // the last good frame is a seal
  // Ok when the walk reached the end of the file exactly after the last good frame
  // (and nothing follows a seal). Otherwise DataLoss saying why it stopped at
  // valid_end: a bad frame, or bytes after the seal.
  Status stop;
  bool stopped_by_callback = false;
};

// Calls on_frame for each good frame in order; on_frame returns false to stop.
// file is the whole segment file, header included (the header is not checked here).
WalkResult walk_frames(std::span<const uint8_t> file, const std::function<bool(const FrameView&)>& on_frame);

// Calls fn(record_bytes) for each record of a batch body, in order. DataLoss if the
// body is not exactly record_count length-prefixed records.
Status for_each_record(std::span<const uint8_t> body, uint32_t record_count,
                       const std::function<Status(std::span<const uint8_t>)>& fn);

// A checkpoint or seal frame body: the signed 320 bytes plus the signature.
struct SignedFrame {
  std::span<const uint8_t> body;  // kCheckpointBodyBytes
  std::span<const uint8_t> signature;
};
Result<SignedFrame> split_signed_frame(std::span<const uint8_t> frame_body);
// Encodes body + u16 signature length + signature into out; returns bytes written.
size_t encode_signed_frame(std::span<const uint8_t> body, std::span<const uint8_t> signature, uint8_t* out);

}  // namespace logseal::engine
