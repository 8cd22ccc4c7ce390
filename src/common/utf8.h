// UTF-8 validation as proto3 requires of `string` fields: well-formed sequences only (no
// overlong forms, no surrogates, nothing past U+10FFFF).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace tracery {

// True when every byte is below 0x80, branch-free over eight bytes at a time (the common case
// of OTLP strings, checked first).
inline bool IsAscii(const uint8_t* p, size_t n) {
  if (n >= 8) {
    uint64_t any = 0, word;
    for (size_t i = 0; i + 8 <= n; i += 8) {
      std::memcpy(&word, p + i, 8);
      any |= word;
    }
    std::memcpy(&word, p + n - 8, 8);  // the tail, overlapping what was read
    return ((any | word) & 0x8080808080808080ull) == 0;
  }
  uint8_t any = 0;
  for (size_t i = 0; i < n; ++i) any |= p[i];
  return any < 0x80;
}

inline bool IsValidUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  if (IsAscii(p, text.size())) return true;
  const auto* end = p + text.size();
  while (p < end) {
    // ASCII runs eight bytes at a time.
    if (end - p >= 8) {
      uint64_t word;
      std::memcpy(&word, p, 8);
      if ((word & 0x8080808080808080ull) == 0) {
        p += 8;
        continue;
      }
    }
    uint8_t c = *p;
    if (c < 0x80) {
      p++;
      continue;
    }
    int extra;
    uint32_t min, code;
    if ((c & 0xE0) == 0xC0) { extra = 1; min = 0x80; code = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { extra = 2; min = 0x800; code = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { extra = 3; min = 0x10000; code = c & 0x07; }
    else return false;
    if (end - p <= extra) return false;
    for (int i = 1; i <= extra; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      code = (code << 6) | (p[i] & 0x3F);
    }
    if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    p += extra + 1;
  }
  return true;
}

}  // namespace tracery
