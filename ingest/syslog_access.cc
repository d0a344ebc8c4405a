#include "ingest/syslog_access.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "base/assert.h"

namespace logseal::ingest {

std::string host_text(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (sa == nullptr) return "unknown";
  if (sa->sa_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
  } else if (sa->sa_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
  } else {
    return "unknown";
  }
  return buf;
}

SyslogAccess::SyslogAccess(const AccessPolicy* policy, RefusalLog* refusals, std::vector<std::string> listener_names)
    : policy_(policy),
      refusals_(refusals),
      names_(std::move(listener_names)),
      enforcing_(policy != nullptr && policy->enabled()),
      router_(policy, names_) {
  LS_ASSERT(!enforcing_ || refusals_ != nullptr);
  targets_.resize(names_.size());
  for (auto& t : targets_) t.resize(policy != nullptr ? policy->routes().size() : 0);
}

void SyslogAccess::set_target(size_t l, const std::string& stream, RouteTarget target) {
  const std::vector<Route>& routes = policy_->routes();
  for (size_t i = 0; i < routes.size(); ++i) {
    if (routes[i].stream == stream) targets_[l][i] = target;
  }
}

const Identity* SyslogAccess::identify(const TlsPeer* peer, const sockaddr* source) const {
  if (policy_ == nullptr) return nullptr;
  return policy_->identify_peer(peer, source);
}

const RouteTarget* SyslogAccess::decide(size_t l, const RouteTarget& own, const Identity* who, const sockaddr* source,
                                        const SyslogFields& fields) const {
  const RouteTarget* t = &own;
  if (router_.active(l)) {
    int rule = router_.route(l, who, fields);
    if (rule >= 0) t = &targets_[l][static_cast<size_t>(rule)];
  }
  LS_ASSERT(t->stream != nullptr);
  if (enforcing_ && !policy_->allowed(who, t->stream->name(), Action::kIngest)) {
    refusals_->refuse(names_[l], who, host_text(source), t->stream->name(),
                      who != nullptr ? RefusalReason::kNotAllowed : RefusalReason::kUnknownIdentity, "record");
    return nullptr;
  }
  return t;
}

void SyslogAccess::refuse_connection(size_t l, const sockaddr* source, std::string_view subject,
                                     std::string_view stream) const {
  refusals_->refuse(names_[l], nullptr, host_text(source), stream, RefusalReason::kUnknownIdentity, "connection",
                    subject.empty() ? std::string_view() : subject);
}

}  // namespace logseal::ingest
