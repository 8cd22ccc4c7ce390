// BuildTraceView: the span order, parent links and nested-set numbering trace_view.h defines.
#include "traceql/trace_view.h"

#include <algorithm>
#include <string_view>
#include <climits>
#include <utility>
#include <vector>

namespace tracery::traceql {

std::string_view ServiceName(const otlp::Resource& resource) {
  for (const otlp::KeyValue& kv : resource.attributes) {
    if (kv.key == "service.name") {
      return kv.value.type == otlp::AnyValue::Type::kString ? std::string_view(kv.value.string_value)
                                                            : std::string_view();
    }
  }
  return {};
}

std::string_view TraceView::RootServiceName() const {
  if (root < 0) return {};
  return ServiceName(*spans[static_cast<size_t>(root)].resource);
}

std::string_view TraceView::RootSpanName() const {
  if (root < 0) return {};
  return spans[static_cast<size_t>(root)].span->name;
}

namespace {

// Children of every span in view order, flat: the children of span i are
// child[first[i] .. first[i + 1]). Buffers are per thread and reused from trace to trace.
struct ChildLists {
  std::vector<int32_t> first, child;
};

// Numbers every span reachable from `root` depth-first (children in view order), with an
// explicit stack so a deep trace cannot overflow the thread's stack.
void NumberFrom(int32_t root, const ChildLists& children, std::vector<SpanRef>& spans, int32_t& counter) {
  struct Frame {
    int32_t span;
    int32_t next_child;
  };
  thread_local std::vector<Frame> stack;
  stack.clear();
  spans[static_cast<size_t>(root)].nested_left = counter++;
  spans[static_cast<size_t>(root)].nested_parent = -1;
  stack.push_back({root, children.first[static_cast<size_t>(root)]});
  while (!stack.empty()) {
    Frame& frame = stack.back();
    if (frame.next_child < children.first[static_cast<size_t>(frame.span) + 1]) {
      int32_t child = children.child[static_cast<size_t>(frame.next_child++)];
      SpanRef& ref = spans[static_cast<size_t>(child)];
      ref.nested_left = counter++;
      ref.nested_parent = spans[static_cast<size_t>(frame.span)].nested_left;
      stack.push_back({child, children.first[static_cast<size_t>(child)]});
    } else {
      spans[static_cast<size_t>(frame.span)].nested_right = counter++;
      stack.pop_back();
    }
  }
}

}  // namespace

TraceView BuildTraceView(const TraceId& id, const otlp::TracesData& data) {
  TraceView view;
  view.id = id;
  view.spans.reserve(data.SpanCount());
  for (const otlp::ResourceSpans& resource_spans : data.resource_spans) {
    for (const otlp::ScopeSpans& scope_spans : resource_spans.scope_spans) {
      for (const otlp::Span& span : scope_spans.spans) {
        SpanRef ref;
        ref.span = &span;
        ref.resource = &resource_spans.resource;
        ref.scope = &scope_spans.scope;
        view.spans.push_back(ref);
      }
    }
  }
  return BuildTraceViewFromRefs(id, std::move(view.spans));
}

TraceView BuildTraceViewFromRefs(const TraceId& id, std::vector<SpanRef> spans, bool structure) {
  TraceView view;
  view.id = id;
  view.spans = std::move(spans);
  if (structure) std::stable_sort(view.spans.begin(), view.spans.end(), [](const SpanRef& a, const SpanRef& b) {
    if (a.span->start_time_unix_nano != b.span->start_time_unix_nano) {
      return a.span->start_time_unix_nano < b.span->start_time_unix_nano;
    }
    if (a.span->span_id != b.span->span_id) return a.span->span_id < b.span->span_id;
    return a.span->kind < b.span->kind;
  });
  if (view.spans.empty()) return view;
  if (!structure) {
    view.start_unix_nano = UINT64_MAX;
    for (size_t i = 0; i < view.spans.size(); ++i) {
      const SpanRef& ref = view.spans[i];
      view.start_unix_nano = std::min(view.start_unix_nano, ref.span->start_time_unix_nano);
      view.end_unix_nano = std::max(view.end_unix_nano, ref.span->end_time_unix_nano);
      if (ref.IsRoot() && view.root < 0) view.root = static_cast<int32_t>(i);
    }
    view.end_unix_nano = std::max(view.end_unix_nano, view.start_unix_nano);
    return view;
  }

  // Span IDs sorted with their view positions: the first span in view order owns an ID
  // that several spans share (Zipkin client/server).
  const size_t n = view.spans.size();
  thread_local std::vector<std::pair<std::string_view, int32_t>> by_id;
  by_id.clear();
  for (size_t i = 0; i < n; ++i) by_id.emplace_back(view.spans[i].span->span_id, static_cast<int32_t>(i));
  std::sort(by_id.begin(), by_id.end());
  auto owner_of = [&](std::string_view span_id) -> int32_t {
    auto it = std::lower_bound(by_id.begin(), by_id.end(), std::pair<std::string_view, int32_t>(span_id, INT32_MIN));
    return it != by_id.end() && it->first == span_id ? it->second : -1;
  };

  thread_local ChildLists children;
  children.first.assign(n + 1, 0);
  view.start_unix_nano = UINT64_MAX;
  for (size_t i = 0; i < n; ++i) {
    SpanRef& ref = view.spans[i];
    view.start_unix_nano = std::min(view.start_unix_nano, ref.span->start_time_unix_nano);
    view.end_unix_nano = std::max(view.end_unix_nano, ref.span->end_time_unix_nano);
    if (ref.IsRoot()) {
      if (view.root < 0) view.root = static_cast<int32_t>(i);
      continue;
    }
    int32_t parent = owner_of(ref.span->parent_span_id);
    if (parent < 0 || parent == static_cast<int32_t>(i)) continue;  // disconnected
    ref.parent = parent;
    children.first[static_cast<size_t>(parent) + 1]++;
  }
  for (size_t i = 0; i < n; ++i) {
    view.spans[i].child_count = static_cast<uint32_t>(children.first[i + 1]);
    children.first[i + 1] += children.first[i];
  }
  children.child.resize(n);
  thread_local std::vector<int32_t> filled;
  filled.assign(children.first.begin(), children.first.end() - 1);
  for (size_t i = 0; i < n; ++i) {
    int32_t parent = view.spans[i].parent;
    if (parent >= 0) children.child[static_cast<size_t>(filled[static_cast<size_t>(parent)]++)] = static_cast<int32_t>(i);
  }
  view.end_unix_nano = std::max(view.end_unix_nano, view.start_unix_nano);

  int32_t counter = 1;
  for (size_t i = 0; i < view.spans.size(); ++i) {
    if (view.spans[i].IsRoot()) NumberFrom(static_cast<int32_t>(i), children, view.spans, counter);
  }
  return view;
}

}  // namespace tracery::traceql
