#include "wal/wal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <future>

#include <spdlog/spdlog.h>

#include "common/coding.h"
#include "common/crc32c.h"

namespace tracery::wal {
namespace fs = std::filesystem;

std::string FrameRecord(std::string_view payload) {
  std::string frame;
  frame.reserve(kFrameHeaderBytes + payload.size());
  PutFixed32(frame, uint32_t(payload.size()));
  PutFixed32(frame, Crc32c(payload));
  frame.append(payload);
  return frame;
}

namespace {

Status Errno(const std::string& what) { return Status::IoError(what + ": " + std::strerror(errno)); }

Status WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("wal write");
    }
    data += n;
    size -= size_t(n);
  }
  return Status::Ok();
}

bool ParseSegmentName(const std::string& name, uint64_t& segment) {
  if (name.size() != 24 || name.substr(20) != ".wal") return false;
  segment = 0;
  for (size_t i = 0; i < 20; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    segment = segment * 10 + uint64_t(name[i] - '0');
  }
  return segment > 0;
}

// Replays one segment; cuts it at the first torn or corrupt record.
Status ReplaySegment(const std::string& path, uint64_t segment, const WriteAheadLog::ReplayVisitor& visitor,
                     ReplayReport& report) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return Errno("open " + path);
  struct stat st {};
  ::fstat(fd, &st);
  std::string contents(size_t(st.st_size), '\0');
  size_t got = 0;
  while (got < contents.size()) {
    ssize_t n = ::pread(fd, contents.data() + got, contents.size() - got, off_t(got));
    if (n <= 0) break;
    got += size_t(n);
  }
  contents.resize(got);
  size_t offset = 0;
  while (offset + kFrameHeaderBytes <= contents.size()) {
    uint32_t length = LoadFixed32(contents.data() + offset);
    uint32_t crc = LoadFixed32(contents.data() + offset + 4);
    if (length > kMaxRecordBytes || offset + kFrameHeaderBytes + length > contents.size()) break;
    std::string_view payload(contents.data() + offset + kFrameHeaderBytes, length);
    if (Crc32c(payload) != crc) break;
    visitor(segment, payload);
    report.records++;
    offset += kFrameHeaderBytes + length;
  }
  report.bytes += offset;
  if (offset < contents.size()) {
    uint64_t cut = contents.size() - offset;
    spdlog::warn("wal: segment {} has a torn or corrupt tail: cutting {} bytes at offset {}", path, cut, offset);
    report.torn_bytes_cut += cut;
    if (::ftruncate(fd, off_t(offset)) != 0) spdlog::error("wal: cannot truncate {}: {}", path, std::strerror(errno));
    ::fsync(fd);
  }
  ::close(fd);
  report.segments++;
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<WriteAheadLog>> WriteAheadLog::Open(const Options& options, const ReplayVisitor& visitor,
                                                           ReplayReport* report) {
  std::error_code ec;
  fs::create_directories(options.directory, ec);
  if (ec) return Status::IoError("cannot create wal directory " + options.directory + ": " + ec.message());
  std::vector<uint64_t> segments;
  for (const auto& entry : fs::directory_iterator(options.directory, ec)) {
    uint64_t segment;
    if (entry.is_regular_file() && ParseSegmentName(entry.path().filename().string(), segment))
      segments.push_back(segment);
  }
  if (ec) return Status::IoError("cannot list wal directory " + options.directory + ": " + ec.message());
  std::sort(segments.begin(), segments.end());
  ReplayReport local;
  std::unique_ptr<WriteAheadLog> wal(new WriteAheadLog(options, segments.empty() ? 1 : segments.back() + 1));
  for (uint64_t segment : segments) {
    TRACERY_RETURN_IF_ERROR(ReplaySegment(wal->SegmentPath(segment), segment, visitor, local));
    wal->sealed_.push_back(segment);
  }
  if (report) *report = local;
  return wal;
}

WriteAheadLog::WriteAheadLog(Options options, uint64_t first_segment)
    : options_(std::move(options)), append_segment_(first_segment) {
  writer_ = std::thread([this] { WriterLoop(); });
}

