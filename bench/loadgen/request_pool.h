// Builds the pool of export requests the load generator replays. Each request carries all
// spans of a few whole traces, grouped the way an OpenTelemetry Collector's batch processor
// forwards them: one ResourceSpans per service instance, one ScopeSpans per instrumentation
// library inside it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "loadgen/request_template.h"

namespace tracery::bench {

struct PoolOptions {
  // Distinct requests; replays reuse content with new IDs and times, so a pool too small
  // would flatter the server's compression. 1000 requests is ~300 k spans, ~90 MB.
  int request_count = 1000;
  int spans_per_request = 300;   // a request is closed once it holds at least this many
  int max_spans_per_trace = 50;
  uint64_t seed = 1;
};

// What the pool looks like; printed so a reader knows what the server was fed.
struct PoolSummary {
  uint64_t requests = 0;
  uint64_t traces = 0;
  uint64_t spans = 0;
  uint64_t encoded_bytes = 0;
  uint64_t error_spans = 0;
  uint64_t spans_with_events = 0;
};

struct RequestPool {
  std::vector<RequestTemplate> requests;
  PoolSummary summary;
};

// Fails only if an encoded request cannot be indexed, which would be a bug in the indexer.
bool BuildRequestPool(const PoolOptions& options, uint64_t now_unix_ns, RequestPool& pool,
                      std::string& error);

}  // namespace tracery::bench
