// Generator::Consume, the generator's share of the ingest path (the request's thread).
//
// It costs per span only what cannot be shared: a hash of the span name into a table local to
// the request, a histogram bucket, and for client and server spans a probe of a local pairing
// table. Everything that touches shared state (the registry and its lock, the series lookups,
// the table of half edges that wait for their other half) happens once per distinct label set
// or once per unpaired half, after the request's spans were aggregated. Fields come from the
// SpanSummary that SplitByTrace already read; only client spans are read again, for their peer
// attributes, and only their attribute keys are compared.
#include <algorithm>
#include <bit>

#include "generator/span_fields.h"
#include "otlp/wire.h"

namespace tracery::generator {
namespace {

// An index over a request's groups: open addressing on a power-of-two array at least twice
// the number of groups there can be, so it never fills; entries are never removed.
class GroupIndex {
 public:
  explicit GroupIndex(size_t max_groups)
      : mask_(std::bit_ceil(std::max<size_t>(16, max_groups * 2)) - 1), slots_(mask_ + 1, 0) {}
  // The slot of the group for which `matches(group_index)` holds, or the empty slot (0) where
  // it belongs; a non-empty slot holds group index + 1.
  template <class Matches>
  uint32_t& Find(size_t hash, const Matches& matches) {
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      uint32_t& slot = slots_[i];
      if (slot == 0 || matches(slot - 1)) return slot;
    }
  }

 private:
  size_t mask_;
  std::vector<uint32_t> slots_;
};

size_t HashOf(std::string_view s) { return std::hash<std::string_view>()(s); }
size_t Mix(size_t h, uint64_t v) { return (h ^ v) * 0x9E3779B97F4A7C15ull; }

double SecondsOf(const otlp::SpanSummary& span) {
  return span.end_unix_nano > span.start_unix_nano ? double(span.end_unix_nano - span.start_unix_nano) / 1e9 : 0;
}

size_t BucketOf(const std::vector<double>& bounds, double value) {
  return size_t(std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin());
}

// Histogram observations of a request for one series, bucketed with the family's bounds.
struct LocalHistogram {
  std::vector<uint64_t> counts;
  std::vector<Registry::Batch::BucketExemplar> exemplars;  // the latest per bucket
  double sum = 0;
  uint64_t count = 0;
  void Observe(const std::vector<double>& bounds, double value, std::string_view trace_id, std::string_view span_id) {
    if (counts.empty()) {
      counts.assign(bounds.size() + 1, 0);
      exemplars.assign(bounds.size() + 1, {});
    }
    size_t bucket = BucketOf(bounds, value);
    counts[bucket]++;
    sum += value;
    count++;
    if (!trace_id.empty()) exemplars[bucket] = {trace_id, span_id, value};
  }
  void MergeInto(Registry::Batch& batch, Series& series) const {
    for (size_t b = 0; b < counts.size() && b < series.bucket_counts.size(); ++b) {
      series.bucket_counts[b] += counts[b];
      if (!exemplars[b].trace_id.empty()) batch.SetExemplar(series, b, exemplars[b].trace_id, exemplars[b].span_id, exemplars[b].value);
    }
    series.sum += sum;
    series.count += count;
  }
};

// One span-metrics label set of a request.
struct SpanGroup {
  size_t hash;
  uint32_t service;  // the service's slot in the request
  uint8_t kind, status;
  std::string_view name;
  std::string extra;  // '\xff' + value for the status message and each dimension, when configured
  uint64_t calls = 0;
  double size = 0;
  LocalHistogram latency;
};

// One service-graph label set of a request (complete edges), and dropped halves.
enum EdgeType : uint8_t { kPlainEdge, kVirtualNode, kMessagingSystem };
const char* const kEdgeTypeNames[] = {"", "virtual_node", "messaging_system"};
struct EdgeGroup {
  size_t hash;
  std::string client, server;
  uint8_t type;
  uint64_t total = 0, failed = 0;
  LocalHistogram server_seconds, client_seconds;
};

}  // namespace

// A half edge seen in this request; services by resource index.
struct Generator::LocalHalf {
  EdgeKey key;
  bool has_client = false, has_server = false, failed = false, messaging = false, database = false,
       peer_service = false, completed = false;
  uint32_t client_resource = 0, server_resource = 0;
  std::string virtual_peer;
  double client_seconds = 0, server_seconds = 0;
  std::string_view trace_id, span_id;  // exemplar IDs (views into the request); empty: not stored
};

