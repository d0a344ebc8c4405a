#include "engine/segment_reader.h"

#include <cstring>

namespace logseal::engine {

using namespace format;

WalkResult walk_frames(std::span<const uint8_t> file, const std::function<bool(const FrameView&)>& on_frame) {
  WalkResult r;
  uint64_t offset = kHeaderBytes;
  uint32_t expected_seq = 0;
  while (offset < file.size()) {
    auto at = [&](const std::string& why) {
      return data_loss(why + " at offset " + std::to_string(offset));
    };
    if (r.sealed) {
      r.stop = data_loss(std::to_string(file.size() - offset) + " bytes follow the seal at offset " +
                         std::to_string(offset));
      return r;
    }
    auto hdr = decode_frame_header(file.subspan(offset));
    if (!hdr.ok()) {
      r.stop = at(hdr.status().message());
      return r;
    }
    const FrameHeader& h = hdr.value();
    if (h.span_bytes > file.size() - offset) {
      r.stop = at("frame span runs past the end of the file");
      return r;
    }
    const uint8_t* frame = file.data() + offset;
    if (!frame_body_checksum_ok(frame, h.span_bytes)) {
      r.stop = at("frame body checksum mismatch");
      return r;
    }
    if (h.frame_seq != expected_seq) {
      r.stop = at("frame sequence " + std::to_string(h.frame_seq) + " where " + std::to_string(expected_seq) +
                  " was expected");
      return r;
    }
    for (uint64_t i = kFrameHeaderBytes + h.body_bytes; i < h.span_bytes; ++i) {
      if (frame[i] != 0) {
        r.stop = at("frame padding is not zero");
        return r;
      }
    }
    FrameView v;
    v.offset = offset;
    v.header = h;
    v.frame = file.subspan(offset, h.span_bytes);
    v.body = file.subspan(offset + kFrameHeaderBytes, h.body_bytes);
    r.frames++;
    r.valid_end = offset + h.span_bytes;
    r.sealed = h.type == FrameType::kSeal;
    expected_seq++;
    offset += h.span_bytes;
    if (!on_frame(v)) {
      r.stopped_by_callback = true;
      return r;
    }
  }
  return r;
}

Status for_each_record(std::span<const uint8_t> body, uint32_t record_count,
                       const std::function<Status(std::span<const uint8_t>)>& fn) {
  size_t pos = 0;
  for (uint32_t i = 0; i < record_count; ++i) {
    if (body.size() - pos < 4) return data_loss("batch body ends inside a record length");
    uint32_t len = get_u32(body.data() + pos);
    pos += 4;
    if (len > body.size() - pos) return data_loss("record length runs past the batch body");
    LS_RETURN_IF_ERROR(fn(body.subspan(pos, len)));
    pos += len;
  }
  if (pos != body.size()) return data_loss("batch body has bytes after its last record");
  return ok_status();
}

Result<SignedFrame> split_signed_frame(std::span<const uint8_t> frame_body) {
  if (frame_body.size() < kCheckpointBodyBytes + 2) return data_loss("checkpoint frame body is short");
  uint16_t sig_len = get_u16(frame_body.data() + kCheckpointBodyBytes);
  if (sig_len == 0 || sig_len > kSignatureBytesMax || kCheckpointBodyBytes + 2 + sig_len != frame_body.size()) {
    return data_loss("checkpoint signature length is wrong");
  }
  SignedFrame s;
  s.body = frame_body.first(kCheckpointBodyBytes);
  s.signature = frame_body.subspan(kCheckpointBodyBytes + 2, sig_len);
  return s;
}

size_t encode_signed_frame(std::span<const uint8_t> body, std::span<const uint8_t> signature, uint8_t* out) {
  LS_ASSERT(body.size() == kCheckpointBodyBytes);
  LS_ASSERT(!signature.empty() && signature.size() <= kSignatureBytesMax);
  std::memcpy(out, body.data(), body.size());
  put_u16(out + kCheckpointBodyBytes, static_cast<uint16_t>(signature.size()));
  std::memcpy(out + kCheckpointBodyBytes + 2, signature.data(), signature.size());
  return kCheckpointBodyBytes + 2 + signature.size();
}

}  // namespace logseal::engine
