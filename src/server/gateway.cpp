#include "server/gateway.h"

#include <boost/asio/executor_work_guard.hpp>
#include <spdlog/spdlog.h>

#include "common/env.h"
#include "common/tls.h"
#include "sampling/sampler.h"

namespace tracery::server {

namespace {

constexpr uint64_t kMaxRequestBytes = 16ull << 20;
constexpr uint64_t kMaxInflightBytes = 256ull << 20;

Result<std::pair<std::string, uint16_t>> HostPort(const std::string& endpoint) {
  std::string host;
  uint16_t port;
  if (!SplitHostPort(endpoint, host, port)) return Status::InvalidArgument("bad endpoint " + endpoint);
  return std::make_pair(host, port);
}

}  // namespace

Result<std::unique_ptr<Gateway>> Gateway::Start(const GatewayConfig& config) {
  std::unique_ptr<Gateway> gateway(new Gateway());
  Gateway& g = *gateway;
  g.config_ = config;
  Env& env = DefaultEnv();

  ingester::Options options;
  options.wal.directory = config.wal_path;
  options.wal.env = &env;
  options.dead_letter_directory = JoinPath(config.wal_path, "deadletter");
  // Kept traces go out soon after their decision, in requests of a few MiB; their late spans
  // follow in further requests (the backend merges them).
  options.trace_idle_period = std::chrono::seconds(2);
  options.max_block_duration = std::chrono::seconds(30);
  options.max_block_bytes = 4ull << 20;
  options.max_bytes_per_trace = 0;  // the backend's limit applies there
  if (uint64_t limit = config.memory_limiter.LimitBytes(SystemMemoryBytes()); limit > 0)
    options.max_live_bytes = std::max<uint64_t>(limit / 4, 16ull << 20);
  if (config.tail_sampling) {
    auto policies = sampling::ParseTailSampling(config.tail_sampling->node, config.tail_sampling->file,
                                                "processors." + config.tail_sampling->id);
    if (!policies.ok()) return policies.status();
    options.sampling.policies = std::move(policies).value();
    if (config.quiet_period) options.sampling.quiet_period = *config.quiet_period;
    if (!config.tail_sampling->in_pipeline)
      spdlog::warn("gateway: processors.{} is not listed in service.pipelines.{}.processors; the gateway runs it anyway "
                   "(it is what a gateway is for): list it to silence this",
                   config.tail_sampling->id, config.pipeline_id);
  } else {
    spdlog::warn("gateway: no tail_sampling processor: every trace is forwarded");
  }

  for (const auto& e : config.exporters) {
    auto exporter = exporter::OtlpExporter::Create(e.options, g.metrics_);
    if (!exporter.ok()) return Status(exporter.status().code(), "exporters." + e.id + ": " + exporter.status().message());
    g.exporters_.push_back(std::shared_ptr<exporter::OtlpExporter>(std::move(exporter).value()));
  }
  if (g.exporters_.empty()) return Status::InvalidArgument("the traces pipeline has no exporter to forward kept traces to");
  g.forwarder_ = std::make_unique<exporter::TraceForwarder>(g.exporters_);
  options.sink = g.forwarder_.get();

  g.background_ = std::make_unique<ThreadPool>(2, 5);
  // The ingester wants a block store; a gateway never writes one (its sink takes every trace).
  g.store_ = backend::NewLocalObjectStore(JoinPath(config.wal_path, "no-blocks"), env);
  g.blocks_ = std::make_unique<storage::BlockList>(*g.store_, storage::BlockListOptions{});
  TRACERY_RETURN_IF_ERROR(g.blocks_->Open());
  auto ingester = ingester::Ingester::Open(options, env, *g.store_, *g.blocks_, *g.background_, g.metrics_);
  if (!ingester.ok()) return ingester.status();
  g.ingester_ = std::move(ingester).value();

  distributor::Options distributor_options;
  distributor_options.multitenancy_enabled = config.multitenancy_enabled;
  distributor_options.max_request_bytes = kMaxRequestBytes;
  distributor_options.max_inflight_bytes = kMaxInflightBytes;
  distributor_options.rate_limit_bytes = UINT64_MAX / 4;
  distributor_options.burst_size_bytes = UINT64_MAX / 4;
  if (!config.peers.empty()) {
    exporter::PeerRouterOptions router_options;
    router_options.peers = config.peers;
    router_options.self = config.self;
    router_options.exporter = config.peer_exporter;
    auto router = exporter::PeerRouter::Create(router_options, g.metrics_);
    if (!router.ok()) return router.status();
    g.router_ = std::move(router).value();
    exporter::PeerRouter* raw = g.router_.get();
    distributor_options.route = [raw](const std::string& tenant, const otlp::SplitRequest& split, std::vector<bool>& local,
                                      std::function<void(Status)> done) { raw->Route(tenant, split, local, std::move(done)); };
    distributor_options.remote_owner = [raw](const TraceId& trace_id) {
      size_t owner = raw->Owner(trace_id);
      return owner == raw->self_index() ? std::string_view() : std::string_view(raw->peers()[owner]);
    };
    spdlog::info("gateway: {} of {} peers; traces are decided by their owner (by trace ID)", config.self,
                 config.peers.size());
  }
  g.distributor_ = std::make_unique<distributor::Distributor>(distributor_options, *g.ingester_, nullptr, g.metrics_);

  for (const auto& r : config.receivers) {
    if (r.grpc.enabled) {
      uint64_t limit = r.grpc.max_request_bytes ? r.grpc.max_request_bytes : kMaxRequestBytes;
      auto grpc = receiver::GrpcReceiver::Start(r.grpc.endpoint, limit, kMaxInflightBytes, *g.distributor_, r.grpc.tls);
      if (!grpc.ok()) return Status(grpc.status().code(), "receivers." + r.id + ".protocols.grpc: " + grpc.status().message());
      g.grpc_receivers_.push_back(std::move(grpc).value());
      spdlog::info("gateway: OTLP/gRPC receiver {} on {}", r.id, r.grpc.endpoint);
    }
    if (r.http.enabled) {
      auto where = HostPort(r.http.endpoint);
      if (!where.ok()) return where.status();
      HttpServerOptions http_options;
      http_options.body_limit = r.http.max_request_bytes ? r.http.max_request_bytes : kMaxRequestBytes;
      http_options.receiving_budget = kMaxInflightBytes;
      if (r.http.tls.enabled()) {
        auto tls = TlsContextSource::Create(r.http.tls, "receivers." + r.id + ".protocols.http.tls");
        if (!tls.ok()) return tls.status();
        http_options.tls = *tls;
      }
      auto server = HttpServer::Bind(g.io_, where->first, where->second, http_options,
                                     receiver::MakeOtlpHttpHandler(*g.distributor_, http_options.body_limit));
      if (!server.ok()) return Status(server.status().code(), "receivers." + r.id + ".protocols.http: " + server.status().message());
      g.http_servers_.push_back(std::move(server).value());
      spdlog::info("gateway: OTLP/HTTP receiver {} on {}", r.id, r.http.endpoint);
    }
  }
  // Its own telemetry, as the Collector serves it: /metrics, plus /ready and POST /flush
  // (decide every pending trace and forward what is kept, now).
  auto telemetry = HostPort(config.metrics_address.empty() ? "0.0.0.0:8888" : config.metrics_address);
  if (!telemetry.ok()) return telemetry.status();
  HttpServerOptions telemetry_options;
  telemetry_options.body_limit = 1 << 16;
  Gateway* self = gateway.get();
  auto telemetry_server = HttpServer::Bind(
      g.io_, telemetry->first, telemetry->second, telemetry_options, [self](HttpRequest&& request, Responder respond) {
        std::string path(request.target().substr(0, request.target().find('?')));
        if (path == "/metrics") {
          respond(HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", self->metrics_.Render(false), {}});
        } else if (path == "/ready") {
          respond(HttpResponse::Text(200, "ready\n"));
        } else if (path == "/flush") {
          if (request.method() != boost::beast::http::verb::post) {
            respond(HttpResponse{405, "text/plain; charset=utf-8", "use POST\n", {{"Allow", "POST"}}});
            return;
          }
          if (!self->background_->Submit([self, respond] {
                Status status = self->ingester_->FlushAll();
                respond(status.ok() ? HttpResponse{204, "text/plain", "", {}}
                                    : HttpResponse::Text(HttpStatusFor(status), status.ToString() + "\n"));
              }))
            respond(HttpResponse::Text(503, "stopping\n"));
        } else {
          respond(HttpResponse::Text(404, "not found\n"));
        }
      });
  if (!telemetry_server.ok())
    return Status(telemetry_server.status().code(), "service.telemetry.metrics.address: " + telemetry_server.status().message());
  g.http_servers_.push_back(std::move(telemetry_server).value());
  for (auto& server : g.http_servers_) server->Start();
  for (int i = 0; i < 2; ++i)
    g.threads_.emplace_back([&g] {
      auto guard = boost::asio::make_work_guard(g.io_);
      g.io_.run();
    });
  spdlog::info("tracery {} gateway ready: {} receivers, {} exporters, telemetry on {}:{}", TRACERY_VERSION,
               config.receivers.size(), config.exporters.size(), telemetry->first, telemetry->second);
  return gateway;
}

void Gateway::Stop() {
  if (stopped_) return;
  stopped_ = true;
  spdlog::info("gateway: stopping");
  for (auto& grpc : grpc_receivers_) grpc->Shutdown();
  for (auto& server : http_servers_) server->Stop();
  if (ingester_) {
    // What was accepted is decided and forwarded now if the exporters take it; what they do not
    // take waits in the WAL for the next start.
    Status status = ingester_->FlushAll();
    if (!status.ok()) spdlog::error("gateway: final forward failed (the WAL keeps the traces): {}", status.ToString());
  }
  if (router_) router_->Shutdown();
  for (auto& exporter : exporters_) exporter->Shutdown();
  io_.stop();
  for (auto& thread : threads_) thread.join();
  threads_.clear();
  if (ingester_) ingester_->Stop();
  if (background_) background_->Stop();
}

Gateway::~Gateway() { Stop(); }

}  // namespace tracery::server
