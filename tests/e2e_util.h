// Helpers for the end-to-end tests: the real logseald and logseal binaries of
// this build, driven by real senders (logger, rsyslogd) over loopback sockets.
//
// - processes: spawn with argv and env, stdout/stderr to files, wait for a line,
//   stop by PID with a bounded timeout (SIGKILL only after it). Only PIDs this
//   process started are ever signalled. Children get PR_SET_PDEATHSIG=SIGKILL,
//   so a crashed test leaves no daemon behind (spawn from the main thread).
// - temporary directories under $LOGSEAL_TEST_TMP (else /tmp), removed at the
//   end even when sealed segments were made immutable (chattr +i as root).
// - Daemon: logseald on 127.0.0.1 port 0 listeners, ports read from its ready line.
// - the logseal CLI: keygen, verify, export (raw frames parsed, jsonl parsed).
// - a small JSON reader for `export --format jsonl`.
// - RsyslogProcess: rsyslogd in the foreground with a config rendered from a
//   template string, its own work directory, stopped by PID.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace logseal::e2e {

using Millis = std::chrono::milliseconds;

// ---- files and directories ----------------------------------------------------

// $LOGSEAL_TEST_TMP (mkdir -p), else /tmp.
std::string test_tmp_root();
// Clears FS_IMMUTABLE_FL / FS_APPEND_FL of one path (ioctl); quiet when it cannot.
void clear_immutable(const std::string& path);
// rm -rf that first clears the immutable flag of every entry.
void remove_tree(const std::string& path);

// A fresh directory under test_tmp_root(), removed (remove_tree) on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "e2e");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string read_file(const std::string& path);  // "" when missing
bool write_file(const std::string& path, std::string_view data);
bool file_exists(const std::string& path);
// Regular files under dir (recursive), sorted.
std::vector<std::string> list_files(const std::string& dir);
// FS_IMMUTABLE_FL is set on path.
bool is_immutable(const std::string& path);

// The directory of this test executable (the build's bin/, where logseald is).
std::string bin_dir();
// The capture corpus: $LOGSEAL_CORPUS, else LOGSEAL_SOURCE_DIR/../shared/corpus;
// "" when neither exists.
std::string corpus_dir();
// name found in PATH, /usr/sbin, /sbin, /usr/bin; "" when absent.
std::string find_program(const std::string& name);

// ---- processes -------------------------------------------------------------------

struct SpawnOptions {
  std::vector<std::string> env;  // "K=V" added to (or replacing in) this process's environment
  std::string stdin_path;        // default /dev/null
  std::string stdout_path;       // default /dev/null
  std::string stderr_path;       // default /dev/null
  unsigned nofile_limit = 0;     // RLIMIT_NOFILE of the child when > 0
};

class Child {
 public:
  Child() = default;
  // fork + exec; pid() < 0 when it could not start (exec failures exit 127).
  static Child spawn(const std::vector<std::string>& argv, const SpawnOptions& options = {});
  Child(Child&& o) noexcept;
  Child& operator=(Child&& o) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();  // SIGKILL and reap if still running

  pid_t pid() const { return pid_; }
  bool started() const { return pid_ > 0; }
  bool running();
  // Exit code, or 128 + signal number; nullopt when still running at the timeout.
  std::optional<int> wait(Millis timeout);
  // Sends sig, waits up to timeout; then SIGKILL and returns nullopt.
  std::optional<int> stop(int sig, Millis timeout);
  void kill_and_reap();

 private:
  bool reap(int flags);
  pid_t pid_ = -1;
  bool reaped_ = false;
  int code_ = -1;
};

struct RunResult {
  int exit_code = -1;  // 128 + signal when killed; -1 when it did not start
  bool timed_out = false;
  std::string out, err;
};
// Runs argv to completion (killed at the timeout), capturing stdout and stderr.
RunResult run(const std::vector<std::string>& argv, Millis timeout = Millis(30000), const std::string& stdin_data = "",
              const std::vector<std::string>& env = {});
std::string describe(const RunResult& r);

// Polls path until a line containing needle appears; returns that line.
std::optional<std::string> wait_for_line(const std::string& path, const std::string& needle, Millis timeout,
                                         Child* child = nullptr);

// CPU time (user + system) a process has used so far, in seconds; -1 when unknown.
double process_cpu_seconds(pid_t pid);

// Polls pred every poll until it is true or the timeout passes; its last value.
bool wait_until(const std::function<bool()>& pred, Millis timeout, Millis poll = Millis(10));

// ---- sockets (127.0.0.1 only) ------------------------------------------------------

int connect_tcp(uint16_t port, Millis timeout = Millis(5000));  // -1 on failure
bool send_all(int fd, std::string_view data);                   // MSG_NOSIGNAL
int udp_socket();
bool send_udp(int fd, uint16_t port, std::string_view data);
// A port free on 127.0.0.1 right now (bind port 0, read it, close).
uint16_t free_port(bool tcp);
bool port_accepts(uint16_t port);

