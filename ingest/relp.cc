#include "ingest/relp.h"

#include <algorithm>
#include <charconv>

namespace logseal::ingest {

namespace {

constexpr std::string_view kRsp = "rsp";
// Our offers, in librelp's order (relp_version first: relpSessConstructOffers).
// relp_version 0 is the only version librelp speaks, and a client refuses a
// server version above its own (relpSessCBrspOpen), so 0 it is. The client
// refuses the session unless "commands" lists syslog (relpSessCltConnChkOffers;
// checked against rsyslogd 8.2302.0: "error in CltConnChkOffers").
constexpr std::string_view kOpenOk = "200 OK\nrelp_version=0\nrelp_software=logseal\ncommands=syslog";
// librelp's rsp parser (scrsp.c readRspHdr) keeps at most 80 bytes of human text.
constexpr size_t kHumanTextMax = 80;

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::string describe(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) return std::string("'") + c + "'";
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string("byte 0x") + kHex[u >> 4] + kHex[u & 15];
}

void append_number(uint64_t v, std::string& out) {
  char tmp[24];
  auto res = std::to_chars(tmp, tmp + sizeof(tmp), v);
  out.append(tmp, res.ptr);
}

// One frame: "TXNR COMMAND DATALEN[ DATA]\n" (relpframe.c relpFrameBuildSendbuf:
// the SP before DATA is written only when there is data).
void append_frame(uint64_t txnr, std::string_view command, std::string_view data, std::string& out) {
  append_number(txnr, out);
  out.push_back(' ');
  out.append(command);
  out.push_back(' ');
  append_number(data.size(), out);
  if (!data.empty()) {
    out.push_back(' ');
    out.append(data);
  }
  out.push_back('\n');
}

bool all_digits(std::string_view s) {
  return !s.empty() && s.size() <= RelpSession::kNumberDigitsMax && std::all_of(s.begin(), s.end(), is_digit);
}

}  // namespace

RelpSession::RelpSession(size_t message_bytes_max) : message_bytes_max_(message_bytes_max) {}

Status RelpSession::fail(std::string what, uint64_t at) {
  state_ = State::kFailed;
  error_ = invalid_argument("relp: " + what + " at stream byte " + std::to_string(at));
  return error_;
}

void RelpSession::reset_frame() {
  txnr_ = 0;
  digits_ = 0;
  command_len_ = 0;
  kind_ = Command::Kind::kOther;
  data_len_ = 0;
  data_left_ = 0;
  cut_ = false;
  buf_.clear();  // keeps its capacity: no allocation for the next spanning frame
}

Status RelpSession::end_command(uint64_t at) {
  std::string_view name(command_, command_len_);
  if (name == "syslog") {
    kind_ = Command::Kind::kSyslog;
  } else if (name == "open") {
    kind_ = Command::Kind::kOpen;
  } else if (name == "close") {
    kind_ = Command::Kind::kClose;
  } else {
    kind_ = Command::Kind::kOther;
  }
  // open and close make sense at any time; everything else needs a session
  // (librelp's server answers a syslog outside one with "500 command disabled"
  // and drops the session).
  if (!opened_ && (kind_ == Command::Kind::kSyslog || kind_ == Command::Kind::kOther)) {
    return fail("command '" + std::string(name) + "' before a successful open", at);
  }
  return ok_status();
}

void RelpSession::deliver(std::string_view data, const OnCommand& on_command) {
  if (kind_ == Command::Kind::kOpen && !opened_) opened_ = check_open_offer(data).ok();
  Command command{txnr_, kind_, data, cut_, std::string_view(command_, command_len_)};
  on_command(command);
  bool close = kind_ == Command::Kind::kClose;
  reset_frame();
  state_ = close ? State::kClosed : State::kTxnr;
}

