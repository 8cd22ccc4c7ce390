// Jaeger -> OTLP: every mapping rule over both Thrift protocols and protobuf, the agent
// message, required fields and limits, the HTTP handler, the UDP agent, and a bounded fuzz of
// mutated datagrams and bodies.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <future>
#include <random>
#include <thread>

#include <boost/asio/ip/udp.hpp>

#include "common/compress_for_tests.h"
#include "otlp/model.h"
#include "otlp/wire.h"
#include "receiver/jaeger.h"
#include "receiver/thrift_writer_for_tests.h"
#include "server/pipeline_for_tests.h"

namespace tracery::receiver {
namespace {

using namespace tracery::receiver::testing;  // NOLINT: the writer and Jaeger specs
using thrift::Protocol;
using thrift::Type;
namespace http = boost::beast::http;

struct Found {
  const otlp::ResourceSpans* resource = nullptr;
  const otlp::ScopeSpans* scope = nullptr;
  const otlp::Span* span = nullptr;
};

std::string SpanIdHex(uint64_t id) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(id));
  return text;
}

std::string IdBytes(uint64_t high, uint64_t low) {
  std::string out;
  for (uint64_t v : {high, low})
    for (int i = 7; i >= 0; --i) out.push_back(char(v >> (8 * i)));
  return out;
}
std::string IdBytes(uint64_t id) { return IdBytes(id, 0).substr(0, 8); }

Found FindSpan(const otlp::TracesData& data, uint64_t span_id) {
  for (const auto& rs : data.resource_spans)
    for (const auto& ss : rs.scope_spans)
      for (const auto& span : ss.spans)
        if (span.span_id == IdBytes(span_id)) return {&rs, &ss, &span};
  ADD_FAILURE() << "span " << SpanIdHex(span_id) << " not in the request";
  return {};
}

const otlp::AnyValue* Attr(const otlp::Attributes& attributes, const std::string& key) {
  const otlp::AnyValue* found = nullptr;
  int count = 0;
  for (const auto& kv : attributes)
    if (kv.key == key) found = &kv.value, ++count;
  EXPECT_LE(count, 1) << key << " appears " << count << " times";
  return found;
}

std::string Str(const otlp::Attributes& attributes, const std::string& key) {
  const otlp::AnyValue* v = Attr(attributes, key);
  return v && v->type == otlp::AnyValue::Type::kString ? v->string_value : "<missing " + key + ">";
}

otlp::TracesData Decode(const Result<JaegerConversion>& converted) {
  otlp::TracesData data;
  EXPECT_TRUE(converted.ok()) << converted.status().ToString();
  if (converted.ok()) {
    Status status = otlp::DecodeTracesData(converted->otlp, data);
    EXPECT_TRUE(status.ok()) << status.ToString();
    EXPECT_EQ(data.SpanCount(), converted->spans);
  }
  return data;
}

constexpr int64_t kHigh = 0x0102030405060708, kLow = 0x1112131415161718;
constexpr int64_t kStart = 1'700'000'000'123'456;  // µs

