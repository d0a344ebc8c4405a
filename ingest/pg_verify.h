// The verifier's check of reassembled PostgreSQL records (docs/FORMAT.md 5.2),
// run by `logseal verify` after the engine's checks. It lives in ingest/ because
// it reruns the reassembly rules (PgReassembler) and the AUDIT parser; the engine
// knows nothing of PostgreSQL.
//
// For each record whose fields hold "pg_fragments" (finding kind bad-reassembly):
// - pg_fragments is a non-empty list of distinct record indexes, each below the
//   record's own index, each naming a record of the stream that holds a syslog
//   view (fields.syslog), and no fragment is claimed by two reassembled records
//   (each audit record counted once);
// - feeding those fragments' raw messages, in the listed order, to a fresh
//   reassembler rebuilds exactly one entry whose text is the record's raw bytes and
//   whose fragment list is the same. The stream's syslog_sequence_numbers /
//   syslog_split_messages settings are not recorded, so the four combinations are
//   tried and one must reproduce it;
// - when fields.pgaudit is present, parsing the "AUDIT: " payload of the raw
//   text gives the same values.
//
// Two passes over the stream: the first collects the fragment lists (a few bytes
// per fragment), the second keeps a fragment's raw bytes only until the record
// that names it is checked, so memory follows the entries in flight, not the stream.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/verify.h"
#include "io/env.h"

namespace logseal::ingest {

struct PgVerifyStats {
  uint64_t reassembled_records = 0;  // records naming fragments, checked
  uint64_t fragments = 0;            // fragments they name
  // In a stream that has reassembled records: syslog records holding the start of
  // an AUDIT entry ("LOG:  AUDIT: ") that no reassembled record names. Not a
  // finding (a daemon killed before its flush timer leaves such fragments, sealed
  // but without their entry record); `verify` reports the count as a note, since
  // those audit records are missing from a fields.pgaudit query.
  uint64_t unclaimed_audit_fragments = 0;
  // Reassembled records some of whose fragments are before the stream's first
  // remaining record (removed by a signed prune, FORMAT.md 5.4): not checked,
  // since the evidence is gone by policy; `verify` reports the count as a note.
  uint64_t fragments_pruned = 0;
};

// Appends a bad-reassembly finding per problem. Non-ok only for I/O errors (the
// stream's integrity findings come from engine::verify_data_dir).
Status verify_pg_reassembly(io::Env& env, const std::string& data_dir, const std::string& stream,
                            std::vector<engine::Finding>& findings, PgVerifyStats& stats);

}  // namespace logseal::ingest
