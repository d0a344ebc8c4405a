// Micro benchmarks of the hot path: syslog framing and parsing (RFC 5424, RFC
// 3164), leaf hashing, XXH3, batch encoding, Merkle append, frame chain.
// Run: build/bin/logseal-bench-micro
#include <benchmark/benchmark.h>
#include <xxhash.h>

#include <cstring>
#include <string>
#include <vector>

#include "engine/format.h"
#include "engine/merkle.h"
#include "hsm/sha256.h"
#include "ingest/framing.h"
#include "ingest/syslog_fields.h"
#include "ingest/syslog_parse.h"
#include "io/buffer.h"

using namespace logseal;

namespace {

std::string message(size_t n) {
  std::string s = "<134>1 2026-11-26T03:29:34.321057+00:00 vm postgres 21011 - - ";
  while (s.size() < n) s += "abcdefghijklmnopqrstuvwxyz0123456789 ";
  s.resize(n);
  return s;
}

void BM_LeafHash(benchmark::State& state) {
  std::string m = message(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(merkle::leaf_hash(as_bytes(m)));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LeafHash)->Arg(300)->Arg(4096);

// Two leaf-sized messages per iteration through sha256_x2 (the record leaf
// path of Stream::append_batch); items are messages, as in BM_LeafHash.
void BM_LeafHashPair(benchmark::State& state) {
  std::string a = message(static_cast<size_t>(state.range(0)));
  std::string b = a;
  b[b.size() / 2] ^= 1;
  Hash32 ha, hb;
  for (auto _ : state) {
    sha256_x2(as_bytes(a), as_bytes(b), ha, hb);
    benchmark::DoNotOptimize(ha);
    benchmark::DoNotOptimize(hb);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 2 * state.range(0));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * 2);
  state.SetLabel(sha256_x2_accelerated() ? "sha extensions" : "two sha256 calls");
}
BENCHMARK(BM_LeafHashPair)->Arg(300)->Arg(4096);

void BM_Xxh3_128(benchmark::State& state) {
  std::vector<uint8_t> buf(static_cast<size_t>(state.range(0)), 0x5a);
  for (auto _ : state) {
    benchmark::DoNotOptimize(XXH3_128bits(buf.data(), buf.size()));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Xxh3_128)->Arg(4096)->Arg(1 << 20);

void BM_MerkleAppend(benchmark::State& state) {
  merkle::MerkleFrontier f;
  Hash32 leaf{};
  for (auto _ : state) {
    leaf[0]++;
    f.append(leaf);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MerkleAppend);

void BM_MerkleRoot(benchmark::State& state) {
  merkle::MerkleFrontier f;
  Hash32 leaf{};
  for (int i = 0; i < 1000003; ++i) f.append(leaf);
  for (auto _ : state) benchmark::DoNotOptimize(f.root());
}
BENCHMARK(BM_MerkleRoot);

// Encodes a 1 MiB batch of 300-byte records the way the writer does: records into
// an aligned buffer, then the frame header with both checksums.
void BM_BatchEncode(benchmark::State& state) {
  std::string m = message(static_cast<size_t>(state.range(0)));
  io::AlignedBuffer buf(2 << 20);
  format::RecordView r;
  r.source = "tcp:127.0.0.1:40122";
  r.raw = m;
  r.received_ns = 1795669441386353899;
  size_t per = format::encoded_record_bytes(r);
  size_t count = ((1 << 20) - format::kFrameHeaderBytes) / per;
  for (auto _ : state) {
    size_t used = format::kFrameHeaderBytes;
    for (size_t i = 0; i < count; ++i) {
      format::encode_record(r, buf.data() + used);
      used += per;
    }
    size_t span = io::align_up(used, format::kBlockBytes);
    std::memset(buf.data() + used, 0, span - used);
    format::FrameHeader h;
    h.body_bytes = static_cast<uint32_t>(used - format::kFrameHeaderBytes);
    h.span_bytes = static_cast<uint32_t>(span);
    h.record_count = static_cast<uint32_t>(count);
    format::seal_frame_header(h, buf.data());
    benchmark::DoNotOptimize(buf.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * count));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * count * per));
}
BENCHMARK(BM_BatchEncode)->Arg(300);

void BM_ChainNext(benchmark::State& state) {
  Hash32 c{};
  uint8_t hdr[64] = {};
  for (auto _ : state) {
    c = format::chain_next(c, {hdr, sizeof hdr});
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_ChainNext);

}  // namespace

// ---- syslog: what an ingest thread does per message before hashing ----

const char* const k5424 =
    "<134>1 2026-11-26T03:29:34.321057+00:00 db1.example.net postgres 21011 AUDIT "
    "[meta sequenceId=\"17\"] 2026-11-26 03:29:34.321 UTC [21011] alice@app psql [local] LOG:  AUDIT: "
    "SESSION,3,1,WRITE,INSERT,TABLE,public.orders,\"insert into orders values (1, 'x')\",<not logged>";
const char* const k3164 =
    "<30>Nov 26 03:29:34 web1 nginx[812]: 192.0.2.7 - - [26/Nov/2026:03:29:34 +0000] \"GET /a HTTP/1.1\" "
    "200 612 \"-\" \"curl/7.88.1\"";

void BM_SyslogParse5424(benchmark::State& state) {
  std::string m = k5424;
  uint8_t view[format::kSyslogViewBytes];
  for (auto _ : state) {
    ingest::SyslogFields f = ingest::parse_syslog(m);
    benchmark::DoNotOptimize(ingest::make_syslog_view(f, m, view));
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(m.size()));
}
BENCHMARK(BM_SyslogParse5424);

void BM_SyslogParse3164(benchmark::State& state) {
  std::string m = k3164;
  uint8_t view[format::kSyslogViewBytes];
  for (auto _ : state) {
    ingest::SyslogFields f = ingest::parse_syslog(m);
    benchmark::DoNotOptimize(ingest::make_syslog_view(f, m, view));
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(m.size()));
}
BENCHMARK(BM_SyslogParse3164);

// Octet-counted framing of a 1 MiB receive buffer of 300-byte messages.
void BM_FramingOctet(benchmark::State& state) {
  std::string one = message(300);
  std::string frame = std::to_string(one.size()) + " " + one;
  std::string buf;
  while (buf.size() + frame.size() <= (1u << 20)) buf += frame;
  size_t per_buf = buf.size() / frame.size();
  for (auto _ : state) {
    ingest::Framer fr(ingest::Framing::kAuto, 65536);
    size_t n = 0;
    (void)fr.feed(buf, [&](std::string_view msg, bool) { n += msg.size(); });
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(per_buf));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(buf.size()));
}
BENCHMARK(BM_FramingOctet);

BENCHMARK_MAIN();
