#include "loadgen/http_template.h"

#include <cstring>

namespace tracery::bench {
namespace {

constexpr int kDecimalTimestampDigits = 16;
constexpr size_t kThriftFieldHeaderBytes = 3;  // type byte, big-endian i16 field id

void WriteHex(const uint8_t* bytes, size_t count, char* destination) {
  constexpr char kDigits[] = "0123456789abcdef";
  for (size_t i = 0; i < count; ++i) {
    destination[2 * i] = kDigits[bytes[i] >> 4];
    destination[2 * i + 1] = kDigits[bytes[i] & 0xf];
  }
}

void ShiftDecimal(char* digits, uint64_t shift) {
  uint64_t value = 0;
  for (int i = 0; i < kDecimalTimestampDigits; ++i) value = value * 10 + (digits[i] - '0');
  value += shift;
  for (int i = kDecimalTimestampDigits - 1; i >= 0; --i) {
    digits[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

uint64_t ReadBigEndian(const char* bytes) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | static_cast<uint8_t>(bytes[i]);
  return value;
}

void WriteBigEndian(uint64_t value, char* bytes) {
  for (int i = 7; i >= 0; --i) {
    bytes[i] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
}

}  // namespace

void PatchHttpBody(HttpFormat format, const HttpBody& body, const std::vector<TraceId>& trace_ids,
                   uint64_t shift_ns, char* destination) {
  std::memcpy(destination, body.encoded.data(), body.encoded.size());
  const uint64_t shift_us = shift_ns / 1000;
  if (format == HttpFormat::kZipkinJson) {
    for (const auto& [trace, offset] : body.trace_id_offsets) {
      WriteHex(trace_ids[trace].data(), trace_ids[trace].size(), destination + offset);
    }
    for (uint32_t offset : body.timestamp_offsets) ShiftDecimal(destination + offset, shift_us);
    return;
  }
  for (const auto& [trace, offset] : body.trace_id_offsets) {
    const TraceId& id = trace_ids[trace];
    std::memcpy(destination + offset, id.data() + 8, 8);  // traceIdLow: the low 8 bytes
    std::memcpy(destination + offset + 8 + kThriftFieldHeaderBytes, id.data(), 8);
  }
  for (uint32_t offset : body.timestamp_offsets) {
    WriteBigEndian(ReadBigEndian(destination + offset) + shift_us, destination + offset);
  }
}

}  // namespace tracery::bench
