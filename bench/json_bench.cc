// Micro benchmarks of JSON audit event parsing (ingest/json_events.h): a
// Kubernetes webhook EventList, an NDJSON body and an array of generic events,
// 100 events each; items/s are events/s. Run: build/bin/logseal-bench-json
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "ingest/json_events.h"

using namespace logseal::ingest;

namespace {

// Shaped like the kube-apiserver events of ../shared/corpus/k8s-audit-HANDWRITTEN.
std::string k8s_event(int i) {
  return "{\"level\":\"Metadata\",\"auditID\":\"0b7c3a1e-0000-4000-8000-" + std::to_string(100000000000 + i) +
         "\",\"stage\":\"ResponseComplete\",\"requestURI\":\"/api/v1/namespaces/payments/secrets/db-" +
         std::to_string(i) + "\",\"verb\":\"get\",\"user\":{\"username\":\"system:serviceaccount:payments:billing-api\","
         "\"uid\":\"6f1c2a9e-3b7d-4c1e-9a55-0d2b8e7f4a10\",\"groups\":[\"system:serviceaccounts\","
         "\"system:serviceaccounts:payments\",\"system:authenticated\"]},\"sourceIPs\":[\"192.0.2.17\"],"
         "\"userAgent\":\"billing-api/2.3.1 (linux/amd64) kubernetes/$Format\",\"objectRef\":{\"resource\":\"secrets\","
         "\"namespace\":\"payments\",\"name\":\"db-credentials\",\"apiVersion\":\"v1\"},\"responseStatus\":"
         "{\"metadata\":{},\"code\":200},\"requestReceivedTimestamp\":\"2026-11-26T03:30:00.101202Z\","
         "\"stageTimestamp\":\"2026-11-26T03:30:00.104019Z\",\"annotations\":{\"authorization.k8s.io/decision\":"
         "\"allow\",\"authorization.k8s.io/reason\":\"RBAC: allowed by RoleBinding\"}}";
}

std::string generic_event(int i) {
  return "{\"time\":\"2026-11-26T03:30:00.101202Z\",\"user\":\"alice\",\"action\":\"refund\",\"order\":" +
         std::to_string(i) + ",\"amount\":12.5,\"ok\":true,\"client\":{\"ip\":\"192.0.2.7\",\"agent\":\"app/1.2\"}}";
}

void run(benchmark::State& state, const std::string& body_text, JsonBodyForm form, bool k8s, size_t events) {
  std::string body = body_text;
  body.reserve(body.size() + kJsonPaddingBytes);
  JsonEventParser parser(1 << 20);
  std::vector<JsonEvent> out;
  JsonBodyError err;
  for (auto _ : state) {
    if (!parser.parse_body(body, form, k8s, out, err) || out.size() != events) {
      state.SkipWithError(err.reason.c_str());
      return;
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * events));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}

void BM_K8sEventList100(benchmark::State& state) {
  std::string b = "{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"metadata\":{},\"items\":[";
  for (int i = 0; i < 100; ++i) b += (i ? "," : "") + k8s_event(i);
  run(state, b + "]}", JsonBodyForm::kJson, true, 100);
}
BENCHMARK(BM_K8sEventList100);

void BM_Ndjson100(benchmark::State& state) {
  std::string b;
  for (int i = 0; i < 100; ++i) b += generic_event(i) + "\n";
  run(state, b, JsonBodyForm::kNdjson, false, 100);
}
BENCHMARK(BM_Ndjson100);

void BM_Array100(benchmark::State& state) {
  std::string b = "[";
  for (int i = 0; i < 100; ++i) b += (i ? "," : "") + generic_event(i);
  run(state, b + "]", JsonBodyForm::kJson, false, 100);
}
BENCHMARK(BM_Array100);

}  // namespace

BENCHMARK_MAIN();
