// End to end with real components, as issue 4 asks: a real PostgreSQL 15 with
// pgaudit logging through syslog(3) to a real rsyslogd, which forwards over TCP to
// logseald; the pgaudit records that `logseal export` shows must equal the ones in
// the same run's csvlog, `--where` must answer audit questions, the csvlog and
// jsonlog backfills must give the same fields, and `logseal verify` must pass
// (including the reassembled records' check against their fragments).
//
// How PostgreSQL's syslog reaches a private rsyslogd without touching the host:
// syslog(3) always writes to /dev/log. PostgreSQL runs in a private mount
// namespace (unshare(CLONE_NEWNS), mounts private) where /dev is a fresh tmpfs
// holding links to the host's device nodes it needs (null, zero, urandom, ...), a
// private /dev/shm, and /dev/log -> the unix socket of rsyslogd's imuxsock input in
// the test directory. The host's /dev and /dev/log are never changed. This needs
// root (CI runs as root); PostgreSQL itself runs as nobody (initdb refuses root).
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "ingest/pg_logfile.h"
#include "ingest/pgaudit.h"
#include "tests/e2e_util.h"

namespace logseal::e2e {
namespace {

using namespace std::chrono_literals;

constexpr const char* kPgBin = "/usr/lib/postgresql/15/bin";
constexpr uid_t kNobody = 65534;
constexpr const char* kPrefix = "%m [%p] %q%u@%d %a %h ";

// A process run as nobody, optionally inside the private /dev described above.
// Everything the child needs is prepared before fork (the test is multi-threaded:
// the child only makes system calls until exec).
class PgProcess {
 public:
  PgProcess() = default;
  PgProcess(const PgProcess&) = delete;
  PgProcess& operator=(const PgProcess&) = delete;
  ~PgProcess() { stop(SIGKILL); }

  // dev_dir: when set, the host's /dev is bind-mounted there and /dev/log links to log_socket.
  bool start(const std::vector<std::string>& argv, const std::string& log, const std::string& dev_dir = "",
             const std::string& log_socket = "") {
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const char* devices[] = {"null", "zero", "full", "random", "urandom", "tty"};
    std::vector<std::string> dev_targets, dev_links;
    for (const char* d : devices) {
      dev_targets.push_back(dev_dir + "/" + d);
      dev_links.push_back(std::string("/dev/") + d);
    }
    pid_ = ::fork();
    if (pid_ != 0) return pid_ > 0;
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    if (!dev_dir.empty()) {
      if (::unshare(CLONE_NEWNS) != 0) ::_exit(120);
      // Nothing mounted here propagates back to the host.
      if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ::_exit(121);
      if (::mount("/dev", dev_dir.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) ::_exit(122);
      if (::mount("tmpfs", "/dev", "tmpfs", MS_NOSUID, "mode=0755") != 0) ::_exit(123);
      for (size_t i = 0; i < dev_targets.size(); ++i) {
        if (::symlink(dev_targets[i].c_str(), dev_links[i].c_str()) != 0) ::_exit(124);
      }
      if (::symlink("/proc/self/fd", "/dev/fd") != 0) ::_exit(124);
      if (::mkdir("/dev/shm", 01777) != 0 || ::mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0) {
        ::_exit(125);
      }
      if (::symlink(log_socket.c_str(), "/dev/log") != 0) ::_exit(126);
    }
    if (::getuid() == 0) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) ::_exit(127);
    }
    ::execv(args[0], args.data());
    ::_exit(127);
  }

  // Exit code (128 + signal), -1 when not started or at the timeout.
  int wait(Millis timeout) {
    if (pid_ <= 0) return -1;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      if (std::chrono::steady_clock::now() > deadline) return -1;
      std::this_thread::sleep_for(10ms);
    }
  }

  void stop(int sig, Millis timeout = 20000ms) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    if (wait(timeout) == -1 && pid_ > 0) {
      ::kill(pid_, SIGKILL);
      wait(5000ms);
    }
  }

  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

int run_as_nobody(const std::vector<std::string>& argv, const std::string& log) {
  PgProcess p;
  if (!p.start(argv, log)) return -1;
  return p.wait(60000ms);
}

