// Unit tests of the policies on crafted traces: each policy alone, the Collector's rules for
// combining verdicts (inverted, drop, and, composite), the stateful policies on a manual clock,
// and the probabilistic policy's rate and determinism.
#include <gtest/gtest.h>

#include <random>

#include "sampling/policy_tree.h"
#include "sampling/sampling_for_tests.h"

namespace tracery::sampling {
namespace {

using testing::Decider;
using testing::TraceBuilder;

std::string OnePolicy(const std::string& policy) { return "tail_sampling:\n  policies:\n    - " + policy + "\n"; }

TEST(TailsamplingPolicyTest, AlwaysSample) {
  Decider d(OnePolicy("{ name: all, type: always_sample }"));
  TraceBuilder trace;
  trace.Span(0, 1);
  TraceDecision decision = d.Decide(trace);
  EXPECT_TRUE(decision.sampled);
  EXPECT_EQ(decision.policy, 0);
  EXPECT_EQ(decision.policy_name, "all");
}

TEST(TailsamplingPolicyTest, StatusCodeMatchesAnySpanOfTheTrace) {
  Decider errors(OnePolicy("{ name: e, type: status_code, status_code: { status_codes: [ERROR] } }"));
  TraceBuilder ok_trace, error_trace;
  ok_trace.Span(0, 5, 1);
  ok_trace.Span(1, 2);
  error_trace.Span(0, 5, 1);
  error_trace.Span(1, 2, 2);
  EXPECT_FALSE(errors.Sampled(ok_trace));
  EXPECT_TRUE(errors.Sampled(error_trace));

  Decider unset(OnePolicy("{ name: u, type: status_code, status_code: { status_codes: [UNSET] } }"));
  TraceBuilder all_ok, one_unset;
  all_ok.Span(0, 1, 1);
  one_unset.Span(0, 1, 1);
  one_unset.Span(0, 1);  // no status message at all: UNSET
  EXPECT_FALSE(unset.Sampled(all_ok));
  EXPECT_TRUE(unset.Sampled(one_unset));
}

TEST(TailsamplingPolicyTest, LatencyIsEarliestStartToLatestEnd) {
  Decider slow(OnePolicy("{ name: slow, type: latency, latency: { threshold_ms: 500 } }"));
  TraceBuilder fast, split_slow, exactly;
  fast.Span(0, 499);
  // No span is slow alone; the trace spans 0..600 ms.
  split_slow.Span(0, 300);
  split_slow.Span(350, 600);
  exactly.Span(100, 600);
  EXPECT_FALSE(slow.Sampled(fast));
  EXPECT_TRUE(slow.Sampled(split_slow));
  EXPECT_TRUE(slow.Sampled(exactly));  // >= threshold without an upper bound

  Decider band(OnePolicy("{ name: band, type: latency, latency: { threshold_ms: 500, upper_threshold_ms: 1000 } }"));
  TraceBuilder at_lower, inside, at_upper, above;
  at_lower.Span(0, 500);
  inside.Span(0, 700);
  at_upper.Span(0, 1000);
  above.Span(0, 1001);
  EXPECT_FALSE(band.Sampled(at_lower));  // (threshold, upper]
  EXPECT_TRUE(band.Sampled(inside));
  EXPECT_TRUE(band.Sampled(at_upper));
  EXPECT_FALSE(band.Sampled(above));
}

TEST(TailsamplingPolicyTest, StringAttributeOnSpansAndResources) {
  Decider d(OnePolicy("{ name: s, type: string_attribute, string_attribute: { key: tier, values: [gold, silver] } }"));
  TraceBuilder on_span, on_resource, other_value, other_type;
  testing::Put(on_span.Span(0, 1).mutable_attributes(), "tier", "silver");
  testing::Put(on_resource.Resource("svc2").mutable_attributes(), "tier", "gold");
  on_resource.Span(0, 1);
  testing::Put(other_value.Span(0, 1).mutable_attributes(), "tier", "bronze");
  testing::PutInt(other_type.Span(0, 1).mutable_attributes(), "tier", 1);
  EXPECT_TRUE(d.Sampled(on_span));
  EXPECT_TRUE(d.Sampled(on_resource));
  EXPECT_FALSE(d.Sampled(other_value));
  EXPECT_FALSE(d.Sampled(other_type));
}

TEST(TailsamplingPolicyTest, StringAttributeRegexFindsAMatchAnywhere) {
  Decider d(OnePolicy(
      "{ name: r, type: string_attribute, string_attribute: { key: http.route, values: ['/v1/name/.+', '^/health$'], "
      "enabled_regex_matching: true } }"));
  TraceBuilder noisy, health, prefixed, miss;
  testing::Put(noisy.Span(0, 1).mutable_attributes(), "http.route", "/v1/name/42");
  testing::Put(health.Span(0, 1).mutable_attributes(), "http.route", "/health");
  testing::Put(prefixed.Span(0, 1).mutable_attributes(), "http.route", "/api/v1/name/7");  // unanchored, as Go
  testing::Put(miss.Span(0, 1).mutable_attributes(), "http.route", "/healthz");
  EXPECT_TRUE(d.Sampled(noisy));
  EXPECT_TRUE(d.Sampled(health));
  EXPECT_TRUE(d.Sampled(prefixed));
  EXPECT_FALSE(d.Sampled(miss));
}

TEST(TailsamplingPolicyTest, InvertMatchSamplesTracesWithoutTheValue) {
  Decider d(OnePolicy(
      "{ name: not-acme, type: string_attribute, string_attribute: { key: org, values: [acme], invert_match: true } }"));
  TraceBuilder acme, other, missing;
  other.Span(0, 1);
  testing::Put(other.Span(0, 1).mutable_attributes(), "org", "globex");
  acme.Span(0, 1);
  testing::Put(acme.Span(0, 1).mutable_attributes(), "org", "acme");
  missing.Span(0, 1);
  std::vector<Verdict> verdicts(1);
  auto decide = [&](const TraceBuilder& t) {
    return d.engine.Decide(t.id(), testing::Summarize(d.engine.policies(), t.request()), verdicts);
  };
  EXPECT_FALSE(decide(acme).sampled);
  EXPECT_EQ(verdicts[0], Verdict::kInvertNotSampled);
  EXPECT_TRUE(decide(other).sampled);
  EXPECT_EQ(verdicts[0], Verdict::kInvertSampled);
  EXPECT_TRUE(decide(missing).sampled);  // the key on no span or resource: sampled
}

TEST(TailsamplingPolicyTest, NumericAttributeBounds) {
  Decider both(OnePolicy("{ name: n, type: numeric_attribute, numeric_attribute: { key: code, min_value: 500, max_value: 599 } }"));
  Decider min_only(OnePolicy("{ name: n, type: numeric_attribute, numeric_attribute: { key: code, min_value: 500 } }"));
  auto trace_with = [](int64_t code) {
    TraceBuilder t;
    testing::PutInt(t.Span(0, 1).mutable_attributes(), "code", code);
    return t;
  };
  EXPECT_TRUE(both.Sampled(trace_with(500)));
  EXPECT_TRUE(both.Sampled(trace_with(599)));
  EXPECT_FALSE(both.Sampled(trace_with(600)));
  EXPECT_FALSE(both.Sampled(trace_with(499)));
  EXPECT_TRUE(min_only.Sampled(trace_with(600)));
  EXPECT_TRUE(min_only.Sampled(trace_with(INT64_MAX)));
  EXPECT_FALSE(min_only.Sampled(trace_with(-1)));
  TraceBuilder as_double;
  testing::PutDouble(as_double.Span(0, 1).mutable_attributes(), "code", 550.0);
  EXPECT_FALSE(both.Sampled(as_double));  // int values only
  TraceBuilder on_resource;
  testing::PutInt(on_resource.Resource("db").mutable_attributes(), "code", 503);
  on_resource.Span(0, 1);
  EXPECT_TRUE(both.Sampled(on_resource));
}

TEST(TailsamplingPolicyTest, BooleanAttributeAndItsInversion) {
  Decider force(OnePolicy("{ name: f, type: boolean_attribute, boolean_attribute: { key: app.force_sample, value: true } }"));
  Decider unless(OnePolicy(
      "{ name: u, type: boolean_attribute, boolean_attribute: { key: app.skip, value: true, invert_match: true } }"));
  TraceBuilder forced, not_forced, as_string, skipped;
  testing::PutBool(forced.Span(0, 1).mutable_attributes(), "app.force_sample", true);
  testing::PutBool(not_forced.Span(0, 1).mutable_attributes(), "app.force_sample", false);
  testing::Put(as_string.Span(0, 1).mutable_attributes(), "app.force_sample", "true");
  testing::PutBool(skipped.Span(0, 1).mutable_attributes(), "app.skip", true);
  EXPECT_TRUE(force.Sampled(forced));
  EXPECT_FALSE(force.Sampled(not_forced));
  EXPECT_FALSE(force.Sampled(as_string));
  EXPECT_FALSE(unless.Sampled(skipped));
  EXPECT_TRUE(unless.Sampled(forced));
}

TEST(TailsamplingPolicyTest, SpanCountIsInclusive) {
  Decider d(OnePolicy("{ name: c, type: span_count, span_count: { min_spans: 2, max_spans: 3 } }"));
  Decider open(OnePolicy("{ name: c, type: span_count, span_count: { min_spans: 2 } }"));
  auto trace_of = [](int spans) {
    TraceBuilder t;
    for (int i = 0; i < spans; ++i) t.Span(0, 1);
    return t;
  };
  EXPECT_FALSE(d.Sampled(trace_of(1)));
  EXPECT_TRUE(d.Sampled(trace_of(2)));
  EXPECT_TRUE(d.Sampled(trace_of(3)));
  EXPECT_FALSE(d.Sampled(trace_of(4)));
  EXPECT_TRUE(open.Sampled(trace_of(400)));
}

TEST(TailsamplingPolicyTest, TraceStateMemberValue) {
  Decider d(OnePolicy("{ name: t, type: trace_state, trace_state: { key: vendor, values: [keep, yes] } }"));
  auto trace_with = [](const std::string& state) {
    TraceBuilder t;
    t.Span(0, 1).set_trace_state(state);
    return t;
  };
  EXPECT_TRUE(d.Sampled(trace_with("vendor=keep")));
  EXPECT_TRUE(d.Sampled(trace_with("other=1, vendor=yes ,x=2")));
  EXPECT_FALSE(d.Sampled(trace_with("vendor=drop")));
  EXPECT_FALSE(d.Sampled(trace_with("vendorx=keep")));
  EXPECT_FALSE(d.Sampled(trace_with("vendor=keep,broken")));  // invalid trace state matches nothing
  EXPECT_FALSE(d.Sampled(trace_with("")));
}

TEST(TailsamplingPolicyTest, RateLimitingIsATokenBucketOfTwoSeconds) {
  Decider d(OnePolicy("{ name: r, type: rate_limiting, rate_limiting: { spans_per_second: 10 } }"));
  auto trace_of = [](int spans) {
    TraceBuilder t;
    for (int i = 0; i < spans; ++i) t.Span(0, 1);
    return t;
  };
  EXPECT_TRUE(d.Sampled(trace_of(15)));   // the bucket starts full: 20 spans
  EXPECT_FALSE(d.Sampled(trace_of(6)));   // 5 left
  EXPECT_TRUE(d.Sampled(trace_of(5)));    // a refusal took nothing
  EXPECT_FALSE(d.Sampled(trace_of(1)));
  d.env.AdvanceClock(std::chrono::milliseconds(500));  // +5
  EXPECT_TRUE(d.Sampled(trace_of(5)));
  d.env.AdvanceClock(std::chrono::seconds(10));  // refills to the burst, no further
  EXPECT_FALSE(d.Sampled(trace_of(21)));  // more than the bucket holds: never
  EXPECT_TRUE(d.Sampled(trace_of(20)));
}

TEST(TailsamplingPolicyTest, ProbabilisticThresholdIsTheCollectorsArithmetic) {
  // floor(x * (2^64 - 1)) with the product rounded to 64 bits, computed with exact fractions.
  EXPECT_EQ(detail::ProbabilityThreshold(5.0 / 100), 922337203685477631ull);
  EXPECT_EQ(detail::ProbabilityThreshold(0.1), 1844674407370955263ull);
  EXPECT_EQ(detail::ProbabilityThreshold(0.333), 6142765776545281023ull);
  EXPECT_EQ(detail::ProbabilityThreshold(0.5), 9223372036854775807ull);
  EXPECT_EQ(detail::ProbabilityThreshold(0.001), 18446744073709551ull);
  EXPECT_EQ(detail::ProbabilityThreshold(1e-9), 18446744073ull);
  EXPECT_EQ(detail::ProbabilityThreshold(0.999999), 18446725626965477375ull);
  EXPECT_EQ(detail::ProbabilityThreshold(1.0), UINT64_MAX);
  EXPECT_EQ(detail::ProbabilityThreshold(0), 0u);
  // FNV-1a 64 over the salt then the 16 ID bytes, values from an independent implementation.
  TraceId zero, counting;
  for (int i = 0; i < 16; ++i) counting.bytes[i] = uint8_t(i + 1);
  EXPECT_EQ(detail::HashTraceId(detail::kDefaultHashSalt, zero), 0xe19536eed1bbac3dull);
  EXPECT_EQ(detail::HashTraceId(detail::kDefaultHashSalt, counting), 0xdbcf64d5420f4cadull);
}

TEST(TailsamplingPolicyTest, ProbabilisticRateAndIdenticalDecisionsAcrossInstances) {
  const std::string yaml = OnePolicy("{ name: p, type: probabilistic, probabilistic: { sampling_percentage: 5 } }");
  Decider first(yaml), second(yaml);
  Decider salted(OnePolicy(
      "{ name: p, type: probabilistic, probabilistic: { sampling_percentage: 5, hash_salt: other-layer } }"));
  std::mt19937_64 random(20261129);
  TraceSummary summary;
  summary.span_count = 1;
  int sampled = 0, salted_sampled = 0, both = 0;
  constexpr int kTraces = 100'000;
  for (int i = 0; i < kTraces; ++i) {
    TraceId id;
    for (auto& b : id.bytes) b = uint8_t(random());
    bool a = first.engine.Decide(id, summary).sampled;
    EXPECT_EQ(a, second.engine.Decide(id, summary).sampled);
    bool s = salted.engine.Decide(id, summary).sampled;
    sampled += a;
    salted_sampled += s;
    both += a && s;
  }
  // 5 % of 100 000 is 5000 with a standard deviation of 69: within 5 deviations.
  EXPECT_NEAR(sampled, 5000, 345);
  EXPECT_NEAR(salted_sampled, 5000, 345);
  // Another salt picks an independent 5 %: about 0.25 % in both, not 5 %.
  EXPECT_NEAR(both, 250, 80);
}

TEST(TailsamplingPolicyTest, ZeroAndHundredPercent) {
  Decider none(OnePolicy("{ name: p, type: probabilistic, probabilistic: { sampling_percentage: 0 } }"));
  Decider all(OnePolicy("{ name: p, type: probabilistic, probabilistic: { sampling_percentage: 100 } }"));
  for (uint64_t n = 1; n < 200; ++n) {
    TraceBuilder t(n);
    t.Span(0, 1);
    EXPECT_FALSE(none.Sampled(t));
    EXPECT_TRUE(all.Sampled(t));
  }
}

TEST(TailsamplingPolicyTest, ObserveSpanAgreesWithObserveRequest) {
  PolicySet policies = testing::MustParse(R"(tail_sampling:
  policies:
    - { name: e, type: status_code, status_code: { status_codes: [ERROR] } }
    - { name: s, type: string_attribute, string_attribute: { key: tier, values: [gold] } }
    - { name: t, type: trace_state, trace_state: { key: k, values: [v] } }
    - { name: n, type: numeric_attribute, numeric_attribute: { key: size, min_value: 10 } }
)");
  TraceBuilder trace;
  testing::Put(trace.Span(0, 10).mutable_attributes(), "tier", "gold");
  trace.Span(5, 30, 2).set_trace_state("k=v");
  testing::PutInt(trace.Resource("other").mutable_attributes(), "size", 11);
  trace.Span(2, 3);
  TraceSummary by_request = testing::Summarize(policies, trace.request());
  TraceSummary by_span;
  for (const auto& resource_spans : trace.request().resource_spans()) {
    uint64_t resource_bits = policies.matcher().MatchResource(resource_spans.resource().SerializeAsString());
    for (const auto& scope : resource_spans.scope_spans())
      for (const auto& span : scope.spans())
        policies.matcher().ObserveSpan(span.SerializeAsString(), resource_bits, by_span);
  }
  EXPECT_EQ(by_request.matched, 0b1111u);
  EXPECT_EQ(by_span.matched, by_request.matched);
  EXPECT_EQ(by_span.span_count, 3u);
  EXPECT_EQ(by_span.earliest_start_unix_nano, by_request.earliest_start_unix_nano);
  EXPECT_EQ(by_span.latest_end_unix_nano, TraceBuilder::kBaseNanos + 30'000'000);
  EXPECT_TRUE(by_span.has_root);
  EXPECT_TRUE(by_request.has_root);
}

TEST(TailsamplingPolicyTest, SummariesOfPartsMergeIntoTheSummaryOfTheWhole) {
  PolicySet policies = testing::MustParse(R"(tail_sampling:
  policies:
    - { name: e, type: status_code, status_code: { status_codes: [ERROR] } }
    - { name: s, type: string_attribute, string_attribute: { key: tier, values: [gold] } }
)");
  TraceBuilder whole(9), first(9), second(9);
  for (TraceBuilder* t : {&whole, &first}) testing::Put(t->Span(100, 200).mutable_attributes(), "tier", "gold");
  for (TraceBuilder* t : {&whole, &second}) {
    t->Span(50, 120, 2);
    t->Span(150, 900);
  }
  TraceSummary merged = testing::Summarize(policies, first.request());
  merged.Merge(testing::Summarize(policies, second.request()));
  TraceSummary expected = testing::Summarize(policies, whole.request());
  EXPECT_EQ(merged.matched, expected.matched);
  EXPECT_EQ(merged.matched, 0b11u);
  EXPECT_EQ(merged.span_count, 3u);
  EXPECT_EQ(merged.earliest_start_unix_nano, expected.earliest_start_unix_nano);
  EXPECT_EQ(merged.latest_end_unix_nano, expected.latest_end_unix_nano);
  EXPECT_EQ(merged.latest_end_unix_nano - merged.earliest_start_unix_nano, 850'000'000u);
  EXPECT_TRUE(merged.has_root);
}

}  // namespace
}  // namespace tracery::sampling
