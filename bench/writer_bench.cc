// Writer throughput against the disk ceiling, in one run.
//
// For each record size it measures, on the same directory:
//   1. raw:     aligned O_DIRECT writes with RWF_DSYNC of batch-sized buffers
//               through the same io_uring path (the ceiling),
//   2. logseal: Store/Stream appends of records of that size (leaf hash, batch
//               encoding, group commit, Merkle tree, checkpoints signed with a soft
//               key, optionally a slow signer), timed from the first append until
//               close() returns (everything durable and signed),
//   3. raw again, to bracket noise on a shared machine,
// and prints records/s, MB/s and the ratio logseal / mean(raw).
//
// Usage: logseal-bench-writer [--dir DIR] [--mib N] [--sizes 300,4096,65536]
//                             [--batch-kib N] [--threads N] [--slow-signer-ms N]
//                             [--signer-compare MS]
//
// --signer-compare MS: instead of the disk ceiling, runs the store with the fast
// soft signer, with the same signer delayed MS per signature (a hardware TPM
// signs in ~200 ms), and fast again, and prints slow / mean(fast): ingest speed
// must not depend on the signer.
#include <fcntl.h>
#include <liburing.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "engine/store.h"
#include "hsm/signer.h"
#include "hsm/soft_signer.h"
#include "io/buffer.h"
#include "io/durable_writer.h"
#include "io/env.h"

using namespace logseal;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string dir = "bench-tmp";
  uint64_t mib = 512;
  std::vector<size_t> sizes = {300, 4096, 65536};
  size_t batch_kib = 1024;
  unsigned threads = 1;
  unsigned slow_signer_ms = 0;
  unsigned signer_compare_ms = 0;
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "logseal-bench-writer: %s\n", what.c_str());
  std::exit(2);
}

void check(const Status& st, const char* what) {
  if (!st.ok()) die(std::string(what) + ": " + st.to_string());
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Raw ceiling: total_bytes in chunk_bytes writes, 2 in flight, RWF_DSYNC.
double raw_mb_s(const std::string& path, uint64_t total_bytes, size_t chunk_bytes) {
  io::Env& env = io::posix_env();
  (void)env.remove(path);
  auto file = env.create_append(path);
  check(file.status(), "create raw file");
  auto ring = env.make_ring(16);
  check(ring.status(), "ring");
  io::DurableWriter w(*ring.value(), 2);
  std::vector<io::AlignedBuffer> bufs;
  for (int i = 0; i < 2; ++i) {
    bufs.emplace_back(chunk_bytes);
    std::memset(bufs.back().data(), 0x5a + i, chunk_bytes);
  }
  uint64_t offset = 0;
  uint64_t tag = 0;
  std::vector<io::DurableWriter::Done> done;
  auto t0 = Clock::now();
  while (offset < total_bytes) {
    while (w.outstanding() >= 2) {
      done.clear();
      check(w.reap(true, -1, done), "reap");
      for (auto& d : done) check(d.status, "raw write");
    }
    check(w.start(*file.value(), offset, bufs[tag % 2].data(), chunk_bytes, tag), "start");
    ++tag;
    offset += chunk_bytes;
  }
  while (w.outstanding() > 0) {
    done.clear();
    check(w.reap(true, -1, done), "reap");
    for (auto& d : done) check(d.status, "raw write");
  }
  double s = seconds_since(t0);
  file.value().reset();
  (void)env.remove(path);
  return static_cast<double>(offset) / s / 1e6;
}

// Lets make_slow_signer wrap a signer that is also held elsewhere.
struct SharedSigner : hsm::Signer {
  std::shared_ptr<hsm::Signer> in;
  explicit SharedSigner(std::shared_ptr<hsm::Signer> i) : in(std::move(i)) {}
  hsm::SignerKind kind() const override { return in->kind(); }
  const std::vector<uint8_t>& public_key_der() const override { return in->public_key_der(); }
  const Hash32& key_id() const override { return in->key_id(); }
  Result<hsm::Evidence> evidence() override { return in->evidence(); }
  Result<std::vector<uint8_t>> sign_digest(const Hash32& d) override { return in->sign_digest(d); }
};

// The device ceiling: the same O_DIRECT writes through io_uring without RWF_DSYNC
// (2 in flight), then one fdatasync at the end, so the data is durable when the
// clock stops. No per-write durability: no acknowledgement could be given early.
double raw_nosync_mb_s(const std::string& path, uint64_t total_bytes, size_t chunk_bytes) {
  ::unlink(path.c_str());
  int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_DIRECT | O_CLOEXEC, 0644);
  if (fd < 0) die("open " + path + ": " + std::strerror(errno));
  struct io_uring ring;
  if (io_uring_queue_init(8, &ring, 0) != 0) die("io_uring_queue_init");
  io::AlignedBuffer buf(chunk_bytes);
  std::memset(buf.data(), 0x5a, chunk_bytes);
  uint64_t offset = 0;
  unsigned inflight = 0;
  auto t0 = Clock::now();
  while (offset < total_bytes || inflight > 0) {
    while (offset < total_bytes && inflight < 2) {
      struct io_uring_sqe* sqe = io_uring_get_sqe(&ring);
      io_uring_prep_write(sqe, fd, buf.data(), static_cast<unsigned>(chunk_bytes), offset);
      offset += chunk_bytes;
      ++inflight;
    }
    io_uring_submit(&ring);
    struct io_uring_cqe* cqe;
    if (io_uring_wait_cqe(&ring, &cqe) != 0) die("io_uring_wait_cqe");
    if (cqe->res != static_cast<int>(chunk_bytes)) die("raw write failed or short");
    io_uring_cqe_seen(&ring, cqe);
    --inflight;
  }
  if (::fdatasync(fd) != 0) die("fdatasync");
  double s = seconds_since(t0);
  io_uring_queue_exit(&ring);
  ::close(fd);
  ::unlink(path.c_str());
  return static_cast<double>(offset) / s / 1e6;
}

