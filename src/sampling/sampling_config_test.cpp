// Unit tests of reading the Collector's tail_sampling config: the seed file as written, every
// policy type's keys, and errors that name the key and the line, all reported together.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "sampling/sampling_for_tests.h"

namespace tracery::sampling {
namespace {

using namespace std::chrono_literals;

// shared/seed/configs/tail-sampling.yaml, byte for byte.
constexpr const char* kSeed = R"(# The tail-sampling processor from the seed article.
processors:
  tail_sampling:
    policies:
      - name: errors
        type: status_code
        status_code: { status_codes: [ERROR] }
      - name: slow
        type: latency
        latency: { threshold_ms: 500 }
      - name: baseline
        type: probabilistic
        probabilistic: { sampling_percentage: 5 }
)";

Result<TailSamplingConfig> Parse(const std::string& yaml) {
  return ParseTailSamplingConfig(YAML::Load(yaml)["tail_sampling"], "test.yaml");
}

// Expects a failure whose message holds every one of `words`.
void ExpectError(const std::string& yaml, const std::vector<std::string>& words) {
  YAML::Node root = YAML::Load(yaml);
  auto policies = ParseTailSampling(root["tail_sampling"], "test.yaml");
  ASSERT_FALSE(policies.ok()) << yaml;
  for (const auto& word : words)
    EXPECT_NE(policies.status().message().find(word), std::string::npos)
        << "missing `" << word << "` in:\n" << policies.status().message();
}

void CheckSeed(const TailSamplingConfig& config) {
  EXPECT_EQ(config.decision_wait, 30s);
  EXPECT_EQ(config.num_traces, 50000u);
  ASSERT_EQ(config.policies.size(), 3u);
  EXPECT_EQ(config.policies[0].name, "errors");
  EXPECT_EQ(config.policies[0].type, PolicyType::kStatusCode);
  EXPECT_EQ(config.policies[0].status_codes, std::vector<uint8_t>{2});
  EXPECT_EQ(config.policies[0].line, 5);
  EXPECT_EQ(config.policies[1].type, PolicyType::kLatency);
  EXPECT_EQ(config.policies[1].threshold_ms, 500);
  EXPECT_EQ(config.policies[2].type, PolicyType::kProbabilistic);
  EXPECT_EQ(config.policies[2].sampling_percentage, 5.0);
}

TEST(TailsamplingConfigTest, SeedFileParsesUnchanged) {
  YAML::Node root = YAML::Load(kSeed);
  auto policies = ParseTailSampling(root["processors"]["tail_sampling"], "tail-sampling.yaml");
  ASSERT_TRUE(policies.ok()) << policies.status().ToString();
  CheckSeed(policies->config());
  EXPECT_EQ(policies->matcher().predicate_count(), 1u);  // only status_code looks at spans
}

TEST(TailsamplingConfigTest, SeedFileOnDiskIsTheOneTested) {
  std::ifstream in("/work/shared/seed/configs/tail-sampling.yaml");
  if (!in) GTEST_SKIP() << "the seed directory is not present here";
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), kSeed);
}

