// Unit tests of the OTLP wire codec, the per-trace splitter and the JSON mapping. The
// protobuf classes generated from the same .proto files serve as an independent reference.
#include <gtest/gtest.h>
#include <google/protobuf/util/message_differencer.h>

#include <cmath>
#include <functional>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otlp/json.h"
#include "otlp/model.h"
#include "otlp/split.h"
#include "otlp/wire.h"

namespace tracery::otlp {
namespace {

namespace pbc = opentelemetry::proto::common::v1;
namespace pbr = opentelemetry::proto::resource::v1;
namespace pbt = opentelemetry::proto::trace::v1;
using Request = opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;
using google::protobuf::util::MessageDifferencer;

// ---- building requests with the generated classes ---------------------------------------------

std::string TraceIdBytes(int n) {
  std::string id(16, '\0');
  id[0] = char(0xa0 + n);
  id[15] = char(n + 1);
  id[7] = char(n * 37);
  return id;
}

std::string SpanIdBytes(int n) {
  std::string id(8, '\0');
  id[0] = char(0x50);
  id[6] = char(n >> 8);
  id[7] = char(n + 1);
  return id;
}

// Every AnyValue shape: scalars, bytes with NUL and 0xff, arrays of arrays, lists of lists.
void AddRichAttributes(google::protobuf::RepeatedPtrField<pbc::KeyValue>* attributes, int seed) {
  auto add = [&](const std::string& key) {
    pbc::KeyValue* kv = attributes->Add();
    kv->set_key(key);
    return kv->mutable_value();
  };
  add("str")->set_string_value("value-" + std::to_string(seed) + " \"quoted\" ünïcødé");
  add("empty.str")->set_string_value("");
  add("bool.true")->set_bool_value(true);
  add("bool.false")->set_bool_value(false);
  add("int")->set_int_value(int64_t(seed) * 1000003 - 77);
  add("int.min")->set_int_value(std::numeric_limits<int64_t>::min());
  add("int.max")->set_int_value(std::numeric_limits<int64_t>::max());
  add("double")->set_double_value(-1.25 * seed + 0.5);
  add("double.inf")->set_double_value(std::numeric_limits<double>::infinity());
  add("bytes")->set_bytes_value(std::string("\x00\xff\x01", 3) + " bytes");
  pbc::AnyValue* array = add("array");
  auto* values = array->mutable_array_value();
  values->add_values()->set_string_value("a");
  values->add_values()->set_int_value(-1);
  auto* inner = values->add_values()->mutable_array_value();
  inner->add_values()->set_double_value(2.5);
  auto* deep = inner->add_values()->mutable_kvlist_value()->add_values();
  deep->set_key("deep");
  deep->mutable_value();
  inner->add_values()->set_bytes_value(std::string("\x00", 1));
  values->add_values();  // an empty AnyValue inside an array
  pbc::AnyValue* kvlist = add("kvlist");
  auto* list = kvlist->mutable_kvlist_value();
  auto* first = list->add_values();
  first->set_key("k1");
  first->mutable_value()->set_bool_value(true);
  auto* second = list->add_values();
  second->set_key("k2");
  auto* nested = second->mutable_value()->mutable_kvlist_value()->add_values();
  nested->set_key("k3");
  nested->mutable_value()->mutable_array_value()->add_values()->set_string_value("x");
  add("array.empty")->mutable_array_value();
  add("kvlist.empty")->mutable_kvlist_value();
  add("no.value");  // present, holding no value
}

struct SpanPlace {
  int resource, scope;
  const pbt::Span* span;
};

// Three resources with two scopes each; spans of `traces` traces interleaved across all of them.
Request RichRequest(int traces, int spans_per_scope, int first_span = 0, int trace_offset = 0) {
  Request request;
  int span_number = first_span;
  for (int r = 0; r < 3; ++r) {
    pbt::ResourceSpans* rs = request.add_resource_spans();
    auto* resource = rs->mutable_resource();
    auto* service = resource->add_attributes();
    service->set_key("service.name");
    service->mutable_value()->set_string_value("service-" + std::to_string(r));
    if (r == 1) AddRichAttributes(resource->mutable_attributes(), 100 + r);
    resource->set_dropped_attributes_count(r);
    if (r != 2) rs->set_schema_url("https://opentelemetry.io/schemas/1." + std::to_string(r));
    for (int s = 0; s < 2; ++s) {
      pbt::ScopeSpans* ss = rs->add_scope_spans();
      auto* scope = ss->mutable_scope();
      scope->set_name("scope-" + std::to_string(r) + "-" + std::to_string(s));
      if (s == 0) scope->set_version("1.2.3");
      if (s == 1) {
        auto* kv = scope->add_attributes();
        kv->set_key("scope.attr");
        kv->mutable_value()->set_int_value(s);
        scope->set_dropped_attributes_count(3);
        ss->set_schema_url("scope-schema");
      }
      for (int i = 0; i < spans_per_scope; ++i, ++span_number) {
        pbt::Span* span = ss->add_spans();
        int trace = trace_offset + (span_number + r + s) % traces;
        span->set_trace_id(TraceIdBytes(trace));
        span->set_span_id(SpanIdBytes(span_number));
        if (span_number % 3 != 0) span->set_parent_span_id(SpanIdBytes(span_number - 1));
        if (span_number % 4 == 1) span->set_trace_state("vendor=value,other=1");
        span->set_flags(span_number % 2 ? 0x101 : 0);
        span->set_name("op \"" + std::to_string(span_number) + "\"\n");
        span->set_kind(pbt::Span::SpanKind(span_number % 6));
        span->set_start_time_unix_nano(1'700'000'000'000'000'000ull + uint64_t(span_number) * 1000);
        span->set_end_time_unix_nano(1'700'000'000'000'000'000ull + uint64_t(span_number) * 1000 + 500 + span_number);
        if (span_number % 2 == 0) AddRichAttributes(span->mutable_attributes(), span_number);
        span->set_dropped_attributes_count(span_number % 3);
        for (int e = 0; e < span_number % 3; ++e) {
          auto* event = span->add_events();
          event->set_time_unix_nano(1'700'000'000'000'000'000ull + uint64_t(span_number) * 1000 + uint64_t(e));
          event->set_name("event-" + std::to_string(e));
          auto* kv = event->add_attributes();
          kv->set_key("event.attr");
          kv->mutable_value()->set_string_value("e" + std::to_string(e));
          event->set_dropped_attributes_count(uint32_t(e));
        }
        span->set_dropped_events_count(span_number % 5);
        if (span_number % 4 == 2) {
          auto* link = span->add_links();
          link->set_trace_id(TraceIdBytes(99));
          link->set_span_id(SpanIdBytes(9999));
          link->set_trace_state("linked=1");
          AddRichAttributes(link->mutable_attributes(), span_number + 1);
          link->set_dropped_attributes_count(2);
          link->set_flags(1);
        }
        span->set_dropped_links_count(span_number % 2);
        if (span_number % 3 == 1) {
          span->mutable_status()->set_code(pbt::Status::STATUS_CODE_ERROR);
          span->mutable_status()->set_message("boom: \"failed\"");
        } else if (span_number % 3 == 2) {
          span->mutable_status()->set_code(pbt::Status::STATUS_CODE_OK);
        }
      }
    }
  }
  return request;
}

std::map<std::string, SpanPlace> SpansById(const Request& request) {
  std::map<std::string, SpanPlace> out;
  for (int r = 0; r < request.resource_spans_size(); ++r)
    for (int s = 0; s < request.resource_spans(r).scope_spans_size(); ++s)
      for (const auto& span : request.resource_spans(r).scope_spans(s).spans()) out[span.span_id()] = {r, s, &span};
  return out;
}

// ---- comparing the model with the generated classes -------------------------------------------

void ExpectSame(const pbc::AnyValue& want, const AnyValue& got, const std::string& at);

void ExpectSame(const google::protobuf::RepeatedPtrField<pbc::KeyValue>& want, const Attributes& got,
                const std::string& at) {
  ASSERT_EQ(size_t(want.size()), got.size()) << at;
  for (int i = 0; i < want.size(); ++i) {
    EXPECT_EQ(want[i].key(), got[size_t(i)].key) << at;
    ExpectSame(want[i].value(), got[size_t(i)].value, at + "." + want[i].key());
  }
}

void ExpectSame(const pbc::AnyValue& want, const AnyValue& got, const std::string& at) {
  using T = AnyValue::Type;
  switch (want.value_case()) {
    case pbc::AnyValue::kStringValue:
      EXPECT_EQ(got.type, T::kString) << at;
      EXPECT_EQ(got.string_value, want.string_value()) << at;
      break;
    case pbc::AnyValue::kBoolValue:
      EXPECT_EQ(got.type, T::kBool) << at;
      EXPECT_EQ(got.bool_value, want.bool_value()) << at;
      break;
    case pbc::AnyValue::kIntValue:
      EXPECT_EQ(got.type, T::kInt) << at;
      EXPECT_EQ(got.int_value, want.int_value()) << at;
      break;
    case pbc::AnyValue::kDoubleValue: {
      EXPECT_EQ(got.type, T::kDouble) << at;
      double w = want.double_value();
      EXPECT_EQ(std::memcmp(&w, &got.double_value, 8), 0) << at << ": " << w << " vs " << got.double_value;
      break;
    }
    case pbc::AnyValue::kBytesValue:
      EXPECT_EQ(got.type, T::kBytes) << at;
      EXPECT_EQ(got.string_value, want.bytes_value()) << at;
      break;
    case pbc::AnyValue::kArrayValue:
      EXPECT_EQ(got.type, T::kArray) << at;
      ASSERT_EQ(size_t(want.array_value().values_size()), got.array_values.size()) << at;
      for (int i = 0; i < want.array_value().values_size(); ++i)
        ExpectSame(want.array_value().values(i), got.array_values[size_t(i)], at + "[" + std::to_string(i) + "]");
      break;
    case pbc::AnyValue::kKvlistValue:
      EXPECT_EQ(got.type, T::kKvList) << at;
      ExpectSame(want.kvlist_value().values(), got.kvlist_values, at);
      break;
    case pbc::AnyValue::VALUE_NOT_SET:
      EXPECT_EQ(got.type, T::kEmpty) << at;
      break;
  }
}

void ExpectSame(const pbr::Resource& want, const Resource& got, const std::string& at) {
  ExpectSame(want.attributes(), got.attributes, at + ".resource");
  EXPECT_EQ(want.dropped_attributes_count(), got.dropped_attributes_count) << at;
}

void ExpectSame(const pbc::InstrumentationScope& want, const Scope& got, const std::string& at) {
  EXPECT_EQ(want.name(), got.name) << at;
  EXPECT_EQ(want.version(), got.version) << at;
  ExpectSame(want.attributes(), got.attributes, at + ".scope");
  EXPECT_EQ(want.dropped_attributes_count(), got.dropped_attributes_count) << at;
}

void ExpectSame(const pbt::Span& want, const Span& got, const std::string& at) {
  EXPECT_EQ(want.trace_id(), got.trace_id) << at;
  EXPECT_EQ(want.span_id(), got.span_id) << at;
  EXPECT_EQ(want.trace_state(), got.trace_state) << at;
  EXPECT_EQ(want.parent_span_id(), got.parent_span_id) << at;
  EXPECT_EQ(want.flags(), got.flags) << at;
  EXPECT_EQ(want.name(), got.name) << at;
  EXPECT_EQ(int(want.kind()), int(got.kind)) << at;
  EXPECT_EQ(want.start_time_unix_nano(), got.start_time_unix_nano) << at;
  EXPECT_EQ(want.end_time_unix_nano(), got.end_time_unix_nano) << at;
  ExpectSame(want.attributes(), got.attributes, at + ".attributes");
  EXPECT_EQ(want.dropped_attributes_count(), got.dropped_attributes_count) << at;
  ASSERT_EQ(size_t(want.events_size()), got.events.size()) << at;
  for (int i = 0; i < want.events_size(); ++i) {
    const auto& we = want.events(i);
    const Event& ge = got.events[size_t(i)];
    EXPECT_EQ(we.time_unix_nano(), ge.time_unix_nano) << at;
    EXPECT_EQ(we.name(), ge.name) << at;
    ExpectSame(we.attributes(), ge.attributes, at + ".event");
    EXPECT_EQ(we.dropped_attributes_count(), ge.dropped_attributes_count) << at;
  }
  EXPECT_EQ(want.dropped_events_count(), got.dropped_events_count) << at;
  ASSERT_EQ(size_t(want.links_size()), got.links.size()) << at;
  for (int i = 0; i < want.links_size(); ++i) {
    const auto& wl = want.links(i);
    const Link& gl = got.links[size_t(i)];
    EXPECT_EQ(wl.trace_id(), gl.trace_id) << at;
    EXPECT_EQ(wl.span_id(), gl.span_id) << at;
    EXPECT_EQ(wl.trace_state(), gl.trace_state) << at;
    ExpectSame(wl.attributes(), gl.attributes, at + ".link");
    EXPECT_EQ(wl.dropped_attributes_count(), gl.dropped_attributes_count) << at;
    EXPECT_EQ(wl.flags(), gl.flags) << at;
  }
  EXPECT_EQ(want.dropped_links_count(), got.dropped_links_count) << at;
  EXPECT_EQ(want.status().message(), got.status_message) << at;
  EXPECT_EQ(int(want.status().code()), int(got.status_code)) << at;
}

void ExpectSame(const Request& want, const TracesData& got) {
  ASSERT_EQ(size_t(want.resource_spans_size()), got.resource_spans.size());
  for (int r = 0; r < want.resource_spans_size(); ++r) {
    const auto& wrs = want.resource_spans(r);
    const ResourceSpans& grs = got.resource_spans[size_t(r)];
    std::string at = "rs" + std::to_string(r);
    ExpectSame(wrs.resource(), grs.resource, at);
    EXPECT_EQ(wrs.schema_url(), grs.schema_url) << at;
    ASSERT_EQ(size_t(wrs.scope_spans_size()), grs.scope_spans.size()) << at;
    for (int s = 0; s < wrs.scope_spans_size(); ++s) {
      const auto& wss = wrs.scope_spans(s);
      const ScopeSpans& gss = grs.scope_spans[size_t(s)];
      std::string sat = at + ".ss" + std::to_string(s);
      ExpectSame(wss.scope(), gss.scope, sat);
      EXPECT_EQ(wss.schema_url(), gss.schema_url) << sat;
      ASSERT_EQ(size_t(wss.spans_size()), gss.spans.size()) << sat;
      for (int i = 0; i < wss.spans_size(); ++i) ExpectSame(wss.spans(i), gss.spans[size_t(i)], sat + ".span" + std::to_string(i));
    }
  }
}

void ExpectModelsEqual(const TracesData& want, const TracesData& got) {
  ASSERT_EQ(want.resource_spans.size(), got.resource_spans.size());
  for (size_t r = 0; r < want.resource_spans.size(); ++r) {
    const auto& w = want.resource_spans[r];
    const auto& g = got.resource_spans[r];
    EXPECT_TRUE(w.resource == g.resource) << "resource " << r;
    EXPECT_EQ(w.schema_url, g.schema_url) << r;
    ASSERT_EQ(w.scope_spans.size(), g.scope_spans.size()) << r;
    for (size_t s = 0; s < w.scope_spans.size(); ++s) {
      EXPECT_TRUE(w.scope_spans[s].scope == g.scope_spans[s].scope) << r << "/" << s;
      EXPECT_EQ(w.scope_spans[s].schema_url, g.scope_spans[s].schema_url) << r << "/" << s;
      ASSERT_EQ(w.scope_spans[s].spans.size(), g.scope_spans[s].spans.size()) << r << "/" << s;
      for (size_t i = 0; i < w.scope_spans[s].spans.size(); ++i)
        EXPECT_TRUE(w.scope_spans[s].spans[i] == g.scope_spans[s].spans[i])
            << "span " << r << "/" << s << "/" << i << " (" << w.scope_spans[s].spans[i].name << ")";
    }
  }
}

// Raw wire helpers for hand-made malformed messages.
std::string Field(uint32_t number, std::string_view body) {
  std::string out;
  PutBytesField(out, number, body);
  return out;
}
std::string VarintField(uint32_t number, uint64_t v) {
  std::string out;
  PutTag(out, number, kVarint);
  PutVarint(out, v);
  return out;
}
// Wraps encoded span bytes into a whole request: request{rs{scope_spans{span}}}.
std::string RequestWithSpan(std::string_view span) { return Field(1, Field(2, Field(2, span))); }

pbt::Span ValidSpan() {
  pbt::Span span;
  span.set_trace_id(TraceIdBytes(1));
  span.set_span_id(SpanIdBytes(1));
  span.set_name("valid");
  span.set_start_time_unix_nano(10);
  span.set_end_time_unix_nano(20);
  return span;
}

// ---- DecodeTracesData / EncodeTracesData ------------------------------------------------------

TEST(OtlpDecodeTest, DecodesEveryFieldLikeTheGeneratedClasses) {
  Request request = RichRequest(4, 6);
  std::string bytes = request.SerializeAsString();
  TracesData data;
  ASSERT_TRUE(DecodeTracesData(bytes, data).ok());
  EXPECT_EQ(data.SpanCount(), 3u * 2 * 6);
  ExpectSame(request, data);
}

TEST(OtlpDecodeTest, EmptyInputIsAnEmptyRequest) {
  TracesData data;
  ASSERT_TRUE(DecodeTracesData("", data).ok());
  EXPECT_TRUE(data.resource_spans.empty());
  EXPECT_EQ(data.SpanCount(), 0u);
}

TEST(OtlpDecodeTest, UnknownFieldsAreSkipped) {
  std::string span = ValidSpan().SerializeAsString() + VarintField(100, 7) + Field(101, "ignored");
  std::string request = RequestWithSpan(span) + Field(9, "top-level unknown");
  TracesData data;
  ASSERT_TRUE(DecodeTracesData(request, data).ok());
  ASSERT_EQ(data.SpanCount(), 1u);
  EXPECT_EQ(data.resource_spans[0].scope_spans[0].spans[0].name, "valid");
  SplitRequest split;
  ASSERT_TRUE(SplitByTrace(request, split).ok());
  EXPECT_EQ(split.span_count, 1u);
}

TEST(OtlpEncodeTest, EncodedModelParsesBackToTheSameMessage) {
  Request request = RichRequest(4, 6);
  TracesData data;
  ASSERT_TRUE(DecodeTracesData(request.SerializeAsString(), data).ok());
  std::string encoded = EncodeTracesData(data);
  Request reparsed;
  ASSERT_TRUE(reparsed.ParseFromString(encoded));
  std::string report;
  MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&report);
  EXPECT_TRUE(differencer.Compare(request, reparsed)) << report;
  // Proto3 encoders agree byte for byte on a message with set fields in field order, except
  // where we write fields in a different order; the serialized re-parse must match exactly.
  EXPECT_EQ(reparsed.SerializeAsString(), request.SerializeAsString());
  TracesData again;
  ASSERT_TRUE(DecodeTracesData(encoded, again).ok());
  ExpectModelsEqual(data, again);
}

TEST(OtlpEncodeTest, ResourceScopeAndAttributeHelpersRoundTrip) {
  Request request = RichRequest(1, 1);
  TracesData data;
  ASSERT_TRUE(DecodeTracesData(request.SerializeAsString(), data).ok());
  const Resource& resource = data.resource_spans[1].resource;
  std::string encoded;
  EncodeResource(resource, encoded);
  pbr::Resource pb_resource;
  ASSERT_TRUE(pb_resource.ParseFromString(encoded));
  EXPECT_TRUE(MessageDifferencer::Equals(pb_resource, request.resource_spans(1).resource()));
  Resource back;
  ASSERT_TRUE(DecodeResource(encoded, back).ok());
  EXPECT_TRUE(back == resource);

  const Scope& scope = data.resource_spans[0].scope_spans[1].scope;
  encoded.clear();
  EncodeScope(scope, encoded);
  Scope scope_back;
  ASSERT_TRUE(DecodeScope(encoded, scope_back).ok());
  EXPECT_TRUE(scope_back == scope);

  encoded.clear();
  EncodeAttributes(resource.attributes, encoded);
  Attributes attributes_back;
  ASSERT_TRUE(DecodeAttributes(encoded, attributes_back).ok());
  EXPECT_TRUE(attributes_back == resource.attributes);
  EXPECT_FALSE(DecodeAttributes(std::string("\x0a\x05", 2) + "ab", attributes_back).ok());
}

// ---- SplitByTrace ---------------------------------------------------------------------------

TEST(OtlpSplitTest, FragmentsHoldExactlyTheirTracesSpansWithResourcesAndScopes) {
  const int kTraces = 5;
  Request request = RichRequest(kTraces, 7);
  std::string bytes = request.SerializeAsString();
  auto by_id = SpansById(request);
  SplitRequest split;
  ASSERT_TRUE(SplitByTrace(bytes, split).ok());
  EXPECT_EQ(split.span_count, by_id.size());
  EXPECT_EQ(split.spans.size(), by_id.size());
  ASSERT_EQ(split.fragments.size(), size_t(kTraces));
  ASSERT_EQ(split.resources.size(), 3u);

  std::set<std::string> seen;
  size_t fragment_spans = 0;
  for (const TraceFragment& fragment : split.fragments) {
    fragment_spans += fragment.span_count;
    // The independent decoder reads the fragment as a TracesData.
    pbt::TracesData pb;
    ASSERT_TRUE(pb.ParseFromString(fragment.bytes));
    TracesData model;
    ASSERT_TRUE(DecodeTracesData(fragment.bytes, model).ok());
    EXPECT_EQ(model.SpanCount(), fragment.span_count);
    uint64_t min_start = UINT64_MAX, max_end = 0;
    for (const auto& rs : pb.resource_spans()) {
      for (const auto& ss : rs.scope_spans()) {
        EXPECT_GT(ss.spans_size(), 0);
        for (const auto& span : ss.spans()) {
          EXPECT_EQ(span.trace_id(), std::string(fragment.trace_id.View()));
          auto it = by_id.find(span.span_id());
          ASSERT_NE(it, by_id.end());
          EXPECT_TRUE(seen.insert(span.span_id()).second) << "span in two fragments";
          const SpanPlace& place = it->second;
          EXPECT_TRUE(MessageDifferencer::Equals(span, *place.span));
          const auto& original_rs = request.resource_spans(place.resource);
          const auto& original_ss = original_rs.scope_spans(place.scope);
          EXPECT_TRUE(MessageDifferencer::Equals(rs.resource(), original_rs.resource()));
          EXPECT_EQ(rs.schema_url(), original_rs.schema_url());
          EXPECT_TRUE(MessageDifferencer::Equals(ss.scope(), original_ss.scope()));
          EXPECT_EQ(ss.schema_url(), original_ss.schema_url());
          min_start = std::min<uint64_t>(min_start, span.start_time_unix_nano());
          max_end = std::max<uint64_t>(max_end, span.end_time_unix_nano());
        }
      }
    }
    EXPECT_EQ(fragment.min_start_unix_nano, min_start);
    EXPECT_EQ(fragment.max_end_unix_nano, max_end);
  }
  EXPECT_EQ(fragment_spans, by_id.size());
  EXPECT_EQ(seen.size(), by_id.size());

  // Every span summary describes its span.
  for (const SpanSummary& summary : split.spans) {
    auto it = by_id.find(std::string(summary.span_id));
    ASSERT_NE(it, by_id.end());
    const pbt::Span& span = *it->second.span;
    EXPECT_EQ(summary.parent_span_id, span.parent_span_id());
    EXPECT_EQ(summary.name, span.name());
    EXPECT_EQ(summary.kind, uint8_t(span.kind()));
    EXPECT_EQ(summary.status_code, uint8_t(span.status().code()));
    EXPECT_EQ(summary.start_unix_nano, span.start_time_unix_nano());
    EXPECT_EQ(summary.end_unix_nano, span.end_time_unix_nano());
    EXPECT_EQ(summary.resource_index, uint32_t(it->second.resource));
    ASSERT_LT(summary.fragment_index, split.fragments.size());
    EXPECT_EQ(std::string(split.fragments[summary.fragment_index].trace_id.View()), span.trace_id());
    // `encoded` is the whole spans field, tag included.
    pbt::ScopeSpans holder;
    ASSERT_TRUE(holder.ParseFromString(std::string(summary.encoded)));
    ASSERT_EQ(holder.spans_size(), 1);
    EXPECT_TRUE(MessageDifferencer::Equals(holder.spans(0), span));
  }
  for (size_t r = 0; r < split.resources.size(); ++r) {
    pbr::Resource resource;
    ASSERT_TRUE(resource.ParseFromString(std::string(split.resources[r])));
    EXPECT_TRUE(MessageDifferencer::Equals(resource, request.resource_spans(int(r)).resource()));
  }
}

TEST(OtlpSplitTest, FragmentsOfOneTraceFromTwoRequestsConcatenate) {
  Request first = RichRequest(3, 4, 0, 0);
  Request second = RichRequest(3, 4, 1000, 1);  // traces 1..3: traces 1 and 2 are shared
  SplitRequest a, b;
  ASSERT_TRUE(SplitByTrace(first.SerializeAsString(), a).ok());
  ASSERT_TRUE(SplitByTrace(second.SerializeAsString(), b).ok());
  auto spans_a = SpansById(first), spans_b = SpansById(second);
  TraceId shared = TraceId::FromBytes(TraceIdBytes(2));
  std::string joined;
  size_t expected = 0;
  for (const auto& f : a.fragments)
    if (f.trace_id == shared) joined += f.bytes, expected += f.span_count;
  for (const auto& f : b.fragments)
    if (f.trace_id == shared) joined += f.bytes, expected += f.span_count;
  ASSERT_GT(expected, 0u);
  TracesData data;
  ASSERT_TRUE(DecodeTracesData(joined, data).ok());
  EXPECT_EQ(data.SpanCount(), expected);
  std::set<std::string> ids;
  for (const auto& rs : data.resource_spans)
    for (const auto& ss : rs.scope_spans)
      for (const auto& span : ss.spans) {
        EXPECT_EQ(span.trace_id, TraceIdBytes(2));
        ids.insert(span.span_id);
        const SpanPlace* place = nullptr;
        if (auto it = spans_a.find(span.span_id); it != spans_a.end()) place = &it->second;
        if (auto it = spans_b.find(span.span_id); it != spans_b.end()) place = &it->second;
        ASSERT_NE(place, nullptr);
        ExpectSame(*place->span, span, span.name);
      }
  EXPECT_EQ(ids.size(), expected);
  size_t in_sources = 0;
  for (const auto& [id, place] : spans_a) in_sources += place.span->trace_id() == TraceIdBytes(2);
  for (const auto& [id, place] : spans_b) in_sources += place.span->trace_id() == TraceIdBytes(2);
  EXPECT_EQ(in_sources, expected);
  pbt::TracesData pb;
  EXPECT_TRUE(pb.ParseFromString(joined));
}

TEST(OtlpSplitTest, StringsThatAreNotUtf8AreRefusedBytesAreNot) {
  // proto3 `string` fields must be valid UTF-8: a span name, attribute key and value, resource
  // and scope strings, status message. `bytes_value` may hold anything.
  const std::string bad = "caf\xc3";  // a truncated two-byte sequence
  const std::vector<std::pair<const char*, std::function<void(Request&)>>> cases = {
      {"span name", [&](Request& r) { r.mutable_resource_spans(0)->mutable_scope_spans(0)->mutable_spans(0)->set_name(bad); }},
      {"attribute value",
       [&](Request& r) {
         auto* kv = r.mutable_resource_spans(0)->mutable_scope_spans(0)->mutable_spans(0)->add_attributes();
         kv->set_key("k");
         kv->mutable_value()->set_string_value("\xed\xa0\x80");  // a surrogate
       }},
      {"attribute key",
       [&](Request& r) {
         auto* kv = r.mutable_resource_spans(0)->mutable_resource()->add_attributes();
         kv->set_key(bad);
         kv->mutable_value()->set_int_value(1);
       }},
      {"scope name", [&](Request& r) { r.mutable_resource_spans(0)->mutable_scope_spans(0)->mutable_scope()->set_name("\xc0\xaf"); }},
      {"status message",
       [&](Request& r) {
         r.mutable_resource_spans(0)->mutable_scope_spans(0)->mutable_spans(0)->mutable_status()->set_message("\xf5\x80\x80\x80");
       }},
      {"event name",
       [&](Request& r) { r.mutable_resource_spans(0)->mutable_scope_spans(0)->mutable_spans(0)->add_events()->set_name(bad); }},
      {"schema url", [&](Request& r) { r.mutable_resource_spans(0)->set_schema_url(bad); }},
  };
  auto base = [] {
    Request r;
    auto* span = r.add_resource_spans()->add_scope_spans()->add_spans();
    span->set_trace_id(std::string(16, '\x01'));
    span->set_span_id(std::string(8, '\x02'));
    span->set_name("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80");  // valid: é, €, a rocket
    return r;
  };
  SplitRequest split;
  ASSERT_TRUE(SplitByTrace(base().SerializeAsString(), split).ok());
  for (const auto& [what, spoil] : cases) {
    Request request = base();
    spoil(request);
    Status status = SplitByTrace(request.SerializeAsString(), split);
    EXPECT_EQ(status.code(), ::tracery::StatusCode::kInvalidArgument) << what;
    EXPECT_NE(status.message().find("UTF-8"), std::string::npos) << what << ": " << status.message();
  }
  Request binary = base();
  auto* kv = binary.mutable_resource_spans(0)->mutable_scope_spans(0)->mutable_spans(0)->add_attributes();
  kv->set_key("blob");
  kv->mutable_value()->set_bytes_value(std::string("\xff\xfe\x00\xc3", 4));
  EXPECT_TRUE(SplitByTrace(binary.SerializeAsString(), split).ok()) << "bytes_value is not a string";
}

TEST(OtlpSplitTest, EmptyRequestSplitsIntoNothing) {
  SplitRequest split;
  ASSERT_TRUE(SplitByTrace("", split).ok());
  EXPECT_TRUE(split.fragments.empty());
  EXPECT_EQ(split.span_count, 0u);
  Request request;
  request.add_resource_spans()->add_scope_spans();  // a resource and a scope with no spans
  ASSERT_TRUE(SplitByTrace(request.SerializeAsString(), split).ok());
  EXPECT_TRUE(split.fragments.empty());
}

TEST(OtlpSplitTest, ASecondSplitReusesTheOutputCleanly) {
  SplitRequest split;
  ASSERT_TRUE(SplitByTrace(RichRequest(4, 3).SerializeAsString(), split).ok());
  EXPECT_EQ(split.fragments.size(), 4u);
  ASSERT_TRUE(SplitByTrace(RichRequest(2, 1).SerializeAsString(), split).ok());
  EXPECT_EQ(split.fragments.size(), 2u);
  EXPECT_EQ(split.span_count, 6u);
  EXPECT_EQ(split.resources.size(), 3u);
}

// ---- rejections -------------------------------------------------------------------------------

Status SplitStatus(std::string_view bytes) {
  SplitRequest split;
  return SplitByTrace(bytes, split);
}

TEST(OtlpRejectTest, EveryTruncationFailsCleanly) {
  Request request;
  auto* rs = request.add_resource_spans();
  auto* kv = rs->mutable_resource()->add_attributes();
  kv->set_key("service.name");
  kv->mutable_value()->set_string_value("svc");
  auto* ss = rs->add_scope_spans();
  ss->mutable_scope()->set_name("scope");
  for (int i = 0; i < 3; ++i) {
    pbt::Span* span = ss->add_spans();
    *span = ValidSpan();
    span->set_span_id(SpanIdBytes(i));
    AddRichAttributes(span->mutable_attributes(), i);
    span->add_events()->set_name("e");
  }
  std::string bytes = request.SerializeAsString();
  ASSERT_TRUE(SplitStatus(bytes).ok());
  for (size_t length = 0; length < bytes.size(); ++length) {
    std::string_view prefix(bytes.data(), length);
    Status split = SplitStatus(prefix);
    TracesData data;
    Status decode = DecodeTracesData(prefix, data);
    if (length == 0) {
      EXPECT_TRUE(split.ok());
      EXPECT_TRUE(decode.ok());
    } else {
      EXPECT_FALSE(split.ok()) << "prefix of " << length << " bytes";
      EXPECT_EQ(split.code(), tracery::StatusCode::kInvalidArgument) << length;
      EXPECT_FALSE(decode.ok()) << "prefix of " << length << " bytes";
    }
  }
}

TEST(OtlpRejectTest, RandomGarbageNeverCrashes) {
  std::mt19937 rng(1234);
  std::string valid = RichRequest(2, 2).SerializeAsString();
  for (int round = 0; round < 3000; ++round) {
    std::string bytes;
    if (round % 2 == 0) {
      bytes.resize(rng() % 200);
      for (auto& c : bytes) c = char(rng());
    } else {
      // Mutations of a valid request reach deeper into the parsers.
      bytes = valid;
      for (int k = 0, n = 1 + int(rng() % 4); k < n; ++k) bytes[rng() % bytes.size()] = char(rng());
      if (round % 3 == 0) bytes.resize(rng() % bytes.size());
    }
    SplitRequest split;
    Status status = SplitByTrace(bytes, split);
    TracesData data;
    Status decode = DecodeTracesData(bytes, data);
    if (status.ok()) {
      // What the splitter accepts the decoder must be able to read back.
      for (const auto& fragment : split.fragments) {
        TracesData part;
        EXPECT_TRUE(DecodeTracesData(fragment.bytes, part).ok()) << "round " << round;
      }
    } else {
      EXPECT_EQ(status.code(), tracery::StatusCode::kInvalidArgument);
      EXPECT_FALSE(status.message().empty());
    }
    if (!decode.ok()) {
      EXPECT_EQ(decode.code(), tracery::StatusCode::kInvalidArgument);
    }
  }
  EXPECT_FALSE(SplitStatus(std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11)).ok());
  EXPECT_FALSE(SplitStatus(std::string("\x0a\xff\x01", 3)).ok());  // length past the end
  EXPECT_FALSE(SplitStatus(std::string("\x0b", 1)).ok());          // start-group wire type
}

