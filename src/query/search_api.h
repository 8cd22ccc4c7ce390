// Tempo's search endpoints on the query port: /api/search, the tag APIs (v1 and v2) and the
// TraceQL metrics endpoints. Answers are computed on the query pool, off the HTTP threads.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/http_server.h"
#include "common/thread_pool.h"
#include "query/http_params.h"
#include "query/search.h"
#include "traceql/metrics.h"

namespace tracery::query {

struct SearchApiOptions {
  uint32_t default_result_limit = 20, max_result_limit = 262144;
  uint32_t default_spans_per_spanset = 3, max_spans_per_spanset = 100;
  uint32_t max_exemplars = 100;
  // Tag listings without start/end look this far back.
  uint64_t default_tag_window_nanos = 3600ull * 1'000'000'000;
  uint64_t default_metrics_window_nanos = 3600ull * 1'000'000'000;
};

// A TraceQL metrics query over a tenant's data (what /api/metrics/query_range and
// /api/metrics/query answer, and the streaming API).
struct MetricsAnswer {
  std::vector<traceql::MetricsSeries> series;
  SearchStats stats;
  bool partial = false;
  std::string message;
};
Result<MetricsAnswer> RunMetricsQuery(Searcher& searcher, const std::string& tenant,
                                      const std::shared_ptr<const traceql::Query>& query,
                                      const traceql::MetricsRange& range);

// ---- shared by the HTTP endpoints and the streaming gRPC API (query/streaming.h) ----------

// A range from start/end in unix nanoseconds, given as whole unix seconds as search and the
// tag APIs take them (`has_*` false: not given). With neither: `window` back from now (0:
// all time). InvalidArgument when end is not after start.
Result<storage::TimeRange> RangeFromSeconds(bool has_start, uint64_t start_nanos, bool has_end, uint64_t end_nanos,
                                            uint64_t window);

// Legacy tag search, (key, value) pairs, as the TraceQL filter it means: every key present
// and equal to its value (an empty value: only present).
std::string TagConditionsToTraceQL(const std::vector<std::pair<std::string, std::string>>& tags);
// A search query, refused (InvalidArgument, "invalid TraceQL query: ...") when it does not
// parse or is a metrics query.
Result<std::shared_ptr<const traceql::Query>> ParseSearchQuery(const std::string& text);
// A metrics query, refused when it does not parse or is not a metrics query.
Result<std::shared_ptr<const traceql::Query>> ParseMetricsQuery(const std::string& text);
// limit and spans per spanset as Tempo takes them: 0 is the default, past the maximum is
// InvalidArgument.
Status ApplyResultLimit(uint32_t& limit, const SearchApiOptions& options);
Status ApplySpansPerSpanset(uint32_t& spans_per_spanset, const SearchApiOptions& options);

// The tag listings: names (by scope) and the values of one tag.
struct TagRequest {
  std::string tenant;
  std::string scope;  // names: resource, span, intrinsic, event, link, instrumentation; "" or "none": all
  std::string tag;    // values: v2 a TraceQL attribute ("resource.service.name", "name"), v1 a bare name
  std::string query;  // TraceQL filter of the spans looked at; one that does not parse is no filter
  storage::TimeRange range;
  uint32_t limit = 0;  // most names per scope (v1: in all) or values; 0: no limit
};
Status CheckTagScope(const std::string& scope);  // InvalidArgument naming the scope
Status CheckTagName(const std::string& tag, bool v2);
struct TagNames {
  std::vector<std::pair<std::string, std::set<std::string>>> scopes;  // v2: in Tempo's order
  std::set<std::string> names;                                        // v1
  SearchStats stats;
};
Result<TagNames> ListTagNames(Searcher& searcher, const TagRequest& request, bool v2);
struct TagValues {
  std::set<std::pair<std::string, std::string>> values;  // (type, value); v1 uses the values
  SearchStats stats;
};
Result<TagValues> ListTagValues(Searcher& searcher, const TagRequest& request, bool v2);

// Whether `path` is one of the endpoints here.
bool IsSearchApiPath(const std::string& path);

// Answers one request on `pool` (and the searcher's pool), then calls `respond` there.
// `endpoint` is set to the route's name for the request metrics.
void HandleSearchApi(const HttpRequest& request, const Target& target, const std::string& tenant, Searcher& searcher,
                     const SearchApiOptions& options, ThreadPool& pool, std::string& endpoint, Responder respond);

}  // namespace tracery::query
