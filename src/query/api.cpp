#include "query/api.h"

#include <chrono>
#include <charconv>

#include "common/tenant.h"
#include "otlp/json.h"
#include "otlp/wire.h"
#include "query/http_params.h"

namespace tracery::query {
namespace {

namespace http = boost::beast::http;

bool WantsProtobuf(const HttpRequest& request) {
  std::string_view accept(request[http::field::accept]);
  return accept.find("application/protobuf") != std::string_view::npos ||
         accept.find("application/x-protobuf") != std::string_view::npos;
}

HttpResponse TraceById(const HttpRequest& request, const Target& target, std::string_view id_text, bool v2,
                       const ApiOptions& options, storage::TraceReader& reader) {
  std::optional<std::string_view> org_id;
  if (auto it = request.find("X-Scope-OrgID"); it != request.end()) org_id = std::string_view(it->value());
  auto tenant = ResolveTenant(options.multitenancy_enabled, org_id);
  if (!tenant.ok()) return HttpResponse::Text(HttpStatusFor(tenant.status()), tenant.status().message() + "\n");
  auto id = ParseTraceIdHex(id_text);
  if (!id) return HttpResponse::Text(400, "invalid trace ID '" + std::string(id_text) + "': expected up to 32 hex digits\n");
  uint64_t start = 0, end = UINT64_MAX;
  if (!ParseSeconds(target.Param("start"), start) || !ParseSeconds(target.Param("end"), end))
    return HttpResponse::Text(400, "invalid start or end: expected unix seconds\n");
  if (end != UINT64_MAX) end = EndOfSecond(end);  // end is inclusive to the second
  if (start > end) return HttpResponse::Text(400, "invalid start or end: start is after end\n");
  auto trace = reader.FindTrace(*tenant, *id, storage::TimeRange{start, end});
  if (!trace.ok()) return HttpResponse::Text(HttpStatusFor(trace.status()), trace.status().ToString() + "\n");
  if (!trace->has_value()) return HttpResponse::Text(404, "trace not found\n");
  const otlp::TracesData& data = **trace;
  if (WantsProtobuf(request)) {
    // v1: Trace{ repeated ResourceSpans batches = 1 }; v2: TraceByIDResponse{ Trace trace = 1 }.
    std::string encoded = otlp::EncodeTracesData(data);
    HttpResponse response{200, "application/protobuf", {}, {}};
    if (v2) otlp::PutBytesField(response.body, 1, encoded);
    else response.body = std::move(encoded);
    return response;
  }
  std::string body = v2 ? "{\"trace\":{\"resourceSpans\":" : "{\"batches\":";
  otlp::WriteJsonResourceSpans(data, body);
  body += v2 ? "}}" : "}";
  return HttpResponse::Json(200, std::move(body));
}

void HandlePin(const HttpRequest& request, const std::string& path, const ApiOptions& options, MetricsRegistry& metrics,
               Responder respond) {
  bool unpin_path = path.ends_with("/unpin");
  std::string_view id_text = std::string_view(path).substr(12, path.size() - 12 - (unpin_path ? 6 : 4));
  auto count = [&metrics](int status) {
    metrics.GetCounter("tracery_query_requests_total", "Query API requests, by endpoint and status code.",
                       {{"endpoint", "/api/traces/pin"}, {"status_code", std::to_string(status)}})
        .Add();
  };
  bool is_post = request.method() == http::verb::post, is_delete = request.method() == http::verb::delete_;
  if (!(is_post || (is_delete && !unpin_path))) {
    count(405);
    respond({405, "text/plain; charset=utf-8", unpin_path ? "use POST\n" : "use POST to pin, DELETE to unpin\n",
             {{"Allow", unpin_path ? "POST" : "POST, DELETE"}}});
    return;
  }
  std::optional<std::string_view> org_id;
  if (auto it = request.find("X-Scope-OrgID"); it != request.end()) org_id = std::string_view(it->value());
  auto tenant = ResolveTenant(options.multitenancy_enabled, org_id);
  if (!tenant.ok()) {
    count(HttpStatusFor(tenant.status()));
    respond(HttpResponse::Text(HttpStatusFor(tenant.status()), tenant.status().message() + "\n"));
    return;
  }
  auto id = ParseTraceIdHex(id_text);
  if (!id || id_text.find('/') != std::string_view::npos) {
    count(400);
    respond(HttpResponse::Text(400, "invalid trace ID '" + std::string(id_text) + "': expected up to 32 hex digits\n"));
    return;
  }
  if (!options.pin) {
    count(501);
    respond(HttpResponse::Text(501, "pinning is not available here\n"));
    return;
  }
  bool pin = is_post && !unpin_path;
  options.pin(*tenant, *id, pin, [respond, count, pin, hex = id->Hex()](Status status) {
    if (!status.ok()) {
      count(HttpStatusFor(status));
      respond(HttpResponse::Text(HttpStatusFor(status), status.message() + "\n"));
      return;
    }
    count(200);
    respond(HttpResponse::Json(200, "{\"traceID\":\"" + hex + "\",\"pinned\":" + (pin ? "true" : "false") + "}"));
  });
}

}  // namespace

HttpHandler MakeQueryApiHandler(ApiOptions options, storage::TraceReader& reader, MetricsRegistry& metrics) {
  static const std::vector<double> kLatencyBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
  return [options, &reader, &metrics](HttpRequest&& request, Responder respond) {
    auto started = std::chrono::steady_clock::now();
    Target target = ParseTarget(request.target());
    const std::string& path = target.path;
    std::string endpoint = path;
    HttpResponse response;
    // Pinning changes state: POST (DELETE unpins).
    if (path.rfind("/api/traces/", 0) == 0 && (path.ends_with("/pin") || path.ends_with("/unpin"))) {
      HandlePin(request, path, options, metrics, std::move(respond));
      return;
    }
    // Everything here is read with GET, but /flush, which changes state: POST.
    bool is_flush = path == "/flush";
    if (request.method() != (is_flush ? http::verb::post : http::verb::get)) {
      response = {405, "text/plain; charset=utf-8", is_flush ? "use POST\n" : "use GET\n", {{"Allow", is_flush ? "POST" : "GET"}}};
      metrics.GetCounter("tracery_query_requests_total", "Query API requests, by endpoint and status code.",
                         {{"endpoint", is_flush ? "/flush" : "other"}, {"status_code", "405"}})
          .Add();
      respond(std::move(response));
      return;
    }
    if (is_flush) {
      // A flush can take seconds: it runs off the query threads, which keep answering.
      if (!options.flush) {
        respond(HttpResponse{204, "text/plain", "", {}});
        return;
      }
      options.flush([respond](Status status) {
        respond(status.ok() ? HttpResponse{204, "text/plain", "", {}}
                            : HttpResponse::Text(HttpStatusFor(status), status.ToString() + "\n"));
      });
      return;
    }
    if (path == "/ready") {
      bool ready = !options.ready || options.ready();
      response = HttpResponse::Text(ready ? 200 : 503, ready ? "ready\n" : "not ready\n");
    } else if (path == "/api/echo") {
      response = HttpResponse::Text(200, "echo");
    } else if (path == "/api/status/buildinfo") {
      response = HttpResponse::Json(200, std::string("{\"version\":\"") + TRACERY_VERSION +
                                             "\",\"revision\":\"\",\"branch\":\"main\",\"buildUser\":\"\",\"buildDate\":\"\","
                                             "\"goVersion\":\"\",\"application\":\"tracery\"}");
    } else if (path == "/metrics") {
      // OpenMetrics when asked for (it carries exemplars); the Prometheus text format otherwise.
      bool openmetrics = std::string_view(request[http::field::accept]).find("application/openmetrics-text") != std::string_view::npos;
      std::string body = metrics.Render(openmetrics);
      if (options.render_generated) body += options.render_generated(openmetrics);
      if (openmetrics) body += "# EOF\n";
      response = {200,
                  openmetrics ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                              : "text/plain; version=0.0.4; charset=utf-8",
                  std::move(body), {}};
    } else if (options.searcher && options.query_pool && IsSearchApiPath(path)) {
      std::optional<std::string_view> org_id;
      if (auto it = request.find("X-Scope-OrgID"); it != request.end()) org_id = std::string_view(it->value());
      auto tenant = ResolveTenant(options.multitenancy_enabled, org_id);
      if (!tenant.ok()) {
        response = HttpResponse::Text(HttpStatusFor(tenant.status()), tenant.status().message() + "\n");
      } else {
        // Answered on the query pool: the HTTP threads stay free for /ready and trace lookups.
        auto endpoint_name = std::make_shared<std::string>();
        HandleSearchApi(request, target, *tenant, *options.searcher, options.search, *options.query_pool, *endpoint_name,
                        [&metrics, respond, started, endpoint_name](HttpResponse response) {
                          double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
                          metrics.GetCounter("tracery_query_requests_total", "Query API requests, by endpoint and status code.",
                                             {{"endpoint", *endpoint_name}, {"status_code", std::to_string(response.status)}})
                              .Add();
                          metrics.GetHistogram("tracery_query_duration_seconds", "Query API latency, by endpoint.",
                                               kLatencyBounds, {{"endpoint", *endpoint_name}})
                              .Observe(seconds);
                          respond(std::move(response));
                        });
        return;
      }
    } else if (path.rfind("/api/traces/", 0) == 0) {
      endpoint = "/api/traces";
      response = TraceById(request, target, std::string_view(path).substr(12), false, options, reader);
    } else if (path.rfind("/api/v2/traces/", 0) == 0) {
      endpoint = "/api/v2/traces";
      response = TraceById(request, target, std::string_view(path).substr(15), true, options, reader);
    } else {
      endpoint = "other";
      response = HttpResponse::Text(404, "not found\n");
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    metrics.GetCounter("tracery_query_requests_total", "Query API requests, by endpoint and status code.",
                       {{"endpoint", endpoint}, {"status_code", std::to_string(response.status)}})
        .Add();
    if (endpoint == "/api/traces" || endpoint == "/api/v2/traces")
      metrics.GetHistogram("tracery_query_duration_seconds", "Query API latency, by endpoint.", kLatencyBounds,
                           {{"endpoint", endpoint}})
          .Observe(seconds);
    respond(std::move(response));
  };
}

}  // namespace tracery::query
