// End-to-end tests of JSON audit events: the real logseald with --http-events /
// --https-events, real curl as the sender (NDJSON, arrays, Kubernetes webhook
// EventLists as kube-apiserver posts them, malformed and oversize bodies, client
// certificates), then `logseal export` of the live data directory and
// `logseal verify`. Also `logseal ingest --format jsonl`.
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/e2e_util.h"

namespace logseal::e2e {
namespace {

using namespace std::chrono_literals;

struct Curl {
  int exit_code = -1;
  int status = 0;
  std::string body, err;
};

class HttpEventsE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(file_exists(logseald_path())) << logseald_path() << " is missing";
    ASSERT_TRUE(file_exists(logseal_path())) << logseal_path() << " is missing";
    curl_ = find_program("curl");
    if (curl_.empty()) GTEST_SKIP() << "curl is not installed (scripts/install-deps)";
    tmp_ = std::make_unique<TempDir>("http-events-e2e");
    key_ = make_soft_key(tmp_->sub("key"));
    ASSERT_FALSE(HasFailure());
    data_dir_ = tmp_->sub("data");
  }

  std::unique_ptr<Daemon> make_daemon(std::vector<std::string> extra) {
    DaemonConfig c;
    c.data_dir = data_dir_;
    c.key_pem = key_.key_pem;
    c.extra_args = std::move(extra);
    return std::make_unique<Daemon>(c, tmp_->sub("logseald-" + std::to_string(++daemons_) + ".log"));
  }

  // curl posting the file at body_path; the status from -w, the answer's body.
  Curl post(const std::string& url, const std::string& body_path, const std::vector<std::string>& args = {}) {
    std::string out = tmp_->sub("curl-out-" + std::to_string(++curls_));
    std::vector<std::string> argv = {curl_, "-sS", "-o", out, "-w", "%{http_code}", "--data-binary", "@" + body_path};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(url);
    RunResult r = run(argv, 60s);
    Curl c;
    c.exit_code = r.exit_code;
    c.status = r.out.empty() ? 0 : std::atoi(r.out.c_str());
    c.body = read_file(out);
    c.err = r.err;
    return c;
  }
  Curl post_text(const std::string& url, const std::string& body, const std::vector<std::string>& args = {}) {
    std::string path = tmp_->sub("body-" + std::to_string(++bodies_));
    EXPECT_TRUE(write_file(path, body));
    return post(url, path, args);
  }

  std::vector<Json> exported(const std::string& stream) {
    std::vector<Json> recs;
    EXPECT_TRUE(export_jsonl(data_dir_, stream, &recs));
    return recs;
  }

  void stop_and_verify(Daemon& d) {
    EXPECT_EQ(d.stop(20s), std::optional<int>(0)) << d.log();
    RunResult v = verify(data_dir_, key_.pub_pem);
    EXPECT_EQ(v.exit_code, 0) << describe(v);
  }

  std::string curl_;
  std::unique_ptr<TempDir> tmp_;
  SoftKey key_;
  std::string data_dir_;
  int daemons_ = 0, curls_ = 0, bodies_ = 0;
};

// One Kubernetes audit event as kube-apiserver serialises it into an EventList.
std::string k8s_event(int i) {
  std::string id = "0b7c3a1e-0000-4000-8000-" + std::string(12 - std::to_string(i).size(), '0') + std::to_string(i);
  return "{\"level\":\"Metadata\",\"auditID\":\"" + id +
         "\",\"stage\":\"ResponseComplete\",\"requestURI\":\"/api/v1/namespaces/team-" + std::to_string(i % 7) +
         "/configmaps/cm-" + std::to_string(i) + "\",\"verb\":\"" + (i % 3 ? "get" : "update") +
         "\",\"user\":{\"username\":\"system:serviceaccount:team:bot-" + std::to_string(i % 5) +
         "\",\"uid\":\"u-1\",\"groups\":[\"system:serviceaccounts\",\"system:authenticated\"]},"
         "\"sourceIPs\":[\"10.0.0." + std::to_string(i % 250) + "\"],\"userAgent\":\"kubectl/v1.29.2 (linux/amd64)\","
         "\"objectRef\":{\"resource\":\"configmaps\",\"namespace\":\"team-" + std::to_string(i % 7) +
         "\",\"name\":\"cm-" + std::to_string(i) + "\",\"apiVersion\":\"v1\"},\"responseStatus\":{\"metadata\":{},"
         "\"code\":200},\"requestReceivedTimestamp\":\"2026-11-26T03:30:00.000001Z\",\"stageTimestamp\":"
         "\"2026-11-26T03:30:00.001234Z\",\"annotations\":{\"authorization.k8s.io/decision\":\"allow\","
         "\"authorization.k8s.io/reason\":\"\"}}";
}

