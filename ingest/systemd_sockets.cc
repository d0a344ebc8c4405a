#include "ingest/systemd_sockets.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace logseal::ingest {

namespace {

constexpr int kListenFdsStart = 3;    // SD_LISTEN_FDS_START
constexpr long kListenFdsMax = 1024;  // far above any socket unit; guards a bad LISTEN_FDS

bool parse_long(const char* text, long& out) {
  if (text == nullptr || *text == '\0') return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtol(text, &end, 10);
  return errno == 0 && *end == '\0';
}

void clear_environment() {
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
}

}  // namespace

Result<std::vector<PassedSocket>> take_passed_sockets() {
  std::vector<PassedSocket> out;
  const char* pid_text = std::getenv("LISTEN_PID");
  if (pid_text == nullptr) return out;
  long pid = 0;
  if (!parse_long(pid_text, pid)) {
    clear_environment();
    return invalid_argument("LISTEN_PID '" + std::string(pid_text) + "' is not a number");
  }
  // Inherited from a parent that was activated: not ours.
  if (pid != static_cast<long>(::getpid())) return out;
  long n = 0;
  const char* fds_text = std::getenv("LISTEN_FDS");
  if (!parse_long(fds_text, n) || n < 0 || n > kListenFdsMax) {
    std::string shown = fds_text == nullptr ? "(unset)" : fds_text;
    clear_environment();
    return invalid_argument("LISTEN_FDS '" + shown + "' is not a socket count");
  }
  std::vector<std::string> names;
  if (const char* names_text = std::getenv("LISTEN_FDNAMES")) {
    std::string all = names_text;
    size_t start = 0;
    while (true) {
      size_t colon = all.find(':', start);
      names.push_back(all.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
    if (static_cast<long>(names.size()) != n) {
      clear_environment();
      return invalid_argument("LISTEN_FDNAMES names " + std::to_string(names.size()) + " sockets, LISTEN_FDS says " +
                              std::to_string(n));
    }
  }
  clear_environment();
  for (long i = 0; i < n; ++i) {
    int fd = kListenFdsStart + static_cast<int>(i);
    int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0) return errno_status("passed socket " + std::to_string(fd), errno);
    if (::fcntl(fd, F_SETFD, flags | FD_CLOEXEC) != 0)
      return errno_status("passed socket " + std::to_string(fd), errno);
    out.push_back({fd, names.empty() ? std::string("unknown") : names[static_cast<size_t>(i)]});
  }
  return out;
}

}  // namespace logseal::ingest
