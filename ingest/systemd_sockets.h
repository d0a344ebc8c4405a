// Socket activation: the sockets systemd passes to a service (sd_listen_fds(3)
// with names), read without libsystemd. The protocol: LISTEN_PID is this
// process, LISTEN_FDS sockets start at descriptor 3, LISTEN_FDNAMES holds their
// FileDescriptorName= values separated by ':' ("unknown" when a unit sets none).
#pragma once

#include <string>
#include <vector>

#include "base/status.h"

namespace logseal::ingest {

struct PassedSocket {
  int fd = -1;
  std::string name;  // FileDescriptorName=, "unknown" when unnamed
};

// The sockets passed to this process; empty when it was not socket-activated
// (no LISTEN_PID, or one naming another process: the variables were inherited).
// Marks them close-on-exec and removes the three variables from the environment,
// so nothing this process starts takes them for its own. InvalidArgument when
// the variables are malformed.
Result<std::vector<PassedSocket>> take_passed_sockets();

}  // namespace logseal::ingest
