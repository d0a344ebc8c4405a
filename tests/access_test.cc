// The access policy (ingest/access.h), stream routing (ingest/routing.h) and the
// refusal log (ingest/refusals.h), without a daemon: parse errors, address
// ranges, globs, kinds, deny by default, token hashes, route matching, and the
// aggregation of refusals into `_audit` records of a real store.
#include "ingest/access.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/store.h"
#include "ingest/refusals.h"
#include "ingest/routing.h"
#include "ingest/syslog_parse.h"
#include "tests/test_util.h"

namespace logseal::ingest {
namespace {

const char kPolicy[] = R"(
data_dir = "/ignored/by/the/policy"

[[identity]]
name = "pg-prod"
kind = "service"
tls_subject = "CN=pg-prod,O=Example"
tls_san = ["pg-prod.example.org"]
roles = ["prod-sender"]

[[identity]]
name = "staging"
kind = "service"
tls_san = "DNS:staging.example.org"
source = ["10.2.0.0/16"]
roles = ["staging-sender"]

[[identity]]
name = "lan"
kind = "service"
source = ["10.0.0.0/8", "::1/128"]
roles = ["app-sender"]

[[identity]]
name = "auditor"
kind = "human"
token_sha256 = ["ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"]
roles = ["reader"]

[[role]]
name = "prod-sender"
streams = ["db-prod", "app-*"]
actions = ["ingest"]

[[role]]
name = "staging-sender"
streams = ["*-staging"]
actions = ["ingest", "verify"]

[[role]]
name = "app-sender"
streams = "app-*"
actions = ["ingest"]

[[role]]
name = "reader"
streams = ["*"]
actions = ["read", "verify", "checkpoint"]

[[route]]
listener = "syslog-tls"
match = { app_name = "postgres", hostname = "db1*" }
stream = "db-prod"

[[route]]
identity = "staging"
stream = "db-staging"

[[route]]
match = { facility = "local3", severity = 3 }
stream = "app-errors"
)";

AccessPolicy parsed(const std::string& text) {
  auto p = AccessPolicy::parse(text, "test.toml");
  EXPECT_TRUE(p.ok()) << p.status().to_string();
  return p.ok() ? std::move(p).value() : AccessPolicy();
}

std::string parse_error(const std::string& text) {
  auto p = AccessPolicy::parse(text, "test.toml");
  EXPECT_FALSE(p.ok()) << "accepted:\n" << text;
  if (p.ok()) return "";
  EXPECT_EQ(p.status().code(), Code::kInvalidArgument);
  return p.status().message();
}

sockaddr_storage addr(const std::string& ip) {
  sockaddr_storage ss{};
  if (ip.find(':') == std::string::npos) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    EXPECT_EQ(::inet_pton(AF_INET, ip.c_str(), &a->sin_addr), 1) << ip;
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    EXPECT_EQ(::inet_pton(AF_INET6, ip.c_str(), &a->sin6_addr), 1) << ip;
  }
  return ss;
}

const sockaddr* sa(const sockaddr_storage& ss) { return reinterpret_cast<const sockaddr*>(&ss); }

std::string name_of(const Identity* id) { return id == nullptr ? "(none)" : id->name; }

TEST(AccessPolicy, ParsesIdentitiesRolesAndRoutes) {
  AccessPolicy p = parsed(kPolicy);
  EXPECT_TRUE(p.enabled());
  ASSERT_EQ(p.identities().size(), 4u);
  ASSERT_EQ(p.roles().size(), 4u);
  ASSERT_EQ(p.routes().size(), 3u);
  EXPECT_EQ(p.identities()[3].kind, IdentityKind::kHuman);
  EXPECT_EQ(p.routes()[0].match.size(), 2u);
  EXPECT_EQ(p.routes()[2].match[0].number, 19);  // local3
  EXPECT_EQ(p.routes()[2].match[1].number, 3);
}

TEST(AccessPolicy, WithoutIdentitiesItIsOffAndAllowsNothing) {
  AccessPolicy p = parsed("[[role]]\nname = \"r\"\nstreams = [\"*\"]\nactions = [\"read\"]\n");
  EXPECT_FALSE(p.enabled());
  EXPECT_FALSE(p.allowed(nullptr, "x", Action::kIngest));
  AccessPolicy empty = parsed("");
  EXPECT_FALSE(empty.enabled());
  auto local = addr("127.0.0.1");
  EXPECT_EQ(empty.identify_peer(nullptr, sa(local)), nullptr);
}

