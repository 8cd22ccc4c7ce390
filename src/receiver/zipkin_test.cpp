// The Zipkin receiver: every mapping rule of docs/api.md ("Zipkin") on v2 JSON, v1 JSON and
// zipkin.proto3 bodies, the refusals of bad input, the HTTP handler's status codes, and a
// bounded, seeded fuzz run that may only ever produce a translation or InvalidArgument.
#include "receiver/zipkin.h"

#include <gtest/gtest.h>

#include <future>
#include <random>

#include "common/compress_for_tests.h"
#include "common/ids.h"
#include "otlp/split.h"
#include "otlp/wire.h"
#include "server/pipeline_for_tests.h"

namespace tracery::receiver {
namespace {

using tracery::testing::Pipeline;
namespace http = boost::beast::http;

constexpr const char* kTrace16 = "463ac35c9f6413ad";
constexpr const char* kTrace32 = "5af7183fb1d4cf5f463ac35c9f6413ad";

otlp::TracesData Translate(const std::string& body, ZipkinFormat format = ZipkinFormat::kJsonV2, bool parse = false) {
  otlp::TracesData data;
  Status status = TranslateZipkin(body, format, ZipkinOptions{parse}, data);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << body;
  return data;
}

Status TranslateStatus(const std::string& body, ZipkinFormat format = ZipkinFormat::kJsonV2) {
  otlp::TracesData data;
  return TranslateZipkin(body, format, {}, data);
}

// The one span of a one-span translation.
const otlp::Span& OnlySpan(const otlp::TracesData& data) {
  static const otlp::Span none;
  if (data.resource_spans.size() != 1 || data.resource_spans[0].scope_spans.size() != 1 ||
      data.resource_spans[0].scope_spans[0].spans.size() != 1) {
    ADD_FAILURE() << "expected exactly one span";
    return none;
  }
  return data.resource_spans[0].scope_spans[0].spans[0];
}

const otlp::AnyValue* Attribute(const otlp::Attributes& attributes, const std::string& key) {
  for (const auto& kv : attributes)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

std::string StringAttribute(const otlp::Attributes& attributes, const std::string& key) {
  const otlp::AnyValue* v = Attribute(attributes, key);
  if (!v) return "<absent>";
  if (v->type != otlp::AnyValue::Type::kString) return "<not a string>";
  return v->string_value;
}

std::string Hex(const std::string& raw) { return HexEncode(raw); }

// One v2 JSON span with `extra` members appended to the required ones (and a timestamp,
// unless `extra` has one: a span without one gets an attribute saying so).
std::string V2Span(const std::string& extra, const std::string& id = "0000000000000001") {
  std::string timestamp = extra.find("\"timestamp\"") == std::string::npos ? ",\"timestamp\":1700000000000000" : "";
  return std::string("{\"traceId\":\"") + kTrace32 + "\",\"id\":\"" + id + "\"" + timestamp + (extra.empty() ? "" : "," + extra) + "}";
}
std::string V2List(const std::string& extra) { return "[" + V2Span(extra) + "]"; }

TEST(ZipkinTranslateTest, V2JsonMapsEveryField) {
  otlp::TracesData data = Translate(R"([{
    "traceId": "463ac35c9f6413ad", "id": "a2fb4a1d1a96d312", "parentId": "0020000000000001",
    "name": "get /users", "kind": "SERVER", "timestamp": 1700000000123456, "duration": 2500,
    "localEndpoint": {"serviceName": "frontend", "ipv4": "10.0.0.7", "port": 8080},
    "remoteEndpoint": {"serviceName": "browser", "ipv6": "2001:db8:0:0:0:0:0:1", "port": 51234},
    "annotations": [{"timestamp": 1700000000124000, "value": "wire send"}],
    "tags": {"http.method": "GET", "http.status_code": "200"},
    "debug": true, "shared": true}])");
  ASSERT_EQ(data.resource_spans.size(), 1u);
  EXPECT_EQ(StringAttribute(data.resource_spans[0].resource.attributes, "service.name"), "frontend");
  const otlp::Span& span = OnlySpan(data);
  EXPECT_EQ(Hex(span.trace_id), "0000000000000000463ac35c9f6413ad");  // 64-bit IDs are left-padded
  EXPECT_EQ(Hex(span.span_id), "a2fb4a1d1a96d312");
  EXPECT_EQ(Hex(span.parent_span_id), "0020000000000001");
  EXPECT_EQ(span.name, "get /users");
  EXPECT_EQ(span.kind, otlp::SpanKind::kServer);
  EXPECT_EQ(span.start_time_unix_nano, 1700000000123456000ull);
  EXPECT_EQ(span.end_time_unix_nano, 1700000000125956000ull);
  EXPECT_EQ(StringAttribute(span.attributes, "http.method"), "GET");
  EXPECT_EQ(StringAttribute(span.attributes, "http.status_code"), "200");  // strings unless parse_string_tags
  EXPECT_EQ(StringAttribute(span.attributes, "net.host.ip"), "10.0.0.7");
  ASSERT_NE(Attribute(span.attributes, "net.host.port"), nullptr);
  EXPECT_EQ(Attribute(span.attributes, "net.host.port")->int_value, 8080);
  EXPECT_EQ(StringAttribute(span.attributes, "peer.service"), "browser");
  EXPECT_EQ(StringAttribute(span.attributes, "net.peer.ip"), "2001:db8::1");  // normalised
  ASSERT_NE(Attribute(span.attributes, "net.peer.port"), nullptr);
  EXPECT_EQ(Attribute(span.attributes, "net.peer.port")->int_value, 51234);
  EXPECT_EQ(span.attributes.size(), 7u) << "debug and shared have no OTLP place, as in the Collector";
  ASSERT_EQ(span.events.size(), 1u);
  EXPECT_EQ(span.events[0].time_unix_nano, 1700000000124000000ull);
  EXPECT_EQ(span.events[0].name, "wire send");
  EXPECT_EQ(span.status_code, otlp::StatusCode::kUnset);
  EXPECT_EQ(Hex(OnlySpan(Translate(V2List(""))).trace_id), kTrace32);
}

TEST(ZipkinTranslateTest, KindsFollowTheCollector) {
  auto kind_of = [](const std::string& extra) { return OnlySpan(Translate(V2List(extra))).kind; };
  EXPECT_EQ(kind_of(R"("kind":"CLIENT")"), otlp::SpanKind::kClient);
  EXPECT_EQ(kind_of(R"("kind":"SERVER")"), otlp::SpanKind::kServer);
  EXPECT_EQ(kind_of(R"("kind":"PRODUCER")"), otlp::SpanKind::kProducer);
  EXPECT_EQ(kind_of(R"("kind":"CONSUMER")"), otlp::SpanKind::kConsumer);
  EXPECT_EQ(kind_of(""), otlp::SpanKind::kUnspecified);
  EXPECT_EQ(kind_of(R"("kind":"SIDEWAYS")"), otlp::SpanKind::kUnspecified);
  // No kind, tag span.kind=internal: INTERNAL, and the tag goes.
  const otlp::Span internal = OnlySpan(Translate(V2List(R"("tags":{"span.kind":"internal"})")));
  EXPECT_EQ(internal.kind, otlp::SpanKind::kInternal);
  EXPECT_EQ(Attribute(internal.attributes, "span.kind"), nullptr);
  // With a kind, span.kind is just a tag.
  const otlp::Span client = OnlySpan(Translate(V2List(R"("kind":"CLIENT","tags":{"span.kind":"internal"})")));
  EXPECT_EQ(client.kind, otlp::SpanKind::kClient);
  EXPECT_EQ(StringAttribute(client.attributes, "span.kind"), "internal");
}

TEST(ZipkinTranslateTest, StatusFromOtelTagsAndError) {
  auto span_with = [](const std::string& tags) { return OnlySpan(Translate(V2List("\"tags\":" + tags))); };
  otlp::Span sdk = span_with(R"({"otel.status_code":"ERROR","error":"connection refused"})");  // what OTel SDKs send
  EXPECT_EQ(sdk.status_code, otlp::StatusCode::kError);
  EXPECT_EQ(sdk.status_message, "connection refused");
  EXPECT_EQ(Attribute(sdk.attributes, "otel.status_code"), nullptr);
  EXPECT_EQ(StringAttribute(sdk.attributes, "error"), "connection refused");  // kept, as the Collector does

  otlp::Span described = span_with(R"({"otel.status_code":"STATUS_CODE_ERROR","otel.status_description":"boom"})");
  EXPECT_EQ(described.status_code, otlp::StatusCode::kError);
  EXPECT_EQ(described.status_message, "boom");
  EXPECT_TRUE(described.attributes.empty());

  otlp::Span ok = span_with(R"({"otel.status_code":"OK"})");
  EXPECT_EQ(ok.status_code, otlp::StatusCode::kOk);
  EXPECT_EQ(span_with(R"({"otel.status_code":"STATUS_CODE_OK"})").status_code, otlp::StatusCode::kOk);
  otlp::Span unknown = span_with(R"({"otel.status_code":"MAYBE"})");
  EXPECT_EQ(unknown.status_code, otlp::StatusCode::kUnset);
  EXPECT_TRUE(unknown.attributes.empty());

  otlp::Span error_true = span_with(R"({"error":"true"})");
  EXPECT_EQ(error_true.status_code, otlp::StatusCode::kError);
  EXPECT_EQ(error_true.status_message, "");
  EXPECT_EQ(Attribute(error_true.attributes, "error"), nullptr);
  EXPECT_EQ(span_with(R"({"error":""})").status_code, otlp::StatusCode::kError);

  otlp::Span error_false = span_with(R"({"error":"false"})");
  EXPECT_EQ(error_false.status_code, otlp::StatusCode::kUnset);
  EXPECT_EQ(StringAttribute(error_false.attributes, "error"), "false");

  // The error tag wins over an OK code; a description is the message.
  otlp::Span both = span_with(R"({"otel.status_code":"OK","otel.status_description":"d","error":"e"})");
  EXPECT_EQ(both.status_code, otlp::StatusCode::kError);
  EXPECT_EQ(both.status_message, "d");
  // A description without a code stays a tag.
  EXPECT_EQ(StringAttribute(span_with(R"({"otel.status_description":"d"})").attributes, "otel.status_description"), "d");
}

TEST(ZipkinTranslateTest, ResourceScopeAndGrouping) {
  otlp::TracesData data = Translate(std::string("[") +
      V2Span(R"("localEndpoint":{"serviceName":"api"},"tags":{"telemetry.sdk.language":"nodejs","service.name":"api",
                "otel.library.name":"express","otel.library.version":"4.1","http.route":"/x"})", "0000000000000001") + "," +
      V2Span(R"("localEndpoint":{"serviceName":"api"},"tags":{"telemetry.sdk.language":"nodejs",
                "otel.scope.name":"pg","otel.library.name":"ignored"})", "0000000000000002") + "," +
      V2Span(R"("localEndpoint":{"serviceName":"api"},"tags":{"telemetry.sdk.language":"nodejs",
                "otel.library.name":"express","otel.library.version":"4.1"})", "0000000000000003") + "," +
      V2Span(R"("localEndpoint":{"serviceName":"db"},"tags":{"otlp.service.name.source":"db.instance"})",
             "0000000000000004") + "," +
      V2Span(R"("localEndpoint":{"ipv4":"10.1.1.1"})", "0000000000000005") + "]");
  ASSERT_EQ(data.resource_spans.size(), 3u);
  const otlp::ResourceSpans& api = data.resource_spans[0];
  EXPECT_EQ(StringAttribute(api.resource.attributes, "service.name"), "api");
  EXPECT_EQ(StringAttribute(api.resource.attributes, "telemetry.sdk.language"), "nodejs");
  ASSERT_EQ(api.scope_spans.size(), 2u);
  EXPECT_EQ(api.scope_spans[0].scope.name, "express");
  EXPECT_EQ(api.scope_spans[0].scope.version, "4.1");
  ASSERT_EQ(api.scope_spans[0].spans.size(), 2u);  // spans 1 and 3 share resource and scope
  EXPECT_EQ(Hex(api.scope_spans[0].spans[1].span_id), "0000000000000003");
  const otlp::Span& first = api.scope_spans[0].spans[0];
  EXPECT_EQ(StringAttribute(first.attributes, "http.route"), "/x");
  EXPECT_EQ(first.attributes.size(), 1u) << "resource and scope tags leave the span";
  EXPECT_EQ(api.scope_spans[1].scope.name, "pg");  // otel.scope.name wins over otel.library.name
  EXPECT_TRUE(api.scope_spans[1].spans[0].attributes.empty());

  const otlp::ResourceSpans& db = data.resource_spans[1];
  EXPECT_EQ(StringAttribute(db.resource.attributes, "db.instance"), "db");  // otlp.service.name.source
  EXPECT_EQ(Attribute(db.resource.attributes, "service.name"), nullptr);
  const otlp::ResourceSpans& anonymous = data.resource_spans[2];
  EXPECT_TRUE(anonymous.resource.attributes.empty());
  EXPECT_EQ(StringAttribute(anonymous.scope_spans[0].spans[0].attributes, "net.host.ip"), "10.1.1.1");
}

