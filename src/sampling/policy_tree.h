// Private to src/sampling: a TailSamplingConfig compiled for evaluation. The leaves that look at
// spans (status_code, string/numeric/boolean attribute, trace_state) become Predicates, each
// owning one bit of TraceSummary::matched; the tree of PolicyNodes decides from the summary.
#pragma once

#include <re2/re2.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/ids.h"
#include "sampling/policy_config.h"

namespace tracery::sampling::detail {

// "Does this span (or its resource) have ...": a bit set at ingest.
struct Predicate {
  enum class Kind : uint8_t { kStatus, kString, kNumeric, kBoolean, kTraceState };
  Kind kind = Kind::kStatus;
  std::string key;             // attribute key, or trace-state member key
  uint8_t status_mask = 0;     // kStatus: bit (1 << STATUS_CODE_*)
  std::vector<std::string> exact_values;       // kString (without regex), kTraceState
  std::vector<std::unique_ptr<RE2>> regexes;   // kString with enabled_regex_matching
  std::optional<int64_t> min_value, max_value;  // kNumeric, inclusive
  bool bool_value = false;                      // kBoolean

  bool MatchesString(std::string_view value) const;
  bool MatchesTraceState(std::string_view trace_state) const;
};

struct PolicyNode {
  PolicyType type = PolicyType::kAlwaysSample;
  std::string name;
  int predicate = -1;   // the bit of a span-level leaf
  bool invert = false;  // invert_match
  int64_t threshold_ms = 0, upper_threshold_ms = 0;  // latency
  int64_t min_spans = 0, max_spans = 0;              // span_count
  uint64_t hash_threshold = 0;                       // probabilistic: sampled when hash <= it
  std::string hash_salt;                             // probabilistic
  int64_t spans_per_second = 0;                      // rate_limiting
  int state = -1;  // rate_limiting: its token bucket; composite: its counters
  int64_t max_total_spans_per_second = 0;            // composite
  std::vector<int64_t> allocated_spans_per_second;   // composite: per child, in children's order
  std::vector<PolicyNode> children;  // and, drop, composite (in evaluation order)
};

struct CompiledPolicies {
  TailSamplingConfig config;
  std::vector<Predicate> predicates;  // at most 64
  std::vector<PolicyNode> policies;   // the top level, in config order
  int rate_limiters = 0;              // token buckets the tree uses
  int composites = 0;                 // composite counter sets the tree uses

  // For the span scan: which keys matter, and which predicates each key feeds.
  struct KeyPredicates {
    std::string key;
    uint64_t predicates = 0;
  };
  std::vector<KeyPredicates> attribute_keys;
  uint64_t status_predicates = 0;
  uint64_t trace_state_predicates = 0;
};

// The Collector's probabilistic policy: FNV-1a (64 bit) over hash_salt then the 16 trace ID
// bytes, sampled when the hash is at most floor(ratio * (2^64 - 1)), the product rounded to 64
// significant bits first (Go's big.Float at the precision of its operands).
uint64_t HashTraceId(std::string_view salt, const TraceId& trace_id);
uint64_t ProbabilityThreshold(double ratio);
// The Collector's salt when hash_salt is empty.
inline constexpr std::string_view kDefaultHashSalt = "default-hash-seed";

// A token bucket as golang.org/x/time/rate's Limiter.AllowN: refills at `rate` per second up to
// `burst`, starts full; a request for more than is in the bucket is refused and takes nothing.
class TokenBucket {
 public:
  TokenBucket(double rate_per_second, double burst) : rate_(rate_per_second), burst_(burst), tokens_(burst) {}
  bool Allow(int64_t now_nanos, int64_t n);

 private:
  double rate_, burst_, tokens_;
  std::optional<int64_t> last_nanos_;
};

}  // namespace tracery::sampling::detail
