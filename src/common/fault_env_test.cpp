// Unit tests of FaultInjectionEnv: the in-memory file system, what survives a crash, and every
// kind of injected fault.
#include "common/fault_env.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <thread>

namespace tracery {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> Names(FaultInjectionEnv& env, const std::string& directory) {
  Result<std::vector<DirectoryEntry>> entries = env.ListDir(directory);
  EXPECT_TRUE(entries.ok()) << entries.status().ToString();
  std::vector<std::string> names;
  if (!entries.ok()) return names;
  for (const DirectoryEntry& entry : *entries) names.push_back(entry.name + (entry.is_directory ? "/" : ""));
  std::sort(names.begin(), names.end());
  return names;
}

bool Exists(FaultInjectionEnv& env, const std::string& path) { return env.FileSize(path).ok(); }

std::string Contents(FaultInjectionEnv& env, const std::string& path) {
  Result<std::string> data = env.ReadWholeFile(path);
  EXPECT_TRUE(data.ok()) << data.status().ToString();
  return data.ok() ? *data : "";
}

std::unique_ptr<WritableFile> Append(FaultInjectionEnv& env, const std::string& path) {
  Result<std::unique_ptr<WritableFile>> file = env.OpenAppendable(path);
  EXPECT_TRUE(file.ok()) << file.status().ToString();
  return file.ok() ? std::move(*file) : nullptr;
}

// ---- the file system --------------------------------------------------------------------------

TEST(FaultEnvTest, DirectoriesFollowPosixRules) {
  FaultInjectionEnv env;
  Status missing_parent = env.CreateDir("/db/wal");
  EXPECT_EQ(missing_parent.code(), StatusCode::kNotFound);
  EXPECT_NE(missing_parent.message().find("/db/wal"), std::string::npos) << missing_parent.ToString();
  EXPECT_NE(missing_parent.message().find("no such file or directory"), std::string::npos);

  ASSERT_TRUE(env.CreateDir("/db").ok());
  ASSERT_TRUE(env.CreateDir("/db").ok());  // already there
  ASSERT_TRUE(env.CreateDir("db//wal/").ok());  // relative, repeated and trailing slashes
  ASSERT_TRUE(env.WriteWholeFile("/db/CURRENT", "1", false).ok());
  EXPECT_EQ(env.CreateDir("/db/CURRENT").code(), StatusCode::kIoError);
  EXPECT_EQ(Names(env, "/db"), (std::vector<std::string>{"CURRENT", "wal/"}));
  EXPECT_EQ(Names(env, "."), std::vector<std::string>{"db/"});
  EXPECT_EQ(Names(env, "/"), std::vector<std::string>{"db/"});

  ASSERT_TRUE(env.FileSize("/db/wal").ok());
  EXPECT_EQ(*env.FileSize("/db/wal"), 0u);
  ASSERT_TRUE(env.FileSize("db/CURRENT").ok());
  EXPECT_EQ(*env.FileSize("db/CURRENT"), 1u);
  EXPECT_EQ(env.FileSize("/db/nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(env.ListDir("/db/nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(env.ListDir("/db/CURRENT").status().code(), StatusCode::kIoError);
  EXPECT_EQ(env.OpenReadable("/db/nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(env.OpenAppendable("/db/nope/x").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(env.OpenAppendable("/db/CURRENT/x").status().code(), StatusCode::kIoError);
  EXPECT_EQ(env.OpenAppendable("/db").status().code(), StatusCode::kIoError);

  EXPECT_EQ(env.RemoveDir("/db").code(), StatusCode::kIoError);  // not empty
  EXPECT_EQ(env.RemoveDir("/db/nope").code(), StatusCode::kNotFound);
  EXPECT_EQ(env.RemoveFile("/db/wal").code(), StatusCode::kIoError);  // a directory
  ASSERT_TRUE(env.RemoveDir("/db/wal").ok());
  ASSERT_TRUE(env.RemoveFile("/db/CURRENT").ok());
  EXPECT_EQ(env.RemoveFile("/db/CURRENT").code(), StatusCode::kNotFound);
  ASSERT_TRUE(env.RemoveDir("/db").ok());
  EXPECT_TRUE(Names(env, "/").empty());
}

TEST(FaultEnvTest, FilesAppendTruncateAndRead) {
  FaultInjectionEnv env;
  auto file = Append(env, "/log");
  std::string_view parts[] = {"hello", ", ", "world"};
  ASSERT_TRUE(file->Append(parts, 3).ok());
  EXPECT_EQ(Contents(env, "/log"), "hello, world");

  Result<std::unique_ptr<RandomAccessFile>> reader = env.OpenReadable("/log");
  ASSERT_TRUE(reader.ok());
  char buffer[5];
  ASSERT_TRUE((*reader)->Read(7, 5, buffer).ok());
  EXPECT_EQ(std::string(buffer, 5), "world");
  EXPECT_EQ((*reader)->Read(8, 5, buffer).code(), StatusCode::kCorruption);
  ASSERT_TRUE(file->Append("!").ok());  // readers see the page cache at once
  EXPECT_EQ(*(*reader)->Size(), 13u);

  ASSERT_TRUE(file->Truncate(5).ok());
  EXPECT_EQ(Contents(env, "/log"), "hello");
  ASSERT_TRUE(file->Close().ok());
  ASSERT_TRUE(file->Close().ok());
  EXPECT_EQ(file->Append("x").code(), StatusCode::kIoError);

  auto again = Append(env, "/log");  // appends after what is there
  ASSERT_TRUE(again->Append("!").ok());
  EXPECT_EQ(Contents(env, "/log"), "hello!");
  ASSERT_TRUE(env.CreateWritable("/log").ok());  // truncates
  EXPECT_EQ(Contents(env, "/log"), "");
}

TEST(FaultEnvTest, RenameMovesTheSameFile) {
  FaultInjectionEnv env;
  ASSERT_TRUE(env.CreateDir("/a").ok());
  ASSERT_TRUE(env.CreateDir("/b").ok());
  auto file = Append(env, "/a/x");
  ASSERT_TRUE(file->Append("one").ok());
  ASSERT_TRUE(env.WriteWholeFile("/b/y", "old", false).ok());
  ASSERT_TRUE(env.Rename("/a/x", "/b/y").ok());  // replaces y
  ASSERT_TRUE(file->Append("two").ok());         // the open file moved with its entry
  EXPECT_EQ(Contents(env, "/b/y"), "onetwo");
  EXPECT_FALSE(Exists(env, "/a/x"));
  EXPECT_EQ(env.UsedBytes(), 6u);  // the replaced file's bytes are free

  EXPECT_EQ(env.Rename("/a/x", "/b/z").code(), StatusCode::kNotFound);
  EXPECT_EQ(env.Rename("/b/y", "/nope/z").code(), StatusCode::kNotFound);
  EXPECT_EQ(env.Rename("/b/y", "/a").code(), StatusCode::kIoError);  // a file over a directory
  EXPECT_EQ(env.Rename("/b", "/b/c").code(), StatusCode::kIoError);  // into itself
  ASSERT_TRUE(env.Rename("/b", "/a/b").ok());
  EXPECT_EQ(Contents(env, "/a/b/y"), "onetwo");
}

// ---- what survives a crash --------------------------------------------------------------------

TEST(FaultEnvTest, CrashKeepsSyncedDataAndDropsTheRest) {
  FaultInjectionEnv env;
  ASSERT_TRUE(CreateDirs(env, "/db/wal").ok());
  auto file = Append(env, "/db/wal/1");
  ASSERT_TRUE(env.SyncDir("/db/wal").ok());
  ASSERT_TRUE(file->Append("synced").ok());
  ASSERT_TRUE(file->Sync().ok());
  ASSERT_TRUE(file->Append("+lost").ok());
  EXPECT_EQ(Contents(env, "/db/wal/1"), "synced+lost");

  env.Crash();
  EXPECT_EQ(Contents(env, "/db/wal/1"), "synced");
  EXPECT_EQ(env.UsedBytes(), 6u);
  // The restarted machine works, and its files start durable.
  auto reopened = Append(env, "/db/wal/1");
  ASSERT_TRUE(reopened->Append("+more").ok());
  env.Crash();
  EXPECT_EQ(Contents(env, "/db/wal/1"), "synced");
}

TEST(FaultEnvTest, SyncedFileVanishesWhenItsDirectoryWasNotSynced) {
  FaultInjectionEnv env;
  ASSERT_TRUE(CreateDirs(env, "/db").ok());
  auto file = Append(env, "/db/new");
  ASSERT_TRUE(file->Append("data").ok());
  ASSERT_TRUE(file->Sync().ok());
  env.Crash();
  EXPECT_FALSE(Exists(env, "/db/new"));

  ASSERT_TRUE(env.WriteWholeFile("/db/new", "data", /*sync=*/true).ok());
  env.Crash();
  EXPECT_EQ(Contents(env, "/db/new"), "data");

  // A directory made without syncing its parent takes its synced files with it.
  ASSERT_TRUE(env.CreateDir("/db/sub").ok());
  ASSERT_TRUE(env.WriteWholeFile("/db/sub/f", "x", /*sync=*/true).ok());
  env.Crash();
  EXPECT_FALSE(Exists(env, "/db/sub"));
}

TEST(FaultEnvTest, UnsyncedRenameReverts) {
  FaultInjectionEnv env;
  ASSERT_TRUE(env.WriteWholeFile("/meta.tmp", "v2", true).ok());
  ASSERT_TRUE(env.WriteWholeFile("/meta", "v1", true).ok());
  ASSERT_TRUE(env.Rename("/meta.tmp", "/meta").ok());
  EXPECT_EQ(Contents(env, "/meta"), "v2");
  env.Crash();
  EXPECT_EQ(Contents(env, "/meta"), "v1");
  EXPECT_EQ(Contents(env, "/meta.tmp"), "v2");

  ASSERT_TRUE(env.Rename("/meta.tmp", "/meta").ok());
  ASSERT_TRUE(env.SyncDir("/").ok());
  env.Crash();
  EXPECT_EQ(Contents(env, "/meta"), "v2");
  EXPECT_FALSE(Exists(env, "/meta.tmp"));
}

TEST(FaultEnvTest, RemovedFileReturnsUnlessItsDirectoryWasSynced) {
  FaultInjectionEnv env;
  ASSERT_TRUE(env.WriteWholeFile("/segment", "abc", true).ok());
  ASSERT_TRUE(env.RemoveFile("/segment").ok());
  EXPECT_EQ(env.UsedBytes(), 0u);
  env.Crash();
  EXPECT_EQ(Contents(env, "/segment"), "abc");
  EXPECT_EQ(env.UsedBytes(), 3u);

  ASSERT_TRUE(env.RemoveFile("/segment").ok());
  ASSERT_TRUE(env.SyncDir(".").ok());
  env.Crash();
  EXPECT_FALSE(Exists(env, "/segment"));
}

TEST(FaultEnvTest, TruncateBelowSyncedSizeRevertsAtCrash) {
  FaultInjectionEnv env;
  ASSERT_TRUE(env.WriteWholeFile("/f", "0123456789", true).ok());
  auto file = Append(env, "/f");
  ASSERT_TRUE(file->Truncate(4).ok());
  ASSERT_TRUE(file->Append("ab").ok());
  EXPECT_EQ(Contents(env, "/f"), "0123ab");
  env.Crash(CrashOptions{.torn = true, .seed = 3});
  EXPECT_EQ(Contents(env, "/f"), "0123456789");

  file = Append(env, "/f");
  ASSERT_TRUE(file->Truncate(4).ok());
  ASSERT_TRUE(file->Sync().ok());
  env.Crash();
  EXPECT_EQ(Contents(env, "/f"), "0123");
}

TEST(FaultEnvTest, TornCrashKeepsAPrefixOfUnsyncedAppends) {
  std::string synced(1000, 's');
  std::string unsynced;
  for (int i = 0; i < 10000; ++i) unsynced += char('a' + i % 26);
  bool saw_partial = false, saw_zeros = false, saw_clean_tail = false;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    FaultInjectionEnv env;
    ASSERT_TRUE(env.WriteWholeFile("/wal", synced, true).ok());
    auto file = Append(env, "/wal");
    ASSERT_TRUE(file->Append(unsynced).ok());
    env.Crash(CrashOptions{.torn = true, .seed = seed});
    std::string after = Contents(env, "/wal");
    ASSERT_GE(after.size(), synced.size());
    ASSERT_LE(after.size(), synced.size() + unsynced.size());
    ASSERT_EQ(after.substr(0, synced.size()), synced) << "seed " << seed;
    std::string kept = after.substr(synced.size());
    // The kept bytes are the written ones, except for a zeroed tail of at most 512 bytes.
    size_t zeros = 0;
    while (zeros < kept.size() && kept[kept.size() - 1 - zeros] == '\0') zeros++;
    ASSERT_LE(zeros, 512u) << "seed " << seed;
    ASSERT_EQ(kept.substr(0, kept.size() - zeros), unsynced.substr(0, kept.size() - zeros)) << "seed " << seed;
    saw_partial |= !kept.empty() && kept.size() < unsynced.size();
    saw_zeros |= zeros > 0;
    saw_clean_tail |= !kept.empty() && zeros == 0;
  }
  EXPECT_TRUE(saw_partial);
  EXPECT_TRUE(saw_zeros);
  EXPECT_TRUE(saw_clean_tail);
}

TEST(FaultEnvTest, SameSeedTearsTheSameWay) {
  auto tear = [](uint64_t seed) {
    FaultInjectionEnv env;
    for (const char* name : {"/a", "/b", "/c"}) {
      EXPECT_TRUE(env.WriteWholeFile(name, "durable", true).ok());
      auto file = Append(env, name);
      EXPECT_TRUE(file->Append(std::string(4000, 'x')).ok());
    }
    env.Crash(CrashOptions{.torn = true, .seed = seed});
    return Contents(env, "/a") + "|" + Contents(env, "/b") + "|" + Contents(env, "/c");
  };
  EXPECT_EQ(tear(7), tear(7));
  EXPECT_NE(tear(7), tear(8));
}

// ---- reserved space ---------------------------------------------------------------------------

TEST(FaultEnvTest, ReserveExtendsWithZerosAndAppendsOverwriteThem) {
  FaultInjectionEnv env;
  auto file = Append(env, "/wal");
  ASSERT_TRUE(file->Append("abc").ok());
  ASSERT_TRUE(file->Reserve(16).ok());
  EXPECT_EQ(Contents(env, "/wal"), "abc" + std::string(13, '\0'));
  ASSERT_TRUE(file->Reserve(8).ok());  // smaller than the file: nothing changes
  ASSERT_TRUE(file->Append("def").ok());
  EXPECT_EQ(Contents(env, "/wal"), "abcdef" + std::string(10, '\0'));
  ASSERT_TRUE(file->Append(std::string(12, 'g')).ok());  // past the reserved end: the file grows
  EXPECT_EQ(Contents(env, "/wal"), "abcdef" + std::string(12, 'g'));
  // A file opened again appends at its end, past any zeros it has.
  ASSERT_TRUE(file->Reserve(20).ok());
  file = Append(env, "/wal");
  ASSERT_TRUE(file->Append("h").ok());
  EXPECT_EQ(Contents(env, "/wal"), "abcdef" + std::string(12, 'g') + std::string(2, '\0') + "h");
}

TEST(FaultEnvTest, CrashRevertsBytesWrittenOverSyncedReservedZeros) {
  FaultInjectionEnv env;
  auto file = Append(env, "/wal");
  ASSERT_TRUE(env.SyncDir("/").ok());
  ASSERT_TRUE(file->Append("abc").ok());
  ASSERT_TRUE(file->Reserve(64).ok());
  ASSERT_TRUE(file->Sync().ok());  // the reserved size is durable now
  ASSERT_TRUE(file->Append("XYZ").ok());
  ASSERT_TRUE(file->Append("123").ok());
  env.Crash();
  EXPECT_EQ(Contents(env, "/wal"), "abc" + std::string(61, '\0'));

  // Synced, the rewritten bytes stay; written again and not synced, they go back to what was synced.
  file = Append(env, "/wal");  // appends at the end: past the zeros
  ASSERT_TRUE(file->Truncate(3).ok());
  ASSERT_TRUE(file->Reserve(64).ok());
  ASSERT_TRUE(file->Append("XYZ").ok());
  ASSERT_TRUE(file->Sync().ok());
  ASSERT_TRUE(file->Append("123").ok());
  ASSERT_TRUE(file->Truncate(5).ok());  // below the synced size: the durable bytes are kept aside
  env.Crash(CrashOptions{.torn = true, .seed = 5});
  EXPECT_EQ(Contents(env, "/wal"), "abcXYZ" + std::string(58, '\0'));
}

TEST(FaultEnvTest, TornCrashKeepsAPrefixOfBytesWrittenOverReservedZeros) {
  std::string unsynced;
  for (int i = 0; i < 3000; ++i) unsynced += char('a' + i % 26);
  bool saw_partial = false, saw_whole = false;
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    FaultInjectionEnv env;
    auto file = Append(env, "/wal");
    ASSERT_TRUE(env.SyncDir("/").ok());
    ASSERT_TRUE(file->Append("head").ok());
    ASSERT_TRUE(file->Reserve(8192).ok());
    ASSERT_TRUE(file->Sync().ok());
    ASSERT_TRUE(file->Append(unsynced).ok());
    env.Crash(CrashOptions{.torn = true, .seed = seed});
    std::string after = Contents(env, "/wal");
    ASSERT_EQ(after.size(), 8192u) << "seed " << seed;  // the synced size
    ASSERT_EQ(after.substr(0, 4), "head");
    size_t written = after.find_last_not_of('\0');
    size_t kept = written == std::string::npos || written < 4 ? 0 : written + 1 - 4;
    // What stays is a prefix of the bytes written (its tail maybe zeroed), then the zeros.
    ASSERT_LE(kept, unsynced.size()) << "seed " << seed;
    ASSERT_EQ(after.substr(4, kept), unsynced.substr(0, kept)) << "seed " << seed;
    saw_partial |= kept > 0 && kept < unsynced.size();
    saw_whole |= kept == unsynced.size();
  }
  EXPECT_TRUE(saw_partial);
  EXPECT_TRUE(saw_whole);
}

TEST(FaultEnvTest, ReservedSpaceCountsAgainstTheLimitAndAppendsIntoItNeedNoRoom) {
  FaultInjectionEnv env;
  env.SetSpaceLimit(100);
  auto file = Append(env, "/wal");
  ASSERT_TRUE(file->Append(std::string(10, 'a')).ok());
  ASSERT_TRUE(file->Reserve(60).ok());
  EXPECT_EQ(env.UsedBytes(), 60u);
  Status too_big = file->Reserve(200);
  EXPECT_EQ(too_big.code(), StatusCode::kIoError);
  EXPECT_NE(too_big.message().find("no space left on device"), std::string::npos) << too_big.ToString();
  EXPECT_EQ(*env.FileSize("/wal"), 60u);  // nothing reserved
  // Another file fills the disk; appends into the reserved space still succeed.
  ASSERT_TRUE(env.WriteWholeFile("/other", std::string(40, 'o'), false).ok());
  EXPECT_EQ(env.UsedBytes(), 100u);
  ASSERT_TRUE(file->Append(std::string(50, 'b')).ok());
  Status full = file->Append("c");
  EXPECT_NE(full.message().find("no space left on device"), std::string::npos) << full.ToString();
  EXPECT_EQ(Contents(env, "/wal"), std::string(10, 'a') + std::string(50, 'b'));
  // Straddling the reserved end: what fits in the reservation is written.
  ASSERT_TRUE(file->Truncate(55).ok());
  EXPECT_FALSE(file->Append(std::string(10, 'd')).ok());
  EXPECT_EQ(Contents(env, "/wal"), std::string(10, 'a') + std::string(45, 'b') + std::string(5, 'd'));
}

TEST(FaultEnvTest, ReserveFaultsAreInjectedAndCounted) {
  FaultInjectionEnv env;
  env.AddFault({.op = FaultOp::kReserve, .path_contains = "wal", .times = 1, .error = EIO});
  auto file = Append(env, "/wal");
  Status failed = file->Reserve(100);
  EXPECT_EQ(failed.code(), StatusCode::kIoError);
  EXPECT_NE(failed.message().find("injected"), std::string::npos) << failed.ToString();
  EXPECT_EQ(*env.FileSize("/wal"), 0u);
  ASSERT_TRUE(file->Reserve(100).ok());
  EXPECT_EQ(*env.FileSize("/wal"), 100u);
  EXPECT_EQ(env.FailedOperations(), 1u);
}

TEST(PosixEnvTest, ReserveAllocatesZerosThatAppendsOverwrite) {
  char pattern[] = "/tmp/tracery-env-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  std::string directory = pattern, path = directory + "/segment";
  Env& env = DefaultEnv();
  {
    auto file = env.OpenAppendable(path);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    ASSERT_TRUE((*file)->Append("abc").ok());
    ASSERT_TRUE((*file)->Reserve(1 << 16).ok());
    EXPECT_EQ(*env.FileSize(path), uint64_t(1 << 16));
    ASSERT_TRUE((*file)->Append("def").ok());
    ASSERT_TRUE((*file)->Sync().ok());
    EXPECT_EQ(*env.FileSize(path), uint64_t(1 << 16));  // the appends filled reserved space
    ASSERT_TRUE((*file)->Truncate(6).ok());
    ASSERT_TRUE((*file)->Append("g").ok());
    ASSERT_TRUE((*file)->Close().ok());
  }
  {
    auto file = env.OpenAppendable(path);  // appends go on at the end
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE((*file)->Append("h").ok());
    ASSERT_TRUE((*file)->Close().ok());
  }
  auto reader = env.OpenReadable(path);
  ASSERT_TRUE(reader.ok());
  std::string data(8, '\0');
  ASSERT_TRUE((*reader)->Read(0, 8, data.data()).ok());
  EXPECT_EQ(data, "abcdefgh");
  EXPECT_EQ(*(*reader)->Size(), 8u);
  ASSERT_TRUE(env.RemoveFile(path).ok());
  ASSERT_TRUE(env.RemoveDir(directory).ok());
}

// ---- injected faults --------------------------------------------------------------------------

TEST(FaultEnvTest, SpaceLimitMakesAPartialWriteThenRoomComesBack) {
  FaultInjectionEnv env;
  env.SetSpaceLimit(100);
  ASSERT_TRUE(env.WriteWholeFile("/other", std::string(40, 'o'), false).ok());
  auto file = Append(env, "/wal");
  ASSERT_TRUE(file->Append(std::string(50, 'a')).ok());
  Status full = file->Append(std::string(30, 'b'));
  EXPECT_EQ(full.code(), StatusCode::kIoError);
  EXPECT_NE(full.message().find("no space left on device"), std::string::npos) << full.ToString();
  EXPECT_NE(full.message().find("/wal"), std::string::npos);
  EXPECT_EQ(Contents(env, "/wal"), std::string(50, 'a') + std::string(10, 'b'));  // what fitted
  EXPECT_EQ(env.UsedBytes(), 100u);
  EXPECT_FALSE(file->Append("c").ok());
  EXPECT_EQ(env.FailedOperations(), 2u);

  ASSERT_TRUE(env.RemoveFile("/other").ok());
  ASSERT_TRUE(file->Append(std::string(40, 'c')).ok());
  EXPECT_FALSE(file->Append("d").ok());
  ASSERT_TRUE(file->Truncate(50).ok());
  ASSERT_TRUE(file->Append(std::string(50, 'e')).ok());
  env.SetSpaceLimit(0);
  ASSERT_TRUE(file->Append(std::string(1000, 'f')).ok());
}

TEST(FaultEnvTest, FaultRuleSkipsThenFailsTimesOnMatchingPaths) {
  FaultInjectionEnv env;
  env.AddFault({.op = FaultOp::kWrite, .path_contains = "wal", .skip = 2, .times = 2});
  // A missing parent is a real error, not an injected one: the rule does not count it.
  EXPECT_EQ(env.OpenAppendable("/db/wal-1").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(env.CreateDir("/db").ok());
  auto wal = Append(env, "/db/wal-1");
  auto other = Append(env, "/db-other");
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(other->Append("x").ok());  // another path
  std::vector<bool> results;
  for (char c : std::string("12345")) results.push_back(wal->Append(std::string(1, c)).ok());
  EXPECT_EQ(results, (std::vector<bool>{true, true, false, false, true}));
  EXPECT_EQ(Contents(env, "/db/wal-1"), "125");  // failed writes wrote nothing
  EXPECT_EQ(env.FailedOperations(), 2u);

  env.ClearFaults();
  env.AddFault({.op = FaultOp::kSync, .times = UINT64_MAX, .error = ENOSPC});
  for (int i = 0; i < 3; ++i) {
    Status sync = wal->Sync();
    EXPECT_NE(sync.message().find("no space left on device"), std::string::npos) << sync.ToString();
  }
  env.Crash();  // the failed syncs made nothing durable; Crash clears the rules
  EXPECT_FALSE(Exists(env, "/db"));
  ASSERT_TRUE(env.WriteWholeFile("/f", "x", true).ok());
}

TEST(FaultEnvTest, PartialWriteKeepsAboutHalf) {
  FaultInjectionEnv env;
  env.AddFault({.op = FaultOp::kWrite, .partial = true});
  auto file = Append(env, "/wal");
  std::string_view parts[] = {"0123", "456789"};
  Status status = file->Append(parts, 2);
  EXPECT_EQ(status.code(), StatusCode::kIoError);
  EXPECT_NE(status.message().find("input/output error"), std::string::npos) << status.ToString();
  EXPECT_EQ(Contents(env, "/wal"), "01234");
}

TEST(FaultEnvTest, FailedOperationsHaveNoEffect) {
  FaultInjectionEnv env;
  ASSERT_TRUE(env.WriteWholeFile("/a", "a", true).ok());
  for (FaultOp op : {FaultOp::kOpen, FaultOp::kRename, FaultOp::kRemove, FaultOp::kCreateDir, FaultOp::kSyncDir,
                     FaultOp::kList, FaultOp::kRead}) {
    env.AddFault({.op = op});
  }
  EXPECT_FALSE(env.OpenAppendable("/b").ok());
  EXPECT_FALSE(env.Rename("/a", "/b").ok());
  EXPECT_FALSE(env.RemoveFile("/a").ok());
  EXPECT_FALSE(env.CreateDir("/d").ok());
  EXPECT_FALSE(env.SyncDir("/").ok());
  EXPECT_FALSE(env.FileSize("/a").ok());
  Result<std::string> read = env.ReadWholeFile("/a");  // fails in Size
  EXPECT_FALSE(read.ok());
  EXPECT_EQ(env.FailedOperations(), 7u);
  EXPECT_EQ(Names(env, "/"), std::vector<std::string>{"a"});
  EXPECT_EQ(Contents(env, "/a"), "a");
}

TEST(FaultEnvTest, CrashAfterKillsEveryLaterOperation) {
  FaultInjectionEnv env;
  ASSERT_TRUE(env.WriteWholeFile("/wal", "head", true).ok());
  auto file = Append(env, "/wal");
  Result<std::unique_ptr<RandomAccessFile>> reader = env.OpenReadable("/wal");
  ASSERT_TRUE(reader.ok());
  uint64_t before = env.OperationCount();
  env.CrashAfter(2);
  EXPECT_TRUE(file->Append("+1").ok());
  EXPECT_TRUE(file->Sync().ok());
  Status dead = file->Append("+2");
  EXPECT_EQ(dead.code(), StatusCode::kIoError);
  EXPECT_NE(dead.message().find("process has died"), std::string::npos) << dead.ToString();
  EXPECT_FALSE(env.RemoveFile("/wal").ok());
  EXPECT_FALSE(env.CreateDir("/x").ok());
  char byte;
  EXPECT_FALSE((*reader)->Read(0, 1, &byte).ok());
  EXPECT_EQ(env.OperationCount(), before + 6);
  EXPECT_EQ(env.FailedOperations(), 4u);

  env.Crash();
  EXPECT_EQ(Contents(env, "/wal"), "head+1");
  EXPECT_FALSE(Exists(env, "/x"));
  // Files opened before the crash stay dead on the restarted machine.
  Status stale = file->Append("+3");
  EXPECT_EQ(stale.code(), StatusCode::kIoError);
  EXPECT_NE(stale.message().find("before a crash"), std::string::npos) << stale.ToString();
  EXPECT_FALSE(file->Sync().ok());
  EXPECT_FALSE((*reader)->Read(0, 1, &byte).ok());
  EXPECT_FALSE((*reader)->Size().ok());
  EXPECT_EQ(Contents(env, "/wal"), "head+1");
}

// The pattern a recovery test follows: run the workload once to count its operations, then
// crash it after each one and check that what survives is a state the workload went through.
TEST(FaultEnvTest, CrashAfterEveryOperationOfAWorkload) {
  auto workload = [](FaultInjectionEnv& env) {
    if (!CreateDirs(env, "/db").ok()) return;
    if (!env.WriteWholeFile("/db/manifest.tmp", "v1", true).ok()) return;
    if (!env.Rename("/db/manifest.tmp", "/db/manifest").ok()) return;
    if (!env.SyncDir("/db").ok()) return;
    (void)env.WriteWholeFile("/db/manifest.tmp", "v2", true);
    (void)env.Rename("/db/manifest.tmp", "/db/manifest");
    (void)env.SyncDir("/db");
  };
  FaultInjectionEnv counting;
  workload(counting);
  uint64_t count = counting.OperationCount();
  ASSERT_GT(count, 10u);
  std::set<std::string> seen;
  for (uint64_t k = 0; k <= count; ++k) {
    FaultInjectionEnv env;
    env.CrashAfter(k);
    workload(env);
    env.Crash();
    std::string manifest = Exists(env, "/db/manifest") ? Contents(env, "/db/manifest") : "none";
    ASSERT_TRUE(manifest == "none" || manifest == "v1" || manifest == "v2") << manifest;
    seen.insert(manifest);
  }
  EXPECT_EQ(seen, (std::set<std::string>{"none", "v1", "v2"}));
}

// ---- clocks, threads, large files -------------------------------------------------------------

TEST(FaultEnvTest, ManualClock) {
  FaultInjectionEnv env;
  int64_t real = DefaultEnv().NowUnixNanos();
  EXPECT_LT(std::abs(env.NowUnixNanos() - real), int64_t(60e9));
  env.UseManualClock(1'000'000'000);
  EXPECT_EQ(env.NowUnixNanos(), 1'000'000'000);
  EXPECT_EQ(env.NowMonotonicNanos(), 1'000'000'000);
  env.AdvanceClock(2s);
  env.AdvanceClock(int64_t(5));
  EXPECT_EQ(env.NowUnixNanos(), 3'000'000'005);
  EXPECT_EQ(env.NowMonotonicNanos(), 3'000'000'005);
  env.AdvanceClock(-1s);  // the wall clock steps back; the monotonic one does not
  EXPECT_EQ(env.NowUnixNanos(), 2'000'000'005);
  EXPECT_EQ(env.NowMonotonicNanos(), 3'000'000'005);
}

TEST(FaultEnvTest, ConcurrentWritersAndSyncs) {
  FaultInjectionEnv env;
  ASSERT_TRUE(CreateDirs(env, "/wal").ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&env, t] {
      std::string path = "/wal/" + std::to_string(t);
      auto file = Append(env, path);
      for (int i = 0; i < 500; ++i) {
        EXPECT_TRUE(file->Append("0123456789").ok());
        if (i % 50 == 0) {
          EXPECT_TRUE(file->Sync().ok());
        }
        if (i % 100 == 0) {
          EXPECT_TRUE(env.SyncDir("/wal").ok());
        }
        (void)env.ListDir("/wal");
      }
      EXPECT_TRUE(file->Sync().ok());
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_TRUE(env.SyncDir("/wal").ok());
  env.Crash();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(Contents(env, "/wal/" + std::to_string(t)).size(), 5000u);
  EXPECT_EQ(env.UsedBytes(), 20000u);
}

// Appending to and syncing a large file must not copy it each time: 32 MB in 8192 synced
// appends would copy over 100 GB if it did.
TEST(FaultEnvTest, LargeFileSyncedThousandsOfTimes) {
  FaultInjectionEnv env;
  auto file = Append(env, "/big");
  std::string chunk(4096, 'z');
  for (int i = 0; i < 8192; ++i) {
    ASSERT_TRUE(file->Append(chunk).ok());
    ASSERT_TRUE(file->Sync().ok());
  }
  ASSERT_TRUE(file->Append(chunk).ok());
  ASSERT_TRUE(env.SyncDir("/").ok());
  env.Crash(CrashOptions{.torn = true});
  Result<uint64_t> size = env.FileSize("/big");
  ASSERT_TRUE(size.ok());
  EXPECT_GE(*size, 8192u * 4096u);
}

}  // namespace
}  // namespace tracery