void ExpectSpanRejected(const pbt::Span& span, const std::string& words) {
  std::string bytes = RequestWithSpan(span.SerializeAsString());
  Status status = SplitStatus(bytes);
  EXPECT_FALSE(status.ok()) << words;
  EXPECT_EQ(status.code(), tracery::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find(words), std::string::npos) << status.message();
}

TEST(OtlpRejectTest, InvalidIds) {
  pbt::Span span = ValidSpan();
  ASSERT_TRUE(SplitStatus(RequestWithSpan(span.SerializeAsString())).ok());

  span = ValidSpan();
  span.set_trace_id(TraceIdBytes(1).substr(0, 15));
  ExpectSpanRejected(span, "trace_id");
  span.set_trace_id(TraceIdBytes(1) + "x");
  ExpectSpanRejected(span, "trace_id");
  span.clear_trace_id();
  ExpectSpanRejected(span, "trace_id");
  span.set_trace_id(std::string(16, '\0'));
  ExpectSpanRejected(span, "trace_id");

  span = ValidSpan();
  span.set_span_id(SpanIdBytes(1).substr(0, 7));
  ExpectSpanRejected(span, "span_id");
  span.set_span_id(std::string(8, '\0'));
  ExpectSpanRejected(span, "span_id");
  span.clear_span_id();
  ExpectSpanRejected(span, "span_id");

  span = ValidSpan();
  span.set_parent_span_id("abc");
  ExpectSpanRejected(span, "parent_span_id");
  span.set_parent_span_id(std::string(9, 'p'));
  ExpectSpanRejected(span, "parent_span_id");
  span.set_parent_span_id(SpanIdBytes(7));
  EXPECT_TRUE(SplitStatus(RequestWithSpan(span.SerializeAsString())).ok());

  // One bad span anywhere fails the whole request.
  Request request = RichRequest(3, 3);
  request.mutable_resource_spans(2)->mutable_scope_spans(1)->mutable_spans(2)->set_span_id("short");
  SplitRequest split;
  EXPECT_FALSE(SplitByTrace(request.SerializeAsString(), split).ok());
}