TEST(ZipkinTranslateTest, TimesIdsAndTraceState) {
  otlp::Span absent = OnlySpan(Translate(std::string(R"([{"traceId":")") + kTrace32 + R"(","id":"0000000000000001","duration":7}])"));
  EXPECT_EQ(absent.start_time_unix_nano, 0u);
  EXPECT_EQ(absent.end_time_unix_nano, 7000u);
  ASSERT_NE(Attribute(absent.attributes, "otel.zipkin.absentField.startTime"), nullptr);
  EXPECT_TRUE(Attribute(absent.attributes, "otel.zipkin.absentField.startTime")->bool_value);

  otlp::Span fractional = OnlySpan(Translate(V2List(R"("timestamp":1700000000000000.5,"duration":1.25)")));
  EXPECT_EQ(fractional.start_time_unix_nano, 1700000000000000500ull);
  EXPECT_EQ(fractional.end_time_unix_nano, 1700000000000001750ull);

  EXPECT_TRUE(OnlySpan(Translate(V2List(R"("parentId":"0000000000000001")"))).parent_span_id.empty())
      << "a parent equal to the span is no parent";
  EXPECT_TRUE(OnlySpan(Translate(V2List(R"("parentId":"0000000000000000")"))).parent_span_id.empty());
  EXPECT_TRUE(OnlySpan(Translate(V2List(R"("parentId":null)"))).parent_span_id.empty());
  EXPECT_EQ(Hex(OnlySpan(Translate(V2List(""))).span_id), "0000000000000001");
  // 17 to 31 hex characters are left-padded to 128 bits, as Zipkin does; either case.
  EXPECT_EQ(Hex(OnlySpan(Translate(R"([{"traceId":"1463AC35C9F6413AD","id":"A2FB4A1D1A96D312"}])")).trace_id),
            "0000000000000001463ac35c9f6413ad");
  otlp::Span state = OnlySpan(Translate(V2List(R"("tags":{"w3c.tracestate":"vendor=1"})")));
  EXPECT_EQ(state.trace_state, "vendor=1");
  EXPECT_TRUE(state.attributes.empty());
  // Non-string tag values are kept as their text; a repeated key keeps its last value.
  otlp::Span typed = OnlySpan(Translate(V2List(R"("tags":{"n":42,"b":true,"d":1.5,"k":"a","k":"b","z":null})")));
  EXPECT_EQ(StringAttribute(typed.attributes, "n"), "42");
  EXPECT_EQ(StringAttribute(typed.attributes, "b"), "true");
  EXPECT_EQ(StringAttribute(typed.attributes, "d"), "1.5");
  EXPECT_EQ(StringAttribute(typed.attributes, "k"), "b");
  EXPECT_EQ(typed.attributes.size(), 4u);
  EXPECT_TRUE(Translate("[]").resource_spans.empty());
}

TEST(ZipkinTranslateTest, ParseStringTagsTypesValuesAsTheCollector) {
  std::string body = V2List(R"("tags":{"i":"123","neg":"-5","d":"1.5","t":"true","f":"false","e":"1e5",
                                      "big":"99999999999999999999","empty":"","dot":"1.","T":"True","s":"abc"})");
  otlp::Span span = OnlySpan(Translate(body, ZipkinFormat::kJsonV2, true));
  auto type = [&](const char* key) { return Attribute(span.attributes, key)->type; };
  EXPECT_EQ(type("i"), otlp::AnyValue::Type::kInt);
  EXPECT_EQ(Attribute(span.attributes, "i")->int_value, 123);
  EXPECT_EQ(Attribute(span.attributes, "neg")->int_value, -5);
  EXPECT_EQ(type("d"), otlp::AnyValue::Type::kDouble);
  EXPECT_EQ(Attribute(span.attributes, "d")->double_value, 1.5);
  EXPECT_EQ(type("t"), otlp::AnyValue::Type::kBool);
  EXPECT_TRUE(Attribute(span.attributes, "t")->bool_value);
  EXPECT_FALSE(Attribute(span.attributes, "f")->bool_value);
  for (const char* key : {"e", "big", "empty", "dot", "T", "s"}) EXPECT_EQ(type(key), otlp::AnyValue::Type::kString) << key;
  otlp::Span plain = OnlySpan(Translate(body));
  for (const auto& kv : plain.attributes) EXPECT_EQ(kv.value.type, otlp::AnyValue::Type::kString) << kv.key;
}

