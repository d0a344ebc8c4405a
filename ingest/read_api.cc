#include "ingest/read_api.h"

#include <memory>
#include <mutex>

#include "engine/audit.h"
#include "engine/export.h"
#include "engine/reader.h"
#include "hsm/sha256.h"

namespace logseal::ingest {

namespace {

struct ReadApiState {
  engine::Store* store = nullptr;
  ReadApiOptions options;
  // Legal hold as the stream's statements say, read once per stream (a full
  // read of the stream) and then kept up to date by hold(): while logseald
  // runs, nothing else writes hold statements (`logseal hold` needs it
  // stopped).
  std::mutex mu;
  std::map<std::string, bool> hold_statements;

  Result<bool> held_by_statement(const std::string& stream) {
    {
      std::lock_guard<std::mutex> lk(mu);
      auto it = hold_statements.find(stream);
      if (it != hold_statements.end()) return it->second;
    }
    LS_ASSIGN_OR_RETURN(bool held, engine::read_hold(store->env(), store->data_dir(), stream));
    std::lock_guard<std::mutex> lk(mu);
    return hold_statements.try_emplace(stream, held).first->second;
  }

  bool exists(const std::string& stream) {
    auto names = store->list_streams();
    if (!names.ok()) return false;
    return std::find(names->begin(), names->end(), stream) != names->end();
  }
};

std::string stream_json(ReadApiState& s, const std::string& name) {
  using engine::json_escape;
  std::string o = "{\"name\":" + json_escape(name);
  // Opening the stream (recovering it, as logseald does for every stream it
  // writes) gives exact counters; it is idle until something appends.
  auto stream = s.store->stream(name);
  std::vector<uint8_t> body;
  if (stream.ok()) {
    engine::StreamStats st = stream.value()->stats();
    o += ",\"records\":" + std::to_string(st.next_index) + ",\"durable\":" + std::to_string(st.durable_records) +
         ",\"signed\":" + std::to_string(st.signed_records) + ",\"open_segment\":" + std::to_string(st.segment_seq);
    body = stream.value()->latest_signed().body;
  }
  auto decoded =
      body.empty() ? Result<format::CheckpointBody>(not_found("none")) : format::decode_checkpoint_body(body);
  if (decoded.ok()) {
    o += ",\"checkpoint\":{\"tree_size\":" + std::to_string(decoded->tree_size) + ",\"root\":\"" +
         to_hex(decoded->root) + "\",\"key_id\":\"" + to_hex(decoded->key_id) + "\",\"signer\":\"" +
         hsm::signer_kind_name(decoded->signer_kind) + "\",\"time\":\"" + engine::rfc3339_ns(decoded->time_ns) +
         "\",\"head_seq\":" + std::to_string(decoded->head_seq) + "}";
  } else {
    o += ",\"checkpoint\":null";
  }
  hsm::Signer& signer = s.store->signer_for(name);
  o += ",\"signing_key\":{\"key_id\":\"" + to_hex(signer.key_id()) + "\",\"signer\":\"" +
       hsm::signer_kind_name(signer.kind()) + "\"}";
  auto policy = s.options.policies.find(name);
  bool configured_hold = policy != s.options.policies.end() && policy->second.legal_hold;
  auto statement_hold = s.held_by_statement(name);
  o += ",\"legal_hold\":";
  o += configured_hold || (statement_hold.ok() && statement_hold.value()) ? "true" : "false";
  o += ",\"legal_hold_configured\":";
  o += configured_hold ? "true" : "false";
  if (policy != s.options.policies.end()) {
    const engine::RetentionPolicy& p = policy->second;
    o += ",\"retention\":{\"min_days\":" + std::to_string(p.min_days) + ",\"max_days\":" + std::to_string(p.max_days) +
         ",\"disk_full\":\"" + engine::disk_full_policy_name(p.disk_full) + "\"}";
  } else {
    o += ",\"retention\":null";
  }
  o += "}";
  return o;
}

}  // namespace

void add_read_api(AdminHandlers& h, engine::Store& store, ReadApiOptions options) {
  auto s = std::make_shared<ReadApiState>();
  s->store = &store;
  s->options = std::move(options);
  h.stream_names = [s]() { return s->store->list_streams(); };
  h.stream_json = [s](const std::string& name) -> Result<std::string> {
    if (!s->exists(name)) return not_found("no stream '" + name + "'");
    return stream_json(*s, name);
  };
  h.records = [s](const ExportSelection& sel, const std::function<bool(std::string_view)>& sink,
                  ExportStats* stats) -> Status {
    return export_records(s->store->env(), s->store->data_dir(), sel, sink, stats, AdminHttp::kChunkBytes);
  };
  h.proof = [s](const std::string& stream, uint64_t index) -> Result<std::string> {
    if (!s->exists(stream)) return not_found("no stream '" + stream + "'");
    LS_ASSIGN_OR_RETURN(engine::InclusionProof p,
                        engine::prove_record(s->store->env(), s->store->data_dir(), stream, index));
    return engine::format_proof(p);
  };
  h.hold = [s](const std::string& stream, bool on, const std::string& note) -> Result<uint64_t> {
    // The current state is read first so the cache stays right.
    LS_RETURN_IF_ERROR(s->held_by_statement(stream).status());
    LS_ASSIGN_OR_RETURN(uint64_t index, engine::set_legal_hold(*s->store, stream, on, note));
    std::lock_guard<std::mutex> lk(s->mu);
    s->hold_statements[stream] = on;
    return index;
  };
  h.roll = [s](const std::string& stream) -> Result<uint64_t> {
    LS_ASSIGN_OR_RETURN(engine::Stream * st, s->store->stream(stream));
    uint64_t seq = st->stats().segment_seq;
    st->request_roll();
    return seq;
  };
  h.audit = [s](const std::string& action, const std::string& members) {
    auto r = engine::append_audit(*s->store, action, members);
    if (!r.ok()) s->store->log("<3>read API: cannot write the " + action + " audit record: " + r.status().to_string());
  };
}

std::function<ApiDecision(const ApiCaller&, const std::string& stream, ApiAction)> api_authorizer(
    const AccessPolicy& policy) {
  return [&policy](const ApiCaller& caller, const std::string& stream, ApiAction action) {
    ApiDecision d;
    if (caller.bearer_token.empty()) {
      d.status = 401;
      d.why = "a bearer token is required (Authorization: Bearer TOKEN)";
      return d;
    }
    const Identity* id = policy.identify_token(caller.bearer_token);
    if (id == nullptr) {
      d.status = 401;
      d.why = "unknown token";
      return d;
    }
    d.identity = id->name;
    Action a = Action::kRead;
    switch (action) {
      case ApiAction::kRead:
        a = Action::kRead;
        break;
      case ApiAction::kVerify:
        a = Action::kVerify;
        break;
      case ApiAction::kCheckpoint:
        a = Action::kCheckpoint;
        break;
      case ApiAction::kAdmin:
        a = Action::kAdmin;
        break;
    }
    if (!policy.allowed(id, stream, a)) {
      d.status = 403;
      d.why = std::string("identity '") + id->name + "' may not " + action_name(a) + " stream '" + stream + "'";
      return d;
    }
    d.status = 200;
    return d;
  };
}

}  // namespace logseal::ingest
