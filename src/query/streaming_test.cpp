// The streaming API's parts that have logic of their own: the search progress it streams
// (only settled traces, jobs counted, stopping when told) and the diffs and size limits of
// its messages. End to end (gRPC over the query port): tests/e2e/streaming.test.mjs; telling
// HTTP/2 connections from HTTP/1.1: common/http_server_test.cpp.
#include "query/streaming.h"

#include <gtest/gtest.h>

#include "common/fault_env.h"
#include "ingester/ingester_for_tests.h"
#include "query/streaming_messages.h"

namespace tracery::query {
namespace {

using ingester::testing::Node;
using ingester::testing::Request;
using ingester::testing::TestOptions;

constexpr uint64_t kBase = 1'700'000'000'000'000'000ull;

// Trace `t` (one root span of service "api") starts t seconds after kBase.
Request Traces(int first, int last) {
  Request request;
  for (int t = first; t <= last; ++t) {
    auto* rs = request.add_resource_spans();
    auto* kv = rs->mutable_resource()->add_attributes();
    kv->set_key("service.name");
    kv->mutable_value()->set_string_value("api");
    auto* span = rs->add_scope_spans()->add_spans();
    std::string trace_id(16, '\0'), span_id(8, '\1');
    trace_id[15] = char(t);
    span_id[7] = char(t);
    span->set_trace_id(trace_id);
    span->set_span_id(span_id);
    span->set_name("op");
    span->set_start_time_unix_nano(kBase + uint64_t(t) * 1'000'000'000);
    span->set_end_time_unix_nano(span->start_time_unix_nano() + 1'000'000);
  }
  return request;
}

class StreamingSearchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = std::make_unique<Node>(env_, TestOptions());
    ASSERT_TRUE(node_->Open().ok());
    // A stopped pool takes no work: every job runs on the caller, which reports after each.
    caller_only_.Stop();
    searcher_ = std::make_unique<Searcher>(node_->blocks(), node_->ingester(), node_->reader(), caller_only_,
                                           SearchOptions{});
    // Five blocks of 20 traces, then 20 live ones: the newest are live, the oldest in block 1.
    for (int block = 0; block < 6; ++block) {
      ASSERT_TRUE(node_->Push("t", Traces(block * 20 + 1, block * 20 + 20)).status.ok());
      if (block < 5) {
        ASSERT_TRUE(node_->ingester().FlushAll().ok());
      }
    }
  }

