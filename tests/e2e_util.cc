#include "tests/e2e_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/fs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

extern char** environ;

namespace logseal::e2e {

namespace {

using Clock = std::chrono::steady_clock;

bool make_dirs(const std::string& path) {
  if (path.empty()) return false;
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    cur = path.substr(0, pos);
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) return false;
  }
  return true;
}

int clear_flags_cb(const char* path, const struct stat*, int type, struct FTW*) {
  if (type != FTW_SL && type != FTW_SLN) clear_immutable(path);
  return 0;
}

int remove_cb(const char* path, const struct stat*, int type, struct FTW*) {
  if (type == FTW_DP) {
    ::rmdir(path);
  } else {
    ::unlink(path);
  }
  return 0;
}

std::string temp_file(const std::string& tag) {
  std::string tmpl = test_tmp_root() + "/e2e-" + tag + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  int fd = ::mkstemp(buf.data());
  if (fd >= 0) ::close(fd);
  return std::string(buf.data());
}

}  // namespace

// ---- files and directories ------------------------------------------------------

std::string test_tmp_root() {
  const char* env = std::getenv("LOGSEAL_TEST_TMP");
  if (env != nullptr && env[0] != '\0') {
    make_dirs(env);
    return env;
  }
  return "/tmp";
}

void clear_immutable(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return;
  int flags = 0;
  if (::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && (flags & (FS_IMMUTABLE_FL | FS_APPEND_FL)) != 0) {
    flags &= ~(FS_IMMUTABLE_FL | FS_APPEND_FL);
    ::ioctl(fd, FS_IOC_SETFLAGS, &flags);
  }
  ::close(fd);
}

void remove_tree(const std::string& path) {
  if (path.empty() || path == "/") return;
  ::nftw(path.c_str(), clear_flags_cb, 32, FTW_PHYS);
  ::nftw(path.c_str(), remove_cb, 32, FTW_DEPTH | FTW_PHYS);
}

TempDir::TempDir(const std::string& prefix) {
  std::string tmpl = test_tmp_root() + "/" + prefix + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  char* p = ::mkdtemp(buf.data());
  if (p == nullptr) {
    ADD_FAILURE() << "mkdtemp " << tmpl << ": " << std::strerror(errno);
    return;
  }
  path_ = p;
}

TempDir::~TempDir() {
  if (!path_.empty() && std::getenv("LOGSEAL_E2E_KEEP") == nullptr) remove_tree(path_);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream o;
  o << in.rdbuf();
  return o.str();
}

bool write_file(const std::string& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return false;
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  return static_cast<bool>(out);
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

namespace {
std::vector<std::string>* g_listing = nullptr;
int list_cb(const char* path, const struct stat*, int type, struct FTW*) {
  if (type == FTW_F) g_listing->emplace_back(path);
  return 0;
}
}  // namespace

std::vector<std::string> list_files(const std::string& dir) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lk(mu);
  std::vector<std::string> out;
  g_listing = &out;
  ::nftw(dir.c_str(), list_cb, 32, FTW_PHYS);
  g_listing = nullptr;
  std::sort(out.begin(), out.end());
  return out;
}

bool is_immutable(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  int flags = 0;
  bool imm = ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && (flags & FS_IMMUTABLE_FL) != 0;
  ::close(fd);
  return imm;
}

std::string bin_dir() {
  const char* env = std::getenv("LOGSEAL_BIN_DIR");
  if (env != nullptr && env[0] != '\0') return env;
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string exe(buf, static_cast<size_t>(n));
  return exe.substr(0, exe.rfind('/'));
}

std::string corpus_dir() {
  const char* env = std::getenv("LOGSEAL_CORPUS");
  if (env != nullptr && env[0] != '\0') return file_exists(env) ? env : "";
#ifdef LOGSEAL_SOURCE_DIR
  std::string d = std::string(LOGSEAL_SOURCE_DIR) + "/../shared/corpus";
  if (file_exists(d)) return d;
#endif
  return "";
}