std::string event_list(int first, int n) {
  std::string b = "{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"metadata\":{},\"items\":[";
  for (int i = 0; i < n; ++i) b += (i ? "," : "") + k8s_event(first + i);
  return b + "]}";
}

TEST_F(HttpEventsE2E, CurlNdjsonArraysAndKubernetesWebhookBatchesAreSealedAndDurableAt200) {
  uint16_t port = free_port(true);
  auto d = make_daemon({"--http-events", "127.0.0.1:" + std::to_string(port)});
  ASSERT_TRUE(d->start());
  EXPECT_NE(d->ready_line().find("http-events=127.0.0.1:" + std::to_string(port) + "(streams events,k8s-audit)"),
            std::string::npos)
      << d->ready_line();
  std::string base = "http://127.0.0.1:" + std::to_string(port);

  // 1000 events as NDJSON, with quotes, escapes and non-ASCII text.
  std::string ndjson;
  std::vector<std::string> lines;
  for (int i = 0; i < 1000; ++i) {
    lines.push_back("{\"seq\":" + std::to_string(i) + ",\"user\":\"zo\u00eb\",\"msg\":\"say \\\"hi\\\" \\u00e9 東京\"," +
                    "\"ok\":" + (i % 2 ? "true" : "false") + ",\"detail\":{\"n\":" + std::to_string(i) + "}}");
    ndjson += lines.back() + "\n";
  }
  Curl c = post_text(base + "/v1/events", ndjson, {"-H", "Content-Type: application/x-ndjson"});
  ASSERT_EQ(c.status, 200) << c.err << c.body;
  EXPECT_EQ(c.body, "{\"accepted\":1000,\"stream\":\"events\",\"first_index\":0,\"last_index\":999}");
  // 200 means durable: the live directory's export has every record now.
  std::vector<Json> recs = exported("events");
  ASSERT_EQ(recs.size(), 1000u);
  for (size_t i = 0; i < recs.size(); ++i) {
    ASSERT_EQ(json_record_raw(recs[i]), lines[i]) << i;
    EXPECT_EQ(recs[i]["fields"]["event"]["seq"].number(), static_cast<double>(i));
    EXPECT_EQ(recs[i].get_string("fields.event.user"), "zo\u00eb");
    EXPECT_EQ(recs[i].get_string("fields.event.msg"), "say \"hi\" \u00e9 東京");
    EXPECT_FALSE(recs[i]["fields"]["event"].has("detail"));
    EXPECT_EQ(recs[i].get_string("source").rfind("http:127.0.0.1:", 0), 0u) << recs[i].get_string("source");
  }

  // An array with curl -d's default Content-Type (form-urlencoded): sniffed.
  std::string arr = "[{\"action\":\"login\",\"user\":\"alice\"},\n {\"action\":\"logout\",\"user\":\"alice\"}]";
  c = post_text(base + "/v1/events", arr);
  ASSERT_EQ(c.status, 200) << c.body;
  recs = exported("events");
  ASSERT_EQ(recs.size(), 1002u);
  EXPECT_EQ(json_record_raw(recs[1000]), "{\"action\":\"login\",\"user\":\"alice\"}");
  EXPECT_EQ(json_record_raw(recs[1001]), "{\"action\":\"logout\",\"user\":\"alice\"}");

  // Kubernetes: the corpus batches and a generated one, posted as kube-apiserver's
  // webhook does (POST, Content-Type: application/json, an EventList body).
  std::vector<std::string> audit_ids;
  size_t corpus_batches = 0;
  for (const char* name : {"webhook-batch1.HANDWRITTEN-from-schema.json", "webhook-batch2.HANDWRITTEN-from-schema.json"}) {
    std::string path = corpus_dir() + "/k8s-audit-HANDWRITTEN/" + name;
    std::string body = read_file(path);
    if (body.empty()) continue;
    ++corpus_batches;
    auto list = Json::parse(body);
    ASSERT_TRUE(list.has_value()) << path;
    for (const Json& item : (*list)["items"].array()) audit_ids.push_back(item["auditID"].str());
    c = post(base + "/v1/k8s-audit", path, {"-H", "Content-Type: application/json", "-H", "User-Agent: kube-apiserver-admission"});
    ASSERT_EQ(c.status, 200) << c.err << c.body;
  }
  std::string gen = event_list(0, 400);  // kube-apiserver's default --audit-webhook-batch-max-size
  for (int i = 0; i < 400; ++i) audit_ids.push_back(Json::parse(k8s_event(i))->get_string("auditID"));
  c = post_text(base + "/v1/k8s-audit", gen, {"-H", "Content-Type: application/json"});
  ASSERT_EQ(c.status, 200) << c.body;
  EXPECT_NE(c.body.find("\"accepted\":400"), std::string::npos) << c.body;
  recs = exported("k8s-audit");
  ASSERT_EQ(recs.size(), audit_ids.size());
  for (size_t i = 0; i < recs.size(); ++i) {
    EXPECT_EQ(recs[i].get_string("fields.k8s.auditID"), audit_ids[i]) << i;
    auto raw = Json::parse(json_record_raw(recs[i]));
    ASSERT_TRUE(raw.has_value()) << i;
    EXPECT_EQ(raw->get_string("auditID"), audit_ids[i]);
    EXPECT_EQ(recs[i].get_string("fields.k8s.verb"), raw->get_string("verb"));
    EXPECT_EQ(recs[i].get_string("fields.k8s.user.username"), raw->get_string("user.username"));
    EXPECT_EQ(recs[i].get_string("fields.k8s.objectRef.resource"), raw->get_string("objectRef.resource"));
    EXPECT_EQ(recs[i]["fields"]["k8s"]["responseStatus"]["code"].number(),
              (*raw)["responseStatus"]["code"].number());
  }
  size_t generated_first = recs.size() - 400;
  EXPECT_EQ(json_record_raw(recs[generated_first + 17]), k8s_event(17));
  if (corpus_batches == 2) {
    EXPECT_EQ(recs[1].get_string("fields.k8s.user.username"), "zo\u00eb.m\u00fcller@example.com");
  }

  // Malformed bodies: 400 with the reason and offset; nothing of them sealed.
  size_t before_events = exported("events").size(), before_k8s = exported("k8s-audit").size();
  std::string deep = std::string(5000, '[') + std::string(5000, ']');
  struct Bad {
    const char* what;
    std::string path, body, type;
  };
  std::vector<Bad> bad = {
      {"truncated NDJSON", "/v1/events", "{\"a\":1}\n{\"b\":", "application/x-ndjson"},
      {"invalid UTF-8", "/v1/events", "{\"a\":1}\n{\"b\":\"\xc3\x28\"}\n", "application/x-ndjson"},
      {"deep nesting", "/v1/events", "[{\"a\":" + deep + "}]", "application/json"},
      {"truncated EventList", "/v1/k8s-audit", event_list(0, 3).substr(0, 900), "application/json"},
      {"EventList with one bad item", "/v1/k8s-audit",
       event_list(0, 2).substr(0, event_list(0, 2).size() - 2) + ",{\"auditID\":x}]}", "application/json"},
  };
  for (const Bad& b : bad) {
    c = post_text(base + b.path, b.body, {"-H", "Content-Type: " + b.type});
    EXPECT_EQ(c.status, 400) << b.what << ": " << c.body;
    auto j = Json::parse(c.body);
    ASSERT_TRUE(j.has_value()) << b.what << ": " << c.body;
    EXPECT_TRUE(j->has("error") && j->has("offset")) << b.what << ": " << c.body;
    EXPECT_LE((*j)["offset"].number(), static_cast<double>(b.body.size())) << b.what;
  }
  EXPECT_EQ(exported("events").size(), before_events);
  EXPECT_EQ(exported("k8s-audit").size(), before_k8s);
  // The listener goes on after refusals.
  c = post_text(base + "/v1/events", "{\"after\":\"refusals\"}");
  EXPECT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(exported("events").size(), before_events + 1);

  // Keep-alive: one curl, several requests over one connection.
  std::string one = tmp_->sub("one.json");
  ASSERT_TRUE(write_file(one, "{\"k\":1}"));
  // The body is sent to each URL; -o per URL keeps the answers off stdout.
  RunResult multi = run({curl_, "-sS", "-w", "%{http_code} %{num_connects}\\n", "--data-binary", "@" + one, "-o",
                         "/dev/null", base + "/v1/events", "-o", "/dev/null", base + "/v1/events", "-o", "/dev/null",
                         base + "/v1/events"},
                        30s);
  EXPECT_EQ(multi.out, "200 1\n200 0\n200 0\n") << describe(multi);

  // /metrics counts the HTTP listener's events and refusals per endpoint.
  std::string m = d->metrics();
  std::string lname = "listener=\"http-events 127.0.0.1:" + std::to_string(port);
  EXPECT_EQ(metric(m, "logseal_listener_messages_total", {lname + " /v1/events\""}), std::optional<double>(1006)) << m;
  EXPECT_EQ(metric(m, "logseal_listener_messages_total", {lname + " /v1/k8s-audit\""}),
            std::optional<double>(static_cast<double>(audit_ids.size())));
  EXPECT_EQ(metric(m, "logseal_listener_drops_total", {lname + " /v1/events\"", "cause=\"refused_request\""}),
            std::optional<double>(3));
  EXPECT_EQ(metric(m, "logseal_listener_drops_total", {lname + " /v1/k8s-audit\"", "cause=\"refused_request\""}),
            std::optional<double>(2));

  stop_and_verify(*d);
}

