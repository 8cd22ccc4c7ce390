// Unit tests of the Collector's decision rules as tracery implements them: drop and inverted
// verdicts over sampled ones, `and`, `drop`, and the composite's per-second allocations; and the
// seed's three policies together.
#include <gtest/gtest.h>

#include "sampling/sampling_for_tests.h"

namespace tracery::sampling {
namespace {

using testing::Decider;
using testing::TraceBuilder;

TraceBuilder TraceWith(const std::string& key, const std::string& value, int spans = 1, uint64_t number = 1) {
  TraceBuilder t(number);
  for (int i = 0; i < spans; ++i) testing::Put(t.Span(0, 1).mutable_attributes(), key, value);
  return t;
}

TEST(TailsamplingRulesTest, DropWinsOverEverySampledVerdict) {
  Decider d(R"(tail_sampling:
  policies:
    - { name: all, type: always_sample }
    - name: no-health
      type: drop
      drop:
        drop_sub_policy:
          - { name: health, type: string_attribute, string_attribute: { key: url.path, values: [/health] } }
)");
  TraceDecision health = d.Decide(TraceWith("url.path", "/health"));
  EXPECT_FALSE(health.sampled);
  EXPECT_EQ(health.policy, 1);
  EXPECT_EQ(health.policy_name, "no-health");
  TraceDecision other = d.Decide(TraceWith("url.path", "/checkout"));
  EXPECT_TRUE(other.sampled);
  EXPECT_EQ(other.policy_name, "all");
}

TEST(TailsamplingRulesTest, DropNeedsEveryOneOfItsSubPolicies) {
  Decider d(R"(tail_sampling:
  policies:
    - { name: all, type: always_sample }
    - name: drop-short-health
      type: drop
      drop:
        drop_sub_policy:
          - { name: health, type: string_attribute, string_attribute: { key: url.path, values: [/health] } }
          - { name: one-span, type: span_count, span_count: { min_spans: 1, max_spans: 1 } }
)");
  EXPECT_FALSE(d.Sampled(TraceWith("url.path", "/health", 1)));
  EXPECT_TRUE(d.Sampled(TraceWith("url.path", "/health", 2)));
}

TEST(TailsamplingRulesTest, InvertedNotSampledWinsOverSampled) {
  Decider d(R"(tail_sampling:
  policies:
    - { name: all, type: always_sample }
    - { name: not-acme, type: string_attribute, string_attribute: { key: org, values: [acme], invert_match: true } }
)");
  TraceDecision acme = d.Decide(TraceWith("org", "acme"));
  EXPECT_FALSE(acme.sampled);
  EXPECT_EQ(acme.policy_name, "not-acme");
  TraceDecision globex = d.Decide(TraceWith("org", "globex"));
  EXPECT_TRUE(globex.sampled);
  EXPECT_EQ(globex.policy_name, "all");  // a plain "sampled" settles it before the inverted one
}

TEST(TailsamplingRulesTest, InvertedSampledNeedsNoPlainNotSampled) {
  const std::string inverted =
      "    - { name: not-acme, type: string_attribute, string_attribute: { key: org, values: [acme], invert_match: "
      "true } }\n";
  Decider alone("tail_sampling:\n  policies:\n" + inverted);
  Decider with_no("tail_sampling:\n  policies:\n" + inverted +
                  "    - { name: never, type: probabilistic, probabilistic: { sampling_percentage: 0 } }\n");
  Decider with_yes("tail_sampling:\n  policies:\n" + inverted +
                   "    - { name: errors, type: status_code, status_code: { status_codes: [UNSET] } }\n");
  TraceBuilder globex = TraceWith("org", "globex");
  TraceDecision decision = alone.Decide(globex);
  EXPECT_TRUE(decision.sampled);
  EXPECT_EQ(decision.policy_name, "not-acme");
  EXPECT_FALSE(with_no.Sampled(globex));  // the probabilistic "not sampled" vetoes it
  decision = with_yes.Decide(globex);
  EXPECT_TRUE(decision.sampled);
  EXPECT_EQ(decision.policy_name, "errors");
}

TEST(TailsamplingRulesTest, AndNeedsAllAndTurnsInvertedVerdictsPlain) {
  // The Collector README's rule 1: sample all traces of services not yet on tail sampling.
  Decider d(R"(tail_sampling:
  policies:
    - name: not-migrated
      type: and
      and:
        and_sub_policy:
          - name: services-using-tail-sampling
            type: string_attribute
            string_attribute: { key: service.name, values: [checkout, payments], invert_match: true }
          - { name: sample-all, type: always_sample }
    - { name: errors, type: status_code, status_code: { status_codes: [ERROR] } }
)");
  std::vector<Verdict> verdicts(2);
  auto decide = [&](const TraceBuilder& t) {
    return d.engine.Decide(t.id(), testing::Summarize(d.engine.policies(), t.request()), verdicts);
  };
  TraceBuilder legacy, migrated, migrated_error;
  legacy.Resource("legacy-billing");
  legacy.Span(0, 1);
  migrated.Resource("checkout");
  migrated.Span(0, 1);
  migrated_error.Resource("checkout");
  migrated_error.Span(0, 1, 2);
  EXPECT_TRUE(decide(legacy).sampled);
  EXPECT_EQ(verdicts[0], Verdict::kSampled);  // not kInvertSampled: `and` gives plain verdicts
  EXPECT_FALSE(decide(migrated).sampled);
  EXPECT_EQ(verdicts[0], Verdict::kNotSampled);  // not kInvertNotSampled, so it vetoes nothing
  TraceDecision decision = decide(migrated_error);
  EXPECT_TRUE(decision.sampled);
  EXPECT_EQ(decision.policy_name, "errors");
}

const char* kComposite = R"(tail_sampling:
  policies:
    - name: budget
      type: composite
      composite:
        max_total_spans_per_second: 100
        policy_order: [important, everything-else, unlisted]
        composite_sub_policy:
          - { name: everything-else, type: always_sample }
          - { name: important, type: string_attribute, string_attribute: { key: tier, values: [gold] } }
          - { name: unlisted, type: always_sample }
        rate_allocation:
          - { policy: important, percent: 50 }
          - { policy: everything-else, percent: 25 }
)";

TEST(TailsamplingRulesTest, CompositeAllocatesSpansPerSecondInPolicyOrder) {
  Decider d(kComposite);
  // `important` first (policy_order), 50 spans per second: five traces of 10 spans.
  for (int i = 0; i < 5; ++i) {
    TraceDecision decision = d.Decide(TraceWith("tier", "gold", 10, i + 1));
    EXPECT_TRUE(decision.sampled) << i;
    EXPECT_EQ(decision.policy_name, "budget");
    EXPECT_EQ(decision.composite_sub_policy, "important");
  }
  // Over its allocation the first sub-policy that samples still decides: not sampled, even
  // though `everything-else` has room.
  EXPECT_FALSE(d.Sampled(TraceWith("tier", "gold", 10, 6)));
  // Others go to `everything-else`: 25 spans per second.
  TraceDecision decision = d.Decide(TraceWith("tier", "bronze", 10, 7));
  EXPECT_TRUE(decision.sampled);
  EXPECT_EQ(decision.composite_sub_policy, "everything-else");
  EXPECT_TRUE(d.Sampled(TraceWith("tier", "bronze", 10, 8)));
  EXPECT_FALSE(d.Sampled(TraceWith("tier", "bronze", 10, 9)));
  EXPECT_TRUE(d.Sampled(TraceWith("tier", "bronze", 5, 10)));  // a smaller trace still fits
  // A new second starts every count again.
  d.env.AdvanceClock(std::chrono::seconds(1));
  EXPECT_TRUE(d.Sampled(TraceWith("tier", "gold", 10, 11)));
  EXPECT_TRUE(d.Sampled(TraceWith("tier", "bronze", 20, 12)));
}

TEST(TailsamplingRulesTest, CompositeSubPolicyWithoutAllocationGetsNothing) {
  // As in the Collector: only sub-policies named in rate_allocation get spans per second; a
  // percent of 0 gets an equal share of the total.
  Decider unlisted(R"(tail_sampling:
  policies:
    - name: c
      type: composite
      composite:
        max_total_spans_per_second: 90
        composite_sub_policy: [ { name: a, type: always_sample } ]
)");
  EXPECT_FALSE(unlisted.Sampled(TraceWith("k", "v")));
  Decider equal(R"(tail_sampling:
  policies:
    - name: c
      type: composite
      composite:
        max_total_spans_per_second: 90
        composite_sub_policy: [ { name: a, type: always_sample }, { name: b, type: always_sample },
                                { name: c, type: always_sample } ]
        rate_allocation: [ { policy: a, percent: 0 } ]
)");
  EXPECT_TRUE(equal.Sampled(TraceWith("k", "v", 30)));
  EXPECT_FALSE(equal.Sampled(TraceWith("k", "v", 1)));
}

TEST(TailsamplingRulesTest, TheSeedKeepsErrorsSlowTracesAndABaseline) {
  Decider d(R"(tail_sampling:
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
)");
  int baseline = 0;
  constexpr int kTraces = 4000;
  for (int i = 0; i < kTraces; ++i) {
    TraceBuilder error(3 * i + 1), slow(3 * i + 2), plain(3 * i + 3);
    error.Span(0, 10);
    error.Span(1, 2, 2);
    slow.Span(0, 900);
    plain.Span(0, 20);
    plain.Span(5, 15, 1);
    TraceDecision e = d.Decide(error), s = d.Decide(slow), p = d.Decide(plain);
    EXPECT_TRUE(e.sampled);
    EXPECT_EQ(e.policy_name, "errors");
    EXPECT_TRUE(s.sampled);
    EXPECT_EQ(s.policy_name, "slow");
    if (p.sampled) {
      EXPECT_EQ(p.policy_name, "baseline");
      ++baseline;
    }
  }
  EXPECT_NEAR(baseline, kTraces * 5 / 100, 5 * 14);  // sd of 200 out of 4000 is 13.8
}

}  // namespace
}  // namespace tracery::sampling