WriteAheadLog::~WriteAheadLog() { Close(); }

std::string WriteAheadLog::SegmentPath(uint64_t segment) const {
  char name[32];
  std::snprintf(name, sizeof name, "%020llu.wal", static_cast<unsigned long long>(segment));
  return options_.directory + "/" + name;
}

uint64_t WriteAheadLog::Append(std::string record, Callback done) {
  std::string frame = FrameRecord(record);
  std::unique_lock lock(mutex_);
  if (closing_) {
    lock.unlock();
    done(Status::Unavailable("write-ahead log is closed"));
    return 0;
  }
  if (append_segment_bytes_ > 0 && append_segment_bytes_ + frame.size() > options_.segment_bytes) {
    append_segment_++;
    append_segment_bytes_ = 0;
  }
  append_segment_bytes_ += frame.size();
  uint64_t segment = append_segment_;
  queue_.push_back({segment, std::move(frame), std::move(done)});
  lock.unlock();
  wake_.notify_one();
  return segment;
}

void WriteAheadLog::WriterLoop() {
  std::deque<Pending> batch;
  std::string buffer;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return closing_ || !queue_.empty(); });
      if (queue_.empty() && closing_) break;
      batch.swap(queue_);
    }
    Status status;
    size_t i = 0;
    while (i < batch.size() && status.ok()) {
      uint64_t segment = batch[i].segment;
      if (segment != open_segment_) {
        if (fd_ >= 0) {
          if (options_.fsync == FsyncMode::kBatch) ::fdatasync(fd_);
          ::close(fd_);
          std::lock_guard lock(mutex_);
          sealed_.push_back(open_segment_);
        }
        fd_ = ::open(SegmentPath(segment).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd_ < 0) {
          status = Errno("open wal segment " + SegmentPath(segment));
          break;
        }
        open_segment_ = segment;
        if (options_.fsync == FsyncMode::kBatch) {
          // A new file's directory entry must be durable too, or a synced record could vanish.
          int dir = ::open(options_.directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
          if (dir >= 0) {
            ::fsync(dir);
            ::close(dir);
          }
        }
      }
      buffer.clear();
      size_t j = i;
      while (j < batch.size() && batch[j].segment == segment) buffer.append(batch[j++].frame);
      status = WriteAll(fd_, buffer.data(), buffer.size());
      std::lock_guard lock(mutex_);
      stats_.bytes_written += buffer.size();
      for (size_t k = i; k < j; ++k)
        if (!batch[k].frame.empty()) stats_.records_written++;  // empty entries only rotate
      i = j;
    }
    if (status.ok() && options_.fsync == FsyncMode::kBatch && fd_ >= 0) {
      if (::fdatasync(fd_) != 0) status = Errno("wal fdatasync");
      std::lock_guard lock(mutex_);
      stats_.syncs++;
    }
    if (!status.ok()) spdlog::error("wal: {}", status.ToString());
    for (auto& pending : batch) pending.done(status);
    batch.clear();
  }
  if (fd_ >= 0) {
    ::fdatasync(fd_);
    ::close(fd_);
    fd_ = -1;
  }
}

void WriteAheadLog::Rotate() {
  std::unique_lock lock(mutex_);
  if (closing_ || append_segment_bytes_ == 0) return;
  append_segment_++;
  append_segment_bytes_ = 0;
  // An empty entry for the new segment: the writer seals the old one when it reaches it.
  auto sealed = std::make_shared<std::promise<void>>();
  std::future<void> done = sealed->get_future();
  queue_.push_back({append_segment_, std::string(), [sealed](Status) { sealed->set_value(); }});
  lock.unlock();
  wake_.notify_one();
  done.wait();
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
  }
  if (::unlink(SegmentPath(segment).c_str()) != 0 && errno != ENOENT) return Errno("remove wal segment");
  return Status::Ok();
}

WalStats WriteAheadLog::Stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void WriteAheadLog::Close() {
  {
    std::lock_guard lock(mutex_);
    if (closing_ && !writer_.joinable()) return;
    closing_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
}

}  // namespace tracery::wal
