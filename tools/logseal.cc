// logseal: the offline tool. Thin: parses the command line (DESIGN.md, "logseal
// CLI") and calls the libraries. Exit codes: 0 success / verified, 1 integrity
// failure found, 2 usage, configuration or I/O error.
#include <malloc.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/audit.h"
#include "engine/export.h"
#include "engine/inspect.h"
#include "engine/key_rotation.h"
#include "engine/merkle.h"
#include "engine/reader.h"
#include "engine/store.h"
#include "engine/verify.h"
#include "hsm/public_key.h"
#include "hsm/sha256.h"
#include "hsm/signer.h"
#include "hsm/soft_signer.h"
#include "hsm/tpm_signer.h"
#include "ingest/backfill.h"
#include "ingest/pg_backfill.h"
#include "ingest/pg_report.h"
#include "ingest/pg_verify.h"
#include "ingest/record_export.h"
#include "io/env.h"
#include "tools/retention_cmds.h"
#include "tools/token_cmds.h"

using namespace logseal;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitIntegrity = 1;
constexpr int kExitUsage = 2;

int fail(const Status& st) {
  std::fprintf(stderr, "logseal: %s\n", st.to_string().c_str());
  return st.code() == Code::kDataLoss ? kExitIntegrity : kExitUsage;
}

Result<std::vector<hsm::PublicKey>> load_keys(const std::vector<std::string>& paths) {
  std::vector<hsm::PublicKey> keys;
  for (const auto& p : paths) {
    auto k = hsm::PublicKey::load_pem_file(p);
    if (!k.ok()) return k.status().with_context("public key " + p);
    keys.push_back(std::move(k).value());
  }
  return keys;
}

Result<std::string> read_text(const std::string& path) {
  auto bytes = io::posix_env().read_file(path);
  if (!bytes.ok()) return bytes.status();
  return std::string(bytes->begin(), bytes->end());
}

void write_all(const void* data, size_t len) {
  if (std::fwrite(data, 1, len, stdout) != len) {
    std::fprintf(stderr, "logseal: writing to standard output failed\n");
    std::exit(kExitUsage);
  }
}

// ---- keygen ------------------------------------------------------------------

int cmd_keygen(const std::string& signer, const std::string& out, const std::string& tcti, const std::string& pcrs) {
  if (signer == "tpm") {
    hsm::TpmKeygenOptions opt;
    opt.tcti = tcti;
    if (!pcrs.empty()) {
      auto list = hsm::parse_pcr_list(pcrs);
      if (!list.ok()) return fail(list.status());
      opt.pcrs = list.value();
    }
    auto id = hsm::tpm_keygen(out, opt);
    if (!id.ok()) return fail(id.status());
    std::printf("%s\n", to_hex(id.value()).c_str());
    std::fprintf(
        stderr, "wrote %s/signing-key.pem (TPM-wrapped: usable only by this TPM%s) and %s/signing-key.pub.pem\n",
        out.c_str(), pcrs.empty() ? "" : (", and only while PCRs " + pcrs + " keep their values").c_str(), out.c_str());
    return kExitOk;
  }
  if (signer != "soft") return fail(invalid_argument("--signer must be tpm or soft"));
  if (!pcrs.empty()) return fail(invalid_argument("--pcrs applies to --signer tpm only"));
  auto id = hsm::soft_keygen(out);
  if (!id.ok()) return fail(id.status());
  std::printf("%s\n", to_hex(id.value()).c_str());
  std::fprintf(stderr, "wrote %s/signing-key.pem (software key: development only) and %s/signing-key.pub.pem\n",
               out.c_str(), out.c_str());
  return kExitOk;
}

// ---- ingest --------------------------------------------------------------------

struct StoreFlags {
  uint64_t segment_bytes = 64ull << 20;
  uint64_t segment_age_s = 0;
  uint32_t checkpoint_ms = 1000;
  std::string pg_prefix;
  std::string tcti;
};

