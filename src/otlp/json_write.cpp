#include <charconv>
#include <cmath>

#include "common/ids.h"
#include "otlp/json.h"

namespace tracery::otlp {

void AppendJsonDouble(std::string& out, double v) {
  if (std::isnan(v)) { out += "\"NaN\""; return; }
  if (std::isinf(v)) { out += v > 0 ? "\"Infinity\"" : "\"-Infinity\""; return; }
  if (v == 0 && std::signbit(v)) {  // "-0" would read back as the integer 0
    out += "-0.0";
    return;
  }
  // As Go's encoding/json: the shortest text that reads back the same, plain from 1e-6 up to
  // 1e21, with an exponent outside it, written "1e-7" rather than "1e-07".
  double magnitude = std::fabs(v);
  bool plain = magnitude == 0 || (magnitude >= 1e-6 && magnitude < 1e21);
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, plain ? std::chars_format::fixed : std::chars_format::scientific);
  size_t n = size_t(end - buf);
  if (!plain && n >= 4 && buf[n - 4] == 'e' && buf[n - 3] == '-' && buf[n - 2] == '0') {
    buf[n - 2] = buf[n - 1];
    --n;
  }
  out.append(buf, n);
}

void AppendJsonString(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (u < 0x20) {
          out += "\\u00";
          out += kHex[u >> 4];
          out += kHex[u & 15];
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

namespace {

// Writes `"key":value` pairs separated by commas inside one JSON object.
class ObjectWriter {
 public:
  explicit ObjectWriter(std::string& out) : out_(out) { out_ += '{'; }
  ~ObjectWriter() { out_ += '}'; }
  std::string& Key(std::string_view key) {
    if (!first_) out_ += ',';
    first_ = false;
    AppendJsonString(out_, key);
    out_ += ':';
    return out_;
  }
  void String(std::string_view key, std::string_view value) {
    if (!value.empty()) AppendJsonString(Key(key), value);
  }
  void Unsigned(std::string_view key, uint64_t value) {
    if (value != 0) Key(key) += std::to_string(value);
  }
  void QuotedUnsigned(std::string_view key, uint64_t value) {
    if (value != 0) Key(key) += '"' + std::to_string(value) + '"';
  }
  void Id(std::string_view key, std::string_view raw) {
    if (!raw.empty()) AppendJsonString(Key(key), HexEncode(raw));
  }

 private:
  std::string& out_;
  bool first_ = true;
};

void WriteAttributes(ObjectWriter& object, const Attributes& attributes);

void WriteDouble(std::string& out, double v) { AppendJsonDouble(out, v); }

void WriteAnyValue(std::string& out, const AnyValue& v) {
  ObjectWriter object(out);
  switch (v.type) {
    case AnyValue::Type::kEmpty: break;
    case AnyValue::Type::kString: AppendJsonString(object.Key("stringValue"), v.string_value); break;
    case AnyValue::Type::kBool: object.Key("boolValue") += v.bool_value ? "true" : "false"; break;
    case AnyValue::Type::kInt: object.Key("intValue") += '"' + std::to_string(v.int_value) + '"'; break;
    case AnyValue::Type::kDouble: WriteDouble(object.Key("doubleValue"), v.double_value); break;
    case AnyValue::Type::kBytes: AppendJsonString(object.Key("bytesValue"), Base64Encode(v.string_value)); break;
    case AnyValue::Type::kArray: {
      std::string& o = object.Key("arrayValue");
      ObjectWriter array(o);
      std::string& list = array.Key("values");
      list += '[';
      for (size_t i = 0; i < v.array_values.size(); ++i) {
        if (i) list += ',';
        WriteAnyValue(list, v.array_values[i]);
      }
      list += ']';
      break;
    }
    case AnyValue::Type::kKvList: {
      std::string& o = object.Key("kvlistValue");
      ObjectWriter kvlist(o);
      WriteAttributes(kvlist, v.kvlist_values);
      break;
    }
  }
}

void WriteKeyValues(std::string& out, const Attributes& attributes) {
  out += '[';
  for (size_t i = 0; i < attributes.size(); ++i) {
    if (i) out += ',';
    ObjectWriter kv(out);
    AppendJsonString(kv.Key("key"), attributes[i].key);
    WriteAnyValue(kv.Key("value"), attributes[i].value);
  }
  out += ']';
}

// kvlistValue holds its pairs under "values"; everything else under "attributes".
void WriteAttributes(ObjectWriter& object, const Attributes& attributes) {
  WriteKeyValues(object.Key("values"), attributes);
}

void WriteSpan(std::string& out, const Span& s) {
  ObjectWriter o(out);
  o.Id("traceId", s.trace_id);
  o.Id("spanId", s.span_id);
  o.String("traceState", s.trace_state);
  o.Id("parentSpanId", s.parent_span_id);
  o.Unsigned("flags", s.flags);
  o.String("name", s.name);
  if (s.kind != SpanKind::kUnspecified) AppendJsonString(o.Key("kind"), SpanKindName(s.kind));
  o.QuotedUnsigned("startTimeUnixNano", s.start_time_unix_nano);
  o.QuotedUnsigned("endTimeUnixNano", s.end_time_unix_nano);
  if (!s.attributes.empty()) WriteKeyValues(o.Key("attributes"), s.attributes);
  o.Unsigned("droppedAttributesCount", s.dropped_attributes_count);
  if (!s.events.empty()) {
    std::string& list = o.Key("events");
    list += '[';
    for (size_t i = 0; i < s.events.size(); ++i) {
      if (i) list += ',';
      const Event& e = s.events[i];
      ObjectWriter eo(list);
      eo.QuotedUnsigned("timeUnixNano", e.time_unix_nano);
      eo.String("name", e.name);
      if (!e.attributes.empty()) WriteKeyValues(eo.Key("attributes"), e.attributes);
      eo.Unsigned("droppedAttributesCount", e.dropped_attributes_count);
    }
    list += ']';
  }
  o.Unsigned("droppedEventsCount", s.dropped_events_count);
  if (!s.links.empty()) {
    std::string& list = o.Key("links");
    list += '[';
    for (size_t i = 0; i < s.links.size(); ++i) {
      if (i) list += ',';
      const Link& l = s.links[i];
      ObjectWriter lo(list);
      lo.Id("traceId", l.trace_id);
      lo.Id("spanId", l.span_id);
      lo.String("traceState", l.trace_state);
      if (!l.attributes.empty()) WriteKeyValues(lo.Key("attributes"), l.attributes);
      lo.Unsigned("droppedAttributesCount", l.dropped_attributes_count);
      lo.Unsigned("flags", l.flags);
    }
    list += ']';
  }
  o.Unsigned("droppedLinksCount", s.dropped_links_count);
  {
    ObjectWriter status(o.Key("status"));
    status.String("message", s.status_message);
    if (s.status_code != StatusCode::kUnset) AppendJsonString(status.Key("code"), StatusCodeName(s.status_code));
  }
}

}  // namespace

void WriteJsonResourceSpans(const TracesData& data, std::string& out) {
  out += '[';
  for (size_t r = 0; r < data.resource_spans.size(); ++r) {
    if (r) out += ',';
    const ResourceSpans& rs = data.resource_spans[r];
    ObjectWriter ro(out);
    {
      ObjectWriter resource(ro.Key("resource"));
      WriteKeyValues(resource.Key("attributes"), rs.resource.attributes);
      resource.Unsigned("droppedAttributesCount", rs.resource.dropped_attributes_count);
    }
    std::string& scopes = ro.Key("scopeSpans");
    scopes += '[';
    for (size_t s = 0; s < rs.scope_spans.size(); ++s) {
      if (s) scopes += ',';
      const ScopeSpans& ss = rs.scope_spans[s];
      ObjectWriter so(scopes);
      {
        ObjectWriter scope(so.Key("scope"));
        scope.String("name", ss.scope.name);
        scope.String("version", ss.scope.version);
        if (!ss.scope.attributes.empty()) WriteKeyValues(scope.Key("attributes"), ss.scope.attributes);
        scope.Unsigned("droppedAttributesCount", ss.scope.dropped_attributes_count);
      }
      std::string& spans = so.Key("spans");
      spans += '[';
      for (size_t i = 0; i < ss.spans.size(); ++i) {
        if (i) spans += ',';
        WriteSpan(spans, ss.spans[i]);
      }
      spans += ']';
      so.String("schemaUrl", ss.schema_url);
    }
    scopes += ']';
    ro.String("schemaUrl", rs.schema_url);
  }
  out += ']';
}

}  // namespace tracery::otlp

namespace tracery::otlp {

void WriteJsonAnyValue(const AnyValue& value, std::string& out) { WriteAnyValue(out, value); }
void WriteJsonKeyValues(const Attributes& attributes, std::string& out) { WriteKeyValues(out, attributes); }

}  // namespace tracery::otlp
