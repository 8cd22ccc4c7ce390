#include "query/http_params.h"

#include <charconv>
#include <cmath>
#include <ctime>

#include "common/duration.h"

namespace tracery::query {

std::string UrlDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      int value = 0;
      auto [p, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
      if (ec == std::errc() && p == text.data() + i + 3) {
        out += char(value);
        i += 2;
        continue;
      }
    }
    out += (plus_is_space && text[i] == '+') ? ' ' : text[i];
  }
  return out;
}

Target ParseTarget(std::string_view target) {
  Target t;
  size_t q = target.find('?');
  t.path = UrlDecode(target.substr(0, q), false);
  if (q == std::string_view::npos) return t;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    if (!pair.empty())
      t.params.emplace_back(UrlDecode(pair.substr(0, eq)), eq == std::string_view::npos ? "" : UrlDecode(pair.substr(eq + 1)));
    if (amp == std::string_view::npos) break;
    query = query.substr(amp + 1);
  }
  return t;
}

bool ParseSeconds(const std::optional<std::string>& text, uint64_t& out_nanos) {
  if (!text || text->empty()) return true;
  uint64_t seconds;
  auto [p, ec] = std::from_chars(text->data(), text->data() + text->size(), seconds);
  if (ec != std::errc() || p != text->data() + text->size() || seconds > UINT64_MAX / 1'000'000'000) return false;
  out_nanos = seconds * 1'000'000'000;
  return true;
}

uint64_t EndOfSecond(uint64_t end_nanos) {
  return end_nanos > UINT64_MAX - 999'999'999 ? UINT64_MAX : end_nanos + 999'999'999;
}

namespace {

bool ParseRfc3339(std::string_view text, uint64_t& out_nanos) {
  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
  int year, month, day, hour, minute, second;
  if (text.size() < 20 || std::sscanf(std::string(text.substr(0, 19)).c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &year, &month,
                                      &day, &hour, &minute, &second) != 6)
    return false;
  if (text[4] != '-' || text[7] != '-' || (text[10] != 'T' && text[10] != 't' && text[10] != ' ') || text[13] != ':' ||
      text[16] != ':')
    return false;
  if (year < 1970 || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return false;
  size_t at = 19;
  uint64_t fraction = 0;
  if (at < text.size() && text[at] == '.') {
    uint64_t scale = 100'000'000;
    ++at;
    size_t digits = 0;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
      if (scale) fraction += uint64_t(text[at] - '0') * scale;
      scale /= 10;
      ++at;
      ++digits;
    }
    if (digits == 0) return false;
  }
  int64_t offset_seconds = 0;
  if (at < text.size() && (text[at] == 'Z' || text[at] == 'z')) {
    ++at;
  } else if (at + 6 == text.size() && (text[at] == '+' || text[at] == '-') && text[at + 3] == ':') {
    int oh, om;
    if (std::sscanf(std::string(text.substr(at + 1, 5)).c_str(), "%2d:%2d", &oh, &om) != 2 || oh > 23 || om > 59)
      return false;
    offset_seconds = (oh * 3600 + om * 60) * (text[at] == '+' ? 1 : -1);
    at += 6;
  } else {
    return false;
  }
  if (at != text.size()) return false;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  int64_t seconds = int64_t(timegm(&tm)) - offset_seconds;
  if (seconds < 0 || uint64_t(seconds) > UINT64_MAX / 1'000'000'000 - 1) return false;
  out_nanos = uint64_t(seconds) * 1'000'000'000 + fraction;
  return true;
}

}  // namespace

bool ParseFlexibleTime(std::string_view text, uint64_t& out_nanos) {
  if (text.empty()) return false;
  if (text.find_first_not_of("0123456789") == std::string_view::npos) {
    uint64_t value;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc()) return false;
    if (text.size() > 10) {  // nanoseconds
      out_nanos = value;
      return true;
    }
    out_nanos = value * 1'000'000'000;
    return true;
  }
  if (text.find_first_not_of("0123456789.") == std::string_view::npos) {
    double seconds;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (ec != std::errc() || p != text.data() + text.size() || !(seconds >= 0) || seconds > 1.8e10) return false;
    out_nanos = uint64_t(std::llround(seconds * 1e9));
    return true;
  }
  return ParseRfc3339(text, out_nanos);
}

bool ParseDurationOrSeconds(std::string_view text, uint64_t& out_nanos) {
  if (text.empty()) return false;
  if (text.find_first_not_of("0123456789.") == std::string_view::npos) {
    double seconds;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (ec != std::errc() || p != text.data() + text.size() || !(seconds >= 0) || seconds > 1.8e10) return false;
    out_nanos = uint64_t(std::llround(seconds * 1e9));
    return true;
  }
  auto duration = ParseDuration(text);
  if (!duration || duration->count() < 0) return false;
  out_nanos = uint64_t(duration->count());
  return true;
}

bool ParseUint32(const std::optional<std::string>& text, uint32_t& out) {
  if (!text || text->empty()) return true;
  uint32_t value;
  auto [p, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || p != text->data() + text->size()) return false;
  out = value;
  return true;
}

}  // namespace tracery::query
