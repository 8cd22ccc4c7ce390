// Generator::Consume, the generator's share of the ingest path (the request's thread).
//
// It costs per span only what cannot be shared: a hash of the span name into a table local to
// the request, a histogram bucket, and for client and server spans a probe of a local pairing
// table. Everything that touches shared state (the registry and its lock, the series lookups,
// the table of half edges that wait for their other half) happens once per distinct label set
// or once per unpaired half, after the request's spans were aggregated. Fields come from the
// SpanSummary that SplitByTrace already read; a span's bytes are read again only for the
// configured dimensions or status message, and for the peer attributes of a client half that
// has to wait for its server half.
#include <algorithm>
#include <bit>
#include <cstring>

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

// Request-local tables only: a fast hash of short strings (names, services), seeded per
// process so that crafted names cannot make one request's table degrade.
size_t HashOf(std::string_view s, uint64_t seed) {
  uint64_t h = seed ^ (s.size() * 0x9E3779B97F4A7C15ull);
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t chunk;
    std::memcpy(&chunk, s.data() + i, 8);
    h = (h ^ chunk) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
  }
  uint64_t tail = 0;
  std::memcpy(&tail, s.data() + i, s.size() - i);
  h = (h ^ tail) * 0xC4CEB9FE1A85EC53ull;
  return size_t(h ^ (h >> 29));
}
size_t Mix(size_t h, uint64_t v) {
  uint64_t x = (h ^ v) * 0x9E3779B97F4A7C15ull;
  return size_t(x ^ (x >> 32));
}

double SecondsOf(const otlp::SpanSummary& span) {
  return span.end_unix_nano > span.start_unix_nano ? double(span.end_unix_nano - span.start_unix_nano) / 1e9 : 0;
}

constexpr uint32_t kNoExemplar = UINT32_MAX;

// A request's histogram observations, one row of buckets per label set, in flat arrays (no
// allocation per label set). A bucket's exemplar is an index into the caller's list of
// exemplars (the latest observed with IDs), resolved when merged.
class LocalHistograms {
 public:
  explicit LocalHistograms(const std::vector<double>& bounds) : bounds_(bounds), width_(bounds.size() + 1) {}
  uint32_t AddRow() {
    size_t row = sums_.size();
    if (counts_.size() < (row + 1) * width_) {  // rows past the last one are zero and without exemplars
      counts_.resize(std::max(counts_.size() * 2, 8 * width_), 0);
      exemplars_.resize(counts_.size(), kNoExemplar);
    }
    sums_.push_back(0);
    totals_.push_back(0);
    return uint32_t(row);
  }
  void Observe(uint32_t row, double value, uint32_t exemplar) {
    size_t bucket = size_t(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
    counts_[row * width_ + bucket]++;
    sums_[row] += value;
    totals_[row]++;
    if (exemplar != kNoExemplar) exemplars_[row * width_ + bucket] = exemplar;
  }
  uint64_t count(uint32_t row) const { return totals_[row]; }
  // `exemplar_of(index, trace_id, span_id, value)` fills in an exemplar of the caller's list.
  template <class ExemplarOf>
  void MergeInto(uint32_t row, Registry::Batch& batch, Series& series, const ExemplarOf& exemplar_of) const {
    for (size_t b = 0; b < width_ && b < series.bucket_counts.size(); ++b) {
      series.bucket_counts[b] += counts_[row * width_ + b];
      uint32_t e = exemplars_[row * width_ + b];
      if (e == kNoExemplar) continue;
      std::string_view trace_id, span_id;
      double value = 0;
      exemplar_of(e, trace_id, span_id, value);
      batch.SetExemplar(series, b, trace_id, span_id, value);
    }
    series.sum += sums_[row];
    series.count += totals_[row];
  }

 private:
  const std::vector<double>& bounds_;
  size_t width_;
  std::vector<uint64_t> counts_;
  std::vector<uint32_t> exemplars_;
  std::vector<double> sums_;
  std::vector<uint64_t> totals_;
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
  uint32_t latency_row;
};

// One service-graph label set of a request (complete edges), and dropped halves.
enum EdgeType : uint8_t { kPlainEdge, kVirtualNode, kMessagingSystem };
const char* const kEdgeTypeNames[] = {"", "virtual_node", "messaging_system"};
constexpr uint32_t kNamed = UINT32_MAX, kUser = UINT32_MAX - 1;
struct EdgeGroup {
  size_t hash;
  // Services by their slot in the request (kUser: the virtual node "user"), or by name
  // (kNamed) for edges completed from the tenant's table of waiting halves.
  uint32_t client_slot, server_slot;
  std::string client, server;
  uint8_t type;
  uint64_t total = 0, failed = 0;
  uint32_t server_row = 0, client_row = 0;
};

// The IDs of an edge's exemplar, copied: a waiting half leaves the shared table once paired.
struct EdgeExemplar {
  std::array<char, 16> trace_id;
  std::array<char, 8> span_id;
  double value;
};

}  // namespace

