#include "engine/segment_reader.h"
#include "engine/store_internal.h"

namespace logseal::engine {

using namespace format;

Result<SegmentState> read_segment_state(std::span<const uint8_t> file) {
  LS_ASSIGN_OR_RETURN(SegmentHeader header, decode_header(file));
  LS_ASSIGN_OR_RETURN(merkle::MerkleFrontier start, merkle::MerkleFrontier::from(header.first_index, header.frontier));

  // `cur` follows every good frame; `kept` is the last copy of it taken at a
  // block-aligned frame end, which is where a write ended: recovery keeps whole
  // writes only (a frame that ends mid-block belongs to a write whose later
  // frames are missing, and cutting there would leave an unaligned offset).
  SegmentState cur;
  cur.header = header;
  cur.offset = kHeaderBytes;
  cur.chain = chain_start(file);
  cur.frontier = start;
  cur.file_bytes = file.size();
  cur.since_last_batch.push_back({cur.offset, cur.chain});
  SegmentState kept = cur;
  Status bad;

  WalkResult walk = walk_frames(file, [&](const FrameView& f) {
    const FrameHeader& h = f.header;
    if (h.first_index != cur.frontier.size()) {
      bad = data_loss("frame at offset " + std::to_string(f.offset) + " starts at record " +
                      std::to_string(h.first_index) + " where " + std::to_string(cur.frontier.size()) +
                      " was expected");
      return false;
    }
    if (h.type == FrameType::kBatch) {
      Status st = for_each_record(f.body, h.record_count, [&](std::span<const uint8_t> rec) {
        cur.frontier.append(merkle::leaf_hash(rec));
        return ok_status();
      });
      if (!st.ok()) {
        bad = st.with_context("batch at offset " + std::to_string(f.offset));
        return false;
      }
      cur.chain = chain_next(cur.chain, f.frame.first(kFrameHeaderBytes));
      cur.since_last_batch.clear();
    } else {
      if (h.type == FrameType::kCheckpoint || h.type == FrameType::kSeal) {
        auto sf = split_signed_frame(f.body);
        if (!sf.ok()) {
          bad = sf.status();
          return false;
        }
        auto body = decode_checkpoint_body(sf->body);
        if (!body.ok()) {
          bad = body.status();
          return false;
        }
        cur.last_head = head_of(sf->body);
        cur.last_head_seq = body->head_seq;
        cur.last_signed_tree_size = body->tree_size;
        cur.last_signed_body.assign(sf->body.begin(), sf->body.end());
        cur.last_signed_signature.assign(sf->signature.begin(), sf->signature.end());
        if (h.type == FrameType::kSeal) {
          cur.sealed = true;
          cur.seal = body.value();
        }
      }
      cur.chain = chain_next(cur.chain, f.frame);
    }
    cur.offset = f.offset + h.span_bytes;
    cur.frame_seq = h.frame_seq + 1;
    cur.since_last_batch.push_back({cur.offset, cur.chain});
    if (cur.offset % kBlockBytes == 0) kept = cur;
    return true;
  });
  if (!bad.ok()) {
    kept.cut_reason = bad.message();
  } else if (!walk.stop.ok()) {
    kept.cut_reason = walk.stop.message();
  } else if (cur.offset != kept.offset) {
    kept.cut_reason = "the last write ends inside a block";
  }
  kept.cut_offset = kept.offset;
  kept.file_bytes = file.size();
  return kept;
}

}  // namespace logseal::engine
