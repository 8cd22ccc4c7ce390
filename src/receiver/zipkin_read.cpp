// The JSON readers (v2, and v1 converted to v2) into the span model of zipkin_span.h. Every
// failure names the span by its position in the list (`spans[2]`) and the field that was wrong.
#include <arpa/inet.h>

#include <charconv>
#include <cmath>
#include <limits>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include "common/ids.h"
#include "receiver/zipkin_span.h"

namespace tracery::receiver::zipkin {
namespace {

using rapidjson::Value;

bool IsHexDigit(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// Zipkin's ID rules (zipkin2-api.yaml): a trace ID is 16 to 32 hex characters (a 64- or
// 128-bit ID; lengths in between are left-padded, as Zipkin does), a span ID exactly 16.
// Either letter case is read, as the Collector's zipkin-go does. All-zero IDs are invalid.
Status ParseHexId(std::string_view hex, size_t min_chars, size_t max_chars, size_t out_bytes, const std::string& where,
                  std::string& out) {
  bool hex_only = true;
  for (char c : hex) hex_only = hex_only && IsHexDigit(c);
  auto quoted = [&] {
    std::string text(hex.substr(0, 40));
    for (char& c : text)
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
    return "\"" + text + (hex.size() > 40 ? "…" : "") + "\"";
  };
  if (!hex_only) return Invalid(where, quoted() + " is not hexadecimal");
  if (hex.size() < min_chars || hex.size() > max_chars) {
    std::string range = min_chars == max_chars ? std::to_string(min_chars) : std::to_string(min_chars) + " to " +
                                                                                 std::to_string(max_chars);
    return Invalid(where, quoted() + " has " + std::to_string(hex.size()) + " hex characters; expected " + range);
  }
  std::string padded(out_bytes * 2 - hex.size(), '0');
  padded.append(hex);
  auto decoded = HexDecode(padded);
  if (!decoded) return Invalid(where, quoted() + " is not hexadecimal");
  if (AllZero(*decoded)) return Invalid(where, "is all zeros");
  out = std::move(*decoded);
  return Status::Ok();
}

// A parent ID of all zeros means "no parent" in Zipkin; it is dropped rather than refused.
Status ParseParentId(std::string_view hex, const std::string& where, std::string& out) {
  if (hex.empty()) return Status::Ok();
  bool zeros = hex.find_first_not_of('0') == std::string_view::npos;
  if (zeros && hex.size() == 16) return Status::Ok();
  return ParseHexId(hex, 16, 16, 8, where, out);
}

Kind KindFromName(std::string_view name) {
  auto is = [&](std::string_view expected) {
    if (name.size() != expected.size()) return false;
    for (size_t i = 0; i < name.size(); ++i)
      if (std::toupper(static_cast<unsigned char>(name[i])) != expected[i]) return false;
    return true;
  };
  if (is("CLIENT")) return Kind::kClient;
  if (is("SERVER")) return Kind::kServer;
  if (is("PRODUCER")) return Kind::kProducer;
  if (is("CONSUMER")) return Kind::kConsumer;
  return Kind::kUnspecified;  // as the Collector: an unknown kind is no kind
}

// ---------------------------------------------------------------------------------------
// JSON (v2 and v1)

Status ParseJsonList(std::string_view body, rapidjson::Document& document) {
  document.Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag |
                 rapidjson::kParseFullPrecisionFlag>(body.data(), body.size());
  if (document.HasParseError()) {
    std::string at = std::to_string(document.GetErrorOffset());
    if (document.GetParseError() == rapidjson::kParseErrorStringInvalidEncoding)
      return Status::InvalidArgument("a string is not valid UTF-8 (at byte " + at + "); Zipkin JSON is UTF-8");
    return Status::InvalidArgument("invalid JSON at byte " + at + ": " + rapidjson::GetParseError_En(document.GetParseError()));
  }
  if (!document.IsArray()) return Status::InvalidArgument("expected a JSON list of spans");
  return Status::Ok();
}

const Value* Member(const Value& object, const char* name) {
  auto it = object.FindMember(name);
  if (it == object.MemberEnd() || it->value.IsNull()) return nullptr;
  return &it->value;
}

Status ReadString(const Value& object, const char* name, const std::string& where, std::string& out) {
  const Value* v = Member(object, name);
  if (!v) return Status::Ok();
  if (!v->IsString()) return Invalid(where + "." + name, "must be a string");
  out.assign(v->GetString(), v->GetStringLength());
  return Status::Ok();
}

Status ReadBool(const Value& object, const char* name, const std::string& where, bool& out) {
  const Value* v = Member(object, name);
  if (!v) return Status::Ok();
  if (!v->IsBool()) return Invalid(where + "." + name, "must be true or false");
  out = v->GetBool();
  return Status::Ok();
}

// Epoch or duration microseconds into nanoseconds. Zipkin sends integers; a fraction (some
// SDKs compute microseconds in floating point) is kept to the nanosecond.
Status ReadMicros(const Value& object, const char* name, const std::string& where, uint64_t& nanos) {
  const Value* v = Member(object, name);
  if (!v) return Status::Ok();
  constexpr uint64_t kMaxMicros = std::numeric_limits<uint64_t>::max() / 1000;
  if (v->IsUint64()) {
    if (v->GetUint64() > kMaxMicros) return Invalid(where + "." + name, "is out of range");
    nanos = v->GetUint64() * 1000;
    return Status::Ok();
  }
  if (v->IsNumber()) {
    // Whole and fractional microseconds apart, so the nanoseconds are as exact as the number.
    double micros = v->GetDouble();
    if (!(micros >= 0) || micros >= 1.8e16) return Invalid(where + "." + name, "must be a non-negative number of microseconds");
    double whole = std::floor(micros);
    nanos = uint64_t(whole) * 1000 + uint64_t(std::llround((micros - whole) * 1000));
    return Status::Ok();
  }
  return Invalid(where + "." + name, "must be a number of microseconds");
}

// A tag (or v1 binary annotation) value as text: strings as they are, true/false and
// numbers as written, so that parse_string_tags can type them like string tags.
bool ScalarText(const Value& v, std::string& out) {
  if (v.IsString()) out.assign(v.GetString(), v.GetStringLength());
  else if (v.IsBool()) out = v.GetBool() ? "true" : "false";
  else if (v.IsInt64()) out = std::to_string(v.GetInt64());
  else if (v.IsUint64()) out = std::to_string(v.GetUint64());
  else if (v.IsDouble()) {
    char buffer[32];
    auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, v.GetDouble());
    out.assign(buffer, ec == std::errc() ? end : buffer);
  } else return false;
  return true;
}

Status ReadAddress(const Value& endpoint, const char* name, int family, const std::string& where, std::string& out) {
  std::string text;
  TRACERY_RETURN_IF_ERROR(ReadString(endpoint, name, where, text));
  if (text.empty()) return Status::Ok();
  unsigned char address[16];
  if (inet_pton(family, text.c_str(), address) != 1)
    return Invalid(where + "." + name, "\"" + text.substr(0, 64) + "\" is not an " + (family == AF_INET ? "IPv4" : "IPv6") +
                                           " address");
  char normal[INET6_ADDRSTRLEN];
  out = inet_ntop(family, address, normal, sizeof normal);
  return Status::Ok();
}

Status ReadEndpoint(const Value& v, const std::string& where, Endpoint& out) {
  if (!v.IsObject()) return Invalid(where, "must be an object");
  TRACERY_RETURN_IF_ERROR(ReadString(v, "serviceName", where, out.service_name));
  TRACERY_RETURN_IF_ERROR(ReadAddress(v, "ipv4", AF_INET, where, out.ipv4));
  TRACERY_RETURN_IF_ERROR(ReadAddress(v, "ipv6", AF_INET6, where, out.ipv6));
  if (const Value* port = Member(v, "port")) {
    if (!port->IsInt()) return Invalid(where + ".port", "must be an integer");
    out.port = port->GetInt();
  }
  return Status::Ok();
}

// An optional endpoint member: `present` tells whether there was one.
Status ReadEndpointMember(const Value& object, const char* name, const std::string& where, bool& present, Endpoint& out) {
  const Value* v = Member(object, name);
  if (!v) return Status::Ok();
  present = true;
  return ReadEndpoint(*v, where + "." + name, out);
}

// The IDs every span has, in v1 and v2 alike.
Status ReadIds(const Value& object, const std::string& where, Span& span) {
  std::string text;
  if (!Member(object, "traceId")) return Invalid(where + ".traceId", "is missing");
  TRACERY_RETURN_IF_ERROR(ReadString(object, "traceId", where, text));
  TRACERY_RETURN_IF_ERROR(ParseHexId(text, 16, 32, 16, where + ".traceId", span.trace_id));
  if (!Member(object, "id")) return Invalid(where + ".id", "is missing");
  text.clear();
  TRACERY_RETURN_IF_ERROR(ReadString(object, "id", where, text));
  TRACERY_RETURN_IF_ERROR(ParseHexId(text, 16, 16, 8, where + ".id", span.id));
  text.clear();
  TRACERY_RETURN_IF_ERROR(ReadString(object, "parentId", where, text));
  return ParseParentId(text, where + ".parentId", span.parent_id);
}

Status ReadJsonV2Span(const Value& object, const std::string& where, Span& span) {
  if (!object.IsObject()) return Invalid(where, "must be a span object");
  TRACERY_RETURN_IF_ERROR(ReadIds(object, where, span));
  TRACERY_RETURN_IF_ERROR(ReadString(object, "name", where, span.name));
  std::string kind;
  TRACERY_RETURN_IF_ERROR(ReadString(object, "kind", where, kind));
  span.kind = KindFromName(kind);
  TRACERY_RETURN_IF_ERROR(ReadMicros(object, "timestamp", where, span.timestamp_nanos));
  TRACERY_RETURN_IF_ERROR(ReadMicros(object, "duration", where, span.duration_nanos));
  TRACERY_RETURN_IF_ERROR(ReadEndpointMember(object, "localEndpoint", where, span.has_local_endpoint, span.local_endpoint));
  TRACERY_RETURN_IF_ERROR(ReadEndpointMember(object, "remoteEndpoint", where, span.has_remote_endpoint, span.remote_endpoint));
  if (const Value* annotations = Member(object, "annotations")) {
    if (!annotations->IsArray()) return Invalid(where + ".annotations", "must be a list");
    for (rapidjson::SizeType i = 0; i < annotations->Size(); ++i) {
      const Value& a = (*annotations)[i];
      std::string at = where + ".annotations[" + std::to_string(i) + "]";
      if (!a.IsObject()) return Invalid(at, "must be an object with timestamp and value");
      Annotation annotation;
      TRACERY_RETURN_IF_ERROR(ReadMicros(a, "timestamp", at, annotation.timestamp_nanos));
      TRACERY_RETURN_IF_ERROR(ReadString(a, "value", at, annotation.value));
      span.annotations.push_back(std::move(annotation));
    }
  }
  if (const Value* tags = Member(object, "tags")) {
    if (!tags->IsObject()) return Invalid(where + ".tags", "must be an object of strings");
    for (auto it = tags->MemberBegin(); it != tags->MemberEnd(); ++it) {
      if (it->value.IsNull()) continue;
      std::string key(it->name.GetString(), it->name.GetStringLength()), value;
      if (!ScalarText(it->value, value)) return Invalid(where + ".tags." + key, "must be a string");
      span.tags.emplace_back(std::move(key), std::move(value));
    }
  }
  TRACERY_RETURN_IF_ERROR(ReadBool(object, "debug", where, span.debug));
  return ReadBool(object, "shared", where, span.shared);
}

// ---------------------------------------------------------------------------------------
// v1 JSON: the kind and the local endpoint come from the core annotations (cs/cr client,
// sr/ss server, ms producer, mr consumer; the first one decides), the remote endpoint from
// the address annotations (sa, ca, ma), the rest of the annotations become v2 annotations
// and the binary annotations tags; "lc" (local component) becomes the tag `component`,
// as the Collector names it.

Kind CoreAnnotationKind(std::string_view value) {
  if (value == "cs" || value == "cr") return Kind::kClient;
  if (value == "sr" || value == "ss") return Kind::kServer;
  if (value == "ms") return Kind::kProducer;
  if (value == "mr") return Kind::kConsumer;
  return Kind::kUnspecified;
}

const char* AddressKeyFor(Kind kind) {
  switch (kind) {
    case Kind::kClient: return "sa";
    case Kind::kServer: return "ca";
    case Kind::kProducer: case Kind::kConsumer: return "ma";
    default: return "";
  }
}

Status ReadJsonV1Span(const Value& object, const std::string& where, Span& span) {
  if (!object.IsObject()) return Invalid(where, "must be a span object");
  TRACERY_RETURN_IF_ERROR(ReadIds(object, where, span));
  TRACERY_RETURN_IF_ERROR(ReadString(object, "name", where, span.name));
  uint64_t timestamp = 0, duration = 0;
  TRACERY_RETURN_IF_ERROR(ReadMicros(object, "timestamp", where, timestamp));
  TRACERY_RETURN_IF_ERROR(ReadMicros(object, "duration", where, duration));
  TRACERY_RETURN_IF_ERROR(ReadBool(object, "debug", where, span.debug));

  uint64_t earliest = std::numeric_limits<uint64_t>::max(), latest = 0;
  bool kind_set = false;
  if (const Value* annotations = Member(object, "annotations")) {
    if (!annotations->IsArray()) return Invalid(where + ".annotations", "must be a list");
    for (rapidjson::SizeType i = 0; i < annotations->Size(); ++i) {
      const Value& a = (*annotations)[i];
      std::string at = where + ".annotations[" + std::to_string(i) + "]";
      if (!a.IsObject()) return Invalid(at, "must be an object with timestamp and value");
      Annotation annotation;
      TRACERY_RETURN_IF_ERROR(ReadMicros(a, "timestamp", at, annotation.timestamp_nanos));
      TRACERY_RETURN_IF_ERROR(ReadString(a, "value", at, annotation.value));
      bool has_endpoint = false;
      Endpoint endpoint;
      TRACERY_RETURN_IF_ERROR(ReadEndpointMember(a, "endpoint", at, has_endpoint, endpoint));
      if (annotation.value.empty()) continue;
      earliest = std::min(earliest, annotation.timestamp_nanos);
      latest = std::max(latest, annotation.timestamp_nanos);
      Kind kind = CoreAnnotationKind(annotation.value);
      if (kind == Kind::kUnspecified) {
        span.annotations.push_back(std::move(annotation));
        continue;
      }
      if (!kind_set) span.kind = kind;
      kind_set = true;
      if (!span.has_local_endpoint && has_endpoint && !endpoint.service_name.empty()) {
        span.has_local_endpoint = true;
        span.local_endpoint = std::move(endpoint);
      }
    }
  }

  bool has_fallback_local = false;
  Endpoint fallback_local;
  std::string local_component;
  std::vector<std::pair<std::string, Endpoint>> addresses;
  if (const Value* binary = Member(object, "binaryAnnotations")) {
    if (!binary->IsArray()) return Invalid(where + ".binaryAnnotations", "must be a list");
    for (rapidjson::SizeType i = 0; i < binary->Size(); ++i) {
      const Value& b = (*binary)[i];
      std::string at = where + ".binaryAnnotations[" + std::to_string(i) + "]";
      if (!b.IsObject()) return Invalid(at, "must be an object with key and value");
      std::string key, value;
      TRACERY_RETURN_IF_ERROR(ReadString(b, "key", at, key));
      if (const Value* v = Member(b, "value"); v && !ScalarText(*v, value)) return Invalid(at + ".value", "must be a string");
      bool has_endpoint = false;
      Endpoint endpoint;
      TRACERY_RETURN_IF_ERROR(ReadEndpointMember(b, "endpoint", at, has_endpoint, endpoint));
      if (key.empty()) continue;
      if (key == "sa" || key == "ca" || key == "ma") {
        if (has_endpoint) addresses.emplace_back(key, std::move(endpoint));
        continue;
      }
      if (key == "lc") {
        key = "component";
        local_component = value;
      }
      if (!has_fallback_local && has_endpoint && !endpoint.service_name.empty()) {
        has_fallback_local = true;
        fallback_local = std::move(endpoint);
      }
      span.tags.emplace_back(std::move(key), std::move(value));
    }
  }
  if (!span.has_local_endpoint && has_fallback_local) {
    span.has_local_endpoint = true;
    span.local_endpoint = std::move(fallback_local);
  } else if (!span.has_local_endpoint && !local_component.empty()) {
    span.has_local_endpoint = true;
    span.local_endpoint.service_name = local_component;
  }
  // The address annotation that names the other side for this kind, else the first one.
  const Endpoint* remote = addresses.empty() ? nullptr : &addresses.front().second;
  for (const auto& [key, endpoint] : addresses) {
    if (key == AddressKeyFor(span.kind)) {
      remote = &endpoint;
      break;
    }
  }
  if (remote) {
    span.has_remote_endpoint = true;
    span.remote_endpoint = *remote;
  }

  if (timestamp > 0) {
    span.timestamp_nanos = timestamp;
    span.duration_nanos = duration;
  } else if (latest > 0) {
    span.timestamp_nanos = earliest;
    span.duration_nanos = duration > 0 ? duration : latest - earliest;
  } else {
    span.duration_nanos = duration;
  }
  return Status::Ok();
}

template <typename ReadSpan>
Status ReadJsonList(std::string_view body, std::vector<Span>& out, ReadSpan read_span) {
  rapidjson::Document document;
  TRACERY_RETURN_IF_ERROR(ParseJsonList(body, document));
  out.reserve(out.size() + document.Size());
  for (rapidjson::SizeType i = 0; i < document.Size(); ++i) {
    Span span;
    TRACERY_RETURN_IF_ERROR(read_span(document[i], SpanWhere(i), span));
    out.push_back(std::move(span));
  }
  return Status::Ok();
}

}  // namespace

Status ReadJsonV2(std::string_view body, std::vector<Span>& out) { return ReadJsonList(body, out, ReadJsonV2Span); }

Status ReadJsonV1(std::string_view body, std::vector<Span>& out) { return ReadJsonList(body, out, ReadJsonV1Span); }

}  // namespace tracery::receiver::zipkin
