#include "engine/reader.h"

#include <algorithm>
#include <optional>
#include <sstream>

#include "engine/merkle.h"
#include "engine/segment_reader.h"

namespace logseal::engine {

using namespace format;

namespace {

Result<std::vector<uint64_t>> segment_seqs(io::Env& env, const std::string& dir) {
  LS_ASSIGN_OR_RETURN(std::vector<std::string> names, env.list_dir(dir));
  std::vector<uint64_t> seqs;
  for (auto& n : names) {
    if (auto s = parse_segment_file_name(n)) seqs.push_back(*s);
  }
  std::sort(seqs.begin(), seqs.end());
  return seqs;
}

Status check_stream(io::Env& env, const std::string& data_dir, const std::string& stream) {
  if (!valid_stream_name(stream)) return invalid_argument("stream name '" + stream + "' is not valid");
  if (!env.is_dir(data_dir + "/" + stream)) {
    return not_found("stream '" + stream + "' does not exist in " + data_dir);
  }
  return ok_status();
}

}  // namespace

Result<std::vector<std::string>> list_streams(io::Env& env, const std::string& data_dir) {
  if (!env.is_dir(data_dir)) return not_found("data directory " + data_dir + " does not exist");
  LS_ASSIGN_OR_RETURN(std::vector<std::string> names, env.list_dir(data_dir));
  std::vector<std::string> out;
  for (auto& n : names) {
    if (valid_stream_name(n) && env.is_dir(data_dir + "/" + n)) out.push_back(n);
  }
  return out;
}

Status for_each_record(io::Env& env, const std::string& data_dir, const std::string& stream,
                       const std::function<bool(const StoredRecord&)>& fn) {
  return for_each_record(env, data_dir, stream, fn, nullptr);
}

Status for_each_record(io::Env& env, const std::string& data_dir, const std::string& stream,
                       const std::function<bool(const StoredRecord&)>& fn, std::vector<ReadGap>* gaps) {
  LS_RETURN_IF_ERROR(check_stream(env, data_dir, stream));
  std::string dir = data_dir + "/" + stream;
  LS_ASSIGN_OR_RETURN(std::vector<uint64_t> seqs, segment_seqs(env, dir));
  bool stop = false;
  for (uint64_t seq : seqs) {
    LS_ASSIGN_OR_RETURN(std::vector<uint8_t> file, env.read_file(dir + "/" + segment_file_name(seq)));
    auto hdr = decode_header(file);
    // The newest segment's header may still be being written (a roll in a live
    // directory) or torn by a crash (recovery removes it): a tail, not damage.
    if (!hdr.ok() && seq == seqs.back() && file.size() <= kHeaderBytes) break;
    LS_ASSIGN_OR_RETURN(SegmentHeader h, std::move(hdr));
    uint64_t index = h.first_index;
    Status inner;
    WalkResult walk = walk_frames(file, [&](const FrameView& f) {
      if (f.header.type != FrameType::kBatch) return true;
      inner = engine::for_each_record(f.body, f.header.record_count, [&](std::span<const uint8_t> rec) {
        // fn said stop: the rest of this batch is walked (to its end) but not handed out.
        if (stop) return ok_status();
        LS_ASSIGN_OR_RETURN(RecordView v, decode_record(rec));
        StoredRecord r;
        r.index = index++;
        r.segment_seq = seq;
        r.view = v;
        r.bytes = rec;
        if (!fn(r)) {
          stop = true;
          return Status(Code::kOk, "");
        }
        return ok_status();
      });
      return inner.ok() && !stop;
    });
    LS_RETURN_IF_ERROR(inner);
    if (stop) break;
    if (gaps != nullptr && !walk.stopped_by_callback && !walk.stop.ok()) {
      gaps->push_back(ReadGap{seq, walk.valid_end, index, seq == seqs.back(), walk.stop});
    }
  }
  return ok_status();
}

Result<SignedCheckpoint> latest_checkpoint(io::Env& env, const std::string& data_dir, const std::string& stream) {
  LS_RETURN_IF_ERROR(check_stream(env, data_dir, stream));
  std::string dir = data_dir + "/" + stream;
  LS_ASSIGN_OR_RETURN(std::vector<uint64_t> seqs, segment_seqs(env, dir));
  for (auto it = seqs.rbegin(); it != seqs.rend(); ++it) {
    LS_ASSIGN_OR_RETURN(std::vector<uint8_t> file, env.read_file(dir + "/" + segment_file_name(*it)));
    std::optional<SignedCheckpoint> found;
    walk_frames(file, [&](const FrameView& f) {
      if (f.header.type != FrameType::kCheckpoint && f.header.type != FrameType::kSeal) return true;
      auto sf = split_signed_frame(f.body);
      if (!sf.ok()) return false;
      auto b = decode_checkpoint_body(sf->body);
      if (!b.ok()) return false;
      SignedCheckpoint c;
      c.body.assign(sf->body.begin(), sf->body.end());
      c.signature.assign(sf->signature.begin(), sf->signature.end());
      c.decoded = b.value();
      found = std::move(c);
      return true;
    });
    if (found) return std::move(*found);
  }
  return not_found("stream '" + stream + "' has no signed checkpoint yet");
}

Result<InclusionProof> prove_record(io::Env& env, const std::string& data_dir, const std::string& stream,
                                    uint64_t index) {
  LS_ASSIGN_OR_RETURN(SignedCheckpoint cp, latest_checkpoint(env, data_dir, stream));
  uint64_t size = cp.decoded.tree_size;
  if (index >= size) {
    return invalid_argument("record " + std::to_string(index) + " is not covered by the latest signed checkpoint (" +
                            std::to_string(size) + " records)");
  }
  // A stream whose front was pruned (FORMAT.md 5.4) starts at its first
  // segment's first_index; that header's frontier stands in for the records
  // before it.
  merkle::MerkleFrontier prefix;
  {
    LS_ASSIGN_OR_RETURN(std::vector<std::string> names, env.list_dir(data_dir + "/" + stream));
    std::optional<uint64_t> first_seq;
    for (auto& n : names) {
      if (auto seq = parse_segment_file_name(n); seq && (!first_seq || *seq < *first_seq)) first_seq = seq;
    }
    if (first_seq && *first_seq > 0) {
      std::string path = data_dir + "/" + stream + "/" + segment_file_name(*first_seq);
      LS_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, env.read_file(path));
      auto h = decode_header(bytes);
      if (!h.ok()) return h.status().with_context(path + "; run `logseal verify`");
      LS_ASSIGN_OR_RETURN(prefix, merkle::MerkleFrontier::from(h->first_index, h->frontier));
    }
  }
  if (index < prefix.size()) {
    return not_found("record " + std::to_string(index) + " was pruned: stream " + stream + " starts at record " +
                     std::to_string(prefix.size()) + " (`logseal verify` names the prune)");
  }
  std::vector<Hash32> leaves;
  leaves.reserve(size - prefix.size());
  InclusionProof p;
  LS_RETURN_IF_ERROR(for_each_record(env, data_dir, stream, [&](const StoredRecord& r) {
    if (r.index >= size) return false;
    leaves.push_back(merkle::leaf_hash(r.bytes));
    if (r.index == index) p.record.assign(r.bytes.begin(), r.bytes.end());
    return true;
  }));
  if (prefix.size() + leaves.size() != size) {
    return data_loss("the stream holds " + std::to_string(leaves.size()) + " readable records from record " +
                     std::to_string(prefix.size()) + ", the checkpoint " + std::to_string(size) +
                     "; run `logseal verify`");
  }
  merkle::MerkleFrontier all = prefix;
  for (const Hash32& l : leaves) all.append(l);
  if (all.root() != cp.decoded.root) {
    return data_loss("the records do not match the latest checkpoint's root; run `logseal verify`");
  }
  p.stream = stream;
  p.index = index;
  p.path = prefix.size() == 0 ? merkle::inclusion_proof(leaves, index)
                              : merkle::inclusion_proof_after(prefix, leaves, index);
  p.checkpoint = std::move(cp);
  return p;
}

