// Unit tests of the write-ahead log, most of them through the fault-injecting Env: group
// commit from many threads, replay, rotation and removal, torn and zero-filled tails, and
// every fault the disk can throw (write, sync and read errors, short writes, a full disk, a
// cut that fails too, a crash after any operation). The invariant checked after each: every
// acknowledged record is replayed exactly once, in order, and no refused record is.
#include "wal/wal.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/coding.h"
#include "common/end_of_turn.h"
#include "common/fault_env.h"
#include "common/temp_dir_for_tests.h"

namespace tracery::wal {
namespace {

std::string Record(std::string_view payload) {
  std::string record = NewRecordBuffer(payload.size());
  record.append(payload);
  return record;
}

// Appends and waits for the answer.
Status AppendAndWait(WriteAheadLog& wal, std::string_view payload, RecordLocation* location = nullptr) {
  std::promise<std::pair<Status, RecordLocation>> answer;
  wal.Append(Record(payload), [&](Status status, RecordLocation at) { answer.set_value({status, at}); });
  auto [status, at] = answer.get_future().get();
  if (location) *location = at;
  return status;
}

Options InEnv(Env& env, FsyncMode fsync = FsyncMode::kBatch, uint64_t segment_bytes = 1 << 20) {
  Options options;
  options.directory = "/data/wal";
  options.env = &env;
  options.fsync = fsync;
  options.segment_bytes = segment_bytes;
  return options;
}

// Opens, replays and returns the payloads in order.
std::vector<std::string> ReplayAll(const Options& options, ReplayReport* report = nullptr) {
  auto wal = WriteAheadLog::Open(options);
  EXPECT_TRUE(wal.ok()) << wal.status().ToString();
  std::vector<std::string> payloads;
  Status replayed = (*wal)->Replay([&](RecordLocation, std::string_view payload) { payloads.emplace_back(payload); }, report);
  EXPECT_TRUE(replayed.ok()) << replayed.ToString();
  return payloads;
}

TEST(WalTest, ConcurrentAppendsAreDurableReadableAndReplayInOrder) {
  FaultInjectionEnv env;
  Options options = InEnv(env, FsyncMode::kBatch, 64 << 10);  // several segments
  std::map<std::string, RecordLocation> where;
  {
    auto wal = WriteAheadLog::Open(options);
    ASSERT_TRUE(wal.ok());
    ASSERT_TRUE((*wal)->Replay([](RecordLocation, std::string_view) {}, nullptr).ok());
    std::mutex mutex;
    std::condition_variable all_done;
    size_t done = 0;
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 200; ++i) {
          std::string payload = "thread " + std::to_string(t) + " record " + std::to_string(i) + std::string(size_t(i), 'x');
          (*wal)->Append(Record(payload), [&, payload](Status status, RecordLocation at) {
            EXPECT_TRUE(status.ok()) << status.ToString();
            std::lock_guard lock(mutex);
            where[payload] = at;
            done++;
            all_done.notify_all();
          });
        }
      });
    }
    for (auto& thread : threads) thread.join();
    std::unique_lock lock(mutex);
    all_done.wait(lock, [&] { return done == 1600; });
    lock.unlock();
    // Each location reads back its payload.
    for (const auto& [payload, at] : where) {
      std::string read(at.length, '\0');
      ASSERT_TRUE((*wal)->Read(at.segment, at.offset, at.length, read.data()).ok());
      EXPECT_EQ(read, payload);
    }
    EXPECT_GT((*wal)->Stats().records_written, 0u);
    EXPECT_LT((*wal)->Stats().syncs, 1600u) << "group commit shares syncs";
    EXPECT_GT((*wal)->SealedSegments().size(), 1u);
  }
  env.Crash();  // everything acknowledged was synced
  std::vector<std::string> replayed = ReplayAll(options);
  ASSERT_EQ(replayed.size(), 1600u);
  std::map<int, int> next_of_thread;
  for (const auto& payload : replayed) {
    int thread = payload[7] - '0';
    int record = std::stoi(payload.substr(16));
    EXPECT_EQ(record, next_of_thread[thread]++) << "per-thread order is kept";
  }
}