void add_store_flags(CLI::App* app, StoreFlags& f) {
  app->add_option("--segment-bytes", f.segment_bytes, "roll a segment at this size (default 64 MiB)");
  app->add_option("--segment-age-s", f.segment_age_s, "roll a segment at this age in seconds (default: never)");
  app->add_option("--checkpoint-ms", f.checkpoint_ms, "sign a checkpoint this often (default 1000)");
  app->add_option("--pg-log-line-prefix", f.pg_prefix, "PostgreSQL log_line_prefix, to split pgaudit lines");
  app->add_option("--tcti", f.tcti, "TPM TCTI (default $LOGSEAL_TCTI or device:/dev/tpmrm0)");
}

int cmd_ingest(const std::string& data_dir, const std::string& stream_name, const std::string& signer_spec,
               const std::string& format_name, std::vector<std::string> files, const StoreFlags& flags) {
  // PostgreSQL's csvlog/jsonlog have readers of their own (pg_backfill.h); JSON
  // lines are not a framing either (backfill_jsonl_file()).
  std::optional<ingest::PgLogFormat> pg_format = ingest::parse_pg_log_format(format_name);
  bool jsonl = format_name == "jsonl";
  Result<ingest::Framing> framing = ingest::Framing::kLines;
  if (!pg_format && !jsonl) framing = ingest::parse_input_format(format_name);
  if (!framing.ok()) return fail(framing.status());
  if (!flags.tcti.empty()) setenv("LOGSEAL_TCTI", flags.tcti.c_str(), 1);
  auto signer = hsm::open_signer(signer_spec);
  if (!signer.ok()) return fail(signer.status());
  // A stream never changes key except through `logseal key rotate`.
  Status key = engine::check_stream_key(io::posix_env(), data_dir, stream_name, signer.value()->key_id());
  if (!key.ok()) return fail(key);
  engine::StoreOptions opt;
  opt.stream.segment_bytes = flags.segment_bytes;
  opt.stream.segment_age_s = flags.segment_age_s;
  opt.stream.checkpoint_ms = flags.checkpoint_ms;
  auto store = engine::Store::open(io::posix_env(), data_dir, std::move(signer).value(), opt);
  if (!store.ok()) return fail(store.status());
  auto stream = store.value()->stream(stream_name);
  if (!stream.ok()) return fail(stream.status());
  if (files.empty()) files.push_back("-");
  ingest::BackfillStats stats;
  Status st;
  for (const auto& f : files) {
    // A JSON record holds the event and its fields (at most about as long): half the record limit each.
    if (pg_format) {
      st = ingest::backfill_pg_file(*stream.value(), *pg_format, f, opt.stream.record_bytes_max / 2, stats);
    } else if (jsonl) {
      st = ingest::backfill_jsonl_file(*stream.value(), f, (opt.stream.record_bytes_max - 4096) / 2, stats);
    } else {
      st = ingest::backfill_file(*stream.value(), framing.value(), f, opt.stream.record_bytes_max - 4096, stats);
    }
    if (!st.ok()) break;
  }
  Status closed = store.value()->close();
  if (stats.records > 0) {
    std::fprintf(stderr,
                 "ingested %llu records (%llu bytes, %llu cut at the size limit) into stream %s, indexes %llu..%llu\n",
                 static_cast<unsigned long long>(stats.records), static_cast<unsigned long long>(stats.bytes),
                 static_cast<unsigned long long>(stats.truncated), stream_name.c_str(),
                 static_cast<unsigned long long>(stats.first_index), static_cast<unsigned long long>(stats.last_index));
  } else {
    std::fprintf(stderr, "no records ingested\n");
  }
  if (!st.ok()) {
    std::fprintf(stderr, "logseal: stopped: %s (the %llu records before it are sealed)\n", st.to_string().c_str(),
                 static_cast<unsigned long long>(stats.records));
    return kExitUsage;
  }
  if (!closed.ok()) return fail(closed);
  std::fprintf(stderr, "every record of stream %s is durable and covered by a signed checkpoint\n",
               stream_name.c_str());
  return kExitOk;
}

// ---- key rotate ------------------------------------------------------------------

