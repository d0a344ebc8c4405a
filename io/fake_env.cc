// FakeEnv: the in-memory file system and its durability model (fake_env.h,
// fake_state.h). Error codes match the POSIX env's: NotFound, AlreadyExists,
// FailedPrecondition for writing a sealed file, IoError otherwise.
#include "io/fake_env.h"

#include <set>

#include "base/assert.h"
#include "io/fake_state.h"

namespace logseal::io {

std::string fake_normalize(const std::string& path) {
  std::string out;
  for (char ch : path) {
    if (ch == '/' && !out.empty() && out.back() == '/') continue;
    out.push_back(ch);
  }
  if (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

std::string fake_parent(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool FakeEnv::State::dir_exists(const std::string& path) const {
  return path == "/" || path == "." || dirs.count(path) != 0;
}

void FakeEnv::State::sync_dir_locked(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& [path, inode] : files) {
    if (fake_parent(path) == dir) names.insert(path);
  }
  for (const auto& [path, inode] : durable_files) {
    if (fake_parent(path) == dir) names.insert(path);
  }
  for (const std::string& path : names) {
    auto it = files.find(path);
    if (it == files.end()) {
      durable_files.erase(path);
    } else {
      durable_files[path] = it->second;
    }
  }
}

namespace {

Status eperm(const std::string& what, const std::string& path) {
  return io_error(what + " " + path + ": Operation not permitted (immutable)");
}

}  // namespace

FakeEnv::FakeEnv(uint64_t seed, FaultConfig faults) : state_(std::make_shared<State>(seed, faults)) {}

FakeEnv::~FakeEnv() = default;

void FakeEnv::set_faults(FaultConfig faults) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->faults = faults;
}

void FakeEnv::hold_writes(bool held) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->writes_held = held;
}

void FakeEnv::fail_next_write() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->fail_next_write = true;
}

void FakeEnv::crash() {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (!state_->crashed) state_->crash_locked();
}

void FakeEnv::crash_at_write(uint64_t n) {
  LS_ASSERT(n >= 1);
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->crash_at_write = state_->writes_submitted + n;
}

bool FakeEnv::crashed() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->crashed;
}

void FakeEnv::restart() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->crashed = false;
}

uint64_t FakeEnv::writes_submitted() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->writes_submitted;
}

std::vector<uint8_t>* FakeEnv::file_bytes(const std::string& path) {
  std::lock_guard<std::mutex> lock(state_->mu);
  auto it = state_->files.find(fake_normalize(path));
  return it == state_->files.end() ? nullptr : &it->second->bytes;
}

Status FakeEnv::make_dirs(const std::string& raw_path) {
  std::lock_guard<std::mutex> lock(state_->mu);
  LS_RETURN_IF_ERROR(state_->alive());
  std::string path = fake_normalize(raw_path);
  if (path.empty()) return invalid_argument("make_dirs: empty path");
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    std::string prefix = path.substr(0, pos);
    if (state_->files.count(prefix) != 0) return io_error("mkdir " + prefix + ": Not a directory");
    if (prefix != "/") state_->dirs.insert(prefix);
  }
  return ok_status();
}

Result<std::vector<std::string>> FakeEnv::list_dir(const std::string& raw_path) {
  std::lock_guard<std::mutex> lock(state_->mu);
  LS_RETURN_IF_ERROR(state_->alive());
  std::string path = fake_normalize(raw_path);
  if (!state_->dir_exists(path)) return not_found("opendir " + path + ": No such file or directory");
  std::set<std::string> names;  // sorted, like the POSIX env's answer
  auto add_child = [&](const std::string& child) {
    if (child != path && fake_parent(child) == path) {
      names.insert(child.substr(child.find_last_of('/') + 1));
    }
  };
  for (const auto& [child, inode] : state_->files) add_child(child);
  for (const std::string& child : state_->dirs) add_child(child);
  return std::vector<std::string>(names.begin(), names.end());
}

bool FakeEnv::exists(const std::string& raw_path) {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (!state_->alive().ok()) return false;
  std::string path = fake_normalize(raw_path);
  return state_->files.count(path) != 0 || state_->dir_exists(path);
}

bool FakeEnv::is_dir(const std::string& raw_path) {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->alive().ok() && state_->dir_exists(fake_normalize(raw_path));
}

