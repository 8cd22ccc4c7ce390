// Decoder of what Jaeger clients send over gRPC, api_v2 protobuf (field numbers from Jaeger's
// model.proto and collector.proto): PostSpansRequest {1: batch}; Batch {1: spans, 2: process};
// Span {1: trace_id, 2: span_id, 3: operation_name, 4: references, 5: flags, 6: start_time,
//       7: duration, 8: tags, 9: logs, 10: process, 11: process_id, 12: warnings};
// SpanRef {1: trace_id, 2: span_id, 3: ref_type}; KeyValue {1: key, 2: v_type, 3: v_str,
// 4: v_bool, 5: v_int64, 6: v_float64, 7: v_binary}; Log {1: timestamp, 2: fields};
// Process {1: service_name, 2: tags}; Timestamp and Duration {1: seconds, 2: nanos}.
#include <cstring>
#include <optional>
#include <string>

#include "common/coding.h"
#include "otlp/wire.h"
#include "receiver/jaeger_model.h"

namespace tracery::receiver {
namespace {

using otlp::WireField;

Status ProtoError(const std::string& what) { return Status::InvalidArgument("malformed Jaeger protobuf: " + what); }

// Reads the fields of one message; `on_field` returns false on a field of the wrong wire type.
template <typename OnField>
Status ForEachField(std::string_view bytes, const char* message, OnField&& on_field) {
  ByteReader reader(bytes);
  WireField field;
  while (!reader.empty()) {
    if (!otlp::ReadField(reader, field)) return ProtoError(std::string("cannot read a field of ") + message);
    Status status = on_field(field);
    if (!status.ok()) return status;
  }
  return Status::Ok();
}

Status WrongType(const char* message, uint32_t number) {
  return ProtoError(std::string(message) + " field " + std::to_string(number) + " has the wrong wire type");
}

Status DecodeProtoKeyValue(std::string_view bytes, otlp::KeyValue& out) {
  std::string_view key, text, binary;
  uint64_t type = 0, flag = 0, integer = 0, number_bits = 0;
  TRACERY_RETURN_IF_ERROR(ForEachField(bytes, "KeyValue", [&](const WireField& f) -> Status {
    bool ok = true;
    switch (f.number) {
      case 1: ok = f.type == otlp::kLengthDelimited; key = f.bytes; break;
      case 2: ok = f.type == otlp::kVarint; type = f.integer; break;
      case 3: ok = f.type == otlp::kLengthDelimited; text = f.bytes; break;
      case 4: ok = f.type == otlp::kVarint; flag = f.integer; break;
      case 5: ok = f.type == otlp::kVarint; integer = f.integer; break;
      case 6: ok = f.type == otlp::kFixed64; number_bits = f.integer; break;
      case 7: ok = f.type == otlp::kLengthDelimited; binary = f.bytes; break;
    }
    return ok ? Status::Ok() : WrongType("KeyValue", f.number);
  }));
  out.key = std::string(key);
  otlp::AnyValue& v = out.value;
  // api_v2 ValueType: STRING, BOOL, INT64, FLOAT64, BINARY.
  switch (int32_t(type)) {
    case 0: v = jaeger::StringValue(text); break;
    case 1: v.type = otlp::AnyValue::Type::kBool; v.bool_value = flag != 0; break;
    case 2: v.type = otlp::AnyValue::Type::kInt; v.int_value = int64_t(integer); break;
    case 3: v.type = otlp::AnyValue::Type::kDouble; std::memcpy(&v.double_value, &number_bits, 8); break;
    case 4: v.type = otlp::AnyValue::Type::kBytes; v.string_value = std::string(binary); break;
    default: v = jaeger::StringValue("<Unknown Jaeger TagType " + std::to_string(int32_t(type)) + ">"); break;
  }
  return Status::Ok();
}

Status DecodeProtoTags(std::string_view bytes, otlp::Attributes& out, size_t& items) {
  if (++items > kJaegerMaxItemsPerSpan)
    return ProtoError("more than " + std::to_string(kJaegerMaxItemsPerSpan) + " tags, logs and references in one span");
  return DecodeProtoKeyValue(bytes, out.emplace_back());
}

// Timestamp or Duration as nanoseconds (wrapping as Go's time arithmetic does).
Status DecodeProtoTime(std::string_view bytes, const char* message, uint64_t& nanos) {
  int64_t seconds = 0, fraction = 0;
  TRACERY_RETURN_IF_ERROR(ForEachField(bytes, message, [&](const WireField& f) -> Status {
    if (f.number != 1 && f.number != 2) return Status::Ok();
    if (f.type != otlp::kVarint) return WrongType(message, f.number);
    (f.number == 1 ? seconds : fraction) = f.number == 1 ? int64_t(f.integer) : int64_t(int32_t(f.integer));
    return Status::Ok();
  }));
  nanos = uint64_t(seconds) * 1'000'000'000u + uint64_t(fraction);
  return Status::Ok();
}

uint64_t BigEndian64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | static_cast<uint8_t>(p[i]);
  return v;
}

Status DecodeProtoTraceId(std::string_view bytes, const char* what, uint64_t& high, uint64_t& low) {
  if (bytes.empty()) return Status::Ok();
  if (bytes.size() != 16) return ProtoError(std::string(what) + " trace_id is not 16 bytes");
  high = BigEndian64(bytes.data());
  low = BigEndian64(bytes.data() + 8);
  return Status::Ok();
}

Status DecodeProtoSpanId(std::string_view bytes, const char* what, uint64_t& id) {
  if (bytes.empty()) return Status::Ok();
  if (bytes.size() != 8) return ProtoError(std::string(what) + " span_id is not 8 bytes");
  id = BigEndian64(bytes.data());
  return Status::Ok();
}

Status DecodeProtoSpan(std::string_view bytes, jaeger::Span& out, std::optional<std::string_view>& process) {
  uint64_t duration = 0;
  TRACERY_RETURN_IF_ERROR(ForEachField(bytes, "Span", [&](const WireField& f) -> Status {
    bool length_delimited = f.type == otlp::kLengthDelimited;
    switch (f.number) {
      case 1: if (!length_delimited) break; return DecodeProtoTraceId(f.bytes, "Span", out.trace_high, out.trace_low);
      case 2: if (!length_delimited) break; return DecodeProtoSpanId(f.bytes, "Span", out.span_id);
      case 3: if (!length_delimited) break; out.operation_name = f.bytes; return Status::Ok();
      case 4: {
        if (!length_delimited) break;
        if (++out.items > kJaegerMaxItemsPerSpan) return ProtoError("too many references in one span");
        jaeger::Reference& ref = out.references.emplace_back();
        return ForEachField(f.bytes, "SpanRef", [&](const WireField& g) -> Status {
          if (g.number == 1 && g.type == otlp::kLengthDelimited)
            return DecodeProtoTraceId(g.bytes, "SpanRef", ref.trace_high, ref.trace_low);
          if (g.number == 2 && g.type == otlp::kLengthDelimited) return DecodeProtoSpanId(g.bytes, "SpanRef", ref.span_id);
          if (g.number == 3 && g.type == otlp::kVarint) ref.type = int32_t(g.integer);
          else if (g.number >= 1 && g.number <= 3) return WrongType("SpanRef", g.number);
          return Status::Ok();
        });
      }
      case 5: if (f.type != otlp::kVarint) break; out.flags = uint32_t(f.integer); return Status::Ok();
      case 6: if (!length_delimited) break; return DecodeProtoTime(f.bytes, "Timestamp", out.start_unix_nano);
      case 7: if (!length_delimited) break; return DecodeProtoTime(f.bytes, "Duration", duration);
      case 8: if (!length_delimited) break; return DecodeProtoTags(f.bytes, out.tags, out.items);
      case 9: {
        if (!length_delimited) break;
        if (++out.items > kJaegerMaxItemsPerSpan) return ProtoError("too many logs in one span");
        jaeger::Log& log = out.logs.emplace_back();
        return ForEachField(f.bytes, "Log", [&](const WireField& g) -> Status {
          if (g.number == 1 && g.type == otlp::kLengthDelimited) return DecodeProtoTime(g.bytes, "Timestamp", log.time_unix_nano);
          if (g.number == 2 && g.type == otlp::kLengthDelimited) return DecodeProtoTags(g.bytes, log.fields, out.items);
          if (g.number == 1 || g.number == 2) return WrongType("Log", g.number);
          return Status::Ok();
        });
      }
      case 10: if (!length_delimited) break; process = f.bytes; return Status::Ok();
      default: return Status::Ok();  // process_id, warnings and unknown fields
    }
    return WrongType("Span", f.number);
  }));
  out.end_unix_nano = out.start_unix_nano + duration;
  return Status::Ok();
}

Status DecodeProtoProcess(std::string_view bytes, jaeger::Process& out) {
  out = jaeger::Process{};
  out.present = true;
  size_t items = 0;
  return ForEachField(bytes, "Process", [&](const WireField& f) -> Status {
    if (f.number == 1 && f.type == otlp::kLengthDelimited) out.service_name = f.bytes;
    else if (f.number == 2 && f.type == otlp::kLengthDelimited) return DecodeProtoTags(f.bytes, out.tags, items);
    else if (f.number == 1 || f.number == 2) return WrongType("Process", f.number);
    return Status::Ok();
  });
}

// One Batch: its process first (the spans' default), then each span with its own process or
// that one.
Status DecodeProtoBatch(std::string_view bytes, jaeger::RequestBuilder& builder, size_t& index) {
  jaeger::Process batch_process;
  TRACERY_RETURN_IF_ERROR(ForEachField(bytes, "Batch", [&](const WireField& f) -> Status {
    if (f.number == 2 && f.type == otlp::kLengthDelimited) return DecodeProtoProcess(f.bytes, batch_process);
    if (f.number == 1 || f.number == 2) return f.type == otlp::kLengthDelimited ? Status::Ok() : WrongType("Batch", f.number);
    return Status::Ok();
  }));
  std::string batch_resource = jaeger::EncodeProcess(batch_process);
  return ForEachField(bytes, "Batch", [&](const WireField& f) -> Status {
    if (f.number != 1) return Status::Ok();
    jaeger::Span span;
    std::optional<std::string_view> own_process;
    TRACERY_RETURN_IF_ERROR(DecodeProtoSpan(f.bytes, span, own_process));
    if (!own_process) return builder.AddSpan(span, index++, batch_resource);
    jaeger::Process process;
    TRACERY_RETURN_IF_ERROR(DecodeProtoProcess(*own_process, process));
    return builder.AddSpan(span, index++, jaeger::EncodeProcess(process));
  });
}

}  // namespace

Result<JaegerConversion> JaegerPostSpansToOtlp(std::string_view request) {
  jaeger::RequestBuilder builder;
  size_t index = 0;
  TRACERY_RETURN_IF_ERROR(ForEachField(request, "PostSpansRequest", [&](const WireField& f) -> Status {
    if (f.number != 1) return Status::Ok();
    if (f.type != otlp::kLengthDelimited) return WrongType("PostSpansRequest", f.number);
    return DecodeProtoBatch(f.bytes, builder, index);
  }));
  return builder.Finish();
}

}  // namespace tracery::receiver