// Hands every stream of DATA_DIR over from the signer's key to a new key: one
// statement per stream, signed by the old key, sealed into the stream and covered
// by a checkpoint the old key signs. Run it while logseald is stopped, then start
// logseald with the new key.
int cmd_key_rotate(const std::string& data_dir, const std::string& signer_spec, const std::string& new_pub_path,
                   const std::string& new_kind_name, const std::string& tcti,
                   const std::vector<std::string>& only_streams, const std::string& audit_signer_spec) {
  hsm::SignerKind new_kind;
  if (new_kind_name == "tpm") {
    new_kind = hsm::SignerKind::kTpm;
  } else if (new_kind_name == "soft") {
    new_kind = hsm::SignerKind::kSoft;
  } else {
    return fail(invalid_argument("--new-kind must be tpm or soft"));
  }
  auto new_key = hsm::PublicKey::load_pem_file(new_pub_path);
  if (!new_key.ok()) return fail(new_key.status().with_context("new public key " + new_pub_path));
  if (!tcti.empty()) setenv("LOGSEAL_TCTI", tcti.c_str(), 1);
  auto signer = hsm::open_signer(signer_spec);
  if (!signer.ok()) return fail(signer.status());
  if (signer.value()->key_id() == new_key->key_id()) {
    return fail(invalid_argument("the new key is the key in use; make a new one with `logseal keygen`"));
  }
  io::Env& env = io::posix_env();
  if (!env.is_dir(data_dir)) return fail(not_found("data directory " + data_dir + " does not exist"));
  std::vector<std::string> names = only_streams;
  if (names.empty()) {
    auto entries = env.list_dir(data_dir);
    if (!entries.ok()) return fail(entries.status());
    for (const auto& name : entries.value()) {
      if (format::valid_stream_name(name) && env.is_dir(data_dir + "/" + name)) names.push_back(name);
    }
    // `_audit` is handed over too (created with the statement as its first
    // record when it does not exist yet), so the key-rotate record below and
    // the new key's records follow on one chain of keys.
    if (!names.empty() && std::find(names.begin(), names.end(), engine::kAuditStream) == names.end()) {
      names.push_back(engine::kAuditStream);
    }
  } else {
    for (const auto& name : names) {
      if (!format::valid_stream_name(name) || !env.is_dir(data_dir + "/" + name)) {
        return fail(not_found("stream " + name + " does not exist in " + data_dir));
      }
    }
  }
  // Signed before the store opens: the store's signer thread owns the signer after.
  std::vector<engine::KeyRotation> statements;
  const Hash32 old_key_id = signer.value()->key_id();
  for (const auto& name : names) {
    // Only the key that signs a stream may hand it over.
    auto latest = engine::latest_checkpoint(env, data_dir, name);
    if (latest.ok() && latest->decoded.key_id != signer.value()->key_id()) {
      return fail(failed_precondition("stream " + name + " is signed by key " + to_hex(latest->decoded.key_id) +
                                      ", not by the --signer key " + to_hex(signer.value()->key_id())));
    }
    engine::KeyRotation k;
    k.stream = name;
    k.old_key_id = signer.value()->key_id();
    k.new_kind = new_kind;
    k.new_key_der = new_key->der();
    k.time_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    auto sig = signer.value()->sign_digest(sha256(engine::encode_key_rotation_body(k)));
    if (!sig.ok()) return fail(sig.status().with_context("sign the key rotation statement"));
    k.signature = std::move(sig).value();
    statements.push_back(std::move(k));
  }
  if (statements.empty()) return fail(not_found("no streams in " + data_dir));
  // The `_audit` record of the rotation is sealed with the old key, which may
  // only happen when `_audit` is (or is being handed over from) that key.
  // With --audit-signer, `_audit` (signed by a key of its own) gets the record under its key.
  std::shared_ptr<hsm::Signer> audit_signer;
  if (!audit_signer_spec.empty()) {
    auto a = hsm::open_signer(audit_signer_spec);
    if (!a.ok()) return fail(a.status().with_context("--audit-signer"));
    audit_signer = std::move(a).value();
    Status k = engine::check_stream_key(env, data_dir, engine::kAuditStream, audit_signer->key_id());
    if (!k.ok()) return fail(k.with_context("--audit-signer"));
  }
  bool audit_here = audit_signer != nullptr ||
                    std::find(names.begin(), names.end(), engine::kAuditStream) != names.end() ||
                    engine::check_stream_key(env, data_dir, engine::kAuditStream, old_key_id).ok();
  auto store = engine::Store::open(env, data_dir, std::move(signer).value(), engine::StoreOptions{});
  if (store.ok() && audit_signer != nullptr) {
    Status set = store.value()->set_stream_signer(engine::kAuditStream, audit_signer);
    if (!set.ok()) return fail(set);
  }
  if (!store.ok()) return fail(store.status());
  for (const auto& k : statements) {
    auto stream = store.value()->stream(k.stream);
    if (!stream.ok()) return fail(stream.status());
    std::vector<uint8_t> raw = engine::encode_key_rotation(k);
    std::string fields = engine::key_rotation_fields_json(k);
    format::RecordView r;
    r.kind = format::RecordKind::kKeyRotation;
    r.received_ns = k.time_ns;
    r.source = "logseal:key-rotate";
    r.fields = fields;
    r.raw = std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size());
    auto index = stream.value()->append(r);
    if (!index.ok()) return fail(index.status().with_context("stream " + k.stream));
    std::fprintf(stderr, "stream %s: record %llu hands key %s over to %s\n", k.stream.c_str(),
                 static_cast<unsigned long long>(index.value()), to_hex(k.old_key_id).c_str(),
                 to_hex(new_key->key_id()).c_str());
  }
  if (audit_here) {
    std::string members = "\"old_key_id\":\"" + to_hex(old_key_id) + "\",\"new_key_id\":\"" +
                          to_hex(new_key->key_id()) + "\",\"new_signer\":\"" + hsm::signer_kind_name(new_kind) +
                          "\",\"streams\":[";
    for (size_t i = 0; i < names.size(); ++i) members += (i ? "," : "") + engine::json_escape(names[i]);
    members += "]";
    auto a = engine::append_audit(*store.value(), "key-rotate", members);
    if (!a.ok()) return fail(a.status().with_context("the key-rotate record in " + std::string(engine::kAuditStream)));
  } else {
    std::fprintf(stderr,
                 "stream %s is signed by another key: the rotation is recorded in the statements of the "
                 "streams handed over, not in %s (give --audit-signer to record it there)\n",
                 engine::kAuditStream, engine::kAuditStream);
  }
  Status closed = store.value()->close();
  if (!closed.ok()) return fail(closed);
  std::printf("%s\n", to_hex(new_key->key_id()).c_str());
  std::fprintf(stderr,
               "every stream is sealed under the old key with its hand-over; start logseald with the new key. "
               "Auditors keep verifying with the first public key alone.\n");
  return kExitOk;
}