  FaultInjectionEnv env_;
  ThreadPool caller_only_{1};
  std::unique_ptr<Node> node_;
  std::unique_ptr<Searcher> searcher_;
};

TEST_F(StreamingSearchTest, ProgressHoldsOnlyTracesTheFinalAnswerKeeps) {
  for (uint32_t limit : {5u, 30u, 1000u}) {
    SearchRequest request;
    request.tenant = "t";
    request.query = *traceql::Parse("{ } with(most_recent=true)");
    request.limit = limit;
    std::vector<SearchResult> snapshots;
    auto result = searcher_->Search(request, [&](const SearchResult& so_far) {
      snapshots.push_back(so_far);
      return true;
    });
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_EQ(result->traces.size(), std::min<size_t>(limit, 120));
    EXPECT_EQ(result->stats.completed_jobs, result->stats.total_jobs);
    ASSERT_GE(snapshots.size(), 2u) << "limit " << limit;
    uint32_t completed = 0;
    size_t settled = 0;
    for (const SearchResult& snapshot : snapshots) {
      EXPECT_EQ(snapshot.stats.total_jobs, result->stats.total_jobs);
      EXPECT_EQ(snapshot.stats.total_blocks, 5u);
      EXPECT_GE(snapshot.stats.completed_jobs, completed);
      EXPECT_LE(snapshot.stats.completed_jobs, snapshot.stats.total_jobs);
      completed = snapshot.stats.completed_jobs;
      // A prefix of the final answer, growing.
      ASSERT_LE(snapshot.traces.size(), result->traces.size());
      for (size_t i = 0; i < snapshot.traces.size(); ++i) EXPECT_EQ(snapshot.traces[i].id, result->traces[i].id);
      EXPECT_GE(snapshot.traces.size(), settled);
      settled = snapshot.traces.size();
    }
    // The newest traces are live and scanned first: settled before the scan ends.
    EXPECT_GT(snapshots.front().traces.size(), 0u) << "limit " << limit;
  }
}

TEST_F(StreamingSearchTest, WithMostRecentFalseEveryTraceSentIsInTheAnswer) {
  for (uint32_t limit : {5u, 30u, 1000u}) {
    SearchRequest request;
    request.tenant = "t";
    request.query = *traceql::Parse("{ } with(most_recent=false)");
    request.limit = limit;
    std::vector<SearchResult> snapshots;
    auto result = searcher_->Search(request, [&](const SearchResult& so_far) {
      snapshots.push_back(so_far);
      return true;
    });
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    ASSERT_EQ(result->traces.size(), std::min<size_t>(limit, 120));
    EXPECT_FALSE(result->partial);
    // The first `limit` found end the scan: the newest (live) job alone holds 20.
    if (limit < 20) {
      EXPECT_LT(result->stats.completed_jobs, result->stats.total_jobs);
    }
    size_t sent = 0;
    for (const SearchResult& snapshot : snapshots) {
      EXPECT_GE(snapshot.traces.size(), sent);
      sent = snapshot.traces.size();
      for (const FoundTrace& trace : snapshot.traces)
        EXPECT_TRUE(std::any_of(result->traces.begin(), result->traces.end(),
                                [&](const FoundTrace& kept) { return kept.id == trace.id; }))
            << "limit " << limit;
    }
  }
}

TEST_F(StreamingSearchTest, ProgressIsThrottled) {
  SearchRequest request;
  request.tenant = "t";
  request.query = *traceql::Parse("{ }");
  int calls = 0;
  auto result = searcher_->Search(
      request, [&](const SearchResult&) { return ++calls > 0; }, std::chrono::hours(1));
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(calls, 0);  // the first interval had not passed when the scan ended
}

TEST_F(StreamingSearchTest, ProgressThatSaysStopEndsTheScan) {
  SearchRequest request;
  request.tenant = "t";
  request.query = *traceql::Parse("{ }");
  request.limit = 1000;
  int calls = 0;
  auto result = searcher_->Search(request, [&](const SearchResult&) { return ++calls < 2; });
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(calls, 2);
  EXPECT_TRUE(result->partial);
  EXPECT_LT(result->stats.completed_jobs, result->stats.total_jobs);
}

FoundTrace Trace(int number, size_t attribute_bytes = 10) {
  FoundTrace trace;
  trace.id.bytes[15] = uint8_t(number);
  trace.has_root = true;
  trace.root_service_name = "api";
  trace.start_unix_nano = kBase + uint64_t(number);
  FoundSpanset& set = trace.spansets.emplace_back();
  set.matched = 1;
  FoundSpan& span = set.spans.emplace_back();
  span.span_id = std::string(8, char(number));
  otlp::KeyValue kv;
  kv.key = "payload";
  kv.value.type = otlp::AnyValue::Type::kString;
  kv.value.string_value = std::string(attribute_bytes, 'x');
  span.attributes.push_back(kv);
  return trace;
}

TEST(SearchDifferTest, SendsEachTraceOnceAndAgainOnlyWhenItChanged) {
  SearchDiffer differ(1 << 20);
  SearchResult so_far;
  so_far.stats.total_jobs = 4;
  so_far.stats.completed_jobs = 1;
  so_far.traces = {Trace(3), Trace(2)};
  auto first = differ.Next(so_far, false);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].traces_size(), 2);
  EXPECT_EQ(first[0].traces(0).traceid(), "3");
  EXPECT_EQ(first[0].traces(0).spansets(0).spans(0).spanid(), "0303030303030303");
  EXPECT_EQ(first[0].metrics().completedjobs(), 1u);

  EXPECT_TRUE(differ.Next(so_far, false).empty()) << "nothing new, metrics unchanged";
  so_far.stats.completed_jobs = 2;
  auto progress = differ.Next(so_far, false);
  ASSERT_EQ(progress.size(), 1u) << "metrics alone when they moved";
  EXPECT_EQ(progress[0].traces_size(), 0);
  EXPECT_EQ(progress[0].metrics().completedjobs(), 2u);

  so_far.traces.push_back(Trace(1));
  so_far.traces[0].spansets[0].matched = 7;  // trace 3 changed
  so_far.stats.completed_jobs = 4;
  auto last = differ.Next(so_far, true);
  ASSERT_EQ(last.size(), 1u);
  ASSERT_EQ(last[0].traces_size(), 2);
  EXPECT_EQ(last[0].traces(0).traceid(), "3");
  EXPECT_EQ(last[0].traces(0).spansets(0).matched(), 7u);
  EXPECT_EQ(last[0].traces(1).traceid(), "1");
  EXPECT_EQ(last[0].metrics().completedjobs(), 4u);

  auto final_again = differ.Next(so_far, true);
  ASSERT_EQ(final_again.size(), 1u) << "the final answer always sends its metrics";
  EXPECT_EQ(final_again[0].traces_size(), 0);
}

