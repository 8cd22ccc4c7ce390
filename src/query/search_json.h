// Search, tag and metrics answers in Tempo's JSON (what gogo jsonpb writes with its defaults:
// lowerCamelCase names, 64-bit integers as strings, zero values omitted, enums by name), with
// no field that Grafana's strict decoder would refuse.
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "query/search.h"
#include "traceql/metrics.h"

namespace tracery::query {

// Tempo's trace ID text: lower-case hex with leading zeros trimmed.
std::string TempoTraceIdHex(const TraceId& id);

std::string SearchResultJson(const SearchResult& result);
void AppendSearchStatsJson(const SearchStats& stats, std::string& out);

// /api/v2/search/tags: scopes in Tempo's order, each with its sorted tag names.
std::string TagScopesJson(const std::vector<std::pair<std::string, std::set<std::string>>>& scopes,
                          const SearchStats& stats);
// /api/search/tags (v1).
std::string TagNamesJson(const std::set<std::string>& names, const SearchStats& stats);
// /api/v2/search/tag/{tag}/values: (type, value) pairs.
std::string TagValuesV2Json(const std::set<std::pair<std::string, std::string>>& values, const SearchStats& stats);
// /api/search/tag/{tag}/values (v1).
std::string TagValuesV1Json(const std::set<std::string>& values, const SearchStats& stats);

std::string QueryRangeJson(const std::vector<traceql::MetricsSeries>& series, const SearchStats& stats, bool partial,
                           const std::string& message);
std::string QueryInstantJson(const std::vector<traceql::MetricsSeries>& series, const SearchStats& stats, bool partial,
                             const std::string& message);

}  // namespace tracery::query