TEST(ZipkinTranslateTest, V1JsonIsConvertedAsV2) {
  otlp::TracesData data = Translate(R"([
    {"traceId":"463ac35c9f6413ad","id":"0000000000000002","parentId":"0000000000000001","name":"get",
     "annotations":[
       {"timestamp":1000,"value":"cs","endpoint":{"serviceName":"client","ipv4":"10.0.0.1","port":1234}},
       {"timestamp":1500,"value":"retry"},
       {"timestamp":3000,"value":"cr","endpoint":{"serviceName":"client","ipv4":"10.0.0.1"}}],
     "binaryAnnotations":[
       {"key":"http.path","value":"/a","endpoint":{"serviceName":"client"}},
       {"key":"sa","value":true,"endpoint":{"serviceName":"server","ipv4":"10.0.0.2","port":80}},
       {"key":"retries","value":3},
       {"key":"error","value":"timeout"}]},
    {"traceId":"463ac35c9f6413ad","id":"0000000000000003","timestamp":2000,"duration":500,
     "annotations":[{"timestamp":2000,"value":"sr","endpoint":{"serviceName":"server"}},
                    {"timestamp":2500,"value":"ss","endpoint":{"serviceName":"server"}}],
     "binaryAnnotations":[{"key":"ca","value":true,"endpoint":{"ipv4":"10.0.0.1"}}]},
    {"traceId":"463ac35c9f6413ad","id":"0000000000000004",
     "binaryAnnotations":[{"key":"lc","value":"cron"}]}])", ZipkinFormat::kJsonV1);
  ASSERT_EQ(data.resource_spans.size(), 3u);
  EXPECT_EQ(StringAttribute(data.resource_spans[0].resource.attributes, "service.name"), "client");
  const otlp::Span& client = data.resource_spans[0].scope_spans[0].spans[0];
  EXPECT_EQ(client.kind, otlp::SpanKind::kClient);
  EXPECT_EQ(client.name, "get");
  EXPECT_EQ(Hex(client.parent_span_id), "0000000000000001");
  EXPECT_EQ(client.start_time_unix_nano, 1000000u);  // from the annotations
  EXPECT_EQ(client.end_time_unix_nano, 3000000u);
  ASSERT_EQ(client.events.size(), 1u);  // core annotations are not events
  EXPECT_EQ(client.events[0].name, "retry");
  EXPECT_EQ(client.events[0].time_unix_nano, 1500000u);
  EXPECT_EQ(StringAttribute(client.attributes, "http.path"), "/a");
  EXPECT_EQ(StringAttribute(client.attributes, "retries"), "3");
  EXPECT_EQ(StringAttribute(client.attributes, "net.host.ip"), "10.0.0.1");
  EXPECT_EQ(Attribute(client.attributes, "net.host.port")->int_value, 1234);
  EXPECT_EQ(StringAttribute(client.attributes, "peer.service"), "server");  // sa is the remote of a client
  EXPECT_EQ(StringAttribute(client.attributes, "net.peer.ip"), "10.0.0.2");
  EXPECT_EQ(Attribute(client.attributes, "sa"), nullptr);
  EXPECT_EQ(client.status_code, otlp::StatusCode::kError);
  EXPECT_EQ(client.status_message, "timeout");

  EXPECT_EQ(StringAttribute(data.resource_spans[1].resource.attributes, "service.name"), "server");
  const otlp::Span& server = data.resource_spans[1].scope_spans[0].spans[0];
  EXPECT_EQ(server.kind, otlp::SpanKind::kServer);
  EXPECT_EQ(server.start_time_unix_nano, 2000000u);  // the span's own timestamp and duration
  EXPECT_EQ(server.end_time_unix_nano, 2500000u);
  EXPECT_EQ(StringAttribute(server.attributes, "net.peer.ip"), "10.0.0.1");
  EXPECT_TRUE(server.events.empty());

  EXPECT_EQ(StringAttribute(data.resource_spans[2].resource.attributes, "service.name"), "cron");  // from lc
  const otlp::Span& local = data.resource_spans[2].scope_spans[0].spans[0];
  EXPECT_EQ(local.kind, otlp::SpanKind::kUnspecified);
  EXPECT_EQ(StringAttribute(local.attributes, "component"), "cron");
}

