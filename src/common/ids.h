// Trace and span identifiers, hex and base64 codecs, and the hash that routes a trace.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace tracery {

// A 16-byte trace ID, compared as bytes (big-endian order is the sort order of blocks).
struct TraceId {
  std::array<uint8_t, 16> bytes{};

  static TraceId FromBytes(std::string_view raw) {
    TraceId id;
    std::memcpy(id.bytes.data(), raw.data(), 16);
    return id;
  }
  std::string_view View() const { return {reinterpret_cast<const char*>(bytes.data()), 16}; }
  bool IsZero() const {
    for (uint8_t b : bytes) if (b != 0) return false;
    return true;
  }
  uint64_t Hash() const;  // xxh3 of the bytes
  std::string Hex() const;
  auto operator<=>(const TraceId&) const = default;
};

struct TraceIdHasher {
  size_t operator()(const TraceId& id) const { return id.Hash(); }
};

std::string HexEncode(std::string_view bytes);
// Decodes even-length hex (either case). Returns nullopt on any other character.
std::optional<std::string> HexDecode(std::string_view hex);

// Parses a trace ID as Tempo accepts it in a URL: 1..32 hex digits, left-padded with zeros.
std::optional<TraceId> ParseTraceIdHex(std::string_view hex);

std::string Base64Encode(std::string_view bytes);
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace tracery
