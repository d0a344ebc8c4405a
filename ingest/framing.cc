#include "ingest/framing.h"

#include <algorithm>

namespace logseal::ingest {

namespace {
// An octet count is at most 9 digits (RFC 6587 allows any, rsyslog caps far lower);
// anything longer is garbage, not a frame.
constexpr unsigned kLengthDigitsMax = 9;
}  // namespace

Framer::Framer(Framing framing, size_t message_bytes_max)
    : framing_(framing), message_bytes_max_(message_bytes_max) {
  buf_.reserve(std::min<size_t>(message_bytes_max_, 64 * 1024));
}

Status Framer::feed(std::string_view data, const OnMessage& on_message) {
  if (framing_ == Framing::kOctetCounted) return feed_octet(data, on_message);
  if (framing_ == Framing::kAuto) return feed_auto(data, on_message);
  feed_lf(data, on_message);
  return ok_status();
}

void Framer::feed_lf(std::string_view data, const OnMessage& on_message) {
  size_t pos = 0;
  while (pos < data.size()) {
    size_t lf = data.find('\n', pos);
    size_t end = lf == std::string_view::npos ? data.size() : lf;
    std::string_view piece = data.substr(pos, end - pos);
    if (buf_.size() + piece.size() > message_bytes_max_) {
      piece = piece.substr(0, message_bytes_max_ - buf_.size());
      cut_ = true;
    }
    if (lf != std::string_view::npos && buf_.empty() && !cut_) {
      // Fast path: the whole line is in this chunk.
      if (!piece.empty()) on_message(piece, false);
    } else {
      buf_.append(piece);
      if (lf != std::string_view::npos) {
        if (!buf_.empty()) on_message(buf_, cut_);
        buf_.clear();
        cut_ = false;
      }
    }
    offset_ += (lf == std::string_view::npos ? data.size() : lf + 1) - pos;
    pos = lf == std::string_view::npos ? data.size() : lf + 1;
  }
}

Status Framer::feed_octet(std::string_view data, const OnMessage& on_message) {
  size_t used = 0;
  return octet_step(data, on_message, false, used);
}

Status Framer::octet_step(std::string_view data, const OnMessage& on_message, bool one_frame, size_t& used) {
  size_t pos = 0;
  used = 0;
  while (pos < data.size()) {
    if (state_ == State::kLength) {
      char c = data[pos];
      if (c >= '0' && c <= '9') {
        if (length_digits_ == 0 && c == '0') {
          return invalid_argument("octet-counted framing: frame length starts with 0 at input byte " +
                                  std::to_string(offset_));
        }
        if (++length_digits_ > kLengthDigitsMax) {
          return invalid_argument("octet-counted framing: frame length has more than 9 digits at input byte " +
                                  std::to_string(offset_));
        }
        length_ = length_ * 10 + static_cast<uint64_t>(c - '0');
      } else if (c == ' ' && length_digits_ > 0) {
        state_ = State::kBody;
        body_left_ = length_;
        buf_.clear();
        cut_ = length_ > message_bytes_max_;
        if (body_left_ == 0) {
          on_message(std::string_view(), false);
          state_ = State::kLength;
          length_ = 0;
          length_digits_ = 0;
          if (one_frame) {
            used = pos + 1;
            ++offset_;
            return ok_status();
          }
        }
      } else if ((c == '\n' || c == '\r') && length_digits_ == 0) {
        // Some senders put LF between octet-counted frames; tolerate it.
      } else {
        return invalid_argument(std::string("octet-counted framing: expected a digit or a space, found ") +
                                (c >= 0x20 && c < 0x7f ? std::string("'") + c + "'" : "byte " + std::to_string(uint8_t(c))) +
                                " at input byte " + std::to_string(offset_));
      }
      ++pos;
      ++offset_;
      continue;
    }
    size_t take = static_cast<size_t>(std::min<uint64_t>(body_left_, data.size() - pos));
    std::string_view piece = data.substr(pos, take);
    if (buf_.empty() && take == body_left_ && !cut_) {
      on_message(piece, false);  // whole frame in this chunk
    } else {
      size_t room = message_bytes_max_ - std::min(buf_.size(), message_bytes_max_);
      buf_.append(piece.substr(0, std::min(room, piece.size())));
      if (take == body_left_) on_message(buf_, cut_);
    }
    pos += take;
    offset_ += take;
    body_left_ -= take;
    if (body_left_ == 0) {
      state_ = State::kLength;
      length_ = 0;
      length_digits_ = 0;
      buf_.clear();
      cut_ = false;
      if (one_frame) {
        used = pos;
        return ok_status();
      }
    }
  }
  used = pos;
  return ok_status();
}

// Auto framing: decide per frame. While undecided and reading digits we are in
// the octet parser's kLength state; a digit run followed by a space is a count.
// Anything else turns the frame into an LF frame that starts with the bytes seen.
Status Framer::feed_auto(std::string_view data, const OnMessage& on_message) {
  size_t pos = 0;
  while (pos < data.size()) {
    if (!auto_decided_) {
      char c = data[pos];
      if (length_digits_ == 0 && (c == '\n' || c == '\r')) {  // empty line between frames
        ++pos;
        ++offset_;
        continue;
      }
      if (c >= '0' && c <= '9' && length_digits_ < kLengthDigitsMax && !(length_digits_ == 0 && c == '0')) {
        length_ = length_ * 10 + static_cast<uint64_t>(c - '0');
        ++length_digits_;
        ++pos;
        ++offset_;
        continue;
      }
      if (c == ' ' && length_digits_ > 0) {
        // A count: hand this frame to the octet parser from the space on.
        auto_decided_ = true;
        auto_lf_ = false;
      } else {
        // Not a count: an LF frame that begins with the digits already read.
        if (length_digits_ > 0) ++fallbacks_;
        auto_decided_ = true;
        auto_lf_ = true;
        std::string digits = length_digits_ > 0 ? std::to_string(length_) : std::string();
        length_ = 0;
        length_digits_ = 0;
        buf_.assign(digits.substr(0, message_bytes_max_));
        cut_ = digits.size() > message_bytes_max_;
      }
    }
    if (!auto_lf_) {
      // An octet frame: the octet parser takes it from the space on and stops
      // at its end, so the next frame is decided afresh.
      size_t used = 0;
      Status st = octet_step(data.substr(pos), on_message, true, used);
      if (!st.ok()) return st;
      pos += used;
      if (state_ == State::kLength && length_digits_ == 0) auto_decided_ = false;
      continue;
    }
    // LF frame.
    size_t lf = data.find('\n', pos);
    size_t end = lf == std::string_view::npos ? data.size() : lf;
    std::string_view piece = data.substr(pos, end - pos);
    if (lf != std::string_view::npos && buf_.empty() && !cut_ && piece.size() <= message_bytes_max_) {
      // Fast path: the whole line is in this chunk; hand out a view, no copy.
      if (!piece.empty()) on_message(piece, false);
      offset_ += lf + 1 - pos;
      pos = lf + 1;
      auto_decided_ = false;
      continue;
    }
    if (buf_.size() + piece.size() > message_bytes_max_) {
      piece = piece.substr(0, message_bytes_max_ - std::min(buf_.size(), message_bytes_max_));
      cut_ = true;
    }
    buf_.append(piece);
    offset_ += (lf == std::string_view::npos ? data.size() : lf + 1) - pos;
    pos = lf == std::string_view::npos ? data.size() : lf + 1;
    if (lf != std::string_view::npos) {
      if (!buf_.empty()) on_message(buf_, cut_);
      buf_.clear();
      cut_ = false;
      auto_decided_ = false;
    }
  }
  return ok_status();
}

Status Framer::finish(const OnMessage& on_message) {
  if (framing_ == Framing::kAuto) {
    if (!auto_decided_ && length_digits_ > 0) {
      std::string digits = std::to_string(length_);
      on_message(digits, false);
    } else if (auto_decided_ && auto_lf_ && !buf_.empty()) {
      on_message(buf_, cut_);
    } else if (auto_decided_ && !auto_lf_) {
      // The bytes of the frame body read so far are kept, flagged as cut, like
      // an unterminated LF line: a listener commits everything it read (DESIGN.md,
      // TCP syslog ack row); the error still reports the broken framing.
      if (state_ == State::kBody && !buf_.empty()) on_message(buf_, true);
      buf_.clear();
      cut_ = false;
      auto_decided_ = false;
      state_ = State::kLength;
      length_ = 0;
      length_digits_ = 0;
      return invalid_argument("octet-counted framing: input ends inside a frame at input byte " +
                              std::to_string(offset_));
    }
    buf_.clear();
    cut_ = false;
    auto_decided_ = false;
    return ok_status();
  }
  if (framing_ == Framing::kOctetCounted) {
    if (state_ == State::kBody || length_digits_ > 0) {
      return invalid_argument("octet-counted framing: input ends inside a frame at input byte " +
                              std::to_string(offset_));
    }
    return ok_status();
  }
  if (!buf_.empty()) on_message(buf_, cut_);
  buf_.clear();
  cut_ = false;
  return ok_status();
}

}  // namespace logseal::ingest
