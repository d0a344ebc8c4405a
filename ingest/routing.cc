#include "ingest/routing.h"

#include <algorithm>

namespace logseal::ingest {

bool route_field_matches(const RouteMatch& m, const SyslogFields& f) {
  if (f.kind == SyslogFields::Kind::kUnparsed) return false;
  switch (m.field) {
    case RouteField::kFacility:
      return f.facility == m.number;
    case RouteField::kSeverity:
      return f.severity == m.number;
    case RouteField::kAppName:
      return stream_glob_match(m.pattern, f.app_name);
    case RouteField::kHostname:
      return stream_glob_match(m.pattern, f.hostname);
    case RouteField::kMsgid:
      return stream_glob_match(m.pattern, f.msgid);
    case RouteField::kProcid:
      return stream_glob_match(m.pattern, f.procid);
  }
  return false;
}

SyslogRouter::SyslogRouter(const AccessPolicy* policy, const std::vector<std::string>& listener_names) {
  rules_.resize(listener_names.size());
  if (policy == nullptr) return;
  const std::vector<Route>& routes = policy->routes();
  for (size_t l = 0; l < listener_names.size(); ++l) {
    for (size_t i = 0; i < routes.size(); ++i) {
      const Route& r = routes[i];
      if (!r.listener.empty() && r.listener != listener_names[l]) continue;
      Rule rule;
      rule.index = static_cast<int>(i);
      rule.route = &r;
      if (!r.identity.empty()) rule.identity = policy->find_identity(r.identity);
      rules_[l].push_back(rule);
    }
  }
}

int SyslogRouter::route(size_t listener, const Identity* sender, const SyslogFields& fields) const {
  for (const Rule& rule : rules_[listener]) {
    if (rule.identity != nullptr && rule.identity != sender) continue;
    bool all = true;
    for (const RouteMatch& m : rule.route->match) {
      if (!route_field_matches(m, fields)) {
        all = false;
        break;
      }
    }
    if (all) return rule.index;
  }
  return -1;
}

std::vector<std::string> SyslogRouter::targets(size_t listener) const {
  std::vector<std::string> out;
  if (listener >= rules_.size()) return out;
  for (const Rule& rule : rules_[listener]) {
    if (std::find(out.begin(), out.end(), rule.route->stream) == out.end()) out.push_back(rule.route->stream);
  }
  return out;
}

}  // namespace logseal::ingest