// ---- verify --------------------------------------------------------------------

int cmd_verify(const std::string& data_dir, const std::vector<std::string>& pubkeys,
               const std::vector<std::string>& anchors, bool json, unsigned jobs, bool allow_unsigned,
               bool require_tpm) {
  auto keys = load_keys(pubkeys);
  if (!keys.ok()) return fail(keys.status());
  engine::VerifyOptions opt;
  opt.keys = &keys.value();
  opt.jobs = jobs;
  opt.allow_unsigned_tail = allow_unsigned;
  opt.require_tpm = require_tpm;
  for (const auto& a : anchors) {
    auto text = read_text(a);
    if (!text.ok()) return fail(text.status().with_context("anchor " + a));
    auto an = engine::parse_anchor(text.value());
    if (!an.ok()) return fail(an.status().with_context("anchor " + a));
    opt.anchors.push_back(std::move(an).value());
  }
  auto report = engine::verify_data_dir(io::posix_env(), data_dir, opt);
  if (!report.ok()) return fail(report.status());
  // Records that name the syslog fragments they were rebuilt from (FORMAT.md 5.2).
  for (auto& s : report->streams) {
    ingest::PgVerifyStats pg;
    Status st = ingest::verify_pg_reassembly(io::posix_env(), data_dir, s.name, report->findings, pg);
    if (!st.ok()) return fail(st.with_context("stream " + s.name));
    if (pg.reassembled_records > 0) {
      s.notes.push_back(std::to_string(pg.reassembled_records) + " reassembled PostgreSQL records checked against " +
                        std::to_string(pg.fragments) + " fragments");
    }
    if (pg.unclaimed_audit_fragments > 0) {
      s.notes.push_back(std::to_string(pg.unclaimed_audit_fragments) +
                        " syslog records start an AUDIT entry that no reassembled record names (a daemon stopped "
                        "before the entry completed?); export --where syslog.msg~=AUDIT shows them");
    }
    if (pg.fragments_pruned > 0) {
      s.notes.push_back(std::to_string(pg.fragments_pruned) +
                        " reassembled PostgreSQL records name fragments removed by a prune: not rebuilt");
    }
  }
  const engine::VerifyReport& r = report.value();
  if (json) {
    std::printf("%s\n", engine::report_to_json(r).c_str());
  } else {
    for (const auto& f : r.findings) std::printf("%s\n", engine::finding_to_text(f).c_str());
    for (const auto& s : r.streams) {
      std::printf("stream %s: %llu segments, %llu records, %llu signed, %llu checkpoints, %llu bytes%s\n",
                  s.name.c_str(), static_cast<unsigned long long>(s.segments),
                  static_cast<unsigned long long>(s.records), static_cast<unsigned long long>(s.signed_records),
                  static_cast<unsigned long long>(s.checkpoints), static_cast<unsigned long long>(s.bytes),
                  s.open_segment ? ", last segment open" : "");
      for (const auto& n : s.notes) std::printf("  note: %s\n", n.c_str());
    }
    if (r.streams.empty()) std::printf("no streams found in %s\n", data_dir.c_str());
    std::printf("%s\n", r.ok() ? "VERIFIED" : ("FAILED: " + std::to_string(r.findings.size()) + " findings").c_str());
  }
  return r.ok() ? kExitOk : kExitIntegrity;
}

