#include "wal/wal.h"

#include <pthread.h>

#include <algorithm>
#include <cstring>

#include <spdlog/spdlog.h>

#include "common/coding.h"
#include "common/crc32c.h"
#include "common/end_of_turn.h"

namespace tracery::wal {

std::string NewRecordBuffer(size_t payload_capacity) {
  std::string record;
  record.reserve(kFrameHeaderBytes + payload_capacity);
  record.assign(kFrameHeaderBytes, '\0');
  return record;
}

namespace {

bool ParseSegmentName(const std::string& name, uint64_t& segment) {
  if (name.size() != 24 || name.compare(20, 4, ".wal") != 0) return false;
  segment = 0;
  for (size_t i = 0; i < 20; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    segment = segment * 10 + uint64_t(name[i] - '0');
  }
  return segment > 0;
}

void StoreFixed32(char* at, uint32_t value) { std::memcpy(at, &value, 4); }

// Whether bytes [from, to) of a file are all zeros.
Status AllZeros(const RandomAccessFile& file, uint64_t from, uint64_t to, bool& zeros) {
  std::string chunk;
  for (uint64_t at = from; at < to;) {
    chunk.resize(size_t(std::min<uint64_t>(to - at, 1 << 16)));
    TRACERY_RETURN_IF_ERROR(file.Read(at, chunk.size(), chunk.data()));
    if (chunk.find_first_not_of('\0') != std::string::npos) {
      zeros = false;
      return Status::Ok();
    }
    at += chunk.size();
  }
  zeros = true;
  return Status::Ok();
}

// Reserved space grows by doubling between these steps (WriteAheadLog::ReserveAhead). Its
// zeros go to the disk with the round's sync: the larger step is the most one sync carries.
constexpr uint64_t kFirstReserveBytes = 64 << 10;
constexpr uint64_t kMaxReserveStepBytes = 1 << 20;

}  // namespace

Result<std::unique_ptr<WriteAheadLog>> WriteAheadLog::Open(const Options& options) {
  Env& env = options.env ? *options.env : DefaultEnv();
  Status made = CreateDirs(env, options.directory);
  if (!made.ok()) return Status::IoError("cannot create wal directory " + options.directory + ": " + made.message());
  auto listed = env.ListDir(options.directory);
  if (!listed.ok()) return Status::IoError("cannot list wal directory: " + listed.status().message());
  std::vector<uint64_t> segments;
  for (const auto& entry : *listed) {
    uint64_t segment;
    if (!entry.is_directory && ParseSegmentName(entry.name, segment)) segments.push_back(segment);
  }
  std::sort(segments.begin(), segments.end());
  uint64_t next = segments.empty() ? 1 : segments.back() + 1;
  return std::unique_ptr<WriteAheadLog>(new WriteAheadLog(options, next, std::move(segments)));
}

WriteAheadLog::WriteAheadLog(Options options, uint64_t next_segment, std::vector<uint64_t> existing)
    : options_(std::move(options)),
      env_(options_.env ? *options_.env : DefaultEnv()),
      to_replay_(std::move(existing)),
      deferred_(std::make_shared<DeferredRounds>()),
      next_segment_(next_segment) {
  deferred_->log = this;
  writer_ = std::thread([this] { WriterLoop(); });
}

WriteAheadLog::~WriteAheadLog() {
  {
    // A deferred round still queued on an event loop finds the log gone; one running is waited for.
    std::lock_guard alive(deferred_->mutex);
    deferred_->log = nullptr;
  }
  Close();
}

std::string WriteAheadLog::SegmentPath(uint64_t segment) const {
  char name[32];
  std::snprintf(name, sizeof name, "%020llu.wal", static_cast<unsigned long long>(segment));
  return JoinPath(options_.directory, name);
}

Status WriteAheadLog::Replay(const ReplayVisitor& visitor, ReplayReport* report) {
  ReplayReport local;
  std::string header(kFrameHeaderBytes, '\0'), payload;
  for (uint64_t segment : to_replay_) {
    std::string path = SegmentPath(segment);
    auto file = env_.OpenReadable(path);
    if (!file.ok()) return Status::IoError("wal: cannot open " + path + ": " + file.status().message());
    auto size = (*file)->Size();
    if (!size.ok()) return Status::IoError("wal: cannot stat " + path + ": " + size.status().message());
    uint64_t offset = 0;
    // Data that could not be read is never thrown away: the start stops instead.
    auto read_failed = [&](const Status& read) {
      return Status::IoError("wal: cannot read " + path + " at offset " + std::to_string(offset) + " (" + read.message() +
                             "); not starting, and nothing was cut");
    };
    while (offset + kFrameHeaderBytes <= *size) {
      Status read = (*file)->Read(offset, kFrameHeaderBytes, header.data());
      if (!read.ok()) return read_failed(read);
      uint32_t length = LoadFixed32(header.data());
      uint32_t crc = LoadFixed32(header.data() + 4);
      if (length == 0 || length > *size - offset - kFrameHeaderBytes) break;  // torn or zero-filled
      payload.resize(length);
      read = (*file)->Read(offset + kFrameHeaderBytes, length, payload.data());
      if (!read.ok()) return read_failed(read);
      if (Crc32c(payload) != crc) break;
      visitor(RecordLocation{segment, offset + kFrameHeaderBytes, length}, payload);
      local.records++;
      offset += kFrameHeaderBytes + length;
    }
    local.bytes += offset;
    local.segments++;
    if (offset < *size) {
      uint64_t cut = *size - offset;
      bool zeros = false;
      Status read = AllZeros(**file, offset, *size, zeros);
      if (!read.ok()) return read_failed(read);
      if (zeros) {
        spdlog::info("wal: {}: cutting {} bytes of zeros (space reserved ahead) at offset {}", path, cut, offset);
        local.zero_bytes_cut += cut;
      } else {
        spdlog::warn("wal: {} has a torn or corrupt tail: cutting {} bytes at offset {}", path, cut, offset);
        local.torn_bytes_cut += cut;
      }
      // The segment is sealed: nothing is appended to it, so a cut that fails only leaves the
      // same tail to be found again at the next start.
      auto writable = env_.OpenAppendable(path);
      Status cut_status = writable.ok() ? (*writable)->Truncate(offset) : writable.status();
      if (cut_status.ok()) cut_status = (*writable)->Sync();
      if (!cut_status.ok()) spdlog::warn("wal: cannot cut {}: {}", path, cut_status.ToString());
    }
    std::lock_guard lock(mutex_);
    sealed_.push_back(segment);
  }
  to_replay_.clear();
  if (report) *report = local;
  return Status::Ok();
}

void WriteAheadLog::Append(std::string record, Callback done) {
  // Frame in place, outside any lock.
  std::string_view payload(record.data() + kFrameHeaderBytes, record.size() - kFrameHeaderBytes);
  StoreFixed32(record.data(), uint32_t(payload.size()));
  StoreFixed32(record.data() + 4, Crc32c(payload));
  std::unique_lock lock(mutex_);
  if (closing_) {
    lock.unlock();
    done(Status::Unavailable("write-ahead log is closed"), {});
    return;
  }
  queue_.push_back({std::move(record), std::move(done)});
  // The round being written looks at the queue when it ends; a round deferred takes it too.
  if (writing_ || round_deferred_) return;
  if (options_.fsync == FsyncMode::kBatch && CanDeferToEndOfTurn()) {
    // From a request handler on an event loop: the round starts once the handlers ready there
    // now (requests that arrived with this one) have queued their records, so that they share
    // its sync instead of each waking the writer. (Not with kNone: a round deferred by one
    // thread would answer the records of other threads from there, a hand-off per answer.)
    round_deferred_ = true;
    lock.unlock();
    DeferToEndOfTurn([deferred = deferred_] {
      std::lock_guard alive(deferred->mutex);
      if (deferred->log) deferred->log->StartDeferredRound();
    });
    return;
  }
  StartRound(lock);
}

void WriteAheadLog::StartDeferredRound() {
  std::unique_lock lock(mutex_);
  round_deferred_ = false;
  // A round in progress takes the queue when it ends; the writer thread may have taken it.
  if (writing_ || queue_.empty()) return;
  StartRound(lock);
}

void WriteAheadLog::StartRound(std::unique_lock<std::mutex>& lock) {
  if (options_.fsync == FsyncMode::kNone) {
    // Without a sync a round is one write: the appending thread writes it itself, which costs
    // less than waking the writer thread and being woken back with the answer.
    writing_ = true;
    std::deque<Pending> batch;
    batch.swap(queue_);
    lock.unlock();
    WriteRound(batch);
    batch.clear();
    lock.lock();
    writing_ = false;
    bool more = !queue_.empty() || rotate_requested_ || closing_;
    lock.unlock();
    if (more) wake_.notify_one();
    return;
  }
  lock.unlock();
  wake_.notify_one();
}

void WriteAheadLog::WriterLoop() {
  pthread_setname_np(pthread_self(), "wal-writer");  // as top and perf show it
  std::deque<Pending> batch;
  for (;;) {
    bool rotate;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return !writing_ && (closing_ || !queue_.empty() || rotate_requested_); });
      if (queue_.empty() && !rotate_requested_ && closing_) break;
      writing_ = true;
      batch.swap(queue_);
      rotate = rotate_requested_;
      rotate_requested_ = false;
    }
    if (!batch.empty()) WriteRound(batch);
    batch.clear();
    if (rotate && file_ && good_bytes_ > 0 && !tail_dirty_) SealOpenSegment();
    std::lock_guard lock(mutex_);
    writing_ = false;
    if (rotate) {
      rotations_++;
      rotated_.notify_all();
    }
  }
  // Closing, and no round is being written (none can start once closing_ is set).
  if (file_ && !tail_dirty_) {
    CutReservedTail();
    Status closed = file_->Close();
    if (!closed.ok()) spdlog::warn("wal: {}", closed.ToString());
  }
  file_.reset();
}

