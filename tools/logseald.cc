// logseald: the daemon. Thin: reads the configuration (TOML file and/or flags),
// opens the store and the signer, starts the listeners and the admin HTTP
// endpoint, and handles signals:
//   SIGTERM/SIGINT  stop accepting, drain every queue, commit, sign a final
//                   checkpoint, exit 0
//   SIGHUP          roll the open segments
// Under systemd it takes its listening sockets from the socket units (named by
// FileDescriptorName=: syslog, syslog-tcp, syslog-udp, syslog-tls, relp, relp-tls), sends
// READY=1 once listeners, store and signer are ready, STATUS= lines, and
// WATCHDOG=1 only while the writer, the signer and the ingest threads are seen to
// make progress (or have nothing to do), so a hung writer gets the service restarted.
#include <signal.h>
#include <sys/socket.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "engine/audit.h"
#include "engine/export.h"
#include "engine/key_rotation.h"
#include "engine/retention.h"
#include "engine/store.h"
#include "engine/verify.h"
#include "hsm/signer.h"
#include "ingest/access.h"
#include "ingest/admin_http.h"
#include "ingest/http_events.h"
#include "ingest/net_address.h"
#include "ingest/read_api.h"
#include "ingest/refusals.h"
#include "ingest/syslog_server.h"
#include "ingest/systemd_sockets.h"
#include "ingest/tls.h"
#include "io/env.h"

using namespace logseal;

namespace {

// Free space kept by default (disk_reserve_bytes): new records are refused
// below it (disk_full = "refuse"), so a write never meets a full disk.
constexpr uint64_t kDiskReserveBytesDefault = 64ull << 20;

struct Config {
  ingest::TlsServerConfig tls;
  std::vector<std::pair<ingest::ListenerSpec::Kind, std::string>> tls_listeners;  // kind, "ADDR[,stream=]"
  std::map<size_t, ingest::PgListenerOptions> tls_pg;  // by tls_listeners index, from the TOML file
  std::string data_dir;
  std::string signer;
  std::string tcti;
  std::string http;
  std::vector<ingest::ListenerSpec> listeners;
  ingest::ServerOptions server;
  // Four batch writes in flight per stream rather than the engine's two: with the
  // disk shared or slow, more bytes outstanding kept 300-byte TCP ingest ~20%
  // faster on the 2-core bench box for 4 MiB more buffer per stream.
  engine::StoreOptions store = [] {
    engine::StoreOptions o;
    o.stream.writes_in_flight_max = 4;
    return o;
  }();
  // JSON events over HTTP(S): (https, "ADDR[,stream=NAME][,k8s-stream=NAME]").
  std::vector<std::pair<bool, std::string>> http_events;
  ingest::HttpServerOptions http_events_opt;
  // [streams.NAME] retention policies and the retention timer (README
  // "Retention and legal hold").
  engine::RetentionSchedule retention;
  // [streams.NAME] signer = SIGNER: streams signed by a key of their own.
  std::map<std::string, std::string> stream_signers;

