// Tail sampling's policy engine: the OpenTelemetry Collector's `tail_sampling` policies, shaped
// for a sampler whose pending traces wait on disk and whose memory holds one small fixed-size
// summary per pending trace.
//
// How the ingester is meant to use it:
//   1. At start, `ParseTailSampling(node, file)` reads the config and compiles it into a
//      PolicySet: per-span predicates (status codes, attribute and trace-state matches) and the
//      decision tree above them. A PolicySet is immutable; copies share it across threads.
//   2. At ingest, after otlp::SplitByTrace, `policies.matcher().ObserveRequest(split, summaries)`
//      folds every span into the TraceSummary of its fragment, reading each span's and resource's
//      encoded bytes once (no decoding into objects, no allocation). The ingester merges each
//      fragment's summary into the summary it keeps for the pending trace
//      (`TraceSummary::Merge`) while the spans themselves stay in the WAL.
//   3. When the trace is due (`decision_wait` after its first span), `engine.Decide(id, summary)`
//      says whether it is sampled and which policy decided. Only the summary is needed, never the
//      spans: every policy is either a per-span predicate (a bit in the summary) or a function of
//      the trace ID, span count, earliest start and latest end.
//   4. After a restart, replaying the WAL through step 2 rebuilds the summaries; every decision
//      but those of rate_limiting and composite (which depend on the rate of earlier decisions)
//      comes out the same.
// Decision rules and each policy's semantics: docs/sampling.md.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include <yaml-cpp/yaml.h>

#include "common/env.h"
#include "common/ids.h"
#include "common/status.h"
#include "otlp/split.h"
#include "sampling/policy_config.h"

namespace tracery::sampling {

namespace detail {
struct CompiledPolicies;  // policy_tree.h
}

// What the decision needs of a trace, gathered span by span at ingest. Fixed size; merging two
// summaries of parts of a trace gives the summary of the whole.
struct TraceSummary {
  uint64_t matched = 0;  // bit i: predicate i matched a span of the trace (or its resource)
  uint64_t earliest_start_unix_nano = UINT64_MAX;
  uint64_t latest_end_unix_nano = 0;
  uint32_t span_count = 0;
  bool has_root = false;  // a span without a parent arrived

  void Merge(const TraceSummary& other) {
    matched |= other.matched;
    earliest_start_unix_nano = std::min(earliest_start_unix_nano, other.earliest_start_unix_nano);
    latest_end_unix_nano = std::max(latest_end_unix_nano, other.latest_end_unix_nano);
    span_count += other.span_count;
    has_root |= other.has_root;
  }
};
static_assert(sizeof(TraceSummary) == 32, "the per-trace memory budget counts on 32 bytes");

// The per-span half of a PolicySet: a cheap handle, valid while a copy of its PolicySet lives.
// Any thread may use it (it only reads the compiled policies).
class SpanMatcher {
 public:
  // Folds every span of a split request into `per_fragment[span.fragment_index]` (which must
  // have request.fragments.size() entries), each resource's attributes read once.
  void ObserveRequest(const otlp::SplitRequest& request, std::span<TraceSummary> per_fragment) const;
  // The same for one span given as its encoded Span message; `resource_bits` is
  // MatchResource() of its resource (the Collector matches attribute policies on resource
  // attributes too). Malformed bytes (SplitByTrace refuses them upstream) still count as a span.
  void ObserveSpan(std::string_view encoded_span, uint64_t resource_bits, TraceSummary& summary) const;
  uint64_t MatchResource(std::string_view encoded_resource) const;

  size_t predicate_count() const;

 private:
  friend class PolicySet;
  explicit SpanMatcher(const detail::CompiledPolicies* compiled) : compiled_(compiled) {}
  const detail::CompiledPolicies* compiled_;
};

// A policy's own verdict, as the Collector names them. Inverted verdicts come from
// `invert_match` at the top level only; inside `and`, `composite` and `drop` they count as
// plain sampled / not sampled.
enum class Verdict : uint8_t { kNotSampled, kSampled, kInvertSampled, kInvertNotSampled, kDropped };
std::string_view VerdictName(Verdict verdict);

struct TraceDecision {
  bool sampled = false;
  // Index (in the config's `policies`) of the policy whose verdict settled it: the dropping
  // policy, the inverted-not-sampled one, or the first that sampled; -1 when none did (the
  // trace is not sampled because no policy wanted it).
  int policy = -1;
  std::string_view policy_name;           // "" when policy is -1
  std::string_view composite_sub_policy;  // the composite's sub-policy that sampled, if any
};

// The compiled policies of one config. Immutable and shared by copies.
class PolicySet {
 public:
  // Fails (InvalidArgument, naming the policy and its line) on what cannot be compiled: more
  // than 64 distinct per-span predicates.
  static Result<PolicySet> Compile(TailSamplingConfig config, std::string_view source);

  const TailSamplingConfig& config() const;
  SpanMatcher matcher() const { return SpanMatcher(compiled_.get()); }
  const detail::CompiledPolicies& compiled() const { return *compiled_; }

 private:
  std::shared_ptr<const detail::CompiledPolicies> compiled_;
};

// ParseTailSamplingConfig + PolicySet::Compile.
Result<PolicySet> ParseTailSampling(const YAML::Node& node, std::string_view source,
                                    std::string_view key_path = "tail_sampling");

// Decides traces. Holds the state of rate_limiting (a token bucket per policy) and composite
// (spans sampled per sub-policy in the current second) policies, timed by env's monotonic
// clock, so tests move time by hand. Not thread-safe: one decider thread, or a lock around it.
class DecisionEngine {
 public:
  DecisionEngine(PolicySet policies, Env& env);
  ~DecisionEngine();
  DecisionEngine(DecisionEngine&&) noexcept;

  // Evaluates every top-level policy (stateful ones consume their budget even when another
  // policy's verdict wins, as in the Collector) and combines the verdicts. `per_policy`, when
  // given, must have one entry per top-level policy and receives each verdict (for metrics).
  TraceDecision Decide(const TraceId& trace_id, const TraceSummary& summary, std::span<Verdict> per_policy = {});

  const PolicySet& policies() const { return policies_; }

 private:
  struct State;
  PolicySet policies_;
  Env* env_;
  std::unique_ptr<State> state_;
};

}  // namespace tracery::sampling
