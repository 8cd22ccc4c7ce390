// Tempo's keys that tracery does not need a setting for. Taken from Tempo's configuration
// reference and manifest (2.x layout with ingester/compactor, 3.0 with live_store,
// block_builder, backend_scheduler/worker and Kafka ingest). Three kinds:
//   - not applicable: cluster plumbing and tuning of parts tracery does not have (rings,
//     memberlist, clients between components, pools and caches of object storage). Whole
//     subtrees where everything below is plumbing; single keys elsewhere, so that a typo
//     beside them is still refused. Reported once at start.
//   - default only: a feature tracery lacks, harmless at Tempo's default (which a dumped
//     /status/config carries); another value would change what Tempo does, so it is refused.
//   - refused: settings whose loss would change security or where spans go.
// Adding a key: a row here. TLS keys (server.*_tls_config, receivers' tls) are the TLS
// schema's rows (config_schema.cpp), not this file's.
#include "server/config_internal.h"

namespace tracery::server::config_detail {

const std::vector<NotApplicableGroup>& NotApplicableGroups() {
  static const std::vector<NotApplicableGroup> groups = {
      {"Cluster membership and rings",
       "tracery runs every role in one process: there is no ring to join, no peers to gossip with and no "
       "replication between ingesters.",
       {"memberlist", "ingester.lifecycler", "ingester.partition_ring", "ingester.override_ring_key",
        "distributor.ring", "distributor.override_ring_key", "compactor.ring", "compactor.override_ring_key",
        "metrics_generator.ring", "metrics_generator.override_ring_key", "metrics_generator.instance_id",
        "live_store.ring", "live_store.partition_ring", "backend_worker.ring", "backend_worker.override_ring_key",
        "backend_worker.backend_scheduler_addr", "backend_worker.backoff", "backend_worker.finish_on_shutdown_timeout",
        "querier.partition_ring", "querier.shuffle_sharding_ingesters_enabled",
        "querier.shuffle_sharding_ingesters_lookback_period", "querier.query_relevant_ingesters", "block_builder",
        "partition_ring_live_store", "querier.query_live_store"}},
      {"Clients between components",
       "Tempo's components call each other over gRPC; tracery's roles call each other in process.",
       {"ingester_client", "metrics_generator_client", "live_store_client", "backend_scheduler_client",
        "querier.frontend_worker", "querier.max_concurrent_queries", "querier.trace_by_id", "querier.search",
        "querier.metrics", "query_frontend.max_outstanding_per_tenant", "query_frontend.max_batch_size",
        "query_frontend.max_retries", "query_frontend.response_consumers", "query_frontend.weights",
        "query_frontend.log_query_request_headers", "query_frontend.multi_tenant_queries_enabled"}},
      {"Query sharding and job sizes",
       "Tempo splits a query into jobs over queriers; tracery scans blocks in one process, bounded by "
       "query_frontend.search.query_timeout and max_bytes_per_query.",
       {"query_frontend.search.concurrent_jobs", "query_frontend.search.target_bytes_per_job",
        "query_frontend.search.max_duration", "query_frontend.search.query_backend_after",
        "query_frontend.search.query_ingesters_until", "query_frontend.search.ingester_shards",
        "query_frontend.search.most_recent_shards", "query_frontend.search.duration_slo",
        "query_frontend.search.throughput_bytes_slo", "query_frontend.search.metadata_slo", "query_frontend.trace_by_id",
        "query_frontend.metrics.concurrent_jobs",
        "query_frontend.metrics.target_bytes_per_job", "query_frontend.metrics.max_duration",
        "query_frontend.metrics.query_backend_after", "query_frontend.metrics.interval",
        "query_frontend.metrics.streaming_shards", "query_frontend.metrics.max_intervals",
        "query_frontend.metrics.duration_slo", "query_frontend.metrics.throughput_bytes_slo",
        "query_frontend.max_query_expression_size_bytes", "query_frontend.rf1_after"}},
      {"Kafka ingest (3.0)",
       "Under target all tracery's own write-ahead log makes spans durable before they are acknowledged; there "
       "is no Kafka between distributor and live store.",
       {"ingest", "distributor.kafka_config", "distributor.kafka_write_path_enabled",
        "distributor.ingester_write_path_enabled", "live_store.commit_interval", "live_store.readiness_target_lag",
        "live_store.readiness_max_wait", "live_store.fail_on_high_lag"}},
      {"Ingester and live-store tuning",
       "tracery's ingester flushes on its own schedule (blocks cut by ingester.trace_idle_period, max_block_bytes "
       "and max_block_duration) and always flushes at shutdown; there is no separate live period or complete-block "
       "stage.",
       {"ingester.concurrent_flushes", "ingester.flush_check_period", "ingester.flush_op_timeout",
        "ingester.trace_live_period", "ingester.complete_block_timeout", "ingester.flush_all_on_shutdown",
        "ingester.flush_object_storage", "live_store.metrics", "live_store.query_block_concurrency",
        "live_store.complete_block_timeout", "live_store.complete_block_concurrency", "live_store.shutdown_marker_dir",
        "live_store.flush_check_period", "live_store.flush_op_timeout", "live_store.max_trace_live",
        "live_store.block_config", "live_store.wal.ingestion_time_range_slack", "live_store.wal.version"}},
      {"Compaction and the backend scheduler",
       "tracery compacts and applies retention in the process that holds the blocks "
       "(compactor.compaction.compaction_window, max_compaction_objects, max_block_bytes, compaction_cycle, "
       "block_retention and compactor.disabled are honoured); replaced blocks are deleted as soon as no query reads "
       "them, and the rest tunes Tempo's compactor and scheduler.",
       {"compactor.compaction.compacted_block_retention",
        "compactor.compaction.retention_concurrency", "compactor.compaction.max_time_per_tenant",
        "compactor.compaction.v2_in_buffer_bytes",
        "compactor.compaction.v2_out_buffer_bytes", "compactor.compaction.v2_prefetch_traces_count",
        "backend_worker.compaction.compacted_block_retention", "backend_worker.compaction.retention_concurrency",
        "backend_worker.compaction.max_time_per_tenant",
        "backend_scheduler.work", "backend_scheduler.maintenance_interval", "backend_scheduler.backend_flush_interval",
        "backend_scheduler.provider.retention", "backend_scheduler.provider.compaction.measure_interval",
        "backend_scheduler.provider.compaction.max_jobs_per_tenant",
        "backend_scheduler.provider.compaction.min_input_blocks",
        "backend_scheduler.provider.compaction.max_input_blocks",
        "backend_scheduler.provider.compaction.max_compaction_level",
        "backend_scheduler.provider.compaction.min_cycle_interval",
        "backend_scheduler.provider.compaction.compaction.compacted_block_retention",
        "backend_scheduler.provider.compaction.compaction.retention_concurrency",
        "backend_scheduler.provider.compaction.compaction.max_time_per_tenant", "backend_scheduler.job_timeout",
        "backend_scheduler.local_work_path"}},
      {"Object-storage pools, caches and polling",
       "Blocks are local files read through tracery's own index cache; there is no object-store client pool, "
       "memcached/redis cache or blocklist polling (the block list is kept in process). The s3, gcs and azure "
       "blocks are read by Tempo only with that backend (refused here).",
       {"storage.trace.pool", "storage.trace.cache", "storage.trace.background_cache", "storage.trace.memcached",
        "storage.trace.redis", "storage.trace.cache_min_compaction_level", "storage.trace.cache_max_block_age",
        "storage.trace.blocklist_poll", "storage.trace.blocklist_poll_concurrency",
        "storage.trace.blocklist_poll_tenant_concurrency", "storage.trace.blocklist_poll_fallback",
        "storage.trace.blocklist_poll_tenant_index_builders", "storage.trace.blocklist_poll_stale_tenant_index",
        "storage.trace.blocklist_poll_jitter_ms", "storage.trace.blocklist_poll_tolerate_consecutive_errors",
        "storage.trace.blocklist_poll_tolerate_tenant_failures", "storage.trace.empty_tenant_deletion_enabled",
        "storage.trace.empty_tenant_deletion_age", "storage.trace.search", "storage.trace.s3", "storage.trace.gcs",
        "storage.trace.azure", "cache"}},
      {"Block format of Tempo (Parquet)",
       "tracery writes its own block format (docs/block-format.md: zstd column chunks, a Bloom filter and row-group "
       "statistics); Tempo's Parquet and v2 encoding settings have no counterpart.",
       {"storage.trace.block.version", "storage.trace.block.bloom_filter_false_positive",
        "storage.trace.block.bloom_filter_shard_size_bytes", "storage.trace.block.parquet_row_group_size_bytes",
        "storage.trace.block.parquet_dedicated_columns", "storage.trace.block.v2_index_downsample_bytes",
        "storage.trace.block.v2_index_page_size_bytes", "storage.trace.block.v2_encoding",
        "storage.trace.block.index_downsample_bytes", "storage.trace.block.index_page_size_bytes",
        "storage.trace.block.encoding", "storage.trace.block.search_encoding", "storage.trace.block.search_page_size_bytes",
        "storage.trace.wal.encoding", "storage.trace.wal.search_encoding", "storage.trace.wal.v2_encoding",
        "storage.trace.wal.version", "storage.trace.wal.ingestion_time_range_slack",
        "overrides.defaults.storage.parquet_dedicated_columns", "overrides.parquet_dedicated_columns"}},
      {"Server plumbing",
       "tracery's HTTP server has its own limits (connection caps from the descriptor limit, body limits from "
       "distributor.max_request_bytes) and serves Tempo's gRPC streaming API on the query port "
       "(stream_over_http_enabled) and on server.grpc_listen_port when set; it logs in its own format.",
       {"server.http_listen_network", "server.http_listen_conn_limit", "server.grpc_listen_network",
        "server.grpc_listen_conn_limit",
        "server.grpc_collect_max_streams_by_conn", "server.register_instrumentation",
        "server.report_grpc_codes_in_instrumentation_label_enabled", "server.graceful_shutdown_timeout",
        "server.http_server_read_timeout", "server.http_server_read_header_timeout", "server.http_server_write_timeout",
        "server.http_server_idle_timeout", "server.http_log_closed_connections_without_response_enabled",
        "server.grpc_server_max_recv_msg_size", "server.grpc_server_max_send_msg_size",
        "server.grpc_server_max_concurrent_streams", "server.grpc_server_max_connection_idle",
        "server.grpc_server_max_connection_age", "server.grpc_server_max_connection_age_grace",
        "server.grpc_server_keepalive_time", "server.grpc_server_keepalive_timeout",
        "server.grpc_server_min_time_between_pings", "server.grpc_server_ping_without_stream_allowed",
        "server.grpc_server_num_workers", "server.grpc_server_stats_tracking_enabled",
        "server.grpc_server_recv_buffer_pools_enabled", "server.log_format", "server.log_source_ips_enabled",
        "server.log_source_ips_full", "server.log_source_ips_header", "server.log_source_ips_regex",
        "server.log_request_headers", "server.log_request_at_info_level_enabled",
        "server.log_request_exclude_headers_list", "server.trace_request_headers",
        "server.trace_request_exclude_headers_list", "server.cluster_validation", "internal_server", "memory"}},
      {"Usage reporting",
       "tracery sends no usage reports anywhere.",
       {"usage_report"}},
      {"Features not served",
       "Tempo's MCP server (query tools for LLM agents) is not served, and the generator writes classic "
       "histograms only (with `both`, the classic half is what Prometheus receives).",
       {"query_frontend.mcp_server", "overrides.defaults.metrics_generator.generate_native_histograms"}},
      {"Switches of Tempo 1.x",
       "Search and the metrics generator were switched on by these before Tempo 2.0; in tracery search is always "
       "on and the generator runs when metrics_generator's processors are enabled.",
       {"search_enabled", "metrics_generator_enabled"}},
      {"Distributor extras",
       "Tempo's cost-attribution usage series, its span-count metric and attribute truncation have no counterpart "
       "yet; spans are stored whole.",
       {"distributor.usage", "distributor.metric_received_spans", "distributor.max_attribute_bytes",
        "distributor.extend_writes", "distributor.search_tags_deny_list"}},
      {"Metrics-generator plumbing",
       "tracery's generator keeps its series in memory and remote-writes them directly (no generator WAL, no local "
       "blocks, no ring); its TraceQL metrics are answered from the blocks.",
       {"metrics_generator.storage.path", "metrics_generator.storage.wal",
        "metrics_generator.storage.remote_write_flush_deadline", "metrics_generator.traces_storage",
        "metrics_generator.traces_query_storage", "metrics_generator.metrics_ingestion_time_range_slack",
        "metrics_generator.query_timeout", "metrics_generator.codec", "metrics_generator.disable_local_blocks",
        "metrics_generator.disable_grpc", "metrics_generator.limiter_type", "metrics_generator.ingest_concurrency",
"metrics_generator.processor.local_blocks",
        "metrics_generator.processor.service_graphs.workers", "metrics_generator.registry.max_label_name_length",
        "metrics_generator.registry.max_label_value_length", "metrics_generator.processor.span_metrics.subprocessors"}},
      {"Per-tenant settings tracery has no counterpart for",
       "Rate strategy (one process: local and global are the same), retry info (tracery always sends Retry-After), "
       "tag-value query bounds and native-histogram tuning.",
       {"overrides.defaults.ingestion.rate_strategy", "overrides.defaults.ingestion.retry_info_enabled",
        "overrides.defaults.read", "overrides.defaults.metrics_generator.ingestion_time_range_slack",
        "overrides.defaults.metrics_generator.native_histogram_bucket_factor",
        "overrides.defaults.metrics_generator.native_histogram_max_bucket_number",
        "overrides.defaults.metrics_generator.native_histogram_min_reset_duration",
        "overrides.defaults.cost_attribution", "overrides.ingestion_rate_strategy",
        "overrides.max_bytes_per_tag_values_query",
        "overrides.max_search_duration", "overrides.user_configurable_overrides.poll_interval",
        "overrides.user_configurable_overrides.client", "overrides.user_configurable_overrides.api"}},
  };
  return groups;
}

std::optional<std::string> FindNotApplicable(const std::string& key) {
  for (const auto& group : NotApplicableGroups())
    for (const auto& rule : group.keys)
      if (key == rule || key.rfind(rule + ".", 0) == 0) return rule;
  return std::nullopt;
}

const std::vector<DefaultOnlyKey>& DefaultOnlyKeys() {
  static const std::vector<DefaultOnlyKey> keys = {
      {"server.http_path_prefix", "", "a prefix on every route is not served; http_api_prefix puts the query API under one"},
      {"server.proxy_protocol_enabled", "false", "the PROXY protocol is not read"},
      {"overrides.user_configurable_overrides.enabled", "false",
       "the user-configurable overrides API is not served; use overrides.per_tenant_override_config"},
      {"distributor.forwarders", "[]", "spans are not forwarded to other endpoints"},
      {"overrides.defaults.forwarders", "[]", "spans are not forwarded to other endpoints"},
      {"overrides.forwarders", "[]", "spans are not forwarded to other endpoints"},
      {"metrics_generator.storage.remote_write_add_org_id_header", "true",
       "the generator always sends X-Scope-OrgID for tenants other than single-tenant"},
      {"metrics_generator.processor.service_graphs.dimensions", "[]", "service-graph dimensions are not generated yet"},
      {"metrics_generator.processor.service_graphs.enable_client_server_prefix", "false",
       "client/server label prefixes are not generated yet"},
      {"metrics_generator.processor.service_graphs.enable_messaging_system_latency_histogram", "false",
       "the messaging latency histogram is not generated yet"},
      {"metrics_generator.processor.service_graphs.enable_virtual_node_label", "false",
       "the virtual node label is not generated yet"},
      {"metrics_generator.processor.service_graphs.span_multiplier_key", "", "span multipliers are not applied yet"},
      {"metrics_generator.processor.service_graphs.database_name_attributes", "[db.namespace, db.name, db.system]",
       "database nodes are named from peer_attributes"},
      {"metrics_generator.processor.span_metrics.span_multiplier_key", "", "span multipliers are not applied yet"},
      {"metrics_generator.processor.span_metrics.dimension_mappings", "[]", "dimension mappings are not applied yet"},
      {"metrics_generator.processor.span_metrics.enable_target_info", "false", "target_info is not generated yet"},
      {"metrics_generator.processor.span_metrics.target_info_excluded_dimensions", "[]",
       "target_info is not generated yet"},
      {"metrics_generator.processor.span_metrics.enable_instance_label", "true",
       "span metrics always carry the instance label tracery gives them"},
      {"metrics_generator.processor.host_info.host_identifiers", "[k8s.node.name, host.id]",
       "the host-info processor is not generated yet"},
      {"metrics_generator.processor.host_info.metric_name", "traces_host_info", "the host-info processor is not generated yet"},
  };
  return keys;
}

const DefaultOnlyKey* FindDefaultOnly(const std::string& key) {
  for (const auto& rule : DefaultOnlyKeys())
    if (rule.key == key) return &rule;
  return nullptr;
}

bool IsDefaultValue(const DefaultOnlyKey& rule, const YAML::Node& value) {
  if (value.IsNull()) return true;
  if (value.IsSequence()) {
    std::vector<std::string> items;
    for (const auto& item : value) {
      if (!item.IsScalar()) return false;
      items.push_back(item.Scalar());
    }
    return JoinStrings(items) == rule.default_text;
  }
  if (value.IsMap()) return value.size() == 0 && rule.default_text == "{}";
  bool wanted, given;
  if (ParseBool(rule.default_text, wanted) && ParseBool(value.Scalar(), given)) return wanted == given;
  return value.Scalar() == rule.default_text;
}

const std::vector<RefusedKey>& RefusedKeys() {
  static const std::vector<RefusedKey> keys = {
      {"distributor.receivers.otlp.protocols.grpc.auth",
       "receiver authentication (an OpenTelemetry Collector auth extension) is not supported; accepting the file "
       "without it would take unauthenticated spans"},
      {"distributor.receivers.otlp.protocols.http.auth",
       "receiver authentication (an OpenTelemetry Collector auth extension) is not supported; accepting the file "
       "without it would take unauthenticated spans"},
      {"distributor.receivers.otlp.protocols.http.cors",
       "CORS is not served by the OTLP/HTTP receiver yet; browsers' cross-origin exports would fail"},
      {"distributor.receivers.opencensus", "the OpenCensus receiver is not built; send OTLP, Jaeger or Zipkin"},
      {"distributor.receivers.kafka", "the Kafka receiver is not built; send OTLP, Jaeger or Zipkin"},
  };
  return keys;
}

std::optional<std::string> RefusalReason(const std::string& key) {
  for (const auto& rule : RefusedKeys())
    if (key == rule.key || key.rfind(rule.key + ".", 0) == 0) return rule.why;
  return std::nullopt;
}

const std::vector<std::string>& NotApplicableFlags() {
  // Tempo's main() flags that tune the Go runtime or its own tracing, and the Helm chart's.
  static const std::vector<std::string> flags = {"mem-ballast-size-mbs", "use-otel-tracer", "enable-go-runtime-metrics",
                                                 "log.format"};
  return flags;
}

}  // namespace tracery::server::config_detail