std::string find_program(const std::string& name) {
  std::vector<std::string> dirs;
  const char* path = std::getenv("PATH");
  if (path != nullptr) {
    std::stringstream ss(path);
    std::string d;
    while (std::getline(ss, d, ':')) dirs.push_back(d);
  }
  for (const char* d : {"/usr/sbin", "/sbin", "/usr/bin", "/bin"}) dirs.push_back(d);
  for (const auto& d : dirs) {
    std::string p = d + "/" + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

// ---- processes ---------------------------------------------------------------------

Child Child::spawn(const std::vector<std::string>& argv, const SpawnOptions& options) {
  Child c;
  if (argv.empty()) return c;
  // Everything the child needs is prepared before fork (only async-signal-safe
  // calls after it).
  std::vector<std::string> envs;
  for (char** e = environ; *e != nullptr; ++e) envs.emplace_back(*e);
  for (const auto& kv : options.env) {
    std::string key = kv.substr(0, kv.find('=') + 1);
    envs.erase(std::remove_if(envs.begin(), envs.end(), [&](const std::string& e) { return e.rfind(key, 0) == 0; }),
               envs.end());
    envs.push_back(kv);
  }
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : envs) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  std::string in = options.stdin_path.empty() ? "/dev/null" : options.stdin_path;
  std::string out = options.stdout_path.empty() ? "/dev/null" : options.stdout_path;
  std::string err = options.stderr_path.empty() ? "/dev/null" : options.stderr_path;
  bool same = out == err && out != "/dev/null";
  rlim_t nofile = options.nofile_limit;
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return c;
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (nofile > 0) {
      rlimit lim{nofile, nofile};
      ::setrlimit(RLIMIT_NOFILE, &lim);
    }
    int fd = ::open(in.c_str(), O_RDONLY);
    if (fd < 0) ::_exit(127);
    ::dup2(fd, 0);
    fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) ::_exit(127);
    ::dup2(fd, 1);
    if (same) {
      ::dup2(1, 2);
    } else {
      fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd < 0) ::_exit(127);
      ::dup2(fd, 2);
    }
    // No inherited sockets or files: a child must not keep a test's connection open.
    if (::syscall(SYS_close_range, 3u, ~0u, 0u) != 0) {
      for (int i = 3; i < 4096; ++i) ::close(i);
    }
    ::execve(cargv[0], cargv.data(), cenv.data());
    ::_exit(127);
  }
  c.pid_ = pid;
  return c;
}

Child::Child(Child&& o) noexcept : pid_(o.pid_), reaped_(o.reaped_), code_(o.code_) { o.pid_ = -1; }

Child& Child::operator=(Child&& o) noexcept {
  if (this != &o) {
    kill_and_reap();
    pid_ = o.pid_;
    reaped_ = o.reaped_;
    code_ = o.code_;
    o.pid_ = -1;
  }
  return *this;
}

Child::~Child() { kill_and_reap(); }

bool Child::reap(int flags) {
  if (pid_ <= 0 || reaped_) return reaped_;
  int st = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &st, flags);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    reaped_ = true;
    code_ = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
  } else if (r < 0) {
    reaped_ = true;  // not our child any more
    code_ = -1;
  }
  return reaped_;
}

bool Child::running() { return pid_ > 0 && !reap(WNOHANG); }

std::optional<int> Child::wait(Millis timeout) {
  if (pid_ <= 0) return std::nullopt;
  auto deadline = Clock::now() + timeout;
  while (!reap(WNOHANG)) {
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(Millis(5));
  }
  return code_;
}

std::optional<int> Child::stop(int sig, Millis timeout) {
  if (pid_ <= 0) return std::nullopt;
  if (!reap(WNOHANG)) ::kill(pid_, sig);
  auto r = wait(timeout);
  if (!r) kill_and_reap();
  return r;
}

void Child::kill_and_reap() {
  if (pid_ > 0 && !reap(WNOHANG)) {
    ::kill(pid_, SIGKILL);
    reap(0);
  }
}

RunResult run(const std::vector<std::string>& argv, Millis timeout, const std::string& stdin_data,
              const std::vector<std::string>& env) {
  RunResult r;
  SpawnOptions o;
  o.env = env;
  o.stdout_path = temp_file("out");
  o.stderr_path = temp_file("err");
  if (!stdin_data.empty()) {
    o.stdin_path = temp_file("in");
    write_file(o.stdin_path, stdin_data);
  }
  Child c = Child::spawn(argv, o);
  if (c.started()) {
    auto code = c.wait(timeout);
    if (code) {
      r.exit_code = *code;
    } else {
      r.timed_out = true;
      c.kill_and_reap();
      r.exit_code = 128 + SIGKILL;
    }
  }
  r.out = read_file(o.stdout_path);
  r.err = read_file(o.stderr_path);
  ::unlink(o.stdout_path.c_str());
  ::unlink(o.stderr_path.c_str());
  if (!o.stdin_path.empty()) ::unlink(o.stdin_path.c_str());
  return r;
}

std::string describe(const RunResult& r) {
  std::string s = "exit " + std::to_string(r.exit_code) + (r.timed_out ? " (timed out)" : "");
  auto cut = [](const std::string& t) { return t.size() > 4000 ? t.substr(0, 4000) + "..." : t; };
  if (!r.out.empty()) s += "\nstdout:\n" + cut(r.out);
  if (!r.err.empty()) s += "\nstderr:\n" + cut(r.err);
  return s;
}