TEST_F(HttpEventsE2E, OversizeBodyIs413AndNothingSealed) {
  uint16_t port = free_port(true);
  auto d = make_daemon({"--http-events", "127.0.0.1:" + std::to_string(port) + ",stream=small",
                        "--http-body-bytes-max", "65536"});
  ASSERT_TRUE(d->start());
  std::string base = "http://127.0.0.1:" + std::to_string(port);
  std::string big;
  while (big.size() <= 70000) big += "{\"filler\":\"" + std::string(100, 'x') + "\"}\n";
  Curl c = post_text(base + "/v1/events", big, {"-H", "Content-Type: application/x-ndjson"});
  EXPECT_EQ(c.status, 413) << c.err << c.body;
  // Chunked (no Content-Length): refused while reading.
  c = post_text(base + "/v1/events", big, {"-H", "Content-Type: application/x-ndjson", "-H", "Transfer-Encoding: chunked"});
  EXPECT_EQ(c.status, 413) << c.err << c.body;
  c = post_text(base + "/v1/events", "{\"fits\":true}");
  EXPECT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(exported("small").size(), 1u);
  stop_and_verify(*d);
}

TEST_F(HttpEventsE2E, HttpsClientCertificateIsTheSourceAndRequiredMeansRefused) {
  TlsFiles tls = make_tls_files(tmp_->sub("tls"));
  ASSERT_FALSE(HasFailure());
  uint16_t port = free_port(true);
  auto d = make_daemon({"--https-events", "127.0.0.1:" + std::to_string(port), "--tls-cert", tls.server_pem,
                        "--tls-key", tls.server_key, "--tls-ca", tls.ca_pem, "--tls-require-client-cert"});
  ASSERT_TRUE(d->start());
  EXPECT_NE(d->ready_line().find("https-events=127.0.0.1:" + std::to_string(port)), std::string::npos);
  std::string base = "https://127.0.0.1:" + std::to_string(port);
  std::string batch = read_file(corpus_dir() + "/k8s-audit-HANDWRITTEN/webhook-batch2.HANDWRITTEN-from-schema.json");
  if (batch.empty()) batch = event_list(0, 3);
  Curl c = post_text(base + "/v1/k8s-audit", batch,
                     {"-H", "Content-Type: application/json", "--cacert", tls.ca_pem, "--cert", tls.client_pem, "--key",
                      tls.client_key});
  ASSERT_EQ(c.status, 200) << c.err << c.body;
  // Without a client certificate: the handshake fails, nothing is sealed.
  Curl refused = post_text(base + "/v1/k8s-audit", batch, {"-H", "Content-Type: application/json", "--cacert", tls.ca_pem});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.status, 200);
  std::vector<Json> recs = exported("k8s-audit");
  ASSERT_EQ(recs.size(), 3u);
  for (const Json& r : recs) {
    std::string src = r.get_string("source");
    EXPECT_EQ(src.rfind("https:127.0.0.1:", 0), 0u) << src;
    EXPECT_NE(src.find("subject=CN=" + tls.client_cn), std::string::npos) << src;
    EXPECT_NE(src.find("san=DNS:" + tls.client_dns), std::string::npos) << src;
    EXPECT_FALSE(r.get_string("fields.k8s.auditID").empty());
  }
  stop_and_verify(*d);

  // Optional client certificates: a client without one is accepted and named by address.
  uint16_t port2 = free_port(true);
  auto d2 = make_daemon({"--https-events", "127.0.0.1:" + std::to_string(port2) + ",stream=ev2,k8s-stream=k8s2",
                         "--tls-cert", tls.server_pem, "--tls-key", tls.server_key, "--tls-ca", tls.ca_pem});
  ASSERT_TRUE(d2->start());
  c = post_text("https://127.0.0.1:" + std::to_string(port2) + "/v1/events", "{\"anon\":1}", {"--cacert", tls.ca_pem});
  ASSERT_EQ(c.status, 200) << c.err << c.body;
  recs = exported("ev2");
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].get_string("source").find("subject="), std::string::npos);
  stop_and_verify(*d2);
}