// The fields of one pgaudit record as both sides present them.
struct Audit {
  std::string audit_type, class_name, command, object_type, object_name, statement, parameter;
  uint64_t statement_id = 0, substatement_id = 0;
  int64_t rows = -1;
  std::string user, database, application, client, time;
  int64_t pid = -1;
  auto key() const {
    return std::tie(pid, statement_id, substatement_id, audit_type, class_name, command, object_type, object_name,
                    statement, parameter, rows, user, database, application, client, time);
  }
  bool operator<(const Audit& o) const { return key() < o.key(); }
  bool operator==(const Audit& o) const { return key() == o.key(); }
};

std::ostream& operator<<(std::ostream& os, const Audit& a) {
  return os << "{pid " << a.pid << " " << a.statement_id << "/" << a.substatement_id << " " << a.audit_type << ","
            << a.class_name << "," << a.command << "," << a.object_type << "," << a.object_name << ", statement ["
            << a.statement << "] parameter [" << a.parameter << "] rows " << a.rows << " " << a.user << "@"
            << a.database << " " << a.application << " " << a.client << " " << a.time << "}";
}

std::vector<Audit> audits_from_csvlog(const std::string& csv) {
  std::vector<Audit> out;
  ingest::PgCsvlogReader reader;
  ingest::PgOnEntry on = [&](const ingest::PgEntry& e) {
    if (e.audit == nullptr) {
      EXPECT_TRUE(e.audit_status.ok()) << e.audit_status.to_string() << "\n" << e.text;
      return;
    }
    const ingest::AuditRecord& r = *e.audit;
    Audit a;
    a.audit_type = r.audit_type.view();
    a.class_name = r.class_name.view();
    a.command = r.command.view();
    a.object_type = r.object_type.view();
    a.object_name = r.object_name.view();
    a.statement = r.statement.view();
    a.parameter = r.parameter.view();
    a.statement_id = r.statement_id;
    a.substatement_id = r.substatement_id;
    a.rows = r.has_rows ? r.rows : -1;
    a.user = e.postgres.user;
    a.database = e.postgres.database;
    a.application = e.postgres.application;
    a.client = e.postgres.client;
    a.time = e.postgres.time;
    a.pid = e.postgres.pid;
    out.push_back(a);
  };
  EXPECT_TRUE(reader.feed(csv, on).ok());
  EXPECT_TRUE(reader.finish(on).ok());
  return out;
}

Audit audit_from_json(const Json& fields) {
  const Json& p = fields["pgaudit"];
  const Json& g = fields["postgres"];
  Audit a;
  a.audit_type = p["audit_type"].str();
  a.class_name = p["class"].str();
  a.command = p["command"].str();
  a.object_type = p["object_type"].str();
  a.object_name = p["object_name"].str();
  a.statement = p["statement"].str();
  a.parameter = p["parameter"].str();
  a.statement_id = static_cast<uint64_t>(p["statement_id"].number());
  a.substatement_id = static_cast<uint64_t>(p["substatement_id"].number());
  a.rows = p.has("rows") ? static_cast<int64_t>(p["rows"].number()) : -1;
  a.user = g["user"].str();
  a.database = g["database"].str();
  a.application = g["application"].str();
  a.client = g["client"].str();
  a.time = g["time"].str();
  a.pid = g.has("pid") ? static_cast<int64_t>(g["pid"].number()) : -1;
  return a;
}

std::vector<Json> parse_jsonl(const std::string& out) {
  std::vector<Json> v;
  for (const std::string& line : split_lines(out)) {
    auto j = Json::parse(line);
    EXPECT_TRUE(j.has_value()) << line;
    if (j) v.push_back(std::move(*j));
  }
  return v;
}

class PgauditSyslog : public ::testing::Test {
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
    if (RsyslogProcess::binary().empty()) GTEST_SKIP() << "rsyslogd not installed (scripts/install-deps)";
    if (::getuid() != 0) {
      GTEST_SKIP() << "needs root: PostgreSQL's syslog(3) goes to /dev/log, which only a private mount namespace "
                      "can point at a private rsyslogd without touching the host";
    }
  }
};

