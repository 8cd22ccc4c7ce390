// Routing between gateway peers, so that several gateways behind one address decide each trace
// whole: every trace ID has one owning gateway (rendezvous hashing over a static peer list),
// and a gateway forwards the spans of traces it does not own to their owner over OTLP/gRPC
// before it acknowledges its client.
//
// Ownership is the highest random weight: owner(id) = the peer p maximising
// XXH3_64(id bytes, seed = XXH3_64(p)), ties to the smaller peer string. It depends on the
// set of peer strings only (not their order, not the process), so every gateway given the
// same list computes the same owner; removing a peer moves only the traces it owned.
//
// Forwarded requests carry the metadata `x-tracery-forwarded: 1` (kForwardedHeader). A
// receiver must treat such a request as local whole, never forward it again: if two gateways
// disagree about the peer list, spans land on the wrong gateway instead of bouncing.
//
// Threads: Route may be called from any thread (the receivers' io threads); the exports run on
// the router's own small pool and `done` is called from there (or at once, inline, when
// nothing needs forwarding).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/ids.h"
#include "common/metrics.h"
#include "common/status.h"
#include "common/thread_pool.h"
#include "exporter/otlp_exporter.h"
#include "otlp/split.h"

namespace tracery::exporter {

// Lowercase, as gRPC metadata names are; HTTP header names compare case-insensitively.
constexpr const char* kForwardedHeader = "x-tracery-forwarded";
constexpr const char* kForwardedValue = "1";

struct PeerRouterOptions {
  std::vector<std::string> peers;  // host:port of every gateway's OTLP/gRPC receiver, self included
  std::string self;                // this gateway's entry in `peers`, as written there
  // Template for the exporter to each peer: protocol is forced to gRPC, endpoint set per peer
  // and the forwarded header added. The defaults suit a hop inside one deployment: plaintext,
  // short retries (the client is waiting for its answer and will retry itself).
  ExporterOptions exporter = DefaultPeerExporterOptions();
  size_t threads = 4;  // concurrent forwards

  static ExporterOptions DefaultPeerExporterOptions();
};

class PeerRouter {
 public:
  // Fails on an empty peer list, duplicate peers, or `self` not among them.
  static Result<std::unique_ptr<PeerRouter>> Create(PeerRouterOptions options, MetricsRegistry& metrics);
  ~PeerRouter();  // waits for forwards in flight

  // Index into peers() of the gateway that owns the trace.
  size_t Owner(const TraceId& trace_id) const;
  bool IsLocal(const TraceId& trace_id) const { return Owner(trace_id) == self_index_; }
  const std::vector<std::string>& peers() const { return options_.peers; }
  size_t self_index() const { return self_index_; }

  // Sets local[i] for each fragment of `split` this gateway owns (local is resized to the
  // fragment count) and forwards the others, one request per owning peer (the fragments'
  // bytes concatenated). `done` is called exactly once: OK when every peer acknowledged (at
  // once when there was nothing to forward), or with the first error (Unavailable when worth
  // retrying): the caller then answers its client with a retryable error and stores nothing.
  // `split` is only read during the call.
  void Route(const std::string& tenant, const otlp::SplitRequest& split, std::vector<bool>& local,
             std::function<void(Status)> done);

  // Ends the retry waits of forwards in flight (they fail Unavailable); later forwards make
  // one attempt each, without retries. For the server's shutdown, before the receivers stop.
  void Shutdown();

 private:
  PeerRouter(PeerRouterOptions options, size_t self_index);

  const PeerRouterOptions options_;
  const size_t self_index_;
  std::vector<uint64_t> peer_seeds_;
  std::vector<std::shared_ptr<OtlpExporter>> exporters_;  // per peer; null for self
  std::unique_ptr<ThreadPool> pool_;
};

}  // namespace tracery::exporter
