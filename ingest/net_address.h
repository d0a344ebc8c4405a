// Socket addresses and bound sockets for the listeners: "127.0.0.1:5514",
// "[::1]:5514", ":5514" / "*:5514" (every IPv4 address). Port 0 picks a free port.
#pragma once

#include <sys/socket.h>

#include <string>

#include "base/status.h"

namespace logseal::ingest {

Result<sockaddr_storage> parse_address(const std::string& text, socklen_t& len);
std::string address_text(const sockaddr* sa);  // "127.0.0.1:40122", "[::1]:40122"
std::string bound_address_of(int fd);           // getsockname as text
// A bound socket with SO_REUSEADDR and SO_REUSEPORT; TCP sockets listen. UDP
// sockets get SO_RXQ_OVFL and a large receive buffer. `what` names it in errors.
Result<int> bind_socket(const std::string& address, bool tcp, const std::string& what);
inline Result<int> listen_tcp(const std::string& address, const std::string& what) {
  return bind_socket(address, true, what);
}

}  // namespace logseal::ingest