void WriteAheadLog::WriteRound(std::deque<Pending>& batch) {
  size_t i = 0;
  while (i < batch.size()) {
    Status ready;
    if (tail_dirty_) TakeBackFailedTail(Status::IoError("an earlier failed write"));
    if (tail_dirty_) ready = Status::Unavailable("write-ahead log cannot take back a failed write; refusing writes until it can");
    else if (file_ && good_bytes_ > 0 && good_bytes_ + batch[i].frame.size() > options_.segment_bytes) SealOpenSegment();
    if (ready.ok() && !file_) ready = OpenNextSegment();
    if (!ready.ok()) {
      for (size_t k = i; k < batch.size(); ++k) batch[k].done(ready, {});
      std::lock_guard lock(mutex_);
      stats_.failed_records += batch.size() - i;
      return;
    }
    size_t j = i + 1;
    uint64_t bytes = good_bytes_ + batch[i].frame.size();
    while (j < batch.size() && bytes + batch[j].frame.size() <= options_.segment_bytes) bytes += batch[j++].frame.size();
    Status written = WriteRun(batch, i, j);
    if (!written.ok()) {
      for (size_t k = i; k < j; ++k) batch[k].done(written, {});
      std::lock_guard lock(mutex_);
      stats_.failed_records += j - i;
    }
    i = j;
  }
}

