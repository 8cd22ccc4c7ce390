#include "loadgen/trace_generator.h"

#include <algorithm>

#include "loadgen/span_vocabulary.h"

namespace tracery::bench {
namespace {

using opentelemetry::proto::trace::v1::Span;
using opentelemetry::proto::trace::v1::Status;

// Traces shorter than this are regenerated: the brief of the benchmark is 5-50 spans.
constexpr int kMinSpansPerTrace = 5;

// A leaf operation fails this often. With about eight leaves per trace and most failures
// propagating up to the callers, roughly 3% of traces and 1-2% of spans carry an error.
constexpr double kLeafFailureProbability = 0.006;
constexpr double kExternalFailureProbability = 0.02;    // third-party APIs are flakier
constexpr double kHandlerFailureProbability = 0.002;    // a bug in the handler itself
constexpr double kCallerSeesFailureProbability = 0.85;  // the rest is hidden by fallbacks

// OTLP span flags: the low byte is the W3C trace flags (sampled); bit 8 says whether the
// parent is remote is known and bit 9 that it is, as recent SDKs report.
constexpr uint32_t kFlagsLocalParent = 0x101;
constexpr uint32_t kFlagsRemoteParent = 0x301;

constexpr int kServicePort = 8080;

std::string_view FirstWord(std::string_view text) {
  return text.substr(0, std::min(text.find(' '), text.size()));
}

}  // namespace

TraceGenerator::TraceGenerator(uint64_t seed, int max_spans_per_trace)
    : random_(seed), max_spans_per_trace_(std::max(max_spans_per_trace, kMinSpansPerTrace)) {
  std::vector<double> weights;
  for (const EntryPoint& entry : EntryPoints()) weights.push_back(entry.weight);
  entry_point_choice_ = std::discrete_distribution<int>(weights.begin(), weights.end());
  nodes_.reserve(max_spans_per_trace_);
}

void TraceGenerator::AppendTrace(uint64_t now_unix_ns, std::vector<GeneratedSpan>& out) {
  do {
    BuildTree();
  } while (static_cast<int>(nodes_.size()) < kMinSpansPerTrace);
  ComputeDurations();
  WriteTimestamps(now_unix_ns);
  for (Node& node : nodes_) out.push_back(std::move(node.generated));
}

void TraceGenerator::BuildTree() {
  nodes_.clear();
  trace_id_ = RandomBytes(16);
  user_id_ = PlaceholderValue("userId");
  session_id_ = PlaceholderValue("sessionId");
  order_id_ = PlaceholderValue("orderId");
  currency_ = PlaceholderValue("currency");
  const EntryPoint& entry = EntryPoints()[entry_point_choice_(random_)];
  VisitEndpoint(entry.endpoint, -1, FillPlaceholders(Endpoints()[entry.endpoint].route),
                /*as_consumer=*/false);
}

bool TraceGenerator::HasRoomFor(int spans) const {
  return static_cast<int>(nodes_.size()) + spans <= max_spans_per_trace_;
}

int TraceGenerator::AddNode(int parent, int service, ScopeCategory scope,
                            bool parallel_member) {
  const int index = static_cast<int>(nodes_.size());
  Node& node = nodes_.emplace_back();
  node.parent = parent;
  node.runs_with_previous_sibling = parallel_member;
  node.generated.service = service;
  node.generated.instance = UniformInt(0, Services()[service].instance_count - 1);
  node.generated.scope = scope;
  Span& span = node.generated.span;
  span.set_trace_id(trace_id_);
  span.set_span_id(RandomBytes(8));
  if (parent >= 0) {
    span.set_parent_span_id(nodes_[parent].generated.span.span_id());
    nodes_[parent].children.push_back(index);
  }
  const bool parent_is_remote = parent >= 0 && nodes_[parent].generated.service != service;
  span.set_flags(parent_is_remote ? kFlagsRemoteParent : kFlagsLocalParent);
  return index;
}

TraceGenerator::Outcome TraceGenerator::VisitEndpoint(int endpoint_index, int parent,
                                                      const std::string& url_path,
                                                      bool as_consumer) {
  const EndpointDescription& endpoint = Endpoints()[endpoint_index];
  const ServiceDescription& service = Services()[endpoint.service];
  const int node = AddNode(parent, endpoint.service,
                           as_consumer ? ScopeCategory::kMessaging : ScopeCategory::kHttp,
                           /*parallel_member=*/false);
  nodes_[node].self_ms = LogNormalMs(endpoint.typical_self_ms, 0.7);
  nodes_[node].starts_after_parent_ends = as_consumer;
  Span& span = nodes_[node].generated.span;
  if (as_consumer) {
    span.set_name("process " + std::string(endpoint.route));
    span.set_kind(Span::SPAN_KIND_CONSUMER);
    AddString(span, "messaging.system", "kafka");
    AddString(span, "messaging.destination.name", endpoint.route);
    AddString(span, "messaging.operation", "process");
    AddString(span, "messaging.kafka.consumer.group", service.name);
    AddString(span, "messaging.kafka.message.key", order_id_);
    AddInt(span, "messaging.kafka.destination.partition", UniformInt(0, 11));
    AddInt(span, "messaging.kafka.message.offset", UniformInt(1'000'000, 90'000'000));
  } else {
    span.set_name(std::string(endpoint.method) + " " + std::string(endpoint.route));
    span.set_kind(Span::SPAN_KIND_SERVER);
    AddString(span, "http.request.method", endpoint.method);
    AddString(span, "url.path", url_path);
    AddString(span, "http.route", endpoint.route);
    if (parent < 0) {
      AddString(span, "url.scheme", "https");
      AddString(span, "server.address", "shop.example.com");
      AddString(span, "client.address", RandomClientAddress(random_));
      AddString(span, "user_agent.original", RandomUserAgent(random_));
    } else {
      AddString(span, "server.address", service.name);
      AddInt(span, "server.port", kServicePort);
    }
    AddInt(span, "network.peer.port", UniformInt(32768, 60999));
  }

  bool failed = false;
  for (const Step& step : endpoint.steps) {
    if (!Chance(step.probability)) continue;
    const int repeats = UniformInt(step.min_repeat, step.max_repeat);
    for (int repeat = 0; repeat < repeats && !failed; ++repeat) {
      const bool step_failed =
          RunStep(step, endpoint.service, node, step.parallel && repeat > 0);
      failed = step_failed && Chance(kCallerSeesFailureProbability);
    }
    if (failed) break;  // a failing handler returns early and skips the remaining steps
  }

  Outcome outcome;
  if (!failed && Chance(kHandlerFailureProbability)) {
    const Failure& bug = RandomHandlerFailure(service.language, random_);
    MarkFailed(node, bug.exception_type, bug.message);
    failed = true;
  }
  outcome.failed = failed;
  if (!as_consumer) {
    outcome.http_status = failed ? 500 : SuccessStatusFor(endpoint.method);
    AddInt(nodes_[node].generated.span, "http.response.status_code", outcome.http_status);
    if (failed) nodes_[node].generated.span.mutable_status()->set_code(Status::STATUS_CODE_ERROR);
  }
  MaybeAddLogEvent(node);
  return outcome;
}

bool TraceGenerator::RunStep(const Step& step, int service, int parent, bool parallel_member) {
  switch (step.kind) {
    case StepKind::kCallEndpoint: return CallEndpoint(step, service, parent, parallel_member);
    case StepKind::kSqlQuery: return SqlQuery(step, service, parent, parallel_member);
    case StepKind::kCacheCommand: return CacheCommand(step, service, parent, parallel_member);
    case StepKind::kPublish: return Publish(step, service, parent);
    case StepKind::kInternal: return Internal(step, service, parent, parallel_member);
    case StepKind::kExternalCall: return ExternalCall(step, service, parent, parallel_member);
  }
  return false;
}

bool TraceGenerator::CallEndpoint(const Step& step, int caller_service, int parent,
                                  bool parallel_member) {
  if (!HasRoomFor(2)) return false;
  const EndpointDescription& callee = Endpoints()[step.target];
  const std::string_view callee_name = Services()[callee.service].name;
  const std::string url_path = FillPlaceholders(callee.route);
  const int node = AddNode(parent, caller_service, ScopeCategory::kHttp, parallel_member);
  nodes_[node].self_ms = LogNormalMs(0.4, 0.5);  // connection pool, network, (de)serialising
  {
    Span& span = nodes_[node].generated.span;
    span.set_name(std::string(callee.method));
    span.set_kind(Span::SPAN_KIND_CLIENT);
    AddString(span, "http.request.method", callee.method);
    AddString(span, "url.full", "http://" + std::string(callee_name) + ":" +
                                    std::to_string(kServicePort) + url_path);
    AddString(span, "server.address", callee_name);
    AddInt(span, "server.port", kServicePort);
  }
  const Outcome outcome = VisitEndpoint(step.target, node, url_path, /*as_consumer=*/false);
  Span& span = nodes_[node].generated.span;
  AddInt(span, "http.response.status_code", outcome.http_status);
  if (outcome.failed) span.mutable_status()->set_code(Status::STATUS_CODE_ERROR);
  return outcome.failed;
}

bool TraceGenerator::Publish(const Step& step, int caller_service, int parent) {
  if (!HasRoomFor(2)) return false;
  const int node = AddNode(parent, caller_service, ScopeCategory::kMessaging, false);
  nodes_[node].self_ms = LogNormalMs(0.8, 0.6);
  Span& span = nodes_[node].generated.span;
  span.set_name("publish " + std::string(step.text));
  span.set_kind(Span::SPAN_KIND_PRODUCER);
  AddString(span, "messaging.system", "kafka");
  AddString(span, "messaging.destination.name", step.text);
  AddString(span, "messaging.operation", "publish");
  AddString(span, "messaging.kafka.message.key", order_id_);
  AddInt(span, "messaging.kafka.destination.partition", UniformInt(0, 11));
  AddString(span, "server.address", kKafkaHost);
  AddInt(span, "server.port", 9092);
  if (Chance(kLeafFailureProbability)) {
    MarkFailed(node, "KafkaError", "Local: Message timed out");
    return true;
  }
  // The consumer's failure stays with the consumer: the producer has long returned.
  VisitEndpoint(step.target, node, std::string(), /*as_consumer=*/true);
  return false;
}

bool TraceGenerator::SqlQuery(const Step& step, int service, int parent, bool parallel_member) {
  if (!HasRoomFor(1)) return false;
  const std::string_view operation = FirstWord(step.text);
  const std::string_view table = SqlTableOf(step.text);
  const int node = AddNode(parent, service, ScopeCategory::kDatabase, parallel_member);
  const double default_ms = operation == "SELECT" ? 0.9 : 1.8;
  nodes_[node].self_ms = LogNormalMs(step.typical_ms > 0 ? step.typical_ms : default_ms, 0.9);
  Span& span = nodes_[node].generated.span;
  span.set_name(table.empty() ? std::string(operation)
                              : std::string(operation) + " " + std::string(kDatabaseName) +
                                    "." + std::string(table));
  span.set_kind(Span::SPAN_KIND_CLIENT);
  AddString(span, "db.system", "postgresql");
  AddString(span, "db.name", kDatabaseName);
  AddString(span, "db.statement", FillPlaceholders(step.text));
  AddString(span, "db.operation", operation);
  if (!table.empty()) AddString(span, "db.sql.table", table);
  AddString(span, "server.address", kPostgresHost);
  AddInt(span, "server.port", 5432);
  if (Chance(kLeafFailureProbability)) {
    const Failure& failure = RandomSqlFailure(random_);
    MarkFailed(node, failure.exception_type, failure.message);
    return true;
  }
  return false;
}

bool TraceGenerator::CacheCommand(const Step& step, int service, int parent,
                                  bool parallel_member) {
  if (!HasRoomFor(1)) return false;
  const int node = AddNode(parent, service, ScopeCategory::kCache, parallel_member);
  nodes_[node].self_ms = LogNormalMs(step.typical_ms > 0 ? step.typical_ms : 0.25, 0.6);
  Span& span = nodes_[node].generated.span;
  span.set_name(std::string(FirstWord(step.text)));
  span.set_kind(Span::SPAN_KIND_CLIENT);
  AddString(span, "db.system", "redis");
  AddString(span, "db.statement", FillPlaceholders(step.text));
  AddInt(span, "db.redis.database_index", 0);
  AddString(span, "server.address", kRedisHost);
  AddInt(span, "server.port", 6379);
  if (Chance(kLeafFailureProbability)) {
    const Failure& failure = RandomCacheFailure(random_);
    MarkFailed(node, failure.exception_type, failure.message);
    return true;
  }
  return false;
}

bool TraceGenerator::ExternalCall(const Step& step, int service, int parent,
                                  bool parallel_member) {
  if (!HasRoomFor(1)) return false;
  const std::string_view method = FirstWord(step.text);
  const std::string_view url = step.text.substr(method.size() + 1);
  const int node = AddNode(parent, service, ScopeCategory::kHttp, parallel_member);
  nodes_[node].self_ms = LogNormalMs(step.typical_ms > 0 ? step.typical_ms : 90, 0.7);
  Span& span = nodes_[node].generated.span;
  span.set_name(std::string(method));
  span.set_kind(Span::SPAN_KIND_CLIENT);
  AddString(span, "http.request.method", method);
  AddString(span, "url.full", url);
  AddString(span, "server.address", HostOfUrl(url));
  AddInt(span, "server.port", 443);
  if (Chance(kExternalFailureProbability)) {
    const int status = RandomUpstreamErrorStatus(random_);
    AddInt(span, "http.response.status_code", status);
    span.mutable_status()->set_code(Status::STATUS_CODE_ERROR);
    span.mutable_status()->set_message("upstream answered HTTP " + std::to_string(status));
    return true;
  }
  AddInt(span, "http.response.status_code", method == "POST" ? 201 : 200);
  return false;
}

bool TraceGenerator::Internal(const Step& step, int service, int parent, bool parallel_member) {
  if (!HasRoomFor(1)) return false;
  const int node = AddNode(parent, service, ScopeCategory::kApplication, parallel_member);
  nodes_[node].self_ms = LogNormalMs(step.typical_ms > 0 ? step.typical_ms : 1.2, 0.8);
  Span& span = nodes_[node].generated.span;
  span.set_name(std::string(step.text));
  span.set_kind(Span::SPAN_KIND_INTERNAL);
  std::string function(step.text);
  std::replace(function.begin(), function.end(), ' ', '_');
  AddString(span, "code.function", function);
  AddString(span, "code.namespace", std::string(Services()[service].name) + ".handlers");
  if (Chance(kLeafFailureProbability)) {
    const Failure& bug = RandomHandlerFailure(Services()[service].language, random_);
    MarkFailed(node, bug.exception_type, bug.message);
    return true;
  }
  return false;
}

void TraceGenerator::MarkFailed(int node, std::string_view exception_type,
                                std::string_view message) {
  Span& span = nodes_[node].generated.span;
  span.mutable_status()->set_code(Status::STATUS_CODE_ERROR);
  span.mutable_status()->set_message(std::string(message));
  // The event's time is set with the span's own, once durations are known.
  Span::Event* event = span.add_events();
  event->set_name("exception");
  AddEventString(*event, "exception.type", exception_type);
  AddEventString(*event, "exception.message", message);
  AddEventString(*event, "exception.escaped", "false");
}

void TraceGenerator::MaybeAddLogEvent(int node) {
  constexpr double kLogEventProbability = 0.02;
  if (!Chance(kLogEventProbability)) return;
  Span::Event* event = nodes_[node].generated.span.add_events();
  event->set_name("log");
  AddEventString(*event, "log.severity", "WARN");
  AddEventString(*event, "log.message", RandomLogMessage(random_));
}

}  // namespace tracery::bench