TEST(OtlpRejectTest, WrongWireTypeForAKnownField) {
  std::string valid = ValidSpan().SerializeAsString();
  std::vector<std::pair<std::string, std::string>> cases = {
      {"span name as varint", RequestWithSpan(valid + VarintField(5, 1))},
      {"span start time as varint", RequestWithSpan(valid + VarintField(7, 1))},
      {"span kind as bytes", RequestWithSpan(valid + Field(6, "x"))},
      {"span flags as varint", RequestWithSpan(valid + VarintField(16, 1))},
      {"attribute value as varint", RequestWithSpan(valid + Field(9, Field(1, "k") + VarintField(2, 3)))},
      {"any value string as varint", RequestWithSpan(valid + Field(9, Field(1, "k") + Field(2, VarintField(1, 3))))},
      {"event as varint", RequestWithSpan(valid + VarintField(11, 3))},
      {"status code as bytes", RequestWithSpan(valid + Field(15, Field(3, "x")))},
      {"resource as varint", Field(1, VarintField(1, 5) + Field(2, Field(2, valid)))},
      {"scope spans as varint", Field(1, VarintField(2, 5))},
      {"scope as varint", Field(1, Field(2, VarintField(1, 5) + Field(2, valid)))},
      {"resource_spans as varint", VarintField(1, 5)},
  };
  for (const auto& [what, bytes] : cases) {
    Status status = SplitStatus(bytes);
    EXPECT_FALSE(status.ok()) << what;
    EXPECT_EQ(status.code(), tracery::StatusCode::kInvalidArgument) << what;
    TracesData data;
    EXPECT_FALSE(DecodeTracesData(bytes, data).ok()) << what;
  }
}