BatchSpec FullBatch() {
  BatchSpec batch;
  batch.service_name = "frontend";
  batch.process_tags = {StringTag("hostname", "host-1"), StringTag("jaeger.version", "Node-3.19.0"),
                        StringTag("ip", "10.0.0.1"), LongTag("pid", 42)};
  SpanSpec a;
  a.trace_high = kHigh, a.trace_low = kLow, a.span_id = 0x2122232425262728, a.parent_span_id = 0x31;
  a.operation_name = "GET /";
  a.start_time = kStart, a.duration = 1500, a.flags = 3;
  a.references = {{0, kLow, kHigh, 0x31}, {1, 9, 8, 7}, {0, kLow, kHigh, 0x55}};
  a.tags = {StringTag("span.kind", "server"), BoolTag("error", true), StringTag("otel.status_description", "boom"),
            StringTag("http.method", "GET"), LongTag("http.status_code", 500), DoubleTag("ratio", 0.5),
            BoolTag("cached", false), BinaryTag("payload", std::string("\0\xff", 2)), StringTag("otel.library.name", "lib"),
            StringTag("otel.library.version", "1.2"), StringTag("w3c.tracestate", "k=v"), StringTag("dup", "first"),
            StringTag("dup", "second")};
  a.logs = {{kStart + 500, {StringTag("event", "cache miss"), StringTag("k1", "v1"), LongTag("size", 3)}},
            {kStart + 700, {StringTag("message", "hello")}}};
  SpanSpec b;  // parent from the references: CHILD_OF wins over an earlier FOLLOWS_FROM
  b.trace_high = kHigh, b.trace_low = kLow, b.span_id = 0xb, b.operation_name = "b";
  b.start_time = kStart, b.duration = 1;
  b.references = {{1, kLow, kHigh, 0x70}, {0, kLow, kHigh, 0x71}};
  b.tags = {StringTag("otel.status_code", "ok"), StringTag("otel.status_description", "fine"), StringTag("span.kind", "client")};
  SpanSpec c;  // an HTTP client error, and a FOLLOWS_FROM parent that stays a link too
  c.trace_high = kHigh, c.trace_low = kLow, c.span_id = 0xc, c.operation_name = "c";
  c.references = {{1, kLow, kHigh, 0x72}};
  c.tags = {StringTag("span.kind", "client"), LongTag("http.status_code", 404), StringTag("http.status_message", "Not Found")};
  SpanSpec d;  // 4xx on a server is no error; an unknown kind is unspecified
  d.trace_high = kHigh, d.trace_low = kLow, d.span_id = 0xd, d.operation_name = "d";
  d.tags = {StringTag("span.kind", "server"), StringTag("http.status_code", "404"), BoolTag("error", false)};
  SpanSpec e;
  e.trace_low = 5, e.span_id = 0xe, e.operation_name = "e", e.flags = 2;
  e.tags = {StringTag("span.kind", "sideways"), StringTag("otel.scope.name", "scoped")};
  batch.spans = {a, b, c, d, e};
  return batch;
}

BatchSpec OneSpanBatch(int64_t trace_low = 1) {
  BatchSpec batch;
  SpanSpec span;
  span.trace_low = trace_low, span.span_id = 1, span.operation_name = "op", span.start_time = kStart, span.duration = 10;
  batch.spans = {span};
  return batch;
}

class JaegerThriftTest : public ::testing::TestWithParam<std::tuple<Protocol, bool>> {
 protected:
  Protocol protocol() const { return std::get<0>(GetParam()); }
  BatchSpec Batch() const {
    BatchSpec batch = FullBatch();
    batch.unknown_fields = batch.process_after_spans = std::get<1>(GetParam());
    return batch;
  }
};

INSTANTIATE_TEST_SUITE_P(Encodings, JaegerThriftTest,
                         ::testing::Combine(::testing::Values(Protocol::kBinary, Protocol::kCompact), ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) == Protocol::kBinary ? "Binary" : "Compact") +
                                  (std::get<1>(info.param) ? "WithUnknownFieldsAndProcessLast" : "Plain");
                         });

