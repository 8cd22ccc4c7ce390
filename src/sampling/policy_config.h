// The OpenTelemetry Collector's `tail_sampling` processor configuration, read from YAML as the
// Collector reads it (key names, defaults, policy types), into plain structs. Nothing here
// evaluates a trace: sampler.h compiles a TailSamplingConfig into matchers and a decision tree.
// Semantics of every key: docs/sampling.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/status.h"

namespace tracery::sampling {

enum class PolicyType {
  kAlwaysSample,
  kStatusCode,
  kLatency,
  kProbabilistic,
  kStringAttribute,
  kNumericAttribute,
  kBooleanAttribute,
  kSpanCount,
  kTraceState,
  kRateLimiting,
  kOttlCondition,  // parsed, then refused as unsupported (docs/sampling.md says why)
  kAnd,
  kComposite,
  kDrop,
};

// The Collector's spelling of a type (`string_attribute`), for messages and docs.
std::string_view PolicyTypeName(PolicyType type);

struct RateAllocation {
  std::string policy;
  int64_t percent = 0;
};

// One policy, at the top level or inside `and`, `composite` or `drop`. Flat, as the Collector's
// own config struct is: only the fields of `type` are meaningful.
struct PolicyConfig {
  std::string name;
  PolicyType type = PolicyType::kAlwaysSample;
  int line = 0;  // 1-based line of the policy's entry, for messages

  // status_code: STATUS_CODE_* numbers (0 UNSET, 1 OK, 2 ERROR)
  std::vector<uint8_t> status_codes;
  // latency
  int64_t threshold_ms = 0;
  int64_t upper_threshold_ms = 0;  // 0: no upper bound
  // probabilistic
  double sampling_percentage = 0;
  std::string hash_salt;
  // string_attribute, numeric_attribute, boolean_attribute, trace_state
  std::string key;
  std::vector<std::string> values;      // string_attribute, trace_state
  bool enabled_regex_matching = false;  // string_attribute
  int64_t cache_max_size = 0;           // string_attribute; accepted, not needed (see docs)
  bool invert_match = false;            // string, numeric and boolean attribute
  std::optional<int64_t> min_value, max_value;  // numeric_attribute; at least one is set
  bool bool_value = false;                      // boolean_attribute `value`
  // span_count
  int64_t min_spans = 0;
  int64_t max_spans = 0;  // 0: no upper bound
  // rate_limiting
  int64_t spans_per_second = 0;
  // ottl_condition
  std::string error_mode;
  std::vector<std::string> span_conditions, span_event_conditions;
  // composite
  int64_t max_total_spans_per_second = 0;
  std::vector<std::string> policy_order;
  std::vector<RateAllocation> rate_allocation;
  // and_sub_policy, composite_sub_policy, drop_sub_policy
  std::vector<PolicyConfig> sub_policies;
};

struct TailSamplingConfig {
  std::chrono::nanoseconds decision_wait = std::chrono::seconds(30);
  uint64_t num_traces = 50000;
  uint64_t expected_new_traces_per_sec = 0;
  uint64_t sampled_cache_size = 0;      // decision_cache; 0: no cache, as in the Collector
  uint64_t non_sampled_cache_size = 0;  // decision_cache
  std::vector<PolicyConfig> policies;
};

// Reads the node under `tail_sampling:` (a Collector file's `processors.tail_sampling`, or
// tracery's own key). Every problem is reported together, one line each, as
// `<source>:<line>: <key_path>...: what is wrong`. Unknown keys and policy types are errors;
// `ottl_condition` is parsed and then refused as an unsupported policy.
Result<TailSamplingConfig> ParseTailSamplingConfig(const YAML::Node& node, std::string_view source,
                                                   std::string_view key_path = "tail_sampling");

}  // namespace tracery::sampling
