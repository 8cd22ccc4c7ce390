#include "server/config.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <sstream>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/duration.h"

namespace tracery::server {
namespace {

// One leaf key of the schema: how to read it into a Config, and what it means.
struct KeyRule {
  std::string type;
  std::string meaning;
  std::function<std::string(const Config&)> default_text;
  std::function<bool(const std::string&, Config&, std::string& why)> set;
  // For lists and maps: takes the whole node instead of a scalar.
  std::function<bool(const YAML::Node&, Config&, std::string& why)> set_node;
};

bool ParseDouble(const std::string& text, double& out) {
  char* end = nullptr;
  out = std::strtod(text.c_str(), &end);
  return !text.empty() && end == text.c_str() + text.size() && std::isfinite(out);
}

std::string JoinStrings(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + items[i];
  return out + "]";
}

bool ParseBool(const std::string& text, bool& out) {
  if (text == "true" || text == "True" || text == "TRUE") { out = true; return true; }
  if (text == "false" || text == "False" || text == "FALSE") { out = false; return true; }
  return false;
}

template <typename T>
bool ParseUnsigned(const std::string& text, T& out, uint64_t max) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || v > max) return false;
  out = static_cast<T>(v);
  return true;
}

bool ValidEndpoint(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  uint16_t port;
  return ParseUnsigned(text.substr(colon + 1), port, 65535);
}

