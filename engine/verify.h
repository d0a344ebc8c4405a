// The verification library: everything `logseal verify` proves, offline, with
// only public keys. It reads, never writes, so it runs on a copy anywhere or on
// the live data directory of a running logseald.
//
// Segments are verified in parallel (each carries its Merkle frontier and chain
// start), then the links between segments and the head chain are checked in
// order, then the optional anchor.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "engine/format.h"
#include "hsm/public_key.h"
#include "io/env.h"

namespace logseal::engine {

// Kinds of findings (DESIGN.md): bad-checksum, bad-header, bad-record,
// bad-signature, chain-break, root-mismatch, missing-segment, duplicate-segment,
// reordered, truncated, torn-tail, unknown-key, trailing-data, rollback,
// unsigned-tail, soft-signer, unexpected-file, bad-anchor, bad-prune,
// prune-under-hold (retention statements, engine/retention.h).
struct Finding {
  std::string kind;
  std::string file;
  int64_t offset = -1;
  std::string stream;
  int64_t segment = -1;
  int64_t record_index = -1;  // first record concerned, when known
  int64_t record_count = -1;  // how many records, when known
  std::string message;
};

// A signed checkpoint kept elsewhere (`logseal checkpoint` output).
struct Anchor {
  format::CheckpointBody body;
  std::vector<uint8_t> body_bytes;
  std::vector<uint8_t> signature;
};
Result<Anchor> parse_anchor(const std::string& text);
std::string format_anchor(std::span<const uint8_t> body, std::span<const uint8_t> signature);

struct VerifyOptions {
  const std::vector<hsm::PublicKey>* keys = nullptr;
  bool allow_unsigned_tail = false;
  bool require_tpm = false;
  unsigned jobs = 1;
  std::vector<Anchor> anchors;
  // Only this stream (empty: every stream). Retention verifies the stream it is
  // about to prune, not the whole directory.
  std::string only_stream;
};

struct StreamReport {
  std::string name;
  uint64_t segments = 0;
  uint64_t records = 0;
  uint64_t signed_records = 0;
  uint64_t bytes = 0;
  uint64_t checkpoints = 0;
  uint64_t recoveries = 0;
  bool open_segment = false;  // the last segment is not sealed (normal while logseald runs)
  std::string last_head_hex;
  int64_t last_signed_ns = 0;
  std::vector<std::string> notes;  // recoveries and other facts worth telling
};

struct VerifyReport {
  std::vector<Finding> findings;
  std::vector<StreamReport> streams;
  bool ok() const { return findings.empty(); }
};

// Verifies every stream under data_dir. An I/O or usage problem (no such
// directory, unreadable file) is a non-ok Result; integrity problems are findings.
Result<VerifyReport> verify_data_dir(io::Env& env, const std::string& data_dir, const VerifyOptions& options);

std::string finding_to_text(const Finding& f);
std::string report_to_json(const VerifyReport& r);

}  // namespace logseal::engine
