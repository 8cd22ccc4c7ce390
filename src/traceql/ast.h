// The TraceQL syntax tree, and how a field of one span is read. This header is the contract
// between the parser/search evaluator (parser.cpp, evaluate*.cpp) and the metrics engine
// (metrics.cpp): it only ever grows; nothing in it is renamed or removed.
//
// A query is a Pipeline of Stages. A Stage is a spanset expression (filters `{...}` combined
// with spanset operators, where an operand may itself be a wrapped pipeline), a scalar filter
// (`count() > 2`), `by(expr)`, `select(attrs)` or `coalesce()`. A metrics query ends in a
// MetricsStage (`| rate() by (resource.service.name) | topk(5)`). Names, kinds and scopes are
// resolved to enums at parse time so the evaluator never compares strings per span.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "otlp/model.h"
#include "traceql/trace_view.h"

namespace re2 {
class RE2;
}

namespace tracery::traceql {

// ---- values ---------------------------------------------------------------------------

enum class ValueType : uint8_t {
  kNil = 0,  // absent attribute, or a field that does not apply (event:name of a span with no events)
  kInt,
  kFloat,
  kString,
  kBool,
  kDuration,  // int_value nanoseconds
  kStatus,    // int_value is an otlp::StatusCode
  kKind,      // int_value is an otlp::SpanKind
  kArray,     // array points at an attribute's kArray AnyValue
};

// The value of a field for one span, or a literal of the query. It never owns heap memory:
// strings view the trace data or the query, except hex IDs (span:id, trace:id, ...), which are
// written into the inline buffer. Copying is cheap and keeps StringValue() valid as long as the
// trace and the query live.
struct Value {
  ValueType type = ValueType::kNil;
  bool bool_value = false;
  int64_t int_value = 0;  // kInt, kDuration, kStatus, kKind
  double float_value = 0;
  std::string_view string_value;  // kString unless inline_size > 0
  const otlp::AnyValue* array = nullptr;
  uint8_t inline_size = 0;
  char inline_text[32] = {};

  static Value Nil() { return {}; }
  static Value Int(int64_t v);
  static Value Float(double v);
  static Value String(std::string_view v);
  static Value Bool(bool v);
  static Value Duration(int64_t nanos);
  static Value Status(otlp::StatusCode code);
  static Value Kind(otlp::SpanKind kind);
  static Value HexId(std::string_view raw_bytes);  // up to 16 bytes, lower-case hex

  bool IsNil() const { return type == ValueType::kNil; }
  bool IsNumeric() const {
    return type == ValueType::kInt || type == ValueType::kFloat || type == ValueType::kDuration;
  }
  // Numbers as double: kInt and kFloat as they are, kDuration in nanoseconds.
  double AsDouble() const;
  std::string_view StringValue() const {
    return inline_size > 0 ? std::string_view(inline_text, inline_size) : string_value;
  }
};

// A span attribute's AnyValue as a Value (kvlist and bytes are not searchable: nil).
Value ValueFromAnyValue(const otlp::AnyValue& value);

// Tempo's encoding of a value in a search result or series label: strings, ints, floats and
// bools as themselves; durations as Go duration strings ("120ms", "1m30s"); status and kind as
// their keywords ("error", "server"); arrays element-wise; nil as an empty AnyValue.
otlp::AnyValue ValueToAnyValue(const Value& value);
// Go's time.Duration.String(): "0s", "1.5µs", "120ms", "2h3m4.5s".
std::string FormatGoDuration(int64_t nanos);
// TraceQL literal text of a value: 12, 1.5, "quoted", 120ms, error, server, nil.
std::string ValueText(const Value& value);
// The keywords TraceQL uses: "ok", "error", "unset"; "server", "client", "unspecified", ...
const char* StatusKeyword(otlp::StatusCode code);
const char* KindKeyword(otlp::SpanKind kind);

// ---- field expressions ------------------------------------------------------------------

enum class AttributeScope : uint8_t {
  kNone = 0,  // unscoped `.x` (span, then resource) or a legacy intrinsic (`duration`)
  kSpan,
  kResource,
  kEvent,
  kLink,
  kInstrumentation,
  kTrace,  // intrinsics only
};

enum class Intrinsic : uint8_t {
  kNone = 0,  // a custom attribute
  kDuration,  // span:duration, duration
  kName,
  kStatus,
  kStatusMessage,
  kKind,
  kSpanId,        // span:id
  kParentId,      // span:parentID
  kChildCount,    // span:childCount
  kParent,        // parse-only, rejected by validation
  kTraceDuration,  // trace:duration, traceDuration
  kTraceRootName,  // trace:rootName, rootName
  kTraceRootService,  // trace:rootService, rootServiceName
  kTraceId,        // trace:id
  kNestedSetLeft,
  kNestedSetRight,
  kNestedSetParent,
  kEventName,            // event:name
  kEventTimeSinceStart,  // event:timeSinceStart
  kLinkTraceId,          // link:traceID
  kLinkSpanId,           // link:spanID
  kInstrumentationName,     // instrumentation:name
  kInstrumentationVersion,  // instrumentation:version
};

// Intrinsics always have scope kNone: `span:duration` and `duration` are the same attribute,
// as they are in Tempo.
struct Attribute {
  AttributeScope scope = AttributeScope::kNone;
  Intrinsic intrinsic = Intrinsic::kNone;
  bool parent = false;  // `parent.` prefix: parses, rejected by validation
  std::string name;     // custom attribute name without scope ("http.status_code")

