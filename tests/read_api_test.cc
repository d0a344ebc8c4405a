// The auditors' read API in-process: AdminHttp with the real read API handlers
// (ingest/read_api.h) over a real Store holding two streams signed by two soft
// keys, reached with curl over 127.0.0.1. A test authorize() maps bearer tokens
// to identities and rights, as the access policy will. Checks every endpoint
// allowed, 401, 403 and with bad parameters; that /v1/records is byte for byte
// `logseal export --format jsonl` of the same selection; that `logseal
// check-proof` accepts /v1/proof; that a hold set through the API stops `logseal
// prune`; and that `_audit` holds the records of it all and verifies.
#include "ingest/read_api.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "engine/audit.h"
#include "io/env.h"
#include "tests/e2e_util.h"
#include "tests/test_util.h"

namespace logseal::ingest {
namespace {

using Millis = std::chrono::milliseconds;

constexpr int64_t kT0 = 1767225600ll * 1000000000ll;  // 2026-01-01T00:00:00Z
constexpr uint64_t kRecords = 1500;                   // about 300 KiB of JSON lines: several chunks

struct Reply {
  int status = 0;
  std::string headers, body;
  bool has_header(const std::string& h) const {
    std::string lower;
    for (char c : headers) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string want;
    for (char c : h) want += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return lower.find(want) != std::string::npos;
  }
};

struct Rights {
  std::string identity;
  std::map<std::string, std::set<ApiAction>> streams;  // "*": every stream
};

class ReadApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (e2e::find_program("curl").empty()) GTEST_SKIP() << "curl is not installed";
    prod_ = test::make_soft_key(dir_.sub("prod-key"));
    staging_ = test::make_soft_key(dir_.sub("staging-key"));
    data_ = dir_.sub("data");
    engine::StoreOptions opt = test::small_options();
    opt.immutable_segments = false;
    opt.stream.checkpoint_ms = 50;
    auto store = engine::Store::open(io::posix_env(), data_, prod_.signer(), opt);
    ASSERT_TRUE(store.ok()) << store.status().to_string();
    store_ = std::move(store).value();
    ASSERT_TRUE(store_->set_stream_signer("staging", staging_.signer()).ok());
    append("prod", kRecords);
    append("staging", 20);

    tokens_["tok-auditor"] = {"auditor", {{"prod", {ApiAction::kRead, ApiAction::kVerify, ApiAction::kCheckpoint}}}};
    tokens_["tok-checker"] = {"checker", {{"staging", {ApiAction::kCheckpoint}}}};
    tokens_["tok-admin"] = {"admin",
                            {{"*", {ApiAction::kRead, ApiAction::kVerify, ApiAction::kCheckpoint, ApiAction::kAdmin}}}};
  }

  void TearDown() override {
    if (http_) http_->stop();
    if (store_) {
      EXPECT_TRUE(store_->close().ok());
    }
  }

  // n records: k8s-like fields, one second apart, verbs alternating get/list/delete.
  void append(const std::string& stream, uint64_t n) {
    auto s = store_->stream(stream);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    uint64_t last = 0;
    static const char* kVerbs[] = {"get", "list", "delete"};
    for (uint64_t i = 0; i < n; ++i) {
      std::string user = i % 5 == 0 ? "alice smith" : "bob";
      std::string fields = std::string("{\"k8s\":{\"verb\":\"") + kVerbs[i % 3] + "\",\"user\":\"" + user +
                           "\",\"n\":" + std::to_string(i) + "}}";
      std::string raw = stream + " event " + std::to_string(i) + " " + std::string(100 + i % 50, 'x');
      format::RecordView r;
      r.received_ns = kT0 + static_cast<int64_t>(i) * 1000000000ll;
      r.source = "test";
      r.fields = fields;
      r.raw = raw;
      auto idx = s.value()->append(r);
      ASSERT_TRUE(idx.ok()) << idx.status().to_string();
      last = idx.value();
    }
    ASSERT_TRUE(s.value()->wait_durable(last, Millis(10000)));
    ASSERT_TRUE(e2e::wait_until([&] { return s.value()->signed_size() > last; }, Millis(10000)));
  }

