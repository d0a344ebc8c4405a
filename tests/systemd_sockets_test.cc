// Socket activation without systemd: the LISTEN_* protocol as
// take_passed_sockets() reads it, and listeners on sockets passed in (what
// logseald does with them). The same paths under a real systemd:
// tests/systemd/nspawn-test.
#include "ingest/systemd_sockets.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "ingest/net_address.h"
#include "ingest/syslog_server.h"
#include "tests/test_util.h"

namespace logseal {
namespace {

// Puts sockets at descriptors 3, 4, ... as systemd does, moving whatever this
// process had there out of the way and back afterwards.
class PassedFds {
 public:
  explicit PassedFds(const std::vector<int>& sockets) {
    for (size_t i = 0; i < sockets.size(); ++i) {
      int target = 3 + static_cast<int>(i);
      int saved = -1;
      if (::fcntl(target, F_GETFD) >= 0) saved = ::fcntl(target, F_DUPFD_CLOEXEC, 100);
      saved_.push_back(saved);
      EXPECT_EQ(::dup2(sockets[i], target), target);
      ::close(sockets[i]);
    }
  }
  ~PassedFds() {
    for (size_t i = 0; i < saved_.size(); ++i) {
      int target = 3 + static_cast<int>(i);
      if (saved_[i] >= 0) {
        ::dup2(saved_[i], target);
        ::close(saved_[i]);
      } else {
        ::close(target);
      }
    }
  }

 private:
  std::vector<int> saved_;
};

void set_listen_env(const std::string& pid, const std::string& fds, const char* names) {
  ::setenv("LISTEN_PID", pid.c_str(), 1);
  ::setenv("LISTEN_FDS", fds.c_str(), 1);
  if (names != nullptr) {
    ::setenv("LISTEN_FDNAMES", names, 1);
  } else {
    ::unsetenv("LISTEN_FDNAMES");
  }
}

std::string my_pid() { return std::to_string(::getpid()); }

int bound(bool tcp) {
  auto fd = ingest::bind_socket("127.0.0.1:0", tcp, "test");
  EXPECT_TRUE(fd.ok()) << fd.status().to_string();
  return fd.ok() ? fd.value() : -1;
}

uint16_t port_of(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

int connect_to(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

TEST(TakePassedSockets, NotActivatedGivesNothing) {
  ::unsetenv("LISTEN_PID");
  auto r = ingest::take_passed_sockets();
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
}

TEST(TakePassedSockets, VariablesMeantForAnotherProcessAreLeftAlone) {
  set_listen_env(std::to_string(::getpid() + 1), "1", "syslog");
  auto r = ingest::take_passed_sockets();
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  ::unsetenv("LISTEN_PID");
}

TEST(TakePassedSockets, NamesInOrderCloseOnExecAndTheEnvironmentCleared) {
  int a = bound(true), b = bound(false);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  // systemd passes them without FD_CLOEXEC.
  ::fcntl(a, F_SETFD, 0);
  ::fcntl(b, F_SETFD, 0);
  PassedFds fds({a, b});
  set_listen_env(my_pid(), "2", "syslog-tcp:relp");
  auto r = ingest::take_passed_sockets();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].fd, 3);
  EXPECT_EQ((*r)[0].name, "syslog-tcp");
  EXPECT_EQ((*r)[1].fd, 4);
  EXPECT_EQ((*r)[1].name, "relp");
  EXPECT_TRUE(::fcntl(3, F_GETFD) & FD_CLOEXEC);
  EXPECT_TRUE(::fcntl(4, F_GETFD) & FD_CLOEXEC);
  EXPECT_EQ(std::getenv("LISTEN_PID"), nullptr);
  EXPECT_EQ(std::getenv("LISTEN_FDS"), nullptr);
  EXPECT_EQ(std::getenv("LISTEN_FDNAMES"), nullptr);
}

TEST(TakePassedSockets, UnnamedSocketsAreUnknown) {
  int a = bound(true);
  PassedFds fds({a});
  set_listen_env(my_pid(), "1", nullptr);
  auto r = ingest::take_passed_sockets();
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].name, "unknown");
}

