#include "loadgen/zipkin_encode.h"

#include <fmt/format.h>

namespace tracery::bench {
namespace {

using opentelemetry::proto::common::v1::AnyValue;
using opentelemetry::proto::common::v1::KeyValue;
using opentelemetry::proto::trace::v1::Span;
using opentelemetry::proto::trace::v1::Status;

constexpr uint64_t kSmallest16DigitValue = 1'000'000'000'000'000ULL;

void AppendJsonString(std::string_view text, std::string& out) {
  out += '"';
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  out += '"';
}

void AppendHex(const std::string& bytes, std::string& out) {
  constexpr char kDigits[] = "0123456789abcdef";
  for (unsigned char byte : bytes) {
    out += kDigits[byte >> 4];
    out += kDigits[byte & 0xf];
  }
}

// Zipkin tags are strings; the exporter writes other attribute types as their text. Arrays and
// maps do not occur in the generated traffic.
bool TagText(const AnyValue& value, std::string& text) {
  switch (value.value_case()) {
    case AnyValue::kStringValue: text = value.string_value(); return true;
    case AnyValue::kIntValue: text = std::to_string(value.int_value()); return true;
    case AnyValue::kDoubleValue: text = fmt::format("{}", value.double_value()); return true;
    case AnyValue::kBoolValue: text = value.bool_value() ? "true" : "false"; return true;
    default: return false;
  }
}

class ZipkinWriter {
 public:
  explicit ZipkinWriter(HttpBody& body) : body_(body), out_(body.encoded) {}

  bool Span(const Span& span, std::string_view service_name,
            const std::vector<const KeyValue*>& resource_tags, std::string_view scope_name,
            std::string_view scope_version, uint32_t trace_index, std::string& error) {
    out_ += body_.span_count++ == 0 ? "{" : ",{";
    out_ += "\"traceId\":\"";
    body_.trace_id_offsets.emplace_back(trace_index, static_cast<uint32_t>(out_.size()));
    AppendHex(span.trace_id(), out_);
    out_ += "\",\"id\":\"";
    AppendHex(span.span_id(), out_);
    out_ += '"';
    if (!span.parent_span_id().empty()) {
      out_ += ",\"parentId\":\"";
      AppendHex(span.parent_span_id(), out_);
      out_ += '"';
    }
    out_ += ",\"name\":";
    AppendJsonString(span.name(), out_);
    if (const char* kind = KindName(span.kind())) fmt::format_to(std::back_inserter(out_), ",\"kind\":\"{}\"", kind);
    out_ += ",\"timestamp\":";
    if (!Timestamp(span.start_time_unix_nano(), error)) return false;
    fmt::format_to(std::back_inserter(out_), ",\"duration\":{}",
                   (span.end_time_unix_nano() - span.start_time_unix_nano()) / 1000);
    out_ += ",\"localEndpoint\":{\"serviceName\":";
    AppendJsonString(service_name, out_);
    out_ += "},\"tags\":{";
    first_tag_ = true;
    for (const KeyValue* attribute : resource_tags) Tag(*attribute);
    if (!scope_name.empty()) Tag("otel.scope.name", scope_name);
    if (!scope_version.empty()) Tag("otel.scope.version", scope_version);
    for (const KeyValue& attribute : span.attributes()) Tag(attribute);
    if (span.kind() == Span::SPAN_KIND_INTERNAL) Tag("span.kind", "internal");
    if (span.status().code() == Status::STATUS_CODE_ERROR) {
      Tag("otel.status_code", "ERROR");
      Tag("error", "true");
      if (!span.status().message().empty()) Tag("otel.status_description", span.status().message());
    } else if (span.status().code() == Status::STATUS_CODE_OK) {
      Tag("otel.status_code", "OK");
    }
    out_ += '}';
    if (span.events_size() > 0) {
      // An annotation has only a time and a text: event attributes have no place in Zipkin.
      out_ += ",\"annotations\":[";
      for (int i = 0; i < span.events_size(); ++i) {
        out_ += i == 0 ? "{\"timestamp\":" : ",{\"timestamp\":";
        if (!Timestamp(span.events(i).time_unix_nano(), error)) return false;
        out_ += ",\"value\":";
        AppendJsonString(span.events(i).name(), out_);
        out_ += '}';
      }
      out_ += ']';
    }
    out_ += '}';
    return true;
  }

 private:
  static const char* KindName(Span::SpanKind kind) {
    switch (kind) {
      case Span::SPAN_KIND_SERVER: return "SERVER";
      case Span::SPAN_KIND_CLIENT: return "CLIENT";
      case Span::SPAN_KIND_PRODUCER: return "PRODUCER";
      case Span::SPAN_KIND_CONSUMER: return "CONSUMER";
      default: return nullptr;  // internal: the tag span.kind says so
    }
  }

  bool Timestamp(uint64_t unix_ns, std::string& error) {
    const uint64_t micros = unix_ns / 1000;
    if (micros < kSmallest16DigitValue || micros >= 10 * kSmallest16DigitValue) {
      error = fmt::format("zipkin: timestamp {} µs is not 16 digits, cannot be patched", micros);
      return false;
    }
    body_.timestamp_offsets.push_back(static_cast<uint32_t>(out_.size()));
    fmt::format_to(std::back_inserter(out_), "{}", micros);
    return true;
  }

  void Tag(const KeyValue& attribute) {
    std::string text;
    if (TagText(attribute.value(), text)) Tag(attribute.key(), text);
  }

  void Tag(std::string_view key, std::string_view value) {
    if (!first_tag_) out_ += ',';
    first_tag_ = false;
    AppendJsonString(key, out_);
    out_ += ':';
    AppendJsonString(value, out_);
  }

  HttpBody& body_;
  std::string& out_;
  bool first_tag_ = true;
};

}  // namespace

bool EncodeZipkinGroup(const opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest& request,
                       HttpRequestGroup& group, std::string& error) {
  HttpBody body;
  body.encoded = "[";
  ZipkinWriter writer(body);
  TraceNumbering traces;
  for (const auto& resource_spans : request.resource_spans()) {
    // service.name becomes localEndpoint.serviceName; the other resource attributes go to
    // every span's tags, where the receiver recognises them as resource attributes.
    std::string_view service_name;
    std::vector<const KeyValue*> resource_tags;
    for (const KeyValue& attribute : resource_spans.resource().attributes()) {
      if (attribute.key() == "service.name") {
        service_name = attribute.value().string_value();
      } else {
        resource_tags.push_back(&attribute);
      }
    }
    for (const auto& scope_spans : resource_spans.scope_spans()) {
      for (const auto& span : scope_spans.spans()) {
        if (!writer.Span(span, service_name, resource_tags, scope_spans.scope().name(),
                         scope_spans.scope().version(), traces.IndexOf(span.trace_id()), error)) {
          return false;
        }
      }
    }
  }
  body.encoded += ']';
  group.trace_count = traces.size();
  group.span_count = body.span_count;
  group.bodies.push_back(std::move(body));
  return true;
}

}  // namespace tracery::bench