std::optional<std::string> wait_for_line(const std::string& path, const std::string& needle, Millis timeout,
                                         Child* child) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    bool alive = child == nullptr || child->running();
    std::string text = read_file(path);
    size_t at = text.find(needle);
    if (at != std::string::npos) {
      size_t b = text.rfind('\n', at);
      b = b == std::string::npos ? 0 : b + 1;
      size_t e = text.find('\n', at);
      if (e != std::string::npos) return text.substr(b, e - b);
    }
    if (!alive || Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(Millis(10));
  }
}

double process_cpu_seconds(pid_t pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::stringstream ss(stat.substr(close + 2));
  std::vector<std::string> f;
  std::string x;
  while (ss >> x) f.push_back(x);
  // After "pid (comm) ": state is field 3, utime 14, stime 15 (1-based).
  if (f.size() < 13) return -1;
  double ticks = std::strtod(f[11].c_str(), nullptr) + std::strtod(f[12].c_str(), nullptr);
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

bool wait_until(const std::function<bool()>& pred, Millis timeout, Millis poll) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    if (pred()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(poll);
  }
}

// ---- sockets -------------------------------------------------------------------------

namespace {
sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}
}  // namespace

int connect_tcp(uint16_t port, Millis timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  sockaddr_in a = loopback(port);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  if (rc != 0 && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) == 1) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      rc = err == 0 ? 0 : -1;
    }
  }
  if (rc != 0) {
    ::close(fd);
    return -1;
  }
  int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

bool send_all(int fd, std::string_view data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

int udp_socket() { return ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0); }

bool send_udp(int fd, uint16_t port, std::string_view data) {
  sockaddr_in a = loopback(port);
  ssize_t n = ::sendto(fd, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
  return n == static_cast<ssize_t>(data.size());
}

uint16_t free_port(bool tcp) {
  int fd = ::socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in a = loopback(0);
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

bool port_accepts(uint16_t port) {
  int fd = connect_tcp(port, Millis(500));
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

HttpResponse http_get(uint16_t port, const std::string& target, Millis timeout) {
  HttpResponse r;
  auto deadline = Clock::now() + timeout;
  int fd = connect_tcp(port, timeout);
  if (fd < 0) return r;
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                    "\r\nUser-Agent: logseal-e2e\r\nConnection: close\r\n\r\n";
  if (!send_all(fd, req)) {
    ::close(fd);
    return r;
  }
  std::string resp;
  char buf[16384];
  while (true) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    resp.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  size_t hdr_end = resp.find("\r\n\r\n");
  if (resp.rfind("HTTP/1.", 0) != 0 || hdr_end == std::string::npos) return r;
  r.status = std::atoi(resp.c_str() + resp.find(' ') + 1);
  r.headers = resp.substr(0, hdr_end);
  r.body = resp.substr(hdr_end + 4);
  return r;
}

std::optional<double> metric(const std::string& text, const std::string& name,
                             const std::vector<std::string>& label_parts) {
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t end = line.find_first_of("{ ");
    if (end == std::string::npos || line.compare(0, end, name) != 0 || end != name.size()) continue;
    std::string labels;
    if (line[end] == '{') {
      size_t close = line.find('}', end);
      if (close == std::string::npos) continue;
      labels = line.substr(end, close - end + 1);
    }
    bool all = true;
    for (const auto& p : label_parts) all = all && labels.find(p) != std::string::npos;
    if (!all) continue;
    size_t sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    return std::strtod(line.c_str() + sp + 1, nullptr);
  }
  return std::nullopt;
}

// ---- framing ---------------------------------------------------------------------------

std::string octet_frame(std::string_view msg) {
  std::string s = std::to_string(msg.size());
  s += ' ';
  s += msg;
  return s;
}

bool parse_octet_frames(std::string_view data, std::vector<std::string>* out) {
  size_t i = 0;
  while (i < data.size()) {
    size_t j = i;
    uint64_t len = 0;
    while (j < data.size() && data[j] >= '0' && data[j] <= '9' && j - i < 10) {
      len = len * 10 + static_cast<uint64_t>(data[j] - '0');
      ++j;
    }
    if (j == i || j >= data.size() || data[j] != ' ') return false;
    ++j;
    if (data.size() - j < len) return false;
    out->emplace_back(data.substr(j, len));
    i = j + len;
  }
  return true;
}

std::vector<std::string> split_lines(std::string_view data) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < data.size()) {
    size_t lf = data.find('\n', pos);
    size_t end = lf == std::string_view::npos ? data.size() : lf;
    if (end > pos) lines.emplace_back(data.substr(pos, end - pos));
    pos = end + 1;
  }
  return lines;
}

