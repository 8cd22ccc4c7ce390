// Jaeger spans -> OTLP, by the OpenTelemetry Collector's Jaeger translation rules (docs/api.md
// has them as a table), and the assembly of the ExportTraceServiceRequest.
#include <cctype>
#include <charconv>
#include <optional>
#include <unordered_map>
#include <vector>

#include "otlp/wire.h"
#include "receiver/jaeger_model.h"

namespace tracery::receiver::jaeger {
namespace {

// ---------------------------------------------------------------------------------------
// Attributes with the Collector's map semantics: a key appears once; putting a key again
// replaces its value where it first stood.

void Deduplicate(otlp::Attributes& attributes) {
  if (attributes.size() < 2) return;
  std::unordered_map<std::string_view, size_t> first;
  std::vector<bool> drop(attributes.size(), false);
  bool any = false;
  for (size_t i = 0; i < attributes.size(); ++i) {
    auto [it, inserted] = first.try_emplace(attributes[i].key, i);
    if (!inserted) {
      attributes[it->second].value = std::move(attributes[i].value);
      drop[i] = any = true;
    }
  }
  if (!any) return;
  size_t kept = 0;
  for (size_t i = 0; i < attributes.size(); ++i) {
    if (drop[i]) continue;
    if (kept != i) attributes[kept] = std::move(attributes[i]);  // never a self-move: it empties the key
    ++kept;
  }
  attributes.resize(kept);
}

const otlp::AnyValue* Find(const otlp::Attributes& attributes, std::string_view key) {
  for (const auto& kv : attributes)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

void Remove(otlp::Attributes& attributes, std::string_view key) {
  std::erase_if(attributes, [&](const otlp::KeyValue& kv) { return kv.key == key; });
}

// The Collector reads special tags as strings: any other type reads as "".
std::string StringOf(const otlp::AnyValue* v) {
  return v && v->type == otlp::AnyValue::Type::kString ? v->string_value : std::string();
}

// Takes the first tag named `key` out of a span's raw tags (before deduplication).
bool TakeFirst(otlp::Attributes& tags, std::string_view key, std::string& value) {
  for (auto it = tags.begin(); it != tags.end(); ++it) {
    if (it->key != key) continue;
    value = StringOf(&it->value);
    tags.erase(it);
    return true;
  }
  return false;
}

otlp::Scope TakeScope(otlp::Attributes& tags) {
  otlp::Scope scope;
  for (auto [name, version] : {std::pair{"otel.scope.name", "otel.scope.version"},
                               std::pair{"otel.library.name", "otel.library.version"}}) {
    if (TakeFirst(tags, name, scope.name)) {
      TakeFirst(tags, version, scope.version);
      break;
    }
  }
  return scope;
}

otlp::SpanKind KindOf(const std::string& kind) {
  if (kind == "client") return otlp::SpanKind::kClient;
  if (kind == "server") return otlp::SpanKind::kServer;
  if (kind == "producer") return otlp::SpanKind::kProducer;
  if (kind == "consumer") return otlp::SpanKind::kConsumer;
  if (kind == "internal") return otlp::SpanKind::kInternal;
  return otlp::SpanKind::kUnspecified;
}

std::optional<int64_t> HttpStatusCodeOf(const otlp::AnyValue& v) {
  if (v.type == otlp::AnyValue::Type::kInt) return v.int_value;
  if (v.type != otlp::AnyValue::Type::kString) return std::nullopt;
  std::string_view text = v.string_value;
  if (text.size() > 1 && text[0] == '+') text.remove_prefix(1);
  int64_t n;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return n;
}

// The status from the special tags: `error=true` wins, then `otel.status_code`, then an HTTP
// status code (4xx is an error for clients only).
void SetStatus(otlp::Attributes& attributes, otlp::Span& span) {
  bool status_exists = false;
  otlp::StatusCode code = otlp::StatusCode::kUnset;
  std::string message;
  auto take_description = [&] {
    const otlp::AnyValue* v = Find(attributes, "otel.status_description");
    if (!v) return false;
    message = StringOf(v);
    Remove(attributes, "otel.status_description");
    return true;
  };
  if (const otlp::AnyValue* error = Find(attributes, "error");
      error && error->type == otlp::AnyValue::Type::kBool && error->bool_value) {
    code = otlp::StatusCode::kError;
    Remove(attributes, "error");
    status_exists = true;
    if (!take_description()) message = StringOf(Find(attributes, "http.status_message"));
  }
  if (const otlp::AnyValue* status_code = Find(attributes, "otel.status_code")) {
    if (!status_exists) {
      status_exists = true;
      std::string text = StringOf(status_code);
      for (char& c : text) c = char(std::toupper(static_cast<unsigned char>(c)));
      if (text == "OK") code = otlp::StatusCode::kOk;
      if (text == "ERROR") code = otlp::StatusCode::kError;
      take_description();
    }
    Remove(attributes, "otel.status_code");
  } else if (const otlp::AnyValue* http = Find(attributes, "http.status_code"); http && !status_exists) {
    if (auto http_code = HttpStatusCodeOf(*http)) {
      otlp::StatusCode from_http = *http_code >= 100 && *http_code < 400 ? otlp::StatusCode::kUnset : otlp::StatusCode::kError;
      if (*http_code >= 400 && *http_code < 500) {
        if (span.kind == otlp::SpanKind::kClient) from_http = otlp::StatusCode::kError;
        if (span.kind == otlp::SpanKind::kServer) from_http = otlp::StatusCode::kUnset;
      }
      if (from_http != otlp::StatusCode::kUnset) {
        status_exists = true;
        code = from_http;
      }
      message = StringOf(Find(attributes, "http.status_message"));
    }
  }
  if (status_exists) {
    span.status_code = code;
    span.status_message = std::move(message);
  }
}

std::string TraceIdBytes(uint64_t high, uint64_t low) {
  std::string id(16, '\0');
  for (int i = 0; i < 8; ++i) {
    id[i] = char(high >> (56 - 8 * i));
    id[8 + i] = char(low >> (56 - 8 * i));
  }
  return id;
}

std::string SpanIdBytes(uint64_t span_id) {
  std::string id(8, '\0');
  for (int i = 0; i < 8; ++i) id[i] = char(span_id >> (56 - 8 * i));
  return id;
}

// The parent: Thrift's parentSpanId when set, else the first CHILD_OF reference within the
// same trace, else the first FOLLOWS_FROM one.
uint64_t ParentOf(const Span& span) {
  if (span.parent_span_id != 0) return span.parent_span_id;
  const Reference* follows_from = nullptr;
  for (const auto& ref : span.references) {
    if (ref.trace_high != span.trace_high || ref.trace_low != span.trace_low) continue;
    if (ref.type == kChildOf) return ref.span_id;
    if (!follows_from && ref.type == kFollowsFrom) follows_from = &ref;
  }
  return follows_from ? follows_from->span_id : 0;
}

Status MapSpan(Span& j, size_t index, otlp::Span& out, otlp::Scope& scope) {
  if (j.trace_high == 0 && j.trace_low == 0)
    return Status::InvalidArgument("Jaeger span " + std::to_string(index) + " has an all-zero trace ID");
  if (j.span_id == 0) return Status::InvalidArgument("Jaeger span " + std::to_string(index) + " has a zero span ID");
  out.trace_id = TraceIdBytes(j.trace_high, j.trace_low);
  out.span_id = SpanIdBytes(j.span_id);
  out.name = std::string(j.operation_name);
  out.start_time_unix_nano = j.start_unix_nano;
  out.end_time_unix_nano = j.end_unix_nano;
  out.flags = j.flags & 0x1;  // Jaeger's sampled bit is W3C's; debug (2) has no OTLP equivalent
  uint64_t parent = ParentOf(j);
  if (parent != 0) out.parent_span_id = SpanIdBytes(parent);

  scope = TakeScope(j.tags);
  out.attributes = std::move(j.tags);
  Deduplicate(out.attributes);
  if (const otlp::AnyValue* kind = Find(out.attributes, "span.kind")) {
    out.kind = KindOf(StringOf(kind));
    Remove(out.attributes, "span.kind");
  }
  SetStatus(out.attributes, out);
  if (const otlp::AnyValue* state = Find(out.attributes, "w3c.tracestate")) {
    out.trace_state = StringOf(state);
    Remove(out.attributes, "w3c.tracestate");
  }

  out.events.reserve(j.logs.size());
  for (auto& log : j.logs) {
    otlp::Event& event = out.events.emplace_back();
    event.time_unix_nano = log.time_unix_nano;
    event.attributes = std::move(log.fields);
    Deduplicate(event.attributes);
    if (const otlp::AnyValue* name = Find(event.attributes, "event")) {
      event.name = StringOf(name);
      Remove(event.attributes, "event");
    }
  }
  for (const auto& ref : j.references) {
    if (ref.span_id == parent && ref.type == kChildOf) continue;
    otlp::Link& link = out.links.emplace_back();
    link.trace_id = TraceIdBytes(ref.trace_high, ref.trace_low);
    link.span_id = SpanIdBytes(ref.span_id);
    link.attributes.push_back({"opentracing.ref_type", StringValue(ref.type == kChildOf ? "child_of" : "follows_from")});
  }
  return Status::Ok();
}

}  // namespace

otlp::AnyValue StringValue(std::string_view s) {
  otlp::AnyValue v;
  v.type = otlp::AnyValue::Type::kString;
  v.string_value = std::string(s);
  return v;
}

bool Span::Blank() const {
  return trace_high == 0 && trace_low == 0 && span_id == 0 && parent_span_id == 0 && operation_name.empty() &&
         references.empty() && flags == 0 && start_unix_nano == 0 && end_unix_nano == 0 && tags.empty() && logs.empty();
}

// service.name, then the process tags; `hostname` becomes host.name and `jaeger.version`
// opencensus.exporterversion ("Jaeger-<version>") unless those are already there.
std::string EncodeProcess(const Process& process) {
  otlp::Resource resource;
  if (process.present && process.service_name != "OTLPResourceNoServiceName" &&
      (!process.service_name.empty() || !process.tags.empty())) {
    otlp::Attributes& attributes = resource.attributes;
    if (!process.service_name.empty()) attributes.push_back({"service.name", StringValue(process.service_name)});
    attributes.insert(attributes.end(), process.tags.begin(), process.tags.end());
    Deduplicate(attributes);
    if (const otlp::AnyValue* hostname = Find(attributes, "hostname"); hostname && !Find(attributes, "host.name")) {
      otlp::AnyValue copy = *hostname;
      attributes.push_back({"host.name", std::move(copy)});
      Remove(attributes, "hostname");
    }
    if (const otlp::AnyValue* version = Find(attributes, "jaeger.version");
        version && !Find(attributes, "opencensus.exporterversion")) {
      otlp::AnyValue exporter = StringValue("Jaeger-" + StringOf(version));
      attributes.push_back({"opencensus.exporterversion", std::move(exporter)});
      Remove(attributes, "jaeger.version");
    }
  }
  std::string out;
  otlp::EncodeResource(resource, out);
  return out;
}

Status RequestBuilder::AddSpan(Span& span, size_t index, const std::string& resource) {
  if (span.Blank()) return Status::Ok();
  otlp::Span mapped;
  otlp::Scope scope;
  TRACERY_RETURN_IF_ERROR(MapSpan(span, index, mapped, scope));
  auto [resource_it, new_resource] = resource_index_.try_emplace(resource, groups_.size());
  if (new_resource) groups_.push_back({resource, {}, {}});
  ResourceGroup& group = groups_[resource_it->second];
  std::string scope_key = scope.name + '\0' + scope.version;
  auto [scope_it, new_scope] = group.scope_index.try_emplace(scope_key, group.scopes.size());
  if (new_scope) group.scopes.push_back({std::move(scope), {}});
  otlp::PutMessageField(group.scopes[scope_it->second].spans, 2, [&](std::string& o) { otlp::EncodeSpan(mapped, o); });
  ++spans_;
  return Status::Ok();
}

JaegerConversion RequestBuilder::Finish() const {
  JaegerConversion result;
  result.spans = spans_;
  for (const auto& group : groups_) {
    otlp::PutMessageField(result.otlp, 1, [&](std::string& resource_spans) {
      otlp::PutBytesField(resource_spans, 1, group.resource);
      for (const auto& scope : group.scopes) {
        otlp::PutMessageField(resource_spans, 2, [&](std::string& scope_spans) {
          otlp::PutMessageField(scope_spans, 1, [&](std::string& o) { otlp::EncodeScope(scope.scope, o); });
          scope_spans += scope.spans;
        });
      }
    });
  }
  return result;
}

}  // namespace tracery::receiver::jaeger
