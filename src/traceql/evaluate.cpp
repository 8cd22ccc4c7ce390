// Pipelines over one trace: every stage maps a list of spansets to a list of spansets, starting
// from one spanset holding the whole trace. EvaluateSearch adds the attributes Tempo shows.
#include <algorithm>
#include <unordered_map>

#include "traceql/engine.h"
#include "traceql/evaluate.h"

namespace tracery::traceql {
namespace {

struct Spanset {
  SpanList spans;
  std::vector<otlp::KeyValue> attributes;
};

std::vector<Spanset> RunPipeline(const Pipeline& pipeline, std::vector<Spanset> input, const TraceView& trace);

SpanList EvaluateSpansetExpr(const SpansetExpr& expr, const SpanList& input, const TraceView& trace) {
  switch (expr.kind) {
    case SpansetExpr::Kind::kFilter: {
      SpanList out;
      out.reserve(input.size());
      for (uint32_t s : input) {
        if (SpanMatchesFilter(expr, trace, s)) out.push_back(s);
      }
      return out;
    }
    case SpansetExpr::Kind::kOperation: {
      SpanList lhs = EvaluateSpansetExpr(*expr.lhs, input, trace);
      SpanList rhs = EvaluateSpansetExpr(*expr.rhs, input, trace);
      return ApplySpansetOperator(expr.op, lhs, rhs, trace);
    }
    case SpansetExpr::Kind::kPipeline: {
      // As an operand, a wrapped pipeline's spansets count as the union of their spans.
      std::vector<Spanset> start(1);
      start[0].spans = input;
      SpanList all;
      for (const Spanset& spanset : RunPipeline(*expr.pipeline, std::move(start), trace)) {
        all = UnionSpans(all, spanset.spans);
      }
      return all;
    }
  }
  return {};
}

// Sum, min, max or average of the aggregate's argument over a spanset; nil when no span has a
// number. Durations stay durations, ints stay ints except in averages.
Value Aggregate(const ScalarFilter& filter, const SpanList& spans, const TraceView& trace) {
  if (filter.aggregate == AggregateKind::kCount) return Value::Int(static_cast<int64_t>(spans.size()));
  bool any = false, floating = false, duration = false;
  int64_t int_sum = 0, int_min = INT64_MAX, int_max = INT64_MIN;
  double float_sum = 0, float_min = 0, float_max = 0;
  size_t count = 0;
  for (uint32_t s : spans) {
    Value v = EvaluateField(*filter.argument, trace, s);
    if (!v.IsNumeric()) continue;
    double d = v.AsDouble();
    if (!any) float_min = float_max = d;
    any = true;
    ++count;
    floating = floating || v.type == ValueType::kFloat;
    duration = duration || v.type == ValueType::kDuration;
    float_sum += d;
    float_min = std::min(float_min, d);
    float_max = std::max(float_max, d);
    if (v.type != ValueType::kFloat) {
      int_sum += v.int_value;
      int_min = std::min(int_min, v.int_value);
      int_max = std::max(int_max, v.int_value);
    }
  }
  if (!any) return Value::Nil();
  auto typed = [&](int64_t i, double f) {
    if (floating) return Value::Float(f);
    return duration ? Value::Duration(i) : Value::Int(i);
  };
  switch (filter.aggregate) {
    case AggregateKind::kSum: return typed(int_sum, float_sum);
    case AggregateKind::kMin: return typed(int_min, float_min);
    case AggregateKind::kMax: return typed(int_max, float_max);
    case AggregateKind::kAvg: {
      double average = float_sum / static_cast<double>(count);
      if (duration && !floating) return Value::Duration(static_cast<int64_t>(average));
      return Value::Float(average);
    }
    case AggregateKind::kCount: break;
  }
  return Value::Nil();
}

struct ValueHash {
  size_t operator()(const Value& v) const {
    size_t h = std::hash<int>()(static_cast<int>(v.type));
    switch (v.type) {
      case ValueType::kString: return h ^ std::hash<std::string_view>()(v.StringValue());
      case ValueType::kFloat: return h ^ std::hash<double>()(v.float_value);
      case ValueType::kBool: return h ^ static_cast<size_t>(v.bool_value);
      case ValueType::kArray: return h ^ std::hash<const void*>()(v.array);
      default: return h ^ std::hash<int64_t>()(v.int_value);
    }
  }
};

struct ValueEqual {
  bool operator()(const Value& a, const Value& b) const {
    if (a.type != b.type) return false;
    switch (a.type) {
      case ValueType::kString: return a.StringValue() == b.StringValue();
      case ValueType::kFloat: return a.float_value == b.float_value || (a.float_value != a.float_value && b.float_value != b.float_value);
      case ValueType::kBool: return a.bool_value == b.bool_value;
      case ValueType::kArray: return a.array == b.array;
      case ValueType::kNil: return true;
      default: return a.int_value == b.int_value;
    }
  }
};

void GroupBy(const FieldExpr& expr, std::vector<Spanset>& spansets, const TraceView& trace) {
  std::string key = "by(" + FieldExprText(expr) + ")";
  std::vector<Spanset> out;
  std::unordered_map<Value, size_t, ValueHash, ValueEqual> groups;
  for (Spanset& spanset : spansets) {
    groups.clear();
    for (uint32_t s : spanset.spans) {
      // Spans where the expression is nil form their own group (valued "nil"), as in Tempo.
      Value value = EvaluateField(expr, trace, s);
      auto [it, inserted] = groups.emplace(value, out.size());
      if (inserted) {
        Spanset group;
        group.attributes = spanset.attributes;
        group.attributes.push_back({key, ValueToAnyValue(value)});
        out.push_back(std::move(group));
      }
      out[it->second].spans.push_back(s);
    }
  }
  spansets = std::move(out);
}

std::vector<Spanset> RunStage(const Stage& stage, std::vector<Spanset> input, const TraceView& trace) {
  switch (stage.kind) {
    case Stage::Kind::kSpanset: {
      const SpansetExpr& expr = *stage.spanset;
      std::vector<Spanset> out;
      for (Spanset& spanset : input) {
        if (expr.kind == SpansetExpr::Kind::kPipeline) {
          // A wrapped pipeline alone keeps its spansets (and their by()/aggregate attributes).
          std::vector<Spanset> one(1);
          one[0] = std::move(spanset);
          for (Spanset& result : RunPipeline(*expr.pipeline, std::move(one), trace)) out.push_back(std::move(result));
          continue;
        }
        SpanList spans = EvaluateSpansetExpr(expr, spanset.spans, trace);
        if (spans.empty()) continue;
        spanset.spans = std::move(spans);
        out.push_back(std::move(spanset));
      }
      return out;
    }
    case Stage::Kind::kScalarFilter: {
      const ScalarFilter& filter = stage.scalar_filter;
      std::vector<Spanset> out;
      for (Spanset& spanset : input) {
        Value aggregate = Aggregate(filter, spanset.spans, trace);
        if (!CompareValues(aggregate, filter.threshold, filter.op)) continue;
        spanset.attributes.push_back({AggregateText(filter), ValueToAnyValue(aggregate)});
        out.push_back(std::move(spanset));
      }
      return out;
    }
    case Stage::Kind::kGroupBy: GroupBy(*stage.group_by, input, trace); return input;
    case Stage::Kind::kSelect: return input;  // selected attributes are added to every result span
    case Stage::Kind::kCoalesce: {
      if (input.empty()) return input;
      Spanset merged;
      for (const Spanset& spanset : input) merged.spans = UnionSpans(merged.spans, spanset.spans);
      std::vector<Spanset> out;
      out.push_back(std::move(merged));
      return out;
    }
  }
  return input;
}

std::vector<Spanset> RunPipeline(const Pipeline& pipeline, std::vector<Spanset> input, const TraceView& trace) {
  for (const Stage& stage : pipeline.stages) {
    input = RunStage(stage, std::move(input), trace);
    input.erase(std::remove_if(input.begin(), input.end(), [](const Spanset& s) { return s.spans.empty(); }),
                input.end());
    if (input.empty()) break;
  }
  // Spansets in order of their first span; ties keep the pipeline's order.
  std::stable_sort(input.begin(), input.end(),
                   [](const Spanset& a, const Spanset& b) { return a.spans.front() < b.spans.front(); });
  return input;
}

std::vector<Spanset> RunQuery(const Query& query, const TraceView& trace) {
  if (trace.spans.empty()) return {};
  std::vector<Spanset> start(1);
  start[0].spans.resize(trace.spans.size());
  for (uint32_t i = 0; i < trace.spans.size(); ++i) start[0].spans[i] = i;
  return RunPipeline(query.pipeline(), std::move(start), trace);
}

// The value a result span shows for an attribute: event and link attributes from the first
// event (link) that has them.
Value OutputValue(const Attribute& attribute, const TraceView& trace, uint32_t span) {
  FieldExpr expr;
  expr.kind = FieldExpr::Kind::kAttribute;
  expr.attribute = attribute;
  return EvaluateField(expr, trace, span);
}

}  // namespace

std::vector<MatchedSpanset> EvaluatePipeline(const Query& query, const TraceView& trace) {
  std::vector<MatchedSpanset> out;
  for (Spanset& spanset : RunQuery(query, trace)) out.push_back({std::move(spanset.spans)});
  return out;
}

std::vector<ResultSpanset> EvaluateSearch(const Query& query, const TraceView& trace) {
  std::vector<ResultSpanset> out;
  const std::vector<Attribute>& shown = query.output_attributes();
  for (Spanset& spanset : RunQuery(query, trace)) {
    ResultSpanset result;
    result.attributes = std::move(spanset.attributes);
    result.spans.reserve(spanset.spans.size());
    for (uint32_t s : spanset.spans) {
      ResultSpan span;
      span.index = s;
      for (const Attribute& attribute : shown) {
        Value value = OutputValue(attribute, trace, s);
        if (!value.IsNil()) span.attributes.push_back({AttributeResultKey(attribute), ValueToAnyValue(value)});
      }
      result.spans.push_back(std::move(span));
    }
    out.push_back(std::move(result));
  }
  return out;
}

}  // namespace tracery::traceql
