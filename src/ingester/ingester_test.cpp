// Unit tests of the ingester's behaviour on a fault-free Env: spans readable live, from a
// block and after a restart; WAL segments deleted once their spans are in blocks; late spans;
// limits; tenants; memory accounting against real allocations; the sweeper under memory
// pressure; eviction of idle tenants; migration of earlier WAL records.
#include "ingester/ingester.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "common/coding.h"
#include "common/fault_env.h"
#include "ingester/ingester_for_tests.h"

namespace tracery::ingester {
namespace {

using testing::IdOf;
using testing::MakeRequest;
using testing::Node;
using testing::Request;
using testing::SpanIdsOf;
using testing::TestOptions;

size_t WalSegments(FaultInjectionEnv& env) {
  auto listed = env.ListDir("/data/wal");
  size_t count = 0;
  if (listed.ok())
    for (const auto& entry : *listed) count += entry.name.size() > 4 && entry.name.substr(entry.name.size() - 4) == ".wal";
  return count;
}

void ExpectSpans(Node& node, const std::string& tenant, const std::vector<Request>& requests, const std::string& when) {
  std::map<TraceId, std::set<std::string>> expected;
  for (const auto& request : requests)
    for (auto& [id, span_ids] : SpanIdsOf(request)) expected[id].insert(span_ids.begin(), span_ids.end());
  for (const auto& [id, span_ids] : expected) {
    auto spans = node.SpansOf(tenant, id);
    ASSERT_TRUE(spans.ok()) << when << ": " << spans.status().ToString();
    ASSERT_EQ(spans->size(), span_ids.size()) << when << ": trace " << id.Hex();
    for (const auto& span_id : span_ids) EXPECT_EQ((*spans)[span_id], 1) << when << ": span of " << id.Hex();
  }
}

TEST(IngesterTest, SpansAreReadableLiveFromABlockAndAfterARestart) {
  FaultInjectionEnv env;
  Node node(env, TestOptions());
  ASSERT_TRUE(node.Open().ok());
  Request first = MakeRequest({1, 2, 3}, 5), second = MakeRequest({2, 3, 4}, 4, 100);
  ASSERT_TRUE(node.Push("t", first).status.ok());
  ASSERT_TRUE(node.Push("t", second).status.ok());
  ExpectSpans(node, "t", {first, second}, "live");
  EXPECT_EQ(node.ingester().GetTotals().live_traces, 4u);
  EXPECT_GT(WalSegments(env), 0u);

  ASSERT_TRUE(node.ingester().FlushAll().ok());
  EXPECT_EQ(node.ingester().GetTotals().live_traces, 0u);
  EXPECT_EQ(node.ingester().GetTotals().index_bytes, 0u) << "the index gives back all it counted";
  EXPECT_EQ(node.blocks().BlockCount(), 1u);
  EXPECT_EQ(WalSegments(env), 0u) << "every segment's spans are in a durable block";
  ExpectSpans(node, "t", {first, second}, "block");

  Request late = MakeRequest({1}, 2, 200);  // late spans of a trace already in a block
  ASSERT_TRUE(node.Push("t", late).status.ok());
  auto merged = node.SpansOf("t", IdOf(1));
  ASSERT_TRUE(merged.ok());
  EXPECT_EQ(merged->size(), 7u) << "block and live spans merge";

  ASSERT_TRUE(node.Open().ok());  // restart: the late spans come back from the WAL
  ExpectSpans(node, "t", {first, second, late}, "restart");
  EXPECT_EQ(node.ingester().GetTotals().live_traces, 1u);
  auto absent = node.SpansOf("t", IdOf(99));
  ASSERT_TRUE(absent.ok());
  EXPECT_TRUE(absent->empty());
  EXPECT_TRUE(node.SpansOf("other-tenant", IdOf(1))->empty()) << "tenants are kept apart";
}

TEST(IngesterTest, SpansPushedTwiceAreReadOnce) {
  FaultInjectionEnv env;
  Node node(env, TestOptions());
  ASSERT_TRUE(node.Open().ok());
  Request request = MakeRequest({7}, 3);
  ASSERT_TRUE(node.Push("t", request).status.ok());
  ASSERT_TRUE(node.Push("t", request).status.ok());  // a client retry
  ExpectSpans(node, "t", {request}, "live");
  ASSERT_TRUE(node.ingester().FlushAll().ok());
  ASSERT_TRUE(node.Push("t", request).status.ok());
  ExpectSpans(node, "t", {request}, "block and live");
}

TEST(IngesterTest, MaxBytesPerTraceRefusesOnlyTheOversizeTrace) {
  FaultInjectionEnv env;
  Options options = TestOptions();
  options.max_bytes_per_trace = 2000;
  Node node(env, options);
  ASSERT_TRUE(node.Open().ok());
  ASSERT_TRUE(node.Push("t", MakeRequest({1}, 3, 0, 400)).status.ok());
  PushOutcome outcome = node.Push("t", MakeRequest({1, 2}, 3, 10, 400));
  EXPECT_TRUE(outcome.status.ok());
  EXPECT_EQ(outcome.rejected_spans, 3u);
  EXPECT_NE(outcome.rejected_reason.find("max_bytes_per_trace"), std::string::npos);
  EXPECT_EQ(node.SpansOf("t", IdOf(1))->size(), 3u);
  EXPECT_EQ(node.SpansOf("t", IdOf(2))->size(), 3u);
  ASSERT_TRUE(node.Open().ok());  // the refused spans were never written, not even in the WAL
  EXPECT_EQ(node.SpansOf("t", IdOf(1))->size(), 3u);
}

TEST(IngesterTest, MaxBytesPerTraceHoldsAcrossBlocks) {
  // The limit is the trace's, not one live window's: spans already cut into blocks count.
  FaultInjectionEnv env;
  Options options = TestOptions();
  options.max_bytes_per_trace = 3000;
  Node node(env, options);
  ASSERT_TRUE(node.Open().ok());
  int accepted_windows = 0;
  for (int window = 0; window < 6; ++window) {
    PushOutcome outcome = node.Push("t", MakeRequest({1}, 2, window * 10, 400));
    ASSERT_TRUE(outcome.status.ok());
    if (outcome.rejected_spans == 0) accepted_windows++;
    ASSERT_TRUE(node.ingester().FlushAll().ok());  // each window goes to its own block
  }
  EXPECT_LT(accepted_windows, 6);
  EXPECT_GE(accepted_windows, 2);
  auto spans = node.SpansOf("t", IdOf(1));
  EXPECT_EQ(spans->size(), size_t(accepted_windows) * 2);
  EXPECT_EQ(node.Push("t", MakeRequest({2}, 2, 0, 400)).rejected_spans, 0u) << "other traces are not affected";
}

TEST(IngesterTest, ATenantNamedLikeATemporaryFileKeepsItsBlocks) {
  FaultInjectionEnv env;
  Node node(env, TestOptions());
  ASSERT_TRUE(node.Open().ok());
  Request request = MakeRequest({5}, 2);
  for (const char* tenant : {"x.tmp", "billing.tmp"}) ASSERT_TRUE(node.Push(tenant, request).status.ok());
  ASSERT_TRUE(node.ingester().FlushAll().ok());
  ASSERT_TRUE(node.Open().ok());
  EXPECT_EQ(node.blocks().BlockCount(), 2u);
  ExpectSpans(node, "x.tmp", {request}, "after restart");
  ExpectSpans(node, "billing.tmp", {request}, "after restart");
}

TEST(IngesterTest, MemoryAccountingMatchesWhatIsAllocated) {
  FaultInjectionEnv env;
  Options options = TestOptions();
  options.wal.segment_bytes = 64 << 20;
  options.max_live_bytes = 1ull << 30;
  Node node(env, options);
  ASSERT_TRUE(node.Open().ok());
  // Build the requests first, so that only the index grows between the two readings.
  std::vector<Request> requests;
  for (int r = 0; r < 100; ++r) {
    Request request;
    auto* ss = request.add_resource_spans()->add_scope_spans();
    for (int i = 0; i < 1000; ++i) {
      auto* span = ss->add_spans();
      std::string trace_id(16, '\x33');
      uint32_t n = uint32_t(r * 1000 + i + 1);
      std::memcpy(trace_id.data(), &n, 4);
      span->set_trace_id(trace_id);
      span->set_span_id(std::string(8, '\x44'));
      span->set_name("op");
    }
    requests.push_back(std::move(request));
  }
  // The fault Env keeps file data in memory too: compare what the index counts with what
  // malloc says grew, minus the WAL bytes the Env holds.
  // (Large blocks are mmapped: hblkhd counts them.)
  auto allocated = [] {
    struct mallinfo2 info = mallinfo2();
    return info.uordblks + info.hblkhd;
  };
  malloc_trim(0);
  size_t before = allocated();
  uint64_t wal_before = env.UsedBytes();
  for (const auto& request : requests) ASSERT_TRUE(node.Push("t", request).status.ok());
  size_t grown = allocated() - before - (env.UsedBytes() - wal_before);
  uint64_t counted = node.ingester().GetTotals().index_bytes;
  EXPECT_EQ(node.ingester().GetTotals().live_traces, 100'000u);
  double ratio = double(counted) / double(grown);
  EXPECT_GT(ratio, 0.8) << "counted " << counted << " allocated " << grown;
  EXPECT_LT(ratio, 1.25) << "counted " << counted << " allocated " << grown;
  std::printf("live-trace index: %.1f bytes a one-span trace counted, %.1f allocated\n", double(counted) / 1e5,
              double(grown) / 1e5);
}

TEST(IngesterTest, MemoryPressureCutsBlocksAndRefusalsEndWhenTheyAreCut) {
  FaultInjectionEnv env;
  Options options = TestOptions();
  options.max_live_bytes = 2 << 20;  // about 12 000 traces
  options.sweep_interval = std::chrono::milliseconds(20);
  options.trace_idle_period = std::chrono::hours(1);  // only pressure completes traces here
  Node node(env, options);
  ASSERT_TRUE(node.Open().ok());
  int next = 1;
  bool was_over = false;
  for (int r = 0; r < 400 && !was_over; ++r) {
    std::vector<int> traces;
    for (int i = 0; i < 100; ++i) traces.push_back(next++);
    ASSERT_TRUE(node.Push("t", MakeRequest(traces, 1)).status.ok());
    was_over = node.ingester().OverMemoryLimit();
  }
  // The sweeper cuts under pressure: memory falls back without any flush or idle time.
  for (int i = 0; i < 500 && node.ingester().GetTotals().index_bytes > options.max_live_bytes / 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_LE(node.ingester().GetTotals().index_bytes, options.max_live_bytes / 2);
  EXPECT_FALSE(node.ingester().OverMemoryLimit());
  EXPECT_GT(node.blocks().BlockCount(), 0u);
  EXPECT_EQ(node.SpansOf("t", IdOf(1))->size(), 1u);
  EXPECT_EQ(node.SpansOf("t", IdOf(next - 1))->size(), 1u);
}

TEST(IngesterTest, IdleTracesAreCutByTheSweeperAndIdleTenantsEvicted) {
  FaultInjectionEnv env;
  env.UseManualClock(1'700'000'000'000'000'000);
  Options options = TestOptions();
  options.sweep_interval = std::chrono::milliseconds(10);
  options.trace_idle_period = std::chrono::seconds(10);
  options.max_block_duration = std::chrono::seconds(30);
  options.tenant_idle_eviction = std::chrono::minutes(5);
  Node node(env, options);
  ASSERT_TRUE(node.Open().ok());
  Request request = MakeRequest({1, 2}, 3);
  ASSERT_TRUE(node.Push("idle-tenant", request).status.ok());
  auto let_sweeper_run = [] { std::this_thread::sleep_for(std::chrono::milliseconds(100)); };
  env.AdvanceClock(std::chrono::seconds(11));  // idle: complete; the block is due 30 s later
  let_sweeper_run();
  EXPECT_EQ(node.blocks().BlockCount(), 0u);
  env.AdvanceClock(std::chrono::seconds(31));
  for (int i = 0; i < 500 && node.blocks().BlockCount() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(node.blocks().BlockCount(), 1u);
  EXPECT_EQ(node.ingester().GetTotals().tenants, 1u);
  env.AdvanceClock(std::chrono::minutes(6));
  for (int i = 0; i < 500 && node.ingester().GetTotals().tenants > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(node.ingester().GetTotals().tenants, 0u) << "an idle tenant's state goes";
  ExpectSpans(node, "idle-tenant", {request}, "after eviction");
  ASSERT_TRUE(node.Push("idle-tenant", MakeRequest({3}, 1)).status.ok()) << "and comes back with its next push";
  EXPECT_EQ(node.SpansOf("idle-tenant", IdOf(3))->size(), 1u);
}

TEST(IngesterTest, TraceByIdNeverMissesWhileBlocksAreCut) {
  FaultInjectionEnv env;
  Node node(env, TestOptions());
  ASSERT_TRUE(node.Open().ok());
  std::vector<Request> known;
  for (int t = 1; t <= 20; ++t) {
    known.push_back(MakeRequest({t}, 4));
    ASSERT_TRUE(node.Push("t", known.back()).status.ok());
  }
  std::atomic<bool> stop{false};
  std::atomic<int> lookups{0}, misses{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&, r] {
      for (int i = r; !stop; ++i) {
        const Request& request = known[size_t(i) % known.size()];
        for (const auto& [id, span_ids] : SpanIdsOf(request)) {
          auto spans = node.SpansOf("t", id);
          if (!spans.ok() || spans->size() != span_ids.size()) misses++;
          lookups++;
        }
      }
    });
  }
  for (int round = 0; round < 30; ++round) {
    ASSERT_TRUE(node.Push("t", MakeRequest({1000 + round, 2000 + round}, 20)).status.ok());
    ASSERT_TRUE(node.ingester().FlushAll().ok());
    // Late spans keep moving the known traces between live and blocks.
    ASSERT_TRUE(node.Push("t", known[size_t(round) % known.size()]).status.ok());
  }
  stop = true;
  for (auto& reader : readers) reader.join();
  EXPECT_GT(lookups.load(), 100);
  EXPECT_EQ(misses.load(), 0) << "of " << lookups.load() << " lookups";
}

TEST(IngesterTest, RecordsOfTheEarlierLayoutAreReplayedAndWrittenAgain) {
  FaultInjectionEnv env;
  Request request = MakeRequest({8, 9}, 3);
  {
    // A version-2 record as an earlier release wrote it: the request as received.
    wal::Options options;
    options.directory = "/data/wal";
    options.env = &env;
    auto wal = wal::WriteAheadLog::Open(options);
    ASSERT_TRUE((*wal)->Replay([](wal::RecordLocation, std::string_view) {}, nullptr).ok());
    std::string record = wal::NewRecordBuffer(0);
    record += char(kRequestRecordV2);
    PutLengthPrefixed(record, "t");
    record += request.SerializeAsString();
    std::promise<Status> written;
    (*wal)->Append(std::move(record), [&](Status status, wal::RecordLocation) { written.set_value(status); });
    ASSERT_TRUE(written.get_future().get().ok());
  }
  Node node(env, TestOptions());
  ASSERT_TRUE(node.Open().ok());
  ExpectSpans(node, "t", {request}, "replayed");
  ASSERT_TRUE(node.Open().ok());
  ExpectSpans(node, "t", {request}, "replayed twice");
  ASSERT_TRUE(node.ingester().FlushAll().ok());
  EXPECT_EQ(WalSegments(env), 0u);
  ExpectSpans(node, "t", {request}, "flushed");
}

}  // namespace
}  // namespace tracery::ingester