// zipkin.proto3, written with the wire primitives (field numbers from zipkin.proto).
std::string ProtoEndpoint(const std::string& service, const std::string& ipv4, int port) {
  std::string e;
  otlp::PutStringIfSet(e, 1, service);
  otlp::PutStringIfSet(e, 2, ipv4);
  otlp::PutVarintIfSet(e, 4, uint64_t(port));
  return e;
}

std::string ProtoSpan(const std::string& trace_id, const std::string& id, const std::string& more = "") {
  std::string s;
  otlp::PutBytesField(s, 1, trace_id);
  otlp::PutBytesField(s, 3, id);
  return s + more;
}

std::string ListOfSpans(const std::vector<std::string>& spans) {
  std::string list;
  for (const auto& s : spans) otlp::PutBytesField(list, 1, s);
  return list;
}

TEST(ZipkinTranslateTest, Proto3ListOfSpans) {
  std::string more;
  otlp::PutBytesField(more, 2, std::string("\x00\x00\x00\x00\x00\x00\x00\x09", 8));
  otlp::PutVarintIfSet(more, 4, 3);  // PRODUCER
  otlp::PutStringIfSet(more, 5, "send");
  otlp::PutTag(more, 6, otlp::kFixed64);
  PutFixed64(more, 1700000000000000ull);
  otlp::PutVarintIfSet(more, 7, 250);
  otlp::PutBytesField(more, 8, ProtoEndpoint("queue-writer", std::string("\x0a\x00\x00\x05", 4), 9000));
  otlp::PutBytesField(more, 9, ProtoEndpoint("kafka", "", 9092));
  std::string annotation;
  otlp::PutTag(annotation, 1, otlp::kFixed64);
  PutFixed64(annotation, 1700000000000100ull);
  otlp::PutStringIfSet(annotation, 2, "flushed");
  otlp::PutBytesField(more, 10, annotation);
  std::string tag;
  otlp::PutStringIfSet(tag, 1, "messaging.system");
  otlp::PutStringIfSet(tag, 2, "kafka");
  otlp::PutBytesField(more, 11, tag);
  otlp::PutVarintIfSet(more, 12, 1);
  otlp::PutVarintIfSet(more, 13, 1);
  otlp::PutVarintIfSet(more, 99, 7);  // unknown fields are skipped
  std::string trace_id = std::string(8, '\0') + "\x01\x02\x03\x04\x05\x06\x07\x08";
  otlp::TracesData data = Translate(ListOfSpans({ProtoSpan(std::string(trace_id.substr(8)), std::string(7, '\0') + "\x0a", more)}),
                                    ZipkinFormat::kProtobufV2);
  EXPECT_EQ(StringAttribute(data.resource_spans[0].resource.attributes, "service.name"), "queue-writer");
  const otlp::Span& span = OnlySpan(data);
  EXPECT_EQ(span.trace_id, trace_id);  // 8 bytes, left-padded
  EXPECT_EQ(Hex(span.span_id), "000000000000000a");
  EXPECT_EQ(Hex(span.parent_span_id), "0000000000000009");
  EXPECT_EQ(span.kind, otlp::SpanKind::kProducer);
  EXPECT_EQ(span.name, "send");
  EXPECT_EQ(span.start_time_unix_nano, 1700000000000000000ull);
  EXPECT_EQ(span.end_time_unix_nano, 1700000000000250000ull);
  EXPECT_EQ(StringAttribute(span.attributes, "messaging.system"), "kafka");
  EXPECT_EQ(StringAttribute(span.attributes, "net.host.ip"), "10.0.0.5");
  EXPECT_EQ(Attribute(span.attributes, "net.host.port")->int_value, 9000);
  EXPECT_EQ(StringAttribute(span.attributes, "peer.service"), "kafka");
  EXPECT_EQ(Attribute(span.attributes, "net.peer.port")->int_value, 9092);
  ASSERT_EQ(span.events.size(), 1u);
  EXPECT_EQ(span.events[0].name, "flushed");
  EXPECT_EQ(span.events[0].time_unix_nano, 1700000000000100000ull);
  EXPECT_TRUE(Translate("", ZipkinFormat::kProtobufV2).resource_spans.empty());
}