TEST(AccessPolicy, DenyByDefault) {
  AccessPolicy p = parsed(kPolicy);
  const Identity* prod = p.find_identity("pg-prod");
  const Identity* auditor = p.find_identity("auditor");
  ASSERT_NE(prod, nullptr);
  ASSERT_NE(auditor, nullptr);
  EXPECT_TRUE(p.allowed(prod, "db-prod", Action::kIngest));
  EXPECT_TRUE(p.allowed(prod, "app-web", Action::kIngest));
  EXPECT_FALSE(p.allowed(prod, "db-staging", Action::kIngest));
  EXPECT_FALSE(p.allowed(prod, "db-prod", Action::kVerify));  // a role grants only its actions
  EXPECT_FALSE(p.allowed(prod, "db-prod", Action::kRead));
  EXPECT_FALSE(p.allowed(nullptr, "db-prod", Action::kIngest));
  EXPECT_TRUE(p.allowed(auditor, "db-prod", Action::kRead));
  EXPECT_TRUE(p.allowed(auditor, "_audit", Action::kCheckpoint));
  EXPECT_FALSE(p.allowed(auditor, "db-prod", Action::kIngest));
  EXPECT_FALSE(p.allowed(auditor, "db-prod", Action::kAdmin));
  const Identity* staging = p.find_identity("staging");
  EXPECT_TRUE(p.allowed(staging, "db-staging", Action::kIngest));
  EXPECT_FALSE(p.allowed(staging, "db-prod", Action::kIngest));  // a staging sender never writes production
}

TEST(AccessPolicy, IdentifiesByCertificateThenTokenThenSource) {
  AccessPolicy p = parsed(kPolicy);
  std::vector<std::string> no_sans;
  std::vector<std::string> prod_sans = {"DNS:other.example.org"};
  TlsPeer by_subject{"CN=pg-prod,O=Example", prod_sans};
  EXPECT_EQ(name_of(p.identify_peer(&by_subject, nullptr)), "pg-prod");
  std::vector<std::string> sans = {"email:x@example.org", "DNS:pg-prod.example.org"};
  TlsPeer by_san{"CN=someone-else", sans};
  EXPECT_EQ(name_of(p.identify_peer(&by_san, nullptr)), "pg-prod");  // configured without the "DNS:" prefix
  std::vector<std::string> staging_sans = {"DNS:staging.example.org"};
  TlsPeer staging{"CN=staging", staging_sans};
  EXPECT_EQ(name_of(p.identify_peer(&staging, nullptr)), "staging");  // configured with it
  // A certificate decides alone: an unknown one is nobody, even from a known range.
  TlsPeer unknown{"CN=pg-prod,O=Other", no_sans};
  auto lan = addr("10.9.9.9");
  EXPECT_EQ(p.identify_peer(&unknown, sa(lan)), nullptr);
  // Subject matching is exact.
  TlsPeer prefix{"CN=pg-prod", no_sans};
  EXPECT_EQ(p.identify_peer(&prefix, nullptr), nullptr);
  // No certificate: the source address.
  TlsPeer none{"", no_sans};
  EXPECT_EQ(name_of(p.identify_peer(&none, sa(lan))), "lan");
  EXPECT_EQ(name_of(p.identify_peer(nullptr, sa(lan))), "lan");
  // Tokens: SHA-256("abc") is configured for the auditor.
  EXPECT_EQ(name_of(p.identify_token("abc")), "auditor");
  EXPECT_EQ(p.identify_token("abd"), nullptr);
  EXPECT_EQ(p.identify_token(""), nullptr);
  EXPECT_EQ(name_of(p.identify(nullptr, "abc", sa(lan))), "auditor");
  EXPECT_EQ(p.identify(nullptr, "wrong", sa(lan)), nullptr);  // a bad token does not fall back
  EXPECT_EQ(name_of(p.identify(nullptr, "", sa(lan))), "lan");
  EXPECT_EQ(name_of(p.identify(&by_subject, "abc", sa(lan))), "pg-prod");
}