Status WriteAheadLog::WriteRun(std::deque<Pending>& batch, size_t first, size_t last) {
  std::vector<std::string_view> parts;
  parts.reserve(last - first);
  uint64_t run_bytes = 0;
  for (size_t k = first; k < last; ++k) {
    parts.emplace_back(batch[k].frame);
    run_bytes += batch[k].frame.size();
  }
  Status status = file_->Append(parts.data(), parts.size());
  // Past the reserved zeros, the records themselves extend the file (this sync writes the new
  // size once), and the zeros for the next rounds follow them in the same sync.
  if (status.ok()) ReserveAhead(good_bytes_ + run_bytes);
  bool synced = false;
  if (status.ok() && options_.fsync == FsyncMode::kBatch) {
    status = file_->Sync();
    synced = true;
  }
  if (!status.ok()) {
    tail_dirty_ = true;
    spdlog::error("wal: segment {}: {}; {} records refused", open_segment_, status.ToString(), last - first);
    TakeBackFailedTail(status);
    return Status::Unavailable("write-ahead log: " + status.message());
  }
  uint64_t offset = good_bytes_;
  std::vector<RecordLocation> locations;
  locations.reserve(last - first);
  for (size_t k = first; k < last; ++k) {
    uint64_t length = batch[k].frame.size() - kFrameHeaderBytes;
    locations.push_back({open_segment_, offset + kFrameHeaderBytes, length});
    offset += batch[k].frame.size();
  }
  {
    std::lock_guard lock(mutex_);
    stats_.bytes_written += offset - good_bytes_;
    stats_.records_written += last - first;
    if (synced) stats_.syncs++;
  }
  good_bytes_ = offset;
  for (size_t k = first; k < last; ++k) batch[k].done(Status::Ok(), locations[k - first]);
  return Status::Ok();
}

void WriteAheadLog::TakeBackFailedTail(const Status& cause) {
  // Cut the segment back to its last good frame and make the cut durable; then start a new
  // segment, in case the error belongs to this file. Until the cut succeeds nothing more is
  // written, so no acknowledged record ever follows bytes that were refused.
  Status status = file_->Truncate(good_bytes_);
  if (status.ok()) reserved_bytes_ = good_bytes_;
  if (status.ok()) status = file_->Sync();
  if (!status.ok()) {
    std::lock_guard lock(mutex_);
    if (writable_) spdlog::error("wal: cannot cut segment {} back after '{}': {}", open_segment_, cause.message(), status.ToString());
    writable_ = false;
    return;
  }
  tail_dirty_ = false;
  {
    std::lock_guard lock(mutex_);
    writable_ = true;
  }
  SealOpenSegment();
}

