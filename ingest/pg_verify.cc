#include "ingest/pg_verify.h"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "engine/reader.h"
#include "ingest/pg_reassembler.h"
#include "ingest/pg_records.h"
#include "ingest/pgaudit.h"
#include "ingest/syslog_parse.h"

namespace logseal::ingest {

namespace {

constexpr std::string_view kKind = "bad-reassembly";

struct Entry {
  uint64_t index = 0;
  std::vector<uint64_t> fragments;
  bool ok = true;  // pass 1 found nothing wrong with the list itself
};

struct Fragment {
  std::string raw;
  bool syslog_view = false;
};

bool names_fragments(std::string_view fields) {
  return !fields.empty() && fields[0] == '{' && fields.find("\"pg_fragments\"") != std::string_view::npos;
}

// Reruns the reassembly over the fragments' messages; true when one of the four
// server settings rebuilds exactly (raw, fragments).
bool rebuilds(const std::vector<const Fragment*>& frags, const std::vector<uint64_t>& ids, std::string_view raw) {
  const std::array<std::pair<bool, bool>, 4> settings = {{{true, true}, {false, true}, {true, false}, {false, false}}};
  for (auto [seq, split] : settings) {
    size_t entries = 0;
    bool same = false;
    PgReassembler r(PgSyslogOptions{.sequence_numbers = seq, .split_messages = split, .entry_bytes_max = kPgEntryRecordBytesMax}, std::nullopt,
                    [&](const PgEntry& e) {
                      ++entries;
                      same = e.text == raw && std::equal(e.fragment_ids.begin(), e.fragment_ids.end(), ids.begin(),
                                                         ids.end());
                    });
    for (size_t i = 0; i < frags.size(); ++i) r.add(parse_syslog(frags[i]->raw), ids[i], 0);
    r.flush_all();
    if (entries == 1 && same) return true;
  }
  return false;
}

// Empty when fields.pgaudit agrees with the AUDIT payload of raw, else why not.
std::string check_audit_fields(simdjson::dom::element pgaudit, std::string_view raw) {
  size_t at = raw.find(":  AUDIT: ");
  if (at == std::string_view::npos) return "fields.pgaudit present but the raw text holds no AUDIT record";
  auto rec = parse_audit(raw.substr(at + 3), /*consumed_bytes=*/&at);
  if (!rec.ok()) return "the AUDIT record of the raw text does not parse: " + rec.status().message();
  const AuditRecord& a = rec.value();
  const std::pair<const char*, std::string_view> texts[] = {
      {"audit_type", a.audit_type.view()}, {"class", a.class_name.view()},     {"command", a.command.view()},
      {"object_type", a.object_type.view()}, {"object_name", a.object_name.view()}, {"statement", a.statement.view()},
      {"parameter", a.parameter.view()}};
  for (auto [name, want] : texts) {
    std::string_view got;
    if (pgaudit[name].get(got) != simdjson::SUCCESS || got != want) {
      return std::string("fields.pgaudit.") + name + " differs from the AUDIT record of the raw text";
    }
  }
  const std::pair<const char*, uint64_t> ids[] = {{"statement_id", a.statement_id},
                                                  {"substatement_id", a.substatement_id}};
  for (auto [name, want] : ids) {
    uint64_t got = 0;
    if (pgaudit[name].get(got) != simdjson::SUCCESS || got != want) {
      return std::string("fields.pgaudit.") + name + " differs from the AUDIT record of the raw text";
    }
  }
  int64_t rows = 0;
  bool has_rows = pgaudit["rows"].get(rows) == simdjson::SUCCESS;
  if (has_rows != a.has_rows || (has_rows && rows != a.rows)) {
    return "fields.pgaudit.rows differs from the AUDIT record of the raw text";
  }
  return "";
}

}  // namespace

Status verify_pg_reassembly(io::Env& env, const std::string& data_dir, const std::string& stream,
                            std::vector<engine::Finding>& findings, PgVerifyStats& stats) {
  auto finding = [&](uint64_t index, std::string msg) {
    engine::Finding f;
    f.kind = std::string(kKind);
    f.stream = stream;
    f.record_index = static_cast<int64_t>(index);
    f.record_count = 1;
    f.message = std::move(msg);
    findings.push_back(std::move(f));
  };
  simdjson::dom::parser parser;

  // Pass 1: the fragment lists.
  std::vector<Entry> entries;
  std::unordered_map<uint64_t, uint64_t> claimed;  // fragment -> the record naming it
  LS_RETURN_IF_ERROR(engine::for_each_record(env, data_dir, stream, [&](const engine::StoredRecord& r) {
    if (!names_fragments(r.view.fields)) return true;
    Entry e;
    e.index = r.index;
    simdjson::dom::element root;
    simdjson::dom::array list;
    simdjson::padded_string buf(r.view.fields);
    if (parser.parse(buf).get(root) != simdjson::SUCCESS || root["pg_fragments"].get(list) != simdjson::SUCCESS) {
      finding(r.index, "fields name pg_fragments but are not a JSON object with a pg_fragments array");
      return true;
    }
    for (simdjson::dom::element v : list) {
      uint64_t f = 0;
      if (v.get(f) != simdjson::SUCCESS) {
        finding(r.index, "pg_fragments holds something other than record indexes");
        e.ok = false;
        break;
      }
      e.fragments.push_back(f);
    }
    if (e.ok && e.fragments.empty()) {
      finding(r.index, "pg_fragments is empty");
      e.ok = false;
    }
    for (uint64_t f : e.fragments) {
      if (!e.ok) break;
      if (f >= r.index) {
        finding(r.index, "fragment " + std::to_string(f) + " does not precede the reassembled record");
        e.ok = false;
      } else if (auto [it, fresh] = claimed.emplace(f, r.index); !fresh) {
        finding(r.index, "fragment " + std::to_string(f) + " is also claimed by record " + std::to_string(it->second) +
                             " (an entry would be counted twice)");
        e.ok = false;
      }
    }
    stats.reassembled_records++;
    stats.fragments += e.fragments.size();
    entries.push_back(std::move(e));
    return true;
  }));
  if (entries.empty()) return ok_status();

  // Pass 2: keep each named fragment until its record is checked.
  std::unordered_map<uint64_t, Fragment> held;
  size_t next = 0;
  std::optional<uint64_t> first_index;  // the stream's first remaining record (a prune removes a prefix)
  LS_RETURN_IF_ERROR(engine::for_each_record(env, data_dir, stream, [&](const engine::StoredRecord& r) {
    if (!first_index) first_index = r.index;
    bool syslog_view = !r.view.fields.empty() && static_cast<uint8_t>(r.view.fields[0]) == format::kFieldsSyslogView;
    if (claimed.count(r.index) != 0) {
      Fragment& f = held[r.index];
      f.raw.assign(r.view.raw);
      f.syslog_view = syslog_view;
    } else if (syslog_view && r.view.raw.find("LOG:  AUDIT: ") != std::string_view::npos) {
      stats.unclaimed_audit_fragments++;
    }
    if (next >= entries.size() || entries[next].index != r.index) return true;
    const Entry& e = entries[next++];
    bool pruned = std::any_of(e.fragments.begin(), e.fragments.end(), [&](uint64_t id) { return id < *first_index; });
    if (pruned) stats.fragments_pruned++;
    if (e.ok && !pruned) {
      std::vector<const Fragment*> frags;
      std::string problem;
      for (uint64_t id : e.fragments) {
        auto it = held.find(id);
        if (it == held.end()) {
          problem = "fragment " + std::to_string(id) + " is not a record of the stream";
          break;
        }
        if (!it->second.syslog_view) {
          problem = "fragment " + std::to_string(id) + " is not a parsed syslog record";
          break;
        }
        frags.push_back(&it->second);
      }
      if (problem.empty() && !rebuilds(frags, e.fragments, r.view.raw)) {
        problem = "the messages of its " + std::to_string(e.fragments.size()) +
                  " fragments do not reassemble to its raw bytes";
      }
      if (problem.empty()) {
        simdjson::padded_string buf(r.view.fields);
        simdjson::dom::element root, pgaudit;
        if (parser.parse(buf).get(root) == simdjson::SUCCESS && root["pgaudit"].get(pgaudit) == simdjson::SUCCESS) {
          problem = check_audit_fields(pgaudit, r.view.raw);
        }
      }
      if (!problem.empty()) finding(r.index, problem);
    }
    for (uint64_t id : e.fragments) {
      auto c = claimed.find(id);
      if (c != claimed.end() && c->second == e.index) held.erase(id);
    }
    return true;
  }));
  for (; next < entries.size(); ++next) {
    finding(entries[next].index, "the reassembled record could not be read back");
  }
  return ok_status();
}

}  // namespace logseal::ingest
