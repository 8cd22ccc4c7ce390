// The storage library's one reader interface. Every place a trace's spans can be (live
// traces, traces waiting for their block, blocks in the backend) is a TraceSource; the
// querier (and search and compaction after it) reads through TraceReader and never reaches
// into the ingester's structures.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/ids.h"
#include "common/status.h"
#include "otlp/model.h"

namespace tracery::storage {

struct TimeRange {
  uint64_t start_unix_nano = 0, end_unix_nano = UINT64_MAX;
  bool Overlaps(uint64_t start, uint64_t end) const { return end >= start_unix_nano && start <= end_unix_nano; }
};

class TraceSource {
 public:
  virtual ~TraceSource() = default;
  // Appends the spans this source holds of the trace to `into` (its resource_spans); sets
  // `found` when it held any. A source may answer Unavailable when the trace moved while it
  // was being read (to a block): the reader then asks every source again.
  virtual Status CollectTrace(const std::string& tenant, const TraceId& id, const TimeRange& range,
                              otlp::TracesData& into, bool& found) = 0;
};

// A trace not yet in a block, as its source summarises it without reading its spans.
struct LiveTraceSummary {
  TraceId id;
  uint64_t start_unix_nano = 0, end_unix_nano = 0;
};

// A source of traces that are not (all) in blocks yet: search lists them and reads each one
// whole through a TraceReader.
class LiveTraceLister {
 public:
  virtual ~LiveTraceLister() = default;
  // The tenant's live traces with spans overlapping `range`.
  virtual std::vector<LiveTraceSummary> ListLiveTraces(const std::string& tenant, const TimeRange& range) = 0;
};

// Looks a trace up in every source, in order, and merges what they hold with duplicates
// removed. Sources must be given in the order traces move through them (live first, blocks
// last): a trace that moves during a lookup is then seen in one place or the other.
class TraceReader {
 public:
  explicit TraceReader(std::vector<TraceSource*> sources) : sources_(std::move(sources)) {}
  Result<std::optional<otlp::TracesData>> FindTrace(const std::string& tenant, const TraceId& id,
                                                    const TimeRange& range = {});

 private:
  std::vector<TraceSource*> sources_;
};

}  // namespace tracery::storage
