// End-to-end tests of logseald against real senders: util-linux `logger`, the
// captured traffic of /work/shared/corpus replayed byte for byte, abusive
// clients, SIGTERM in the middle of a stream, and the admin HTTP endpoint.
// Every daemon listens on 127.0.0.1 port 0; every wait is bounded.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e_util.h"

namespace logseal::e2e {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Kind = ListenerConfig::Kind;

class DaemonE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(file_exists(logseald_path())) << logseald_path() << " is missing (build the logseald target)";
    ASSERT_TRUE(file_exists(logseal_path())) << logseal_path() << " is missing (build the logseal target)";
    tmp_ = std::make_unique<TempDir>("daemon-e2e");
    ASSERT_FALSE(tmp_->path().empty());
    key_ = make_soft_key(tmp_->sub("key"));
    ASSERT_FALSE(HasFailure());
    data_dir_ = tmp_->sub("data");
  }

  std::unique_ptr<Daemon> make_daemon(std::vector<ListenerConfig> listeners, std::vector<std::string> extra = {},
                                      unsigned nofile_limit = 0) {
    DaemonConfig c;
    c.nofile_limit = nofile_limit;
    c.data_dir = data_dir_;
    c.key_pem = key_.key_pem;
    c.listeners = std::move(listeners);
    c.extra_args = std::move(extra);
    return std::make_unique<Daemon>(c, tmp_->sub("logseald-" + std::to_string(++daemons_) + ".log"));
  }

  // SIGTERM must drain, sign and exit 0 in bounded time.
  void stop_ok(Daemon& d) {
    auto t0 = Clock::now();
    auto code = d.stop(20s);
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    EXPECT_EQ(code, std::optional<int>(0)) << "logseald did not exit 0 on SIGTERM; its log:\n" << d.log();
    EXPECT_LT(s, 10.0) << "SIGTERM took " << s << " s";
  }

  // A clean run logs nothing at warning level or worse (<0>..<4>).
  void expect_no_warnings(const Daemon& d) {
    for (const auto& line : split_lines(d.log())) {
      bool bad = line.size() > 3 && line[0] == '<' && line[1] >= '0' && line[1] <= '4' && line[2] == '>';
      // Expected of every daemon without [[identity]] tables (README "Roles and retention").
      if (line.find("logseald: access control is off") != std::string::npos) bad = false;
      EXPECT_FALSE(bad) << "logseald logged: " << line;
    }
  }

  void expect_verified() {
    RunResult r = verify(data_dir_, key_.pub_pem);
    EXPECT_EQ(r.exit_code, 0) << "logseal verify: " << describe(r);
    EXPECT_NE(r.out.find("VERIFIED"), std::string::npos) << r.out;
  }

  std::unique_ptr<TempDir> tmp_;
  SoftKey key_;
  std::string data_dir_;
  int daemons_ = 0;
};

// Sends data in pieces of irregular sizes with short pauses, so frames are split
// across the daemon's reads at many different places.
bool send_in_pieces(int fd, std::string_view data) {
  static const size_t kSizes[] = {1, 2, 7, 64, 333, 1500, 4096, 17, 9000, 3, 700, 12000};
  size_t off = 0, k = 0;
  while (off < data.size()) {
    size_t n = std::min(kSizes[k % std::size(kSizes)], data.size() - off);
    if (!send_all(fd, data.substr(off, n))) return false;
    off += n;
    ++k;
    if (k % 6 == 0) std::this_thread::sleep_for(200us);
  }
  return true;
}

// Connects, sends, closes.
::testing::AssertionResult send_tcp(uint16_t port, std::string_view data, bool pieces = false) {
  int fd = connect_tcp(port);
  if (fd < 0) return ::testing::AssertionFailure() << "cannot connect to 127.0.0.1:" << port;
  bool ok = pieces ? send_in_pieces(fd, data) : send_all(fd, data);
  ::close(fd);
  if (!ok) return ::testing::AssertionFailure() << "send to 127.0.0.1:" << port << " failed";
  return ::testing::AssertionSuccess();
}

std::string printable(std::string_view s, size_t max = 300) {
  std::string o;
  for (char c : s.substr(0, max)) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      o += c;
    } else {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", u);
      o += b;
    }
  }
  if (s.size() > max) o += "...(" + std::to_string(s.size()) + " bytes)";
  return o;
}

// Records equal one by one (a readable first difference, not two huge dumps).
::testing::AssertionResult same_records(const std::vector<std::string>& got, const std::vector<std::string>& want) {
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    if (got[i] != want[i]) {
      return ::testing::AssertionFailure() << "record " << i << " differs:\n  got  " << printable(got[i])
                                           << "\n  want " << printable(want[i]);
    }
  }
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure() << got.size() << " records, expected " << want.size();
  }
  return ::testing::AssertionSuccess();
}

// The jsonl export agrees with the raw export, and no record is flagged as cut.
void expect_jsonl_matches(const std::string& data_dir, const std::string& stream,
                          const std::vector<std::string>& want) {
  std::vector<Json> js;
  ASSERT_TRUE(export_jsonl(data_dir, stream, &js));
  ASSERT_EQ(js.size(), want.size()) << "stream " << stream;
  for (size_t i = 0; i < js.size(); ++i) {
    EXPECT_EQ(js[i].get_string("stream"), stream);
    EXPECT_EQ(js[i]["index"].number(), static_cast<double>(i));
    EXPECT_EQ(json_record_raw(js[i]), want[i]) << "stream " << stream << " record " << i;
    EXPECT_FALSE(js[i]["truncated"].boolean()) << "stream " << stream << " record " << i;
  }
}

// ---------------------------------------------------------------------------------
// logger (util-linux) over TCP (LF and octet-counted) and UDP, RFC 5424 and 3164.

struct LoggerMode {
  std::string stream;
  bool tcp;
  bool octet;
  bool rfc5424;
};