namespace {

// The peer of a client span (the first of `peer_attributes` it carries) and whether it has
// `db.system`: attribute keys are compared, values decoded only for keys that matter.
struct Peer {
  std::string name;  // empty: none
  bool database = false, peer_service = false;
};
void ReadPeer(std::string_view body, const std::vector<std::string>& peer_attributes, std::string& value, Peer& half) {
  ByteReader reader(body);
  otlp::WireField f, k;
  size_t best = peer_attributes.size();
  while (!reader.empty() && otlp::ReadField(reader, f)) {
    if (f.number != 9 || f.type != otlp::kLengthDelimited) continue;
    ByteReader kv(f.bytes);
    std::string_view key;
    while (!kv.empty() && otlp::ReadField(kv, k))
      if (k.number == 1) {
        key = k.bytes;
        break;
      }
    bool wants_database = !half.database && key == "db.system";
    size_t p = 0;
    while (p < best && peer_attributes[p] != key) ++p;
    if (!wants_database && p >= best) continue;
    std::string_view one_field(f.start, size_t(reader.position() - f.start));
    if (!FindAttribute(one_field, 9, key, value)) continue;
    if (wants_database) half.database = true;
    if (p < best) {
      best = p;
      half.name = value;
      half.peer_service = key == "peer.service";
    }
  }
}

// Joins a half into the entry waiting for it; false for a repeated half (dropped).
template <class Entry, class Half, class TakeClient, class TakeServer>
bool JoinHalves(Entry& entry, const Half& half, const TakeClient& take_client, const TakeServer& take_server) {
  if (half.has_client && !entry.has_client) {
    entry.has_client = true;
    take_client();
  } else if (half.has_server && !entry.has_server) {
    entry.has_server = true;
    take_server();
  } else {
    return false;
  }
  entry.failed |= half.failed;
  entry.messaging |= half.messaging;
  return true;
}

}  // namespace

// Aggregated edges of one request, merged into the registry once.
struct Generator::RequestEdges {
  explicit RequestEdges(size_t max_groups) : index(max_groups), dropped_index(max_groups) {}
  std::vector<EdgeGroup> groups, dropped;
  GroupIndex index, dropped_index;

  EdgeGroup& Group(std::vector<EdgeGroup>& list, GroupIndex& where, std::string_view client, std::string_view server,
                   uint8_t type) {
    size_t hash = Mix(Mix(HashOf(client), HashOf(server)), type);
    uint32_t& slot = where.Find(hash, [&](uint32_t g) {
      const EdgeGroup& e = list[g];
      return e.hash == hash && e.type == type && e.client == client && e.server == server;
    });
    if (slot == 0) {
      list.push_back({hash, std::string(client), std::string(server), type});
      slot = uint32_t(list.size());
    }
    return list[slot - 1];
  }
  void AddComplete(const std::vector<double>& bounds, std::string_view client, std::string_view server, bool messaging,
                   bool failed, double server_seconds, double client_seconds, std::string_view trace_id,
                   std::string_view span_id) {
    bool from_user = client == "user";
    EdgeGroup& group = Group(groups, index, client, server, messaging ? kMessagingSystem : from_user ? kVirtualNode : kPlainEdge);
    group.total++;
    group.failed += failed;
    group.server_seconds.Observe(bounds, server_seconds, trace_id, span_id);
    if (!from_user) group.client_seconds.Observe(bounds, client_seconds, trace_id, span_id);
  }
  void AddDropped(std::string_view client, std::string_view server) {
    Group(dropped, dropped_index, client, server, kPlainEdge).total++;
  }
};

std::pair<CachedLabelSet&, bool> Generator::LabelSetOf(TenantState& tenant, const Registry::Batch& batch,
                                                        std::string_view key) {
  // Cached series pointers die with a removed series; label sets refused by max_active_series
  // must not pile up either: start over in both cases.
  if (tenant.label_sets_generation != batch.generation() || tenant.label_sets.size() > kMaxCachedLabelSets) {
    tenant.label_sets.clear();
    tenant.label_sets_generation = batch.generation();
  }
  auto it = tenant.label_sets.find(key);
  if (it != tenant.label_sets.end()) return {it->second, false};
  return {tenant.label_sets.emplace(std::string(key), CachedLabelSet()).first->second, true};
}

