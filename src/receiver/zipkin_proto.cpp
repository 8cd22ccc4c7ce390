// The zipkin.proto3 reader: ListOfSpans { repeated Span spans = 1; }, field numbers from
// zipkin.proto. Unknown fields are skipped, as proto3 does; a known field of the wrong wire
// type, a truncated message or a string that is not UTF-8 is InvalidArgument naming the span.
#include <arpa/inet.h>

#include <limits>

#include "common/utf8.h"
#include "otlp/wire.h"
#include "receiver/zipkin_span.h"

namespace tracery::receiver::zipkin {
namespace {

using otlp::WireField;
using otlp::WireType;

Status Malformed(const std::string& where) { return Invalid(where, "is not a valid protobuf message"); }

Status WantType(const WireField& field, WireType type, const std::string& where) {
  if (field.type == type) return Status::Ok();
  return Invalid(where, "field " + std::to_string(field.number) + " has the wrong wire type");
}

Status ProtoText(const WireField& field, const std::string& where, std::string& out) {
  TRACERY_RETURN_IF_ERROR(WantType(field, otlp::kLengthDelimited, where));
  if (!IsValidUtf8(field.bytes)) return Invalid(where, "is not valid UTF-8 (proto3 strings must be)");
  out.assign(field.bytes);
  return Status::Ok();
}

Status ProtoEndpoint(std::string_view bytes, const std::string& where, Endpoint& out) {
  ByteReader reader(bytes);
  WireField field;
  while (!reader.empty()) {
    if (!otlp::ReadField(reader, field)) return Malformed(where);
    switch (field.number) {
      case 1: TRACERY_RETURN_IF_ERROR(ProtoText(field, where + ".service_name", out.service_name)); break;
      case 2: case 3: {
        TRACERY_RETURN_IF_ERROR(WantType(field, otlp::kLengthDelimited, where));
        bool v4 = field.number == 2;
        if (field.bytes.empty()) break;
        if (field.bytes.size() != (v4 ? 4u : 16u))
          return Invalid(where + (v4 ? ".ipv4" : ".ipv6"), "must be " + std::string(v4 ? "4" : "16") + " bytes");
        char text[INET6_ADDRSTRLEN];
        (v4 ? out.ipv4 : out.ipv6) = inet_ntop(v4 ? AF_INET : AF_INET6, field.bytes.data(), text, sizeof text);
        break;
      }
      case 4:
        TRACERY_RETURN_IF_ERROR(WantType(field, otlp::kVarint, where + ".port"));
        out.port = int32_t(uint32_t(field.integer));
        break;
      default: break;
    }
  }
  return Status::Ok();
}

Status ProtoAnnotation(std::string_view bytes, const std::string& where, Annotation& out) {
  ByteReader reader(bytes);
  WireField field;
  while (!reader.empty()) {
    if (!otlp::ReadField(reader, field)) return Malformed(where);
    if (field.number == 1) {
      TRACERY_RETURN_IF_ERROR(WantType(field, otlp::kFixed64, where + ".timestamp"));
      if (field.integer > std::numeric_limits<uint64_t>::max() / 1000) return Invalid(where + ".timestamp", "is out of range");
      out.timestamp_nanos = field.integer * 1000;
    } else if (field.number == 2) {
      TRACERY_RETURN_IF_ERROR(ProtoText(field, where + ".value", out.value));
    }
  }
  return Status::Ok();
}

Status ProtoTag(std::string_view bytes, const std::string& where, Span& span) {
  ByteReader reader(bytes);
  WireField field;
  std::string key, value;
  while (!reader.empty()) {
    if (!otlp::ReadField(reader, field)) return Malformed(where);
    if (field.number == 1) TRACERY_RETURN_IF_ERROR(ProtoText(field, where + " key", key));
    else if (field.number == 2) TRACERY_RETURN_IF_ERROR(ProtoText(field, where + " value", value));
  }
  span.tags.emplace_back(std::move(key), std::move(value));
  return Status::Ok();
}

Status ProtoSpan(std::string_view bytes, const std::string& where, Span& span) {
  ByteReader reader(bytes);
  WireField field;
  std::string_view trace_id, id, parent_id;
  bool has_trace_id = false, has_id = false;
  while (!reader.empty()) {
    if (!otlp::ReadField(reader, field)) return Malformed(where);
    switch (field.number) {
      case 1: TRACERY_RETURN_IF_ERROR(WantType(field, otlp::kLengthDelimited, where)); trace_id = field.bytes; has_trace_id = true; break;
      case 2: TRACERY_RETURN_IF_ERROR(WantType(field, otlp::kLengthDelimited, where)); parent_id = field.bytes; break;
      case 3: TRACERY_RETURN_IF_ERROR(WantType(field, otlp::kLengthDelimited, where)); id = field.bytes; has_id = true; break;
      case 4:
        TRACERY_RETURN_IF_ERROR(WantType(field, otlp::kVarint, where + ".kind"));
        span.kind = field.integer <= 4 ? static_cast<Kind>(field.integer) : Kind::kUnspecified;
        break;
      case 5: TRACERY_RETURN_IF_ERROR(ProtoText(field, where + ".name", span.name)); break;
      case 6:
        TRACERY_RETURN_IF_ERROR(WantType(field, otlp::kFixed64, where + ".timestamp"));
        if (field.integer > std::numeric_limits<uint64_t>::max() / 1000) return Invalid(where + ".timestamp", "is out of range");
        span.timestamp_nanos = field.integer * 1000;
        break;
      case 7:
        TRACERY_RETURN_IF_ERROR(WantType(field, otlp::kVarint, where + ".duration"));
        if (field.integer > std::numeric_limits<uint64_t>::max() / 1000) return Invalid(where + ".duration", "is out of range");
        span.duration_nanos = field.integer * 1000;
        break;
      case 8: case 9: {
        bool local = field.number == 8;
        std::string at = where + (local ? ".local_endpoint" : ".remote_endpoint");
        TRACERY_RETURN_IF_ERROR(WantType(field, otlp::kLengthDelimited, at));
        (local ? span.has_local_endpoint : span.has_remote_endpoint) = true;
        TRACERY_RETURN_IF_ERROR(ProtoEndpoint(field.bytes, at, local ? span.local_endpoint : span.remote_endpoint));
        break;
      }
      case 10: {
        std::string at = where + ".annotations[" + std::to_string(span.annotations.size()) + "]";
        TRACERY_RETURN_IF_ERROR(WantType(field, otlp::kLengthDelimited, at));
        Annotation annotation;
        TRACERY_RETURN_IF_ERROR(ProtoAnnotation(field.bytes, at, annotation));
        span.annotations.push_back(std::move(annotation));
        break;
      }
      case 11:
        TRACERY_RETURN_IF_ERROR(WantType(field, otlp::kLengthDelimited, where + ".tags"));
        TRACERY_RETURN_IF_ERROR(ProtoTag(field.bytes, where + ".tags entry", span));
        break;
      case 12: TRACERY_RETURN_IF_ERROR(WantType(field, otlp::kVarint, where + ".debug")); span.debug = field.integer != 0; break;
      case 13: TRACERY_RETURN_IF_ERROR(WantType(field, otlp::kVarint, where + ".shared")); span.shared = field.integer != 0; break;
      default: break;  // unknown fields are skipped, as proto3 does
    }
  }
  if (!has_trace_id || trace_id.empty()) return Invalid(where + ".trace_id", "is missing");
  if (trace_id.size() != 8 && trace_id.size() != 16)
    return Invalid(where + ".trace_id", "has " + std::to_string(trace_id.size()) + " bytes; expected 8 or 16");
  if (AllZero(trace_id)) return Invalid(where + ".trace_id", "is all zeros");
  span.trace_id.assign(16 - trace_id.size(), '\0');
  span.trace_id.append(trace_id);
  if (!has_id || id.empty()) return Invalid(where + ".id", "is missing");
  if (id.size() != 8) return Invalid(where + ".id", "has " + std::to_string(id.size()) + " bytes; expected 8");
  if (AllZero(id)) return Invalid(where + ".id", "is all zeros");
  span.id.assign(id);
  if (!parent_id.empty() && parent_id.size() != 8)
    return Invalid(where + ".parent_id", "has " + std::to_string(parent_id.size()) + " bytes; expected 8");
  if (!AllZero(parent_id)) span.parent_id.assign(parent_id);
  return Status::Ok();
}

}  // namespace

Status ReadProto3(std::string_view body, std::vector<Span>& out) {
  ByteReader reader(body);
  WireField field;
  while (!reader.empty()) {
    std::string where = SpanWhere(out.size());
    if (!otlp::ReadField(reader, field)) return Status::InvalidArgument("body is not a valid protobuf ListOfSpans");
    if (field.number != 1) continue;
    TRACERY_RETURN_IF_ERROR(WantType(field, otlp::kLengthDelimited, "ListOfSpans"));
    Span span;
    TRACERY_RETURN_IF_ERROR(ProtoSpan(field.bytes, where, span));
    out.push_back(std::move(span));
  }
  return Status::Ok();
}

}  // namespace tracery::receiver::zipkin