  bool IsIntrinsic() const { return intrinsic != Intrinsic::kNone; }
  bool operator==(const Attribute&) const = default;
};

// Tempo's Attribute.String(): "resource.service.name", "span.http.method", ".foo" for
// unscoped attributes; intrinsics by their Tempo name ("duration", "status", "rootServiceName",
// "traceDuration", "span:id", "trace:id", "event:name", "instrumentation:name", ...).
std::string AttributeText(const Attribute& attribute);
// The key Tempo gives the attribute in a search result span: the bare name for custom
// attributes ("http.status_code"), the Tempo name for intrinsics ("status", "kind", "span:id").
std::string AttributeResultKey(const Attribute& attribute);
// The static type of an intrinsic; kNil for custom attributes (type known only per span).
ValueType IntrinsicType(Intrinsic intrinsic);

enum class Operator : uint8_t {
  kNone = 0,
  // binary, field expressions
  kAdd, kSub, kMul, kDiv, kMod, kPow,
  kEqual, kNotEqual, kLess, kLessEqual, kGreater, kGreaterEqual,
  kRegex, kNotRegex,
  kAnd, kOr,
  // unary
  kNot, kNegate,
  kExists,     // `x != nil`
  kNotExists,  // `x = nil`
};
const char* OperatorText(Operator op);  // "+", "=~", "&&", "!", "-"

struct FieldExpr {
  enum class Kind : uint8_t { kStatic, kAttribute, kBinary, kUnary };
  Kind kind = Kind::kStatic;

  // kStatic: the literal. Strings live in string_literal (literal.string_value is left empty;
  // use LiteralValue()).
  Value literal;
  std::string string_literal;

  // kAttribute
  Attribute attribute;

  // kBinary / kUnary (unary uses lhs)
  Operator op = Operator::kNone;
  std::unique_ptr<FieldExpr> lhs, rhs;
  // kRegex / kNotRegex with a string literal on the right: compiled once, fully anchored.
  std::shared_ptr<const re2::RE2> regex;

  FieldExpr();
  ~FieldExpr();
  FieldExpr(FieldExpr&&) noexcept;
  FieldExpr& operator=(FieldExpr&&) noexcept;

  Value LiteralValue() const;
  bool IsAttribute() const { return kind == Kind::kAttribute; }
};

// TraceQL text of an expression, fully parenthesised where nesting makes precedence matter:
// "(span.a = 1) && (.b > 2)". Parsing the text again gives the same tree.
std::string FieldExprText(const FieldExpr& expr);
// An attribute as written in a query, quoting names that need it: span."a b".
std::string AttributeReferenceText(const Attribute& attribute);

// Reads a field of span `span_index` of `trace`. Custom attributes: the span's (or resource's,
// scope's) attribute with that name, unscoped `.x` the span's then the resource's; event. and
// link. attributes and intrinsics: the first event/link having it. Arithmetic and comparisons
// are evaluated; nil when the field is absent. `duration` is a kDuration in nanoseconds.
Value EvaluateField(const FieldExpr& expr, const TraceView& trace, uint32_t span_index);

// Parses a single attribute or intrinsic as the tag-values API takes it
// ("resource.service.name", ".foo", "span:name", "duration").
Result<Attribute> ParseAttribute(std::string_view text);

// ---- pipelines ------------------------------------------------------------------------

enum class SpansetOperator : uint8_t {
  kAnd,  // &&
  kUnion,  // ||
  kChild, kParent, kDescendant, kAncestor, kSibling,  // > < >> << ~
  kNotChild, kNotParent, kNotDescendant, kNotAncestor, kNotSibling,  // !> !< !>> !<< !~
  kUnionChild, kUnionParent, kUnionDescendant, kUnionAncestor, kUnionSibling,  // &> &< &>> &<< &~
};
const char* SpansetOperatorText(SpansetOperator op);

struct Pipeline;

// A spanset expression: `{ filter }`, `A op B`, or a wrapped pipeline `( ... | ... )`.
struct SpansetExpr {
  enum class Kind : uint8_t { kFilter, kOperation, kPipeline };
  Kind kind = Kind::kFilter;
  std::unique_ptr<FieldExpr> filter;  // kFilter; null for `{ }` (matches every span)
  SpansetOperator op = SpansetOperator::kAnd;  // kOperation
  std::unique_ptr<SpansetExpr> lhs, rhs;       // kOperation
  std::unique_ptr<Pipeline> pipeline;          // kPipeline
  // kFilter: whether the filter reads event / link fields; such a filter is evaluated once per
  // event (link) of a span and matches the span when it holds for any of them.
  bool uses_events = false, uses_links = false;