  void start_http(bool with_authorize) {
    AdminHandlers h;
    h.metrics = [] { return std::string(); };
    h.health = [] { return ok_status(); };
    h.checkpoint = [this](const std::string& name) -> Result<std::string> {
      auto s = store_->stream(name);
      if (!s.ok()) return s.status();
      auto cp = s.value()->latest_signed();
      if (cp.body.empty()) return not_found("no checkpoint");
      return engine::format_anchor(cp.body, cp.signature);
    };
    add_read_api(h, *store_, {});
    if (with_authorize) {
      h.authorize = [this](const ApiCaller& c, const std::string& stream, ApiAction a) {
        ApiDecision d;
        calls_++;
        EXPECT_NE(c.peer_address.find("127.0.0.1:"), std::string::npos) << c.peer_address;
        auto it = tokens_.find(c.bearer_token);
        if (c.bearer_token.empty() || it == tokens_.end()) {
          d.status = 401;
          d.why = c.bearer_token.empty() ? "no bearer token" : "unknown token";
          return d;
        }
        d.identity = it->second.identity;
        for (const auto& [name, actions] : it->second.streams) {
          if ((name == "*" || name == stream) && actions.count(a) != 0) d.status = 200;
        }
        if (d.status != 200) d.why = d.identity + " may not " + api_action_name(a) + " stream " + stream;
        return d;
      };
    }
    auto a = AdminHttp::start("127.0.0.1:0", h);
    ASSERT_TRUE(a.ok()) << a.status().to_string();
    http_ = std::move(a).value();
    port_ = http_->bound_address().substr(http_->bound_address().rfind(':') + 1);
  }

  // curl, the way an auditor would call it; the body decoded from chunks.
  Reply call(const std::string& method, const std::string& target, const std::string& token = "") {
    std::string hdr = dir_.sub("h.txt"), body = dir_.sub("b.txt");
    std::vector<std::string> argv = {e2e::find_program("curl"),
                                     "-sS",
                                     "-X",
                                     method,
                                     "-D",
                                     hdr,
                                     "-o",
                                     body,
                                     "-w",
                                     "%{http_code}",
                                     "--max-time",
                                     "30"};
    if (!token.empty()) {
      argv.push_back("-H");
      argv.push_back("Authorization: Bearer " + token);
    }
    argv.push_back("http://127.0.0.1:" + port_ + target);
    e2e::RunResult r = e2e::run(argv, Millis(40000));
    Reply out;
    EXPECT_EQ(r.exit_code, 0) << e2e::describe(r);
    out.status = std::atoi(r.out.c_str());
    out.headers = e2e::read_file(hdr);
    out.body = e2e::read_file(body);
    return out;
  }

  e2e::RunResult cli(std::vector<std::string> args) {
    args.insert(args.begin(), e2e::logseal_path());
    return e2e::run(args, Millis(60000));
  }

  // Every `_audit` record's "audit" object (store closed first).
  std::vector<e2e::Json> audit_records() {
    std::vector<e2e::Json> out;
    e2e::RunResult r = cli({"export", data_, "--stream", "_audit", "--format", "jsonl"});
    EXPECT_EQ(r.exit_code, 0) << e2e::describe(r);
    for (const std::string& line : e2e::split_lines(r.out)) {
      auto j = e2e::Json::parse(line);
      EXPECT_TRUE(j.has_value()) << line;
      if (j) out.push_back((*j)["fields"]["audit"]);
    }
    return out;
  }

  void close_store() {
    if (http_) http_->stop();
    http_.reset();
    ASSERT_TRUE(store_->close().ok());
    store_.reset();
  }

  e2e::TempDir dir_{"read-api"};
  test::TestKey prod_, staging_;
  std::string data_;
  std::unique_ptr<engine::Store> store_;
  std::unique_ptr<AdminHttp> http_;
  std::string port_;
  std::map<std::string, Rights> tokens_;
  std::atomic<int> calls_{0};
};

