#include "ingest/pg_logfile.h"

#include <simdjson.h>

#include <charconv>

namespace logseal::ingest {
namespace {

constexpr size_t kCsvColumnsMin = 23;  // PostgreSQL 12: up to application_name
constexpr size_t kCsvColumnsMax = 26;  // PostgreSQL 14-16: leader_pid, query_id added

enum CsvColumn : size_t {
  kLogTime = 0,
  kUserName = 1,
  kDatabaseName = 2,
  kProcessId = 3,
  kConnectionFrom = 4,
  kErrorSeverity = 11,
  kMessage = 13,
  kApplicationName = 22,
};

Status record_error(const char* format, uint64_t record, uint64_t offset, const std::string& why) {
  return invalid_argument(std::string(format) + " record " + std::to_string(record) + " (byte " +
                          std::to_string(offset) + "): " + why);
}

// "host:port" -> host; "[local]" and a host without port stay as they are.
std::string_view client_host(std::string_view connection_from) {
  if (connection_from.empty() || connection_from.back() == ']') return connection_from;
  size_t colon = connection_from.rfind(':');
  if (colon == std::string_view::npos) return connection_from;
  std::string_view port = connection_from.substr(colon + 1);
  if (port.empty() || port.find_first_not_of("0123456789") != std::string_view::npos) return connection_from;
  return connection_from.substr(0, colon);
}

void parse_audit_into(PgEntry& e, AuditRecord& storage) {
  if (!is_audit_message(e.message)) return;
  Result<AuditRecord> r = parse_audit(e.message);
  if (r.ok()) {
    storage = std::move(r).value();
    e.audit = &storage;
  } else {
    e.audit_status = r.status();
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// csvlog

PgCsvlogReader::PgCsvlogReader(size_t record_bytes_max) : record_bytes_max_(record_bytes_max) {
  unquoted_.resize(kCsvColumnsMax);
}

Status PgCsvlogReader::feed(std::string_view data, const PgOnEntry& on_entry) {
  if (!failed_.ok()) return failed_;
  // Compact before growing, so the buffer stays near one record in size.
  if (buf_start_ > 0 && buf_start_ * 2 >= buf_.size()) {
    buf_.erase(0, buf_start_);
    scan_pos_ -= buf_start_;
    buf_start_ = 0;
  }
  buf_.append(data);
  failed_ = drain(on_entry, false);
  return failed_;
}

Status PgCsvlogReader::finish(const PgOnEntry& on_entry) {
  if (!failed_.ok()) return failed_;
  failed_ = drain(on_entry, true);
  return failed_;
}

Status PgCsvlogReader::drain(const PgOnEntry& on_entry, bool at_end) {
  for (;;) {
    size_t i = scan_pos_;
    while (i < buf_.size()) {
      char c = buf_[i];
      if (c == '"') {
        in_quotes_ = !in_quotes_;  // a doubled quote toggles twice
      } else if (c == '\n' && !in_quotes_) {
        break;
      }
      ++i;
    }
    scan_pos_ = i;
    if (i == buf_.size()) {
      if (buf_.size() - buf_start_ > record_bytes_max_) {
        return resource_exhausted("csvlog record " + std::to_string(records_ + 1) + " (byte " +
                                  std::to_string(offset_) + ") longer than " + std::to_string(record_bytes_max_) +
                                  " bytes");
      }
      if (!at_end || buf_start_ == buf_.size()) return ok_status();
      if (in_quotes_) return record_error("csvlog", records_ + 1, offset_, "input ends inside a quoted field");
    }
    std::string_view record(buf_.data() + buf_start_, i - buf_start_);
    if (record.size() > record_bytes_max_) {
      return resource_exhausted("csvlog record " + std::to_string(records_ + 1) + " (byte " + std::to_string(offset_) +
                                ") longer than " + std::to_string(record_bytes_max_) + " bytes");
    }
    LS_RETURN_IF_ERROR(deliver(record, on_entry));
    const size_t next = i < buf_.size() ? i + 1 : i;
    offset_ += next - buf_start_;
    buf_start_ = next;
    scan_pos_ = next;
    if (buf_start_ == buf_.size()) {
      buf_.clear();
      buf_start_ = scan_pos_ = 0;
      return ok_status();
    }
  }
}

Status PgCsvlogReader::deliver(std::string_view record, const PgOnEntry& on_entry) {
  const uint64_t number = records_ + 1;
  columns_.clear();
  size_t pos = 0;
  for (;;) {
    if (columns_.size() == kCsvColumnsMax) {
      return record_error("csvlog", number, offset_, "more than " + std::to_string(kCsvColumnsMax) + " columns");
    }
    const size_t column = columns_.size();
    if (pos < record.size() && record[pos] == '"') {
      std::string& u = unquoted_[column];
      u.clear();
      size_t i = pos + 1;
      bool doubled = false;
      for (;;) {
        size_t q = record.find('"', i);
        if (q == std::string_view::npos) {
          return record_error("csvlog", number, offset_, "column " + std::to_string(column + 1) + " not closed");
        }
        u.append(record.substr(i, q - i));
        if (q + 1 < record.size() && record[q + 1] == '"') {
          u.push_back('"');
          doubled = true;
          i = q + 2;
          continue;
        }
        columns_.push_back(doubled ? std::string_view(u) : record.substr(pos + 1, q - pos - 1));
        pos = q + 1;
        break;
      }
      if (pos < record.size() && record[pos] != ',') {
        return record_error("csvlog", number, offset_,
                            "byte " + std::to_string(pos) + " of the record: expected ',' after quoted column " +
                                std::to_string(column + 1));
      }
    } else {
      size_t end = record.find(',', pos);
      if (end == std::string_view::npos) end = record.size();
      std::string_view v = record.substr(pos, end - pos);
      if (v.find('"') != std::string_view::npos) {
        return record_error("csvlog", number, offset_,
                            "quote inside unquoted column " + std::to_string(column + 1));
      }
      columns_.push_back(v);
      pos = end;
    }
    if (pos >= record.size()) break;
    ++pos;  // the ','
    if (pos == record.size()) {
      if (columns_.size() == kCsvColumnsMax) {
        return record_error("csvlog", number, offset_, "more than " + std::to_string(kCsvColumnsMax) + " columns");
      }
      columns_.push_back(std::string_view());  // a trailing empty column
      break;
    }
  }
  if (columns_.size() < kCsvColumnsMin) {
    return record_error("csvlog", number, offset_,
                        std::to_string(columns_.size()) + " columns, expected " + std::to_string(kCsvColumnsMin) +
                            " to " + std::to_string(kCsvColumnsMax));
  }
  PgEntry e;
  e.text = record;
  e.postgres.time = columns_[kLogTime];
  e.postgres.user = columns_[kUserName];
  e.postgres.database = columns_[kDatabaseName];
  e.postgres.client = client_host(columns_[kConnectionFrom]);
  e.postgres.application = columns_[kApplicationName];
  std::string_view pid = columns_[kProcessId];
  if (!pid.empty()) {
    int64_t v = -1;
    auto [p, ec] = std::from_chars(pid.data(), pid.data() + pid.size(), v);
    if (ec != std::errc() || p != pid.data() + pid.size()) {
      return record_error("csvlog", number, offset_, "process_id is not a number");
    }
    e.postgres.pid = v;
  }
  e.severity = columns_[kErrorSeverity];
  e.message = columns_[kMessage];
  parse_audit_into(e, audit_);
  ++records_;
  on_entry(e);
  return ok_status();
}

// ---------------------------------------------------------------------------
// jsonlog

struct PgJsonlogReader::Parser {
  simdjson::dom::parser dom;
};

PgJsonlogReader::PgJsonlogReader(size_t record_bytes_max)
    : record_bytes_max_(record_bytes_max), parser_(std::make_unique<Parser>()) {}

PgJsonlogReader::~PgJsonlogReader() = default;

Status PgJsonlogReader::feed(std::string_view data, const PgOnEntry& on_entry) {
  if (!failed_.ok()) return failed_;
  size_t start = 0;
  for (;;) {
    size_t lf = data.find('\n', start);
    if (lf == std::string_view::npos) break;
    std::string_view piece = data.substr(start, lf - start);
    if (!buf_.empty()) {
      buf_.append(piece);
      piece = buf_;
    }
    if (piece.size() > record_bytes_max_) {
      failed_ = resource_exhausted("jsonlog record " + std::to_string(records_ + 1) + " (byte " +
                                   std::to_string(offset_) + ") longer than " + std::to_string(record_bytes_max_) +
                                   " bytes");
      return failed_;
    }
    failed_ = deliver(piece, on_entry);
    if (!failed_.ok()) return failed_;
    offset_ += piece.size() + 1;
    buf_.clear();
    start = lf + 1;
  }
  buf_.append(data.substr(start));
  if (buf_.size() > record_bytes_max_) {
    failed_ = resource_exhausted("jsonlog record " + std::to_string(records_ + 1) + " (byte " +
                                 std::to_string(offset_) + ") longer than " + std::to_string(record_bytes_max_) +
                                 " bytes");
  }
  return failed_;
}

Status PgJsonlogReader::finish(const PgOnEntry& on_entry) {
  if (!failed_.ok()) return failed_;
  if (!buf_.empty()) {
    failed_ = deliver(buf_, on_entry);
    if (failed_.ok()) {
      offset_ += buf_.size();
      buf_.clear();
    }
  }
  return failed_;
}

Status PgJsonlogReader::deliver(std::string_view line, const PgOnEntry& on_entry) {
  const uint64_t number = records_ + 1;
  simdjson::dom::element root;
  if (auto err = parser_->dom.parse(line.data(), line.size()).get(root); err) {
    return record_error("jsonlog", number, offset_, simdjson::error_message(err));
  }
  simdjson::dom::object obj;
  if (root.get(obj) != simdjson::SUCCESS) return record_error("jsonlog", number, offset_, "not a JSON object");

  PgEntry e;
  e.text = line;
  struct Key {
    std::string_view name;
    std::string_view* target;
    bool seen = false;
  };
  Key keys[] = {{"timestamp", &e.postgres.time},      {"user", &e.postgres.user},
                {"dbname", &e.postgres.database},     {"remote_host", &e.postgres.client},
                {"application_name", &e.postgres.application}, {"error_severity", &e.severity},
                {"message", &e.message}};
  bool pid_seen = false;
  for (simdjson::dom::key_value_pair kv : obj) {
    if (kv.key == "pid") {
      if (pid_seen) return record_error("jsonlog", number, offset_, "duplicate key \"pid\"");
      pid_seen = true;
      int64_t pid = 0;
      if (kv.value.get(pid) != simdjson::SUCCESS) return record_error("jsonlog", number, offset_, "pid is not an integer");
      e.postgres.pid = pid;
      continue;
    }
    for (Key& k : keys) {
      if (kv.key != k.name) continue;
      if (k.seen) return record_error("jsonlog", number, offset_, "duplicate key \"" + std::string(k.name) + "\"");
      k.seen = true;
      if (kv.value.get(*k.target) != simdjson::SUCCESS) {
        return record_error("jsonlog", number, offset_, "\"" + std::string(k.name) + "\" is not a string");
      }
    }
  }
  parse_audit_into(e, audit_);
  ++records_;
  on_entry(e);
  return ok_status();
}

}  // namespace logseal::ingest