TEST(TailsamplingConfigTest, EveryPolicyTypeAndTopLevelKey) {
  auto config = Parse(R"(
tail_sampling:
  decision_wait: 10s
  num_traces: 100
  expected_new_traces_per_sec: 10
  decision_cache: { sampled_cache_size: 100_000, non_sampled_cache_size: 0x10 }
  policies:
    [
      { name: p1, type: always_sample },
      { name: p2, type: latency, latency: { threshold_ms: 5000, upper_threshold_ms: 10000 } },
      { name: p3, type: numeric_attribute, numeric_attribute: { key: key1, min_value: 50, max_value: 100 } },
      { name: p4, type: probabilistic, probabilistic: { sampling_percentage: 10, hash_salt: salty } },
      { name: p5, type: status_code, status_code: { status_codes: [ERROR, UNSET] } },
      { name: p6, type: string_attribute, string_attribute: { key: key2, values: [value1, value2] } },
      { name: p7, type: string_attribute,
        string_attribute: { key: key2, values: [value1, val*], enabled_regex_matching: true, cache_max_size: 10 } },
      { name: p8, type: rate_limiting, rate_limiting: { spans_per_second: 35 } },
      { name: p9, type: span_count, span_count: { min_spans: 2, max_spans: 20 } },
      { name: p10, type: trace_state, trace_state: { key: key3, values: [value1, value2] } },
      { name: p11, type: boolean_attribute, boolean_attribute: { key: key4, value: true, invert_match: yes } },
      { name: p12, type: and, and: { and_sub_policy: [
          { name: a1, type: numeric_attribute, numeric_attribute: { key: key1, min_value: 50 } },
          { name: a2, type: string_attribute, string_attribute: { key: key2, values: [v], invert_match: true } } ] } },
      { name: p13, type: drop, drop: { drop_sub_policy: [
          { name: d1, type: string_attribute,
            string_attribute: { key: url.path, values: [\/health, \/metrics], enabled_regex_matching: true } } ] } },
      { name: p14, type: composite, composite: {
          max_total_spans_per_second: 1000,
          policy_order: [c1, c2, c3],
          composite_sub_policy: [
            { name: c1, type: numeric_attribute, numeric_attribute: { key: key1, max_value: 10 } },
            { name: c2, type: and, and: { and_sub_policy: [ { name: c2a, type: always_sample } ] } },
            { name: c3, type: always_sample } ],
          rate_allocation: [ { policy: c1, percent: 50 }, { policy: c2, percent: 25 } ] } },
    ]
)");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->decision_wait, 10s);
  EXPECT_EQ(config->num_traces, 100u);
  EXPECT_EQ(config->expected_new_traces_per_sec, 10u);
  EXPECT_EQ(config->sampled_cache_size, 100000u);
  EXPECT_EQ(config->non_sampled_cache_size, 16u);
  const auto& p = config->policies;
  ASSERT_EQ(p.size(), 14u);
  EXPECT_EQ(p[1].upper_threshold_ms, 10000);
  EXPECT_EQ(p[2].min_value, 50);
  EXPECT_EQ(p[2].max_value, 100);
  EXPECT_EQ(p[3].hash_salt, "salty");
  EXPECT_EQ(p[4].status_codes, (std::vector<uint8_t>{2, 0}));
  EXPECT_TRUE(p[6].enabled_regex_matching);
  EXPECT_EQ(p[6].cache_max_size, 10);
  EXPECT_EQ(p[7].spans_per_second, 35);
  EXPECT_EQ(p[8].max_spans, 20);
  EXPECT_EQ(p[9].values, (std::vector<std::string>{"value1", "value2"}));
  EXPECT_TRUE(p[10].bool_value);
  EXPECT_TRUE(p[10].invert_match);
  ASSERT_EQ(p[11].sub_policies.size(), 2u);
  EXPECT_FALSE(p[11].sub_policies[0].max_value.has_value());
  EXPECT_TRUE(p[11].sub_policies[1].invert_match);
  EXPECT_EQ(p[12].sub_policies[0].values[0], "\\/health");
  EXPECT_EQ(p[13].max_total_spans_per_second, 1000);
  ASSERT_EQ(p[13].rate_allocation.size(), 2u);
  EXPECT_EQ(p[13].rate_allocation[1].percent, 25);
  EXPECT_EQ(p[13].sub_policies[1].type, PolicyType::kAnd);
  EXPECT_TRUE(PolicySet::Compile(*config, "test.yaml").ok());
}

TEST(TailsamplingConfigTest, UnknownPolicyTypeNamesItAndItsLine) {
  ExpectError(R"(tail_sampling:
  policies:
    - name: big
      type: bytes_limited
)", {"test.yaml:4:", "unknown policy type `bytes_limited`", "tail_sampling.policies[0].type"});
}

TEST(TailsamplingConfigTest, UnknownFieldsNameTheKeyPathAndLine) {
  ExpectError(R"(tail_sampling:
  decision_wait: 5s
  decison_cache: { sampled_cache_size: 10 }
  policies:
    - name: slow
      type: latency
      latency: { threshold: 500 }
)", {"2 problems", "test.yaml:3: unknown key `tail_sampling.decison_cache`",
      "test.yaml:7: unknown key `tail_sampling.policies[0].latency.threshold`"});
}

