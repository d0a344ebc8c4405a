// Little-endian encoding helpers and hex, shared by the on-disk format, the
// signer and the tools. All on-disk integers are little-endian.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace logseal {

using Hash32 = std::array<uint8_t, 32>;

inline void put_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
inline void put_u32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
inline void put_u64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
inline uint16_t get_u16(const uint8_t* p) { uint16_t v; std::memcpy(&v, p, 2); return v; }
inline uint32_t get_u32(const uint8_t* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }
inline uint64_t get_u64(const uint8_t* p) { uint64_t v; std::memcpy(&v, p, 8); return v; }
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the on-disk format is little-endian");

std::string to_hex(std::span<const uint8_t> bytes);
// Returns nullopt on odd length or a non-hex character.
std::optional<std::vector<uint8_t>> from_hex(std::string_view hex);
std::string base64_encode(std::span<const uint8_t> bytes);
std::optional<std::vector<uint8_t>> base64_decode(std::string_view text);

inline std::span<const uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace logseal