Series* Generator::SeriesOf(Registry::Batch& batch, CachedLabelSet& set, size_t role, size_t family) {
  Series*& series = set.series[role];
  if (series == nullptr) {
    series = batch.Find(family, Registry::Key(set.label_values), set.label_values);  // null: refused
  } else {
    batch.Touch(*series);
  }
  return series;
}

void Generator::Consume(const std::string& tenant_name, const otlp::SplitRequest& split, const std::vector<bool>& accepted) {
  if (!options_.enabled() || split.spans.empty()) return;
  spans_received_.Add(split.spans.size());
  TenantState& tenant = Tenant(tenant_name);
  // The service of each resource, and one slot per distinct service name.
  std::vector<std::string> services(split.resources.size());
  std::vector<uint32_t> service_slots(split.resources.size());
  std::unordered_map<std::string_view, uint32_t> slot_of_service;
  for (size_t r = 0; r < split.resources.size(); ++r) {
    if (!FindAttribute(split.resources[r], 1, "service.name", services[r])) services[r] = "unknown_service";
    service_slots[r] = slot_of_service.try_emplace(services[r], uint32_t(r)).first->second;
  }
  if (options_.span_metrics) ConsumeSpanMetrics(tenant, split, accepted, services, service_slots);
  if (options_.service_graphs) ConsumeServiceGraph(tenant, split, accepted, services);
}

void Generator::ConsumeSpanMetrics(TenantState& tenant, const otlp::SplitRequest& split, const std::vector<bool>& accepted,
                                   const std::vector<std::string>& services, const std::vector<uint32_t>& service_slots) {
  const bool with_extra = options_.intrinsic_status_message || !options_.span_metrics_dimensions.empty();
  std::vector<SpanGroup> groups;
  GroupIndex index(split.spans.size());
  std::string extra, value;
  for (const auto& span : split.spans) {
    const std::string& service = services[span.resource_index];
    if (!options_.filter_policies.empty() && !PassesFilters(split, span, SpanBody(span.encoded), service)) continue;
    if (with_extra) ReadExtraLabels(split, span, extra, value);
    const uint32_t service_slot = service_slots[span.resource_index];
    size_t hash = Mix(HashOf(span.name), (uint64_t(service_slot) << 16) | (span.kind << 8) | span.status_code);
    if (with_extra) hash = Mix(hash, HashOf(extra));
    uint32_t& slot = index.Find(hash, [&](uint32_t g) {
      const SpanGroup& group = groups[g];
      return group.hash == hash && group.service == service_slot && group.kind == span.kind &&
             group.status == span.status_code && group.name == span.name && group.extra == extra;
    });
    if (slot == 0) {
      groups.push_back({hash, service_slot, span.kind, span.status_code, span.name, extra});
      slot = uint32_t(groups.size());
    }
    SpanGroup& group = groups[slot - 1];
    // Exemplars carry raw IDs, hex-encoded only when written out; unstored traces get none.
    bool stored = span.fragment_index < accepted.size() && accepted[span.fragment_index];
    group.calls++;
    group.size += double(span.encoded.size());
    group.latency.Observe(latency_bounds_, SecondsOf(span), stored ? split.fragments[span.fragment_index].trace_id.View() : "",
                          stored ? span.span_id : "");
  }
  if (groups.empty()) return;

  Registry::Batch batch(tenant.registry);
  std::string key;
  for (const SpanGroup& group : groups) {
    const std::string& service = services[group.service];
    key.clear();
    key += 's';
    key += service;
    key += '\xff';
    key += group.name;
    key += char('0' + group.kind);
    key += char('0' + group.status);
    key += group.extra;
    auto [set, inserted] = LabelSetOf(tenant, batch, key);
    if (inserted) {
      std::vector<std::string>& labels = set.label_values;
      if (options_.intrinsic_service) labels.push_back(service);
      if (options_.intrinsic_span_name) labels.emplace_back(group.name);
      if (options_.intrinsic_span_kind) labels.emplace_back(kKindNames[group.kind]);
      if (options_.intrinsic_status_code) labels.emplace_back(kStatusNames[group.status]);
      // The status message and the dimensions, each after a '\xff' (never in UTF-8 text).
      for (size_t at = 0; at < group.extra.size();) {
        size_t next = group.extra.find('\xff', at + 1);
        if (next == std::string::npos) next = group.extra.size();
        labels.push_back(group.extra.substr(at + 1, next - at - 1));
        at = next;
      }
    }
    if (Series* calls = SeriesOf(batch, set, 0, tenant.calls)) calls->value += double(group.calls);
    if (Series* size = SeriesOf(batch, set, 1, tenant.size)) size->value += group.size;
    if (Series* latency = SeriesOf(batch, set, 2, tenant.latency)) group.latency.MergeInto(batch, *latency);
  }
}

