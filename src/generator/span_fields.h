// Private to the generator: reading the few fields it needs from a span's encoded bytes, and
// the state a tenant keeps (shared by generator.cpp and consume.cpp).
#pragma once

#include <array>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <xxhash.h>

#include "common/ids.h"
#include "generator/edge_table.h"
#include "generator/generator.h"
#include "generator/registry.h"

namespace tracery::generator {

inline constexpr const char* kKindNames[] = {"SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
                                             "SPAN_KIND_CLIENT",      "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"};
inline constexpr const char* kStatusNames[] = {"STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"};
inline constexpr uint8_t kServer = 2, kClient = 3, kProducer = 4, kConsumer = 5, kError = 2;

// The value of an attribute as label text, from a run of encoded KeyValue fields (field
// `attributes_field` of the enclosing message).
bool FindAttribute(std::string_view encoded_message, uint32_t attributes_field, std::string_view key, std::string& out);

// The body of a span field as SpanSummary::encoded holds it (tag and length included).
std::string_view SpanBody(std::string_view field);

// Where a half edge waits: the trace and the client's span ID (the server's parent).
struct EdgeKey {
  TraceId trace;
  uint64_t span = 0;
  bool operator==(const EdgeKey&) const = default;
};
static_assert(sizeof(EdgeKey) == 24, "EdgeKey is hashed as its bytes");
// Seeded: trace and span IDs come from the network, and the tenant's table lives long.
inline uint64_t HashOf(const EdgeKey& key, uint64_t seed) { return XXH3_64bits_withSeed(&key, sizeof key, seed); }
inline EdgeKey MakeEdgeKey(const TraceId& trace, std::string_view span_id) {
  EdgeKey key{trace, 0};
  std::memcpy(&key.span, span_id.data(), std::min<size_t>(8, span_id.size()));
  return key;
}

struct Generator::PendingEdge {
  std::chrono::steady_clock::time_point created;
  bool has_client = false, has_server = false;
  std::string client_service, server_service, virtual_peer;
  // The exemplar's IDs, raw (no allocation: fixed arrays); has_ids false when not stored.
  bool has_ids = false;
  std::array<char, 16> trace_id{};
  std::array<char, 8> span_id{};
  std::string_view TraceIdView() const { return has_ids ? std::string_view(trace_id.data(), 16) : std::string_view(); }
  std::string_view SpanIdView() const { return has_ids ? std::string_view(span_id.data(), 8) : std::string_view(); }
  void SetIds(std::string_view trace, std::string_view span) {
    has_ids = trace.size() == 16 && span.size() == 8;
    if (!has_ids) return;
    std::memcpy(trace_id.data(), trace.data(), 16);
    std::memcpy(span_id.data(), span.data(), 8);
  }
  bool failed = false, messaging = false, database = false, peer_service = false;
  double client_seconds = 0, server_seconds = 0;
};

// Lookups by std::string_view in maps keyed by std::string, without building a string.
struct StringViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};

// The registry series of one label set, by role (span metrics: calls, size, latency; edges:
// total, failed, server seconds, client seconds), so that a request's aggregates reach their
// series without building label vectors and keys. Touched only under the registry lock (while
// a Registry::Batch is held); valid while the registry's generation is unchanged.
struct CachedLabelSet {
  std::vector<std::string> label_values;
  std::array<Series*, 4> series{};
};

struct Generator::TenantState {
  explicit TenantState(const Options& o) : registry(o.max_active_series, o.stale_duration) {}
  Registry registry;
  size_t calls = 0, latency = 0, size = 0;
  size_t edges_total = 0, edges_failed = 0, server_seconds = 0, client_seconds = 0, unpaired = 0, dropped = 0;
  // Guarded by the registry's lock (see CachedLabelSet).
  std::unordered_map<std::string, CachedLabelSet, StringViewHash, std::equal_to<>> label_sets;
  uint64_t label_sets_generation = 0;
  std::mutex edges_mutex;
  EdgeTable<EdgeKey, PendingEdge> edges;  // by trace ID and client span ID
  std::chrono::steady_clock::time_point last_used;  // guarded by the generator's tenants lock
};

}  // namespace tracery::generator