TEST_F(DaemonE2E, LoggerRfc5424AndRfc3164OverTcpAndUdp) {
  std::string logger = find_program("logger");
  if (logger.empty()) GTEST_SKIP() << "logger (util-linux bsdutils) is not installed";
  const std::vector<LoggerMode> modes = {
      {"l5424-octet", true, true, true},  {"l5424-lf", true, false, true},   {"l5424-udp", false, false, true},
      {"l3164-octet", true, true, false}, {"l3164-lf", true, false, false}, {"l3164-udp", false, false, false},
  };
  std::vector<ListenerConfig> ls;
  for (const auto& m : modes) ls.push_back({m.tcp ? Kind::kTcp : Kind::kUdp, m.stream});
  auto d = make_daemon(ls);
  ASSERT_TRUE(d->start());

  constexpr int kLines = 25;
  std::map<std::string, std::vector<std::string>> texts;  // per stream, in send order
  for (const auto& m : modes) {
    std::string file;
    for (int i = 0; i < kLines; ++i) {
      char b[160];
      std::snprintf(b, sizeof b, "%s message %02d of %d: spaces, \"quotes\", [brackets], Zo\xc3\xab \xe6\x9d\xb1\xe4\xba\xac end",
                    m.stream.c_str(), i, kLines);
      texts[m.stream].push_back(b);
      file += std::string(b) + "\n";
    }
    std::string path = tmp_->sub(m.stream + ".txt");
    ASSERT_TRUE(write_file(path, file));
    std::vector<std::string> base = {logger, "-n", "127.0.0.1", "-P", std::to_string(d->port(m.stream))};
    base.push_back(m.tcp ? "-T" : "-d");
    if (m.octet) base.push_back("--octet-count");
    base.push_back(m.rfc5424 ? "--rfc5424" : "--rfc3164");
    base.insert(base.end(), {"-t", "e2e-" + m.stream, "-p", "user.notice"});
    // N lines from a file: one connection (or N datagrams).
    std::vector<std::string> argv = base;
    argv.insert(argv.end(), {"-f", path});
    RunResult r = run(argv, 20s);
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    ASSERT_TRUE(d->wait_records(m.stream, kLines)) << m.stream << ": " << d->records(m.stream) << " of " << kLines;
    // One message from the command line: a connection of its own.
    std::string single = "single message from the command line for " + m.stream;
    texts[m.stream].push_back(single);
    argv = base;
    argv.push_back(single);
    r = run(argv, 20s);
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    ASSERT_TRUE(d->wait_records(m.stream, kLines + 1)) << m.stream;
  }
  std::this_thread::sleep_for(100ms);  // nothing more may arrive
  for (const auto& m : modes) EXPECT_EQ(d->records(m.stream), kLines + 1u) << m.stream;
  stop_ok(*d);
  expect_no_warnings(*d);
  expect_verified();

  const std::regex head5424(R"(<13>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d) [^ ]+ (\S+) (\d+|-) - \[timeQuality [^\]]*\] )");
  const std::regex head3164(R"(<13>[A-Z][a-z][a-z] [ 0-9]\d \d\d:\d\d:\d\d [^ ]+ (\S+): )");
  for (const auto& m : modes) {
    SCOPED_TRACE(m.stream);
    std::vector<std::string> raws;
    ASSERT_TRUE(export_raw(data_dir_, m.stream, &raws));
    ASSERT_EQ(raws.size(), texts[m.stream].size());
    std::vector<Json> js;
    ASSERT_TRUE(export_jsonl(data_dir_, m.stream, &js));
    ASSERT_EQ(js.size(), raws.size());
    for (size_t i = 0; i < raws.size(); ++i) {
      const std::string& text = texts[m.stream][i];
      const std::string& raw = raws[i];
      // The raw bytes are logger's frame minus the framing: header, then the text.
      ASSERT_GE(raw.size(), text.size()) << printable(raw);
      EXPECT_EQ(raw.substr(raw.size() - text.size()), text) << "record " << i << ": " << printable(raw);
      std::string head = raw.substr(0, raw.size() - text.size());
      std::smatch hm;
      ASSERT_TRUE(std::regex_match(head, hm, m.rfc5424 ? head5424 : head3164))
          << "record " << i << " header: " << printable(head);
      EXPECT_EQ(hm[m.rfc5424 ? 3 : 1].str(), "e2e-" + m.stream);
      EXPECT_EQ(json_record_raw(js[i]), raw);
      EXPECT_FALSE(js[i].has("unparsed")) << "record " << i;
      EXPECT_FALSE(js[i].has("truncated")) << "record " << i;
      EXPECT_EQ(js[i].get_string("fields.syslog.app_name"), "e2e-" + m.stream) << "record " << i;
      EXPECT_EQ(js[i].get_string("fields.syslog.msg"), text) << "record " << i;
      EXPECT_EQ(js[i]["fields"]["syslog"]["facility"].number(), 1);
      EXPECT_EQ(js[i]["fields"]["syslog"]["severity"].number(), 5);
      EXPECT_EQ(js[i].get_string("source").rfind(m.tcp ? "tcp:127.0.0.1:" : "udp:127.0.0.1:", 0), 0u)
          << js[i].get_string("source");
    }
  }
}

// ---------------------------------------------------------------------------------
// Replay of the captured corpus over the transport it was captured on.

class CorpusReplay : public DaemonE2E {
 protected:
  void SetUp() override {
    corpus_ = corpus_dir();
    if (corpus_.empty()) GTEST_SKIP() << "no corpus (set LOGSEAL_CORPUS or put it at <source>/../shared/corpus)";
    DaemonE2E::SetUp();
  }
  std::string file(const std::string& rel) {
    std::string p = corpus_ + "/" + rel;
    std::string data = read_file(p);
    EXPECT_FALSE(data.empty()) << p << " is missing or empty";
    return data;
  }
  std::vector<std::string> octet_frames(const std::string& rel) {
    std::vector<std::string> frames;
    EXPECT_TRUE(parse_octet_frames(file(rel), &frames)) << rel << " is not octet-counted";
    return frames;
  }
  // A .udp.raw capture split into its datagrams by the .udp.idx.jsonl index.
  std::vector<std::string> datagrams(const std::string& raw_rel, const std::string& idx_rel) {
    std::string raw = file(raw_rel);
    std::vector<std::string> out;
    for (const auto& line : split_lines(file(idx_rel))) {
      auto j = Json::parse(line);
      EXPECT_TRUE(j.has_value()) << line;
      if (!j) continue;
      auto off = static_cast<size_t>((*j)["offset"].number());
      auto len = static_cast<size_t>((*j)["length"].number());
      EXPECT_LE(off + len, raw.size()) << line;
      if (off + len <= raw.size()) out.push_back(raw.substr(off, len));
    }
    return out;
  }
  // One datagram each, with a short pause: loopback should not drop at this rate.
  void send_datagrams(Daemon& d, const std::string& stream, const std::vector<std::string>& dgrams) {
    int fd = udp_socket();
    ASSERT_GE(fd, 0);
    for (const auto& g : dgrams) {
      ASSERT_TRUE(send_udp(fd, d.port(stream), g));
      std::this_thread::sleep_for(300us);
    }
    ::close(fd);
    bool all = d.wait_records(stream, dgrams.size(), 10s);
    EXPECT_TRUE(all) << stream << ": " << d.records(stream) << " of " << dgrams.size() << " datagrams arrived; "
                     << "kernel drops " << d.drops("udp_kernel_drop", stream).value_or(-1);
  }
  std::string corpus_;
};

TEST_F(CorpusReplay, Run1Rfc5424OctetCountedOverOneTcpConnection) {
  std::string capture = file("run1-all/syslog-rfc5424-octet.conn001.raw");
  auto frames = octet_frames("run1-all/syslog-rfc5424-octet.conn001.raw");
  ASSERT_EQ(frames.size(), 442u);
  auto d = make_daemon({{Kind::kTcp, "run1-octet"}});
  ASSERT_TRUE(d->start());
  ASSERT_TRUE(send_tcp(d->port("run1-octet"), capture, true));
  ASSERT_TRUE(d->wait_records("run1-octet", 442)) << d->records("run1-octet");
  stop_ok(*d);
  expect_verified();
  std::vector<std::string> recs;
  std::string raw;
  ASSERT_TRUE(export_raw(data_dir_, "run1-octet", &recs, &raw));
  EXPECT_TRUE(same_records(recs, frames));
  EXPECT_TRUE(raw == capture) << "export --format raw is not the capture byte for byte (" << raw.size() << " vs "
                              << capture.size() << " bytes)";
  expect_jsonl_matches(data_dir_, "run1-octet", frames);
  // 119 of the messages carry a pgaudit AUDIT record.
  EXPECT_EQ(std::count_if(recs.begin(), recs.end(), [](const std::string& r) { return r.find("AUDIT: ") != std::string::npos; }),
            119);
}

TEST_F(CorpusReplay, Run1Rfc3164LfFramedOverOneTcpConnection) {
  std::string capture = file("run1-all/syslog-rfc3164-lf.conn001.raw");
  auto lines = split_lines(capture);
  ASSERT_EQ(lines.size(), 442u);
  auto d = make_daemon({{Kind::kTcp, "run1-lf"}});
  ASSERT_TRUE(d->start());
  ASSERT_TRUE(send_tcp(d->port("run1-lf"), capture, true));
  ASSERT_TRUE(d->wait_records("run1-lf", 442)) << d->records("run1-lf");
  stop_ok(*d);
  expect_verified();
  std::vector<std::string> recs;
  ASSERT_TRUE(export_raw(data_dir_, "run1-lf", &recs));
  EXPECT_TRUE(same_records(recs, lines));
  expect_jsonl_matches(data_dir_, "run1-lf", lines);
}

TEST_F(CorpusReplay, Run1Rfc3164OverUdpOneDatagramEach) {
  auto dgrams = datagrams("run1-all/syslog-rfc3164.udp.raw", "run1-all/syslog-rfc3164.udp.idx.jsonl");
  ASSERT_EQ(dgrams.size(), 442u);
  auto d = make_daemon({{Kind::kUdp, "run1-udp"}});
  ASSERT_TRUE(d->start());
  send_datagrams(*d, "run1-udp", dgrams);
  EXPECT_EQ(d->drops("udp_kernel_drop", "run1-udp"), std::optional<double>(0));
  stop_ok(*d);
  expect_verified();
  std::vector<std::string> recs;
  ASSERT_TRUE(export_raw(data_dir_, "run1-udp", &recs));
  EXPECT_TRUE(same_records(recs, dgrams));
  expect_jsonl_matches(data_dir_, "run1-udp", dgrams);
}

