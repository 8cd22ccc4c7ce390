// Generates one trace at a time by walking the shop model (shop_model.h) from an entry
// endpoint: a tree of 5-50 spans with parent links, realistic span kinds and attributes,
// occasional failures that propagate to the callers, and timestamps where every child lies
// inside its parent (except message consumers, which run after the producer returned).
//
// Not thread-safe: one generator per thread; it owns its random number generator so that a
// seed reproduces the same traces.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "loadgen/shop_model.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"

namespace tracery::bench {

// A span together with who emitted it, which decides its ResourceSpans and ScopeSpans.
struct GeneratedSpan {
  int service = 0;
  int instance = 0;
  ScopeCategory scope = ScopeCategory::kHttp;
  opentelemetry::proto::trace::v1::Span span;
};

class TraceGenerator {
 public:
  TraceGenerator(uint64_t seed, int max_spans_per_trace);

  // Appends the spans of one new trace to `out`. The trace ends shortly before `now_unix_ns`.
  void AppendTrace(uint64_t now_unix_ns, std::vector<GeneratedSpan>& out);

 private:
  // A span under construction; durations are known only once its children are.
  struct Node {
    int parent = -1;
    std::vector<int> children;
    bool runs_with_previous_sibling = false;  // part of a parallel fan-out
    bool starts_after_parent_ends = false;    // message consumer
    double self_ms = 0;                       // time not spent in children
    double duration_ms = 0;
    double offset_in_parent_ms = 0;
    GeneratedSpan generated;
  };

  // What a caller learns from a callee: whether it failed and the HTTP status it answered.
  struct Outcome {
    bool failed = false;
    int http_status = 200;
  };

  void BuildTree();
  bool HasRoomFor(int spans) const;
  Outcome VisitEndpoint(int endpoint_index, int parent, const std::string& url_path,
                        bool as_consumer);
  bool RunStep(const Step& step, int service, int parent, bool parallel_member);
  bool CallEndpoint(const Step& step, int caller_service, int parent, bool parallel_member);
  bool Publish(const Step& step, int caller_service, int parent);
  bool SqlQuery(const Step& step, int service, int parent, bool parallel_member);
  bool CacheCommand(const Step& step, int service, int parent, bool parallel_member);
  bool ExternalCall(const Step& step, int service, int parent, bool parallel_member);
  bool Internal(const Step& step, int service, int parent, bool parallel_member);

  int AddNode(int parent, int service, ScopeCategory scope, bool parallel_member);
  void MarkFailed(int node, std::string_view exception_type, std::string_view message);
  void MaybeAddLogEvent(int node);
  void ComputeDurations();
  void WriteTimestamps(uint64_t now_unix_ns);

  std::string FillPlaceholders(std::string_view text);
  std::string PlaceholderValue(std::string_view name);
  std::string RandomBytes(int count);
  double LogNormalMs(double median_ms, double sigma);
  bool Chance(double probability);
  int UniformInt(int low, int high);

  std::mt19937_64 random_;
  int max_spans_per_trace_;
  std::discrete_distribution<int> entry_point_choice_;
  std::vector<Node> nodes_;  // reserved to the span limit, so references stay valid

  // Values that stay the same across one trace, as they would for one user's request.
  std::string trace_id_;
  std::string user_id_;
  std::string session_id_;
  std::string order_id_;
  std::string currency_;
};

}  // namespace tracery::bench
