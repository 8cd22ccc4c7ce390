// Retention on the in-memory POSIX model with a controlled clock: blocks past their tenant's
// retention leave the list and the disk, others stay; a block a query still holds is deleted
// only after it lets go; a crash at any point of a deletion leaves every block whole or gone.
#include "storage/retention.h"

#include <gtest/gtest.h>

#include <map>

#include "common/fault_env.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"

namespace tracery::storage {
namespace {

using namespace std::chrono_literals;
constexpr int64_t kDay = 24ll * 3600 * 1'000'000'000;

TraceId Id(int block) {
  std::string raw(16, '\x07');
  raw[0] = char(block + 1);
  return TraceId::FromBytes(raw);
}

// A block of one trace whose spans end at `end_unix_nano`; returns its ID.
std::string WriteBlockEndingAt(backend::ObjectStore& store, const std::string& tenant, int block, int64_t end_unix_nano,
                               const std::string& tier = "sampled") {
  opentelemetry::proto::trace::v1::TracesData data;
  auto* span = data.add_resource_spans()->add_scope_spans()->add_spans();
  span->set_trace_id(std::string(Id(block).View()));
  span->set_span_id(std::string(7, '\x01') + char(block + 1));
  span->set_name("op");
  span->set_start_time_unix_nano(uint64_t(end_unix_nano - 1'000'000));
  span->set_end_time_unix_nano(uint64_t(end_unix_nano));
  std::string encoded = data.SerializeAsString();
  auto meta = block::WriteBlock(store, tenant, tier, {{Id(block), encoded}}, block::WriterOptions());
  EXPECT_TRUE(meta.ok()) << meta.status().ToString();
  return meta.ok() ? meta->block_id : "";
}

bool Readable(BlockList& blocks, const std::string& tenant, int block) {
  otlp::TracesData into;
  bool found = false;
  Status status = blocks.CollectTrace(tenant, Id(block), TimeRange{}, into, found);
  EXPECT_TRUE(status.ok()) << status.ToString();
  return found;
}

class RetentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.AdvanceClock(0);  // the clocks stop at the real time, where blocks record their writing
    start_ = env_.NowUnixNanos();
    store_ = backend::NewLocalObjectStore("/blocks", env_);
  }
  void Open() {
    blocks_ = std::make_unique<BlockList>(*store_, BlockListOptions{});
    ASSERT_TRUE(blocks_->Open().ok());
    RetentionOptions options;
    options.retention_of = [this](const std::string& tenant, std::string_view tier) {
      if (tiers_) return TierRetention(tier, tenant_limits_.count(tenant) ? &tenant_limits_[tenant] : nullptr, tier_retention_, retention_);
      return tenant == "forever" ? 0ns : retention_;
    };
    retention_ = 14 * 24h;
    retention_task_ = std::make_unique<Retention>(*blocks_, *store_, env_, options);
  }
  size_t OnDisk(const std::string& tenant) {
    auto listed = store_->List(tenant);
    return listed.ok() ? listed->size() : 0;
  }

  FaultInjectionEnv env_;
  int64_t start_ = 0;
  std::unique_ptr<backend::ObjectStore> store_;
  std::unique_ptr<BlockList> blocks_;
  std::chrono::nanoseconds retention_ = 14 * 24h;
  std::unique_ptr<Retention> retention_task_;
  bool tiers_ = false;
  std::array<std::chrono::nanoseconds, 4> tier_retention_{};
  std::map<std::string, TenantLimits> tenant_limits_;
};