std::string format_proof(const InclusionProof& p) {
  std::ostringstream o;
  o << "logseal-proof v1\n";
  o << "stream: " << p.stream << "\n";
  o << "index: " << p.index << "\n";
  o << "tree-size: " << p.checkpoint.decoded.tree_size << "\n";
  o << "root: " << to_hex(p.checkpoint.decoded.root) << "\n";
  o << "record: " << base64_encode(p.record) << "\n";
  o << "path:";
  for (auto& h : p.path) o << " " << to_hex(h);
  o << "\n";
  o << "checkpoint-body: " << base64_encode(p.checkpoint.body) << "\n";
  o << "checkpoint-signature: " << base64_encode(p.checkpoint.signature) << "\n";
  return o.str();
}

Result<InclusionProof> parse_proof(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  InclusionProof p;
  bool magic = false, have_index = false, have_record = false, have_body = false, have_sig = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto value = [&](const char* key) -> std::optional<std::string> {
      std::string k = std::string(key) + ":";
      if (line.rfind(k, 0) != 0) return std::nullopt;
      std::string v = line.substr(k.size());
      while (!v.empty() && v.front() == ' ') v.erase(v.begin());
      return v;
    };
    if (line == "logseal-proof v1") magic = true;
    if (auto v = value("stream")) p.stream = *v;
    if (auto v = value("index")) {
      try {
        p.index = std::stoull(*v);
        have_index = true;
      } catch (...) {
        return invalid_argument("proof index is not a number");
      }
    }
    if (auto v = value("record")) {
      auto b = base64_decode(*v);
      if (!b) return invalid_argument("proof record is not base64");
      p.record = std::move(*b);
      have_record = true;
    }
    if (auto v = value("path")) {
      std::istringstream ps(*v);
      std::string h;
      while (ps >> h) {
        auto b = from_hex(h);
        if (!b || b->size() != 32) return invalid_argument("proof path holds a value that is not a 32-byte hex hash");
        Hash32 x;
        std::copy(b->begin(), b->end(), x.begin());
        p.path.push_back(x);
      }
    }
    if (auto v = value("checkpoint-body")) {
      auto b = base64_decode(*v);
      if (!b || b->size() != kCheckpointBodyBytes) return invalid_argument("proof checkpoint body is not valid");
      p.checkpoint.body = std::move(*b);
      have_body = true;
    }
    if (auto v = value("checkpoint-signature")) {
      auto b = base64_decode(*v);
      if (!b) return invalid_argument("proof checkpoint signature is not base64");
      p.checkpoint.signature = std::move(*b);
      have_sig = true;
    }
  }
  if (!magic) return invalid_argument("not a logseal proof (first line must be 'logseal-proof v1')");
  if (!have_index || !have_record || !have_body || !have_sig) {
    return invalid_argument("proof lacks index, record, checkpoint-body or checkpoint-signature");
  }
  auto b = decode_checkpoint_body(p.checkpoint.body);
  if (!b.ok()) return invalid_argument("proof checkpoint body is not valid: " + b.status().message());
  p.checkpoint.decoded = b.value();
  return p;
}

}  // namespace logseal::engine
