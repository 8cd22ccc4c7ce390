// The ingest half of the sampler: one pass over each span's encoded fields (and each resource's
// attributes once per request), setting the summary's predicate bits. Only the values of keys
// some predicate names are decoded; nothing is allocated.
//
// Attribute values are compared by type, as the Collector's policies mean them: string
// policies look at string values, numeric at int values, boolean at bool values. (The
// Collector reads a value of another type as "", 0 or false, so there `min_value: 0` would match
// a double and `value: false` a string; tracery does not copy that accident.) As in the
// Collector, an empty string value of a span attribute never matches; of a resource it can.
#include <cstring>

#include "otlp/wire.h"
#include "sampling/policy_tree.h"
#include "sampling/sampler.h"

namespace tracery::sampling {
namespace {

using detail::CompiledPolicies;
using detail::Predicate;

struct AttributeValue {
  enum class Type : uint8_t { kOther, kString, kBool, kInt } type = Type::kOther;
  std::string_view text;
  int64_t integer = 0;
};

// An AnyValue message: the last `value` field set wins, as protobuf's oneof reads it.
AttributeValue ReadAnyValue(std::string_view bytes) {
  AttributeValue value;
  ByteReader reader(bytes);
  otlp::WireField field;
  while (!reader.empty()) {
    if (!otlp::ReadField(reader, field)) return AttributeValue();
    if (field.number == 1 && field.type == otlp::kLengthDelimited) {
      value.type = AttributeValue::Type::kString;
      value.text = field.bytes;
    } else if (field.number == 2 && field.type == otlp::kVarint) {
      value.type = AttributeValue::Type::kBool;
      value.integer = field.integer != 0;
    } else if (field.number == 3 && field.type == otlp::kVarint) {
      value.type = AttributeValue::Type::kInt;
      value.integer = int64_t(field.integer);
    } else if (field.number >= 4 && field.number <= 7) {
      value.type = AttributeValue::Type::kOther;
    }
  }
  return value;
}

bool Matches(const Predicate& p, const AttributeValue& value, bool on_span) {
  switch (p.kind) {
    case Predicate::Kind::kString:
      if (value.type != AttributeValue::Type::kString || (on_span && value.text.empty())) return false;
      return p.MatchesString(value.text);
    case Predicate::Kind::kNumeric:
      if (value.type != AttributeValue::Type::kInt) return false;
      return (!p.min_value || value.integer >= *p.min_value) && (!p.max_value || value.integer <= *p.max_value);
    case Predicate::Kind::kBoolean:
      return value.type == AttributeValue::Type::kBool && (value.integer != 0) == p.bool_value;
    case Predicate::Kind::kStatus:
    case Predicate::Kind::kTraceState: return false;
  }
  return false;
}

// A KeyValue message: the bits of the predicates on its key that its value satisfies.
uint64_t MatchAttribute(const CompiledPolicies& compiled, std::string_view key_value, bool on_span) {
  ByteReader reader(key_value);
  otlp::WireField field;
  std::string_view key, value;
  while (!reader.empty()) {
    if (!otlp::ReadField(reader, field)) return 0;
    if (field.type != otlp::kLengthDelimited) continue;
    if (field.number == 1) key = field.bytes;
    else if (field.number == 2) value = field.bytes;
  }
  for (const auto& entry : compiled.attribute_keys) {
    if (entry.key.size() != key.size() || std::memcmp(entry.key.data(), key.data(), key.size()) != 0) continue;
    AttributeValue decoded = ReadAnyValue(value);
    uint64_t bits = 0;
    for (uint64_t todo = entry.predicates; todo; todo &= todo - 1) {
      int i = __builtin_ctzll(todo);
      if (Matches(compiled.predicates[i], decoded, on_span)) bits |= uint64_t(1) << i;
    }
    return bits;
  }
  return 0;
}

uint64_t MatchTraceState(const CompiledPolicies& compiled, std::string_view trace_state) {
  uint64_t bits = 0;
  for (uint64_t todo = compiled.trace_state_predicates; todo; todo &= todo - 1) {
    int i = __builtin_ctzll(todo);
    if (compiled.predicates[i].MatchesTraceState(trace_state)) bits |= uint64_t(1) << i;
  }
  return bits;
}

uint64_t MatchStatus(const CompiledPolicies& compiled, uint8_t status_code) {
  uint64_t bits = 0;
  for (uint64_t todo = compiled.status_predicates; todo; todo &= todo - 1) {
    int i = __builtin_ctzll(todo);
    if (compiled.predicates[i].status_mask & (1u << status_code)) bits |= uint64_t(1) << i;
  }
  return bits;
}

bool NeedsSpanScan(const CompiledPolicies& compiled) {
  return !compiled.attribute_keys.empty() || compiled.trace_state_predicates != 0;
}

// The attribute and trace-state bits of a span (the fields SpanSummary does not carry).
uint64_t MatchSpanContent(const CompiledPolicies& compiled, std::string_view span) {
  uint64_t bits = 0;
  ByteReader reader(span);
  otlp::WireField field;
  while (!reader.empty()) {
    if (!otlp::ReadField(reader, field)) return 0;
    if (field.type != otlp::kLengthDelimited) continue;
    if (field.number == 9 && !compiled.attribute_keys.empty()) {
      bits |= MatchAttribute(compiled, field.bytes, true);
    } else if (field.number == 3 && compiled.trace_state_predicates) {
      bits |= MatchTraceState(compiled, field.bytes);
    }
  }
  return bits;
}

uint8_t ReadStatusCode(std::string_view status) {
  ByteReader reader(status);
  otlp::WireField field;
  uint8_t code = 0;
  while (!reader.empty()) {
    if (!otlp::ReadField(reader, field)) return 0;
    if (field.number == 3 && field.type == otlp::kVarint) code = uint8_t(field.integer <= 2 ? field.integer : 0);
  }
  return code;
}

// SpanSummary::encoded is the whole `spans` field of its ScopeSpans, tag and length included.
std::string_view SpanMessage(std::string_view field_bytes) {
  ByteReader reader(field_bytes);
  otlp::WireField field;
  return otlp::ReadField(reader, field) && field.type == otlp::kLengthDelimited ? field.bytes : std::string_view();
}

void AddSpanTimes(TraceSummary& summary, uint64_t start, uint64_t end, bool root) {
  summary.span_count++;
  summary.earliest_start_unix_nano = std::min(summary.earliest_start_unix_nano, start);
  summary.latest_end_unix_nano = std::max(summary.latest_end_unix_nano, end);
  summary.has_root |= root;
}

}  // namespace

size_t SpanMatcher::predicate_count() const { return compiled_->predicates.size(); }

uint64_t SpanMatcher::MatchResource(std::string_view resource) const {
  if (compiled_->attribute_keys.empty()) return 0;
  uint64_t bits = 0;
  ByteReader reader(resource);
  otlp::WireField field;
  while (!reader.empty()) {
    if (!otlp::ReadField(reader, field)) return 0;
    if (field.number == 1 && field.type == otlp::kLengthDelimited)
      bits |= MatchAttribute(*compiled_, field.bytes, false);
  }
  return bits;
}

void SpanMatcher::ObserveSpan(std::string_view span, uint64_t resource_bits, TraceSummary& summary) const {
  uint64_t start = 0, end = 0;
  uint8_t status_code = 0;
  bool has_parent = false;
  ByteReader reader(span);
  otlp::WireField field;
  while (!reader.empty()) {
    if (!otlp::ReadField(reader, field)) break;
    if (field.number == 7 && field.type == otlp::kFixed64) start = field.integer;
    else if (field.number == 8 && field.type == otlp::kFixed64) end = field.integer;
    else if (field.number == 4 && field.type == otlp::kLengthDelimited) has_parent = !field.bytes.empty();
    else if (field.number == 15 && field.type == otlp::kLengthDelimited) status_code = ReadStatusCode(field.bytes);
  }
  uint64_t bits = resource_bits | MatchStatus(*compiled_, status_code);
  if (NeedsSpanScan(*compiled_)) bits |= MatchSpanContent(*compiled_, span);
  summary.matched |= bits;
  AddSpanTimes(summary, start, end, !has_parent);
}

void SpanMatcher::ObserveRequest(const otlp::SplitRequest& request, std::span<TraceSummary> per_fragment) const {
  const CompiledPolicies& compiled = *compiled_;
  bool scan = NeedsSpanScan(compiled);
  // Spans come grouped by resource: each resource's attributes are matched once.
  uint32_t resource_index = UINT32_MAX;
  uint64_t resource_bits = 0;
  for (const otlp::SpanSummary& span : request.spans) {
    if (span.resource_index != resource_index) {
      resource_index = span.resource_index;
      resource_bits = resource_index < request.resources.size() ? MatchResource(request.resources[resource_index]) : 0;
    }
    TraceSummary& summary = per_fragment[span.fragment_index];
    uint64_t bits = resource_bits | MatchStatus(compiled, span.status_code);
    if (scan) bits |= MatchSpanContent(compiled, SpanMessage(span.encoded));
    summary.matched |= bits;
    AddSpanTimes(summary, span.start_unix_nano, span.end_unix_nano, span.parent_span_id.empty());
  }
}

}  // namespace tracery::sampling