std::string NestedArrays(int depth) {
  pbc::AnyValue leaf;
  leaf.set_string_value("leaf");
  std::string value = leaf.SerializeAsString();
  for (int i = 0; i < depth; ++i) value = Field(5, Field(1, value));  // AnyValue{array_value{values}}
  return value;
}

std::string NestedKvLists(int depth) {
  pbc::AnyValue leaf;
  leaf.set_int_value(1);
  std::string value = leaf.SerializeAsString();
  for (int i = 0; i < depth; ++i) value = Field(6, Field(1, Field(1, "k") + Field(2, value)));
  return value;
}

TEST(OtlpRejectTest, DeeplyNestedValuesAreRejectedNotCrashing) {
  std::string valid = ValidSpan().SerializeAsString();
  for (const std::string& value : {NestedArrays(1000), NestedKvLists(1000), NestedArrays(5000)}) {
    std::string bytes = RequestWithSpan(valid + Field(9, Field(1, "deep") + Field(2, value)));
    Status status = SplitStatus(bytes);
    EXPECT_FALSE(status.ok());
    EXPECT_EQ(status.code(), tracery::StatusCode::kInvalidArgument);
    TracesData data;
    EXPECT_FALSE(DecodeTracesData(bytes, data).ok());
  }
  // Modest nesting is fine for both, and the decoder gets every level.
  std::string bytes = RequestWithSpan(valid + Field(9, Field(1, "deep") + Field(2, NestedArrays(8))));
  EXPECT_TRUE(SplitStatus(bytes).ok());
  TracesData data;
  ASSERT_TRUE(DecodeTracesData(bytes, data).ok());
  const AnyValue* v = &data.resource_spans[0].scope_spans[0].spans[0].attributes[0].value;
  for (int i = 0; i < 8; ++i) {
    ASSERT_EQ(v->type, AnyValue::Type::kArray) << i;
    ASSERT_EQ(v->array_values.size(), 1u);
    v = &v->array_values[0];
  }
  EXPECT_EQ(v->type, AnyValue::Type::kString);
  EXPECT_EQ(v->string_value, "leaf");
}

