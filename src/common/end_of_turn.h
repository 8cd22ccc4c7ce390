// Work that may wait until the event loop of the current thread has run what is ready now.
//
// A server runs each request handler inside an EndOfTurnScope that knows how to post to the
// connection's event loop. Code the handler calls (the write-ahead log's Append) can then ask
// for a function to run after the handlers that are ready now, instead of at once: requests
// that arrived together (several on one connection's read, or on the connections one
// epoll_wait returned) then share one write, or one wake-up of another thread, at the price of
// running the handlers already queued first (microseconds).
//
// Whoever defers must not block the thread waiting for the deferred work (it would never run).
// Threads: the scope is per thread; DeferToEndOfTurn only looks at the calling thread's.
#pragma once

#include <functional>
#include <utility>

namespace tracery {

class EndOfTurnScope {
 public:
  using Post = std::function<void(std::function<void()>)>;
  // `post` queues a function behind the handlers ready on this thread's event loop.
  explicit EndOfTurnScope(const Post& post);
  ~EndOfTurnScope();
  EndOfTurnScope(const EndOfTurnScope&) = delete;
  EndOfTurnScope& operator=(const EndOfTurnScope&) = delete;

 private:
  const Post* previous_;
};

// True when the calling thread is in an EndOfTurnScope.
bool CanDeferToEndOfTurn();
// Queues `work` to run at the end of the current turn and returns true; false when the calling
// thread is in no EndOfTurnScope (then nothing is queued).
bool DeferToEndOfTurn(std::function<void()> work);

}  // namespace tracery