TEST_F(CorpusReplay, LoggerDirectCapturesOverTheirTransports) {
  const std::vector<std::string> octet_files = {"logger-octet.conn001.raw", "logger-octet.conn002.raw",
                                                "logger-octet.conn003.raw", "logger-octet.conn004.raw",
                                                "logger-octet.conn005.raw", "logger-octet.conn006.raw",
                                                "logger-octet.conn007.raw"};
  const std::vector<std::string> lf_files = {"logger-lf.conn001.raw", "logger-lf.conn002.raw", "logger-lf.conn003.raw",
                                             "logger-lf.conn004.raw", "logger-lf.conn005.raw"};
  auto d = make_daemon({{Kind::kTcp, "logger-octet"}, {Kind::kTcp, "logger-lf"}, {Kind::kUdp, "logger-udp"}});
  ASSERT_TRUE(d->start());
  // One connection per captured connection, in order; each waits for its records.
  std::vector<std::string> want_octet, want_lf;
  std::string octet_bytes;
  for (const auto& f : octet_files) {
    std::string data = file("logger-direct/" + f);
    auto frames = octet_frames("logger-direct/" + f);
    want_octet.insert(want_octet.end(), frames.begin(), frames.end());
    octet_bytes += data;
    ASSERT_TRUE(send_tcp(d->port("logger-octet"), data));
    ASSERT_TRUE(d->wait_records("logger-octet", want_octet.size())) << f;
  }
  for (const auto& f : lf_files) {
    auto lines = split_lines(file("logger-direct/" + f));
    want_lf.insert(want_lf.end(), lines.begin(), lines.end());
    ASSERT_TRUE(send_tcp(d->port("logger-lf"), file("logger-direct/" + f)));
    ASSERT_TRUE(d->wait_records("logger-lf", want_lf.size())) << f;
  }
  auto dgrams = datagrams("logger-direct/logger.udp.raw", "logger-direct/logger.udp.idx.jsonl");
  send_datagrams(*d, "logger-udp", dgrams);
  // The corpus README: 11 octet-counted, 10 LF-framed, 11 datagrams.
  EXPECT_EQ(want_octet.size(), 11u);
  EXPECT_EQ(want_lf.size(), 10u);
  EXPECT_EQ(dgrams.size(), 11u);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(d->records("logger-octet"), want_octet.size());
  EXPECT_EQ(d->records("logger-lf"), want_lf.size());
  EXPECT_EQ(d->records("logger-udp"), dgrams.size());
  stop_ok(*d);
  expect_verified();

  std::vector<std::string> recs;
  std::string raw;
  ASSERT_TRUE(export_raw(data_dir_, "logger-octet", &recs, &raw));
  EXPECT_TRUE(same_records(recs, want_octet));
  EXPECT_TRUE(raw == octet_bytes) << "export --format raw differs from the captured frames";
  expect_jsonl_matches(data_dir_, "logger-octet", want_octet);
  ASSERT_TRUE(export_raw(data_dir_, "logger-lf", &recs));
  EXPECT_TRUE(same_records(recs, want_lf));
  expect_jsonl_matches(data_dir_, "logger-lf", want_lf);
  ASSERT_TRUE(export_raw(data_dir_, "logger-udp", &recs));
  EXPECT_TRUE(same_records(recs, dgrams));
  expect_jsonl_matches(data_dir_, "logger-udp", dgrams);

  // Parsed fields of a few known messages.
  std::vector<Json> js;
  ASSERT_TRUE(export_jsonl(data_dir_, "logger-octet", &js));
  ASSERT_EQ(js.size(), 11u);
  EXPECT_EQ(js[0].get_string("fields.syslog.app_name"), "pam_unix");
  EXPECT_EQ(js[0].get_string("fields.syslog.msgid"), "AUTH");
  EXPECT_NE(js[0].get_string("fields.syslog.msg").find("session opened for user"), std::string::npos);
  EXPECT_TRUE(js[3].has("raw_base64")) << "logger cut conn004 inside a UTF-8 character: raw must be base64";
  EXPECT_EQ(js[4].get_string("fields.syslog.app_name"), "sudo");
}

TEST_F(CorpusReplay, RsyslogSelfCapturesOctetAndLf) {
  std::string octet_capture = file("rsyslog-self/rsyslog-self-rfc5424-octet.conn001.raw");
  std::string lf_capture = file("rsyslog-self/rsyslog-self-rfc3164-lf.conn001.raw");
  auto frames = octet_frames("rsyslog-self/rsyslog-self-rfc5424-octet.conn001.raw");
  auto lines = split_lines(lf_capture);
  ASSERT_EQ(frames.size(), 62u);
  ASSERT_EQ(lines.size(), 62u);
  auto d = make_daemon({{Kind::kTcp, "self-octet"}, {Kind::kTcp, "self-lf"}});
  ASSERT_TRUE(d->start());
  ASSERT_TRUE(send_tcp(d->port("self-octet"), octet_capture, true));
  ASSERT_TRUE(send_tcp(d->port("self-lf"), lf_capture, true));
  ASSERT_TRUE(d->wait_records("self-octet", 62));
  ASSERT_TRUE(d->wait_records("self-lf", 62));
  stop_ok(*d);
  expect_verified();
  std::vector<std::string> recs;
  std::string raw;
  ASSERT_TRUE(export_raw(data_dir_, "self-octet", &recs, &raw));
  EXPECT_TRUE(same_records(recs, frames));
  EXPECT_TRUE(raw == octet_capture);
  expect_jsonl_matches(data_dir_, "self-octet", frames);
  ASSERT_TRUE(export_raw(data_dir_, "self-lf", &recs));
  EXPECT_TRUE(same_records(recs, lines));
  expect_jsonl_matches(data_dir_, "self-lf", lines);
}

// ---------------------------------------------------------------------------------
// Bad input never stops a listener and never corrupts a stream.

