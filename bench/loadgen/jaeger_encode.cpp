#include "loadgen/jaeger_encode.h"

#include <bit>
#include <cstring>

namespace tracery::bench {
namespace {

using opentelemetry::proto::common::v1::AnyValue;
using opentelemetry::proto::common::v1::KeyValue;
using opentelemetry::proto::trace::v1::Span;
using opentelemetry::proto::trace::v1::Status;

// Thrift binary protocol type bytes.
constexpr uint8_t kStop = 0, kBool = 2, kDouble = 4, kI32 = 8, kI64 = 10, kString = 11,
                  kStruct = 12, kList = 15;
// jaeger.thrift TagType.
enum TagType : int32_t { kTagString = 0, kTagDouble = 1, kTagBool = 2, kTagLong = 3, kTagBinary = 4 };

class ThriftWriter {
 public:
  explicit ThriftWriter(std::string& out) : out_(out) {}

  size_t size() const { return out_.size(); }
  void FieldHeader(uint8_t type, int16_t id) {
    out_ += static_cast<char>(type);
    I16(id);
  }
  void Stop() { out_ += static_cast<char>(kStop); }
  void I16(int16_t value) { BigEndian(static_cast<uint16_t>(value), 2); }
  void I32(int32_t value) { BigEndian(static_cast<uint32_t>(value), 4); }
  void I64(int64_t value) { BigEndian(static_cast<uint64_t>(value), 8); }
  void String(std::string_view text) {
    I32(static_cast<int32_t>(text.size()));
    out_ += text;
  }
  void ListHeader(uint8_t element_type, size_t count) {
    out_ += static_cast<char>(element_type);
    I32(static_cast<int32_t>(count));
  }

  void StringTag(std::string_view key, std::string_view value) {
    TagStart(key, kTagString);
    FieldHeader(kString, 3);
    String(value);
    Stop();
  }
  void BoolTag(std::string_view key, bool value) {
    TagStart(key, kTagBool);
    FieldHeader(kBool, 5);
    out_ += static_cast<char>(value ? 1 : 0);
    Stop();
  }
  // False for attribute types Jaeger tags cannot carry (arrays, maps); none are generated.
  bool Tag(const KeyValue& attribute) {
    const AnyValue& value = attribute.value();
    switch (value.value_case()) {
      case AnyValue::kStringValue: StringTag(attribute.key(), value.string_value()); return true;
      case AnyValue::kBoolValue: BoolTag(attribute.key(), value.bool_value()); return true;
      case AnyValue::kIntValue:
        TagStart(attribute.key(), kTagLong);
        FieldHeader(kI64, 6);
        I64(value.int_value());
        Stop();
        return true;
      case AnyValue::kDoubleValue:
        TagStart(attribute.key(), kTagDouble);
        FieldHeader(kDouble, 4);
        I64(static_cast<int64_t>(std::bit_cast<uint64_t>(value.double_value())));
        Stop();
        return true;
      case AnyValue::kBytesValue:
        TagStart(attribute.key(), kTagBinary);
        FieldHeader(kString, 7);
        String(value.bytes_value());
        Stop();
        return true;
      default:
        return false;
    }
  }

 private:
  void TagStart(std::string_view key, TagType type) {
    FieldHeader(kString, 1);
    String(key);
    FieldHeader(kI32, 2);
    I32(type);
  }
  void BigEndian(uint64_t value, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out_ += static_cast<char>((value >> (8 * i)) & 0xff);
  }

