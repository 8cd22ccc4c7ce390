// One trace as TraceQL sees it: its spans in a fixed order with the structure TraceQL asks
// about (parent, nested-set numbering, child count) computed once. The view points into an
// otlp::TracesData that must outlive it; it copies no attribute or string.
//
// This is the contract between the storage scan (which produces traces), the search and
// metrics engines (which evaluate queries over them) and the tests' reference evaluator,
// which must number spans exactly as described here.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "common/ids.h"
#include "otlp/model.h"

namespace tracery::traceql {

struct SpanRef {
  const otlp::Span* span = nullptr;
  const otlp::Resource* resource = nullptr;
  const otlp::Scope* scope = nullptr;
  // Index in TraceView::spans of the parent span, or -1 when the span is a root (no parent
  // span ID) or its parent is not in the trace (disconnected).
  int32_t parent = -1;
  // Tempo's nested-set model. Spans reachable from a root are numbered by a depth-first walk
  // with one counter starting at 1: left = counter++ on entry, right = counter++ on exit.
  // Roots are walked in view order, children in view order. nested_parent is the parent's
  // left, -1 for a root. Disconnected spans (and their descendants) keep 0, 0, 0.
  int32_t nested_left = 0, nested_right = 0, nested_parent = 0;
  uint32_t child_count = 0;  // children present in the trace

  bool IsRoot() const { return span->parent_span_id.empty(); }
  uint64_t DurationNanos() const {
    return span->end_time_unix_nano > span->start_time_unix_nano ? span->end_time_unix_nano - span->start_time_unix_nano
                                                                   : 0;
  }
};

struct TraceView {
  TraceId id;
  // Every span once, ordered by start time, then span ID bytes, then kind.
  std::vector<SpanRef> spans;
  // Earliest start and latest end over all spans; 0 when the trace has no span.
  uint64_t start_unix_nano = 0, end_unix_nano = 0;
  // The first root span in view order, or -1 when the root has not been received.
  int32_t root = -1;
  // Names the table the spans' resource pointers point into, when views built one after the
  // other share one (a row group's): a non-zero value is never reused for another table, so a
  // reader may remember what it worked out per resource while it stays the same. 0: unknown
  // (the pointers are this view's alone).
  uint64_t resource_table = 0;

  uint64_t DurationNanos() const { return end_unix_nano - start_unix_nano; }
  // resource.service.name of the root span ("" without a root or the attribute).
  std::string_view RootServiceName() const;
  std::string_view RootSpanName() const;
};

// Builds the view of a trace. `data` holds one trace's spans (duplicates already removed)
// and must outlive the view.
TraceView BuildTraceView(const TraceId& id, const otlp::TracesData& data);
// The same from spans given as refs with span, resource and scope set (in any order); the
// spans they point at must outlive the view. Without `structure`, the spans stay in the
// order given and parent, nested-set numbers and child counts are left unset (what
// span-local queries, which do not depend on order, never read).
TraceView BuildTraceViewFromRefs(const TraceId& id, std::vector<SpanRef> spans, bool structure = true);

// resource.service.name of a resource, "" when absent or not a string.
std::string_view ServiceName(const otlp::Resource& resource);

}  // namespace tracery::traceql
