// Compaction on the in-memory POSIX model: every trace keeps its spans (split traces joined,
// repeated spans once); only small blocks of one tenant, tier and window are merged; a block a
// query holds is deleted after it lets go; a crash after any operation of a compaction lists
// every trace exactly once after a restart, and the next run finishes the job; memory stays
// at about one row group per input.
#include "storage/compactor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>

#include "common/fault_env.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"

namespace tracery::storage {
namespace {

constexpr uint64_t kHour = 3600ull * 1'000'000'000;
constexpr uint64_t kBase = 472222ull * kHour;  // the start of an even hour in November 2023

TraceId Id(int trace) {
  std::string raw(16, '\x09');
  raw[0] = char(trace >> 8);
  raw[1] = char(trace);
  return TraceId::FromBytes(raw);
}

// What a block gets of one trace: spans numbered `first` to `first + count - 1`, from
// service `service`, ending within hour `window` after kBase.
struct Part {
  int trace;
  int first = 0, count = 1;
  std::string service = "api";
};

std::string Encode(const Part& part, int window) {
  opentelemetry::proto::trace::v1::TracesData data;
  auto* rs = data.add_resource_spans();
  auto* attribute = rs->mutable_resource()->add_attributes();
  attribute->set_key("service.name");
  attribute->mutable_value()->set_string_value(part.service);
  auto* ss = rs->add_scope_spans();
  for (int s = part.first; s < part.first + part.count; ++s) {
    auto* span = ss->add_spans();
    span->set_trace_id(std::string(Id(part.trace).View()));
    span->set_span_id(std::string(6, '\x02') + char(s >> 8) + char(s));
    // Span s is a child of span s / 2, which may be in another part (another block).
    if (s > 0) span->set_parent_span_id(std::string(6, '\x02') + char((s / 2) >> 8) + char(s / 2));
    span->set_name("op-" + std::to_string(s));
    span->set_start_time_unix_nano(kBase + uint64_t(window) * kHour + 1'000'000'000ull + uint64_t(s));
    span->set_end_time_unix_nano(kBase + uint64_t(window) * kHour + 2'000'000'000ull + uint64_t(s));
  }
  return data.SerializeAsString();
}

// Writes a block of `parts` (one per trace, any order); returns its ID.
std::string WriteParts(backend::ObjectStore& store, std::vector<Part> parts, const std::string& tenant = "t",
                       int window = 0, const std::string& tier = "sampled", uint32_t row_group_spans = 1024) {
  std::sort(parts.begin(), parts.end(), [](const Part& a, const Part& b) { return a.trace < b.trace; });
  std::vector<std::string> encoded;
  for (const Part& part : parts) encoded.push_back(Encode(part, window));
  std::vector<block::TraceInput> inputs;
  for (size_t i = 0; i < parts.size(); ++i) inputs.push_back({Id(parts[i].trace), encoded[i]});
  block::WriterOptions options;
  options.row_group_spans = row_group_spans;
  auto meta = block::WriteBlock(store, tenant, tier, inputs, options);
  EXPECT_TRUE(meta.ok()) << meta.status().ToString();
  return meta.ok() ? meta->block_id : "";
}

// A trace as queries see it, repeats removed: each span with its resource, sorted.
std::vector<std::string> Spans(BlockList& blocks, const std::string& tenant, int trace) {
  otlp::TracesData into;
  bool found = false;
  Status status = blocks.CollectTrace(tenant, Id(trace), TimeRange{}, into, found);
  EXPECT_TRUE(status.ok()) << status.ToString();
  block::DeduplicateSpans(into);
  std::vector<std::string> out;
  for (const auto& rs : into.resource_spans)
    for (const auto& ss : rs.scope_spans)
      for (const auto& span : ss.spans) {
        std::string text;
        otlp::EncodeResource(rs.resource, text);
        text += '|';
        otlp::EncodeSpan(span, text);
        out.push_back(std::move(text));
      }
  std::sort(out.begin(), out.end());
  return out;
}

uint64_t ListedTraces(BlockList& blocks, const std::string& tenant) {
  uint64_t sum = 0;
  for (const auto& block : blocks.Blocks(tenant)) sum += block->meta().trace_count;
  return sum;
}

std::set<std::string> ListedIds(BlockList& blocks, const std::string& tenant) {
  std::set<std::string> ids;
  for (const auto& block : blocks.Blocks(tenant)) ids.insert(block->meta().block_id);
  return ids;
}

// The memory bound (compactor.h) of merging every listed block of `tenant`: twice the sum of
// their largest row groups, plus one row group.
uint64_t MemoryBound(BlockList& blocks, const std::string& tenant, uint32_t row_group_spans) {
  uint64_t largest = 0;
  for (const auto& block : blocks.Blocks(tenant)) {
    uint32_t spans = 0;
    for (const auto& row_group : block->row_groups()) spans = std::max(spans, row_group.span_count);
    largest += spans;
  }
  return 2 * largest + row_group_spans;
}

// Traces 0..29: 0..9 in block A only, 10..19 split across A, B and C (spans 0-3, 2-5, 4-7:
// overlapping, so some spans repeat), 20..29 in C only, 25 also in B from another service.
std::vector<std::vector<Part>> SplitTraces() {
  std::vector<Part> a, b, c;
  for (int t = 0; t < 10; ++t) a.push_back({t, 0, 3});
  for (int t = 10; t < 20; ++t) {
    a.push_back({t, 0, 4});
    b.push_back({t, 2, 4});
    c.push_back({t, 4, 4});
  }
  for (int t = 20; t < 30; ++t) c.push_back({t, 0, 2 + t % 3});
  b.push_back({25, 10, 2, "db"});
  return {a, b, c};
}
constexpr int kSplitTraces = 30;

class CompactTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = backend::NewLocalObjectStore("/blocks", env_); }
  void Open() {
    compactor_.reset();
    blocks_ = std::make_unique<BlockList>(*store_, BlockListOptions{});
    ASSERT_TRUE(blocks_->Open().ok());
    compactor_ = std::make_unique<Compactor>(*blocks_, *store_, options_);
  }
  size_t OnDisk(const std::string& tenant) {
    auto listed = store_->List(tenant);
    return listed.ok() ? listed->size() : 0;
  }

  FaultInjectionEnv env_;
  std::unique_ptr<backend::ObjectStore> store_;
  std::unique_ptr<BlockList> blocks_;
  CompactorOptions options_;
  std::unique_ptr<Compactor> compactor_;
};

TEST_F(CompactTest, EveryTraceKeepsItsSpansSpanForSpan) {
  std::vector<std::string> inputs;
  for (const auto& parts : SplitTraces()) inputs.push_back(WriteParts(*store_, parts, "t", 0, "sampled", 8));
  Open();
  std::map<int, std::vector<std::string>> before;
  for (int t = 0; t < kSplitTraces; ++t) before[t] = Spans(*blocks_, "t", t);
  EXPECT_EQ(before[15].size(), 8u) << "spans 0-7 of a trace split three ways, repeats once";
  EXPECT_EQ(before[25].size(), 5u);

  CompactionRun run = compactor_->RunOnce();
  EXPECT_EQ(run.compactions, 1u);
  EXPECT_EQ(run.blocks_in, 3u);
  EXPECT_EQ(run.deletion.deleted, 3u);
  EXPECT_EQ(run.traces_out, uint64_t(kSplitTraces));
  ASSERT_EQ(blocks_->BlockCount(), 1u);
  const block::BlockMeta& meta = blocks_->Blocks("t").at(0)->meta();
  EXPECT_EQ(meta.trace_count, uint64_t(kSplitTraces));
  EXPECT_EQ(std::set<std::string>(meta.compacted_from.begin(), meta.compacted_from.end()),
            std::set<std::string>(inputs.begin(), inputs.end()));
  EXPECT_EQ(OnDisk("t"), 1u) << "the inputs' objects are gone";
  for (int t = 0; t < kSplitTraces; ++t) EXPECT_EQ(Spans(*blocks_, "t", t), before[t]) << "trace " << t;

  Open();  // a restart lists the output alone, and nothing is left to merge
  EXPECT_EQ(blocks_->BlockCount(), 1u);
  for (int t = 0; t < kSplitTraces; ++t) EXPECT_EQ(Spans(*blocks_, "t", t), before[t]) << "trace " << t;
  EXPECT_EQ(compactor_->RunOnce().compactions, 0u);
}

TEST_F(CompactTest, OnlyBlocksOfOneTenantTierAndWindowAreMerged) {
  WriteParts(*store_, {{1}}, "a", 0);
  WriteParts(*store_, {{2}}, "a", 0);
  WriteParts(*store_, {{3}}, "a", 0, "error");  // another tier
  WriteParts(*store_, {{4}}, "a", 1);           // the next hour
  WriteParts(*store_, {{5}}, "b", 0);           // another tenant
  WriteParts(*store_, {{6}}, "b", 2);
  Open();
  const std::set<std::string> b_before = ListedIds(*blocks_, "b");
  CompactionRun run = compactor_->RunOnce();
  EXPECT_EQ(run.compactions, 1u);
  EXPECT_EQ(run.blocks_in, 2u);
  EXPECT_EQ(blocks_->Blocks("a").size(), 3u);
  EXPECT_EQ(ListedIds(*blocks_, "b"), b_before);
  for (int t : {1, 2, 3, 4}) EXPECT_EQ(Spans(*blocks_, "a", t).size(), 1u) << t;
  for (const auto& block : blocks_->Blocks("a")) {
    if (block->meta().tier == "error" || block->meta().max_end_unix_nano >= kBase + kHour) {
      EXPECT_TRUE(block->meta().compacted_from.empty());
    }
  }

  // A two-hour window holds hours 0 and 1: the output and the hour-1 block merge.
  options_.window = std::chrono::hours(2);
  Open();
  EXPECT_EQ(compactor_->RunOnce().compactions, 1u);
  EXPECT_EQ(blocks_->Blocks("a").size(), 2u);
  EXPECT_EQ(blocks_->Blocks("b").size(), 2u);
}

TEST_F(CompactTest, AWindowStillOpenIsNotMergedUntilItEnds) {
  WriteParts(*store_, {{1}}, "t", 0);
  WriteParts(*store_, {{2}}, "t", 0);
  int64_t now = int64_t(kBase + kHour / 2);  // half-way through hour 0: blocks keep coming
  options_.now_unix_nanos = [&now] { return now; };
  Open();
  EXPECT_EQ(compactor_->RunOnce().compactions, 0u);
  EXPECT_EQ(blocks_->BlockCount(), 2u);
  now = int64_t(kBase + kHour);  // the hour has ended: one merge
  EXPECT_EQ(compactor_->RunOnce().compactions, 1u);
  EXPECT_EQ(blocks_->BlockCount(), 1u);
  WriteParts(*store_, {{3}}, "t", 0);  // a late block of that hour joins the output later
  Open();
  EXPECT_EQ(compactor_->RunOnce().compactions, 1u);
  EXPECT_EQ(blocks_->BlockCount(), 1u);
  for (int t : {1, 2, 3}) EXPECT_EQ(Spans(*blocks_, "t", t).size(), 1u) << t;
}

TEST_F(CompactTest, InputsStopAtMaxCompactionObjectsAndMaxBlockBytes) {
  for (int b = 0; b < 5; ++b) {
    std::vector<Part> parts;
    for (int t = 0; t < 10; ++t) parts.push_back({b * 10 + t});
    WriteParts(*store_, parts);
  }
  options_.max_compaction_objects = 25;  // 10 + 10, then 10 + 10, then one left alone
  Open();
  CompactionRun run = compactor_->RunOnce();
  EXPECT_EQ(run.compactions, 2u);
  EXPECT_EQ(blocks_->BlockCount(), 3u);
  EXPECT_EQ(ListedTraces(*blocks_, "t"), 50u);
  EXPECT_EQ(compactor_->RunOnce().compactions, 0u) << "no two fit together under the bound";

  uint64_t smallest = UINT64_MAX;
  for (const auto& block : blocks_->Blocks("t")) smallest = std::min(smallest, block->meta().data_bytes);
  options_.max_compaction_objects = 6'000'000;
  options_.max_block_bytes = smallest;  // every block is big enough already
  Open();
  EXPECT_EQ(compactor_->RunOnce().compactions, 0u);
  options_.max_block_bytes = 1ull << 30;
  Open();
  EXPECT_EQ(compactor_->RunOnce().compactions, 1u);
  EXPECT_EQ(blocks_->BlockCount(), 1u);
  for (int t = 0; t < 50; ++t) EXPECT_EQ(Spans(*blocks_, "t", t).size(), 1u) << t;
}

TEST_F(CompactTest, ABlockAQueryHoldsIsDeletedOnlyAfterItLetsGo) {
  WriteParts(*store_, {{1}});
  WriteParts(*store_, {{2}});
  Open();
  std::shared_ptr<block::BlockReader> held = blocks_->Blocks("t").at(0);
  CompactionRun run = compactor_->RunOnce();
  EXPECT_EQ(run.compactions, 1u);
  EXPECT_EQ(run.deletion.deleted, 1u);
  EXPECT_EQ(run.deletion.waiting, 1u);
  EXPECT_EQ(OnDisk("t"), 2u);
  auto held_one = held->Contains(Id(1));
  ASSERT_TRUE(held_one.ok());
  auto read = held->FindTrace(Id(*held_one ? 1 : 2));  // the query that holds it reads on
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_TRUE(read->has_value());
  held.reset();
  EXPECT_EQ(compactor_->RunOnce().deletion.deleted, 1u);
  EXPECT_EQ(OnDisk("t"), 1u);
}

TEST_F(CompactTest, ACrashAfterAnyOperationListsEveryTraceOnceAndTheNextRunFinishes) {
  uint64_t operations;
  std::map<int, std::vector<std::string>> expected;
  {
    FaultInjectionEnv env;
    auto store = backend::NewLocalObjectStore("/blocks", env);
    for (const auto& parts : SplitTraces()) WriteParts(*store, parts, "t", 0, "sampled", 16);
    BlockList blocks(*store, BlockListOptions{});
    ASSERT_TRUE(blocks.Open().ok());
    for (int t = 0; t < kSplitTraces; ++t) expected[t] = Spans(blocks, "t", t);
    Compactor compactor(blocks, *store, CompactorOptions{});
    uint64_t before = env.OperationCount();
    ASSERT_EQ(compactor.RunOnce().compactions, 1u);
    operations = env.OperationCount() - before;
  }
  ASSERT_GT(operations, 10u);
  for (uint64_t k = 0; k < operations; ++k) {
    FaultInjectionEnv env;
    std::set<std::string> inputs;
    {
      auto store = backend::NewLocalObjectStore("/blocks", env);
      for (const auto& parts : SplitTraces()) inputs.insert(WriteParts(*store, parts, "t", 0, "sampled", 16));
      BlockList blocks(*store, BlockListOptions{});
      ASSERT_TRUE(blocks.Open().ok());
      Compactor compactor(blocks, *store, CompactorOptions{});
      env.CrashAfter(k + 1);
      compactor.RunOnce();
      env.Crash(CrashOptions{true, k});
    }
    env.ClearFaults();
    auto store = backend::NewLocalObjectStore("/blocks", env);
    BlockList blocks(*store, BlockListOptions{});
    ASSERT_TRUE(blocks.Open().ok()) << "k=" << k;
    // Either the inputs or the output: never a trace listed twice.
    const std::set<std::string> listed = ListedIds(blocks, "t");
    if (listed != inputs) {
      EXPECT_EQ(listed.size(), 1u) << "k=" << k;
      EXPECT_EQ(ListedTraces(blocks, "t"), uint64_t(kSplitTraces)) << "k=" << k;
    }
    EXPECT_EQ(store->List("t")->size(), blocks.BlockCount()) << "k=" << k << ": nothing half there is left";
    for (int t = 0; t < kSplitTraces; ++t) EXPECT_EQ(Spans(blocks, "t", t), expected[t]) << "k=" << k << " trace " << t;

    Compactor compactor(blocks, *store, CompactorOptions{});
    compactor.RunOnce();
    EXPECT_EQ(blocks.BlockCount(), 1u) << "k=" << k;
    EXPECT_EQ(store->List("t")->size(), 1u) << "k=" << k;
    EXPECT_EQ(ListedTraces(blocks, "t"), uint64_t(kSplitTraces)) << "k=" << k;
    for (int t = 0; t < kSplitTraces; ++t) EXPECT_EQ(Spans(blocks, "t", t), expected[t]) << "k=" << k << " trace " << t;
  }
}

TEST_F(CompactTest, MemoryIsAboutOneRowGroupPerInputWhateverTheBlockSizes) {
  constexpr int kBlocks = 8, kTracesPerBlock = 7000, kSpansPerTrace = 3;
  constexpr uint32_t kRowGroupSpans = 64;
  uint64_t bytes_in = 0;
  for (int b = 0; b < kBlocks; ++b) {
    std::vector<Part> parts;
    // Interleaved IDs (below 60000), and every 100th trace split across all blocks.
    for (int t = 0; t < kTracesPerBlock; ++t)
      parts.push_back({t % 100 == 0 ? 60000 + t / 100 : t * kBlocks + b, b * kSpansPerTrace, kSpansPerTrace});
    WriteParts(*store_, parts, "t", 0, "sampled", kRowGroupSpans);
  }
  options_.writer.row_group_spans = kRowGroupSpans;
  Open();
  for (const auto& block : blocks_->Blocks("t")) bytes_in += block->meta().data_bytes + block->meta().index_bytes;
  const uint64_t bound = MemoryBound(*blocks_, "t", kRowGroupSpans);
  const auto start = std::chrono::steady_clock::now();
  CompactionRun run = compactor_->RunOnce();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(run.compactions, 1u);
  const uint64_t total_spans = uint64_t(kBlocks) * kTracesPerBlock * kSpansPerTrace;
  EXPECT_LE(compactor_->peak_decoded_spans(), bound);
  EXPECT_LT(compactor_->peak_decoded_spans(), total_spans / 50);
  EXPECT_EQ(blocks_->Blocks("t").at(0)->meta().span_count, total_spans);
  std::printf("compaction: %d blocks, %llu spans, %.1f MB in, %.2f s (%.1f MB/s), peak %llu spans held\n", kBlocks,
              (unsigned long long)total_spans, double(bytes_in) / 1e6, seconds, double(bytes_in) / 1e6 / seconds,
              (unsigned long long)compactor_->peak_decoded_spans());
}

// Block A: traces 0..299 (2 spans each) and spans 0..1999 of a huge trace; block B: traces
// 300..599 and spans 1500..2999 of the huge trace (500 in both blocks).
constexpr int kHugeTrace = 50000, kHugeSpans = 3000;
void WriteHugeTraceBlocks(backend::ObjectStore& store, uint32_t row_group_spans) {
  std::vector<Part> a, b;
  for (int t = 0; t < 300; ++t) a.push_back({t, 0, 2});
  for (int t = 300; t < 600; ++t) b.push_back({t, 0, 2});
  a.push_back({kHugeTrace, 0, 2000});
  b.push_back({kHugeTrace, 1500, 1500});
  WriteParts(store, a, "t", 0, "sampled", row_group_spans);
  WriteParts(store, b, "t", 0, "sampled", row_group_spans);
}

TEST_F(CompactTest, AHugeTraceSplitAcrossInputsIsMergedSpanBySpanWithinTheBound) {
  constexpr uint32_t kRowGroupSpans = 64;
  WriteHugeTraceBlocks(*store_, kRowGroupSpans);
  options_.writer.row_group_spans = kRowGroupSpans;
  Open();
  const std::vector<std::string> before = Spans(*blocks_, "t", kHugeTrace);
  ASSERT_EQ(before.size(), size_t(kHugeSpans));
  const uint64_t bound = MemoryBound(*blocks_, "t", kRowGroupSpans);
  CompactionRun run = compactor_->RunOnce();
  ASSERT_EQ(run.compactions, 1u);
  EXPECT_EQ(run.left_for_memory, 0u);
  EXPECT_EQ(Spans(*blocks_, "t", kHugeTrace), before) << "parents across parts resolved, nothing lost";
  EXPECT_EQ(blocks_->Blocks("t").at(0)->meta().span_count, 600u * 2 + kHugeSpans) << "the 500 repeats once";
  for (int t : {0, 299, 300, 599}) EXPECT_EQ(Spans(*blocks_, "t", t).size(), 2u) << t;
  EXPECT_LE(compactor_->peak_decoded_spans(), bound);
  EXPECT_GE(compactor_->peak_decoded_spans(), uint64_t(kHugeSpans)) << "the huge trace's row groups were held";
}

TEST_F(CompactTest, ABlockWhoseRowGroupAlonePassesTheMemoryBoundIsLeftAlone) {
  constexpr uint32_t kRowGroupSpans = 64;
  WriteHugeTraceBlocks(*store_, kRowGroupSpans);  // A holds 2000 spans of the huge trace in one row group
  WriteParts(*store_, {{700, 0, 2}, {701, 0, 2}}, "t", 0, "sampled", kRowGroupSpans);
  WriteParts(*store_, {{702, 0, 2}}, "t", 0, "sampled", kRowGroupSpans);
  options_.writer.row_group_spans = kRowGroupSpans;
  options_.max_spans_in_memory = 3500;  // B (1500 spans of it) fits alone; A does not
  Open();
  const std::vector<std::string> huge = Spans(*blocks_, "t", kHugeTrace);
  CompactionRun run = compactor_->RunOnce();
  EXPECT_EQ(run.left_for_memory, 1u);
  EXPECT_EQ(run.compactions, 1u);
  EXPECT_EQ(run.blocks_in, 3u);
  EXPECT_LE(compactor_->peak_decoded_spans(), 3500u);
  EXPECT_EQ(blocks_->BlockCount(), 2u);
  EXPECT_EQ(Spans(*blocks_, "t", kHugeTrace), huge) << "still split across A and the output";
  for (int t : {0, 300, 700, 702}) EXPECT_FALSE(Spans(*blocks_, "t", t).empty()) << t;
  EXPECT_EQ(ListedTraces(*blocks_, "t"), 301u + 304) << "A's, and the output's (the huge trace in both)";
  EXPECT_EQ(compactor_->RunOnce().left_for_memory, 1u) << "left alone at every run";
}

TEST_F(CompactTest, InputsStopBeforeTheMemoryBound) {
  for (int b = 0; b < 5; ++b) {
    std::vector<Part> parts;
    for (int t = 0; t < 10; ++t) parts.push_back({b * 10 + t});
    WriteParts(*store_, parts);  // one row group of 10 spans
  }
  options_.max_spans_in_memory = 2 * (10 + 10) + 1024;  // two inputs and the output's row group
  Open();
  CompactionRun run = compactor_->RunOnce();
  EXPECT_EQ(run.compactions, 2u);
  EXPECT_EQ(run.left_for_memory, 0u);
  EXPECT_EQ(blocks_->BlockCount(), 3u);
  EXPECT_LE(compactor_->peak_decoded_spans(), options_.max_spans_in_memory);
  EXPECT_EQ(ListedTraces(*blocks_, "t"), 50u);
  for (int t = 0; t < 50; ++t) EXPECT_EQ(Spans(*blocks_, "t", t).size(), 1u) << t;
}

TEST(CompactMetaTest, CompactedFromIsWrittenOnlyWhenThereIsOne) {
  block::BlockMeta meta;
  meta.block_id = "b";
  meta.tenant = "t";
  EXPECT_EQ(meta.ToJson().find("compactedFrom"), std::string::npos) << "older readers and docs stay valid";
  meta.compacted_from = {"x", "y"};
  auto parsed = block::BlockMeta::FromJson(meta.ToJson());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->compacted_from, meta.compacted_from);
  EXPECT_EQ(parsed->tenant, "t");
}

TEST(BlockListReplaceTest, ReplacesInOneStepOrNotAtAll) {
  FaultInjectionEnv env;
  auto store = backend::NewLocalObjectStore("/blocks", env);
  WriteParts(*store, {{1}});
  WriteParts(*store, {{2}});
  const std::string third = WriteParts(*store, {{3}});
  BlockList blocks(*store, BlockListOptions{});
  ASSERT_TRUE(blocks.Open().ok());
  auto listed = blocks.Blocks("t");
  std::shared_ptr<block::BlockReader> added;
  std::vector<std::shared_ptr<block::BlockReader>> removed;
  for (auto& block : listed) {
    if (block->meta().block_id == third) added = block;
    else removed.push_back(block);
  }
  ASSERT_TRUE(blocks.Remove(added));
  ASSERT_TRUE(blocks.Remove(removed[1]));
  EXPECT_FALSE(blocks.Replace(added, removed)) << "an input left the list meanwhile";
  EXPECT_EQ(ListedIds(blocks, "t"), std::set<std::string>{removed[0]->meta().block_id});
  blocks.Add(removed[1]);
  EXPECT_TRUE(blocks.Replace(added, removed));
  EXPECT_EQ(ListedIds(blocks, "t"), std::set<std::string>{third});
}

}  // namespace
}  // namespace tracery::storage
