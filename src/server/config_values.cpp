// Values as Tempo reads them: its config is Go YAML (yaml.v2/v3, YAML 1.1 numbers) into dskit
// types, so `1_000_000`, `0x10`, `1h30m`, `7d` and `64MiB` all mean what they mean in Tempo.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "common/duration.h"
#include "server/config_internal.h"

namespace tracery::server::config_detail {

bool ParseBool(const std::string& text, bool& out) {
  // Go's strconv.ParseBool (flags) and YAML 1.1's spellings (files).
  for (const char* t : {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", "1", "t", "T"})
    if (text == t) { out = true; return true; }
  for (const char* f : {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", "0", "f", "F"})
    if (text == f) { out = false; return true; }
  return false;
}

bool ParseUnsigned(const std::string& text, uint64_t& out, uint64_t max) {
  std::string digits = text;
  if (!digits.empty() && digits[0] == '+') digits.erase(0, 1);
  int base = 10;
  if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
    base = 16;
    digits.erase(0, 2);
  }
  // YAML 1.1 lets `_` group digits; not first or last.
  if (digits.empty() || digits.front() == '_' || digits.back() == '_') return false;
  std::erase(digits, '_');
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, base);
  if (ec != std::errc() || p != digits.data() + digits.size() || v > max) return false;
  out = v;
  return true;
}

bool ParseDouble(const std::string& text, double& out) {
  char* end = nullptr;
  out = std::strtod(text.c_str(), &end);
  return !text.empty() && end == text.c_str() + text.size() && std::isfinite(out);
}

std::optional<std::chrono::nanoseconds> ParseConfigDuration(const std::string& text) {
  if (text == "0" || text == "0s") return std::chrono::nanoseconds(0);
  return ParseDuration(text);
}

std::optional<uint64_t> ParseConfigBytes(const std::string& text) {
  uint64_t plain;
  if (ParseUnsigned(text, plain)) return plain;
  return ParseByteSize(text);
}

bool ValidEndpoint(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  uint64_t port;
  return ParseUnsigned(text.substr(colon + 1), port, 65535);
}

std::string JoinStrings(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + items[i];
  return out + "]";
}

std::string DurationText(std::chrono::nanoseconds d) {
  using namespace std::chrono;
  if (d % hours(24) == nanoseconds(0) && d >= hours(24)) return std::to_string(duration_cast<hours>(d).count() / 24) + "d";
  if (d % seconds(1) == nanoseconds(0)) return std::to_string(duration_cast<seconds>(d).count()) + "s";
  return std::to_string(duration_cast<milliseconds>(d).count()) + "ms";
}

std::string Where(const std::string& source, const YAML::Mark& mark) {
  return source + ":" + std::to_string(mark.line + 1) + ": ";
}

bool ParseRetentionTiers(const YAML::Node& node, std::array<std::chrono::nanoseconds, 4>& out, std::string& why) {
  if (!node.IsMap()) {
    why = "expected a map of tier to duration, e.g. {error: 720h, slow: 720h, pinned: 2160h, baseline: 72h}";
    return false;
  }
  static constexpr std::array<const char*, 4> kNames = {"error", "slow", "pinned", "baseline"};
  for (const auto& item : node) {
    std::string tier = item.first.Scalar();
    auto at = std::find(kNames.begin(), kNames.end(), tier);
    if (at == kNames.end()) {
      why = "unknown tier `" + tier + "` (tiers: error, slow, pinned, baseline)";
      return false;
    }
    auto d = item.second.IsScalar() ? ParseConfigDuration(item.second.Scalar()) : std::nullopt;
    if (!d || d->count() <= 0) {
      why = "bad retention for tier `" + tier + "`: expected a positive duration such as 72h or 30d";
      return false;
    }
    out[size_t(at - kNames.begin())] = *d;
  }
  return true;
}

namespace {
thread_local std::string current_source;
}
const std::string& CurrentSource() { return current_source; }
void SetCurrentSource(const std::string& source) { current_source = source; }

}  // namespace tracery::server::config_detail
