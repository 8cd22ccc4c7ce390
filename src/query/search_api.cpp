#include "query/search_api.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "common/duration.h"
#include "query/search_json.h"
#include "traceql/ast.h"
#include "traceql/engine.h"
#include "traceql/metrics.h"
#include "traceql/trace_view.h"

namespace tracery::query {
namespace {

constexpr std::string_view kTagValuesV2Prefix = "/api/v2/search/tag/";
constexpr std::string_view kTagValuesV1Prefix = "/api/search/tag/";
constexpr std::string_view kValuesSuffix = "/values";

uint64_t NowUnixNanos() {
  return uint64_t(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

HttpResponse BadRequest(std::string message) { return HttpResponse::Text(400, std::move(message) + "\n"); }

// 400 for a query that does not parse or validate, with Tempo's prefix (once).
HttpResponse InvalidQuery(const Status& status) {
  static const std::string kPrefix = "invalid TraceQL query: ";
  const std::string& message = status.message();
  return BadRequest(message.rfind(kPrefix, 0) == 0 ? message : kPrefix + message);
}

HttpResponse ErrorResponse(const Status& status) {
  return HttpResponse::Text(HttpStatusFor(status), status.message() + "\n");
}

// start/end in unix seconds, as search and the tag APIs take them. Without them: `window`
// back from now (0: everything).
Result<storage::TimeRange> SecondsRange(const Target& target, uint64_t window) {
  uint64_t start = 0, end = UINT64_MAX;
  bool has_start = target.Param("start") && !target.Param("start")->empty();
  bool has_end = target.Param("end") && !target.Param("end")->empty();
  if (!ParseSeconds(target.Param("start"), start) || !ParseSeconds(target.Param("end"), end))
    return Status::InvalidArgument("invalid start or end: expected unix seconds");
  return RangeFromSeconds(has_start, start, has_end, end, window);
}

// Legacy tag search ("tags=k=v k2=\"v 2\"", logfmt) as the TraceQL filter it means.
Result<std::string> TagsToTraceQL(const std::string& tags) {
  std::vector<std::pair<std::string, std::string>> conditions;
  size_t i = 0;
  while (i < tags.size()) {
    while (i < tags.size() && tags[i] == ' ') ++i;
    if (i >= tags.size()) break;
    size_t key_start = i;
    while (i < tags.size() && tags[i] != '=' && tags[i] != ' ') ++i;
    std::string key = tags.substr(key_start, i - key_start);
    std::string value;
    if (i < tags.size() && tags[i] == '=') {
      ++i;
      if (i < tags.size() && tags[i] == '"') {
        ++i;
        while (i < tags.size() && tags[i] != '"') {
          if (tags[i] == '\\' && i + 1 < tags.size()) ++i;
          value += tags[i++];
        }
        if (i >= tags.size()) return Status::InvalidArgument("invalid tags: unterminated quote");
        ++i;
      } else {
        size_t value_start = i;
        while (i < tags.size() && tags[i] != ' ') ++i;
        value = tags.substr(value_start, i - value_start);
      }
    }
    if (key.empty()) return Status::InvalidArgument("invalid tags: empty key");
    conditions.emplace_back(std::move(key), std::move(value));
  }
  return TagConditionsToTraceQL(conditions);
}

HttpResponse Search(const Target& target, const std::string& tenant, Searcher& searcher,
                    const SearchApiOptions& options) {
  auto q = target.Param("q");
  auto tags = target.Param("tags");
  if (q && !q->empty() && tags && !tags->empty()) return BadRequest("invalid search request: can't specify tags and q");
  std::string text = "{}";
  if (q && !q->empty()) {
    text = *q;
  } else if (tags && !tags->empty()) {
    auto converted = TagsToTraceQL(*tags);
    if (!converted.ok()) return BadRequest(converted.status().message());
    text = *converted;
  }
  auto query = ParseSearchQuery(text);
  if (!query.ok()) return InvalidQuery(query.status());

  SearchRequest request;
  request.tenant = tenant;
  request.query = *query;
  request.limit = options.default_result_limit;
  request.spans_per_spanset = options.default_spans_per_spanset;
  if (!ParseUint32(target.Param("limit"), request.limit)) return BadRequest("invalid limit: expected a number");
  if (Status limited = ApplyResultLimit(request.limit, options); !limited.ok()) return BadRequest(limited.message());
  if (!ParseUint32(target.Param("spss"), request.spans_per_spanset)) return BadRequest("invalid spss: expected a number");
  if (Status limited = ApplySpansPerSpanset(request.spans_per_spanset, options); !limited.ok())
    return BadRequest(limited.message());
  for (auto [name, out] : {std::pair{"minDuration", &request.min_trace_duration_nanos},
                           std::pair{"maxDuration", &request.max_trace_duration_nanos}}) {
    auto value = target.Param(name);
    if (!value || value->empty()) continue;
    auto duration = ParseDuration(*value);
    if (!duration || duration->count() < 0) return BadRequest(std::string("invalid ") + name + ": expected a duration");
    *out = uint64_t(duration->count());
  }
  if (request.max_trace_duration_nanos && request.max_trace_duration_nanos < request.min_trace_duration_nanos)
    return BadRequest("invalid maxDuration: it is less than minDuration");
  auto range = SecondsRange(target, 0);
  if (!range.ok()) return BadRequest(range.status().message());
  request.range = *range;
  auto result = searcher.Search(request);
  if (!result.ok()) return ErrorResponse(result.status());
  HttpResponse response = HttpResponse::Json(200, SearchResultJson(*result));
  if (result->partial) response.headers.emplace_back("X-Tracery-Partial", result->message);
  return response;
}

// ---- tags ---------------------------------------------------------------------------------

const std::vector<std::string>& IntrinsicTagNames() {
  static const std::vector<std::string> names = {
      "duration", "event:name", "event:timeSinceStart", "instrumentation:name", "instrumentation:version", "kind",
      "link:spanID", "link:traceID", "name", "rootName", "rootServiceName", "span:duration", "span:id", "span:kind",
      "span:name", "span:parentID", "span:status", "span:statusMessage", "status", "statusMessage", "trace:duration",
      "trace:id", "trace:rootName", "trace:rootService", "traceDuration"};
  return names;
}

// The spans of a trace that a tag request looks at: all, or those the filter `q` selects.
template <typename Fn>
void ForEachSelectedSpan(const traceql::Query* filter, const traceql::TraceView& view, Fn&& fn) {
  if (!filter) {
    for (const auto& ref : view.spans) fn(ref);
    return;
  }
  std::vector<bool> selected(view.spans.size(), false);
  for (const auto& set : traceql::EvaluateSearch(*filter, view))
    for (const auto& span : set.spans) selected[span.index] = true;
  for (size_t i = 0; i < view.spans.size(); ++i)
    if (selected[i]) fn(view.spans[i]);
}

// A filter `q` for the tag APIs: a query that does not parse (an editor's half-typed one) is
// no filter, as Tempo takes it.
std::shared_ptr<const traceql::Query> TagFilter(const std::string& q) {
  if (q.empty()) return nullptr;
  auto query = traceql::Parse(q);
  if (!query.ok() || traceql::IsMetricsQuery(**query)) return nullptr;
  return *query;
}

const std::vector<std::string>& TagScopes() {
  static const std::vector<std::string> scopes = {"resource", "span", "intrinsic", "event", "link", "instrumentation"};
  return scopes;
}

HttpResponse SearchTags(const Target& target, const std::string& tenant, Searcher& searcher,
                        const SearchApiOptions& options, bool v2) {
  TagRequest request;
  request.tenant = tenant;
  request.scope = target.Param("scope").value_or("");
  if (Status valid = CheckTagScope(request.scope); !valid.ok()) return BadRequest(valid.message());
  if (!ParseUint32(target.Param("limit"), request.limit)) return BadRequest("invalid limit: expected a number");
  auto range = SecondsRange(target, options.default_tag_window_nanos);
  if (!range.ok()) return BadRequest(range.status().message());
  request.range = *range;
  request.query = target.Param("q").value_or("");
  auto answer = ListTagNames(searcher, request, v2);
  if (!answer.ok()) return ErrorResponse(answer.status());
  if (!v2) return HttpResponse::Json(200, TagNamesJson(answer->names, answer->stats));
  return HttpResponse::Json(200, TagScopesJson(answer->scopes, answer->stats));
}

// A value as the tag-values API types it.
void AddTypedValue(const otlp::AnyValue& value, std::set<std::pair<std::string, std::string>>& out) {
  switch (value.type) {
    case otlp::AnyValue::Type::kString: out.emplace("string", value.string_value); break;
    case otlp::AnyValue::Type::kInt: out.emplace("int", std::to_string(value.int_value)); break;
    case otlp::AnyValue::Type::kBool: out.emplace("bool", value.bool_value ? "true" : "false"); break;
    case otlp::AnyValue::Type::kDouble: {
      char buffer[32];
      for (int precision = 1; precision <= 17; ++precision) {
        std::snprintf(buffer, sizeof buffer, "%.*g", precision, value.double_value);
        if (std::strtod(buffer, nullptr) == value.double_value) break;
      }
      out.emplace("float", buffer);
      break;
    }
    case otlp::AnyValue::Type::kArray:
      for (const auto& element : value.array_values) AddTypedValue(element, out);
      break;
    default: break;
  }
}

void AddAttributeValue(const otlp::Attributes& attributes, const std::string& name,
                       std::set<std::pair<std::string, std::string>>& out) {
  for (const auto& kv : attributes)
    if (kv.key == name) {
      AddTypedValue(kv.value, out);
      return;
    }
}

// The attribute a tag-values request names (CheckTagName has passed).
traceql::Attribute TagAttribute(const std::string& tag, bool v2) {
  traceql::Attribute attribute;
  if (v2) {
    attribute = *traceql::ParseAttribute(tag);
  } else if (tag == "status.code") {
    attribute.intrinsic = traceql::Intrinsic::kStatus;
  } else {
    attribute.name = tag;  // v1: a bare name, span or resource attribute
  }
  return attribute;
}

HttpResponse TagValuesResponse(const Target& target, const std::string& tag, const std::string& tenant,
                               Searcher& searcher, const SearchApiOptions& options, bool v2) {
  if (Status valid = CheckTagName(tag, v2); !valid.ok()) return BadRequest(valid.message());
  TagRequest request;
  request.tenant = tenant;
  request.tag = tag;
  if (!ParseUint32(target.Param("limit"), request.limit)) return BadRequest("invalid limit: expected a number");
  auto range = SecondsRange(target, options.default_tag_window_nanos);
  if (!range.ok()) return BadRequest(range.status().message());
  request.range = *range;
  request.query = target.Param("q").value_or("");
  auto answer = ListTagValues(searcher, request, v2);
  if (!answer.ok()) return ErrorResponse(answer.status());
  if (v2) return HttpResponse::Json(200, TagValuesV2Json(answer->values, answer->stats));
  std::set<std::string> plain;
  for (const auto& [type, value] : answer->values) plain.insert(value);
  return HttpResponse::Json(200, TagValuesV1Json(plain, answer->stats));
}

}  // namespace

Status CheckTagScope(const std::string& scope) {
  if (scope.empty() || scope == "none" || std::find(TagScopes().begin(), TagScopes().end(), scope) != TagScopes().end())
    return Status::Ok();
  return Status::InvalidArgument("invalid scope '" + scope +
                                 "': expected one of resource, span, intrinsic, event, link, instrumentation");
}

Status CheckTagName(const std::string& tag, bool v2) {
  if (!v2) return Status::Ok();
  auto parsed = traceql::ParseAttribute(tag);
  if (!parsed.ok() || parsed->parent)
    return Status::InvalidArgument("tag name is not valid intrinsic or scoped attribute: '" + tag + "'");
  return Status::Ok();
}

Result<TagNames> ListTagNames(Searcher& searcher, const TagRequest& request, bool v2) {
  TRACERY_RETURN_IF_ERROR(CheckTagScope(request.scope));
  const std::string scope = request.scope == "none" ? "" : request.scope;
  auto filter = TagFilter(request.query);
  std::mutex mutex;
  std::map<std::string, std::set<std::string>> found;
  auto wants = [&](const char* name) { return scope.empty() || scope == name; };
  TagNames answer;
  bool partial = false;
  std::string message;
  Status status = searcher.ScanAll(
      request.tenant, request.range, {}, block::Projection::All(), filter && !traceql::IsSpanLocal(*filter),
      [&](const TraceId&, const traceql::TraceView& view) {
        std::map<std::string, std::set<std::string>> local;
        ForEachSelectedSpan(filter.get(), view, [&](const traceql::SpanRef& ref) {
          if (wants("span"))
            for (const auto& kv : ref.span->attributes) local["span"].insert(kv.key);
          if (wants("resource"))
            for (const auto& kv : ref.resource->attributes) local["resource"].insert(kv.key);
          if (wants("event"))
            for (const auto& event : ref.span->events)
              for (const auto& kv : event.attributes) local["event"].insert(kv.key);
          if (wants("link"))
            for (const auto& link : ref.span->links)
              for (const auto& kv : link.attributes) local["link"].insert(kv.key);
          if (wants("instrumentation"))
            for (const auto& kv : ref.scope->attributes) local["instrumentation"].insert(kv.key);
        });
        std::lock_guard lock(mutex);
        for (auto& [name, keys] : local) found[name].merge(keys);
        return true;
      },
      answer.stats, partial, message);
  if (!status.ok()) return status;
  auto capped = [&](std::set<std::string> keys) {
    if (request.limit && keys.size() > request.limit) keys.erase(std::next(keys.begin(), long(request.limit)), keys.end());
    return keys;
  };
  if (!v2) {
    std::set<std::string> names;
    for (const char* name : {"span", "resource", "event", "link", "instrumentation"}) names.merge(found[name]);
    answer.names = capped(std::move(names));
    return answer;
  }
  for (const std::string& name : TagScopes()) {
    if (!wants(name.c_str())) continue;
    if (name == "intrinsic") {
      answer.scopes.emplace_back(name, std::set<std::string>(IntrinsicTagNames().begin(), IntrinsicTagNames().end()));
      continue;
    }
    if (found.count(name) || !scope.empty()) answer.scopes.emplace_back(name, capped(std::move(found[name])));
  }
  return answer;
}

Result<TagValues> ListTagValues(Searcher& searcher, const TagRequest& request, bool v2) {
  using traceql::AttributeScope;
  using traceql::Intrinsic;
  TRACERY_RETURN_IF_ERROR(CheckTagName(request.tag, v2));
  const traceql::Attribute attribute = TagAttribute(request.tag, v2);
  TagValues answer;
  auto& values = answer.values;
  // Values that are a fixed list, not read from spans.
  switch (attribute.intrinsic) {
    case Intrinsic::kStatus:
      for (const char* k : {"error", "ok", "unset"}) values.emplace("keyword", k);
      break;
    case Intrinsic::kKind:
      for (const char* k : {"client", "consumer", "internal", "producer", "server", "unspecified"}) values.emplace("keyword", k);
      break;
    default: break;
  }
  bool from_spans = attribute.intrinsic == Intrinsic::kNone || attribute.intrinsic == Intrinsic::kName ||
                    attribute.intrinsic == Intrinsic::kStatusMessage || attribute.intrinsic == Intrinsic::kTraceRootName ||
                    attribute.intrinsic == Intrinsic::kTraceRootService || attribute.intrinsic == Intrinsic::kEventName ||
                    attribute.intrinsic == Intrinsic::kInstrumentationName ||
                    attribute.intrinsic == Intrinsic::kInstrumentationVersion;
  if (from_spans) {
    auto filter = TagFilter(request.query);
    std::mutex mutex;
    bool partial = false;
    std::string message;
    Status status = searcher.ScanAll(
        request.tenant, request.range, {}, block::Projection::All(), filter && !traceql::IsSpanLocal(*filter),
        [&](const TraceId&, const traceql::TraceView& view) {
          std::set<std::pair<std::string, std::string>> local;
          auto string_value = [&](std::string_view text) {
            if (!text.empty()) local.emplace("string", std::string(text));
          };
          ForEachSelectedSpan(filter.get(), view, [&](const traceql::SpanRef& ref) {
            switch (attribute.intrinsic) {
              case Intrinsic::kName: string_value(ref.span->name); return;
              case Intrinsic::kStatusMessage: string_value(ref.span->status_message); return;
              case Intrinsic::kTraceRootName: string_value(view.RootSpanName()); return;
              case Intrinsic::kTraceRootService: string_value(view.RootServiceName()); return;
              case Intrinsic::kEventName:
                for (const auto& event : ref.span->events) string_value(event.name);
                return;
              case Intrinsic::kInstrumentationName: string_value(ref.scope->name); return;
              case Intrinsic::kInstrumentationVersion: string_value(ref.scope->version); return;
              default: break;
            }
            switch (attribute.scope) {
              case AttributeScope::kSpan: AddAttributeValue(ref.span->attributes, attribute.name, local); break;
              case AttributeScope::kResource: AddAttributeValue(ref.resource->attributes, attribute.name, local); break;
              case AttributeScope::kNone:
                AddAttributeValue(ref.span->attributes, attribute.name, local);
                AddAttributeValue(ref.resource->attributes, attribute.name, local);
                break;
              case AttributeScope::kEvent:
                for (const auto& event : ref.span->events) AddAttributeValue(event.attributes, attribute.name, local);
                break;
              case AttributeScope::kLink:
                for (const auto& link : ref.span->links) AddAttributeValue(link.attributes, attribute.name, local);
                break;
              case AttributeScope::kInstrumentation:
                AddAttributeValue(ref.scope->attributes, attribute.name, local);
                break;
              default: break;
            }
          });
          std::lock_guard lock(mutex);
          values.merge(local);
          return true;
        },
        answer.stats, partial, message);
    if (!status.ok()) return status;
  }
  if (request.limit && values.size() > request.limit)
    values.erase(std::next(values.begin(), long(request.limit)), values.end());
  return answer;
}

namespace {

// ---- TraceQL metrics ----------------------------------------------------------------------

HttpResponse MetricsQuery(const Target& target, const std::string& tenant, Searcher& searcher,
                          const SearchApiOptions& options, bool instant) {
  auto text = target.Param("q");
  if (!text || text->empty()) text = target.Param("query");
  if (!text || text->empty()) return BadRequest("missing query: give it as q");
  auto query = ParseMetricsQuery(*text);
  if (!query.ok()) return InvalidQuery(query.status());

  traceql::MetricsRange range;
  uint64_t now = NowUnixNanos();
  range.end_unix_nano = now;
  uint64_t window = options.default_metrics_window_nanos;
  if (auto since = target.Param("since"); since && !since->empty()) {
    if (!ParseDurationOrSeconds(*since, window) || window == 0) return BadRequest("invalid since: expected a duration");
  }
  if (auto end = target.Param("end"); end && !end->empty())
    if (!ParseFlexibleTime(*end, range.end_unix_nano))
      return BadRequest("invalid end: expected unix seconds, unix nanoseconds or RFC 3339");
  range.start_unix_nano = range.end_unix_nano > window ? range.end_unix_nano - window : 0;
  if (auto start = target.Param("start"); start && !start->empty())
    if (!ParseFlexibleTime(*start, range.start_unix_nano))
      return BadRequest("invalid start: expected unix seconds, unix nanoseconds or RFC 3339");
  if (range.end_unix_nano <= range.start_unix_nano) return BadRequest("invalid start and end: end must be after start");
  range.instant = instant;
  if (!instant) {
    if (auto step = target.Param("step"); step && !step->empty()) {
      if (!ParseDurationOrSeconds(*step, range.step_nanos) || range.step_nanos == 0)
        return BadRequest("invalid step: expected a duration or seconds");
    } else {
      range.step_nanos = traceql::DefaultMetricsStepNanos(range.start_unix_nano, range.end_unix_nano);
    }
  }
  uint32_t exemplars = 0;
  if (!ParseUint32(target.Param("exemplars"), exemplars)) return BadRequest("invalid exemplars: expected a number");
  range.max_exemplars = std::min(exemplars, options.max_exemplars);

  auto answer = RunMetricsQuery(searcher, tenant, *query, range);
  if (!answer.ok()) return ErrorResponse(answer.status());
  const auto& [series, stats, partial, message] = *answer;
  return HttpResponse::Json(200, instant ? QueryInstantJson(series, stats, partial, message)
                                         : QueryRangeJson(series, stats, partial, message));
}

}  // namespace

Result<storage::TimeRange> RangeFromSeconds(bool has_start, uint64_t start_nanos, bool has_end, uint64_t end_nanos,
                                            uint64_t window) {
  if (!has_start) start_nanos = 0;
  if (!has_end) end_nanos = UINT64_MAX;
  if (has_start && has_end && end_nanos <= start_nanos)
    return Status::InvalidArgument("invalid start and end: end must be after start");
  if (!has_start && !has_end && window) {
    uint64_t now = NowUnixNanos();
    return storage::TimeRange{now > window ? now - window : 0, UINT64_MAX};
  }
  if (has_end) end_nanos = EndOfSecond(end_nanos);
  return storage::TimeRange{start_nanos, end_nanos};
}

std::string TagConditionsToTraceQL(const std::vector<std::pair<std::string, std::string>>& tags) {
  auto quote = [](std::string_view text) {
    std::string out = "\"";
    for (char c : text) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    return out + "\"";
  };
  std::string conditions;
  for (const auto& [key, value] : tags) {
    if (!conditions.empty()) conditions += " && ";
    bool plain = key.find_first_of(" {}()=~!<>&|^,\"") == std::string::npos;
    conditions += "." + (plain ? key : quote(key)) + (value.empty() ? " != nil" : " = " + quote(value));
  }
  return "{ " + conditions + " }";
}

namespace {
// The parser's refusal with Tempo's prefix, once (its messages may carry it already).
Status InvalidQueryStatus(const Status& status) {
  static const std::string kPrefix = "invalid TraceQL query: ";
  const std::string& message = status.message();
  return Status::InvalidArgument(message.rfind(kPrefix, 0) == 0 ? message : kPrefix + message);
}
}  // namespace

Result<std::shared_ptr<const traceql::Query>> ParseSearchQuery(const std::string& text) {
  auto query = traceql::Parse(text);
  if (!query.ok()) return InvalidQueryStatus(query.status());
  if (traceql::IsMetricsQuery(**query))
    return Status::InvalidArgument("invalid TraceQL query: a metrics query goes to /api/metrics/query_range");
  return query;
}

Result<std::shared_ptr<const traceql::Query>> ParseMetricsQuery(const std::string& text) {
  auto query = traceql::Parse(text);
  if (!query.ok()) return InvalidQueryStatus(query.status());
  if (!traceql::IsMetricsQuery(**query))
    return Status::InvalidArgument(
        "invalid TraceQL query: not a metrics query (it must end in a metrics function such as rate())");
  return query;
}

Status ApplyResultLimit(uint32_t& limit, const SearchApiOptions& options) {
  if (limit == 0) limit = options.default_result_limit;
  if (limit > options.max_result_limit)
    return Status::InvalidArgument("limit " + std::to_string(limit) + " exceeds max limit " +
                                   std::to_string(options.max_result_limit));
  return Status::Ok();
}

Status ApplySpansPerSpanset(uint32_t& spans_per_spanset, const SearchApiOptions& options) {
  if (spans_per_spanset == 0) spans_per_spanset = options.default_spans_per_spanset;
  if (spans_per_spanset > options.max_spans_per_spanset)
    return Status::InvalidArgument("spss " + std::to_string(spans_per_spanset) + " exceeds max spans per spanset " +
                                   std::to_string(options.max_spans_per_spanset));
  return Status::Ok();
}

Result<MetricsAnswer> RunMetricsQuery(Searcher& searcher, const std::string& tenant,
                                      const std::shared_ptr<const traceql::Query>& query,
                                      const traceql::MetricsRange& range) {
  auto first = traceql::MetricsEvaluator::Create(query, range);
  if (!first.ok()) return first.status();
  // One evaluator per scanning thread, merged at the end.
  std::mutex mutex;
  std::unordered_map<std::thread::id, std::unique_ptr<traceql::MetricsEvaluator>> evaluators;
  evaluators[std::this_thread::get_id()] = std::move(first).value();
  MetricsAnswer answer;
  // The evaluator aligns the range to its step (and adds a bucket before it): scan what it counts.
  traceql::MetricsWindow window = evaluators.begin()->second->window();
  storage::TimeRange scan_range{window.start_unix_nano, window.end_unix_nano};
  Status status = searcher.ScanAll(
      tenant, scan_range, traceql::PlanPruning(*query), traceql::NeededColumns(*query), !traceql::IsSpanLocal(*query),
      [&](const TraceId&, const traceql::TraceView& view) {
        traceql::MetricsEvaluator* evaluator;
        {
          std::lock_guard lock(mutex);
          auto& slot = evaluators[std::this_thread::get_id()];
          if (!slot) slot = std::move(traceql::MetricsEvaluator::Create(query, range)).value();
          evaluator = slot.get();
        }
        evaluator->Observe(view);
        return true;
      },
      answer.stats, answer.partial, answer.message);
  if (!status.ok()) return status;
  std::unique_ptr<traceql::MetricsEvaluator> total = std::move(evaluators[std::this_thread::get_id()]);
  for (auto& [thread, evaluator] : evaluators)
    if (evaluator) total->Merge(*evaluator);
  answer.series = total->Finish();
  if (total->SeriesLimitReached()) {
    answer.partial = true;
    if (answer.message.empty()) answer.message = total->PartialMessage();
  }
  answer.stats.inspected_spans = total->stats().spans_observed;
  return answer;
}

bool IsSearchApiPath(const std::string& path) {
  return path == "/api/search" || path == "/api/search/tags" || path == "/api/v2/search/tags" ||
         path == "/api/metrics/query_range" || path == "/api/metrics/query" ||
         ((path.rfind(kTagValuesV2Prefix, 0) == 0 || path.rfind(kTagValuesV1Prefix, 0) == 0) &&
          path.size() > kValuesSuffix.size() && path.compare(path.size() - kValuesSuffix.size(), kValuesSuffix.size(), kValuesSuffix) == 0);
}

void HandleSearchApi(const HttpRequest& request, const Target& target, const std::string& tenant, Searcher& searcher,
                     const SearchApiOptions& options, ThreadPool& pool, std::string& endpoint, Responder respond) {
  const std::string& path = target.path;
  endpoint = path;
  std::string tag;
  bool v2 = true;
  if (path.rfind(kTagValuesV2Prefix, 0) == 0 || path.rfind(kTagValuesV1Prefix, 0) == 0) {
    v2 = path.rfind(kTagValuesV2Prefix, 0) == 0;
    size_t prefix = v2 ? kTagValuesV2Prefix.size() : kTagValuesV1Prefix.size();
    tag = path.substr(prefix, path.size() - prefix - kValuesSuffix.size());
    endpoint = v2 ? "/api/v2/search/tag/values" : "/api/search/tag/values";
  }
  bool submitted = pool.Submit([target, tenant, tag, v2, &searcher, options, respond]() {
    const std::string& path = target.path;
    HttpResponse response;
    if (path == "/api/search") response = Search(target, tenant, searcher, options);
    else if (path == "/api/v2/search/tags") response = SearchTags(target, tenant, searcher, options, true);
    else if (path == "/api/search/tags") response = SearchTags(target, tenant, searcher, options, false);
    else if (path == "/api/metrics/query_range") response = MetricsQuery(target, tenant, searcher, options, false);
    else if (path == "/api/metrics/query") response = MetricsQuery(target, tenant, searcher, options, true);
    else response = TagValuesResponse(target, tag, tenant, searcher, options, v2);
    respond(std::move(response));
  });
  if (!submitted) respond(HttpResponse::Text(503, "shutting down\n"));
}

}  // namespace tracery::query