  std::string& out_;
};

int64_t BigEndianId(const std::string& bytes, size_t from) {
  uint64_t value = 0;
  for (size_t i = from; i < from + 8 && i < bytes.size(); ++i) {
    value = (value << 8) | static_cast<uint8_t>(bytes[i]);
  }
  return static_cast<int64_t>(value);
}

const char* KindTag(Span::SpanKind kind) {
  switch (kind) {
    case Span::SPAN_KIND_SERVER: return "server";
    case Span::SPAN_KIND_CLIENT: return "client";
    case Span::SPAN_KIND_PRODUCER: return "producer";
    case Span::SPAN_KIND_CONSUMER: return "consumer";
    case Span::SPAN_KIND_INTERNAL: return "internal";
    default: return nullptr;
  }
}

// Tags are a Thrift list whose length comes first; counting them takes a pass of its own.
size_t CountTags(const Span& span, std::string_view scope_name, std::string_view scope_version) {
  size_t count = span.attributes_size() + !scope_name.empty() + !scope_version.empty() +
                 (KindTag(span.kind()) != nullptr);
  for (const KeyValue& attribute : span.attributes()) {
    const auto type = attribute.value().value_case();
    if (type == AnyValue::kArrayValue || type == AnyValue::kKvlistValue) --count;
  }
  if (span.status().code() == Status::STATUS_CODE_ERROR) {
    count += 2 + !span.status().message().empty();  // error, otel.status_code, description
  } else if (span.status().code() == Status::STATUS_CODE_OK) {
    count += 1;
  }
  return count;
}

void WriteSpan(const Span& span, std::string_view scope_name, std::string_view scope_version,
               uint32_t trace_index, ThriftWriter& writer, HttpBody& body) {
  // traceIdLow (1) and traceIdHigh (2) back to back: http_template.h relies on that layout.
  writer.FieldHeader(kI64, 1);
  body.trace_id_offsets.emplace_back(trace_index, static_cast<uint32_t>(writer.size()));
  writer.I64(BigEndianId(span.trace_id(), 8));
  writer.FieldHeader(kI64, 2);
  writer.I64(BigEndianId(span.trace_id(), 0));
  writer.FieldHeader(kI64, 3);
  writer.I64(BigEndianId(span.span_id(), 0));
  writer.FieldHeader(kI64, 4);
  writer.I64(BigEndianId(span.parent_span_id(), 0));  // 0: a root span
  writer.FieldHeader(kString, 5);
  writer.String(span.name());
  writer.FieldHeader(kI32, 7);
  writer.I32(1);  // flags: sampled
  writer.FieldHeader(kI64, 8);
  body.timestamp_offsets.push_back(static_cast<uint32_t>(writer.size()));
  writer.I64(static_cast<int64_t>(span.start_time_unix_nano() / 1000));
  writer.FieldHeader(kI64, 9);
  writer.I64(static_cast<int64_t>((span.end_time_unix_nano() - span.start_time_unix_nano()) / 1000));

  writer.FieldHeader(kList, 10);
  writer.ListHeader(kStruct, CountTags(span, scope_name, scope_version));
  for (const KeyValue& attribute : span.attributes()) writer.Tag(attribute);
  if (!scope_name.empty()) writer.StringTag("otel.scope.name", scope_name);
  if (!scope_version.empty()) writer.StringTag("otel.scope.version", scope_version);
  if (const char* kind = KindTag(span.kind())) writer.StringTag("span.kind", kind);
  if (span.status().code() == Status::STATUS_CODE_ERROR) {
    writer.BoolTag("error", true);
    writer.StringTag("otel.status_code", "ERROR");
    if (!span.status().message().empty()) {
      writer.StringTag("otel.status_description", span.status().message());
    }
  } else if (span.status().code() == Status::STATUS_CODE_OK) {
    writer.StringTag("otel.status_code", "OK");
  }

  if (span.events_size() > 0) {
    writer.FieldHeader(kList, 11);
    writer.ListHeader(kStruct, span.events_size());
    for (const auto& event : span.events()) {
      writer.FieldHeader(kI64, 1);
      body.timestamp_offsets.push_back(static_cast<uint32_t>(writer.size()));
      writer.I64(static_cast<int64_t>(event.time_unix_nano() / 1000));
      size_t fields = 1;
      for (const KeyValue& attribute : event.attributes()) {
        const auto type = attribute.value().value_case();
        fields += type != AnyValue::kArrayValue && type != AnyValue::kKvlistValue;
      }
      writer.FieldHeader(kList, 2);
      writer.ListHeader(kStruct, fields);
      writer.StringTag("event", event.name());
      for (const KeyValue& attribute : event.attributes()) writer.Tag(attribute);
      writer.Stop();
    }
  }
  writer.Stop();
}

}  // namespace

bool EncodeJaegerGroup(const opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest& request,
                       HttpRequestGroup& group, std::string& error) {
  TraceNumbering traces;
  for (const auto& resource_spans : request.resource_spans()) {
    HttpBody body;
    ThriftWriter writer(body.encoded);
    // Batch.process (1): service.name is the serviceName, the rest of the resource its tags.
    std::string_view service_name;
    std::vector<const KeyValue*> process_tags;
    for (const KeyValue& attribute : resource_spans.resource().attributes()) {
      if (attribute.key() == "service.name") {
        service_name = attribute.value().string_value();
      } else {
        process_tags.push_back(&attribute);
      }
    }
    writer.FieldHeader(kStruct, 1);
    writer.FieldHeader(kString, 1);
    writer.String(service_name);
    writer.FieldHeader(kList, 2);
    writer.ListHeader(kStruct, process_tags.size());
    for (const KeyValue* attribute : process_tags) {
      if (!writer.Tag(*attribute)) {
        error = "jaeger: resource attribute " + attribute->key() + " has no Jaeger tag type";
        return false;
      }
    }
    writer.Stop();

    // Batch.spans (2).
    size_t span_count = 0;
    for (const auto& scope_spans : resource_spans.scope_spans()) span_count += scope_spans.spans_size();
    writer.FieldHeader(kList, 2);
    writer.ListHeader(kStruct, span_count);
    for (const auto& scope_spans : resource_spans.scope_spans()) {
      for (const auto& span : scope_spans.spans()) {
        WriteSpan(span, scope_spans.scope().name(), scope_spans.scope().version(),
                  traces.IndexOf(span.trace_id()), writer, body);
      }
    }
    writer.Stop();
    body.span_count = span_count;
    group.span_count += span_count;
    group.bodies.push_back(std::move(body));
  }
  group.trace_count = traces.size();
  return true;
}

}  // namespace tracery::bench
