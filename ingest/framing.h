// Framing of a byte stream into messages: RFC 6587 octet counting ("LEN SP MSG"),
// LF-terminated (RFC 6587 non-transparent framing) and plain lines. Incremental:
// feed() takes bytes as they arrive (a socket or a file read), so a frame may
// span any number of calls. Bounded: a message longer than message_bytes_max is
// cut to that size and flagged, and the rest of it is skipped without losing the
// frame boundary.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace logseal::ingest {

// kAuto: per frame, as rsyslog's imptcp does: a frame that starts with a digit
// is octet-counted, anything else runs to the next LF. Octet-counted frames whose
// length turns out not to be a number are taken as LF-framed instead (counted).
enum class Framing { kLines, kOctetCounted, kLf, kAuto };

class Framer {
 public:
  // Called once per message. msg is valid during the call only.
  using OnMessage = std::function<void(std::string_view msg, bool truncated)>;

  Framer(Framing framing, size_t message_bytes_max);

  // InvalidArgument when octet-counted framing is broken (the message says at
  // which input byte); every message before it has been delivered.
  Status feed(std::string_view data, const OnMessage& on_message);
  // End of input: delivers a last line without its LF; InvalidArgument if the
  // input ends inside an octet-counted frame.
  Status finish(const OnMessage& on_message);

  uint64_t bytes_consumed() const { return offset_; }
  // kAuto: frames that looked octet-counted but were not (taken as LF-framed).
  uint64_t framing_fallbacks() const { return fallbacks_; }

 private:
  Status feed_octet(std::string_view data, const OnMessage& on_message);
  // Octet parsing; with one_frame it returns after the first complete frame.
  // used: bytes of data consumed.
  Status octet_step(std::string_view data, const OnMessage& on_message, bool one_frame, size_t& used);
  void feed_lf(std::string_view data, const OnMessage& on_message);

  Framing framing_;
  size_t message_bytes_max_;
  uint64_t offset_ = 0;  // input bytes seen
  // Current partial message (bounded by message_bytes_max_).
  std::string buf_;
  bool cut_ = false;  // current message exceeded the limit
  // Octet counting state.
  enum class State { kLength, kBody } state_ = State::kLength;
  uint64_t length_ = 0;
  unsigned length_digits_ = 0;
  uint64_t body_left_ = 0;
  // kAuto: the current frame's framing is decided (true) and is LF.
  bool auto_decided_ = false;
  bool auto_lf_ = false;
  uint64_t fallbacks_ = 0;
  Status feed_auto(std::string_view data, const OnMessage& on_message);
};

}  // namespace logseal::ingest