TEST_F(ReadApiTest, WithoutAccessControlTheApiIsRefusedAndTheOpenEndpointsStayOpen) {
  start_http(false);
  for (auto [method, target] :
       std::vector<std::pair<std::string, std::string>>{{"GET", "/v1/streams"},
                                                        {"GET", "/v1/records?stream=prod"},
                                                        {"GET", "/v1/proof?stream=prod&index=1"},
                                                        {"POST", "/v1/hold?stream=prod&on=true"},
                                                        {"POST", "/v1/roll?stream=prod"}}) {
    Reply r = call(method, target, "tok-admin");
    EXPECT_EQ(r.status, 403) << target << " " << r.body;
    EXPECT_NE(r.body.find("access control is not configured"), std::string::npos) << r.body;
  }
  EXPECT_EQ(call("GET", "/healthz").status, 200);
  Reply cp = call("GET", "/v1/checkpoint?stream=prod");
  EXPECT_EQ(cp.status, 200) << cp.body;
  EXPECT_NE(cp.body.find("logseal-checkpoint"), std::string::npos) << cp.body;
  close_store();
  // Each refusal is in `_audit`, and no hold statement was written.
  auto audit = audit_records();
  int refused = 0;
  for (const auto& a : audit) {
    if (a.get_string("action") == "api-refused") {
      refused++;
      EXPECT_EQ(a.get_string("why"), "access control is not configured");
      EXPECT_EQ(a.get_string("identity"), "unknown");
    }
    EXPECT_NE(a.get_string("action"), "legal-hold-on");
  }
  EXPECT_EQ(refused, 5);
}

TEST_F(ReadApiTest, StreamsListsWhatTheCallerMaySee) {
  start_http(true);
  Reply admin = call("GET", "/v1/streams", "tok-admin");
  ASSERT_EQ(admin.status, 200) << admin.body;
  EXPECT_TRUE(admin.has_header("Content-Type: application/json")) << admin.headers;
  auto j = e2e::Json::parse(admin.body);
  ASSERT_TRUE(j.has_value()) << admin.body;
  std::map<std::string, e2e::Json> by_name;
  for (const auto& s : (*j)["streams"].array()) by_name[s.get_string("name")] = s;
  ASSERT_EQ(by_name.count("prod"), 1u) << admin.body;
  ASSERT_EQ(by_name.count("staging"), 1u) << admin.body;
  const e2e::Json& prod = by_name["prod"];
  EXPECT_EQ(prod["records"].number(), static_cast<double>(kRecords));
  EXPECT_EQ(prod["durable"].number(), static_cast<double>(kRecords));
  EXPECT_GE(prod["signed"].number(), static_cast<double>(kRecords));
  EXPECT_EQ(prod["checkpoint"].get_string("key_id"), to_hex(prod_.keys[0].key_id()));
  EXPECT_EQ(prod["checkpoint"].get_string("root").size(), 64u);
  EXPECT_FALSE(prod["legal_hold"].boolean());
  EXPECT_TRUE(prod["retention"].is_null());
  EXPECT_EQ(by_name["staging"]["checkpoint"].get_string("key_id"), to_hex(staging_.keys[0].key_id()));
  EXPECT_EQ(by_name["staging"]["signing_key"].get_string("key_id"), to_hex(staging_.keys[0].key_id()));

  // The auditor sees prod only; the checker staging only (checkpoint right).
  Reply auditor = call("GET", "/v1/streams", "tok-auditor");
  ASSERT_EQ(auditor.status, 200) << auditor.body;
  auto ja = e2e::Json::parse(auditor.body);
  ASSERT_TRUE(ja.has_value());
  ASSERT_EQ((*ja)["streams"].array().size(), 1u) << auditor.body;
  EXPECT_EQ((*ja)["streams"].array()[0].get_string("name"), "prod");
  Reply checker = call("GET", "/v1/streams", "tok-checker");
  ASSERT_EQ(checker.status, 200) << checker.body;
  auto jc = e2e::Json::parse(checker.body);
  ASSERT_TRUE(jc.has_value());
  ASSERT_EQ((*jc)["streams"].array().size(), 1u) << checker.body;
  EXPECT_EQ((*jc)["streams"].array()[0].get_string("name"), "staging");

  Reply none = call("GET", "/v1/streams");
  EXPECT_EQ(none.status, 401) << none.body;
  EXPECT_TRUE(none.has_header("WWW-Authenticate: Bearer")) << none.headers;
  Reply unknown = call("GET", "/v1/streams", "tok-stolen");
  EXPECT_EQ(unknown.status, 401) << unknown.body;
  EXPECT_NE(unknown.body.find("unknown token"), std::string::npos);
  EXPECT_EQ(call("GET", "/v1/streams?x=1", "tok-admin").status, 400);
  EXPECT_EQ(call("POST", "/v1/streams", "tok-admin").status, 405);
}

