// Stream routing of syslog records ([[route]] rules of the access policy,
// ingest/access.h): after a message is parsed, the first rule whose listener,
// identity and field matches all hold picks its stream; without a match the record
// goes to its listener's own stream.
//
// Cost: a listener no rule can apply to has no rules here (active() is false) and
// the caller skips routing entirely. Matching compares views of the parsed message
// with the rules' patterns; nothing is allocated.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "ingest/access.h"
#include "ingest/syslog_parse.h"

namespace logseal::ingest {

class SyslogRouter {
 public:
  SyslogRouter() = default;
  // listener_names: the name of each listener, by listener index. Rules naming a
  // listener not in the list apply to none of these (they may name an HTTP
  // listener, or the daemon checked them already).
  SyslogRouter(const AccessPolicy* policy, const std::vector<std::string>& listener_names);

  bool active(size_t listener) const { return listener < rules_.size() && !rules_[listener].empty(); }
  // The index of the first matching rule in policy->routes(), or -1.
  int route(size_t listener, const Identity* sender, const SyslogFields& fields) const;
  // The streams rules may route records of this listener to (each once).
  std::vector<std::string> targets(size_t listener) const;

 private:
  struct Rule {
    int index = -1;
    const Route* route = nullptr;
    const Identity* identity = nullptr;  // null: any sender
  };
  std::vector<std::vector<Rule>> rules_;  // by listener
};

// Whether one match clause holds for a parsed message (an unparsed message has
// no fields: only rules without match clauses apply to it).
bool route_field_matches(const RouteMatch& m, const SyslogFields& f);

}  // namespace logseal::ingest
