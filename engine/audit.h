// The appliance's own audit stream `_audit` (issue 8, item 3): governance
// actions sealed as records of a stream of their own, verified like any other.
// So far retention writes here (prune runs, refusals, legal hold changes); the
// record shape is meant for the other actions too (authentication failures,
// refused records, config reloads, exports, key events).
//
// A record: kind log, source "logseal:audit", raw = fields = one JSON object
// {"audit":{"action":"...","time_ns":N,...}} (raw is the event as the appliance
// made it; fields the same text, so `export --where audit.action=...` finds it).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "engine/store.h"

namespace logseal::engine {

inline constexpr char kAuditStream[] = "_audit";

// Appends {"audit":{"action":action,"time_ns":...,<members>}} to `_audit`;
// members is a JSON member list without braces ("\"stream\":\"db\",...") or
// empty. Returns the record's index. Thread-safe (Stream::append).
Result<uint64_t> append_audit(Store& store, std::string_view action, std::string_view members);

}  // namespace logseal::engine