void ExpectFullBatch(const otlp::TracesData& data) {
  ASSERT_EQ(data.SpanCount(), 5u);
  ASSERT_EQ(data.resource_spans.size(), 1u);
  const otlp::Attributes& resource = data.resource_spans[0].resource.attributes;
  EXPECT_EQ(Str(resource, "service.name"), "frontend");
  EXPECT_EQ(Str(resource, "host.name"), "host-1");
  EXPECT_EQ(Str(resource, "opencensus.exporterversion"), "Jaeger-Node-3.19.0");
  EXPECT_EQ(Str(resource, "ip"), "10.0.0.1");
  EXPECT_EQ(Attr(resource, "pid")->int_value, 42);
  EXPECT_EQ(Attr(resource, "hostname"), nullptr);
  EXPECT_EQ(Attr(resource, "jaeger.version"), nullptr);
  EXPECT_EQ(resource.size(), 5u);

  Found a = FindSpan(data, 0x2122232425262728);
  ASSERT_TRUE(a.span);
  const otlp::Span& s = *a.span;
  EXPECT_EQ(s.trace_id, IdBytes(kHigh, kLow));
  EXPECT_EQ(s.parent_span_id, IdBytes(0x31));
  EXPECT_EQ(s.name, "GET /");
  EXPECT_EQ(s.kind, otlp::SpanKind::kServer);
  EXPECT_EQ(s.start_time_unix_nano, uint64_t(kStart) * 1000);
  EXPECT_EQ(s.end_time_unix_nano, uint64_t(kStart + 1500) * 1000);
  EXPECT_EQ(s.flags, 1u);  // sampled; debug (2) dropped
  EXPECT_EQ(s.status_code, otlp::StatusCode::kError);
  EXPECT_EQ(s.status_message, "boom");
  EXPECT_EQ(s.trace_state, "k=v");
  EXPECT_EQ(a.scope->scope.name, "lib");
  EXPECT_EQ(a.scope->scope.version, "1.2");
  EXPECT_EQ(Str(s.attributes, "http.method"), "GET");
  EXPECT_EQ(Attr(s.attributes, "http.status_code")->int_value, 500);
  EXPECT_EQ(Attr(s.attributes, "ratio")->type, otlp::AnyValue::Type::kDouble);
  EXPECT_EQ(Attr(s.attributes, "ratio")->double_value, 0.5);
  EXPECT_EQ(Attr(s.attributes, "cached")->type, otlp::AnyValue::Type::kBool);
  EXPECT_FALSE(Attr(s.attributes, "cached")->bool_value);
  EXPECT_EQ(Attr(s.attributes, "payload")->type, otlp::AnyValue::Type::kBytes);
  EXPECT_EQ(Attr(s.attributes, "payload")->string_value, std::string("\0\xff", 2));
  EXPECT_EQ(Str(s.attributes, "dup"), "second");
  for (const char* removed : {"span.kind", "error", "otel.status_description", "otel.library.name",
                              "otel.library.version", "w3c.tracestate"})
    EXPECT_EQ(Attr(s.attributes, removed), nullptr) << removed;
  EXPECT_EQ(s.attributes.size(), 6u);
  ASSERT_EQ(s.events.size(), 2u);
  EXPECT_EQ(s.events[0].name, "cache miss");
  EXPECT_EQ(s.events[0].time_unix_nano, uint64_t(kStart + 500) * 1000);
  EXPECT_EQ(Str(s.events[0].attributes, "k1"), "v1");
  EXPECT_EQ(Attr(s.events[0].attributes, "size")->int_value, 3);
  EXPECT_EQ(s.events[0].attributes.size(), 2u);
  EXPECT_EQ(s.events[1].name, "");
  EXPECT_EQ(Str(s.events[1].attributes, "message"), "hello");
  ASSERT_EQ(s.links.size(), 2u);  // the parent's CHILD_OF reference is not a link
  EXPECT_EQ(s.links[0].trace_id, IdBytes(8, 9));
  EXPECT_EQ(s.links[0].span_id, IdBytes(7));
  EXPECT_EQ(Str(s.links[0].attributes, "opentracing.ref_type"), "follows_from");
  EXPECT_EQ(s.links[1].span_id, IdBytes(0x55));
  EXPECT_EQ(Str(s.links[1].attributes, "opentracing.ref_type"), "child_of");

  Found b = FindSpan(data, 0xb);
  ASSERT_TRUE(b.span);
  EXPECT_EQ(b.span->parent_span_id, IdBytes(0x71));
  ASSERT_EQ(b.span->links.size(), 1u);
  EXPECT_EQ(b.span->links[0].span_id, IdBytes(0x70));
  EXPECT_EQ(b.span->status_code, otlp::StatusCode::kOk);
  EXPECT_EQ(b.span->status_message, "fine");
  EXPECT_EQ(b.span->kind, otlp::SpanKind::kClient);
  EXPECT_TRUE(b.span->attributes.empty());
  EXPECT_EQ(b.scope->scope.name, "");

  Found c = FindSpan(data, 0xc);
  ASSERT_TRUE(c.span);
  EXPECT_EQ(c.span->parent_span_id, IdBytes(0x72));
  ASSERT_EQ(c.span->links.size(), 1u);
  EXPECT_EQ(c.span->status_code, otlp::StatusCode::kError);
  EXPECT_EQ(c.span->status_message, "Not Found");
  EXPECT_EQ(c.span->flags, 1u);

  Found d = FindSpan(data, 0xd);
  ASSERT_TRUE(d.span);
  EXPECT_EQ(d.span->status_code, otlp::StatusCode::kUnset);
  EXPECT_EQ(d.span->parent_span_id, "");
  ASSERT_NE(Attr(d.span->attributes, "error"), nullptr);  // error=false stays an attribute

  Found e = FindSpan(data, 0xe);
  ASSERT_TRUE(e.span);
  EXPECT_EQ(e.span->trace_id, IdBytes(0, 5));
  EXPECT_EQ(e.span->kind, otlp::SpanKind::kUnspecified);
  EXPECT_EQ(e.span->flags, 0u);
  EXPECT_EQ(e.scope->scope.name, "scoped");
  EXPECT_TRUE(e.span->attributes.empty());
  // Spans group by scope: "lib", "" (b, c, d), "scoped".
  EXPECT_EQ(data.resource_spans[0].scope_spans.size(), 3u);
}

