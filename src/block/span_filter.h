// A condition every span of interest must meet, checked on a row group's columns before any
// span is decoded: search hands one down, and only traces that have a span meeting it are
// decoded and judged. A span may pass and still not match the query (the condition is
// necessary, not sufficient): every test here errs on the side of passing.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace re2 {
class RE2;
}

namespace tracery::block {

struct SpanCondition {
  enum class Field : uint8_t {
    kName,
    kStatus,    // literal int_value: otlp::StatusCode
    kKind,      // literal int_value: otlp::SpanKind
    kDuration,  // literal in nanoseconds
    kSpanAttribute,
    kResourceAttribute,
    kAnyAttribute,  // unscoped: the span's or the resource's
  };
  enum class Op : uint8_t { kEqual, kNotEqual, kLess, kLessEqual, kGreater, kGreaterEqual, kRegex, kNotRegex };
  enum class Type : uint8_t { kString, kInt, kFloat, kBool };

  Field field = Field::kName;
  Op op = Op::kEqual;
  std::string key;  // attribute name
  Type type = Type::kString;
  std::string string_value;
  int64_t int_value = 0;  // kInt; status and kind codes; durations
  double float_value = 0;
  bool bool_value = false;
  std::shared_ptr<const re2::RE2> regex;  // kRegex, kNotRegex (fully anchored)
};

// A span passes when it meets every condition.
struct SpanFilter {
  std::vector<SpanCondition> all_of;
  bool empty() const { return all_of.empty(); }
};

// The span columns a reader needs decoded; what is left out stays empty in the decoded spans
// (IDs, name, times, kind, status, parent, resource and scope are always there).
struct Projection {
  bool span_attributes = true;
  bool events = true;
  bool links = true;
  bool status_message = true;
  bool names = true;  // span names (with status messages and attributes, what needs the dictionary)
  static Projection All() { return {}; }
};

}  // namespace tracery::block