// With fsync: none a thread that appends while no round is being written writes the round
// itself; records appended meanwhile go to the writer thread. Whoever writes, rounds do not
// overlap and callbacks keep the order of the queue, also across rotations.
TEST(WalTest, WithoutSyncTheAppendingThreadWritesAndOrderIsKept) {
  FaultInjectionEnv env;
  Options options = InEnv(env, FsyncMode::kNone, 64 << 10);
  {
    auto wal = WriteAheadLog::Open(options);
    ASSERT_TRUE(wal.ok());
    ASSERT_TRUE((*wal)->Replay([](RecordLocation, std::string_view) {}, nullptr).ok());
    bool answered = false;
    (*wal)->Append(Record("alone"), [&](Status status, RecordLocation) { answered = status.ok(); });
    EXPECT_TRUE(answered) << "an idle log is written by the appending thread, before Append returns";

    std::mutex mutex;
    std::map<int, int> next_answer;  // per thread: the record whose callback is due
    std::atomic<int> answers{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 300; ++i) {
          if (t == 0 && i % 50 == 0) (*wal)->Rotate();
          std::string payload = "thread " + std::to_string(t) + " record " + std::to_string(i) + std::string(size_t(i), 'x');
          (*wal)->Append(Record(payload), [&, t, i](Status status, RecordLocation) {
            EXPECT_TRUE(status.ok()) << status.ToString();
            std::lock_guard lock(mutex);
            EXPECT_EQ(i, next_answer[t]++) << "callbacks of one thread's records run in its order";
            answers++;
          });
        }
      });
    }
    for (auto& thread : threads) thread.join();
    (*wal)->Close();  // drains what the writer thread still holds
    EXPECT_EQ(answers.load(), 2400);
  }
  std::vector<std::string> replayed = ReplayAll(options);
  ASSERT_EQ(replayed.size(), 2401u);
  std::map<int, int> next_of_thread;
  for (size_t k = 1; k < replayed.size(); ++k) {
    int thread = replayed[k][7] - '0';
    int record = std::stoi(replayed[k].substr(16));
    EXPECT_EQ(record, next_of_thread[thread]++) << "per-thread order is kept";
  }
}

