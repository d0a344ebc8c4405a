// Access control and routing as the syslog listeners (syslog_server.h) apply them:
// one object per SyslogServer, built at start, read-only afterwards (shared by the
// ingest threads).
//
//  - identify(): a connection's identity once known (TLS: after the handshake, by
//    certificate or else source address; plain TCP, RELP: at accept; UDP: per
//    datagram), by AccessPolicy's rules.
//  - decide(): for one parsed message, the stream (and its PostgreSQL reassembly)
//    it goes to: the first matching [[route]], else the listener's own stream; or
//    null when access control refuses it (already counted, logged and audited
//    through the RefusalLog). The caller drops a refused record and, per protocol,
//    answers RELP "500" for it or closes a TLS syslog connection.
//
// Without identities and routes the server does not build one at all.
#pragma once

#include <sys/socket.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "engine/store.h"
#include "ingest/access.h"
#include "ingest/pg_records.h"
#include "ingest/refusals.h"
#include "ingest/routing.h"
#include "ingest/syslog_parse.h"

namespace logseal::ingest {

struct RouteTarget {
  engine::Stream* stream = nullptr;
  PgStreamIngest* pg = nullptr;  // the stream's reassembly when the listener feeds one
};

class SyslogAccess {
 public:
  // policy: may be null (routing and enforcement off); refusals: must be set when
  // policy->enabled(). Both outlive this object.
  SyslogAccess(const AccessPolicy* policy, RefusalLog* refusals, std::vector<std::string> listener_names);

  // Whether listener l needs decide() at all (access control on, or a route applies).
  bool checks(size_t l) const { return enforcing_ || router_.active(l); }
  bool enforcing() const { return enforcing_; }
  // The streams rules may route listener l's records to.
  std::vector<std::string> route_streams(size_t l) const { return router_.targets(l); }
  // Sets where rule `rule` sends listener l's records (called at start for each
  // target of route_streams(l)).
  void set_target(size_t l, const std::string& stream, RouteTarget target);

  const Identity* identify(const TlsPeer* peer, const sockaddr* source) const;
  const RouteTarget* decide(size_t l, const RouteTarget& own, const Identity* who, const sockaddr* source,
                            const SyslogFields& fields) const;
  // A TLS connection whose certificate identifies no one: counted, logged, audited.
  void refuse_connection(size_t l, const sockaddr* source, std::string_view subject, std::string_view stream) const;

  const std::string& listener_name(size_t l) const { return names_[l]; }

 private:
  const AccessPolicy* policy_;
  RefusalLog* refusals_;
  std::vector<std::string> names_;
  bool enforcing_;
  SyslogRouter router_;
  std::vector<std::vector<RouteTarget>> targets_;  // [listener][rule index in policy->routes()]
};

// "10.1.2.3", "::1": the host part of an address, for logs and _audit records.
std::string host_text(const sockaddr* sa);

}  // namespace logseal::ingest
