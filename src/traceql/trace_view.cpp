// BuildTraceView: the span order, parent links and nested-set numbering trace_view.h defines.
#include "traceql/trace_view.h"

#include <algorithm>
#include <string_view>
#include <unordered_map>

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

// Numbers every span reachable from `root` depth-first (children in view order), with an
// explicit stack so a deep trace cannot overflow the thread's stack.
void NumberFrom(int32_t root, const std::vector<std::vector<int32_t>>& children, std::vector<SpanRef>& spans,
                int32_t& counter) {
  struct Frame {
    int32_t span;
    size_t next_child;
  };
  std::vector<Frame> stack;
  spans[static_cast<size_t>(root)].nested_left = counter++;
  spans[static_cast<size_t>(root)].nested_parent = -1;
  stack.push_back({root, 0});
  while (!stack.empty()) {
    Frame& frame = stack.back();
    const std::vector<int32_t>& kids = children[static_cast<size_t>(frame.span)];
    if (frame.next_child < kids.size()) {
      int32_t child = kids[frame.next_child++];
      SpanRef& ref = spans[static_cast<size_t>(child)];
      ref.nested_left = counter++;
      ref.nested_parent = spans[static_cast<size_t>(frame.span)].nested_left;
      stack.push_back({child, 0});
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

  // The first span in view order owns an ID that several spans share (Zipkin client/server).
  std::unordered_map<std::string_view, int32_t> by_id;
  by_id.reserve(view.spans.size());
  for (size_t i = 0; i < view.spans.size(); ++i) by_id.emplace(view.spans[i].span->span_id, static_cast<int32_t>(i));

  std::vector<std::vector<int32_t>> children(view.spans.size());
  view.start_unix_nano = UINT64_MAX;
  for (size_t i = 0; i < view.spans.size(); ++i) {
    SpanRef& ref = view.spans[i];
    view.start_unix_nano = std::min(view.start_unix_nano, ref.span->start_time_unix_nano);
    view.end_unix_nano = std::max(view.end_unix_nano, ref.span->end_time_unix_nano);
    if (ref.IsRoot()) {
      if (view.root < 0) view.root = static_cast<int32_t>(i);
      continue;
    }
    auto it = by_id.find(ref.span->parent_span_id);
    if (it == by_id.end() || it->second == static_cast<int32_t>(i)) continue;  // disconnected
    ref.parent = it->second;
    children[static_cast<size_t>(it->second)].push_back(static_cast<int32_t>(i));
  }
  for (size_t i = 0; i < view.spans.size(); ++i) {
    view.spans[i].child_count = static_cast<uint32_t>(children[i].size());
  }
  view.end_unix_nano = std::max(view.end_unix_nano, view.start_unix_nano);

  int32_t counter = 1;
  for (size_t i = 0; i < view.spans.size(); ++i) {
    if (view.spans[i].IsRoot()) NumberFrom(static_cast<int32_t>(i), children, view.spans, counter);
  }
  return view;
}

}  // namespace tracery::traceql
