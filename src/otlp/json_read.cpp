#include <charconv>
#include <cmath>
#include <limits>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include "common/ids.h"
#include "otlp/json.h"

namespace tracery::otlp {
namespace {

using rapidjson::Value;

constexpr int kMaxNesting = 32;

// A parse failure carries the JSON path of the offending value, so a client learns where.
struct JsonError {
  std::string path, what;
};

// Looks a field up by its lowerCamelCase name, then its snake_case name.
const Value* Field(const Value& object, const char* camel, const char* snake = nullptr) {
  auto it = object.FindMember(camel);
  if (it != object.MemberEnd() && !it->value.IsNull()) return &it->value;
  if (snake) {
    it = object.FindMember(snake);
    if (it != object.MemberEnd() && !it->value.IsNull()) return &it->value;
  }
  return nullptr;
}

class Reader {
 public:
  bool failed() const { return !error_.what.empty(); }
  const JsonError& error() const { return error_; }

  bool Fail(const std::string& path, std::string what) {
    if (error_.what.empty()) error_ = {path, std::move(what)};
    return false;
  }

  bool String(const Value& object, const char* camel, const char* snake, std::string& out, const std::string& path) {
    const Value* v = Field(object, camel, snake);
    if (!v) return true;
    if (!v->IsString()) return Fail(path + "." + camel, "must be a string");
    out.assign(v->GetString(), v->GetStringLength());
    return true;
  }

  bool Unsigned(const Value& object, const char* camel, const char* snake, uint64_t& out, const std::string& path,
                uint64_t max = std::numeric_limits<uint64_t>::max()) {
    const Value* v = Field(object, camel, snake);
    if (!v) return true;
    if (v->IsUint64()) out = v->GetUint64();
    else if (v->IsString()) {
      std::string_view s(v->GetString(), v->GetStringLength());
      auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
      if (ec != std::errc() || ptr != s.data() + s.size()) return Fail(path + "." + camel, "must be an unsigned integer");
    } else if (v->IsDouble() && v->GetDouble() >= 0 && std::floor(v->GetDouble()) == v->GetDouble() &&
               v->GetDouble() < 1.8e19) {
      out = static_cast<uint64_t>(v->GetDouble());
    } else {
      return Fail(path + "." + camel, "must be an unsigned integer");
    }
    if (out > max) return Fail(path + "." + camel, "is out of range");
    return true;
  }

  template <typename T>
  bool Small(const Value& object, const char* camel, const char* snake, T& out, const std::string& path) {
    uint64_t v = 0;
    if (!Unsigned(object, camel, snake, v, path, std::numeric_limits<T>::max())) return false;
    out = static_cast<T>(v);
    return true;
  }

  bool Id(const Value& object, const char* camel, const char* snake, size_t length, std::string& out,
          const std::string& path) {
    std::string hex;
    if (!String(object, camel, snake, hex, path)) return false;
    if (hex.empty()) return true;
    auto raw = HexDecode(hex);
    if (!raw || raw->size() != length)
      return Fail(path + "." + camel, "must be " + std::to_string(length * 2) + " hex digits");
    out = std::move(*raw);
    return true;
  }

  // An enum as a number or as its name (e.g. "SPAN_KIND_SERVER").
  bool Enum(const Value& object, const char* camel, const char* const* names, size_t count, uint64_t& out,
            const std::string& path) {
    const Value* v = Field(object, camel);
    if (!v) return true;
    if (v->IsString()) {
      for (size_t i = 0; i < count; ++i)
        if (v->GetString() == std::string_view(names[i])) { out = i; return true; }
      return Fail(path + "." + camel, std::string("unknown value ") + v->GetString());
    }
    return Unsigned(object, camel, nullptr, out, path, count - 1);
  }

