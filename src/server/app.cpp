#include "server/app.h"

#include <pthread.h>
#include <sys/resource.h>

#include <boost/asio/executor_work_guard.hpp>
#include <spdlog/spdlog.h>

#include "common/grpc_tls.h"
#include "otlp/model.h"
#include "query/api.h"
#include "receiver/zipkin.h"
#include "storage/tiers.h"

namespace tracery::server {

namespace {

// A listener's TLS (its certificate reloaded as it changes), or none when its block has no
// certificate. A file that does not load fails here, named.
Result<std::shared_ptr<TlsContextSource>> ListenerTls(const TlsSettings& settings, const std::string& what) {
  if (!settings.enabled()) return std::shared_ptr<TlsContextSource>();
  return TlsContextSource::Create(settings, what);
}

// For HttpServerOptions::connection_contexts.
std::vector<boost::asio::io_context*> Pointers(std::array<boost::asio::io_context, 2>& contexts, size_t used) {
  std::vector<boost::asio::io_context*> pointers;
  for (size_t i = 0; i < std::min(used, contexts.size()); ++i) pointers.push_back(&contexts[i]);
  return pointers;
}

// An ingest HTTP listener (OTLP/HTTP, Zipkin, Jaeger thrift_http) on `endpoint`: OTLP/HTTP's
// request limits, its own connection cap and TLS block (`tls_key` names it).
Result<std::unique_ptr<HttpServer>> BindIngestHttp(boost::asio::io_context& io, const Config& config,
                                                   const std::string& endpoint, const TlsSettings& tls_settings,
                                                   const std::string& tls_key, uint64_t max_connections,
                                                   const std::vector<boost::asio::io_context*>& connection_contexts,
                                                   HttpHandler handler) {
  std::string host;
  uint16_t port;
  if (!SplitHostPort(endpoint, host, port)) return Status::InvalidArgument("bad endpoint " + endpoint);
  // The body limit is the compressed size; the decompressed size is checked again after gunzip.
  HttpServerOptions options;
  options.body_limit = config.max_request_bytes;
  options.receiving_budget = config.max_inflight_bytes;
  options.max_connections = max_connections;
  options.header_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(config.request_stall_timeout);
  options.body_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(config.request_read_timeout);
  auto tls = ListenerTls(tls_settings, tls_key);
  if (!tls.ok()) return tls.status();
  options.tls = *tls;
  options.connection_contexts = connection_contexts;
  return HttpServer::Bind(io, host, port, options, std::move(handler));
}

// Tempo's http_api_prefix: its query routes (/api/...) are served under the prefix, and only
// there; /ready, /metrics and /flush stay at the root, as in Tempo.
HttpHandler WithApiPrefix(const std::string& prefix, HttpHandler handler) {
  if (prefix.empty()) return handler;
  return [prefix, handler = std::move(handler)](HttpRequest&& request, Responder respond) {
    std::string target(request.target());
    if (target.rfind(prefix + "/api/", 0) == 0) {
      request.target(target.substr(prefix.size()));
    } else if (target.rfind("/api/", 0) == 0 || target == "/api") {
      respond(HttpResponse::Text(404, "not found: the API is served under " + prefix + " (http_api_prefix)\n"));
      return;
    }
    handler(std::move(request), std::move(respond));
  };
}

}  // namespace

Result<std::unique_ptr<App>> App::Start(const Config& config) {
  std::unique_ptr<App> app(new App());
  app->config_ = config;
  Env& env = DefaultEnv();
  // TLS files are checked before anything is opened: a bad one is a configuration error.
  auto query_tls = ListenerTls(config.http_tls, "server.http_tls_config");
  if (!query_tls.ok()) return query_tls.status();
  if (config.grpc_tls.enabled()) {
    auto checked = BuildServerContext(config.grpc_tls, "server.grpc_tls_config");
    if (!checked.ok()) return checked.status();
    if (config.grpc_listen_port == 0)
      spdlog::warn("server.grpc_tls_config: certificate checked; it applies to no listener (server.grpc_listen_port "
                   "is not set; the streaming API on the query port follows server.http_tls_config)");
  }
  // Block cuts yield to ingest and queries when they compete for a core (trace-by-ID of live
  // traces stays fast during a cut); memory pressure still makes them happen (429 past the
  // limit gives them the CPU).
  app->background_ = std::make_unique<ThreadPool>(2, 5);
  app->ingest_connection_threads_ = std::min<size_t>(app->ingest_connection_io_.size(), UsableCpus());
  app->store_ = backend::NewLocalObjectStore(config.local_path, env);
  app->blocks_ = std::make_unique<storage::BlockList>(*app->store_, storage::BlockListOptions{});
  TRACERY_RETURN_IF_ERROR(app->blocks_->Open());

  ingester::Options ingester_options;
  ingester_options.trace_idle_period = config.trace_idle_period;
  ingester_options.max_block_duration = config.max_block_duration;
  ingester_options.max_block_bytes = config.max_block_bytes;
  ingester_options.max_live_bytes = config.max_live_bytes;
  ingester_options.trace_size_records = config.trace_size_records;
  ingester_options.max_bytes_per_trace = config.limits.max_bytes_per_trace;
  ingester_options.max_traces_per_tenant = config.limits.max_traces_per_user;
  app->limits_ = std::make_unique<TenantLimitsTable>(config.tenant_defaults, config.tenant_limits);
  ingester_options.limits = app->limits_.get();
  ingester_options.wal.directory = config.wal_path;
  ingester_options.wal.fsync = config.wal_fsync == "none" ? wal::FsyncMode::kNone : wal::FsyncMode::kBatch;
  ingester_options.wal.segment_bytes = config.wal_segment_bytes;
  ingester_options.block.zstd_level = config.block_zstd_level;
  ingester_options.block.row_group_spans = config.block_row_group_spans;
  ingester_options.dead_letter_directory = JoinPath(ParentPath(config.wal_path), "deadletter");
  ingester_options.sampling.policies = config.tail_sampling;
  ingester_options.sampling.quiet_period = config.sampling_quiet_period;
  ingester_options.slow_threshold = config.EffectiveSlowThreshold();
  if (config.tail_sampling)
    spdlog::info("tail sampling: {} policies, decision_wait {}s, quiet period {}s; slow tier past {} ms",
                 config.tail_sampling->config().policies.size(),
                 std::chrono::duration<double>(config.tail_sampling->config().decision_wait).count(),
                 std::chrono::duration<double>(config.sampling_quiet_period).count(),
                 std::chrono::duration_cast<std::chrono::milliseconds>(ingester_options.slow_threshold).count());
  auto ingester = ingester::Ingester::Open(ingester_options, env, *app->store_, *app->blocks_, *app->background_, app->metrics_);
  if (!ingester.ok()) return ingester.status();
  app->ingester_ = std::move(ingester).value();
  // Live traces first, blocks last: the order traces move in (storage/trace_source.h).
  app->reader_ = std::make_unique<storage::TraceReader>(std::vector<storage::TraceSource*>{app->ingester_.get(), app->blocks_.get()});
  app->query_pool_ = std::make_unique<ThreadPool>(2);
  app->search_pool_ = std::make_unique<ThreadPool>(2);
  app->searcher_ = std::make_unique<query::Searcher>(*app->blocks_, *app->ingester_, *app->reader_, *app->search_pool_,
                                                     query::SearchOptions{std::chrono::duration_cast<std::chrono::milliseconds>(
                                                                              config.search_timeout),
                                                                          config.search_max_bytes});
  storage::BlockList* blocks = app->blocks_.get();
  app->metrics_.AddCallbackGauge("tracery_blocks", "Blocks open for queries.", [blocks] { return double(blocks->BlockCount()); });
  for (std::string_view tier : storage::kTiers) {
    Labels labels{{"tier", std::string(tier)}};
    app->metrics_.AddCallbackGauge("tracery_blocks_by_tier", "Blocks open for queries, by retention tier.",
                                   [blocks, tier] { return double(blocks->TotalsOfTier(tier).blocks); }, labels);
    app->metrics_.AddCallbackGauge("tracery_block_bytes", "Bytes of blocks (data and index) open for queries, by retention tier.",
                                   [blocks, tier] { return double(blocks->TotalsOfTier(tier).bytes); }, labels);
  }
  app->metrics_.AddCallbackGauge("tracery_block_index_cache_bytes", "Memory of block indexes (Bloom filters, row-group stats) kept loaded.",
                                 [blocks] { return double(blocks->CachedIndexBytes()); });
  // Retention: blocks past their tenant's retention are deleted (storage/retention.h).
  storage::RetentionOptions retention_options;
  retention_options.metrics = &app->metrics_;
  retention_options.interval = config.compaction_cycle;
  // A tier's retention: the tenant's own for the tier, else the tenant's block_retention (every
  // tier at once, as Tempo's), else the main file's for the tier, else its block_retention.
  retention_options.retention_of = [limits = app->limits_.get(), fallback = config.block_retention,
                                    tiers = config.tier_retention](const std::string& tenant, std::string_view tier) {
    if (!limits) return storage::TierRetention(tier, nullptr, tiers, fallback);
    TenantLimits own = limits->For(tenant);
    return storage::TierRetention(tier, &own, tiers, fallback);
  };
  app->retention_ = std::make_unique<storage::Retention>(*app->blocks_, *app->store_, env, retention_options);
  app->retention_->Start();
  // Compaction: small blocks of one tenant, tier and window merged (storage/compactor.h).
  if (!config.compactor_disabled) {
    storage::CompactorOptions compactor_options{config.compaction_window, config.max_compaction_objects,
                                                config.compaction_max_block_bytes, config.compaction_cycle,
                                                ingester_options.block, &app->metrics_};
    compactor_options.max_spans_in_memory = config.compaction_max_spans_in_memory;
    app->compactor_ = std::make_unique<storage::Compactor>(*app->blocks_, *app->store_, compactor_options);
    app->compactor_->Start();
  }

  distributor::Options distributor_options;
  distributor_options.multitenancy_enabled = config.multitenancy_enabled;
  distributor_options.max_request_bytes = config.max_request_bytes;
  distributor_options.max_inflight_bytes = config.max_inflight_bytes;
  distributor_options.rate_limit_bytes = config.limits.rate_limit_bytes;
  distributor_options.burst_size_bytes = config.limits.burst_size_bytes;
  distributor_options.limits = app->limits_.get();
  distributor_options.retry_after_on_resource_exhausted =
      std::chrono::ceil<std::chrono::seconds>(config.retry_after_on_resource_exhausted);
  for (auto [from, to] : {std::pair{&config.log_received_spans, &distributor_options.log_received_spans},
                          std::pair{&config.log_discarded_spans, &distributor_options.log_discarded_spans}})
    *to = {from->enabled, from->include_all_attributes, from->filter_by_status_error};
  if (!config.per_tenant_override_config.empty())
    app->overrides_ = std::make_unique<OverridesReloader>(config.per_tenant_override_config,
                                                          config.per_tenant_override_period, config.limits, "",
                                                          *app->limits_, app->metrics_);
  // The generator runs where the main file enables a processor, or where a tenant's overrides
  // may (a runtime overrides file and somewhere to write to).
  if (config.generator.enabled() ||
      (!config.per_tenant_override_config.empty() && !config.generator.remote_write.empty())) {
    generator::Options generator_options = config.generator;
    generator_options.limits = app->limits_.get();
    // Every exemplar opens a stored trace: with tail sampling, one chosen as an exemplar is kept.
    if (config.tail_sampling) {
      ingester::Ingester* ingester = app->ingester_.get();
      generator_options.keep_exemplar = [ingester](const std::string& tenant, const TraceId& id) {
        return ingester->KeepForExemplar(tenant, id);
      };
    }
    app->generator_ = std::make_unique<generator::Generator>(generator_options, app->metrics_);
    app->generator_->Start();
  }
  app->distributor_ = std::make_unique<distributor::Distributor>(distributor_options, *app->ingester_, app->generator_.get(),
                                                                 app->metrics_);

  query::ApiOptions api_options;
  api_options.multitenancy_enabled = config.multitenancy_enabled;
  App* self = app.get();
  api_options.ready = [self] { return self->ready_.load(); };
  api_options.flush = [self](std::function<void(Status)> done) { self->Flush(std::move(done)); };
  api_options.searcher = app->searcher_.get();
  api_options.search.default_result_limit = config.search_default_result_limit;
  api_options.search.max_result_limit = config.search_max_result_limit;
  api_options.search.max_spans_per_spanset = config.search_max_spans_per_span_set;
  api_options.search.default_spans_per_spanset = config.search_default_spans_per_span_set;
  api_options.search.max_exemplars = config.metrics_max_exemplars;
  api_options.query_pool = app->query_pool_.get();
  api_options.pin = [self](const std::string& tenant, const TraceId& id, bool pin, std::function<void(Status)> done) {
    self->ingester_->Pin(tenant, id, pin, [self, tenant, id, pin, done](Status status) {
      if (status.code() != StatusCode::kNotFound || !pin) {
        done(std::move(status));
        return;
      }
      // Not waiting here: stored in blocks, perhaps. Read off the HTTP threads.
      if (!self->query_pool_->Submit([self, tenant, id, done, status] {
            auto trace = self->reader_->FindTrace(tenant, id, storage::TimeRange{0, UINT64_MAX});
            if (!trace.ok()) return done(trace.status());
            if (!trace->has_value()) return done(status);
            std::string bytes = otlp::EncodeTracesData(**trace);
            auto split = std::make_shared<otlp::SplitRequest>();
            Status parsed = otlp::SplitByTrace(bytes, *split);
            if (!parsed.ok()) return done(parsed);
            self->ingester_->PinStored(tenant, id, *split, [split, done](Status pinned) { done(std::move(pinned)); });
          }))
        done(Status::Unavailable("stopping"));
    });
  };
  app->flush_thread_ = std::thread([self] { self->FlushLoop(); });
  if (app->generator_) api_options.render_generated = [self](bool openmetrics) { return self->generator_->Render(openmetrics); };
  // Connection caps from the file descriptor limit: ingest can never take the descriptors
  // that the query API, the WAL and the blocks need.
  rlimit files{};
  uint64_t descriptors = getrlimit(RLIMIT_NOFILE, &files) == 0 ? uint64_t(files.rlim_cur) : 1024;
  HttpServerOptions query_options;
  query_options.body_limit = 1 << 20;
  query_options.receiving_budget = 64ull << 20;
  query_options.max_connections = std::max<uint64_t>(16, descriptors / 4);
  query_options.tls = *query_tls;
  // Tempo's streaming gRPC API: on the query port (stream_over_http_enabled) and on Tempo's
  // gRPC port when the file sets one.
  if (config.stream_over_http_enabled || config.grpc_listen_port != 0) {
    query::StreamingOptions streaming_options;
    streaming_options.multitenancy_enabled = config.multitenancy_enabled;
    streaming_options.search = api_options.search;
    if (config.grpc_listen_port != 0) {
      streaming_options.listen_address = config.grpc_listen_address + ":" + std::to_string(config.grpc_listen_port);
      auto credentials = MakeGrpcServerCredentials(config.grpc_tls, "server.grpc_tls_config");
      if (!credentials.ok()) return credentials.status();
      streaming_options.credentials = *credentials;
    }
    auto streaming = query::StreamingServer::Start(*app->searcher_, streaming_options);
    if (!streaming.ok()) return streaming.status();
    app->streaming_ = std::move(streaming).value();
    if (config.grpc_listen_port != 0)
      spdlog::info("gRPC query API (tempopb.StreamingQuerier) on {}{}", streaming_options.listen_address,
                   config.grpc_tls.enabled() ? " over TLS" : "");
    if (config.stream_over_http_enabled) {
      query::StreamingServer* streaming_raw = app->streaming_.get();
      query_options.http2_handoff = [streaming_raw](int fd) { streaming_raw->AddConnection(fd); };
      if (query_options.tls) query_options.tls->OfferHttp2();  // over TLS, gRPC clients ask for h2 by ALPN
    }
  }
  auto query_server = HttpServer::Bind(app->query_io_, config.http_listen_address, config.http_listen_port, query_options,
                                       WithApiPrefix(config.http_api_prefix,
                                                     query::MakeQueryApiHandler(api_options, *app->reader_, app->metrics_)));
  if (!query_server.ok()) return query_server.status();
  app->query_server_ = std::move(query_server).value();

  if (config.otlp_http_enabled) {
    auto server = BindIngestHttp(app->ingest_io_, config, config.otlp_http_endpoint, config.otlp_http_tls,
                                 "distributor.receivers.otlp.protocols.http.tls", std::max<uint64_t>(16, descriptors / 2),
                                 Pointers(app->ingest_connection_io_, app->ingest_connection_threads_),
                                 receiver::MakeOtlpHttpHandler(*app->distributor_, config.max_request_bytes));
    if (!server.ok()) return server.status();
    app->otlp_http_server_ = std::move(server).value();
  }
  if (config.otlp_grpc_enabled) {
    auto grpc = receiver::GrpcReceiver::Start(
        config.otlp_grpc_endpoint, config.max_request_bytes, config.max_inflight_bytes, *app->distributor_, config.otlp_grpc_tls,
        std::chrono::duration_cast<std::chrono::milliseconds>(config.request_stall_timeout),
        std::chrono::duration_cast<std::chrono::milliseconds>(config.request_read_timeout));
    if (!grpc.ok()) return grpc.status();
    app->grpc_receiver_ = std::move(grpc).value();
  }
  if (config.zipkin_enabled) {
    auto server = BindIngestHttp(app->ingest_io_, config, config.zipkin_endpoint, config.zipkin_tls,
                                 "distributor.receivers.zipkin.tls", std::max<uint64_t>(16, descriptors / 4),
                                 Pointers(app->ingest_connection_io_, app->ingest_connection_threads_),
                                 receiver::MakeZipkinHttpHandler(*app->distributor_, config.max_request_bytes,
                                                                 {config.zipkin_parse_string_tags}));
    if (!server.ok())
      return Status(server.status().code(),
                    "Zipkin receiver (distributor.receivers.zipkin.endpoint): " + server.status().message());
    app->zipkin_server_ = std::move(server).value();
  }
  TRACERY_RETURN_IF_ERROR(app->StartJaegerReceivers(std::max<uint64_t>(16, descriptors / 4)));

  HttpServer* query_server_raw = app->query_server_.get();
  HttpServer* otlp_server_raw = app->otlp_http_server_.get();
  app->metrics_.AddCallbackGauge("tracery_http_connections_refused",
                                 "Connections closed at once because a listener was at its connection cap (both HTTP listeners).",
                                 [query_server_raw, otlp_server_raw] {
                                   return double(query_server_raw->connections_refused() +
                                                 (otlp_server_raw ? otlp_server_raw->connections_refused() : 0));
                                 });
  if (receiver::GrpcReceiver* grpc_raw = app->grpc_receiver_.get()) {
    app->metrics_.AddCallbackGauge("tracery_grpc_connections_refused",
                                   "Connections closed at once because the OTLP/gRPC listener was at its connection cap.",
                                   [grpc_raw] { return double(grpc_raw->connections_refused()); });
    app->metrics_.AddCallbackGauge("tracery_grpc_connections_reset_flooding",
                                   "OTLP/gRPC connections closed with GOAWAY(ENHANCE_YOUR_CALM) for resetting streams faster "
                                   "than allowed (since start).",
                                   [grpc_raw] { return double(grpc_raw->connections_reset_flooding()); });
  }
  std::vector<HttpServer*> http_servers{app->query_server_.get(), app->otlp_http_server_.get(), app->zipkin_server_.get(),
                                        app->jaeger_http_server_.get()};
  std::erase(http_servers, nullptr);
  app->metrics_.AddCallbackGauge("tracery_tls_handshakes_failed",
                                 "Connections to a TLS HTTP listener closed before a request: plaintext clients, wrong or "
                                 "missing client certificates, no common version or cipher (since start, every HTTP listener).",
                                 [http_servers] {
                                   uint64_t total = 0;
                                   for (HttpServer* server : http_servers) total += server->tls_handshakes_failed();
                                   return double(total);
                                 });
  app->query_server_->Start();
  if (app->otlp_http_server_) app->otlp_http_server_->Start();
  if (app->zipkin_server_) {
    app->zipkin_server_->Start();
    spdlog::info("Zipkin receiver on {} (POST /api/v2/spans, /api/v1/spans)", config.zipkin_endpoint);
  }
  if (app->jaeger_http_server_) app->jaeger_http_server_->Start();
  for (auto* io : {&app->ingest_io_, &app->query_io_}) {
    for (int i = 0; i < 2; ++i) {
      app->threads_.emplace_back([io] {
        auto guard = boost::asio::make_work_guard(*io);
        io->run();
      });
    }
  }
  for (size_t i = 0; i < app->ingest_connection_threads_; ++i) {
    app->threads_.emplace_back([io = &app->ingest_connection_io_[i]] {
      pthread_setname_np(pthread_self(), "ingest-http-io");
      auto guard = boost::asio::make_work_guard(*io);
      io->run();
    });
  }
  app->ready_ = true;
  spdlog::info("tracery {} ready: query API on {}:{}{}, OTLP/gRPC {}, OTLP/HTTP {}", TRACERY_VERSION,
               config.http_listen_address, app->query_server_->port(),
               app->streaming_ ? " (with gRPC streaming)" : "",
               config.otlp_grpc_enabled ? config.otlp_grpc_endpoint : "off",
               config.otlp_http_enabled ? config.otlp_http_endpoint : "off");
  return app;
}

// The Jaeger receivers the config lists, bound now so that a taken port stops the start with
// the key to change.
Status App::StartJaegerReceivers(uint64_t max_connections) {
  const Config& config = config_;
  auto failed = [](const char* protocol, const Status& status) {
    return Status(status.code(), std::string("Jaeger ") + protocol + " receiver (distributor.receivers.jaeger.protocols." +
                                     protocol + ".endpoint): " + status.message());
  };
  if (config.jaeger_thrift_http_enabled) {
    auto server = BindIngestHttp(ingest_io_, config, config.jaeger_thrift_http_endpoint, config.jaeger_thrift_http_tls,
                                 "distributor.receivers.jaeger.protocols.thrift_http.tls", max_connections,
                                 Pointers(ingest_connection_io_, ingest_connection_threads_),
                                 receiver::MakeJaegerThriftHttpHandler(*distributor_, config.max_request_bytes));
    if (!server.ok()) return failed("thrift_http", server.status());
    jaeger_http_server_ = std::move(server).value();
  }
  for (auto [enabled, endpoint, protocol, name, out] :
       {std::tuple{config.jaeger_thrift_compact_enabled, &config.jaeger_thrift_compact_endpoint,
                   receiver::thrift::Protocol::kCompact, "thrift_compact", &jaeger_compact_server_},
        std::tuple{config.jaeger_thrift_binary_enabled, &config.jaeger_thrift_binary_endpoint,
                   receiver::thrift::Protocol::kBinary, "thrift_binary", &jaeger_binary_server_}}) {
    if (!enabled) continue;
    auto server = receiver::JaegerAgentServer::Start(ingest_io_, *endpoint, protocol, *distributor_, metrics_);
    if (!server.ok()) return failed(name, server.status());
    *out = std::move(server).value();
    if (config.multitenancy_enabled)
      spdlog::warn("Jaeger {} on {}: datagrams carry no tenant, so with multitenancy_enabled they are all refused "
                   "(tracery_jaeger_agent_datagrams_refused_total{{reason=\"bad_tenant\"}}), as in Tempo", name, *endpoint);
  }
  if (config.jaeger_grpc_enabled) {
    auto grpc = receiver::JaegerGrpcReceiver::Start(config.jaeger_grpc_endpoint, config.max_request_bytes,
                                                    config.max_inflight_bytes, *distributor_, config.jaeger_grpc_tls);
    if (!grpc.ok()) return failed("grpc", grpc.status());
    jaeger_grpc_receiver_ = std::move(grpc).value();
  }
  for (auto [enabled, endpoint, name] : {std::tuple{config.jaeger_grpc_enabled, &config.jaeger_grpc_endpoint, "gRPC"},
                                         std::tuple{config.jaeger_thrift_http_enabled, &config.jaeger_thrift_http_endpoint,
                                                    "Thrift over HTTP (POST /api/traces)"},
                                         std::tuple{config.jaeger_thrift_compact_enabled,
                                                    &config.jaeger_thrift_compact_endpoint, "Thrift compact over UDP"},
                                         std::tuple{config.jaeger_thrift_binary_enabled,
                                                    &config.jaeger_thrift_binary_endpoint, "Thrift binary over UDP"}})
    if (enabled) spdlog::info("Jaeger receiver, {}, on {}", name, *endpoint);
  return Status::Ok();
}

void App::Flush(std::function<void(Status)> done) {
  {
    std::lock_guard lock(flush_mutex_);
    if (!flush_stopping_) {
      flush_waiting_.push_back(std::move(done));
      flush_wake_.notify_one();
      return;
    }
  }
  done(Status::Unavailable("stopping"));
}

void App::FlushLoop() {
  std::unique_lock lock(flush_mutex_);
  for (;;) {
    flush_wake_.wait(lock, [&] { return flush_stopping_ || !flush_waiting_.empty(); });
    if (flush_waiting_.empty()) return;
    auto waiting = std::move(flush_waiting_);
    flush_waiting_.clear();
    lock.unlock();
    Status status = ingester_->FlushAll();
    for (auto& done : waiting) done(status);
    lock.lock();
  }
}

void App::Stop() {
  if (stopped_) return;
  stopped_ = true;
  ready_ = false;
  spdlog::info("tracery: stopping");
  {
    std::lock_guard lock(flush_mutex_);
    flush_stopping_ = true;
  }
  flush_wake_.notify_all();
  if (flush_thread_.joinable()) flush_thread_.join();  // answers what was asked before
  if (overrides_) overrides_->Stop();
  if (retention_) retention_->Stop();
  if (compactor_) compactor_->Stop();
  if (grpc_receiver_) grpc_receiver_->Shutdown();
  if (otlp_http_server_) otlp_http_server_->Stop();
  if (zipkin_server_) zipkin_server_->Stop();
  if (jaeger_grpc_receiver_) jaeger_grpc_receiver_->Shutdown();
  if (jaeger_http_server_) jaeger_http_server_->Stop();
  if (jaeger_compact_server_) jaeger_compact_server_->Stop();
  if (jaeger_binary_server_) jaeger_binary_server_->Stop();
  if (ingester_) {
    Status status = ingester_->FlushAll();
    if (!status.ok()) spdlog::error("final flush failed (the WAL keeps the data): {}", status.ToString());
  }
  if (generator_) generator_->Stop();  // a last collection and remote write
  if (query_server_) query_server_->Stop();
  if (streaming_) streaming_->Shutdown();  // its searches use the pools stopped below
  ingest_io_.stop();
  for (auto& io : ingest_connection_io_) io.stop();
  query_io_.stop();
  for (auto& thread : threads_) thread.join();
  threads_.clear();
  if (query_pool_) query_pool_->Stop();  // searches read the ingester: they end first
  if (search_pool_) search_pool_->Stop();
  if (ingester_) ingester_->Stop();
  if (background_) background_->Stop();
}

App::~App() { Stop(); }

}  // namespace tracery::server
