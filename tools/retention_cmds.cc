#include "tools/retention_cmds.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "engine/audit.h"
#include "engine/export.h"
#include "engine/key_rotation.h"
#include "engine/retention.h"
#include "engine/store.h"
#include "hsm/public_key.h"
#include "hsm/signer.h"
#include "io/env.h"

namespace logseal::tools {

namespace {

int fail(const Status& st) {
  std::fprintf(stderr, "logseal: %s\n", st.to_string().c_str());
  return st.code() == Code::kDataLoss ? 1 : 2;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<std::unique_ptr<engine::Store>> open_store(const RetentionArgs& a) {
  if (!a.tcti.empty()) setenv("LOGSEAL_TCTI", a.tcti.c_str(), 1);
  io::Env& env = io::posix_env();
  if (!env.is_dir(a.data_dir + "/" + a.stream)) {
    return not_found("stream " + a.stream + " does not exist in " + a.data_dir);
  }
  auto signer = hsm::open_signer(a.signer);
  if (!signer.ok()) return signer.status();
  // The command's `_audit` record is sealed with the key `_audit` is signed by:
  // --audit-signer when the stream has a key of its own, else --signer. Checked
  // before anything is written, so `_audit` never changes key by accident.
  std::shared_ptr<hsm::Signer> audit_signer;
  if (!a.audit_signer.empty()) {
    auto s = hsm::open_signer(a.audit_signer);
    if (!s.ok()) return s.status().with_context("--audit-signer");
    audit_signer = std::move(s).value();
  }
  const Hash32 audit_key = audit_signer ? audit_signer->key_id() : signer.value()->key_id();
  Status k = engine::check_stream_key(env, a.data_dir, engine::kAuditStream, audit_key);
  if (!k.ok()) {
    return k.with_context(audit_signer ? "--audit-signer"
                                       : "the _audit record of this command (give --audit-signer with the key of "
                                         "_audit when the stream has a key of its own)");
  }
  LS_ASSIGN_OR_RETURN(std::unique_ptr<engine::Store> store,
                      engine::Store::open(env, a.data_dir, std::move(signer).value(), engine::StoreOptions{}));
  if (audit_signer) LS_RETURN_IF_ERROR(store->set_stream_signer(engine::kAuditStream, audit_signer));
  return store;
}

}  // namespace

CLI::App* add_prune_command(CLI::App& app, RetentionArgs& a) {
  auto* c = app.add_subcommand("prune",
                               "remove whole sealed segments past retention, after sealing a signed prune record "
                               "(logseald stopped)");
  c->add_option("DATA_DIR", a.data_dir)->required();
  c->add_option("--stream", a.stream, "stream name")->required();
  c->add_option("--signer", a.signer, "the stream's key: soft:KEYFILE or tpm:KEYFILE")->required();
  c->add_option("--tcti", a.tcti, "TPM TCTI (default $LOGSEAL_TCTI or device:/dev/tpmrm0)");
  c->add_option("--before", a.before,
                "prune segments sealed before this time (RFC 3339 or unix seconds); default: by --retention-max-days");
  c->add_option("--retention-min-days", a.min_days, "never prune a segment sealed within this many days");
  c->add_option("--retention-max-days", a.max_days, "prune segments sealed more than this many days ago");
  c->add_flag("--legal-hold", a.legal_hold, "the stream is held by configuration: refuse");
  c->add_option("--pubkey", a.pubkeys, "verify with these public keys first (default: the signer's key)");
  c->add_option("--note", a.note, "who and why, sealed into the prune record");
  c->add_option("--audit-signer", a.audit_signer,
                "the key of _audit when it is not the stream's (a stream with a signer of its own)");
  return c;
}

CLI::App* add_hold_command(CLI::App& app, RetentionArgs& a) {
  auto* c = app.add_subcommand("hold", "set or lift a legal hold on a stream with a signed record (logseald stopped)");
  c->add_option("DATA_DIR", a.data_dir)->required();
  c->add_option("--stream", a.stream, "stream name")->required();
  c->add_option("--signer", a.signer, "the stream's key: soft:KEYFILE or tpm:KEYFILE")->required();
  c->add_option("--tcti", a.tcti, "TPM TCTI (default $LOGSEAL_TCTI or device:/dev/tpmrm0)");
  auto* on = c->add_flag("--on", a.on, "set the hold: no prune removes anything of the stream");
  auto* off = c->add_flag("--off", a.off, "lift the hold");
  on->excludes(off);
  c->add_option("--note", a.note, "who and why (case number), sealed into the record");
  c->add_option("--audit-signer", a.audit_signer,
                "the key of _audit when it is not the stream's (a stream with a signer of its own)");
  return c;
}

int run_prune(const RetentionArgs& a) {
  engine::PruneRequest req;
  req.policy.min_days = a.min_days;
  req.policy.max_days = a.max_days;
  req.policy.legal_hold = a.legal_hold;
  req.note = a.note;
  req.now_ns = now_ns();
  if (!a.before.empty()) {
    auto t = engine::parse_time_ns(a.before);
    if (!t.ok()) return fail(t.status().with_context("--before"));
    // Nanoseconds since 1970 in an int64 end in 2262; a later time wraps.
    if (t.value() <= 0) return fail(invalid_argument("--before " + a.before + " is out of range (1970..2262)"));
    req.trigger = engine::PruneTrigger::kBefore;
    req.before_ns = t.value();
  } else if (a.max_days == 0) {
    return fail(invalid_argument("give --before TIME or --retention-max-days N: nothing says what may go"));
  }
  std::vector<hsm::PublicKey> keys;
  for (const auto& p : a.pubkeys) {
    auto k = hsm::PublicKey::load_pem_file(p);
    if (!k.ok()) return fail(k.status().with_context("public key " + p));
    keys.push_back(std::move(k).value());
  }
  req.keys = &keys;
  // Offline: the store's close() signs the final checkpoint that covers the
  // prune record; only then are the files removed.
  req.wait_signed = false;
  auto store = open_store(a);
  if (!store.ok()) return fail(store.status());
  auto res = engine::prune_stream(*store.value(), a.stream, req);
  Status closed = store.value()->close();
  if (!res.ok()) return fail(res.status());
  if (!closed.ok()) return fail(closed.with_context("close the store; nothing was removed"));
  if (!res->pruned) {
    std::fprintf(stderr, "nothing to prune in stream %s: %s\n", a.stream.c_str(), res->why.c_str());
    return 0;
  }
  io::Env& env = io::posix_env();
  Status rm = engine::remove_pruned(env, a.data_dir + "/" + a.stream, res->paths);
  if (!rm.ok()) {
    return fail(rm.with_context("the prune record (record " + std::to_string(res->index) +
                                ") is sealed; removing the files failed (run the prune again)"));
  }
  std::printf("stream %s: record %llu: %s\n", a.stream.c_str(), static_cast<unsigned long long>(res->index),
              engine::describe_retention(res->statement).c_str());
  return 0;
}

int run_hold(const RetentionArgs& a) {
  if (a.on == a.off) return fail(invalid_argument("give --on or --off"));
  auto store = open_store(a);
  if (!store.ok()) return fail(store.status());
  auto index = engine::set_legal_hold(*store.value(), a.stream, a.on, a.note);
  Status closed = store.value()->close();
  if (!index.ok()) return fail(index.status());
  if (!closed.ok()) return fail(closed);
  std::printf("stream %s: record %llu: legal hold %s\n", a.stream.c_str(),
              static_cast<unsigned long long>(index.value()), a.on ? "set" : "lifted");
  return 0;
}

}  // namespace logseal::tools
