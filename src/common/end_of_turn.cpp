#include "common/end_of_turn.h"

namespace tracery {
namespace {
thread_local const EndOfTurnScope::Post* current_post = nullptr;
}  // namespace

EndOfTurnScope::EndOfTurnScope(const Post& post) : previous_(current_post) { current_post = &post; }

EndOfTurnScope::~EndOfTurnScope() { current_post = previous_; }

bool CanDeferToEndOfTurn() { return current_post != nullptr; }

bool DeferToEndOfTurn(std::function<void()> work) {
  if (!current_post) return false;
  (*current_post)(std::move(work));
  return true;
}

}  // namespace tracery