Status RelpSession::feed(std::string_view data, const OnCommand& on_command) {
  if (state_ == State::kFailed) return error_;
  const size_t n = data.size();
  size_t pos = 0;
  while (pos < n) {
    const uint64_t at = offset_ + pos;
    const char c = data[pos];
    switch (state_) {
      case State::kTxnr:
        if (is_digit(c)) {
          if (digits_ == kNumberDigitsMax) return fail("txnr has more than 9 digits", at);
          txnr_ = txnr_ * 10 + static_cast<uint64_t>(c - '0');
          ++digits_;
          ++pos;
        } else if (c == ' ' && digits_ > 0) {
          if (txnr_ == 0) return fail("txnr 0 is reserved for server hints, a client command needs 1..999999999", at);
          // Strictly sequential, as librelp's server checks (relpframe.c): the
          // caller acks in txnr order, so a gap or a repeat means a broken peer.
          if (txnr_ != expected_txnr_) {
            return fail("txnr " + std::to_string(txnr_) + " out of sequence, expected " +
                            std::to_string(expected_txnr_),
                        at);
          }
          // Latched at 999999999, then 1 again (doc/relp.md).
          expected_txnr_ = expected_txnr_ == kTxnrMax ? 1 : expected_txnr_ + 1;
          digits_ = 0;
          state_ = State::kCommand;
          ++pos;
        } else {
          return fail(digits_ == 0 ? "expected a frame starting with a txnr digit, found " + describe(c)
                                   : "expected a digit or a space in the txnr, found " + describe(c),
                      at);
        }
        break;
      case State::kCommand:
        if (is_alpha(c)) {
          if (command_len_ == kCommandBytesMax) return fail("command longer than 32 letters", at);
          command_[command_len_++] = c;
          ++pos;
        } else if (c == ' ' && command_len_ > 0) {
          LS_RETURN_IF_ERROR(end_command(at));
          state_ = State::kDataLen;
          ++pos;
        } else {
          return fail("expected a letter or a space in the command, found " + describe(c), at);
        }
        break;
      case State::kDataLen:
        if (is_digit(c)) {
          if (digits_ == kNumberDigitsMax) return fail("DATALEN has more than 9 digits", at);
          data_len_ = data_len_ * 10 + static_cast<uint64_t>(c - '0');
          ++digits_;
          ++pos;
        } else if (digits_ == 0) {
          return fail("expected DATALEN digits, found " + describe(c), at);
        } else if (data_len_ == 0) {
          // No data: no SP, the trailer follows at once (relpframe.c).
          if (c != '\n') return fail("DATALEN is 0, expected the LF trailer, found " + describe(c), at);
          ++pos;
          deliver(std::string_view(), on_command);
        } else if (c != ' ') {
          return fail("expected a space between DATALEN and data, found " + describe(c), at);
        } else {
          if (data_len_ > message_bytes_max_) {
            // Syslog data can be cut and flagged; an offer or an unknown
            // command's data cut short would mean something else.
            if (kind_ != Command::Kind::kSyslog) {
              return fail("'" + std::string(command_, command_len_) + "' data of " + std::to_string(data_len_) +
                              " bytes is over the limit of " + std::to_string(message_bytes_max_),
                          at);
            }
            cut_ = true;
          }
          data_left_ = data_len_;
          state_ = State::kData;
          ++pos;
        }
        break;
      case State::kData: {
        const size_t avail = n - pos;
        const size_t keep = static_cast<size_t>(std::min<uint64_t>(data_len_, message_bytes_max_));
        if (data_left_ == data_len_ && avail > data_left_) {
          // The whole data and the trailer are in this chunk: no copy.
          const size_t end = pos + static_cast<size_t>(data_left_);
          if (data[end] != '\n') {
            return fail("missing LF trailer after " + std::to_string(data_len_) + " data bytes, found " +
                            describe(data[end]),
                        offset_ + end);
          }
          std::string_view view = data.substr(pos, keep);
          pos = end + 1;
          deliver(view, on_command);
          break;
        }
        const size_t take = static_cast<size_t>(std::min<uint64_t>(data_left_, avail));
        if (buf_.size() < keep) buf_.append(data.data() + pos, std::min(take, keep - buf_.size()));
        pos += take;
        data_left_ -= take;
        if (data_left_ == 0) state_ = State::kTrailer;
        break;
      }
      case State::kTrailer:
        if (c != '\n') {
          return fail("missing LF trailer after " + std::to_string(data_len_) + " data bytes, found " + describe(c),
                      at);
        }
        ++pos;
        deliver(buf_, on_command);
        break;
      case State::kClosed:
        // The client must send nothing after close (doc/relp.md); librelp's
        // server drops the session at that point too.
        return fail("data after close, found " + describe(c), at);
      case State::kFailed:
        return error_;
    }
  }
  offset_ += n;
  return ok_status();
}

