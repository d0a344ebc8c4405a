#include "ingest/relp.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <random>
#include <string>
#include <string_view>
#include <vector>

// Counts heap allocations so the steady-state test can check that feeding frames
// allocates nothing once the partial-frame buffer has grown.
namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace

// noinline: when GCC inlines these it pairs new-expressions with free() and
// reports -Wmismatched-new-delete, although the pair is the replacement's own.
__attribute__((noinline)) void* operator new(size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  std::abort();
}
__attribute__((noinline)) void operator delete(void* p) noexcept { std::free(p); }
__attribute__((noinline)) void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace logseal::ingest {
namespace {

using Kind = RelpSession::Command::Kind;

// ---------------------------------------------------------------------------
// Real traffic. Captured on 127.0.0.1 with a logging TCP proxy between
//   client: rsyslogd 8.2302.0 (Debian 12 rsyslog + rsyslog-relp, librelp 1.11.0),
//           config: module(load="imudp") input(type="imudp" port=...)
//                   module(load="omrelp") action(type="omrelp" target="127.0.0.1" port=...)
//           (omrelp defaults: template RSYSLOG_ForwardFormat, window 128)
//   server: rsyslogd 8.2302.0 with module(load="imrelp") input(type="imrelp" ...)
// Three messages were sent over UDP, then the client rsyslogd got SIGTERM (close).
// Bytes are exactly as they crossed the wire, in receive order; each literal
// was one recv() on the proxy.

constexpr std::string_view kClientChunks[] = {
    "1 open 86 relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog\n",
    "2 syslog 68 <13>2026-01-02T03:04:05+00:00 host1 app[123]: hello relp capture one\n",
    "3 syslog 59 <165>2024-01-02T03:04:05.000Z host2 app2[77] second message\n",
    "4 syslog 74 <14>2026-01-02T03:04:06+00:00 host1 app: third with utf8 \xc3\xa9 and tab#011end\n",
    "5 close 0\n",
};
// What imrelp (librelp 1.11.0's server) answered, chunk by chunk.
constexpr std::string_view kImrelpOpenResponse =
    "1 rsp 93 200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog\n";
constexpr std::string_view kImrelpAck2 = "2 rsp 6 200 OK\n";
constexpr std::string_view kImrelpCloseAndHint = "5 rsp 0\n0 serverclose 0\n";
// Killing the imrelp rsyslogd with a session open sent exactly this, then FIN.
constexpr std::string_view kImrelpShutdownHint = "0 serverclose 0\n";

// The response logseal sends to that open. Checked against the same rsyslogd by
// a stand-in server sending these bytes: omrelp sent its syslog commands (128
// outstanding at most, acked late in batches) and closed without any error. The
// same omrelp refused a response without "commands=syslog" ("error in
// CltConnChkOffers, session broken") and logged "peer sent error response" for
// the 500 below.
constexpr std::string_view kLogsealOpenResponse =
    "1 rsp 59 200 OK\nrelp_version=0\nrelp_software=logseal\ncommands=syslog\n";
constexpr std::string_view kRefusedOpenResponse = "1 rsp 44 500 required command not supported by client\n";

std::string captured_client_stream() {
  std::string s;
  for (std::string_view c : kClientChunks) s.append(c);
  return s;
}

// ---------------------------------------------------------------------------
// Helpers.

struct Got {
  uint64_t txnr;
  Kind kind;
  std::string data;
  bool truncated;
  std::string name;
  bool operator==(const Got&) const = default;
};

struct FeedResult {
  std::vector<Got> got;
  Status status;
  bool opened = false;
  bool closed = false;
};

// Feeds input in the given chunk sizes (cycled); stops at the first error.
FeedResult feed_chunked(std::string_view input, size_t max, const std::vector<size_t>& sizes) {
  RelpSession session(max);
  FeedResult run;
  auto on_command = [&](const RelpSession::Command& c) {
    run.got.push_back(Got{c.txnr, c.kind, std::string(c.data), c.truncated, std::string(c.name)});
  };
  size_t pos = 0;
  size_t i = 0;
  while (pos < input.size()) {
    size_t n = std::min(sizes[i++ % sizes.size()], input.size() - pos);
    run.status = session.feed(input.substr(pos, n), on_command);
    pos += n;
    if (!run.status.ok()) break;
  }
  run.opened = session.opened();
  run.closed = session.closed();
  return run;
}

FeedResult feed_whole(std::string_view input, size_t max = 64 * 1024) { return feed_chunked(input, max, {input.size() + 1}); }
FeedResult feed_bytes(std::string_view input, size_t max = 64 * 1024) { return feed_chunked(input, max, {1}); }

std::string frame(uint64_t txnr, std::string_view command, std::string_view data) {
  std::string s = std::to_string(txnr) + " " + std::string(command) + " " + std::to_string(data.size());
  if (!data.empty()) s += " " + std::string(data);
  s += "\n";
  return s;
}

constexpr std::string_view kOffer = "relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog";

// A client-side reading of a server frame that follows librelp 1.11.0 line by
// line: relpFrameProcessOctetRcvd (framing), scrsp.c readRspHdr (3-digit code,
// SP, up to 80 bytes of text ending at LF), offers.c relpOffersConstructFromFrame
// and relpsess.c relpSessCBrspOpen / relpSessCltConnChkOffers (what omrelp
// accepts as an open response).
struct ClientView {
  bool framed = false;
  uint64_t txnr = 0;
  std::string command;
  std::string data;
  size_t frame_bytes = 0;
  // rsp only:
  bool header_ok = false;
  int code = 0;
  std::string text;
  std::string rest;  // after the LF that ends the human text
  // open rsp only:
  bool open_accepted = false;
};

ClientView librelp_client_read(std::string_view in) {
  ClientView v;
  size_t i = 0;
  auto digits = [&](uint64_t& out) {
    size_t n = 0;
    while (i < in.size() && in[i] >= '0' && in[i] <= '9') {
      if (++n > 9) return false;
      out = out * 10 + static_cast<uint64_t>(in[i++] - '0');
    }
    return n > 0;
  };
  if (!digits(v.txnr) || i >= in.size() || in[i++] != ' ') return v;
  while (i < in.size() && std::isalpha(static_cast<unsigned char>(in[i]))) v.command += in[i++];
  if (v.command.empty() || v.command.size() > 32 || i >= in.size() || in[i++] != ' ') return v;
  uint64_t len = 0;
  if (!digits(len) || i >= in.size()) return v;
  if (len > 0) {
    if (in[i++] != ' ' || in.size() - i < len) return v;
    v.data = std::string(in.substr(i, len));
    i += len;
  }
  if (i >= in.size() || in[i++] != '\n') return v;
  v.framed = true;
  v.frame_bytes = i;
  if (v.command != "rsp") return v;
  // readRspHdr: a data part shorter than "NNN " fails (END_OF_DATA is an error
  // there), which is what librelp's own "rsp 0" close answer runs into.
  const std::string& d = v.data;
  if (d.size() < 4 || !std::isdigit(static_cast<unsigned char>(d[0])) ||
      !std::isdigit(static_cast<unsigned char>(d[1])) || !std::isdigit(static_cast<unsigned char>(d[2])) || d[3] != ' ') {
    return v;
  }
  v.header_ok = true;
  v.code = (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
  size_t p = 4;
  while (p < d.size() && v.text.size() < 80 && d[p] != '\n') v.text += d[p++];
  if (p < d.size() && d[p] == '\n') ++p;
  v.rest = d.substr(p);
  // Open response: relp_version must be a number <= 0 (the client's version);
  // "commands" must enable syslog, which omrelp requires.
  if (v.code == 200) {
    bool syslog = false;
    bool version_ok = true;
    size_t q = 0;
    const std::string& r = v.rest;
    while (q < r.size()) {
      std::string name;
      while (q < r.size() && r[q] != '=') name += r[q++];
      std::vector<std::string> values;
      while (q < r.size() && r[q] != '\n') {
        ++q;  // '=' or ','
        std::string val;
        while (q < r.size() && r[q] != ',' && r[q] != '\n') val += r[q++];
        if (!val.empty()) values.push_back(val);
      }
      if (q < r.size()) ++q;  // LF
      if (name == "relp_version") {
        if (values.empty()) version_ok = false;
        for (const std::string& val : values) {
          if (val.find_first_not_of("0123456789") != std::string::npos || std::stoi(val) > 0) version_ok = false;
        }
      } else if (name == "commands") {
        for (const std::string& val : values) syslog |= val == "syslog";
      }
    }
    v.open_accepted = version_ok && syslog;
  }
  return v;
}

// ---------------------------------------------------------------------------
// Real traffic.

TEST(RelpCaptured, ParsesRsyslogSession) {
  FeedResult run = feed_whole(captured_client_stream());
  ASSERT_TRUE(run.status.ok()) << run.status.to_string();
  ASSERT_EQ(run.got.size(), 5u);
  EXPECT_EQ(run.got[0], (Got{1, Kind::kOpen, std::string(kOffer), false, "open"}));
  EXPECT_EQ(run.got[1], (Got{2, Kind::kSyslog, "<13>2026-01-02T03:04:05+00:00 host1 app[123]: hello relp capture one",
                             false, "syslog"}));
  EXPECT_EQ(run.got[2],
            (Got{3, Kind::kSyslog, "<165>2024-01-02T03:04:05.000Z host2 app2[77] second message", false, "syslog"}));
  EXPECT_EQ(run.got[3], (Got{4, Kind::kSyslog,
                             "<14>2026-01-02T03:04:06+00:00 host1 app: third with utf8 \xc3\xa9 and tab#011end", false,
                             "syslog"}));
  EXPECT_EQ(run.got[4], (Got{5, Kind::kClose, "", false, "close"}));
  EXPECT_TRUE(run.opened);
  EXPECT_TRUE(run.closed);
}

TEST(RelpCaptured, ChunkedAsReceived) {
  RelpSession session(64 * 1024);
  std::vector<uint64_t> txnrs;
  for (std::string_view chunk : kClientChunks) {
    ASSERT_TRUE(session.feed(chunk, [&](const RelpSession::Command& c) { txnrs.push_back(c.txnr); }).ok());
  }
  EXPECT_EQ(txnrs, (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(session.bytes_consumed(), captured_client_stream().size());
}

TEST(RelpCaptured, ByteAtATimeEqualsWhole) {
  std::string s = captured_client_stream();
  FeedResult whole = feed_whole(s);
  FeedResult bytes = feed_bytes(s);
  ASSERT_TRUE(bytes.status.ok()) << bytes.status.to_string();
  EXPECT_EQ(whole.got, bytes.got);
  EXPECT_TRUE(bytes.closed);
}

TEST(RelpCaptured, ClientReaderAcceptsImrelpBytes) {
  // The test's librelp-client reading must accept what librelp's own server sent,
  // or it proves nothing about ours.
  ClientView open = librelp_client_read(kImrelpOpenResponse);
  ASSERT_TRUE(open.framed);
  EXPECT_EQ(open.frame_bytes, kImrelpOpenResponse.size());
  EXPECT_EQ(open.code, 200);
  EXPECT_EQ(open.text, "OK");
  EXPECT_TRUE(open.open_accepted);
  ClientView ack = librelp_client_read(kImrelpAck2);
  EXPECT_TRUE(ack.header_ok);
  EXPECT_EQ(ack.code, 200);
}

// ---------------------------------------------------------------------------
// Responses.

TEST(RelpResponse, OpenResponseIsWhatRsyslogAccepted) {
  std::string out;
  RelpSession::append_open_response(1, kOffer, out);
  EXPECT_EQ(out, kLogsealOpenResponse);
  ClientView v = librelp_client_read(out);
  ASSERT_TRUE(v.framed);
  EXPECT_EQ(v.frame_bytes, out.size());
  EXPECT_EQ(v.txnr, 1u);
  EXPECT_EQ(v.command, "rsp");
  EXPECT_EQ(v.code, 200);
  EXPECT_EQ(v.text, "OK");
  EXPECT_TRUE(v.open_accepted);
  // Same shape as imrelp's: "200 OK\n" then relp_version, relp_software, commands.
  EXPECT_EQ(v.rest.substr(0, 15), "relp_version=0\n");
  EXPECT_EQ(v.rest.substr(v.rest.size() - 15), "commands=syslog");
}

TEST(RelpResponse, OpenRefusedLikeLibrelp) {
  std::string out;
  RelpSession::append_open_response(1, "relp_version=0\nrelp_software=x\ncommands=", out);
  EXPECT_EQ(out, kRefusedOpenResponse);
  ClientView v = librelp_client_read(out);
  EXPECT_TRUE(v.header_ok);
  EXPECT_EQ(v.code, 500);
  EXPECT_FALSE(v.open_accepted);

  out.clear();
  RelpSession::append_open_response(7, "relp_version=zero\ncommands=syslog", out);
  EXPECT_EQ(out, "7 rsp 38 500 relp_version offer is not a number\n");
}

TEST(RelpResponse, OkMatchesImrelp) {
  std::string out;
  RelpSession::append_ok(2, out);
  EXPECT_EQ(out, kImrelpAck2);
  out.clear();
  RelpSession::append_ok(999999999, out);
  EXPECT_EQ(out, "999999999 rsp 6 200 OK\n");
  ClientView v = librelp_client_read(out);
  EXPECT_TRUE(v.header_ok);
  EXPECT_EQ(v.txnr, 999999999u);
  EXPECT_EQ(v.code, 200);
}

TEST(RelpResponse, CloseAndServercloseMatchImrelp) {
  std::string out;
  RelpSession::append_close_response(5, out);
  RelpSession::append_serverclose(out);
  EXPECT_EQ(out, kImrelpCloseAndHint);
  std::string hint;
  RelpSession::append_serverclose(hint);
  EXPECT_EQ(hint, kImrelpShutdownHint);
  ClientView v = librelp_client_read(hint);
  ASSERT_TRUE(v.framed);
  EXPECT_EQ(v.txnr, 0u);
  EXPECT_EQ(v.command, "serverclose");
}

TEST(RelpResponse, ErrorFormat) {
  std::string out;
  RelpSession::append_error(3, 500, "command disabled", out);
  EXPECT_EQ(out, "3 rsp 20 500 command disabled\n");  // librelp scsyslog.c's words and bytes
  ClientView v = librelp_client_read(out);
  EXPECT_TRUE(v.header_ok);
  EXPECT_EQ(v.code, 500);
  EXPECT_EQ(v.text, "command disabled");

  // LF would end the human text early; long text is cut to librelp's 80.
  out.clear();
  RelpSession::append_error(4, 500, "two\nlines\r" + std::string(200, 'x'), out);
  v = librelp_client_read(out);
  ASSERT_TRUE(v.framed);
  EXPECT_EQ(v.frame_bytes, out.size());
  EXPECT_EQ(v.text, "two lines " + std::string(70, 'x'));
  EXPECT_TRUE(v.rest.empty());

  // Codes are three digits, always.
  out.clear();
  RelpSession::append_error(5, 42, "", out);
  EXPECT_EQ(out, "5 rsp 9 500 error\n");
  out.clear();
  RelpSession::append_error(6, 503, "busy", out);
  EXPECT_EQ(out, "6 rsp 8 503 busy\n");
}

TEST(RelpResponse, AppendsWithoutClobbering) {
  std::string out = "x";
  RelpSession::append_ok(1, out);
  RelpSession::append_ok(2, out);
  EXPECT_EQ(out, "x1 rsp 6 200 OK\n2 rsp 6 200 OK\n");
}

// ---------------------------------------------------------------------------
// Framing.

// count commands from first_txnr on: syslog frames of random length (0 to 2*max,
// so some are cut) with random bytes, and now and then an unknown command.
std::string random_frames(std::mt19937& rng, size_t max, uint64_t first_txnr, int count) {
  std::uniform_int_distribution<int> len_dist(0, static_cast<int>(max * 2));
  std::uniform_int_distribution<int> byte_dist(0, 255);
  std::string s;
  for (int i = 0; i < count; ++i) {
    uint64_t txnr = first_txnr + static_cast<uint64_t>(i);
    if (i % 17 == 5) {
      s += frame(txnr, "starttls", "");
      continue;
    }
    std::string data(static_cast<size_t>(len_dist(rng)), '\0');
    for (char& c : data) c = static_cast<char>(byte_dist(rng));  // LF and NUL included: data is counted
    s += frame(txnr, "syslog", data);
  }
  return s;
}

std::string synthetic_stream(std::mt19937& rng, size_t max, int frames) {
  return frame(1, "open", kOffer) + random_frames(rng, max, 2, frames) +
         frame(2 + static_cast<uint64_t>(frames), "close", "");
}

TEST(RelpFraming, AnyChunkingGivesTheSameCommands) {
  constexpr size_t kMax = 300;
  std::mt19937 rng(20240611);
  std::string s = synthetic_stream(rng, kMax, 200);
  FeedResult whole = feed_whole(s, kMax);
  ASSERT_TRUE(whole.status.ok()) << whole.status.to_string();
  ASSERT_EQ(whole.got.size(), 202u);
  FeedResult bytes = feed_bytes(s, kMax);
  ASSERT_TRUE(bytes.status.ok()) << bytes.status.to_string();
  EXPECT_EQ(whole.got, bytes.got);
  for (int round = 0; round < 20; ++round) {
    std::vector<size_t> sizes;
    std::uniform_int_distribution<size_t> d(1, round % 2 ? 7 : 2000);
    for (int i = 0; i < 50; ++i) sizes.push_back(d(rng));
    FeedResult chunked = feed_chunked(s, kMax, sizes);
    ASSERT_TRUE(chunked.status.ok()) << chunked.status.to_string();
    ASSERT_EQ(whole.got, chunked.got) << "round " << round;
  }
}

TEST(RelpFraming, ManyFramesInOneChunk) {
  // A full omrelp window arrives before any answer: 128 commands in one read.
  std::string s = frame(1, "open", kOffer);
  for (uint64_t t = 2; t <= 129; ++t) s += frame(t, "syslog", "<13>msg " + std::to_string(t));
  RelpSession session(1024);
  std::vector<uint64_t> txnrs;
  ASSERT_TRUE(session.feed(s, [&](const RelpSession::Command& c) { txnrs.push_back(c.txnr); }).ok());
  ASSERT_EQ(txnrs.size(), 129u);
  for (size_t i = 0; i < txnrs.size(); ++i) EXPECT_EQ(txnrs[i], i + 1);
  EXPECT_FALSE(session.closed());
}

TEST(RelpFraming, EmptySyslogAndUnknownCommand) {
  std::string s = frame(1, "open", kOffer) + "2 syslog 0\n" + frame(3, "starttls", "") + frame(4, "rsp", "200 OK");
  for (const FeedResult& run : {feed_whole(s), feed_bytes(s)}) {
    ASSERT_TRUE(run.status.ok()) << run.status.to_string();
    ASSERT_EQ(run.got.size(), 4u);
    EXPECT_EQ(run.got[1], (Got{2, Kind::kSyslog, "", false, "syslog"}));
    EXPECT_EQ(run.got[2], (Got{3, Kind::kOther, "", false, "starttls"}));
    EXPECT_EQ(run.got[3], (Got{4, Kind::kOther, "200 OK", false, "rsp"}));
  }
}

TEST(RelpFraming, OversizeSyslogIsCutAndStaysInSync) {
  constexpr size_t kMax = 200;
  std::string big(1000, 'a');
  big[199] = 'Z';
  big[200] = '\n';  // an LF right after the cut must not end the frame
  std::string exact(kMax, 'e');
  std::string s = frame(1, "open", kOffer) + frame(2, "syslog", big) + frame(3, "syslog", exact) +
                  frame(4, "syslog", "after") + frame(5, "close", "");
  for (const FeedResult& run : {feed_whole(s, kMax), feed_bytes(s, kMax), feed_chunked(s, kMax, {3, 150, 11})}) {
    ASSERT_TRUE(run.status.ok()) << run.status.to_string();
    ASSERT_EQ(run.got.size(), 5u);
    EXPECT_EQ(run.got[1].data, big.substr(0, kMax));
    EXPECT_TRUE(run.got[1].truncated);
    EXPECT_EQ(run.got[2].data, exact);
    EXPECT_FALSE(run.got[2].truncated);
    EXPECT_EQ(run.got[3], (Got{4, Kind::kSyslog, "after", false, "syslog"}));
    EXPECT_EQ(run.got[4].kind, Kind::kClose);
  }
}

TEST(RelpFraming, TxnrLeadingZerosAreNumbers) {
  // NUMBER = 1*9DIGIT: "002" is 2, as librelp reads it.
  std::string s = frame(1, "open", kOffer) + "002 syslog 1 x\n";
  FeedResult run = feed_bytes(s);
  ASSERT_TRUE(run.status.ok()) << run.status.to_string();
  EXPECT_EQ(run.got[1].txnr, 2u);
}

// ---------------------------------------------------------------------------
// Open handling.

TEST(RelpOpen, OfferChecks) {
  EXPECT_TRUE(RelpSession::check_open_offer(kOffer).ok());
  EXPECT_TRUE(RelpSession::check_open_offer("commands=syslog").ok());  // librelp does not insist on relp_version
  EXPECT_TRUE(RelpSession::check_open_offer("relp_version=1\ncommands=eventlog,syslog\nfoo=bar\n").ok());
  EXPECT_FALSE(RelpSession::check_open_offer("").ok());
  EXPECT_FALSE(RelpSession::check_open_offer("relp_version=0\ncommands=").ok());
  EXPECT_FALSE(RelpSession::check_open_offer("relp_version=0\ncommands=sysloggy").ok());
  EXPECT_FALSE(RelpSession::check_open_offer("relp_version=\ncommands=syslog").ok());
  EXPECT_FALSE(RelpSession::check_open_offer("relp_version=-1\ncommands=syslog").ok());
  EXPECT_FALSE(RelpSession::check_open_offer("relp_version=0x\ncommands=syslog").ok());
}

TEST(RelpOpen, RefusedOfferLeavesSessionClosedToSyslog) {
  std::string s = frame(1, "open", "relp_version=0\ncommands=eventlog") + frame(2, "syslog", "x");
  FeedResult run = feed_whole(s);
  ASSERT_EQ(run.got.size(), 1u);
  EXPECT_EQ(run.got[0].kind, Kind::kOpen);
  EXPECT_FALSE(run.opened);
  EXPECT_EQ(run.status.code(), Code::kInvalidArgument);
  EXPECT_NE(run.status.message().find("before a successful open"), std::string::npos) << run.status.message();
}

TEST(RelpOpen, OpenedIsSetBeforeTheCallback) {
  RelpSession session(1024);
  bool seen = false;
  ASSERT_TRUE(session
                  .feed(frame(1, "open", kOffer),
                        [&](const RelpSession::Command&) { seen = session.opened(); })
                  .ok());
  EXPECT_TRUE(seen);
}

TEST(RelpOpen, SecondOpenIsDeliveredNotAnError) {
  std::string s = frame(1, "open", kOffer) + frame(2, "syslog", "a") + frame(3, "open", kOffer) + frame(4, "syslog", "b");
  FeedResult run = feed_whole(s);
  ASSERT_TRUE(run.status.ok()) << run.status.to_string();
  ASSERT_EQ(run.got.size(), 4u);
  EXPECT_EQ(run.got[2].kind, Kind::kOpen);
  EXPECT_TRUE(run.opened);
}

TEST(RelpOpen, CloseBeforeOpenIsFine) {
  FeedResult run = feed_whole("1 close 0\n");
  ASSERT_TRUE(run.status.ok());
  ASSERT_EQ(run.got.size(), 1u);
  EXPECT_EQ(run.got[0].kind, Kind::kClose);
  EXPECT_TRUE(run.closed);
}

// ---------------------------------------------------------------------------
// Protocol errors: each must fail the same way whole and byte at a time, after
// delivering exactly the frames before the bad one.

struct BadCase {
  const char* name;
  std::string input;
  size_t delivered;      // frames delivered before the error
  const char* expected;  // part of the error message
  size_t max = 64 * 1024;
};

TEST(RelpErrors, ProtocolErrors) {
  const std::string open = frame(1, "open", kOffer);
  const std::vector<BadCase> cases = {
      {"garbage", "GET / HTTP/1.1\r\n", 0, "expected a frame starting with a txnr digit, found 'G'"},
      {"octet-counted syslog instead of relp", "57 <13>hello\n", 0, "txnr 57 out of sequence, expected 1"},
      {"txnr 0 for a command", open + "0 syslog 3 abc\n", 1, "txnr 0 is reserved"},
      {"txnr 0 for open", "0 open 0\n", 0, "txnr 0 is reserved"},
      {"txnr over 9 digits", open + "1234567890 syslog 1 x\n", 1, "txnr has more than 9 digits"},
      {"txnr out of sequence", open + "3 syslog 1 x\n", 1, "txnr 3 out of sequence, expected 2"},
      {"txnr repeated", open + frame(2, "syslog", "x") + frame(2, "syslog", "x"), 2, "txnr 2 out of sequence"},
      {"huge DATALEN", open + "2 syslog 1234567890 x\n", 1, "DATALEN has more than 9 digits"},
      {"missing DATALEN", open + "2 syslog \n", 1, "expected DATALEN digits, found byte 0x0a"},
      {"missing LF", open + "2 syslog 3 abcX3 syslog 1 y\n", 1, "missing LF trailer after 3 data bytes, found 'X'"},
      {"CRLF trailer", open + "2 syslog 3 abc\r\n", 1, "missing LF trailer after 3 data bytes, found byte 0x0d"},
      {"data shorter than DATALEN then next frame", open + "2 syslog 10 abc\n3 syslog 1 x\n", 1,
       "missing LF trailer after 10 data bytes"},
      {"DATALEN 0 with a space", open + "2 syslog 0 \n", 1, "DATALEN is 0, expected the LF trailer, found ' '"},
      {"DATALEN without data", open + "2 syslog 5\n", 1, "expected a space between DATALEN and data"},
      {"syslog before open", "1 syslog 5 hello\n", 0, "command 'syslog' before a successful open"},
      {"unknown command before open", "1 starttls 0\n", 0, "command 'starttls' before a successful open"},
      {"empty command", "1  0\n", 0, "expected a letter or a space in the command, found ' '"},
      {"command over 32 letters", "1 " + std::string(33, 'a') + " 0\n", 0, "command longer than 32 letters"},
      {"digit in command", "1 sys1og 0\n", 0, "found '1'"},
      {"data after close", open + "2 close 0\n3 syslog 1 x\n", 2, "data after close, found '3'"},
      {"stray LF between frames", open + "\n" + frame(2, "syslog", "x"), 1, "found byte 0x0a"},
      {"open over the limit", frame(1, "open", std::string(kOffer) + "\npad=" + std::string(100, 'p')), 0,
       "'open' data of 191 bytes is over the limit of 64", 64},
      {"unknown command over the limit", open + frame(2, "starttls", std::string(300, 'x')), 1,
       "'starttls' data of 300 bytes is over the limit of 200", 200},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.name);
    FeedResult whole = feed_whole(c.input, c.max);
    FeedResult bytes = feed_bytes(c.input, c.max);
    EXPECT_EQ(whole.status.code(), Code::kInvalidArgument);
    EXPECT_NE(whole.status.message().find(c.expected), std::string::npos) << whole.status.message();
    EXPECT_EQ(whole.got.size(), c.delivered);
    EXPECT_EQ(whole.status.message(), bytes.status.message());
    EXPECT_EQ(whole.got, bytes.got);
  }
}

TEST(RelpErrors, MessageNamesTheStreamByte) {
  std::string s = frame(1, "open", kOffer) + "2 syslog 3 abcX";
  FeedResult run = feed_chunked(s, 1024, {5});
  EXPECT_NE(run.status.message().find("at stream byte " + std::to_string(s.size() - 1)), std::string::npos)
      << run.status.message();
}

TEST(RelpErrors, ErrorIsSticky) {
  RelpSession session(1024);
  int calls = 0;
  auto on_command = [&](const RelpSession::Command&) { ++calls; };
  Status first = session.feed("x", on_command);
  ASSERT_FALSE(first.ok());
  Status again = session.feed(frame(1, "open", kOffer), on_command);
  EXPECT_EQ(again.message(), first.message());
  EXPECT_EQ(calls, 0);
}

TEST(RelpErrors, NothingDeliveredUntilTheTrailerIsSeen) {
  // A frame whose trailer is wrong must not reach the caller (it would be stored
  // and never acked, so the client resends it: a duplicate).
  RelpSession session(1024);
  int syslogs = 0;
  auto on_command = [&](const RelpSession::Command& c) { syslogs += c.kind == Kind::kSyslog; };
  ASSERT_TRUE(session.feed(frame(1, "open", kOffer) + "2 syslog 3 abc", on_command).ok());
  EXPECT_EQ(syslogs, 0);
  EXPECT_FALSE(session.feed("?", on_command).ok());
  EXPECT_EQ(syslogs, 0);
}

// ---------------------------------------------------------------------------
// Memory.

TEST(RelpMemory, NoAllocationPerFrameInSteadyState) {
  constexpr size_t kMax = 4096;
  RelpSession session(kMax);
  uint64_t frames = 0;
  uint64_t bytes = 0;
  RelpSession::OnCommand on_command = [&](const RelpSession::Command& c) {
    ++frames;
    bytes += c.data.size();
  };
  // Warm up: a frame over the limit, split across two feeds, grows the partial
  // buffer to its bound.
  std::string warm = frame(1, "open", kOffer) + frame(2, "syslog", std::string(2 * kMax, 'w'));
  ASSERT_TRUE(session.feed(std::string_view(warm).substr(0, 200), on_command).ok());
  ASSERT_TRUE(session.feed(std::string_view(warm).substr(200), on_command).ok());
  ASSERT_EQ(frames, 2u);

  // Cut the rest into chunks before measuring, so that only feed() is measured.
  std::mt19937 rng(7);
  std::string s = random_frames(rng, kMax, 3, 400) + frame(403, "close", "");
  std::vector<std::string_view> chunks;
  std::uniform_int_distribution<size_t> d(1, 3000);
  for (size_t pos = 0; pos < s.size();) {
    size_t n = std::min(d(rng), s.size() - pos);
    chunks.push_back(std::string_view(s).substr(pos, n));
    pos += n;
  }
  // The counter sees allocations at all (or a zero below would prove nothing).
  const uint64_t probe = g_allocations.load();
  std::string probe_string(1000, 'p');
  ASSERT_GT(g_allocations.load(), probe);

  const uint64_t before = g_allocations.load();
  Status st;
  for (size_t i = 0; i < chunks.size() && st.ok(); ++i) st = session.feed(chunks[i], on_command);
  const uint64_t allocations = g_allocations.load() - before;
  ASSERT_TRUE(st.ok()) << st.to_string();
  EXPECT_TRUE(session.closed());
  EXPECT_EQ(frames, 403u);
  EXPECT_GT(bytes, 0u);
  EXPECT_EQ(allocations, 0u);
}

}  // namespace
}  // namespace logseal::ingest
