// Tempo's HTTP API on the query port, as Grafana's Tempo data source reads it: trace by ID
// (v1 and v2, JSON or protobuf), plus /ready, /api/echo, /api/status/buildinfo, /metrics and
// /flush. Tenants come from X-Scope-OrgID when multitenancy is on.
#pragma once

#include <functional>

#include "common/http_server.h"
#include "common/metrics.h"
#include "query/search.h"
#include "query/search_api.h"
#include "storage/trace_source.h"

namespace tracery::query {

struct ApiOptions {
  bool multitenancy_enabled = false;
  std::function<bool()> ready;  // false while starting or stopping
  std::function<std::string(bool openmetrics)> render_generated;  // generated series for /metrics, if any
  // POST /flush: cut every waiting trace into blocks now, off the query threads; `done` runs
  // (on any thread) when the cut is over.
  std::function<void(std::function<void(Status)> done)> flush;
  // POST /api/traces/{id}/pin (pin = true), DELETE /api/traces/{id}/pin and POST
  // /api/traces/{id}/unpin (pin = false): keeps a trace in the pinned tier whatever sampling
  // decides. `done` runs once the pin is durable; NotFound when there is no such trace.
  std::function<void(const std::string& tenant, const TraceId& id, bool pin, std::function<void(Status)> done)> pin;
  // Search, tags and TraceQL metrics; answered on `query_pool`. Off when null.
  Searcher* searcher = nullptr;
  ThreadPool* query_pool = nullptr;
  SearchApiOptions search;
};

HttpHandler MakeQueryApiHandler(ApiOptions options, storage::TraceReader& reader, MetricsRegistry& metrics);

}  // namespace tracery::query
