// Turns a parsed syslog message into the record's stored fields: a syslog view
// (engine/format.h, docs/FORMAT.md 5.1), offsets into the raw bytes rather than a
// JSON copy of them, so sealing parsed fields costs 64 bytes per record.
#pragma once

#include <cstdint>
#include <string_view>

#include "engine/format.h"
#include "ingest/syslog_parse.h"

namespace logseal::ingest {

// Fills out (kSyslogViewBytes) from f, whose views must point into raw. Returns
// false for an unparsed message (no fields are stored; the record is flagged).
bool make_syslog_view(const SyslogFields& f, std::string_view raw, uint8_t* out);

}  // namespace logseal::ingest
