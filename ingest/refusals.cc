#include "ingest/refusals.h"

#include <chrono>
#include <vector>

#include "engine/audit.h"
#include "engine/export.h"

namespace logseal::ingest {

namespace {

constexpr int64_t kAuditEveryNs = 1'000'000'000;    // one _audit record per key per second
constexpr int64_t kLogEveryNs = 60'000'000'000;     // one log line per listener and reason per minute
constexpr int64_t kForgetAfterNs = 60'000'000'000;  // an idle key is dropped after this

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

const char* refusal_reason_name(RefusalReason r) {
  return r == RefusalReason::kUnknownIdentity ? "unknown-identity" : "not-allowed";
}

RefusalLog::RefusalLog(engine::Store* store, std::function<void(const std::string&)> log)
    : store_(store), log_(std::move(log)) {}

RefusalLog::~RefusalLog() { stop(); }

void RefusalLog::start() {
  std::lock_guard<std::mutex> lk(mu_);
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lk(mu_);
    while (!stop_) {
      cv_.wait_for(lk, std::chrono::milliseconds(200));
      if (stop_) break;
      lk.unlock();
      flush(false);
      lk.lock();
    }
  });
}

void RefusalLog::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  flush(true);
}

void RefusalLog::write_audit(const Aggregate& a, uint64_t count) {
  if (store_ == nullptr) return;
  std::string m = "\"listener\":" + engine::json_escape(a.listener) + "," +
                  (a.known ? "\"identity\":" : "\"source\":") + engine::json_escape(a.who) +
                  ",\"stream\":" + engine::json_escape(a.stream) + ",\"reason\":\"" + refusal_reason_name(a.reason) +
                  "\",\"what\":" + engine::json_escape(a.what) + ",\"count\":" + std::to_string(count);
  if (!a.detail.empty()) {
    m += ",\"detail\":";
    engine::append_json_escaped_lossy(a.detail, m);
  }
  auto r = engine::append_audit(*store_, "access-refused", m);
  if (!r.ok() && log_) log_("<3>access control: cannot write an _audit record: " + r.status().to_string());
}

void RefusalLog::refuse(std::string_view listener, const Identity* who, std::string_view source,
                        std::string_view stream, RefusalReason reason, std::string_view what, std::string_view detail) {
  int64_t now = steady_ns();
  std::string who_text(who != nullptr ? std::string_view(who->name) : source);
  std::string key;
  key.reserve(listener.size() + who_text.size() + stream.size() + 8);
  key.append(listener).append(1, '\x1f').append(who != nullptr ? "i:" : "s:").append(who_text);
  key.append(1, '\x1f').append(stream).append(1, '\x1f').append(refusal_reason_name(reason));
  key.append(1, '\x1f').append(what);
  std::string log_line;
  Aggregate to_write;
  uint64_t write_count = 0;
  {
    std::lock_guard<std::mutex> lk(mu_);
    ++total_;
    ++counts_[{std::string(listener), std::string(stream), reason}];
    auto it = aggregates_.find(key);
    if (it == aggregates_.end()) {
      if (aggregates_.size() >= kRefusalKeysMax) {
        // Bounded: a flood from ever new sources is counted under one key.
        who = nullptr;
        who_text = "(other)";
        key = std::string(listener) + "\x1fs:(other)\x1f" + std::string(stream) + "\x1f" + refusal_reason_name(reason) +
              "\x1f" + std::string(what);
        it = aggregates_.find(key);
      }
      if (it == aggregates_.end()) {
        Aggregate a;
        a.listener = listener;
        a.who = who_text;
        a.known = who != nullptr;
        a.stream = stream;
        a.what = what;
        a.detail = detail;
        a.reason = reason;
        a.last_audit_ns = now - kAuditEveryNs;
        it = aggregates_.emplace(key, std::move(a)).first;
      }
    }
    Aggregate& a = it->second;
    ++a.pending;
    if (now - a.last_audit_ns >= kAuditEveryNs) {
      to_write = a;
      write_count = a.pending;
      a.pending = 0;
      a.last_audit_ns = now;
    }
    std::string lkey = std::string(listener) + "\x1f" + refusal_reason_name(reason);
    LogState& ls = log_state_[lkey];
    if (ls.last_log_ns == 0) {
      ls.last_log_ns = now;
      log_line = "<4>access control: " + std::string(listener) + ": refused " + std::string(what) + " from " +
                 (who != nullptr ? "identity " + who_text : who_text) +
                 (detail.empty() ? "" : " (" + std::string(detail) + ")") + " to stream " + std::string(stream) + ": " +
                 refusal_reason_name(reason) + "; further refusals are counted and logged once a minute";
    } else {
      ++ls.since_log;
    }
  }
  if (!log_line.empty() && log_) log_(log_line);
  if (write_count > 0) write_audit(to_write, write_count);
}

void RefusalLog::flush(bool everything) {
  int64_t now = steady_ns();
  std::vector<std::pair<Aggregate, uint64_t>> writes;
  std::vector<std::string> lines;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto it = aggregates_.begin(); it != aggregates_.end();) {
      Aggregate& a = it->second;
      if (a.pending > 0 && (everything || now - a.last_audit_ns >= kAuditEveryNs)) {
        writes.emplace_back(a, a.pending);
        a.pending = 0;
        a.last_audit_ns = now;
      }
      if (a.pending == 0 && now - a.last_audit_ns > kForgetAfterNs) {
        it = aggregates_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& [k, ls] : log_state_) {
      if (ls.since_log > 0 && (everything || now - ls.last_log_ns >= kLogEveryNs)) {
        size_t sep = k.find('\x1f');
        lines.push_back("<4>access control: " + k.substr(0, sep) + ": " + std::to_string(ls.since_log) +
                        " more refusals (" + k.substr(sep + 1) + ") since the last line");
        ls.since_log = 0;
        ls.last_log_ns = now;
      }
    }
  }
  for (auto& l : lines) {
    if (log_) log_(l);
  }
  for (auto& [a, n] : writes) write_audit(a, n);
}

void RefusalLog::append_metrics(std::string& o) const {
  std::lock_guard<std::mutex> lk(mu_);
  if (counts_.empty()) return;
  o += "# HELP logseal_refused_total Records, connections and requests refused by access control.\n"
       "# TYPE logseal_refused_total counter\n";
  for (auto& [k, n] : counts_) {
    o += "logseal_refused_total{listener=\"" + std::get<0>(k) + "\",stream=\"" + std::get<1>(k) + "\",reason=\"" +
         refusal_reason_name(std::get<2>(k)) + "\"} " + std::to_string(n) + "\n";
  }
}

uint64_t RefusalLog::total() const {
  std::lock_guard<std::mutex> lk(mu_);
  return total_;
}

}  // namespace logseal::ingest