  bool AnyValueFrom(const Value& v, AnyValue& out, const std::string& path, int depth) {
    if (depth > kMaxNesting) return Fail(path, "nests too deeply");
    if (!v.IsObject()) return Fail(path, "must be an object");
    if (const Value* x = Field(v, "stringValue", "string_value")) {
      if (!x->IsString()) return Fail(path + ".stringValue", "must be a string");
      out.type = AnyValue::Type::kString;
      out.string_value.assign(x->GetString(), x->GetStringLength());
    } else if (const Value* x = Field(v, "boolValue", "bool_value")) {
      if (!x->IsBool()) return Fail(path + ".boolValue", "must be a boolean");
      out.type = AnyValue::Type::kBool;
      out.bool_value = x->GetBool();
    } else if (const Value* x = Field(v, "intValue", "int_value")) {
      out.type = AnyValue::Type::kInt;
      if (x->IsInt64()) out.int_value = x->GetInt64();
      else if (x->IsString()) {
        std::string_view s(x->GetString(), x->GetStringLength());
        auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out.int_value);
        if (ec != std::errc() || ptr != s.data() + s.size()) return Fail(path + ".intValue", "must be an integer");
      } else {
        return Fail(path + ".intValue", "must be an integer");
      }
    } else if (const Value* x = Field(v, "doubleValue", "double_value")) {
      out.type = AnyValue::Type::kDouble;
      if (x->IsNumber()) out.double_value = x->GetDouble();
      else if (x->IsString()) {
        std::string_view s(x->GetString(), x->GetStringLength());
        if (s == "NaN") out.double_value = std::numeric_limits<double>::quiet_NaN();
        else if (s == "Infinity") out.double_value = std::numeric_limits<double>::infinity();
        else if (s == "-Infinity") out.double_value = -std::numeric_limits<double>::infinity();
        else {
          auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out.double_value);
          if (ec != std::errc() || ptr != s.data() + s.size()) return Fail(path + ".doubleValue", "must be a number");
        }
      } else {
        return Fail(path + ".doubleValue", "must be a number");
      }
    } else if (const Value* x = Field(v, "bytesValue", "bytes_value")) {
      if (!x->IsString()) return Fail(path + ".bytesValue", "must be a base64 string");
      auto raw = Base64Decode(std::string_view(x->GetString(), x->GetStringLength()));
      if (!raw) return Fail(path + ".bytesValue", "must be a base64 string");
      out.type = AnyValue::Type::kBytes;
      out.string_value = std::move(*raw);
    } else if (const Value* x = Field(v, "arrayValue", "array_value")) {
      if (!x->IsObject()) return Fail(path + ".arrayValue", "must be an object");
      out.type = AnyValue::Type::kArray;
      if (const Value* values = Field(*x, "values")) {
        if (!values->IsArray()) return Fail(path + ".arrayValue.values", "must be an array");
        for (rapidjson::SizeType i = 0; i < values->Size(); ++i)
          if (!AnyValueFrom((*values)[i], out.array_values.emplace_back(),
                            path + ".arrayValue.values[" + std::to_string(i) + "]", depth + 1))
            return false;
      }
    } else if (const Value* x = Field(v, "kvlistValue", "kvlist_value")) {
      if (!x->IsObject()) return Fail(path + ".kvlistValue", "must be an object");
      out.type = AnyValue::Type::kKvList;
      if (!KeyValues(*x, "values", nullptr, out.kvlist_values, path + ".kvlistValue", depth + 1)) return false;
    }
    return true;
  }

  bool KeyValues(const Value& object, const char* camel, const char* snake, Attributes& out, const std::string& path,
                 int depth = 0) {
    const Value* list = Field(object, camel, snake);
    if (!list) return true;
    std::string here = path + "." + camel;
    if (!list->IsArray()) return Fail(here, "must be an array");
    for (rapidjson::SizeType i = 0; i < list->Size(); ++i) {
      const Value& item = (*list)[i];
      std::string item_path = here + "[" + std::to_string(i) + "]";
      if (!item.IsObject()) return Fail(item_path, "must be an object");
      KeyValue& kv = out.emplace_back();
      if (!String(item, "key", nullptr, kv.key, item_path)) return false;
      if (const Value* value = Field(item, "value"))
        if (!AnyValueFrom(*value, kv.value, item_path + ".value", depth + 1)) return false;
    }
    return true;
  }

  template <typename Fn>
  bool Array(const Value& object, const char* camel, const char* snake, const std::string& path, Fn&& each) {
    const Value* list = Field(object, camel, snake);
    if (!list) return true;
    if (!list->IsArray()) return Fail(path + "." + camel, "must be an array");
    for (rapidjson::SizeType i = 0; i < list->Size(); ++i) {
      std::string item_path = path + "." + camel + "[" + std::to_string(i) + "]";
      if (!(*list)[i].IsObject()) return Fail(item_path, "must be an object");
      if (!each((*list)[i], item_path)) return false;
    }
    return true;
  }

