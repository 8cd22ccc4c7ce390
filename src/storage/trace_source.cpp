#include "storage/trace_source.h"

#include "block/block.h"

namespace tracery::storage {

Result<std::optional<otlp::TracesData>> TraceReader::FindTrace(const std::string& tenant, const TraceId& id,
                                                               const TimeRange& range) {
  constexpr int kAttempts = 4;
  Status last;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    otlp::TracesData merged;
    bool found = false;
    Status status;
    for (TraceSource* source : sources_) {
      status = source->CollectTrace(tenant, id, range, merged, found);
      if (!status.ok()) break;
    }
    if (status.code() == StatusCode::kUnavailable) {  // moved while read: look again
      last = status;
      continue;
    }
    if (!status.ok()) return status;
    if (!found) return std::optional<otlp::TracesData>();
    block::DeduplicateSpans(merged);
    return std::optional<otlp::TracesData>(std::move(merged));
  }
  return last;
}

}  // namespace tracery::storage