TEST_F(ReadApiTest, RecordsAreExactlyWhatExportPrints) {
  start_http(true);
  struct Case {
    std::string query;                  // after stream=prod
    std::vector<std::string> cli_args;  // the same selection for `logseal export`
  };
  std::vector<Case> cases = {
      {"", {}},
      {"&since=2026-01-01T00:05:00Z&until=1767226200", {"--since", "2026-01-01T00:05:00Z", "--until", "1767226200"}},
      // Percent-encoded: ':' in the time, '=' and ' ' in the condition.
      {"&since=2026-01-01T00%3A01%3A00Z&where=k8s.user%3Dalice+smith&where=k8s.verb~%3Dele",
       {"--since", "2026-01-01T00:01:00Z", "--where", "k8s.user=alice smith", "--where", "k8s.verb~=ele"}},
      {"&where=k8s.verb=get&limit=7", {"--where", "k8s.verb=get", "--limit", "7"}},
      {"&where=k8s.verb=nothing", {"--where", "k8s.verb=nothing"}},
  };
  for (const Case& c : cases) {
    Reply r = call("GET", "/v1/records?stream=prod" + c.query, "tok-auditor");
    ASSERT_EQ(r.status, 200) << c.query << ": " << r.body.substr(0, 300);
    EXPECT_TRUE(r.has_header("Content-Type: application/x-ndjson")) << r.headers;
    EXPECT_TRUE(r.has_header("Transfer-Encoding: chunked")) << r.headers;
    std::vector<std::string> args = {"export", data_, "--stream", "prod", "--format", "jsonl"};
    args.insert(args.end(), c.cli_args.begin(), c.cli_args.end());
    e2e::RunResult e = cli(args);
    ASSERT_EQ(e.exit_code, 0) << e2e::describe(e);
    EXPECT_EQ(r.body, e.out) << c.query;
    if (c.query.empty()) {
      EXPECT_EQ(e2e::split_lines(r.body).size(), kRecords);
      EXPECT_GT(r.body.size(), 3 * AdminHttp::kChunkBytes);
    }
  }
  EXPECT_EQ(
      e2e::split_lines(call("GET", "/v1/records?stream=prod&where=k8s.verb=get&limit=7", "tok-auditor").body).size(),
      7u);

  // Refusals and bad parameters.
  Reply none = call("GET", "/v1/records?stream=prod");
  EXPECT_EQ(none.status, 401);
  EXPECT_TRUE(none.has_header("WWW-Authenticate: Bearer")) << none.headers;
  EXPECT_EQ(call("GET", "/v1/records?stream=prod", "tok-nobody").status, 401);
  Reply other = call("GET", "/v1/records?stream=staging", "tok-auditor");
  EXPECT_EQ(other.status, 403);
  EXPECT_NE(other.body.find("auditor may not read stream staging"), std::string::npos) << other.body;
  EXPECT_EQ(call("GET", "/v1/records?stream=staging", "tok-checker").status, 403);  // checkpoint is not read
  Reply bad_time = call("GET", "/v1/records?stream=prod&since=yesterday", "tok-auditor");
  EXPECT_EQ(bad_time.status, 400);
  EXPECT_NE(bad_time.body.find("'since'"), std::string::npos) << bad_time.body;
  Reply bad_until = call("GET", "/v1/records?stream=prod&until=soon", "tok-auditor");
  EXPECT_EQ(bad_until.status, 400);
  EXPECT_NE(bad_until.body.find("'until'"), std::string::npos) << bad_until.body;
  Reply bad_where = call("GET", "/v1/records?stream=prod&where=k8s.verb", "tok-auditor");
  EXPECT_EQ(bad_where.status, 400);
  EXPECT_NE(bad_where.body.find("'where'"), std::string::npos) << bad_where.body;
  EXPECT_EQ(call("GET", "/v1/records?stream=prod&limit=-1", "tok-auditor").status, 400);
  EXPECT_EQ(call("GET", "/v1/records?stream=prod&limit=1&limit=2", "tok-auditor").status, 400);
  EXPECT_EQ(call("GET", "/v1/records?stream=prod&colour=red", "tok-auditor").status, 400);
  EXPECT_EQ(call("GET", "/v1/records?stream=prod&where=%zz", "tok-auditor").status, 400);
  EXPECT_EQ(call("GET", "/v1/records", "tok-auditor").status, 400);
  EXPECT_EQ(call("GET", "/v1/records?stream=nosuch", "tok-admin").status, 404);
  EXPECT_EQ(call("GET", "/v1/records?stream=..", "tok-admin").status, 404);

  close_store();
  // One api-export record per export, with the selection and the count.
  auto audit = audit_records();
  int exports = 0;
  bool limited = false, refused_401 = false, refused_403 = false;
  for (const auto& a : audit) {
    std::string action = a.get_string("action");
    if (action == "api-export") {
      exports++;
      EXPECT_EQ(a.get_string("identity"), "auditor");
      EXPECT_EQ(a.get_string("stream"), "prod");
      EXPECT_NE(a.get_string("peer").find("127.0.0.1:"), std::string::npos);
      if (a["limit"].number() == 7) {
        limited = true;
        EXPECT_EQ(a["records"].number(), 7);
        ASSERT_EQ(a["where"].array().size(), 1u);
        EXPECT_EQ(a["where"].array()[0].str(), "k8s.verb=get");
      }
    }
    if (action == "api-refused" && a["status"].number() == 401) {
      refused_401 = true;
      EXPECT_EQ(a.get_string("identity"), "unknown");
      EXPECT_EQ(a.get_string("path"), "/v1/records");
    }
    if (action == "api-refused" && a["status"].number() == 403 && a.get_string("identity") == "auditor") {
      refused_403 = true;
      EXPECT_EQ(a.get_string("stream"), "staging");
      EXPECT_EQ(a.get_string("why"), "auditor may not read stream staging");
    }
  }
  EXPECT_EQ(exports, 6);
  EXPECT_TRUE(limited);
  EXPECT_TRUE(refused_401);
  EXPECT_TRUE(refused_403);
  e2e::RunResult v = cli({"verify", data_, "--pubkey", prod_.pub_path, "--pubkey", staging_.pub_path});
  EXPECT_EQ(v.exit_code, 0) << e2e::describe(v);
}