TEST_F(RetentionTest, EachTierKeepsItsOwnRetentionAndTenantsOverrideIt) {
  tiers_ = true;
  retention_ = 14 * 24h;                                            // block_retention: every tier not listed
  tier_retention_ = {30 * 24h, 30 * 24h, 90 * 24h, 3 * 24h};        // error, slow, pinned, baseline
  tenant_limits_["short"].block_retention = 24h;                    // every tier of this tenant
  tenant_limits_["mixed"].tier_retention[3] = 10 * 24h;             // its baseline only
  int n = 0;
  std::map<std::pair<std::string, std::string>, int> block_of;
  for (std::string tenant : {"t", "short", "mixed"})
    for (std::string tier : {"error", "slow", "pinned", "baseline", "sampled"}) {
      block_of[{tenant, tier}] = n;
      WriteBlockEndingAt(*store_, tenant, n++, start_, tier);
    }
  Open();
  auto alive = [&](const std::string& tenant, const std::string& tier) { return Readable(*blocks_, tenant, block_of[{tenant, tier}]); };
  env_.AdvanceClock(2 * kDay);
  retention_task_->RunOnce();
  for (std::string tier : {"error", "slow", "pinned", "baseline", "sampled"}) EXPECT_FALSE(alive("short", tier)) << tier;
  EXPECT_TRUE(alive("t", "baseline"));
  env_.AdvanceClock(2 * kDay);  // day 4
  retention_task_->RunOnce();
  EXPECT_FALSE(alive("t", "baseline"));
  EXPECT_FALSE(alive("t", "sampled")) << "blocks of older releases follow the baseline tier";
  EXPECT_TRUE(alive("t", "error"));
  EXPECT_TRUE(alive("mixed", "baseline")) << "its own baseline retention";
  env_.AdvanceClock(7 * kDay);  // day 11
  retention_task_->RunOnce();
  EXPECT_FALSE(alive("mixed", "baseline"));
  EXPECT_TRUE(alive("mixed", "error")) << "its other tiers keep the main file's";
  env_.AdvanceClock(20 * kDay);  // day 31
  retention_task_->RunOnce();
  for (std::string tenant : {"t", "mixed"}) {
    EXPECT_FALSE(alive(tenant, "error"));
    EXPECT_FALSE(alive(tenant, "slow"));
    EXPECT_TRUE(alive(tenant, "pinned"));
  }
  env_.AdvanceClock(60 * kDay);  // day 91
  retention_task_->RunOnce();
  EXPECT_EQ(blocks_->BlockCount(), 0u);
}

TEST_F(RetentionTest, BlocksPastTheRetentionGoOthersStay) {
  WriteBlockEndingAt(*store_, "t", 0, start_ - 20 * kDay);  // spans sent late: old timestamps
  WriteBlockEndingAt(*store_, "t", 1, start_);
  WriteBlockEndingAt(*store_, "t", 2, start_ + 10 * kDay);
  WriteBlockEndingAt(*store_, "forever", 3, start_ - 100 * kDay);
  Open();
  // Written now: even spans 20 days old stay for the whole retention after they came.
  EXPECT_EQ(retention_task_->RunOnce().expired, 0u);
  env_.AdvanceClock(10 * kDay);
  EXPECT_EQ(retention_task_->RunOnce().expired, 0u);
  EXPECT_EQ(blocks_->Blocks("t").size(), 3u);

  env_.AdvanceClock(5 * kDay);  // 15 days on: blocks 0 and 1 are past 14 days in both ways
  RetentionPass pass = retention_task_->RunOnce();
  EXPECT_EQ(pass.expired, 2u);
  EXPECT_EQ(pass.deleted, 2u);
  EXPECT_FALSE(Readable(*blocks_, "t", 0));
  EXPECT_FALSE(Readable(*blocks_, "t", 1));
  EXPECT_TRUE(Readable(*blocks_, "t", 2));
  EXPECT_TRUE(Readable(*blocks_, "forever", 3));
  EXPECT_EQ(OnDisk("t"), 1u);
  EXPECT_EQ(retention_task_->blocks_deleted(), 2u);
  EXPECT_GT(retention_task_->bytes_deleted(), 0u);

  // A restart finds what the passes left, nothing more.
  Open();
  EXPECT_EQ(blocks_->BlockCount(), 2u);
  env_.AdvanceClock(10 * kDay);
  EXPECT_EQ(retention_task_->RunOnce().deleted, 1u);
  EXPECT_EQ(OnDisk("t"), 0u);
  EXPECT_TRUE(Readable(*blocks_, "forever", 3));
}

