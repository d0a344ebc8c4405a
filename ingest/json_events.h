// JSON audit events: splitting a request body (or a backfill line) into events and
// extracting the fields that get sealed next to each event's exact bytes.
//
// Bodies (docs/FORMAT.md §5.1 gives the fields JSON; README "JSON and Kubernetes
// audit events" the HTTP side):
//   kJson    one JSON value: an object (one event) or an array of objects
//   kNdjson  one object per line; blank lines are skipped; CR before LF is allowed
//   kAuto    '[' first: kJson; '{' first: kJson when the whole body is one value,
//            otherwise kNdjson (so `curl -d @file` works without a Content-Type)
//   Kubernetes (k8s_list): an audit.k8s.io EventList object; each of `items` is an
//            event. A single audit.k8s.io Event object is taken as one event.
//
// The whole body is validated before anything is returned (simdjson: grammar,
// UTF-8, nesting depth), so a caller that appends only after parse() succeeded
// never seals part of a bad request. Each event's raw bytes are the exact
// substring of the body, from its '{' to its '}'.
//
// Fields (always a JSON object text, starting with '{'):
//   Kubernetes audit event: {"k8s":{auditID, stage, verb, level, requestURI,
//     user{username, uid, groups}, impersonatedUser{username, groups}, sourceIPs,
//     userAgent, objectRef{resource, namespace, name, apiGroup, apiVersion,
//     subresource}, responseStatus{code}, requestReceivedTimestamp, stageTimestamp}}
//     with members that the event lacks left out. An event is Kubernetes when it
//     came through the Kubernetes endpoint, or carries "apiVersion":"audit.k8s.io/…"
//     and "kind":"Event" (the API server's log backend writes such lines).
//   Any other event: {"event":{...}} with the event's top-level scalar members
//     (strings, numbers, booleans, null) in their order, at most kEventFieldsMax of
//     them, strings longer than kEventStringBytesMax left out (the raw bytes keep
//     everything; fields exist to query by).
//
// Thread: a JsonEventParser is used by one thread at a time (it holds simdjson's
// reusable parser buffers, sized at first use and kept).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace logseal::ingest {

// Bytes simdjson may read past the end of its input. Every buffer handed to
// JsonEventParser must have this many readable bytes after the data (its
// contents do not matter).
inline constexpr size_t kJsonPaddingBytes = 64;
inline constexpr size_t kJsonDepthMax = 128;  // nesting deeper than this is refused (400)
inline constexpr size_t kEventFieldsMax = 64;
inline constexpr size_t kEventStringBytesMax = 1024;

enum class JsonBodyForm { kAuto, kJson, kNdjson };
// From a Content-Type header: application/json -> kJson; application/x-ndjson,
// application/jsonl, application/jsonlines, application/x-jsonlines -> kNdjson;
// anything else (or none) -> kAuto. Parameters (charset) are ignored.
JsonBodyForm body_form_from_content_type(std::string_view content_type);

struct JsonEvent {
  size_t offset_bytes = 0;  // in the body
  size_t size_bytes = 0;
  std::string fields;       // JSON object text
};

// Why a body was refused. offset_bytes is where in the body the problem was found
// (the position simdjson stopped at; for problems of a whole event, its first byte).
struct JsonBodyError {
  enum class Kind { kMalformed, kTooLarge } kind = Kind::kMalformed;
  std::string reason;
  size_t offset_bytes = 0;
};

class JsonEventParser {
 public:
  // Events longer than event_bytes_max are refused (kTooLarge): a record holds the
  // event and its fields, and must fit the stream's record limit.
  explicit JsonEventParser(size_t event_bytes_max);
  ~JsonEventParser();
  JsonEventParser(const JsonEventParser&) = delete;
  JsonEventParser& operator=(const JsonEventParser&) = delete;

  // Splits and validates body (readable for kJsonPaddingBytes past its end). On
  // success `events` holds every event in order (possibly none: an empty
  // EventList); on failure `error` says why and `events` is cleared.
  bool parse_body(std::string_view body, JsonBodyForm form, bool k8s_list, std::vector<JsonEvent>& events,
                  JsonBodyError& error);

  // One event (a backfill line, padded likewise): validates it and sets fields.
  // force_k8s: extract Kubernetes fields whatever the event says.
  bool parse_event(std::string_view text, bool force_k8s, std::string& fields, JsonBodyError& error);

  size_t event_bytes_max() const { return event_bytes_max_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  size_t event_bytes_max_;
};

}  // namespace logseal::ingest