// With kBatch, records appended from request handlers that ran in one turn of an event loop
// (an EndOfTurnScope) share one round: one write and one sync, started when the turn's
// deferred work runs, not before. With kNone the appending thread still writes at once.
TEST(WalTest, RecordsAppendedInOneTurnOfAnEventLoopShareOneSync) {
  FaultInjectionEnv env;
  Options options = InEnv(env, FsyncMode::kBatch);
  auto wal = WriteAheadLog::Open(options);
  ASSERT_TRUE(wal.ok());
  ASSERT_TRUE((*wal)->Replay([](RecordLocation, std::string_view) {}, nullptr).ok());
  ASSERT_TRUE(AppendAndWait(**wal, "before").ok());
  // Let the writer finish that round (its answer comes before the round's end): a record
  // appended while a round is in progress joins the next one at once, turn or not.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  WalStats before = (*wal)->Stats();

  std::vector<std::function<void()>> end_of_turn;  // the event loop's queue, run below
  EndOfTurnScope::Post post = [&](std::function<void()> work) { end_of_turn.push_back(std::move(work)); };
  std::atomic<int> answered{0};
  {
    EndOfTurnScope turn(post);
    for (int i = 0; i < 5; ++i)
      (*wal)->Append(Record("in one turn " + std::to_string(i)), [&](Status status, RecordLocation) {
        EXPECT_TRUE(status.ok()) << status.ToString();
        answered++;
      });
  }
  EXPECT_EQ(end_of_turn.size(), 1u) << "one deferred round for the turn";
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(answered.load(), 0) << "nothing is written before the turn ends";
  EXPECT_EQ((*wal)->Stats().records_written, before.records_written);
  for (auto& work : end_of_turn) work();
  for (int i = 0; i < 500 && answered.load() < 5; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(answered.load(), 5);
  WalStats after = (*wal)->Stats();
  EXPECT_EQ(after.records_written - before.records_written, 5u);
  EXPECT_EQ(after.syncs - before.syncs, 1u) << "the five records share one sync";

  // A deferred round still queued when the log is destroyed finds it gone.
  {
    EndOfTurnScope turn(post);
    end_of_turn.clear();
    std::promise<Status> late;
    (*wal)->Append(Record("late"), [&](Status status, RecordLocation) { late.set_value(status); });
    ASSERT_EQ(end_of_turn.size(), 1u);
    wal->reset();  // Close drains the queue: the record is written and answered
    EXPECT_EQ(late.get_future().wait_for(std::chrono::seconds(0)), std::future_status::ready);
  }
  end_of_turn[0]();  // runs after the log is gone: nothing happens
  std::vector<std::string> replayed = ReplayAll(options);
  ASSERT_EQ(replayed.size(), 7u);
  EXPECT_EQ(replayed[1], "in one turn 0");
  EXPECT_EQ(replayed[5], "in one turn 4");

  // kNone: the appending thread writes its round before Append returns, in a turn too.
  FaultInjectionEnv unsynced_env;
  auto unsynced = WriteAheadLog::Open(InEnv(unsynced_env, FsyncMode::kNone));
  ASSERT_TRUE(unsynced.ok());
  ASSERT_TRUE((*unsynced)->Replay([](RecordLocation, std::string_view) {}, nullptr).ok());
  end_of_turn.clear();
  bool written = false;
  {
    EndOfTurnScope turn(post);
    (*unsynced)->Append(Record("at once"), [&](Status status, RecordLocation) { written = status.ok(); });
  }
  EXPECT_TRUE(written);
  EXPECT_TRUE(end_of_turn.empty());
}

TEST(WalTest, RotateSealsAndSealedSegmentsCanBeRemoved) {
  FaultInjectionEnv env;
  Options options = InEnv(env);
  auto wal = WriteAheadLog::Open(options);
  ASSERT_TRUE(wal.ok());
  ASSERT_TRUE((*wal)->Replay([](RecordLocation, std::string_view) {}, nullptr).ok());
  RecordLocation first, second;
  ASSERT_TRUE(AppendAndWait(**wal, "one", &first).ok());
  EXPECT_TRUE((*wal)->SealedSegments().empty());
  EXPECT_FALSE((*wal)->RemoveSegment(first.segment).ok()) << "the open segment cannot be removed";
  (*wal)->Rotate();
  EXPECT_EQ((*wal)->SealedSegments(), std::vector<uint64_t>{first.segment});
  ASSERT_TRUE(AppendAndWait(**wal, "two", &second).ok());
  EXPECT_GT(second.segment, first.segment);
  ASSERT_TRUE((*wal)->RemoveSegment(first.segment).ok());
  char byte;
  EXPECT_FALSE((*wal)->Read(first.segment, first.offset, 1, &byte).ok());
  (*wal)->Close();
  EXPECT_EQ(ReplayAll(options), std::vector<std::string>{"two"});
}

TEST(WalTest, ATornTailIsCutAndCountedAndLaterRecordsFollowIt) {
  FaultInjectionEnv env;
  Options options = InEnv(env, FsyncMode::kNone);
  {
    auto wal = WriteAheadLog::Open(options);
    ASSERT_TRUE((*wal)->Replay([](RecordLocation, std::string_view) {}, nullptr).ok());
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(AppendAndWait(**wal, "record " + std::to_string(i) + std::string(300, 'p')).ok());
  }
  // Nothing was synced (fsync: none): a torn crash keeps a random prefix of the bytes, maybe
  // ending in a zero-filled page; the directory entry of the segment was synced at creation.
  env.Crash(CrashOptions{true, 7});
  ReplayReport report;
  std::vector<std::string> replayed = ReplayAll(options, &report);
  for (size_t i = 0; i < replayed.size(); ++i) EXPECT_EQ(replayed[i].substr(0, 10), ("record " + std::to_string(i)).substr(0, 10));
  // A second start finds nothing more to cut, and appends after it replay too.
  {
    auto wal = WriteAheadLog::Open(options);
    ReplayReport again;
    ASSERT_TRUE((*wal)->Replay([](RecordLocation, std::string_view) {}, &again).ok());
    EXPECT_EQ(again.torn_bytes_cut, 0u);
    ASSERT_TRUE(AppendAndWait(**wal, "after").ok());
  }
  std::vector<std::string> final_records = ReplayAll(options);
  ASSERT_FALSE(final_records.empty());
  EXPECT_EQ(final_records.back(), "after");
  EXPECT_EQ(final_records.size(), replayed.size() + 1);
}

TEST(WalTest, AZeroFilledTailIsNotARecord) {
  FaultInjectionEnv env;
  Options options = InEnv(env);
  {
    auto wal = WriteAheadLog::Open(options);
    ASSERT_TRUE((*wal)->Replay([](RecordLocation, std::string_view) {}, nullptr).ok());
    ASSERT_TRUE(AppendAndWait(**wal, "kept").ok());
  }
  // A page allocated but never written reads as zeros: a zero length would frame an empty
  // record whose checksum (of nothing) is zero too.
  auto listed = env.ListDir("/data/wal");
  ASSERT_TRUE(listed.ok() && listed->size() == 1);
  std::string path = "/data/wal/" + (*listed)[0].name;
  auto file = env.OpenAppendable(path);
  ASSERT_TRUE((*file)->Append(std::string(4096, '\0')).ok());
  ASSERT_TRUE((*file)->Sync().ok());
  ReplayReport report;
  EXPECT_EQ(ReplayAll(options, &report), std::vector<std::string>{"kept"});
  EXPECT_EQ(report.zero_bytes_cut, 4096u);
  EXPECT_EQ(report.torn_bytes_cut, 0u);
}

// The open segment's file size while records are written, and its path.
std::string OnlySegment(FaultInjectionEnv& env) {
  auto listed = env.ListDir("/data/wal");
  EXPECT_TRUE(listed.ok() && listed->size() == 1);
  return listed.ok() && !listed->empty() ? "/data/wal/" + listed->back().name : "";
}

TEST(WalTest, SpaceIsReservedAheadAndCutBackWhenASegmentIsSealedOrClosed) {
  FaultInjectionEnv env;
  Options options = InEnv(env);
  std::vector<std::string> written;
  {
    auto wal = WriteAheadLog::Open(options);
    ASSERT_TRUE((*wal)->Replay([](RecordLocation, std::string_view) {}, nullptr).ok());
    RecordLocation at;
    ASSERT_TRUE(AppendAndWait(**wal, "one", &at).ok());
    written.push_back("one");
    std::string path = OnlySegment(env);
    uint64_t records = kFrameHeaderBytes + 3;
    EXPECT_EQ(*env.FileSize(path), records + (64u << 10)) << "the first reservation, after the first record";
    uint64_t crossed_at = 0;  // the end of the round that passed the first reservation
    for (int i = 0; i < 70; ++i) {
      written.push_back("record " + std::to_string(i) + std::string(1000, 'r'));
      ASSERT_TRUE(AppendAndWait(**wal, written.back()).ok());
      records += kFrameHeaderBytes + written.back().size();
      if (crossed_at == 0 && records > kFrameHeaderBytes + 3 + (64u << 10)) crossed_at = records;
    }
    ASSERT_GT(crossed_at, 0u);
    EXPECT_EQ(*env.FileSize(path), crossed_at + kFrameHeaderBytes + 3 + (64u << 10))
        << "the next step, as large as the space reserved so far, after the round that passed it";
    (*wal)->Rotate();
    EXPECT_EQ(*env.FileSize(path), records) << "sealed: cut back to its records";
    ASSERT_TRUE(AppendAndWait(**wal, "two").ok());
    written.push_back("two");
  }
  // Closed: the open segment was cut back too, so a restart finds nothing to cut.
  ReplayReport report;
  EXPECT_EQ(ReplayAll(options, &report), written);
  EXPECT_EQ(report.zero_bytes_cut, 0u);
  EXPECT_EQ(report.torn_bytes_cut, 0u);
}

TEST(WalTest, WithoutSyncNothingIsReserved) {
  FaultInjectionEnv env;
  Options options = InEnv(env, FsyncMode::kNone);
  auto wal = WriteAheadLog::Open(options);
  ASSERT_TRUE((*wal)->Replay([](RecordLocation, std::string_view) {}, nullptr).ok());
  ASSERT_TRUE(AppendAndWait(**wal, "one").ok());
  ASSERT_TRUE(AppendAndWait(**wal, "two").ok());
  EXPECT_EQ(*env.FileSize(OnlySegment(env)), 2 * (kFrameHeaderBytes + 3));
}

TEST(WalTest, ZerosReservedBeforeACrashAreCutAtReplayWithoutCountingAsTorn) {
  for (FsyncMode fsync : {FsyncMode::kBatch, FsyncMode::kNone}) {
    for (uint64_t seed = 1; seed <= 6; ++seed) {
      FaultInjectionEnv env;
      Options options = InEnv(env, fsync);
      std::vector<std::string> acknowledged;
      uint64_t records = 0;
      {
        auto wal = WriteAheadLog::Open(options);
        ASSERT_TRUE((*wal)->Replay([](RecordLocation, std::string_view) {}, nullptr).ok());
        for (int i = 0; i < 20; ++i) {
          acknowledged.push_back("record " + std::to_string(i) + std::string(100, 'z'));
          ASSERT_TRUE(AppendAndWait(**wal, acknowledged.back()).ok());
          records += kFrameHeaderBytes + acknowledged.back().size();
        }
        env.Crash(CrashOptions{.torn = seed % 2 == 0, .seed = seed});  // before the log is closed
      }
      ReplayReport report;
      std::vector<std::string> replayed = ReplayAll(options, &report);
      if (fsync == FsyncMode::kBatch) {
        // Every record was synced, with the reserved size (64 KiB after the first record): only
        // zeros follow them.
        uint64_t first = kFrameHeaderBytes + acknowledged[0].size();
        EXPECT_EQ(replayed, acknowledged) << "seed " << seed;
        EXPECT_EQ(report.zero_bytes_cut, first + (64u << 10) - records) << "seed " << seed;
        EXPECT_EQ(report.torn_bytes_cut, 0u) << "seed " << seed;
      } else {
        // Nothing was synced: a prefix of the records survives, whatever the crash kept.
        ASSERT_LE(replayed.size(), acknowledged.size());
        for (size_t i = 0; i < replayed.size(); ++i) EXPECT_EQ(replayed[i], acknowledged[i]) << "seed " << seed;
      }
      uint64_t segment_bytes = 0;  // (without a sync the segment itself may be gone)
      auto listed = env.ListDir("/data/wal");
      ASSERT_TRUE(listed.ok());
      for (const auto& entry : *listed) segment_bytes += *env.FileSize("/data/wal/" + entry.name);
      EXPECT_EQ(segment_bytes, report.bytes) << "cut back to the records replayed";
      // Appends after the restart replay after them.
      {
        auto wal = WriteAheadLog::Open(options);
        ASSERT_TRUE((*wal)->Replay([](RecordLocation, std::string_view) {}, nullptr).ok());
        ASSERT_TRUE(AppendAndWait(**wal, "after").ok());
      }
      replayed.push_back("after");
      EXPECT_EQ(ReplayAll(options), replayed) << "seed " << seed;
    }
  }
}

TEST(WalTest, AReservationThatFailsLeavesRecordsAcknowledgedAndDurable) {
  for (int error : {EIO, ENOSPC, EOPNOTSUPP}) {
    FaultInjectionEnv env;
    Options options = InEnv(env);
    env.AddFault({FaultOp::kReserve, ".wal", 0, UINT64_MAX, error, false});
    std::vector<std::string> acknowledged;
    {
      auto wal = WriteAheadLog::Open(options);
      ASSERT_TRUE((*wal)->Replay([](RecordLocation, std::string_view) {}, nullptr).ok());
      for (int i = 0; i < 10; ++i) {
        acknowledged.push_back("record " + std::to_string(i));
        ASSERT_TRUE(AppendAndWait(**wal, acknowledged.back()).ok());
      }
      EXPECT_EQ((*wal)->Stats().failed_records, 0u);
      EXPECT_EQ(*env.FileSize(OnlySegment(env)), 10 * (kFrameHeaderBytes + 8)) << "no zeros: it appends";
      env.Crash();
    }
    ReplayReport report;
    EXPECT_EQ(ReplayAll(options, &report), acknowledged) << "error " << error;
    EXPECT_EQ(report.zero_bytes_cut + report.torn_bytes_cut, 0u);
  }
}

TEST(WalTest, ADiskThatFillsUpStillTakesRecordsIntoSpaceReservedBefore) {
  FaultInjectionEnv env;
  Options options = InEnv(env);
  env.SetSpaceLimit(256 << 10);
  std::vector<std::string> acknowledged;
  size_t refused = 0;
  {
    auto wal = WriteAheadLog::Open(options);
    ASSERT_TRUE((*wal)->Replay([](RecordLocation, std::string_view) {}, nullptr).ok());
    ASSERT_TRUE(AppendAndWait(**wal, "first").ok());  // reserves 64 KiB
    acknowledged.push_back("first");
    // Something else takes every byte left on the disk.
    ASSERT_TRUE(env.WriteWholeFile("/other", std::string(env.UsedBytes() > (256 << 10) ? 0 : (256 << 10) - env.UsedBytes(), 'o'), true).ok());
    for (int i = 0; i < 80; ++i) {
      std::string payload = "record " + std::to_string(i) + std::string(1000, 'f');
      Status status = AppendAndWait(**wal, payload);
      if (status.ok()) acknowledged.push_back(payload);
      else refused++;
    }
    // About 64 KiB of records fit in the reservation; then the disk is full for the WAL too.
    EXPECT_GE(acknowledged.size(), 60u);
    EXPECT_GT(refused, 0u);
    env.Crash();
  }
  EXPECT_EQ(ReplayAll(options), acknowledged);
}

// One fault during the second of three rounds: the first and third are acknowledged and
// replayed, the second is refused (Unavailable) and never replayed, with or without a crash.
struct FaultCase {
  const char* name;
  FaultRule rule;
};
void PrintTo(const FaultCase& c, std::ostream* os) { *os << c.name; }

class WalFaultTest : public ::testing::TestWithParam<FaultCase> {};

TEST_P(WalFaultTest, AFailedRoundIsRefusedTakenBackAndTheLogGoesOn) {
  for (bool crash : {false, true}) {
    FaultInjectionEnv env;
    Options options = InEnv(env);
    {
      auto wal = WriteAheadLog::Open(options);
      ASSERT_TRUE((*wal)->Replay([](RecordLocation, std::string_view) {}, nullptr).ok());
      ASSERT_TRUE(AppendAndWait(**wal, "before").ok());
      env.AddFault(GetParam().rule);
      Status refused = AppendAndWait(**wal, "refused");
      EXPECT_EQ(refused.code(), StatusCode::kUnavailable) << refused.ToString();
      env.ClearFaults();
      EXPECT_TRUE((*wal)->Writable());
      ASSERT_TRUE(AppendAndWait(**wal, "after").ok());
      EXPECT_EQ((*wal)->Stats().failed_records, 1u);
    }
    if (crash) env.Crash(CrashOptions{true, 3});
    EXPECT_EQ(ReplayAll(options), (std::vector<std::string>{"before", "after"})) << GetParam().name << " crash " << crash;
  }
}

INSTANTIATE_TEST_SUITE_P(
    EveryKind, WalFaultTest,
    ::testing::Values(FaultCase{"write EIO", {FaultOp::kWrite, ".wal", 0, 1, EIO, false}},
                      FaultCase{"write ENOSPC, short", {FaultOp::kWrite, ".wal", 0, 1, ENOSPC, true}},
                      FaultCase{"write EIO, short", {FaultOp::kWrite, ".wal", 0, 1, EIO, true}},
                      FaultCase{"fsync EIO", {FaultOp::kSync, ".wal", 0, 1, EIO, false}},
                      FaultCase{"fsync ENOSPC", {FaultOp::kSync, ".wal", 0, 1, ENOSPC, false}}),
    [](const ::testing::TestParamInfo<FaultCase>& info) { return std::string("case") + std::to_string(info.index); });

TEST(WalTest, ASegmentThatCannotBeCreatedDurablyIsNotWrittenTo) {
  for (FaultOp op : {FaultOp::kOpen, FaultOp::kSyncDir}) {
    FaultInjectionEnv env;
    Options options = InEnv(env);
    {
      auto wal = WriteAheadLog::Open(options);
      ASSERT_TRUE((*wal)->Replay([](RecordLocation, std::string_view) {}, nullptr).ok());
      env.AddFault({op, "wal", 0, 1, EIO, false});
      EXPECT_EQ(AppendAndWait(**wal, "refused").code(), StatusCode::kUnavailable);
      ASSERT_TRUE(AppendAndWait(**wal, "after").ok());
    }
    env.Crash();
    EXPECT_EQ(ReplayAll(options), std::vector<std::string>{"after"});
  }
}

TEST(WalTest, WhenTheCutFailsTooEveryAppendIsRefusedUntilItWorks) {
  FaultInjectionEnv env;
  Options options = InEnv(env);
  {
    auto wal = WriteAheadLog::Open(options);
    ASSERT_TRUE((*wal)->Replay([](RecordLocation, std::string_view) {}, nullptr).ok());
    ASSERT_TRUE(AppendAndWait(**wal, "before").ok());
    env.AddFault({FaultOp::kWrite, ".wal", 0, 1, EIO, true});       // half a frame lands
    env.AddFault({FaultOp::kTruncate, ".wal", 0, 3, EIO, false});   // and cannot be taken back, 3 times
    EXPECT_EQ(AppendAndWait(**wal, "refused 1").code(), StatusCode::kUnavailable);
    EXPECT_FALSE((*wal)->Writable());
    EXPECT_EQ(AppendAndWait(**wal, "refused 2").code(), StatusCode::kUnavailable);
    EXPECT_EQ(AppendAndWait(**wal, "refused 3").code(), StatusCode::kUnavailable);
    ASSERT_TRUE(AppendAndWait(**wal, "after").ok()) << "the fourth try cuts the tail and writes again";
    EXPECT_TRUE((*wal)->Writable());
  }
  EXPECT_EQ(ReplayAll(options), (std::vector<std::string>{"before", "after"}));
}

TEST(WalTest, AFullDiskRefusesRecordsAndResumesByItselfWhenSpaceReturns) {
  FaultInjectionEnv env;
  Options options = InEnv(env, FsyncMode::kBatch, 256 << 10);
  std::vector<std::string> acknowledged;
  size_t refused = 0;
  {
    auto wal = WriteAheadLog::Open(options);
    ASSERT_TRUE((*wal)->Replay([](RecordLocation, std::string_view) {}, nullptr).ok());
    env.SetSpaceLimit(100 << 10);
    for (int i = 0; i < 400; ++i) {
      std::string payload = "record " + std::to_string(i) + std::string(1000, 'f');
      Status status = AppendAndWait(**wal, payload);
      if (status.ok()) acknowledged.push_back(payload);
      else {
        EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
        EXPECT_NE(status.message().find("no space"), std::string::npos) << status.message();
        refused++;
      }
      if (i == 300) env.SetSpaceLimit(0);  // space returns
    }
    EXPECT_GT(refused, 0u);
    EXPECT_EQ(acknowledged.size() + refused, 400u);
    EXPECT_EQ(acknowledged.back().substr(0, 10), "record 399");
  }
  env.Crash();
  EXPECT_EQ(ReplayAll(options), acknowledged);
}

TEST(WalTest, AReadErrorStopsReplayWithoutCuttingAnything) {
  FaultInjectionEnv env;
  Options options = InEnv(env);
  {
    auto wal = WriteAheadLog::Open(options);
    ASSERT_TRUE((*wal)->Replay([](RecordLocation, std::string_view) {}, nullptr).ok());
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(AppendAndWait(**wal, "record " + std::to_string(i)).ok());
  }
  auto listed = env.ListDir("/data/wal");
  std::string path = "/data/wal/" + (*listed)[0].name;
  uint64_t size = *env.FileSize(path);
  env.AddFault({FaultOp::kRead, ".wal", 5, 1, EIO, false});
  {
    auto wal = WriteAheadLog::Open(options);
    ASSERT_TRUE(wal.ok());
    Status replayed = (*wal)->Replay([](RecordLocation, std::string_view) {}, nullptr);
    EXPECT_EQ(replayed.code(), StatusCode::kIoError);
    EXPECT_NE(replayed.message().find("nothing was cut"), std::string::npos) << replayed.message();
  }
  EXPECT_EQ(*env.FileSize(path), size);
  env.ClearFaults();
  EXPECT_EQ(ReplayAll(options).size(), 10u);
}

// The crash harness: the same workload (appends in rounds, rotations, removal of a sealed
// segment) is run once to count its operations, then again with the process "dying" after
// each operation in turn, torn or not. After each: every acknowledged record is replayed
// exactly once and in order, and no record refused before the crash is.
TEST(WalTest, ACrashAfterAnyOperationKeepsEveryAcknowledgedRecordExactlyOnce) {
  auto workload = [](FaultInjectionEnv& env, std::vector<std::string>& acknowledged, std::set<std::string>& refused) {
    Options options = InEnv(env, FsyncMode::kBatch, 2048);
    auto wal = WriteAheadLog::Open(options);
    if (!wal.ok()) return;
    if (!(*wal)->Replay([](RecordLocation, std::string_view) {}, nullptr).ok()) return;
    for (int round = 0; round < 6; ++round) {
      std::mutex mutex;
      std::condition_variable done;
      int answered = 0;
      std::vector<std::pair<std::string, Status>> answers(5);
      for (int i = 0; i < 5; ++i) {
        std::string payload = "r" + std::to_string(round) + "-" + std::to_string(i) + std::string(200, 'w');
        (*wal)->Append(Record(payload), [&, i, payload](Status status, RecordLocation) {
          std::lock_guard lock(mutex);
          answers[size_t(i)] = {payload, status};
          answered++;
          done.notify_all();
        });
      }
      std::unique_lock lock(mutex);
      done.wait(lock, [&] { return answered == 5; });
      for (const auto& [payload, status] : answers) {
        if (status.ok()) acknowledged.push_back(payload);
        else if (status.message().find("process has died") == std::string::npos) refused.insert(payload);
      }
      lock.unlock();
      if (round % 2 == 1) (*wal)->Rotate();
      if (round == 3) {
        auto sealed = (*wal)->SealedSegments();
        if (!sealed.empty()) {
          // Its records are "stored elsewhere" from now on: no longer owed.
          (void)(*wal)->RemoveSegment(sealed.front());
          acknowledged.clear();
        }
      }
    }
  };

  FaultInjectionEnv probe;
  std::vector<std::string> acknowledged;
  std::set<std::string> refused;
  uint64_t before = probe.OperationCount();
  workload(probe, acknowledged, refused);
  uint64_t operations = probe.OperationCount() - before;
  ASSERT_GT(operations, 20u);
  for (bool torn : {false, true}) {
    for (uint64_t k = 1; k <= operations + 1; ++k) {
      FaultInjectionEnv env;
      acknowledged.clear();
      refused.clear();
      env.CrashAfter(k);
      workload(env, acknowledged, refused);
      env.Crash(CrashOptions{torn, k});
      std::vector<std::string> replayed = ReplayAll(InEnv(env, FsyncMode::kBatch, 2048));
      std::set<std::string> seen;
      for (const auto& payload : replayed) {
        EXPECT_TRUE(seen.insert(payload).second) << "replayed twice: " << payload.substr(0, 5) << " (k=" << k << ")";
        EXPECT_EQ(refused.count(payload), 0u) << "refused but replayed: " << payload.substr(0, 5) << " (k=" << k << ")";
      }
      // Acknowledged records (since the removal) are all there, in order.
      size_t at = 0;
      for (const auto& payload : replayed)
        if (at < acknowledged.size() && payload == acknowledged[at]) at++;
      EXPECT_EQ(at, acknowledged.size()) << "k=" << k << " torn=" << torn << ": acknowledged records missing";
    }
  }
}

TEST(WalTest, ARecordLargerThan256MiBIsValid) {
  TempDir dir("tracery-wal-test");
  Options options;
  options.directory = dir.path() + "/wal";
  options.segment_bytes = 1 << 20;
  std::string big(260u << 20, 'L');
  big[12345] = 'x';
  {
    auto wal = WriteAheadLog::Open(options);
    ASSERT_TRUE((*wal)->Replay([](RecordLocation, std::string_view) {}, nullptr).ok());
    ASSERT_TRUE(AppendAndWait(**wal, big).ok());
    ASSERT_TRUE(AppendAndWait(**wal, "small").ok());
  }
  size_t records = 0;
  auto wal = WriteAheadLog::Open(options);
  ASSERT_TRUE((*wal)->Replay([&](RecordLocation, std::string_view payload) {
                       records++;
                       if (records == 1) EXPECT_TRUE(payload == big);
                       else EXPECT_EQ(payload, "small");
                     }, nullptr).ok());
  EXPECT_EQ(records, 2u);
}

}  // namespace
}  // namespace tracery::wal
