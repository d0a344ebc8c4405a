// The read API's handlers over a live store (AdminHandlers in admin_http.h):
// stream summaries, records export and proofs read from the data directory the
// way `logseal export` and `logseal prove` read it; legal hold through
// engine/retention's set_legal_hold; roll through Stream::request_roll; audit
// records through engine/audit.h. Access control is not here: the caller sets
// AdminHandlers::authorize, e.g. to api_authorizer(policy).
#pragma once

#include <map>
#include <string>

#include "engine/retention.h"
#include "engine/store.h"
#include "ingest/access.h"
#include "ingest/admin_http.h"

namespace logseal::ingest {

struct ReadApiOptions {
  // Configured retention policies ([streams.NAME]), shown in /v1/streams and
  // counted in a stream's legal hold.
  std::map<std::string, engine::RetentionPolicy> policies;
};

// Fills stream_names, stream_json, records, proof, hold, roll and audit of h.
// The store must outlive every AdminHttp started with h.
void add_read_api(AdminHandlers& h, engine::Store& store, ReadApiOptions options);

// AdminHandlers::authorize from the access policy ([[identity]]/[[role]]). The
// API identifies callers by bearer token only (Authorization: Bearer): no token
// or an unknown one is 401, a known identity without the action on the stream
// is 403. A source address never identifies an API caller, so a sender's address
// range cannot read. The policy must outlive the function and be enabled().
std::function<ApiDecision(const ApiCaller&, const std::string& stream, ApiAction)> api_authorizer(
    const AccessPolicy& policy);

}  // namespace logseal::ingest