// ---- inspect / export / prove / checkpoint ---------------------------------------

int cmd_inspect(const std::string& path, bool json) {
  auto bytes = io::posix_env().read_file(path);
  if (!bytes.ok()) return fail(bytes.status());
  auto text = engine::inspect_segment(bytes.value(), json);
  if (!text.ok()) return fail(text.status().with_context(path));
  write_all(text->data(), text->size());
  return kExitOk;
}

int cmd_export(const std::string& data_dir, const std::string& stream, const std::string& since,
               const std::string& until, const std::string& fmt, const std::vector<std::string>& where,
               uint64_t limit) {
  auto format = ingest::parse_export_format(fmt);
  if (!format.ok()) return fail(format.status().with_context("--format"));
  ingest::ExportSelection sel;
  sel.format = format.value();
  sel.where = where;
  sel.limit = limit;
  if (!stream.empty()) sel.streams.push_back(stream);
  if (!since.empty()) {
    auto t = engine::parse_time_ns(since);
    if (!t.ok()) return fail(t.status());
    sel.since_ns = t.value();
  }
  if (!until.empty()) {
    auto t = engine::parse_time_ns(until);
    if (!t.ok()) return fail(t.status());
    sel.until_ns = t.value();
  }
  Status st = ingest::export_records(io::posix_env(), data_dir, sel, [](std::string_view chunk) {
    write_all(chunk.data(), chunk.size());
    return true;
  });
  if (!st.ok()) return fail(st);
  return kExitOk;
}

int cmd_prove(const std::string& data_dir, const std::string& stream, uint64_t index) {
  auto p = engine::prove_record(io::posix_env(), data_dir, stream, index);
  if (!p.ok()) return fail(p.status());
  std::string text = engine::format_proof(p.value());
  write_all(text.data(), text.size());
  return kExitOk;
}