TEST(ZipkinTranslateTest, BadInputIsInvalidArgumentNamingTheSpan) {
  struct Case {
    std::string body;
    std::string message_part;
    ZipkinFormat format = ZipkinFormat::kJsonV2;
  };
  std::string trace = std::string(15, '\0') + "\x01";
  std::string id = std::string(7, '\0') + "\x01";
  std::string bad_utf8;
  otlp::PutStringIfSet(bad_utf8, 5, "\xc3\x28");
  std::string wrong_type;
  otlp::PutVarintIfSet(wrong_type, 5, 1);
  std::vector<Case> cases = {
      {"[{", "invalid JSON"},
      {"{}", "expected a JSON list of spans"},
      {"[1]", "spans[0] must be a span object"},
      {R"([{"id":"0000000000000001"}])", "spans[0].traceId is missing"},
      {R"([{"traceId":"463ac35c9f6413ad"}])", "spans[0].id is missing"},
      {"[" + V2Span("") + R"(,{"traceId":"abc","id":"0000000000000001"}])", "spans[1].traceId \"abc\" has 3 hex characters"},
      {R"([{"traceId":"463ac35c9f6413az","id":"0000000000000001"}])", "is not hexadecimal"},
      {R"([{"traceId":"463ac35c9f6413ad463ac35c9f6413ad1","id":"0000000000000001"}])", "expected 16 to 32"},
      {R"([{"traceId":"00000000000000000000000000000000","id":"0000000000000001"}])", "traceId is all zeros"},
      {R"([{"traceId":"463ac35c9f6413ad","id":"000000000000001"}])", "spans[0].id \"000000000000001\" has 15"},
      {R"([{"traceId":"463ac35c9f6413ad","id":"0000000000000000"}])", "spans[0].id is all zeros"},
      {R"([{"traceId":"463ac35c9f6413ad","id":0}])", "spans[0].id must be a string"},
      {V2List(R"("parentId":"12")"), "spans[0].parentId"},
      {V2List(R"("timestamp":"now")"), "spans[0].timestamp must be a number"},
      {V2List(R"("timestamp":-1)"), "spans[0].timestamp must be a non-negative"},
      {V2List(R"("timestamp":18446744073709551615)"), "spans[0].timestamp is out of range"},
      {V2List(R"("timestamp":18446744073709551,"duration":18446744073709551)"), "timestamp plus duration is out of range"},
      {V2List(R"("tags":{"a":{"b":"c"}})"), "spans[0].tags.a must be a string"},
      {V2List(R"("tags":[])"), "spans[0].tags must be an object"},
      {V2List(R"("localEndpoint":{"ipv4":"300.1.1.1"})"), "spans[0].localEndpoint.ipv4 \"300.1.1.1\" is not an IPv4"},
      {V2List(R"("remoteEndpoint":{"ipv6":"1.2.3.4"})"), "is not an IPv6"},
      {V2List(R"("localEndpoint":{"port":"80"})"), "port must be an integer"},
      {V2List(R"("annotations":{})"), "annotations must be a list"},
      {V2List(R"("annotations":[{"timestamp":true}])"), "spans[0].annotations[0].timestamp"},
      {V2List(R"("debug":"yes")"), "spans[0].debug must be true or false"},
      {V2List("\"name\":\"\xff\""), "not valid UTF-8"},
      {V2List(R"("name":"\ud800")"), "invalid JSON"},
      {"[" + V2Span("") + "] x", "invalid JSON"},
      {R"([{"traceId":"463ac35c9f6413ad","id":"0000000000000001","annotations":[1]}])", "annotations[0] must be an object",
       ZipkinFormat::kJsonV1},
      {R"([{"traceId":"463ac35c9f6413ad","id":"0000000000000001","binaryAnnotations":[{"key":"a","value":[]}]}])",
       "binaryAnnotations[0].value must be a string", ZipkinFormat::kJsonV1},
      {"\x0a\x05\x01", "not a valid protobuf", ZipkinFormat::kProtobufV2},
      {ListOfSpans({ProtoSpan(std::string(5, '\x01'), id)}), "spans[0].trace_id has 5 bytes", ZipkinFormat::kProtobufV2},
      {ListOfSpans({ProtoSpan(std::string(16, '\0'), id)}), "trace_id is all zeros", ZipkinFormat::kProtobufV2},
      {ListOfSpans({ProtoSpan(trace, "")}), "spans[0].id is missing", ZipkinFormat::kProtobufV2},
      {ListOfSpans({ProtoSpan(trace, std::string(8, '\0'))}), "spans[0].id is all zeros", ZipkinFormat::kProtobufV2},
      {ListOfSpans({ProtoSpan(trace, id, bad_utf8)}), "spans[0].name is not valid UTF-8", ZipkinFormat::kProtobufV2},
      {ListOfSpans({ProtoSpan(trace, id, wrong_type)}), "wrong wire type", ZipkinFormat::kProtobufV2},
  };
  for (const Case& c : cases) {
    Status status = TranslateStatus(c.body, c.format);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << c.body;
    EXPECT_NE(status.message().find(c.message_part), std::string::npos) << c.body << "\n -> " << status.message();
  }
}