TEST(AccessPolicy, SourceRangesMostSpecificWinsAndMappedAddressesMatch) {
  AccessPolicy p = parsed(kPolicy);
  auto in_staging = addr("10.2.3.4");  // in 10.0.0.0/8 (lan) and 10.2.0.0/16 (staging)
  EXPECT_EQ(name_of(p.identify_peer(nullptr, sa(in_staging))), "staging");
  auto mapped = addr("::ffff:10.2.3.4");
  EXPECT_EQ(name_of(p.identify_peer(nullptr, sa(mapped))), "staging");
  auto loop6 = addr("::1");
  EXPECT_EQ(name_of(p.identify_peer(nullptr, sa(loop6))), "lan");
  auto outside = addr("192.168.1.1");
  EXPECT_EQ(p.identify_peer(nullptr, sa(outside)), nullptr);
  auto v6_outside = addr("::2");
  EXPECT_EQ(p.identify_peer(nullptr, sa(v6_outside)), nullptr);
}

TEST(AccessPolicy, Cidr) {
  auto c = parse_cidr("192.168.0.0/16");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->prefix_bits, 96u + 16u);
  std::array<uint8_t, 16> a{};
  auto in = addr("192.168.255.1");
  ASSERT_TRUE(address_bytes(sa(in), a));
  EXPECT_TRUE(c->contains(a));
  auto out = addr("192.169.0.1");
  ASSERT_TRUE(address_bytes(sa(out), a));
  EXPECT_FALSE(c->contains(a));
  EXPECT_TRUE(parse_cidr("0.0.0.0/0").ok());
  EXPECT_TRUE(parse_cidr("10.1.2.3").ok());
  EXPECT_TRUE(parse_cidr("2001:db8::/32").ok());
  EXPECT_TRUE(parse_cidr("10.1.0.0/12").status().message().find("past its prefix") != std::string::npos);
  EXPECT_FALSE(parse_cidr("10.1.0.0/33").ok());
  EXPECT_FALSE(parse_cidr("10.1.0.0/").ok());
  EXPECT_FALSE(parse_cidr("10.1.0.0/x").ok());
  EXPECT_FALSE(parse_cidr("10.1.0/16").ok());
  EXPECT_FALSE(parse_cidr("host.example.org").ok());
  EXPECT_FALSE(parse_cidr("::1/129").ok());
}

TEST(AccessPolicy, Glob) {
  EXPECT_TRUE(stream_glob_match("*", ""));
  EXPECT_TRUE(stream_glob_match("*", "anything"));
  EXPECT_TRUE(stream_glob_match("app-*", "app-"));
  EXPECT_TRUE(stream_glob_match("app-*", "app-web"));
  EXPECT_FALSE(stream_glob_match("app-*", "xapp-web"));
  EXPECT_TRUE(stream_glob_match("*-prod", "db-prod"));
  EXPECT_FALSE(stream_glob_match("*-prod", "db-prod2"));
  EXPECT_TRUE(stream_glob_match("db*prod*", "db-x-prod-y"));
  EXPECT_TRUE(stream_glob_match("a*b*c", "aXbYbZc"));
  EXPECT_FALSE(stream_glob_match("a*b*c", "aXbYbZ"));
  EXPECT_TRUE(stream_glob_match("exact", "exact"));
  EXPECT_FALSE(stream_glob_match("exact", "exact2"));
  EXPECT_FALSE(stream_glob_match("db?", "db1"));  // only '*' is special
  EXPECT_TRUE(stream_glob_match("db?", "db?"));
}

