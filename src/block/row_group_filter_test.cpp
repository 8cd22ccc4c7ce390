// The column filter and the projected decode against brute force over the decoded spans: a
// trace with a span meeting the conditions is never skipped, a simple exact condition skips
// every trace that has no such span, projected spans equal fully decoded ones in every
// field the projection keeps, and format 2's dedicated columns select what format 1 selects
// while reading less.
#include <gtest/gtest.h>

#include <re2/re2.h>

#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <set>

#include "block/row_group.h"
#include "block/row_group_internal.h"
#include "block/span_filter.h"

namespace tracery::block {
namespace {

using Field = SpanCondition::Field;
using Op = SpanCondition::Op;
using Type = SpanCondition::Type;

otlp::AnyValue Str(std::string s) {
  otlp::AnyValue v;
  v.type = otlp::AnyValue::Type::kString;
  v.string_value = std::move(s);
  return v;
}
otlp::AnyValue Int(int64_t i) {
  otlp::AnyValue v;
  v.type = otlp::AnyValue::Type::kInt;
  v.int_value = i;
  return v;
}
otlp::AnyValue Double(double d) {
  otlp::AnyValue v;
  v.type = otlp::AnyValue::Type::kDouble;
  v.double_value = d;
  return v;
}

struct RowGroup {
  std::string bytes;
  std::map<TraceId, otlp::TracesData> traces;
};

RowGroup Build(uint32_t seed) {
  std::mt19937 rng(seed);
  RowGroup out;
  RowGroupBuilder builder(3);
  std::vector<TraceId> ids;
  for (int t = 0; t < 200; ++t) {
    TraceId id;
    for (auto& b : id.bytes) b = uint8_t(rng());
    ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  for (const TraceId& id : ids) {
    otlp::TracesData data;
    for (int r = 0, resources = 1 + int(rng() % 3); r < resources; ++r) {
      otlp::ResourceSpans& rs = data.resource_spans.emplace_back();
      rs.resource.attributes.push_back({"service.name", Str("svc-" + std::to_string(rng() % 5))});
      if (rng() % 3 == 0) rs.resource.attributes.push_back({"region", Str(rng() % 2 ? "eu" : "us")});
      otlp::ScopeSpans& ss = rs.scope_spans.emplace_back();
      ss.scope.name = "lib";
      for (int s = 0, spans = 1 + int(rng() % 6); s < spans; ++s) {
        otlp::Span& span = ss.spans.emplace_back();
        span.trace_id.assign(id.View());
        span.span_id = std::string(8, char(1 + s + r * 8));
        span.name = "op-" + std::to_string(rng() % 7);
        span.kind = otlp::SpanKind(rng() % 6);
        span.status_code = otlp::StatusCode(rng() % 3);
        if (span.status_code == otlp::StatusCode::kError) span.status_message = "failed " + std::to_string(rng() % 3);
        span.start_time_unix_nano = 1'700'000'000'000'000'000ull + rng() % 1'000'000;
        span.end_time_unix_nano = span.start_time_unix_nano + uint64_t(rng() % 2'000'000'000);
        if (rng() % 2) span.attributes.push_back({"http.status_code", Int(int64_t(200 + 100 * (rng() % 4)))});
        if (rng() % 3 == 0) span.attributes.push_back({"ratio", Double(double(rng() % 100) / 10)});
        if (rng() % 4 == 0) span.attributes.push_back({"region", Str(rng() % 2 ? "eu" : "ap")});
        if (rng() % 5 == 0) {
          otlp::AnyValue list;
          list.type = otlp::AnyValue::Type::kArray;
          list.array_values = {Str("a"), Str("b")};
          span.attributes.push_back({"tags", list});
        }
        if (rng() % 4 == 0) {
          otlp::Event& event = span.events.emplace_back();
          event.name = "retry";
          event.time_unix_nano = span.start_time_unix_nano + 5;
          event.attributes.push_back({"attempt", Int(2)});
        }
        if (rng() % 6 == 0) {
          otlp::Link& link = span.links.emplace_back();
          link.trace_id = std::string(16, '\x07');
          link.span_id = std::string(8, '\x08');
        }
      }
    }
    EXPECT_TRUE(builder.AddTrace(id, otlp::EncodeTracesData(data)).ok());
    out.traces[id] = std::move(data);
  }
  RowGroupStats stats;
  out.bytes = builder.Finish(stats);
  return out;
}

const otlp::AnyValue* Find(const otlp::Attributes& attributes, const std::string& key) {
  for (const auto& kv : attributes)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

// Exact truth of one condition on a span, for the conditions the tests use.
bool Holds(const SpanCondition& c, const otlp::Span& span, const otlp::Resource& resource) {
  auto compare_value = [&](const otlp::AnyValue* v) {
    if (!v) return false;
    if (c.type == Type::kString && v->type == otlp::AnyValue::Type::kString) {
      if (c.op == Op::kRegex) return re2::RE2::FullMatch(v->string_value, *c.regex);
      return c.op == Op::kEqual ? v->string_value == c.string_value : v->string_value != c.string_value;
    }
    if (c.type == Type::kInt && v->type == otlp::AnyValue::Type::kInt) {
      switch (c.op) {
        case Op::kEqual: return v->int_value == c.int_value;
        case Op::kNotEqual: return v->int_value != c.int_value;
        case Op::kGreater: return v->int_value > c.int_value;
        default: return true;
      }
    }
    if (c.type == Type::kFloat && v->type == otlp::AnyValue::Type::kDouble) return v->double_value >= c.float_value;
    return false;
  };
  switch (c.field) {
    case Field::kName: return c.op == Op::kRegex ? re2::RE2::FullMatch(span.name, *c.regex) : span.name == c.string_value;
    case Field::kStatus: return int64_t(span.status_code) == c.int_value;
    case Field::kKind: return c.op == Op::kEqual ? int64_t(span.kind) == c.int_value : int64_t(span.kind) != c.int_value;
    case Field::kDuration: return int64_t(span.end_time_unix_nano - span.start_time_unix_nano) > c.int_value;
    case Field::kSpanAttribute: return compare_value(Find(span.attributes, c.key));
    case Field::kResourceAttribute: return compare_value(Find(resource.attributes, c.key));
    case Field::kAnyAttribute: {
      const otlp::AnyValue* own = Find(span.attributes, c.key);
      return compare_value(own ? own : Find(resource.attributes, c.key));
    }
  }
  return false;
}

std::set<TraceId> BruteForce(const RowGroup& group, const SpanFilter& filter) {
  std::set<TraceId> out;
  for (const auto& [id, data] : group.traces)
    for (const auto& rs : data.resource_spans)
      for (const auto& ss : rs.scope_spans)
        for (const auto& span : ss.spans) {
          bool all = true;
          for (const auto& c : filter.all_of) all = all && Holds(c, span, rs.resource);
          if (all) out.insert(id);
        }
  return out;
}

std::set<TraceId> Scanned(const RowGroup& group, const SpanFilter& filter) {
  std::set<TraceId> out;
  Status status = ScanRowGroupProjected(group.bytes, filter, Projection{false, false, false, false},
                                        [&](const TraceId& id, const std::vector<DecodedSpan>&, size_t, const RowGroupTables&) {
                                          out.insert(id);
                                          return true;
                                        });
  EXPECT_TRUE(status.ok()) << status.ToString();
  return out;
}

SpanCondition Condition(Field field, Op op, std::string key = "") {
  SpanCondition c;
  c.field = field;
  c.op = op;
  c.key = std::move(key);
  return c;
}

TEST(RowGroupFilterTest, ExactConditionsSelectExactlyTheTracesWithAMatchingSpan) {
  RowGroup group = Build(7);
  std::vector<SpanFilter> filters;
  auto add = [&](std::vector<SpanCondition> all_of) { filters.push_back(SpanFilter{std::move(all_of)}); };
  SpanCondition name = Condition(Field::kName, Op::kEqual);
  name.string_value = "op-3";
  add({name});
  SpanCondition missing_name = name;
  missing_name.string_value = "no-such-op";
  add({missing_name});
  SpanCondition status = Condition(Field::kStatus, Op::kEqual);
  status.type = Type::kInt;
  status.int_value = int64_t(otlp::StatusCode::kError);
  add({status});
  SpanCondition code = Condition(Field::kSpanAttribute, Op::kEqual, "http.status_code");
  code.type = Type::kInt;
  code.int_value = 500;
  add({code});
  add({code, status, name});
  SpanCondition not_code = code;
  not_code.op = Op::kNotEqual;  // false where the attribute is missing
  add({not_code});
  SpanCondition above = code;
  above.op = Op::kGreater;
  above.int_value = 300;
  add({above});
  SpanCondition region = Condition(Field::kResourceAttribute, Op::kEqual, "region");
  region.string_value = "eu";
  add({region});
  SpanCondition any_region = Condition(Field::kAnyAttribute, Op::kEqual, "region");
  any_region.string_value = "ap";  // only ever on spans
  add({any_region});
  SpanCondition slow = Condition(Field::kDuration, Op::kGreater);
  slow.type = Type::kInt;
  slow.int_value = 1'900'000'000;
  add({slow});
  SpanCondition kind = Condition(Field::kKind, Op::kNotEqual);
  kind.type = Type::kInt;
  kind.int_value = int64_t(otlp::SpanKind::kServer);
  add({kind, slow});
  SpanCondition pattern = Condition(Field::kName, Op::kRegex);
  pattern.regex = std::make_shared<re2::RE2>("op-[12]");
  add({pattern});
  SpanCondition ratio = Condition(Field::kSpanAttribute, Op::kGreaterEqual, "ratio");
  ratio.type = Type::kFloat;
  ratio.float_value = 9.0;
  add({ratio});
  SpanCondition absent_key = Condition(Field::kSpanAttribute, Op::kEqual, "no.such.key");
  absent_key.string_value = "x";
  add({absent_key});

  size_t nonempty = 0;
  for (const SpanFilter& filter : filters) {
    std::set<TraceId> expected = BruteForce(group, filter), actual = Scanned(group, filter);
    EXPECT_EQ(actual, expected) << "filter #" << (&filter - filters.data());
    nonempty += !expected.empty() && expected.size() < group.traces.size();
  }
  EXPECT_GE(nonempty, 10u);  // the conditions do select, and not everything

  // A name the dictionary lacks rules the row group out before any span is read.
  uint64_t checked = 0;
  auto none = [](const TraceId&, const std::vector<DecodedSpan>&, size_t, const RowGroupTables&) { return true; };
  ASSERT_TRUE(ScanRowGroupProjected(group.bytes, SpanFilter{{missing_name}}, Projection{}, none, &checked).ok());
  EXPECT_EQ(checked, 0u);
  ASSERT_TRUE(ScanRowGroupProjected(group.bytes, SpanFilter{{name}}, Projection{}, none, &checked).ok());
  EXPECT_GT(checked, 0u);
}

// A skip leaves exactly the traces it names out, with and without a filter, and the traces it
// keeps arrive whole (the same spans as a scan without a skip).
TEST(RowGroupFilterTest, SkippedTracesAreLeftOutAndTheRestArriveWhole) {
  const RowGroup group = Build(11);
  auto spans_of = [&](const SpanFilter& filter, const TraceSkip& skip) {
    std::map<TraceId, std::vector<std::string>> out;
    Status status = ScanRowGroupProjected(
        group.bytes, filter, Projection{},
        [&](const TraceId& id, const std::vector<DecodedSpan>& spans, size_t count, const RowGroupTables&) {
          for (size_t i = 0; i < count; ++i) out[id].push_back(spans[i].span.span_id + spans[i].span.name);
          return true;
        },
        nullptr, skip);
    EXPECT_TRUE(status.ok()) << status.ToString();
    return out;
  };
  SpanCondition error = Condition(Field::kStatus, Op::kEqual);
  error.type = Type::kInt;
  error.int_value = int64_t(otlp::StatusCode::kError);
  for (const SpanFilter& filter : {SpanFilter{}, SpanFilter{{error}}}) {
    const auto all = spans_of(filter, nullptr);
    ASSERT_FALSE(all.empty());
    // Keep every third trace by ID, and (separately) only the last one: decoding stops early.
    std::set<TraceId> kept;
    size_t i = 0;
    for (const auto& [id, spans] : all)
      if (i++ % 3 == 0) kept.insert(id);
    const auto some = spans_of(filter, [&](const TraceEntry& entry) { return !kept.count(entry.id); });
    ASSERT_EQ(some.size(), kept.size());
    for (const auto& [id, spans] : some) EXPECT_EQ(spans, all.at(id));
    const TraceId last = all.rbegin()->first;
    const auto only_last = spans_of(filter, [&](const TraceEntry& entry) { return entry.id != last; });
    ASSERT_EQ(only_last.size(), 1u);
    EXPECT_EQ(only_last.begin()->second, all.at(last));
    EXPECT_TRUE(spans_of(filter, [](const TraceEntry&) { return true; }).empty());
  }
}

TEST(RowGroupFilterTest, UnsureComparisonsLetTheSpanThrough) {
  RowGroup group = Build(11);
  // An array attribute compared with a string: the query engine decides, the filter passes.
  SpanCondition tags = Condition(Field::kSpanAttribute, Op::kEqual, "tags");
  tags.string_value = "a";
  std::set<TraceId> with_tags;
  for (const auto& [id, data] : group.traces)
    for (const auto& rs : data.resource_spans)
      for (const auto& ss : rs.scope_spans)
        for (const auto& span : ss.spans)
          if (Find(span.attributes, "tags")) with_tags.insert(id);
  ASSERT_FALSE(with_tags.empty());
  EXPECT_EQ(Scanned(group, SpanFilter{{tags}}), with_tags);
}

TEST(RowGroupFilterTest, ProjectedSpansEqualFullyDecodedOnesInWhatTheyKeep) {
  RowGroup group = Build(13);
  for (Projection projection : {Projection{false, false, false, false}, Projection{true, false, false, true},
                                Projection{false, true, true, false}, Projection::All()}) {
    size_t traces = 0;
    Status status = ScanRowGroupProjected(
        group.bytes, SpanFilter{}, projection,
        [&](const TraceId& id, const std::vector<DecodedSpan>& spans, size_t count, const RowGroupTables& tables) {
          ++traces;
          std::map<std::string, const otlp::Span*> expected;
          std::map<std::string, std::string> expected_service;
          for (const auto& rs : group.traces.at(id).resource_spans)
            for (const auto& ss : rs.scope_spans)
              for (const auto& span : ss.spans) {
                expected[span.span_id] = &span;
                expected_service[span.span_id] = rs.resource.attributes[0].value.string_value;
              }
          EXPECT_EQ(count, expected.size());
          for (size_t i = 0; i < count; ++i) {
            const otlp::Span& got = spans[i].span;
            const otlp::Span& want = *expected.at(got.span_id);
            EXPECT_EQ(got.name, want.name);
            EXPECT_EQ(got.parent_span_id, want.parent_span_id);
            EXPECT_EQ(got.kind, want.kind);
            EXPECT_EQ(got.status_code, want.status_code);
            EXPECT_EQ(got.start_time_unix_nano, want.start_time_unix_nano);
            EXPECT_EQ(got.end_time_unix_nano, want.end_time_unix_nano);
            EXPECT_EQ(tables.resources[spans[i].resource]->attributes[0].value.string_value, expected_service[got.span_id]);
            EXPECT_EQ(got.attributes, projection.span_attributes ? want.attributes : otlp::Attributes());
            EXPECT_EQ(got.events, projection.events ? want.events : std::vector<otlp::Event>());
            EXPECT_EQ(got.links.size(), projection.links ? want.links.size() : 0u);
            EXPECT_EQ(got.status_message, projection.status_message ? want.status_message : "");
          }
          return true;
        });
    EXPECT_TRUE(status.ok()) << status.ToString();
    EXPECT_EQ(traces, group.traces.size());
  }
}

// ---- format 2: dedicated columns ------------------------------------------------------------

otlp::AnyValue Bool(bool b) {
  otlp::AnyValue v;
  v.type = otlp::AnyValue::Type::kBool;
  v.bool_value = b;
  return v;
}
otlp::AnyValue Array(std::vector<otlp::AnyValue> values) {
  otlp::AnyValue v;
  v.type = otlp::AnyValue::Type::kArray;
  v.array_values = std::move(values);
  return v;
}

// Traces whose span attributes give every kind of dedicated column: one value type per key,
// mixed scalar types, arrays under a common key, a key repeated in some spans, ints too
// large for a dedicated entry; and a rare key, which stays in the generic stream.
std::map<TraceId, otlp::TracesData> VariedTraces(uint32_t seed) {
  std::mt19937 rng(seed);
  auto chance = [&](uint32_t percent) { return rng() % 100 < percent; };
  const double doubles[] = {std::nan(""), -0.0, 0.0, 1.5, -2.25, std::numeric_limits<double>::infinity()};
  std::map<TraceId, otlp::TracesData> traces;
  for (int t = 0; t < 150; ++t) {
    TraceId id;
    for (auto& b : id.bytes) b = uint8_t(rng());
    otlp::ResourceSpans& rs = traces[id].resource_spans.emplace_back();
    rs.resource.attributes.push_back({"service.name", Str("svc-" + std::to_string(rng() % 3))});
    if (chance(30)) rs.resource.attributes.push_back({"code", Int(500)});  // for unscoped conditions
    otlp::ScopeSpans& ss = rs.scope_spans.emplace_back();
    for (int s = 0, spans = 1 + int(rng() % 6); s < spans; ++s) {
      otlp::Span& span = ss.spans.emplace_back();
      span.trace_id.assign(id.View());
      span.span_id = std::string(8, char(1 + s));
      span.name = "op-" + std::to_string(rng() % 4);
      span.start_time_unix_nano = 1'700'000'000'000'000'000ull + rng() % 1000;
      span.end_time_unix_nano = span.start_time_unix_nano + 1000;
      otlp::Attributes& a = span.attributes;
      if (chance(60)) a.push_back({"code", Int(200 + 100 * int64_t(rng() % 4) + int64_t(rng() % 4))});
      if (chance(50)) a.push_back({"route", Str("/r/" + std::to_string(rng() % 5))});
      if (chance(30)) a.push_back({"ratio", Double(doubles[rng() % 6])});
      if (chance(30)) a.push_back({"flag", Bool(rng() % 2)});
      if (chance(40)) {
        otlp::AnyValue mixed[] = {Str("301"), Int(301), Double(301.5), Bool(true), otlp::AnyValue()};
        a.push_back({"mixed", mixed[rng() % 5]});
      }
      if (chance(20)) a.push_back({"tags", Array({Str("a"), Int(3)})});
      if (chance(40)) a.push_back({"sometimes_array", chance(10) ? Array({Int(7)}) : Int(int64_t(rng() % 10))});
      if (chance(30)) {
        a.push_back({"dup", Int(int64_t(rng() % 10))});
        if (chance(30)) a.push_back({"dup", Str("x")});
      }
      if (chance(30))
        a.push_back({"huge", Int(chance(50) ? std::numeric_limits<int64_t>::max() - int64_t(rng() % 3) : int64_t(rng() % 10))});
      if (chance(2)) a.push_back({"rare", Int(int64_t(rng() % 10))});
      std::shuffle(a.begin(), a.end(), rng);
    }
  }
  return traces;
}

RowGroup BuildFrom(const std::map<TraceId, otlp::TracesData>& traces, uint32_t format_version) {
  RowGroup out;
  RowGroupBuilder builder(3, format_version);
  for (const auto& [id, data] : traces) EXPECT_TRUE(builder.AddTrace(id, otlp::EncodeTracesData(data)).ok());
  out.traces = traces;
  RowGroupStats stats;
  out.bytes = builder.Finish(stats);
  return out;
}

template <typename T>
bool Ordered(const T& value, Op op, const T& literal) {
  switch (op) {
    case Op::kEqual: return value == literal;
    case Op::kNotEqual: return value != literal;
    case Op::kLess: return value < literal;
    case Op::kLessEqual: return value <= literal;
    case Op::kGreater: return value > literal;
    case Op::kGreaterEqual: return value >= literal;
    default: return false;
  }
}

// Whether a value meets a condition as a query judges it at the least: compared only with a
// literal of its own kind (numbers with numbers). The filter must pass all of these.
bool ValueMeets(const otlp::AnyValue& v, const SpanCondition& c) {
  using T = otlp::AnyValue::Type;
  if (c.op == Op::kRegex || c.op == Op::kNotRegex)
    return v.type == T::kString && re2::RE2::FullMatch(v.string_value, *c.regex) == (c.op == Op::kRegex);
  switch (v.type) {
    case T::kString: return c.type == Type::kString && Ordered(v.string_value, c.op, c.string_value);
    case T::kInt:
      if (c.type == Type::kInt) return Ordered(v.int_value, c.op, c.int_value);
      return c.type == Type::kFloat && Ordered(double(v.int_value), c.op, c.float_value);
    case T::kDouble:
      if (c.type == Type::kInt) return Ordered(v.double_value, c.op, double(c.int_value));
      return c.type == Type::kFloat && Ordered(v.double_value, c.op, c.float_value);
    case T::kBool:
      return c.type == Type::kBool && (c.op == Op::kEqual || c.op == Op::kNotEqual) &&
             Ordered(v.bool_value, c.op, c.bool_value);
    default: return false;
  }
}

bool SpanMeets(const SpanCondition& c, const otlp::Span& span, const otlp::Resource& resource) {
  auto any_of = [&](const otlp::Attributes& attributes) {
    for (const auto& kv : attributes)
      if (kv.key == c.key && ValueMeets(kv.value, c)) return true;
    return false;
  };
  if (c.field == Field::kName) return span.name == c.string_value;
  if (c.field == Field::kAnyAttribute && any_of(resource.attributes)) return true;
  return any_of(span.attributes);
}

std::set<TraceId> Meeting(const RowGroup& group, const SpanFilter& filter) {
  std::set<TraceId> out;
  for (const auto& [id, data] : group.traces)
    for (const auto& rs : data.resource_spans)
      for (const auto& span : rs.scope_spans[0].spans) {
        bool all = true;
        for (const auto& c : filter.all_of) all = all && SpanMeets(c, span, rs.resource);
        if (all) out.insert(id);
      }
  return out;
}

std::string Describe(const SpanFilter& filter) {
  std::string out;
  for (const auto& c : filter.all_of)
    out += (c.field == Field::kAnyAttribute ? " ." : " span.") + c.key + " op" + std::to_string(int(c.op)) + " type" +
           std::to_string(int(c.type)) + " '" + c.string_value + "'/" + std::to_string(c.int_value) + "/" +
           std::to_string(c.float_value) + "/" + std::to_string(c.bool_value);
  return out;
}

// Every operator against every kind of literal, on every key of VariedTraces (scoped and
// unscoped), and a few conjunctions mixing dedicated and generic keys.
std::vector<SpanFilter> AttributeFilters() {
  std::vector<SpanCondition> literals;
  for (const char* text : {"/r/3", "301", "no such value"}) {
    SpanCondition c;
    c.string_value = text;
    literals.push_back(c);
  }
  for (int64_t number : {int64_t(301), int64_t(5), std::numeric_limits<int64_t>::max()}) {
    SpanCondition c;
    c.type = Type::kInt;
    c.int_value = number;
    literals.push_back(c);
  }
  for (double number : {1.5, 301.5, -1.0}) {
    SpanCondition c;
    c.type = Type::kFloat;
    c.float_value = number;
    literals.push_back(c);
  }
  SpanCondition yes;
  yes.type = Type::kBool;
  yes.bool_value = true;
  literals.push_back(yes);
  std::vector<SpanFilter> filters;
  for (const char* key : {"code", "route", "ratio", "flag", "mixed", "tags", "sometimes_array", "dup", "huge", "rare", "absent"})
    for (Field field : {Field::kSpanAttribute, Field::kAnyAttribute}) {
      for (Op op : {Op::kEqual, Op::kNotEqual, Op::kLess, Op::kLessEqual, Op::kGreater, Op::kGreaterEqual})
        for (SpanCondition c : literals) {
          c.field = field;
          c.op = op;
          c.key = key;
          filters.push_back({{c}});
        }
      for (Op op : {Op::kRegex, Op::kNotRegex}) {
        SpanCondition c = Condition(field, op, key);
        c.regex = std::make_shared<re2::RE2>("/r/[12]|30.*");
        filters.push_back({{c}});
      }
    }
  SpanCondition code = Condition(Field::kSpanAttribute, Op::kGreater, "code");
  code.type = Type::kInt;
  code.int_value = 300;
  SpanCondition route = Condition(Field::kSpanAttribute, Op::kEqual, "route");
  route.string_value = "/r/3";
  SpanCondition rare = Condition(Field::kSpanAttribute, Op::kLess, "rare");
  rare.type = Type::kInt;
  rare.int_value = 5;
  SpanCondition dup = Condition(Field::kSpanAttribute, Op::kEqual, "dup");
  dup.type = Type::kInt;
  dup.int_value = 3;
  SpanCondition name = Condition(Field::kName, Op::kEqual);
  name.string_value = "op-1";
  filters.push_back({{code, route}});
  filters.push_back({{code, rare}});
  filters.push_back({{name, dup, code}});
  return filters;
}

TEST(RowGroupFilterTest, DedicatedColumnsSelectWhatFormatOneSelects) {
  auto traces = VariedTraces(3);
  RowGroup v1 = BuildFrom(traces, 1), v2 = BuildFrom(traces, 2);
  internal::RowGroupDecoder decoder;
  ASSERT_TRUE(decoder.Open(v2.bytes).ok());
  std::set<std::string> dedicated;
  for (uint32_t key : decoder.dedicated_keys()) dedicated.emplace(decoder.dictionary()[key]);
  EXPECT_EQ(dedicated, (std::set<std::string>{"code", "route", "ratio", "flag", "mixed", "tags", "sometimes_array", "dup",
                                              "huge"}));
  size_t selective = 0;
  for (const SpanFilter& filter : AttributeFilters()) {
    std::set<TraceId> meeting = Meeting(v2, filter), one = Scanned(v1, filter), two = Scanned(v2, filter);
    EXPECT_TRUE(std::includes(two.begin(), two.end(), meeting.begin(), meeting.end())) << Describe(filter);
    // A string the row group lacks rules it out where the key holds no array: format 1 knows
    // that of the whole row group only, format 2 of each dedicated key.
    if (filter.all_of[0].string_value != "no such value") {
      EXPECT_EQ(two, one) << Describe(filter);
    }
    selective += !two.empty() && two.size() < traces.size();
  }
  EXPECT_GT(selective, 150u);
}

// Which columns MarkCandidates decompressed for a filter.
struct ColumnsRead {
  bool generic = false, dictionary = false;
};
ColumnsRead ReadFor(const RowGroup& group, const SpanFilter& filter) {
  internal::RowGroupDecoder decoder;
  std::vector<bool> wanted;
  internal::AddFilterColumns(filter, wanted);
  EXPECT_TRUE(decoder.Open(group.bytes, &wanted).ok());
  std::vector<TraceEntry> traces;
  std::vector<bool> candidate;
  EXPECT_TRUE(internal::MarkCandidates(decoder, filter, traces, candidate, nullptr).ok());
  ColumnsRead read;
  for (uint32_t k = 0; k < internal::kAttributeColumns; ++k)
    read.generic |= decoder.loaded(internal::AttributeColumn(internal::kSpanAttributes, k));
  read.dictionary = decoder.loaded(internal::kDictionary);
  return read;
}

TEST(RowGroupFilterTest, DedicatedKeysAloneDoNotDecompressTheGenericStream) {
  auto traces = VariedTraces(5);
  RowGroup v1 = BuildFrom(traces, 1), v2 = BuildFrom(traces, 2);
  auto condition = [](const char* key, Type type) {
    SpanCondition c = Condition(Field::kSpanAttribute, Op::kEqual, key);
    c.type = type;
    c.int_value = 301;
    c.string_value = "/r/3";
    return c;
  };
  SpanFilter number{{condition("code", Type::kInt)}};
  ColumnsRead read = ReadFor(v2, number);
  EXPECT_FALSE(read.generic);
  EXPECT_FALSE(read.dictionary);  // a number needs no dictionary either
  read = ReadFor(v2, SpanFilter{{condition("code", Type::kInt), condition("route", Type::kString)}});
  EXPECT_FALSE(read.generic);
  EXPECT_TRUE(read.dictionary);
  SpanCondition unscoped = condition("flag", Type::kBool);
  unscoped.field = Field::kAnyAttribute;
  EXPECT_FALSE(ReadFor(v2, SpanFilter{{unscoped}}).generic);
  // A key without a column, and keys whose columns leave values in the generic stream.
  for (const char* key : {"rare", "sometimes_array", "dup", "huge"})
    EXPECT_TRUE(ReadFor(v2, SpanFilter{{condition(key, Type::kInt)}}).generic) << key;
  EXPECT_TRUE(ReadFor(v1, number).generic);
}

}  // namespace
}  // namespace tracery::block
