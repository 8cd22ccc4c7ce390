// The Env seam (LevelDB's idea): every file operation and clock reading of the storage path
// (write-ahead log, local object store, block writer, ingester) goes through an Env, so tests
// substitute one that fails any operation, fills the disk or "crashes" after any operation
// (common/fault_env.h), and production uses DefaultEnv(): POSIX files and the system clocks.
//
// Durability contract, as on a POSIX file system: data written to a file is durable once
// WritableFile::Sync returned Ok; a created, renamed or removed directory entry is durable
// once SyncDir of its parent directory returned Ok. Nothing else is.
//
// Paths are plain strings joined with '/'. Errors are IoError (message names the path and the
// errno text; ENOSPC says "no space left on device"), NotFound for a missing file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tracery {

// A file open for writing at its append position: the end of what was appended (the file's
// end when opened). The file may extend past it with zeros reserved by Reserve. One thread at
// a time.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Writes every part, in order, at the append position and moves it past them; bytes
  // reserved there are overwritten. On failure an unknown prefix of the parts may have reached
  // the file: callers that must not leave it there Truncate.
  virtual Status Append(const std::string_view* parts, size_t count) = 0;
  Status Append(std::string_view data) { return Append(&data, 1); }
  // Makes the file's data durable (fdatasync), and its size.
  virtual Status Sync() = 0;
  // Extends the file to `size` bytes with zeros, written (not just allocated: space
  // fallocate leaves unwritten is converted by the first write into it, a change the next
  // sync must write too); the append position stays. Appends then fill space the file
  // already has, so the sync after them writes data only: no new size, no allocation. The
  // zeros reach the disk with the next Sync. Fails (IoError) when the disk is full; after a
  // failure the file may extend past the append position with zeros all the same.
  virtual Status Reserve(uint64_t size) = 0;
  // Cuts the file to `size` bytes (only ever used to shrink it); the append position moves
  // back to `size` when it was past it.
  virtual Status Truncate(uint64_t size) = 0;
  virtual Status Close() = 0;
};

// A file open for reading at any offset. Thread-safe.
class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;
  // Reads exactly `length` bytes at `offset` into `out`: Corruption when the file ends
  // before, IoError when the read fails.
  virtual Status Read(uint64_t offset, size_t length, char* out) const = 0;
  virtual Result<uint64_t> Size() const = 0;
};

struct DirectoryEntry {
  std::string name;
  bool is_directory = false;
};

class Env {
 public:
  virtual ~Env() = default;

  // Opens `path` for appending, creating it (empty) when missing.
  virtual Result<std::unique_ptr<WritableFile>> OpenAppendable(const std::string& path) = 0;
  // Creates `path`, or truncates it when it exists.
  virtual Result<std::unique_ptr<WritableFile>> CreateWritable(const std::string& path) = 0;
  // NotFound when missing.
  virtual Result<std::unique_ptr<RandomAccessFile>> OpenReadable(const std::string& path) = 0;

  // Atomically replaces `to` with `from` (rename(2)).
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // NotFound when missing.
  virtual Status RemoveFile(const std::string& path) = 0;
  // Creates one directory level; Ok when it already exists. The parent must exist.
  virtual Status CreateDir(const std::string& path) = 0;
  // Removes an empty directory; NotFound when missing.
  virtual Status RemoveDir(const std::string& path) = 0;
  // Makes the directory's entries (creations, renames, removals in it) durable.
  virtual Status SyncDir(const std::string& path) = 0;
  // Entries of a directory (not "." or ".."), in no particular order; NotFound when missing.
  virtual Result<std::vector<DirectoryEntry>> ListDir(const std::string& path) = 0;
  // Size of a file (0 for a directory); NotFound when missing.
  virtual Result<uint64_t> FileSize(const std::string& path) = 0;

  // Wall clock (unix nanoseconds) and a monotonic clock (nanoseconds from any origin).
  virtual int64_t NowUnixNanos() = 0;
  virtual int64_t NowMonotonicNanos() = 0;
};

// POSIX files and the system clocks; one instance for the process.
Env& DefaultEnv();

// Creates `path` and any missing parents, syncing each directory it creates into its parent
// so that the new directory survives a crash. Ok when it exists (its parent is synced again).
Status CreateDirs(Env& env, const std::string& path);

// "a/b" + "c" -> "a/b/c"; "" + "c" -> "c".
std::string JoinPath(std::string_view directory, std::string_view name);
// The directory part of a path: "a/b/c" -> "a/b", "c" -> ".".
std::string ParentPath(std::string_view path);

}  // namespace tracery
