#include "ingest/pg_records.h"

#include <algorithm>

#include "engine/export.h"

namespace logseal::ingest {

namespace {

// Source of a reassembled record: it was built here, not received from a peer;
// the peers are named by the fragments' records.
constexpr std::string_view kReassembledSource = "pg-reassembly";

void key(std::string_view name, std::string& o, bool& first) {
  if (!first) o += ',';
  first = false;
  o += '"';
  o += name;
  o += "\":";
}

void str_member(std::string_view name, std::string_view value, std::string& o, bool& first) {
  key(name, o, first);
  engine::append_json_escaped_lossy(value, o);
}

void num_member(std::string_view name, int64_t value, std::string& o, bool& first) {
  key(name, o, first);
  o += std::to_string(value);
}

}  // namespace

std::vector<std::string_view> pg_flag_names(uint32_t flags) {
  std::vector<std::string_view> names;
  if (flags & kPgEntryGap) names.push_back("gap");
  if (flags & kPgEntryContinued) names.push_back("continued");
  if (flags & kPgEntryOversized) names.push_back("oversized");
  if (flags & kPgEntryEvicted) names.push_back("evicted");
  if (flags & kPgEntryOutOfOrder) names.push_back("out-of-order");
  if (flags & kPgEntryUnsequenced) names.push_back("unsequenced");
  return names;
}

bool pg_entry_gets_record(const PgEntry& e) {
  if (e.audit != nullptr || !e.audit_status.ok()) return true;
  return !e.prefix_status.ok() && e.text.find(kAuditTag) != std::string_view::npos;
}

void append_pg_fields_json(const PgEntry& e, std::span<const uint64_t> fragments, std::string& o) {
  o += '{';
  bool first_top = true;
  if (e.audit != nullptr) {
    const AuditRecord& a = *e.audit;
    key("pgaudit", o, first_top);
    o += '{';
    bool first = true;
    str_member("audit_type", a.audit_type.view(), o, first);
    num_member("statement_id", static_cast<int64_t>(a.statement_id), o, first);
    num_member("substatement_id", static_cast<int64_t>(a.substatement_id), o, first);
    str_member("class", a.class_name.view(), o, first);
    str_member("command", a.command.view(), o, first);
    str_member("object_type", a.object_type.view(), o, first);
    str_member("object_name", a.object_name.view(), o, first);
    str_member("statement", a.statement.view(), o, first);
    str_member("parameter", a.parameter.view(), o, first);
    if (a.has_rows) num_member("rows", a.rows, o, first);
    o += '}';
  }
  if (e.prefix_status.ok()) {
    key("postgres", o, first_top);
    o += '{';
    bool first = true;
    const PgFields& p = e.postgres;
    if (!p.user.empty()) str_member("user", p.user, o, first);
    if (!p.database.empty()) str_member("database", p.database, o, first);
    if (!p.application.empty()) str_member("application", p.application, o, first);
    if (!p.client.empty()) str_member("client", p.client, o, first);
    if (p.pid >= 0) num_member("pid", p.pid, o, first);
    if (!p.time.empty()) str_member("time", p.time, o, first);
    if (!e.severity.empty()) str_member("severity", e.severity, o, first);
    o += '}';
  }
  if (!fragments.empty()) {
    key("pg_fragments", o, first_top);
    o += '[';
    for (size_t i = 0; i < fragments.size(); ++i) {
      if (i) o += ',';
      o += std::to_string(fragments[i]);
    }
    o += ']';
    key("pg_flags", o, first_top);
    o += '[';
    bool first = true;
    for (std::string_view n : pg_flag_names(e.flags)) {
      if (!first) o += ',';
      first = false;
      o += '"';
      o += n;
      o += '"';
    }
    o += ']';
  }
  if (!e.prefix_status.ok() && e.audit == nullptr) {
    key("pg_error", o, first_top);
    engine::append_json_escaped_lossy("log_line_prefix: " + e.prefix_status.message(), o);
  } else if (!e.audit_status.ok()) {
    key("pg_error", o, first_top);
    engine::append_json_escaped_lossy("AUDIT: " + e.audit_status.message(), o);
  }
  o += '}';
}

// ---------------------------------------------------------------------------

Result<std::unique_ptr<PgStreamIngest>> PgStreamIngest::create(engine::Stream& stream,
                                                               const PgListenerOptions& options) {
  std::optional<PgLinePrefix> prefix;
  if (!options.log_line_prefix.empty()) {
    auto p = PgLinePrefix::compile(options.log_line_prefix);
    if (!p.ok()) return p.status().with_context("pg_log_line_prefix of stream " + stream.name());
    prefix = std::move(p).value();
  }
  if (options.app_names.empty()) {
    return invalid_argument("stream " + stream.name() + ": pg_app_names is empty, so no message would be PostgreSQL's");
  }
  return std::unique_ptr<PgStreamIngest>(new PgStreamIngest(stream, options, std::move(prefix)));
}

PgStreamIngest::PgStreamIngest(engine::Stream& stream, PgListenerOptions options, std::optional<PgLinePrefix> prefix)
    : stream_(stream),
      options_(std::move(options)),
      reassembler_(
          PgSyslogOptions{.sequence_numbers = options_.sequence_numbers,
                          .split_messages = options_.split_messages,
                          .entry_bytes_max = kPgEntryRecordBytesMax},
          std::move(prefix), [this](const PgEntry& e) { on_entry(e); }) {}

bool PgStreamIngest::wants(std::string_view app_name) const {
  return std::find(options_.app_names.begin(), options_.app_names.end(), app_name) != options_.app_names.end();
}

void PgStreamIngest::add(const SyslogFields& fragment, uint64_t index, int64_t now_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  now_ns_ = now_ns;
  stats_.fragments++;
  reassembler_.add(fragment, index, now_ns);
}

void PgStreamIngest::flush_due(int64_t now_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  if (reassembler_.pending_keys() == 0) return;
  now_ns_ = now_ns;
  reassembler_.flush_older_than(now_ns - int64_t{options_.flush_ms} * 1000000);
}

void PgStreamIngest::flush_all(int64_t now_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  now_ns_ = now_ns;
  reassembler_.flush_all();
}

PgStreamStats PgStreamIngest::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

// Runs inside reassembler_ calls, so under mu_.
void PgStreamIngest::on_entry(const PgEntry& e) {
  stats_.entries++;
  if (!pg_entry_gets_record(e)) return;
  fields_.clear();
  append_pg_fields_json(e, e.fragment_ids, fields_);
  format::RecordView r;
  r.received_ns = now_ns_;
  r.source = kReassembledSource;
  r.fields = fields_;
  r.raw = e.text;
  auto idx = stream_.append(r);
  if (!idx.ok()) {
    // The stream stopped (the daemon exits and restarts). The fragments that were
    // appended are sealed; a verifier sees them without their reassembled record.
    stats_.append_failures++;
    return;
  }
  stats_.records++;
  if (e.audit != nullptr) stats_.audit_records++;
  if (fields_.find("\"pg_error\"") != std::string::npos) stats_.errors++;
}

}  // namespace logseal::ingest