const std::map<std::string, KeyRule>& Schema() {
  static const std::map<std::string, KeyRule> schema = [] {
    std::map<std::string, KeyRule> s;
    auto boolean = [&](const std::string& key, bool Config::*field, const std::string& meaning) {
      s[key] = {"bool", meaning, [field](const Config& c) { return std::string((c.*field) ? "true" : "false"); },
                [field](const std::string& v, Config& c, std::string& why) {
                  if (ParseBool(v, c.*field)) return true;
                  why = "expected true or false";
                  return false;
                }};
    };
    auto text = [&](const std::string& key, std::string Config::*field, const std::string& meaning,
                    std::function<bool(const std::string&)> valid = nullptr, std::string expected = "") {
      s[key] = {"string", meaning, [field](const Config& c) { return c.*field; },
                [field, valid, expected](const std::string& v, Config& c, std::string& why) {
                  if (valid && !valid(v)) {
                    why = "expected " + expected;
                    return false;
                  }
                  c.*field = v;
                  return true;
                }};
    };
    auto endpoint = [&](const std::string& key, std::string Config::*field, bool Config::*enabled,
                        const std::string& meaning) {
      s[key] = {"host:port", meaning, [field](const Config& c) { return c.*field; },
                [field, enabled](const std::string& v, Config& c, std::string& why) {
                  if (!ValidEndpoint(v)) {
                    why = "expected host:port";
                    return false;
                  }
                  c.*field = v;
                  c.*enabled = true;
                  return true;
                }};
    };
    auto duration = [&](const std::string& key, std::chrono::nanoseconds Config::*field, const std::string& meaning) {
      s[key] = {"duration", meaning,
                [field](const Config& c) {
                  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(c.*field).count()) + "s";
                },
                [field](const std::string& v, Config& c, std::string& why) {
                  auto d = ParseDuration(v);
                  if (!d || d->count() <= 0) {
                    why = "expected a positive duration such as 10s, 5m or 1h";
                    return false;
                  }
                  c.*field = *d;
                  return true;
                }};
    };
    auto bytes = [&](const std::string& key, auto field_getter, const std::string& meaning) {
      s[key] = {"bytes", meaning, [field_getter](const Config& c) { return std::to_string(field_getter(const_cast<Config&>(c))); },
                [field_getter](const std::string& v, Config& c, std::string& why) {
                  auto b = ParseByteSize(v);
                  if (!b) {
                    why = "expected a number of bytes (units KB, MB, GB, KiB, MiB, GiB allowed)";
                    return false;
                  }
                  field_getter(c) = *b;
                  return true;
                }};
    };
    auto number = [&](const std::string& key, auto field_getter, uint64_t min, uint64_t max, const std::string& meaning) {
      s[key] = {"integer", meaning, [field_getter](const Config& c) { return std::to_string(field_getter(const_cast<Config&>(c))); },
                [field_getter, min, max](const std::string& v, Config& c, std::string& why) {
                  uint64_t n;
                  if (!ParseUnsigned(v, n, max) || n < min) {
                    why = "expected an integer from " + std::to_string(min) + " to " + std::to_string(max);
                    return false;
                  }
                  field_getter(c) = static_cast<std::remove_reference_t<decltype(field_getter(c))>>(n);
                  return true;
                }};
    };

    auto node = [&](const std::string& key, const std::string& type, const std::string& meaning,
                    std::function<std::string(const Config&)> default_text,
                    std::function<bool(const YAML::Node&, Config&, std::string&)> set) {
      s[key] = {type, meaning, std::move(default_text), nullptr, std::move(set)};
    };
    auto string_list = [&](const std::string& key, std::vector<std::string> generator::Options::*field,
                           const std::string& meaning) {
      node(key, "list of strings", meaning, [field](const Config& c) { return JoinStrings(c.generator.*field); },
           [field](const YAML::Node& n, Config& c, std::string& why) {
             if (!n.IsSequence()) { why = "expected a list of strings"; return false; }
             (c.generator.*field).clear();
             for (const auto& item : n) {
               if (!item.IsScalar()) { why = "expected a list of strings"; return false; }
               (c.generator.*field).push_back(item.Scalar());
             }
             return true;
           });
    };
    auto bucket_list = [&](const std::string& key, std::vector<double> generator::Options::*field, const std::string& meaning) {
      node(key, "list of seconds", meaning,
           [field](const Config& c) {
             std::vector<std::string> t;
             for (double d : c.generator.*field) { char b[32]; std::snprintf(b, sizeof b, "%g", d); t.push_back(b); }
             return JoinStrings(t);
           },
           [field](const YAML::Node& n, Config& c, std::string& why) {
             if (!n.IsSequence() || n.size() == 0) { why = "expected a non-empty list of numbers"; return false; }
             (c.generator.*field).clear();
             for (const auto& item : n) {
               double d;
               if (!item.IsScalar() || !ParseDouble(item.Scalar(), d) || d <= 0) { why = "expected positive numbers"; return false; }
               (c.generator.*field).push_back(d);
             }
             return true;
           });
    };
    auto generator_flag = [&](const std::string& key, bool generator::Options::*field, const std::string& meaning) {
      s[key] = {"bool", meaning, [field](const Config& c) { return std::string((c.generator.*field) ? "true" : "false"); },
                [field](const std::string& v, Config& c, std::string& why) {
                  if (ParseBool(v, c.generator.*field)) return true;
                  why = "expected true or false";
                  return false;
                }, nullptr};
    };
    auto generator_duration = [&](const std::string& key, std::chrono::nanoseconds generator::Options::*field,
                                  const std::string& meaning) {
      s[key] = {"duration", meaning,
                [field](const Config& c) {
                  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(c.generator.*field).count()) + "s";
                },
                [field](const std::string& v, Config& c, std::string& why) {
                  auto d = ParseDuration(v);
                  if (!d || d->count() <= 0) { why = "expected a positive duration such as 10s or 5m"; return false; }
                  c.generator.*field = *d;
                  return true;
                }, nullptr};
    };

    node("metrics_generator.registry.external_labels", "map", "Labels added to every generated series.",
         [](const Config& c) { return c.generator.external_labels.empty() ? std::string("{}") : std::string("…"); },
         [](const YAML::Node& n, Config& c, std::string& why) {
           if (!n.IsMap()) { why = "expected a map of label names to values"; return false; }
           for (const auto& item : n) {
             if (!item.second.IsScalar()) { why = "label values must be strings"; return false; }
             c.generator.external_labels[item.first.as<std::string>()] = item.second.Scalar();
           }
           return true;
         });
    generator_duration("metrics_generator.registry.collection_interval", &generator::Options::collection_interval,
                       "How often generated series are remote-written.");
    generator_duration("metrics_generator.registry.stale_duration", &generator::Options::stale_duration,
                       "A series not updated for this long is dropped.");
    auto max_series = [](Config& c) -> uint64_t& { return c.generator.max_active_series; };
    number("metrics_generator.registry.max_active_series", max_series, 0, UINT64_MAX,
           "Generated series per tenant (0: unlimited); new series past it are dropped and counted.");
    number("overrides.defaults.metrics_generator.max_active_series", max_series, 0, UINT64_MAX,
           "Same as metrics_generator.registry.max_active_series (Tempo's per-tenant override).");
    node("metrics_generator.storage.remote_write", "list", "Prometheus remote-write endpoints: `url` (required), "
         "`send_exemplars` (default true), `headers` (map), `remote_timeout` (default 30s), `name`.",
         [](const Config& c) { return std::string("[]"); },
         [](const YAML::Node& n, Config& c, std::string& why) {
           if (!n.IsSequence()) { why = "expected a list of endpoints"; return false; }
           c.generator.remote_write.clear();
           for (const auto& item : n) {
             if (!item.IsMap()) { why = "each endpoint must be a map with a url"; return false; }
             generator::RemoteWriteTarget target;
             for (const auto& field : item) {
               std::string key = field.first.as<std::string>();
               const YAML::Node& v = field.second;
               if (key == "url" && v.IsScalar()) target.url = v.Scalar();
               else if (key == "name" && v.IsScalar()) continue;
               else if (key == "send_exemplars" && v.IsScalar() && ParseBool(v.Scalar(), target.send_exemplars)) continue;
               else if (key == "remote_timeout" && v.IsScalar() && ParseDuration(v.Scalar())) target.timeout = *ParseDuration(v.Scalar());
               else if (key == "headers" && v.IsMap()) {
                 for (const auto& h : v) target.headers[h.first.as<std::string>()] = h.second.as<std::string>();
               } else {
                 why = "unknown or bad field `" + key + "` (known: url, name, send_exemplars, headers, remote_timeout)";
                 return false;
               }
             }
             if (target.url.rfind("http://", 0) != 0 && target.url.rfind("https://", 0) != 0) {
               why = "url must start with http:// or https://";
               return false;
             }
             c.generator.remote_write.push_back(std::move(target));
           }
           return true;
         });
    generator_flag("metrics_generator.processor.span_metrics.enabled", &generator::Options::span_metrics,
                   "Generate span metrics (traces_spanmetrics_*). Tempo enables processors in overrides; tracery accepts both.");
    bucket_list("metrics_generator.processor.span_metrics.histogram_buckets", &generator::Options::span_metrics_buckets,
                "Latency histogram bounds in seconds (Tempo's defaults).");
    string_list("metrics_generator.processor.span_metrics.dimensions", &generator::Options::span_metrics_dimensions,
                "Span or resource attributes added as labels (names sanitised to Prometheus label names).");
    node("metrics_generator.processor.span_metrics.filter_policies", "list",
         "Tempo's filter policies: each `include`/`exclude` has `match_type` (strict or regex) and `attributes` "
         "(`key`: name, kind, status, span.<attr>, resource.<attr>; `value`). A span is counted when it matches every "
         "include and not every exclude condition.",
         [](const Config&) { return std::string("[]"); },
         [](const YAML::Node& n, Config& c, std::string& why) {
           if (!n.IsSequence()) { why = "expected a list of policies"; return false; }
           auto read_side = [&](const YAML::Node& side, bool& regex, std::vector<generator::FilterCondition>& out) {
             if (!side.IsMap()) { why = "include/exclude must be a map"; return false; }
             for (const auto& field : side) {
               std::string key = field.first.as<std::string>();
               if (key == "match_type") {
                 std::string t = field.second.IsScalar() ? field.second.Scalar() : "";
                 if (t != "strict" && t != "regex") { why = "match_type must be strict or regex"; return false; }
                 regex = t == "regex";
               } else if (key == "attributes" && field.second.IsSequence()) {
                 for (const auto& a : field.second) {
                   if (!a.IsMap() || !a["key"] || !a["value"] || !a["key"].IsScalar() || !a["value"].IsScalar()) {
                     why = "each attribute needs a key and a value";
                     return false;
                   }
                   out.push_back({a["key"].Scalar(), a["value"].Scalar()});
                 }
               } else {
                 why = "unknown field `" + key + "` (known: match_type, attributes)";
                 return false;
               }
             }
             if (regex) {
               for (const auto& condition : out) {
                 try {
                   std::regex check(condition.value);
                 } catch (const std::regex_error& e) {
                   why = "bad regex `" + condition.value + "`: " + e.what();
                   return false;
                 }
               }
             }
             return true;
           };
           c.generator.filter_policies.clear();
           for (const auto& item : n) {
             if (!item.IsMap()) { why = "each policy must be a map with include and/or exclude"; return false; }
             generator::FilterPolicy policy;
             for (const auto& side : item) {
               std::string key = side.first.as<std::string>();
               if (key == "include") { if (!read_side(side.second, policy.include_regex, policy.include)) return false; }
               else if (key == "exclude") { if (!read_side(side.second, policy.exclude_regex, policy.exclude)) return false; }
               else { why = "unknown field `" + key + "` (known: include, exclude)"; return false; }
             }
             c.generator.filter_policies.push_back(std::move(policy));
           }
           return true;
         });
    generator_flag("metrics_generator.processor.span_metrics.intrinsic_dimensions.service", &generator::Options::intrinsic_service, "Label `service`.");
    generator_flag("metrics_generator.processor.span_metrics.intrinsic_dimensions.span_name", &generator::Options::intrinsic_span_name, "Label `span_name`.");
    generator_flag("metrics_generator.processor.span_metrics.intrinsic_dimensions.span_kind", &generator::Options::intrinsic_span_kind, "Label `span_kind`.");
    generator_flag("metrics_generator.processor.span_metrics.intrinsic_dimensions.status_code", &generator::Options::intrinsic_status_code, "Label `status_code`.");
    generator_flag("metrics_generator.processor.span_metrics.intrinsic_dimensions.status_message", &generator::Options::intrinsic_status_message, "Label `status_message`.");
    generator_flag("metrics_generator.processor.service_graphs.enabled", &generator::Options::service_graphs,
                   "Generate the service graph (traces_service_graph_*).");
    generator_duration("metrics_generator.processor.service_graphs.wait", &generator::Options::service_graph_wait,
                       "How long half an edge waits for its other half.");
    number("metrics_generator.processor.service_graphs.max_items", [](Config& c) -> uint64_t& { return c.generator.service_graph_max_items; },
           1, UINT64_MAX, "Half edges held at most; past it spans are dropped and counted.");
    bucket_list("metrics_generator.processor.service_graphs.histogram_buckets", &generator::Options::service_graph_buckets,
                "Request duration histogram bounds in seconds.");
    string_list("metrics_generator.processor.service_graphs.peer_attributes", &generator::Options::peer_attributes,
                "Attributes naming an uninstrumented peer, in order of preference (virtual nodes).");
    node("overrides.defaults.metrics_generator.processors", "list", "Processors to run, as Tempo enables them: "
         "`service-graphs`, `span-metrics`.",
         [](const Config&) { return std::string("[]"); },
         [](const YAML::Node& n, Config& c, std::string& why) {
           if (!n.IsSequence()) { why = "expected a list"; return false; }
           for (const auto& item : n) {
             std::string p = item.IsScalar() ? item.Scalar() : "";
             if (p == "span-metrics") c.generator.span_metrics = true;
             else if (p == "service-graphs") c.generator.service_graphs = true;
             else { why = "unknown processor `" + p + "` (known: span-metrics, service-graphs)"; return false; }
           }
           return true;
         });

    text("target", &Config::target, "Roles this process runs; `all` runs every role in one process.",
         [](const std::string& v) { return v == "all"; }, "all (the only role set in this version)");
    boolean("multitenancy_enabled", &Config::multitenancy_enabled,
            "Require the X-Scope-OrgID header (gRPC metadata x-scope-orgid) and keep tenants apart. "
            "Off: everything belongs to tenant `single-tenant`.");
    boolean("stream_over_http_enabled", &Config::stream_over_http_enabled,
            "Serve Tempo's streaming query API (gRPC tempopb.StreamingQuerier, what Grafana's Tempo data source "
            "uses with streaming on) on the query port: connections opening with the HTTP/2 preface (plaintext, "
            "prior knowledge) go to it, the rest stay HTTP/1.1. Off: HTTP/1.1 only, as Tempo.");
    number("query_frontend.search.default_result_limit",
           [](Config& c) -> uint32_t& { return c.search_default_result_limit; }, 1, UINT32_MAX,
           "Traces a search answers when its request gives no `limit`.");
    number("query_frontend.search.max_result_limit", [](Config& c) -> uint32_t& { return c.search_max_result_limit; }, 1,
           UINT32_MAX, "The largest `limit` a search may ask for; more is refused with 400.");
    number("query_frontend.search.max_spans_per_span_set",
           [](Config& c) -> uint32_t& { return c.search_max_spans_per_span_set; }, 1, UINT32_MAX,
           "The largest `spss` (spans shown per spanset) a search may ask for; more is refused with 400.");
    number("query_frontend.metrics.max_exemplars", [](Config& c) -> uint32_t& { return c.metrics_max_exemplars; }, 0,
           UINT32_MAX, "The most exemplars a TraceQL metrics answer carries, whatever `exemplars` asks.");
    duration("query_frontend.search.query_timeout", &Config::search_timeout,
             "A search, tag listing or TraceQL metrics query stops after this long and answers what it found, "
             "marked partial (metrics: status PARTIAL and a message; search: the X-Tracery-Partial header).");
    bytes("query_frontend.search.max_bytes_per_query", [](Config& c) -> uint64_t& { return c.search_max_bytes; },
          "Block bytes one query may read before it stops and answers partial, as with the timeout; 0: no bound.");
    text("server.log_level", &Config::log_level, "debug, info, warn or error.",
         [](const std::string& v) { return v == "debug" || v == "info" || v == "warn" || v == "error"; },
         "debug, info, warn or error");
    text("server.http_listen_address", &Config::http_listen_address, "Address of the query API.");
    number("server.http_listen_port", [](Config& c) -> uint16_t& { return c.http_listen_port; }, 1, 65535,
           "Port of the query API (Tempo's HTTP API, /metrics, /ready).");
    endpoint("distributor.receivers.otlp.protocols.grpc.endpoint", &Config::otlp_grpc_endpoint,
             &Config::otlp_grpc_enabled, "OTLP/gRPC listen address.");
    endpoint("distributor.receivers.otlp.protocols.http.endpoint", &Config::otlp_http_endpoint,
             &Config::otlp_http_enabled, "OTLP/HTTP listen address (POST /v1/traces).");
    endpoint("distributor.receivers.zipkin.endpoint", &Config::zipkin_endpoint, &Config::zipkin_enabled,
             "Zipkin listen address (POST /api/v2/spans, /api/v1/spans); the Collector's default. `zipkin:` with "
             "no value runs the receiver with its defaults; without the key it does not run.");
    s["distributor.receivers.zipkin.parse_string_tags"] = {
        "bool", "Zipkin tag values that look like integers, decimals or true/false become int, double or bool "
                "attributes (the Collector's option); off: every tag is a string.",
        [](const Config& c) { return std::string(c.zipkin_parse_string_tags ? "true" : "false"); },
        [](const std::string& v, Config& c, std::string& why) {
          if (!ParseBool(v, c.zipkin_parse_string_tags)) {
            why = "expected true or false";
            return false;
          }
          c.zipkin_enabled = true;  // listing an option of the receiver lists the receiver
          return true;
        }};
    endpoint("distributor.receivers.jaeger.protocols.grpc.endpoint", &Config::jaeger_grpc_endpoint,
             &Config::jaeger_grpc_enabled, "Jaeger gRPC listen address (jaeger.api_v2.CollectorService/PostSpans).");
    endpoint("distributor.receivers.jaeger.protocols.thrift_http.endpoint", &Config::jaeger_thrift_http_endpoint,
             &Config::jaeger_thrift_http_enabled, "Jaeger Thrift-over-HTTP listen address (POST /api/traces).");
    endpoint("distributor.receivers.jaeger.protocols.thrift_compact.endpoint", &Config::jaeger_thrift_compact_endpoint,
             &Config::jaeger_thrift_compact_enabled, "Jaeger agent UDP address, Thrift compact protocol (emitBatch).");
    endpoint("distributor.receivers.jaeger.protocols.thrift_binary.endpoint", &Config::jaeger_thrift_binary_endpoint,
             &Config::jaeger_thrift_binary_enabled, "Jaeger agent UDP address, Thrift binary protocol (emitBatch).");
    bytes("distributor.max_request_bytes", [](Config& c) -> uint64_t& { return c.max_request_bytes; },
          "Largest request accepted, after decompression; larger ones get 413 / RESOURCE_EXHAUSTED.");
    bytes("distributor.max_inflight_bytes", [](Config& c) -> uint64_t& { return c.max_inflight_bytes; },
          "Bytes of requests received but not yet acknowledged; past it requests get 429 / RESOURCE_EXHAUSTED.");
    duration("ingester.trace_idle_period", &Config::trace_idle_period,
             "A trace with no new spans for this long is complete and goes to the next block.");
    duration("ingester.max_block_duration", &Config::max_block_duration,
             "A block is cut at the latest this long after its first trace completed.");
    bytes("ingester.max_live_bytes", [](Config& c) -> uint64_t& { return c.max_live_bytes; },
          "Memory the ingester's index of waiting traces may take (spans themselves wait in the WAL on disk; "
          "about 170 bytes a trace). Past half of it traces complete after 1 s idle, past three quarters all "
          "complete and are cut; past it new requests get 429 / RESOURCE_EXHAUSTED until blocks are cut.");
    number("ingester.trace_size_records", [](Config& c) -> uint64_t& { return c.trace_size_records; }, 0, 100'000'000,
           "Sizes of large traces (over an eighth of max_bytes_per_trace) remembered after they leave memory, so "
           "that the per-trace limit holds across blocks; about 80 bytes each, oldest forgotten first.");
    bytes("ingester.max_block_bytes", [](Config& c) -> uint64_t& { return c.max_block_bytes; },
          "A block is cut once its completed traces reach this many bytes (OTLP-encoded).");
    text("storage.trace.backend", &Config::storage_backend, "Where blocks live: `local`.",
         [](const std::string& v) { return v == "local"; }, "local");
    text("storage.trace.local.path", &Config::local_path, "Directory of the local block store.",
         [](const std::string& v) { return !v.empty(); }, "a directory");
    text("storage.trace.wal.path", &Config::wal_path, "Directory of the write-ahead log.",
         [](const std::string& v) { return !v.empty(); }, "a directory");
    text("storage.trace.wal.fsync", &Config::wal_fsync,
         "`batch`: a request is acknowledged after its record is synced (group commit); `none`: after it is "
         "written to the OS (survives a process crash, not a power loss).",
         [](const std::string& v) { return v == "batch" || v == "none"; }, "batch or none");
    bytes("storage.trace.wal.segment_bytes", [](Config& c) -> uint64_t& { return c.wal_segment_bytes; },
          "A new WAL segment starts past this size.");
    number("storage.trace.block.zstd_level", [](Config& c) -> int& { return c.block_zstd_level; }, 1, 19,
           "zstd level of block column chunks.");
    number("storage.trace.block.row_group_spans", [](Config& c) -> uint32_t& { return c.block_row_group_spans; }, 64,
           1'000'000, "Spans per row group (a row group closes after the trace that reaches it).");
    bytes("overrides.defaults.ingestion.rate_limit_bytes", [](Config& c) -> uint64_t& { return c.limits.rate_limit_bytes; },
          "Per-tenant ingest rate, bytes per second; past it requests get 429 with Retry-After.");
    bytes("overrides.defaults.ingestion.burst_size_bytes", [](Config& c) -> uint64_t& { return c.limits.burst_size_bytes; },
          "Per-tenant burst above the rate.");
    number("overrides.defaults.ingestion.max_traces_per_user",
           [](Config& c) -> uint64_t& { return c.limits.max_traces_per_user; }, 0, UINT64_MAX,
           "Live traces per tenant (0: unlimited); spans of new traces past it are refused.");
    bytes("overrides.defaults.global.max_bytes_per_trace", [](Config& c) -> uint64_t& { return c.limits.max_bytes_per_trace; },
          "Largest trace; spans that would grow a trace past it are refused (reported as partial success).");
    return s;
  }();
  return schema;
}