void Generator::ReadExtraLabels(const otlp::SplitRequest& split, const otlp::SpanSummary& span, std::string& extra,
                                std::string& value) const {
  extra.clear();
  std::string_view body = SpanBody(span.encoded);
  if (options_.intrinsic_status_message) {
    value.clear();
    ByteReader reader(body);
    otlp::WireField f, g;
    while (!reader.empty() && otlp::ReadField(reader, f)) {
      if (f.number != 15) continue;
      ByteReader status(f.bytes);
      while (!status.empty() && otlp::ReadField(status, g))
        if (g.number == 2) value.assign(g.bytes);
    }
    extra += '\xff';
    extra += value;
  }
  for (const auto& key : options_.span_metrics_dimensions) {
    value.clear();
    if (!FindAttribute(body, 9, key, value)) FindAttribute(split.resources[span.resource_index], 1, key, value);
    extra += '\xff';
    extra += value;
  }
}

void Generator::ConsumeServiceGraph(TenantState& tenant, const otlp::SplitRequest& split, const std::vector<bool>& accepted,
                                   const std::vector<std::string>& services) {
  RequestEdges edges(split.spans.size());
  std::vector<LocalHalf> halves;
  GroupIndex pairs(split.spans.size());
  std::string value;
  for (const auto& span : split.spans) {
    const bool root_server = span.kind == kServer && span.parent_span_id.empty();
    const bool client_half = span.kind == kClient || span.kind == kProducer;
    const bool server_half = (span.kind == kServer || span.kind == kConsumer) && !span.parent_span_id.empty();
    if (!root_server && !client_half && !server_half) continue;
    const bool stored = span.fragment_index < accepted.size() && accepted[span.fragment_index];
    std::string_view trace_id = stored ? split.fragments[span.fragment_index].trace_id.View() : std::string_view();
    std::string_view span_id = stored && span.span_id.size() == 8 ? span.span_id : std::string_view();
    if (span_id.empty()) trace_id = {};
    const bool failed = span.status_code == kError;
    const double seconds = SecondsOf(span);
    if (root_server) {
      // A root server span: its caller is the user, as Tempo draws it.
      edges.AddComplete(edge_bounds_, "user", services[span.resource_index], false, failed, seconds, 0, trace_id, span_id);
      continue;
    }
    LocalHalf half;
    half.key = MakeEdgeKey(split.fragments[span.fragment_index].trace_id, client_half ? span.span_id : span.parent_span_id);
    half.failed = failed;
    half.trace_id = trace_id;
    half.span_id = span_id;
    if (client_half) {
      half.has_client = true;
      half.client_resource = span.resource_index;
      half.client_seconds = seconds;
      half.messaging = span.kind == kProducer;
      Peer peer;
      ReadPeer(SpanBody(span.encoded), options_.peer_attributes, value, peer);
      half.virtual_peer = std::move(peer.name);
      half.database = peer.database;
      half.peer_service = peer.peer_service;
    } else {
      half.has_server = true;
      half.server_resource = span.resource_index;
      half.server_seconds = seconds;
      half.messaging = span.kind == kConsumer;
    }
    // Whole traces usually come in one request: most halves meet here, without a lock.
    size_t hash = EdgeKeyHash()(half.key);
    uint32_t& slot = pairs.Find(hash, [&](uint32_t h) { return halves[h].key == half.key; });
    if (slot == 0 || halves[slot - 1].completed) {
      if (slot == 0) {
        halves.push_back(std::move(half));
        slot = uint32_t(halves.size());
      } else {
        halves[slot - 1] = std::move(half);
      }
      continue;
    }
    LocalHalf& entry = halves[slot - 1];
    bool joined = JoinHalves(
        entry, half,
        [&] {
          entry.client_resource = half.client_resource;
          entry.client_seconds = half.client_seconds;
        },
        [&] {
          entry.server_resource = half.server_resource;
          entry.server_seconds = half.server_seconds;
          if (!half.trace_id.empty()) {
            entry.trace_id = half.trace_id;
            entry.span_id = half.span_id;
          }
        });
    if (!joined) continue;  // a repeated half
    entry.completed = true;
    edges.AddComplete(edge_bounds_, services[entry.client_resource], services[entry.server_resource], entry.messaging,
                      entry.failed, entry.server_seconds, entry.client_seconds, entry.trace_id, entry.span_id);
  }
  JoinWaitingHalves(tenant, halves, services, edges);
  MergeEdges(tenant, edges);
}

