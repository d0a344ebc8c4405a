// Syslog message parsing: RFC 5424 and RFC 3164 as real senders produce it
// (rsyslog, logger, PostgreSQL via rsyslog), into views for `fields.syslog`.
//
// Contract:
// - Input is one message: the exact bytes of a frame or datagram, after framing.
//   A trailing NUL, LF or CR LF is a terminator, not part of MSG; a lone trailing
//   CR is content (logger sends it when its input line ends in CR).
// - parse_syslog never fails and never allocates: every field is a view into the
//   input, so the input must outlive the result. The record keeps the raw bytes;
//   the fields are a convenience for search and export, never the evidence.
// - Thread-safe: no state.
//
// Which form a message gets:
//   "<PRI>1 SP ..." with a well-formed RFC 5424 header     -> kRfc5424
//   "<PRI>" followed by anything else                       -> kRfc3164 (as much
//       of TIMESTAMP HOSTNAME TAG[PID]: as is recognisable; the rest is msg)
//   no valid PRI (missing, not 0..191)                      -> kUnparsed (msg = input)
//
// RFC 5424 details: fields equal to NILVALUE ("-") are kept as "-" in the views and
// omitted from JSON. structured_data is the raw SD text (escapes not undone), "-"
// when absent. MSG is exactly the bytes after the SP that follows SD (a leading
// space is content: rsyslog's forwarding template puts one there); a UTF-8 BOM at
// its start is dropped from msg and reported in has_bom. If the header is fine but
// the SD is malformed, the header fields are kept, structured_data is empty and msg
// is everything after MSGID, so no byte is hidden.
//
// RFC 3164 details (follows rsyslog's pmrfc3164 so both agree on the same bytes):
// timestamp "Mmm dd hh:mm:ss" / "Mmm  d hh:mm:ss" (optional fraction) or RFC 3339
// (rsyslog's RSYSLOG_ForwardFormat); HOSTNAME is the next word only when it is made
// of hostname characters [A-Za-z0-9._-] and followed by SP (or the end), so local
// forms without a hostname ("sudo[12]: ...", "sudo: ...") keep the tag; TAG ends
// at ':' or SP, "[PID]" at its end becomes procid; one SP after "TAG:" is a
// separator. Without a recognisable timestamp only a plain "TAG: " is taken and
// the rest is msg.
#pragma once

#include <string>
#include <string_view>

namespace logseal::ingest {

struct SyslogFields {
  enum class Kind { kRfc5424, kRfc3164, kUnparsed };

  int facility = -1;  // PRI / 8, 0..23; -1 when kUnparsed
  int severity = -1;  // PRI % 8, 0..7; -1 when kUnparsed
  std::string_view timestamp;
  std::string_view hostname;
  std::string_view app_name;         // RFC 3164: TAG without "[PID]"
  std::string_view procid;           // RFC 3164: the PID inside TAG's brackets
  std::string_view msgid;            // RFC 5424 only
  std::string_view structured_data;  // RFC 5424 only, raw
  std::string_view msg;
  Kind kind = Kind::kUnparsed;
  bool has_bom = false;  // RFC 5424 MSG started with a UTF-8 BOM (not in msg)
};

// Parses one message; see the contract above.
SyslogFields parse_syslog(std::string_view message);

// Appends the `fields` object of a record:
//   {"syslog":{"facility":16,"severity":6,"timestamp":"...","hostname":"...",
//    "app_name":"...","procid":"...","msgid":"...","structured_data":"...","msg":"..."}}
// Numbers stay numbers; string fields that are NILVALUE ("-") or empty are omitted;
// msg is always present. Bytes that are not valid UTF-8 become U+FFFD in the JSON
// text only (the raw record keeps them), so the output is always valid JSON.
// Returns false and appends nothing for kUnparsed.
bool append_syslog_json(const SyslogFields& f, std::string& out);

}  // namespace logseal::ingest
