// `logseal token new` and `logseal token hash`: API tokens for logseald's access
// control ([[identity]] token_sha256, ingest/access.h). The daemon stores only a
// token's SHA-256; the token itself is shown once, by `token new`.
#pragma once

#include <CLI/CLI.hpp>

namespace logseal::tools {

struct TokenCommands {
  CLI::App* token_new = nullptr;
  CLI::App* token_hash = nullptr;
};

TokenCommands add_token_commands(CLI::App& app);
// token new: 32 random bytes as base64url (no padding) on the first line, then the
// config line `token_sha256 = "HEX"`. token hash: reads a token on stdin (one line;
// the line end is not part of it), prints its SHA-256 in hex. 0 ok, 2 error.
int run_token_new();
int run_token_hash();

}  // namespace logseal::tools
