// The ingester under faults, through the fault-injecting Env: a block write that fails at
// any of its operations, a full disk during ingest and during a cut, a trace that cannot be
// encoded, and the crash harness: the process dies after each operation of a workload in
// turn (pushes of requests that each carry several traces, block cuts, late spans, segment
// deletions), and after a restart every acknowledged span is readable exactly once and no
// span whose request was refused is readable at all.
#include <gtest/gtest.h>

#include <cerrno>
#include <set>

#include "common/fault_env.h"
#include "ingester/ingester.h"
#include "ingester/ingester_for_tests.h"
#include "ingester/wal_record.h"

namespace tracery::ingester {
namespace {

using testing::IdOf;
using testing::MakeRequest;
using testing::Node;
using testing::Request;
using testing::SpanIdsOf;
using testing::TestOptions;

using SpanSet = std::map<TraceId, std::set<std::string>>;

void Add(SpanSet& into, const Request& request) {
  for (auto& [id, spans] : SpanIdsOf(request)) into[id].insert(spans.begin(), spans.end());
}

// Every acknowledged span readable exactly once; no refused span readable. Spans whose fate
// is unknown (answered after the process died) may be either.
void CheckInvariant(Node& node, const SpanSet& acknowledged, const SpanSet& refused, const std::string& when) {
  for (const auto& [id, spans] : acknowledged) {
    auto read = node.SpansOf("t", id);
    ASSERT_TRUE(read.ok()) << when << ": " << read.status().ToString();
    for (const auto& span : spans) EXPECT_EQ((*read)[span], 1) << when << ": acknowledged span of " << id.Hex();
    for (const auto& [span, count] : *read) EXPECT_EQ(count, 1) << when << ": span read twice in " << id.Hex();
  }
  for (const auto& [id, spans] : refused) {
    auto read = node.SpansOf("t", id);
    ASSERT_TRUE(read.ok()) << when << ": " << read.status().ToString();
    for (const auto& span : spans) {
      bool also_acknowledged = acknowledged.count(id) && acknowledged.at(id).count(span);
      if (also_acknowledged) continue;  // the same span sent again later and acknowledged then
      EXPECT_EQ(read->count(span), 0u) << when << ": refused span readable in " << id.Hex();
    }
  }
}

TEST(IngesterFaultTest, ABlockWriteThatFailsAtAnyOperationLosesNothingAndIsRetried) {
  // Count the operations of one clean cut, then fail each of them in turn.
  uint64_t cut_operations;
  {
    FaultInjectionEnv env;
    Node node(env, TestOptions());
    ASSERT_TRUE(node.Open().ok());
    ASSERT_TRUE(node.Push("t", MakeRequest({1, 2, 3}, 30)).status.ok());
    uint64_t before = env.OperationCount();
    ASSERT_TRUE(node.ingester().FlushAll().ok());
    cut_operations = env.OperationCount() - before;
  }
  ASSERT_GT(cut_operations, 10u);
  for (uint64_t skip = 0; skip < cut_operations; ++skip) {
    for (int error : {EIO, ENOSPC}) {
      FaultInjectionEnv env;
      Node node(env, TestOptions());
      ASSERT_TRUE(node.Open().ok());
      Request request = MakeRequest({1, 2, 3}, 30);
      ASSERT_TRUE(node.Push("t", request).status.ok());
      SpanSet acknowledged;
      Add(acknowledged, request);
      // Fail the skip-th operation of any kind below blocks/ (the WAL is left alone).
      for (FaultOp op : {FaultOp::kOpen, FaultOp::kWrite, FaultOp::kSync, FaultOp::kRename, FaultOp::kSyncDir,
                         FaultOp::kCreateDir, FaultOp::kClose})
        env.AddFault({op, "/data/blocks", skip, 1, error, op == FaultOp::kWrite});
      (void)node.ingester().FlushAll();  // may fail: then the traces wait
      env.ClearFaults();               // (a rule that did not fire would fail the reads)
      CheckInvariant(node, acknowledged, {}, "after a failed cut, skip " + std::to_string(skip));
      env.ClearFaults();
      ASSERT_TRUE(node.ingester().FlushAll().ok());
      CheckInvariant(node, acknowledged, {}, "after the retry");
      EXPECT_EQ(node.ingester().GetTotals().live_traces, 0u);
      ASSERT_TRUE(node.Open().ok());
      CheckInvariant(node, acknowledged, {}, "after a restart");
    }
  }
}

TEST(IngesterFaultTest, AFullDiskRefusesPushesKeepsWhatWasAcknowledgedAndResumes) {
  FaultInjectionEnv env;
  Node node(env, TestOptions());
  ASSERT_TRUE(node.Open().ok());
  SpanSet acknowledged, refused;
  int refusals = 0;
  env.SetSpaceLimit(48 << 10);
  for (int r = 0; r < 200; ++r) {
    Request request = MakeRequest({r % 37 + 1, r % 11 + 100, 300 + r}, 3, r * 10, 64);
    PushOutcome outcome = node.Push("t", request);
    if (outcome.status.ok()) Add(acknowledged, request);
    else {
      EXPECT_EQ(outcome.status.code(), StatusCode::kUnavailable) << outcome.status.ToString();
      Add(refused, request);
      refusals++;
    }
    if (r % 50 == 49) (void)node.ingester().FlushAll();  // cuts compete for the same space
    if (r == 150) env.SetSpaceLimit(0);                   // space returns
  }
  EXPECT_GT(refusals, 0);
  CheckInvariant(node, acknowledged, refused, "while running");
  ASSERT_TRUE(node.ingester().FlushAll().ok());
  CheckInvariant(node, acknowledged, refused, "after a flush");
  node.Close();
  env.Crash(CrashOptions{true, 11});
  ASSERT_TRUE(node.Open().ok());
  CheckInvariant(node, acknowledged, refused, "after a crash");
}

TEST(IngesterFaultTest, ATraceThatCannotBeEncodedIsQuarantinedAndDoesNotBlockItsTenant) {
  FaultInjectionEnv env;
  Request good = MakeRequest({1, 2}, 3);
  {
    Node node(env, TestOptions());
    ASSERT_TRUE(node.Open().ok());
    ASSERT_TRUE(node.Push("t", good).status.ok());
  }
  {
    // A record whose checksum holds but whose fragment is not OTLP: what a bug would write.
    wal::Options options;
    options.directory = "/data/wal";
    options.env = &env;
    auto wal = wal::WriteAheadLog::Open(options);
    ASSERT_TRUE((*wal)->Replay([](wal::RecordLocation, std::string_view) {}, nullptr).ok());
    otlp::TraceFragment bad;
    bad.trace_id = IdOf(66);
    bad.span_count = 1;
    bad.bytes = "\x0a\x05garbage-not-protobuf";
    std::vector<RecordFragment> layout;
    std::promise<Status> written;
    (*wal)->Append(EncodeRecord("t", {&bad}, layout), [&](Status status, wal::RecordLocation) { written.set_value(status); });
    ASSERT_TRUE(written.get_future().get().ok());
  }
  Node node(env, TestOptions());
  ASSERT_TRUE(node.Open().ok());
  ASSERT_TRUE(node.ingester().FlushAll().ok());
  EXPECT_EQ(node.ingester().GetTotals().live_traces, 0u) << "the bad trace does not stay behind";
  SpanSet acknowledged;
  Add(acknowledged, good);
  CheckInvariant(node, acknowledged, {}, "after the cut");
  auto kept = env.ListDir("/data/wal/deadletter/t");
  ASSERT_TRUE(kept.ok());
  ASSERT_EQ(kept->size(), 1u);
  EXPECT_EQ(kept->front().name.substr(0, 32), IdOf(66).Hex());
  EXPECT_NE(node.metrics().Render().find("tracery_ingester_traces_quarantined_total 1"), std::string::npos);
  // Later cuts of the tenant go on.
  Request later = MakeRequest({3}, 2);
  ASSERT_TRUE(node.Push("t", later).status.ok());
  ASSERT_TRUE(node.ingester().FlushAll().ok());
  EXPECT_EQ(node.blocks().BlockCount(), 2u);
}

// The workload of the crash harness. Answers given after the process died are of unknown
// fate: neither acknowledged nor refused.
void CrashWorkload(FaultInjectionEnv& env, SpanSet& acknowledged, SpanSet& refused) {
  Node node(env, TestOptions());
  if (!node.Open().ok()) return;
  for (int round = 0; round < 4; ++round) {
    for (int r = 0; r < 3; ++r) {
      // Each request carries several traces; each trace's spans spread over requests and rounds.
      Request request = MakeRequest({1 + r, 4 + round, 10 + round * 3 + r}, 3, round * 100 + r * 10);
      PushOutcome outcome = node.Push("t", request);
      if (outcome.status.ok()) Add(acknowledged, request);
      else if (outcome.status.message().find("process has died") == std::string::npos) Add(refused, request);
    }
    if (round % 2 == 1) (void)node.ingester().FlushAll();
  }
}

TEST(IngesterFaultTest, ACrashAfterAnyOperationKeepsEveryAcknowledgedSpanExactlyOnce) {
  uint64_t operations;
  {
    FaultInjectionEnv env;
    SpanSet acknowledged, refused;
    uint64_t before = env.OperationCount();
    CrashWorkload(env, acknowledged, refused);
    operations = env.OperationCount() - before;
    ASSERT_TRUE(refused.empty());
  }
  ASSERT_GT(operations, 50u);
  for (bool torn : {false, true}) {
    for (uint64_t k = 1; k <= operations; ++k) {
      FaultInjectionEnv env;
      SpanSet acknowledged, refused;
      env.CrashAfter(k);
      CrashWorkload(env, acknowledged, refused);
      env.Crash(CrashOptions{torn, k});
      Node node(env, TestOptions());
      Status opened = node.Open();
      ASSERT_TRUE(opened.ok()) << "k=" << k << ": " << opened.ToString();
      std::string when = "crash after operation " + std::to_string(k) + (torn ? " (torn)" : "");
      CheckInvariant(node, acknowledged, refused, when);
      // And the restarted node cuts and keeps them too.
      ASSERT_TRUE(node.ingester().FlushAll().ok()) << when;
      CheckInvariant(node, acknowledged, refused, when + ", then flushed");
      if (::testing::Test::HasFailure()) return;
    }
  }
}

}  // namespace
}  // namespace tracery::ingester