Status WriteAheadLog::OpenNextSegment() {
  uint64_t segment = next_segment_++;
  std::string path = SegmentPath(segment);
  auto file = env_.OpenAppendable(path);
  if (!file.ok()) return Status::Unavailable("write-ahead log cannot open a segment: " + file.status().message());
  if (options_.fsync == FsyncMode::kBatch) {
    // The segment's directory entry must be durable too, or synced records could vanish.
    Status synced = env_.SyncDir(options_.directory);
    if (!synced.ok()) {
      (void)(*file)->Close();
      (void)env_.RemoveFile(path);
      return Status::Unavailable("write-ahead log cannot sync its directory: " + synced.message());
    }
  }
  file_ = std::move(file).value();
  open_segment_ = segment;
  good_bytes_ = 0;
  reserved_bytes_ = 0;
  reserve_failed_ = false;
  return Status::Ok();
}

void WriteAheadLog::ReserveAhead(uint64_t end) {
  // Without a sync there is nothing to spare, and writing the zeros first would cost a copy.
  if (options_.fsync != FsyncMode::kBatch || end <= reserved_bytes_ || reserve_failed_) return;
  uint64_t step = std::clamp(reserved_bytes_, kFirstReserveBytes, kMaxReserveStepBytes);
  uint64_t size = std::max(end, std::min(end + step, options_.segment_bytes));
  Status reserved = file_->Reserve(size);
  if (reserved.ok()) {
    reserved_bytes_ = size;
    return;
  }
  // Appends work without it (a full disk refuses them itself); the next segment tries again.
  spdlog::debug("wal: segment {}: {}", open_segment_, reserved.ToString());
  reserve_failed_ = true;
}

void WriteAheadLog::CutReservedTail() {
  // A failed reservation may have extended the file all the same.
  if (reserved_bytes_ <= good_bytes_ && !reserve_failed_) return;
  Status cut = file_->Truncate(good_bytes_);
  if (cut.ok()) reserved_bytes_ = good_bytes_;
  // The zeros left are cut at the next start.
  else spdlog::warn("wal: segment {}: cannot cut its reserved space: {}", open_segment_, cut.ToString());
}

void WriteAheadLog::SealOpenSegment() {
  if (!file_) return;
  if (good_bytes_ > 0) CutReservedTail();
  Status closed = file_->Close();
  if (!closed.ok()) spdlog::warn("wal: {}", closed.ToString());
  file_.reset();
  if (good_bytes_ == 0) {
    // Nothing was ever acknowledged from it.
    std::lock_guard lock(mutex_);
    readers_.erase(open_segment_);
    (void)env_.RemoveFile(SegmentPath(open_segment_));
  } else {
    std::lock_guard lock(mutex_);
    sealed_.push_back(open_segment_);
  }
  open_segment_ = 0;
  good_bytes_ = 0;
}

std::shared_ptr<RandomAccessFile> WriteAheadLog::Reader(uint64_t segment, Status& status) {
  std::lock_guard lock(mutex_);
  auto it = readers_.find(segment);
  if (it != readers_.end()) return it->second;
  auto file = env_.OpenReadable(SegmentPath(segment));
  if (!file.ok()) {
    status = file.status();
    return nullptr;
  }
  std::shared_ptr<RandomAccessFile> reader(std::move(file).value());
  readers_.emplace(segment, reader);
  return reader;
}

Status WriteAheadLog::Read(uint64_t segment, uint64_t offset, size_t length, char* out) {
  Status status;
  std::shared_ptr<RandomAccessFile> reader = Reader(segment, status);
  if (!reader) return status;
  return reader->Read(offset, length, out);
}

void WriteAheadLog::Rotate() {
  std::unique_lock lock(mutex_);
  if (closing_) return;
  uint64_t seen = rotations_;
  rotate_requested_ = true;
  wake_.notify_one();
  rotated_.wait(lock, [&] { return rotations_ > seen || closing_; });
}

std::vector<uint64_t> WriteAheadLog::SealedSegments() const {
  std::lock_guard lock(mutex_);
  return sealed_;
}

Status WriteAheadLog::RemoveSegment(uint64_t segment) {
  {
    std::lock_guard lock(mutex_);
    auto it = std::find(sealed_.begin(), sealed_.end(), segment);
    if (it == sealed_.end()) return Status::InvalidArgument("wal segment " + std::to_string(segment) + " is not sealed");
    sealed_.erase(it);
    readers_.erase(segment);
  }
  Status removed = env_.RemoveFile(SegmentPath(segment));
  if (!removed.ok() && removed.code() != StatusCode::kNotFound) return removed;
  return Status::Ok();
}

bool WriteAheadLog::Writable() const {
  std::lock_guard lock(mutex_);
  return writable_;
}

WalStats WriteAheadLog::Stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void WriteAheadLog::Close() {
  {
    std::lock_guard lock(mutex_);
    closing_ = true;
  }
  wake_.notify_all();
  rotated_.notify_all();
  if (writer_.joinable()) writer_.join();
}

}  // namespace tracery::wal
