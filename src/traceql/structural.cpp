// Spanset operators. Both sides are span lists of one trace; relations come from the view's
// parent links. Each relation is computed for all spans at once with marks, so an operator is
// linear in the trace's span count, and parent cycles in malformed data cannot loop forever.
#include <algorithm>

#include "traceql/evaluate.h"

namespace tracery::traceql {
namespace {

using Marks = std::vector<uint8_t>;

Marks MarkSpans(const SpanList& spans, size_t n) {
  Marks marks(n, 0);
  for (uint32_t s : spans) marks[s] = 1;
  return marks;
}

int32_t ParentOf(const TraceView& trace, uint32_t span) { return trace.spans[span].parent; }

// marks[p] = 1 for each parent p of a span in `spans`.
Marks MarkParents(const SpanList& spans, const TraceView& trace) {
  Marks marks(trace.spans.size(), 0);
  for (uint32_t s : spans) {
    int32_t p = ParentOf(trace, s);
    if (p >= 0) marks[static_cast<size_t>(p)] = 1;
  }
  return marks;
}

// marks[a] = 1 for every proper ancestor a of a span in `spans`.
Marks MarkAncestors(const SpanList& spans, const TraceView& trace) {
  Marks marks(trace.spans.size(), 0);
  for (uint32_t s : spans) {
    int32_t p = ParentOf(trace, s);
    while (p >= 0 && !marks[static_cast<size_t>(p)]) {  // stops at marked spans: linear, cycle-safe
      marks[static_cast<size_t>(p)] = 1;
      p = ParentOf(trace, static_cast<uint32_t>(p));
    }
  }
  return marks;
}

// result[s] = 1 when some proper ancestor of s is marked in `in`.
Marks MarkHavingAncestorIn(const Marks& in, const TraceView& trace) {
  enum : uint8_t { kUnknown = 0, kYes = 1, kNo = 2, kVisiting = 3 };
  size_t n = trace.spans.size();
  std::vector<uint8_t> state(n, kUnknown);
  std::vector<uint32_t> path;
  for (uint32_t start = 0; start < n; ++start) {
    if (state[start] != kUnknown) continue;
    path.clear();
    uint32_t cur = start;
    // Climb until a span whose answer is known (or a root, or a cycle).
    while (true) {
      state[cur] = kVisiting;
      path.push_back(cur);
      int32_t p = ParentOf(trace, cur);
      if (p < 0 || in[static_cast<size_t>(p)] || state[static_cast<size_t>(p)] != kUnknown) break;
      cur = static_cast<uint32_t>(p);
    }
    // Settle the path from the top down.
    for (size_t i = path.size(); i-- > 0;) {
      uint32_t s = path[i];
      int32_t p = ParentOf(trace, s);
      bool yes = p >= 0 && (in[static_cast<size_t>(p)] || state[static_cast<size_t>(p)] == kYes);
      state[s] = yes ? kYes : kNo;
    }
  }
  Marks result(n, 0);
  for (size_t i = 0; i < n; ++i) result[i] = state[i] == kYes;
  return result;
}

// result[s] = 1 when s has a sibling (same parent, another span) in `spans`.
Marks MarkHavingSiblingIn(const SpanList& spans, const TraceView& trace) {
  size_t n = trace.spans.size();
  std::vector<uint32_t> per_parent(n, 0);
  Marks in = MarkSpans(spans, n);
  for (uint32_t s : spans) {
    int32_t p = ParentOf(trace, s);
    if (p >= 0) ++per_parent[static_cast<size_t>(p)];
  }
  Marks result(n, 0);
  for (size_t s = 0; s < n; ++s) {
    int32_t p = ParentOf(trace, static_cast<uint32_t>(s));
    if (p >= 0) result[s] = per_parent[static_cast<size_t>(p)] > (in[s] ? 1u : 0u);
  }
  return result;
}

Marks MarkHavingParentIn(const SpanList& spans, const TraceView& trace) {
  Marks in = MarkSpans(spans, trace.spans.size());
  Marks result(trace.spans.size(), 0);
  for (size_t s = 0; s < trace.spans.size(); ++s) {
    int32_t p = ParentOf(trace, static_cast<uint32_t>(s));
    result[s] = p >= 0 && in[static_cast<size_t>(p)];
  }
  return result;
}

SpanList Select(const SpanList& spans, const Marks& marks, bool want) {
  SpanList out;
  for (uint32_t s : spans) {
    if (static_cast<bool>(marks[s]) == want) out.push_back(s);
  }
  return out;
}

}  // namespace

SpanList UnionSpans(const SpanList& a, const SpanList& b) {
  SpanList out;
  out.reserve(a.size() + b.size());
  std::set_union(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

SpanList ApplySpansetOperator(SpansetOperator op, const SpanList& lhs, const SpanList& rhs, const TraceView& trace) {
  size_t n = trace.spans.size();
  switch (op) {
    case SpansetOperator::kAnd: return lhs.empty() || rhs.empty() ? SpanList() : UnionSpans(lhs, rhs);
    case SpansetOperator::kUnion: return UnionSpans(lhs, rhs);
    // B spans whose parent is in A.
    case SpansetOperator::kChild: return Select(rhs, MarkHavingParentIn(lhs, trace), true);
    case SpansetOperator::kNotChild: return Select(rhs, MarkHavingParentIn(lhs, trace), false);
    case SpansetOperator::kUnionChild:
      return UnionSpans(Select(rhs, MarkHavingParentIn(lhs, trace), true), Select(lhs, MarkParents(rhs, trace), true));
    // B spans that are the parent of an A span.
    case SpansetOperator::kParent: return Select(rhs, MarkParents(lhs, trace), true);
    case SpansetOperator::kNotParent: return Select(rhs, MarkParents(lhs, trace), false);
    case SpansetOperator::kUnionParent:
      return UnionSpans(Select(rhs, MarkParents(lhs, trace), true), Select(lhs, MarkHavingParentIn(rhs, trace), true));
    // B spans with an ancestor in A.
    case SpansetOperator::kDescendant: return Select(rhs, MarkHavingAncestorIn(MarkSpans(lhs, n), trace), true);
    case SpansetOperator::kNotDescendant: return Select(rhs, MarkHavingAncestorIn(MarkSpans(lhs, n), trace), false);
    case SpansetOperator::kUnionDescendant:
      return UnionSpans(Select(rhs, MarkHavingAncestorIn(MarkSpans(lhs, n), trace), true),
                        Select(lhs, MarkAncestors(rhs, trace), true));
    // B spans that are an ancestor of an A span.
    case SpansetOperator::kAncestor: return Select(rhs, MarkAncestors(lhs, trace), true);
    case SpansetOperator::kNotAncestor: return Select(rhs, MarkAncestors(lhs, trace), false);
    case SpansetOperator::kUnionAncestor:
      return UnionSpans(Select(rhs, MarkAncestors(lhs, trace), true),
                        Select(lhs, MarkHavingAncestorIn(MarkSpans(rhs, n), trace), true));
    // B spans with a sibling in A.
    case SpansetOperator::kSibling: return Select(rhs, MarkHavingSiblingIn(lhs, trace), true);
    case SpansetOperator::kNotSibling: return Select(rhs, MarkHavingSiblingIn(lhs, trace), false);
    case SpansetOperator::kUnionSibling:
      return UnionSpans(Select(rhs, MarkHavingSiblingIn(lhs, trace), true),
                        Select(lhs, MarkHavingSiblingIn(rhs, trace), true));
  }
  return {};
}

}  // namespace tracery::traceql
