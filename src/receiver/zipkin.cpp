// Zipkin v2 spans -> OTLP, following the OpenTelemetry Collector's zipkinv2 translator (what
// Tempo runs), and the HTTP handler of the Zipkin API. The rules, and where tracery departs
// from the Collector, are in docs/api.md ("Zipkin").
#include "receiver/zipkin.h"

#include <charconv>
#include <cstdlib>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "common/ids.h"
#include "receiver/http_body.h"
#include "receiver/zipkin_span.h"

namespace tracery::receiver {
namespace {

namespace http = boost::beast::http;
using TagList = std::vector<std::pair<std::string, std::string>>;

// Tags that describe the process rather than the operation: the resource attributes of the
// OpenTelemetry semantic conventions (v1.6.1, the Collector's list) and the few other keys
// the Collector keeps off spans. Zipkin exporters of OpenTelemetry SDKs copy the resource
// into every span's tags; these go back to the resource.
bool IsResourceTag(std::string_view key) {
  static const std::unordered_set<std::string_view> keys = {
      "service.name", "service.namespace", "service.instance.id", "service.version",
      "telemetry.sdk.name", "telemetry.sdk.language", "telemetry.sdk.version", "telemetry.auto.version",
      "cloud.provider", "cloud.account.id", "cloud.region", "cloud.availability_zone", "cloud.platform",
      "aws.ecs.container.arn", "aws.ecs.cluster.arn", "aws.ecs.launchtype", "aws.ecs.task.arn",
      "aws.ecs.task.family", "aws.ecs.task.revision", "aws.eks.cluster.arn", "aws.log.group.names",
      "aws.log.group.arns", "aws.log.stream.names", "aws.log.stream.arns",
      "container.name", "container.id", "container.runtime", "container.image.name", "container.image.tag",
      "deployment.environment", "device.id", "device.model.identifier", "device.model.name",
      "faas.name", "faas.id", "faas.version", "faas.instance", "faas.max_memory",
      "host.id", "host.name", "host.type", "host.arch", "host.image.name", "host.image.id", "host.image.version",
      "k8s.cluster.name", "k8s.node.name", "k8s.node.uid", "k8s.namespace.name", "k8s.pod.uid", "k8s.pod.name",
      "k8s.container.name", "k8s.container.restart_count", "k8s.replicaset.uid", "k8s.replicaset.name",
      "k8s.deployment.uid", "k8s.deployment.name", "k8s.statefulset.uid", "k8s.statefulset.name",
      "k8s.daemonset.uid", "k8s.daemonset.name", "k8s.job.uid", "k8s.job.name", "k8s.cronjob.uid", "k8s.cronjob.name",
      "os.type", "os.description", "os.name", "os.version",
      "process.pid", "process.executable.name", "process.executable.path", "process.command",
      "process.command_line", "process.command_args", "process.owner", "process.runtime.name",
      "process.runtime.version", "process.runtime.description",
      "webengine.name", "webengine.version", "webengine.description",
      "opencensus.starttime", "opencensus.exporterversion", "opencensus.resourcetype"};
  return keys.count(key) > 0;
}

// Names a span in errors found while mapping (the readers name them by position).
std::string SpanLabel(const zipkin::Span& span) { return "span " + HexEncode(span.id) + " of trace " + HexEncode(span.trace_id); }

// A span's tags with lookup by key; a repeated key counts once, with its last value.
class TagSet {
 public:
  explicit TagSet(TagList& tags) : tags_(tags), taken_(tags.size(), false) {
    index_.reserve(tags.size());
    for (size_t i = 0; i < tags.size(); ++i) {
      auto [it, inserted] = index_.try_emplace(tags[i].first, i);
      if (!inserted) {
        taken_[it->second] = true;
        it->second = i;
      }
    }
  }
  const std::string* Find(std::string_view key) const {
    auto it = index_.find(key);
    return it == index_.end() || taken_[it->second] ? nullptr : &tags_[it->second].second;
  }
  std::optional<std::string> Take(std::string_view key) {
    auto it = index_.find(key);
    if (it == index_.end() || taken_[it->second]) return std::nullopt;
    taken_[it->second] = true;
    return std::move(tags_[it->second].second);
  }
  // Visits the tags not taken, in order; `visit` returns true to take one.
  template <typename Visit>
  void ForEach(Visit&& visit) {
    for (size_t i = 0; i < tags_.size(); ++i)
      if (!taken_[i] && visit(tags_[i].first, tags_[i].second)) taken_[i] = true;
  }