int cmd_check_proof(const std::string& path, const std::vector<std::string>& pubkeys) {
  auto keys = load_keys(pubkeys);
  if (!keys.ok()) return fail(keys.status());
  auto text = read_text(path);
  if (!text.ok()) return fail(text.status());
  auto p = engine::parse_proof(text.value());
  if (!p.ok()) return fail(p.status().with_context(path));
  const auto& cp = p->checkpoint;
  const hsm::PublicKey* key = nullptr;
  for (const auto& k : keys.value()) {
    if (k.key_id() == cp.decoded.key_id) key = &k;
  }
  if (key == nullptr) {
    std::printf("FAILED unknown-key: the checkpoint is signed by key %s, not by a given key\n",
                to_hex(cp.decoded.key_id).c_str());
    return kExitIntegrity;
  }
  if (!key->verify_digest(format::head_of(cp.body), cp.signature)) {
    std::printf("FAILED bad-signature: the checkpoint signature does not verify\n");
    return kExitIntegrity;
  }
  if (cp.decoded.stream != p->stream) {
    std::printf("FAILED: the proof names stream %s but the checkpoint %s\n", p->stream.c_str(),
                cp.decoded.stream.c_str());
    return kExitIntegrity;
  }
  Hash32 leaf = merkle::leaf_hash(p->record);
  if (!merkle::verify_inclusion(leaf, p->index, cp.decoded.tree_size, p->path, cp.decoded.root)) {
    std::printf("FAILED: record %llu is not included in the signed tree of %llu records\n",
                static_cast<unsigned long long>(p->index), static_cast<unsigned long long>(cp.decoded.tree_size));
    return kExitIntegrity;
  }
  auto rec = format::decode_record(p->record);
  std::printf("VERIFIED: record %llu of stream %s is included in the checkpoint of %llu records signed %s\n",
              static_cast<unsigned long long>(p->index), p->stream.c_str(),
              static_cast<unsigned long long>(cp.decoded.tree_size), engine::rfc3339_ns(cp.decoded.time_ns).c_str());
  if (rec.ok()) {
    std::printf("received %s from %.*s\n", engine::rfc3339_ns(rec->received_ns).c_str(),
                static_cast<int>(rec->source.size()), rec->source.data());
    std::printf("raw: %s\n", engine::json_escape(rec->raw).c_str());
  }
  return kExitOk;
}

// ---- report pg-roles ------------------------------------------------------------
// Exit 0 whenever the report is produced, violations or not: 1 stays "integrity
// failure" (DESIGN.md), which here means the records do not match their signed
// checkpoint. Scripts read the violations from --json.
int cmd_report_pg_roles(const std::string& data_dir, const std::string& stream, const std::string& policy_path,
                        const std::string& since, const std::string& until, bool json) {
  ingest::PgReportOptions opt;
  opt.stream = stream;
  if (!since.empty()) {
    auto t = engine::parse_time_ns(since);
    if (!t.ok()) return fail(t.status().with_context("--since"));
    opt.since_ns = t.value();
  }
  if (!until.empty()) {
    auto t = engine::parse_time_ns(until);
    if (!t.ok()) return fail(t.status().with_context("--until"));
    opt.until_ns = t.value();
  }
  std::optional<ingest::PgRolePolicy> policy;
  if (!policy_path.empty()) {
    auto text = read_text(policy_path);
    if (!text.ok()) return fail(text.status().with_context("policy " + policy_path));
    auto p = ingest::PgRolePolicy::parse(text.value(), policy_path);
    if (!p.ok()) return fail(p.status());
    policy = std::move(p).value();
    opt.policy = &*policy;
  }
  auto report = ingest::build_pg_role_report(io::posix_env(), data_dir, opt);
  if (!report.ok()) return fail(report.status());
  std::string out = json ? ingest::format_pg_role_report_json(report.value(), data_dir)
                         : ingest::format_pg_role_report_text(report.value(), data_dir);
  write_all(out.data(), out.size());
  return kExitOk;
}

