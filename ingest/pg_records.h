// PostgreSQL entries as records: the `fields` JSON of an entry (docs/FORMAT.md
// 5.2) and the per-stream reassembly that logseald runs for streams configured
// for PostgreSQL.
//
// Which entries become records:
// - backfill (csvlog, jsonlog): every entry, since its bytes are the input;
//   `fields.pgaudit` only for an AUDIT entry.
// - syslog: the fragments are sealed as received (fields.syslog only); a
//   reassembled record is added only for an entry whose message is an AUDIT
//   record (or, when the prefix did not match, whose text holds "AUDIT: ", so a
//   wrong log_line_prefix shows up as records with `pg_error` instead of silence).
//   Other multi-line entries (ERROR + STATEMENT, ...) stay as their fragments:
//   sealing them twice would double the stream for nothing an auditor counts, and
//   each audit record is then exactly one record carrying `fields.pgaudit`.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "engine/store.h"
#include "ingest/pg_prefix.h"
#include "ingest/pg_reassembler.h"
#include "ingest/pgaudit.h"
#include "ingest/syslog_parse.h"

namespace logseal::ingest {

// Appends the fields object of an entry:
//   {"pgaudit":{...},"postgres":{...}[,"pg_fragments":[i,...],"pg_flags":[...]][,"pg_error":"..."]}
// pgaudit only when entry.audit is set (every key present; rows only when logged);
// postgres holds the keys the source carried (pid a number); pg_fragments and
// pg_flags only when fragments are given (a syslog reassembly). pg_error names why
// an entry that looks like an AUDIT record has no pgaudit (prefix or payload
// did not parse). Text that is not UTF-8 becomes U+FFFD in the JSON only.
void append_pg_fields_json(const PgEntry& entry, std::span<const uint64_t> fragments, std::string& out);

// Names of PgEntryFlag bits as stored in pg_flags: gap, continued, oversized,
// evicted, out-of-order, unsequenced.
std::vector<std::string_view> pg_flag_names(uint32_t flags);

// True when a syslog reassembly of this entry gets a record of its own (above).
bool pg_entry_gets_record(const PgEntry& entry);

// Reassembled entries longer than this are cut (pg_flags oversized, the rest
// follows as a continued entry): the record holds the text plus fields repeating
// the statement and must stay under the stream's record limit (at least 1 MiB)
// even when JSON escaping grows the copy. The verifier reruns with the same bound.
inline constexpr size_t kPgEntryRecordBytesMax = 128 * 1024;

// The PostgreSQL part of a listener's configuration (logseald `[[listener]]`
// pg_* keys, --pg-* flags).
struct PgListenerOptions {
  bool enabled = false;
  std::string log_line_prefix;                        // the server's log_line_prefix
  std::vector<std::string> app_names = {"postgres"};  // syslog app_name (syslog_ident) of the servers
  bool sequence_numbers = true;                       // the server's syslog_sequence_numbers
  bool split_messages = true;                         // the server's syslog_split_messages
  uint32_t flush_ms = 2000;  // an entry with no further fragment for this long is complete
};

// Counters for /metrics and tests.
struct PgStreamStats {
  uint64_t fragments = 0;        // syslog messages fed
  uint64_t entries = 0;          // logical entries rebuilt
  uint64_t records = 0;          // reassembled records appended
  uint64_t audit_records = 0;    // ... of which carry fields.pgaudit
  uint64_t errors = 0;           // ... of which carry pg_error
  uint64_t append_failures = 0;  // the stream refused the reassembled record
};

// One stream's reassembly. Thread-safety: one instance per stream, shared by every
// ingest thread and listener that feeds the stream, all calls under one mutex.
// Per-thread reassemblers would be lock-free but wrong: the fragments of one
// backend's entry can arrive over different connections (a relay reconnecting,
// two relays, UDP and TCP listeners on one stream), which the kernel hands to
// different threads, and the entry would be cut in two. Reassembly costs about a
// microsecond per fragment (bench/), so the lock is not the bottleneck; the
// append of a reassembled record happens under it and may block on the stream's
// backpressure like any append.
//
// Ordering: the caller appends the fragment first and passes the index the store
// assigned, so every fragment's index is below its entry's record index.
class PgStreamIngest {
 public:
  static Result<std::unique_ptr<PgStreamIngest>> create(engine::Stream& stream, const PgListenerOptions& options);

  // True when a message with this app_name is PostgreSQL's.
  bool wants(std::string_view app_name) const;
  // Feeds a fragment already appended at index; now_ns is the receive time
  // (unix ns), used for the flush timer and the reassembled record's time.
  void add(const SyslogFields& fragment, uint64_t index, int64_t now_ns);
  // Emits entries whose last fragment is older than flush_ms (call periodically).
  void flush_due(int64_t now_ns);
  // Emits everything pending (shutdown, before the store closes).
  void flush_all(int64_t now_ns);

  PgStreamStats stats() const;
  const PgListenerOptions& options() const { return options_; }

 private:
  PgStreamIngest(engine::Stream& stream, PgListenerOptions options, std::optional<PgLinePrefix> prefix);
  void on_entry(const PgEntry& e);

  engine::Stream& stream_;
  PgListenerOptions options_;
  mutable std::mutex mu_;
  PgReassembler reassembler_;  // guarded by mu_
  int64_t now_ns_ = 0;         // guarded by mu_: time of the call that emits
  std::string fields_;         // guarded by mu_: scratch
  PgStreamStats stats_;        // guarded by mu_
};

}  // namespace logseal::ingest
