// `logseal inspect`: a human (or JSON) account of one segment file: header,
// frames, checkpoints, seal, recovery frames, and where reading stopped.
#pragma once

#include <span>
#include <string>

#include "base/status.h"

namespace logseal::engine {

// DataLoss when the header cannot be read; frame problems are reported in the text.
Result<std::string> inspect_segment(std::span<const uint8_t> file, bool json);

}  // namespace logseal::engine
