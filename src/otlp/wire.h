// Protobuf wire-format primitives shared by the OTLP decoders, encoders and the splitter.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/coding.h"

namespace tracery::otlp {

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// One field of a message as read off the wire.
struct WireField {
  uint32_t number = 0;
  WireType type = kVarint;
  uint64_t integer = 0;        // kVarint, kFixed64, kFixed32
  std::string_view bytes;      // kLengthDelimited
  const char* start = nullptr; // where the tag began: lets callers copy a field as it was
};

// Reads the next field; false on malformed input (bad tag, truncated, groups).
__attribute__((always_inline)) inline bool ReadField(ByteReader& reader, WireField& field) {
  field.start = reader.position();
  uint64_t tag;
  if (!reader.ReadVarint(tag)) return false;
  field.number = static_cast<uint32_t>(tag >> 3);
  if (field.number == 0 || tag >> 3 > 0x1fffffff) return false;
  field.type = static_cast<WireType>(tag & 7);
  switch (field.type) {
    case kVarint: return reader.ReadVarint(field.integer);
    case kFixed64: return reader.ReadFixed64(field.integer);
    case kFixed32: {
      uint32_t v;
      if (!reader.ReadFixed32(v)) return false;
      field.integer = v;
      return true;
    }
    case kLengthDelimited: return reader.ReadLengthPrefixed(field.bytes);
    default: return false;
  }
}

inline void PutTag(std::string& out, uint32_t number, WireType type) { PutVarint(out, uint64_t(number) << 3 | type); }
inline void PutBytesField(std::string& out, uint32_t number, std::string_view bytes) {
  PutTag(out, number, kLengthDelimited);
  PutLengthPrefixed(out, bytes);
}
inline void PutStringIfSet(std::string& out, uint32_t number, std::string_view bytes) {
  if (!bytes.empty()) PutBytesField(out, number, bytes);
}
inline void PutVarintIfSet(std::string& out, uint32_t number, uint64_t v) {
  if (v == 0) return;
  PutTag(out, number, kVarint);
  PutVarint(out, v);
}
inline void PutFixed64IfSet(std::string& out, uint32_t number, uint64_t v) {
  if (v == 0) return;
  PutTag(out, number, kFixed64);
  PutFixed64(out, v);
}
inline void PutFixed32IfSet(std::string& out, uint32_t number, uint32_t v) {
  if (v == 0) return;
  PutTag(out, number, kFixed32);
  PutFixed32(out, v);
}

// Appends a length-delimited submessage whose body `fill` writes, without a second copy:
// reserves the maximum length prefix, writes the body, then moves it left if needed.
template <typename Fill>
void PutMessageField(std::string& out, uint32_t number, Fill&& fill) {
  PutTag(out, number, kLengthDelimited);
  size_t prefix_at = out.size();
  out.append(5, '\0');
  size_t body_at = out.size();
  fill(out);
  size_t body_size = out.size() - body_at;
  std::string prefix;
  PutVarint(prefix, body_size);
  out.replace(prefix_at, 5, prefix);
}

}  // namespace tracery::otlp
