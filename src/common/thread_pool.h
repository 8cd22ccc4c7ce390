// The process's one pool of background threads (block cuts today; compaction and query
// shards later). Owned by the App and passed to what needs it. Tasks must not block on each
// other. Thread-safe.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tracery {

class ThreadPool {
 public:
  // `nice` > 0 lowers the threads' scheduling priority (setpriority): background work then
  // yields the CPU to request paths (ingest, queries) when they compete for it.
  explicit ThreadPool(size_t threads, int nice = 0);
  ~ThreadPool();  // runs what is queued, then joins
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Queues a task; false (and the task is not run) once the pool is stopping.
  bool Submit(std::function<void()> task);
  void Stop();
  size_t size() const { return threads_.size(); }

 private:
  void Run(int nice);

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// The CPUs this process may run on (its affinity mask, as taskset or a cpuset sets it), at
// least 1. Event-loop threads are sized by it: a second loop on one CPU only adds switches.
size_t UsableCpus();

}  // namespace tracery