TEST_P(JaegerThriftTest, MapsABatchAsTheCollectorDoes) {
  ExpectFullBatch(Decode(JaegerThriftBatchToOtlp(protocol(), EncodeBatch(protocol(), Batch()))));
}

TEST_P(JaegerThriftTest, DecodesAgentMessages) {
  ExpectFullBatch(Decode(JaegerAgentMessageToOtlp(protocol(), EncodeEmitBatch(protocol(), Batch()))));
  ExpectFullBatch(Decode(JaegerAgentMessageToOtlp(protocol(), EncodeEmitBatch(protocol(), Batch(), "emitBatch", 1))));
  auto zipkin = JaegerAgentMessageToOtlp(protocol(), EncodeEmitBatch(protocol(), Batch(), "emitZipkinBatch"));
  EXPECT_EQ(zipkin.status().code(), StatusCode::kUnsupportedMedia);
  auto reply = JaegerAgentMessageToOtlp(protocol(), EncodeEmitBatch(protocol(), Batch(), "emitBatch", 2));
  EXPECT_EQ(reply.status().code(), StatusCode::kInvalidArgument);
  // The other protocol's bytes are not this protocol's message.
  Protocol other = protocol() == Protocol::kBinary ? Protocol::kCompact : Protocol::kBinary;
  EXPECT_FALSE(JaegerAgentMessageToOtlp(protocol(), EncodeEmitBatch(other, Batch())).ok());
  ThriftWriter empty(protocol());
  empty.MessageBegin("emitBatch", 4, 0);
  empty.StructBegin();
  empty.StructEnd();
  EXPECT_NE(JaegerAgentMessageToOtlp(protocol(), empty.bytes).status().message().find("without a batch"), std::string::npos);
}

TEST_P(JaegerThriftTest, RefusesZeroIdsAndSkipsBlankSpans) {
  BatchSpec batch;
  batch.spans.emplace_back().flags = 0;  // every field zero: skipped, as the Collector does
  auto blank = JaegerThriftBatchToOtlp(protocol(), EncodeBatch(protocol(), batch));
  ASSERT_TRUE(blank.ok()) << blank.status().ToString();
  EXPECT_EQ(blank->spans, 0u);

  batch.spans[0].operation_name = "zero trace";
  batch.spans[0].span_id = 1;
  auto zero_trace = JaegerThriftBatchToOtlp(protocol(), EncodeBatch(protocol(), batch));
  EXPECT_EQ(zero_trace.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(zero_trace.status().message().find("all-zero trace ID"), std::string::npos);
  batch.spans[0].trace_low = 1;
  batch.spans[0].span_id = 0;
  auto zero_span = JaegerThriftBatchToOtlp(protocol(), EncodeBatch(protocol(), batch));
  EXPECT_NE(zero_span.status().message().find("zero span ID"), std::string::npos);
}

TEST_P(JaegerThriftTest, RequiresTheRequiredFields) {
  auto encode = [&](int16_t skipped_field) {
    ThriftWriter w(protocol());
    w.StructBegin();
    w.Field(Type::kStruct, 1);
    w.StructBegin();
    w.StringField(1, "svc");
    w.StructEnd();
    w.Field(Type::kList, 2);
    w.ListBegin(Type::kStruct, 1);
    w.StructBegin();
    for (int16_t id : {1, 2, 3, 4, 8, 9})
      if (id != skipped_field) w.I64Field(id, 1);
    if (skipped_field != 5) w.StringField(5, "op");
    if (skipped_field != 7) w.I32Field(7, 1);
    w.StructEnd();
    w.StructEnd();
    return w.bytes;
  };
  ASSERT_TRUE(JaegerThriftBatchToOtlp(protocol(), encode(0)).ok());
  for (int16_t field : {1, 2, 3, 4, 5, 7, 8, 9}) {
    auto result = JaegerThriftBatchToOtlp(protocol(), encode(field));
    EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument) << "without field " << field;
    EXPECT_NE(result.status().message().find("required"), std::string::npos) << result.status().message();
  }
  // A known field of the wrong type is skipped, so it counts as missing.
  ThriftWriter w(protocol());
  w.StructBegin();
  w.StringField(1, "not a process");
  w.StructEnd();
  EXPECT_FALSE(JaegerThriftBatchToOtlp(protocol(), w.bytes).ok());
  BatchSpec batch = OneSpanBatch();
  batch.process_tags = {TagSpec{"odd", 9}};  // an unknown TagType becomes a string saying so
  auto unknown = Decode(JaegerThriftBatchToOtlp(protocol(), EncodeBatch(protocol(), batch)));
  ASSERT_EQ(unknown.SpanCount(), 1u);
  EXPECT_EQ(Str(unknown.resource_spans[0].resource.attributes, "odd"), "<Unknown Jaeger TagType 9>");
}

