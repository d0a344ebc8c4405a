#include "engine/inspect.h"

#include <sstream>

#include "engine/export.h"
#include "engine/format.h"
#include "engine/segment_reader.h"
#include "hsm/signer.h"

namespace logseal::engine {

using namespace format;

Result<std::string> inspect_segment(std::span<const uint8_t> file, bool json) {
  LS_ASSIGN_OR_RETURN(SegmentHeader h, decode_header(file));
  std::ostringstream t;   // text
  std::ostringstream js;  // json frames
  t << "segment " << h.segment_seq << " of stream " << h.stream << "\n";
  t << "  created       " << rfc3339_ns(h.created_ns) << "\n";
  t << "  first record  " << h.first_index << "\n";
  t << "  prev chain    " << to_hex(h.prev_chain) << "\n";
  t << "  frontier      " << h.frontier.size() << " hashes\n";
  t << "  file bytes    " << file.size() << "\n";
  t << "frames:\n";
  bool first = true;
  WalkResult w = walk_frames(file, [&](const FrameView& f) {
    const FrameHeader& fh = f.header;
    t << "  @" << f.offset << " #" << fh.frame_seq << " " << frame_type_name(fh.type) << " span=" << fh.span_bytes
      << " body=" << fh.body_bytes;
    js << (first ? "" : ",") << "{\"offset\":" << f.offset << ",\"seq\":" << fh.frame_seq << ",\"type\":\""
       << frame_type_name(fh.type) << "\",\"span\":" << fh.span_bytes << ",\"body\":" << fh.body_bytes
       << ",\"first_index\":" << fh.first_index;
    first = false;
    if (fh.type == FrameType::kBatch) {
      t << " records=" << fh.record_count << " first=" << fh.first_index;
      js << ",\"records\":" << fh.record_count;
    } else if (fh.type == FrameType::kRecovery) {
      auto r = decode_recovery(f.body);
      if (r.ok()) {
        t << " cut " << r->cut_bytes << " bytes at " << r->cut_offset << " on " << rfc3339_ns(r->recovered_ns) << " ("
          << r->reason << ")";
        js << ",\"cut_offset\":" << r->cut_offset << ",\"cut_bytes\":" << r->cut_bytes
           << ",\"recovered\":" << json_escape(rfc3339_ns(r->recovered_ns)) << ",\"reason\":" << json_escape(r->reason);
      }
    } else {
      auto sf = split_signed_frame(f.body);
      if (sf.ok()) {
        auto b = decode_checkpoint_body(sf->body);
        if (b.ok()) {
          t << " tree_size=" << b->tree_size << " covered=" << b->covered_offset << " head_seq=" << b->head_seq
            << "\n      root " << to_hex(b->root) << "\n      head " << to_hex(head_of(sf->body)) << "\n      time "
            << rfc3339_ns(b->time_ns) << " signer " << hsm::signer_kind_name(b->signer_kind) << " key "
            << to_hex(b->key_id);
          js << ",\"tree_size\":" << b->tree_size << ",\"covered_offset\":" << b->covered_offset
             << ",\"head_seq\":" << b->head_seq << ",\"root\":\"" << to_hex(b->root) << "\",\"head\":\""
             << to_hex(head_of(sf->body)) << "\",\"time\":" << json_escape(rfc3339_ns(b->time_ns))
             << ",\"signer\":\"" << hsm::signer_kind_name(b->signer_kind) << "\",\"key_id\":\"" << to_hex(b->key_id)
             << "\"";
          if (b->signer_kind == hsm::SignerKind::kTpm) {
            const hsm::Evidence& e = b->evidence;
            t << "\n      tpm counter " << e.nv_counter << " clock " << e.tpm_clock_ms << " ms reset "
              << e.tpm_reset_count << " restart " << e.tpm_restart_count << " safe " << unsigned{e.tpm_safe};
            js << ",\"tpm\":{\"nv_counter\":" << e.nv_counter << ",\"clock_ms\":" << e.tpm_clock_ms
               << ",\"reset_count\":" << e.tpm_reset_count << ",\"restart_count\":" << e.tpm_restart_count
               << ",\"safe\":" << (e.tpm_safe ? "true" : "false") << "}";
          }
        }
      }
    }
    t << "\n";
    js << "}";
    return true;
  });
  std::string end = w.stop.ok() ? "end of file" : w.stop.message();
  t << (w.sealed ? "sealed" : "open (not sealed)") << "; reading stopped at offset " << w.valid_end << ": " << end
    << "\n";
  if (!json) return t.str();
  std::ostringstream o;
  o << "{\"segment\":" << h.segment_seq << ",\"stream\":" << json_escape(h.stream)
    << ",\"created\":" << json_escape(rfc3339_ns(h.created_ns)) << ",\"first_index\":" << h.first_index
    << ",\"prev_chain\":\"" << to_hex(h.prev_chain) << "\",\"file_bytes\":" << file.size() << ",\"frames\":["
    << js.str() << "],\"sealed\":" << (w.sealed ? "true" : "false") << ",\"valid_end\":" << w.valid_end
    << ",\"stop\":" << json_escape(end) << "}\n";
  return o.str();
}

}  // namespace logseal::engine
