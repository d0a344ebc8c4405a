// End-to-end: a real syslog-ng forwarding to logseald with the destinations the
// README shows: network() over TCP (RFC 3164, LF-framed) and syslog() over TCP
// (RFC 5424, octet-counted).
//
// syslog-ng-core conflicts with rsyslog in Debian, so, as ../shared/PEERS.md says,
// the package is downloaded (apt-get download) and unpacked (dpkg -x) into a cache
// under the build directory; its runtime libraries are ordinary packages that
// scripts/install-deps installs. Where the package cannot be downloaded the tests
// skip, saying so.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <thread>

#include "tests/e2e_util.h"

namespace logseal::e2e {
namespace {

// Returns the unpacked root (…/usr/sbin/syslog-ng inside), or "" with why set.
std::string syslog_ng_root(std::string* why) {
  std::string root = test_tmp_root() + "/peers/syslog-ng";
  if (file_exists(root + "/usr/sbin/syslog-ng")) return root;
  std::string dl = test_tmp_root() + "/peers/dl." + std::to_string(::getpid());
  std::error_code ec;
  std::filesystem::create_directories(dl, ec);
  if (ec) {
    *why = "cannot create " + dl + ": " + ec.message();
    return "";
  }
  // apt may be busy (another apt-get holding its cache lock): a few tries.
  RunResult get;
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::seconds(5));
    get = run({"/bin/sh", "-c", "cd '" + dl + "' && apt-get download syslog-ng-core"}, Millis(120000));
    if (get.exit_code == 0) break;
  }
  if (get.exit_code != 0) {
    *why = "apt-get download syslog-ng-core failed: " + describe(get);
    remove_tree(dl);
    return "";
  }
  RunResult x = run({"/bin/sh", "-c", "dpkg -x '" + dl + "'/syslog-ng-core_*.deb '" + dl + "/root' && mv -T '" + dl +
                                      "/root' '" + root + "' 2>/dev/null || test -x '" + root + "/usr/sbin/syslog-ng'"});
  remove_tree(dl);
  if (x.exit_code != 0 || !file_exists(root + "/usr/sbin/syslog-ng")) {
    *why = "dpkg -x of syslog-ng-core failed: " + describe(x);
    return "";
  }
  return root;
}

uint16_t free_tcp_port() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    uint16_t p = static_cast<uint16_t>(20000 + (std::rand() % 30000));
    if (!port_accepts(p)) return p;
  }
  return 0;
}

class SyslogNgForward : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    root_ = syslog_ng_root(&why);
    if (root_.empty()) GTEST_SKIP() << "syslog-ng not available: " << why;
    dir_ = std::make_unique<TempDir>("syslogng_e2e");
    key_ = make_soft_key(dir_->sub("key"));
  }

  // Runs syslog-ng with a tcp source on in_port and the given destination text
  // (with {{PORT}} for logseald's port), sends n messages into it, and checks
  // they all arrive in logseald's stream and verify.
  void forward(const std::string& destination, size_t n) {
    DaemonConfig cfg;
    cfg.data_dir = dir_->sub("data");
    cfg.key_pem = key_.key_pem;
    cfg.listeners.push_back({ListenerConfig::Kind::kTcp, "sng", 0});
    Daemon daemon(cfg, dir_->sub("logseald.log"));
    ASSERT_TRUE(daemon.start());
    uint16_t port = daemon.port("sng");
    uint16_t in_port = free_tcp_port();
    ASSERT_NE(in_port, 0);
    std::string dest = destination;
    dest.replace(dest.find("{{PORT}}"), 8, std::to_string(port));
    std::string conf = "@version: 3.38\n"
                       "options { keep-hostname(yes); };\n"
                       "source s_in { network(ip(\"127.0.0.1\") port(" +
                       std::to_string(in_port) +
                       ") transport(\"tcp\")); };\n"
                       "destination d_seal { " +
                       dest +
                       " };\n"
                       "log { source(s_in); destination(d_seal); };\n";
    std::string sng_dir = dir_->sub("sng");
    std::filesystem::create_directories(sng_dir);
    ASSERT_TRUE(write_file(sng_dir + "/sng.conf", conf));
    SpawnOptions o;
    o.env = {"LD_LIBRARY_PATH=" + root_ + "/usr/lib/syslog-ng:" + root_ + "/usr/lib/x86_64-linux-gnu",
             "SYSLOGNG_PREFIX=" + root_ + "/usr"};
    o.stderr_path = sng_dir + "/err.log";
    o.stdout_path = sng_dir + "/out.log";
    Child sng = Child::spawn({root_ + "/usr/sbin/syslog-ng", "-F", "-f", sng_dir + "/sng.conf", "-R",
                              sng_dir + "/persist", "-p", sng_dir + "/pid", "-c", sng_dir + "/ctl",
                              "--module-path=" + root_ + "/usr/lib/syslog-ng/3.38"},
                             o);
    ASSERT_TRUE(sng.started());
    ASSERT_TRUE(wait_until([&] { return port_accepts(in_port); }, Millis(15000)))
        << "syslog-ng did not listen: " << read_file(sng_dir + "/err.log");
    int fd = connect_tcp(in_port);
    ASSERT_GE(fd, 0);
    std::string batch;
    for (size_t i = 0; i < n; ++i) {
      batch += "<13>Nov 26 05:00:00 sender app[7]: syslog-ng forwarded message " + std::to_string(i) + "\n";
    }
    ASSERT_TRUE(send_all(fd, batch));
    ::close(fd);
    EXPECT_TRUE(daemon.wait_records("sng", n, Millis(20000)))
        << "logseald has " << daemon.records("sng") << " of " << n << "; syslog-ng: "
        << read_file(sng_dir + "/err.log");
    sng.stop(SIGTERM, Millis(10000));
    ASSERT_EQ(daemon.stop(), std::optional<int>(0));
    std::vector<std::string> records;
    ASSERT_TRUE(export_raw(cfg.data_dir, "sng", &records));
    std::set<size_t> seen;
    for (const auto& r : records) {
      size_t at = r.find("syslog-ng forwarded message ");
      ASSERT_NE(at, std::string::npos) << r;
      seen.insert(std::stoul(r.substr(at + 28)));
    }
    EXPECT_EQ(records.size(), n);
    EXPECT_EQ(seen.size(), n);
    RunResult v = verify(cfg.data_dir, key_.pub_pem);
    EXPECT_EQ(v.exit_code, 0) << describe(v);
  }

  std::string root_;
  std::unique_ptr<TempDir> dir_;
  SoftKey key_;
};

// README: destination d_seal { network("HOST" port(5514) transport("tcp")); };
TEST_F(SyslogNgForward, NetworkTcpLfFramed) { forward("network(\"127.0.0.1\" port({{PORT}}) transport(\"tcp\"));", 300); }

// README: destination d_seal { syslog("HOST" port(5514) transport("tcp")); };
TEST_F(SyslogNgForward, SyslogTcpOctetCounted) {
  forward("syslog(\"127.0.0.1\" port({{PORT}}) transport(\"tcp\"));", 300);
}

}  // namespace
}  // namespace logseal::e2e