std::string prng_bytes(size_t n, uint64_t seed) {
  std::string s(n, '\0');
  uint64_t x = seed;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

std::string msg5424(const std::string& app, const std::string& text) {
  return "<13>1 2024-05-01T00:00:00.000000Z e2e-host " + app + " - - - " + text;
}

TEST_F(DaemonE2E, BadInputNeverStopsAListenerNorCorruptsTheStream) {
  auto d = make_daemon({{Kind::kTcp, "abuse"}, {Kind::kTcp, "probe"}, {Kind::kUdp, "abuse-udp"}});
  ASSERT_TRUE(d->start());
  const uint16_t port = d->port("abuse");
  uint64_t probes = 0;
  // Another client on another listener of the same ingest thread is still served.
  auto probe = [&](const std::string& after) -> ::testing::AssertionResult {
    auto sent = send_tcp(d->port("probe"), octet_frame(msg5424("probe", "probe after " + after)));
    if (!sent) return sent;
    ++probes;
    if (!d->wait_records("probe", probes, 10s)) {
      return ::testing::AssertionFailure() << "the daemon stopped serving after " << after;
    }
    return ::testing::AssertionSuccess();
  };

  // A control message before any abuse.
  const std::string control = msg5424("control", "control message sent before the abuse");
  ASSERT_TRUE(send_tcp(port, octet_frame(control)));
  ASSERT_TRUE(d->wait_records("abuse", 1));

  // 1. Garbage: 64 KiB of pseudo-random bytes, then the connection closes.
  ASSERT_TRUE(send_tcp(port, std::string("\xff\xfe garbage ", 11) + prng_bytes(64 * 1024, 0x9e3779b97f4a7c15ull)));
  ASSERT_TRUE(probe("garbage"));

  // 2. A 10 MiB octet-counted frame and a normal frame after it on the same connection.
  const size_t kBig = 10 * 1024 * 1024;
  std::string big_body = msg5424("big", "big frame ");
  big_body.resize(kBig, 'x');
  for (size_t i = 0; i < kBig; i += 4096) big_body[i] = static_cast<char>('A' + (i / 4096) % 26);
  const std::string after_big = msg5424("after-big", "the frame after the 10 MiB frame is intact");
  {
    int fd = connect_tcp(port);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_all(fd, octet_frame(big_body)));
    ASSERT_TRUE(send_all(fd, octet_frame(after_big)));
    ::close(fd);
  }
  ASSERT_TRUE(probe("10 MiB frame"));
  ASSERT_TRUE(wait_until([&] { return d->drops("truncated", "abuse").value_or(0) >= 1; }, 10s))
      << "the cut frame is not counted as truncated\n" << d->metrics();

  // 3. A frame length of 99999999999 (11 digits).
  double framing_before = d->drops("framing_error", "abuse").value_or(0) + d->drops("framing_fallback", "abuse").value_or(0);
  ASSERT_TRUE(send_tcp(port, "99999999999 " + msg5424("huge-length", "frame with an absurd length") + "\n"));
  ASSERT_TRUE(probe("99999999999"));
  EXPECT_TRUE(wait_until(
      [&] {
        return d->drops("framing_error", "abuse").value_or(0) + d->drops("framing_fallback", "abuse").value_or(0) >
               framing_before;
      },
      10s))
      << "an 11-digit frame length is neither refused nor counted as a framing fallback";

  // 4. Clients that send half a frame and stall (octet-counted and LF-framed).
  const std::string stall_octet_part = msg5424("stall-octet", "half of an octet-counted frame");
  const std::string stall_lf_part = msg5424("stall-lf", "half of an LF-framed line");
  int stall_octet = connect_tcp(port);
  int stall_lf = connect_tcp(port);
  ASSERT_GE(stall_octet, 0);
  ASSERT_GE(stall_lf, 0);
  ASSERT_TRUE(send_all(stall_octet, "300 " + stall_octet_part));
  ASSERT_TRUE(send_all(stall_lf, stall_lf_part));
  ASSERT_TRUE(wait_until([&] { return d->listener_metric("logseal_listener_connections_open", "abuse").value_or(0) == 2; }, 10s));
  uint64_t before_stalled = d->records("abuse");
  const std::string while_stalled = msg5424("while-stalled", "served while two clients stall mid-frame");
  ASSERT_TRUE(send_tcp(port, octet_frame(while_stalled)));
  ASSERT_TRUE(d->wait_records("abuse", before_stalled + 1)) << "a stalled client blocks the listener";
  ASSERT_TRUE(probe("stalled clients"));

  // 5. 1000 connections opened and dropped (some reset), nothing sent.
  double accepted_before = d->listener_metric("logseal_listener_connections_total", "abuse").value_or(0);
  {
    std::vector<int> fds;
    for (int i = 0; i < 1000; ++i) {
      int fd = connect_tcp(port);
      ASSERT_GE(fd, 0) << "connection " << i << " refused";
      fds.push_back(fd);
      if (fds.size() == 100) {
        for (size_t k = 0; k < fds.size(); ++k) {
          if (k % 3 == 0) {
            linger lg{1, 0};  // close with RST
            ::setsockopt(fds[k], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
          }
          ::close(fds[k]);
        }
        fds.clear();
      }
    }
    for (int fd : fds) ::close(fd);
  }
  EXPECT_TRUE(wait_until(
      [&] { return d->listener_metric("logseal_listener_connections_total", "abuse").value_or(0) >= accepted_before + 1000; },
      10s))
      << d->metrics();
  EXPECT_TRUE(wait_until([&] { return d->listener_metric("logseal_listener_connections_open", "abuse").value_or(-1) == 2; },
                         10s))
      << "connections leak: " << d->listener_metric("logseal_listener_connections_open", "abuse").value_or(-1)
      << " open, expected the 2 stalled ones";
  uint64_t before_flood = d->records("abuse");
  const std::string after_flood = msg5424("after-flood", "a normal message after 1000 dropped connections");
  ASSERT_TRUE(send_tcp(port, octet_frame(after_flood)));
  ASSERT_TRUE(d->wait_records("abuse", before_flood + 1)) << "not served after 1000 dropped connections";
  ASSERT_TRUE(probe("1000 connections"));

  // 6. UDP: a garbage datagram and an empty one, then a normal datagram.
  const std::string udp_garbage = std::string("\xff\x00\x01 not syslog ", 15) + prng_bytes(300, 7);
  const std::string udp_normal = msg5424("udp-after", "a normal datagram after garbage and an empty one");
  {
    int fd = udp_socket();
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_udp(fd, d->port("abuse-udp"), udp_garbage));
    ASSERT_TRUE(send_udp(fd, d->port("abuse-udp"), ""));
    ASSERT_TRUE(send_udp(fd, d->port("abuse-udp"), udp_normal));
    ::close(fd);
  }
  ASSERT_TRUE(d->wait_records("abuse-udp", 2));
  EXPECT_TRUE(d->running());
  HttpResponse h = http_get(d->http_port(), "/healthz");
  EXPECT_EQ(h.status, 200) << h.body;

  // SIGTERM with the two stalled clients still connected.
  stop_ok(*d);
  ::close(stall_octet);
  ::close(stall_lf);
  expect_verified();

  std::vector<std::string> recs;
  ASSERT_TRUE(export_raw(data_dir_, "abuse", &recs));
  std::vector<Json> js;
  ASSERT_TRUE(export_jsonl(data_dir_, "abuse", &js));
  ASSERT_EQ(js.size(), recs.size());
  ASSERT_FALSE(recs.empty());
  EXPECT_EQ(recs[0], control) << "the control message sent before the abuse changed";
  auto find = [&](const std::string& want) -> long {
    auto it = std::find(recs.begin(), recs.end(), want);
    return it == recs.end() ? -1 : static_cast<long>(it - recs.begin());
  };
  // The 10 MiB frame: cut to 64 KiB, flagged, and the stream stays in sync.
  long cut = find(big_body.substr(0, 64 * 1024));
  ASSERT_GE(cut, 0) << "no record holds the first 64 KiB of the 10 MiB frame";
  EXPECT_TRUE(js[static_cast<size_t>(cut)]["truncated"].boolean()) << "the cut record is not flagged truncated";
  ASSERT_LT(static_cast<size_t>(cut) + 1, recs.size());
  EXPECT_EQ(recs[static_cast<size_t>(cut) + 1], after_big) << "the frame after the 10 MiB frame is not intact";
  EXPECT_FALSE(js[static_cast<size_t>(cut) + 1].has("truncated"));
  EXPECT_GE(find(while_stalled), 0);
  EXPECT_GE(find(after_flood), 0);
  for (size_t i = 0; i < recs.size(); ++i) {
    EXPECT_LE(recs[i].size(), 64u * 1024) << "record " << i << " is over the 64 KiB limit";
  }
  // Everything read is committed before a clean exit: the stalled clients' partial
  // messages are kept, flagged as cut.
  long lf_part = find(stall_lf_part);
  EXPECT_GE(lf_part, 0) << "the partial LF line read before SIGTERM is lost";
  if (lf_part >= 0) {
    EXPECT_TRUE(js[static_cast<size_t>(lf_part)]["truncated"].boolean());
  }
  long octet_part = find(stall_octet_part);
  EXPECT_GE(octet_part, 0) << "the partial octet-counted frame read before SIGTERM is lost";
  if (octet_part >= 0) {
    EXPECT_TRUE(js[static_cast<size_t>(octet_part)]["truncated"].boolean());
  }

  ASSERT_TRUE(export_raw(data_dir_, "abuse-udp", &recs));
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0], udp_garbage);
  EXPECT_EQ(recs[1], udp_normal);
  ASSERT_TRUE(export_jsonl(data_dir_, "abuse-udp", &js));
  ASSERT_EQ(js.size(), 2u);
  EXPECT_TRUE(js[0]["unparsed"].boolean()) << "garbage must be kept raw and flagged unparsed";
  EXPECT_EQ(js[1].get_string("fields.syslog.app_name"), "udp-after");

  ASSERT_TRUE(export_raw(data_dir_, "probe", &recs));
  EXPECT_EQ(recs.size(), probes);
}

// ---------------------------------------------------------------------------------
// SIGTERM while senders are mid-stream; restart on the same data directory.

std::string mid_octet_msg(uint64_t i) {
  char b[96];
  std::snprintf(b, sizeof b, "<13>1 2024-05-01T00:00:00.000000Z e2e-host sigterm-a - - - A seq=%08llu ",
                static_cast<unsigned long long>(i));
  return std::string(b) + std::string(i % 211, static_cast<char>('a' + i % 26));
}
std::string mid_lf_msg(uint64_t i) {
  char b[96];
  std::snprintf(b, sizeof b, "<13>May  1 00:00:00 e2e-host sigterm-b: B seq=%08llu ", static_cast<unsigned long long>(i));
  return std::string(b) + std::string(i % 173, static_cast<char>('A' + i % 26));
}

