// The block list: blocks listed at open with their index loaded on first use and cached
// within a bound; a block write failing at any operation never leaves a block that a
// restarted list would read wrongly.
#include "storage/block_list.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "common/fault_env.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"

namespace tracery::storage {
namespace {

// One trace of `spans` spans, encoded as TracesData.
std::string EncodedTrace(const TraceId& id, int spans) {
  opentelemetry::proto::trace::v1::TracesData data;
  auto* ss = data.add_resource_spans()->add_scope_spans();
  for (int i = 0; i < spans; ++i) {
    auto* span = ss->add_spans();
    span->set_trace_id(std::string(id.View()));
    span->set_span_id(std::string(7, '\x01') + char(i + 1));
    span->set_name("op");
    span->set_start_time_unix_nano(1'700'000'000'000'000'000ull);
    span->set_end_time_unix_nano(1'700'000'000'100'000'000ull);
  }
  return data.SerializeAsString();
}

TraceId Id(int block, int trace) {
  std::string raw(16, '\x05');
  raw[0] = char(block);
  raw[1] = char(trace);
  return TraceId::FromBytes(raw);
}

Status WriteTestBlock(backend::ObjectStore& store, int block, int traces) {
  std::vector<std::string> encoded;
  std::vector<block::TraceInput> inputs;
  for (int t = 0; t < traces; ++t) encoded.push_back(EncodedTrace(Id(block, t), 3));
  for (int t = 0; t < traces; ++t) inputs.push_back({Id(block, t), encoded[size_t(t)]});
  return block::WriteBlock(store, "t", "sampled", inputs, block::WriterOptions()).status();
}

TEST(BlockListTest, IndexesLoadOnFirstUseAndStayWithinTheirBound) {
  FaultInjectionEnv env;
  auto store = backend::NewLocalObjectStore("/blocks", env);
  for (int b = 0; b < 12; ++b) ASSERT_TRUE(WriteTestBlock(*store, b, 50).ok());
  BlockList blocks(*store, BlockListOptions{3000});  // about three blocks' indexes
  ASSERT_TRUE(blocks.Open().ok());
  EXPECT_EQ(blocks.BlockCount(), 12u);
  EXPECT_EQ(blocks.CachedIndexBytes(), 0u) << "opening reads meta.json only";
  for (const auto& block : blocks.Blocks("t")) EXPECT_FALSE(block->Loaded());
  uint64_t peak = 0;
  for (int round = 0; round < 2; ++round) {
    for (int b = 0; b < 12; ++b) {
      otlp::TracesData into;
      bool found = false;
      ASSERT_TRUE(blocks.CollectTrace("t", Id(b, 7), TimeRange{}, into, found).ok());
      EXPECT_TRUE(found) << "block " << b;
      peak = std::max(peak, blocks.CachedIndexBytes());
    }
  }
  size_t loaded = 0;
  for (const auto& block : blocks.Blocks("t")) loaded += block->Loaded();
  EXPECT_LT(loaded, 12u) << "least recently used indexes are dropped";
  EXPECT_GT(loaded, 0u);
  EXPECT_LE(peak, 3000u + blocks.Blocks("t").front()->MemoryBytes() * 2);
}

TEST(BlockListTest, ABlockWriteFailingAtAnyOperationNeverLeavesABadBlock) {
  uint64_t operations;
  {
    FaultInjectionEnv env;
    auto store = backend::NewLocalObjectStore("/blocks", env);
    uint64_t before = env.OperationCount();
    ASSERT_TRUE(WriteTestBlock(*store, 1, 40).ok());
    operations = env.OperationCount() - before;
  }
  for (uint64_t k = 0; k < operations; ++k) {
    for (bool crash : {false, true}) {
      FaultInjectionEnv env;
      auto store = backend::NewLocalObjectStore("/blocks", env);
      ASSERT_TRUE(WriteTestBlock(*store, 0, 10).ok());  // one good block before
      if (crash) {
        env.CrashAfter(k + 1);
      } else {
        for (FaultOp op : {FaultOp::kOpen, FaultOp::kWrite, FaultOp::kSync, FaultOp::kRename, FaultOp::kSyncDir,
                           FaultOp::kCreateDir, FaultOp::kClose})
          env.AddFault({op, "", k, 1, ENOSPC, op == FaultOp::kWrite});
      }
      Status written = WriteTestBlock(*store, 1, 40);
      if (crash) env.Crash(CrashOptions{true, k});
      env.ClearFaults();
      auto reopened = backend::NewLocalObjectStore("/blocks", env);
      BlockList blocks(*reopened, BlockListOptions{});
      ASSERT_TRUE(blocks.Open().ok());
      // The good block is whole; the second is whole or absent, and present if it was written.
      EXPECT_EQ(blocks.BlockCount(), written.ok() ? 2u : blocks.BlockCount()) << "k=" << k;
      EXPECT_EQ(reopened->List("t")->size(), blocks.BlockCount()) << "k=" << k << ": interrupted blocks are removed";
      for (int block = 0; block < 2; ++block) {
        for (int t : {0, 9}) {
          otlp::TracesData into;
          bool found = false;
          Status read = blocks.CollectTrace("t", Id(block, t), TimeRange{}, into, found);
          ASSERT_TRUE(read.ok()) << "k=" << k << ": " << read.ToString();
          if (block == 0 || written.ok()) {
            EXPECT_TRUE(found) << "k=" << k << " block " << block;
          }
          if (found) {
            EXPECT_EQ(into.resource_spans.at(0).scope_spans.at(0).spans.size(), 3u) << "k=" << k;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace tracery::storage
