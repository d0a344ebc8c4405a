// Access control and routing policy of logseald: who may do what to which stream,
// and which stream a syslog record goes to. Loaded from the daemon's TOML file
// (README "Roles and retention"):
//
//   [[identity]]   name, kind ("service" | "human"), tls_subject, tls_san, source,
//                  token_sha256, roles
//   [[role]]       name, streams (names or globs, '*' only), actions
//                  (ingest | read | verify | checkpoint | admin)
//   [[route]]      listener, identity, match = { app_name, hostname, facility,
//                  severity, msgid, procid }, stream
//
// Rules:
//  - Deny by default: with at least one [[identity]], enabled() is true and a
//    caller that identifies no one, or an identity without the action on the
//    stream, is refused. With none, enabled() is false: ingest stays open (the
//    daemon says so once at start); callers that guard reads treat that as
//    deny-all (allowed() is false for everyone).
//  - Separation of duties: a role held by a "service" identity may hold only
//    ingest, verify, checkpoint; a role held by a "human" identity may not hold
//    ingest. A sender credential can never read; an auditor can never write.
//  - Identification: a presented client certificate decides alone (its subject
//    equals tls_subject, or one of its SANs equals a tls_san entry, with or
//    without the "DNS:"/"IP:"/"email:"/"URI:" prefix); else a bearer token (its
//    SHA-256 equals a token_sha256 entry, compared in constant time); else the
//    source address (the most specific `source` range wins, the first identity on
//    a tie; IPv4-mapped IPv6 addresses match IPv4 ranges). A credential that was
//    presented and is not known identifies no one: it never falls back to the
//    source address.
//  - Config errors (unknown keys, unknown roles, bad CIDR, bad hex, duplicate
//    names, subjects or tokens, a kind breaking the rule above) are
//    InvalidArgument naming the table, the entry and the key.
//
// Thread-safety: immutable after parse(); every query is const and allocation-free.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace logseal::ingest {

enum class Action : uint8_t { kIngest, kRead, kVerify, kCheckpoint, kAdmin };
inline constexpr size_t kActionCount = 5;
const char* action_name(Action a);  // "ingest", "read", ...

enum class IdentityKind : uint8_t { kService, kHuman };
const char* identity_kind_name(IdentityKind k);

// The verified client certificate of a TLS peer (TlsSession::peer_subject(),
// peer_sans()); an empty subject and no SANs means no certificate.
struct TlsPeer {
  std::string_view subject;
  std::span<const std::string> sans;
};

// An address range: IPv4 ranges are stored as IPv4-mapped IPv6 (::ffff:a.b.c.d/96+n).
struct Cidr {
  std::array<uint8_t, 16> address{};
  unsigned prefix_bits = 0;  // 0..128, over the 16 bytes
  bool contains(const std::array<uint8_t, 16>& a) const;
};
// "10.1.0.0/16", "::1/128", "127.0.0.1" (a host). Bits set past the prefix are an error.
Result<Cidr> parse_cidr(std::string_view text);

struct Identity {
  std::string name;
  IdentityKind kind = IdentityKind::kService;
  std::string tls_subject;            // "" : not identified by subject
  std::vector<std::string> tls_sans;  // as configured
  std::vector<Cidr> sources;
  std::vector<std::array<uint8_t, 32>> token_sha256;
  std::vector<std::string> roles;  // role names, each defined
  // The stream patterns each action is allowed on, merged from the roles.
  std::array<std::vector<std::string>, kActionCount> streams_by_action;
};

struct Role {
  std::string name;
  std::vector<std::string> streams;  // names or globs ('*' matches any run of characters)
  uint32_t actions_mask = 0;         // bit (1 << Action)
};

// A syslog field a route can match.
enum class RouteField : uint8_t { kAppName, kHostname, kFacility, kSeverity, kMsgid, kProcid };

struct RouteMatch {
  RouteField field = RouteField::kAppName;
  std::string pattern;  // text fields: exact or glob
  int number = -1;      // facility, severity: the code (names are converted)
};

struct Route {
  std::string listener;  // "" : any listener
  std::string identity;  // "" : any sender (also an unidentified one)
  std::vector<RouteMatch> match;
  std::string stream;
};

class AccessPolicy {
 public:
  // Reads the [[identity]], [[role]] and [[route]] tables of a logseald config
  // (other tables are left to the daemon). source_name names the file in errors.
  static Result<AccessPolicy> parse(std::string_view toml_text, const std::string& source_name);

  // At least one [[identity]]: access control is on (deny by default).
  bool enabled() const { return !identities_.empty(); }

  // The identity of a connection: its certificate when it presented one (peer
  // non-null with a subject or SANs), else its source address (may be null).
  const Identity* identify_peer(const TlsPeer* peer, const sockaddr* source) const;
  // The identity whose token_sha256 holds SHA-256(bearer_token); null otherwise.
  const Identity* identify_token(std::string_view bearer_token) const;
  // Certificate, then token (when not empty), then source; see the header comment.
  const Identity* identify(const TlsPeer* peer, std::string_view bearer_token, const sockaddr* source) const;

  // Whether identity (null: nobody) may do action on stream. False for everyone
  // while the policy is not enabled(): callers that keep ingest open check
  // enabled() first.
  bool allowed(const Identity* identity, std::string_view stream, Action action) const;

  const Identity* find_identity(std::string_view name) const;
  const std::vector<Identity>& identities() const { return identities_; }
  const std::vector<Role>& roles() const { return roles_; }
  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Identity> identities_;
  std::vector<Role> roles_;
  std::vector<Route> routes_;
};

// '*' matches any run of characters (also none); everything else matches itself.
bool stream_glob_match(std::string_view pattern, std::string_view text);

// Lower-case hex of SHA-256(data).
std::string sha256_hex(std::string_view data);

// The IPv6 (or IPv4-mapped) form of an AF_INET / AF_INET6 address; false for others.
bool address_bytes(const sockaddr* sa, std::array<uint8_t, 16>& out);

}  // namespace logseal::ingest