TEST(SearchDifferTest, SplitsMessagesAtTheSizeLimit) {
  const size_t max_bytes = 4096;
  SearchDiffer differ(max_bytes);
  SearchResult answer;
  for (int t = 1; t <= 40; ++t) answer.traces.push_back(Trace(t, 300));
  answer.traces.push_back(Trace(41, 10000));  // larger than a message on its own
  answer.stats.total_jobs = answer.stats.completed_jobs = 3;
  auto messages = differ.Next(answer, true);
  ASSERT_GT(messages.size(), 3u);
  std::set<std::string> sent;
  for (const auto& message : messages) {
    EXPECT_EQ(message.metrics().totaljobs(), 3u) << "every message carries the metrics";
    if (message.traces_size() > 1) {
      EXPECT_LE(message.ByteSizeLong(), max_bytes);
    }
    for (const auto& trace : message.traces()) EXPECT_TRUE(sent.insert(trace.traceid()).second);
  }
  EXPECT_EQ(sent.size(), 41u);
}

TEST(MetricsMessagesTest, SeriesSplitAtTheLimitAndTheLastMessageSaysHowItEnded) {
  MetricsAnswer answer;
  for (int s = 0; s < 50; ++s) {
    traceql::MetricsSeries& series = answer.series.emplace_back();
    otlp::KeyValue label;
    label.key = "resource.service.name";
    label.value.type = otlp::AnyValue::Type::kString;
    label.value.string_value = "service-" + std::to_string(s);
    series.labels.push_back(label);
    for (int i = 0; i < 20; ++i) series.samples.push_back({int64_t(1000 * i), double(i)});
  }
  answer.stats.total_jobs = 2;
  answer.partial = true;
  answer.message = "series limit reached";
  auto messages = QueryRangeMessages(answer, 2048);
  ASSERT_GT(messages.size(), 1u);
  int series = 0;
  for (size_t i = 0; i < messages.size(); ++i) {
    EXPECT_LE(messages[i].ByteSizeLong(), 2048u);
    series += messages[i].series_size();
    EXPECT_EQ(messages[i].has_metrics(), i + 1 == messages.size());
  }
  EXPECT_EQ(series, 50);
  EXPECT_EQ(messages.back().status(), tempopb::PARTIAL);
  EXPECT_EQ(messages.back().message(), "series limit reached");
  EXPECT_EQ(messages.front().series(0).samples(3).timestamp_ms(), 3000);

  auto instant = QueryInstantMessages(answer, 1 << 20);
  ASSERT_EQ(instant.size(), 1u);
  ASSERT_EQ(instant[0].series_size(), 50);
  EXPECT_EQ(instant[0].series(0).value(), 19.0);  // the one bucket's value
}

}  // namespace
}  // namespace tracery::query
