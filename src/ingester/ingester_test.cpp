// Unit tests of the ingester: pushed spans are readable live, after a flush from a block, and
// after a restart from the write-ahead log; limits refuse whole fragments; repeats collapse.
#include "ingester/ingester.h"

#include <gtest/gtest.h>

#include "common/temp_dir_for_tests.h"
#include <unistd.h>

#include <filesystem>
#include <future>
#include <map>
#include <set>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otlp/split.h"

namespace tracery::ingester {
namespace {

namespace fs = std::filesystem;
namespace pbt = opentelemetry::proto::trace::v1;
using Request = opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;


std::string TraceIdBytes(int n) {
  std::string id(16, '\x11');
  id[0] = char(n >> 8);
  id[1] = char(n);
  return id;
}

TraceId IdOf(int n) { return TraceId::FromBytes(TraceIdBytes(n)); }

std::string SpanIdBytes(int trace, int span) {
  std::string id(8, '\x22');
  id[0] = char(trace >> 8);
  id[1] = char(trace);
  id[2] = char(span >> 8);
  id[3] = char(span);
  return id;
}

// A request with `spans` spans for each trace in `traces`, spread over two resources.
Request MakeRequest(const std::vector<int>& traces, int spans, int first_span = 0, size_t padding = 0) {
  Request request;
  for (int r = 0; r < 2; ++r) {
    auto* rs = request.add_resource_spans();
    auto* kv = rs->mutable_resource()->add_attributes();
    kv->set_key("service.name");
    kv->mutable_value()->set_string_value("svc-" + std::to_string(r));
    auto* ss = rs->add_scope_spans();
    ss->mutable_scope()->set_name("scope-" + std::to_string(r));
  }
  for (int t : traces) {
    for (int i = first_span; i < first_span + spans; ++i) {
      pbt::Span* span = request.mutable_resource_spans(i % 2)->mutable_scope_spans(0)->add_spans();
      span->set_trace_id(TraceIdBytes(t));
      span->set_span_id(SpanIdBytes(t, i));
      if (i > 0) span->set_parent_span_id(SpanIdBytes(t, i - 1));
      span->set_name("op-" + std::to_string(i));
      span->set_kind(pbt::Span::SPAN_KIND_SERVER);
      span->set_start_time_unix_nano(1'700'000'000'000'000'000ull + uint64_t(t) * 1'000'000 + uint64_t(i));
      span->set_end_time_unix_nano(span->start_time_unix_nano() + 1000);
      auto* attribute = span->add_attributes();
      attribute->set_key("payload");
      attribute->mutable_value()->set_string_value(std::string(padding, 'p'));
    }
  }
  return request;
}

// The spans each trace of `requests` should have, by span ID.
std::map<TraceId, std::map<std::string, otlp::Span>> Expected(const std::vector<Request>& requests) {
  std::map<TraceId, std::map<std::string, otlp::Span>> out;
  for (const auto& request : requests) {
    otlp::TracesData data;
    EXPECT_TRUE(otlp::DecodeTracesData(request.SerializeAsString(), data).ok());
    for (const auto& rs : data.resource_spans)
      for (const auto& ss : rs.scope_spans)
        for (const auto& span : ss.spans) out[TraceId::FromBytes(span.trace_id)][span.span_id] = span;
  }
  return out;
}

class IngesterTest : public ::testing::Test {
 protected:
  Options MakeOptions() {
    Options options;
    options.trace_idle_period = std::chrono::hours(1);  // only FlushAll cuts blocks here
    options.max_block_duration = std::chrono::hours(1);
    options.sweep_interval = std::chrono::milliseconds(50);
    options.wal.directory = dir_.path() + "/wal";
    options.wal.segment_bytes = 8 * 1024;
    options.block.row_group_spans = 64;
    return options;
  }

  void Open(Options options) {
    ingester_.reset();
    metrics_ = std::make_unique<MetricsRegistry>();
    auto opened = Ingester::Open(std::move(options), *store_, *metrics_);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    ingester_ = std::move(opened).value();
  }

  void Close() {
    ingester_.reset();
    metrics_.reset();
  }

  void TearDown() override { Close(); }