// ---- JSON ---------------------------------------------------------------------------------

class JsonParser {
 public:
  explicit JsonParser(std::string_view s) : s_(s) {}
  bool document(Json& out) {
    if (!value(out, 0)) return false;
    ws();
    return i_ == s_.size();
  }

 private:
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool lit(std::string_view w) {
    if (s_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }
  static void put_utf8(uint32_t cp, std::string& o) {
    if (cp < 0x80) {
      o += static_cast<char>(cp);
    } else if (cp < 0x800) {
      o += static_cast<char>(0xC0 | (cp >> 6));
      o += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      o += static_cast<char>(0xE0 | (cp >> 12));
      o += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      o += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      o += static_cast<char>(0xF0 | (cp >> 18));
      o += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      o += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      o += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  bool hex4(uint32_t& v) {
    if (s_.size() - i_ < 4) return false;
    v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
    }
    return true;
  }
  bool string(std::string& o) {
    if (i_ >= s_.size() || s_[i_] != '"') return false;
    ++i_;
    while (i_ < s_.size()) {
      char c = s_[i_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        o += c;
        continue;
      }
      if (i_ >= s_.size()) return false;
      char e = s_[i_++];
      switch (e) {
        case '"': o += '"'; break;
        case '\\': o += '\\'; break;
        case '/': o += '/'; break;
        case 'b': o += '\b'; break;
        case 'f': o += '\f'; break;
        case 'n': o += '\n'; break;
        case 'r': o += '\r'; break;
        case 't': o += '\t'; break;
        case 'u': {
          uint32_t cp;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00) {
            uint32_t lo;
            if (!lit("\\u") || !hex4(lo) || lo < 0xDC00 || lo >= 0xE000) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          put_utf8(cp, o);
          break;
        }
        default: return false;
      }
    }
    return false;
  }
  bool value(Json& v, int depth) {
    if (depth > 64) return false;
    ws();
    if (i_ >= s_.size()) return false;
    char c = s_[i_];
    if (c == '{') {
      ++i_;
      v.type_ = Json::Type::kObject;
      ws();
      if (i_ < s_.size() && s_[i_] == '}') {
        ++i_;
        return true;
      }
      while (true) {
        ws();
        std::string key;
        if (!string(key)) return false;
        ws();
        if (!lit(":")) return false;
        Json child;
        if (!value(child, depth + 1)) return false;
        v.o_.emplace_back(std::move(key), std::move(child));
        ws();
        if (lit(",")) continue;
        return lit("}");
      }
    }
    if (c == '[') {
      ++i_;
      v.type_ = Json::Type::kArray;
      ws();
      if (i_ < s_.size() && s_[i_] == ']') {
        ++i_;
        return true;
      }
      while (true) {
        Json child;
        if (!value(child, depth + 1)) return false;
        v.a_.push_back(std::move(child));
        ws();
        if (lit(",")) continue;
        return lit("]");
      }
    }
    if (c == '"') {
      v.type_ = Json::Type::kString;
      return string(v.s_);
    }
    if (lit("true")) {
      v.type_ = Json::Type::kBool;
      v.b_ = true;
      return true;
    }
    if (lit("false")) {
      v.type_ = Json::Type::kBool;
      return true;
    }
    if (lit("null")) return true;
    size_t start = i_;
    while (i_ < s_.size() && std::strchr("+-0123456789.eE", s_[i_]) != nullptr) ++i_;
    if (i_ == start) return false;
    v.type_ = Json::Type::kNumber;
    v.s_ = std::string(s_.substr(start, i_ - start));
    char* end = nullptr;
    v.n_ = std::strtod(v.s_.c_str(), &end);
    return end != nullptr && *end == '\0';
  }

  std::string_view s_;
  size_t i_ = 0;
};

std::optional<Json> Json::parse(std::string_view text) {
  Json j;
  JsonParser p(text);
  if (!p.document(j)) return std::nullopt;
  return j;
}

const Json& Json::operator[](const std::string& key) const {
  static const Json null_value;
  if (type_ != Type::kObject) return null_value;
  for (const auto& [k, v] : o_) {
    if (k == key) return v;
  }
  return null_value;
}

bool Json::has(const std::string& key) const {
  if (type_ != Type::kObject) return false;
  for (const auto& [k, v] : o_) {
    if (k == key) return true;
  }
  return false;
}

std::string Json::get_string(const std::string& dotted) const {
  const Json* cur = this;
  size_t pos = 0;
  while (true) {
    size_t dot = dotted.find('.', pos);
    cur = &(*cur)[dotted.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos)];
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  return cur->type_ == Type::kString ? cur->s_ : std::string();
}

// ---- logseal CLI ------------------------------------------------------------------------------

std::string logseald_path() { return bin_dir() + "/logseald"; }
std::string logseal_path() { return bin_dir() + "/logseal"; }

SoftKey make_soft_key(const std::string& dir) {
  SoftKey k;
  k.dir = dir;
  make_dirs(dir);
  k.key_pem = dir + "/signing-key.pem";
  k.pub_pem = dir + "/signing-key.pub.pem";
  RunResult r = run({logseal_path(), "keygen", "--signer", "soft", "--out", dir}, Millis(20000));
  EXPECT_EQ(r.exit_code, 0) << "logseal keygen: " << describe(r);
  EXPECT_TRUE(file_exists(k.key_pem)) << k.key_pem;
  EXPECT_TRUE(file_exists(k.pub_pem)) << k.pub_pem;
  return k;
}

RunResult verify(const std::string& data_dir, const std::string& pub_pem) {
  return run({logseal_path(), "verify", data_dir, "--pubkey", pub_pem}, Millis(60000));
}

::testing::AssertionResult export_raw(const std::string& data_dir, const std::string& stream,
                                      std::vector<std::string>* records, std::string* raw_out) {
  RunResult r = run({logseal_path(), "export", data_dir, "--stream", stream, "--format", "raw"}, Millis(60000));
  if (r.exit_code != 0) return ::testing::AssertionFailure() << "logseal export --format raw: " << describe(r);
  records->clear();
  if (!parse_octet_frames(r.out, records)) {
    return ::testing::AssertionFailure() << "export --format raw is not a sequence of octet-counted frames ("
                                         << r.out.size() << " bytes)";
  }
  if (raw_out != nullptr) *raw_out = std::move(r.out);
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult export_jsonl(const std::string& data_dir, const std::string& stream,
                                        std::vector<Json>* records) {
  RunResult r = run({logseal_path(), "export", data_dir, "--stream", stream, "--format", "jsonl"}, Millis(60000));
  if (r.exit_code != 0) return ::testing::AssertionFailure() << "logseal export --format jsonl: " << describe(r);
  records->clear();
  size_t n = 0;
  for (const auto& line : split_lines(r.out)) {
    ++n;
    auto j = Json::parse(line);
    if (!j) return ::testing::AssertionFailure() << "export jsonl line " << n << " is not JSON: " << line;
    records->push_back(std::move(*j));
  }
  return ::testing::AssertionSuccess();
}

std::string base64_decode(std::string_view text) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = val(c);
    if (v < 0) continue;  // '=' padding
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

std::string json_record_raw(const Json& record) {
  if (record.has("raw")) return record["raw"].str();
  return base64_decode(record["raw_base64"].str());
}

// ---- TLS material -------------------------------------------------------------------------------

TlsFiles make_tls_files(const std::string& dir, const std::string& client_cn, const std::string& client_dns) {
  TlsFiles t;
  t.dir = dir;
  t.client_cn = client_cn;
  t.client_dns = client_dns;
  make_dirs(dir);
  std::string openssl = find_program("openssl");
  if (openssl.empty()) {
    ADD_FAILURE() << "the openssl CLI is not installed (scripts/install-deps)";
    return t;
  }
  t.ca_pem = dir + "/ca.pem";
  t.ca_key = dir + "/ca.key";
  t.server_pem = dir + "/server.pem";
  t.server_key = dir + "/server.key";
  t.client_pem = dir + "/client.pem";
  t.client_key = dir + "/client.key";
  auto step = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {openssl};
    argv.insert(argv.end(), args.begin(), args.end());
    RunResult r = run(argv, Millis(30000));
    std::string cmd;
    for (const auto& a : argv) cmd += " " + a;
    EXPECT_EQ(r.exit_code, 0) << cmd << ": " << describe(r);
    return r.exit_code == 0;
  };
  const std::vector<std::string> ec = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"};
  auto with = [](std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  if (!step(with(with({"req", "-x509"}, ec),
                 {"-keyout", t.ca_key, "-out", t.ca_pem, "-days", "2", "-subj", "/CN=logseal-e2e-ca", "-addext",
                  "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"}))) {
    return t;
  }
  struct Leaf {
    std::string pem, key, subj, ext;
  };
  std::vector<Leaf> leaves = {
      {t.server_pem, t.server_key, "/CN=localhost",
       "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"},
      {t.client_pem, t.client_key, "/CN=" + client_cn,
       "subjectAltName=DNS:" + client_dns + "\nextendedKeyUsage=clientAuth\n"},
  };
  for (const auto& leaf : leaves) {
    std::string csr = leaf.pem + ".csr", ext = leaf.pem + ".ext";
    if (!write_file(ext, leaf.ext + "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n")) {
      ADD_FAILURE() << "cannot write " << ext;
      return t;
    }
    if (!step(with(with({"req"}, ec), {"-keyout", leaf.key, "-out", csr, "-subj", leaf.subj}))) return t;
    if (!step({"x509", "-req", "-in", csr, "-CA", t.ca_pem, "-CAkey", t.ca_key, "-set_serial",
               std::to_string(1000 + (&leaf - leaves.data())), "-out", leaf.pem, "-days", "2", "-extfile", ext})) {
      return t;
    }
  }
  return t;
}

// ---- logseald ------------------------------------------------------------------------------------

Daemon::Daemon(DaemonConfig config, std::string log_path) : config_(std::move(config)), log_path_(std::move(log_path)) {}

Daemon::~Daemon() {
  if (child_.started() && child_.running()) child_.stop(SIGTERM, Millis(20000));
}

::testing::AssertionResult Daemon::start(Millis timeout) {
  std::vector<std::string> argv = {logseald_path()};
  if (!config_.config_file.empty()) {
    argv.insert(argv.end(), {"--config", config_.config_file});
  } else {
    argv.insert(argv.end(), {"--data-dir", config_.data_dir, "--signer",
                             config_.signer.empty() ? "soft:" + config_.key_pem : config_.signer, "--checkpoint-ms",
                             std::to_string(config_.checkpoint_ms)});
    for (const auto& l : config_.listeners) {
      switch (l.kind) {
        case ListenerConfig::Kind::kTcp: argv.push_back("--syslog-tcp"); break;
        case ListenerConfig::Kind::kUdp: argv.push_back("--syslog-udp"); break;
        case ListenerConfig::Kind::kRelp: argv.push_back("--relp"); break;
        case ListenerConfig::Kind::kSyslogTls: argv.push_back("--syslog-tls"); break;
        case ListenerConfig::Kind::kRelpTls: argv.push_back("--relp-tls"); break;
      }
      argv.push_back("127.0.0.1:" + std::to_string(l.port) + ",stream=" + l.stream);
    }
    if (!config_.tls_cert.empty()) argv.insert(argv.end(), {"--tls-cert", config_.tls_cert});
    if (!config_.tls_key.empty()) argv.insert(argv.end(), {"--tls-key", config_.tls_key});
    if (!config_.tls_ca.empty()) argv.insert(argv.end(), {"--tls-ca", config_.tls_ca});
    if (config_.tls_require_client_cert) argv.push_back("--tls-require-client-cert");
    if (config_.http) {
      argv.push_back("--http");
      argv.push_back("127.0.0.1:0");
    }
  }
  for (const auto& a : config_.extra_args) argv.push_back(a);
  SpawnOptions o;
  o.stdout_path = log_path_;
  o.stderr_path = log_path_;
  o.nofile_limit = config_.nofile_limit;
  o.env = config_.env;
  child_ = Child::spawn(argv, o);
  if (!child_.started()) return ::testing::AssertionFailure() << "could not spawn " << argv[0];
  auto line = wait_for_line(log_path_, "logseald: ready", timeout, &child_);
  if (!line) {
    std::string why = child_.running() ? "no ready line in time" : "logseald exited";
    return ::testing::AssertionFailure() << why << "; its log:\n" << log();
  }
  ready_ = *line;
  ports_.clear();
  listener_names_.clear();
  // "syslog-tcp=", "syslog-udp=", "relp=", and the TLS ones "syslog-tcp-tls=", "relp-tls=".
  std::regex lre(R"((syslog-tcp|syslog-udp|relp)(-tls)?=([0-9.]+):([0-9]+)\(stream ([^)]*)\))");
  for (auto it = std::sregex_iterator(ready_.begin(), ready_.end(), lre); it != std::sregex_iterator(); ++it) {
    const auto& m = *it;
    ports_[m[5].str()] = static_cast<uint16_t>(std::stoi(m[4].str()));
    // The metrics name a listener by its kind without "-tls".
    listener_names_[m[5].str()] = m[1].str() + " " + m[3].str() + ":" + m[4].str();
  }
  std::smatch hm;
  std::regex hre(R"(http=[0-9.]+:([0-9]+))");
  http_port_ = std::regex_search(ready_, hm, hre) ? static_cast<uint16_t>(std::stoi(hm[1].str())) : 0;
  for (const auto& l : config_.listeners) {
    if (ports_.count(l.stream) == 0 || ports_[l.stream] == 0) {
      return ::testing::AssertionFailure() << "no port for stream " << l.stream << " in: " << ready_;
    }
    if (l.port != 0 && ports_[l.stream] != l.port) {
      return ::testing::AssertionFailure() << "stream " << l.stream << " is not on port " << l.port << ": " << ready_;
    }
  }
  if (config_.http && http_port_ == 0) return ::testing::AssertionFailure() << "no http port in: " << ready_;
  return ::testing::AssertionSuccess();
}

bool Daemon::signal(int sig) {
  if (!child_.started() || !child_.running()) return false;
  return ::kill(child_.pid(), sig) == 0;
}

std::optional<int> Daemon::stop(Millis timeout) {
  if (!child_.started()) return std::nullopt;
  return child_.stop(SIGTERM, timeout);
}

size_t Daemon::log_lines_with(const std::string& needle) const {
  size_t n = 0;
  for (const auto& line : split_lines(log())) n += line.find(needle) != std::string::npos ? 1 : 0;
  return n;
}

uint16_t Daemon::port(const std::string& stream) const {
  auto it = ports_.find(stream);
  return it == ports_.end() ? 0 : it->second;
}

std::string Daemon::metrics() const {
  if (http_port_ == 0) return "";
  HttpResponse r = http_get(http_port_, "/metrics", Millis(5000));
  return r.status == 200 ? r.body : "";
}

std::optional<double> Daemon::stream_metric(const std::string& name, const std::string& stream) const {
  return metric(metrics(), name, {"stream=\"" + stream + "\""});
}

std::optional<double> Daemon::listener_metric(const std::string& name, const std::string& stream) const {
  auto it = listener_names_.find(stream);
  if (it == listener_names_.end()) return std::nullopt;
  return metric(metrics(), name, {"listener=\"" + it->second + "\"", "stream=\"" + stream + "\""});
}

std::optional<double> Daemon::drops(const std::string& cause, const std::string& stream) const {
  auto it = listener_names_.find(stream);
  if (it == listener_names_.end()) return std::nullopt;
  return metric(metrics(), "logseal_listener_drops_total",
                {"listener=\"" + it->second + "\"", "cause=\"" + cause + "\""});
}

uint64_t Daemon::records(const std::string& stream) const {
  auto v = stream_metric("logseal_stream_records_total", stream);
  return v ? static_cast<uint64_t>(*v) : 0;
}

bool Daemon::wait_records(const std::string& stream, uint64_t n, Millis timeout) const {
  return wait_until([&] { return records(stream) >= n; }, timeout, Millis(10));
}

// ---- rsyslogd -----------------------------------------------------------------------------------

RsyslogProcess::RsyslogProcess(std::string dir) : dir_(std::move(dir)) {
  make_dirs(dir_ + "/work");
  conf_ = dir_ + "/rsyslog.conf";
  pidfile_ = dir_ + "/rsyslogd.pid";
  log_path_ = dir_ + "/rsyslogd.log";
}

RsyslogProcess::~RsyslogProcess() {
  if (child_.started() && child_.running()) child_.stop(SIGTERM, Millis(10000));
}

std::string RsyslogProcess::binary() { return find_program("rsyslogd"); }

std::string RsyslogProcess::render(const std::string& tmpl, const std::map<std::string, std::string>& vars) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t open = tmpl.find("{{", pos);
    if (open == std::string::npos) break;
    size_t close = tmpl.find("}}", open + 2);
    if (close == std::string::npos) break;
    out.append(tmpl, pos, open - pos);
    std::string key = tmpl.substr(open + 2, close - open - 2);
    auto it = vars.find(key);
    if (it != vars.end()) {
      out += it->second;
    } else {
      out.append(tmpl, open, close + 2 - open);  // left as is: start() reports it
    }
    pos = close + 2;
  }
  out.append(tmpl, pos, std::string::npos);
  return out;
}

::testing::AssertionResult RsyslogProcess::start(const std::string& config_template,
                                                 std::map<std::string, std::string> vars,
                                                 const std::vector<uint16_t>& wait_ports, Millis timeout) {
  std::string bin = binary();
  if (bin.empty()) return ::testing::AssertionFailure() << "rsyslogd is not installed (scripts/install-deps)";
  vars["WORKDIR"] = dir_ + "/work";
  std::string conf = render(config_template, vars);
  size_t left = conf.find("{{");
  if (left != std::string::npos) {
    return ::testing::AssertionFailure() << "rsyslog config template has an unset variable: "
                                         << conf.substr(left, conf.find("}}", left) + 2 - left);
  }
  if (!write_file(conf_, conf)) return ::testing::AssertionFailure() << "cannot write " << conf_;
  RunResult check = run({bin, "-N1", "-f", conf_}, Millis(15000));
  if (check.exit_code != 0) {
    return ::testing::AssertionFailure() << "rsyslogd -N1 rejects the config:\n" << conf << "\n" << describe(check);
  }
  SpawnOptions o;
  o.stdout_path = log_path_;
  o.stderr_path = log_path_;
  child_ = Child::spawn({bin, "-n", "-f", conf_, "-i", pidfile_}, o);
  if (!child_.started()) return ::testing::AssertionFailure() << "could not spawn " << bin;
  for (uint16_t p : wait_ports) {
    bool up = wait_until([&] { return !child_.running() || port_accepts(p); }, timeout, Millis(20));
    if (!child_.running()) return ::testing::AssertionFailure() << "rsyslogd exited; its output:\n" << log();
    if (!up) return ::testing::AssertionFailure() << "rsyslogd does not listen on 127.0.0.1:" << p << "\n" << log();
  }
  return ::testing::AssertionSuccess();
}

std::optional<int> RsyslogProcess::stop(Millis timeout) {
  if (!child_.started()) return std::nullopt;
  return child_.stop(SIGTERM, timeout);
}

// ---- swtpm -------------------------------------------------------------------------

namespace {
// True when 127.0.0.1:port can be bound for TCP right now.
bool free_port_is(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a = loopback(port);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}
}  // namespace

Swtpm::Swtpm(std::string state_dir) : dir_(std::move(state_dir)) {}

Swtpm::~Swtpm() { stop(); }

bool Swtpm::available() {
  return !find_program("swtpm").empty() && !find_program("swtpm_ioctl").empty() &&
         !find_program("tpm2_startup").empty();
}

::testing::AssertionResult Swtpm::start(Millis timeout) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  // Two adjacent ports: the swtpm TCTI talks to P and to P+1 for control.
  for (int attempt = 0; attempt < 50 && port_ == 0; ++attempt) {
    uint16_t p = free_port(true);
    if (p != 0 && p < 65535 && free_port_is(p + 1)) port_ = p;
  }
  if (port_ == 0) return ::testing::AssertionFailure() << "no two adjacent free ports for swtpm";
  std::string p = std::to_string(port_), c = std::to_string(port_ + 1);
  SpawnOptions so;
  so.stdout_path = dir_ + "/swtpm.log";
  so.stderr_path = dir_ + "/swtpm.log";
  child_ = Child::spawn({find_program("swtpm"), "socket", "--tpm2", "--server",
                         "type=tcp,port=" + p + ",bindaddr=127.0.0.1", "--ctrl",
                         "type=tcp,port=" + c + ",bindaddr=127.0.0.1", "--tpmstate", "dir=" + dir_, "--flags",
                         "not-need-init,startup-clear", "--log", "file=" + dir_ + "/swtpm.log,level=1"},
                        so);
  if (!child_.started()) return ::testing::AssertionFailure() << "swtpm did not start";
  // The control port answers without taking the one command connection.
  if (!wait_until([&] { return port_accepts(static_cast<uint16_t>(port_ + 1)) || !child_.running(); }, timeout) ||
      !child_.running()) {
    return ::testing::AssertionFailure() << "swtpm is not listening on " << c << ": " << read_file(dir_ + "/swtpm.log");
  }
  return ::testing::AssertionSuccess();
}

