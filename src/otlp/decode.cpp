// Protobuf wire format -> model. Field numbers are those of the OTLP specification
// (see src/otlp/proto). Unknown fields are skipped, as protobuf requires.
#include <cstring>

#include "otlp/model.h"
#include "otlp/wire.h"

namespace tracery::otlp {
namespace {

constexpr int kMaxNesting = 32;  // AnyValue can nest; hostile input must not blow the stack

bool DecodeKeyValue(std::string_view bytes, KeyValue& out, int depth);

bool DecodeAnyValue(std::string_view bytes, AnyValue& out, int depth) {
  if (depth > kMaxNesting) return false;
  ByteReader reader(bytes);
  WireField f;
  while (!reader.empty()) {
    if (!ReadField(reader, f)) return false;
    switch (f.number) {
      case 1:
        if (f.type != kLengthDelimited) return false;
        out.type = AnyValue::Type::kString;
        out.string_value.assign(f.bytes);
        break;
      case 2:
        if (f.type != kVarint) return false;
        out.type = AnyValue::Type::kBool;
        out.bool_value = f.integer != 0;
        break;
      case 3:
        if (f.type != kVarint) return false;
        out.type = AnyValue::Type::kInt;
        out.int_value = static_cast<int64_t>(f.integer);
        break;
      case 4:
        if (f.type != kFixed64) return false;
        out.type = AnyValue::Type::kDouble;
        std::memcpy(&out.double_value, &f.integer, 8);
        break;
      case 5:
      case 6: {
        if (f.type != kLengthDelimited) return false;
        bool is_array = f.number == 5;
        out.type = is_array ? AnyValue::Type::kArray : AnyValue::Type::kKvList;
        out.array_values.clear();
        out.kvlist_values.clear();
        ByteReader inner(f.bytes);
        WireField g;
        while (!inner.empty()) {
          if (!ReadField(inner, g)) return false;
          if (g.number != 1) continue;
          if (g.type != kLengthDelimited) return false;
          if (is_array) {
            if (!DecodeAnyValue(g.bytes, out.array_values.emplace_back(), depth + 1)) return false;
          } else {
            if (!DecodeKeyValue(g.bytes, out.kvlist_values.emplace_back(), depth + 1)) return false;
          }
        }
        break;
      }
      case 7:
        if (f.type != kLengthDelimited) return false;
        out.type = AnyValue::Type::kBytes;
        out.string_value.assign(f.bytes);
        break;
      default: break;
    }
  }
  return true;
}

bool DecodeKeyValue(std::string_view bytes, KeyValue& out, int depth) {
  ByteReader reader(bytes);
  WireField f;
  while (!reader.empty()) {
    if (!ReadField(reader, f)) return false;
    if (f.number == 1) {
      if (f.type != kLengthDelimited) return false;
      out.key.assign(f.bytes);
    } else if (f.number == 2) {
      if (f.type != kLengthDelimited || !DecodeAnyValue(f.bytes, out.value, depth + 1)) return false;
    }
  }
  return true;
}

bool AppendKeyValue(const WireField& f, Attributes& out) {
  return f.type == kLengthDelimited && DecodeKeyValue(f.bytes, out.emplace_back(), 0);
}

bool DecodeEvent(std::string_view bytes, Event& out) {
  ByteReader reader(bytes);
  WireField f;
  while (!reader.empty()) {
    if (!ReadField(reader, f)) return false;
    switch (f.number) {
      case 1: if (f.type != kFixed64) return false; out.time_unix_nano = f.integer; break;
      case 2: if (f.type != kLengthDelimited) return false; out.name.assign(f.bytes); break;
      case 3: if (!AppendKeyValue(f, out.attributes)) return false; break;
      case 4: if (f.type != kVarint) return false; out.dropped_attributes_count = uint32_t(f.integer); break;
      default: break;
    }
  }
  return true;
}

bool DecodeLink(std::string_view bytes, Link& out) {
  ByteReader reader(bytes);
  WireField f;
  while (!reader.empty()) {
    if (!ReadField(reader, f)) return false;
    switch (f.number) {
      case 1: if (f.type != kLengthDelimited) return false; out.trace_id.assign(f.bytes); break;
      case 2: if (f.type != kLengthDelimited) return false; out.span_id.assign(f.bytes); break;
      case 3: if (f.type != kLengthDelimited) return false; out.trace_state.assign(f.bytes); break;
      case 4: if (!AppendKeyValue(f, out.attributes)) return false; break;
      case 5: if (f.type != kVarint) return false; out.dropped_attributes_count = uint32_t(f.integer); break;
      case 6: if (f.type != kFixed32) return false; out.flags = uint32_t(f.integer); break;
      default: break;
    }
  }
  return true;
}

bool DecodeSpanStatus(std::string_view bytes, Span& out) {
  ByteReader reader(bytes);
  WireField f;
  while (!reader.empty()) {
    if (!ReadField(reader, f)) return false;
    if (f.number == 2) {
      if (f.type != kLengthDelimited) return false;
      out.status_message.assign(f.bytes);
    } else if (f.number == 3) {
      if (f.type != kVarint) return false;
      out.status_code = f.integer <= 2 ? StatusCode(f.integer) : StatusCode::kUnset;
    }
  }
  return true;
}

bool DecodeSpan(std::string_view bytes, Span& out) {
  ByteReader reader(bytes);
  WireField f;
  while (!reader.empty()) {
    if (!ReadField(reader, f)) return false;
    switch (f.number) {
      case 1: if (f.type != kLengthDelimited) return false; out.trace_id.assign(f.bytes); break;
      case 2: if (f.type != kLengthDelimited) return false; out.span_id.assign(f.bytes); break;
      case 3: if (f.type != kLengthDelimited) return false; out.trace_state.assign(f.bytes); break;
      case 4: if (f.type != kLengthDelimited) return false; out.parent_span_id.assign(f.bytes); break;
      case 5: if (f.type != kLengthDelimited) return false; out.name.assign(f.bytes); break;
      case 6: if (f.type != kVarint) return false; out.kind = f.integer <= 5 ? SpanKind(f.integer) : SpanKind::kUnspecified; break;
      case 7: if (f.type != kFixed64) return false; out.start_time_unix_nano = f.integer; break;
      case 8: if (f.type != kFixed64) return false; out.end_time_unix_nano = f.integer; break;
      case 9: if (!AppendKeyValue(f, out.attributes)) return false; break;
      case 10: if (f.type != kVarint) return false; out.dropped_attributes_count = uint32_t(f.integer); break;
      case 11: if (f.type != kLengthDelimited || !DecodeEvent(f.bytes, out.events.emplace_back())) return false; break;
      case 12: if (f.type != kVarint) return false; out.dropped_events_count = uint32_t(f.integer); break;
      case 13: if (f.type != kLengthDelimited || !DecodeLink(f.bytes, out.links.emplace_back())) return false; break;
      case 14: if (f.type != kVarint) return false; out.dropped_links_count = uint32_t(f.integer); break;
      case 15: if (f.type != kLengthDelimited || !DecodeSpanStatus(f.bytes, out)) return false; break;
      case 16: if (f.type != kFixed32) return false; out.flags = uint32_t(f.integer); break;
      default: break;
    }
  }
  return true;
}

bool DecodeScopeImpl(std::string_view bytes, Scope& out) {
  ByteReader reader(bytes);
  WireField f;
  while (!reader.empty()) {
    if (!ReadField(reader, f)) return false;
    switch (f.number) {
      case 1: if (f.type != kLengthDelimited) return false; out.name.assign(f.bytes); break;
      case 2: if (f.type != kLengthDelimited) return false; out.version.assign(f.bytes); break;
      case 3: if (!AppendKeyValue(f, out.attributes)) return false; break;
      case 4: if (f.type != kVarint) return false; out.dropped_attributes_count = uint32_t(f.integer); break;
      default: break;
    }
  }
  return true;
}

bool DecodeResourceImpl(std::string_view bytes, Resource& out) {
  ByteReader reader(bytes);
  WireField f;
  while (!reader.empty()) {
    if (!ReadField(reader, f)) return false;
    if (f.number == 1) {
      if (!AppendKeyValue(f, out.attributes)) return false;
    } else if (f.number == 2) {
      if (f.type != kVarint) return false;
      out.dropped_attributes_count = uint32_t(f.integer);
    }
  }
  return true;
}

bool DecodeScopeSpans(std::string_view bytes, ScopeSpans& out) {
  ByteReader reader(bytes);
  WireField f;
  while (!reader.empty()) {
    if (!ReadField(reader, f)) return false;
    if (f.number == 1) {
      if (f.type != kLengthDelimited || !DecodeScopeImpl(f.bytes, out.scope)) return false;
    } else if (f.number == 2) {
      if (f.type != kLengthDelimited || !DecodeSpan(f.bytes, out.spans.emplace_back())) return false;
    } else if (f.number == 3) {
      if (f.type != kLengthDelimited) return false;
      out.schema_url.assign(f.bytes);
    }
  }
  return true;
}

bool DecodeResourceSpans(std::string_view bytes, ResourceSpans& out) {
  ByteReader reader(bytes);
  WireField f;
  while (!reader.empty()) {
    if (!ReadField(reader, f)) return false;
    if (f.number == 1) {
      if (f.type != kLengthDelimited || !DecodeResourceImpl(f.bytes, out.resource)) return false;
    } else if (f.number == 2) {
      if (f.type != kLengthDelimited || !DecodeScopeSpans(f.bytes, out.scope_spans.emplace_back())) return false;
    } else if (f.number == 3) {
      if (f.type != kLengthDelimited) return false;
      out.schema_url.assign(f.bytes);
    }
  }
  return true;
}

}  // namespace

Status DecodeTracesData(std::string_view bytes, TracesData& out) {
  ByteReader reader(bytes);
  WireField f;
  while (!reader.empty()) {
    if (!ReadField(reader, f)) return Status::InvalidArgument("malformed protobuf in trace data");
    if (f.number != 1) continue;
    if (f.type != kLengthDelimited || !DecodeResourceSpans(f.bytes, out.resource_spans.emplace_back()))
      return Status::InvalidArgument("malformed protobuf in resource_spans");
  }
  return Status::Ok();
}

Status DecodeResource(std::string_view bytes, Resource& out) {
  return DecodeResourceImpl(bytes, out) ? Status::Ok() : Status::Corruption("malformed resource");
}

Status DecodeScope(std::string_view bytes, Scope& out) {
  return DecodeScopeImpl(bytes, out) ? Status::Ok() : Status::Corruption("malformed scope");
}

Status DecodeAttributes(std::string_view bytes, Attributes& out) {
  ByteReader reader(bytes);
  WireField f;
  while (!reader.empty()) {
    if (!ReadField(reader, f) || !AppendKeyValue(f, out)) return Status::Corruption("malformed attributes");
  }
  return Status::Ok();
}

size_t TracesData::SpanCount() const {
  size_t n = 0;
  for (const auto& rs : resource_spans)
    for (const auto& ss : rs.scope_spans) n += ss.spans.size();
  return n;
}

bool AnyValue::operator==(const AnyValue& o) const {
  if (type != o.type) return false;
  switch (type) {
    case Type::kEmpty: return true;
    case Type::kString:
    case Type::kBytes: return string_value == o.string_value;
    case Type::kBool: return bool_value == o.bool_value;
    case Type::kInt: return int_value == o.int_value;
    case Type::kDouble: return std::memcmp(&double_value, &o.double_value, 8) == 0;
    case Type::kArray: return array_values == o.array_values;
    case Type::kKvList: return kvlist_values == o.kvlist_values;
  }
  return false;
}

const char* SpanKindName(SpanKind kind) {
  switch (kind) {
    case SpanKind::kInternal: return "SPAN_KIND_INTERNAL";
    case SpanKind::kServer: return "SPAN_KIND_SERVER";
    case SpanKind::kClient: return "SPAN_KIND_CLIENT";
    case SpanKind::kProducer: return "SPAN_KIND_PRODUCER";
    case SpanKind::kConsumer: return "SPAN_KIND_CONSUMER";
    default: return "SPAN_KIND_UNSPECIFIED";
  }
}

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "STATUS_CODE_OK";
    case StatusCode::kError: return "STATUS_CODE_ERROR";
    default: return "STATUS_CODE_UNSET";
  }
}

}  // namespace tracery::otlp