// ---- JSON -----------------------------------------------------------------------------------

const char* kJsonRequest = R"({
  "resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}],
                 "droppedAttributesCount": 2},
    "schemaUrl": "https://example.com/schema",
    "scopeSpans": [{
      "scope": {"name": "lib", "version": "0.1", "attributes": [{"key": "s", "value": {"boolValue": true}}]},
      "spans": [{
        "traceId": "5B8EFFF798038103D269B633813FC60C",
        "spanId": "EEE19B7EC3C1B174",
        "parentSpanId": "eee19b7ec3c1b173",
        "traceState": "a=b",
        "flags": 257,
        "name": "GET /cart",
        "kind": 2,
        "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": 1544712661000000000,
        "attributes": [
          {"key": "int.string", "value": {"intValue": "-9223372036854775808"}},
          {"key": "int.number", "value": {"intValue": 42}},
          {"key": "double", "value": {"doubleValue": 2.5}},
          {"key": "double.string", "value": {"doubleValue": "Infinity"}},
          {"key": "bytes", "value": {"bytesValue": "AP8B"}},
          {"key": "array", "value": {"arrayValue": {"values": [{"stringValue": "x"}, {"intValue": "7"}]}}},
          {"key": "kv", "value": {"kvlistValue": {"values": [{"key": "inner", "value": {"boolValue": false}}]}}},
          {"key": "empty", "value": {}}
        ],
        "droppedAttributesCount": 1,
        "events": [{"timeUnixNano": "1544712660500000000", "name": "ev",
                    "attributes": [{"key": "e", "value": {"stringValue": "v"}}], "droppedAttributesCount": 3}],
        "droppedEventsCount": 4,
        "links": [{"traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0102030405060708",
                   "traceState": "x=y", "flags": 1, "droppedAttributesCount": 5,
                   "attributes": [{"key": "l", "value": {"doubleValue": -0.5}}]}],
        "droppedLinksCount": 6,
        "status": {"message": "oops", "code": "STATUS_CODE_ERROR"}
      }, {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b175",
        "name": "named kinds",
        "kind": "SPAN_KIND_CLIENT",
        "status": {"code": 1}
      }]
    }]
  }]
})";

