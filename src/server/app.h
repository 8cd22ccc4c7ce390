// Process wiring: builds every role from the configuration, starts the listeners, and stops
// them in order (receivers first, then a final flush, then the WAL).
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "backend/object_store.h"
#include "common/http_server.h"
#include "common/metrics.h"
#include "common/thread_pool.h"
#include "distributor/distributor.h"
#include "ingester/ingester.h"
#include "query/search.h"
#include "query/streaming.h"
#include "receiver/jaeger.h"
#include "receiver/receivers.h"
#include "server/config.h"
#include "server/overrides.h"
#include "storage/block_list.h"
#include "storage/compactor.h"
#include "storage/retention.h"
#include "storage/trace_source.h"

namespace tracery::server {

class App {
 public:
  static Result<std::unique_ptr<App>> Start(const Config& config);
  ~App();
  void Stop();
  uint16_t query_port() const { return query_server_->port(); }

 private:
  App() = default;
  Config config_;
  MetricsRegistry metrics_;
  std::unique_ptr<ThreadPool> background_;  // block cuts (compaction and query shards later)
  std::unique_ptr<backend::ObjectStore> store_;
  std::unique_ptr<storage::BlockList> blocks_;
  std::unique_ptr<storage::Retention> retention_;  // deletes blocks past their retention
  std::unique_ptr<storage::Compactor> compactor_;  // merges small blocks
  std::unique_ptr<ingester::Ingester> ingester_;
  std::unique_ptr<storage::TraceReader> reader_;
  // Search: requests run on query_pool_ (off the HTTP threads); each one's scan jobs run on
  // search_pool_ and on its own thread.
  std::unique_ptr<ThreadPool> query_pool_, search_pool_;
  std::unique_ptr<query::Searcher> searcher_;
  // Tempo's streaming API, fed HTTP/2 connections by query_server_ (stream_over_http_enabled).
  std::unique_ptr<query::StreamingServer> streaming_;
  std::unique_ptr<generator::Generator> generator_;
  // Per-tenant limits, read by the distributor and ingester; overrides_ reloads them.
  std::unique_ptr<TenantLimitsTable> limits_;
  std::unique_ptr<OverridesReloader> overrides_;
  std::unique_ptr<distributor::Distributor> distributor_;
  std::unique_ptr<receiver::GrpcReceiver> grpc_receiver_;
  boost::asio::io_context ingest_io_{2}, query_io_{2};
  // Ingest HTTP connections (OTLP/HTTP, Zipkin, Jaeger thrift_http): one thread each, the
  // first ingest_connection_threads_ of them (one when the process has one CPU).
  std::array<boost::asio::io_context, 2> ingest_connection_io_{boost::asio::io_context(1), boost::asio::io_context(1)};
  size_t ingest_connection_threads_ = 2;
  std::unique_ptr<HttpServer> otlp_http_server_, query_server_;
  std::unique_ptr<HttpServer> zipkin_server_;  // distributor.receivers.zipkin, when listed
  // distributor.receivers.jaeger.protocols.*, each when listed (jaeger.h)
  std::unique_ptr<HttpServer> jaeger_http_server_;
  std::unique_ptr<receiver::JaegerAgentServer> jaeger_compact_server_, jaeger_binary_server_;
  std::unique_ptr<receiver::JaegerGrpcReceiver> jaeger_grpc_receiver_;
  Status StartJaegerReceivers(uint64_t max_connections);
  std::vector<std::thread> threads_;
  // POST /flush runs here, off the query threads; requests that come while one runs share
  // the next one (which starts after them, so it covers their spans).
  void Flush(std::function<void(Status)> done);
  void FlushLoop();
  std::mutex flush_mutex_;
  std::condition_variable flush_wake_;
  std::vector<std::function<void(Status)>> flush_waiting_;
  bool flush_stopping_ = false;
  std::thread flush_thread_;
  std::atomic<bool> ready_{false};
  bool stopped_ = false;
};

}  // namespace tracery::server