 private:
  TagList& tags_;
  std::vector<bool> taken_;
  std::unordered_map<std::string_view, size_t> index_;
};

otlp::AnyValue StringValue(std::string text) {
  otlp::AnyValue value;
  value.type = otlp::AnyValue::Type::kString;
  value.string_value = std::move(text);
  return value;
}

otlp::AnyValue IntValue(int64_t number) {
  otlp::AnyValue value;
  value.type = otlp::AnyValue::Type::kInt;
  value.int_value = number;
  return value;
}

// parse_string_tags, as the Collector decides a type: -?digits is an int, -?digits.digits a
// double, true/false a bool; anything else (and an int past 64 bits) stays a string.
otlp::AnyValue TagValue(std::string text, bool parse_string_tags) {
  if (!parse_string_tags) return StringValue(std::move(text));
  std::string_view digits = text;
  if (!digits.empty() && digits.front() == '-') digits.remove_prefix(1);
  size_t integer_end = digits.find_first_not_of("0123456789");
  bool integral = !digits.empty() && integer_end == std::string_view::npos;
  bool decimal = integer_end != std::string_view::npos && integer_end > 0 && digits[integer_end] == '.' &&
                 integer_end + 1 < digits.size() &&
                 digits.find_first_not_of("0123456789", integer_end + 1) == std::string_view::npos;
  otlp::AnyValue value;
  if (integral) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value.int_value);
    if (ec == std::errc() && end == text.data() + text.size()) {
      value.type = otlp::AnyValue::Type::kInt;
      return value;
    }
  } else if (decimal) {
    value.type = otlp::AnyValue::Type::kDouble;
    value.double_value = std::strtod(text.c_str(), nullptr);
    return value;
  } else if (text == "true" || text == "false") {
    value.type = otlp::AnyValue::Type::kBool;
    value.bool_value = text == "true";
    return value;
  }
  return StringValue(std::move(text));
}

// Sets an attribute, replacing one of the same key (endpoint attributes win over tags).
void Put(otlp::Attributes& attributes, std::string key, otlp::AnyValue value) {
  for (auto& kv : attributes) {
    if (kv.key == key) {
      kv.value = std::move(value);
      return;
    }
  }
  attributes.push_back({std::move(key), std::move(value)});
}

otlp::StatusCode StatusFromTag(std::string_view value) {
  // The Collector's names, and the OpenTelemetry Zipkin exporters' (what SDKs send).
  if (value == "STATUS_CODE_OK" || value == "OK" || value == "Ok") return otlp::StatusCode::kOk;
  if (value == "STATUS_CODE_ERROR" || value == "ERROR" || value == "Error") return otlp::StatusCode::kError;
  return otlp::StatusCode::kUnset;
}

otlp::SpanKind KindOf(zipkin::Kind kind, TagSet& tags) {
  switch (kind) {
    case zipkin::Kind::kClient: return otlp::SpanKind::kClient;
    case zipkin::Kind::kServer: return otlp::SpanKind::kServer;
    case zipkin::Kind::kProducer: return otlp::SpanKind::kProducer;
    case zipkin::Kind::kConsumer: return otlp::SpanKind::kConsumer;
    case zipkin::Kind::kUnspecified: break;
  }
  auto tag = tags.Take("span.kind");
  return tag && *tag == "internal" ? otlp::SpanKind::kInternal : otlp::SpanKind::kUnspecified;
}

void MapStatus(TagSet& tags, otlp::Span& out) {
  if (auto code = tags.Take("otel.status_code")) {
    out.status_code = StatusFromTag(*code);
    if (auto description = tags.Take("otel.status_description")) out.status_message = std::move(*description);
  }
  // Zipkin's error tag: present (and not "false") means the span failed; its value is the
  // message, unless it is just "true" (then the tag goes, as in the Collector).
  if (const std::string* error = tags.Find("error"); error && *error != "false") {
    out.status_code = otlp::StatusCode::kError;
    if (*error == "true" || error->empty()) tags.Take("error");
    else if (out.status_message.empty()) out.status_message = *error;
  }
}