TEST(OtlpJsonTest, ParsesTheSpecificationShape) {
  TracesData data;
  Status status = ParseJsonRequest(kJsonRequest, data);
  ASSERT_TRUE(status.ok()) << status.ToString();
  ASSERT_EQ(data.resource_spans.size(), 1u);
  const ResourceSpans& rs = data.resource_spans[0];
  ASSERT_EQ(rs.resource.attributes.size(), 1u);
  EXPECT_EQ(rs.resource.attributes[0].key, "service.name");
  EXPECT_EQ(rs.resource.attributes[0].value.string_value, "checkout");
  EXPECT_EQ(rs.resource.dropped_attributes_count, 2u);
  EXPECT_EQ(rs.schema_url, "https://example.com/schema");
  ASSERT_EQ(rs.scope_spans.size(), 1u);
  const ScopeSpans& ss = rs.scope_spans[0];
  EXPECT_EQ(ss.scope.name, "lib");
  EXPECT_EQ(ss.scope.version, "0.1");
  ASSERT_EQ(ss.scope.attributes.size(), 1u);
  EXPECT_EQ(ss.scope.attributes[0].value.type, AnyValue::Type::kBool);
  ASSERT_EQ(ss.spans.size(), 2u);

  const Span& s = ss.spans[0];
  EXPECT_EQ(HexEncode(s.trace_id), "5b8efff798038103d269b633813fc60c");
  EXPECT_EQ(HexEncode(s.span_id), "eee19b7ec3c1b174");
  EXPECT_EQ(HexEncode(s.parent_span_id), "eee19b7ec3c1b173");
  EXPECT_EQ(s.trace_state, "a=b");
  EXPECT_EQ(s.flags, 257u);
  EXPECT_EQ(s.name, "GET /cart");
  EXPECT_EQ(s.kind, SpanKind::kServer);
  EXPECT_EQ(s.start_time_unix_nano, 1544712660000000000ull);
  EXPECT_EQ(s.end_time_unix_nano, 1544712661000000000ull);
  ASSERT_EQ(s.attributes.size(), 8u);
  EXPECT_EQ(s.attributes[0].value.type, AnyValue::Type::kInt);
  EXPECT_EQ(s.attributes[0].value.int_value, std::numeric_limits<int64_t>::min());
  EXPECT_EQ(s.attributes[1].value.int_value, 42);
  EXPECT_EQ(s.attributes[2].value.type, AnyValue::Type::kDouble);
  EXPECT_EQ(s.attributes[2].value.double_value, 2.5);
  EXPECT_TRUE(std::isinf(s.attributes[3].value.double_value));
  EXPECT_EQ(s.attributes[4].value.type, AnyValue::Type::kBytes);
  EXPECT_EQ(s.attributes[4].value.string_value, std::string("\x00\xff\x01", 3));
  ASSERT_EQ(s.attributes[5].value.type, AnyValue::Type::kArray);
  ASSERT_EQ(s.attributes[5].value.array_values.size(), 2u);
  EXPECT_EQ(s.attributes[5].value.array_values[1].int_value, 7);
  ASSERT_EQ(s.attributes[6].value.type, AnyValue::Type::kKvList);
  ASSERT_EQ(s.attributes[6].value.kvlist_values.size(), 1u);
  EXPECT_EQ(s.attributes[6].value.kvlist_values[0].key, "inner");
  EXPECT_EQ(s.attributes[6].value.kvlist_values[0].value.type, AnyValue::Type::kBool);
  EXPECT_EQ(s.attributes[7].value.type, AnyValue::Type::kEmpty);
  EXPECT_EQ(s.dropped_attributes_count, 1u);
  ASSERT_EQ(s.events.size(), 1u);
  EXPECT_EQ(s.events[0].time_unix_nano, 1544712660500000000ull);
  EXPECT_EQ(s.events[0].name, "ev");
  EXPECT_EQ(s.events[0].dropped_attributes_count, 3u);
  EXPECT_EQ(s.dropped_events_count, 4u);
  ASSERT_EQ(s.links.size(), 1u);
  EXPECT_EQ(HexEncode(s.links[0].trace_id), "0102030405060708090a0b0c0d0e0f10");
  EXPECT_EQ(HexEncode(s.links[0].span_id), "0102030405060708");
  EXPECT_EQ(s.links[0].trace_state, "x=y");
  EXPECT_EQ(s.links[0].flags, 1u);
  EXPECT_EQ(s.links[0].dropped_attributes_count, 5u);
  EXPECT_EQ(s.links[0].attributes[0].value.double_value, -0.5);
  EXPECT_EQ(s.dropped_links_count, 6u);
  EXPECT_EQ(s.status_message, "oops");
  EXPECT_EQ(s.status_code, StatusCode::kError);

  EXPECT_EQ(ss.spans[1].kind, SpanKind::kClient);
  EXPECT_EQ(ss.spans[1].status_code, StatusCode::kOk);
  EXPECT_TRUE(ss.spans[1].parent_span_id.empty());
}