TEST_P(JaegerThriftTest, BoundsTheItemsOfOneSpan) {
  BatchSpec batch;
  SpanSpec span;
  span.trace_low = span.span_id = 1;
  span.operation_name = "many tags";
  span.tags.assign(kJaegerMaxItemsPerSpan, LongTag("k", 1));
  batch.spans = {span};
  auto at_limit = JaegerThriftBatchToOtlp(protocol(), EncodeBatch(protocol(), batch));
  ASSERT_TRUE(at_limit.ok()) << at_limit.status().ToString();
  batch.spans[0].logs = {{1, {}}};
  auto over = JaegerThriftBatchToOtlp(protocol(), EncodeBatch(protocol(), batch));
  EXPECT_EQ(over.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(over.status().message().find("more than"), std::string::npos) << over.status().message();
}

// ---------------------------------------------------------------------------------------
// api_v2 protobuf

void PutKeyValue(std::string& out, uint32_t field, const std::string& key, int type, const std::string& text,
                 uint64_t integer = 0, double number = 0) {
  otlp::PutMessageField(out, field, [&](std::string& kv) {
    otlp::PutStringIfSet(kv, 1, key);
    otlp::PutVarintIfSet(kv, 2, uint64_t(type));
    if (type == 0) otlp::PutStringIfSet(kv, 3, text);
    if (type == 1) otlp::PutVarintIfSet(kv, 4, integer);
    if (type == 2) otlp::PutVarintIfSet(kv, 5, integer);
    if (type == 3) {
      uint64_t bits;
      std::memcpy(&bits, &number, 8);
      otlp::PutFixed64IfSet(kv, 6, bits);
    }
    if (type == 4) otlp::PutStringIfSet(kv, 7, text);
  });
}

void PutTime(std::string& out, uint32_t field, int64_t seconds, int32_t nanos) {
  otlp::PutMessageField(out, field, [&](std::string& t) {
    otlp::PutVarintIfSet(t, 1, uint64_t(seconds));
    otlp::PutVarintIfSet(t, 2, uint64_t(int64_t(nanos)));
  });
}

std::string ProtoRequest(const std::string& trace_id = IdBytes(kHigh, kLow)) {
  std::string request;
  otlp::PutMessageField(request, 1, [&](std::string& batch) {
    otlp::PutMessageField(batch, 1, [&](std::string& span) {
      otlp::PutBytesField(span, 1, trace_id);
      otlp::PutBytesField(span, 2, IdBytes(0xa1));
      otlp::PutBytesField(span, 3, "proto op");
      otlp::PutMessageField(span, 4, [&](std::string& ref) {  // CHILD_OF (0, the default)
        otlp::PutBytesField(ref, 1, trace_id);
        otlp::PutBytesField(ref, 2, IdBytes(0xa0));
      });
      otlp::PutMessageField(span, 4, [&](std::string& ref) {
        otlp::PutBytesField(ref, 1, IdBytes(3, 4));
        otlp::PutBytesField(ref, 2, IdBytes(0x99));
        otlp::PutVarintIfSet(ref, 3, 1);
      });
      otlp::PutVarintIfSet(span, 5, 1);
      PutTime(span, 6, 1'700'000'000, 123'456'789);
      PutTime(span, 7, 0, 1'500'000);
      PutKeyValue(span, 8, "span.kind", 0, "producer");
      PutKeyValue(span, 8, "flag", 1, "", 1);
      PutKeyValue(span, 8, "count", 2, "", uint64_t(-5));
      PutKeyValue(span, 8, "ratio", 3, "", 0, 2.5);
      PutKeyValue(span, 8, "blob", 4, "\x01\x02");
      otlp::PutMessageField(span, 9, [&](std::string& log) {
        PutTime(log, 1, 1'700'000'000, 200'000'000);
        PutKeyValue(log, 2, "event", 0, "retry");
        PutKeyValue(log, 2, "attempt", 2, "", 2);
      });
      otlp::PutBytesField(span, 11, "p1");      // process_id: ignored
      otlp::PutBytesField(span, 12, "warned");  // warnings: ignored
    });
    otlp::PutMessageField(batch, 1, [&](std::string& span) {  // with its own process
      otlp::PutBytesField(span, 1, trace_id);
      otlp::PutBytesField(span, 2, IdBytes(0xa2));
      otlp::PutBytesField(span, 3, "own process");
      otlp::PutMessageField(span, 10, [&](std::string& process) {
        otlp::PutBytesField(process, 1, "other-service");
      });
    });
    otlp::PutMessageField(batch, 2, [&](std::string& process) {  // after the spans, on purpose
      otlp::PutBytesField(process, 1, "proto-service");
      PutKeyValue(process, 2, "hostname", 0, "h");
    });
  });
  return request;
}

TEST(JaegerProtoTest, MapsPostSpansAsTheCollectorDoes) {
  otlp::TracesData data = Decode(JaegerPostSpansToOtlp(ProtoRequest()));
  ASSERT_EQ(data.SpanCount(), 2u);
  ASSERT_EQ(data.resource_spans.size(), 2u);
  Found a = FindSpan(data, 0xa1);
  ASSERT_TRUE(a.span);
  EXPECT_EQ(Str(a.resource->resource.attributes, "service.name"), "proto-service");
  EXPECT_EQ(Str(a.resource->resource.attributes, "host.name"), "h");
  EXPECT_EQ(a.span->trace_id, IdBytes(kHigh, kLow));
  EXPECT_EQ(a.span->parent_span_id, IdBytes(0xa0));
  EXPECT_EQ(a.span->name, "proto op");
  EXPECT_EQ(a.span->kind, otlp::SpanKind::kProducer);
  EXPECT_EQ(a.span->flags, 1u);
  EXPECT_EQ(a.span->start_time_unix_nano, 1'700'000'000'123'456'789ull);
  EXPECT_EQ(a.span->end_time_unix_nano, 1'700'000'000'124'956'789ull);
  EXPECT_TRUE(Attr(a.span->attributes, "flag")->bool_value);
  EXPECT_EQ(Attr(a.span->attributes, "count")->int_value, -5);
  EXPECT_EQ(Attr(a.span->attributes, "ratio")->double_value, 2.5);
  EXPECT_EQ(Attr(a.span->attributes, "blob")->type, otlp::AnyValue::Type::kBytes);
  EXPECT_EQ(a.span->attributes.size(), 4u);
  ASSERT_EQ(a.span->events.size(), 1u);
  EXPECT_EQ(a.span->events[0].name, "retry");
  EXPECT_EQ(a.span->events[0].time_unix_nano, 1'700'000'000'200'000'000ull);
  EXPECT_EQ(Attr(a.span->events[0].attributes, "attempt")->int_value, 2);
  ASSERT_EQ(a.span->links.size(), 1u);
  EXPECT_EQ(a.span->links[0].trace_id, IdBytes(3, 4));
  EXPECT_EQ(Str(a.span->links[0].attributes, "opentracing.ref_type"), "follows_from");
  Found b = FindSpan(data, 0xa2);
  ASSERT_TRUE(b.span);
  EXPECT_EQ(Str(b.resource->resource.attributes, "service.name"), "other-service");
}

TEST(JaegerProtoTest, RefusesMalformedRequests) {
  EXPECT_EQ(JaegerPostSpansToOtlp(ProtoRequest(std::string(15, 'x'))).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(JaegerPostSpansToOtlp(ProtoRequest(std::string(16, '\0'))).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(JaegerPostSpansToOtlp("\x0a\x05\x0a\x03").ok());  // truncated
  std::string wrong_type;
  otlp::PutMessageField(wrong_type, 1, [](std::string& batch) {
    otlp::PutMessageField(batch, 1, [](std::string& span) { otlp::PutVarintIfSet(span, 3, 7); });  // name as varint
  });
  EXPECT_NE(JaegerPostSpansToOtlp(wrong_type).status().message().find("wrong wire type"), std::string::npos);
  auto empty = JaegerPostSpansToOtlp("");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->spans, 0u);
}

// ---------------------------------------------------------------------------------------
// The HTTP handler and the UDP agent, over a whole ingest pipeline

using tracery::testing::Pipeline;

HttpResponse Send(const HttpHandler& handler, http::verb method, const std::string& target, const std::string& type,
                  const std::string& body, const std::string& encoding = "", const std::string& org_id = "") {
  HttpRequest request(method, target, 11);
  if (!type.empty()) request.set(http::field::content_type, type);
  if (!encoding.empty()) request.set(http::field::content_encoding, encoding);
  if (!org_id.empty()) request.set("X-Scope-OrgID", org_id);
  request.body() = body;
  std::promise<HttpResponse> answer;
  handler(std::move(request), [&](HttpResponse r) { answer.set_value(std::move(r)); });
  return answer.get_future().get();
}


bool Stored(Pipeline& pipeline, int64_t trace_low, const std::string& tenant = kSingleTenant) {
  auto found = pipeline.reader().FindTrace(tenant, TraceId::FromBytes(IdBytes(0, uint64_t(trace_low))));
  return found.ok() && found->has_value();
}

TEST(JaegerHttpHandlerTest, AcceptsThriftBatchesAndAnswersWithJaegersCodes) {
  Pipeline pipeline;
  HttpHandler handler = MakeJaegerThriftHttpHandler(pipeline.distributor(), 1 << 20);
  std::string body = EncodeBatch(Protocol::kBinary, OneSpanBatch(0x101));
  EXPECT_EQ(Send(handler, http::verb::post, "/api/traces?format=jaeger.thrift", "application/x-thrift", body).status, 202u);
  EXPECT_TRUE(Stored(pipeline, 0x101));
  std::string gzipped = CompressForTests(EncodeBatch(Protocol::kBinary, OneSpanBatch(0x102)), CompressedFormat::kGzip);
  EXPECT_EQ(Send(handler, http::verb::post, "/api/traces", "application/vnd.apache.thrift.binary", gzipped, "gzip").status,
            202u);
  EXPECT_TRUE(Stored(pipeline, 0x102));

  EXPECT_EQ(Send(handler, http::verb::post, "/api/spans", "application/x-thrift", body).status, 404u);
  HttpResponse get = Send(handler, http::verb::get, "/api/traces", "", "");
  EXPECT_EQ(get.status, 405u);
  ASSERT_EQ(get.headers.size(), 1u);
  EXPECT_EQ(get.headers[0], (std::pair<std::string, std::string>{"Allow", "POST"}));
  EXPECT_EQ(Send(handler, http::verb::post, "/api/traces", "application/json", body).status, 415u);
  EXPECT_EQ(Send(handler, http::verb::post, "/api/traces", "application/x-thrift", body, "br").status, 415u);
  EXPECT_EQ(Send(handler, http::verb::post, "/api/traces", "application/x-thrift", "garbage").status, 400u);
  EXPECT_EQ(Send(handler, http::verb::post, "/api/traces", "application/x-thrift", "not gzip", "gzip").status, 400u);
  std::string bomb = CompressForTests(std::string(2 << 20, 'a'), CompressedFormat::kGzip);
  EXPECT_EQ(Send(handler, http::verb::post, "/api/traces", "application/x-thrift", bomb, "gzip").status, 413u);
  // Compact bodies are not what the HTTP endpoint takes.
  EXPECT_EQ(Send(handler, http::verb::post, "/api/traces", "application/x-thrift",
                 EncodeBatch(Protocol::kCompact, OneSpanBatch(0x103))).status,
            400u);
}

TEST(JaegerHttpHandlerTest, TakesTheTenantFromTheHeader) {
  distributor::Options options;
  options.multitenancy_enabled = true;
  Pipeline pipeline(options);
  HttpHandler handler = MakeJaegerThriftHttpHandler(pipeline.distributor(), 1 << 20);
  std::string body = EncodeBatch(Protocol::kBinary, OneSpanBatch(0x201));
  EXPECT_EQ(Send(handler, http::verb::post, "/api/traces", "application/x-thrift", body).status, 401u);
  EXPECT_EQ(Send(handler, http::verb::post, "/api/traces", "application/x-thrift", body, "", "team-a").status, 202u);
  EXPECT_TRUE(Stored(pipeline, 0x201, "team-a"));
  EXPECT_FALSE(Stored(pipeline, 0x201));
}

TEST(JaegerAgentServerTest, IngestsDatagramsAndCountsBadOnes) {
  Pipeline pipeline;
  boost::asio::io_context io;
  auto compact = JaegerAgentServer::Start(io, "127.0.0.1:0", Protocol::kCompact, pipeline.distributor(), pipeline.metrics());
  auto binary = JaegerAgentServer::Start(io, "localhost:0", Protocol::kBinary, pipeline.distributor(), pipeline.metrics());
  ASSERT_TRUE(compact.ok() && binary.ok());
  auto taken = JaegerAgentServer::Start(io, "127.0.0.1:" + std::to_string((*compact)->port()), Protocol::kCompact,
                                        pipeline.distributor(), pipeline.metrics());
  EXPECT_EQ(taken.status().code(), StatusCode::kIoError);
  std::thread runner([&] { io.run(); });

  boost::asio::io_context client_io;
  boost::asio::ip::udp::socket client(client_io, boost::asio::ip::udp::v4());
  auto to = [](uint16_t port) { return boost::asio::ip::udp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port); };
  client.send_to(boost::asio::buffer(std::string("\x82garbage")), to((*compact)->port()));
  client.send_to(boost::asio::buffer(std::string(65'001, '\0')), to((*compact)->port()));
  client.send_to(boost::asio::buffer(EncodeEmitBatch(Protocol::kCompact, OneSpanBatch(0x301))), to((*compact)->port()));
  client.send_to(boost::asio::buffer(EncodeEmitBatch(Protocol::kBinary, OneSpanBatch(0x302))), to((*binary)->port()));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while ((!Stored(pipeline, 0x301) || !Stored(pipeline, 0x302)) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(Stored(pipeline, 0x301));
  EXPECT_TRUE(Stored(pipeline, 0x302));
  std::string metrics = pipeline.metrics().Render();
  EXPECT_NE(metrics.find("tracery_jaeger_agent_datagrams_refused_total{protocol=\"thrift_compact\",reason=\"invalid\"} 1"),
            std::string::npos) << metrics;
  EXPECT_NE(metrics.find("tracery_jaeger_agent_datagrams_refused_total{protocol=\"thrift_compact\",reason=\"too_large\"} 1"),
            std::string::npos) << metrics;
  EXPECT_NE(metrics.find("tracery_jaeger_agent_datagrams_received_total{protocol=\"thrift_compact\"} 3"), std::string::npos);
  (*compact)->Stop();
  (*binary)->Stop();
  io.stop();
  runner.join();
}

// ---------------------------------------------------------------------------------------
// A bounded fuzz: mutated datagrams, bodies and requests never crash the decoders, and what
// they accept is valid OTLP.

std::string Mutate(std::string input, std::mt19937& random) {
  int edits = 1 + int(random() % 4);
  for (int i = 0; i < edits && !input.empty(); ++i) {
    size_t at = random() % input.size();
    switch (random() % 6) {
      case 0: input[at] = char(random()); break;
      case 1: input[at] ^= char(1 << (random() % 8)); break;
      case 2: input.resize(at); break;
      case 3: input.insert(at, 1 + random() % 8, char(random())); break;
      case 4: input.erase(at, 1 + random() % 8); break;
      case 5: input[at] = char(random() % 2 ? 0x7f : 0xff); break;  // large sizes and lengths
    }
  }
  return input;
}

void ExpectValidIfAccepted(const Result<JaegerConversion>& result) {
  if (!result.ok()) {
    EXPECT_EQ(result.status().code() == StatusCode::kInvalidArgument ||
                  result.status().code() == StatusCode::kUnsupportedMedia,
              true)
        << result.status().ToString();
    return;
  }
  otlp::TracesData data;
  EXPECT_TRUE(otlp::DecodeTracesData(result->otlp, data).ok());
}

TEST(JaegerFuzzTest, MutatedInputNeverCrashes) {
  std::mt19937 random(20240611);
  BatchSpec batch = FullBatch();
  batch.unknown_fields = true;
  std::vector<std::pair<Protocol, std::string>> datagrams, bodies;
  for (Protocol protocol : {Protocol::kBinary, Protocol::kCompact}) {
    datagrams.emplace_back(protocol, EncodeEmitBatch(protocol, batch));
    bodies.emplace_back(protocol, EncodeBatch(protocol, batch));
  }
  std::string proto = ProtoRequest();
  for (int i = 0; i < 10000; ++i) {
    for (const auto& [protocol, datagram] : datagrams)
      ExpectValidIfAccepted(JaegerAgentMessageToOtlp(protocol, Mutate(datagram, random)));
    for (const auto& [protocol, body] : bodies) ExpectValidIfAccepted(JaegerThriftBatchToOtlp(protocol, Mutate(body, random)));
    ExpectValidIfAccepted(JaegerPostSpansToOtlp(Mutate(proto, random)));
  }
  for (int i = 0; i < 2000; ++i) {  // random bytes behind a valid header
    std::string noise(random() % 256, '\0');
    for (char& c : noise) c = char(random());
    ExpectValidIfAccepted(JaegerAgentMessageToOtlp(Protocol::kCompact, "\x82\x81\x00\x09" "emitBatch" + noise));
    ExpectValidIfAccepted(JaegerAgentMessageToOtlp(Protocol::kBinary, datagrams[0].second.substr(0, 17) + noise));
  }
}

}  // namespace
}  // namespace tracery::receiver
