#include "ingest/syslog_fields.h"

namespace logseal::ingest {

bool make_syslog_view(const SyslogFields& f, std::string_view raw, uint8_t* out) {
  if (f.kind == SyslogFields::Kind::kUnparsed) return false;
  format::SyslogView v;
  v.form = f.kind == SyslogFields::Kind::kRfc5424 ? format::SyslogForm::kRfc5424 : format::SyslogForm::kRfc3164;
  v.facility = static_cast<uint8_t>(f.facility);
  v.severity = static_cast<uint8_t>(f.severity);
  v.flags = f.has_bom ? format::kSyslogViewFlagBom : 0;
  const std::string_view fields[format::kSyslogViewFields] = {f.timestamp, f.hostname,        f.app_name, f.procid,
                                                               f.msgid,     f.structured_data, f.msg};
  for (size_t i = 0; i < format::kSyslogViewFields; ++i) {
    std::string_view x = fields[i];
    bool last = i + 1 == format::kSyslogViewFields;
    // NILVALUE and empty fields are absent; MSG is "-" only if someone sent that.
    if (x.empty() || (x == "-" && !last) || x.data() < raw.data() || x.data() + x.size() > raw.data() + raw.size()) {
      continue;
    }
    v.spans[i].offset = static_cast<uint32_t>(x.data() - raw.data());
    v.spans[i].length = static_cast<uint32_t>(x.size());
  }
  format::encode_syslog_view(v, out);
  return true;
}

}  // namespace logseal::ingest
