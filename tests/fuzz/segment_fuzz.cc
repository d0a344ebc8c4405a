// libFuzzer target for the segment decoder (STYLE.md, tests): arbitrary bytes go
// to every decoder of the on-disk format, to the frame walker and recovery's
// segment state, to inspect, and — as a segment file in a FakeEnv data
// directory — to the verifier and the readers. None of them may crash, hang,
// trap or read out of bounds, whatever the bytes.
//
// Build: cmake -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang -DLOGSEAL_FUZZ=ON;
// seeds: bin/segment_fuzz_seeds DIR (segments signed with fuzz_key.h);
// run: bin/segment_fuzz DIR.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "engine/export.h"
#include "engine/format.h"
#include "engine/inspect.h"
#include "engine/reader.h"
#include "engine/segment_reader.h"
#include "engine/store_internal.h"
#include "engine/verify.h"
#include "hsm/public_key.h"
#include "io/fake_env.h"
#include "tests/fuzz/fuzz_key.h"

using namespace logseal;

namespace {

const std::vector<hsm::PublicKey>& keys() {
  static const std::vector<hsm::PublicKey>* k = [] {
    auto* v = new std::vector<hsm::PublicKey>;
    auto key = hsm::PublicKey::from_pem(fuzz::kFuzzPublicKeyPem);
    LS_ASSERT(key.ok());
    v->push_back(std::move(key).value());
    return v;
  }();
  return *k;
}

void decode_frame_bodies(std::span<const uint8_t> file) {
  engine::walk_frames(file, [](const engine::FrameView& f) {
    switch (f.header.type) {
      case format::FrameType::kBatch:
        (void)engine::for_each_record(f.body, f.header.record_count, [](std::span<const uint8_t> rec) {
          auto r = format::decode_record(rec);
          if (r.ok()) {
            (void)format::check_fields(r->fields, r->raw.size());
            engine::StoredRecord sr;
            sr.view = r.value();
            sr.bytes = rec;
            (void)engine::record_to_json("s", sr);
          }
          return ok_status();
        });
        break;
      case format::FrameType::kCheckpoint:
      case format::FrameType::kSeal: {
        auto sf = engine::split_signed_frame(f.body);
        if (sf.ok()) {
          auto b = format::decode_checkpoint_body(sf->body);
          if (b.ok()) (void)engine::format_anchor(sf->body, sf->signature);
        }
        break;
      }
      case format::FrameType::kRecovery:
        (void)format::decode_recovery(f.body);
        break;
    }
    return true;
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> in(data, size);

  // Each decoder on the raw bytes.
  (void)format::decode_header(in);
  (void)format::decode_frame_header(in);
  (void)format::decode_record(in);
  (void)format::decode_checkpoint_body(in);
  (void)format::decode_recovery(in);
  (void)engine::split_signed_frame(in);
  if (size >= 4) {
    // The fields of a record against a raw message of the first u32's length.
    size_t raw_bytes = get_u32(data) & 0xffffff;
    std::span<const uint8_t> fields = in.subspan(4);
    (void)format::decode_syslog_view(fields, raw_bytes);
    (void)format::check_fields(std::string_view(reinterpret_cast<const char*>(fields.data()), fields.size()),
                               raw_bytes);
    (void)engine::for_each_record(in.subspan(4), get_u32(data) & 0xffff,
                                  [](std::span<const uint8_t>) { return ok_status(); });
  }
  std::string text(reinterpret_cast<const char*>(data), size);
  (void)engine::parse_anchor(text);
  (void)engine::parse_proof(text);

  // As a segment file: walker, recovery's state, inspect.
  decode_frame_bodies(in);
  (void)engine::read_segment_state(in);
  (void)engine::inspect_segment(in, false);
  (void)engine::inspect_segment(in, true);

  // As the only segment of a stream in a data directory: the verifier and the
  // readers. A second copy as segment 1 exercises the links between segments.
  io::FakeEnv env(1);
  if (!env.make_dirs("/d/s").ok()) return 0;
  std::string bytes(reinterpret_cast<const char*>(data), size);
  if (!env.write_file_atomic("/d/s/" + format::segment_file_name(0), bytes, 0644).ok()) return 0;
  if (size > 0 && (data[0] & 1) != 0) {
    if (!env.write_file_atomic("/d/s/" + format::segment_file_name(1), bytes, 0644).ok()) return 0;
  }
  engine::VerifyOptions opt;
  opt.keys = &keys();
  (void)engine::verify_data_dir(env, "/d", opt);
  (void)engine::for_each_record(env, "/d", "s", [](const engine::StoredRecord&) { return true; });
  (void)engine::latest_checkpoint(env, "/d", "s");
  (void)engine::prove_record(env, "/d", "s", 0);
  return 0;
}
