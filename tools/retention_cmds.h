// `logseal prune` and `logseal hold`: thin wrappers over engine/retention.h,
// kept apart from logseal.cc so that file stays a list of subcommands.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace logseal::tools {

struct RetentionArgs {
  std::string data_dir;
  std::string stream;
  std::string signer;
  std::string tcti;
  std::string audit_signer;          // the key of `_audit` when it is not --signer's
  std::vector<std::string> pubkeys;  // prune: verify with these (default: the signer's key)
  std::string note;
  // prune
  std::string before;  // RFC 3339 or unix seconds
  uint32_t min_days = 0;
  uint32_t max_days = 0;
  bool legal_hold = false;  // the configured flag, as logseald's [streams.NAME] legal_hold
  // hold
  bool on = false;
  bool off = false;
};

// Adds the subcommands to app; returns them so main can tell which one ran.
CLI::App* add_prune_command(CLI::App& app, RetentionArgs& a);
CLI::App* add_hold_command(CLI::App& app, RetentionArgs& a);
// Exit codes as every command: 0 done, 1 integrity failure, 2 usage/IO/refused.
int run_prune(const RetentionArgs& a);
int run_hold(const RetentionArgs& a);

}  // namespace logseal::tools
