// End to end for `logseal report pg-roles` (issue 8, item 6): a real PostgreSQL 15
// with pgaudit, an over-privileged role `app` (granted ALL on every table and
// CREATE on the schema) that does its job and then some: reads payroll, deletes,
// creates and drops a table. PostgreSQL's csvlog of the run is sealed with
// `logseal ingest --format pgaudit-csvlog`; the report with a policy that allows
// only app's job must list exactly the records of the out-of-policy statements
// (counted independently from the csvlog), and `logseal prove` + `check-proof`
// must verify one of them.
//
// PostgreSQL runs as nobody when the test runs as root (initdb refuses root), on a
// unix socket in the test directory only; it is started and stopped by PID here.
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ingest/pg_logfile.h"
#include "ingest/pgaudit.h"
#include "tests/e2e_util.h"

namespace logseal::e2e {
namespace {

using namespace std::chrono_literals;

constexpr const char* kPgBin = "/usr/lib/postgresql/15/bin";
constexpr uid_t kNobody = 65534;

// fork + exec as nobody (when root), stdout/stderr appended to log. The child only
// makes system calls until exec (the test may have threads).
pid_t spawn_pg(const std::vector<std::string>& argv, const std::string& log) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd >= 0) {
    ::dup2(fd, 1);
    ::dup2(fd, 2);
  }
  if (::getuid() == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) ::_exit(126);
  }
  ::execv(args[0], args.data());
  ::_exit(127);
}

// Exit code, 128 + signal, or -1 at the timeout (the process is then left running).
int wait_pid(pid_t pid, Millis timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0 || std::chrono::steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(10ms);
  }
}

struct Audit {
  std::string user, class_name, command, object_name, statement;
};

std::vector<Audit> audits_from_csvlog(const std::string& csv) {
  std::vector<Audit> out;
  ingest::PgCsvlogReader reader;
  ingest::PgOnEntry on = [&](const ingest::PgEntry& e) {
    if (e.audit == nullptr) return;
    out.push_back({std::string(e.postgres.user), std::string(e.audit->class_name.view()),
                   std::string(e.audit->command.view()), std::string(e.audit->object_name.view()),
                   std::string(e.audit->statement.view())});
  };
  EXPECT_TRUE(reader.feed(csv, on).ok());
  EXPECT_TRUE(reader.finish(on).ok());
  return out;
}

class PgRoleReport : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* f : {"initdb", "postgres", "psql", "pg_isready"}) {
      if (::access((std::string(kPgBin) + "/" + f).c_str(), X_OK) != 0) {
        GTEST_SKIP() << "PostgreSQL 15 not installed (" << kPgBin << "/" << f
                     << "); scripts/install-deps installs postgresql-15 postgresql-15-pgaudit";
      }
    }
    if (::access("/usr/lib/postgresql/15/lib/pgaudit.so", R_OK) != 0) {
      GTEST_SKIP() << "pgaudit not installed; scripts/install-deps installs postgresql-15-pgaudit";
    }
  }

  void TearDown() override {
    if (pg_pid_ > 0) {
      ::kill(pg_pid_, SIGKILL);
      wait_pid(pg_pid_, 10000ms);
    }
  }

  pid_t pg_pid_ = -1;
};