TEST_F(HttpEventsE2E, ConfigFileListenerKindHttp) {
  uint16_t port = free_port(true);
  std::string conf = tmp_->sub("logseald.toml");
  ASSERT_TRUE(write_file(conf, "data_dir = \"" + data_dir_ + "\"\nsigner = \"soft:" + key_.key_pem +
                                   "\"\nhttp_body_bytes_max = 4096\nhttp_connections_max = 8\nhttp_requests_in_flight_max = 4\n\n[[listener]]\nkind = \"http\"\naddress = \"127.0.0.1:" +
                                   std::to_string(port) + "\"\nstream = \"app-events\"\nk8s_stream = \"cluster-a\"\n"));
  DaemonConfig dc;
  dc.config_file = conf;
  dc.http = false;
  Daemon d(dc, tmp_->sub("logseald-conf.log"));
  ASSERT_TRUE(d.start());
  std::string base = "http://127.0.0.1:" + std::to_string(port);
  EXPECT_EQ(post_text(base + "/v1/events", "{\"a\":1}").status, 200);
  EXPECT_EQ(post_text(base + "/v1/k8s-audit", event_list(0, 2), {"-H", "Content-Type: application/json"}).status, 200);
  EXPECT_EQ(post_text(base + "/v1/events", std::string(5000, ' ') + "{}").status, 413);
  // http_connections_max = 8: eight idle connections fill it; curl's is refused.
  std::vector<int> idle;
  for (int i = 0; i < 8; ++i) idle.push_back(connect_tcp(port));
  Curl busy = post_text(base + "/v1/events", "{\"busy\":1}");
  EXPECT_EQ(busy.status, 503) << busy.err << busy.body;
  for (int fd : idle) {
    if (fd >= 0) ::close(fd);
  }
  EXPECT_TRUE(wait_until([&] { return post_text(base + "/v1/events", "{\"after\":1}").status == 200; }, 10s, 100ms));
  EXPECT_EQ(exported("app-events").size(), 2u);
  EXPECT_EQ(exported("cluster-a").size(), 2u);
  stop_and_verify(d);
}

