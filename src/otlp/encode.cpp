// Model -> protobuf wire format. Default-valued fields are omitted, as proto3 does.
#include <cstring>

#include "otlp/model.h"
#include "otlp/wire.h"

namespace tracery::otlp {
namespace {

void EncodeKeyValue(const KeyValue& kv, std::string& out);

void EncodeAnyValue(const AnyValue& v, std::string& out) {
  switch (v.type) {
    case AnyValue::Type::kEmpty: break;
    case AnyValue::Type::kString: PutBytesField(out, 1, v.string_value); break;
    case AnyValue::Type::kBool: PutTag(out, 2, kVarint); PutVarint(out, v.bool_value ? 1 : 0); break;
    case AnyValue::Type::kInt: PutTag(out, 3, kVarint); PutVarint(out, uint64_t(v.int_value)); break;
    case AnyValue::Type::kDouble: {
      uint64_t bits;
      std::memcpy(&bits, &v.double_value, 8);
      PutTag(out, 4, kFixed64);
      PutFixed64(out, bits);
      break;
    }
    case AnyValue::Type::kArray:
      PutMessageField(out, 5, [&](std::string& o) {
        for (const auto& item : v.array_values) PutMessageField(o, 1, [&](std::string& p) { EncodeAnyValue(item, p); });
      });
      break;
    case AnyValue::Type::kKvList:
      PutMessageField(out, 6, [&](std::string& o) {
        for (const auto& item : v.kvlist_values) PutMessageField(o, 1, [&](std::string& p) { EncodeKeyValue(item, p); });
      });
      break;
    case AnyValue::Type::kBytes: PutBytesField(out, 7, v.string_value); break;
  }
}

void EncodeKeyValue(const KeyValue& kv, std::string& out) {
  PutStringIfSet(out, 1, kv.key);
  PutMessageField(out, 2, [&](std::string& o) { EncodeAnyValue(kv.value, o); });
}

void EncodeAttributesField(const Attributes& attributes, uint32_t number, std::string& out) {
  for (const auto& kv : attributes) PutMessageField(out, number, [&](std::string& o) { EncodeKeyValue(kv, o); });
}

}  // namespace

void EncodeSpan(const Span& s, std::string& out) {
  PutStringIfSet(out, 1, s.trace_id);
  PutStringIfSet(out, 2, s.span_id);
  PutStringIfSet(out, 3, s.trace_state);
  PutStringIfSet(out, 4, s.parent_span_id);
  PutStringIfSet(out, 5, s.name);
  PutVarintIfSet(out, 6, uint64_t(s.kind));
  PutFixed64IfSet(out, 7, s.start_time_unix_nano);
  PutFixed64IfSet(out, 8, s.end_time_unix_nano);
  EncodeAttributesField(s.attributes, 9, out);
  PutVarintIfSet(out, 10, s.dropped_attributes_count);
  for (const auto& e : s.events) {
    PutMessageField(out, 11, [&](std::string& o) {
      PutFixed64IfSet(o, 1, e.time_unix_nano);
      PutStringIfSet(o, 2, e.name);
      EncodeAttributesField(e.attributes, 3, o);
      PutVarintIfSet(o, 4, e.dropped_attributes_count);
    });
  }
  PutVarintIfSet(out, 12, s.dropped_events_count);
  for (const auto& l : s.links) {
    PutMessageField(out, 13, [&](std::string& o) {
      PutStringIfSet(o, 1, l.trace_id);
      PutStringIfSet(o, 2, l.span_id);
      PutStringIfSet(o, 3, l.trace_state);
      EncodeAttributesField(l.attributes, 4, o);
      PutVarintIfSet(o, 5, l.dropped_attributes_count);
      PutFixed32IfSet(o, 6, l.flags);
    });
  }
  PutVarintIfSet(out, 14, s.dropped_links_count);
  if (!s.status_message.empty() || s.status_code != StatusCode::kUnset) {
    PutMessageField(out, 15, [&](std::string& o) {
      PutStringIfSet(o, 2, s.status_message);
      PutVarintIfSet(o, 3, uint64_t(s.status_code));
    });
  }
  PutFixed32IfSet(out, 16, s.flags);
}

void EncodeResource(const Resource& resource, std::string& out) {
  EncodeAttributesField(resource.attributes, 1, out);
  PutVarintIfSet(out, 2, resource.dropped_attributes_count);
}

void EncodeScope(const Scope& scope, std::string& out) {
  PutStringIfSet(out, 1, scope.name);
  PutStringIfSet(out, 2, scope.version);
  EncodeAttributesField(scope.attributes, 3, out);
  PutVarintIfSet(out, 4, scope.dropped_attributes_count);
}

void EncodeAttributes(const Attributes& attributes, std::string& out) {
  EncodeAttributesField(attributes, 1, out);
}

std::string EncodeTracesData(const TracesData& data) {
  std::string out;
  for (const auto& rs : data.resource_spans) {
    PutMessageField(out, 1, [&](std::string& o) {
      PutMessageField(o, 1, [&](std::string& p) { EncodeResource(rs.resource, p); });
      for (const auto& ss : rs.scope_spans) {
        PutMessageField(o, 2, [&](std::string& p) {
          PutMessageField(p, 1, [&](std::string& q) { EncodeScope(ss.scope, q); });
          for (const auto& span : ss.spans) PutMessageField(p, 2, [&](std::string& q) { EncodeSpan(span, q); });
          PutStringIfSet(p, 3, ss.schema_url);
        });
      }
      PutStringIfSet(o, 3, rs.schema_url);
    });
  }
  return out;
}

}  // namespace tracery::otlp