TEST_F(RetentionTest, ABlockAQueryHoldsIsDeletedWhenTheQueryLetsGo) {
  WriteBlockEndingAt(*store_, "t", 0, start_);
  Open();
  env_.AdvanceClock(15 * kDay);
  std::shared_ptr<block::BlockReader> held = blocks_->Blocks("t").at(0);
  RetentionPass pass = retention_task_->RunOnce();
  EXPECT_EQ(pass.expired, 1u);
  EXPECT_EQ(pass.waiting, 1u);
  EXPECT_EQ(pass.deleted, 0u);
  EXPECT_TRUE(blocks_->Blocks("t").empty()) << "no new query finds it";
  EXPECT_EQ(OnDisk("t"), 1u);
  auto read = held->FindTrace(Id(0));  // the query that holds it reads on
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_TRUE(read->has_value());
  held.reset();
  pass = retention_task_->RunOnce();
  EXPECT_EQ(pass.deleted, 1u);
  EXPECT_EQ(OnDisk("t"), 0u);
}

TEST_F(RetentionTest, ACrashAtAnyPointOfADeletionLeavesBlocksWholeOrGone) {
  uint64_t operations;
  {
    FaultInjectionEnv env;
    env.AdvanceClock(0);
    auto store = backend::NewLocalObjectStore("/blocks", env);
    WriteBlockEndingAt(*store, "t", 0, env.NowUnixNanos());
    BlockList blocks(*store, BlockListOptions{});
    ASSERT_TRUE(blocks.Open().ok());
    Retention retention(blocks, *store, env, RetentionOptions{[](const std::string&, std::string_view) { return std::chrono::nanoseconds(24h); }});
    env.AdvanceClock(2 * kDay);
    uint64_t before = env.OperationCount();
    ASSERT_EQ(retention.RunOnce().deleted, 1u);
    operations = env.OperationCount() - before;
  }
  ASSERT_GT(operations, 2u);
  for (uint64_t k = 0; k < operations; ++k) {
    FaultInjectionEnv env;
    env.AdvanceClock(0);
    auto store = backend::NewLocalObjectStore("/blocks", env);
    WriteBlockEndingAt(*store, "t", 0, env.NowUnixNanos());
    WriteBlockEndingAt(*store, "t", 1, env.NowUnixNanos() + 5 * kDay);  // not expired
    RetentionOptions options{[](const std::string&, std::string_view) { return std::chrono::nanoseconds(24h); }};
    {
      BlockList blocks(*store, BlockListOptions{});
      ASSERT_TRUE(blocks.Open().ok());
      Retention retention(blocks, *store, env, options);
      env.AdvanceClock(2 * kDay);
      env.CrashAfter(k + 1);
      retention.RunOnce();
      env.Crash(CrashOptions{true, k});
    }
    env.ClearFaults();
    auto reopened = backend::NewLocalObjectStore("/blocks", env);
    BlockList blocks(*reopened, BlockListOptions{});
    ASSERT_TRUE(blocks.Open().ok()) << "k=" << k;
    EXPECT_TRUE(Readable(blocks, "t", 1)) << "k=" << k;
    EXPECT_EQ(reopened->List("t")->size(), blocks.BlockCount()) << "k=" << k << ": no half-deleted block is left";
    // The next pass finishes the job.
    Retention retention(blocks, *reopened, env, options);
    retention.RunOnce();
    EXPECT_FALSE(Readable(blocks, "t", 0)) << "k=" << k;
    EXPECT_EQ(reopened->List("t")->size(), 1u) << "k=" << k;
  }
}

}  // namespace
}  // namespace tracery::storage
