// Write-ahead log: append-only segment files of CRC32C-framed records (docs/wal-format.md),
// written through the Env seam.
//
// Records are written in rounds, one round at a time: every record queued since the last
// round, with one gather write and (FsyncMode::kBatch) one sync, group commit; then their
// callbacks run, in order, with where each record's payload lies. A callback with Ok means the
// record is durable (written, and synced with FsyncMode::kBatch) and readable with Read().
// With kBatch a writer thread writes every round, so Append() returns at once and never
// waits for a disk. With kNone a round is only a write: the thread that appends while no round
// is being written writes it itself (its callback runs before Append returns); records
// appended meanwhile go to the writer thread. With kBatch, a record appended from a request
// handler on an event loop (common/end_of_turn.h) wakes the writer only once that loop has run
// what was ready with it, so that requests that arrived together share a sync.
//
// Space (FsyncMode::kBatch): the open segment's file is extended ahead of the records with
// zeros (WritableFile::Reserve; 64 KiB at first, doubling up to 1 MiB at a time), so that a
// sync writes the records only, not a new file size or allocation each time: one device write
// fewer per sync. A sealed segment is cut back to its records; zeros found after the last
// record at replay (a crash) are cut without counting as a torn tail.
//
// Faults: the WAL never leaves a failed write behind acknowledged records. When a write or a
// sync fails, the records of that round get Unavailable, the segment is cut back to its last
// good frame and synced, and the next round starts a new segment. When even that cut fails,
// every later Append gets Unavailable until a round manages it: the log never appends after
// bytes it could not take back. A disk that fills up and empties again is ridden out this way
// with no restart. Replay refuses to start on a read error rather than truncate what it could
// not read.
//
// Records are opaque bytes; the ingester owns their layout. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/env.h"
#include "common/status.h"

namespace tracery::wal {

enum class FsyncMode { kBatch, kNone };

struct Options {
  std::string directory;
  uint64_t segment_bytes = 128ull << 20;  // a new segment starts past this size
  FsyncMode fsync = FsyncMode::kBatch;
  Env* env = nullptr;  // DefaultEnv() when null
};

// Where a record's payload lies: segment number, byte offset of the payload (after the frame
// header) and its length.
struct RecordLocation {
  uint64_t segment = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
};

struct ReplayReport {
  uint64_t segments = 0, records = 0, bytes = 0;
  uint64_t torn_bytes_cut = 0;  // bytes cut off torn or corrupt tails
  // Bytes cut off tails of zeros: space reserved ahead and not written before a crash (or
  // pages allocated and never written). No record was there.
  uint64_t zero_bytes_cut = 0;
};

struct WalStats {
  uint64_t bytes_written = 0, records_written = 0, syncs = 0;
  uint64_t failed_records = 0;  // answered with an error because a write or sync failed
};

// Record framing: [u32 payload length][u32 crc32c(payload)][payload]. A zero length is never
// written, so a zero-filled (torn) page never reads as a record.
constexpr size_t kFrameHeaderBytes = 8;

// A buffer for one record: the frame header's room first, then the caller appends the
// payload and passes the whole string to Append, which fills the header in place (no copy).
std::string NewRecordBuffer(size_t payload_capacity);

class WriteAheadLog {
 public:
  using Callback = std::function<void(Status, RecordLocation)>;
  using ReplayVisitor = std::function<void(RecordLocation, std::string_view payload)>;

  // Opens the directory (creating it durably); new records go to a segment numbered after
  // the last one found. Replay() then reads the segments that were there.
  static Result<std::unique_ptr<WriteAheadLog>> Open(const Options& options);
  ~WriteAheadLog();

  // Replays every segment found at Open, oldest first. A torn or corrupt tail is cut off and
  // counted, never fatal; a read error fails the replay with nothing cut. The visitor may
  // Append (new records go to new segments). Call once, before other Appends.
  Status Replay(const ReplayVisitor& visitor, ReplayReport* report);

