#include "ingest/access.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "engine/format.h"

namespace logseal::ingest {

namespace {

constexpr const char* kActionNames[kActionCount] = {"ingest", "read", "verify", "checkpoint", "admin"};
constexpr uint32_t bit(Action a) { return 1u << static_cast<unsigned>(a); }
constexpr uint32_t kServiceActions = bit(Action::kIngest) | bit(Action::kVerify) | bit(Action::kCheckpoint);
constexpr uint32_t kHumanForbidden = bit(Action::kIngest);

// syslog facility and severity names (RFC 5424 table 1 and 2, as syslog.conf spells them).
constexpr const char* kFacilities[] = {"kern",   "user",     "mail",    "daemon", "auth",     "syslog",
                                       "lpr",    "news",     "uucp",    "cron",   "authpriv", "ftp",
                                       "ntp",    "security", "console", "cron2",  "local0",   "local1",
                                       "local2", "local3",   "local4",  "local5", "local6",   "local7"};
constexpr const char* kSeverities[] = {"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"};

std::string where(const std::string& source, const char* table, size_t i, const std::string& name) {
  std::string w = "config " + source + ": [[" + table + "]] #" + std::to_string(i + 1);
  if (!name.empty()) w += " (" + name + ")";
  return w;
}

// A string or an array of strings (both spellings are accepted for list keys).
Result<std::vector<std::string>> strings(const toml::node& node, const std::string& what) {
  std::vector<std::string> out;
  if (auto s = node.value<std::string>()) {
    out.push_back(*s);
    return out;
  }
  const toml::array* arr = node.as_array();
  if (arr == nullptr) return invalid_argument(what + " must be a string or an array of strings");
  for (const toml::node& e : *arr) {
    auto s = e.value<std::string>();
    if (!s) return invalid_argument(what + " must hold only strings");
    out.push_back(*s);
  }
  return out;
}

Result<std::string> one_string(const toml::node& node, const std::string& what) {
  auto s = node.value<std::string>();
  if (!s || s->empty()) return invalid_argument(what + " must be a non-empty string");
  return *s;
}

Result<std::array<uint8_t, 32>> parse_sha256_hex(std::string_view hex, const std::string& what) {
  std::array<uint8_t, 32> out{};
  if (hex.size() != 64) {
    return invalid_argument(what + " '" + std::string(hex) + "' is not a SHA-256 in hex (64 hex digits; " +
                            "make one with `logseal token new` or `logseal token hash`)");
  }
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < 32; ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return invalid_argument(what + " '" + std::string(hex) + "' holds a character that is not a hex digit");
    }
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return out;
}

std::array<uint8_t, 32> sha256_bytes(std::string_view data) {
  std::array<uint8_t, 32> d{};
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), d.data());
  return d;
}

Result<int> code_of(const toml::node& node, const char* const* names, size_t count, int max, const std::string& what) {
  if (auto n = node.value<int64_t>()) {
    if (*n < 0 || *n > max) return invalid_argument(what + " must be 0.." + std::to_string(max));
    return static_cast<int>(*n);
  }
  if (auto s = node.value<std::string>()) {
    for (size_t i = 0; i < count; ++i) {
      if (*s == names[i]) return static_cast<int>(i);
    }
    std::string list;
    for (size_t i = 0; i < count; ++i) list += (i ? ", " : "") + std::string(names[i]);
    return invalid_argument(what + " '" + *s + "' is not known (" + list + ", or the number)");
  }
  return invalid_argument(what + " must be a name or a number");
}

bool san_matches(std::string_view configured, std::string_view san) {
  if (configured == san) return true;
  size_t colon = san.find(':');
  return colon != std::string_view::npos && configured == san.substr(colon + 1);
}

}  // namespace

const char* action_name(Action a) { return kActionNames[static_cast<size_t>(a)]; }

const char* identity_kind_name(IdentityKind k) { return k == IdentityKind::kService ? "service" : "human"; }