TEST(OtlpJsonTest, AcceptsSnakeCaseKeys) {
  const char* json = R"({"resource_spans": [{"scope_spans": [{"spans": [{
      "trace_id": "5b8efff798038103d269b633813fc60c", "span_id": "eee19b7ec3c1b174",
      "parent_span_id": "eee19b7ec3c1b173", "trace_state": "t=1",
      "start_time_unix_nano": "10", "end_time_unix_nano": 20,
      "dropped_attributes_count": 1, "dropped_events_count": 2, "dropped_links_count": 3,
      "attributes": [{"key": "a", "value": {"string_value": "s"}}, {"key": "b", "value": {"int_value": "5"}},
                     {"key": "c", "value": {"bytes_value": "aGk="}}, {"key": "d", "value": {"double_value": 1.5}},
                     {"key": "e", "value": {"bool_value": true}},
                     {"key": "f", "value": {"array_value": {"values": []}}},
                     {"key": "g", "value": {"kvlist_value": {"values": []}}}],
      "events": [{"time_unix_nano": "15", "dropped_attributes_count": 9}]}]}]}]})";
  TracesData data;
  Status status = ParseJsonRequest(json, data);
  ASSERT_TRUE(status.ok()) << status.ToString();
  ASSERT_EQ(data.SpanCount(), 1u);
  const Span& s = data.resource_spans[0].scope_spans[0].spans[0];
  EXPECT_EQ(HexEncode(s.trace_id), "5b8efff798038103d269b633813fc60c");
  EXPECT_EQ(HexEncode(s.span_id), "eee19b7ec3c1b174");
  EXPECT_EQ(HexEncode(s.parent_span_id), "eee19b7ec3c1b173");
  EXPECT_EQ(s.trace_state, "t=1");
  EXPECT_EQ(s.start_time_unix_nano, 10u);
  EXPECT_EQ(s.end_time_unix_nano, 20u);
  EXPECT_EQ(s.dropped_attributes_count, 1u);
  EXPECT_EQ(s.dropped_events_count, 2u);
  EXPECT_EQ(s.dropped_links_count, 3u);
  ASSERT_EQ(s.attributes.size(), 7u);
  EXPECT_EQ(s.attributes[0].value.string_value, "s");
  EXPECT_EQ(s.attributes[1].value.int_value, 5);
  EXPECT_EQ(s.attributes[2].value.string_value, "hi");
  EXPECT_EQ(s.attributes[3].value.double_value, 1.5);
  EXPECT_TRUE(s.attributes[4].value.bool_value);
  EXPECT_EQ(s.attributes[5].value.type, AnyValue::Type::kArray);
  EXPECT_EQ(s.attributes[6].value.type, AnyValue::Type::kKvList);
  ASSERT_EQ(s.events.size(), 1u);
  EXPECT_EQ(s.events[0].time_unix_nano, 15u);
  EXPECT_EQ(s.events[0].dropped_attributes_count, 9u);
}

void ExpectJsonError(const std::string& json, const std::string& words) {
  TracesData data;
  Status status = ParseJsonRequest(json, data);
  ASSERT_FALSE(status.ok()) << json;
  EXPECT_EQ(status.code(), tracery::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find(words), std::string::npos) << "message: " << status.message() << "\nwanted: " << words;
}

std::string OneSpan(const std::string& span_fields) {
  return R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",)" +
         span_fields + "}]}]}]}";
}

TEST(OtlpJsonTest, ErrorsNameThePath) {
  const std::string span = "$.resourceSpans[0].scopeSpans[0].spans[0]";
  ExpectJsonError(R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc6"}]}]}]})",
                  span + ".traceId");
  ExpectJsonError(R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz8efff798038103d269b633813fc60c"}]}]}]})",
                  span + ".traceId");
  ExpectJsonError(OneSpan(R"("parentSpanId":"abcd")"), span + ".parentSpanId");
  ExpectJsonError(R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"eee19b7ec3c1b1"}]}]}]})", span + ".spanId");
  ExpectJsonError(OneSpan(R"("name":5)"), span + ".name");
  ExpectJsonError(OneSpan(R"("kind":"SPAN_KIND_BOGUS")"), span + ".kind");
  ExpectJsonError(OneSpan(R"("kind":9)"), span + ".kind");
  ExpectJsonError(OneSpan(R"("startTimeUnixNano":"12x")"), span + ".startTimeUnixNano");
  ExpectJsonError(OneSpan(R"("startTimeUnixNano":-1)"), span + ".startTimeUnixNano");
  ExpectJsonError(OneSpan(R"("startTimeUnixNano":true)"), span + ".startTimeUnixNano");
  ExpectJsonError(OneSpan(R"("attributes":{})"), span + ".attributes");
  ExpectJsonError(OneSpan(R"("attributes":[5])"), span + ".attributes[0]");
  ExpectJsonError(OneSpan(R"("attributes":[{"key":"a","value":{"intValue":"1.5"}}])"), span + ".attributes[0].value.intValue");
  ExpectJsonError(OneSpan(R"("attributes":[{"key":"a","value":{"boolValue":"yes"}}])"), span + ".attributes[0].value.boolValue");
  ExpectJsonError(OneSpan(R"("attributes":[{"key":"a","value":{"bytesValue":"!!"}}])"), span + ".attributes[0].value.bytesValue");
  ExpectJsonError(OneSpan(R"("attributes":[{"key":"a","value":{"arrayValue":{"values":[1]}}}])"),
                  span + ".attributes[0].value.arrayValue.values[0]");
  ExpectJsonError(OneSpan(R"("attributes":[{"key":7}])"), span + ".attributes[0].key");
  ExpectJsonError(OneSpan(R"("events":[{"timeUnixNano":"x"}])"), span + ".events[0].timeUnixNano");
  ExpectJsonError(OneSpan(R"("links":[{"traceId":"00"}])"), span + ".links[0].traceId");
  ExpectJsonError(OneSpan(R"("status":{"code":"STATUS_CODE_MAYBE"})"), span + ".status.code");
  ExpectJsonError(OneSpan(R"("status":[])"), span + ".status");
  ExpectJsonError(OneSpan(R"("flags":4294967296)"), span + ".flags");
  ExpectJsonError(OneSpan(R"("droppedAttributesCount":4294967296)"), span + ".droppedAttributesCount");
  ExpectJsonError(R"({"resourceSpans":{}})", "$.resourceSpans");
  ExpectJsonError(R"({"resourceSpans":[{"resource":[]}]})", "$.resourceSpans[0].resource");
  ExpectJsonError(R"({"resourceSpans":[{"scopeSpans":[{"scope":5}]}]})", "$.resourceSpans[0].scopeSpans[0].scope");
  ExpectJsonError(R"([])", "$");
}

TEST(OtlpJsonTest, ScopeFieldErrorsNameTheScope) {
  ExpectJsonError(R"({"resourceSpans":[{"scopeSpans":[{"scope":{"name":5}}]}]})",
                  "$.resourceSpans[0].scopeSpans[0].scope.name");
  ExpectJsonError(R"({"resourceSpans":[{"scopeSpans":[{"scope":{"version":[]}}]}]})",
                  "$.resourceSpans[0].scopeSpans[0].scope.version");
}

TEST(OtlpJsonTest, InvalidJsonIsRejected) {
  ExpectJsonError("", "invalid JSON");
  ExpectJsonError("{", "invalid JSON");
  ExpectJsonError(R"({"resourceSpans":[}])", "invalid JSON");
  ExpectJsonError(R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"x",}]}]}]})", "invalid JSON");
  ExpectJsonError("\xff\xfe", "invalid JSON");
}

TEST(OtlpJsonTest, TrailingGarbageIsRejected) {
  // A body is one JSON value; text after it means the body is not what the client meant.
  ExpectJsonError(R"({"resourceSpans":[]} trailing)", "invalid JSON");
  ExpectJsonError(R"({"resourceSpans":[]}{"resourceSpans":[]})", "invalid JSON");
}

TEST(OtlpJsonTest, DeeplyNestedValueIsRejectedNotCrashing) {
  std::string value = R"({"stringValue":"x"})";
  for (int i = 0; i < 1000; ++i) value = R"({"arrayValue":{"values":[)" + value + "]}}";
  TracesData data;
  Status status = ParseJsonRequest(OneSpan(R"("attributes":[{"key":"deep","value":)" + value + "}]"), data);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.code(), tracery::StatusCode::kInvalidArgument);
}

