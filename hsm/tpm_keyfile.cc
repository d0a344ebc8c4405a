#include "hsm/tpm_keyfile.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "base/bytes.h"

namespace logseal::hsm {

namespace {

constexpr char kBegin[] = "-----BEGIN TSS2 PRIVATE KEY-----";
constexpr char kEnd[] = "-----END TSS2 PRIVATE KEY-----";
constexpr char kParentNameLine[] = "logseal-parent-name: ";
constexpr char kNvIndexLine[] = "logseal-nv-counter-index: ";
// 2.23.133.10.1.3, id-loadablekey
constexpr uint8_t kLoadableKeyOid[] = {0x67, 0x81, 0x05, 0x0A, 0x01, 0x03};

// ---- DER writer -----------------------------------------------------------

void put_len(std::vector<uint8_t>& out, size_t n) {
  if (n < 0x80) {
    out.push_back(static_cast<uint8_t>(n));
    return;
  }
  uint8_t tmp[8];
  int k = 0;
  while (n > 0) {
    tmp[k++] = static_cast<uint8_t>(n & 0xff);
    n >>= 8;
  }
  out.push_back(static_cast<uint8_t>(0x80 | k));
  while (k > 0) out.push_back(tmp[--k]);
}

std::vector<uint8_t> tlv(uint8_t tag, const std::vector<uint8_t>& value) {
  std::vector<uint8_t> out;
  out.push_back(tag);
  put_len(out, value.size());
  out.insert(out.end(), value.begin(), value.end());
  return out;
}

// DER INTEGER of a non-negative value: minimal big-endian, a 0x00 in front when
// the top bit is set.
std::vector<uint8_t> der_uint(uint32_t v) {
  std::vector<uint8_t> b;
  for (int shift = 24; shift >= 0; shift -= 8) {
    uint8_t byte = static_cast<uint8_t>(v >> shift);
    if (b.empty() && byte == 0 && shift != 0) continue;
    b.push_back(byte);
  }
  if (b[0] & 0x80) b.insert(b.begin(), 0x00);
  return tlv(0x02, b);
}

void append(std::vector<uint8_t>& out, const std::vector<uint8_t>& more) {
  out.insert(out.end(), more.begin(), more.end());
}

// ---- DER reader -------------------------------------------------------------

struct Der {
  const uint8_t* p;
  size_t n;
  size_t pos = 0;

  bool at_end() const { return pos == n; }
  std::optional<uint8_t> peek_tag() const {
    if (pos >= n) return std::nullopt;
    return p[pos];
  }
  // Reads one TLV with the given tag; the value is returned as a sub-reader.
  Result<Der> take(uint8_t tag, const char* what) {
    if (pos + 2 > n) return data_loss(std::string("TSS2 key: truncated at ") + what);
    if (p[pos] != tag) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "TSS2 key: expected tag 0x%02x (%s), found 0x%02x", tag, what, p[pos]);
      return data_loss(buf);
    }
    size_t i = pos + 1;
    size_t len = p[i++];
    if (len & 0x80) {
      size_t k = len & 0x7f;
      if (k == 0 || k > 4 || i + k > n) return data_loss(std::string("TSS2 key: bad length at ") + what);
      len = 0;
      for (size_t j = 0; j < k; ++j) len = (len << 8) | p[i++];
      if (len < 0x80) return data_loss(std::string("TSS2 key: non-minimal length at ") + what);
    }
    if (len > n - i) return data_loss(std::string("TSS2 key: length past the end at ") + what);
    Der sub{p + i, len};
    pos = i + len;
    return sub;
  }
};

Result<uint32_t> read_uint(Der& d, const char* what) {
  LS_ASSIGN_OR_RETURN(Der v, d.take(0x02, what));
  if (v.n == 0 || v.n > 5 || (v.p[0] & 0x80)) return data_loss(std::string("TSS2 key: bad INTEGER ") + what);
  uint64_t x = 0;
  for (size_t i = 0; i < v.n; ++i) x = (x << 8) | v.p[i];
  if (x > 0xffffffffu) return data_loss(std::string("TSS2 key: INTEGER out of range: ") + what);
  return static_cast<uint32_t>(x);
}

Result<std::vector<uint8_t>> read_octets(Der& d, const char* what) {
  LS_ASSIGN_OR_RETURN(Der v, d.take(0x04, what));
  return std::vector<uint8_t>(v.p, v.p + v.n);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

}  // namespace