TEST(AccessPolicy, TokenHash) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(AccessPolicy, KindsSeparateDuties) {
  std::string e = parse_error(
      "[[identity]]\nname = \"sender\"\nkind = \"service\"\nsource = [\"10.0.0.0/8\"]\nroles = [\"rw\"]\n"
      "[[role]]\nname = \"rw\"\nstreams = [\"*\"]\nactions = [\"ingest\", \"read\"]\n");
  EXPECT_NE(e.find("identity 'sender'"), std::string::npos) << e;
  EXPECT_NE(e.find("role 'rw'"), std::string::npos) << e;
  EXPECT_NE(e.find("action 'read'"), std::string::npos) << e;
  e = parse_error(
      "[[identity]]\nname = \"alice\"\nkind = \"human\"\ntoken_sha256 = \"" + sha256_hex("t") +
      "\"\nroles = [\"w\"]\n[[role]]\nname = \"w\"\nstreams = [\"x\"]\nactions = [\"verify\", \"ingest\"]\n");
  EXPECT_NE(e.find("identity 'alice'"), std::string::npos) << e;
  EXPECT_NE(e.find("action 'ingest'"), std::string::npos) << e;
  e = parse_error(
      "[[identity]]\nname = \"bot\"\nkind = \"service\"\nsource = \"10.0.0.0/8\"\nroles = [\"a\"]\n"
      "[[role]]\nname = \"a\"\nstreams = [\"x\"]\nactions = [\"admin\"]\n");
  EXPECT_NE(e.find("action 'admin'"), std::string::npos) << e;
  // The allowed combinations parse.
  parsed(
      "[[identity]]\nname = \"bot\"\nkind = \"service\"\nsource = \"10.0.0.0/8\"\nroles = [\"a\"]\n"
      "[[role]]\nname = \"a\"\nstreams = [\"x\"]\nactions = [\"ingest\", \"verify\", \"checkpoint\"]\n"
      "[[identity]]\nname = \"alice\"\nkind = \"human\"\ntoken_sha256 = \"" +
      sha256_hex("t") +
      "\"\nroles = [\"h\"]\n[[role]]\nname = \"h\"\nstreams = [\"*\"]\nactions = [\"read\", \"verify\", "
      "\"checkpoint\", \"admin\"]\n");
}

TEST(AccessPolicy, ConfigErrorsAreClear) {
  const std::string role = "[[role]]\nname = \"r\"\nstreams = [\"x\"]\nactions = [\"ingest\"]\n";
  const std::string id = "[[identity]]\nname = \"a\"\nkind = \"service\"\nsource = [\"10.0.0.0/8\"]\nroles = [\"r\"]\n";
  struct Case {
    std::string text, expect;
  };
  std::vector<Case> cases = {
      {id + "colour = \"blue\"\n" + role, "key 'colour' is not known"},
      {role + "[[identity]]\nname = \"a\"\nkind = \"service\"\nsource = [\"10.0.0.0/8\"]\nroles = [\"nope\"]\n",
       "role 'nope' is not defined"},
      {role + "[[identity]]\nname = \"a\"\nkind = \"service\"\nsource = [\"10.0.0.300/8\"]\n", "not an address range"},
      {role + "[[identity]]\nname = \"a\"\nkind = \"service\"\nsource = [\"10.0.0.1/8\"]\n", "past its prefix"},
      {role + "[[identity]]\nname = \"a\"\nkind = \"service\"\ntoken_sha256 = [\"abcd\"]\n", "not a SHA-256 in hex"},
      {role + "[[identity]]\nname = \"a\"\nkind = \"service\"\ntoken_sha256 = [\"" + std::string(63, 'a') + "g\"]\n",
       "not a hex digit"},
      {role + id + id, "an identity named 'a' is defined twice"},
      {role + role, "a role named 'r' is defined twice"},
      {role + "[[identity]]\nname = \"a\"\nkind = \"service\"\ntls_subject = \"CN=x\"\n"
              "[[identity]]\nname = \"b\"\nkind = \"service\"\ntls_subject = \"CN=x\"\n",
       "tls_subject 'CN=x' is already another identity's"},
      {role + "[[identity]]\nname = \"a\"\nkind = \"service\"\ntoken_sha256 = \"" + sha256_hex("t") + "\"\n" +
           "[[identity]]\nname = \"b\"\nkind = \"human\"\ntoken_sha256 = \"" + sha256_hex("t") + "\"\n",
       "token_sha256 entry is already another identity's"},
      {role + "[[identity]]\nname = \"a\"\nsource = \"10.0.0.0/8\"\n", "needs kind"},
      {role + "[[identity]]\nname = \"a\"\nkind = \"robot\"\nsource = \"10.0.0.0/8\"\n", "kind must be"},
      {role + "[[identity]]\nname = \"a\"\nkind = \"service\"\n", "needs a credential"},
      {"[[role]]\nname = \"r\"\nstreams = [\"x\"]\nactions = [\"write\"]\n", "action 'write' is not known"},
      {"[[role]]\nname = \"r\"\nactions = [\"read\"]\n", "needs streams"},
      {"[[role]]\nname = \"r\"\nstreams = [\"x\"]\nactions = [\"read\"]\nteam = \"ops\"\n", "key 'team' is not known"},
      {"[identity]\nname = \"a\"\n", "[[identity]] (an array of tables)"},
      {role + id + "[[route]]\nidentity = \"ghost\"\nstream = \"x\"\n", "identity 'ghost' is not defined"},
      {"[[route]]\nmatch = { colour = \"x\" }\nstream = \"x\"\n", "match.colour is not a field"},
      {"[[route]]\nmatch = { facility = \"local9\" }\nstream = \"x\"\n", "'local9' is not known"},
      {"[[route]]\nmatch = { severity = 9 }\nstream = \"x\"\n", "must be 0..7"},
      {"[[route]]\nmatch = { app_name = \"x\" }\n", "needs a stream"},
      {"[[route]]\nstream = \"bad/name\"\n", "not a valid stream name"},
      {"[[route]]\nstream = \"x\"\nwhere = \"y\"\n", "key 'where' is not known"},
      {"[[identity\n", "line 1"},
  };
  for (const Case& c : cases) {
    std::string e = parse_error(c.text);
    EXPECT_NE(e.find(c.expect), std::string::npos) << "expected '" << c.expect << "' in: " << e << "\nfor:\n" << c.text;
    EXPECT_NE(e.find("test.toml"), std::string::npos) << e;
  }
}