  // Pushes a request as the distributor does: its bytes and its fragments.
  PushOutcome Push(const std::string& tenant, const Request& request) {
    std::string bytes = request.SerializeAsString();
    otlp::SplitRequest split;
    Status status = otlp::SplitByTrace(bytes, split);
    EXPECT_TRUE(status.ok()) << status.ToString();
    auto promise = std::make_shared<std::promise<PushOutcome>>();
    auto future = promise->get_future();
    ingester_->Push(tenant, bytes, std::move(split.fragments),
                    [promise](PushOutcome outcome) { promise->set_value(std::move(outcome)); });
    EXPECT_EQ(future.wait_for(std::chrono::seconds(20)), std::future_status::ready);
    return future.get();
  }

  // Expects FindTrace to return exactly `want` (each span once).
  void ExpectTrace(const std::string& tenant, const TraceId& id, const std::map<std::string, otlp::Span>& want,
                   const std::string& when) {
    auto found = ingester_->FindTrace(tenant, id);
    ASSERT_TRUE(found.ok()) << when << ": " << found.status().ToString();
    ASSERT_TRUE(found->has_value()) << when << ": trace " << id.Hex() << " not found";
    std::map<std::string, int> seen;
    for (const auto& rs : (**found).resource_spans)
      for (const auto& ss : rs.scope_spans)
        for (const auto& span : ss.spans) {
          seen[span.span_id]++;
          auto it = want.find(span.span_id);
          ASSERT_NE(it, want.end()) << when << ": unexpected span " << HexEncode(span.span_id);
          EXPECT_TRUE(span == it->second) << when << ": span " << span.name << " differs";
        }
    EXPECT_EQ(seen.size(), want.size()) << when << ": trace " << id.Hex();
    for (const auto& [span_id, count] : seen) EXPECT_EQ(count, 1) << when << ": span " << HexEncode(span_id) << " repeated";
  }

  void ExpectAbsent(const std::string& tenant, const TraceId& id, const std::string& when) {
    auto found = ingester_->FindTrace(tenant, id);
    ASSERT_TRUE(found.ok()) << when << ": " << found.status().ToString();
    EXPECT_FALSE(found->has_value()) << when << ": trace " << id.Hex() << " should not be readable";
  }

  std::vector<std::string> WalFiles() {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir_.path() + "/wal", ec))
      if (entry.path().extension() == ".wal") names.push_back(entry.path().filename().string());
    return names;
  }

  TempDir dir_;
  std::unique_ptr<backend::ObjectStore> store_ = backend::NewLocalObjectStore(dir_.path() + "/blocks");
  std::unique_ptr<MetricsRegistry> metrics_;
  std::unique_ptr<Ingester> ingester_;
};

