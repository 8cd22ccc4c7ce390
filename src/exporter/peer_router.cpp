#include "exporter/peer_router.h"

#include <xxhash.h>

#include <atomic>
#include <mutex>
#include <set>

namespace tracery::exporter {

ExporterOptions PeerRouterOptions::DefaultPeerExporterOptions() {
  ExporterOptions options;
  options.name = "peer";
  options.tls.insecure = true;
  options.compression = Compression::kNone;  // a hop inside the deployment: CPU over bytes
  options.timeout = std::chrono::seconds(5);
  options.retry.initial_interval = std::chrono::milliseconds(100);
  options.retry.max_interval = std::chrono::seconds(1);
  options.retry.max_elapsed_time = std::chrono::seconds(5);
  return options;
}

Result<std::unique_ptr<PeerRouter>> PeerRouter::Create(PeerRouterOptions options, MetricsRegistry& metrics) {
  if (options.peers.empty()) return Status::InvalidArgument("gateway peers: the peer list is empty");
  std::set<std::string> seen;
  size_t self_index = options.peers.size();
  for (size_t i = 0; i < options.peers.size(); ++i) {
    if (!seen.insert(options.peers[i]).second)
      return Status::InvalidArgument("gateway peers: `" + options.peers[i] + "` is listed twice");
    if (options.peers[i] == options.self) self_index = i;
  }
  if (self_index == options.peers.size())
    return Status::InvalidArgument("gateway peers: self `" + options.self + "` is not in the peer list");
  auto router = std::unique_ptr<PeerRouter>(new PeerRouter(std::move(options), self_index));
  for (size_t i = 0; i < router->options_.peers.size(); ++i) {
    if (i == self_index) {
      router->exporters_.push_back(nullptr);
      continue;
    }
    ExporterOptions exporter = router->options_.exporter;
    exporter.protocol = Protocol::kGrpc;
    exporter.name = "peer/" + router->options_.peers[i];
    exporter.endpoint = router->options_.peers[i];
    exporter.headers.emplace_back(kForwardedHeader, kForwardedValue);
    auto created = OtlpExporter::Create(std::move(exporter), metrics);
    if (!created.ok()) return created.status();
    router->exporters_.push_back(std::move(created).value());
  }
  return router;
}

PeerRouter::PeerRouter(PeerRouterOptions options, size_t self_index)
    : options_(std::move(options)), self_index_(self_index) {
  for (const auto& peer : options_.peers) peer_seeds_.push_back(XXH3_64bits(peer.data(), peer.size()));
  pool_ = std::make_unique<ThreadPool>(std::max<size_t>(1, options_.threads));
}

PeerRouter::~PeerRouter() {
  Shutdown();
  pool_->Stop();
}

void PeerRouter::Shutdown() {
  for (const auto& exporter : exporters_)
    if (exporter) exporter->Shutdown();
}

size_t PeerRouter::Owner(const TraceId& trace_id) const {
  size_t best = 0;
  uint64_t best_weight = 0;
  for (size_t i = 0; i < peer_seeds_.size(); ++i) {
    uint64_t weight = XXH3_64bits_withSeed(trace_id.bytes.data(), trace_id.bytes.size(), peer_seeds_[i]);
    if (i == 0 || weight > best_weight || (weight == best_weight && options_.peers[i] < options_.peers[best])) {
      best = i;
      best_weight = weight;
    }
  }
  return best;
}

void PeerRouter::Route(const std::string& tenant, const otlp::SplitRequest& split, std::vector<bool>& local,
                       std::function<void(Status)> done) {
  local.assign(split.fragments.size(), false);
  std::vector<std::string> bodies(options_.peers.size());
  size_t remote_peers = 0;
  for (size_t i = 0; i < split.fragments.size(); ++i) {
    size_t owner = Owner(split.fragments[i].trace_id);
    if (owner == self_index_) {
      local[i] = true;
      continue;
    }
    if (bodies[owner].empty()) ++remote_peers;
    bodies[owner].append(split.fragments[i].bytes);
  }
  if (remote_peers == 0) return done(Status::Ok());

  // Shared by the forwards of this request: the first error, or the last success, answers.
  struct Pending {
    std::atomic<size_t> remaining;
    std::atomic<bool> answered{false};
    std::function<void(Status)> done;
  };
  auto pending = std::make_shared<Pending>();
  pending->remaining = remote_peers;
  pending->done = std::move(done);
  auto finish = [pending](Status status) {
    bool last = pending->remaining.fetch_sub(1) == 1;
    if ((!status.ok() || last) && !pending->answered.exchange(true)) pending->done(std::move(status));
  };
  for (size_t peer = 0; peer < bodies.size(); ++peer) {
    if (bodies[peer].empty()) continue;
    auto exporter = exporters_[peer];
    bool queued = pool_->Submit([exporter, tenant, body = std::move(bodies[peer]), finish] {
      finish(exporter->Export(tenant, body));
    });
    if (!queued) finish(Status::Unavailable("gateway peers: shutting down"));
  }
}

}  // namespace tracery::exporter