Status Walk(const YAML::Node& node, const std::string& path, const std::string& source, Config& config) {
  if (node.IsMap()) {
    for (const auto& item : node) {
      std::string key = item.first.as<std::string>();
      std::string child = path.empty() ? key : path + "." + key;
      const YAML::Node& value = item.second;
      // A listed receiver runs, whatever its block holds (`zipkin:`, `zipkin: {}`).
      if (child == "distributor.receivers.zipkin") config.zipkin_enabled = true;
      if (child == "distributor.receivers.jaeger.protocols.grpc") config.jaeger_grpc_enabled = true;
      if (child == "distributor.receivers.jaeger.protocols.thrift_http") config.jaeger_thrift_http_enabled = true;
      if (child == "distributor.receivers.jaeger.protocols.thrift_compact") config.jaeger_thrift_compact_enabled = true;
      if (child == "distributor.receivers.jaeger.protocols.thrift_binary") config.jaeger_thrift_binary_enabled = true;
      if (value.IsNull()) {
        // A present but empty section (`grpc:`) enables it with its defaults.
        if (child == "distributor.receivers.otlp.protocols.grpc") config.otlp_grpc_enabled = true;
        if (child == "distributor.receivers.otlp.protocols.http") config.otlp_http_enabled = true;
        bool is_prefix = false;
        for (const auto& [name, rule] : Schema())
          if (name.rfind(child + ".", 0) == 0 || name == child) is_prefix = true;
        if (!is_prefix)
          return Status::InvalidArgument(source + ":" + std::to_string(item.first.Mark().line + 1) + ": unknown key `" +
                                         child + "`");
        continue;
      }
      if (auto rule = Schema().find(child); rule != Schema().end() && rule->second.set_node) {
        std::string why;
        if (!rule->second.set_node(value, config, why))
          return Status::InvalidArgument(source + ":" + std::to_string(value.Mark().line + 1) + ": bad value for `" +
                                         child + "`: " + why);
        continue;
      }
      if (Schema().count(child) == 0) {
        bool is_section = false;
        for (const auto& [name, rule] : Schema())
          if (name.rfind(child + ".", 0) == 0) is_section = true;
        if (!is_section)
          return Status::InvalidArgument(source + ":" + std::to_string(item.first.Mark().line + 1) + ": unknown key `" +
                                         child + "`");
      }
      TRACERY_RETURN_IF_ERROR(Walk(value, child, source, config));
    }
    return Status::Ok();
  }
  int line = node.Mark().line + 1;
  auto it = Schema().find(path);
  if (it == Schema().end())
    return Status::InvalidArgument(source + ":" + std::to_string(line) + ": unknown key `" + path + "`");
  if (!node.IsScalar() || !it->second.set)
    return Status::InvalidArgument(source + ":" + std::to_string(line) + ": `" + path + "` must be a " + it->second.type);
  std::string why;
  if (!it->second.set(node.Scalar(), config, why))
    return Status::InvalidArgument(source + ":" + std::to_string(line) + ": bad value `" + node.Scalar() + "` for `" +
                                   path + "`: " + why);
  return Status::Ok();
}

}  // namespace

Result<Config> ParseConfig(const std::string& yaml, const std::string& source) {
  Config config;
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(source + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
  if (root.IsNull()) return config;
  if (!root.IsMap()) return Status::InvalidArgument(source + ": the configuration must be a YAML mapping");
  try {
    // Receivers are enabled by what the file lists, as in Tempo; with no receivers section both run.
    if (root["distributor"] && root["distributor"].IsMap() && root["distributor"]["receivers"]) {
      config.otlp_grpc_enabled = false;
      config.otlp_http_enabled = false;
    }
    TRACERY_RETURN_IF_ERROR(Walk(root, "", source, config));
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(source + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  return config;
}

Result<Config> LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument("cannot read config file " + path);
  std::stringstream text;
  text << in.rdbuf();
  return ParseConfig(text.str(), path);
}

std::string ConfigReference() {
  Config defaults;
  std::string out = "| key | type | default | meaning |\n| --- | --- | --- | --- |\n";
  for (const auto& [name, rule] : Schema())
    out += "| `" + name + "` | " + rule.type + " | `" + rule.default_text(defaults) + "` | " + rule.meaning + " |\n";
  return out;
}

}  // namespace tracery::server