TEST(TailsamplingConfigTest, AllProblemsOfAFileAreReportedTogether) {
  ExpectError(R"(tail_sampling:
  decision_wait: soon
  num_traces: -5
  policies:
    - name: errors
      type: status_code
      status_code: { status_codes: [FATAL] }
    - name: rx
      type: string_attribute
      string_attribute: { key: http.route, values: ["(unclosed"], enabled_regex_matching: true }
    - name: pct
      type: probabilistic
      probabilistic: { sampling_percentage: lots }
    - name: num
      type: numeric_attribute
      numeric_attribute: { key: n }
    - name: errors
      type: always_sample
)", {"7 problems", "test.yaml:2: bad value `soon` for `tail_sampling.decision_wait`",
      "test.yaml:3: bad value `-5` for `tail_sampling.num_traces`", "bad value `FATAL`",
      "test.yaml:8:", "bad regular expression `(unclosed`", "test.yaml:13: bad value `lots`",
      "test.yaml:14:", "needs `min_value`, `max_value` or both", "test.yaml:17:", "duplicate policy name `errors`"});
}

TEST(TailsamplingConfigTest, OttlConditionIsRefusedAsUnsupportedNamingItAndItsLine) {
  ExpectError(R"(tail_sampling:
  policies:
    - name: errors
      type: status_code
      status_code: { status_codes: [ERROR] }
    - name: ottl-policy
      type: ottl_condition
      ottl_condition:
        error_mode: ignore
        span: ['attributes["k"] == "v"']
        spanevent: ['name != "e"']
)", {"test.yaml:6:", "unsupported policy `ottl-policy`", "ottl_condition"});
  // Its own keys are still checked.
  ExpectError(R"(tail_sampling:
  policies:
    - { name: o, type: ottl_condition, ottl_condition: { spans: [x] } }
)", {"unknown key `tail_sampling.policies[0].ottl_condition.spans`"});
}

TEST(TailsamplingConfigTest, NestingFollowsTheCollector) {
  ExpectError(R"(tail_sampling:
  policies:
    - name: outer
      type: and
      and:
        and_sub_policy:
          - { name: inner, type: drop, drop: { drop_sub_policy: [ { name: x, type: always_sample } ] } }
)", {"test.yaml:7:", "a `drop` policy is not allowed here"});
  ExpectError(R"(tail_sampling:
  policies:
    - name: c
      type: composite
      composite:
        max_total_spans_per_second: 10
        policy_order: [a, ghost]
        composite_sub_policy: [ { name: a, type: always_sample } ]
        rate_allocation: [ { policy: a, percent: 80 }, { policy: b, percent: 30 } ]
)", {"`policy_order` names `ghost`", "`rate_allocation` names `b`", "add up to 110"});
}

TEST(TailsamplingConfigTest, ABlockOfAnotherTypeIsRefused) {
  // The Collector's README once had this very mistake (a boolean policy with a string block).
  ExpectError(R"(tail_sampling:
  policies:
    - name: do-not-sample
      type: boolean_attribute
      string_attribute: { key: app.do_not_sample, value: true }
)", {"test.yaml:5:", "a `string_attribute` block in a policy of type `boolean_attribute`", "needs a `key`"});
}

TEST(TailsamplingConfigTest, MissingPoliciesAndNamesAreErrors) {
  ExpectError("tail_sampling:\n  decision_wait: 1s\n", {"needs `policies`"});
  ExpectError("tail_sampling:\n  policies: []\n", {"needs `policies`"});
  ExpectError("tail_sampling:\n  policies:\n    - type: always_sample\n", {"test.yaml:3:", "without a `name`"});
  ExpectError("tail_sampling:\n  policies:\n    - name: x\n", {"without a `type`"});
}

TEST(TailsamplingConfigTest, MoreThanSixtyFourSpanConditionsAreRefused) {
  std::string yaml = "tail_sampling:\n  policies:\n";
  for (int i = 0; i < 65; ++i)
    yaml += "    - { name: p" + std::to_string(i) + ", type: string_attribute, string_attribute: { key: k" +
            std::to_string(i) + ", values: [v] } }\n";
  ExpectError(yaml, {"test.yaml:67:", "policy `p64`", "more than 64 span conditions"});
}

}  // namespace
}  // namespace tracery::sampling