TEST_F(ReadApiTest, ProofIsWhatProvePrintsAndCheckProofAcceptsIt) {
  start_http(true);
  Reply r = call("GET", "/v1/proof?stream=prod&index=1234", "tok-auditor");
  ASSERT_EQ(r.status, 200) << r.body;
  std::string proof_path = dir_.sub("proof.txt");
  ASSERT_TRUE(e2e::write_file(proof_path, r.body));
  e2e::RunResult ok = cli({"check-proof", proof_path, "--pubkey", prod_.pub_path});
  EXPECT_EQ(ok.exit_code, 0) << e2e::describe(ok);
  EXPECT_NE(ok.out.find("VERIFIED: record 1234 of stream prod"), std::string::npos) << ok.out;
  e2e::RunResult wrong_key = cli({"check-proof", proof_path, "--pubkey", staging_.pub_path});
  EXPECT_EQ(wrong_key.exit_code, 1) << e2e::describe(wrong_key);

  Reply st = call("GET", "/v1/proof?stream=staging&index=3", "tok-admin");
  ASSERT_EQ(st.status, 200) << st.body;
  e2e::write_file(proof_path, st.body);
  EXPECT_EQ(cli({"check-proof", proof_path, "--pubkey", staging_.pub_path}).exit_code, 0);

  EXPECT_EQ(call("GET", "/v1/proof?stream=prod&index=1", "").status, 401);
  EXPECT_EQ(call("GET", "/v1/proof?stream=staging&index=1", "tok-auditor").status, 403);
  EXPECT_EQ(call("GET", "/v1/proof?stream=prod", "tok-auditor").status, 400);
  EXPECT_EQ(call("GET", "/v1/proof?stream=prod&index=x1", "tok-auditor").status, 400);
  Reply beyond = call("GET", "/v1/proof?stream=prod&index=999999", "tok-auditor");
  EXPECT_EQ(beyond.status, 400);
  EXPECT_NE(beyond.body.find("not covered"), std::string::npos) << beyond.body;
  EXPECT_EQ(call("GET", "/v1/proof?stream=nosuch&index=1", "tok-admin").status, 404);

  close_store();
  // Byte for byte what `logseal prove` prints for the same record.
  e2e::RunResult prove = cli({"prove", data_, "--stream", "prod", "--index", "1234"});
  ASSERT_EQ(prove.exit_code, 0) << e2e::describe(prove);
  EXPECT_EQ(r.body, prove.out);
  int proofs = 0;
  for (const auto& a : audit_records()) {
    if (a.get_string("action") == "api-proof") {
      proofs++;
      EXPECT_TRUE(a.get_string("identity") == "auditor" || a.get_string("identity") == "admin");
    }
  }
  EXPECT_EQ(proofs, 2);
}