Status FakeEnv::sync_dir(const std::string& raw_path) {
  std::lock_guard<std::mutex> lock(state_->mu);
  LS_RETURN_IF_ERROR(state_->alive());
  std::string path = fake_normalize(raw_path);
  if (!state_->dir_exists(path)) return not_found("open directory " + path + ": No such file or directory");
  state_->sync_dir_locked(path);
  return ok_status();
}

Status FakeEnv::rename(const std::string& raw_from, const std::string& raw_to) {
  std::lock_guard<std::mutex> lock(state_->mu);
  LS_RETURN_IF_ERROR(state_->alive());
  std::string from = fake_normalize(raw_from);
  std::string to = fake_normalize(raw_to);
  auto it = state_->files.find(from);
  if (it == state_->files.end()) {
    if (state_->dir_exists(from)) return unimplemented("fake env: renaming directories is not modelled");
    return not_found("rename " + from + " to " + to + ": No such file or directory");
  }
  if (!state_->dir_exists(fake_parent(to))) {
    return not_found("rename " + from + " to " + to + ": No such file or directory");
  }
  if (state_->dir_exists(to)) return io_error("rename " + from + " to " + to + ": Is a directory");
  if (it->second->immutable) return eperm("rename", from);
  auto target = state_->files.find(to);
  if (target != state_->files.end() && target->second->immutable) return eperm("rename onto", to);
  if (from == to) return ok_status();
  InodePtr inode = it->second;
  state_->files.erase(it);
  state_->files[to] = std::move(inode);
  return ok_status();
}

Status FakeEnv::remove(const std::string& raw_path) {
  std::lock_guard<std::mutex> lock(state_->mu);
  LS_RETURN_IF_ERROR(state_->alive());
  std::string path = fake_normalize(raw_path);
  auto it = state_->files.find(path);
  if (it != state_->files.end()) {
    if (it->second->immutable) return eperm("unlink", path);
    state_->files.erase(it);
    return ok_status();
  }
  if (state_->dirs.count(path) == 0) return not_found("unlink " + path + ": No such file or directory");
  for (const auto& [child, inode] : state_->files) {
    if (fake_parent(child) == path) return io_error("rmdir " + path + ": Directory not empty");
  }
  for (const std::string& child : state_->dirs) {
    if (child != path && fake_parent(child) == path) return io_error("rmdir " + path + ": Directory not empty");
  }
  state_->dirs.erase(path);
  return ok_status();
}

Status FakeEnv::remove_sealed(const std::string& raw_path) {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    LS_RETURN_IF_ERROR(state_->alive());
    auto it = state_->files.find(fake_normalize(raw_path));
    // The fake process holds CAP_LINUX_IMMUTABLE, like the tests that run as root.
    if (it != state_->files.end()) it->second->immutable = false;
  }
  return remove(raw_path);
}

uint64_t FakeEnv::State::used_bytes_locked() const {
  uint64_t used = 0;
  for (const auto& [path, inode] : files) used += inode->bytes.size();
  return used;
}

void FakeEnv::set_capacity_bytes(uint64_t capacity_bytes) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->capacity_bytes = capacity_bytes;
}

Result<uint64_t> FakeEnv::free_bytes(const std::string& raw_path) {
  std::lock_guard<std::mutex> lock(state_->mu);
  LS_RETURN_IF_ERROR(state_->alive());
  (void)raw_path;  // one file system
  uint64_t used = state_->used_bytes_locked();
  return state_->capacity_bytes > used ? state_->capacity_bytes - used : 0;
}

Result<uint64_t> FakeEnv::file_size(const std::string& raw_path) {
  std::lock_guard<std::mutex> lock(state_->mu);
  LS_RETURN_IF_ERROR(state_->alive());
  std::string path = fake_normalize(raw_path);
  auto it = state_->files.find(path);
  if (it == state_->files.end()) return not_found("stat " + path + ": No such file or directory");
  return static_cast<uint64_t>(it->second->bytes.size());
}

Result<std::vector<uint8_t>> FakeEnv::read_file(const std::string& raw_path) {
  std::lock_guard<std::mutex> lock(state_->mu);
  LS_RETURN_IF_ERROR(state_->alive());
  std::string path = fake_normalize(raw_path);
  auto it = state_->files.find(path);
  if (it == state_->files.end()) return not_found("open " + path + ": No such file or directory");
  return it->second->bytes;
}

