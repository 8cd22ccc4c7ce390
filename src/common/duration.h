// Durations as Tempo's config writes them ("10s", "1m30s", "500ms", "1.5h", "7d", "2w", "1y":
// Go's units plus Prometheus' d, w, y as dskit reads them).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace tracery {

using Nanoseconds = std::chrono::nanoseconds;

std::optional<Nanoseconds> ParseDuration(std::string_view text);
// Sizes: a plain number of bytes, or with a unit (KB, MB, GB, KiB, MiB, GiB).
std::optional<uint64_t> ParseByteSize(std::string_view text);

}  // namespace tracery
