#include "common/duration.h"

#include <charconv>
#include <cstdint>

namespace tracery {

std::optional<Nanoseconds> ParseDuration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  if (text == "0") return Nanoseconds(0);
  long double total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
    if (start == i) return std::nullopt;
    double number = 0;
    auto [end, ec] = std::from_chars(text.data() + start, text.data() + i, number);
    if (ec != std::errc() || end != text.data() + i) return std::nullopt;
    size_t unit_start = i;
    // Unit letters; bytes >= 0x80 let the UTF-8 "µs" through, compared whole below.
    while (i < text.size() && ((text[i] >= 'a' && text[i] <= 'z') || static_cast<unsigned char>(text[i]) >= 0x80)) ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    long double scale;
    if (unit == "ns") scale = 1;
    else if (unit == "us" || unit == "µs") scale = 1e3;
    else if (unit == "ms") scale = 1e6;
    else if (unit == "s") scale = 1e9;
    else if (unit == "m") scale = 60e9;
    else if (unit == "h") scale = 3600e9;
    else if (unit == "d") scale = 86400e9;
    else if (unit == "w") scale = 7 * 86400e9;    // Prometheus' (and dskit's) week
    else if (unit == "y") scale = 365 * 86400e9;  // and year of 365 days
    else return std::nullopt;
    total += number * scale;
    if (total >= 9.2e18L) return std::nullopt;  // beyond what int64 nanoseconds hold
  }
  return Nanoseconds(static_cast<int64_t>(total));
}

std::optional<uint64_t> ParseByteSize(std::string_view text) {
  uint64_t number = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc() || ptr == text.data()) return std::nullopt;
  std::string_view unit(ptr, size_t(text.data() + text.size() - ptr));
  uint64_t scale;
  if (unit.empty() || unit == "B") scale = 1;
  else if (unit == "KB") scale = 1000;
  else if (unit == "MB") scale = 1000 * 1000;
  else if (unit == "GB") scale = 1000ull * 1000 * 1000;
  else if (unit == "KiB") scale = 1024;
  else if (unit == "MiB") scale = 1024 * 1024;
  else if (unit == "GiB") scale = 1024ull * 1024 * 1024;
  else return std::nullopt;
  if (number > UINT64_MAX / scale) return std::nullopt;
  return number * scale;
}

}  // namespace tracery