// Sends numbered messages as fast as a throttle allows, in chunks that split
// frames, until stopped or the connection fails. Counts the frames whose every
// byte the kernel accepted.
class Sender {
 public:
  Sender(uint16_t port, bool octet) : port_(port), octet_(octet) {}
  ~Sender() { join(); }
  void start() { thread_ = std::thread([this] { run(); }); }
  void stop() { stop_.store(true); }
  void join() {
    stop();
    if (thread_.joinable()) thread_.join();
  }
  uint64_t frames_sent() const { return frames_sent_.load(); }
  bool connected() const { return connected_.load(); }
  std::string wire(uint64_t i) const { return octet_ ? octet_frame(mid_octet_msg(i)) : mid_lf_msg(i) + "\n"; }

 private:
  void run() {
    int fd = connect_tcp(port_);
    if (fd < 0) return;
    connected_.store(true);
    timeval tv{0, 100 * 1000};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    std::string buf;
    std::vector<uint64_t> ends;  // cumulative end offset of each frame in buf
    uint64_t next = 0, sent = 0, base = 0;
    size_t done_frames = 0, k = 0;
    static const size_t kChunk[] = {5000, 77, 1, 1200, 9000, 333, 64};
    while (!stop_.load()) {
      if (buf.size() - (sent - base) < 32 * 1024) {
        // Throttle: about 200 frames per 4 ms.
        std::this_thread::sleep_for(4ms);
        buf.erase(0, sent - base);
        base = sent;
        for (int n = 0; n < 200; ++n) {
          buf += wire(next++);
          ends.push_back(base + buf.size());
        }
      }
      size_t off = sent - base;
      size_t n = std::min(kChunk[k++ % std::size(kChunk)], buf.size() - off);
      ssize_t r = ::send(fd, buf.data() + off, n, MSG_NOSIGNAL);
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
      if (r <= 0) break;  // reset or closed by the daemon
      sent += static_cast<uint64_t>(r);
      while (done_frames < ends.size() && ends[done_frames] <= sent) ++done_frames;
      frames_sent_.store(done_frames);
    }
    ::close(fd);
  }

  uint16_t port_;
  bool octet_;
  std::thread thread_;
  std::atomic<bool> stop_{false}, connected_{false};
  std::atomic<uint64_t> frames_sent_{0};
};

TEST_F(DaemonE2E, SigtermMidStreamCommitsEverythingReadAndRestartContinues) {
  auto d = make_daemon({{Kind::kTcp, "mid"}});
  ASSERT_TRUE(d->start());
  // Watches /metrics until the daemon is gone: the highest record count it reported.
  std::atomic<bool> poll_stop{false};
  std::atomic<uint64_t> max_seen{0};
  uint16_t http = d->http_port();
  std::thread poller([&] {
    while (!poll_stop.load()) {
      HttpResponse r = http_get(http, "/metrics", 1000ms);
      if (r.status == 200) {
        auto v = metric(r.body, "logseal_stream_records_total", {"stream=\"mid\""});
        if (v && static_cast<uint64_t>(*v) > max_seen.load()) max_seen.store(static_cast<uint64_t>(*v));
      }
      std::this_thread::sleep_for(2ms);
    }
  });
  Sender a(d->port("mid"), true), b(d->port("mid"), false);
  a.start();
  b.start();
  ASSERT_TRUE(d->wait_records("mid", 5000, 15s)) << d->records("mid");
  std::this_thread::sleep_for(300ms);
  uint64_t before_signal = d->records("mid");
  uint64_t a_before = a.frames_sent(), b_before = b.frames_sent();
  // The senders keep sending through the shutdown.
  auto t0 = Clock::now();
  auto code = d->stop(30s);
  double stop_s = std::chrono::duration<double>(Clock::now() - t0).count();
  a.join();
  b.join();
  poll_stop.store(true);
  poller.join();
  ASSERT_EQ(code, std::optional<int>(0)) << d->log();
  EXPECT_LT(stop_s, 10.0) << "SIGTERM with active senders took " << stop_s << " s";
  std::printf("[ info ] SIGTERM to exit: %.2f s; %llu records before the signal, max seen %llu; sent A %llu B %llu\n",
              stop_s, static_cast<unsigned long long>(before_signal), static_cast<unsigned long long>(max_seen.load()),
              static_cast<unsigned long long>(a.frames_sent()), static_cast<unsigned long long>(b.frames_sent()));
  expect_verified();

  std::vector<std::string> recs;
  ASSERT_TRUE(export_raw(data_dir_, "mid", &recs));
  std::vector<Json> js;
  ASSERT_TRUE(export_jsonl(data_dir_, "mid", &js));
  ASSERT_EQ(js.size(), recs.size());
  const uint64_t exported = recs.size();
  EXPECT_GE(exported, before_signal);
  EXPECT_GE(exported, max_seen.load()) << "the daemon reported more appended records than it committed";
  // Each sender's records are its messages, in order, none missing in between.
  // The one exception is a sender's last record: the bytes of the frame it was
  // in the middle of when the daemon stopped reading (a prefix of what it was
  // sending), kept and flagged truncated.
  uint64_t na = 0, nb = 0;
  bool a_cut = false, b_cut = false;
  auto prefix_of = [](const std::string& whole, const std::string& part) { return whole.rfind(part, 0) == 0; };
  for (size_t i = 0; i < recs.size(); ++i) {
    const std::string& r = recs[i];
    bool truncated = js[i]["truncated"].boolean();
    if (!truncated && !a_cut && r == mid_octet_msg(na)) {
      ++na;
    } else if (!truncated && !b_cut && r == mid_lf_msg(nb)) {
      ++nb;
    } else if (truncated && !a_cut && (prefix_of(octet_frame(mid_octet_msg(na)), r) || prefix_of(mid_octet_msg(na), r))) {
      a_cut = true;
    } else if (truncated && !b_cut && prefix_of(mid_lf_msg(nb), r)) {
      b_cut = true;
    } else {
      FAIL() << "record " << i << (truncated ? " (truncated)" : "") << " is not the next message of either sender "
             << "(A expects " << na << (a_cut ? ", already cut" : "") << ", B expects " << nb
             << (b_cut ? ", already cut" : "") << "): " << printable(r);
    }
  }
  std::printf("[ info ] committed: A %llu%s, B %llu%s\n", static_cast<unsigned long long>(na), a_cut ? " + a cut frame" : "",
              static_cast<unsigned long long>(nb), b_cut ? " + a cut line" : "");
  EXPECT_LE(na, a.frames_sent());
  EXPECT_LE(nb, b.frames_sent());
  // Both senders were mid-stream: each had frames committed before the signal.
  EXPECT_GT(na, 0u);
  EXPECT_GT(nb, 0u);
  EXPECT_GT(a_before, 0u);
  EXPECT_GT(b_before, 0u);

  // Restart on the same data directory: it recovers exactly what was committed.
  auto d2 = make_daemon({{Kind::kTcp, "mid"}});
  ASSERT_TRUE(d2->start());
  EXPECT_EQ(d2->stream_metric("logseal_stream_durable_records", "mid"), std::optional<double>(exported))
      << "after restart the stream does not hold what was committed";
  std::string more;
  for (int i = 0; i < 100; ++i) more += octet_frame(msg5424("after-restart", "C seq=" + std::to_string(i)));
  ASSERT_TRUE(send_tcp(d2->port("mid"), more, true));
  ASSERT_TRUE(d2->wait_records("mid", 100));
  stop_ok(*d2);
  expect_verified();
  std::vector<std::string> recs2;
  ASSERT_TRUE(export_raw(data_dir_, "mid", &recs2));
  ASSERT_EQ(recs2.size(), exported + 100);
  EXPECT_TRUE(std::equal(recs.begin(), recs.end(), recs2.begin())) << "records committed before the restart changed";
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(recs2[exported + static_cast<size_t>(i)], msg5424("after-restart", "C seq=" + std::to_string(i)));
  }
}