// A model with the characters JSON writers get wrong.
TracesData AwkwardModel() {
  TracesData data;
  ResourceSpans& rs = data.resource_spans.emplace_back();
  rs.resource.attributes.push_back({"service.name", {AnyValue::Type::kString, false, 0, 0, "svc \"q\" \\ /", {}, {}}});
  rs.resource.dropped_attributes_count = 4;
  rs.schema_url = "https://schema/\u00e9";
  ScopeSpans& ss = rs.scope_spans.emplace_back();
  ss.scope.name = "scope\twith\ttabs";
  ss.scope.version = "v\r\n1";
  ss.scope.attributes.push_back({"k", {AnyValue::Type::kInt, false, -5, 0, "", {}, {}}});
  ss.scope.dropped_attributes_count = 1;
  ss.schema_url = "scope-schema";
  for (int i = 0; i < 3; ++i) {
    Span& s = ss.spans.emplace_back();
    s.trace_id = TraceIdBytes(3);
    s.span_id = SpanIdBytes(i);
    if (i) s.parent_span_id = SpanIdBytes(0);
    s.trace_state = "k=v";
    s.flags = uint32_t(i) * 0x100 + 1;
    s.name = std::string("quote \" backslash \\ newline \n cr \r tab \t nul ") + std::string(1, '\0') +
             " ctrl \x01\x1f del \x7f unicode \u00fc\u4e2d\U0001F600 slash /";
    s.kind = SpanKind(i + 1);
    s.start_time_unix_nano = 1'700'000'000'000'000'000ull + uint64_t(i);
    s.end_time_unix_nano = i == 2 ? UINT64_MAX : s.start_time_unix_nano + 1000;
    AnyValue text;
    text.type = AnyValue::Type::kString;
    text.string_value = "\"\\\b\f\n\r\t\x02 \u2028 \u00e9";
    AnyValue bytes;
    bytes.type = AnyValue::Type::kBytes;
    for (int b = 0; b < 256; ++b) bytes.string_value += char(b);
    AnyValue integer;
    integer.type = AnyValue::Type::kInt;
    integer.int_value = std::numeric_limits<int64_t>::min() + i;
    AnyValue big;
    big.type = AnyValue::Type::kInt;
    big.int_value = std::numeric_limits<int64_t>::max();
    AnyValue dbl;
    dbl.type = AnyValue::Type::kDouble;
    dbl.double_value = -2.25;
    AnyValue nan;
    nan.type = AnyValue::Type::kDouble;
    nan.double_value = std::numeric_limits<double>::quiet_NaN();
    AnyValue inf;
    inf.type = AnyValue::Type::kDouble;
    inf.double_value = -std::numeric_limits<double>::infinity();
    AnyValue yes;
    yes.type = AnyValue::Type::kBool;
    yes.bool_value = true;
    AnyValue no;
    no.type = AnyValue::Type::kBool;
    AnyValue empty_string;
    empty_string.type = AnyValue::Type::kString;
    AnyValue array;
    array.type = AnyValue::Type::kArray;
    array.array_values = {text, integer, AnyValue(), bytes};
    AnyValue nested = array;
    nested.array_values.push_back(array);
    AnyValue kvlist;
    kvlist.type = AnyValue::Type::kKvList;
    kvlist.kvlist_values = {{"a", nested}, {"b\"", yes}, {"", empty_string}};
    AnyValue empty_array;
    empty_array.type = AnyValue::Type::kArray;
    s.attributes = {{"text", text},   {"bytes", bytes},       {"int", integer}, {"big", big},
                    {"double", dbl},  {"nan", nan},           {"inf", inf},     {"yes", yes},
                    {"no", no},       {"empty", empty_string}, {"array", array}, {"nested", nested},
                    {"kvlist", kvlist}, {"none", AnyValue()}, {"empty.array", empty_array},
                    {"key \"with\" \n specials", text}};
    s.dropped_attributes_count = uint32_t(i);
    s.events.push_back({s.start_time_unix_nano + 5, "event \"one\"\n", {{"e", kvlist}}, 2});
    s.events.push_back({0, "", {}, 0});
    s.dropped_events_count = 7;
    s.links.push_back({TraceIdBytes(9), SpanIdBytes(9), "ts=\"1\"", {{"l", bytes}}, 3, 1});
    s.dropped_links_count = 8;
    s.status_message = i == 1 ? "" : "status \"msg\"\n\u00e9";
    s.status_code = StatusCode(i);
  }
  ScopeSpans& empty_scope = rs.scope_spans.emplace_back();  // a scope with defaults only
  Span& bare = empty_scope.spans.emplace_back();
  bare.trace_id = TraceIdBytes(3);
  bare.span_id = SpanIdBytes(50);
  ResourceSpans& second = data.resource_spans.emplace_back();
  second.scope_spans.emplace_back().spans.push_back(bare);
  second.scope_spans[0].spans[0].span_id = SpanIdBytes(51);
  return data;
}

TEST(OtlpJsonTest, WrittenJsonParsesBackToTheSameModel) {
  TracesData data = AwkwardModel();
  std::string array;
  WriteJsonResourceSpans(data, array);
  ASSERT_FALSE(array.empty());
  EXPECT_EQ(array.front(), '[');
  EXPECT_EQ(array.back(), ']');
  TracesData back;
  Status status = ParseJsonRequest("{\"resourceSpans\":" + array + "}", back);
  ASSERT_TRUE(status.ok()) << status.ToString() << "\n" << array;
  ExpectModelsEqual(data, back);
  // The JSON itself carries what Tempo's clients expect: hex IDs and enum names.
  EXPECT_NE(array.find(HexEncode(TraceIdBytes(3))), std::string::npos);
  EXPECT_NE(array.find("\"SPAN_KIND_INTERNAL\""), std::string::npos);
  EXPECT_NE(array.find("\"STATUS_CODE_OK\""), std::string::npos);
  EXPECT_EQ(array.find('\n'), std::string::npos) << "raw newline inside a JSON string";
}

TEST(OtlpJsonTest, WrittenJsonOfADecodedRequestRoundTrips) {
  TracesData data;
  ASSERT_TRUE(DecodeTracesData(RichRequest(3, 4).SerializeAsString(), data).ok());
  std::string array;
  WriteJsonResourceSpans(data, array);
  TracesData back;
  Status status = ParseJsonRequest("{\"resourceSpans\":" + array + "}", back);
  ASSERT_TRUE(status.ok()) << status.ToString();
  ExpectModelsEqual(data, back);
}

TEST(OtlpJsonTest, DoublesRoundTripExactly) {
  const double values[] = {0.1, 1.0 / 3, 1e308, 5e-324, 2.2250738585072014e-308, 123456.789e-10,
                           9007199254740993.0, 0.30000000000000004, 1.7976931348623157e308, -0.0};
  for (double value : values) {
    TracesData data;
    Span& s = data.resource_spans.emplace_back().scope_spans.emplace_back().spans.emplace_back();
    s.trace_id = TraceIdBytes(1);
    s.span_id = SpanIdBytes(1);
    AnyValue v;
    v.type = AnyValue::Type::kDouble;
    v.double_value = value;
    s.attributes.push_back({"d", v});
    std::string array;
    WriteJsonResourceSpans(data, array);
    TracesData back;
    ASSERT_TRUE(ParseJsonRequest("{\"resourceSpans\":" + array + "}", back).ok());
    const AnyValue& got = back.resource_spans[0].scope_spans[0].spans[0].attributes[0].value;
    EXPECT_EQ(got.type, AnyValue::Type::kDouble);
    uint64_t want_bits, got_bits;
    std::memcpy(&want_bits, &value, 8);
    std::memcpy(&got_bits, &got.double_value, 8);
    EXPECT_EQ(want_bits, got_bits) << std::hexfloat << value << " came back as " << got.double_value;
  }
}

TEST(OtlpJsonTest, AppendJsonStringEscapes) {
  std::string out;
  AppendJsonString(out, std::string("a\"b\\c\nd\x01\x1f", 9));
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\nd\\u0001\\u001f\"");
  out.clear();
  AppendJsonString(out, "\u00fc");
  EXPECT_EQ(out, "\"\u00fc\"");
}

TEST(OtlpModelTest, EnumNames) {
  EXPECT_STREQ(SpanKindName(SpanKind::kServer), "SPAN_KIND_SERVER");
  EXPECT_STREQ(SpanKindName(SpanKind::kUnspecified), "SPAN_KIND_UNSPECIFIED");
  EXPECT_STREQ(SpanKindName(SpanKind::kConsumer), "SPAN_KIND_CONSUMER");
  EXPECT_STREQ(StatusCodeName(StatusCode::kError), "STATUS_CODE_ERROR");
  EXPECT_STREQ(StatusCodeName(StatusCode::kUnset), "STATUS_CODE_UNSET");
}

}  // namespace
}  // namespace tracery::otlp
