// Little helpers to write and read integers in byte strings: fixed-width little-endian and
// protobuf-style varints. Readers never read past the end; they report failure instead.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace tracery {

inline void PutFixed32(std::string& out, uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }
inline void PutFixed64(std::string& out, uint64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); }
inline uint32_t LoadFixed32(const char* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }
inline uint64_t LoadFixed64(const char* p) { uint64_t v; std::memcpy(&v, p, 8); return v; }

inline void PutVarint(std::string& out, uint64_t v) {
  char buf[10];
  int n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out.append(buf, n);
}
inline int VarintLength(uint64_t v) {
  int n = 1;
  while (v >= 0x80) { v >>= 7; ++n; }
  return n;
}
inline uint64_t ZigZag(int64_t v) { return (uint64_t(v) << 1) ^ uint64_t(v >> 63); }
inline int64_t UnZigZag(uint64_t v) { return int64_t(v >> 1) ^ -int64_t(v & 1); }

// A cursor over bytes. Every Read* returns false when the input ends early or is malformed.
class ByteReader {
 public:
  explicit ByteReader(std::string_view data) : p_(data.data()), end_(data.data() + data.size()) {}
  bool empty() const { return p_ >= end_; }
  size_t remaining() const { return size_t(end_ - p_); }
  const char* position() const { return p_; }

  // One-byte varints (most dictionary IDs, counts, small numbers) take the inlined path.
  [[gnu::always_inline]] bool ReadVarint(uint64_t& v) {
    if (p_ < end_ && static_cast<uint8_t>(*p_) < 0x80) [[likely]] {
      v = static_cast<uint8_t>(*p_++);
      return true;
    }
    if (end_ - p_ >= 2 && static_cast<uint8_t>(p_[1]) < 0x80) {  // two bytes: IDs up to 16383
      v = (static_cast<uint8_t>(p_[0]) & 0x7f) | (uint64_t(static_cast<uint8_t>(p_[1])) << 7);
      p_ += 2;
      return true;
    }
    return ReadVarintSlow(v);
  }
  [[gnu::noinline]] bool ReadVarintSlow(uint64_t& v) {
    // Up to ten bytes, unrolled while the input has them all.
    if (end_ - p_ >= 10) {
      const auto* b = reinterpret_cast<const uint8_t*>(p_);
      uint64_t result = 0;
      for (int i = 0; i < 10; ++i) {
        result |= uint64_t(b[i] & 0x7f) << (7 * i);
        if (b[i] < 0x80) {
          p_ += i + 1;
          v = result;
          return true;
        }
      }
      return false;
    }
    v = 0;
    for (int shift = 0; shift < 64 && p_ < end_; shift += 7) {
      auto b = static_cast<uint8_t>(*p_++);
      v |= uint64_t(b & 0x7f) << shift;
      if (b < 0x80) return true;
    }
    return false;
  }

  bool ReadFixed32(uint32_t& v) {
    if (remaining() < 4) return false;
    v = LoadFixed32(p_);
    p_ += 4;
    return true;
  }
  bool ReadFixed64(uint64_t& v) {
    if (remaining() < 8) return false;
    v = LoadFixed64(p_);
    p_ += 8;
    return true;
  }
  bool ReadBytes(size_t n, std::string_view& out) {
    if (remaining() < n) return false;
    out = std::string_view(p_, n);
    p_ += n;
    return true;
  }
  bool ReadLengthPrefixed(std::string_view& out) {
    uint64_t n;
    return ReadVarint(n) && n <= remaining() && ReadBytes(size_t(n), out);
  }

 private:
  const char* p_;
  const char* end_;
};

inline void PutLengthPrefixed(std::string& out, std::string_view bytes) {
  PutVarint(out, bytes.size());
  out.append(bytes);
}

}  // namespace tracery