bool Cidr::contains(const std::array<uint8_t, 16>& a) const {
  unsigned full = prefix_bits / 8, rest = prefix_bits % 8;
  if (std::memcmp(a.data(), address.data(), full) != 0) return false;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[full] & mask) == (address[full] & mask);
}

Result<Cidr> parse_cidr(std::string_view text) {
  std::string addr(text);
  std::string bits;
  size_t slash = addr.find('/');
  if (slash != std::string::npos) {
    bits = addr.substr(slash + 1);
    addr.resize(slash);
  }
  Cidr c;
  unsigned max_bits = 0, offset_bits = 0;
  in_addr v4{};
  in6_addr v6{};
  if (::inet_pton(AF_INET, addr.c_str(), &v4) == 1) {
    c.address[10] = c.address[11] = 0xff;
    std::memcpy(&c.address[12], &v4, 4);
    max_bits = 32;
    offset_bits = 96;
  } else if (::inet_pton(AF_INET6, addr.c_str(), &v6) == 1) {
    std::memcpy(c.address.data(), &v6, 16);
    max_bits = 128;
  } else {
    return invalid_argument("'" + std::string(text) + "' is not an address range (e.g. 10.1.0.0/16, ::1/128)");
  }
  unsigned n = max_bits;
  if (slash != std::string::npos) {
    if (bits.empty() || bits.size() > 3 ||
        !std::all_of(bits.begin(), bits.end(), [](char ch) { return ch >= '0' && ch <= '9'; }) ||
        std::stoul(bits) > max_bits) {
      return invalid_argument("'" + std::string(text) + "': the prefix length must be 0.." + std::to_string(max_bits));
    }
    n = static_cast<unsigned>(std::stoul(bits));
  }
  c.prefix_bits = offset_bits + n;
  for (unsigned b = c.prefix_bits; b < 128; ++b) {
    if (c.address[b / 8] & (0x80 >> (b % 8))) {
      return invalid_argument("'" + std::string(text) + "' has address bits set past its prefix length");
    }
  }
  return c;
}

bool address_bytes(const sockaddr* sa, std::array<uint8_t, 16>& out) {
  if (sa == nullptr) return false;
  if (sa->sa_family == AF_INET) {
    out.fill(0);
    out[10] = out[11] = 0xff;
    std::memcpy(&out[12], &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, 4);
    return true;
  }
  if (sa->sa_family == AF_INET6) {
    std::memcpy(out.data(), &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, 16);
    return true;
  }
  return false;
}

