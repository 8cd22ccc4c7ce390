// The simulated application: an online shop of a dozen services, described as data so that
// the trace generator stays generic. Every trace the load generator emits is one request
// entering the shop at an entry endpoint and fanning out through the steps listed here.
//
// The vocabulary (service names, routes, SQL, topics) is chosen to look like what a real
// OpenTelemetry-instrumented microservice app emits, because the server's compression,
// dictionaries and attribute indexes behave very differently on synthetic noise.
#pragma once

#include <span>
#include <string_view>

namespace tracery::bench {

enum class Language { kNode, kGo, kJava, kPython, kRust };

struct ServiceDescription {
  std::string_view name;      // service.name
  std::string_view version;   // service.version
  Language language;
  int instance_count;         // hosts running it; a trace visits one of them per call
};

// Which tracer produced a span; each category becomes its own ScopeSpans, as real SDKs
// put each instrumentation library under its own scope.
enum class ScopeCategory { kHttp, kDatabase, kCache, kMessaging, kApplication };

struct ScopeDescription {
  std::string_view name;
  std::string_view version;
};

ScopeDescription ScopeFor(Language language, ScopeCategory category);
std::string_view SdkLanguageName(Language language);
std::string_view SdkVersion(Language language);

enum class StepKind {
  kCallEndpoint,  // HTTP client span in the caller, then the callee's server span
  kSqlQuery,      // database client span against postgres
  kCacheCommand,  // redis client span
  kPublish,       // producer span; the consumer endpoint runs later, in the same trace
  kInternal,      // in-process work worth a span (rendering, scoring)
  kExternalCall,  // HTTP client span to a third party, which sends no spans back
};

// One thing an endpoint may do while serving a request. `target` names the endpoint that is
// called (or that consumes a publish); `text` is the SQL or redis template with {placeholders},
// the internal span's name, "METHOD url" of an external call, or the topic published to.
struct Step {
  StepKind kind;
  int target = -1;            // endpoint index for kCallEndpoint / kPublish
  std::string_view text = {};
  double probability = 1.0;   // chance the step happens at all
  int min_repeat = 1;         // repeats model loops such as one lookup per cart item
  int max_repeat = 1;
  bool parallel = false;      // repeats run concurrently (fan-out) instead of in sequence
  double typical_ms = 0;      // median duration; 0 takes the default for the step's kind
};

struct EndpointDescription {
  int service;                // index into Services()
  std::string_view method;    // HTTP method; empty for message consumers
  std::string_view route;     // route template with {placeholders}, or the topic consumed
  double typical_self_ms;     // median time spent outside child spans
  std::span<const Step> steps;
};

std::span<const ServiceDescription> Services();
std::span<const EndpointDescription> Endpoints();

// Entry endpoints (reached from browsers through the frontend) with their traffic weights.
struct EntryPoint {
  int endpoint;
  double weight;
};
std::span<const EntryPoint> EntryPoints();

// Constants of the shop's infrastructure that appear in attributes.
inline constexpr std::string_view kDatabaseName = "shop";
inline constexpr std::string_view kPostgresHost = "postgres-primary";
inline constexpr std::string_view kRedisHost = "redis-cart";
inline constexpr std::string_view kKafkaHost = "kafka-0.kafka";
inline constexpr std::string_view kDeploymentEnvironment = "production";

}  // namespace tracery::bench
