#include "engine/key_rotation.h"

#include <algorithm>
#include <cstring>

#include "base/assert.h"
#include "engine/reader.h"
#include "engine/segment_reader.h"
#include "hsm/sha256.h"

namespace logseal::engine {

namespace {
constexpr size_t kFixed = 8 + 1 + 1 + 2 + 8 + 32;  // up to the stream name
constexpr size_t kDerMax = 1024;
}  // namespace

std::vector<uint8_t> encode_key_rotation_body(const KeyRotation& k) {
  LS_ASSERT(k.stream.size() <= 255 && k.new_key_der.size() <= kDerMax);
  std::vector<uint8_t> b(kFixed + k.stream.size() + k.new_key_der.size());
  uint8_t* p = b.data();
  std::memcpy(p, kKeyRotationMagic, 8);
  p[8] = static_cast<uint8_t>(k.new_kind);
  p[9] = static_cast<uint8_t>(k.stream.size());
  put_u16(p + 10, static_cast<uint16_t>(k.new_key_der.size()));
  put_u64(p + 12, static_cast<uint64_t>(k.time_ns));
  std::memcpy(p + 20, k.old_key_id.data(), 32);
  if (!k.stream.empty()) std::memcpy(p + kFixed, k.stream.data(), k.stream.size());
  std::memcpy(p + kFixed + k.stream.size(), k.new_key_der.data(), k.new_key_der.size());
  return b;
}

std::vector<uint8_t> encode_key_rotation(const KeyRotation& k) {
  std::vector<uint8_t> out = encode_key_rotation_body(k);
  size_t n = out.size();
  out.resize(n + 2 + k.signature.size());
  put_u16(out.data() + n, static_cast<uint16_t>(k.signature.size()));
  std::memcpy(out.data() + n + 2, k.signature.data(), k.signature.size());
  return out;
}

Result<KeyRotation> decode_key_rotation(std::span<const uint8_t> raw) {
  if (raw.size() < kFixed + 2) return data_loss("key rotation statement is too short");
  const uint8_t* p = raw.data();
  if (std::memcmp(p, kKeyRotationMagic, 8) != 0) return data_loss("key rotation statement has a bad magic");
  KeyRotation k;
  if (p[8] != static_cast<uint8_t>(hsm::SignerKind::kSoft) && p[8] != static_cast<uint8_t>(hsm::SignerKind::kTpm)) {
    return data_loss("key rotation statement names an unknown signer kind");
  }
  k.new_kind = static_cast<hsm::SignerKind>(p[8]);
  size_t stream_len = p[9];
  size_t der_len = get_u16(p + 10);
  if (der_len == 0 || der_len > kDerMax) return data_loss("key rotation statement has a bad key length");
  k.time_ns = static_cast<int64_t>(get_u64(p + 12));
  std::memcpy(k.old_key_id.data(), p + 20, 32);
  size_t body = kFixed + stream_len + der_len;
  if (raw.size() < body + 2) return data_loss("key rotation statement is cut short");
  k.stream.assign(reinterpret_cast<const char*>(p + kFixed), stream_len);
  k.new_key_der.assign(p + kFixed + stream_len, p + body);
  size_t sig_len = get_u16(p + body);
  if (sig_len == 0 || sig_len > 80 || raw.size() != body + 2 + sig_len) {
    return data_loss("key rotation statement's signature length does not match its size");
  }
  k.signature.assign(p + body + 2, p + body + 2 + sig_len);
  return k;
}

std::string key_rotation_fields_json(const KeyRotation& k) {
  return std::string("{\"key_rotation\":{\"old_key_id\":\"") + to_hex(k.old_key_id) + "\",\"new_key_id\":\"" +
         to_hex(sha256(k.new_key_der)) + "\",\"new_signer\":\"" + hsm::signer_kind_name(k.new_kind) + "\"}}";
}

Status check_stream_key(io::Env& env, const std::string& data_dir, const std::string& stream, const Hash32& key_id) {
  const std::string dir = data_dir + "/" + stream;
  if (!env.is_dir(dir)) return ok_status();
  auto latest = latest_checkpoint(env, data_dir, stream);
  if (!latest.ok()) return latest.status().code() == Code::kNotFound ? ok_status() : latest.status();
  const Hash32 signed_by = latest->decoded.key_id;
  if (signed_by == key_id) return ok_status();
  // A hand-over is sealed before the old key's last checkpoint (key rotate
  // closes the store with the old key), so it lies in that checkpoint's segment
  // or a later one.
  LS_ASSIGN_OR_RETURN(std::vector<std::string> names, env.list_dir(dir));
  std::vector<uint64_t> seqs;
  for (const auto& n : names) {
    if (auto seq = format::parse_segment_file_name(n); seq && *seq >= latest->decoded.segment_seq) seqs.push_back(*seq);
  }
  std::sort(seqs.begin(), seqs.end());
  bool handed_over = false;
  for (uint64_t seq : seqs) {
    LS_ASSIGN_OR_RETURN(std::vector<uint8_t> file, env.read_file(dir + "/" + format::segment_file_name(seq)));
    walk_frames(file, [&](const FrameView& f) {
      if (f.header.type != format::FrameType::kBatch) return true;
      (void)for_each_record(f.body, f.header.record_count, [&](std::span<const uint8_t> rec) -> Status {
        auto v = format::decode_record(rec);
        if (!v.ok() || v->kind != format::RecordKind::kKeyRotation) return ok_status();
        auto k = decode_key_rotation(
            std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v->raw.data()), v->raw.size()));
        if (k.ok() && k->old_key_id == signed_by) handed_over = sha256(k->new_key_der) == key_id;
        return ok_status();
      });
      return true;
    });
  }
  if (handed_over) return ok_status();
  return failed_precondition("stream " + stream + " is signed by key " + to_hex(signed_by) +
                             ", not by the configured key " + to_hex(key_id) +
                             "; a stream changes key only through `logseal key rotate` (run it with the old key, "
                             "then start with the new one)");
}

}  // namespace logseal::engine