HttpResponse Send(const HttpHandler& handler, http::verb method, const std::string& target, const std::string& type,
                  const std::string& body, const std::vector<std::pair<http::field, std::string>>& headers = {},
                  const std::string& org_id = "") {
  HttpRequest request(method, target, 11);
  if (!type.empty()) request.set(http::field::content_type, type);
  for (const auto& [field, value] : headers) request.set(field, value);
  if (!org_id.empty()) request.set("X-Scope-OrgID", org_id);
  request.body() = body;
  std::promise<HttpResponse> answer;
  handler(std::move(request), [&](HttpResponse r) { answer.set_value(std::move(r)); });
  return answer.get_future().get();
}

std::optional<otlp::TracesData> Stored(Pipeline& pipeline, const std::string& trace_hex, const std::string& tenant = kSingleTenant) {
  auto found = pipeline.reader().FindTrace(tenant, *ParseTraceIdHex(trace_hex));
  EXPECT_TRUE(found.ok());
  return found.ok() ? *found : std::nullopt;
}

TEST(ZipkinHttpHandlerTest, StoresWhatIsPostedAndAnswers202) {
  Pipeline pipeline;
  HttpHandler handler = MakeZipkinHttpHandler(pipeline.distributor(), 1 << 20, {});
  HttpResponse json = Send(handler, http::verb::post, "/api/v2/spans", "application/json", V2List(R"("name":"a")"));
  EXPECT_EQ(json.status, 202u);
  EXPECT_TRUE(json.body.empty());
  auto stored = Stored(pipeline, kTrace32);
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->SpanCount(), 1u);

  std::string trace = std::string(15, '\0') + "\x07";
  std::string proto = ListOfSpans({ProtoSpan(trace, std::string(7, '\0') + "\x01")});
  EXPECT_EQ(Send(handler, http::verb::post, "/api/v2/spans", "application/x-protobuf", proto).status, 202u);
  EXPECT_TRUE(Stored(pipeline, "07").has_value());

  std::string v1 = R"([{"traceId":"0000000000000008","id":"0000000000000001","name":"v1"}])";
  std::string gzipped = CompressForTests(v1, CompressedFormat::kGzip);
  EXPECT_EQ(Send(handler, http::verb::post, "/api/v1/spans?x=1", "application/json", gzipped,
                 {{http::field::content_encoding, "gzip"}}).status, 202u);
  EXPECT_TRUE(Stored(pipeline, "08").has_value());
  // Without a Content-Type a body is JSON, as Zipkin reads it; an empty list is accepted.
  EXPECT_EQ(Send(handler, http::verb::post, "/api/v2/spans", "", "[]").status, 202u);
}