std::vector<int> open_connections(uint16_t port, int n) {
  std::vector<int> fds;
  for (int i = 0; i < n; ++i) {
    int fd = connect_tcp(port, 2000ms);
    if (fd >= 0) fds.push_back(fd);
  }
  return fds;
}

// ---------------------------------------------------------------------------------
// Segments roll at --segment-bytes and on SIGHUP; sealed ones are made immutable
// (as root); the stream verifies and exports whole across them.

TEST_F(DaemonE2E, SegmentsRollOnSizeAndSighupAndStayVerifiable) {
  auto d = make_daemon({{Kind::kTcp, "roll"}}, {"--segment-bytes", "65536"});
  ASSERT_TRUE(d->start());
  std::vector<std::string> sent;
  auto send_batch = [&](int first, int n) {
    std::string wire;
    for (int i = first; i < first + n; ++i) {
      sent.push_back(msg5424("roll", "record " + std::to_string(i) + " " + std::string(static_cast<size_t>(i % 150), 'r')));
      wire += octet_frame(sent.back());
    }
    ASSERT_TRUE(send_tcp(d->port("roll"), wire, true));
    ASSERT_TRUE(d->wait_records("roll", sent.size()));
  };
  // Five bursts of about 60 KB of records (with their fields) each, each durable
  // before the next: a segment rolls when the next batch would pass 64 KiB.
  for (int b = 0; b < 5; ++b) {
    send_batch(b * 200, 200);
    ASSERT_TRUE(wait_until(
        [&] { return d->stream_metric("logseal_stream_durable_records", "roll").value_or(0) == (b + 1) * 200.0; }, 10s));
  }
  double sealed_before = d->stream_metric("logseal_stream_segments_sealed_total", "roll").value_or(0);
  EXPECT_GE(sealed_before, 2) << "--segment-bytes 65536 did not roll";
  ASSERT_TRUE(d->signal(SIGHUP));
  EXPECT_TRUE(wait_until(
      [&] { return d->stream_metric("logseal_stream_segments_sealed_total", "roll").value_or(0) > sealed_before; }, 10s))
      << "SIGHUP did not roll the open segment\n" << d->log();
  EXPECT_TRUE(d->running()) << "SIGHUP stopped the daemon";
  send_batch(1000, 200);
  stop_ok(*d);
  expect_no_warnings(*d);
  expect_verified();
  std::vector<std::string> recs;
  ASSERT_TRUE(export_raw(data_dir_, "roll", &recs));
  EXPECT_TRUE(same_records(recs, sent));
  std::vector<std::string> files = list_files(data_dir_);
  size_t immutable = 0;
  for (const auto& f : files) immutable += is_immutable(f) ? 1 : 0;
  EXPECT_GE(files.size(), 4u);
  if (::geteuid() == 0) {
    EXPECT_GE(immutable, 3u) << "sealed segments are not immutable although logseald ran as root";
  }
  std::printf("[ info ] %zu files in the data directory, %zu immutable\n", files.size(), immutable);
  // The helper removes a data directory even with immutable segments in it.
  remove_tree(data_dir_);
  EXPECT_FALSE(file_exists(data_dir_));
}

// ---------------------------------------------------------------------------------
// Limits from a TOML config file: message size, connections per thread, idle time.

TEST_F(DaemonE2E, LimitsFromTheConfigFileCutCountAndClose) {
  std::string conf = tmp_->sub("logseald.toml");
  ASSERT_TRUE(write_file(conf, "data_dir = \"" + data_dir_ + "\"\n" + "signer = \"soft:" + key_.key_pem + "\"\n" +
                                   "http = \"127.0.0.1:0\"\n"
                                   "checkpoint_ms = 200\n"
                                   "message_bytes_max = 1024\n"
                                   "connections_max = 10\n"
                                   "idle_timeout_s = 1\n"
                                   "[[listener]]\nkind = \"syslog-tcp\"\naddress = \"127.0.0.1:0\"\nstream = \"cfg-tcp\"\n"
                                   "[[listener]]\nkind = \"syslog-udp\"\naddress = \"127.0.0.1:0\"\nstream = \"cfg-udp\"\n"));
  DaemonConfig c;
  c.config_file = conf;
  c.listeners = {{Kind::kTcp, "cfg-tcp"}, {Kind::kUdp, "cfg-udp"}};
  Daemon d(c, tmp_->sub("logseald-config.log"));
  ASSERT_TRUE(d.start());
  const uint16_t tcp = d.port("cfg-tcp");

  // Over message_bytes_max: cut to 1024 bytes and flagged, the next message intact.
  std::string long_line = msg5424("long-lf", "a line over the limit ");
  long_line.resize(3000, 'L');
  std::string long_frame = msg5424("long-octet", "a frame over the limit ");
  long_frame.resize(5000, 'O');
  const std::string after_line = msg5424("after-long-lf", "intact after the long line");
  const std::string after_frame = msg5424("after-long-octet", "intact after the long frame");
  ASSERT_TRUE(send_tcp(tcp, long_line + "\n" + after_line + "\n"));
  ASSERT_TRUE(d.wait_records("cfg-tcp", 2));
  ASSERT_TRUE(send_tcp(tcp, octet_frame(long_frame) + octet_frame(after_frame)));
  ASSERT_TRUE(d.wait_records("cfg-tcp", 4));
  std::string long_dgram = msg5424("long-udp", "a datagram over the limit ");
  long_dgram.resize(4000, 'U');
  const std::string after_dgram = msg5424("after-long-udp", "intact after the long datagram");
  {
    int fd = udp_socket();
    ASSERT_TRUE(send_udp(fd, d.port("cfg-udp"), long_dgram));
    ASSERT_TRUE(send_udp(fd, d.port("cfg-udp"), after_dgram));
    ::close(fd);
  }
  ASSERT_TRUE(d.wait_records("cfg-udp", 2));
  EXPECT_EQ(d.drops("truncated", "cfg-tcp"), std::optional<double>(2));
  EXPECT_EQ(d.drops("truncated", "cfg-udp"), std::optional<double>(1));

  // connections_max = 10: the 11th and later connections are closed at once and counted.
  std::vector<int> held = open_connections(tcp, 15);
  ASSERT_EQ(held.size(), 15u);
  EXPECT_TRUE(wait_until([&] { return d.drops("connection_limit", "cfg-tcp").value_or(0) >= 5; }, 10s)) << d.metrics();
  EXPECT_LE(d.listener_metric("logseal_listener_connections_open", "cfg-tcp").value_or(99), 10);
  for (int fd : held) ::close(fd);
  ASSERT_TRUE(wait_until([&] { return d.listener_metric("logseal_listener_connections_open", "cfg-tcp").value_or(-1) == 0; }, 10s));
  const std::string after_limit = msg5424("after-limit", "served once connections were closed");
  ASSERT_TRUE(send_tcp(tcp, octet_frame(after_limit)));
  ASSERT_TRUE(d.wait_records("cfg-tcp", 5));

  // idle_timeout_s = 1: a silent connection is closed and counted.
  const std::string idle_part = msg5424("idle", "an unterminated line, then silence");
  int idle = connect_tcp(tcp);
  ASSERT_GE(idle, 0);
  ASSERT_TRUE(send_all(idle, idle_part));
  EXPECT_TRUE(wait_until([&] { return d.drops("idle_timeout", "cfg-tcp").value_or(0) >= 1; }, 5s)) << d.metrics();
  EXPECT_TRUE(wait_until([&] { return d.listener_metric("logseal_listener_connections_open", "cfg-tcp").value_or(-1) == 0; }, 5s));
  char byte;
  EXPECT_EQ(::recv(idle, &byte, 1, 0), 0) << "the idle connection was not closed by the daemon";
  ::close(idle);
  ASSERT_TRUE(d.wait_records("cfg-tcp", 6));

  auto code = d.stop(20s);
  EXPECT_EQ(code, std::optional<int>(0)) << d.log();
  expect_verified();
  std::vector<std::string> recs;
  std::vector<Json> js;
  ASSERT_TRUE(export_raw(data_dir_, "cfg-tcp", &recs));
  ASSERT_TRUE(export_jsonl(data_dir_, "cfg-tcp", &js));
  ASSERT_EQ(recs.size(), 6u);
  ASSERT_EQ(js.size(), 6u);
  EXPECT_EQ(recs[0], long_line.substr(0, 1024));
  EXPECT_TRUE(js[0]["truncated"].boolean());
  EXPECT_EQ(recs[1], after_line);
  EXPECT_FALSE(js[1]["truncated"].boolean());
  EXPECT_EQ(recs[2], long_frame.substr(0, 1024));
  EXPECT_TRUE(js[2]["truncated"].boolean());
  EXPECT_EQ(recs[3], after_frame);
  EXPECT_FALSE(js[3]["truncated"].boolean());
  EXPECT_EQ(recs[4], after_limit);
  // The daemon cut the idle connection: its unterminated line is kept, flagged.
  EXPECT_EQ(recs[5], idle_part);
  EXPECT_TRUE(js[5]["truncated"].boolean()) << "a line cut by the idle timeout is not flagged truncated";
  ASSERT_TRUE(export_raw(data_dir_, "cfg-udp", &recs));
  ASSERT_TRUE(export_jsonl(data_dir_, "cfg-udp", &js));
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0], long_dgram.substr(0, 1024));
  EXPECT_TRUE(js[0]["truncated"].boolean());
  EXPECT_EQ(recs[1], after_dgram);
}

