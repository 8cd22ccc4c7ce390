#include "generator/generator.h"

#include <charconv>
#include <array>
#include <cmath>
#include <cstring>
#include <random>

#include <spdlog/spdlog.h>

#include "common/tenant.h"
#include "generator/remote_write.h"
#include "generator/span_fields.h"
#include "otlp/json.h"
#include "otlp/wire.h"

namespace tracery::generator {
namespace {

// Prometheus label names: [a-zA-Z_][a-zA-Z0-9_]*.
std::string SanitizeLabelName(std::string_view key) {
  std::string out;
  for (char c : key) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '_') ? c : '_';
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out.insert(out.begin(), '_');
  return out;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string FormatValue(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[40];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest text that reads back exactly
  return std::string(buf, end);
}

}  // namespace

bool FindAttribute(std::string_view encoded_message, uint32_t attributes_field, std::string_view key, std::string& out) {
  ByteReader reader(encoded_message);
  otlp::WireField f, g, h;
  while (!reader.empty()) {
    if (!otlp::ReadField(reader, f)) return false;
    if (f.number != attributes_field || f.type != otlp::kLengthDelimited) continue;
    ByteReader kv(f.bytes);
    std::string_view k, value;
    while (!kv.empty() && otlp::ReadField(kv, g)) {
      if (g.number == 1) k = g.bytes;
      if (g.number == 2) value = g.bytes;
    }
    if (k != key) continue;
    ByteReader any(value);
    while (!any.empty() && otlp::ReadField(any, h)) {
      switch (h.number) {
        case 1: out.assign(h.bytes); return true;
        case 2: out = h.integer ? "true" : "false"; return true;
        case 3: out = std::to_string(int64_t(h.integer)); return true;
        case 4: {
          double d;
          std::memcpy(&d, &h.integer, 8);
          char buf[32];
          std::snprintf(buf, sizeof buf, "%g", d);
          out = buf;
          return true;
        }
        default: break;
      }
    }
    return false;
  }
  return false;
}

std::string_view SpanBody(std::string_view field) {
  ByteReader reader(field);
  otlp::WireField f;
  return otlp::ReadField(reader, f) ? f.bytes : std::string_view();
}


Generator::Generator(Options options, MetricsRegistry& self_metrics)
    : options_(std::move(options)),
      latency_bounds_(options_.span_metrics_buckets),
      edge_bounds_(options_.service_graph_buckets),
      hash_seed_((uint64_t(std::random_device()()) << 32) | std::random_device()()),
      self_metrics_(self_metrics),
      spans_received_(self_metrics.GetCounter("tracery_generator_spans_received_total", "Spans seen by the metrics generator.")),
      edges_expired_(self_metrics.GetCounter("tracery_generator_service_graph_expired_edges_total",
                                             "Service-graph half edges that expired without their other half.")) {
  std::sort(latency_bounds_.begin(), latency_bounds_.end());
  std::sort(edge_bounds_.begin(), edge_bounds_.end());
  writer_ = std::make_unique<RemoteWriter>(options_.remote_write, self_metrics);
  for (const auto& policy : options_.filter_policies) {
    auto& include = include_regexes_.emplace_back();
    auto& exclude = exclude_regexes_.emplace_back();
    if (policy.include_regex)
      for (const auto& c : policy.include) include.emplace_back(c.value, std::regex::ECMAScript | std::regex::optimize);
    if (policy.exclude_regex)
      for (const auto& c : policy.exclude) exclude.emplace_back(c.value, std::regex::ECMAScript | std::regex::optimize);
  }
  self_metrics.AddCallbackGauge("tracery_generator_active_series", "Generated series held, all tenants.", [this] {
    std::lock_guard lock(tenants_mutex_);
    double n = 0;
    for (const auto& [name, tenant] : tenants_) n += double(tenant->registry.active_series());
    return n;
  });
  self_metrics.AddCallbackGauge("tracery_generator_series_dropped", "New series refused by max_active_series, all tenants.", [this] {
    std::lock_guard lock(tenants_mutex_);
    double n = 0;
    for (const auto& [name, tenant] : tenants_) n += double(tenant->registry.dropped_series());
    return n;
  });
}

Generator::~Generator() { Stop(); }

bool Generator::PassesFilters(const otlp::SplitRequest& split, const otlp::SpanSummary& span, std::string_view body,
                              const std::string& service) const {
  auto value_of = [&](const std::string& key, std::string& out) -> bool {
    if (key == "name") { out.assign(span.name); return true; }
    if (key == "kind") { out = kKindNames[span.kind]; return true; }
    if (key == "status") { out = kStatusNames[span.status_code]; return true; }
    if (key == "resource.service.name") { out = service; return true; }
    if (key.rfind("span.", 0) == 0) return FindAttribute(body, 9, std::string_view(key).substr(5), out);
    if (key.rfind("resource.", 0) == 0) return FindAttribute(split.resources[span.resource_index], 1, std::string_view(key).substr(9), out);
    return false;
  };
  // All conditions of a list must hold for the list to match.
  auto matches = [&](const std::vector<FilterCondition>& conditions, bool regex, const std::vector<std::regex>& regexes) {
    std::string value;
    for (size_t i = 0; i < conditions.size(); ++i) {
      if (!value_of(conditions[i].key, value)) return false;
      if (regex ? !std::regex_match(value, regexes[i]) : value != conditions[i].value) return false;
    }
    return true;
  };
  for (size_t p = 0; p < options_.filter_policies.size(); ++p) {
    const FilterPolicy& policy = options_.filter_policies[p];
    if (!policy.include.empty() && !matches(policy.include, policy.include_regex, include_regexes_[p])) return false;
    if (!policy.exclude.empty() && matches(policy.exclude, policy.exclude_regex, exclude_regexes_[p])) return false;
  }
  return true;
}

void Generator::Start() { loop_ = std::thread([this] { Loop(); }); }

void Generator::Stop() {
  {
    std::lock_guard lock(loop_mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  loop_wake_.notify_all();
  if (loop_.joinable()) loop_.join();
  CollectNow();
  writer_->Stop();
}

std::shared_ptr<Generator::TenantState> Generator::Tenant(const std::string& name) {
  std::lock_guard lock(tenants_mutex_);
  auto& slot = tenants_[name];
  if (!slot) {
    slot = std::make_shared<TenantState>(options_);
    TenantState& t = *slot;
    std::vector<std::string> labels;
    if (options_.intrinsic_service) labels.push_back("service");
    if (options_.intrinsic_span_name) labels.push_back("span_name");
    if (options_.intrinsic_span_kind) labels.push_back("span_kind");
    if (options_.intrinsic_status_code) labels.push_back("status_code");
    if (options_.intrinsic_status_message) labels.push_back("status_message");
    for (const auto& d : options_.span_metrics_dimensions) labels.push_back(SanitizeLabelName(d));
    t.calls = t.registry.AddCounter("traces_spanmetrics_calls_total", labels);
    t.latency = t.registry.AddHistogram("traces_spanmetrics_latency", labels, options_.span_metrics_buckets);
    t.size = t.registry.AddCounter("traces_spanmetrics_size_total", labels);
    std::vector<std::string> edge = {"client", "server", "connection_type"};
    t.edges_total = t.registry.AddCounter("traces_service_graph_request_total", edge);
    t.edges_failed = t.registry.AddCounter("traces_service_graph_request_failed_total", edge);
    t.server_seconds = t.registry.AddHistogram("traces_service_graph_request_server_seconds", edge, options_.service_graph_buckets);
    t.client_seconds = t.registry.AddHistogram("traces_service_graph_request_client_seconds", edge, options_.service_graph_buckets);
    t.unpaired = t.registry.AddCounter("traces_service_graph_unpaired_spans_total", {"client", "server"});
    t.dropped = t.registry.AddCounter("traces_service_graph_dropped_spans_total", {"client", "server"});
  }
  // Set under the tenants lock, so that eviction never drops a tenant a caller just took.
  slot->last_used = std::chrono::steady_clock::now();
  return slot;
}

size_t Generator::TenantCount() {
  std::lock_guard lock(tenants_mutex_);
  return tenants_.size();
}

void Generator::EvictIdleTenants() {
  auto idle_before = std::chrono::steady_clock::now() - options_.stale_duration;
  std::lock_guard lock(tenants_mutex_);
  for (auto it = tenants_.begin(); it != tenants_.end();) {
    TenantState& tenant = *it->second;
    bool idle = tenant.last_used < idle_before && tenant.registry.active_series() == 0;
    if (idle) {
      std::lock_guard edges_lock(tenant.edges_mutex);
      idle = tenant.edges.size() == 0;
    }
    it = idle ? tenants_.erase(it) : std::next(it);
  }
}

void Generator::ExpireEdges(TenantState& tenant, bool everything) {
  auto deadline = std::chrono::steady_clock::now() - options_.service_graph_wait;
  std::vector<PendingEdge> expired;
  {
    std::lock_guard lock(tenant.edges_mutex);
    tenant.edges.RemoveIf([&](const PendingEdge& edge) { return everything || edge.created <= deadline; },
                          [&](PendingEdge& edge) { expired.push_back(std::move(edge)); });
  }
  if (expired.empty()) return;
  edges_expired_.Add(expired.size());
  Registry::Batch batch(tenant.registry);
  for (const auto& edge : expired) {
    if (edge.has_client && !edge.virtual_peer.empty()) {
      // An uninstrumented peer (a database, an external service): an edge to a virtual node.
      std::string type = edge.database && !edge.peer_service ? "database" : "virtual_node";
      std::vector<std::string> labels = {edge.client_service, edge.virtual_peer, type};
      batch.Add(tenant.edges_total, labels, 1);
      if (edge.failed) batch.Add(tenant.edges_failed, labels, 1);
      batch.Observe(tenant.client_seconds, labels, edge.client_seconds, edge.TraceIdView(), edge.SpanIdView());
    } else {
      batch.Add(tenant.unpaired, {edge.client_service, edge.server_service}, 1);
    }
  }
}

void Generator::Loop() {
  auto next_collection = std::chrono::steady_clock::now() + options_.collection_interval;
  std::unique_lock lock(loop_mutex_);
  while (!stopping_) {
    loop_wake_.wait_for(lock, std::chrono::milliseconds(500));
    if (stopping_) break;
    lock.unlock();
    std::vector<std::shared_ptr<TenantState>> tenants;
    {
      std::lock_guard tenants_lock(tenants_mutex_);
      for (auto& [name, tenant] : tenants_) tenants.push_back(tenant);
    }
    for (auto& tenant : tenants) ExpireEdges(*tenant, false);
    if (std::chrono::steady_clock::now() >= next_collection) {
      next_collection += options_.collection_interval;
      CollectNow();
      // Series expire on their own clock, whether or not anything writes or scrapes them.
      for (auto& tenant : tenants) tenant->registry.Collect([](Family&) {});
      tenants.clear();
      EvictIdleTenants();
    }
    lock.lock();
  }
}

bool Generator::KeepExemplar(const std::string& tenant, std::string_view trace_id) const {
  return !options_.keep_exemplar || options_.keep_exemplar(tenant, TraceId::FromBytes(trace_id));
}

std::vector<Generator::WriteBatch> Generator::BuildWriteRequests(const std::string& tenant_name, TenantState& tenant,
                                                                 int64_t now_ms, bool with_exemplars) {
  std::vector<WriteBatch> batches(1);
  size_t series_in_batch = 0;
  Labels base;
  for (const auto& [name, value] : options_.external_labels) base.emplace_back(name, value);
  // Append one time series to the current batch; start a new one past kMaxSeriesPerWrite.
  auto append = [&](const Labels& l, const std::vector<SampleOut>& samples,
                    const std::vector<std::pair<const Exemplar*, Labels>>& exemplars) {
    if (series_in_batch >= kMaxSeriesPerWrite) {
      batches.emplace_back();
      series_in_batch = 0;
    }
    WriteBatch& batch = batches.back();
    AppendTimeSeries(batch.body, l, samples, exemplars);
    batch.samples += samples.size();
    batch.exemplars += exemplars.size();
    series_in_batch++;
  };
  tenant.registry.Collect([&](Family& family) {
    for (auto& [key, series] : family.series) {
      Labels labels = base;
      for (size_t i = 0; i < family.label_names.size(); ++i) labels.emplace_back(family.label_names[i], series.label_values[i]);
      // A new series starts with a 0 sample so that rate() and increase() see its first events.
      auto samples_of = [&](double v) {
        std::vector<SampleOut> out;
        if (!series.written) out.push_back({0, now_ms - 1});
        out.push_back({v, now_ms});
        return out;
      };
      if (!family.histogram) {
        Labels l = labels;
        l.emplace_back("__name__", family.name);
        append(l, samples_of(series.value), {});
      } else {
        uint64_t cumulative = 0;
        for (size_t b = 0; b <= family.bounds.size(); ++b) {
          cumulative += series.bucket_counts[b];
          Labels l = labels;
          l.emplace_back("__name__", family.name + "_bucket");
          l.emplace_back("le", b < family.bounds.size() ? FormatValue(family.bounds[b]) : "+Inf");
          std::vector<std::pair<const Exemplar*, Labels>> exemplars;
          const Exemplar& e = series.exemplars[b];
          // An exemplar goes out only for a trace that is stored (with sampling: kept, and
          // pinned from now on so that it stays).
          if (with_exemplars && !e.trace_id.empty() && !e.sent && KeepExemplar(tenant_name, e.trace_id))
            exemplars.push_back({&e, Labels{{"span_id", HexEncode(e.span_id)}, {"trace_id", HexEncode(e.trace_id)}}});
          append(l, samples_of(double(cumulative)), exemplars);
        }
        Labels sum = labels, count = labels;
        sum.emplace_back("__name__", family.name + "_sum");
        count.emplace_back("__name__", family.name + "_count");
        append(sum, samples_of(series.sum), {});
        append(count, samples_of(double(series.count)), {});
      }
    }
  });
  if (batches.back().samples == 0) batches.pop_back();
  return batches;
}

void Generator::CollectNow() {
  if (writer_->target_count() == 0) return;  // tenants exist only where a processor runs
  std::vector<std::pair<std::string, std::shared_ptr<TenantState>>> tenants;
  {
    std::lock_guard lock(tenants_mutex_);
    for (auto& [name, tenant] : tenants_) tenants.emplace_back(name, tenant);
  }
  int64_t now_ms = NowMs();
  for (auto& [name, tenant] : tenants) {
    bool any_with = false, any_without = false;
    for (size_t t = 0; t < writer_->target_count(); ++t) (writer_->sends_exemplars(t) ? any_with : any_without) = true;
    std::vector<WriteBatch> with, without;
    if (any_with) with = BuildWriteRequests(name, *tenant, now_ms, true);
    if (any_without) without = BuildWriteRequests(name, *tenant, now_ms, false);
    // What was built is on its way: exemplars are not sent twice, series have their first 0.
    tenant->registry.Collect([&](Family& family) {
      for (auto& [key, series] : family.series) {
        series.written = true;
        for (auto& e : series.exemplars) e.sent = true;
      }
    });
    for (size_t t = 0; t < writer_->target_count(); ++t) {
      for (const auto& batch : writer_->sends_exemplars(t) ? with : without)
        writer_->Enqueue(t, name, batch.body, batch.samples, batch.exemplars);
    }
  }
}

std::string Generator::Render(bool openmetrics) {
  std::string out;
  std::vector<std::pair<std::string, std::shared_ptr<TenantState>>> tenants;
  {
    std::lock_guard lock(tenants_mutex_);
    for (auto& [name, tenant] : tenants_) tenants.emplace_back(name, tenant);
  }
  std::map<std::string, std::string> bodies;  // family name -> sample lines, across tenants
  std::map<std::string, bool> is_histogram;
  for (auto& [tenant_name, tenant] : tenants) {
    tenant->registry.Collect([&](Family& family) {
      std::string& lines = bodies[family.name];
      is_histogram[family.name] = family.histogram;
      for (auto& [key, series] : family.series) {
        ::tracery::Labels labels;
        for (const auto& [n, v] : options_.external_labels) labels.emplace_back(n, v);
        if (tenant_name != kSingleTenant) labels.emplace_back("tenant", tenant_name);
        for (size_t i = 0; i < family.label_names.size(); ++i) labels.emplace_back(family.label_names[i], series.label_values[i]);
        if (!family.histogram) {
          lines += family.name + FormatLabels(labels) + " " + FormatValue(series.value) + "\n";
          continue;
        }
        uint64_t cumulative = 0;
        for (size_t b = 0; b <= family.bounds.size(); ++b) {
          cumulative += series.bucket_counts[b];
          ::tracery::Labels l = labels;
          l.emplace_back("le", b < family.bounds.size() ? FormatValue(family.bounds[b]) : "+Inf");
          lines += family.name + "_bucket" + FormatLabels(l) + " " + std::to_string(cumulative);
          const Exemplar& e = series.exemplars[b];
          if (openmetrics && !e.trace_id.empty() && KeepExemplar(tenant_name, e.trace_id)) {
            char ts[32];
            std::snprintf(ts, sizeof ts, "%.3f", double(e.timestamp_ms) / 1000.0);
            lines += " # {trace_id=\"" + HexEncode(e.trace_id) + "\",span_id=\"" + HexEncode(e.span_id) + "\"} " +
                     FormatValue(e.value) + " " + ts;
          }
          lines += "\n";
        }
        lines += family.name + "_sum" + FormatLabels(labels) + " " + FormatValue(series.sum) + "\n";
        lines += family.name + "_count" + FormatLabels(labels) + " " + std::to_string(series.count) + "\n";
      }
    });
  }
  for (const auto& [name, lines] : bodies) {
    if (lines.empty()) continue;
    bool histogram = is_histogram[name];
    std::string type_name = name;
    if (openmetrics && !histogram && type_name.size() > 6 && type_name.ends_with("_total"))
      type_name.resize(type_name.size() - 6);
    out += "# HELP " + type_name + " Generated from spans by tracery's metrics generator.\n";
    out += "# TYPE " + type_name + (histogram ? " histogram\n" : " counter\n");
    out += lines;
  }
  return out;
}

}  // namespace tracery::generator
