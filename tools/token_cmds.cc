#include "tools/token_cmds.h"

#include <openssl/rand.h>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include "ingest/access.h"

namespace logseal::tools {

namespace {

constexpr size_t kTokenBytes = 32;

std::string base64url(const unsigned char* data, size_t n) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; ++i) {
    acc = (acc << 8) | data[i];
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 63];
  return out;
}

}  // namespace

TokenCommands add_token_commands(CLI::App& app) {
  auto* token = app.add_subcommand("token", "API tokens for logseald's access control ([[identity]] token_sha256)");
  TokenCommands t;
  t.token_new = token->add_subcommand("new", "print a fresh random token and its token_sha256 config line");
  t.token_hash = token->add_subcommand("hash", "read a token on stdin, print its SHA-256 (hex)");
  token->require_subcommand(1);
  return t;
}

int run_token_new() {
  unsigned char raw[kTokenBytes];
  if (RAND_bytes(raw, sizeof raw) != 1) {
    std::fprintf(stderr, "logseal token new: the random generator failed\n");
    return 2;
  }
  std::string token = base64url(raw, sizeof raw);
  std::printf("%s\ntoken_sha256 = \"%s\"\n", token.c_str(), ingest::sha256_hex(token).c_str());
  return 0;
}

int run_token_hash() {
  std::string in((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  if (!in.empty() && in.back() == '\n') in.pop_back();
  if (!in.empty() && in.back() == '\r') in.pop_back();
  if (in.empty() || in.find('\n') != std::string::npos) {
    std::fprintf(stderr, "logseal token hash: expected one token (one line) on stdin\n");
    return 2;
  }
  std::printf("%s\n", ingest::sha256_hex(in).c_str());
  return 0;
}

}  // namespace logseal::tools
