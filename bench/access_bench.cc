// Cost of access control and routing per syslog message (ingest/access.h,
// ingest/routing.h), next to the parse every message pays anyway:
//   BM_Parse                 parse_syslog alone (the baseline)
//   BM_ParseRouteNoRules     + the check a listener without rules makes
//   BM_ParseRoute/N          + first-match over N rules (the match is the last one)
//   BM_Allowed               the ingest check of a known identity (two stream globs)
//   BM_IdentifySource        identity by source address over 64 ranges (UDP, per datagram)
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <netinet/in.h>

#include <string>

#include "ingest/access.h"
#include "ingest/routing.h"
#include "ingest/syslog_parse.h"

using namespace logseal::ingest;

namespace {

const std::string kMessage =
    "<134>1 2026-11-26T10:00:00.000Z db1.example.org postgres 4242 - - LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,"
    "select 1,<none>";

AccessPolicy policy_with_rules(int rules) {
  std::string text =
      "[[identity]]\nname = \"pg\"\nkind = \"service\"\nsource = \"10.0.0.0/8\"\nroles = [\"s\"]\n"
      "[[role]]\nname = \"s\"\nstreams = [\"app-*\", \"db-prod\"]\nactions = [\"ingest\"]\n";
  for (int i = 0; i + 1 < rules; ++i) {
    text +=
        "[[route]]\nmatch = { app_name = \"nginx" + std::to_string(i) + "\", hostname = \"web*\" }\nstream = \"web\"\n";
  }
  if (rules > 0) text += "[[route]]\nmatch = { app_name = \"postgres\", hostname = \"db1*\" }\nstream = \"db-prod\"\n";
  for (int i = 0; i < 63; ++i) {
    text += "[[identity]]\nname = \"n" + std::to_string(i) + "\"\nkind = \"service\"\nsource = \"172." +
            std::to_string(16 + i / 4) + "." + std::to_string(i % 4) + ".0/24\"\n";
  }
  return AccessPolicy::parse(text, "bench").value();
}

void BM_Parse(benchmark::State& state) {
  for (auto _ : state) {
    SyslogFields f = parse_syslog(kMessage);
    benchmark::DoNotOptimize(f);
  }
}
BENCHMARK(BM_Parse);

void BM_ParseRouteNoRules(benchmark::State& state) {
  AccessPolicy p = policy_with_rules(0);
  SyslogRouter router(&p, {"l"});
  for (auto _ : state) {
    SyslogFields f = parse_syslog(kMessage);
    int r = router.active(0) ? router.route(0, nullptr, f) : -1;
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_ParseRouteNoRules);

void BM_ParseRoute(benchmark::State& state) {
  AccessPolicy p = policy_with_rules(static_cast<int>(state.range(0)));
  SyslogRouter router(&p, {"l"});
  for (auto _ : state) {
    SyslogFields f = parse_syslog(kMessage);
    int r = router.route(0, nullptr, f);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_ParseRoute)->Arg(1)->Arg(4)->Arg(16);

void BM_Allowed(benchmark::State& state) {
  AccessPolicy p = policy_with_rules(1);
  const Identity* id = p.find_identity("pg");
  for (auto _ : state) {
    bool ok = p.allowed(id, "db-prod", Action::kIngest);
    benchmark::DoNotOptimize(ok);
  }
}
BENCHMARK(BM_Allowed);

void BM_IdentifySource(benchmark::State& state) {
  AccessPolicy p = policy_with_rules(1);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  ::inet_pton(AF_INET, "10.1.2.3", &a.sin_addr);
  for (auto _ : state) {
    const Identity* id = p.identify_peer(nullptr, reinterpret_cast<const sockaddr*>(&a));
    benchmark::DoNotOptimize(id);
  }
}
BENCHMARK(BM_IdentifySource);

}  // namespace

BENCHMARK_MAIN();
