// RELP (Reliable Event Logging Protocol) server side, as spoken by rsyslog's
// omrelp through librelp: an incremental codec with no I/O, so it can run on the
// io_uring thread that owns the socket. The caller feeds received bytes, gets
// each complete command, and appends the responses it decides on to its own
// send buffer.
//
// Wire format (librelp doc/relp.md, src/relpframe.c):
//   FRAME   = TXNR SP COMMAND SP DATALEN [SP DATA] LF
//   TXNR    = 1*9DIGIT, 1..999999999; 0 is reserved for server hints
//   COMMAND = 1*32ALPHA (open, syslog, close; anything else is kOther)
//   DATALEN = 1*9DIGIT; 0 means no SP and no DATA
// A session, as captured from rsyslogd 8.2302.0 / librelp 1.11.0 talking to
// imrelp (see tests/relp_test.cc for the exact bytes):
//   C: 1 open 86 relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog\n
//   S: 1 rsp 93 200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog\n
//   C: 2 syslog 68 <13>2026-01-02T03:04:05+00:00 host1 app[123]: hello ...\n
//   S: 2 rsp 6 200 OK\n
//   ... (more syslog commands and acks)
//   C: 5 close 0\n
//   S: 5 rsp 0\n0 serverclose 0\n        (then the server closes the socket)
//
// What the caller must know:
// - Acks are late. The appliance answers "200 OK" to a syslog command only once
//   its record is durable, so the caller queues each syslog txnr and sends
//   append_ok later. RELP requires responses in the order the commands arrived
//   (doc/relp.md, "Responses must be sent by the server in the exact same order
//   as commands where received"), so flush acks in txnr order.
// - Windows: omrelp keeps up to 128 commands outstanding by default (observed:
//   it sends txnrs 2..129 and then waits), so many commands arrive before any
//   answer. The codec never assumes a command was answered; it keeps no per-txnr
//   state at all.
// - Open: answer with append_open_response. If the client's offer is not
//   acceptable (no commands=syslog, or a relp_version that is not a number),
//   opened() stays false after the kOpen callback and append_open_response
//   writes the 500 that librelp's imrelp sends in that case; the caller sends it
//   and closes. A second open inside an open session is harmless (librelp sends
//   one in some reconnect paths and its server answers 200): it is delivered as
//   kOpen again and answered the same way.
// - Close: the close response goes behind every pending syslog ack (order!),
//   then librelp's server also sends append_serverclose and closes the socket.
//   Any byte after a close is a protocol error.
// - kOther (e.g. "starttls", a client "rsp"): answer append_error(txnr, 500, ...)
//   or close; librelp's server tears the session down on unknown commands.
// - Errors: feed() returns InvalidArgument on the first protocol error; the
//   caller closes the connection (RELP's error handling is "close, the client
//   reconnects and resends what was not acked"). The error is sticky.
// - Shutdown: send append_serverclose before closing so omrelp reconnects at
//   once instead of on its next send.
//
// Bounded memory: the header is parsed by a state machine (nothing buffered);
// data is passed as a view into the fed chunk when the whole frame is in it, and
// otherwise copied into one buffer of at most message_bytes_max bytes. No
// allocation per frame once that buffer has grown.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace logseal::ingest {

class RelpSession {
 public:
  // Limits from the RELP grammar (doc/relp.md: NUMBER = 1*9DIGIT, COMMAND = 1*32ALPHA).
  static constexpr uint64_t kTxnrMax = 999999999;
  static constexpr unsigned kNumberDigitsMax = 9;
  static constexpr size_t kCommandBytesMax = 32;

  // message_bytes_max bounds the data of one frame: longer syslog data is cut and
  // flagged; longer data of any other command is a protocol error (an offer cut
  // in half would change its meaning).
  explicit RelpSession(size_t message_bytes_max);

  struct Command {
    enum class Kind { kOpen, kSyslog, kClose, kOther };
    uint64_t txnr;
    Kind kind;
    // Valid during the callback only. For kSyslog, the syslog message as sent
    // (omrelp's default template RSYSLOG_ForwardFormat, no trailing LF); for
    // kOpen, the client's offers.
    std::string_view data;
    // kSyslog only: DATALEN was over message_bytes_max; data holds the first
    // message_bytes_max bytes and the rest was skipped.
    bool truncated;
    // The command word as received (e.g. "starttls" for a kOther).
    std::string_view name;
  };
  using OnCommand = std::function<void(const Command&)>;

  // Feeds received bytes; calls on_command for each complete frame, in order.
  // InvalidArgument on a protocol error (the message names the stream byte); every
  // frame before it has been delivered, none after it will be.
  Status feed(std::string_view data, const OnCommand& on_command);

  // Response builders; each appends one complete frame to out.
  // "TXNR rsp LEN 200 OK\nrelp_version=0\nrelp_software=logseal\ncommands=syslog\n",
  // or the 500 librelp sends when check_open_offer refuses the client's offer.
  static void append_open_response(uint64_t txnr, std::string_view offer_from_client, std::string& out);
  // "TXNR rsp 6 200 OK\n"
  static void append_ok(uint64_t txnr, std::string& out);
  // "TXNR rsp LEN CODE why\n". code must be three digits (anything else is sent
  // as 500); why is cut to the 80 bytes librelp reads and any LF/CR/control byte
  // becomes a space, since an LF would end the human text early.
  static void append_error(uint64_t txnr, int code, std::string_view why, std::string& out);
  // "TXNR rsp 0\n": exactly what librelp's server sends (cclose.c), captured.
  static void append_close_response(uint64_t txnr, std::string& out);
  // "0 serverclose 0\n": the hint librelp's server sends before it closes.
  static void append_serverclose(std::string& out);

  // Whether a client offer is acceptable: it must list syslog in "commands"
  // (imrelp requires it, and it is the only command we serve), and a
  // relp_version offer, when present, must be a number (as librelp checks).
  static Status check_open_offer(std::string_view offer_from_client);

  // An open with an acceptable offer has been received.
  bool opened() const { return opened_; }
  // A close has been received; the session takes no more bytes.
  bool closed() const { return state_ == State::kClosed; }
  uint64_t bytes_consumed() const { return offset_; }

 private:
  enum class State { kTxnr, kCommand, kDataLen, kData, kTrailer, kClosed, kFailed };

  Status fail(std::string what, uint64_t at);
  // The command word is complete: classify it and check it is allowed now.
  Status end_command(uint64_t at);
  // The frame is complete (trailer seen): update the session and deliver.
  void deliver(std::string_view data, const OnCommand& on_command);
  void reset_frame();

  size_t message_bytes_max_;
  State state_ = State::kTxnr;
  Status error_;
  bool opened_ = false;
  uint64_t offset_ = 0;         // stream bytes consumed by earlier feed() calls
  uint64_t expected_txnr_ = 1;  // RELP txnrs start at 1 and go up by one

  // Current frame.
  uint64_t txnr_ = 0;
  unsigned digits_ = 0;  // digits of the number being read (txnr or datalen)
  char command_[kCommandBytesMax] = {};
  size_t command_len_ = 0;
  Command::Kind kind_ = Command::Kind::kOther;
  uint64_t data_len_ = 0;
  uint64_t data_left_ = 0;  // data bytes not yet read
  bool cut_ = false;
  // Data of a frame that spans feed() calls (at most message_bytes_max_ bytes).
  std::string buf_;
};

}  // namespace logseal::ingest