Status RelpSession::check_open_offer(std::string_view offer) {
  // Offers: lines of NAME[=VALUE*(,VALUE)] (offers.c relpOffersConstructFromFrame).
  bool syslog = false;
  size_t pos = 0;
  while (pos <= offer.size()) {
    size_t lf = offer.find('\n', pos);
    if (lf == std::string_view::npos) lf = offer.size();
    std::string_view line = offer.substr(pos, lf - pos);
    pos = lf + 1;
    if (line.empty()) continue;
    size_t eq = line.find('=');
    std::string_view name = line.substr(0, eq);
    std::string_view values = eq == std::string_view::npos ? std::string_view() : line.substr(eq + 1);
    bool is_version = name == "relp_version";
    bool is_commands = name == "commands";
    if (!is_version && !is_commands) continue;  // unknown offers are ignored, as librelp does
    size_t count = 0;
    size_t vpos = 0;
    while (vpos < values.size()) {
      size_t comma = values.find(',', vpos);
      if (comma == std::string_view::npos) comma = values.size();
      std::string_view value = values.substr(vpos, comma - vpos);
      vpos = comma + 1;
      if (value.empty()) continue;  // librelp skips empty values too
      ++count;
      if (is_version && !all_digits(value)) return invalid_argument("relp_version offer is not a number");
      if (is_commands && value == "syslog") syslog = true;
    }
    if (is_version && count == 0) return invalid_argument("relp_version offer has no value");
  }
  // librelp's text for this case (copen.c), so operators see the same message.
  if (!syslog) return invalid_argument("required command not supported by client");
  return ok_status();
}

void RelpSession::append_open_response(uint64_t txnr, std::string_view offer_from_client, std::string& out) {
  Status st = check_open_offer(offer_from_client);
  if (!st.ok()) {
    append_error(txnr, 500, st.message(), out);
    return;
  }
  append_frame(txnr, kRsp, kOpenOk, out);
}

void RelpSession::append_ok(uint64_t txnr, std::string& out) { append_frame(txnr, kRsp, "200 OK", out); }

void RelpSession::append_error(uint64_t txnr, int code, std::string_view why, std::string& out) {
  // RSP-HEADER = 3DIGIT SP HUMAN-TEXT; librelp rejects a code that is not three
  // digits, and reads the text only up to an LF or 80 bytes.
  if (code < 100 || code > 999) code = 500;
  char data[3 + 1 + kHumanTextMax];
  data[0] = static_cast<char>('0' + code / 100);
  data[1] = static_cast<char>('0' + code / 10 % 10);
  data[2] = static_cast<char>('0' + code % 10);
  data[3] = ' ';
  size_t len = 4;
  if (why.empty()) why = "error";
  for (char c : why.substr(0, kHumanTextMax)) {
    auto u = static_cast<unsigned char>(c);
    data[len++] = (u < 0x20 || u == 0x7f) ? ' ' : c;
  }
  append_frame(txnr, kRsp, std::string_view(data, len), out);
}

void RelpSession::append_close_response(uint64_t txnr, std::string& out) { append_frame(txnr, kRsp, {}, out); }

void RelpSession::append_serverclose(std::string& out) { append_frame(0, "serverclose", {}, out); }

}  // namespace logseal::ingest