TEST_F(ReadApiTest, HoldAndRollNeedAdminAndAHeldStreamIsNotPruned) {
  start_http(true);
  EXPECT_EQ(call("POST", "/v1/hold?stream=prod&on=true", "tok-auditor").status, 403);
  EXPECT_EQ(call("POST", "/v1/hold?stream=prod&on=true").status, 401);
  EXPECT_EQ(call("GET", "/v1/hold?stream=prod&on=true", "tok-admin").status, 405);
  EXPECT_EQ(call("POST", "/v1/hold?stream=prod&on=maybe", "tok-admin").status, 400);
  EXPECT_EQ(call("POST", "/v1/hold?stream=prod", "tok-admin").status, 400);
  EXPECT_EQ(call("POST", "/v1/hold?stream=nosuch&on=true", "tok-admin").status, 404);
  Reply on = call("POST", "/v1/hold?stream=prod&on=true", "tok-admin");
  ASSERT_EQ(on.status, 200) << on.body;
  EXPECT_NE(on.body.find("\"legal_hold\":true"), std::string::npos) << on.body;
  Reply list = call("GET", "/v1/streams", "tok-auditor");
  EXPECT_NE(list.body.find("\"legal_hold\":true"), std::string::npos) << list.body;

  auto prod = store_->stream("prod");
  ASSERT_TRUE(prod.ok());
  uint64_t seq = prod.value()->stats().segment_seq;
  EXPECT_EQ(call("POST", "/v1/roll?stream=prod", "tok-auditor").status, 403);
  EXPECT_EQ(call("POST", "/v1/roll?stream=nosuch", "tok-admin").status, 404);
  EXPECT_EQ(call("GET", "/v1/roll?stream=prod", "tok-admin").status, 405);
  Reply roll = call("POST", "/v1/roll?stream=prod", "tok-admin");
  ASSERT_EQ(roll.status, 200) << roll.body;
  // The roll happens at the next batch boundary: a record makes one.
  append("prod", 1);
  EXPECT_TRUE(e2e::wait_until([&] { return prod.value()->stats().segment_seq > seq; }, Millis(10000)));
  close_store();

  e2e::RunResult prune = cli(
      {"prune", data_, "--stream", "prod", "--signer", "soft:" + prod_.key_path, "--before", "2100-01-01T00:00:00Z"});
  EXPECT_EQ(prune.exit_code, 2) << e2e::describe(prune);
  EXPECT_NE(prune.err.find("legal hold"), std::string::npos) << e2e::describe(prune);
  bool hold_audited = false, roll_audited = false;
  for (const auto& a : audit_records()) {
    if (a.get_string("action") == "legal-hold-on") {
      hold_audited = true;
      EXPECT_EQ(a.get_string("stream"), "prod");
      EXPECT_NE(a.get_string("note").find("read API: admin from 127.0.0.1:"), std::string::npos)
          << a.get_string("note");
    }
    if (a.get_string("action") == "api-roll") {
      roll_audited = true;
      EXPECT_EQ(a.get_string("identity"), "admin");
      EXPECT_EQ(a["segment"].number(), static_cast<double>(seq));
    }
  }
  EXPECT_TRUE(hold_audited);
  EXPECT_TRUE(roll_audited);
  e2e::RunResult v = cli({"verify", data_, "--pubkey", prod_.pub_path, "--pubkey", staging_.pub_path});
  EXPECT_EQ(v.exit_code, 0) << e2e::describe(v);
}

