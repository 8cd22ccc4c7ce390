// Tail sampling inside the ingester, on a manual clock: the seed's policies keep every error
// and slow trace and about 5 % of the rest, whole; late spans follow their trace's decision;
// decisions and pins survive a restart; a flood of trace IDs is decided early and memory stays
// bounded; kept traces are cut into the block of their retention tier.
#include <gtest/gtest.h>

#include <future>
#include <set>

#include "common/fault_env.h"
#include "ingester/ingester_for_tests.h"
#include "sampling/sampling_for_tests.h"
#include "storage/tiers.h"

namespace tracery::ingester {
namespace {

using sampling::testing::MustParse;
using sampling::testing::TraceBuilder;
using testing::Node;
using testing::Request;

constexpr const char* kSeedPolicies = R"(
tail_sampling:
  decision_wait: 10s
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

constexpr int64_t kStart = 1'800'000'000'000'000'000;

Options SamplingOptions(const std::string& yaml = kSeedPolicies) {
  Options options = testing::TestOptions();
  options.sampling.policies = MustParse(yaml);
  options.sampling.quiet_period = std::chrono::seconds(2);
  options.slow_threshold = std::chrono::milliseconds(500);
  return options;
}

enum class Kind { kNormal, kError, kSlow };

// Trace n: a root and three children, 100 ms long (an error on a child, or 800 ms long).
TraceBuilder MakeTrace(uint64_t n, Kind kind, bool with_root = true) {
  TraceBuilder trace(n);
  uint64_t end = kind == Kind::kSlow ? 800 : 100;
  if (with_root) trace.Span(0, end);
  for (int i = 0; i < 3; ++i) trace.Span(10 + i, 20 + i, kind == Kind::kError && i == 1 ? 2 : 0).set_parent_span_id(std::string(7, '\0') + "\x01");
  return trace;
}

// A request holding the children only, or only the root, of trace n.
Request Part(const TraceBuilder& trace, bool root) {
  Request part = trace.request();
  for (auto& rs : *part.mutable_resource_spans())
    for (auto& ss : *rs.mutable_scope_spans()) {
      auto* spans = ss.mutable_spans();
      for (int i = spans->size() - 1; i >= 0; --i)
        if (spans->Get(i).parent_span_id().empty() != root) spans->DeleteSubrange(i, 1);
    }
  return part;
}

PushOutcome PushSplit(Node& node, const std::string& tenant, const Request& request, std::vector<bool>* sampled_out = nullptr) {
  std::string bytes = request.SerializeAsString();
  otlp::SplitRequest split;
  EXPECT_TRUE(otlp::SplitByTrace(bytes, split).ok());
  std::promise<PushOutcome> promise;
  auto future = promise.get_future();
  node.ingester().Push(tenant, split, [&promise](PushOutcome outcome) { promise.set_value(std::move(outcome)); }, sampled_out);
  return future.get();
}

size_t SpanCount(Node& node, const TraceId& id) {
  auto spans = node.SpansOf("t", id);
  EXPECT_TRUE(spans.ok());
  return spans.ok() ? spans->size() : 0;
}

uint64_t CounterValue(Node& node, const std::string& name, const Labels& labels = {}) {
  return node.metrics().GetCounter(name, "", labels).Value();
}

std::map<std::string, uint64_t> TracesByTier(Node& node) {
  std::map<std::string, uint64_t> out;
  for (const auto& block : node.blocks().Blocks("t")) out[block->meta().tier] += block->meta().trace_count;
  return out;
}

TEST(IngesterSamplingTest, SeedPoliciesKeepErrorsSlowAndAFewPercentWholeInTheirTiers) {
  FaultInjectionEnv env;
  env.UseManualClock(kStart);
  Node node(env, SamplingOptions());
  ASSERT_TRUE(node.Open().ok());
  const int kTraces = 4000;
  std::vector<Kind> kinds(kTraces);
  for (int n = 0; n < kTraces; ++n) {
    kinds[n] = n % 10 == 3 ? Kind::kError : n % 10 == 7 ? Kind::kSlow : Kind::kNormal;
    // Every trace in two requests: children first, the root later, as SDKs export them.
    ASSERT_TRUE(PushSplit(node, "t", Part(MakeTrace(n, kinds[n]), false)).status.ok());
  }
  for (int n = 0; n < kTraces; ++n) ASSERT_TRUE(PushSplit(node, "t", Part(MakeTrace(n, kinds[n]), true)).status.ok());
  node.ingester().RunSweep();
  EXPECT_EQ(CounterValue(node, "tracery_sampler_traces_total", {{"decision", "kept"}}), 0u) << "nothing is due yet";
  env.AdvanceClock(std::chrono::seconds(3));  // past the quiet period: roots are there
  node.ingester().RunSweep();
  ASSERT_TRUE(node.ingester().FlushAll().ok());
  EXPECT_EQ(node.ingester().GetTotals().live_traces, 0u);

  int kept_normal = 0, normal = 0;
  for (int n = 0; n < kTraces; ++n) {
    size_t spans = SpanCount(node, TraceBuilder(n).id());
    if (kinds[n] != Kind::kNormal) {
      ASSERT_EQ(spans, 4u) << "every error and slow trace is kept whole: " << n;
      continue;
    }
    ASSERT_TRUE(spans == 0 || spans == 4) << "no partial traces: " << n << " has " << spans;
    normal++;
    kept_normal += spans == 4;
  }
  // 5 % of 2 800, with a binomial standard deviation of about 11.5: within 4.5 sigma.
  double expected = normal * 0.05;
  EXPECT_NEAR(kept_normal, expected, 52) << kept_normal << " of " << normal;
  auto tiers = TracesByTier(node);
  EXPECT_EQ(tiers[std::string(storage::kTierError)], uint64_t(kTraces / 10));
  EXPECT_EQ(tiers[std::string(storage::kTierSlow)], uint64_t(kTraces / 10));
  EXPECT_EQ(tiers[std::string(storage::kTierBaseline)], uint64_t(kept_normal));
  EXPECT_EQ(CounterValue(node, "tracery_sampler_policy_traces_total", {{"policy", "errors"}, {"sampled", "true"}}),
            uint64_t(kTraces / 10));
  EXPECT_EQ(CounterValue(node, "tracery_sampler_traces_total", {{"decision", "dropped"}}), uint64_t(normal - kept_normal));
}

TEST(IngesterSamplingTest, DecidedAtDecisionWaitOrAfterTheQuietPeriodOnceTheRootCame) {
  FaultInjectionEnv env;
  env.UseManualClock(kStart);
  Node node(env, SamplingOptions());
  ASSERT_TRUE(node.Open().ok());
  TraceBuilder rooted = MakeTrace(1, Kind::kError), rootless = MakeTrace(2, Kind::kError, false);
  ASSERT_TRUE(PushSplit(node, "t", rooted.request()).status.ok());
  ASSERT_TRUE(PushSplit(node, "t", rootless.request()).status.ok());
  auto kept = [&] { return CounterValue(node, "tracery_sampler_traces_total", {{"decision", "kept"}}); };
  env.AdvanceClock(std::chrono::milliseconds(1900));
  node.ingester().RunSweep();
  EXPECT_EQ(kept(), 0u);
  env.AdvanceClock(std::chrono::milliseconds(200));
  node.ingester().RunSweep();
  EXPECT_EQ(kept(), 1u) << "the rooted trace, quiet for 2 s";
  env.AdvanceClock(std::chrono::seconds(7));
  node.ingester().RunSweep();
  EXPECT_EQ(kept(), 1u) << "the rootless one waits for decision_wait";
  env.AdvanceClock(std::chrono::seconds(1));
  node.ingester().RunSweep();
  EXPECT_EQ(kept(), 2u);
}

TEST(IngesterSamplingTest, LateSpansFollowTheDecisionAndDroppedOnesAreNotWritten) {
  FaultInjectionEnv env;
  env.UseManualClock(kStart);
  Node node(env, SamplingOptions(R"(
tail_sampling:
  decision_wait: 1s
  policies:
    - { name: errors, type: status_code, status_code: { status_codes: [ERROR] } }
)"));
  ASSERT_TRUE(node.Open().ok());
  TraceBuilder kept_trace = MakeTrace(1, Kind::kError), dropped_trace = MakeTrace(2, Kind::kNormal);
  ASSERT_TRUE(PushSplit(node, "t", kept_trace.request()).status.ok());
  ASSERT_TRUE(PushSplit(node, "t", dropped_trace.request()).status.ok());
  env.AdvanceClock(std::chrono::seconds(2));
  ASSERT_TRUE(node.ingester().FlushAll().ok());
  ASSERT_EQ(SpanCount(node, kept_trace.id()), 4u);
  ASSERT_EQ(SpanCount(node, dropped_trace.id()), 0u);

  // Late spans (new span IDs) of both; neither carries an error now.
  TraceBuilder late_kept(1), late_dropped(2);
  for (TraceBuilder* late : {&late_kept, &late_dropped})
    for (int i = 0; i < 2; ++i) late->Span(200, 210).set_span_id(std::string("late") + char('0' + i) + "xyz");
  std::vector<bool> sampled_out;
  ASSERT_TRUE(PushSplit(node, "t", late_dropped.request(), &sampled_out).status.ok()) << "acknowledged";
  ASSERT_EQ(sampled_out, std::vector<bool>{false});
  ASSERT_TRUE(PushSplit(node, "t", late_kept.request(), &sampled_out).status.ok());
  ASSERT_EQ(sampled_out, std::vector<bool>{true});
  EXPECT_EQ(node.ingester().GetTotals().live_traces, 1u) << "only the kept trace's late spans wait";
  EXPECT_EQ(CounterValue(node, "tracery_sampler_late_spans_total", {{"decision", "dropped"}}), 2u);
  env.AdvanceClock(std::chrono::seconds(2));
  ASSERT_TRUE(node.ingester().FlushAll().ok());
  EXPECT_EQ(SpanCount(node, kept_trace.id()), 6u) << "stored with its trace";
  EXPECT_EQ(SpanCount(node, dropped_trace.id()), 0u);
  EXPECT_EQ(CounterValue(node, "tracery_sampler_traces_total", {{"decision", "kept"}}), 1u) << "not decided again";
}

TEST(IngesterSamplingTest, ARestartInTheMiddleOfDecisionWaitLosesNoDecisionAndNoKeptSpan) {
  FaultInjectionEnv env;
  env.UseManualClock(kStart);
  // Rate limiting depends on earlier decisions: only the WAL's decision records make a
  // restart decide alike.
  const std::string yaml = R"(
tail_sampling:
  decision_wait: 5s
  policies:
    - { name: errors, type: status_code, status_code: { status_codes: [ERROR] } }
    - { name: some, type: rate_limiting, rate_limiting: { spans_per_second: 40 } }
)";
  Node node(env, SamplingOptions(yaml));
  ASSERT_TRUE(node.Open().ok());
  for (int n = 0; n < 60; ++n) ASSERT_TRUE(PushSplit(node, "t", MakeTrace(n, n % 6 == 0 ? Kind::kError : Kind::kNormal).request()).status.ok());
  env.AdvanceClock(std::chrono::seconds(6));
  node.ingester().RunSweep();  // decided: errors and the first 20 (80 spans: the bucket's burst)
  std::set<int> kept_before;
  for (int n = 0; n < 60; ++n)
    if (SpanCount(node, TraceBuilder(n).id()) == 4) kept_before.insert(n);
  ASSERT_GT(kept_before.size(), 10u);
  ASSERT_LT(kept_before.size(), 60u);
  // Pending ones too: pushed now, decided after the restart.
  for (int n = 100; n < 110; ++n) ASSERT_TRUE(PushSplit(node, "t", MakeTrace(n, Kind::kError).request()).status.ok());

  ASSERT_TRUE(node.Open().ok());  // restart before any block was cut
  for (int n = 0; n < 60; ++n)
    EXPECT_EQ(SpanCount(node, TraceBuilder(n).id()), kept_before.count(n) ? 4u : 0u) << "trace " << n << " after the restart";
  env.AdvanceClock(std::chrono::seconds(6));
  ASSERT_TRUE(node.ingester().FlushAll().ok());
  for (int n = 0; n < 60; ++n) EXPECT_EQ(SpanCount(node, TraceBuilder(n).id()), kept_before.count(n) ? 4u : 0u) << "trace " << n;
  for (int n = 100; n < 110; ++n) EXPECT_EQ(SpanCount(node, TraceBuilder(n).id()), 4u) << "pending across the restart: " << n;
  EXPECT_EQ(CounterValue(node, "tracery_sampler_traces_total", {{"decision", "kept"}}), 10u)
      << "after the restart only the pending traces were decided";
}

TEST(IngesterSamplingTest, AFloodOfTraceIdsIsDecidedEarlyAndMemoryStaysBounded) {
  FaultInjectionEnv env;
  env.UseManualClock(kStart);
  Node node(env, SamplingOptions(R"(
tail_sampling:
  decision_wait: 30s
  num_traces: 200
  policies:
    - { name: baseline, type: probabilistic, probabilistic: { sampling_percentage: 5 } }
)"));
  ASSERT_TRUE(node.Open().ok());
  uint64_t peak_index = 0;
  for (int round = 0; round < 10; ++round) {
    for (int n = 0; n < 1000; ++n)
      ASSERT_TRUE(PushSplit(node, "t", MakeTrace(round * 1000 + n, Kind::kNormal, false).request()).status.ok());
    env.AdvanceClock(std::chrono::milliseconds(100));
    node.ingester().RunSweep();
    peak_index = std::max(peak_index, node.ingester().GetTotals().index_bytes);
    EXPECT_LE(node.ingester().GetTotals().live_traces, 200u + 50u * (round + 1) + 40) << "round " << round;
  }
  EXPECT_GE(CounterValue(node, "tracery_sampler_early_decisions_total"), 9800u - 200u);
  // The flood's 10 000 traces would take over 1.1 MB; what stays is about 1 000 traces at
  // most 150 bytes each, and the first allocations of the 64 shards (under 8 KB each).
  EXPECT_LT(peak_index, 1000u * 150u + 64u * 8192u) << "the index holds about num_traces pending traces, not the flood";
}

TEST(IngesterSamplingTest, PinnedTracesAreKeptWhateverThePoliciesSayAndStayPinnedAcrossARestart) {
  FaultInjectionEnv env;
  env.UseManualClock(kStart);
  Node node(env, SamplingOptions(R"(
tail_sampling:
  decision_wait: 5s
  policies:
    - { name: none, type: probabilistic, probabilistic: { sampling_percentage: 0 } }
)"));
  ASSERT_TRUE(node.Open().ok());
  for (int n = 1; n <= 4; ++n) ASSERT_TRUE(PushSplit(node, "t", MakeTrace(n, Kind::kNormal).request()).status.ok());
  std::promise<Status> pinned;
  node.ingester().Pin("t", TraceBuilder(1).id(), true, [&pinned](Status status) { pinned.set_value(status); });
  ASSERT_TRUE(pinned.get_future().get().ok());
  EXPECT_TRUE(node.ingester().KeepForExemplar("t", TraceBuilder(2).id())) << "a pending trace can be an exemplar";
  node.ingester().Pin("t", TraceBuilder(3).id(), true, [](Status) {});
  std::promise<Status> unpinned;
  node.ingester().Pin("t", TraceBuilder(3).id(), false, [&unpinned](Status status) { unpinned.set_value(status); });
  ASSERT_TRUE(unpinned.get_future().get().ok());
  node.ingester().RunSweep();
  ASSERT_TRUE(node.Open().ok());  // the pins are in the WAL
  env.AdvanceClock(std::chrono::seconds(6));
  ASSERT_TRUE(node.ingester().FlushAll().ok());
  EXPECT_EQ(SpanCount(node, TraceBuilder(1).id()), 4u);
  EXPECT_EQ(SpanCount(node, TraceBuilder(3).id()), 0u) << "unpinned: the policies decide";
  EXPECT_EQ(SpanCount(node, TraceBuilder(4).id()), 0u);
  auto tiers = TracesByTier(node);
  EXPECT_GE(tiers[std::string(storage::kTierPinned)], 1u);
  EXPECT_FALSE(node.ingester().KeepForExemplar("t", TraceBuilder(4).id())) << "a dropped trace is never an exemplar";
  std::promise<Status> too_late;
  node.ingester().Pin("t", TraceBuilder(4).id(), true, [&too_late](Status status) { too_late.set_value(status); });
  Status status = too_late.get_future().get();
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_NE(status.message().find("dropped by tail sampling"), std::string::npos) << status.message();
}

}  // namespace
}  // namespace tracery::ingester
