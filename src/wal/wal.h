// Write-ahead log: append-only segment files of CRC32C-framed records (docs/wal-format.md).
//
// Append() hands a record to one writer thread and returns at once; the record's callback runs
// (on the writer thread) after the record is written and, with FsyncMode::kBatch, synced.
// The writer drains everything queued since its last round, writes it with one write() and
// syncs once: group commit, so many concurrent requests share one fsync.
//
// Records are opaque bytes; the ingester owns their layout. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"

namespace tracery::wal {

enum class FsyncMode { kBatch, kNone };

struct Options {
  std::string directory;
  uint64_t segment_bytes = 128ull << 20;  // a new segment starts past this size
  FsyncMode fsync = FsyncMode::kBatch;
};

struct ReplayReport {
  uint64_t segments = 0, records = 0, bytes = 0;
  uint64_t torn_bytes_cut = 0;  // bytes cut off torn or corrupt tails
};

struct WalStats {
  uint64_t bytes_written = 0, records_written = 0, syncs = 0;
};

class WriteAheadLog {
 public:
  using Callback = std::function<void(Status)>;
  using ReplayVisitor = std::function<void(uint64_t segment, std::string_view record)>;

  // Opens the directory (creating it) and replays every segment, oldest first, through
  // `visitor`. A torn or corrupt tail is cut off the segment and counted, never fatal. New
  // records go to a fresh segment numbered after the last one found.
  static Result<std::unique_ptr<WriteAheadLog>> Open(const Options& options, const ReplayVisitor& visitor,
                                                     ReplayReport* report);
  ~WriteAheadLog();

  // Queues a record; returns the segment it will be written to. `done` runs once it is
  // durable (or failed). After Close, `done` gets Unavailable.
  uint64_t Append(std::string record, Callback done);

  // Seals the current segment (if it holds anything) so that it can be removed once its
  // spans are flushed; later appends go to a new segment. Returns when the seal is done.
  void Rotate();

  // Segments that are complete (no longer appended to), oldest first.
  std::vector<uint64_t> SealedSegments() const;
  // Deletes a sealed segment once everything in it is stored elsewhere.
  Status RemoveSegment(uint64_t segment);

  WalStats Stats() const;
  void Close();  // drains the queue, syncs, stops the writer

 private:
  explicit WriteAheadLog(Options options, uint64_t first_segment);
  void WriterLoop();
  std::string SegmentPath(uint64_t segment) const;

  struct Pending {
    uint64_t segment;
    std::string frame;
    Callback done;
  };

  const Options options_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Pending> queue_;
  bool closing_ = false;
  uint64_t append_segment_;         // segment new appends go to
  uint64_t append_segment_bytes_ = 0;
  uint64_t open_segment_ = 0;       // segment the writer has open (0: none)
  int fd_ = -1;
  std::vector<uint64_t> sealed_;
  WalStats stats_;
  std::thread writer_;
};

// Record framing, exposed for the tests: [u32 payload length][u32 crc32c(payload)][payload].
std::string FrameRecord(std::string_view payload);
constexpr size_t kFrameHeaderBytes = 8;
constexpr uint32_t kMaxRecordBytes = 256u << 20;

}  // namespace tracery::wal