// ---------------------------------------------------------------------------------
// Two ingest threads: connections spread over both, each connection stays in order.

TEST_F(DaemonE2E, TwoIngestThreadsKeepEveryConnectionComplete) {
  auto d = make_daemon({{Kind::kTcp, "mt"}}, {"--ingest-threads", "2"});
  ASSERT_TRUE(d->start());
  constexpr int kConns = 6, kPerConn = 2000;
  auto message = [](int conn, int i) {
    return msg5424("mt-" + std::to_string(conn), "conn " + std::to_string(conn) + " seq " + std::to_string(i) +
                                                    std::string(static_cast<size_t>(i % 97), '.'));
  };
  std::vector<std::thread> senders;
  std::atomic<int> failures{0};
  for (int c = 0; c < kConns; ++c) {
    senders.emplace_back([&, c] {
      std::string wire;
      for (int i = 0; i < kPerConn; ++i) wire += c % 2 == 0 ? octet_frame(message(c, i)) : message(c, i) + "\n";
      int fd = connect_tcp(d->port("mt"));
      if (fd < 0 || !send_in_pieces(fd, wire)) failures.fetch_add(1);
      if (fd >= 0) ::close(fd);
    });
  }
  for (auto& t : senders) t.join();
  ASSERT_EQ(failures.load(), 0);
  ASSERT_TRUE(d->wait_records("mt", kConns * kPerConn, 20s)) << d->records("mt");
  EXPECT_EQ(d->listener_metric("logseal_listener_connections_total", "mt"), std::optional<double>(kConns));
  stop_ok(*d);
  expect_no_warnings(*d);
  expect_verified();
  std::vector<std::string> recs;
  ASSERT_TRUE(export_raw(data_dir_, "mt", &recs));
  ASSERT_EQ(recs.size(), static_cast<size_t>(kConns * kPerConn));
  std::vector<int> next(kConns, 0);
  for (size_t i = 0; i < recs.size(); ++i) {
    int c = -1;
    for (int k = 0; k < kConns; ++k) {
      if (recs[i].find(" mt-" + std::to_string(k) + " ") != std::string::npos) c = k;
    }
    ASSERT_GE(c, 0) << "record " << i << ": " << printable(recs[i]);
    ASSERT_EQ(recs[i], message(c, next[c])) << "record " << i;
    ++next[c];
  }
}

// ---------------------------------------------------------------------------------
// Out of file descriptors: with RLIMIT_NOFILE at 64, a flood of connections makes
// accept fail with EMFILE. The daemon must neither spin nor flood its log, and
// must serve again once descriptors are free.

constexpr unsigned kLowNofile = 64;

// CPU seconds the process uses over the next second.
double cpu_over_one_second(pid_t pid) {
  double c0 = process_cpu_seconds(pid);
  std::this_thread::sleep_for(1000ms);
  return process_cpu_seconds(pid) - c0;
}

TEST_F(DaemonE2E, ConnectionFloodPastTheDescriptorLimitNeitherSpinsNorFloodsTheLog) {
  auto d = make_daemon({{Kind::kTcp, "fdlimit"}}, {}, kLowNofile);
  ASSERT_TRUE(d->start());
  std::vector<int> fds = open_connections(d->port("fdlimit"), 150);
  ASSERT_GE(fds.size(), 100u) << "the kernel backlog should take the connections the daemon cannot accept";
  std::this_thread::sleep_for(300ms);
  double used = cpu_over_one_second(d->pid());
  EXPECT_LT(used, 0.2) << "logseald used " << used << " s of CPU in 1 s while out of descriptors (accept loop spins)";
  size_t accept_lines = d->log_lines_with("accept on");
  EXPECT_GE(accept_lines, 1u) << "running out of descriptors is not logged";
  EXPECT_LE(accept_lines, 2u) << "accept errors flood the log: " << accept_lines << " lines";
  for (int fd : fds) ::close(fd);
  // Descriptors are free again: a normal client is served.
  const std::string msg = msg5424("fdlimit", "served after the descriptor flood");
  ASSERT_TRUE(send_tcp(d->port("fdlimit"), octet_frame(msg)));
  ASSERT_TRUE(d->wait_records("fdlimit", 1, 10s)) << "not served after descriptors were freed\n" << d->log();
  EXPECT_TRUE(wait_until(
      [&] { return d->listener_metric("logseal_listener_connections_open", "fdlimit").value_or(-1) == 0; }, 10s));
  stop_ok(*d);
  EXPECT_LE(d->log_lines_with("accept on"), 10u);
  expect_verified();
  std::vector<std::string> recs;
  ASSERT_TRUE(export_raw(data_dir_, "fdlimit", &recs));
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0], msg);
}

TEST_F(DaemonE2E, AdminHttpNeitherSpinsWhenOutOfDescriptors) {
  auto d = make_daemon({{Kind::kTcp, "fdlimit-http"}}, {}, kLowNofile);
  ASSERT_TRUE(d->start());
  std::vector<int> fds = open_connections(d->port("fdlimit-http"), 150);
  ASSERT_GE(fds.size(), 100u);
  // An HTTP client waits in the admin listener's backlog: accept fails with EMFILE.
  int http = connect_tcp(d->http_port(), 2000ms);
  ASSERT_GE(http, 0);
  std::this_thread::sleep_for(300ms);
  double used = cpu_over_one_second(d->pid());
  EXPECT_LT(used, 0.2) << "logseald used " << used
                       << " s of CPU in 1 s with an HTTP client pending while out of descriptors "
                          "(the admin accept loop spins)";
  ::close(http);
  for (int fd : fds) ::close(fd);
  EXPECT_TRUE(wait_until([&] { return http_get(d->http_port(), "/healthz", 1000ms).status == 200; }, 10s));
  stop_ok(*d);
}

// ---------------------------------------------------------------------------------
// The admin endpoint: plain HTTP GET over a socket.