struct HttpResponse {
  int status = 0;  // 0: no answer
  std::string headers, body;
};
// Plain HTTP/1.1 GET with Connection: close.
HttpResponse http_get(uint16_t port, const std::string& target, Millis timeout = Millis(5000));

// The value of a Prometheus sample whose name is exactly name and whose label
// text contains every one of label_parts (e.g. "stream=\"tcp\""); nullopt when absent.
std::optional<double> metric(const std::string& text, const std::string& name,
                             const std::vector<std::string>& label_parts = {});

// ---- framing -------------------------------------------------------------------------

std::string octet_frame(std::string_view msg);  // "LEN SP MSG"
// Strict RFC 6587 octet-counted frames, back to back; false on any malformation.
bool parse_octet_frames(std::string_view data, std::vector<std::string>* out);
// Lines without their LF; empty lines are skipped (the daemon skips them too).
std::vector<std::string> split_lines(std::string_view data);

// ---- JSON (enough for export --format jsonl) -------------------------------------

class Json {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  static std::optional<Json> parse(std::string_view text);

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool boolean() const { return b_; }
  double number() const { return n_; }
  const std::string& str() const { return s_; }
  const std::vector<Json>& array() const { return a_; }
  // Object member; a static null value when absent or not an object.
  const Json& operator[](const std::string& key) const;
  bool has(const std::string& key) const;
  // "a.b.c" path into nested objects; "" when absent or not a string.
  std::string get_string(const std::string& dotted) const;

 private:
  friend class JsonParser;
  Type type_ = Type::kNull;
  bool b_ = false;
  double n_ = 0;
  std::string s_;
  std::vector<Json> a_;
  std::vector<std::pair<std::string, Json>> o_;
};

// ---- logseal CLI -------------------------------------------------------------------

std::string logseald_path();
std::string logseal_path();

struct SoftKey {
  std::string dir, key_pem, pub_pem;
};
// logseal keygen --signer soft --out dir; fails the calling test on error.
SoftKey make_soft_key(const std::string& dir);

RunResult verify(const std::string& data_dir, const std::string& pub_pem);
// export --format raw, parsed into the records' raw bytes; raw_out gets the bytes.
::testing::AssertionResult export_raw(const std::string& data_dir, const std::string& stream,
                                      std::vector<std::string>* records, std::string* raw_out = nullptr);
// export --format jsonl, one Json per record.
::testing::AssertionResult export_jsonl(const std::string& data_dir, const std::string& stream,
                                        std::vector<Json>* records);
// The bytes of a jsonl record: "raw", or "raw_base64" decoded.
std::string json_record_raw(const Json& record);
std::string base64_decode(std::string_view text);

// ---- TLS material (openssl CLI) ---------------------------------------------------------

struct TlsFiles {
  std::string dir;
  std::string ca_pem, ca_key;          // self-signed CA "CN=logseal-e2e-ca"
  std::string server_pem, server_key;  // "CN=localhost", SAN IP:127.0.0.1, DNS:localhost
  std::string client_pem, client_key;  // "CN=<client_cn>", SAN DNS:<client_dns>
  std::string client_cn, client_dns;
};
// Generates a CA, a server and a client certificate (EC P-256, valid 2 days) with
// the openssl CLI into dir (created); fails the calling test on error.
TlsFiles make_tls_files(const std::string& dir, const std::string& client_cn = "logseal-e2e-client",
                        const std::string& client_dns = "client.e2e.test");

// ---- logseald --------------------------------------------------------------------

struct ListenerConfig {
  // kRelp: --relp; kSyslogTls: --syslog-tls; kRelpTls: --relp-tls (the TLS kinds
  // need DaemonConfig::tls_cert and tls_key).
  enum class Kind { kTcp, kUdp, kRelp, kSyslogTls, kRelpTls } kind = Kind::kTcp;
  std::string stream;
  // 0: the daemon picks a free port. Else this port (e.g. to restart a daemon on
  // the port a sender is configured for; pick it with free_port()).
  uint16_t port = 0;
};

struct DaemonConfig {
  std::string data_dir;
  std::string key_pem;  // soft key
  std::string signer;   // a full --signer spec (e.g. tpm:KEYFILE); overrides key_pem
  std::vector<std::string> env;  // "K=V" for logseald's environment
  std::vector<ListenerConfig> listeners;
  bool http = true;
  unsigned checkpoint_ms = 200;
  unsigned nofile_limit = 0;  // RLIMIT_NOFILE of logseald when > 0
  // When set, logseald runs with `--config config_file` (plus extra_args) instead of
  // flags; listeners then only name the streams its ready line must show.
  std::string config_file;
  std::vector<std::string> extra_args;
  // TLS listeners: --tls-cert, --tls-key, --tls-ca (when set), --tls-require-client-cert.
  std::string tls_cert, tls_key, tls_ca;
  bool tls_require_client_cert = false;
};