  // Queues a record made with NewRecordBuffer. `done` runs once the record is durable, or
  // failed (Unavailable): on the writer thread, or (FsyncMode::kNone) possibly on the calling
  // thread before Append returns. Within an EndOfTurnScope (kBatch) the round waits for the end
  // of the event loop's turn: whoever appends must not block that loop waiting for `done`.
  // After Close, `done` gets Unavailable at once.
  void Append(std::string record, Callback done);

  // Reads `length` bytes at `offset` of a segment (a payload or a part of one).
  Status Read(uint64_t segment, uint64_t offset, size_t length, char* out);

  // Seals the segment being written (if it holds anything) so that it can be removed once
  // its spans are stored elsewhere; later records go to a new segment. Returns once done.
  void Rotate();

  // Segments that are complete (no longer appended to), oldest first.
  std::vector<uint64_t> SealedSegments() const;
  // Deletes a sealed segment once everything in it is stored elsewhere.
  Status RemoveSegment(uint64_t segment);

  // False while the log refuses records because it could not take back a failed write.
  bool Writable() const;
  WalStats Stats() const;
  void Close();  // drains the queue, syncs, stops the writer

 private:
  WriteAheadLog(Options options, uint64_t next_segment, std::vector<uint64_t> existing);
  void WriterLoop();
  // Starts the round of what is queued (the caller holds `lock`, given back unlocked): with
  // FsyncMode::kNone written by the calling thread, else by the writer thread, woken.
  void StartRound(std::unique_lock<std::mutex>& lock);
  void StartDeferredRound();  // at the end of an event loop's turn (common/end_of_turn.h)
  // What a deferred round holds of the log: null once the log is being destroyed.
  struct DeferredRounds {
    std::mutex mutex;
    WriteAheadLog* log = nullptr;
  };
  struct Pending {
    std::string frame;
    Callback done;
  };
  void WriteRound(std::deque<Pending>& batch);
  // Writes records [first, last) of `batch` to the open segment and syncs; false on failure.
  Status WriteRun(std::deque<Pending>& batch, size_t first, size_t last);
  Status OpenNextSegment();
  // After a round's records were written up to `end`: when they reached past the reserved
  // zeros, reserves the next step after them.
  void ReserveAhead(uint64_t end);
  // Cuts zeros reserved past the records off the open segment (before it is closed).
  void CutReservedTail();
  void SealOpenSegment();
  // After a failed write or sync: cut the segment back to its last good frame.
  void TakeBackFailedTail(const Status& cause);
  std::string SegmentPath(uint64_t segment) const;
  std::shared_ptr<RandomAccessFile> Reader(uint64_t segment, Status& status);

  const Options options_;
  Env& env_;
  std::vector<uint64_t> to_replay_;

  mutable std::mutex mutex_;  // guards everything below but the writer-owned fields
  std::condition_variable wake_, rotated_;
  std::deque<Pending> queue_;
  bool closing_ = false;
  bool writing_ = false;  // a round is being written; the writer-owned fields below are taken
  bool round_deferred_ = false;  // a round will start at the end of an event loop's turn
  bool rotate_requested_ = false;
  uint64_t rotations_ = 0;
  std::vector<uint64_t> sealed_;
  WalStats stats_;
  bool writable_ = true;
  std::map<uint64_t, std::shared_ptr<RandomAccessFile>> readers_;
  std::shared_ptr<DeferredRounds> deferred_;

  // Owned by whoever writes the round in progress (writing_): the writer thread, or with
  // FsyncMode::kNone an appending thread.
  uint64_t next_segment_;
  uint64_t open_segment_ = 0;  // 0: none open
  std::unique_ptr<WritableFile> file_;
  uint64_t good_bytes_ = 0;      // the open segment's bytes that are written (and synced)
  bool tail_dirty_ = false;      // bytes past good_bytes_ may be in the file
  uint64_t reserved_bytes_ = 0;  // the open segment's size with its reserved zeros
  bool reserve_failed_ = false;  // the open segment takes no more reservations
  std::thread writer_;
};

}  // namespace tracery::wal
