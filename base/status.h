// Status and Result: the error values every module returns for expected failures.
// Shaped after absl::Status / std::expected (C++23); no exceptions cross module
// boundaries. Codes follow the canonical set so callers can decide policy.
#pragma once

#include <string>
#include <utility>
#include <variant>

#include "base/assert.h"

namespace logseal {

enum class Code {
  kOk = 0,
  kInvalidArgument,     // bad input from a user or peer
  kNotFound,            // file, stream or key does not exist
  kAlreadyExists,
  kFailedPrecondition,  // e.g. writing to a sealed segment
  kResourceExhausted,   // backpressure: a bounded queue is full
  kDataLoss,            // checksum, chain or signature failure
  kUnavailable,         // a device (TPM, disk) is not reachable now
  kUnimplemented,       // kernel or filesystem lacks a feature (e.g. O_DIRECT)
  kIoError,             // a syscall failed
  kInternal,
};

const char* code_name(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok_status() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string to_string() const;

  // Prefixes the message with context, keeping the code: "open segment: <message>".
  Status with_context(const std::string& context) const {
    if (ok()) return *this;
    return Status(code_, context + ": " + message_);
  }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status ok_status() { return Status(); }
inline Status invalid_argument(std::string m) { return Status(Code::kInvalidArgument, std::move(m)); }
inline Status not_found(std::string m) { return Status(Code::kNotFound, std::move(m)); }
inline Status failed_precondition(std::string m) { return Status(Code::kFailedPrecondition, std::move(m)); }
inline Status resource_exhausted(std::string m) { return Status(Code::kResourceExhausted, std::move(m)); }
inline Status data_loss(std::string m) { return Status(Code::kDataLoss, std::move(m)); }
inline Status unavailable(std::string m) { return Status(Code::kUnavailable, std::move(m)); }
inline Status unimplemented(std::string m) { return Status(Code::kUnimplemented, std::move(m)); }
inline Status io_error(std::string m) { return Status(Code::kIoError, std::move(m)); }
inline Status internal_error(std::string m) { return Status(Code::kInternal, std::move(m)); }
// io_error with strerror(errnum) appended.
Status errno_status(const std::string& what, int errnum);

// Result<T>: a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    LS_ASSERT(!std::get<Status>(v_).ok());
  }

  bool ok() const { return v_.index() == 0; }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & {
    LS_ASSERT(ok());
    return std::get<T>(v_);
  }
  const T& value() const& {
    LS_ASSERT(ok());
    return std::get<T>(v_);
  }
  T&& value() && {
    LS_ASSERT(ok());
    return std::get<T>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace logseal

#define LS_RETURN_IF_ERROR(expr)          \
  do {                                    \
    ::logseal::Status _ls_st = (expr);    \
    if (!_ls_st.ok()) return _ls_st;      \
  } while (0)

#define LS_CONCAT_INNER(a, b) a##b
#define LS_CONCAT(a, b) LS_CONCAT_INNER(a, b)
#define LS_ASSIGN_OR_RETURN(lhs, expr) LS_ASSIGN_OR_RETURN_IMPL(LS_CONCAT(_ls_res_, __LINE__), lhs, expr)
#define LS_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