TEST_F(PgauditSyslog, ExportMatchesCsvlogAndVerifies) {
  auto t0 = std::chrono::steady_clock::now();
  TempDir tmp("pg-e2e");
  const std::string d = tmp.path();
  ASSERT_EQ(::chmod(d.c_str(), 0755), 0);
  const std::string pgdir = d + "/pg";  // PostgreSQL's own files, owned by nobody
  ASSERT_EQ(::mkdir(pgdir.c_str(), 0755), 0);
  ASSERT_EQ(::chown(pgdir.c_str(), kNobody, kNobody), 0);
  const std::string hostdev = d + "/hostdev";
  ASSERT_EQ(::mkdir(hostdev.c_str(), 0755), 0);
  const std::string sock = d + "/rsyslog/log.sock";
  const std::string pglog = d + "/postgres.out";

  // logseald from a TOML file: one TCP listener whose stream is PostgreSQL's.
  SoftKey key = make_soft_key(d + "/key");
  const std::string data = d + "/data";
  const std::string conf = d + "/logseald.toml";
  ASSERT_TRUE(write_file(conf, "data_dir = \"" + data + "\"\nsigner = \"soft:" + key.key_pem +
                                   "\"\nhttp = \"127.0.0.1:0\"\ncheckpoint_ms = 200\n"
                                   "[[listener]]\nkind = \"syslog-tcp\"\naddress = \"127.0.0.1:0\"\nstream = \"pg\"\n"
                                   "pg_log_line_prefix = \"" + std::string(kPrefix) + "\"\n"
                                   "pg_app_names = [\"postgres\"]\npg_flush_ms = 300\n"));
  DaemonConfig dc;
  dc.config_file = conf;
  dc.listeners = {{ListenerConfig::Kind::kTcp, "pg"}};
  Daemon daemon(dc, d + "/logseald.log");
  ASSERT_TRUE(daemon.start());

  // rsyslogd: imuxsock on a private socket (no /dev/log of its own), forwarding
  // everything as RFC 5424, octet-counted, to logseald.
  RsyslogProcess rsyslog(d + "/rsyslog");
  ASSERT_TRUE(rsyslog.start(R"(
global(workDirectory="{{WORKDIR}}" maxMessageSize="64k")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{{SOCKET}}" CreatePath="on" RateLimit.Interval="0" ruleset="forward")
ruleset(name="forward") {
  action(type="omfwd" target="127.0.0.1" port="{{TARGET_PORT}}" protocol="tcp" TCP_Framing="octet-counted"
         template="RSYSLOG_SyslogProtocol23Format" action.resumeRetryCount="-1")
}
)",
                            {{"SOCKET", sock}, {"TARGET_PORT", std::to_string(daemon.port("pg"))}}, {}));
  ASSERT_TRUE(wait_until([&] { return file_exists(sock); }, 10000ms)) << rsyslog.log();
  ASSERT_EQ(::chmod(sock.c_str(), 0666), 0);

  // PostgreSQL: private cluster, unix socket only, syslog + csvlog + jsonlog.
  ASSERT_EQ(run_as_nobody({std::string(kPgBin) + "/initdb", "-D", pgdir + "/data", "-U", "postgres", "--auth=trust",
                           "--no-sync", "-E", "UTF8", "--locale=C"},
                          pglog),
            0)
      << read_file(pglog);
  {
    std::ofstream c(pgdir + "/data/postgresql.conf", std::ios::app);
    c << "listen_addresses = ''\n"
      << "unix_socket_directories = '" << pgdir << "'\n"
      << "port = 5432\n"
      << "shared_preload_libraries = 'pgaudit'\n"
      << "log_destination = 'syslog,csvlog,jsonlog'\n"
      << "logging_collector = on\n"
      << "log_directory = '" << pgdir << "/log'\n"
      << "log_filename = 'pg.log'\n"
      << "syslog_facility = 'local0'\n"
      << "syslog_ident = 'postgres'\n"
      << "log_line_prefix = '" << kPrefix << "'\n"
      << "lc_messages = 'C'\n"
      << "fsync = off\n"
      << "pgaudit.log = 'all'\n"
      << "pgaudit.log_relation = on\n"
      << "pgaudit.log_parameter = on\n"
      << "pgaudit.log_rows = on\n"
      << "pgaudit.log_catalog = off\n";
  }
  PgProcess postgres;
  ASSERT_TRUE(postgres.start({std::string(kPgBin) + "/postgres", "-D", pgdir + "/data"}, pglog, hostdev, sock));
  int exited = -1;
  bool ready = wait_until(
      [&] {
        exited = postgres.wait(0ms);
        if (exited != -1) return true;
        return run({std::string(kPgBin) + "/pg_isready", "-q", "-h", pgdir, "-p", "5432"}, 5000ms).exit_code == 0;
      },
      30000ms, 100ms);
  ASSERT_EQ(exited, -1) << (exited >= 120 && exited <= 126
                                ? "could not set up PostgreSQL's private /dev (step " + std::to_string(exited - 119) +
                                      " of unshare, private mounts, bind, tmpfs, links, /dev/shm, /dev/log): the "
                                      "test needs CAP_SYS_ADMIN to make a mount namespace"
                                : "postgres exited with " + std::to_string(exited))
                        << "\n" << read_file(pglog);
  ASSERT_TRUE(ready) << "postgres did not start:\n" << read_file(pglog);

  // The workload: roles and grants (as postgres), then alice's DML, COPY, a
  // prepared statement with parameters, multi-line statements, quotes, commas,
  // non-ASCII text, and a statement longer than PostgreSQL's 900-byte syslog piece.
  std::string words;
  for (int i = 0; i < 120; ++i) words += "wörd" + std::to_string(i) + " ";
  const std::string admin_sql =
      "CREATE ROLE alice LOGIN;\n"
      "CREATE ROLE bob LOGIN;\n"
      "CREATE TABLE public.accounts (id int PRIMARY KEY, owner text, note text);\n"
      "CREATE TABLE public.other (id int);\n"
      "GRANT SELECT, INSERT, UPDATE ON public.accounts TO alice;\n"
      "GRANT SELECT ON public.other TO alice, bob;\n";
  const std::string alice_sql =
      "INSERT INTO public.accounts VALUES (1, 'Zoë 東京', 'says \"hi\", then ''bye''');\n"
      "SELECT id,\n\towner\n  FROM public.accounts\n WHERE note LIKE '%,%';\n"
      "PREPARE q (int, text) AS SELECT * FROM public.accounts WHERE id = $1 AND owner <> $2;\n"
      "EXECUTE q(1, 'a,b \"c\" ''d''');\n"
      "UPDATE public.accounts SET note = E'line1\\nline2' WHERE id = 1;\n"
      "COPY public.accounts (id, owner, note) FROM STDIN WITH (FORMAT csv);\n"
      "2,\"Ågot, Ørsted\",\"x \"\"y\"\"\"\n"
      "3,plain,\"multi\nline\"\n"
      "\\.\n"
      "INSERT INTO public.accounts VALUES (4, 'long', '" + words + "');\n"
      "SELECT count(*) FROM public.other;\n";
  const std::string bob_sql = "SELECT * FROM public.other WHERE id = 1;\n";
  for (auto [user, sql] : {std::pair<std::string, std::string>{"postgres", admin_sql}, {"alice", alice_sql},
                           {"bob", bob_sql}}) {
    std::string f = d + "/" + user + ".sql";
    ASSERT_TRUE(write_file(f, sql));
    RunResult r = run({std::string(kPgBin) + "/psql", "-X", "-q", "-h", pgdir, "-p", "5432", "-U", user, "-d",
                       "postgres", "-v", "ON_ERROR_STOP=1", "-f", f},
                      30000ms);
    ASSERT_EQ(r.exit_code, 0) << describe(r);
  }
  postgres.stop(SIGINT);  // fast shutdown; the logging collector writes its last rows first
  std::string csv = read_file(pgdir + "/log/pg.csv");
  std::string jsonlog = read_file(pgdir + "/log/pg.json");
  std::vector<Audit> want = audits_from_csvlog(csv);
  ASSERT_GE(want.size(), 14u) << csv;

  // Every AUDIT entry reaches logseald and is rebuilt (the last ones after pg_flush_ms).
  ASSERT_TRUE(wait_until(
      [&] {
        auto v = metric(daemon.metrics(), "logseal_pg_total", {"stream=\"pg\"", "what=\"audit\""});
        return v && *v >= static_cast<double>(want.size());
      },
      20000ms, 50ms))
      << daemon.metrics() << "\n" << rsyslog.log();
  EXPECT_TRUE(rsyslog.stop().has_value());
  std::optional<int> code = daemon.stop();
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << daemon.log();

  // export: each audit record once, with fields equal to the csvlog's.
  RunResult ex = run({logseal_path(), "export", data, "--stream", "pg", "--format", "jsonl"});
  ASSERT_EQ(ex.exit_code, 0) << describe(ex);
  std::vector<Json> records = parse_jsonl(ex.out);
  std::vector<Audit> got;
  size_t fragments = 0;
  for (const Json& r : records) {
    const Json& f = r["fields"];
    if (f.has("syslog")) {
      ++fragments;
      EXPECT_FALSE(f.has("pgaudit"));
      continue;
    }
    EXPECT_EQ(r["source"].str(), "pg-reassembly");
    ASSERT_TRUE(f.has("pgaudit")) << json_record_raw(r);
    EXPECT_FALSE(f.has("pg_error")) << json_record_raw(r);
    EXPECT_EQ(f["pg_flags"].array().size(), 0u) << json_record_raw(r);
    for (const Json& idx : f["pg_fragments"].array()) EXPECT_LT(idx.number(), r["index"].number());
    got.push_back(audit_from_json(f));
  }
  std::sort(want.begin(), want.end());
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got.size(), want.size());
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) EXPECT_EQ(got[i], want[i]) << "record " << i;
  EXPECT_GT(fragments, got.size());  // multi-line statements and the long one came in pieces

  // The workload's shapes are all there.
  auto count = [&](auto pred) { return std::count_if(got.begin(), got.end(), pred); };
  EXPECT_GE(count([](const Audit& a) { return a.class_name == "ROLE" && a.command == "GRANT"; }), 1);
  // pgaudit logs COPY ... FROM STDIN as a utility command: no object, the data not logged.
  EXPECT_GE(count([](const Audit& a) { return a.command == "COPY" && a.class_name == "WRITE"; }), 1);
  EXPECT_GE(count([](const Audit& a) { return a.statement.find("東京") != std::string::npos; }), 1);
  EXPECT_GE(count([](const Audit& a) { return a.statement.find("\n\towner\n") != std::string::npos; }), 1);
  EXPECT_GE(count([&](const Audit& a) { return a.statement.find(words) != std::string::npos; }), 1);
  EXPECT_GE(count([](const Audit& a) { return a.parameter == "1,\"a,b \"\"c\"\" 'd'\""; }), 1);

  // "Everything alice did on public.accounts", and a substring query.
  size_t alice_accounts = static_cast<size_t>(
      count([](const Audit& a) { return a.user == "alice" && a.object_name == "public.accounts"; }));
  EXPECT_GE(alice_accounts, 5u);
  RunResult q = run({logseal_path(), "export", data, "--where", "postgres.user=alice", "--where",
                     "pgaudit.object_name=public.accounts"});
  ASSERT_EQ(q.exit_code, 0) << describe(q);
  std::vector<Json> hits = parse_jsonl(q.out);
  EXPECT_EQ(hits.size(), alice_accounts);
  for (const Json& h : hits) {
    EXPECT_EQ(h["fields"]["postgres"]["user"].str(), "alice");
    EXPECT_EQ(h["fields"]["pgaudit"]["object_name"].str(), "public.accounts");
  }
  RunResult q2 = run({logseal_path(), "export", data, "--where", "pgaudit.statement~=東京", "--where",
                      "pgaudit.class=WRITE"});
  ASSERT_EQ(q2.exit_code, 0) << describe(q2);
  size_t tokyo_writes = static_cast<size_t>(
      count([](const Audit& a) { return a.class_name == "WRITE" && a.statement.find("東京") != std::string::npos; }));
  EXPECT_EQ(tokyo_writes, 1u);
  EXPECT_EQ(parse_jsonl(q2.out).size(), tokyo_writes);
  RunResult q3 = run({logseal_path(), "export", data, "--where", "syslog.app_name=postgres", "--format", "lines"});
  ASSERT_EQ(q3.exit_code, 0) << describe(q3);
  EXPECT_EQ(split_lines(q3.out).size(), fragments);

  // Backfill of the same run's csvlog and jsonlog: the same pgaudit records.
  for (auto [fmt, file] : {std::pair<std::string, std::string>{"pgaudit-csvlog", pgdir + "/log/pg.csv"},
                           {"pgaudit-jsonlog", pgdir + "/log/pg.json"}}) {
    RunResult in = run({logseal_path(), "ingest", data, "--stream", fmt, "--signer", "soft:" + key.key_pem,
                        "--format", fmt, file});
    ASSERT_EQ(in.exit_code, 0) << describe(in);
    RunResult be = run({logseal_path(), "export", data, "--stream", fmt, "--where", "pgaudit.class~="});
    ASSERT_EQ(be.exit_code, 0) << describe(be);
    std::vector<Audit> back;
    for (const Json& r : parse_jsonl(be.out)) back.push_back(audit_from_json(r["fields"]));
    std::sort(back.begin(), back.end());
    ASSERT_EQ(back.size(), want.size()) << fmt;
    for (size_t i = 0; i < back.size(); ++i) {
      Audit w = want[i];
      if (fmt == "pgaudit-jsonlog") {
        // jsonlog's timestamp is its own spelling; the rest is identical.
        back[i].time = w.time;
      }
      EXPECT_EQ(back[i], w) << fmt << " record " << i;
    }
  }

  // `report pg-roles` counts each reassembled audit record once, never its
  // fragments: per role, exactly the csvlog's records.
  RunResult rep = run({logseal_path(), "report", "pg-roles", data, "--stream", "pg", "--json"});
  ASSERT_EQ(rep.exit_code, 0) << describe(rep);
  std::optional<Json> rdoc = Json::parse(rep.out);
  ASSERT_TRUE(rdoc.has_value()) << rep.out;
  EXPECT_EQ(static_cast<size_t>((*rdoc)["pgaudit_records"].number()), want.size());
  std::map<std::string, size_t> want_per_role, got_per_role;
  for (const Audit& a : want) ++want_per_role[a.user.empty() ? "(unknown)" : a.user];
  for (const Json& r : (*rdoc)["roles"].array()) {
    got_per_role[r["role"].str()] = static_cast<size_t>(r["records"].number());
  }
  EXPECT_EQ(got_per_role, want_per_role) << rep.out;

  RunResult v = run({logseal_path(), "verify", data, "--pubkey", key.pub_pem});
  EXPECT_EQ(v.exit_code, 0) << describe(v);
  EXPECT_NE(v.out.find(std::to_string(want.size()) + " reassembled PostgreSQL records checked"), std::string::npos)
      << v.out;
  EXPECT_EQ(v.out.find("no reassembled record names"), std::string::npos) << v.out;
  std::printf("pgaudit e2e: %zu audit records, %zu syslog fragments, %.1f s\n", want.size(), fragments,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

// The captured corpus (../shared/corpus/run1-all: PostgreSQL + pgaudit via rsyslog)
// replayed to logseald over TCP octet-counted, TCP LF-framed and UDP, with the
// prefix given by flag and two ingest threads: every stream must rebuild exactly
// the run's 119 AUDIT records, equal to its csvlog, and verify.
TEST(PgauditCorpus, ReplayOverThreeTransportsMatchesCsvlog) {
  const std::string corpus = corpus_dir();
  std::string octet = read_file(corpus + "/run1-all/syslog-rfc5424-octet.conn001.raw");
  std::string lf = read_file(corpus + "/run1-all/syslog-rfc3164-lf.conn001.raw");
  std::string udp_raw = read_file(corpus + "/run1-all/syslog-rfc3164.udp.raw");
  std::string udp_idx = read_file(corpus + "/run1-all/syslog-rfc3164.udp.idx.jsonl");
  std::string csv = read_file(corpus + "/run1-all/postgresql.csv");
  if (corpus.empty() || octet.empty() || lf.empty() || udp_raw.empty() || csv.empty()) {
    GTEST_SKIP() << "corpus not found (set LOGSEAL_CORPUS)";
  }
  std::vector<std::string> dgrams;
  for (const std::string& line : split_lines(udp_idx)) {
    auto j = Json::parse(line);
    ASSERT_TRUE(j.has_value()) << line;
    dgrams.push_back(udp_raw.substr(static_cast<size_t>((*j)["offset"].number()),
                                    static_cast<size_t>((*j)["length"].number())));
  }
  ASSERT_EQ(dgrams.size(), 442u);
  std::vector<Audit> want = audits_from_csvlog(csv);
  ASSERT_EQ(want.size(), 119u);
  std::sort(want.begin(), want.end());

  TempDir tmp("pg-corpus");
  SoftKey key = make_soft_key(tmp.sub("key"));
  DaemonConfig dc;
  dc.data_dir = tmp.sub("data");
  dc.key_pem = key.key_pem;
  dc.listeners = {{ListenerConfig::Kind::kTcp, "octet"}, {ListenerConfig::Kind::kTcp, "lf"},
                  {ListenerConfig::Kind::kUdp, "udp"}};
  dc.extra_args = {"--pg-log-line-prefix", "%m [%p] user=%u db=%d app=%a client=%h ", "--ingest-threads", "2"};
  Daemon d(dc, tmp.sub("logseald.log"));
  ASSERT_TRUE(d.start());
  for (auto [stream, data] : {std::pair<std::string, std::string*>{"octet", &octet}, {"lf", &lf}}) {
    int fd = connect_tcp(d.port(stream));
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_all(fd, *data));
    ::close(fd);
  }
  int ufd = udp_socket();
  ASSERT_GE(ufd, 0);
  for (const std::string& g : dgrams) {
    ASSERT_TRUE(send_udp(ufd, d.port("udp"), g));
    std::this_thread::sleep_for(300us);
  }
  ::close(ufd);
  for (const char* stream : {"octet", "lf", "udp"}) {
    // 442 messages; the last AUDIT entries complete at the flush timer or at stop.
    EXPECT_TRUE(d.wait_records(stream, 442, 10000ms)) << stream << ": " << d.records(stream);
  }
  std::optional<int> code = d.stop();
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << d.log();
  for (const char* stream : {"octet", "lf", "udp"}) {
    RunResult ex = run({logseal_path(), "export", dc.data_dir, "--stream", stream, "--where", "pgaudit.class~="});
    ASSERT_EQ(ex.exit_code, 0) << describe(ex);
    std::vector<Audit> got;
    for (const Json& r : parse_jsonl(ex.out)) {
      EXPECT_EQ(r["fields"]["pg_flags"].array().size(), 0u) << json_record_raw(r);
      got.push_back(audit_from_json(r["fields"]));
    }
    std::sort(got.begin(), got.end());
    ASSERT_EQ(got.size(), want.size()) << stream;
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], want[i]) << stream << " record " << i;
  }
  RunResult v = run({logseal_path(), "verify", dc.data_dir, "--pubkey", key.pub_pem});
  EXPECT_EQ(v.exit_code, 0) << describe(v);
  std::vector<std::string> lines = split_lines(v.out);
  EXPECT_EQ(std::count_if(lines.begin(), lines.end(),
                          [](const std::string& l) {
                            return l.find("119 reassembled PostgreSQL records checked") != std::string::npos;
                          }),
            3)
      << v.out;
  EXPECT_EQ(v.out.find("no reassembled record names"), std::string::npos) << v.out;
}

}  // namespace
}  // namespace logseal::e2e