// The fields are views into the message: keep every message alive for the test.
SyslogFields fields_of(const char* msg) {
  static std::vector<std::unique_ptr<std::string>> kept;
  kept.push_back(std::make_unique<std::string>(msg));
  return parse_syslog(*kept.back());
}

TEST(SyslogRouter, FirstMatchWinsElseTheListenersStream) {
  AccessPolicy p = parsed(kPolicy);
  SyslogRouter router(&p, {"syslog-tls", "plain", "other"});
  EXPECT_TRUE(router.active(0));
  EXPECT_TRUE(router.active(1));  // rules without a listener apply to every listener
  const Identity* staging = p.find_identity("staging");
  const Identity* prod = p.find_identity("pg-prod");
  auto pg = fields_of("<134>1 2026-01-01T00:00:00Z db1.example postgres 42 - - LOG:  statement");
  EXPECT_EQ(router.route(0, prod, pg), 0);
  EXPECT_EQ(router.route(1, prod, pg), -1);  // rule 0 names listener syslog-tls
  auto other_host = fields_of("<134>1 2026-01-01T00:00:00Z web1 postgres 42 - - LOG:  statement");
  EXPECT_EQ(router.route(0, prod, other_host), -1);
  auto app = fields_of("<134>1 2026-01-01T00:00:00Z db1 nginx - - - hello");
  EXPECT_EQ(router.route(0, prod, app), -1);
  EXPECT_EQ(router.route(0, staging, app), 1);
  EXPECT_EQ(router.route(0, staging, pg), 0);                              // first match wins
  auto err = fields_of("<155>1 2026-01-01T00:00:00Z h app - - - failed");  // local3.err
  EXPECT_EQ(router.route(1, nullptr, err), 2);
  auto warn = fields_of("<156>1 2026-01-01T00:00:00Z h app - - - careful");  // local3.warning
  EXPECT_EQ(router.route(1, nullptr, warn), -1);
  auto rfc3164 = fields_of("<134>Jan  1 00:00:00 db1a postgres[99]: LOG:  x");
  EXPECT_EQ(router.route(0, nullptr, rfc3164), 0);
  EXPECT_EQ(router.route(0, nullptr, fields_of("not syslog at all")), -1);
  std::vector<std::string> t = router.targets(0);
  EXPECT_EQ(t, (std::vector<std::string>{"db-prod", "db-staging", "app-errors"}));
  EXPECT_EQ(router.targets(1), (std::vector<std::string>{"db-staging", "app-errors"}));

  AccessPolicy no_routes = parsed("");
  SyslogRouter idle(&no_routes, {"a"});
  EXPECT_FALSE(idle.active(0));
  SyslogRouter none(nullptr, {"a"});
  EXPECT_FALSE(none.active(0));
}

TEST(SyslogRouter, MatchesProcidAndMsgid) {
  AccessPolicy p = parsed("[[route]]\nmatch = { procid = \"4*\", msgid = \"ID47\" }\nstream = \"ids\"\n");
  SyslogRouter router(&p, {"l"});
  EXPECT_EQ(router.route(0, nullptr, fields_of("<34>1 2003-10-11T22:14:15.003Z h su 42 ID47 - m")), 0);
  EXPECT_EQ(router.route(0, nullptr, fields_of("<34>1 2003-10-11T22:14:15.003Z h su 52 ID47 - m")), -1);
  EXPECT_EQ(router.route(0, nullptr, fields_of("<34>1 2003-10-11T22:14:15.003Z h su 42 ID48 - m")), -1);
}