std::string encode_tpm_key_file(const TpmKeyFile& key) {
  std::vector<uint8_t> body;
  append(body, tlv(0x06, std::vector<uint8_t>(std::begin(kLoadableKeyOid), std::end(kLoadableKeyOid))));
  if (key.empty_auth) append(body, tlv(0xA0, tlv(0x01, {0xFF})));
  if (!key.policy.empty()) {
    std::vector<uint8_t> seq;
    for (const auto& step : key.policy) {
      std::vector<uint8_t> one;
      append(one, tlv(0xA0, der_uint(step.command_code)));
      append(one, tlv(0xA1, tlv(0x04, step.command_policy)));
      append(seq, tlv(0x30, one));
    }
    append(body, tlv(0xA1, tlv(0x30, seq)));
  }
  append(body, der_uint(key.parent));
  append(body, tlv(0x04, key.public_blob));
  append(body, tlv(0x04, key.private_blob));
  std::vector<uint8_t> der = tlv(0x30, body);

  std::string b64 = base64_encode(der);
  std::string out = std::string(kBegin) + "\n";
  for (size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
  out += std::string(kEnd) + "\n";
  if (!key.parent_name.empty()) out += std::string(kParentNameLine) + to_hex(key.parent_name) + "\n";
  if (key.nv_counter_index != 0) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08x", key.nv_counter_index);
    out += std::string(kNvIndexLine) + buf + "\n";
  }
  return out;
}

Result<TpmKeyFile> decode_tpm_key_file(std::string_view text) {
  size_t b = text.find(kBegin);
  if (b == std::string_view::npos) {
    return data_loss("not a TPM key file: no \"" + std::string(kBegin) +
                     "\" block (a software key? use soft:KEYFILE)");
  }
  size_t e = text.find(kEnd, b);
  if (e == std::string_view::npos) return data_loss("TSS2 key: no END line");
  std::string b64;
  for (char c : text.substr(b + sizeof(kBegin) - 1, e - b - (sizeof(kBegin) - 1))) {
    if (c != '\n' && c != '\r' && c != ' ' && c != '\t') b64.push_back(c);
  }
  auto der = base64_decode(b64);
  if (!der) return data_loss("TSS2 key: the PEM body is not base64");

  TpmKeyFile key;
  key.empty_auth = false;
  Der outer{der->data(), der->size()};
  LS_ASSIGN_OR_RETURN(Der d, outer.take(0x30, "TPMKey"));
  if (!outer.at_end()) return data_loss("TSS2 key: bytes after the TPMKey structure");
  LS_ASSIGN_OR_RETURN(Der oid, d.take(0x06, "type"));
  if (oid.n != sizeof kLoadableKeyOid || std::memcmp(oid.p, kLoadableKeyOid, oid.n) != 0) {
    return data_loss("TSS2 key: type is not a loadable key (2.23.133.10.1.3); imported keys are not supported");
  }
  if (d.peek_tag() == 0xA0) {
    LS_ASSIGN_OR_RETURN(Der ea, d.take(0xA0, "emptyAuth"));
    LS_ASSIGN_OR_RETURN(Der bv, ea.take(0x01, "emptyAuth BOOLEAN"));
    if (bv.n != 1) return data_loss("TSS2 key: bad emptyAuth");
    key.empty_auth = bv.p[0] != 0;
  }
  if (d.peek_tag() == 0xA1) {
    LS_ASSIGN_OR_RETURN(Der pol, d.take(0xA1, "policy"));
    LS_ASSIGN_OR_RETURN(Der seq, pol.take(0x30, "policy SEQUENCE"));
    while (!seq.at_end()) {
      LS_ASSIGN_OR_RETURN(Der one, seq.take(0x30, "TPMPolicy"));
      TpmPolicyStep step;
      LS_ASSIGN_OR_RETURN(Der cc, one.take(0xA0, "commandCode"));
      LS_ASSIGN_OR_RETURN(step.command_code, read_uint(cc, "commandCode"));
      LS_ASSIGN_OR_RETURN(Der cp, one.take(0xA1, "commandPolicy"));
      LS_ASSIGN_OR_RETURN(step.command_policy, read_octets(cp, "commandPolicy"));
      key.policy.push_back(std::move(step));
    }
  }
  if (d.peek_tag() == 0xA2) return data_loss("TSS2 key: keys with an import secret are not supported");
  LS_ASSIGN_OR_RETURN(key.parent, read_uint(d, "parent"));
  LS_ASSIGN_OR_RETURN(key.public_blob, read_octets(d, "pubkey"));
  LS_ASSIGN_OR_RETURN(key.private_blob, read_octets(d, "privkey"));
  if (!d.at_end()) return data_loss("TSS2 key: unexpected fields after privkey");

  // The logseal lines after the block.
  std::string_view rest = text.substr(e + sizeof(kEnd) - 1);
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = trim(rest.substr(0, nl));
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (line.starts_with(kParentNameLine)) {
      auto name = from_hex(trim(line.substr(sizeof(kParentNameLine) - 1)));
      if (!name || name->empty()) return data_loss("TPM key file: bad logseal-parent-name line");
      key.parent_name = std::move(*name);
    } else if (line.starts_with(kNvIndexLine)) {
      std::string v(trim(line.substr(sizeof(kNvIndexLine) - 1)));
      char* end = nullptr;
      unsigned long x = std::strtoul(v.c_str(), &end, 0);
      if (v.empty() || *end != '\0' || x == 0 || x > 0xffffffffUL) {
        return data_loss("TPM key file: bad logseal-nv-counter-index line");
      }
      key.nv_counter_index = static_cast<uint32_t>(x);
    }
  }
  return key;
}

}  // namespace logseal::hsm