void MapEndpoints(const zipkin::Span& span, otlp::Attributes& attributes) {
  const zipkin::Endpoint& local = span.local_endpoint;
  if (span.has_local_endpoint) {
    if (!local.ipv4.empty()) Put(attributes, "net.host.ip", StringValue(local.ipv4));
    if (!local.ipv6.empty()) Put(attributes, "net.host.ip", StringValue(local.ipv6));
    if (local.port > 0) Put(attributes, "net.host.port", IntValue(local.port));
  }
  const zipkin::Endpoint& remote = span.remote_endpoint;
  if (span.has_remote_endpoint) {
    if (!remote.service_name.empty()) Put(attributes, "peer.service", StringValue(remote.service_name));
    if (!remote.ipv4.empty()) Put(attributes, "net.peer.ip", StringValue(remote.ipv4));
    if (!remote.ipv6.empty()) Put(attributes, "net.peer.ip", StringValue(remote.ipv6));
    if (remote.port > 0) Put(attributes, "net.peer.port", IntValue(remote.port));
  }
}

// Spans land in one ResourceSpans per distinct resource and one ScopeSpans per scope in it,
// in the order they first appear.
class Grouper {
 public:
  explicit Grouper(otlp::TracesData& out) : out_(out) {}
  std::vector<otlp::Span>& SpansFor(otlp::Resource resource, otlp::Scope scope) {
    std::string resource_key;
    otlp::EncodeResource(resource, resource_key);
    auto [r, new_resource] = resources_.try_emplace(resource_key, out_.resource_spans.size());
    if (new_resource) out_.resource_spans.push_back({std::move(resource), {}, {}});
    std::string scope_key = std::to_string(r->second) + '\0' + scope.name + '\0' + scope.version;
    auto& scopes = out_.resource_spans[r->second].scope_spans;
    auto [s, new_scope] = scopes_.try_emplace(scope_key, scopes.size());
    if (new_scope) scopes.push_back({std::move(scope), {}, {}});
    return scopes[s->second].spans;
  }

 private:
  otlp::TracesData& out_;
  std::unordered_map<std::string, size_t> resources_, scopes_;
};

Status MapSpan(zipkin::Span& span, const ZipkinOptions& options, Grouper& grouper) {
  TagSet tags(span.tags);
  otlp::Resource resource;
  // otlp.service.name.source names the attribute the service name came from (the
  // Collector's exporter writes it when that was not service.name).
  std::optional<std::string> service_key = tags.Take("otlp.service.name.source");
  if (!span.local_endpoint.service_name.empty())
    Put(resource.attributes, service_key && !service_key->empty() ? *service_key : "service.name",
        StringValue(span.local_endpoint.service_name));
  tags.ForEach([&](const std::string& key, std::string& value) {
    if (!IsResourceTag(key)) return false;
    Put(resource.attributes, key, StringValue(std::move(value)));
    return true;
  });
  otlp::Scope scope;
  auto scope_name = tags.Take("otel.scope.name"), library_name = tags.Take("otel.library.name");
  auto scope_version = tags.Take("otel.scope.version"), library_version = tags.Take("otel.library.version");
  scope.name = scope_name ? *scope_name : library_name.value_or("");
  scope.version = scope_version ? *scope_version : library_version.value_or("");

  otlp::Span out;
  out.trace_id = span.trace_id;
  out.span_id = span.id;
  if (span.parent_id != span.id) out.parent_span_id = span.parent_id;
  if (auto trace_state = tags.Take("w3c.tracestate")) out.trace_state = std::move(*trace_state);
  out.name = std::move(span.name);
  out.kind = KindOf(span.kind, tags);
  MapStatus(tags, out);
  tags.ForEach([&](const std::string& key, std::string& value) {
    out.attributes.push_back({key, TagValue(std::move(value), options.parse_string_tags)});
    return true;
  });
  MapEndpoints(span, out.attributes);
  if (span.timestamp_nanos == 0) {
    // As the Collector: an absent start is the epoch, and the span says so.
    otlp::AnyValue absent;
    absent.type = otlp::AnyValue::Type::kBool;
    absent.bool_value = true;
    Put(out.attributes, "otel.zipkin.absentField.startTime", std::move(absent));
  }
  out.start_time_unix_nano = span.timestamp_nanos;
  if (span.duration_nanos > UINT64_MAX - span.timestamp_nanos)
    return Status::InvalidArgument(SpanLabel(span) + ": timestamp plus duration is out of range");
  out.end_time_unix_nano = span.timestamp_nanos + span.duration_nanos;
  for (auto& annotation : span.annotations) out.events.push_back({annotation.timestamp_nanos, std::move(annotation.value), {}, 0});
  grouper.SpansFor(std::move(resource), std::move(scope)).push_back(std::move(out));
  return Status::Ok();
}