TEST_F(IngesterTest, PushedTracesAreReadableLiveThenFromTheBlock) {
  Open(MakeOptions());
  std::vector<Request> requests;
  for (int r = 0; r < 20; ++r) requests.push_back(MakeRequest({r, r + 1, r + 2}, 3, r * 10, 200));
  for (const auto& request : requests) {
    PushOutcome outcome = Push("tenant-a", request);
    ASSERT_TRUE(outcome.status.ok()) << outcome.status.ToString();
    EXPECT_EQ(outcome.rejected_spans, 0u);
  }
  auto expected = Expected(requests);
  ASSERT_EQ(expected.size(), 22u);
  for (const auto& [id, spans] : expected) ExpectTrace("tenant-a", id, spans, "live");
  ExpectAbsent("tenant-a", IdOf(500), "live");
  ExpectAbsent("tenant-b", IdOf(0), "other tenant");
  Ingester::Totals live = ingester_->GetTotals();
  EXPECT_EQ(live.live_traces, 22u);
  EXPECT_GT(live.live_bytes, 0u);
  EXPECT_EQ(live.blocks, 0u);
  EXPECT_GT(WalFiles().size(), 1u) << "small segments: the pushes span several";

  ASSERT_TRUE(ingester_->FlushAll().ok());
  Ingester::Totals flushed = ingester_->GetTotals();
  EXPECT_EQ(flushed.live_traces, 0u);
  EXPECT_EQ(flushed.live_bytes, 0u);
  EXPECT_EQ(flushed.blocks, 1u);
  auto blocks = store_->List("tenant-a");
  ASSERT_TRUE(blocks.ok());
  EXPECT_EQ(blocks->size(), 1u);
  for (const auto& [id, spans] : expected) ExpectTrace("tenant-a", id, spans, "from the block");
  ExpectAbsent("tenant-a", IdOf(500), "after flush");
  // Every sealed segment's spans are in the block, so only the segment being appended to stays.
  EXPECT_LE(WalFiles().size(), 1u);

  // The block's time range prunes lookups that cannot match it.
  auto pruned = ingester_->FindTrace("tenant-a", IdOf(3), 1, 1000);
  ASSERT_TRUE(pruned.ok());
  EXPECT_FALSE(pruned->has_value());

  std::string text = metrics_->Render();
  EXPECT_NE(text.find("tracery_ingester_blocks_flushed_total 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("tracery_ingester_traces_flushed_total 22\n"), std::string::npos) << text;
}

TEST_F(IngesterTest, LateSpansAfterAFlushAreMerged) {
  Open(MakeOptions());
  Request first = MakeRequest({1, 2}, 4, 0);
  Request second = MakeRequest({2, 3}, 4, 100);
  ASSERT_TRUE(Push("t", first).status.ok());
  ASSERT_TRUE(ingester_->FlushAll().ok());
  ASSERT_TRUE(Push("t", second).status.ok());
  auto expected = Expected({first, second});
  for (const auto& [id, spans] : expected) ExpectTrace("t", id, spans, "block plus live");
  ASSERT_TRUE(ingester_->FlushAll().ok());
  EXPECT_EQ(ingester_->GetTotals().blocks, 2u);
  for (const auto& [id, spans] : expected) ExpectTrace("t", id, spans, "two blocks");
}

TEST_F(IngesterTest, MaxBytesPerTraceRefusesTheOversizeTrace) {
  Options options = MakeOptions();
  options.max_bytes_per_trace = 3000;
  Open(options);
  Request big = MakeRequest({7}, 4, 0, 2000);    // about 8 KB in one fragment
  Request small = MakeRequest({8}, 2, 0, 100);   // a few hundred bytes
  Request both;
  both.MergeFrom(big);
  both.MergeFrom(small);
  PushOutcome outcome = Push("t", both);
  EXPECT_TRUE(outcome.status.ok()) << outcome.status.ToString();
  EXPECT_EQ(outcome.rejected_spans, 4u);
  EXPECT_NE(outcome.rejected_reason.find("max_bytes_per_trace"), std::string::npos) << outcome.rejected_reason;
  EXPECT_NE(outcome.rejected_reason.find(IdOf(7).Hex()), std::string::npos) << outcome.rejected_reason;
  ExpectAbsent("t", IdOf(7), "refused");
  ExpectTrace("t", IdOf(8), Expected({small})[IdOf(8)], "accepted neighbour");

  // A trace that would grow past the limit keeps what it had and refuses the rest.
  Request part1 = MakeRequest({9}, 1, 0, 1200);
  Request part2 = MakeRequest({9}, 1, 1, 1200);
  Request part3 = MakeRequest({9}, 1, 2, 1200);
  EXPECT_EQ(Push("t", part1).rejected_spans, 0u);
  EXPECT_EQ(Push("t", part2).rejected_spans, 0u);
  EXPECT_EQ(Push("t", part3).rejected_spans, 1u);
  auto kept = Expected({part1, part2});
  ExpectTrace("t", IdOf(9), kept[IdOf(9)], "grown to the limit");

  // Refused spans never reach the WAL or a block.
  ASSERT_TRUE(ingester_->FlushAll().ok());
  ExpectAbsent("t", IdOf(7), "refused, after flush");
  ExpectTrace("t", IdOf(9), kept[IdOf(9)], "after flush");
  Close();
  Open(options);
  ExpectAbsent("t", IdOf(7), "refused, after restart");
}

TEST_F(IngesterTest, ReopenReplaysTheWal) {
  Options options = MakeOptions();
  Open(options);
  std::vector<Request> requests;
  for (int r = 0; r < 10; ++r) requests.push_back(MakeRequest({r * 2, r * 2 + 1}, 3, r * 5, 300));
  for (const auto& request : requests) ASSERT_TRUE(Push("tenant-r", request).status.ok());
  auto expected = Expected(requests);
  size_t segments_before = WalFiles().size();
  ASSERT_GT(segments_before, 1u);

  Close();  // no FlushAll: everything is only in the WAL
  Open(options);
  EXPECT_EQ(ingester_->GetTotals().live_traces, expected.size());
  for (const auto& [id, spans] : expected) ExpectTrace("tenant-r", id, spans, "after replay");
  std::string text = metrics_->Render();
  EXPECT_NE(text.find("tracery_wal_replayed_records_total 10\n"), std::string::npos) << text;

  // Once flushed, the replayed segments are no longer needed.
  ASSERT_TRUE(ingester_->FlushAll().ok());
  EXPECT_TRUE(WalFiles().empty()) << WalFiles().size() << " segments left";
  for (const auto& [id, spans] : expected) ExpectTrace("tenant-r", id, spans, "flushed after replay");

  Close();
  Open(options);
  EXPECT_EQ(ingester_->GetTotals().live_traces, 0u);
  EXPECT_EQ(ingester_->GetTotals().blocks, 1u);
  for (const auto& [id, spans] : expected) ExpectTrace("tenant-r", id, spans, "from the stored block");
}

TEST_F(IngesterTest, ReplayAfterAPartialFlushDoesNotDuplicate) {
  Options options = MakeOptions();
  Open(options);
  Request first = MakeRequest({1, 2, 3}, 2, 0, 50);
  ASSERT_TRUE(Push("t", first).status.ok());
  ASSERT_TRUE(ingester_->FlushAll().ok());
  Request second = MakeRequest({3, 4}, 2, 10, 50);
  ASSERT_TRUE(Push("t", second).status.ok());
  Close();
  Open(options);
  auto expected = Expected({first, second});
  for (const auto& [id, spans] : expected) ExpectTrace("t", id, spans, "block plus replayed WAL");
}

TEST_F(IngesterTest, SpansPushedTwiceAreReturnedOnce) {
  Open(MakeOptions());
  Request request = MakeRequest({5, 6}, 5, 0, 10);
  ASSERT_TRUE(Push("t", request).status.ok());
  ASSERT_TRUE(Push("t", request).status.ok());
  auto expected = Expected({request});
  for (const auto& [id, spans] : expected) ExpectTrace("t", id, spans, "twice live");
  ASSERT_TRUE(ingester_->FlushAll().ok());
  ASSERT_TRUE(Push("t", request).status.ok());  // a third copy, live next to the block
  for (const auto& [id, spans] : expected) ExpectTrace("t", id, spans, "block and live");
  ASSERT_TRUE(ingester_->FlushAll().ok());
  for (const auto& [id, spans] : expected) ExpectTrace("t", id, spans, "two blocks");
}

TEST_F(IngesterTest, TenantsAreKeptApart) {
  Open(MakeOptions());
  Request a = MakeRequest({1}, 2, 0);
  Request b = MakeRequest({1}, 2, 50);  // the same trace ID, other spans
  ASSERT_TRUE(Push("a", a).status.ok());
  ASSERT_TRUE(Push("b", b).status.ok());
  ExpectTrace("a", IdOf(1), Expected({a})[IdOf(1)], "tenant a");
  ExpectTrace("b", IdOf(1), Expected({b})[IdOf(1)], "tenant b");
  ASSERT_TRUE(ingester_->FlushAll().ok());
  ExpectTrace("a", IdOf(1), Expected({a})[IdOf(1)], "tenant a flushed");
  ExpectTrace("b", IdOf(1), Expected({b})[IdOf(1)], "tenant b flushed");
  EXPECT_EQ(store_->List("a")->size(), 1u);
  EXPECT_EQ(store_->List("b")->size(), 1u);
}

TEST_F(IngesterTest, IdleTracesAreCutByTheSweeper) {
  Options options = MakeOptions();
  options.trace_idle_period = std::chrono::milliseconds(100);
  options.max_block_duration = std::chrono::milliseconds(200);
  Open(options);
  Request request = MakeRequest({1, 2}, 3, 0);
  ASSERT_TRUE(Push("t", request).status.ok());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (ingester_->GetTotals().blocks == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(ingester_->GetTotals().blocks, 1u);
  EXPECT_EQ(ingester_->GetTotals().live_traces, 0u);
  for (const auto& [id, spans] : Expected({request})) ExpectTrace("t", id, spans, "cut by the sweeper");
}

TEST_F(IngesterTest, StopFlushesAsItsHeaderSays) {
  // ingester.h: "void Stop();  // stops the sweeper, flushes, closes the WAL".
  Open(MakeOptions());
  ASSERT_TRUE(Push("t", MakeRequest({1}, 2, 0)).status.ok());
  ingester_->Stop();
  auto blocks = store_->List("t");
  ASSERT_TRUE(blocks.ok());
  EXPECT_EQ(blocks->size(), 1u) << "Stop() left the live traces unflushed";
}

}  // namespace
}  // namespace tracery::ingester