// Refusals: every one counted; the first logged and recorded at once; a flood
// becomes one `_audit` record per key per second with its count.
TEST(RefusalLog, AggregatesFloodsIntoAuditRecordsWithCounts) {
  test::TempDir tmp("refusals");
  test::TestKey key = test::make_soft_key(tmp.sub("key"));
  std::string data = tmp.sub("data");
  AccessPolicy p = parsed(kPolicy);
  const Identity* prod = p.find_identity("pg-prod");
  std::vector<std::string> lines;
  std::mutex mu;
  {
    auto store = engine::Store::open(io::posix_env(), data, key.signer(), test::small_options());
    ASSERT_TRUE(store.ok()) << store.status().to_string();
    RefusalLog log(store.value().get(), [&](const std::string& l) {
      std::lock_guard<std::mutex> lk(mu);
      lines.push_back(l);
    });
    for (int i = 0; i < 1000; ++i)
      log.refuse("syslog-udp-1", nullptr, "10.9.8.7", "app", RefusalReason::kUnknownIdentity, "record");
    for (int i = 0; i < 5; ++i)
      log.refuse("relp-1", prod, "10.1.1.1", "db-staging", RefusalReason::kNotAllowed, "record");
    EXPECT_EQ(log.total(), 1005u);
    std::string m;
    log.append_metrics(m);
    EXPECT_NE(
        m.find("logseal_refused_total{listener=\"syslog-udp-1\",stream=\"app\",reason=\"unknown-identity\"} 1000"),
        std::string::npos)
        << m;
    EXPECT_NE(m.find("logseal_refused_total{listener=\"relp-1\",stream=\"db-staging\",reason=\"not-allowed\"} 5"),
              std::string::npos)
        << m;
    {
      std::lock_guard<std::mutex> lk(mu);
      EXPECT_EQ(lines.size(), 2u);  // the first of each listener and reason
    }
    log.flush(false);  // within the second: nothing due yet
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    log.flush(false);
    log.refuse("syslog-udp-1", nullptr, "10.9.8.7", "app", RefusalReason::kUnknownIdentity, "record");
    log.stop();
    {
      std::lock_guard<std::mutex> lk(mu);
      ASSERT_EQ(lines.size(), 4u);  // stop() writes the counts not logged yet
      bool counted = lines[2].find("1000 more refusals") != std::string::npos ||
                     lines[3].find("1000 more refusals") != std::string::npos;
      EXPECT_TRUE(counted) << lines[2] << "\n" << lines[3];
    }
    ASSERT_TRUE(store.value()->close().ok());
  }
  auto recs = test::read_raws(io::posix_env(), data, "_audit");
  std::vector<std::string> texts;
  for (auto& [i, r] : recs) texts.push_back(r);
  // udp: 1 at once, 999 after a second, then 1 (the new refusal once due); relp: 1, then 4.
  ASSERT_EQ(texts.size(), 5u);
  auto count = [&](const std::string& listener, const std::string& n) {
    size_t found = 0;
    for (auto& t : texts) {
      if (t.find("\"listener\":\"" + listener + "\"") != std::string::npos &&
          t.find("\"count\":" + n + "}") != std::string::npos) {
        ++found;
      }
    }
    return found;
  };
  EXPECT_EQ(count("syslog-udp-1", "1"), 2u);
  EXPECT_EQ(count("syslog-udp-1", "999"), 1u);
  EXPECT_EQ(count("relp-1", "1"), 1u);
  EXPECT_EQ(count("relp-1", "4"), 1u);
  EXPECT_NE(texts[0].find("\"action\":\"access-refused\""), std::string::npos) << texts[0];
  EXPECT_NE(texts[0].find("\"source\":\"10.9.8.7\""), std::string::npos) << texts[0];
  EXPECT_NE(texts[1].find("\"identity\":\"pg-prod\""), std::string::npos) << texts[1];
  EXPECT_NE(texts[1].find("\"reason\":\"not-allowed\""), std::string::npos) << texts[1];
  auto kinds = test::verify_kinds(io::posix_env(), data, key);
  EXPECT_TRUE(kinds.empty()) << ::testing::PrintToString(kinds);
}

}  // namespace
}  // namespace logseal::ingest