HttpResponse ErrorResponse(const Status& status) {
  return HttpResponse::Text(HttpStatusFor(status), status.message() + "\n");
}

}  // namespace

Status TranslateZipkin(std::string_view body, ZipkinFormat format, const ZipkinOptions& options, otlp::TracesData& out) {
  std::vector<zipkin::Span> spans;
  switch (format) {
    case ZipkinFormat::kJsonV2: TRACERY_RETURN_IF_ERROR(zipkin::ReadJsonV2(body, spans)); break;
    case ZipkinFormat::kProtobufV2: TRACERY_RETURN_IF_ERROR(zipkin::ReadProto3(body, spans)); break;
    case ZipkinFormat::kJsonV1: TRACERY_RETURN_IF_ERROR(zipkin::ReadJsonV1(body, spans)); break;
  }
  Grouper grouper(out);
  for (auto& span : spans) TRACERY_RETURN_IF_ERROR(MapSpan(span, options, grouper));
  return Status::Ok();
}

HttpHandler MakeZipkinHttpHandler(distributor::Distributor& distributor, uint64_t max_request_bytes, ZipkinOptions options) {
  return [&distributor, max_request_bytes, options](HttpRequest&& request, Responder respond) {
    std::string target(request.target());
    std::string path = target.substr(0, target.find('?'));
    bool v1 = path == "/api/v1/spans";
    if (path != "/api/v2/spans" && !v1) {
      respond(HttpResponse::Text(404, "not found: Zipkin spans are POSTed to /api/v2/spans (or /api/v1/spans)\n"));
      return;
    }
    if (request.method() != http::verb::post) {
      respond({405, "text/plain; charset=utf-8", "use POST\n", {{"Allow", "POST"}}});
      return;
    }
    // Zipkin reads a body without a Content-Type as JSON, and so does tracery.
    std::string media = MediaType(request[http::field::content_type]);
    ZipkinFormat format;
    if (media.empty() || media == "application/json") format = v1 ? ZipkinFormat::kJsonV1 : ZipkinFormat::kJsonV2;
    else if (!v1 && (media == "application/x-protobuf" || media == "application/protobuf")) format = ZipkinFormat::kProtobufV2;
    else {
      distributor.CountRefused("content_type", request.body().size());
      respond(ErrorResponse(Status::UnsupportedMedia(
          "unsupported content type '" + media + "': " +
          (v1 ? "/api/v1/spans takes application/json (Thrift is not supported)"
              : "/api/v2/spans takes application/json or application/x-protobuf"))));
      return;
    }
    auto tenant = RequestTenant(request, distributor);
    if (!tenant.ok()) {
      respond(ErrorResponse(tenant.status()));
      return;
    }
    std::string body = std::move(request.body());
    size_t received_bytes = body.size();
    if (Status decoded = DecodeContentEncoding(request[http::field::content_encoding], max_request_bytes, body);
        !decoded.ok()) {
      distributor.CountRefused(ContentEncodingRefusal(decoded), received_bytes);
      respond(ErrorResponse(decoded));
      return;
    }
    otlp::TracesData data;
    if (Status translated = TranslateZipkin(body, format, options, data); !translated.ok()) {
      distributor.CountRefused("invalid", body.size());
      respond(ErrorResponse(translated));
      return;
    }
    if (data.resource_spans.empty()) {  // an empty list: nothing to store
      respond({202, "text/plain; charset=utf-8", "", {}});
      return;
    }
    auto encoded = std::make_shared<std::string>(otlp::EncodeTracesData(data));
    distributor.Push(*tenant, *encoded, distributor::Encoding::kProtobuf, [respond, encoded](distributor::PushReply reply) {
      if (!reply.status.ok()) {
        HttpResponse response = ErrorResponse(reply.status);
        if (reply.retry_after.count() > 0) response.headers.emplace_back("Retry-After", std::to_string(reply.retry_after.count()));
        respond(std::move(response));
        return;
      }
      // Zipkin has no partial success: spans a per-trace limit refused are only named in the
      // body, which Zipkin clients do not read.
      HttpResponse response{202, "text/plain; charset=utf-8", "", {}};
      if (reply.rejected_spans > 0)
        response.body = std::to_string(reply.rejected_spans) + " spans rejected: " + reply.rejected_reason + "\n";
      respond(std::move(response));
    });
  };
}

}  // namespace tracery::receiver
