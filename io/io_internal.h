// Module-private declarations shared by the io/ .cc files. Not part of the
// module's interface: nothing outside io/ includes this header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"
#include "io/env.h"

namespace logseal::io {

// The granularity a write may complete short at and still be resubmitted: a
// remainder that starts on a 512-byte sector boundary is a valid O_DIRECT request
// on every Linux block device with 512-byte logical sectors. Both rings accept
// writes aligned to this; fresh writes from DurableWriter are kBlockBytes-aligned.
inline constexpr size_t kSectorBytes = 512;

// Longest single write a ring accepts: the completion reports bytes in an int32,
// and Linux caps one write at about 2 GiB anyway.
inline constexpr size_t kRingWriteBytesMax = size_t{1} << 30;

inline bool is_sector_aligned(uint64_t v) { return v % kSectorBytes == 0; }

// "what path: strerror(err)", with the code chosen from err: ENOENT is NotFound,
// EEXIST AlreadyExists, everything else IoError.
Status sys_status(const std::string& what, const std::string& path, int err);

// The file system type of path as statfs names it ("ext4", "tmpfs", ...; "0x..."
// when unknown, "unknown" when statfs fails), for error messages (fs_names.cc).
std::string fs_type_name_of(const std::string& path);

// The io_uring ring of the POSIX env (ring_posix.cc).
Result<std::unique_ptr<Ring>> make_uring_ring(unsigned entries);

}  // namespace logseal::io
