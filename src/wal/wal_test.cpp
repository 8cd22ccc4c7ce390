// Unit tests of the write-ahead log: group commit from many threads, replay order, segment
// rotation and removal, and the cutting of torn or corrupt tails.
#include "wal/wal.h"

#include <gtest/gtest.h>

#include "common/temp_dir_for_tests.h"
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "common/coding.h"
#include "common/crc32c.h"

namespace tracery::wal {
namespace {

namespace fs = std::filesystem;


// Counts callbacks and lets the test wait for all of them.
class Completions {
 public:
  WriteAheadLog::Callback Track() {
    return [this](Status status) {
      std::lock_guard lock(mutex_);
      if (status.ok()) ok_++;
      else failed_.push_back(status);
      done_++;
      wake_.notify_all();
    };
  }
  bool WaitFor(size_t n) {
    std::unique_lock lock(mutex_);
    return wake_.wait_for(lock, std::chrono::seconds(20), [&] { return done_ >= n; });
  }
  size_t ok() {
    std::lock_guard lock(mutex_);
    return ok_;
  }
  std::vector<Status> failed() {
    std::lock_guard lock(mutex_);
    return failed_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  size_t done_ = 0, ok_ = 0;
  std::vector<Status> failed_;
};

struct Replayed {
  std::vector<std::pair<uint64_t, std::string>> records;
  ReplayReport report;
  std::unique_ptr<WriteAheadLog> wal;
};

Replayed Reopen(const Options& options) {
  Replayed out;
  auto wal = WriteAheadLog::Open(
      options, [&](uint64_t segment, std::string_view record) { out.records.emplace_back(segment, std::string(record)); },
      &out.report);
  EXPECT_TRUE(wal.ok()) << wal.status().ToString();
  if (wal.ok()) out.wal = std::move(wal).value();
  return out;
}

std::vector<std::string> SegmentFiles(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().extension() == ".wal") names.push_back(entry.path().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), std::streamsize(data.size()));
}

std::string Record(int n) {
  std::string payload = "record-" + std::to_string(n) + ":";
  payload.append(size_t(n % 37), char('a' + n % 26));
  return payload;
}

// Writes `count` records with one writer, closes, and returns the WAL's options.
Options WriteRecords(const std::string& dir, int count, uint64_t segment_bytes = 128ull << 20) {
  Options options;
  options.directory = dir;
  options.segment_bytes = segment_bytes;
  auto wal = WriteAheadLog::Open(options, [](uint64_t, std::string_view) {}, nullptr);
  EXPECT_TRUE(wal.ok());
  Completions completions;
  for (int i = 0; i < count; ++i) (*wal)->Append(Record(i), completions.Track());
  EXPECT_TRUE(completions.WaitFor(size_t(count)));
  EXPECT_EQ(completions.ok(), size_t(count));
  (*wal)->Close();
  return options;
}

TEST(WalTest, FrameLayout) {
  std::string frame = FrameRecord("hello");
  ASSERT_EQ(frame.size(), kFrameHeaderBytes + 5);
  EXPECT_EQ(LoadFixed32(frame.data()), 5u);
  EXPECT_EQ(LoadFixed32(frame.data() + 4), Crc32c(std::string_view("hello")));
  EXPECT_EQ(frame.substr(8), "hello");
  EXPECT_EQ(FrameRecord("").size(), kFrameHeaderBytes);
}

TEST(WalTest, ConcurrentAppendsAreAllDurableAndReplayInOrder) {
  TempDir dir;
  Options options;
  options.directory = dir.path() + "/wal";  // created by Open
  options.segment_bytes = 16 * 1024;        // a few segments, so order holds across them
  constexpr int kThreads = 4, kPerThread = 250;
  std::map<std::string, uint64_t> segment_of;
  std::mutex segment_mutex;
  Completions completions;
  {
    auto wal = WriteAheadLog::Open(options, [](uint64_t, std::string_view) { FAIL() << "nothing to replay"; }, nullptr);
    ASSERT_TRUE(wal.ok()) << wal.status().ToString();
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          std::string record = "t" + std::to_string(t) + "#" + std::to_string(i) + "|" + std::string(size_t(i % 50), 'x');
          uint64_t segment = (*wal)->Append(record, completions.Track());
          std::lock_guard lock(segment_mutex);
          segment_of[record] = segment;
        }
      });
    }
    for (auto& thread : threads) thread.join();
    ASSERT_TRUE(completions.WaitFor(kThreads * kPerThread));
    EXPECT_EQ(completions.ok(), size_t(kThreads * kPerThread));
    for (const Status& s : completions.failed()) ADD_FAILURE() << s.ToString();
    WalStats stats = (*wal)->Stats();
    EXPECT_EQ(stats.records_written, uint64_t(kThreads * kPerThread));
    EXPECT_GE(stats.syncs, 1u);
    EXPECT_LE(stats.syncs, stats.records_written);
    EXPECT_FALSE((*wal)->SealedSegments().empty());
  }

  Replayed replay = Reopen(options);
  ASSERT_EQ(replay.records.size(), size_t(kThreads * kPerThread));
  EXPECT_EQ(replay.report.records, uint64_t(kThreads * kPerThread));
  EXPECT_EQ(replay.report.torn_bytes_cut, 0u);
  EXPECT_GT(replay.report.segments, 1u);
  EXPECT_EQ(replay.report.segments, SegmentFiles(options.directory).size());
  std::vector<int> next(kThreads, 0);
  uint64_t previous_segment = 0;
  for (const auto& [segment, record] : replay.records) {
    EXPECT_GE(segment, previous_segment) << "segments replay oldest first";
    previous_segment = segment;
    auto it = segment_of.find(record);
    ASSERT_NE(it, segment_of.end()) << record;
    EXPECT_EQ(it->second, segment) << "Append reported another segment for " << record;
    int thread = record[1] - '0';
    int seq = std::stoi(record.substr(3));
    EXPECT_EQ(seq, next[size_t(thread)]) << "records of one thread replay in append order";
    next[size_t(thread)] = seq + 1;
  }
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(next[size_t(t)], kPerThread);
}