TEST(ZipkinHttpHandlerTest, RefusesWithClearStatuses) {
  Pipeline pipeline;
  HttpHandler handler = MakeZipkinHttpHandler(pipeline.distributor(), 1 << 20, {});
  EXPECT_EQ(Send(handler, http::verb::post, "/api/v2/traces", "application/json", "[]").status, 404u);
  HttpResponse get = Send(handler, http::verb::get, "/api/v2/spans", "", "");
  EXPECT_EQ(get.status, 405u);
  ASSERT_EQ(get.headers.size(), 1u);
  EXPECT_EQ(get.headers[0], (std::pair<std::string, std::string>{"Allow", "POST"}));
  EXPECT_EQ(Send(handler, http::verb::post, "/api/v2/spans", "text/plain", "[]").status, 415u);
  EXPECT_EQ(Send(handler, http::verb::post, "/api/v1/spans", "application/x-thrift", "x").status, 415u);
  EXPECT_EQ(Send(handler, http::verb::post, "/api/v1/spans", "application/x-protobuf", "").status, 415u);
  EXPECT_EQ(Send(handler, http::verb::post, "/api/v2/spans", "application/json", "[]", {{http::field::content_encoding, "br"}}).status,
            415u);
  HttpResponse bad = Send(handler, http::verb::post, "/api/v2/spans", "application/json",
                          R"([{"traceId":"xyz","id":"0000000000000001"}])");
  EXPECT_EQ(bad.status, 400u);
  EXPECT_NE(bad.body.find("spans[0].traceId"), std::string::npos) << bad.body;
  EXPECT_EQ(Send(handler, http::verb::post, "/api/v2/spans", "application/json", "not gzip",
                 {{http::field::content_encoding, "gzip"}}).status, 400u);
  std::string bomb = CompressForTests(std::string(2 << 20, ' '), CompressedFormat::kGzip);
  EXPECT_EQ(Send(handler, http::verb::post, "/api/v2/spans", "application/json", bomb,
                 {{http::field::content_encoding, "gzip"}}).status, 413u);
}

TEST(ZipkinHttpHandlerTest, TenantsComeFromXScopeOrgId) {
  distributor::Options options;
  options.multitenancy_enabled = true;
  Pipeline pipeline(options);
  HttpHandler handler = MakeZipkinHttpHandler(pipeline.distributor(), 1 << 20, {});
  EXPECT_EQ(Send(handler, http::verb::post, "/api/v2/spans", "application/json", V2List("")).status, 401u);
  EXPECT_EQ(Send(handler, http::verb::post, "/api/v2/spans", "application/json", V2List(""), {}, "bad/tenant").status, 400u);
  EXPECT_EQ(Send(handler, http::verb::post, "/api/v2/spans", "application/json", V2List(""), {}, "team-a").status, 202u);
  EXPECT_TRUE(Stored(pipeline, kTrace32, "team-a").has_value());
  EXPECT_FALSE(Stored(pipeline, kTrace32, "team-b").has_value());
}

