// The local object store: whole and ranged reads, listing, deletion, atomic replacement, and
// refusal of names that could leave the root.
#include <gtest/gtest.h>

#include <filesystem>

#include "backend/object_store.h"
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

}  // namespace
}  // namespace tracery::backend
