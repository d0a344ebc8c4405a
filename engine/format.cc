#include "engine/format.h"

#include <xxhash.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "hsm/sha256.h"

namespace logseal::format {

namespace {

void put_xxh128(uint8_t* out, const void* data, size_t len) {
  XXH128_hash_t h = XXH3_128bits(data, len);
  put_u64(out, h.low64);
  put_u64(out + 8, h.high64);
}

bool xxh128_matches(const uint8_t* stored, const void* data, size_t len) {
  XXH128_hash_t h = XXH3_128bits(data, len);
  return get_u64(stored) == h.low64 && get_u64(stored + 8) == h.high64;
}

bool all_zero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

}  // namespace

const char* frame_type_name(FrameType t) {
  switch (t) {
    case FrameType::kBatch: return "batch";
    case FrameType::kCheckpoint: return "checkpoint";
    case FrameType::kSeal: return "seal";
    case FrameType::kRecovery: return "recovery";
  }
  return "unknown";
}

bool valid_stream_name(std::string_view name) {
  if (name.empty() || name.size() > kStreamNameBytesMax) return false;
  if (name[0] == '.' || name[0] == '-') return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// ---- header --------------------------------------------------------------

void encode_header(const SegmentHeader& h, uint8_t* out) {
  LS_ASSERT(valid_stream_name(h.stream));
  LS_ASSERT(h.frontier.size() == static_cast<size_t>(__builtin_popcountll(h.first_index)));
  std::memset(out, 0, kHeaderBytes);
  std::memcpy(out + kHdrMagic, kSegmentMagic, 8);
  put_u16(out + kHdrVersion, kFormatVersion);
  put_u16(out + kHdrHeaderBytes, static_cast<uint16_t>(kHeaderBytes));
  put_u32(out + kHdrBlockBytes, static_cast<uint32_t>(kBlockBytes));
  put_u64(out + kHdrSegmentSeq, h.segment_seq);
  put_u64(out + kHdrFirstIndex, h.first_index);
  put_u64(out + kHdrCreatedNs, static_cast<uint64_t>(h.created_ns));
  out[kHdrStreamLen] = static_cast<uint8_t>(h.stream.size());
  std::memcpy(out + kHdrStream, h.stream.data(), h.stream.size());
  std::memcpy(out + kHdrPrevChain, h.prev_chain.data(), 32);
  out[kHdrFrontierCount] = static_cast<uint8_t>(h.frontier.size());
  for (size_t i = 0; i < h.frontier.size(); ++i) {
    std::memcpy(out + kHdrFrontier + 32 * i, h.frontier[i].data(), 32);
  }
  put_xxh128(out + kHdrChecksum, out, kHdrChecksum);
}

Result<SegmentHeader> decode_header(std::span<const uint8_t> block) {
  if (block.size() < kHeaderBytes) return data_loss("segment header is short (file smaller than 4096 bytes)");
  const uint8_t* p = block.data();
  if (std::memcmp(p + kHdrMagic, kSegmentMagic, 8) != 0) return data_loss("segment header magic is wrong");
  if (!xxh128_matches(p + kHdrChecksum, p, kHdrChecksum)) return data_loss("segment header checksum mismatch");
  if (get_u16(p + kHdrVersion) != kFormatVersion) {
    return data_loss("segment format version " + std::to_string(get_u16(p + kHdrVersion)) +
                     " is not supported (this build reads version 1)");
  }
  if (get_u16(p + kHdrHeaderBytes) != kHeaderBytes || get_u32(p + kHdrBlockBytes) != kBlockBytes) {
    return data_loss("segment header sizes are wrong");
  }
  SegmentHeader h;
  h.segment_seq = get_u64(p + kHdrSegmentSeq);
  h.first_index = get_u64(p + kHdrFirstIndex);
  h.created_ns = static_cast<int64_t>(get_u64(p + kHdrCreatedNs));
  size_t stream_len = p[kHdrStreamLen];
  if (stream_len > kStreamNameBytesMax) return data_loss("segment header stream name length is wrong");
  h.stream.assign(reinterpret_cast<const char*>(p + kHdrStream), stream_len);
  if (!valid_stream_name(h.stream)) return data_loss("segment header stream name is not valid");
  if (!all_zero(p + kHdrStream + stream_len, kStreamNameBytesMax - stream_len)) {
    return data_loss("segment header stream name padding is not zero");
  }
  std::memcpy(h.prev_chain.data(), p + kHdrPrevChain, 32);
  size_t count = p[kHdrFrontierCount];
  if (count != static_cast<size_t>(__builtin_popcountll(h.first_index))) {
    return data_loss("segment header frontier count does not match the first record index");
  }
  if (!all_zero(p + kHdrReserved, 7)) return data_loss("segment header reserved bytes are not zero");
  h.frontier.resize(count);
  for (size_t i = 0; i < count; ++i) std::memcpy(h.frontier[i].data(), p + kHdrFrontier + 32 * i, 32);
  size_t used = kHdrFrontier + 32 * count;
  if (!all_zero(p + used, kHdrChecksum - used)) return data_loss("segment header padding is not zero");
  return h;
}

// ---- frames --------------------------------------------------------------

void seal_frame_header(const FrameHeader& h, uint8_t* frame) {
  LS_ASSERT(h.span_bytes >= kFrameHeaderBytes + h.body_bytes);
  LS_ASSERT(h.span_bytes % kFrameAlignBytes == 0);
  std::memcpy(frame + kFrMagic, kFrameMagic, 4);
  frame[kFrType] = static_cast<uint8_t>(h.type);
  frame[kFrReserved] = frame[kFrReserved + 1] = frame[kFrReserved + 2] = 0;
  put_u32(frame + kFrBodyBytes, h.body_bytes);
  put_u32(frame + kFrSpanBytes, h.span_bytes);
  put_u32(frame + kFrFrameSeq, h.frame_seq);
  put_u32(frame + kFrRecordCount, h.record_count);
  put_u64(frame + kFrFirstIndex, h.first_index);
  put_xxh128(frame + kFrBodyChecksum, frame + kFrameHeaderBytes, h.span_bytes - kFrameHeaderBytes);
  put_xxh128(frame + kFrHeaderChecksum, frame, kFrHeaderChecksum);
}

Result<FrameHeader> decode_frame_header(std::span<const uint8_t> bytes) {
  if (bytes.size() < kFrameHeaderBytes) return data_loss("frame header is cut short by the end of the file");
  const uint8_t* p = bytes.data();
  if (std::memcmp(p + kFrMagic, kFrameMagic, 4) != 0) return data_loss("frame magic is wrong");
  if (!xxh128_matches(p + kFrHeaderChecksum, p, kFrHeaderChecksum)) return data_loss("frame header checksum mismatch");
  FrameHeader h;
  uint8_t type = p[kFrType];
  if (type < 1 || type > 4) return data_loss("frame type " + std::to_string(type) + " is unknown");
  h.type = static_cast<FrameType>(type);
  if (p[kFrReserved] != 0 || p[kFrReserved + 1] != 0 || p[kFrReserved + 2] != 0) {
    return data_loss("frame reserved bytes are not zero");
  }
  h.body_bytes = get_u32(p + kFrBodyBytes);
  h.span_bytes = get_u32(p + kFrSpanBytes);
  h.frame_seq = get_u32(p + kFrFrameSeq);
  h.record_count = get_u32(p + kFrRecordCount);
  h.first_index = get_u64(p + kFrFirstIndex);
  if (h.span_bytes % kFrameAlignBytes != 0 || h.span_bytes < kFrameHeaderBytes + uint64_t{h.body_bytes} ||
      h.span_bytes > kFrameSpanBytesMax) {
    return data_loss("frame span is not valid");
  }
  if (h.type != FrameType::kBatch && h.record_count != 0) return data_loss("non-batch frame has a record count");
  return h;
}

bool frame_body_checksum_ok(const uint8_t* frame, uint32_t span_bytes) {
  return xxh128_matches(frame + kFrBodyChecksum, frame + kFrameHeaderBytes, span_bytes - kFrameHeaderBytes);
}

// ---- records -------------------------------------------------------------

size_t encoded_record_bytes(const RecordView& r) {
  return 4 + kRecFixedBytes + r.source.size() + r.fields.size() + r.raw.size();
}

void encode_record_fixed(const RecordView& r, uint8_t* out) {
  out[kRecKind] = static_cast<uint8_t>(r.kind);
  out[kRecFlags] = r.flags;
  put_u16(out + kRecSourceLen, static_cast<uint16_t>(r.source.size()));
  put_u32(out + kRecFieldsLen, static_cast<uint32_t>(r.fields.size()));
  put_u32(out + kRecRawLen, static_cast<uint32_t>(r.raw.size()));
  put_u64(out + kRecReceivedNs, static_cast<uint64_t>(r.received_ns));
}

void encode_record(const RecordView& r, uint8_t* out) {
  LS_ASSERT(r.source.size() <= UINT16_MAX);
  size_t rec_bytes = kRecFixedBytes + r.source.size() + r.fields.size() + r.raw.size();
  LS_ASSERT(rec_bytes <= kRecordBytesMax);
  put_u32(out, static_cast<uint32_t>(rec_bytes));
  uint8_t* rec = out + 4;
  encode_record_fixed(r, rec);
  uint8_t* q = rec + kRecFixedBytes;
  // An empty string_view may have a null data(); memcpy from null is undefined
  // even for zero bytes.
  for (std::string_view part : {r.source, r.fields, r.raw}) {
    if (!part.empty()) std::memcpy(q, part.data(), part.size());
    q += part.size();
  }
}

Result<RecordView> decode_record(std::span<const uint8_t> rec) {
  if (rec.size() < kRecFixedBytes) return data_loss("record is shorter than its fixed part");
  const uint8_t* p = rec.data();
  RecordView r;
  if (p[kRecKind] != static_cast<uint8_t>(RecordKind::kLog) && p[kRecKind] != static_cast<uint8_t>(RecordKind::kKeyRotation) &&
      p[kRecKind] != static_cast<uint8_t>(RecordKind::kRetention)) {
    return data_loss("record kind is unknown");
  }
  r.kind = static_cast<RecordKind>(p[kRecKind]);
  r.flags = p[kRecFlags];
  if ((r.flags & ~kRecordFlagsKnown) != 0) return data_loss("record has unknown flags");
  uint64_t source_len = get_u16(p + kRecSourceLen);
  uint64_t fields_len = get_u32(p + kRecFieldsLen);
  uint64_t raw_len = get_u32(p + kRecRawLen);
  if (kRecFixedBytes + source_len + fields_len + raw_len != rec.size()) {
    return data_loss("record lengths do not add up to the record size");
  }
  r.received_ns = static_cast<int64_t>(get_u64(p + kRecReceivedNs));
  const char* q = reinterpret_cast<const char*>(p + kRecFixedBytes);
  r.source = std::string_view(q, source_len);
  r.fields = std::string_view(q + source_len, fields_len);
  r.raw = std::string_view(q + source_len + fields_len, raw_len);
  LS_RETURN_IF_ERROR(check_fields(r.fields, r.raw.size()));
  return r;
}

// ---- fields ----------------------------------------------------------------

void encode_syslog_view(const SyslogView& v, uint8_t* out) {
  std::memset(out, 0, kSyslogViewBytes);
  out[0] = kFieldsSyslogView;
  out[1] = static_cast<uint8_t>(v.form);
  out[2] = v.facility;
  out[3] = v.severity;
  out[4] = v.flags;
  for (size_t i = 0; i < kSyslogViewFields; ++i) {
    put_u32(out + 8 + 8 * i, v.spans[i].length == 0 ? 0 : v.spans[i].offset);
    put_u32(out + 12 + 8 * i, v.spans[i].length);
  }
}

Result<SyslogView> decode_syslog_view(std::span<const uint8_t> f, size_t raw_bytes) {
  if (f.size() != kSyslogViewBytes || f[0] != kFieldsSyslogView) return data_loss("syslog view has the wrong size or tag");
  SyslogView v;
  if (f[1] != 1 && f[1] != 2) return data_loss("syslog view form is unknown");
  v.form = static_cast<SyslogForm>(f[1]);
  v.facility = f[2];
  v.severity = f[3];
  v.flags = f[4];
  if (v.facility > 23 || v.severity > 7 || (v.flags & ~kSyslogViewFlagBom) != 0 || f[5] != 0 || f[6] != 0 ||
      f[7] != 0) {
    return data_loss("syslog view header is not valid");
  }
  for (size_t i = 0; i < kSyslogViewFields; ++i) {
    v.spans[i].offset = get_u32(f.data() + 8 + 8 * i);
    v.spans[i].length = get_u32(f.data() + 12 + 8 * i);
    if (v.spans[i].length == 0 && v.spans[i].offset != 0) return data_loss("syslog view: empty span with an offset");
    if (uint64_t{v.spans[i].offset} + v.spans[i].length > raw_bytes) {
      return data_loss(std::string("syslog view: ") + kSyslogViewNames[i] + " lies outside the raw bytes");
    }
  }
  return v;
}

Status check_fields(std::string_view fields, size_t raw_bytes) {
  if (fields.empty() || fields[0] == '{') return ok_status();
  if (static_cast<uint8_t>(fields[0]) == kFieldsSyslogView) {
    auto v = decode_syslog_view(as_bytes(fields), raw_bytes);
    return v.ok() ? ok_status() : v.status();
  }
  return data_loss("record fields are neither JSON nor a syslog view");
}

// ---- checkpoints ---------------------------------------------------------

void encode_checkpoint_body(const CheckpointBody& b, uint8_t* out) {
  LS_ASSERT(valid_stream_name(b.stream));
  std::memset(out, 0, kCheckpointBodyBytes);
  std::memcpy(out + kCkMagic, kCheckpointMagic, 8);
  out[kCkKind] = static_cast<uint8_t>(b.kind);
  out[kCkSignerKind] = static_cast<uint8_t>(b.signer_kind);
  out[kCkStreamLen] = static_cast<uint8_t>(b.stream.size());
  std::memcpy(out + kCkStream, b.stream.data(), b.stream.size());
  put_u64(out + kCkSegmentSeq, b.segment_seq);
  put_u64(out + kCkSegmentFirst, b.segment_first);
  put_u64(out + kCkTreeSize, b.tree_size);
  std::memcpy(out + kCkRoot, b.root.data(), 32);
  std::memcpy(out + kCkPrevHead, b.prev_head.data(), 32);
  std::memcpy(out + kCkFrameChain, b.frame_chain.data(), 32);
  put_u64(out + kCkCoveredOffset, b.covered_offset);
  put_u64(out + kCkTimeNs, static_cast<uint64_t>(b.time_ns));
  std::memcpy(out + kCkKeyId, b.key_id.data(), 32);
  put_u64(out + kCkTpmClock, b.evidence.tpm_clock_ms);
  put_u32(out + kCkTpmReset, b.evidence.tpm_reset_count);
  put_u32(out + kCkTpmRestart, b.evidence.tpm_restart_count);
  out[kCkTpmSafe] = b.evidence.tpm_safe;
  put_u64(out + kCkNvCounter, b.evidence.nv_counter);
  put_u64(out + kCkHeadSeq, b.head_seq);
}

Result<CheckpointBody> decode_checkpoint_body(std::span<const uint8_t> body) {
  if (body.size() < kCheckpointBodyBytes) return data_loss("checkpoint body is short");
  const uint8_t* p = body.data();
  if (std::memcmp(p + kCkMagic, kCheckpointMagic, 8) != 0) return data_loss("checkpoint magic is wrong");
  CheckpointBody b;
  if (p[kCkKind] != 1 && p[kCkKind] != 2) return data_loss("checkpoint kind is unknown");
  b.kind = static_cast<CheckpointKind>(p[kCkKind]);
  if (p[kCkSignerKind] != 1 && p[kCkSignerKind] != 2) return data_loss("checkpoint signer kind is unknown");
  b.signer_kind = static_cast<hsm::SignerKind>(p[kCkSignerKind]);
  size_t stream_len = p[kCkStreamLen];
  if (stream_len > kStreamNameBytesMax) return data_loss("checkpoint stream name length is wrong");
  b.stream.assign(reinterpret_cast<const char*>(p + kCkStream), stream_len);
  if (!valid_stream_name(b.stream) || !all_zero(p + kCkStream + stream_len, 64 - stream_len)) {
    return data_loss("checkpoint stream name is not valid");
  }
  if (!all_zero(p + kCkReserved0, 5) || !all_zero(p + kCkReserved1, 7) || !all_zero(p + kCkReserved2, 32)) {
    return data_loss("checkpoint reserved bytes are not zero");
  }
  b.segment_seq = get_u64(p + kCkSegmentSeq);
  b.segment_first = get_u64(p + kCkSegmentFirst);
  b.tree_size = get_u64(p + kCkTreeSize);
  std::memcpy(b.root.data(), p + kCkRoot, 32);
  std::memcpy(b.prev_head.data(), p + kCkPrevHead, 32);
  std::memcpy(b.frame_chain.data(), p + kCkFrameChain, 32);
  b.covered_offset = get_u64(p + kCkCoveredOffset);
  b.time_ns = static_cast<int64_t>(get_u64(p + kCkTimeNs));
  std::memcpy(b.key_id.data(), p + kCkKeyId, 32);
  b.evidence.tpm_clock_ms = get_u64(p + kCkTpmClock);
  b.evidence.tpm_reset_count = get_u32(p + kCkTpmReset);
  b.evidence.tpm_restart_count = get_u32(p + kCkTpmRestart);
  b.evidence.tpm_safe = p[kCkTpmSafe];
  b.evidence.nv_counter = get_u64(p + kCkNvCounter);
  b.head_seq = get_u64(p + kCkHeadSeq);
  return b;
}

Hash32 head_of(std::span<const uint8_t> body) { return sha256(body.first(kCheckpointBodyBytes)); }

// ---- recovery ------------------------------------------------------------

size_t recovery_body_bytes(const Recovery& r) { return kRecoveryFixedBytes + r.reason.size(); }

void encode_recovery(const Recovery& r, uint8_t* out) {
  LS_ASSERT(r.reason.size() <= kRecoveryReasonBytesMax);
  std::memset(out, 0, kRecoveryFixedBytes);
  put_u64(out + 0, r.cut_offset);
  put_u64(out + 8, r.cut_bytes);
  std::memcpy(out + 16, r.cut_sha256.data(), 32);
  put_u64(out + 48, static_cast<uint64_t>(r.recovered_ns));
  put_u32(out + 56, static_cast<uint32_t>(r.reason.size()));
  std::memcpy(out + kRecoveryFixedBytes, r.reason.data(), r.reason.size());
}

Result<Recovery> decode_recovery(std::span<const uint8_t> body) {
  if (body.size() < kRecoveryFixedBytes) return data_loss("recovery frame body is short");
  const uint8_t* p = body.data();
  Recovery r;
  r.cut_offset = get_u64(p + 0);
  r.cut_bytes = get_u64(p + 8);
  std::memcpy(r.cut_sha256.data(), p + 16, 32);
  r.recovered_ns = static_cast<int64_t>(get_u64(p + 48));
  uint32_t reason_len = get_u32(p + 56);
  if (!all_zero(p + 60, 4)) return data_loss("recovery frame reserved bytes are not zero");
  if (reason_len > kRecoveryReasonBytesMax || kRecoveryFixedBytes + reason_len != body.size()) {
    return data_loss("recovery frame reason length is wrong");
  }
  r.reason.assign(reinterpret_cast<const char*>(p + kRecoveryFixedBytes), reason_len);
  return r;
}

// ---- chain ---------------------------------------------------------------

Hash32 chain_start(std::span<const uint8_t> header_block) {
  Sha256 h;
  h.update(kChainDomain, sizeof(kChainDomain));
  h.update(header_block.first(kHeaderBytes));
  return h.finish();
}

Hash32 chain_next(const Hash32& chain, std::span<const uint8_t> bytes) {
  Sha256 h;
  h.update(kChainDomain, sizeof(kChainDomain));
  h.update(chain.data(), chain.size());
  h.update(bytes);
  return h.finish();
}

// ---- names ---------------------------------------------------------------

std::string segment_file_name(uint64_t segment_seq) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "seg-%010" PRIu64 ".lsg", segment_seq);
  return buf;
}

std::optional<uint64_t> parse_segment_file_name(std::string_view name) {
  if (name.size() < 4 + 10 + 4 || name.substr(0, 4) != "seg-" || name.substr(name.size() - 4) != ".lsg") {
    return std::nullopt;
  }
  std::string_view digits = name.substr(4, name.size() - 8);
  if (digits.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (segment_file_name(v) != name) return std::nullopt;  // one canonical spelling per number
  return v;
}

}  // namespace logseal::format