std::string Mutate(std::string data, const std::vector<std::string>& corpus, std::mt19937_64& rng) {
  int edits = 1 + int(rng() % 4);
  for (int e = 0; e < edits; ++e) {
    size_t at = data.empty() ? 0 : size_t(rng() % data.size());
    switch (rng() % 6) {
      case 0:
        if (!data.empty()) data[at] = char(data[at] ^ char(1 << (rng() % 8)));
        break;
      case 1: data.insert(at, 1, "{}[]\",:0fa\\\x80\xff"[rng() % 14]); break;
      case 2:
        if (!data.empty()) data.erase(at, 1 + rng() % 8);
        break;
      case 3: data.resize(at); break;
      case 4: {
        const std::string& other = corpus[rng() % corpus.size()];
        size_t from = other.empty() ? 0 : size_t(rng() % other.size());
        data.insert(at, other.substr(from, rng() % 64));
        break;
      }
      default:
        if (!data.empty()) data[at] = char(rng());
        break;
    }
  }
  return data;
}

TEST(ZipkinFuzzTest, MutatedBodiesTranslateOrAreInvalidArgument) {
  std::string full_v2 = R"([{"traceId":"463ac35c9f6413ad","id":"a2fb4a1d1a96d312","parentId":"0020000000000001",
    "name":"x","kind":"CLIENT","timestamp":1700000000123456,"duration":25,
    "localEndpoint":{"serviceName":"f","ipv4":"10.0.0.7","ipv6":"::1","port":80},
    "remoteEndpoint":{"serviceName":"b","port":1},"annotations":[{"timestamp":1,"value":"v"}],
    "tags":{"error":"x","otel.status_code":"OK","n":"1.5","otel.library.name":"l","w3c.tracestate":"a=b"},
    "debug":false,"shared":true}])";
  std::string full_v1 = R"([{"traceId":"463ac35c9f6413ad","id":"a2fb4a1d1a96d312","timestamp":5,
    "annotations":[{"timestamp":1,"value":"cs","endpoint":{"serviceName":"c"}},{"timestamp":9,"value":"cr"}],
    "binaryAnnotations":[{"key":"sa","value":true,"endpoint":{"ipv4":"1.2.3.4"}},{"key":"lc","value":"q"}]}])";
  std::string trace = "\x01\x02\x03\x04\x05\x06\x07\x08\x01\x02\x03\x04\x05\x06\x07\x08";
  std::string more;
  otlp::PutVarintIfSet(more, 4, 2);
  otlp::PutStringIfSet(more, 5, "n");
  otlp::PutBytesField(more, 8, ProtoEndpoint("s", "\x01\x02\x03\x04", 5));
  std::string full_proto = ListOfSpans({ProtoSpan(trace, "\x01\x02\x03\x04\x05\x06\x07\x08", more),
                                        ProtoSpan(trace, "\x01\x02\x03\x04\x05\x06\x07\x09")});
  std::vector<std::pair<std::string, ZipkinFormat>> seeds = {
      {full_v2, ZipkinFormat::kJsonV2}, {full_v1, ZipkinFormat::kJsonV1}, {full_proto, ZipkinFormat::kProtobufV2}};
  std::vector<std::string> corpus = {full_v2, full_v1, full_proto};
  std::mt19937_64 rng(20240610);
  int translated = 0;
  for (int i = 0; i < 30000; ++i) {
    const auto& [seed, format] = seeds[size_t(i) % seeds.size()];
    std::string body = Mutate(seed, corpus, rng);
    otlp::TracesData data;
    Status status = TranslateZipkin(body, format, ZipkinOptions{i % 2 == 0}, data);
    ASSERT_TRUE(status.ok() || status.code() == StatusCode::kInvalidArgument) << status.ToString();
    if (status.ok()) {
      ++translated;
      // What is accepted is valid OTLP: the distributor's own checks (IDs, UTF-8) pass.
      otlp::SplitRequest split;
      Status valid = otlp::SplitByTrace(otlp::EncodeTracesData(data), split);
      ASSERT_TRUE(valid.ok()) << valid.ToString() << "\n" << body;
    }
  }
  EXPECT_GT(translated, 100) << "the mutations should leave some bodies valid";

  // A shorter run through the handler and the whole ingest path: never a 5xx.
  Pipeline pipeline;
  HttpHandler handler = MakeZipkinHttpHandler(pipeline.distributor(), 1 << 20, {});
  for (int i = 0; i < 600; ++i) {
    const auto& [seed, format] = seeds[size_t(i) % seeds.size()];
    std::string type = format == ZipkinFormat::kProtobufV2 ? "application/x-protobuf" : "application/json";
    std::string target = format == ZipkinFormat::kJsonV1 ? "/api/v1/spans" : "/api/v2/spans";
    unsigned status = Send(handler, http::verb::post, target, type, Mutate(seed, corpus, rng)).status;
    ASSERT_TRUE(status == 202 || status == 400) << status;
  }
  EXPECT_EQ(Send(handler, http::verb::post, "/api/v2/spans", "application/json", full_v2).status, 202u);
}

}  // namespace
}  // namespace tracery::receiver