TEST_F(ReadApiTest, CheckpointNeedsTheCheckpointRightOnceAccessControlIsSet) {
  start_http(true);
  EXPECT_EQ(call("GET", "/v1/checkpoint?stream=staging").status, 401);
  EXPECT_EQ(call("GET", "/v1/checkpoint?stream=staging", "tok-auditor").status, 403);
  Reply ok = call("GET", "/v1/checkpoint?stream=staging", "tok-checker");
  ASSERT_EQ(ok.status, 200) << ok.body;
  std::string anchor = dir_.sub("anchor.txt");
  ASSERT_TRUE(e2e::write_file(anchor, ok.body));
  close_store();
  e2e::RunResult v =
      cli({"verify", data_, "--pubkey", prod_.pub_path, "--pubkey", staging_.pub_path, "--anchor", anchor});
  EXPECT_EQ(v.exit_code, 0) << e2e::describe(v);
}

TEST_F(ReadApiTest, OversizedHeadersAndUnknownPaths) {
  start_http(true);
  int fd = e2e::connect_tcp(static_cast<uint16_t>(std::stoi(port_)));
  ASSERT_GE(fd, 0);
  std::string req = "GET /v1/streams HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n";
  e2e::send_all(fd, req);
  std::string got;
  char buf[4096];
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  EXPECT_EQ(got.rfind("HTTP/1.1 431", 0), 0u) << got;
  EXPECT_EQ(call("GET", "/v1/nothing", "tok-admin").status, 404);
}

TEST(QueryParsing, PercentDecodingAndRepeats) {
  auto q = parse_query("a=1&where=x%3Dy+z&where=%C3%A9&empty=&flag");
  ASSERT_TRUE(q.ok());
  ASSERT_EQ(q->size(), 5u);
  EXPECT_EQ((*q)[1].second, "x=y z");
  EXPECT_EQ((*q)[2].second, "\xC3\xA9");
  EXPECT_EQ((*q)[3].second, "");
  EXPECT_EQ((*q)[4].first, "flag");
  EXPECT_FALSE(parse_query("a=%4").ok());
  EXPECT_FALSE(parse_query("a=%g0").ok());
  EXPECT_FALSE(percent_decode("%").ok());
  EXPECT_EQ(percent_decode("%41%62").value(), "Ab");
}

}  // namespace
}  // namespace logseal::ingest
