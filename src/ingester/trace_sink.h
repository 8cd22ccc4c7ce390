// Where the ingester sends the traces it keeps, when not into blocks of its own: a gateway
// (`-target=sampler`) forwards them to another backend. The ingester calls Deliver from its
// background pool, one call per tenant at a time, with traces whose spans stay in the WAL
// until Deliver returns OK: the WAL is the sink's disk-backed queue, bounded by
// ingester.max_live_bytes, and a failed delivery is retried with backoff (at-least-once: the
// receiving backend removes duplicate spans).
#pragma once

#include <string>
#include <vector>

#include "common/ids.h"
#include "common/status.h"

namespace tracery::ingester {

struct KeptTrace {
  TraceId id;
  // The trace's spans: encoded `repeated ResourceSpans resource_spans = 1` fields, i.e. a valid
  // TracesData (and ExportTraceServiceRequest) message.
  std::string bytes;
  uint32_t span_count = 0;
};

class TraceSink {
 public:
  virtual ~TraceSink() = default;
  // OK once the receiving end acknowledged every span of `traces`; an error leaves them all
  // waiting for the next attempt. May block (it runs on the background pool).
  virtual Status Deliver(const std::string& tenant, const std::vector<KeptTrace>& traces) = 0;
};

}  // namespace tracery::ingester
