// FaultInjectionEnv: an in-memory Env for tests that models a POSIX file system with a page
// cache, so a test can fail any operation, fill the disk, or pull the plug at any point and
// check what a restarted process finds.
//
// Model. Files and directories are inodes; directory entries point at them, so a rename moves
// the same inode. Every file has its current data (what reads see) and its durable data (as of
// its last successful Sync); every directory has its current entries and its durable entries
// (as of its last successful SyncDir). Crash() throws away everything that is not durable, as
// power loss does: unsynced data, and created, renamed or removed entries whose parent was not
// synced. Paths are '/'-separated; relative paths are taken from the root, "." is the root.
//
// Faults. FaultRule fails chosen operations; SetSpaceLimit makes a full disk; CrashAfter kills
// the process after N operations (every operation after that fails and does nothing) until the
// test calls Crash() and reopens its components on the same env, now the restarted machine.
//
// Threads: every member, and every file it opens, may be called from any thread (one mutex).
// Files opened from the env keep its state alive, so they may outlive the env object.
#pragma once

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/env.h"
#include "common/status.h"

namespace tracery {

// The operations a FaultRule can fail.
enum class FaultOp {
  kOpen,       // OpenAppendable, CreateWritable, OpenReadable
  kWrite,      // WritableFile::Append
  kSync,       // WritableFile::Sync
  kRead,       // RandomAccessFile::Read and Size
  kTruncate,   // WritableFile::Truncate
  kReserve,    // WritableFile::Reserve
  kRename,
  kRemove,     // RemoveFile
  kCreateDir,
  kRemoveDir,
  kSyncDir,
  kList,       // ListDir and FileSize
  kClose,      // WritableFile::Close (the file is closed all the same)
};

// Fails operations of one kind on matching paths: the first `skip` matches are let through,
// the next `times` fail with `error`, later ones are let through again. Rules are checked in
// the order they were added; the first that fails an operation decides its error.
struct FaultRule {
  FaultOp op = FaultOp::kWrite;
  std::string path_contains;  // "" matches every path; a rename matches on either path
  uint64_t skip = 0;
  uint64_t times = 1;         // UINT64_MAX: forever
  int error = EIO;            // EIO or ENOSPC
  bool partial = false;       // a failed Append first writes about half of its bytes
};

struct CrashOptions {
  // A file with unsynced appended data keeps a random-length prefix of it, and half of the
  // time the last (up to 512) kept bytes read as zeros: a torn page.
  bool torn = false;
  uint64_t seed = 1;  // of the random choices above
};

class FaultInjectionState;  // the file system and the fault settings, in fault_env.cpp

class FaultInjectionEnv final : public Env {
 public:
  FaultInjectionEnv();
  ~FaultInjectionEnv() override;
  FaultInjectionEnv(const FaultInjectionEnv&) = delete;
  FaultInjectionEnv& operator=(const FaultInjectionEnv&) = delete;

  Result<std::unique_ptr<WritableFile>> OpenAppendable(const std::string& path) override;
  Result<std::unique_ptr<WritableFile>> CreateWritable(const std::string& path) override;
  Result<std::unique_ptr<RandomAccessFile>> OpenReadable(const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status RemoveFile(const std::string& path) override;
  Status CreateDir(const std::string& path) override;
  Status RemoveDir(const std::string& path) override;
  Status SyncDir(const std::string& path) override;
  Result<std::vector<DirectoryEntry>> ListDir(const std::string& path) override;
  Result<uint64_t> FileSize(const std::string& path) override;
  int64_t NowUnixNanos() override;
  int64_t NowMonotonicNanos() override;

  void AddFault(FaultRule rule);
  void ClearFaults();
  // Total bytes of all files' current data may not pass `bytes` (0: no limit). An Append that
  // would pass it writes what fits and fails with ENOSPC (one into space a Reserve made needs
  // no more room), a Reserve that would pass it fails with ENOSPC and reserves nothing;
  // removing or truncating files frees room. Files already over the limit keep their data.
  void SetSpaceLimit(uint64_t bytes);
  uint64_t UsedBytes() const;

  // Counting from now, `operations` more operations run; every later one fails with IoError
  // "process has died" and has no effect, until Crash().
  void CrashAfter(uint64_t operations);
  // Power loss: only durable data and entries remain (see the file comment). Also clears the
  // fault rules and the crash point (the space limit stays: it is the disk's size), and kills
  // every file opened before: their operations fail.
  void Crash(CrashOptions options = {});
  // Operations (file and directory calls, including failed ones; not clock readings) since
  // construction, so a test can run a workload once and then crash it after each of them.
  uint64_t OperationCount() const;
  // Failures the env made on purpose: fault rules, the space limit, and the crash point.
  uint64_t FailedOperations() const;

  // Both clocks stop at `unix_nanos` and move only by AdvanceClock. AdvanceClock on the real
  // clocks first stops them at their current readings. A negative step moves only the wall
  // clock: the monotonic one never goes back.
  void UseManualClock(int64_t unix_nanos);
  void AdvanceClock(std::chrono::nanoseconds step);
  void AdvanceClock(int64_t nanos) { AdvanceClock(std::chrono::nanoseconds(nanos)); }

  // Test conveniences built on the operations above (so they count, and faults apply).
  Result<std::string> ReadWholeFile(const std::string& path);
  // Creates or replaces `path` with `data`; with `sync`, also syncs the file and its parent
  // directory so that it survives a Crash.
  Status WriteWholeFile(const std::string& path, std::string_view data, bool sync);

 private:
  std::shared_ptr<FaultInjectionState> state_;
};

}  // namespace tracery