int cmd_checkpoint(const std::string& data_dir, const std::string& stream) {
  auto cp = engine::latest_checkpoint(io::posix_env(), data_dir, stream);
  if (!cp.ok()) return fail(cp.status());
  std::string text = engine::format_anchor(cp->body, cp->signature);
  write_all(text.data(), text.size());
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  // verify, export, prove and report read whole segment files (64 MiB by
  // default) into memory one after another. As glibc's own mappings (its default
  // above 32 MiB) each buffer costs a page fault and a zeroed page per 4 KiB,
  // which took more time than all the hashing; from the heap, kept after free,
  // the next segment reuses the same pages. (A short-lived tool: the heap may
  // stay at its peak until exit.)
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  CLI::App app{"logseal: seal, verify, export and prove audit logs offline"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "help for every command");

  std::string keygen_signer = "soft", keygen_out, keygen_tcti, keygen_pcrs;
  auto* keygen =
      app.add_subcommand("keygen", "create a P-256 signing key (in the TPM, or in software for development)");
  keygen->add_option("--signer", keygen_signer, "tpm or soft")->required();
  keygen->add_option("--out", keygen_out, "directory for signing-key.pem and signing-key.pub.pem")->required();
  keygen->add_option("--tcti", keygen_tcti, "TPM TCTI");
  keygen->add_option("--pcrs", keygen_pcrs, "PCR indexes to bind the key to (TPM only)");

  std::string kr_dir, kr_signer, kr_new_pub, kr_new_kind = "tpm", kr_tcti;
  auto* key = app.add_subcommand("key", "key management");
  auto* rot = key->add_subcommand("rotate", "hand every stream over to a new key (logseald stopped)");
  rot->add_option("DATA_DIR", kr_dir)->required();
  rot->add_option("--signer", kr_signer, "the key in use: soft:KEYFILE or tpm:KEYFILE")->required();
  rot->add_option("--new-pubkey", kr_new_pub, "signing-key.pub.pem of the new key (from `logseal keygen`)")->required();
  rot->add_option("--new-kind", kr_new_kind, "tpm (default) or soft: what kind the new key is");
  rot->add_option("--tcti", kr_tcti, "TPM TCTI (default $LOGSEAL_TCTI or device:/dev/tpmrm0)");
  std::vector<std::string> kr_streams;
  rot->add_option("--stream", kr_streams,
                  "hand over only this stream (repeatable; default: every stream and _audit), e.g. a stream with a "
                  "signer of its own");
  std::string kr_audit_signer;
  rot->add_option("--audit-signer", kr_audit_signer,
                  "the signer of _audit when it is not the key handed over (a stream's own key): the key-rotate "
                  "record is sealed there with it");
  key->require_subcommand(1);

  std::string in_dir, in_stream, in_signer, in_format;
  std::vector<std::string> in_files;
  StoreFlags in_flags;
  auto* ing = app.add_subcommand("ingest", "seal existing logs (files or stdin) into a stream");
  ing->add_option("DATA_DIR", in_dir)->required();
  ing->add_option("--stream", in_stream, "stream name")->required();
  ing->add_option("--signer", in_signer, "soft:KEYFILE or tpm:KEYFILE")->required();
  ing->add_option("--format", in_format, "lines, syslog-octet, syslog-lf, pgaudit-csvlog, pgaudit-jsonlog, jsonl")
      ->required();
  ing->add_option("FILE", in_files, "input files (default: standard input)");
  add_store_flags(ing, in_flags);

  std::string v_dir;
  std::vector<std::string> v_keys, v_anchors;
  bool v_json = false, v_allow_unsigned = false, v_require_tpm = false;
  unsigned v_jobs = 1;
  auto* ver = app.add_subcommand("verify", "verify a data directory offline; exit 0 verified, 1 integrity failure");
  ver->add_option("DATA_DIR", v_dir)->required();
  ver->add_option("--pubkey", v_keys, "public key PEM (repeatable)")->required();
  ver->add_option("--anchor", v_anchors, "a checkpoint kept elsewhere (`logseal checkpoint` output)");
  ver->add_flag("--json", v_json, "print the report as JSON");
  ver->add_option("--jobs", v_jobs, "verify this many segments in parallel");
  ver->add_flag("--allow-unsigned-tail", v_allow_unsigned, "do not fail on records after the last checkpoint");
  ver->add_flag("--require-tpm", v_require_tpm, "fail on seals made by a software key");

  std::string i_path;
  bool i_json = false;
  auto* ins = app.add_subcommand("inspect", "print a segment's header, frames, checkpoints and seal");
  ins->add_option("SEGMENT_FILE", i_path)->required();
  ins->add_flag("--json", i_json);

  std::string e_dir, e_stream, e_since, e_until, e_format = "jsonl";
  auto* exp = app.add_subcommand("export", "print records: jsonl, raw (octet-counted frames) or lines");
  exp->add_option("DATA_DIR", e_dir)->required();
  exp->add_option("--stream", e_stream, "only this stream");
  exp->add_option("--since", e_since, "received at or after (RFC 3339 or unix seconds)");
  exp->add_option("--until", e_until, "received before (RFC 3339 or unix seconds)");
  exp->add_option("--format", e_format, "jsonl (default), raw or lines");
  std::vector<std::string> e_where;
  exp->add_option("--where", e_where,
                  "only records whose field equals (FIELD=VALUE) or contains (FIELD~=VALUE) the value; FIELD a dotted "
                  "path such as pgaudit.class or postgres.user; repeatable, all must hold");
  uint64_t e_limit = 0;
  exp->add_option("--limit", e_limit, "print at most this many records (default: all)");

  std::string p_dir, p_stream;
  uint64_t p_index = 0;
  auto* prv = app.add_subcommand("prove", "print an inclusion proof of one record against the latest checkpoint");
  prv->add_option("DATA_DIR", p_dir)->required();
  prv->add_option("--stream", p_stream)->required();
  prv->add_option("--index", p_index)->required();

  std::string c_path;
  std::vector<std::string> c_keys;
  auto* chk = app.add_subcommand("check-proof", "verify an inclusion proof offline");
  chk->add_option("PROOF_FILE", c_path)->required();
  chk->add_option("--pubkey", c_keys, "public key PEM (repeatable)")->required();

  std::string r_dir, r_stream, r_policy, r_since, r_until;
  bool r_json = false;
  auto* rep = app.add_subcommand("report", "reports over sealed records");
  auto* rpg = rep->add_subcommand("pg-roles", "what each database role did (pgaudit), and statements outside a policy");
  rpg->add_option("DATA_DIR", r_dir)->required();
  rpg->add_option("--stream", r_stream, "the stream holding the pgaudit records")->required();
  rpg->add_option("--policy", r_policy, "role policy (TOML): list every pgaudit record outside it");
  rpg->add_option("--since", r_since, "received at or after (RFC 3339 or unix seconds)");
  rpg->add_option("--until", r_until, "received before (RFC 3339 or unix seconds)");
  rpg->add_flag("--json", r_json, "print the report as JSON");
  rep->require_subcommand(1);

  std::string k_dir, k_stream;
  auto* cpt = app.add_subcommand("checkpoint", "print the latest signed checkpoint, to keep as an --anchor");
  cpt->add_option("DATA_DIR", k_dir)->required();
  cpt->add_option("--stream", k_stream)->required();

  tools::RetentionArgs prune_args, hold_args;
  auto* prune = tools::add_prune_command(app, prune_args);
  auto* hold = tools::add_hold_command(app, hold_args);
  tools::TokenCommands token = tools::add_token_commands(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  if (*keygen) return cmd_keygen(keygen_signer, keygen_out, keygen_tcti, keygen_pcrs);
  if (*ing) return cmd_ingest(in_dir, in_stream, in_signer, in_format, in_files, in_flags);
  if (*rot) return cmd_key_rotate(kr_dir, kr_signer, kr_new_pub, kr_new_kind, kr_tcti, kr_streams, kr_audit_signer);
  if (*ver) return cmd_verify(v_dir, v_keys, v_anchors, v_json, v_jobs, v_allow_unsigned, v_require_tpm);
  if (*ins) return cmd_inspect(i_path, i_json);
  if (*exp) return cmd_export(e_dir, e_stream, e_since, e_until, e_format, e_where, e_limit);
  if (*prv) return cmd_prove(p_dir, p_stream, p_index);
  if (*chk) return cmd_check_proof(c_path, c_keys);
  if (*rpg) return cmd_report_pg_roles(r_dir, r_stream, r_policy, r_since, r_until, r_json);
  if (*cpt) return cmd_checkpoint(k_dir, k_stream);
  if (*prune) return tools::run_prune(prune_args);
  if (*hold) return tools::run_hold(hold_args);
  if (*token.token_new) return tools::run_token_new();
  if (*token.token_hash) return tools::run_token_hash();
  return kExitUsage;
}