// A half edge seen in this request; services by resource index, the span by its index (its
// peer attributes are read only if it has to wait for its other half).
struct Generator::LocalHalf {
  EdgeKey key;
  uint64_t hash = 0;  // of the key, seeded
  bool has_client = false, has_server = false, failed = false, messaging = false, completed = false;
  uint32_t client_resource = 0, server_resource = 0, span_index = 0;
  double client_seconds = 0, server_seconds = 0;
  std::string_view trace_id, span_id;  // exemplar IDs (views into the request); empty: not stored
};

namespace {

// The key of an encoded KeyValue (field 1), by the common one-byte tag and length when it is
// first, else by reading its fields.
std::string_view KeyOf(std::string_view key_value) {
  if (key_value.size() >= 2 && key_value[0] == 0x0A && uint8_t(key_value[1]) < 0x80 &&
      size_t(uint8_t(key_value[1])) + 2 <= key_value.size())
    return key_value.substr(2, uint8_t(key_value[1]));
  ByteReader kv(key_value);
  otlp::WireField k;
  while (!kv.empty() && otlp::ReadField(kv, k))
    if (k.number == 1) return k.bytes;
  return {};
}

// The peer of a client span (the first of `peer_attributes` it carries) and whether it has
// `db.system`. Runs on every client half that waits (under the tenant's edge lock), so it
// only looks at attribute keys, and at a key's bytes only when its length is one of the
// wanted keys' lengths; values of the few keys that match are decoded.
struct Peer {
  std::string name;  // empty: none
  bool database = false, peer_service = false;
};
void ReadPeer(std::string_view body, const std::vector<std::string>& peer_attributes, uint64_t wanted_lengths,
              std::string& value, Peer& peer) {
  ByteReader reader(body);
  otlp::WireField f;
  size_t best = peer_attributes.size();
  while (!reader.empty() && otlp::ReadField(reader, f)) {
    if (f.number != 9 || f.type != otlp::kLengthDelimited) continue;
    std::string_view key = KeyOf(f.bytes);
    bool may_match = key.size() < 64 ? ((wanted_lengths >> key.size()) & 1) != 0 : wanted_lengths == ~uint64_t(0);
    if (!may_match) continue;
    bool wants_database = !peer.database && key == "db.system";
    size_t p = 0;
    while (p < best && peer_attributes[p] != key) ++p;
    if (!wants_database && p >= best) continue;
    std::string_view one_field(f.start, size_t(reader.position() - f.start));
    if (!FindAttribute(one_field, 9, key, value)) continue;
    if (wants_database) peer.database = true;
    if (p < best) {
      best = p;
      peer.name = value;
      peer.peer_service = key == "peer.service";
    }
  }
}

// Bit n set: some key of `keys` (or db.system) is n bytes long (keys of 64 bytes or more are
// compared always).
uint64_t WantedLengths(const std::vector<std::string>& keys) {
  uint64_t lengths = uint64_t(1) << std::string_view("db.system").size();
  for (const auto& key : keys) lengths |= key.size() < 64 ? uint64_t(1) << key.size() : ~uint64_t(0);
  return lengths;
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
  RequestEdges(size_t max_groups, const std::vector<double>& bounds, uint64_t seed)
      : index(max_groups), dropped_index(max_groups), server_seconds(bounds), client_seconds(bounds), hash_seed(seed) {}
  std::vector<EdgeGroup> groups, dropped;
  GroupIndex index, dropped_index;
  LocalHistograms server_seconds, client_seconds;
  std::vector<EdgeExemplar> exemplars;
  uint64_t hash_seed;

  EdgeGroup& NewGroup(std::vector<EdgeGroup>& list, uint32_t& slot, EdgeGroup group, bool with_rows) {
    if (with_rows) {
      group.server_row = server_seconds.AddRow();
      group.client_row = client_seconds.AddRow();
    }
    list.push_back(std::move(group));
    slot = uint32_t(list.size());
    return list.back();
  }
  EdgeGroup& Group(std::vector<EdgeGroup>& list, GroupIndex& where, uint32_t client_slot, uint32_t server_slot,
                   uint8_t type, bool with_rows) {
    size_t hash = Mix(Mix(client_slot, uint64_t(server_slot) << 8 | type), hash_seed);
    uint32_t& slot = where.Find(hash, [&](uint32_t g) {
      const EdgeGroup& e = list[g];
      return e.hash == hash && e.client_slot == client_slot && e.server_slot == server_slot && e.type == type;
    });
    if (slot != 0) return list[slot - 1];
    return NewGroup(list, slot, {hash, client_slot, server_slot, {}, {}, type}, with_rows);
  }
  EdgeGroup& Group(std::vector<EdgeGroup>& list, GroupIndex& where, std::string_view client, std::string_view server,
                   uint8_t type, bool with_rows) {
    size_t hash = Mix(Mix(HashOf(client, hash_seed), HashOf(server, hash_seed)), type);
    uint32_t& slot = where.Find(hash, [&](uint32_t g) {
      const EdgeGroup& e = list[g];
      return e.hash == hash && e.client_slot == kNamed && e.type == type && e.client == client && e.server == server;
    });
    if (slot != 0) return list[slot - 1];
    return NewGroup(list, slot, {hash, kNamed, kNamed, std::string(client), std::string(server), type}, with_rows);
  }
  // A complete edge; `Client` and `Server` are both service slots or both names.
  template <class Service>
  void AddComplete(Service client, Service server, bool from_user, bool messaging, bool failed, double server_value,
                   double client_value, std::string_view trace_id, std::string_view span_id) {
    EdgeGroup& group =
        Group(groups, index, client, server, messaging ? kMessagingSystem : from_user ? kVirtualNode : kPlainEdge, true);
    group.total++;
    group.failed += failed;
    uint32_t server_exemplar = kNoExemplar, client_exemplar = kNoExemplar;
    if (trace_id.size() == 16 && span_id.size() == 8) {
      EdgeExemplar e;
      std::memcpy(e.trace_id.data(), trace_id.data(), 16);
      std::memcpy(e.span_id.data(), span_id.data(), 8);
      e.value = server_value;
      server_exemplar = uint32_t(exemplars.size());
      exemplars.push_back(e);
      if (!from_user) {
        e.value = client_value;
        client_exemplar = uint32_t(exemplars.size());
        exemplars.push_back(e);
      }
    }
    server_seconds.Observe(group.server_row, server_value, server_exemplar);
    if (!from_user) client_seconds.Observe(group.client_row, client_value, client_exemplar);
  }
  void AddDropped(std::string_view client, std::string_view server) {
    Group(dropped, dropped_index, client, server, kPlainEdge, false).total++;
  }
  void ExemplarOf(uint32_t index, std::string_view& trace_id, std::string_view& span_id, double& value) const {
    const EdgeExemplar& e = exemplars[index];
    trace_id = std::string_view(e.trace_id.data(), 16);
    span_id = std::string_view(e.span_id.data(), 8);
    value = e.value;
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
  if (split.spans.empty()) return;
  bool span_metrics = options_.span_metrics, service_graphs = options_.service_graphs;
  uint64_t max_active_series = options_.max_active_series;
  if (options_.limits) {
    TenantLimits own = options_.limits->For(tenant_name);
    if (own.generator_processors_set) {
      span_metrics = own.generator_span_metrics;
      service_graphs = own.generator_service_graphs;
    }
    if (own.generator_max_active_series > 0) max_active_series = own.generator_max_active_series;
  }
  if (!span_metrics && !service_graphs) return;
  spans_received_.Add(split.spans.size());
  std::shared_ptr<TenantState> held = Tenant(tenant_name);
  TenantState& tenant = *held;
  tenant.registry.SetMaxActiveSeries(max_active_series);
  // The service of each resource, and one slot per distinct service name.
  std::vector<std::string> services(split.resources.size());
  std::vector<uint32_t> service_slots(split.resources.size());
  GroupIndex slot_of_service(split.resources.size());
  for (size_t r = 0; r < split.resources.size(); ++r) {
    if (!FindAttribute(split.resources[r], 1, "service.name", services[r])) services[r] = "unknown_service";
    uint32_t& slot = slot_of_service.Find(HashOf(services[r], hash_seed_), [&](uint32_t first) { return services[first] == services[r]; });
    if (slot == 0) slot = uint32_t(r) + 1;
    service_slots[r] = slot - 1;
  }
  if (span_metrics) ConsumeSpanMetrics(tenant, split, accepted, services, service_slots);
  if (service_graphs) ConsumeServiceGraph(tenant, split, accepted, services, service_slots);
}

void Generator::ConsumeSpanMetrics(TenantState& tenant, const otlp::SplitRequest& split, const std::vector<bool>& accepted,
                                   const std::vector<std::string>& services, const std::vector<uint32_t>& service_slots) {
  const bool with_extra = options_.intrinsic_status_message || !options_.span_metrics_dimensions.empty();
  std::vector<SpanGroup> groups;
  GroupIndex index(split.spans.size());
  LocalHistograms latency(latency_bounds_);
  std::string extra, value;
  for (const auto& span : split.spans) {
    const std::string& service = services[span.resource_index];
    if (!options_.filter_policies.empty() && !PassesFilters(split, span, SpanBody(span.encoded), service)) continue;
    if (with_extra) ReadExtraLabels(split, span, extra, value);
    const uint32_t service_slot = service_slots[span.resource_index];
    size_t hash = Mix(HashOf(span.name, hash_seed_), (uint64_t(service_slot) << 16) | (span.kind << 8) | span.status_code);
    if (with_extra) hash = Mix(hash, HashOf(extra, hash_seed_));
    uint32_t& slot = index.Find(hash, [&](uint32_t g) {
      const SpanGroup& group = groups[g];
      return group.hash == hash && group.service == service_slot && group.kind == span.kind &&
             group.status == span.status_code && group.name == span.name && group.extra == extra;
    });
    if (slot == 0) {
      groups.push_back({hash, service_slot, span.kind, span.status_code, span.name, extra, 0, 0, latency.AddRow()});
      slot = uint32_t(groups.size());
    }
    SpanGroup& group = groups[slot - 1];
    // Exemplars carry raw IDs, hex-encoded only when written out; unstored traces get none.
    bool stored = span.fragment_index < accepted.size() && accepted[span.fragment_index];
    group.calls++;
    group.size += double(span.encoded.size());
    latency.Observe(group.latency_row, SecondsOf(span), stored ? uint32_t(&span - split.spans.data()) : kNoExemplar);
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
    if (Series* series = SeriesOf(batch, set, 2, tenant.latency)) {
      latency.MergeInto(group.latency_row, batch, *series, [&](uint32_t s, std::string_view& trace_id, std::string_view& span_id, double& value) {
        const otlp::SpanSummary& span = split.spans[s];
        trace_id = split.fragments[span.fragment_index].trace_id.View();
        span_id = span.span_id;
        value = SecondsOf(span);
      });
    }
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
                                   const std::vector<std::string>& services, const std::vector<uint32_t>& service_slots) {
  RequestEdges edges(split.spans.size(), edge_bounds_, hash_seed_);
  std::vector<LocalHalf> halves;
  halves.reserve(split.spans.size());
  GroupIndex pairs(split.spans.size());
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
      edges.AddComplete(kUser, service_slots[span.resource_index], true, false, failed, seconds, 0, trace_id, span_id);
      continue;
    }
    LocalHalf half;
    half.key = MakeEdgeKey(split.fragments[span.fragment_index].trace_id, client_half ? span.span_id : span.parent_span_id);
    half.failed = failed;
    half.span_index = uint32_t(&span - split.spans.data());
    half.trace_id = trace_id;
    half.span_id = span_id;
    if (client_half) {
      half.has_client = true;
      half.client_resource = span.resource_index;
      half.client_seconds = seconds;
      half.messaging = span.kind == kProducer;
    } else {
      half.has_server = true;
      half.server_resource = span.resource_index;
      half.server_seconds = seconds;
      half.messaging = span.kind == kConsumer;
    }
    // Whole traces usually come in one request: most halves meet here, without a lock.
    half.hash = HashOf(half.key, hash_seed_);
    uint32_t& slot = pairs.Find(half.hash, [&](uint32_t h) { return halves[h].hash == half.hash && halves[h].key == half.key; });
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
    edges.AddComplete(service_slots[entry.client_resource], service_slots[entry.server_resource],
                      services[entry.client_resource] == "user", entry.messaging,
                      entry.failed, entry.server_seconds, entry.client_seconds, entry.trace_id, entry.span_id);
  }
  JoinWaitingHalves(tenant, split, halves, services, edges);
  MergeEdges(tenant, services, edges);
}

void Generator::JoinWaitingHalves(TenantState& tenant, const otlp::SplitRequest& split, std::vector<LocalHalf>& halves,
                                  const std::vector<std::string>& services, RequestEdges& edges) {
  // Halves without their other half in the request wait in the tenant's table, up to `wait`.
  auto now = std::chrono::steady_clock::now();
  const uint64_t wanted_lengths = WantedLengths(options_.peer_attributes);
  std::string value;
  std::lock_guard lock(tenant.edges_mutex);
  for (LocalHalf& half : halves) {
    if (half.completed) continue;
    std::string_view client = half.has_client ? std::string_view(services[half.client_resource]) : std::string_view();
    std::string_view server = half.has_server ? std::string_view(services[half.server_resource]) : std::string_view();
    PendingEdge* waiting = tenant.edges.Find(half.key, half.hash);
    if (waiting == nullptr) {
      if (tenant.edges.size() >= options_.service_graph_max_items) {
        edges.AddDropped(client, server);
        continue;
      }
      PendingEdge& edge = tenant.edges.Insert(half.key, half.hash);
      edge = PendingEdge();
      edge.created = now;
      edge.has_client = half.has_client;
      edge.has_server = half.has_server;
      edge.client_service = client;
      edge.server_service = server;
      if (half.has_client) {
        // Should it expire alone, a client half becomes an edge to its peer (a database...).
        Peer peer;
        ReadPeer(SpanBody(split.spans[half.span_index].encoded), options_.peer_attributes, wanted_lengths, value, peer);
        edge.virtual_peer = std::move(peer.name);
        edge.database = peer.database;
        edge.peer_service = peer.peer_service;
      }
      edge.SetIds(half.trace_id, half.span_id);
      edge.failed = half.failed;
      edge.messaging = half.messaging;
      edge.client_seconds = half.client_seconds;
      edge.server_seconds = half.server_seconds;
      continue;
    }
    PendingEdge& edge = *waiting;
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
    edges.AddComplete(std::string_view(edge.client_service), std::string_view(edge.server_service),
                      edge.client_service == "user", edge.messaging, edge.failed, edge.server_seconds,
                      edge.client_seconds, edge.TraceIdView(), edge.SpanIdView());
    tenant.edges.Erase(half.key, half.hash);
  }
}

void Generator::MergeEdges(TenantState& tenant, const std::vector<std::string>& services, const RequestEdges& edges) {
  if (edges.groups.empty() && edges.dropped.empty()) return;
  Registry::Batch batch(tenant.registry);
  std::string key;
  auto name_of = [&](uint32_t slot, const std::string& name) -> std::string_view {
    return slot == kNamed ? std::string_view(name) : slot == kUser ? std::string_view("user") : std::string_view(services[slot]);
  };
  for (const EdgeGroup& group : edges.groups) {
    std::string_view client = name_of(group.client_slot, group.client), server = name_of(group.server_slot, group.server);
    key.clear();
    key += 'e';
    key += client;
    key += '\xff';
    key += server;
    key += '\xff';
    key += char('0' + group.type);
    auto [set, inserted] = LabelSetOf(tenant, batch, key);
    if (inserted) set.label_values = {std::string(client), std::string(server), kEdgeTypeNames[group.type]};
    if (Series* total = SeriesOf(batch, set, 0, tenant.edges_total)) total->value += double(group.total);
    if (group.failed > 0)
      if (Series* failed = SeriesOf(batch, set, 1, tenant.edges_failed)) failed->value += double(group.failed);
    auto exemplar_of = [&](uint32_t e, std::string_view& trace_id, std::string_view& span_id, double& value) {
      edges.ExemplarOf(e, trace_id, span_id, value);
    };
    if (Series* server = SeriesOf(batch, set, 2, tenant.server_seconds))
      edges.server_seconds.MergeInto(group.server_row, batch, *server, exemplar_of);
    if (edges.client_seconds.count(group.client_row) > 0)
      if (Series* client = SeriesOf(batch, set, 3, tenant.client_seconds))
        edges.client_seconds.MergeInto(group.client_row, batch, *client, exemplar_of);
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