  SpansetExpr();
  ~SpansetExpr();
  SpansetExpr(SpansetExpr&&) noexcept;
  SpansetExpr& operator=(SpansetExpr&&) noexcept;
};

enum class AggregateKind : uint8_t { kCount, kAvg, kMin, kMax, kSum };

// `count() > 2`, `avg(duration) >= 20ms`. Only an aggregate compared with a literal is
// supported, so that is the only shape kept after validation.
struct ScalarFilter {
  AggregateKind aggregate = AggregateKind::kCount;
  std::unique_ptr<FieldExpr> argument;  // null for count()
  Operator op = Operator::kGreater;     // kEqual .. kGreaterEqual
  Value threshold;                     // kInt, kFloat or kDuration
};
// "count()", "avg(duration)", "max(span.http.status_code)": the spanset attribute key.
std::string AggregateText(const ScalarFilter& filter);

struct Stage {
  enum class Kind : uint8_t { kSpanset, kScalarFilter, kGroupBy, kSelect, kCoalesce };
  Kind kind = Kind::kSpanset;
  std::unique_ptr<SpansetExpr> spanset;  // kSpanset
  ScalarFilter scalar_filter;            // kScalarFilter
  std::unique_ptr<FieldExpr> group_by;   // kGroupBy
  std::vector<Attribute> select;         // kSelect
};

struct Pipeline {
  std::vector<Stage> stages;
};

// ---- metrics --------------------------------------------------------------------------

enum class MetricsFunction : uint8_t {
  kRate,
  kCountOverTime,
  kMinOverTime,
  kMaxOverTime,
  kSumOverTime,
  kAvgOverTime,
  kQuantileOverTime,
  kHistogramOverTime,
  kCompare,
};
const char* MetricsFunctionName(MetricsFunction function);  // "rate", "quantile_over_time"

// After the metrics function: `| topk(N)`, `| bottomk(N)`, or `> 10` (compare each series
// value with a number; a duration literal is kept as a kDuration Value).
struct MetricsSecondStage {
  enum class Kind : uint8_t { kTopK, kBottomK, kFilter };
  Kind kind = Kind::kTopK;
  int64_t limit = 0;                  // kTopK, kBottomK
  Operator op = Operator::kGreater;  // kFilter: kEqual .. kGreaterEqual
  Value threshold;                    // kFilter: kInt, kFloat or kDuration
};

struct MetricsStage {
  MetricsFunction function = MetricsFunction::kRate;
  // The measured attribute of min/max/sum/avg/quantile/histogram_over_time: a kAttribute
  // FieldExpr, so EvaluateField reads it.
  std::unique_ptr<FieldExpr> attribute;
  std::vector<double> quantiles;  // quantile_over_time
  std::vector<FieldExpr> by;      // by(attr, ...): each a kAttribute FieldExpr
  // compare({filter}, top_n, start, end)
  std::unique_ptr<SpansetExpr> compare_filter;
  int64_t compare_top_n = 10;
  int64_t compare_start_nanos = 0, compare_end_nanos = 0;  // 0, 0 when not given
  std::vector<MetricsSecondStage> second_stages;
};

// ---- the query --------------------------------------------------------------------------

struct Hint {
  std::string name;
  Value value;               // as written (strings viewed in string_literal)
  std::string string_literal;
  otlp::AnyValue any_value;  // Tempo's encoding, what FindHint returns
};

class Query {
 public:
  Query() = default;
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  // The spanset pipeline: for a metrics query, the part before the metrics function.
  const Pipeline& pipeline() const { return pipeline_; }
  // The metrics function and what follows it; null for a search query.
  const MetricsStage* metrics() const { return metrics_.get(); }
  const std::vector<Hint>& hints() const { return hints_; }
  // The query text as given to Parse.
  const std::string& text() const { return text_; }
  // The attributes a search result span shows (from conditions, by(), aggregates and
  // select()), in order of first mention, without name/duration/trace-level/ID intrinsics,
  // which Tempo reports in their own fields.
  const std::vector<Attribute>& output_attributes() const { return output_attributes_; }

 private:
  friend class Parser;  // builds the query (parser.cpp)
  Pipeline pipeline_;
  std::unique_ptr<MetricsStage> metrics_;
  std::vector<Hint> hints_;
  std::string text_;
  std::vector<Attribute> output_attributes_;
};

// Every spanset the query's spanset pipeline selects from a trace, before any metrics
// function (for metrics.cpp: the spans that feed the series). Spans in view order.
struct MatchedSpanset {
  std::vector<uint32_t> spans;  // indexes into TraceView::spans
};
std::vector<MatchedSpanset> EvaluatePipeline(const Query& query, const TraceView& trace);

}  // namespace tracery::traceql
