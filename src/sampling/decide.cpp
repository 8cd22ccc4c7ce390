// The decision half of the sampler: each policy's verdict from the trace summary, and the
// Collector's rules for combining the top-level verdicts. Which Collector behaviour is
// implemented (it changed across versions) is stated at each rule and in docs/sampling.md.
#include <optional>
#include <vector>

#include "sampling/policy_tree.h"
#include "sampling/sampler.h"

namespace tracery::sampling {

namespace detail {

bool TokenBucket::Allow(int64_t now_nanos, int64_t n) {
  double tokens = tokens_;
  if (last_nanos_ && now_nanos > *last_nanos_) tokens += double(now_nanos - *last_nanos_) / 1e9 * rate_;
  tokens = std::min(tokens, burst_);
  if (double(n) > burst_ || tokens < double(n)) return false;  // refused: the bucket is left as it was
  tokens_ = tokens - double(n);
  if (!last_nanos_ || now_nanos > *last_nanos_) last_nanos_ = now_nanos;
  return true;
}

}  // namespace detail

namespace {

using detail::PolicyNode;

struct CompositeCounters {
  std::optional<int64_t> second;      // the second the counts are of
  std::vector<int64_t> sampled_spans;  // per child
};

}  // namespace

struct DecisionEngine::State {
  std::vector<detail::TokenBucket> buckets;
  std::vector<CompositeCounters> composites;
};

namespace {

struct Evaluation {
  const TraceId& trace_id;
  const TraceSummary& summary;
  int64_t now_nanos;
  std::vector<detail::TokenBucket>& buckets;
  std::vector<CompositeCounters>& composites;
  std::string_view composite_sub_policy;
};

bool CountsAsSampled(Verdict v) { return v == Verdict::kSampled || v == Verdict::kInvertSampled; }
bool CountsAsNotSampled(Verdict v) { return v == Verdict::kNotSampled || v == Verdict::kInvertNotSampled; }

Verdict Evaluate(const PolicyNode& node, Evaluation& e) {
  const TraceSummary& s = e.summary;
  switch (node.type) {
    case PolicyType::kAlwaysSample: return Verdict::kSampled;
    case PolicyType::kStatusCode:
    case PolicyType::kStringAttribute:
    case PolicyType::kNumericAttribute:
    case PolicyType::kBooleanAttribute:
    case PolicyType::kTraceState: {
      bool matched = node.predicate >= 0 && (s.matched >> node.predicate & 1);
      // invert_match: "not sampled" as soon as any span or resource matches (the Collector's
      // deprecated inverted verdicts, which the top-level rules below weigh differently).
      if (node.invert) return matched ? Verdict::kInvertNotSampled : Verdict::kInvertSampled;
      return matched ? Verdict::kSampled : Verdict::kNotSampled;
    }
    case PolicyType::kLatency: {
      if (s.span_count == 0) return Verdict::kNotSampled;
      // Earliest start to latest end of the whole trace, whole milliseconds truncated (Go's
      // Duration.Milliseconds). The Collector's code tests the running duration span by span,
      // which with an upper bound depends on span order; the whole trace's is what it documents.
      int64_t milliseconds = (int64_t(s.latest_end_unix_nano) - int64_t(s.earliest_start_unix_nano)) / 1'000'000;
      bool in_range = node.upper_threshold_ms == 0
                          ? milliseconds >= node.threshold_ms
                          : node.threshold_ms < milliseconds && milliseconds <= node.upper_threshold_ms;
      return in_range ? Verdict::kSampled : Verdict::kNotSampled;
    }
    case PolicyType::kProbabilistic:
      return detail::HashTraceId(node.hash_salt, e.trace_id) <= node.hash_threshold ? Verdict::kSampled
                                                                                      : Verdict::kNotSampled;
    case PolicyType::kSpanCount: {
      int64_t count = s.span_count;
      bool in_range = count >= node.min_spans && (node.max_spans == 0 || count <= node.max_spans);
      return in_range ? Verdict::kSampled : Verdict::kNotSampled;
    }
    case PolicyType::kRateLimiting:
      return e.buckets[node.state].Allow(e.now_nanos, s.span_count) ? Verdict::kSampled : Verdict::kNotSampled;
    case PolicyType::kOttlCondition: return Verdict::kNotSampled;  // never compiled
    case PolicyType::kAnd:
    case PolicyType::kDrop:
      // All sub-policies must sample; the first that does not ends the evaluation (later,
      // stateful sub-policies are then not asked, as in the Collector).
      for (const PolicyNode& child : node.children)
        if (CountsAsNotSampled(Evaluate(child, e))) return Verdict::kNotSampled;
      return node.type == PolicyType::kDrop ? Verdict::kDropped : Verdict::kSampled;
    case PolicyType::kComposite: {
      CompositeCounters& counters = e.composites[node.state];
      int64_t second = e.now_nanos / 1'000'000'000;
      if (counters.second != second) {
        counters.second = second;
        counters.sampled_spans.assign(node.children.size(), 0);
      }
      // The first sub-policy (in order) that samples decides: within its allocation (and the
      // total) the trace is sampled and counted, beyond it the trace is not sampled; the later
      // sub-policies are not asked.
      for (size_t i = 0; i < node.children.size(); ++i) {
        if (!CountsAsSampled(Evaluate(node.children[i], e))) continue;
        int64_t if_sampled = counters.sampled_spans[i] + int64_t(s.span_count);
        if (if_sampled <= node.allocated_spans_per_second[i] && if_sampled <= node.max_total_spans_per_second) {
          counters.sampled_spans[i] = if_sampled;
          e.composite_sub_policy = node.children[i].name;
          return Verdict::kSampled;
        }
        return Verdict::kNotSampled;
      }
      return Verdict::kNotSampled;
    }
  }
  return Verdict::kNotSampled;
}

}  // namespace

DecisionEngine::DecisionEngine(PolicySet policies, Env& env)
    : policies_(std::move(policies)), env_(&env), state_(std::make_unique<State>()) {
  const detail::CompiledPolicies& compiled = policies_.compiled();
  std::vector<const PolicyNode*> todo;
  for (const auto& node : compiled.policies) todo.push_back(&node);
  state_->buckets.resize(compiled.rate_limiters, detail::TokenBucket(0, 0));
  state_->composites.resize(compiled.composites);
  while (!todo.empty()) {
    const PolicyNode* node = todo.back();
    todo.pop_back();
    // The Collector's rate_limiting: a token bucket refilled at spans_per_second, holding two
    // seconds' worth (golang.org/x/time/rate with burst 2 x spans_per_second).
    if (node->type == PolicyType::kRateLimiting)
      state_->buckets[node->state] =
          detail::TokenBucket(double(node->spans_per_second), 2.0 * double(node->spans_per_second));
    for (const auto& child : node->children) todo.push_back(&child);
  }
}

DecisionEngine::~DecisionEngine() = default;
DecisionEngine::DecisionEngine(DecisionEngine&&) noexcept = default;

// The Collector's final decision over the top-level verdicts, in this order (its README, for
// the versions with the `drop` policy and the deprecated inverted verdicts):
//   1. any `drop` policy dropped            -> not sampled
//   2. any inverted "not sampled"           -> not sampled
//   3. any policy sampled                   -> sampled
//   4. an inverted "sampled" and no policy
//      said "not sampled"                   -> sampled
//   5. otherwise                            -> not sampled
TraceDecision DecisionEngine::Decide(const TraceId& trace_id, const TraceSummary& summary,
                                     std::span<Verdict> per_policy) {
  const detail::CompiledPolicies& compiled = policies_.compiled();
  Evaluation e{trace_id, summary, env_->NowMonotonicNanos(), state_->buckets, state_->composites, {}};
  int first_of[5] = {-1, -1, -1, -1, -1};  // by Verdict: the first top-level policy giving it
  std::string_view sub_policy_of_first_sampled;
  for (size_t i = 0; i < compiled.policies.size(); ++i) {
    e.composite_sub_policy = {};
    Verdict verdict = Evaluate(compiled.policies[i], e);
    if (i < per_policy.size()) per_policy[i] = verdict;
    int& first = first_of[int(verdict)];
    if (first < 0) {
      first = int(i);
      if (verdict == Verdict::kSampled) sub_policy_of_first_sampled = e.composite_sub_policy;
    }
  }
  auto decided = [&](bool sampled, int policy) {
    TraceDecision d;
    d.sampled = sampled;
    d.policy = policy;
    if (policy >= 0) d.policy_name = compiled.policies[policy].name;
    if (sampled && policy == first_of[int(Verdict::kSampled)]) d.composite_sub_policy = sub_policy_of_first_sampled;
    return d;
  };
  if (first_of[int(Verdict::kDropped)] >= 0) return decided(false, first_of[int(Verdict::kDropped)]);
  if (first_of[int(Verdict::kInvertNotSampled)] >= 0) return decided(false, first_of[int(Verdict::kInvertNotSampled)]);
  if (first_of[int(Verdict::kSampled)] >= 0) return decided(true, first_of[int(Verdict::kSampled)]);
  if (first_of[int(Verdict::kInvertSampled)] >= 0 && first_of[int(Verdict::kNotSampled)] < 0)
    return decided(true, first_of[int(Verdict::kInvertSampled)]);
  return decided(false, -1);
}

}  // namespace tracery::sampling
