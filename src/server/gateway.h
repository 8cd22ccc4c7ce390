// The gateway role (`-target=sampler`, or any Collector-format file): OTLP receivers and the
// tail sampler only. Pending traces wait in the gateway's WAL like the backend's live traces;
// kept ones are forwarded over OTLP to the pipeline's exporters (the WAL is the disk-backed
// queue: a trace leaves it once every exporter acknowledged it). With `tracery.peers`, spans
// of traces another gateway owns are sent to it before the client is answered, so several
// gateways behind one address decide each trace whole (docs/gateway.md).
#pragma once

#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "backend/object_store.h"
#include "common/http_server.h"
#include "common/metrics.h"
#include "common/thread_pool.h"
#include "distributor/distributor.h"
#include "exporter/otlp_exporter.h"
#include "exporter/peer_router.h"
#include "exporter/trace_forwarder.h"
#include "ingester/ingester.h"
#include "receiver/receivers.h"
#include "server/collector_config.h"
#include "storage/block_list.h"

namespace tracery::server {

class Gateway {
 public:
  static Result<std::unique_ptr<Gateway>> Start(const GatewayConfig& config);
  ~Gateway();
  void Stop();  // decides what is pending, forwards what is kept, then stops

 private:
  Gateway() = default;
  GatewayConfig config_;
  MetricsRegistry metrics_;
  boost::asio::io_context io_;
  std::unique_ptr<ThreadPool> background_;
  std::unique_ptr<backend::ObjectStore> store_;  // never written: kept traces go to the exporters
  std::unique_ptr<storage::BlockList> blocks_;
  std::vector<std::shared_ptr<exporter::OtlpExporter>> exporters_;
  std::unique_ptr<exporter::TraceForwarder> forwarder_;
  std::unique_ptr<exporter::PeerRouter> router_;
  std::unique_ptr<ingester::Ingester> ingester_;
  std::unique_ptr<distributor::Distributor> distributor_;
  std::vector<std::unique_ptr<receiver::GrpcReceiver>> grpc_receivers_;
  std::vector<std::unique_ptr<HttpServer>> http_servers_;  // OTLP/HTTP receivers, then telemetry
  std::vector<std::thread> threads_;
  bool stopped_ = false;
};

}  // namespace tracery::server