void Generator::JoinWaitingHalves(TenantState& tenant, std::vector<LocalHalf>& halves,
                                  const std::vector<std::string>& services, RequestEdges& edges) {
  // Halves without their other half in the request wait in the tenant's table, up to `wait`.
  auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(tenant.edges_mutex);
  for (LocalHalf& half : halves) {
    if (half.completed) continue;
    std::string_view client = half.has_client ? std::string_view(services[half.client_resource]) : std::string_view();
    std::string_view server = half.has_server ? std::string_view(services[half.server_resource]) : std::string_view();
    auto it = tenant.edges.find(half.key);
    if (it == tenant.edges.end()) {
      if (tenant.edges.size() >= options_.service_graph_max_items) {
        edges.AddDropped(client, server);
        continue;
      }
      PendingEdge& edge = tenant.edges[half.key];
      edge.created = now;
      edge.has_client = half.has_client;
      edge.has_server = half.has_server;
      edge.client_service = client;
      edge.server_service = server;
      edge.virtual_peer = std::move(half.virtual_peer);
      edge.SetIds(half.trace_id, half.span_id);
      edge.failed = half.failed;
      edge.messaging = half.messaging;
      edge.database = half.database;
      edge.peer_service = half.peer_service;
      edge.client_seconds = half.client_seconds;
      edge.server_seconds = half.server_seconds;
      continue;
    }
    PendingEdge& edge = it->second;
    bool joined = JoinHalves(
        edge, half,
        [&] {
          edge.client_service = client;
          edge.client_seconds = half.client_seconds;
        },
        [&] {
          edge.server_service = server;
          edge.server_seconds = half.server_seconds;
          if (!half.trace_id.empty()) edge.SetIds(half.trace_id, half.span_id);
        });
    if (!joined) continue;  // a repeated half
    edges.AddComplete(edge_bounds_, edge.client_service, edge.server_service, edge.messaging, edge.failed,
                      edge.server_seconds, edge.client_seconds, edge.TraceIdView(), edge.SpanIdView());
    tenant.edges.erase(it);
  }
}

void Generator::MergeEdges(TenantState& tenant, const RequestEdges& edges) {
  if (edges.groups.empty() && edges.dropped.empty()) return;
  Registry::Batch batch(tenant.registry);
  std::string key;
  for (const EdgeGroup& group : edges.groups) {
    key.clear();
    key += 'e';
    key += group.client;
    key += '\xff';
    key += group.server;
    key += '\xff';
    key += char('0' + group.type);
    auto [set, inserted] = LabelSetOf(tenant, batch, key);
    if (inserted) set.label_values = {group.client, group.server, kEdgeTypeNames[group.type]};
    if (Series* total = SeriesOf(batch, set, 0, tenant.edges_total)) total->value += double(group.total);
    if (group.failed > 0)
      if (Series* failed = SeriesOf(batch, set, 1, tenant.edges_failed)) failed->value += double(group.failed);
    if (Series* server = SeriesOf(batch, set, 2, tenant.server_seconds)) group.server_seconds.MergeInto(batch, *server);
    if (group.client_seconds.count > 0)
      if (Series* client = SeriesOf(batch, set, 3, tenant.client_seconds)) group.client_seconds.MergeInto(batch, *client);
  }
  for (const EdgeGroup& group : edges.dropped) {
    key.clear();
    key += 'd';
    key += group.client;
    key += '\xff';
    key += group.server;
    auto [set, inserted] = LabelSetOf(tenant, batch, key);
    if (inserted) set.label_values = {group.client, group.server};
    if (Series* dropped = SeriesOf(batch, set, 0, tenant.dropped)) dropped->value += double(group.total);
  }
}

}  // namespace tracery::generator