TEST_F(DaemonE2E, MetricsHealthzAndCheckpointAnswer) {
  auto d = make_daemon({{Kind::kTcp, "web"}, {Kind::kUdp, "web-udp"}});
  ASSERT_TRUE(d->start());
  HttpResponse h = http_get(d->http_port(), "/healthz");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body, "ok\n");
  std::string frames;
  for (int i = 0; i < 10; ++i) frames += octet_frame(msg5424("web", "metrics message " + std::to_string(i)));
  ASSERT_TRUE(send_tcp(d->port("web"), frames));
  ASSERT_TRUE(d->wait_records("web", 10));
  HttpResponse m = http_get(d->http_port(), "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.headers.find("text/plain"), std::string::npos) << m.headers;
  EXPECT_EQ(metric(m.body, "logseal_stream_records_total", {"stream=\"web\""}), std::optional<double>(10));
  EXPECT_EQ(metric(m.body, "logseal_listener_messages_total", {"stream=\"web\"", "kind=\"syslog-tcp\""}),
            std::optional<double>(10));
  EXPECT_TRUE(metric(m.body, "logseal_listener_messages_total", {"stream=\"web-udp\"", "kind=\"syslog-udp\""}).has_value());
  EXPECT_EQ(d->drops("udp_kernel_drop", "web-udp"), std::optional<double>(0));
  EXPECT_NE(m.body.find("# TYPE logseal_stream_records_total counter"), std::string::npos);
  // Every record becomes durable and then signed (checkpoint every 200 ms).
  EXPECT_TRUE(wait_until([&] { return d->stream_metric("logseal_stream_signed_records", "web").value_or(0) == 10; }, 10s))
      << d->metrics();
  HttpResponse cp = http_get(d->http_port(), "/v1/checkpoint?stream=web");
  EXPECT_EQ(cp.status, 200) << cp.body;
  EXPECT_FALSE(cp.body.empty());
  EXPECT_EQ(http_get(d->http_port(), "/v1/checkpoint?stream=no-such-stream").status, 404);
  EXPECT_EQ(http_get(d->http_port(), "/v1/checkpoint").status, 400);
  EXPECT_EQ(http_get(d->http_port(), "/no/such/path").status, 404);
  // The checkpoint served over HTTP is a valid --anchor for the offline verifier.
  ASSERT_TRUE(write_file(tmp_->sub("anchor.txt"), cp.body));
  stop_ok(*d);
  expect_no_warnings(*d);
  RunResult r = run({logseal_path(), "verify", data_dir_, "--pubkey", key_.pub_pem, "--anchor", tmp_->sub("anchor.txt")});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
}

// A client that connects to the admin port and sends nothing must not hold up
// /healthz (a systemd or load-balancer health check) for anyone else.
TEST_F(DaemonE2E, HealthzAnswersWhileAnotherHttpClientStalls) {
  auto d = make_daemon({{Kind::kTcp, "web-stall"}});
  ASSERT_TRUE(d->start());
  int idle = connect_tcp(d->http_port());
  ASSERT_GE(idle, 0);
  std::this_thread::sleep_for(100ms);
  auto t0 = Clock::now();
  HttpResponse h = http_get(d->http_port(), "/healthz", 8000ms);
  double s = std::chrono::duration<double>(Clock::now() - t0).count();
  ::close(idle);
  EXPECT_EQ(h.status, 200);
  EXPECT_LT(s, 1.0) << "/healthz took " << s << " s while another client held an idle admin connection";
  stop_ok(*d);
}

}  // namespace
}  // namespace logseal::e2e

namespace logseal::e2e {
namespace {

using namespace std::chrono_literals;
using Kind = ListenerConfig::Kind;

// Group commit settings from the config file (README "logseald"): taken, and
// the records flow and verify; writes_in_flight_max out of range is a usage
// error naming the key.
TEST_F(DaemonE2E, GroupCommitSettingsFromTheConfigFile) {
  std::string bad = tmp_->sub("bad-inflight.toml");
  ASSERT_TRUE(write_file(
      bad, "data_dir = \"" + data_dir_ + "\"\nsigner = \"soft:" + key_.key_pem + "\"\nwrites_in_flight_max = 0\n"));
  RunResult rb = run({logseald_path(), "--config", bad});
  EXPECT_EQ(rb.exit_code, 2) << describe(rb);
  EXPECT_NE(rb.err.find("writes_in_flight_max must be 1..64"), std::string::npos) << describe(rb);

  std::string conf = tmp_->sub("group-commit.toml");
  ASSERT_TRUE(
      write_file(conf, "data_dir = \"" + data_dir_ + "\"\nsigner = \"soft:" + key_.key_pem +
                           "\"\nhttp = \"127.0.0.1:0\"\ncheckpoint_ms = 200\n"
                           "batch_bytes = 65536\nbatch_delay_us = 500\nwrites_in_flight_max = 4\n"
                           "[[listener]]\nkind = \"syslog-tcp\"\naddress = \"127.0.0.1:0\"\nstream = \"gc\"\n"));
  DaemonConfig c;
  c.config_file = conf;
  c.listeners = {{Kind::kTcp, "gc"}};
  Daemon d(c, tmp_->sub("logseald-gc.log"));
  ASSERT_TRUE(d.start());
  std::string frames;
  for (int i = 0; i < 3000; ++i) frames += octet_frame(msg5424("gc", "group commit " + std::to_string(i)));
  ASSERT_TRUE(send_tcp(d.port("gc"), frames));
  EXPECT_TRUE(d.wait_records("gc", 3000));
  EXPECT_TRUE(wait_until([&] { return d.stream_metric("logseal_stream_durable_records", "gc") == 3000.0; }, 10s))
      << d.metrics();
  EXPECT_EQ(d.stop(), std::optional<int>(0)) << d.log();
  expect_verified();
}

// Disk-full policy "refuse" through the daemon (README "Retention and legal
// hold"): a reserve larger than the disk refuses every new record, /metrics and
// the log say so, and nothing on disk is harmed; with the reserve off the same
// daemon takes records again and everything verifies. [streams.NAME] tables are
// checked at start.
TEST_F(DaemonE2E, DiskReserveRefusesRecordsAndStreamPoliciesAreChecked) {
  std::string bad = tmp_->sub("bad.toml");
  ASSERT_TRUE(write_file(bad, "data_dir = \"" + data_dir_ + "\"\nsigner = \"soft:" + key_.key_pem +
                                  "\"\n[streams.full]\nretention_min_days = 30\nretention_max_days = 7\n"));
  RunResult rb = run({logseald_path(), "--config", bad});
  EXPECT_EQ(rb.exit_code, 2) << describe(rb);
  EXPECT_NE(rb.err.find("retention_max_days (7) is below retention_min_days (30)"), std::string::npos) << describe(rb);

  std::string conf = tmp_->sub("full.toml");
  ASSERT_TRUE(write_file(conf, "data_dir = \"" + data_dir_ + "\"\nsigner = \"soft:" + key_.key_pem +
                                   "\"\nhttp = \"127.0.0.1:0\"\ncheckpoint_ms = 200\n"
                                   "disk_reserve_bytes = 1152921504606846976\n"  // 1 EiB: always full
                                   "[streams.full]\nretention_min_days = 30\nretention_max_days = 400\n"
                                   "disk_full = \"refuse\"\n"
                                   "[[listener]]\nkind = \"syslog-tcp\"\naddress = \"127.0.0.1:0\"\nstream = \"full\"\n"));
  {
    DaemonConfig c;
    c.config_file = conf;
    c.listeners = {{Kind::kTcp, "full"}};
    Daemon d(c, tmp_->sub("logseald-full.log"));
    ASSERT_TRUE(d.start());
    EXPECT_TRUE(wait_until([&] { return d.stream_metric("logseal_stream_disk_full", "full") == 1.0; }, 10s))
        << d.metrics();
    std::string frames;
    for (int i = 0; i < 5; ++i) frames += octet_frame(msg5424("full", "refused " + std::to_string(i)));
    ASSERT_TRUE(send_tcp(d.port("full"), frames));
    EXPECT_TRUE(wait_until([&] { return d.drops("append_error", "full").value_or(0) == 5; }, 10s)) << d.metrics();
    EXPECT_EQ(d.stream_metric("logseal_stream_disk_full_refused_total", "full"), std::optional<double>(5));
    EXPECT_EQ(d.records("full"), 0u);
    EXPECT_EQ(d.log_lines_with("stream full: disk full"), 1u) << d.log();
    EXPECT_EQ(d.log_lines_with("retention_min_days=30 retention_max_days=400"), 1u) << d.log();
    EXPECT_EQ(d.stop(), std::optional<int>(0)) << d.log();
  }
  {
    DaemonConfig c;
    c.config_file = conf;
    c.extra_args = {"--disk-reserve-bytes", "0"};
    c.listeners = {{Kind::kTcp, "full"}};
    Daemon d(c, tmp_->sub("logseald-room.log"));
    ASSERT_TRUE(d.start());
    std::string frames;
    for (int i = 0; i < 5; ++i) frames += octet_frame(msg5424("full", "accepted " + std::to_string(i)));
    ASSERT_TRUE(send_tcp(d.port("full"), frames));
    EXPECT_TRUE(d.wait_records("full", 5));
    EXPECT_EQ(d.stream_metric("logseal_stream_disk_full", "full"), std::optional<double>(0));
    EXPECT_EQ(d.stop(), std::optional<int>(0)) << d.log();
  }
  expect_verified();
}

}  // namespace
}  // namespace logseal::e2e
