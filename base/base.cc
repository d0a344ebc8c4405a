#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/assert.h"
#include "base/status.h"

namespace logseal {

void assert_fail(const char* expr, const char* file, int line, const char* msg) {
  std::fprintf(stderr, "<2>logseal: assertion failed: %s at %s:%d %s\n", expr, file, line, msg);
  std::fflush(stderr);
  __builtin_trap();
}

const char* code_name(Code code) {
  switch (code) {
    case Code::kOk: return "OK";
    case Code::kInvalidArgument: return "INVALID_ARGUMENT";
    case Code::kNotFound: return "NOT_FOUND";
    case Code::kAlreadyExists: return "ALREADY_EXISTS";
    case Code::kFailedPrecondition: return "FAILED_PRECONDITION";
    case Code::kResourceExhausted: return "RESOURCE_EXHAUSTED";
    case Code::kDataLoss: return "DATA_LOSS";
    case Code::kUnavailable: return "UNAVAILABLE";
    case Code::kUnimplemented: return "UNIMPLEMENTED";
    case Code::kIoError: return "IO_ERROR";
    case Code::kInternal: return "INTERNAL";
  }
  return "UNKNOWN";
}

std::string Status::to_string() const {
  if (ok()) return "OK";
  return std::string(code_name(code_)) + ": " + message_;
}

Status errno_status(const std::string& what, int errnum) {
  return io_error(what + ": " + std::strerror(errnum));
}

}  // namespace logseal