std::string Swtpm::tcti() const { return "swtpm:host=127.0.0.1,port=" + std::to_string(port_); }

RunResult Swtpm::tool(std::vector<std::string> argv) {
  argv.insert(argv.begin() + 1, {"-T", tcti()});
  argv[0] = find_program(argv[0]);
  return run(argv, Millis(30000), "", {"TSS2_LOG=all+none"});
}

::testing::AssertionResult Swtpm::reboot() {
  RunResult r = tool({"tpm2_shutdown", "-c"});
  if (r.exit_code != 0) return ::testing::AssertionFailure() << "tpm2_shutdown: " << describe(r);
  r = run({find_program("swtpm_ioctl"), "--tcp", "127.0.0.1:" + std::to_string(port_ + 1), "-i"});
  if (r.exit_code != 0) return ::testing::AssertionFailure() << "swtpm_ioctl -i: " << describe(r);
  r = tool({"tpm2_startup", "-c"});
  if (r.exit_code != 0) return ::testing::AssertionFailure() << "tpm2_startup: " << describe(r);
  return ::testing::AssertionSuccess();
}

void Swtpm::stop() {
  if (!child_.started() || !child_.running()) return;
  // Orderly: without TPM2_Shutdown the next start counts an unorderly shutdown.
  (void)tool({"tpm2_shutdown", "-c"});
  (void)run({find_program("swtpm_ioctl"), "--tcp", "127.0.0.1:" + std::to_string(port_ + 1), "-s"}, Millis(5000));
  if (!child_.wait(Millis(5000))) child_.kill_and_reap();
}

}  // namespace logseal::e2e
