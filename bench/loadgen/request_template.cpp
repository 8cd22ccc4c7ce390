#include "loadgen/request_template.h"

#include <bit>
#include <cstring>
#include <unordered_map>

namespace tracery::bench {
namespace {

// Protobuf wire types used by OTLP.
constexpr int kVarint = 0;
constexpr int kFixed64 = 1;
constexpr int kLengthDelimited = 2;
constexpr int kFixed32 = 5;

// Which OTLP message a byte range holds; the walker descends only where IDs or times live.
enum class Level { kRequest, kResourceSpans, kScopeSpans, kSpan, kEvent };

class RequestIndexer {
 public:
  RequestIndexer(const std::string& encoded, RequestTemplate& result)
      : base_(reinterpret_cast<const uint8_t*>(encoded.data())), result_(result) {}

  bool Walk(const uint8_t* begin, const uint8_t* end, Level level, std::string& error) {
    const uint8_t* cursor = begin;
    while (cursor < end) {
      uint64_t tag = 0;
      if (!ReadVarint(cursor, end, tag)) return Fail(cursor, "truncated tag", error);
      const uint64_t field = tag >> 3;
      switch (tag & 7) {
        case kVarint: {
          uint64_t ignored = 0;
          if (!ReadVarint(cursor, end, ignored)) return Fail(cursor, "truncated varint", error);
          break;
        }
        case kFixed64:
          if (end - cursor < 8) return Fail(cursor, "truncated fixed64", error);
          if (IsTimestamp(level, field)) {
            result_.timestamp_offsets.push_back(static_cast<uint32_t>(cursor - base_));
          }
          cursor += 8;
          break;
        case kFixed32:
          if (end - cursor < 4) return Fail(cursor, "truncated fixed32", error);
          cursor += 4;
          break;
        case kLengthDelimited: {
          uint64_t length = 0;
          if (!ReadVarint(cursor, end, length) || length > static_cast<uint64_t>(end - cursor)) {
            return Fail(cursor, "bad length", error);
          }
          if (!VisitLengthDelimited(level, field, cursor, cursor + length, error)) return false;
          cursor += length;
          break;
        }
        default:
          return Fail(cursor, "unsupported wire type", error);
      }
    }
    return true;
  }

 private:
  static bool IsTimestamp(Level level, uint64_t field) {
    constexpr uint64_t kSpanStartTime = 7, kSpanEndTime = 8, kEventTime = 1;
    return (level == Level::kSpan && (field == kSpanStartTime || field == kSpanEndTime)) ||
           (level == Level::kEvent && field == kEventTime);
  }

  bool VisitLengthDelimited(Level level, uint64_t field, const uint8_t* begin,
                            const uint8_t* end, std::string& error) {
    constexpr uint64_t kResourceSpansField = 1, kScopeSpansField = 2, kSpansField = 2;
    constexpr uint64_t kTraceIdField = 1, kEventsField = 11;
    switch (level) {
      case Level::kRequest:
        return field == kResourceSpansField ? Walk(begin, end, Level::kResourceSpans, error)
                                            : true;
      case Level::kResourceSpans:
        return field == kScopeSpansField ? Walk(begin, end, Level::kScopeSpans, error) : true;
      case Level::kScopeSpans:
        if (field != kSpansField) return true;
        ++result_.span_count;
        return Walk(begin, end, Level::kSpan, error);
      case Level::kSpan:
        if (field == kEventsField) return Walk(begin, end, Level::kEvent, error);
        if (field == kTraceIdField) {
          if (end - begin != 16) return Fail(begin, "trace_id is not 16 bytes", error);
          RecordTraceId(begin);
        }
        return true;
      case Level::kEvent:
        return true;
    }
    return true;
  }

  void RecordTraceId(const uint8_t* id) {
    const std::string key(reinterpret_cast<const char*>(id), 16);
    auto [entry, inserted] = trace_index_.try_emplace(key, trace_index_.size());
    if (inserted) result_.trace_id_offsets.emplace_back();
    result_.trace_id_offsets[entry->second].push_back(static_cast<uint32_t>(id - base_));
  }

  static bool ReadVarint(const uint8_t*& cursor, const uint8_t* end, uint64_t& value) {
    value = 0;
    for (int shift = 0; shift < 64 && cursor < end; shift += 7) {
      const uint8_t byte = *cursor++;
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return true;
    }
    return false;
  }

  bool Fail(const uint8_t* at, std::string_view what, std::string& error) const {
    error = "request template at byte " + std::to_string(at - base_) + ": " + std::string(what);
    return false;
  }

  const uint8_t* base_;
  RequestTemplate& result_;
  std::unordered_map<std::string, size_t> trace_index_;
};

uint64_t Mix(uint64_t value) {
  value += 0x9e3779b97f4a7c15ULL;
  value = (value ^ (value >> 30)) * 0xbf58476d1ce4e5b9ULL;
  value = (value ^ (value >> 27)) * 0x94d049bb133111ebULL;
  return value ^ (value >> 31);
}

}  // namespace

bool IndexRequest(std::string encoded, uint64_t generated_at_unix_ns, RequestTemplate& result,
                  std::string& error) {
  result = RequestTemplate{};
  result.encoded = std::move(encoded);
  result.generated_at_unix_ns = generated_at_unix_ns;
  RequestIndexer indexer(result.encoded, result);
  const auto* begin = reinterpret_cast<const uint8_t*>(result.encoded.data());
  return indexer.Walk(begin, begin + result.encoded.size(), Level::kRequest, error);
}

TraceId TraceIdSequence::Next(uint64_t number) const {
  // Mix is a bijection on 64-bit values, so distinct numbers give distinct high halves.
  const uint64_t high = Mix(number ^ salt_);
  const uint64_t low = Mix(high ^ 0x5bd1e9955bd1e995ULL);
  TraceId id;
  for (int i = 0; i < 8; ++i) {
    id[i] = static_cast<uint8_t>(high >> (56 - 8 * i));
    id[8 + i] = static_cast<uint8_t>(low >> (56 - 8 * i));
  }
  return id;
}

void PatchRequest(const RequestTemplate& request, const TraceIdSequence& ids,
                  uint64_t first_trace_number, uint64_t shift_ns, uint8_t* destination,
                  std::vector<TraceId>& trace_ids) {
  std::memcpy(destination, request.encoded.data(), request.encoded.size());
  for (size_t trace = 0; trace < request.trace_id_offsets.size(); ++trace) {
    const TraceId id = ids.Next(first_trace_number + trace);
    for (uint32_t offset : request.trace_id_offsets[trace]) {
      std::memcpy(destination + offset, id.data(), id.size());
    }
    trace_ids.push_back(id);
  }
  // fixed64 is little-endian on the wire; patching adds to it in native order.
  static_assert(std::endian::native == std::endian::little);
  for (uint32_t offset : request.timestamp_offsets) {
    uint64_t timestamp = 0;
    std::memcpy(&timestamp, destination + offset, 8);
    timestamp += shift_ns;
    std::memcpy(destination + offset, &timestamp, 8);
  }
}

std::string HexOf(const TraceId& id) {
  constexpr char kDigits[] = "0123456789abcdef";
  std::string hex(32, '0');
  for (size_t i = 0; i < id.size(); ++i) {
    hex[2 * i] = kDigits[id[i] >> 4];
    hex[2 * i + 1] = kDigits[id[i] & 0xf];
  }
  return hex;
}

}  // namespace tracery::bench
