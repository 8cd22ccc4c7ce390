// Reading the query API's URLs: path and parameters, and Tempo's time and duration forms.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tracery::query {

struct Target {
  std::string path;  // percent-decoded
  std::vector<std::pair<std::string, std::string>> params;
  std::optional<std::string> Param(const std::string& name) const {
    for (const auto& [k, v] : params)
      if (k == name) return v;
    return std::nullopt;
  }
};

std::string UrlDecode(std::string_view text, bool plus_is_space = true);
Target ParseTarget(std::string_view target);

// Unix seconds (as Tempo's search and trace-by-ID take them) into nanoseconds; absent or
// empty leaves `out_nanos` alone. False on anything else, or a time past the year 2554.
bool ParseSeconds(const std::optional<std::string>& text, uint64_t& out_nanos);
// The last nanosecond of the second `end_nanos` starts, without wrapping past the largest time.
uint64_t EndOfSecond(uint64_t end_nanos);
// What the metrics endpoints take: unix seconds (fractions allowed), unix nanoseconds (more
// than 10 digits) or RFC 3339.
bool ParseFlexibleTime(std::string_view text, uint64_t& out_nanos);
// A duration as Go writes it ("1m30s", "500ms") or plain (fractional) seconds ("60", "0.5").
bool ParseDurationOrSeconds(std::string_view text, uint64_t& out_nanos);
// A uint32 parameter; absent or empty leaves `out` alone.
bool ParseUint32(const std::optional<std::string>& text, uint32_t& out);

}  // namespace tracery::query