Status FakeEnv::write_file_atomic(const std::string& raw_path, const std::string& contents, unsigned mode) {
  std::lock_guard<std::mutex> lock(state_->mu);
  LS_RETURN_IF_ERROR(state_->alive());
  std::string path = fake_normalize(raw_path);
  std::string dir = fake_parent(path);
  if (!state_->dir_exists(dir)) return not_found("write_file_atomic: create " + path + ": No such file or directory");
  if (state_->dir_exists(path)) return io_error("write_file_atomic " + path + ": Is a directory");
  auto existing = state_->files.find(path);
  if (existing != state_->files.end() && existing->second->immutable)
    return eperm("write_file_atomic: rename onto", path);
  auto inode = std::make_shared<FakeInode>();
  inode->bytes.assign(contents.begin(), contents.end());
  inode->mode = mode;
  state_->files[path] = std::move(inode);
  // The POSIX env fsyncs the directory, which makes every entry of it durable.
  state_->sync_dir_locked(dir);
  return ok_status();
}

Status FakeEnv::make_read_only(const std::string& raw_path) {
  std::lock_guard<std::mutex> lock(state_->mu);
  LS_RETURN_IF_ERROR(state_->alive());
  std::string path = fake_normalize(raw_path);
  auto it = state_->files.find(path);
  if (it == state_->files.end()) return not_found("chmod 0444 " + path + ": No such file or directory");
  if (it->second->immutable) return eperm("chmod 0444", path);
  it->second->mode = 0444;
  return ok_status();
}

Result<bool> FakeEnv::make_immutable(const std::string& raw_path) {
  std::lock_guard<std::mutex> lock(state_->mu);
  LS_RETURN_IF_ERROR(state_->alive());
  std::string path = fake_normalize(raw_path);
  auto it = state_->files.find(path);
  if (it == state_->files.end()) return not_found("open " + path + ": No such file or directory");
  it->second->immutable = true;
  return true;
}

Status FakeEnv::probe_direct(const std::string& raw_dir) {
  std::lock_guard<std::mutex> lock(state_->mu);
  LS_RETURN_IF_ERROR(state_->alive());
  std::string dir = fake_normalize(raw_dir);
  if (!state_->dir_exists(dir)) return not_found("probe O_DIRECT in " + dir + ": No such file or directory");
  return ok_status();
}

Result<std::unique_ptr<AppendFile>> FakeEnv::create_append(const std::string& raw_path) {
  std::lock_guard<std::mutex> lock(state_->mu);
  LS_RETURN_IF_ERROR(state_->alive());
  std::string path = fake_normalize(raw_path);
  std::string dir = fake_parent(path);
  if (!state_->dir_exists(dir)) return not_found("create " + path + ": No such file or directory");
  if (state_->files.count(path) != 0 || state_->dir_exists(path)) {
    return Status(Code::kAlreadyExists, "create " + path + ": File exists");
  }
  auto inode = std::make_shared<FakeInode>();
  state_->files[path] = inode;
  state_->sync_dir_locked(dir);  // the contract: the new entry is durable
  return make_fake_append_file(state_, path, std::move(inode));
}

Result<std::unique_ptr<AppendFile>> FakeEnv::open_append(const std::string& raw_path) {
  std::lock_guard<std::mutex> lock(state_->mu);
  LS_RETURN_IF_ERROR(state_->alive());
  std::string path = fake_normalize(raw_path);
  auto it = state_->files.find(path);
  if (it == state_->files.end()) return not_found("open for append " + path + ": No such file or directory");
  // Sealed segments are never opened for writing (DESIGN.md, WORM); catch it.
  if (it->second->immutable) {
    return failed_precondition("open_append " + path + ": the file is immutable (sealed)");
  }
  if ((it->second->mode & 0222) == 0) {
    return failed_precondition("open_append " + path + ": the file is read-only (sealed)");
  }
  return make_fake_append_file(state_, path, it->second);
}

Result<std::unique_ptr<Ring>> FakeEnv::make_ring(unsigned entries) {
  std::lock_guard<std::mutex> lock(state_->mu);
  LS_RETURN_IF_ERROR(state_->alive());
  if (entries == 0) return invalid_argument("make_ring: entries must be > 0");
  return make_fake_ring(state_, entries);
}

}  // namespace logseal::io
