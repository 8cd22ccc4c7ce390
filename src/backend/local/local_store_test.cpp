// The local object store: whole and ranged reads, listing, deletion, atomic replacement, and
// refusal of names that could leave the root.
#include <gtest/gtest.h>

#include <filesystem>

#include "backend/object_store.h"
#include "common/fault_env.h"
#include "common/temp_dir_for_tests.h"

namespace tracery::backend {
namespace {

TEST(LocalObjectStoreTest, WritesReadsRangesListsAndDeletes) {
  TempDir dir("tracery-store-test");
  auto store = NewLocalObjectStore(dir.path(), ::tracery::DefaultEnv());
  ASSERT_TRUE(store->Write("tenant/block-1/data", "0123456789").ok());
  ASSERT_TRUE(store->Write("tenant/block-2/meta.json", "{}").ok());
  auto whole = store->Read("tenant/block-1/data");
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(*whole, "0123456789");
  auto range = store->ReadRange("tenant/block-1/data", 3, 4);
  ASSERT_TRUE(range.ok());
  EXPECT_EQ(*range, "3456");
  EXPECT_EQ(store->ReadRange("tenant/block-1/data", 8, 5).status().code(), StatusCode::kCorruption);
  auto blocks = store->List("tenant");
  ASSERT_TRUE(blocks.ok());
  EXPECT_EQ(*blocks, (std::vector<std::string>{"block-1", "block-2"}));
  ASSERT_TRUE(store->Write("tenant/block-1/data", "new").ok());  // replaced whole
  EXPECT_EQ(*store->Read("tenant/block-1/data"), "new");
  ASSERT_TRUE(store->Delete("tenant/block-1").ok());
  EXPECT_EQ(store->Read("tenant/block-1/data").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(*store->List("tenant"), (std::vector<std::string>{"block-2"}));
  EXPECT_TRUE(store->List("absent")->empty());
}

TEST(LocalObjectStoreTest, RefusesNamesOutsideTheRoot) {
  TempDir dir("tracery-store-test");
  auto store = NewLocalObjectStore(dir.path() + "/root", ::tracery::DefaultEnv());
  for (const char* name : {"../escape", "/etc/passwd", "a/../../b", "a//b", "./a", ""}) {
    EXPECT_EQ(store->Write(name, "x").code(), StatusCode::kInvalidArgument) << name;
    EXPECT_EQ(store->Read(name).status().code(), StatusCode::kInvalidArgument) << name;
    EXPECT_EQ(store->Delete(name).code(), StatusCode::kInvalidArgument) << name;
  }
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/escape"));
  EXPECT_EQ(store->List("..").status().code(), StatusCode::kInvalidArgument);
}

TEST(LocalObjectStoreTest, NamesLikeTemporaryFilesAreObjectsAndWritesInProgressAreNot) {
  FaultInjectionEnv env;
  auto store = NewLocalObjectStore("/root", env);
  ASSERT_TRUE(store->Write("x.tmp/block/meta.json", "{}").ok());
  ASSERT_TRUE(store->Write("billing.tmp/b.tmp1/data", "d").ok());
  EXPECT_EQ(*store->List(""), (std::vector<std::string>{"billing.tmp", "x.tmp"}));
  EXPECT_EQ(*store->List("billing.tmp"), (std::vector<std::string>{"b.tmp1"}));
  EXPECT_EQ(store->Write("a~b", "x").code(), StatusCode::kInvalidArgument) << "'~' marks writes in progress";
  {
    auto writer = store->NewWriter("t/block/data");
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Append("half").ok());
    EXPECT_TRUE(store->List("t/block")->empty()) << "an object being written is not listed";
  }  // destroyed uncommitted
  EXPECT_EQ(store->Read("t/block/data").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(env.ListDir("/root/t/block")->empty()) << "nothing is left behind";
}

TEST(LocalObjectStoreTest, ACrashLeavesAnObjectWholeOrAbsentAndCommittedOnesStay) {
  // The operations of one write of a new object, each the last before a crash in turn.
  auto write = [](Env& env) {
    auto store = NewLocalObjectStore("/root", env);
    return store->Write("tenant/block/data", std::string(10000, 'd'));
  };
  uint64_t operations;
  {
    FaultInjectionEnv env;
    uint64_t before = env.OperationCount();
    ASSERT_TRUE(write(env).ok());
    operations = env.OperationCount() - before;
  }
  for (bool torn : {false, true}) {
    for (uint64_t k = 1; k <= operations; ++k) {
      FaultInjectionEnv env;
      env.CrashAfter(k);
      Status written = write(env);
      env.Crash(CrashOptions{torn, k});
      auto store = NewLocalObjectStore("/root", env);
      auto read = store->Read("tenant/block/data");
      if (written.ok()) {
        ASSERT_TRUE(read.ok()) << "k=" << k << ": a committed object must survive: " << read.status().ToString();
      }
      if (read.ok()) {
        EXPECT_EQ(*read, std::string(10000, 'd')) << "k=" << k << ": never half an object";
      }
      ASSERT_TRUE(store->RemoveAbandonedWrites().ok());
      for (const char* dir : {"/root/tenant/block", "/root/tenant", "/root"}) {
        auto listed = env.ListDir(dir);
        if (!listed.ok()) continue;
        for (const auto& entry : *listed) {
          EXPECT_EQ(entry.name.find('~'), std::string::npos) << "k=" << k << ": " << entry.name;
        }
      }
    }
  }
}

}  // namespace
}  // namespace tracery::backend