struct WriterResult {
  double records_s = 0;
  double durable_records_s = 0;  // until the last record was durable (not yet signed)
  double payload_mb_s = 0;
  double file_mb_s = 0;
  uint64_t records = 0;
  uint64_t batches = 0;
  uint64_t checkpoints = 0;
};

WriterResult writer_run(const std::string& dir, const std::string& key, size_t record_bytes, uint64_t total_bytes,
                        const Args& a) {
  std::filesystem::remove_all(dir);
  auto signer = hsm::open_signer("soft:" + key);
  check(signer.status(), "signer");
  std::shared_ptr<hsm::Signer> s = std::move(signer).value();
  if (a.slow_signer_ms > 0) {
    s = hsm::make_slow_signer(std::make_unique<SharedSigner>(s), a.slow_signer_ms);
  }
  engine::StoreOptions opt;
  opt.stream.batch_bytes = a.batch_kib * 1024;
  opt.stream.record_bytes_max = std::max<size_t>(1 << 20, record_bytes + 4096);
  opt.log = [](const std::string&) {};
  opt.immutable_segments = false;  // the run deletes its data afterwards
  auto store = engine::Store::open(io::posix_env(), dir, s, opt);
  check(store.status(), "store");
  auto stream = store.value()->stream("bench");
  check(stream.status(), "stream");
  std::string raw(record_bytes, 'x');
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<char>('a' + i % 26);
  uint64_t count = std::max<uint64_t>(1, total_bytes / record_bytes);
  uint64_t per_thread = count / a.threads;
  auto t0 = Clock::now();
  std::vector<std::thread> th;
  std::atomic<uint64_t> last_index{0};
  for (unsigned t = 0; t < a.threads; ++t) {
    th.emplace_back([&, t] {
      format::RecordView r;
      r.source = "bench";
      r.raw = raw;
      r.received_ns = 1;
      for (uint64_t i = 0; i < per_thread; ++i) {
        auto idx = stream.value()->append(r);
        if (!idx.ok()) die("append: " + idx.status().to_string());
        if (i + 1 == per_thread) {
          uint64_t prev = last_index.load();
          while (prev < idx.value() && !last_index.compare_exchange_weak(prev, idx.value())) {
          }
        }
      }
      (void)t;
    });
  }
  for (auto& t : th) t.join();
  if (!stream.value()->wait_durable(last_index.load(), std::chrono::minutes(5))) die("records did not become durable");
  double durable_secs = seconds_since(t0);
  engine::StreamStats st = stream.value()->stats();
  check(store.value()->close(), "close");
  double secs = seconds_since(t0);
  WriterResult r;
  r.records = per_thread * a.threads;
  r.records_s = static_cast<double>(r.records) / secs;
  r.durable_records_s = static_cast<double>(r.records) / durable_secs;
  r.payload_mb_s = static_cast<double>(r.records * record_bytes) / secs / 1e6;
  r.file_mb_s = static_cast<double>(st.bytes_written) / secs / 1e6;
  r.batches = st.batches;
  r.checkpoints = st.checkpoints;
  std::filesystem::remove_all(dir);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value for " + k);
      return argv[++i];
    };
    if (k == "--dir") a.dir = val();
    else if (k == "--mib") a.mib = std::stoull(val());
    else if (k == "--batch-kib") a.batch_kib = std::stoull(val());
    else if (k == "--threads") a.threads = static_cast<unsigned>(std::stoul(val()));
    else if (k == "--slow-signer-ms") a.slow_signer_ms = static_cast<unsigned>(std::stoul(val()));
    else if (k == "--signer-compare") a.signer_compare_ms = static_cast<unsigned>(std::stoul(val()));
    else if (k == "--sizes") {
      a.sizes.clear();
      std::string v = val();
      size_t p = 0;
      while (p < v.size()) {
        size_t c = v.find(',', p);
        a.sizes.push_back(std::stoull(v.substr(p, c - p)));
        p = c == std::string::npos ? v.size() : c + 1;
      }
    } else {
      die("unknown argument " + k + " (see the comment at the top of bench/writer_bench.cc)");
    }
  }
  std::filesystem::create_directories(a.dir);
  check(io::posix_env().probe_direct(a.dir), "O_DIRECT");
  std::string keydir = a.dir + "/key";
  std::filesystem::remove_all(keydir);
  auto id = hsm::soft_keygen(keydir);
  check(id.status(), "keygen");
  std::string key = keydir + "/signing-key.pem";
  uint64_t total = a.mib << 20;
  size_t chunk = a.batch_kib * 1024;
  if (a.signer_compare_ms > 0) {
    std::printf("store with a fast signer vs one delayed %u ms per signature, %llu MiB per run, %u producer "
                "thread(s); order fast, slow, fast\n",
                a.signer_compare_ms, static_cast<unsigned long long>(a.mib), a.threads);
    std::printf("records/s until the last record is durable (ingest speed); in brackets until close() returns,\n"
                "which also waits for the final signatures (2 x the delay at most)\n");
    std::printf("%8s %14s %14s %14s %8s %10s %10s %9s\n", "rec_B", "fast1_rec/s", "slow_rec/s", "fast2_rec/s",
                "ratio", "ckpt_fast", "ckpt_slow", "[ratio]");
    for (size_t sz : a.sizes) {
      Args fast = a, slow = a;
      fast.slow_signer_ms = 0;
      slow.slow_signer_ms = a.signer_compare_ms;
      WriterResult f1 = writer_run(a.dir + "/store", key, sz, total, fast);
      WriterResult sl = writer_run(a.dir + "/store", key, sz, total, slow);
      WriterResult f2 = writer_run(a.dir + "/store", key, sz, total, fast);
      double mean = (f1.durable_records_s + f2.durable_records_s) / 2;
      double mean_closed = (f1.records_s + f2.records_s) / 2;
      std::printf("%8zu %14.0f %14.0f %14.0f %7.1f%% %10llu %10llu %8.1f%%\n", sz, f1.durable_records_s,
                  sl.durable_records_s, f2.durable_records_s, 100.0 * sl.durable_records_s / mean,
                  static_cast<unsigned long long>(f1.checkpoints + f2.checkpoints) / 2,
                  static_cast<unsigned long long>(sl.checkpoints), 100.0 * sl.records_s / mean_closed);
      std::fflush(stdout);
    }
    std::filesystem::remove_all(keydir);
    return 0;
  }
  std::printf("writer vs raw O_DIRECT (RWF_DSYNC, io_uring, 2 in flight), %llu MiB per run, batch %zu KiB, "
              "%u producer thread(s)%s\n",
              static_cast<unsigned long long>(a.mib), a.batch_kib, a.threads,
              a.slow_signer_ms ? (", signer delayed " + std::to_string(a.slow_signer_ms) + " ms").c_str() : "");
  std::printf("ceilings: raw_dsync = same writes with RWF_DSYNC (what a durable acknowledgement costs);\n"
              "          raw_nosync = same writes without, one fdatasync at the end (the device)\n");
  std::printf("%8s %12s %12s %12s %12s %12s %9s %9s %8s %6s\n", "rec_B", "records/s", "payload_MB/s", "file_MB/s",
              "raw_dsync", "raw_nosync", "vs_dsync", "vs_nosync", "batches", "ckpts");
  for (size_t sz : a.sizes) {
    double d1 = raw_mb_s(a.dir + "/raw.bin", total, chunk);
    double n1 = raw_nosync_mb_s(a.dir + "/raw.bin", total, chunk);
    WriterResult w = writer_run(a.dir + "/store", key, sz, total, a);
    double d2 = raw_mb_s(a.dir + "/raw.bin", total, chunk);
    double n2 = raw_nosync_mb_s(a.dir + "/raw.bin", total, chunk);
    double dsync = (d1 + d2) / 2, nosync = (n1 + n2) / 2;
    std::printf("%8zu %12.0f %12.1f %12.1f %12.1f %12.1f %8.1f%% %8.1f%% %8llu %6llu\n", sz, w.records_s,
                w.payload_mb_s, w.file_mb_s, dsync, nosync, 100.0 * w.file_mb_s / dsync,
                100.0 * w.file_mb_s / nosync, static_cast<unsigned long long>(w.batches),
                static_cast<unsigned long long>(w.checkpoints));
    std::fflush(stdout);
  }
  std::filesystem::remove_all(keydir);
  return 0;
}