class Daemon {
 public:
  explicit Daemon(DaemonConfig config, std::string log_path);
  ~Daemon();  // stops it if still running (SIGTERM, SIGKILL after the timeout)
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Spawns logseald and waits for its ready line; parses the bound ports.
  ::testing::AssertionResult start(Millis timeout = Millis(15000));
  // SIGTERM (drain, sign, exit); exit code, or nullopt when it had to be killed.
  std::optional<int> stop(Millis timeout = Millis(20000));
  bool running() { return child_.running(); }
  pid_t pid() const { return child_.pid(); }
  // Sends sig to this logseald (only while it runs); false when it is not running.
  bool signal(int sig);

  uint16_t port(const std::string& stream) const;  // 0 when unknown
  uint16_t http_port() const { return http_port_; }
  const std::string& ready_line() const { return ready_; }
  std::string log() const { return read_file(log_path_); }
  // Log lines (its stderr) containing needle.
  size_t log_lines_with(const std::string& needle) const;
  const std::string& log_path() const { return log_path_; }

  std::string metrics() const;  // "" when /metrics does not answer
  // A per-stream sample (logseal_stream_*{stream="S"}); nullopt when absent.
  std::optional<double> stream_metric(const std::string& name, const std::string& stream) const;
  // A per-listener sample of the listener of stream.
  std::optional<double> listener_metric(const std::string& name, const std::string& stream) const;
  // logseal_listener_drops_total{cause=...} of the listener of stream.
  std::optional<double> drops(const std::string& cause, const std::string& stream) const;
  // Waits until logseal_stream_records_total{stream} >= n.
  bool wait_records(const std::string& stream, uint64_t n, Millis timeout = Millis(10000)) const;
  uint64_t records(const std::string& stream) const;

 private:
  DaemonConfig config_;
  std::string log_path_;
  Child child_;
  std::string ready_;
  std::map<std::string, uint16_t> ports_;  // stream -> port
  std::map<std::string, std::string> listener_names_;  // stream -> "syslog-tcp 127.0.0.1:P"
  uint16_t http_port_ = 0;
};

// ---- rsyslogd ----------------------------------------------------------------------

// A private rsyslogd: `rsyslogd -n -f CONF -i PIDFILE`, own work directory, own
// ports, stopped by its PID. The config comes from a template string in which
// {{KEY}} is replaced by vars[KEY]; {{WORKDIR}} is always set.
class RsyslogProcess {
 public:
  explicit RsyslogProcess(std::string dir);  // dir: private, created if needed
  ~RsyslogProcess();
  static std::string binary();  // "" when rsyslogd is not installed
  static std::string render(const std::string& tmpl, const std::map<std::string, std::string>& vars);

  // Writes the config, checks it with `rsyslogd -N1`, starts rsyslogd, waits until
  // every port in wait_ports accepts a connection (or the timeout).
  ::testing::AssertionResult start(const std::string& config_template, std::map<std::string, std::string> vars,
                                   const std::vector<uint16_t>& wait_ports, Millis timeout = Millis(15000));
  // SIGTERM; exit code or nullopt after SIGKILL.
  std::optional<int> stop(Millis timeout = Millis(10000));
  bool running() { return child_.running(); }
  const std::string& dir() const { return dir_; }
  const std::string& config_path() const { return conf_; }
  std::string log() const { return read_file(log_path_); }  // its stdout+stderr

 private:
  std::string dir_, conf_, pidfile_, log_path_;
  Child child_;
};

// A private TPM 2.0 simulator: `swtpm socket` on 127.0.0.1 with its own state
// directory and two adjacent free ports (commands on P, control on P+1, as the
// swtpm TCTI expects), run as our child and stopped by its PID. swtpm serves one
// connection at a time: run tpm2-tools only while no logseal process holds it.
class Swtpm {
 public:
  explicit Swtpm(std::string state_dir);  // absolute path, created if needed
  ~Swtpm();                                // stop()
  static bool available();                 // swtpm, swtpm_ioctl and tpm2-tools installed

  ::testing::AssertionResult start(Millis timeout = Millis(10000));
  std::string tcti() const;  // "swtpm:host=127.0.0.1,port=P"
  // Runs a tpm2-tools command against this TPM (-T added), quiet TSS logging.
  RunResult tool(std::vector<std::string> argv);
  // Simulated reboot: orderly shutdown, re-init, Startup(CLEAR). PCRs reset;
  // keys and NV survive.
  ::testing::AssertionResult reboot();
  // Orderly TPM2_Shutdown, then swtpm's own shutdown; SIGKILL if it lingers.
  void stop();
  uint16_t port() const { return port_; }

 private:
  std::string dir_;
  uint16_t port_ = 0;
  Child child_;
};

}  // namespace logseal::e2e
