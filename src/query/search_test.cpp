// Search over a real ingester and block list (on the in-memory POSIX model): traces judged
// whole wherever their spans lie, the exact N most recent, pruning, time ranges, budgets.
#include "query/search.h"

#include <gtest/gtest.h>

#include "common/fault_env.h"
#include "ingester/ingester_for_tests.h"
#include "query/search_json.h"

namespace tracery::query {
namespace {

using ingester::testing::Node;
using ingester::testing::Request;
using ingester::testing::TestOptions;
namespace pbt = opentelemetry::proto::trace::v1;

constexpr uint64_t kBase = 1'700'000'000'000'000'000ull;

struct SpanSpec {
  int trace;
  int span;
  int parent = -1;  // span number of the parent, -1 for a root
  std::string service = "api";
  uint64_t start_offset_ms = 0;
  uint64_t duration_ms = 10;
  bool error = false;
  int64_t http_status = 0;  // span attribute http.status when not 0
};

std::string TraceBytes(int trace) {
  std::string id(16, '\0');
  id[14] = char(trace >> 8);
  id[15] = char(trace);
  return id;
}

std::string SpanBytes(int trace, int span) {
  std::string id(8, '\x01');
  id[4] = char(trace >> 8);
  id[5] = char(trace);
  id[6] = char(span >> 8);
  id[7] = char(span);
  return id;
}

Request Build(const std::vector<SpanSpec>& spans) {
  Request request;
  for (const SpanSpec& s : spans) {
    auto* rs = request.add_resource_spans();
    auto* kv = rs->mutable_resource()->add_attributes();
    kv->set_key("service.name");
    kv->mutable_value()->set_string_value(s.service);
    pbt::Span* span = rs->add_scope_spans()->add_spans();
    span->set_trace_id(TraceBytes(s.trace));
    span->set_span_id(SpanBytes(s.trace, s.span));
    if (s.parent >= 0) span->set_parent_span_id(SpanBytes(s.trace, s.parent));
    span->set_name("op-" + std::to_string(s.span));
    span->set_start_time_unix_nano(kBase + uint64_t(s.trace) * 1'000'000'000 + s.start_offset_ms * 1'000'000);
    span->set_end_time_unix_nano(span->start_time_unix_nano() + s.duration_ms * 1'000'000);
    if (s.error) span->mutable_status()->set_code(pbt::Status::STATUS_CODE_ERROR);
    if (s.http_status) {
      auto* attribute = span->add_attributes();
      attribute->set_key("http.status");
      attribute->mutable_value()->set_int_value(s.http_status);
    }
  }
  return request;
}

class SearchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = std::make_unique<Node>(env_, TestOptions());
    ASSERT_TRUE(node_->Open().ok());
    searcher_ = std::make_unique<Searcher>(node_->blocks(), node_->ingester(), node_->reader(), pool_, SearchOptions{});
  }
  void Push(const std::vector<SpanSpec>& spans) { ASSERT_TRUE(node_->Push("t", Build(spans)).status.ok()); }
  void Flush() { ASSERT_TRUE(node_->ingester().FlushAll().ok()); }

  SearchResult Run(const std::string& text, uint32_t limit = 100, storage::TimeRange range = {}) {
    auto query = traceql::Parse(text);
    EXPECT_TRUE(query.ok()) << text << ": " << query.status().ToString();
    SearchRequest request;
    request.tenant = "t";
    request.query = *query;
    request.limit = limit;
    request.spans_per_spanset = 100;
    request.range = range;
    auto result = searcher_->Search(request);
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    return result.ok() ? *result : SearchResult{};
  }

  static std::vector<int> TraceNumbers(const SearchResult& result) {
    std::vector<int> out;
    for (const auto& trace : result.traces) out.push_back(int(trace.id.bytes[14]) << 8 | trace.id.bytes[15]);
    return out;
  }