  Config() { store.stream.disk_reserve_bytes = kDiskReserveBytesDefault; }
};

void log_line(const std::string& s) {
  std::fprintf(stderr, "%s\n", s.c_str());
  std::fflush(stderr);
}

// "ADDR[,stream=NAME][,name=NAME]". The default stream is KIND[-tls]-PORT, e.g.
// "syslog-tcp-5514", "relp-tls-2514"; so is the default listener name (what
// [[route]] rules and logseal_refused_total call it), set by the server once bound.
Result<ingest::ListenerSpec> listener_from_flag(ingest::ListenerSpec::Kind kind, const std::string& text,
                                                bool tls = false) {
  ingest::ListenerSpec spec;
  spec.kind = kind;
  size_t comma = text.find(',');
  std::string addr = text.substr(0, comma);
  while (comma != std::string::npos) {
    size_t next = text.find(',', comma + 1);
    std::string part = text.substr(comma + 1, next == std::string::npos ? std::string::npos : next - comma - 1);
    if (part.rfind("stream=", 0) == 0) {
      spec.stream = part.substr(7);
    } else if (part.rfind("name=", 0) == 0) {
      spec.name = part.substr(5);
    } else {
      return invalid_argument("listener '" + text + "': unknown option '" + part + "' (stream=, name=)");
    }
    comma = next;
  }
  spec.address = addr;
  std::string port = addr.substr(addr.rfind(':') + 1);
  if (spec.stream.empty()) spec.stream = std::string(ingest::listener_kind_name(kind)) + (tls ? "-tls-" : "-") + port;
  return spec;
}

// A [[listener]]'s PostgreSQL keys (README "PostgreSQL / pgaudit"):
// pg_log_line_prefix (enables it), pg_app_names, pg_syslog_sequence_numbers,
// pg_syslog_split_messages, pg_flush_ms.
Status load_pg_options(const toml::table& lt, const std::string& path, ingest::PgListenerOptions& pg) {
  if (auto v = lt["pg_log_line_prefix"].value<std::string>()) {
    pg.enabled = true;
    pg.log_line_prefix = *v;
  }
  if (auto* names = lt["pg_app_names"].as_array()) {
    pg.app_names.clear();
    for (auto& n : *names) {
      auto v = n.value<std::string>();
      if (!v) return invalid_argument("config " + path + ": pg_app_names must be an array of strings");
      pg.app_names.push_back(*v);
    }
  }
  pg.sequence_numbers = lt["pg_syslog_sequence_numbers"].value_or(pg.sequence_numbers);
  pg.split_messages = lt["pg_syslog_split_messages"].value_or(pg.split_messages);
  pg.flush_ms = static_cast<uint32_t>(lt["pg_flush_ms"].value_or(int64_t{pg.flush_ms}));
  bool other_keys = lt.contains("pg_app_names") || lt.contains("pg_syslog_sequence_numbers") ||
                    lt.contains("pg_syslog_split_messages") || lt.contains("pg_flush_ms");
  if (other_keys && !pg.enabled) {
    return invalid_argument("config " + path + ": pg_* keys of a listener need pg_log_line_prefix");
  }
  return ok_status();
}

// "ADDR[,stream=NAME][,k8s-stream=NAME]": streams for /v1/events and /v1/k8s-audit.
Result<ingest::HttpListenerSpec> http_listener_from_flag(const std::string& text) {
  ingest::HttpListenerSpec spec;
  size_t pos = 0;
  for (bool first = true; pos <= text.size(); first = false) {
    size_t comma = text.find(',', pos);
    std::string part = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (first) {
      spec.address = part;
    } else if (part.rfind("stream=", 0) == 0) {
      spec.events_stream = part.substr(7);
    } else if (part.rfind("k8s-stream=", 0) == 0) {
      spec.k8s_stream = part.substr(11);
    } else if (part.rfind("name=", 0) == 0) {
      spec.name = part.substr(5);
    } else {
      return invalid_argument("http listener '" + text + "': unknown option '" + part +
                              "' (stream=, k8s-stream=, name=)");
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  if (spec.address.empty() || spec.events_stream.empty() || spec.k8s_stream.empty()) {
    return invalid_argument("http listener '" + text + "': needs ADDR[,stream=NAME][,k8s-stream=NAME]");
  }
  return spec;
}

Status load_toml(const std::string& path, Config& c) {
  toml::table t;
  try {
    t = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    std::ostringstream o;
    o << e.description() << " at line " << e.source().begin.line << ", column " << e.source().begin.column;
    return invalid_argument("config " + path + ": " + o.str());
  }
  if (auto v = t["data_dir"].value<std::string>()) c.data_dir = *v;
  if (auto v = t["signer"].value<std::string>()) c.signer = *v;
  if (auto v = t["tcti"].value<std::string>()) c.tcti = *v;
  if (auto v = t["http"].value<std::string>()) c.http = *v;
  if (auto v = t["ingest_threads"].value<int64_t>()) c.server.threads = static_cast<unsigned>(*v);
  if (auto v = t["message_bytes_max"].value<int64_t>()) c.server.message_bytes_max = static_cast<size_t>(*v);
  if (auto v = t["connections_max"].value<int64_t>()) c.server.connections_max = static_cast<unsigned>(*v);
  if (auto v = t["idle_timeout_s"].value<int64_t>()) c.server.idle_timeout_s = static_cast<unsigned>(*v);
  if (auto v = t["segment_bytes"].value<int64_t>()) c.store.stream.segment_bytes = static_cast<uint64_t>(*v);
  if (auto v = t["segment_age_s"].value<int64_t>()) c.store.stream.segment_age_s = static_cast<uint64_t>(*v);
  if (auto v = t["checkpoint_ms"].value<int64_t>()) c.store.stream.checkpoint_ms = static_cast<uint32_t>(*v);
  if (auto v = t["batch_bytes"].value<int64_t>()) c.store.stream.batch_bytes = static_cast<size_t>(*v);
  if (auto v = t["batch_delay_us"].value<int64_t>()) c.store.stream.batch_delay_us = static_cast<uint32_t>(*v);
  if (auto v = t["writes_in_flight_max"].value<int64_t>()) {
    if (*v < 1 || *v > 64) return invalid_argument("config " + path + ": writes_in_flight_max must be 1..64");
    c.store.stream.writes_in_flight_max = static_cast<unsigned>(*v);
  }
  if (auto v = t["http_body_bytes_max"].value<int64_t>()) c.http_events_opt.body_bytes_max = static_cast<size_t>(*v);
  if (auto v = t["http_connections_max"].value<int64_t>())
    c.http_events_opt.connections_max = static_cast<unsigned>(*v);
  if (auto v = t["http_requests_in_flight_max"].value<int64_t>()) {
    c.http_events_opt.requests_in_flight_max = static_cast<unsigned>(*v);
  }
  if (auto v = t["disk_reserve_bytes"].value<int64_t>()) {
    if (*v < 0) return invalid_argument("config " + path + ": disk_reserve_bytes must be >= 0");
    c.store.stream.disk_reserve_bytes = static_cast<uint64_t>(*v);
  }
  if (auto v = t["retention_interval_s"].value<int64_t>()) {
    if (*v <= 0) return invalid_argument("config " + path + ": retention_interval_s must be > 0");
    c.retention.interval = std::chrono::seconds(*v);
  }
  if (auto* st = t["streams"].as_table()) {
    for (auto& [key, node] : *st) {
      std::string name(key.str());
      auto* pt = node.as_table();
      if (pt == nullptr || !format::valid_stream_name(name)) {
        return invalid_argument("config " + path + ": [streams." + name +
                                "] must be a table named after a valid stream");
      }
      engine::RetentionPolicy p;
      bool has_policy = false;
      for (auto& [k, v] : *pt) {
        std::string field(k.str());
        auto days = [&](uint32_t& out) -> Status {
          auto n = v.value<int64_t>();
          if (!n || *n < 0 || *n > 1000000) {
            return invalid_argument("config " + path + ": streams." + name + "." + field + " must be days, 0..1000000");
          }
          out = static_cast<uint32_t>(*n);
          return ok_status();
        };
        if (field == "signer") {
          auto spec = v.value<std::string>();
          if (!spec || spec->empty()) {
            return invalid_argument("config " + path + ": streams." + name +
                                    ".signer must be soft:KEYFILE or tpm:KEYFILE");
          }
          c.stream_signers[name] = *spec;
          continue;
        }
        has_policy = true;
        if (field == "retention_min_days") {
          LS_RETURN_IF_ERROR(days(p.min_days));
        } else if (field == "retention_max_days") {
          LS_RETURN_IF_ERROR(days(p.max_days));
        } else if (field == "legal_hold") {
          auto b = v.value<bool>();
          if (!b) return invalid_argument("config " + path + ": streams." + name + ".legal_hold must be true or false");
          p.legal_hold = *b;
        } else if (field == "disk_full") {
          auto d = engine::parse_disk_full_policy(v.value_or(std::string()));
          if (!d.ok()) return d.status().with_context("config " + path + ": streams." + name);
          p.disk_full = d.value();
        } else {
          return invalid_argument(
              "config " + path + ": streams." + name + "." + field +
              " is not known (signer, retention_min_days, retention_max_days, legal_hold, disk_full)");
        }
      }
      if (!has_policy) continue;  // a signer only: no retention policy
      LS_RETURN_IF_ERROR(engine::check_policy(p).with_context("config " + path + ": streams." + name));
      c.retention.policies[name] = p;
    }
  }
  if (auto* tt = t["tls"].as_table()) {
    c.tls.cert_file = (*tt)["cert"].value_or(std::string());
    c.tls.key_file = (*tt)["key"].value_or(std::string());
    c.tls.ca_file = (*tt)["ca"].value_or(std::string());
    c.tls.require_client_cert = (*tt)["require_client_cert"].value_or(false);
  }
  if (auto* arr = t["listener"].as_array()) {
    for (auto& el : *arr) {
      auto* lt = el.as_table();
      if (lt == nullptr) return invalid_argument("config " + path + ": [[listener]] entries must be tables");
      std::string kind = (*lt)["kind"].value_or(std::string());
      std::string addr = (*lt)["address"].value_or(std::string());
      std::string stream = (*lt)["stream"].value_or(std::string());
      std::string name = (*lt)["name"].value_or(std::string());
      if (lt->contains("name") && name.empty()) {
        return invalid_argument("config " + path + ": a listener's name must be a non-empty string");
      }
      ingest::ListenerSpec::Kind k;
      if (kind == "syslog-tls" || kind == "relp-tls") {
        std::string flag = addr + (stream.empty() ? "" : ",stream=" + stream) + (name.empty() ? "" : ",name=" + name);
        LS_RETURN_IF_ERROR(load_pg_options(*lt, path, c.tls_pg[c.tls_listeners.size()]));
        c.tls_listeners.emplace_back(
            kind == "relp-tls" ? ingest::ListenerSpec::Kind::kRelp : ingest::ListenerSpec::Kind::kSyslogTcp, flag);
        continue;
      }
      if (kind == "http" || kind == "https") {
        if (addr.empty()) return invalid_argument("config " + path + ": a listener needs an address");
        std::string k8s = (*lt)["k8s_stream"].value_or(std::string());
        c.http_events.emplace_back(kind == "https", addr + (stream.empty() ? "" : ",stream=" + stream) +
                                                        (k8s.empty() ? "" : ",k8s-stream=" + k8s) +
                                                        (name.empty() ? "" : ",name=" + name));
        continue;
      }
      if (kind == "syslog-tcp") {
        k = ingest::ListenerSpec::Kind::kSyslogTcp;
      } else if (kind == "syslog-udp") {
        k = ingest::ListenerSpec::Kind::kSyslogUdp;
      } else if (kind == "relp") {
        k = ingest::ListenerSpec::Kind::kRelp;
      } else {
        return invalid_argument("config " + path + ": listener kind '" + kind +
                                "' is not known (syslog-tcp, syslog-udp, syslog-tls, relp, relp-tls, http, https)");
      }
      if (addr.empty()) return invalid_argument("config " + path + ": a listener needs an address");
      auto spec = listener_from_flag(k, addr);
      if (!spec.ok()) return spec.status();
      if (!stream.empty()) spec->stream = stream;
      if (!name.empty()) spec->name = name;
      LS_RETURN_IF_ERROR(load_pg_options(*lt, path, spec->pg));
      c.listeners.push_back(spec.value());
    }
  }
  return ok_status();
}

std::string port_of(const std::string& address) { return address.substr(address.rfind(':') + 1); }

// A socket from systemd becomes a listener of the kind its FileDescriptorName=
// names. A configured listener (flag or [[listener]]) of the same kind and port
// takes it instead of binding its address, keeping its stream and options; without
// one the stream is named as a flag listener on that port would be, so a switch
// between activated and self-bound start keeps writing the same streams.
Status adopt_passed_sockets(const std::vector<ingest::PassedSocket>& passed, Config& cfg) {
  for (const ingest::PassedSocket& p : passed) {
    ingest::ListenerSpec::Kind kind;
    bool tls = false;
    int type = 0;
    socklen_t type_len = sizeof type;
    if (::getsockopt(p.fd, SOL_SOCKET, SO_TYPE, &type, &type_len) != 0) type = 0;
    if (p.name == "syslog") {
      // One socket unit (so one FileDescriptorName=) for plain syslog on UDP and
      // TCP: the socket's type tells them apart.
      kind = type == SOCK_DGRAM ? ingest::ListenerSpec::Kind::kSyslogUdp : ingest::ListenerSpec::Kind::kSyslogTcp;
    } else if (p.name == "syslog-tcp") {
      kind = ingest::ListenerSpec::Kind::kSyslogTcp;
    } else if (p.name == "syslog-udp") {
      kind = ingest::ListenerSpec::Kind::kSyslogUdp;
    } else if (p.name == "relp") {
      kind = ingest::ListenerSpec::Kind::kRelp;
    } else if (p.name == "syslog-tls") {
      kind = ingest::ListenerSpec::Kind::kSyslogTcp;
      tls = true;
    } else if (p.name == "relp-tls") {
      kind = ingest::ListenerSpec::Kind::kRelp;
      tls = true;
    } else {
      return invalid_argument(
          "systemd passed socket " + std::to_string(p.fd) + " (" + ingest::bound_address_of(p.fd) + ") named '" +
          p.name + "': set FileDescriptorName= to one of syslog, syslog-tcp, syslog-udp, syslog-tls, relp, relp-tls");
    }
    std::string bound = ingest::bound_address_of(p.fd);
    size_t match = cfg.listeners.size();
    std::shared_ptr<ingest::TlsContext> tls_ctx;
    for (size_t i = 0; i < cfg.listeners.size(); ++i) {
      const ingest::ListenerSpec& c = cfg.listeners[i];
      if (c.tls) tls_ctx = c.tls;
      bool same = c.kind == kind && (c.tls != nullptr) == tls && port_of(c.address) == port_of(bound);
      // The first configured listener without a socket yet; else any (a second
      // socket on the same port, e.g. IPv4 next to IPv6, writes the same stream).
      if (same && (match == cfg.listeners.size() || (cfg.listeners[match].fd >= 0 && c.fd < 0))) match = i;
    }
    if (match < cfg.listeners.size() && cfg.listeners[match].fd < 0) {
      cfg.listeners[match].fd = p.fd;
      cfg.listeners[match].address = bound;
      continue;
    }
    ingest::ListenerSpec spec;
    if (match < cfg.listeners.size()) {
      spec = cfg.listeners[match];
    } else {
      LS_ASSIGN_OR_RETURN(spec, listener_from_flag(kind, bound, tls));
      if (tls && !tls_ctx) {
        if (cfg.tls.cert_file.empty() || cfg.tls.key_file.empty()) {
          return invalid_argument("systemd passed a " + p.name + " socket (" + bound +
                                  "); TLS needs --tls-cert and --tls-key (or [tls] cert and key in --config)");
        }
        LS_ASSIGN_OR_RETURN(tls_ctx, ingest::TlsContext::create(cfg.tls));
      }
      spec.tls = tls ? tls_ctx : nullptr;
    }
    spec.fd = p.fd;
    spec.address = bound;
    cfg.listeners.push_back(spec);
  }
  return ok_status();
}

// Listener names are what [[route]] rules and logseal_refused_total use. A name
// given (name = / ,name=) must name one listener; a listener without one is
// called KIND[-tls]-PORT by its server once bound (so port 0 listeners get
// their real port), and such defaults may coincide (several sockets of one
// listener, e.g. IPv4 and IPv6 passed by systemd). A rule's listener must be a
// syslog listener's given or default name.
Status check_listener_names(const std::vector<ingest::ListenerSpec>& listeners,
                            const std::vector<ingest::HttpListenerSpec>& http, const ingest::AccessPolicy& access) {
  // name -> what it names; a listener on several sockets (systemd) appears once per socket.
  std::map<std::string, std::string> explicit_names;
  auto claim = [&](const std::string& name, const std::string& what) -> Status {
    auto [it, fresh] = explicit_names.emplace(name, what);
    if (!fresh && it->second != what) {
      return invalid_argument("two listeners are named '" + name + "' (" + it->second + ", " + what +
                              "): give one another name (name = \"...\" in its [[listener]] table)");
    }
    return ok_status();
  };
  std::set<std::string> syslog_names;
  for (const ingest::ListenerSpec& l : listeners) {
    if (!l.name.empty()) {
      LS_RETURN_IF_ERROR(claim(
          l.name, std::string(ingest::listener_kind_name(l.kind)) + (l.tls ? "-tls" : "") + " stream " + l.stream));
      syslog_names.insert(l.name);
    } else {
      syslog_names.insert(std::string(ingest::listener_kind_name(l.kind)) + (l.tls ? "-tls-" : "-") +
                          port_of(l.address));
    }
  }
  for (const ingest::HttpListenerSpec& h : http) {
    if (!h.name.empty()) LS_RETURN_IF_ERROR(claim(h.name, "http " + h.address));
  }
  for (size_t i = 0; i < access.routes().size(); ++i) {
    const std::string& l = access.routes()[i].listener;
    if (!l.empty() && syslog_names.count(l) == 0) {
      std::string known;
      for (const auto& n : syslog_names) known += (known.empty() ? "" : ", ") + n;
      return invalid_argument("[[route]] #" + std::to_string(i + 1) + ": listener '" + l +
                              "' is not a syslog listener of this daemon (" + (known.empty() ? "none" : known) + ")");
    }
  }
  return ok_status();
}

std::string prometheus(engine::Store& store, const ingest::SyslogServer* server,
                       const ingest::HttpEventServer* http_events, const ingest::RefusalLog* refusals) {
  // Plain string appends: this runs on the admin HTTP threads, also when the
  // process is out of descriptors; nothing here needs iostreams.
  std::string o;
  o.reserve(8192);
  auto num = [](auto v) {
    if constexpr (std::is_floating_point_v<decltype(v)>) {
      char b[64];
      std::snprintf(b, sizeof b, "%.3f", v);
      return std::string(b);
    } else {
      return std::to_string(v);
    }
  };
  std::vector<std::pair<std::string, engine::StreamStats>> stats;
  for (engine::Stream* s : store.open_streams()) stats.emplace_back(s->name(), s->stats());
  auto metric = [&](const char* name, const char* type, const char* help, auto get) {
    o += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    for (auto& [n, st] : stats) o += std::string(name) + "{stream=\"" + n + "\"} " + num(get(st)) + "\n";
  };
  metric("logseal_stream_records_total", "counter", "Records appended to the stream.",
         [](auto& s) { return s.records; });
  metric("logseal_stream_durable_records", "gauge", "Records durable on disk.",
         [](auto& s) { return s.durable_records; });
  metric("logseal_stream_signed_records", "gauge", "Records covered by a signed checkpoint on disk.",
         [](auto& s) { return s.signed_records; });
  metric("logseal_stream_bytes_written_total", "counter", "Bytes written to segment files.",
         [](auto& s) { return s.bytes_written; });
  metric("logseal_stream_batches_total", "counter", "Batches written.", [](auto& s) { return s.batches; });
  metric("logseal_stream_segments_sealed_total", "counter", "Segments sealed.",
         [](auto& s) { return s.segments_sealed; });
  metric("logseal_stream_checkpoints_total", "counter", "Checkpoints and seals written.",
         [](auto& s) { return s.checkpoints; });
  metric("logseal_stream_queue_bytes", "gauge", "Bytes queued, not yet written.",
         [](auto& s) { return s.queue_bytes; });
  metric("logseal_stream_segment", "gauge", "Sequence number of the open segment.",
         [](auto& s) { return s.segment_seq; });
  metric("logseal_stream_disk_full", "gauge", "1 while new records are refused because the disk is full.",
         [](auto& s) { return s.disk_full ? 1 : 0; });
  metric("logseal_stream_disk_full_refused_total", "counter", "Records refused because the disk was full.",
         [](auto& s) { return s.disk_full_refused; });
  metric("logseal_signer_last_sign_ms", "gauge", "Duration of the last checkpoint signature.",
         [](auto& s) { return s.last_sign_ms; });
  metric("logseal_signer_failures_total", "counter", "Failed signing attempts.",
         [](auto& s) { return s.sign_failures; });
  // One line per signer: the store's (streams="*") and each stream signer's.
  o += "# HELP logseal_signer_up 1 when the signer's last attempt succeeded, 0 while it fails.\n"
       "# TYPE logseal_signer_up gauge\n";
  for (const engine::Store::SignerState& sg : store.signers()) {
    std::string streams = sg.store_default ? "*" : "";
    for (const auto& n : sg.streams) streams += (streams.empty() ? "" : ",") + n;
    o += std::string("logseal_signer_up{kind=\"") + hsm::signer_kind_name(sg.kind) + "\",key_id=\"" +
         to_hex(sg.key_id) + "\",streams=\"" + streams + "\"} " + (sg.status.ok() ? "1" : "0") + "\n";
  }
  std::vector<const ingest::ListenerMetrics*> listeners;
  if (server != nullptr) {
    for (auto& m : server->metrics()) listeners.push_back(m.get());
  }
  if (http_events != nullptr) {
    for (auto& m : http_events->metrics()) listeners.push_back(m.get());
  }
  if (!listeners.empty()) {
    auto lmetric = [&](const char* name, const char* type, const char* help, auto get) {
      o += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
      for (auto* m : listeners) {
        o += std::string(name) + "{listener=\"" + m->name + "\",kind=\"" + m->kind + "\",stream=\"" + m->stream +
             "\"} " + num(get(*m)) + "\n";
      }
    };
    lmetric("logseal_listener_messages_total", "counter", "Messages received and appended.",
            [](auto& m) { return m.messages.load(); });
    lmetric("logseal_listener_bytes_total", "counter", "Message bytes received.",
            [](auto& m) { return m.bytes.load(); });
    lmetric("logseal_listener_unparsed_total", "counter", "Messages sealed raw because they did not parse.",
            [](auto& m) { return m.unparsed.load(); });
    lmetric("logseal_listener_connections_total", "counter", "Connections accepted.",
            [](auto& m) { return m.connections_total.load(); });
    lmetric("logseal_listener_connections_open", "gauge", "Connections open.",
            [](auto& m) { return m.connections_open.load(); });
    o += "# HELP logseal_listener_drops_total Messages or connections cut, refused or lost, by cause.\n"
         "# TYPE logseal_listener_drops_total counter\n";
    for (auto* m : listeners) {
      auto line = [&](const char* cause, uint64_t v) {
        o += "logseal_listener_drops_total{listener=\"" + m->name + "\",cause=\"" + cause + "\"} " + std::to_string(v) +
             "\n";
      };
      line("truncated", m->truncated.load());
      line("framing_error", m->framing_errors.load());
      line("framing_fallback", m->framing_fallbacks.load());
      line("connection_limit", m->refused_connections.load());
      line("idle_timeout", m->idle_closed.load());
      line("udp_kernel_drop", m->kernel_drops.load());
      line("append_error", m->append_errors.load());
      line("refused_request", m->refused_requests.load());
    }
    if (server != nullptr && !server->pg_streams().empty()) {
      o += "# HELP logseal_pg_total PostgreSQL reassembly per stream: fragments fed, entries rebuilt, records added "
           "(audit: with fields.pgaudit; error: with pg_error; append_failure: refused by the stream).\n"
           "# TYPE logseal_pg_total counter\n";
      for (auto& [name, p] : server->pg_streams()) {
        ingest::PgStreamStats ps = p->stats();
        auto line = [&](const char* what, uint64_t v) {
          o += "logseal_pg_total{stream=\"" + name + "\",what=\"" + what + "\"} " + std::to_string(v) + "\n";
        };
        line("fragment", ps.fragments);
        line("entry", ps.entries);
        line("record", ps.records);
        line("audit", ps.audit_records);
        line("error", ps.errors);
        line("append_failure", ps.append_failures);
      }
    }
  }
  if (refusals != nullptr) refusals->append_metrics(o);
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"logseald: receive audit events, seal them into signed, chained segments"};
  Config cfg;
  std::string config_path;
  std::vector<std::string> tcp, udp, relp, tls_tcp, tls_relp;
  app.add_option("--config", config_path, "TOML configuration file");
  app.add_option("--data-dir", cfg.data_dir, "data directory");
  app.add_option("--signer", cfg.signer, "soft:KEYFILE or tpm:KEYFILE");
  app.add_option("--tcti", cfg.tcti, "TPM TCTI (default $LOGSEAL_TCTI or device:/dev/tpmrm0)");
  app.add_option("--syslog-tcp", tcp, "syslog over TCP, octet-counted or LF-framed: ADDR[,stream=NAME][,name=NAME]");
  app.add_option("--syslog-udp", udp, "syslog over UDP: ADDR[,stream=NAME][,name=NAME]");
  app.add_option("--relp", relp, "RELP (rsyslog omrelp), acknowledged once durable: ADDR[,stream=NAME][,name=NAME]");
  app.add_option("--syslog-tls", tls_tcp, "syslog over TLS (RFC 5425): ADDR[,stream=NAME][,name=NAME]");
  app.add_option("--relp-tls", tls_relp, "RELP over TLS: ADDR[,stream=NAME][,name=NAME]");
  app.add_option("--tls-cert", cfg.tls.cert_file, "server certificate chain (PEM)");
  app.add_option("--tls-key", cfg.tls.key_file, "server private key (PEM, unencrypted)");
  app.add_option("--tls-ca", cfg.tls.ca_file, "CA bundle that client certificates must chain to (PEM)");
  app.add_flag("--tls-require-client-cert", cfg.tls.require_client_cert, "refuse TLS clients without a certificate");
  app.add_option("--http", cfg.http,
                 "admin HTTP: /metrics, /healthz, /v1/checkpoint, and the read API (/v1/streams, /v1/records, "
                 "/v1/proof, /v1/hold, /v1/roll) once access control is configured (ADDR)");
  std::vector<std::string> http_ev, https_ev;
  size_t http_body_max = 0;
  app.add_option(
      "--http-events", http_ev,
      "JSON events over HTTP, POST /v1/events and /v1/k8s-audit: ADDR[,stream=NAME][,k8s-stream=NAME][,name=NAME]");
  app.add_option("--https-events", https_ev, "the same over HTTPS (--tls-* options): ADDR[,stream=..][,k8s-stream=..]");
  app.add_option("--http-body-bytes-max", http_body_max, "refuse larger HTTP event bodies with 413 (default 16 MiB)");
  unsigned threads = 0;
  size_t message_max = 0;
  uint64_t segment_bytes = 0, segment_age_s = 0;
  uint32_t checkpoint_ms = 0;
  app.add_option("--ingest-threads", threads, "ingest threads (default 1)");
  app.add_option("--message-bytes-max", message_max, "cut longer messages (default 65536)");
  app.add_option("--segment-bytes", segment_bytes, "roll a segment at this size (default 64 MiB)");
  app.add_option("--segment-age-s", segment_age_s, "roll a segment at this age (default never)");
  app.add_option("--checkpoint-ms", checkpoint_ms, "sign a checkpoint this often (default 1000)");
  std::optional<uint64_t> disk_reserve_bytes;
  app.add_option("--disk-reserve-bytes", disk_reserve_bytes,
                 "refuse new records while fewer bytes are free (default 64 MiB; 0: off)");
  std::string pg_prefix;
  std::vector<std::string> pg_app_names;
  app.add_option("--pg-log-line-prefix", pg_prefix,
                 "PostgreSQL's log_line_prefix: reassemble and parse pgaudit entries on every listener not "
                 "configured otherwise in --config");
  app.add_option("--pg-app-name", pg_app_names,
                 "syslog app_name of the PostgreSQL servers (default postgres; repeatable)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  ingest::AccessPolicy access;
  std::string config_sha256;
  if (!config_path.empty()) {
    // The file first; flags given on the command line override it.
    Config file_cfg;
    Status st = load_toml(config_path, file_cfg);
    if (!st.ok()) {
      log_line("<3>logseald: " + st.message());
      return 2;
    }
    if (cfg.data_dir.empty()) cfg.data_dir = file_cfg.data_dir;
    if (cfg.signer.empty()) cfg.signer = file_cfg.signer;
    if (cfg.tcti.empty()) cfg.tcti = file_cfg.tcti;
    if (cfg.http.empty()) cfg.http = file_cfg.http;
    if (cfg.tls.cert_file.empty()) cfg.tls.cert_file = file_cfg.tls.cert_file;
    if (cfg.tls.key_file.empty()) cfg.tls.key_file = file_cfg.tls.key_file;
    if (cfg.tls.ca_file.empty()) cfg.tls.ca_file = file_cfg.tls.ca_file;
    cfg.tls.require_client_cert = cfg.tls.require_client_cert || file_cfg.tls.require_client_cert;
    cfg.tls_listeners = file_cfg.tls_listeners;
    cfg.tls_pg = file_cfg.tls_pg;
    cfg.listeners = file_cfg.listeners;
    cfg.server = file_cfg.server;
    cfg.store = file_cfg.store;
    cfg.http_events = file_cfg.http_events;
    cfg.http_events_opt = file_cfg.http_events_opt;
    cfg.retention = file_cfg.retention;
    cfg.stream_signers = file_cfg.stream_signers;
    // The access policy ([[identity]], [[role]], [[route]]) from the same bytes,
    // whose SHA-256 the config-load record of `_audit` names.
    std::ifstream in(config_path, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      log_line("<3>logseald: config " + config_path + ": cannot read it");
      return 2;
    }
    auto policy = ingest::AccessPolicy::parse(text, config_path);
    if (!policy.ok()) {
      log_line("<3>logseald: " + policy.status().message());
      return 2;
    }
    access = std::move(policy).value();
    config_sha256 = ingest::sha256_hex(text);
  }
  for (auto& h : http_ev) cfg.http_events.emplace_back(false, h);
  for (auto& h : https_ev) cfg.http_events.emplace_back(true, h);
  if (http_body_max) cfg.http_events_opt.body_bytes_max = http_body_max;
  std::vector<ingest::HttpListenerSpec> http_specs;
  for (auto& [https, text] : cfg.http_events) {
    auto spec = http_listener_from_flag(text);
    if (!spec.ok()) {
      log_line("<3>logseald: " + spec.status().message());
      return 2;
    }
    if (https) {
      if (cfg.tls.cert_file.empty() || cfg.tls.key_file.empty()) {
        log_line("<3>logseald: HTTPS listeners need --tls-cert and --tls-key (or [tls] cert and key in --config)");
        return 2;
      }
      auto ctx = ingest::TlsContext::create(cfg.tls);
      if (!ctx.ok()) {
        log_line("<3>logseald: TLS: " + ctx.status().to_string());
        return 2;
      }
      spec->tls = ctx.value();
    }
    http_specs.push_back(spec.value());
  }
  for (auto& [kind, texts] :
       {std::pair{ingest::ListenerSpec::Kind::kSyslogTcp, &tcp},
        std::pair{ingest::ListenerSpec::Kind::kSyslogUdp, &udp}, std::pair{ingest::ListenerSpec::Kind::kRelp, &relp}}) {
    for (auto& text : *texts) {
      auto spec = listener_from_flag(kind, text);
      if (!spec.ok()) {
        log_line("<3>logseald: " + spec.status().message());
        return 2;
      }
      cfg.listeners.push_back(spec.value());
    }
  }
  for (auto& t : tls_tcp) cfg.tls_listeners.emplace_back(ingest::ListenerSpec::Kind::kSyslogTcp, t);
  for (auto& r : tls_relp) cfg.tls_listeners.emplace_back(ingest::ListenerSpec::Kind::kRelp, r);
  if (!cfg.tls_listeners.empty()) {
    if (cfg.tls.cert_file.empty() || cfg.tls.key_file.empty()) {
      log_line("<3>logseald: TLS listeners need --tls-cert and --tls-key (or [tls] cert and key in --config)");
      return 2;
    }
    auto ctx = ingest::TlsContext::create(cfg.tls);
    if (!ctx.ok()) {
      log_line("<3>logseald: TLS: " + ctx.status().to_string());
      return 2;
    }
    for (size_t i = 0; i < cfg.tls_listeners.size(); ++i) {
      auto& [kind, text] = cfg.tls_listeners[i];
      auto parsed = listener_from_flag(kind, text, true);
      if (!parsed.ok()) {
        log_line("<3>logseald: " + parsed.status().message());
        return 2;
      }
      auto spec = std::move(parsed).value();
      spec.tls = ctx.value();
      if (auto it = cfg.tls_pg.find(i); it != cfg.tls_pg.end()) spec.pg = it->second;
      cfg.listeners.push_back(spec);
    }
  }
  if (!pg_prefix.empty()) {
    for (auto& l : cfg.listeners) {
      if (l.pg.enabled) continue;
      l.pg.enabled = true;
      l.pg.log_line_prefix = pg_prefix;
      if (!pg_app_names.empty()) l.pg.app_names = pg_app_names;
    }
  } else if (!pg_app_names.empty()) {
    log_line("<3>logseald: --pg-app-name needs --pg-log-line-prefix");
    return 2;
  }
  if (threads) cfg.server.threads = threads;
  if (message_max) cfg.server.message_bytes_max = message_max;
  if (segment_bytes) cfg.store.stream.segment_bytes = segment_bytes;
  if (segment_age_s) cfg.store.stream.segment_age_s = segment_age_s;
  if (checkpoint_ms) cfg.store.stream.checkpoint_ms = checkpoint_ms;
  if (disk_reserve_bytes) cfg.store.stream.disk_reserve_bytes = *disk_reserve_bytes;
  // Socket activation: the sockets systemd passed go to the configured listeners
  // of the same kind and port (which then bind nothing) or become listeners of
  // their own; the other configured listeners bind their addresses as usual.
  auto passed = ingest::take_passed_sockets();
  if (!passed.ok()) {
    log_line("<3>logseald: socket activation: " + passed.status().message());
    return 2;
  }
  Status adopted = adopt_passed_sockets(passed.value(), cfg);
  if (!adopted.ok()) {
    log_line("<3>logseald: socket activation: " + adopted.message());
    return 2;
  }
  {
    Status names = check_listener_names(cfg.listeners, http_specs, access);
    if (!names.ok()) {
      log_line("<3>logseald: " + names.message());
      return 2;
    }
  }
  if (!access.enabled()) {
    log_line(
        "<4>logseald: access control is off: no [[identity]] in the configuration, so every sender may write "
        "to every stream (README \"Roles and retention\")");
  } else {
    log_line("<6>logseald: access control is on: " + std::to_string(access.identities().size()) + " identities, " +
             std::to_string(access.roles().size()) + " roles; senders that match no identity are refused");
  }
  if (cfg.data_dir.empty() || cfg.signer.empty()) {
    log_line("<3>logseald: --data-dir and --signer are required (or data_dir and signer in --config)");
    return 2;
  }
  if (cfg.listeners.empty() && cfg.http.empty() && http_specs.empty()) {
    log_line(
        "<3>logseald: nothing to listen on: give --syslog-tcp, --syslog-udp, --relp, --http-events or --http, "
        "or start it from logseald.socket");
    return 2;
  }
  if (!cfg.tcti.empty()) setenv("LOGSEAL_TCTI", cfg.tcti.c_str(), 1);
  cfg.store.stream.record_bytes_max =
      std::max<size_t>(cfg.store.stream.record_bytes_max, cfg.server.message_bytes_max + 65536 * 2);
  if (!http_specs.empty()) {
    // A JSON record holds the event and its fields (at most about as long).
    cfg.store.stream.record_bytes_max =
        std::max<size_t>(cfg.store.stream.record_bytes_max, 2 * cfg.http_events_opt.event_bytes_max + 65536 * 2);
  }
  cfg.store.log = log_line;

  // Signals are taken by this thread only (sigtimedwait); every other thread
  // inherits the blocked mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto signer = hsm::open_signer(cfg.signer);
  if (!signer.ok()) {
    log_line("<3>logseald: signer: " + signer.status().to_string());
    return 2;
  }
  auto store = engine::Store::open(io::posix_env(), cfg.data_dir, std::move(signer).value(), cfg.store);
  if (!store.ok()) {
    log_line("<3>logseald: " + store.status().to_string());
    return 2;
  }
  // Streams with a signer of their own ([streams.NAME] signer): one signer per
  // distinct SIGNER text, set before any stream opens.
  {
    std::map<std::string, std::shared_ptr<hsm::Signer>> by_spec;
    for (const auto& [name, spec] : cfg.stream_signers) {
      auto& sg = by_spec[spec];
      if (!sg) {
        auto opened = hsm::open_signer(spec);
        if (!opened.ok()) {
          log_line("<3>logseald: signer of stream " + name + ": " + opened.status().to_string());
          return 2;
        }
        sg = std::move(opened).value();
      }
      Status set = store.value()->set_stream_signer(name, sg);
      if (!set.ok()) {
        log_line("<3>logseald: " + set.to_string());
        return 2;
      }
    }
  }
  // No stream silently changes key: each existing stream's latest checkpoint
  // must be signed by the key that signs it now, or hand over to it.
  {
    auto names = store.value()->list_streams();
    if (!names.ok()) {
      log_line("<3>logseald: " + names.status().to_string());
      return 2;
    }
    for (const std::string& name : names.value()) {
      Status k =
          engine::check_stream_key(io::posix_env(), cfg.data_dir, name, store.value()->signer_for(name).key_id());
      if (!k.ok()) {
        log_line("<3>logseald: " + k.message());
        return 2;
      }
    }
  }
  // Each stream's records on disk before anything is appended: stats() counts
  // appended records from this start on but durable ones from the stream's
  // beginning, and the watchdog compares the two. Opened here, before the
  // listeners, so nothing is appended yet (stream() returns the same stream later).
  // Refusals by access control: /metrics, rate-limited log lines, `_audit`.
  // Stopped after the listeners and before the store closes.
  auto refusals = std::make_unique<ingest::RefusalLog>(store.value().get(), log_line);
  refusals->start();
  cfg.server.access = &access;
  cfg.server.refusals = refusals.get();
  cfg.http_events_opt.access = &access;
  cfg.http_events_opt.refusals = refusals.get();
  if (!config_path.empty()) {
    std::string m = "\"config\":" + engine::json_escape(config_path) + ",\"sha256\":\"" + config_sha256 +
                    "\",\"access_control\":" + (access.enabled() ? "true" : "false") +
                    ",\"identities\":" + std::to_string(access.identities().size()) +
                    ",\"roles\":" + std::to_string(access.roles().size()) +
                    ",\"routes\":" + std::to_string(access.routes().size());
    auto rec = engine::append_audit(*store.value(), "config-load", m);
    if (!rec.ok()) log_line("<3>logseald: cannot record the config-load in _audit: " + rec.status().to_string());
  }
  std::map<std::string, uint64_t> recovered_records;
  for (const ingest::ListenerSpec& spec : cfg.listeners) {
    auto s = store.value()->stream(spec.stream);
    if (!s.ok()) {
      log_line("<3>logseald: " + s.status().to_string());
      return 2;
    }
    recovered_records[spec.stream] = s.value()->durable_size();
  }
  // The keys in use, sealed in `_audit` before anything is received.
  for (const engine::Store::SignerState& sg : store.value()->signers()) {
    std::string streams = "[";
    for (size_t i = 0; i < sg.streams.size(); ++i) streams += (i ? "," : "") + engine::json_escape(sg.streams[i]);
    streams += "]";
    auto a =
        engine::append_audit(*store.value(), "key-in-use",
                             "\"key_id\":\"" + to_hex(sg.key_id) + "\",\"signer\":\"" + hsm::signer_kind_name(sg.kind) +
                                 "\",\"default\":" + (sg.store_default ? "true" : "false") + ",\"streams\":" + streams);
    if (!a.ok()) {
      log_line("<3>logseald: cannot write the key-in-use record to " + std::string(engine::kAuditStream) + ": " +
               a.status().to_string());
      return 2;
    }
    log_line("<6>logseald: " + sg.describe() + " (key id " + to_hex(sg.key_id) + ")");
  }
  std::unique_ptr<ingest::SyslogServer> server;
  if (!cfg.listeners.empty()) {
    auto s = ingest::SyslogServer::start(cfg.listeners, *store.value(), cfg.server);
    if (!s.ok()) {
      log_line("<3>logseald: " + s.status().to_string());
      return 2;
    }
    server = std::move(s).value();
  }
  std::unique_ptr<ingest::HttpEventServer> http_events;
  if (!http_specs.empty()) {
    auto h = ingest::HttpEventServer::start(http_specs, *store.value(), cfg.http_events_opt);
    if (!h.ok()) {
      log_line("<3>logseald: " + h.status().to_string());
      return 2;
    }
    http_events = std::move(h).value();
  }
  engine::Store* st = store.value().get();
  // Retention: streams with a [streams.NAME] policy are pruned past their
  // maximum every retention_interval_s, and on a full disk when disk_full =
  // "prune". Stopped before the store closes.
  std::unique_ptr<engine::RetentionRunner> retention;
  if (!cfg.retention.policies.empty()) {
    for (auto& [name, p] : cfg.retention.policies) {
      log_line("<6>logseald: stream " + name + ": retention_min_days=" + std::to_string(p.min_days) +
               " retention_max_days=" + std::to_string(p.max_days) + (p.legal_hold ? " legal_hold" : "") +
               " disk_full=" + engine::disk_full_policy_name(p.disk_full));
    }
    retention = std::make_unique<engine::RetentionRunner>(*st, cfg.retention);
  }
  std::unique_ptr<ingest::AdminHttp> admin;
  if (!cfg.http.empty()) {
    ingest::AdminHandlers h;
    h.metrics = [st, &server, &http_events, &refusals] {
      return prometheus(*st, server.get(), http_events.get(), refusals.get());
    };
    h.health = [st]() -> Status {
      for (engine::Stream* s : st->open_streams()) {
        Status hs = s->health();
        if (!hs.ok()) return hs.with_context("stream " + s->name());
      }
      // Records keep arriving and stay durable, but new ones are not covered
      // by a signature until the signer is back.
      for (const engine::Store::SignerState& sg : st->signers()) {
        if (!sg.status.ok()) {
          return sg.status.with_context(sg.describe() + " failing; records are durable but not yet signed");
        }
      }
      return ok_status();
    };
    h.checkpoint = [st](const std::string& name) -> Result<std::string> {
      engine::Stream* found = nullptr;
      for (engine::Stream* s : st->open_streams()) {
        if (s->name() == name) found = s;
      }
      if (found == nullptr) return not_found("no stream '" + name + "'");
      auto cp = found->latest_signed();
      if (cp.body.empty()) return not_found("stream '" + name + "' has no signed checkpoint yet");
      return engine::format_anchor(cp.body, cp.signature);
    };
    // The read API and admin actions: by bearer token under the access policy;
    // without [[identity]] tables they stay refused (403, deny by default).
    if (access.enabled()) h.authorize = ingest::api_authorizer(access);
    ingest::ReadApiOptions ro;
    ro.policies = cfg.retention.policies;
    ingest::add_read_api(h, *st, ro);
    auto a = ingest::AdminHttp::start(cfg.http, h);
    if (!a.ok()) {
      log_line("<3>logseald: " + a.status().to_string());
      return 2;
    }
    admin = std::move(a).value();
  }
  std::string where;
  if (server) {
    for (size_t i = 0; i < cfg.listeners.size(); ++i) {
      where += std::string(" ") + ingest::listener_kind_name(cfg.listeners[i].kind) +
               (cfg.listeners[i].tls ? "-tls" : "") + "=" + server->bound_address(i) +
               (cfg.listeners[i].fd >= 0 ? "[systemd]" : "") + "(stream " + cfg.listeners[i].stream + ")";
    }
  }
  for (size_t i = 0; http_events && i < http_specs.size(); ++i) {
    where += std::string(http_specs[i].tls ? " https-events=" : " http-events=") + http_events->bound_address(i) +
             "(streams " + http_specs[i].events_stream + "," + http_specs[i].k8s_stream + ")";
  }
  if (admin) where += " http=" + admin->bound_address();
  log_line("<5>logseald: ready, data " + cfg.data_dir + ", signer " + hsm::signer_kind_name(st->signer().kind()) + ";" +
           where);
  ingest::sd_notify_text("READY=1\nSTATUS=listening:" + where);

  // The watchdog: systemd restarts the service when WATCHDOG=1 stops coming for
  // WatchdogSec. A ping proves that this thread runs, so it is sent only while
  // the threads that do the work are seen to move: every stream's writer
  // (durable count advancing, or nothing waiting), its signer (signed count
  // advancing, or caught up) and every ingest thread (loop passes). A hung
  // writer thus stops the pings even though this loop still runs.
  const char* wd = std::getenv("WATCHDOG_USEC");
  int64_t watchdog_us = wd != nullptr ? std::atoll(wd) : 0;
  using Clock = std::chrono::steady_clock;
  auto watchdog = std::chrono::microseconds(watchdog_us);
  auto writer_stall_max = std::max<Clock::duration>(watchdog / 2, std::chrono::milliseconds(500));
  auto signer_stall_max =
      std::max<Clock::duration>(watchdog / 2, std::chrono::milliseconds(4 * int64_t{cfg.store.stream.checkpoint_ms}));
  auto ping_every = std::max<Clock::duration>(watchdog / 4, std::chrono::milliseconds(100));
  struct Progress {
    uint64_t durable = 0, signed_records = 0;
    Clock::time_point writer_seen, signer_seen;
  };
  // The streams as they are at start (recovered from disk): later advances count.
  std::map<std::string, Progress> progress;
  for (engine::Stream* s : st->open_streams()) {
    auto stats = s->stats();
    Progress& p = progress[s->name()];
    p.durable = stats.durable_records;
    p.signed_records = stats.signed_records;
    p.writer_seen = p.signer_seen = Clock::now();
  }
  auto last_ping = Clock::time_point{};
  std::string withheld;  // why the last ping was withheld ("" while pinging)
  std::string last_checkpoint = "none yet";
  Clock::time_point last_checkpoint_at{};
  auto last_status = Clock::now();
  uint64_t last_records = 0;
  int exit_code = 0;
  while (true) {
    timespec ts{0, 250 * 1000 * 1000};
    int sig = sigtimedwait(&sigs, nullptr, &ts);
    if (sig == SIGTERM || sig == SIGINT) {
      log_line(std::string("<5>logseald: ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") + ": draining and sealing");
      break;
    }
    if (sig == SIGHUP) {
      for (engine::Stream* s : st->open_streams()) s->request_roll();
      log_line("<5>logseald: SIGHUP: rolling open segments");
    }
    // Health, progress and STATUS: every stream must be healthy.
    auto now = Clock::now();
    Status health = ok_status();
    std::string stalled;
    uint64_t records = 0, signed_records = 0;
    for (engine::Stream* s : st->open_streams()) {
      if (!s->health().ok()) health = s->health().with_context("stream " + s->name());
      auto stats = s->stats();
      records += stats.durable_records;
      signed_records += stats.signed_records;
      auto [it, fresh] = progress.try_emplace(s->name());
      Progress& p = it->second;
      if (fresh) p.writer_seen = p.signer_seen = now;
      // A stream opened after start (none yet) counts from its first sight.
      auto base = recovered_records.try_emplace(s->name(),
                                                stats.durable_records - std::min(stats.durable_records, stats.records));
      uint64_t appended = base.first->second + stats.records;
      if (stats.durable_records != p.durable || stats.durable_records >= appended) p.writer_seen = now;
      if (stats.signed_records != p.signed_records || stats.signed_records >= stats.durable_records) {
        p.signer_seen = now;
      }
      if (stats.signed_records != p.signed_records) {
        last_checkpoint_at = now;
        last_checkpoint = "stream " + s->name() + " at " + std::to_string(stats.signed_records) + " records";
      }
      p.durable = stats.durable_records;
      p.signed_records = stats.signed_records;
      if (now - p.writer_seen > writer_stall_max) {
        stalled = "stream " + s->name() + ": no durable progress with records waiting";
      } else if (now - p.signer_seen > signer_stall_max) {
        stalled = "stream " + s->name() + ": no signed checkpoint with records unsigned";
      }
    }
    if (server && stalled.empty()) {
      auto loop_age = std::chrono::nanoseconds(
          std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count() -
          server->oldest_loop_ns());
      if (loop_age > writer_stall_max) stalled = "an ingest thread is stuck";
    }
    if (!health.ok()) {
      // A failed write stops the process; the next start recovers from disk.
      log_line("<2>logseald: stopping: " + health.to_string());
      exit_code = 1;
      break;
    }
    double dt = std::chrono::duration<double>(now - last_status).count();
    if (dt >= 2.0) {
      double rate = static_cast<double>(records - last_records) / dt;
      char buf[512];
      std::string ago;
      if (last_checkpoint_at != Clock::time_point{}) {
        char a[64];
        std::snprintf(a, sizeof a, ", %.1f s ago", std::chrono::duration<double>(now - last_checkpoint_at).count());
        ago = a;
      }
      std::snprintf(buf, sizeof buf, "STATUS=%.0f records/s, %llu durable, %llu signed; last checkpoint: %s%s%s%s",
                    rate, static_cast<unsigned long long>(records), static_cast<unsigned long long>(signed_records),
                    last_checkpoint.c_str(), ago.c_str(), stalled.empty() ? "" : "; STALLED: ", stalled.c_str());
      ingest::sd_notify_text(buf);
      last_status = now;
      last_records = records;
    }
    if (watchdog_us > 0) {
      if (!stalled.empty()) {
        if (withheld != stalled) log_line("<4>logseald: withholding the watchdog ping: " + stalled);
        withheld = stalled;
      } else {
        if (!withheld.empty()) log_line("<5>logseald: progress again; watchdog pings resume");
        withheld.clear();
        if (now - last_ping >= ping_every) {
          ingest::sd_notify_text("WATCHDOG=1");
          last_ping = now;
        }
      }
    }
  }
  ingest::sd_notify_text("STOPPING=1");
  if (server) server->stop();
  if (http_events) http_events->stop();
  if (admin) admin->stop();
  refusals->stop();
  if (retention) retention->stop();
  Status closed = st->close();
  if (!closed.ok()) {
    log_line("<3>logseald: close: " + closed.to_string());
    return exit_code != 0 ? exit_code : 1;
  }
  log_line("<5>logseald: stopped; every record received is durable and signed");
  return exit_code;
}