TEST(TakePassedSockets, MalformedVariablesAreErrors) {
  set_listen_env(my_pid(), "2", "only-one");
  auto r = ingest::take_passed_sockets();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("LISTEN_FDNAMES names 1 sockets, LISTEN_FDS says 2"), std::string::npos)
      << r.status().message();
  set_listen_env(my_pid(), "x", "a");
  r = ingest::take_passed_sockets();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("LISTEN_FDS 'x'"), std::string::npos) << r.status().message();
  set_listen_env("me", "1", "a");
  EXPECT_FALSE(ingest::take_passed_sockets().ok());
  EXPECT_EQ(std::getenv("LISTEN_PID"), nullptr);
}

class PassedListeners : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = test::make_soft_key(dir_.sub("key"));
    auto store = engine::Store::open(io::posix_env(), dir_.sub("data"), key_.signer(), test::small_options());
    ASSERT_TRUE(store.ok()) << store.status().to_string();
    store_ = std::move(store).value();
  }
  void TearDown() override {
    if (store_) {
      EXPECT_TRUE(store_->close().ok());
    }
  }
  test::TempDir dir_{"passed-listeners"};
  test::TestKey key_;
  std::unique_ptr<engine::Store> store_;
};

// The socket stays systemd's: records arrive through it, and after the server
// stops it still listens (a shutdown would end it for the next start too).
TEST_F(PassedListeners, RecordsArriveAndTheSocketsOutliveTheServer) {
  int tcp = bound(true), udp = bound(false);
  ASSERT_GE(tcp, 0);
  ASSERT_GE(udp, 0);
  ingest::ListenerSpec t;
  t.kind = ingest::ListenerSpec::Kind::kSyslogTcp;
  t.stream = "tcp";
  t.fd = tcp;
  ingest::ListenerSpec u;
  u.kind = ingest::ListenerSpec::Kind::kSyslogUdp;
  u.stream = "udp";
  u.fd = udp;
  ingest::ServerOptions options;
  options.threads = 2;  // both threads share each passed socket
  auto server = ingest::SyslogServer::start({t, u}, *store_, options);
  ASSERT_TRUE(server.ok()) << server.status().to_string();
  EXPECT_EQ((*server)->bound_address(0), "127.0.0.1:" + std::to_string(port_of(tcp)));

  int c = connect_to(port_of(tcp));
  ASSERT_GE(c, 0);
  std::string lines = "<13>1 - h a - - - one\n<13>1 - h a - - - two\n";
  ASSERT_EQ(::send(c, lines.data(), lines.size(), MSG_NOSIGNAL), static_cast<ssize_t>(lines.size()));
  ::close(c);
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port_of(udp));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string dgram = "<13>1 - h a - - - three";
  ::sendto(s, dgram.data(), dgram.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
  auto tcp_stream = store_->stream("tcp").value();
  auto udp_stream = store_->stream("udp").value();
  EXPECT_TRUE(tcp_stream->wait_durable(1, std::chrono::seconds(10)));
  EXPECT_TRUE(udp_stream->wait_durable(0, std::chrono::seconds(10)));
  (*server)->stop();
  server.value().reset();

  int listening = 0;
  socklen_t len = sizeof listening;
  ASSERT_EQ(::getsockopt(tcp, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len), 0);
  EXPECT_EQ(listening, 1) << "the passed TCP socket no longer listens";
  int again = connect_to(port_of(tcp));
  EXPECT_GE(again, 0) << "a connection to the passed socket after stop is refused";
  if (again >= 0) ::close(again);
  ASSERT_EQ(::sendto(s, dgram.data(), dgram.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a),
            static_cast<ssize_t>(dgram.size()));
  char buf[256];
  timeval tv{5, 0};
  ::setsockopt(udp, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  EXPECT_EQ(::recv(udp, buf, sizeof buf, 0), static_cast<ssize_t>(dgram.size()))
      << "the passed UDP socket no longer receives";
  ::close(s);
  ::close(tcp);
  ::close(udp);
}

TEST_F(PassedListeners, AStreamSocketForUdpIsRefusedByName) {
  int tcp = bound(true);
  ingest::ListenerSpec u;
  u.kind = ingest::ListenerSpec::Kind::kSyslogUdp;
  u.stream = "udp";
  u.fd = tcp;
  auto server = ingest::SyslogServer::start({u}, *store_, {});
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("syslog-udp needs ListenDatagram="), std::string::npos)
      << server.status().message();
  ::close(tcp);
}

}  // namespace
}  // namespace logseal