TEST(WalTest, SegmentsRotateAndSealedOnesCanBeRemoved) {
  TempDir dir;
  Options options;
  options.directory = dir.path();
  options.segment_bytes = 4096;
  auto opened = WriteAheadLog::Open(options, [](uint64_t, std::string_view) {}, nullptr);
  ASSERT_TRUE(opened.ok());
  std::unique_ptr<WriteAheadLog> wal = std::move(opened).value();
  Completions completions;
  std::vector<uint64_t> segments;
  for (int i = 0; i < 200; ++i) segments.push_back(wal->Append(std::string(100, char('A' + i % 26)), completions.Track()));
  ASSERT_TRUE(completions.WaitFor(200));
  ASSERT_EQ(completions.ok(), 200u);
  EXPECT_EQ(segments.front(), 1u);
  uint64_t last = segments.back();
  EXPECT_GE(last, 5u);  // 200 frames of 108 bytes in 4 KiB segments
  for (size_t i = 1; i < segments.size(); ++i) EXPECT_LE(segments[i - 1], segments[i]);
  for (const auto& file : SegmentFiles(dir.path())) EXPECT_LE(fs::file_size(file), 4096u) << file;

  std::vector<uint64_t> sealed = wal->SealedSegments();
  std::vector<uint64_t> expected;
  for (uint64_t s = 1; s < last; ++s) expected.push_back(s);
  EXPECT_EQ(sealed, expected);

  EXPECT_TRUE(wal->RemoveSegment(1).ok());
  EXPECT_EQ(SegmentFiles(dir.path()).size(), size_t(last - 1));
  Status again = wal->RemoveSegment(1);
  EXPECT_FALSE(again.ok());
  Status open_one = wal->RemoveSegment(last);
  EXPECT_FALSE(open_one.ok()) << "the segment being appended to cannot be removed";
  EXPECT_EQ(open_one.code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(wal->RemoveSegment(last + 10).ok());
  EXPECT_EQ(SegmentFiles(dir.path()).size(), size_t(last - 1));
  wal->Close();

  Replayed replay = Reopen(options);
  EXPECT_EQ(replay.report.segments, last - 1);
  ASSERT_FALSE(replay.records.empty());
  EXPECT_EQ(replay.records.front().first, 2u);
  size_t in_first = size_t(std::count(segments.begin(), segments.end(), 1u));
  EXPECT_EQ(replay.records.size(), 200 - in_first);
  // Replayed segments are sealed; new records go after the last one found.
  std::vector<uint64_t> replayed_sealed = replay.wal->SealedSegments();
  ASSERT_FALSE(replayed_sealed.empty());
  EXPECT_EQ(replayed_sealed.front(), 2u);
  EXPECT_EQ(replayed_sealed.back(), last);
  Completions more;
  EXPECT_EQ(replay.wal->Append("after reopen", more.Track()), last + 1);
  ASSERT_TRUE(more.WaitFor(1));
  EXPECT_TRUE(replay.wal->RemoveSegment(last).ok());
}

TEST(WalTest, RotateSealsTheCurrentSegment) {
  TempDir dir;
  Options options;
  options.directory = dir.path();
  auto opened = WriteAheadLog::Open(options, [](uint64_t, std::string_view) {}, nullptr);
  ASSERT_TRUE(opened.ok());
  std::unique_ptr<WriteAheadLog> wal = std::move(opened).value();
  wal->Rotate();  // nothing written yet: nothing to seal
  EXPECT_TRUE(wal->SealedSegments().empty());
  Completions completions;
  EXPECT_EQ(wal->Append("one", completions.Track()), 1u);
  EXPECT_EQ(wal->Append("two", completions.Track()), 1u);
  wal->Rotate();
  EXPECT_EQ(wal->SealedSegments(), std::vector<uint64_t>{1});
  wal->Rotate();  // the new segment is still empty
  EXPECT_EQ(wal->SealedSegments(), std::vector<uint64_t>{1});
  EXPECT_EQ(wal->Append("three", completions.Track()), 2u);
  ASSERT_TRUE(completions.WaitFor(3));
  EXPECT_EQ(completions.ok(), 3u);
  EXPECT_EQ(wal->Stats().records_written, 3u) << "a rotation is not a record";
  EXPECT_TRUE(wal->RemoveSegment(1).ok());
  EXPECT_FALSE(wal->RemoveSegment(2).ok());
  wal->Close();
  wal->Rotate();  // after Close: returns, does not hang
  Replayed replay = Reopen(options);
  ASSERT_EQ(replay.records.size(), 1u);
  EXPECT_EQ(replay.records[0], std::make_pair(uint64_t(2), std::string("three")));
}

TEST(WalTest, ARecordLargerThanASegmentGetsItsOwn) {
  TempDir dir;
  Options options;
  options.directory = dir.path();
  options.segment_bytes = 1000;
  auto wal = WriteAheadLog::Open(options, [](uint64_t, std::string_view) {}, nullptr);
  ASSERT_TRUE(wal.ok());
  Completions completions;
  uint64_t a = (*wal)->Append("small", completions.Track());
  uint64_t b = (*wal)->Append(std::string(5000, 'L'), completions.Track());
  uint64_t c = (*wal)->Append("small again", completions.Track());
  ASSERT_TRUE(completions.WaitFor(3));
  EXPECT_EQ(completions.ok(), 3u);
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  (*wal)->Close();
  Replayed replay = Reopen(options);
  ASSERT_EQ(replay.records.size(), 3u);
  EXPECT_EQ(replay.records[1].second, std::string(5000, 'L'));
  EXPECT_EQ(replay.records[1].first, b);
}

TEST(WalTest, EmptyAndBinaryRecordsSurvive) {
  TempDir dir;
  Options options;
  options.directory = dir.path();
  std::string binary;
  for (int i = 0; i < 256; ++i) binary += char(i);
  {
    auto wal = WriteAheadLog::Open(options, [](uint64_t, std::string_view) {}, nullptr);
    ASSERT_TRUE(wal.ok());
    Completions completions;
    (*wal)->Append("", completions.Track());
    (*wal)->Append(binary, completions.Track());
    ASSERT_TRUE(completions.WaitFor(2));
    EXPECT_EQ(completions.ok(), 2u);
  }  // the destructor closes
  Replayed replay = Reopen(options);
  ASSERT_EQ(replay.records.size(), 2u);
  EXPECT_EQ(replay.records[0].second, "");
  EXPECT_EQ(replay.records[1].second, binary);
  EXPECT_EQ(replay.report.torn_bytes_cut, 0u);
}

// Damages the last segment with `damage`, then checks that replay keeps `intact` records, cuts
// the file, and that a second replay finds nothing more to cut.
void ExpectTailCut(const std::function<void(std::string&)>& damage, int written, int intact) {
  TempDir dir;
  Options options = WriteRecords(dir.path(), written);
  auto files = SegmentFiles(dir.path());
  ASSERT_EQ(files.size(), 1u);
  std::string contents = ReadFile(files[0]);
  uint64_t intact_bytes = 0;
  for (int i = 0; i < intact; ++i) intact_bytes += kFrameHeaderBytes + Record(i).size();
  damage(contents);
  WriteFile(files[0], contents);

  {
    Replayed replay = Reopen(options);
    ASSERT_EQ(replay.records.size(), size_t(intact));
    for (int i = 0; i < intact; ++i) EXPECT_EQ(replay.records[size_t(i)].second, Record(i));
    EXPECT_GT(replay.report.torn_bytes_cut, 0u);
    EXPECT_EQ(replay.report.torn_bytes_cut, contents.size() - intact_bytes);
    EXPECT_EQ(replay.report.bytes, intact_bytes);
    EXPECT_EQ(fs::file_size(files[0]), intact_bytes) << "the torn tail is cut off the file";
  }
  Replayed second = Reopen(options);
  EXPECT_EQ(second.records.size(), size_t(intact));
  EXPECT_EQ(second.report.torn_bytes_cut, 0u);
  // The log keeps working after a cut.
  Completions completions;
  second.wal->Append("after the cut", completions.Track());
  ASSERT_TRUE(completions.WaitFor(1));
  EXPECT_EQ(completions.ok(), 1u);
  second.wal->Close();
  Replayed third = Reopen(options);
  ASSERT_EQ(third.records.size(), size_t(intact) + 1);
  EXPECT_EQ(third.records.back().second, "after the cut");
  EXPECT_EQ(third.report.torn_bytes_cut, 0u);
}

TEST(WalTest, TruncatedTailIsCut) {
  ExpectTailCut([](std::string& c) { c.resize(c.size() - 3); }, 40, 39);
}

TEST(WalTest, TailCutInsideTheHeaderIsCut) {
  int last_payload = int(Record(39).size());
  ExpectTailCut([last_payload](std::string& c) { c.resize(c.size() - size_t(last_payload) - 5); }, 40, 39);
}

TEST(WalTest, GarbageAfterTheLastRecordIsCut) {
  ExpectTailCut([](std::string& c) { c += std::string("\x13\x00\x00\x00garbage!", 12); }, 40, 40);
  ExpectTailCut([](std::string& c) { c += std::string(3, '\xff'); }, 40, 40);
}

TEST(WalTest, FlippedByteInTheLastRecordIsCut) {
  ExpectTailCut([](std::string& c) { c[c.size() - 2] ^= 0x20; }, 40, 39);
}

TEST(WalTest, CorruptRecordInTheMiddleCutsFromThere) {
  uint64_t offset = 0;
  for (int i = 0; i < 10; ++i) offset += kFrameHeaderBytes + Record(i).size();
  ExpectTailCut([offset](std::string& c) { c[offset + kFrameHeaderBytes + 1] ^= 1; }, 40, 10);
  // A length that points past the end of the file.
  ExpectTailCut([offset](std::string& c) { c[offset + 3] = char(0x7f); }, 40, 10);
}

TEST(WalTest, DamageInOneSegmentDoesNotLoseLaterSegments) {
  TempDir dir;
  Options options = WriteRecords(dir.path(), 100, 1024);
  auto files = SegmentFiles(dir.path());
  ASSERT_GE(files.size(), 3u);
  std::string first = ReadFile(files[0]);
  first.resize(first.size() - 1);
  WriteFile(files[0], first);
  Replayed replay = Reopen(options);
  EXPECT_EQ(replay.records.size(), 99u);
  EXPECT_GT(replay.report.torn_bytes_cut, 0u);
  EXPECT_EQ(replay.records.back().second, Record(99));
}

TEST(WalTest, UnrelatedFilesAreIgnored) {
  TempDir dir;
  Options options = WriteRecords(dir.path(), 5);
  WriteFile(dir.path() + "/notes.txt", "not a segment");
  WriteFile(dir.path() + "/00000000000000000007.wal.tmp", "junk");
  WriteFile(dir.path() + "/0000000000000000000x.wal", "junk");
  Replayed replay = Reopen(options);
  EXPECT_EQ(replay.records.size(), 5u);
  EXPECT_EQ(replay.report.segments, 1u);
  EXPECT_EQ(replay.report.torn_bytes_cut, 0u);
  EXPECT_EQ(ReadFile(dir.path() + "/notes.txt"), "not a segment");
}

TEST(WalTest, FsyncNoneWritesWithoutSyncing) {
  TempDir dir;
  Options options;
  options.directory = dir.path();
  options.fsync = FsyncMode::kNone;
  {
    auto wal = WriteAheadLog::Open(options, [](uint64_t, std::string_view) {}, nullptr);
    ASSERT_TRUE(wal.ok());
    Completions completions;
    for (int i = 0; i < 100; ++i) (*wal)->Append(Record(i), completions.Track());
    ASSERT_TRUE(completions.WaitFor(100));
    EXPECT_EQ(completions.ok(), 100u);
    WalStats stats = (*wal)->Stats();
    EXPECT_EQ(stats.syncs, 0u);
    EXPECT_EQ(stats.records_written, 100u);
    uint64_t bytes = 0;
    for (int i = 0; i < 100; ++i) bytes += kFrameHeaderBytes + Record(i).size();
    EXPECT_EQ(stats.bytes_written, bytes);
  }
  Replayed replay = Reopen(options);
  ASSERT_EQ(replay.records.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(replay.records[size_t(i)].second, Record(i));
}

TEST(WalTest, AppendAfterCloseIsUnavailable) {
  TempDir dir;
  Options options;
  options.directory = dir.path();
  auto wal = WriteAheadLog::Open(options, [](uint64_t, std::string_view) {}, nullptr);
  ASSERT_TRUE(wal.ok());
  Completions before;
  (*wal)->Append("before", before.Track());
  (*wal)->Close();
  ASSERT_TRUE(before.WaitFor(1));
  EXPECT_EQ(before.ok(), 1u) << "Close drains what was queued";
  Status got = Status::Ok();
  bool called = false;
  (*wal)->Append("after", [&](Status s) {
    got = s;
    called = true;
  });
  EXPECT_TRUE(called);
  EXPECT_EQ(got.code(), StatusCode::kUnavailable);
  (*wal)->Close();  // a second Close is harmless
  wal->reset();
  Replayed replay = Reopen(options);
  ASSERT_EQ(replay.records.size(), 1u);
  EXPECT_EQ(replay.records[0].second, "before");
}

TEST(WalTest, OpenFailsOnAnUnusableDirectory) {
  TempDir dir;
  WriteFile(dir.path() + "/file", "x");
  Options options;
  options.directory = dir.path() + "/file/wal";
  auto wal = WriteAheadLog::Open(options, [](uint64_t, std::string_view) {}, nullptr);
  EXPECT_FALSE(wal.ok());
  EXPECT_EQ(wal.status().code(), StatusCode::kIoError);
}

}  // namespace
}  // namespace tracery::wal