bool stream_glob_match(std::string_view p, std::string_view t) {
  // Iterative '*' matching with one backtrack point: linear in practice, no allocation.
  size_t pi = 0, ti = 0, star = std::string_view::npos, mark = 0;
  while (ti < t.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = ti;
    } else if (pi < p.size() && p[pi] == t[ti]) {
      ++pi;
      ++ti;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

std::string sha256_hex(std::string_view data) {
  auto d = sha256_bytes(data);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (uint8_t b : d) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

Result<AccessPolicy> AccessPolicy::parse(std::string_view toml_text, const std::string& source) {
  toml::table doc;
  try {
    doc = toml::parse(toml_text, source);
  } catch (const toml::parse_error& e) {
    return invalid_argument("config " + source + " line " + std::to_string(e.source().begin.line) + ": " +
                            std::string(e.description()));
  }
  AccessPolicy p;
  auto tables = [&](const char* key, auto&& each) -> Status {
    const toml::node* n = doc.get(key);
    if (n == nullptr) return ok_status();
    const toml::array* arr = n->as_array();
    if (arr == nullptr || !arr->is_array_of_tables()) {
      return invalid_argument("config " + source + ": " + key + " must be written [[" + key +
                              "]] (an array of tables)");
    }
    for (size_t i = 0; i < arr->size(); ++i) LS_RETURN_IF_ERROR(each(i, *arr->get(i)->as_table()));
    return ok_status();
  };

  // ---- roles ----
  std::map<std::string, size_t, std::less<>> role_index;
  LS_RETURN_IF_ERROR(tables("role", [&](size_t i, const toml::table& t) -> Status {
    Role r;
    std::string w = where(source, "role", i, t["name"].value_or(std::string()));
    for (auto& [k, v] : t) {
      std::string key(k.str());
      if (key == "name") {
        LS_ASSIGN_OR_RETURN(r.name, one_string(v, w + ": name"));
      } else if (key == "streams") {
        LS_ASSIGN_OR_RETURN(r.streams, strings(v, w + ": streams"));
        for (const std::string& s : r.streams) {
          if (s.empty()) return invalid_argument(w + ": streams holds an empty name");
        }
      } else if (key == "actions") {
        LS_ASSIGN_OR_RETURN(auto actions, strings(v, w + ": actions"));
        for (const std::string& a : actions) {
          size_t j = 0;
          while (j < kActionCount && a != kActionNames[j]) ++j;
          if (j == kActionCount) {
            return invalid_argument(w + ": action '" + a + "' is not known (ingest, read, verify, checkpoint, admin)");
          }
          r.actions_mask |= 1u << j;
        }
      } else {
        return invalid_argument(w + ": key '" + key + "' is not known (name, streams, actions)");
      }
    }
    if (r.name.empty()) return invalid_argument(w + ": needs a name");
    if (r.streams.empty()) return invalid_argument(w + ": needs streams (names or globs, \"*\" for every stream)");
    if (r.actions_mask == 0) return invalid_argument(w + ": needs actions");
    if (!role_index.emplace(r.name, p.roles_.size()).second) {
      return invalid_argument(w + ": a role named '" + r.name + "' is defined twice");
    }
    p.roles_.push_back(std::move(r));
    return ok_status();
  }));

  // ---- identities ----
  std::set<std::string, std::less<>> names, subjects, sans;
  std::set<std::array<uint8_t, 32>> tokens;
  std::set<std::pair<std::array<uint8_t, 16>, unsigned>> ranges;
  LS_RETURN_IF_ERROR(tables("identity", [&](size_t i, const toml::table& t) -> Status {
    Identity id;
    std::string w = where(source, "identity", i, t["name"].value_or(std::string()));
    bool has_kind = false;
    for (auto& [k, v] : t) {
      std::string key(k.str());
      if (key == "name") {
        LS_ASSIGN_OR_RETURN(id.name, one_string(v, w + ": name"));
      } else if (key == "kind") {
        std::string kind = v.value_or(std::string());
        if (kind == "service") {
          id.kind = IdentityKind::kService;
        } else if (kind == "human") {
          id.kind = IdentityKind::kHuman;
        } else {
          return invalid_argument(w + ": kind must be \"service\" or \"human\"");
        }
        has_kind = true;
      } else if (key == "tls_subject") {
        LS_ASSIGN_OR_RETURN(id.tls_subject, one_string(v, w + ": tls_subject"));
      } else if (key == "tls_san") {
        LS_ASSIGN_OR_RETURN(id.tls_sans, strings(v, w + ": tls_san"));
      } else if (key == "source") {
        LS_ASSIGN_OR_RETURN(auto list, strings(v, w + ": source"));
        for (const std::string& s : list) {
          auto c = parse_cidr(s);
          if (!c.ok()) return c.status().with_context(w + ": source");
          id.sources.push_back(c.value());
        }
      } else if (key == "token_sha256") {
        LS_ASSIGN_OR_RETURN(auto list, strings(v, w + ": token_sha256"));
        for (const std::string& h : list) {
          LS_ASSIGN_OR_RETURN(auto d, parse_sha256_hex(h, w + ": token_sha256"));
          id.token_sha256.push_back(d);
        }
      } else if (key == "roles") {
        LS_ASSIGN_OR_RETURN(id.roles, strings(v, w + ": roles"));
      } else {
        return invalid_argument(w + ": key '" + key +
                                "' is not known (name, kind, tls_subject, tls_san, source, token_sha256, roles)");
      }
    }
    if (id.name.empty()) return invalid_argument(w + ": needs a name");
    if (!has_kind) return invalid_argument(w + ": needs kind = \"service\" or \"human\"");
    if (id.tls_subject.empty() && id.tls_sans.empty() && id.sources.empty() && id.token_sha256.empty()) {
      return invalid_argument(w + ": needs a credential (tls_subject, tls_san, source or token_sha256)");
    }
    if (!names.insert(id.name).second)
      return invalid_argument(w + ": an identity named '" + id.name + "' is defined twice");
    if (!id.tls_subject.empty() && !subjects.insert(id.tls_subject).second) {
      return invalid_argument(w + ": tls_subject '" + id.tls_subject + "' is already another identity's");
    }
    for (const std::string& s : id.tls_sans) {
      if (s.empty()) return invalid_argument(w + ": tls_san holds an empty entry");
      if (!sans.insert(s).second) return invalid_argument(w + ": tls_san '" + s + "' is already another identity's");
    }
    for (const auto& d : id.token_sha256) {
      if (!tokens.insert(d).second) return invalid_argument(w + ": a token_sha256 entry is already another identity's");
    }
    for (const Cidr& c : id.sources) {
      if (!ranges.insert({c.address, c.prefix_bits}).second) {
        return invalid_argument(w + ": a source range is already another identity's (ranges may nest, not repeat)");
      }
    }
    for (const std::string& rn : id.roles) {
      auto it = role_index.find(rn);
      if (it == role_index.end()) return invalid_argument(w + ": role '" + rn + "' is not defined by a [[role]]");
      const Role& r = p.roles_[it->second];
      for (size_t a = 0; a < kActionCount; ++a) {
        if ((r.actions_mask & (1u << a)) == 0) continue;
        bool forbidden =
            id.kind == IdentityKind::kService ? (kServiceActions & (1u << a)) == 0 : (kHumanForbidden & (1u << a)) != 0;
        if (forbidden) {
          return invalid_argument(w + ": " + identity_kind_name(id.kind) + " identity '" + id.name + "' holds role '" +
                                  r.name + "' with action '" + kActionNames[a] + "'; " +
                                  (id.kind == IdentityKind::kService
                                       ? "a service identity may only ingest, verify, checkpoint"
                                       : "a human identity may not ingest"));
        }
        for (const std::string& s : r.streams) id.streams_by_action[a].push_back(s);
      }
    }
    p.identities_.push_back(std::move(id));
    return ok_status();
  }));

  // ---- routes ----
  LS_RETURN_IF_ERROR(tables("route", [&](size_t i, const toml::table& t) -> Status {
    Route r;
    std::string w = where(source, "route", i, "");
    for (auto& [k, v] : t) {
      std::string key(k.str());
      if (key == "listener") {
        LS_ASSIGN_OR_RETURN(r.listener, one_string(v, w + ": listener"));
      } else if (key == "identity") {
        LS_ASSIGN_OR_RETURN(r.identity, one_string(v, w + ": identity"));
        if (!names.contains(r.identity)) {
          return invalid_argument(w + ": identity '" + r.identity + "' is not defined by an [[identity]]");
        }
      } else if (key == "stream") {
        LS_ASSIGN_OR_RETURN(r.stream, one_string(v, w + ": stream"));
        if (!format::valid_stream_name(r.stream))
          return invalid_argument(w + ": '" + r.stream + "' is not a valid stream name");
      } else if (key == "match") {
        const toml::table* mt = v.as_table();
        if (mt == nullptr) return invalid_argument(w + ": match must be a table, e.g. { app_name = \"postgres\" }");
        for (auto& [mk, mv] : *mt) {
          std::string f(mk.str());
          RouteMatch m;
          std::string what = w + ": match." + f;
          if (f == "facility") {
            m.field = RouteField::kFacility;
            LS_ASSIGN_OR_RETURN(m.number, code_of(mv, kFacilities, std::size(kFacilities), 23, what));
          } else if (f == "severity") {
            m.field = RouteField::kSeverity;
            LS_ASSIGN_OR_RETURN(m.number, code_of(mv, kSeverities, std::size(kSeverities), 7, what));
          } else {
            if (f == "app_name") {
              m.field = RouteField::kAppName;
            } else if (f == "hostname") {
              m.field = RouteField::kHostname;
            } else if (f == "msgid") {
              m.field = RouteField::kMsgid;
            } else if (f == "procid") {
              m.field = RouteField::kProcid;
            } else {
              return invalid_argument(what +
                                      " is not a field routes match (app_name, hostname, facility, severity, "
                                      "msgid, procid)");
            }
            LS_ASSIGN_OR_RETURN(m.pattern, one_string(mv, what));
          }
          r.match.push_back(std::move(m));
        }
      } else {
        return invalid_argument(w + ": key '" + key + "' is not known (listener, identity, match, stream)");
      }
    }
    if (r.stream.empty()) return invalid_argument(w + ": needs a stream");
    p.routes_.push_back(std::move(r));
    return ok_status();
  }));
  return p;
}

const Identity* AccessPolicy::identify_peer(const TlsPeer* peer, const sockaddr* source) const {
  if (peer != nullptr && (!peer->subject.empty() || !peer->sans.empty())) {
    for (const Identity& id : identities_) {
      if (!id.tls_subject.empty() && id.tls_subject == peer->subject) return &id;
    }
    for (const Identity& id : identities_) {
      for (const std::string& want : id.tls_sans) {
        for (const std::string& san : peer->sans) {
          if (san_matches(want, san)) return &id;
        }
      }
    }
    return nullptr;
  }
  std::array<uint8_t, 16> a;
  if (!address_bytes(source, a)) return nullptr;
  const Identity* best = nullptr;
  unsigned best_bits = 0;
  for (const Identity& id : identities_) {
    for (const Cidr& c : id.sources) {
      if (c.contains(a) && (best == nullptr || c.prefix_bits > best_bits)) {
        best = &id;
        best_bits = c.prefix_bits;
      }
    }
  }
  return best;
}

const Identity* AccessPolicy::identify_token(std::string_view bearer_token) const {
  if (bearer_token.empty()) return nullptr;
  auto d = sha256_bytes(bearer_token);
  const Identity* found = nullptr;
  // Every entry is compared (constant time each), so the time taken says nothing
  // about how much of a hash matched.
  for (const Identity& id : identities_) {
    for (const auto& h : id.token_sha256) {
      if (CRYPTO_memcmp(h.data(), d.data(), d.size()) == 0) found = &id;
    }
  }
  return found;
}

const Identity* AccessPolicy::identify(const TlsPeer* peer, std::string_view bearer_token,
                                       const sockaddr* source) const {
  if (peer != nullptr && (!peer->subject.empty() || !peer->sans.empty())) return identify_peer(peer, nullptr);
  if (!bearer_token.empty()) return identify_token(bearer_token);
  return identify_peer(nullptr, source);
}

bool AccessPolicy::allowed(const Identity* identity, std::string_view stream, Action action) const {
  if (identity == nullptr || !enabled()) return false;
  for (const std::string& pattern : identity->streams_by_action[static_cast<size_t>(action)]) {
    if (stream_glob_match(pattern, stream)) return true;
  }
  return false;
}

const Identity* AccessPolicy::find_identity(std::string_view name) const {
  for (const Identity& id : identities_) {
    if (id.name == name) return &id;
  }
  return nullptr;
}

}  // namespace logseal::ingest
