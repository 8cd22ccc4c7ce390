// The schema: every key tracery reads, with its type, default and meaning. Defaults, checks
// and docs/config.md (`tracery -config.reference`) all come from this one table. Tempo's
// names for the same setting are rows too ("Same as ..."), so a Tempo file maps onto it.
// Keys of Tempo that tracery accepts without applying live in config_tempo.cpp.
#include <regex>

#include "server/config_internal.h"

namespace tracery::server::config_detail {
namespace {

std::string Base64(const std::string& in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += kAlphabet[(n >> shift) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t n = uint8_t(in[i]) << 16;
    out += std::string{kAlphabet[(n >> 18) & 63], kAlphabet[(n >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += std::string{kAlphabet[(n >> 18) & 63], kAlphabet[(n >> 12) & 63], kAlphabet[(n >> 6) & 63], '='};
  }
  return out;
}

}  // namespace

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
                  return DurationText(c.*field);
                },
                [field](const std::string& v, Config& c, std::string& why) {
                  auto d = ParseConfigDuration(v);
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
                  auto b = ParseConfigBytes(v);
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
                  return DurationText(c.generator.*field);
                },
                [field](const std::string& v, Config& c, std::string& why) {
                  auto d = ParseConfigDuration(v);
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
         "`send_exemplars` (default true), `headers` (map), `remote_timeout` (default 30s), `name`, and credentials "
         "as Prometheus writes them: `basic_auth` (username, password), `bearer_token`, `authorization` (type, "
         "credentials), sent as the Authorization header. `tls_config`, `oauth2`, `sigv4` and credential files are "
         "refused, never dropped.",
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
               // Prometheus' credentials become the Authorization header they stand for.
               else if (key == "basic_auth" && v.IsMap() && v["username"] && v["password"] && v.size() == 2)
                 target.headers["Authorization"] = "Basic " + Base64(v["username"].Scalar() + ":" + v["password"].Scalar());
               else if (key == "bearer_token" && v.IsScalar()) target.headers["Authorization"] = "Bearer " + v.Scalar();
               else if (key == "authorization" && v.IsMap() && v["credentials"] && v["credentials"].IsScalar() &&
                        (v.size() == 1 || (v.size() == 2 && v["type"])))
                 target.headers["Authorization"] = (v["type"] ? v["type"].Scalar() : std::string("Bearer")) + " " +
                                                   v["credentials"].Scalar();
               else if (key == "tls_config" || key == "oauth2" || key == "sigv4" || key == "azuread" ||
                        key == "bearer_token_file" || key == "basic_auth" || key == "authorization" ||
                        key == "proxy_url") {
                 // Refused rather than dropped: without them the endpoint would be reached
                 // without the credentials or certificate checks the file asks for.
                 why = "`" + key + "` is not supported (tracery takes basic_auth with username and password, "
                       "bearer_token, authorization with inline credentials, or an Authorization header in `headers`)";
                 return false;
               }
               else if (key == "name" && v.IsScalar()) continue;
               else if (key == "send_exemplars" && v.IsScalar() && ParseBool(v.Scalar(), target.send_exemplars)) continue;
               else if (key == "remote_timeout" && v.IsScalar() && ParseConfigDuration(v.Scalar())) target.timeout = *ParseConfigDuration(v.Scalar());
               else if (key == "headers" && v.IsMap()) {
                 for (const auto& h : v) target.headers[h.first.as<std::string>()] = h.second.as<std::string>();
               } else {
                 why = "unknown or bad field `" + key + "` (known: url, name, send_exemplars, headers, remote_timeout, "
                       "basic_auth, bearer_token, authorization)";
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
         "`service-graphs`, `span-metrics`; `local-blocks` is accepted and needs nothing (TraceQL metrics read "
         "tracery's blocks directly).",
         [](const Config&) { return std::string("[]"); },
         [](const YAML::Node& n, Config& c, std::string& why) {
           if (!n.IsSequence()) { why = "expected a list"; return false; }
           for (const auto& item : n) {
             std::string p = item.IsScalar() ? item.Scalar() : "";
             if (p == "span-metrics") c.generator.span_metrics = true;
             else if (p == "service-graphs") c.generator.service_graphs = true;
             else if (p == "local-blocks") continue;  // Tempo's source of TraceQL metrics: tracery reads its blocks
             else { why = "unknown processor `" + p + "` (known: span-metrics, service-graphs, local-blocks)"; return false; }
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
    s["server.http_listen_address"] = {
        "string", "Address of the query API; empty (Tempo's default) means every interface.",
        [](const Config& c) { return c.http_listen_address; },
        [](const std::string& v, Config& c, std::string&) {
          c.http_listen_address = v.empty() ? "0.0.0.0" : v;
          return true;
        }};
    number("server.http_listen_port", [](Config& c) -> uint16_t& { return c.http_listen_port; }, 1, 65535,
           "Port of the query API (Tempo's HTTP API, /metrics, /ready).");
    s["server.grpc_listen_address"] = {
        "string", "Address of the gRPC query port; empty (Tempo's default) means every interface.",
        [](const Config& c) { return c.grpc_listen_address; },
        [](const std::string& v, Config& c, std::string&) {
          c.grpc_listen_address = v.empty() ? "0.0.0.0" : v;
          return true;
        }};
    number("server.grpc_listen_port", [](Config& c) -> uint16_t& { return c.grpc_listen_port; }, 0, 65535,
           "Tempo's gRPC port: when set, Tempo's streaming query API (tempopb.StreamingQuerier: search, "
           "metrics, tags) is served there too, with server.grpc_tls_config; 0 (the default here) serves none.");
    endpoint("distributor.receivers.otlp.protocols.grpc.endpoint", &Config::otlp_grpc_endpoint,
             &Config::otlp_grpc_enabled,
             "OTLP/gRPC listen address. A listed `grpc:` without one listens on `localhost:4317`, as Tempo 2.7+.");
    endpoint("distributor.receivers.otlp.protocols.http.endpoint", &Config::otlp_http_endpoint,
             &Config::otlp_http_enabled,
             "OTLP/HTTP listen address (POST /v1/traces). A listed `http:` without one listens on `localhost:4318`, as Tempo 2.7+.");
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
    duration("distributor.request_stall_timeout", &Config::request_stall_timeout,
             "Ingest receivers: an HTTP request whose headers are not complete this long after their first byte gets "
             "408 (an idle kept-alive connection is closed); a gRPC call with no DATA for this long gets "
             "DEADLINE_EXCEEDED. Either way its bytes are released.");
    duration("distributor.request_read_timeout", &Config::request_read_timeout,
             "Ingest receivers: an HTTP body, or a gRPC message, not wholly received this long after its headers "
             "gets 408 / DEADLINE_EXCEEDED and its bytes are released.");
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
    s["storage.trace.backend"] = {
        "string", "Where blocks live: `local`. Tempo's `s3`, `gcs` and `azure` are refused (not served yet).",
        [](const Config& c) { return c.storage_backend; },
        [](const std::string& v, Config& c, std::string& why) {
          if (v == "local") {
            c.storage_backend = v;
            return true;
          }
          if (v == "s3" || v == "gcs" || v == "azure")
            why = "object storage is not served yet: blocks in " + v +
                  " land with the scale-out issue; use local (storage.trace.local.path)";
          else
            why = "expected local";
          return false;
        }};
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
    text("overrides.per_tenant_override_config", &Config::per_tenant_override_config,
         "Runtime overrides file: per-tenant limits (Tempo's layout, `overrides: {<tenant>: {ingestion: {...}, global: "
         "{...}}}`, or the legacy flat one), read at start (a bad file stops the start) and again every "
         "per_tenant_override_period (a bad file then is logged and counted in "
         "tracery_overrides_reload_failures_total; the previous overrides stay). Empty: none.");
    s["overrides.per_tenant_override_period"] = {
        "duration", "How often the runtime overrides file is read again.",
        [](const Config& c) { return DurationText(c.per_tenant_override_period); },
        [](const std::string& v, Config& c, std::string& why) {
          auto d = ParseConfigDuration(v);
          if (!d || d->count() <= 0) { why = "expected a positive duration such as 10s"; return false; }
          c.per_tenant_override_period = *d;
          return true;
        }};
    number("query_frontend.search.default_spans_per_span_set",
           [](Config& c) -> uint32_t& { return c.search_default_spans_per_span_set; }, 1, UINT32_MAX,
           "Spans shown per spanset when a search gives no `spss`.");
    s["http_api_prefix"] = {
        "string", "Prefix of the query API's routes (`/api/...`, as Tempo); `/ready`, `/metrics` and `/flush` stay "
                  "at the root. Empty: no prefix.",
        [](const Config& c) { return c.http_api_prefix; },
        [](const std::string& v, Config& c, std::string& why) {
          std::string prefix = v;
          while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
          if (!prefix.empty() && prefix[0] != '/') prefix = "/" + prefix;
          if (prefix.find_first_of("?# ") != std::string::npos) { why = "expected a URL path such as /tempo"; return false; }
          c.http_api_prefix = prefix;
          return true;
        }};
    s["compactor.compaction.block_retention"] = {
        "duration", "Tempo's block retention: a block is deleted once its newest span ended and it was written "
                    "longer ago than this (checked every compactor.compaction.compaction_cycle; a block a query is reading "
                    "goes when the query ends). "
                    "Per tenant: compaction.block_retention in the runtime overrides.",
        [](const Config& c) { return DurationText(c.block_retention); },
        [](const std::string& v, Config& c, std::string& why) {
          auto d = ParseConfigDuration(v);
          if (!d || d->count() <= 0) { why = "expected a positive duration such as 336h or 14d"; return false; }
          c.block_retention = *d;
          c.block_retention_set = true;
          return true;
        }};
    node("compactor.compaction.retention_tiers", "map",
         "Retention per tier: {error, slow, pinned, baseline} -> duration, e.g. {error: 720h, slow: 720h, pinned: 2160h, "
         "baseline: 72h}. A tier left out keeps compactor.compaction.block_retention. Per tenant: "
         "compaction.retention_tiers (or compaction.block_retention for every tier) in the runtime overrides.",
         [](const Config& c) { return std::string("{}"); },
         [](const YAML::Node& n, Config& c, std::string& why) { return ParseRetentionTiers(n, c.tier_retention, why); });
    for (const char* key : {"sampler.tail_sampling", "processors.tail_sampling"}) {
      node(key, "map",
           std::string(key) == "sampler.tail_sampling"
               ? "The OpenTelemetry Collector's tail_sampling processor block, as written (decision_wait, num_traces, "
                 "expected_new_traces_per_sec, decision_cache, policies; docs/sampling.md). Unset: every trace is kept."
               : "Same as sampler.tail_sampling: a Collector file's `processors:` block pasted as is.",
           [](const Config& c) { return std::string("none"); },
           [key](const YAML::Node& n, Config& c, std::string& why) {
             auto policies = sampling::ParseTailSampling(n, CurrentSource(), key);
             if (!policies.ok()) {
               why = "\n" + policies.status().message();
               return false;
             }
             c.tail_sampling = std::move(policies).value();
             return true;
           });
    }
    s["sampler.quiet_period"] = {
        "duration", "A pending trace whose root span has arrived is decided once no span came for this long, before "
                    "decision_wait; 0: only at decision_wait, exactly as the Collector.",
        [](const Config& c) { return DurationText(c.sampling_quiet_period); },
        [](const std::string& v, Config& c, std::string& why) {
          auto d = ParseConfigDuration(v);
          if (!d || d->count() < 0) { why = "expected a duration such as 2s, or 0"; return false; }
          c.sampling_quiet_period = *d;
          return true;
        }};
    s["sampler.slow_threshold"] = {
        "duration", "Kept traces longer than this are stored in the `slow` retention tier. Default: the threshold_ms "
                    "of the first latency policy (no slow tier without one); 0: no slow tier.",
        [](const Config& c) { return std::string("the latency policy's threshold"); },
        [](const std::string& v, Config& c, std::string& why) {
          auto d = ParseConfigDuration(v);
          if (!d || d->count() < 0) { why = "expected a duration such as 500ms, or 0"; return false; }
          c.slow_threshold = *d;
          return true;
        }};
    duration("compactor.compaction.compaction_window", &Config::compaction_window,
             "Blocks of a tenant and tier whose spans end within the same window of this length are merged into "
             "one (storage/compactor.h).");
    number("compactor.compaction.max_compaction_objects", [](Config& c) -> uint64_t& { return c.max_compaction_objects; },
           2, UINT64_MAX, "Traces a compaction writes at most: inputs stop before passing it; a block this big is "
                          "not merged again.");
    bytes("compactor.compaction.max_block_bytes", [](Config& c) -> uint64_t& { return c.compaction_max_block_bytes; },
          "Bytes (data and index) a compaction writes at most: inputs stop before passing it; a block this big is "
          "not merged again.");
    number("compactor.compaction.max_spans_in_memory",
           [](Config& c) -> uint64_t& { return c.compaction_max_spans_in_memory; }, 2048, UINT64_MAX,
           "Spans a compaction holds at once, at most: its memory bound whatever the trace shapes (docs/compaction.md: "
           "twice the inputs' largest row groups plus one row group must fit, so inputs stop before passing it, and a "
           "block with a row group too large for it, a huge trace, is not merged). At least 2048.");
    duration("compactor.compaction.compaction_cycle", &Config::compaction_cycle,
             "How often compaction runs, and retention's passes.");
    boolean("compactor.disabled", &Config::compactor_disabled,
            "Turns compaction off (retention still runs).");
    s["distributor.retry_after_on_resource_exhausted"] = {
        "duration", "When non-zero, the Retry-After (HTTP) and retry delay (gRPC) of every RESOURCE_EXHAUSTED / 429 "
                    "answer, as Tempo; 0: tracery's own estimate (when the tenant's tokens return, 1 s for memory).",
        [](const Config& c) { return DurationText(c.retry_after_on_resource_exhausted); },
        [](const std::string& v, Config& c, std::string& why) {
          auto d = ParseConfigDuration(v);
          if (!d) { why = "expected a duration such as 0s or 5s"; return false; }
          c.retry_after_on_resource_exhausted = *d;
          return true;
        }};
    for (auto [name, field] : {std::pair{"log_received_spans", &Config::log_received_spans},
                               std::pair{"log_discarded_spans", &Config::log_discarded_spans}}) {
      std::string base = std::string("distributor.") + name;
      std::string what = name == std::string("log_received_spans") ? "received" : "refused (discarded)";
      for (auto [option, member, meaning] :
           {std::tuple{"enabled", &SpanLogOptions::enabled, "Log one line per span " + what + ", as Tempo (rate-limited)."},
            std::tuple{"include_all_attributes", &SpanLogOptions::include_all_attributes,
                       std::string("Add every span and resource attribute to the line.")},
            std::tuple{"filter_by_status_error", &SpanLogOptions::filter_by_status_error,
                       std::string("Log only spans with status error.")}}) {
        s[base + "." + option] = {"bool", meaning,
                                  [field, member](const Config& c) { return std::string((c.*field).*member ? "true" : "false"); },
                                  [field, member](const std::string& v, Config& c, std::string& why) {
                                    if (ParseBool(v, (c.*field).*member)) return true;
                                    why = "expected true or false";
                                    return false;
                                  }};
      }
    }

    // TLS (common/tls.h): Tempo's server blocks with dskit's key names, and the Collector's
    // receiver `tls` blocks. Files are loaded at start (a bad one stops it, named).
    auto tls_path = [&](const std::string& key, TlsSettings Config::*block, std::string TlsSettings::*file,
                        const std::string& meaning, bool collector_client_ca = false) {
      s[key] = {"path", meaning, [block, file](const Config& c) { return (c.*block).*file; },
                [block, file, collector_client_ca](const std::string& v, Config& c, std::string&) {
                  (c.*block).*file = v;
                  // The Collector has no client auth key: a client CA means verify, and require.
                  if (collector_client_ca)
                    (c.*block).client_auth = v.empty() ? ClientAuth::kNoClientCert : ClientAuth::kRequireAndVerifyClientCert;
                  return true;
                }};
    };
    auto tls_version = [&](const std::string& key, std::vector<TlsSettings Config::*> blocks, TlsVersion TlsSettings::*field,
                           const std::string& default_text, const std::string& meaning) {
      s[key] = {"string", meaning, [default_text](const Config&) { return default_text; },
                [blocks, field](const std::string& v, Config& c, std::string& why) {
                  auto version = ParseTlsVersion(v);
                  if (!version.ok()) {
                    why = version.status().message();
                    return false;
                  }
                  for (auto block : blocks) (c.*block).*field = *version;
                  return true;
                }};
    };
    for (auto [prefix, block, what] :
         {std::tuple{std::string("server.http_tls_config"), &Config::http_tls,
                     std::string("the query API port, its HTTP/2 streaming (stream_over_http_enabled) included")},
          std::tuple{std::string("server.grpc_tls_config"), &Config::grpc_tls,
                     std::string("the gRPC query port (server.grpc_listen_port; without it the files are only "
                                 "checked at start)")}}) {
      tls_path(prefix + ".cert_file", block, &TlsSettings::cert_file,
               "PEM server certificate (chain) of " + what + "; with key_file turns TLS on. Reloaded when it changes.");
      tls_path(prefix + ".key_file", block, &TlsSettings::key_file, "PEM private key of cert_file.");
      tls_path(prefix + ".client_ca_file", block, &TlsSettings::client_ca_file,
               "PEM CAs that client certificates are verified against (needs client_auth_type, as in Tempo).");
      s[prefix + ".client_auth_type"] = {
          "string", "Go's client auth: NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven "
                    "or RequireAndVerifyClientCert (mutual TLS).",
          [block](const Config& c) { return ClientAuthName((c.*block).client_auth); },
          [block](const std::string& v, Config& c, std::string& why) {
            auto auth = ParseClientAuth(v);
            if (!auth.ok()) {
              why = auth.status().message();
              return false;
            }
            (c.*block).client_auth = *auth;
            return true;
          }};
    }
    tls_version("server.tls_min_version", {&Config::http_tls, &Config::grpc_tls}, &TlsSettings::min_version, "VersionTLS12",
                "Lowest TLS version of server.http_tls_config and grpc_tls_config: VersionTLS12 or VersionTLS13.");
    s["server.tls_cipher_suites"] = {
        "string", "Comma-separated Go cipher suite names for server.http_tls_config and grpc_tls_config (mapped to "
                  "OpenSSL's; TLS 1.3 names restrict TLS 1.3); empty: OpenSSL's defaults. An unknown name is refused.",
        [](const Config&) { return std::string(); },
        [](const std::string& v, Config& c, std::string& why) {
          auto names = SplitCipherSuiteList(v);
          if (auto mapped_names = MapCipherSuites(names); !mapped_names.ok()) {
            why = mapped_names.status().message();
            return false;
          }
          c.http_tls.cipher_suites = c.grpc_tls.cipher_suites = names;
          return true;
        }};
    for (auto [prefix, block] : {std::pair{std::string("distributor.receivers.otlp.protocols.grpc.tls"), &Config::otlp_grpc_tls},
                                 std::pair{std::string("distributor.receivers.otlp.protocols.http.tls"), &Config::otlp_http_tls},
                                 std::pair{std::string("distributor.receivers.zipkin.tls"), &Config::zipkin_tls},
                                 std::pair{std::string("distributor.receivers.jaeger.protocols.grpc.tls"), &Config::jaeger_grpc_tls},
                                 std::pair{std::string("distributor.receivers.jaeger.protocols.thrift_http.tls"),
                                           &Config::jaeger_thrift_http_tls}}) {
      tls_path(prefix + ".cert_file", block, &TlsSettings::cert_file,
               "PEM server certificate of this receiver (the Collector's key); with key_file turns TLS on.");
      tls_path(prefix + ".key_file", block, &TlsSettings::key_file, "PEM private key of cert_file.");
      tls_path(prefix + ".client_ca_file", block, &TlsSettings::client_ca_file,
               "PEM CAs client certificates must chain to: set, clients must present a valid certificate (mutual TLS).",
               true);
      tls_version(prefix + ".min_version", {block}, &TlsSettings::min_version, "1.2",
                  "Lowest TLS version: 1.2 or 1.3 (Jaeger gRPC: 1.2 only, see docs/config.md#tls).");
      tls_version(prefix + ".max_version", {block}, &TlsSettings::max_version, "1.3",
                  "Highest TLS version: 1.2 or 1.3 (Jaeger gRPC: 1.3 only).");
      node(prefix + ".cipher_suites", "list of strings",
           "Go cipher suite names (mapped to OpenSSL's); unknown names are refused. Not on Jaeger gRPC.",
           [](const Config&) { return std::string("[]"); },
           [block](const YAML::Node& n, Config& c, std::string& why) {
             if (!n.IsSequence()) { why = "expected a list of cipher suite names"; return false; }
             std::vector<std::string> names;
             for (const auto& item : n) {
               if (!item.IsScalar()) { why = "expected a list of cipher suite names"; return false; }
               names.push_back(item.Scalar());
             }
             if (auto mapped_names = MapCipherSuites(names); !mapped_names.ok()) {
               why = mapped_names.status().message();
               return false;
             }
             (c.*block).cipher_suites = names;
             return true;
           });
      s[prefix + ".reload_interval"] = {
          "duration", "How often the certificate files are looked at for changes (changed files are reloaded for "
                      "new connections); 0: every 5s.",
          [](const Config&) { return std::string("0s"); },
          [block](const std::string& v, Config& c, std::string& why) {
            auto d = ParseConfigDuration(v);
            if (!d || d->count() < 0) {
              why = "expected a duration such as 30s or 1m";
              return false;
            }
            (c.*block).reload_interval = *d;
            return true;
          }};
      s[prefix + ".client_ca_file_reload"] = {
          "bool", "Accepted (the Collector's): client_ca_file is always reloaded with the certificate.",
          [](const Config&) { return std::string("false"); },
          [](const std::string& v, Config&, std::string& why) {
            bool ignored;
            if (ParseBool(v, ignored)) return true;
            why = "expected true or false";
            return false;
          }};
    }

    // Tempo's other names for these settings: its 2.x layout, 3.0's live_store and backend
    // worker, the legacy flat overrides, and 1.x's auth_enabled. Each is documented as the
    // same as the key it sets.
    auto mapped = [&](const std::string& key, const std::string& same_as, const std::string& whose) {
      KeyRule rule = s.at(same_as);
      rule.meaning = "Same as `" + same_as + "` (" + whose + ").";
      s[key] = std::move(rule);
    };
    mapped("auth_enabled", "multitenancy_enabled", "Tempo 1.x's name; never dropped, as it guards tenants");
    mapped("live_store.max_trace_idle", "ingester.trace_idle_period", "Tempo 3.0");
    mapped("live_store.max_block_duration", "ingester.max_block_duration", "Tempo 3.0");
    mapped("live_store.max_block_bytes", "ingester.max_block_bytes", "Tempo 3.0");
    mapped("live_store.max_live_traces_bytes", "ingester.max_live_bytes",
           "Tempo 3.0: both bound the memory of traces waiting for their block");
    mapped("live_store.wal.path", "storage.trace.wal.path", "Tempo 3.0");
    mapped("backend_worker.compaction.block_retention", "compactor.compaction.block_retention", "Tempo 3.0");
    mapped("backend_scheduler.provider.compaction.compaction.block_retention", "compactor.compaction.block_retention",
           "Tempo 3.0");
    for (const char* key : {"compaction_window", "max_compaction_objects", "max_block_bytes", "compaction_cycle"}) {
      mapped(std::string("backend_worker.compaction.") + key, std::string("compactor.compaction.") + key, "Tempo 3.0");
      mapped(std::string("backend_scheduler.provider.compaction.compaction.") + key,
             std::string("compactor.compaction.") + key, "Tempo 3.0");
    }
    mapped("overrides.defaults.compaction.block_retention", "compactor.compaction.block_retention",
           "Tempo's per-tenant retention, taken for every tenant");
    mapped("overrides.block_retention", "compactor.compaction.block_retention", "Tempo's legacy overrides");
    mapped("overrides.ingestion_rate_limit_bytes", "overrides.defaults.ingestion.rate_limit_bytes", "Tempo's legacy overrides");
    mapped("overrides.ingestion_burst_size_bytes", "overrides.defaults.ingestion.burst_size_bytes", "Tempo's legacy overrides");
    mapped("overrides.max_traces_per_user", "overrides.defaults.ingestion.max_traces_per_user", "Tempo's legacy overrides");
    mapped("overrides.max_bytes_per_trace", "overrides.defaults.global.max_bytes_per_trace", "Tempo's legacy overrides");
    mapped("overrides.metrics_generator_processors", "overrides.defaults.metrics_generator.processors",
           "Tempo's legacy overrides");
    mapped("overrides.metrics_generator_max_active_series", "overrides.defaults.metrics_generator.max_active_series",
           "Tempo's legacy overrides");
    return s;
  }();
  return schema;
}
bool IsSchemaSection(const std::string& key) {
  auto it = Schema().lower_bound(key + ".");
  return it != Schema().end() && it->first.rfind(key + ".", 0) == 0;
}

}  // namespace tracery::server::config_detail