  FaultInjectionEnv env_;
  ThreadPool pool_{2};
  std::unique_ptr<Node> node_;
  std::unique_ptr<Searcher> searcher_;
};

TEST_F(SearchTest, TraceSplitBetweenBlockAndLiveIsJudgedWhole) {
  Push({{1, 1, -1, "front"}, {2, 1, -1, "front"}});
  Flush();
  Push({{1, 2, 1, "back"}});  // trace 1's child arrives after its root was cut into a block
  auto both = Run("{ resource.service.name = \"front\" } && { resource.service.name = \"back\" }");
  EXPECT_EQ(TraceNumbers(both), std::vector<int>{1});
  ASSERT_EQ(both.traces.size(), 1u);
  EXPECT_EQ(both.traces[0].spansets[0].matched, 2u);
  EXPECT_EQ(TraceNumbers(Run("{ } | count() = 2")), std::vector<int>{1});
  EXPECT_EQ(TraceNumbers(Run("{ resource.service.name = \"front\" } > { resource.service.name = \"back\" }")),
            std::vector<int>{1});
  EXPECT_EQ(TraceNumbers(Run("{ } | count() = 1")), std::vector<int>{2});
}

TEST_F(SearchTest, TraceSplitBetweenTwoBlocksIsJudgedWholeOnce) {
  Push({{1, 1, -1, "front"}, {2, 1, -1, "front"}});
  Flush();
  Push({{1, 2, 1, "back"}});
  Flush();
  ASSERT_EQ(node_->blocks().Blocks("t").size(), 2u);
  auto found = Run("{ } | count() = 2");
  EXPECT_EQ(TraceNumbers(found), std::vector<int>{1});
  auto all = Run("{ }");
  EXPECT_EQ(TraceNumbers(all), (std::vector<int>{2, 1}));  // newest first, each once
  ASSERT_EQ(all.traces.size(), 2u);
  EXPECT_EQ(all.traces[1].spansets[0].matched, 2u);
  EXPECT_EQ(all.traces[1].root_service_name, "front");
  EXPECT_EQ(all.traces[1].service_stats.at("back").span_count, 1u);
}

TEST_F(SearchTest, ExactlyTheMostRecentMatchesWhereverTheyLie) {
  // 60 traces over three blocks and the live index; every third one has an error.
  for (int block = 0; block < 4; ++block) {
    std::vector<SpanSpec> spans;
    for (int t = block * 15; t < block * 15 + 15; ++t) spans.push_back({t + 1, 1, -1, "api", 0, 10, t % 3 == 0});
    Push(spans);
    if (block < 3) Flush();
  }
  auto newest = Run("{ status = error }", 5);
  EXPECT_EQ(TraceNumbers(newest), (std::vector<int>{58, 55, 52, 49, 46}));
  EXPECT_EQ(newest.stats.completed_jobs, newest.stats.total_jobs);
  auto all = Run("{ status = error }", 1000);
  EXPECT_EQ(all.traces.size(), 20u);
  // The same query gives the same answer every time.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(TraceNumbers(Run("{ status = error }", 5)), TraceNumbers(newest));
  EXPECT_EQ(TraceNumbers(Run("{ status = error } with(most_recent=true)", 5)), TraceNumbers(newest));
}

TEST_F(SearchTest, MostRecentFalseLetsTheFirstMatchesFoundEndTheScan) {
  // Four blocks of 200 traces, every other one with an error, and live traces after them.
  for (int block = 0; block < 5; ++block) {
    std::vector<SpanSpec> spans;
    for (int t = block * 200; t < block * 200 + 200; ++t) spans.push_back({t + 1, 1, -1, "api", 0, 10, t % 2 == 0});
    Push(spans);
    if (block < 4) Flush();
  }
  auto first = Run("{ status = error } with(most_recent=false)", 5);
  ASSERT_EQ(first.traces.size(), 5u);
  for (const FoundTrace& trace : first.traces) {
    int number = trace.id.bytes[15] | (trace.id.bytes[14] << 8);
    EXPECT_EQ((number - 1) % 2, 0) << number;  // each one matches
  }
  // Newest first among them, and the scan stopped long before the oldest block.
  for (size_t i = 1; i < first.traces.size(); ++i)
    EXPECT_GE(first.traces[i - 1].start_unix_nano, first.traces[i].start_unix_nano);
  EXPECT_LT(first.stats.completed_jobs, first.stats.total_jobs);
  EXPECT_LT(first.stats.inspected_traces, 400u);
  // A limit above the matches finds them all; by default the whole scan runs.
  EXPECT_EQ(Run("{ status = error } with(most_recent=false)", 1000).traces.size(), 500u);
  auto exact = Run("{ status = error }", 5);
  EXPECT_EQ(exact.stats.completed_jobs, exact.stats.total_jobs);
}

TEST_F(SearchTest, RowGroupsThatCannotMatchAreNotRead) {
  std::vector<SpanSpec> spans;
  for (int t = 1; t <= 50; ++t) spans.push_back({t, 1, -1, "api"});
  Push(spans);
  Flush();
  auto none = Run("{ resource.service.name = \"nowhere\" }");
  EXPECT_TRUE(none.traces.empty());
  EXPECT_EQ(none.stats.inspected_bytes, 0u);
  EXPECT_GT(none.stats.total_blocks, 0u);
  auto some = Run("{ resource.service.name = \"api\" }", 1000);
  EXPECT_EQ(some.traces.size(), 50u);
  EXPECT_GT(some.stats.inspected_bytes, 0u);
}

TEST_F(SearchTest, RowGroupsWithoutTheValueAreNotRead) {
  // Five blocks; one trace of the third has the rare value.
  for (int block = 0; block < 5; ++block) {
    std::vector<SpanSpec> spans;
    for (int t = block * 10 + 1; t <= block * 10 + 10; ++t)
      spans.push_back({t, 1, -1, "api", 0, 10, false, t == 27 ? 503 : 200 + t % 3});
    Push(spans);
    Flush();
  }
  auto rare = Run("{ span.http.status = 503 }");
  EXPECT_EQ(TraceNumbers(rare), std::vector<int>{27});
  EXPECT_EQ(rare.stats.total_jobs, 1u);  // the other blocks' summaries lack the value
  auto absent = Run("{ span.http.status = 404 }");
  EXPECT_TRUE(absent.traces.empty());
  EXPECT_EQ(absent.stats.inspected_bytes, 0u);
  // A float literal, an inequality or an unscoped attribute is not judged on the summary.
  EXPECT_EQ(TraceNumbers(Run("{ span.http.status = 503.0 }")), std::vector<int>{27});
  EXPECT_EQ(TraceNumbers(Run("{ .http.status = 503 }")), std::vector<int>{27});
  EXPECT_EQ(Run("{ span.http.status != 503 }", 1000).traces.size(), 49u);
  EXPECT_EQ(Run("{ span.http.status = 201 }", 1000).traces.size(), 17u);
}

TEST_F(SearchTest, TimeRangeSelectsTracesThatOverlapIt) {
  std::vector<SpanSpec> spans;
  for (int t = 1; t <= 10; ++t) spans.push_back({t, 1, -1, "api"});
  Push(spans);
  Flush();
  storage::TimeRange range{kBase + 3'000'000'000ull, kBase + 5'000'000'000ull};
  EXPECT_EQ(TraceNumbers(Run("{ }", 100, range)), (std::vector<int>{5, 4, 3}));
}

TEST_F(SearchTest, AnExhaustedBudgetAnswersPartialAndSaysSo) {
  std::vector<SpanSpec> spans;
  for (int t = 1; t <= 10; ++t) spans.push_back({t, 1, -1, "api"});
  Push(spans);
  Flush();
  SearchOptions options;
  options.timeout = std::chrono::milliseconds(0);
  Searcher limited(node_->blocks(), node_->ingester(), node_->reader(), pool_, options);
  SearchRequest request;
  request.tenant = "t";
  request.query = *traceql::Parse("{ }");
  auto result = limited.Search(request);
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->partial);
  EXPECT_NE(result->message.find("timed out"), std::string::npos);
}