TEST_F(HttpEventsE2E, IngestJsonlBackfillKeepsLinesBeforeABadOne) {
  std::string good = tmp_->sub("audit.jsonl");
  std::string lines;
  for (int i = 0; i < 5; ++i) {
    // The API server's log backend: one Event per line with kind and apiVersion.
    std::string ev = k8s_event(i);
    lines += "{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\"," + ev.substr(1) + "\n";
  }
  lines += "\n{\"app\":\"billing\",\"action\":\"refund\",\"amount\":12.5}\r\n";
  ASSERT_TRUE(write_file(good, lines));
  RunResult r = run({logseal_path(), "ingest", data_dir_, "--stream", "backfill", "--signer", "soft:" + key_.key_pem,
                     "--format", "jsonl", good});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  std::vector<Json> recs = exported("backfill");
  ASSERT_EQ(recs.size(), 6u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(recs[i].get_string("fields.k8s.auditID"), Json::parse(k8s_event(i))->get_string("auditID"));
    EXPECT_EQ(recs[i].get_string("source"), "file:" + good);
  }
  EXPECT_EQ(json_record_raw(recs[5]), "{\"app\":\"billing\",\"action\":\"refund\",\"amount\":12.5}");
  EXPECT_EQ(recs[5].get_string("fields.event.action"), "refund");

  // A malformed line 3: the error names it; lines 1 and 2 stay sealed.
  std::string bad = tmp_->sub("bad.jsonl");
  ASSERT_TRUE(write_file(bad, "{\"n\":1}\n{\"n\":2}\n{\"n\":3,}\n{\"n\":4}\n"));
  r = run({logseal_path(), "ingest", data_dir_, "--stream", "backfill2", "--signer", "soft:" + key_.key_pem,
           "--format", "jsonl", bad});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("line 3"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("malformed JSON"), std::string::npos) << r.err;
  recs = exported("backfill2");
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(json_record_raw(recs[1]), "{\"n\":2}");
  RunResult v = verify(data_dir_, key_.pub_pem);
  EXPECT_EQ(v.exit_code, 0) << describe(v);
}

}  // namespace
}  // namespace logseal::e2e