TEST_F(PgRoleReport, OverPrivilegedRoleOutsidePolicyIsListedAndProvable) {
  auto t0 = std::chrono::steady_clock::now();
  TempDir tmp("pg-report-e2e");
  const std::string d = tmp.path();
  ASSERT_EQ(::chmod(d.c_str(), 0755), 0);
  const std::string pgdir = d + "/pg";
  ASSERT_EQ(::mkdir(pgdir.c_str(), 0755), 0);
  if (::getuid() == 0) {
    ASSERT_EQ(::chown(pgdir.c_str(), kNobody, kNobody), 0);
  }
  const std::string pglog = d + "/postgres.out";

  pid_t initdb = spawn_pg({std::string(kPgBin) + "/initdb", "-D", pgdir + "/data", "-U", "postgres", "--auth=trust",
                           "--no-sync", "-E", "UTF8", "--locale=C"},
                          pglog);
  ASSERT_EQ(wait_pid(initdb, 120000ms), 0) << read_file(pglog);
  {
    std::ofstream c(pgdir + "/data/postgresql.conf", std::ios::app);
    c << "listen_addresses = ''\n"
      << "unix_socket_directories = '" << pgdir << "'\n"
      << "port = 5432\n"
      << "shared_preload_libraries = 'pgaudit'\n"
      << "log_destination = 'csvlog'\n"
      << "logging_collector = on\n"
      << "log_directory = '" << pgdir << "/log'\n"
      << "log_filename = 'pg.log'\n"
      << "lc_messages = 'C'\n"
      << "fsync = off\n"
      << "pgaudit.log = 'all'\n"
      << "pgaudit.log_relation = on\n"
      << "pgaudit.log_parameter = on\n"
      << "pgaudit.log_catalog = off\n";
  }
  pg_pid_ = spawn_pg({std::string(kPgBin) + "/postgres", "-D", pgdir + "/data"}, pglog);
  ASSERT_GT(pg_pid_, 0);
  ASSERT_TRUE(wait_until(
      [&] {
        return run({std::string(kPgBin) + "/pg_isready", "-q", "-h", pgdir, "-p", "5432"}, 5000ms).exit_code == 0;
      },
      30000ms, 100ms))
      << "postgres did not start:\n"
      << read_file(pglog);

  // The administrator sets up tables and over-grants app; app then does its job
  // (orders and items) and, with the same grants, what it should not.
  const std::string admin_sql =
      "CREATE ROLE app LOGIN;\n"
      "CREATE TABLE public.orders (id int PRIMARY KEY, item int, qty int);\n"
      "CREATE TABLE public.items (id int PRIMARY KEY, name text);\n"
      "CREATE TABLE public.payroll (name text, salary int);\n"
      "INSERT INTO public.items VALUES (1, 'bolt');\n"
      "INSERT INTO public.payroll VALUES ('alice', 100);\n"
      "GRANT ALL ON ALL TABLES IN SCHEMA public TO app;\n"
      "GRANT CREATE ON SCHEMA public TO app;\n";
  const std::vector<std::string> allowed = {
      "INSERT INTO public.orders VALUES (1, 1, 2);",
      "SELECT * FROM public.orders WHERE id = 1;",
      "UPDATE public.orders SET qty = 3 WHERE id = 1;",
      "SELECT o.id, i.name FROM public.orders o JOIN public.items i ON i.id = o.item;",
  };
  const std::vector<std::string> forbidden = {
      "SELECT name, salary FROM public.payroll;",
      "DELETE FROM public.orders WHERE id = 1;",
      "CREATE TABLE public.scratch (x int);",
      "DROP TABLE public.scratch;",
  };
  std::string app_sql;
  for (size_t i = 0; i < allowed.size(); ++i) app_sql += allowed[i] + "\n" + forbidden[i] + "\n";
  for (auto [user, sql] : {std::pair<std::string, std::string>{"postgres", admin_sql}, {"app", app_sql}}) {
    std::string f = d + "/" + user + ".sql";
    ASSERT_TRUE(write_file(f, sql));
    RunResult r = run({std::string(kPgBin) + "/psql", "-X", "-q", "-h", pgdir, "-p", "5432", "-U", user, "-d",
                       "postgres", "-v", "ON_ERROR_STOP=1", "-f", f},
                      30000ms);
    ASSERT_EQ(r.exit_code, 0) << describe(r);
  }
  ::kill(pg_pid_, SIGINT);  // fast shutdown; the logging collector writes its last rows first
  ASSERT_EQ(wait_pid(pg_pid_, 30000ms), 0) << read_file(pglog);
  pg_pid_ = -1;
  const std::string csv_path = pgdir + "/log/pg.csv";
  std::string csv = read_file(csv_path);

  // What the csvlog says, independently of the report: app's records of the
  // forbidden statements are the ones to be listed; every other record is not.
  std::vector<Audit> audits = audits_from_csvlog(csv);
  size_t want_listed = 0, app_records = 0;
  std::set<std::string> forbidden_set(forbidden.begin(), forbidden.end());
  std::set<std::string> seen_forbidden;
  for (const Audit& a : audits) {
    if (a.user != "app") continue;
    ++app_records;
    if (forbidden_set.count(a.statement)) {
      ++want_listed;
      seen_forbidden.insert(a.statement);
    }
  }
  ASSERT_EQ(seen_forbidden, forbidden_set) << csv;  // pgaudit logged each of them
  ASSERT_GT(app_records, want_listed);

  SoftKey key = make_soft_key(d + "/key");
  const std::string data = d + "/data";
  RunResult in = run({logseal_path(), "ingest", data, "--stream", "pg", "--signer", "soft:" + key.key_pem, "--format",
                      "pgaudit-csvlog", csv_path});
  ASSERT_EQ(in.exit_code, 0) << describe(in);

  const std::string policy = d + "/policy.toml";
  ASSERT_TRUE(write_file(policy, R"(# app serves the shop: orders and items, no deletes, no DDL
[roles.app]
classes  = ["READ", "WRITE"]
commands = ["SELECT", "INSERT", "UPDATE"]
objects  = ["public.orders", "public.items*"]

[roles.postgres]
classes = ["READ", "WRITE", "FUNCTION", "ROLE", "DDL", "MISC", "MISC_SET"]
objects = ["*"]
)"));

  // JSON: the summary and exactly the out-of-policy records.
  RunResult rj = run({logseal_path(), "report", "pg-roles", data, "--stream", "pg", "--policy", policy, "--json"});
  ASSERT_EQ(rj.exit_code, 0) << describe(rj);
  std::optional<Json> doc = Json::parse(rj.out);
  ASSERT_TRUE(doc.has_value()) << rj.out;
  EXPECT_EQ(static_cast<size_t>((*doc)["pgaudit_records"].number()), audits.size());
  const Json* app = nullptr;
  std::set<std::string> role_names;
  for (const Json& r : (*doc)["roles"].array()) {
    role_names.insert(r["role"].str());
    if (r["role"].str() == "app") app = &r;
  }
  EXPECT_EQ(role_names, (std::set<std::string>{"app", "postgres"}));
  ASSERT_NE(app, nullptr);
  EXPECT_EQ(static_cast<size_t>((*app)["records"].number()), app_records);
  EXPECT_TRUE((*app)["classes"].has("DDL"));
  EXPECT_TRUE((*app)["commands"].has("DELETE"));
  bool payroll = false;
  for (const Json& o : (*app)["objects"].array()) payroll |= o["object_name"].str() == "public.payroll";
  EXPECT_TRUE(payroll);

  const std::vector<Json>& listed = (*doc)["violations"].array();
  EXPECT_EQ(listed.size(), want_listed) << rj.out;
  std::set<std::string> listed_statements;
  for (const Json& v : listed) {
    EXPECT_EQ(v["role"].str(), "app");
    EXPECT_TRUE(forbidden_set.count(v["statement"].str())) << v["statement"].str();
    EXPECT_TRUE(v["provable"].boolean());
    EXPECT_FALSE(v["reasons"].array().empty());
    listed_statements.insert(v["statement"].str());
  }
  EXPECT_EQ(listed_statements, forbidden_set);
  const uint64_t tree_size = static_cast<uint64_t>((*doc)["checkpoint"]["tree_size"].number());

  // The text form lists the same, one row each.
  RunResult rt = run({logseal_path(), "report", "pg-roles", data, "--stream", "pg", "--policy", policy});
  ASSERT_EQ(rt.exit_code, 0) << describe(rt);
  EXPECT_NE(
      rt.out.find("policy " + policy + ": " + std::to_string(want_listed) + " pgaudit records outside the policy"),
      std::string::npos)
      << rt.out;
  EXPECT_NE(rt.out.find("object public.payroll not allowed"), std::string::npos) << rt.out;
  EXPECT_NE(rt.out.find("command DELETE not allowed"), std::string::npos) << rt.out;
  EXPECT_NE(rt.out.find("class DDL not allowed"), std::string::npos) << rt.out;
  std::printf("%s", rt.out.c_str());

  // The proof reference works: prove the payroll read, check it offline.
  const Json* target = nullptr;
  for (const Json& v : listed) {
    if (v["object_name"].str() == "public.payroll") target = &v;
  }
  ASSERT_NE(target, nullptr);
  const std::string index = std::to_string(static_cast<uint64_t>((*target)["index"].number()));
  EXPECT_EQ((*target)["prove"].str(), "logseal prove " + data + " --stream pg --index " + index);
  RunResult pr = run({logseal_path(), "prove", data, "--stream", "pg", "--index", index});
  ASSERT_EQ(pr.exit_code, 0) << describe(pr);
  ASSERT_TRUE(write_file(d + "/proof.txt", pr.out));
  RunResult ck = run({logseal_path(), "check-proof", d + "/proof.txt", "--pubkey", key.pub_pem});
  ASSERT_EQ(ck.exit_code, 0) << describe(ck);
  EXPECT_NE(ck.out.find("VERIFIED: record " + index + " of stream pg is included in the checkpoint of " +
                        std::to_string(tree_size) + " records"),
            std::string::npos)
      << ck.out;
  EXPECT_NE(ck.out.find("public.payroll"), std::string::npos) << ck.out;

  // Without a policy: the summary only, no violations key filled.
  RunResult rs = run({logseal_path(), "report", "pg-roles", data, "--stream", "pg", "--json"});
  ASSERT_EQ(rs.exit_code, 0) << describe(rs);
  std::optional<Json> sdoc = Json::parse(rs.out);
  ASSERT_TRUE(sdoc.has_value()) << rs.out;
  EXPECT_TRUE((*sdoc)["policy"].is_null());
  EXPECT_FALSE(sdoc->has("violations"));

  // Usage and configuration errors exit 2 and say where.
  ASSERT_TRUE(write_file(d + "/bad.toml", "[roles.app]\nclasses = [\"READ\", \"SELEKT\"]\n"));
  RunResult bad = run({logseal_path(), "report", "pg-roles", data, "--stream", "pg", "--policy", d + "/bad.toml"});
  EXPECT_EQ(bad.exit_code, 2) << describe(bad);
  EXPECT_NE(bad.err.find("bad.toml line 2: unknown class 'SELEKT'"), std::string::npos) << bad.err;
  RunResult nostream = run({logseal_path(), "report", "pg-roles", data, "--stream", "nope"});
  EXPECT_EQ(nostream.exit_code, 2) << describe(nostream);
  RunResult nopolicy = run({logseal_path(), "report", "pg-roles", data, "--stream", "pg", "--policy", d + "/none"});
  EXPECT_EQ(nopolicy.exit_code, 2) << describe(nopolicy);

  std::printf("pg-roles e2e: %zu pgaudit records, %zu listed, %.1f s\n", audits.size(), want_listed,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

}  // namespace
}  // namespace logseal::e2e