TEST_F(SearchTest, AByteBudgetStopsTheScanAndTheAnswerSaysSo) {
  // Eight blocks: at most one job per scanning thread (three) starts before any has counted
  // its bytes.
  for (int block = 0; block < 8; ++block) {
    std::vector<SpanSpec> spans;
    for (int t = block * 10 + 1; t <= block * 10 + 10; ++t) spans.push_back({t, 1, -1, "api"});
    Push(spans);
    Flush();
  }
  SearchOptions options;
  options.max_bytes_per_search = 1;  // past it after the first row group
  Searcher limited(node_->blocks(), node_->ingester(), node_->reader(), pool_, options);
  SearchRequest request;
  request.tenant = "t";
  request.query = *traceql::Parse("{ }");
  request.limit = 1000;
  auto result = limited.Search(request);
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->partial);
  EXPECT_NE(result->message.find("limit of 1 bytes"), std::string::npos) << result->message;
  EXPECT_LT(result->traces.size(), 80u);
  EXPECT_LT(result->stats.completed_jobs, result->stats.total_jobs);
}

TEST_F(SearchTest, AnUnreadableBlockIsLeftOutAndTheAnswerSaysSo) {
  std::vector<SpanSpec> first, second;
  for (int t = 1; t <= 5; ++t) first.push_back({t, 1, -1, "api"});
  for (int t = 6; t <= 10; ++t) second.push_back({t, 1, -1, "api"});
  Push(first);
  Flush();
  Push(second);
  Flush();
  auto blocks = node_->blocks().Blocks("t");
  ASSERT_EQ(blocks.size(), 2u);
  ASSERT_TRUE(blocks[0]->Index().ok());  // the index is loaded; the spans are read per search
  FaultRule rule;
  rule.op = FaultOp::kRead;
  rule.path_contains = blocks[0]->meta().block_id + "/data";
  rule.times = UINT64_MAX;
  env_.AddFault(rule);
  auto result = Run("{ }");
  EXPECT_TRUE(result.partial);
  EXPECT_NE(result.message.find("could not be read"), std::string::npos) << result.message;
  EXPECT_EQ(TraceNumbers(result), (std::vector<int>{10, 9, 8, 7, 6}));  // the readable block, whole
}

TEST_F(SearchTest, AnswerInTempoJsonShape) {
  Push({{1, 1, -1, "front", 0, 1500}});
  auto result = Run("{ }");
  std::string json = SearchResultJson(result);
  EXPECT_NE(json.find("\"traceID\":\"1\""), std::string::npos) << json;  // leading zeros trimmed
  EXPECT_NE(json.find("\"rootServiceName\":\"front\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"durationMs\":1500"), std::string::npos) << json;
  EXPECT_NE(json.find("\"spanID\":\"0101010100010001\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"matched\":1"), std::string::npos) << json;
  EXPECT_NE(json.find("\"serviceStats\":{\"front\":{\"spanCount\":1}}"), std::string::npos) << json;
}

}  // namespace
}  // namespace tracery::query
