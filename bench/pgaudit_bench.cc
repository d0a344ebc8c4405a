// Micro benchmarks of pgaudit ingest: AUDIT payload parsing, log_line_prefix
// matching and syslog reassembly, per message. Run: build/bin/logseal-bench-pgaudit
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "ingest/pg_prefix.h"
#include "ingest/pg_reassembler.h"
#include "ingest/pgaudit.h"
#include "ingest/syslog_parse.h"

using namespace logseal;
using namespace logseal::ingest;

namespace {

// Shapes taken from the corpus (../shared/corpus/run1-all).
const std::string kAuditPlain =
    "AUDIT: SESSION,3,1,READ,SELECT,TABLE,public.customers,"
    "\"SELECT c.name, sum(p.amount) FROM customers c JOIN payments p ON p.customer_id = c.id GROUP BY c.name;\","
    "<none>";
const std::string kAuditQuoted =
    "AUDIT: SESSION,9,1,READ,SELECT,TABLE,public.payments,\"PREPARE pay_lookup (int, text) AS\n"
    "  SELECT id, amount, memo FROM payments WHERE customer_id = $1 AND memo <> $2;\","
    "\"1,\"\"a,b \"\"\"\"c\"\"\"\" 'd' 東京\"\"\"";
const std::string kLine =
    "2026-11-26 03:29:34.952 UTC [21024] user=app_svc db=appdb app=billing-api/2.3.1 client=127.0.0.1 LOG:  " +
    kAuditPlain;
constexpr const char* kPrefix = "%m [%p] user=%u db=%d app=%a client=%h ";

void BM_PgAuditParse(benchmark::State& state) {
  const std::string& m = state.range(0) == 0 ? kAuditPlain : kAuditQuoted;
  for (auto _ : state) {
    Result<AuditRecord> r = parse_audit(m);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * m.size()));
}
BENCHMARK(BM_PgAuditParse)->Arg(0)->Arg(1)->ArgName("quoted");

void BM_PgPrefixMatch(benchmark::State& state) {
  PgLinePrefix p = std::move(PgLinePrefix::compile(kPrefix)).value();
  PgPrefixMatch m;
  for (auto _ : state) {
    Status st = p.match(kLine, m);
    benchmark::DoNotOptimize(st);
    benchmark::DoNotOptimize(m);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_PgPrefixMatch);

// Whole syslog path after framing: parse_syslog, reassembly, prefix and AUDIT
// parsing. The workload alternates a one-piece AUDIT entry and a 7-piece
// CREATE TABLE entry (continuation lines with #011), as in the corpus; items
// are syslog messages.
void BM_PgReassemble(benchmark::State& state) {
  std::vector<std::string> messages;
  const std::string head = "<134>Nov 26 03:29:34 vm postgres[21022]: ";
  const std::string prefix = "2026-11-26 03:29:34.701 UTC [21022] user=postgres db=appdb app=psql client=[local] LOG:  ";
  for (int seq = 1; seq <= 64; seq += 2) {
    messages.push_back(head + "[" + std::to_string(seq) + "-1] " + prefix + kAuditPlain);
    const std::string s = "[" + std::to_string(seq + 1) + "-";
    messages.push_back(head + s + "1] " + prefix +
                       "AUDIT: SESSION,4,1,DDL,CREATE TABLE,TABLE,public.customers,\"CREATE TABLE customers (");
    messages.push_back(head + s + "2] #011    id     serial PRIMARY KEY,");
    messages.push_back(head + s + "3] #011    name   text NOT NULL,");
    messages.push_back(head + s + "4] #011    city   text,");
    messages.push_back(head + s + "5] #011    email  text,");
    messages.push_back(head + s + "6] #011    notes  text");
    messages.push_back(head + s + "7] #011);\",<none>");
  }
  int64_t audits = 0;
  PgReassembler r({}, std::move(PgLinePrefix::compile(kPrefix)).value(), [&](const PgEntry& e) {
    if (e.audit != nullptr) ++audits;
  });
  uint64_t id = 0;
  for (auto _ : state) {
    for (const std::string& m : messages) r.add(parse_syslog(m), id++, 0);
  }
  r.flush_all();
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * messages.size()));
  state.counters["audit_records"] = static_cast<double>(audits);
}
BENCHMARK(BM_PgReassemble);

}  // namespace

BENCHMARK_MAIN();