  bool SpanFrom(const Value& v, Span& s, const std::string& p) {
    static const char* const kKinds[] = {"SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
                                         "SPAN_KIND_CLIENT", "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"};
    static const char* const kCodes[] = {"STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"};
    uint64_t kind = 0;
    if (!Id(v, "traceId", "trace_id", 16, s.trace_id, p) || !Id(v, "spanId", "span_id", 8, s.span_id, p) ||
        !String(v, "traceState", "trace_state", s.trace_state, p) ||
        !Id(v, "parentSpanId", "parent_span_id", 8, s.parent_span_id, p) || !Small(v, "flags", nullptr, s.flags, p) ||
        !String(v, "name", nullptr, s.name, p) || !Enum(v, "kind", kKinds, 6, kind, p) ||
        !Unsigned(v, "startTimeUnixNano", "start_time_unix_nano", s.start_time_unix_nano, p) ||
        !Unsigned(v, "endTimeUnixNano", "end_time_unix_nano", s.end_time_unix_nano, p) ||
        !KeyValues(v, "attributes", nullptr, s.attributes, p) ||
        !Small(v, "droppedAttributesCount", "dropped_attributes_count", s.dropped_attributes_count, p) ||
        !Small(v, "droppedEventsCount", "dropped_events_count", s.dropped_events_count, p) ||
        !Small(v, "droppedLinksCount", "dropped_links_count", s.dropped_links_count, p))
      return false;
    s.kind = SpanKind(kind);
    bool ok = Array(v, "events", nullptr, p, [&](const Value& ev, const std::string& ep) {
      Event& e = s.events.emplace_back();
      return Unsigned(ev, "timeUnixNano", "time_unix_nano", e.time_unix_nano, ep) &&
             String(ev, "name", nullptr, e.name, ep) && KeyValues(ev, "attributes", nullptr, e.attributes, ep) &&
             Small(ev, "droppedAttributesCount", "dropped_attributes_count", e.dropped_attributes_count, ep);
    });
    ok = ok && Array(v, "links", nullptr, p, [&](const Value& lv, const std::string& lp) {
      Link& l = s.links.emplace_back();
      return Id(lv, "traceId", "trace_id", 16, l.trace_id, lp) && Id(lv, "spanId", "span_id", 8, l.span_id, lp) &&
             String(lv, "traceState", "trace_state", l.trace_state, lp) &&
             KeyValues(lv, "attributes", nullptr, l.attributes, lp) &&
             Small(lv, "droppedAttributesCount", "dropped_attributes_count", l.dropped_attributes_count, lp) &&
             Small(lv, "flags", nullptr, l.flags, lp);
    });
    if (!ok) return false;
    if (const Value* status = Field(v, "status")) {
      if (!status->IsObject()) return Fail(p + ".status", "must be an object");
      uint64_t code = 0;
      if (!String(*status, "message", nullptr, s.status_message, p + ".status") ||
          !Enum(*status, "code", kCodes, 3, code, p + ".status"))
        return false;
      s.status_code = StatusCode(code);
    }
    return true;
  }

  bool Request(const Value& root, TracesData& out) {
    if (!root.IsObject()) return Fail("$", "must be an object");
    return Array(root, "resourceSpans", "resource_spans", "$", [&](const Value& rv, const std::string& rp) {
      ResourceSpans& rs = out.resource_spans.emplace_back();
      if (const Value* resource = Field(rv, "resource")) {
        if (!resource->IsObject()) return Fail(rp + ".resource", "must be an object");
        if (!KeyValues(*resource, "attributes", nullptr, rs.resource.attributes, rp + ".resource") ||
            !Small(*resource, "droppedAttributesCount", "dropped_attributes_count",
                   rs.resource.dropped_attributes_count, rp + ".resource"))
          return false;
      }
      if (!String(rv, "schemaUrl", "schema_url", rs.schema_url, rp)) return false;
      return Array(rv, "scopeSpans", "scope_spans", rp, [&](const Value& sv, const std::string& sp) {
        ScopeSpans& ss = rs.scope_spans.emplace_back();
        if (const Value* scope = Field(sv, "scope")) {
          if (!scope->IsObject()) return Fail(sp + ".scope", "must be an object");
          if (!String(*scope, "name", nullptr, ss.scope.name, sp + ".scope") ||
              !String(*scope, "version", nullptr, ss.scope.version, sp + ".scope") ||
              !KeyValues(*scope, "attributes", nullptr, ss.scope.attributes, sp + ".scope") ||
              !Small(*scope, "droppedAttributesCount", "dropped_attributes_count", ss.scope.dropped_attributes_count,
                     sp + ".scope"))
            return false;
        }
        if (!String(sv, "schemaUrl", "schema_url", ss.schema_url, sp)) return false;
        return Array(sv, "spans", nullptr, sp, [&](const Value& spv, const std::string& spp) {
          return SpanFrom(spv, ss.spans.emplace_back(), spp);
        });
      });
    });
  }

 private:
  JsonError error_;
};

}  // namespace

Status ParseJsonRequest(std::string_view json, TracesData& out) {
  rapidjson::Document document;
  document.Parse<rapidjson::kParseNanAndInfFlag | rapidjson::kParseIterativeFlag>(json.data(), json.size());
  if (document.HasParseError())
    return Status::InvalidArgument(std::string("invalid JSON at offset ") + std::to_string(document.GetErrorOffset()) +
                                   ": " + rapidjson::GetParseError_En(document.GetParseError()));
  Reader reader;
  if (!reader.Request(document, out))
    return Status::InvalidArgument("invalid OTLP/JSON: " + reader.error().path + " " + reader.error().what);
  return Status::Ok();
}

}  // namespace tracery::otlp
