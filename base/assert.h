// Always-on assertions for programmer errors (TigerBeetle style): they stay on in
// release builds, log the failed condition with its location and trap. Expected
// failures (bad input, I/O errors) are Status values, never asserts.
#pragma once

namespace logseal {
[[noreturn]] void assert_fail(const char* expr, const char* file, int line, const char* msg);
}  // namespace logseal

#define LS_ASSERT(cond)                                                   \
  do {                                                                    \
    if (__builtin_expect(!(cond), 0)) ::logseal::assert_fail(#cond, __FILE__, __LINE__, ""); \
  } while (0)

#define LS_ASSERT_MSG(cond, msg)                                           \
  do {                                                                     \
    if (__builtin_expect(!(cond), 0)) ::logseal::assert_fail(#cond, __FILE__, __LINE__, msg); \
  } while (0)
