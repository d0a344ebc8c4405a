// The on-disk format of a segment file: every constant, every layout, and the
// encoders/decoders. docs/FORMAT.md is normative; this header follows it and the
// static_asserts tie the constants together. Change both in the same commit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "hsm/signer.h"

namespace logseal::format {

// ---- Segment file --------------------------------------------------------

inline constexpr uint16_t kFormatVersion = 1;
inline constexpr size_t kBlockBytes = 4096;    // O_DIRECT unit; every write is a multiple
inline constexpr size_t kHeaderBytes = 4096;   // the segment header fills block 0
inline constexpr size_t kFrameAlignBytes = 8;  // frames start on 8-byte boundaries
inline constexpr char kSegmentMagic[8] = {'L', 'S', 'E', 'A', 'L', 'S', 'E', 'G'};
inline constexpr size_t kStreamNameBytesMax = 63;
inline constexpr size_t kFrontierHashesMax = 64;  // popcount of a u64 tree size

// Segment header field offsets.
inline constexpr size_t kHdrMagic = 0;               // 8 bytes
inline constexpr size_t kHdrVersion = 8;             // u16
inline constexpr size_t kHdrHeaderBytes = 10;        // u16: kHeaderBytes
inline constexpr size_t kHdrBlockBytes = 12;         // u32
inline constexpr size_t kHdrSegmentSeq = 16;         // u64
inline constexpr size_t kHdrFirstIndex = 24;         // u64: tree size at segment start
inline constexpr size_t kHdrCreatedNs = 32;          // i64 unix ns
inline constexpr size_t kHdrStreamLen = 40;          // u8
inline constexpr size_t kHdrStream = 41;             // 63 bytes, zero padded
inline constexpr size_t kHdrPrevChain = 104;         // 32: previous segment's final frame chain
inline constexpr size_t kHdrFrontierCount = 136;     // u8
inline constexpr size_t kHdrReserved = 137;          // 7 zero bytes
inline constexpr size_t kHdrFrontier = 144;          // 32 * frontier count
inline constexpr size_t kHdrChecksum = kHeaderBytes - 16;  // XXH3-128 of [0, kHdrChecksum)
static_assert(kHdrStream + kStreamNameBytesMax == kHdrPrevChain);
static_assert(kHdrFrontier + 32 * kFrontierHashesMax <= kHdrChecksum);
static_assert(kHeaderBytes % kBlockBytes == 0);

// ---- Frames --------------------------------------------------------------

inline constexpr char kFrameMagic[4] = {'L', 'S', 'F', 'R'};
inline constexpr size_t kFrameHeaderBytes = 64;
enum class FrameType : uint8_t { kBatch = 1, kCheckpoint = 2, kSeal = 3, kRecovery = 4 };
const char* frame_type_name(FrameType t);

// Frame header field offsets.
inline constexpr size_t kFrMagic = 0;          // 4 bytes
inline constexpr size_t kFrType = 4;           // u8
inline constexpr size_t kFrReserved = 5;       // 3 zero bytes
inline constexpr size_t kFrBodyBytes = 8;      // u32
inline constexpr size_t kFrSpanBytes = 12;     // u32: header + body + padding
inline constexpr size_t kFrFrameSeq = 16;      // u32: 0, 1, 2 ... within a segment
inline constexpr size_t kFrRecordCount = 20;   // u32: records in a batch, else 0
inline constexpr size_t kFrFirstIndex = 24;    // u64: stream index of the first record
                                               // (tree size before this frame)
inline constexpr size_t kFrBodyChecksum = 32;  // XXH3-128 of [64, span)
inline constexpr size_t kFrHeaderChecksum = 48;  // XXH3-128 of [0, 48)
static_assert(kFrHeaderChecksum + 16 == kFrameHeaderBytes);

// A frame's span is at most one write buffer; writes are at most this large.
inline constexpr size_t kFrameSpanBytesMax = 64u << 20;

// ---- Records -------------------------------------------------------------
// In a batch body: u32 record_bytes, then the record. The record (what the leaf
// hash covers) is:
inline constexpr size_t kRecKind = 0;        // u8 (RecordKind)
inline constexpr size_t kRecFlags = 1;       // u8 (kRecordFlag*)
inline constexpr size_t kRecSourceLen = 2;   // u16
inline constexpr size_t kRecFieldsLen = 4;   // u32
inline constexpr size_t kRecRawLen = 8;      // u32
inline constexpr size_t kRecReceivedNs = 12;  // i64 unix ns
inline constexpr size_t kRecFixedBytes = 20;  // then source, fields, raw
inline constexpr size_t kRecordBytesMax = 16u << 20;

// kKeyRotation: raw is a key rotation statement (docs/FORMAT.md section 5.3,
// engine/key_rotation.h): the stream's signing key hands over to a new key.
// kRetention: raw is a retention statement (section 5.4, engine/retention.h): a
// prune of whole sealed segments, or a legal hold set or lifted.
enum class RecordKind : uint8_t { kLog = 1, kKeyRotation = 2, kRetention = 3 };

// The fields of a record are empty, a JSON object (first byte '{'), or a syslog
// view: offsets into the raw bytes, so parsed syslog fields cost 64 bytes per
// record instead of a second copy of the message (docs/FORMAT.md, section 5.1).
inline constexpr uint8_t kFieldsSyslogView = 0x01;
inline constexpr size_t kSyslogViewBytes = 64;
inline constexpr size_t kSyslogViewFields = 7;  // timestamp, hostname, app_name, procid, msgid, structured_data, msg
enum class SyslogForm : uint8_t { kRfc5424 = 1, kRfc3164 = 2 };
inline constexpr uint8_t kSyslogViewFlagBom = 1;
inline constexpr const char* kSyslogViewNames[kSyslogViewFields] = {
    "timestamp", "hostname", "app_name", "procid", "msgid", "structured_data", "msg"};
static_assert(8 + kSyslogViewFields * 8 == kSyslogViewBytes);

struct SyslogView {
  SyslogForm form = SyslogForm::kRfc5424;
  uint8_t facility = 0;
  uint8_t severity = 0;
  uint8_t flags = 0;
  struct Span {
    uint32_t offset = 0;
    uint32_t length = 0;  // 0: absent
  } spans[kSyslogViewFields];
};
void encode_syslog_view(const SyslogView& v, uint8_t* out);  // kSyslogViewBytes
// Checks the tag, form, ranges, reserved bytes, and that every span lies in raw.
Result<SyslogView> decode_syslog_view(std::span<const uint8_t> fields, size_t raw_bytes);
// Ok for empty fields, a JSON object (only its first byte is checked here) or a
// valid syslog view.
Status check_fields(std::string_view fields, size_t raw_bytes);
inline constexpr uint8_t kRecordFlagUnparsed = 1;   // kept raw, no fields could be parsed
inline constexpr uint8_t kRecordFlagTruncated = 2;  // the frame was cut at the size limit
inline constexpr uint8_t kRecordFlagsKnown = kRecordFlagUnparsed | kRecordFlagTruncated;

// ---- Checkpoints and seals -------------------------------------------------
// The signed body. head = SHA-256(body); the signature is ECDSA P-256 over head,
// so `openssl dgst -sha256 -verify PUB -signature SIG BODY` checks it.

inline constexpr char kCheckpointMagic[8] = {'L', 'S', 'E', 'A', 'L', 'C', 'K', '1'};
inline constexpr size_t kCheckpointBodyBytes = 320;
enum class CheckpointKind : uint8_t { kCheckpoint = 1, kSeal = 2 };
inline constexpr size_t kSignatureBytesMax = 80;  // DER ECDSA P-256 is at most 72

inline constexpr size_t kCkMagic = 0;           // 8
inline constexpr size_t kCkKind = 8;            // u8
inline constexpr size_t kCkSignerKind = 9;      // u8
inline constexpr size_t kCkStreamLen = 10;      // u8
inline constexpr size_t kCkReserved0 = 11;      // 5 zero bytes
inline constexpr size_t kCkStream = 16;         // 64 bytes, zero padded
inline constexpr size_t kCkSegmentSeq = 80;     // u64
inline constexpr size_t kCkSegmentFirst = 88;   // u64
inline constexpr size_t kCkTreeSize = 96;       // u64
inline constexpr size_t kCkRoot = 104;          // 32
inline constexpr size_t kCkPrevHead = 136;      // 32
inline constexpr size_t kCkFrameChain = 168;    // 32
inline constexpr size_t kCkCoveredOffset = 200;  // u64
inline constexpr size_t kCkTimeNs = 208;        // i64
inline constexpr size_t kCkKeyId = 216;         // 32
inline constexpr size_t kCkTpmClock = 248;      // u64
inline constexpr size_t kCkTpmReset = 256;      // u32
inline constexpr size_t kCkTpmRestart = 260;    // u32
inline constexpr size_t kCkTpmSafe = 264;       // u8
inline constexpr size_t kCkReserved1 = 265;     // 7 zero bytes
inline constexpr size_t kCkNvCounter = 272;     // u64
inline constexpr size_t kCkHeadSeq = 280;       // u64: 0, 1, 2 ... per stream
inline constexpr size_t kCkReserved2 = 288;     // 32 zero bytes
static_assert(kCkReserved2 + 32 == kCheckpointBodyBytes);
static_assert(kCkStream + 64 == kCkSegmentSeq);

// ---- Recovery ------------------------------------------------------------
inline constexpr size_t kRecoveryFixedBytes = 64;  // then reason text
inline constexpr size_t kRecoveryReasonBytesMax = 1024;

// ---- Frame chain domain ----------------------------------------------------
inline constexpr char kChainDomain[16] = {'L', 'S', 'E', 'A', 'L', '-', 'C', 'H',
                                          'A', 'I', 'N', '-', 'V', '1', 0, 0};

// ======================================================================
// Types
// ======================================================================

struct SegmentHeader {
  uint64_t segment_seq = 0;
  uint64_t first_index = 0;
  int64_t created_ns = 0;
  std::string stream;
  Hash32 prev_chain{};
  std::vector<Hash32> frontier;  // popcount(first_index) hashes
};

struct FrameHeader {
  FrameType type = FrameType::kBatch;
  uint32_t body_bytes = 0;
  uint32_t span_bytes = 0;
  uint32_t frame_seq = 0;
  uint32_t record_count = 0;
  uint64_t first_index = 0;
};

// A record as stored: views into the segment bytes (or the caller's buffers).
struct RecordView {
  RecordKind kind = RecordKind::kLog;
  uint8_t flags = 0;
  int64_t received_ns = 0;
  std::string_view source;  // e.g. "tcp:127.0.0.1:40122"
  std::string_view fields;  // JSON object text with parsed fields, or empty
  std::string_view raw;     // the exact bytes received
};

struct CheckpointBody {
  CheckpointKind kind = CheckpointKind::kCheckpoint;
  hsm::SignerKind signer_kind = hsm::SignerKind::kSoft;
  std::string stream;
  uint64_t segment_seq = 0;
  uint64_t segment_first = 0;
  uint64_t tree_size = 0;
  Hash32 root{};
  Hash32 prev_head{};
  Hash32 frame_chain{};
  uint64_t covered_offset = 0;
  int64_t time_ns = 0;
  Hash32 key_id{};
  hsm::Evidence evidence;
  uint64_t head_seq = 0;
};

struct Recovery {
  uint64_t cut_offset = 0;   // where the cut tail began
  uint64_t cut_bytes = 0;    // how many bytes were cut
  Hash32 cut_sha256{};       // of the cut bytes, so they can be matched to a copy
  int64_t recovered_ns = 0;  // when
  std::string reason;
};

// ======================================================================
// Encoding and decoding
// ======================================================================

bool valid_stream_name(std::string_view name);

// Writes a full kHeaderBytes header (checksum included) into out.
void encode_header(const SegmentHeader& h, uint8_t* out);
// Decodes and checks a header: magic, version, sizes, reserved bytes zero,
// frontier count, checksum. DataLoss with a reason on any mismatch.
Result<SegmentHeader> decode_header(std::span<const uint8_t> block);

// Fills the 64 header bytes at frame (checksums included). The body and padding
// must already be at frame + 64 .. frame + span.
void seal_frame_header(const FrameHeader& h, uint8_t* frame);
// Checks magic, reserved bytes, header checksum, span sanity; does not look at
// the body. DataLoss with a reason on any mismatch.
Result<FrameHeader> decode_frame_header(std::span<const uint8_t> bytes);
// True when the body checksum matches [64, span).
bool frame_body_checksum_ok(const uint8_t* frame, uint32_t span_bytes);

// Record encoding in a batch body. Returns bytes written (4 + record size).
size_t encoded_record_bytes(const RecordView& r);
// Writes the kRecFixedBytes fixed part of a record (what the leaf hash starts with).
void encode_record_fixed(const RecordView& r, uint8_t* out);
void encode_record(const RecordView& r, uint8_t* out);
// Record bytes (without the u32 prefix), as hashed into the leaf.
Result<RecordView> decode_record(std::span<const uint8_t> record);

void encode_checkpoint_body(const CheckpointBody& b, uint8_t* out);
Result<CheckpointBody> decode_checkpoint_body(std::span<const uint8_t> body);
Hash32 head_of(std::span<const uint8_t> body);  // SHA-256 of the 320 body bytes

size_t recovery_body_bytes(const Recovery& r);
void encode_recovery(const Recovery& r, uint8_t* out);
Result<Recovery> decode_recovery(std::span<const uint8_t> body);

// chain' = SHA-256(kChainDomain || chain || bytes): the frame chain absorbs the
// segment header, then each frame's header (batch) or whole span (other frames).
Hash32 chain_start(std::span<const uint8_t> header_block);
Hash32 chain_next(const Hash32& chain, std::span<const uint8_t> bytes);

// Segment file names: "seg-%010llu.lsg".
std::string segment_file_name(uint64_t segment_seq);
std::optional<uint64_t> parse_segment_file_name(std::string_view name);

}  // namespace logseal::format
