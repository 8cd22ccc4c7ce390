// Unit tests of the block format: write thousands of varied traces through the local object
// store, read every one back by ID, and check the Bloom filters, the meta, corruption handling,
// format 2's dedicated columns against format 1, and object-name safety.
#include "block/block.h"

#include <gtest/gtest.h>

#include "common/temp_dir_for_tests.h"

#include <re2/re2.h>
#include <zstd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <tuple>

#include "backend/object_store.h"
#include "block/bloom.h"
#include "block/row_group_internal.h"
#include "common/coding.h"
#include "common/crc32c.h"
#include "otlp/wire.h"

namespace tracery::block {
namespace {

namespace fs = std::filesystem;
using otlp::AnyValue;


// ---- generating varied traces ---------------------------------------------------------------

class TraceGenerator {
 public:
  explicit TraceGenerator(uint32_t seed) : rng_(seed) {
    for (int r = 0; r < 5; ++r) {
      otlp::ResourceSpans rs;
      rs.resource.attributes.push_back({"service.name", Str("service-" + std::to_string(r))});
      if (r % 2 == 0) rs.resource.attributes.push_back({"host.id", Int(r * 1000 - 3)});
      if (r == 3) rs.resource.attributes.push_back({"deployment", Value(3)});
      if (r == 4) rs.resource.attributes.clear();  // a resource without service.name
      rs.resource.dropped_attributes_count = uint32_t(r == 1);
      if (r < 2) rs.schema_url = "https://opentelemetry.io/schemas/1.2" + std::to_string(r);
      resources_.push_back(std::move(rs));
    }
    for (int s = 0; s < 4; ++s) {
      otlp::ScopeSpans ss;
      ss.scope.name = s == 3 ? "" : "scope-" + std::to_string(s);
      if (s % 2) ss.scope.version = "1." + std::to_string(s);
      if (s == 2) ss.scope.attributes.push_back({"scope.attr", Value(2)});
      ss.scope.dropped_attributes_count = uint32_t(s == 1);
      if (s == 0) ss.schema_url = "scope-schema";
      scopes_.push_back(std::move(ss));
    }
  }

  std::string RandomBytes(size_t n) {
    std::string out(n, '\0');
    for (auto& c : out) c = char(rng_());
    out[0] |= 1;  // never all zero
    return out;
  }

  static AnyValue Str(std::string s) {
    AnyValue v;
    v.type = AnyValue::Type::kString;
    v.string_value = std::move(s);
    return v;
  }
  static AnyValue Int(int64_t i) {
    AnyValue v;
    v.type = AnyValue::Type::kInt;
    v.int_value = i;
    return v;
  }

  // A value of a random type; `depth` bounds the nesting of arrays and lists.
  AnyValue Value(int depth) {
    AnyValue v;
    switch (rng_() % 9) {
      case 0: v = Str(words_[rng_() % 6] + std::to_string(rng_() % 50)); break;
      case 1: v.type = AnyValue::Type::kBool; v.bool_value = rng_() % 2; break;
      case 2: v = Int(int64_t(rng_()) - int64_t(rng_()) * 4096); break;
      case 3: v = Int(rng_() % 2 ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max()); break;
      case 4: v.type = AnyValue::Type::kDouble; v.double_value = double(int(rng_() % 20000) - 10000) / 64.0; break;
      case 5: v.type = AnyValue::Type::kBytes; v.string_value = RandomBytes(1 + rng_() % 12); break;
      case 6:
        v.type = AnyValue::Type::kArray;
        if (depth > 0)
          for (int i = 0, n = int(rng_() % 4); i < n; ++i) v.array_values.push_back(Value(depth - 1));
        break;
      case 7:
        v.type = AnyValue::Type::kKvList;
        if (depth > 0)
          for (int i = 0, n = int(rng_() % 3); i < n; ++i) v.kvlist_values.push_back({"k" + std::to_string(i), Value(depth - 1)});
        break;
      default: break;  // empty
    }
    return v;
  }

  otlp::Attributes Attributes(int max) {
    otlp::Attributes out;
    for (int i = 0, n = int(rng_() % uint32_t(max + 1)); i < n; ++i)
      out.push_back({keys_[rng_() % 8], Value(2)});
    return out;
  }

  otlp::TracesData Trace(const TraceId& id, uint64_t base_time) {
    otlp::TracesData trace;
    std::vector<std::string> ids;
    std::vector<otlp::Span*> all;
    int resource_count = 1 + int(rng_() % 3);
    int span_count = 1 + int(rng_() % 8);
    std::vector<std::pair<size_t, size_t>> groups;  // resource, scope slots in `trace`
    for (int r = 0; r < resource_count; ++r) {
      otlp::ResourceSpans rs = resources_[rng_() % resources_.size()];
      int scope_count = 1 + int(rng_() % 2);
      for (int s = 0; s < scope_count; ++s) rs.scope_spans.push_back(scopes_[rng_() % scopes_.size()]);
      trace.resource_spans.push_back(std::move(rs));
    }
    for (size_t r = 0; r < trace.resource_spans.size(); ++r)
      for (size_t s = 0; s < trace.resource_spans[r].scope_spans.size(); ++s) groups.emplace_back(r, s);
    std::vector<std::tuple<size_t, size_t, otlp::Span>> made;
    for (int i = 0; i < span_count; ++i) {
      otlp::Span span;
      span.trace_id.assign(id.View());
      span.span_id = RandomBytes(8);
      if (i > 0) {
        uint32_t roll = rng_() % 10;
        if (roll == 0) span.parent_span_id = RandomBytes(8);  // parent not in this trace
        else span.parent_span_id = ids[rng_() % ids.size()];
      }
      ids.push_back(span.span_id);
      if (rng_() % 4 == 0) span.trace_state = "vendor=" + std::to_string(rng_() % 5);
      span.flags = rng_() % 3 == 0 ? 0x101 : 0;
      span.name = "operation-" + std::to_string(rng_() % 40);
      span.kind = otlp::SpanKind(rng_() % 6);
      span.start_time_unix_nano = base_time + rng_() % 1'000'000;
      span.end_time_unix_nano = span.start_time_unix_nano + rng_() % 5'000'000;
      if (rng_() % 50 == 0) span.end_time_unix_nano = span.start_time_unix_nano - 7;  // clock skew
      span.attributes = Attributes(6);
      span.dropped_attributes_count = rng_() % 5 == 0 ? 3 : 0;
      for (int e = 0, n = int(rng_() % 3); e < n; ++e) {
        otlp::Event event;
        event.time_unix_nano = e == 1 ? span.start_time_unix_nano - 100 : span.start_time_unix_nano + rng_() % 1000;
        event.name = e == 0 ? "exception" : "";
        event.attributes = Attributes(3);
        event.dropped_attributes_count = uint32_t(e);
        span.events.push_back(std::move(event));
      }
      span.dropped_events_count = rng_() % 7 == 0 ? 1 : 0;
      for (int l = 0, n = int(rng_() % 3); l < n; ++l) {
        otlp::Link link;
        link.trace_id = RandomBytes(16);
        link.span_id = RandomBytes(8);
        if (l == 1) link.trace_state = "linked=" + std::to_string(l);
        link.attributes = Attributes(2);
        link.dropped_attributes_count = uint32_t(l);
        link.flags = uint32_t(l);
        span.links.push_back(std::move(link));
      }
      span.dropped_links_count = rng_() % 9 == 0 ? 2 : 0;
      span.status_code = otlp::StatusCode(rng_() % 3);
      if (span.status_code == otlp::StatusCode::kError) span.status_message = "error: " + std::to_string(rng_() % 10);
      auto [r, s] = groups[rng_() % groups.size()];
      made.emplace_back(r, s, std::move(span));
    }
    for (auto& [r, s, span] : made) trace.resource_spans[r].scope_spans[s].spans.push_back(span);
    // Repeats: the same span delivered twice, in its own group or another one.
    if (rng_() % 5 == 0) {
      const auto& [r, s, span] = made[rng_() % made.size()];
      auto [tr, ts] = rng_() % 2 ? std::make_pair(r, s) : groups[rng_() % groups.size()];
      trace.resource_spans[tr].scope_spans[ts].spans.push_back(span);
    }
    return trace;
  }

 private:
  std::mt19937 rng_;
  std::vector<otlp::ResourceSpans> resources_;
  std::vector<otlp::ScopeSpans> scopes_;
  const std::string words_[6] = {"GET", "POST", "/api/v1/users", "", "ünïcødé", "with \"quotes\""};
  const std::string keys_[8] = {"http.method", "http.status_code", "db.statement", "peer.service",
                                "user.id", "retry", "payload", "flag"};
};

struct GeneratedBlock {
  std::vector<TraceId> ids;                    // sorted
  std::map<TraceId, otlp::TracesData> traces;  // as generated (with repeats)
  std::vector<std::string> encoded;            // kept alive for the TraceInputs
  std::vector<TraceInput> inputs;
};

// `reshape`, when given, changes each generated trace before it is encoded.
GeneratedBlock Generate(int count, uint32_t seed, const std::function<void(otlp::TracesData&)>& reshape = nullptr) {
  GeneratedBlock block;
  TraceGenerator gen(seed);
  std::mt19937 rng(seed * 7 + 1);
  for (int i = 0; i < count; ++i) {
    std::string raw = gen.RandomBytes(16);
    if (i == 0) raw = std::string(15, '\0') + "\x01";  // the smallest possible non-zero ID
    if (i == 1) raw = std::string(16, '\xff');
    TraceId id = TraceId::FromBytes(raw);
    if (block.traces.count(id)) continue;
    uint64_t base = 1'700'000'000'000'000'000ull + uint64_t(rng() % 3600) * 1'000'000'000ull;
    block.traces[id] = gen.Trace(id, base);
    if (reshape) reshape(block.traces[id]);
    block.ids.push_back(id);
  }
  std::sort(block.ids.begin(), block.ids.end());
  block.encoded.reserve(block.ids.size());
  for (const TraceId& id : block.ids) {
    block.encoded.push_back(otlp::EncodeTracesData(block.traces[id]));
    block.inputs.push_back({id, block.encoded.back()});
  }
  return block;
}

// A span with the resource and scope it belongs to, for comparing traces as sets.
struct PlacedSpan {
  otlp::Resource resource;
  std::string resource_schema;
  otlp::Scope scope;
  std::string scope_schema;
  otlp::Span span;
};

std::map<std::pair<std::string, int>, PlacedSpan> SpanSet(const otlp::TracesData& trace) {
  std::map<std::pair<std::string, int>, PlacedSpan> out;
  for (const auto& rs : trace.resource_spans)
    for (const auto& ss : rs.scope_spans)
      for (const auto& span : ss.spans) {
        auto key = std::make_pair(span.span_id, int(span.kind));
        EXPECT_EQ(out.count(key), 0u) << "a span appears twice";
        out[key] = {rs.resource, rs.schema_url, ss.scope, ss.schema_url, span};
      }
  return out;
}

void ExpectSameTrace(const otlp::TracesData& want_raw, const otlp::TracesData& got, const std::string& what) {
  otlp::TracesData want = want_raw;
  DeduplicateSpans(want);
  auto want_set = SpanSet(want);
  auto got_set = SpanSet(got);
  ASSERT_EQ(want_set.size(), got_set.size()) << what;
  for (const auto& [key, w] : want_set) {
    auto it = got_set.find(key);
    ASSERT_NE(it, got_set.end()) << what << ": span " << HexEncode(key.first) << " missing";
    const PlacedSpan& g = it->second;
    EXPECT_TRUE(w.span == g.span) << what << ": span " << HexEncode(key.first) << " differs (" << w.span.name << ")";
    EXPECT_TRUE(w.resource == g.resource) << what << ": resource of span " << HexEncode(key.first);
    EXPECT_EQ(w.resource_schema, g.resource_schema) << what;
    EXPECT_TRUE(w.scope == g.scope) << what << ": scope of span " << HexEncode(key.first);
    EXPECT_EQ(w.scope_schema, g.scope_schema) << what;
  }
  // Spans come back grouped: one ResourceSpans per distinct resource, one ScopeSpans per scope.
  for (size_t a = 0; a < got.resource_spans.size(); ++a) {
    for (size_t b = a + 1; b < got.resource_spans.size(); ++b)
      EXPECT_FALSE(got.resource_spans[a].resource == got.resource_spans[b].resource &&
                   got.resource_spans[a].schema_url == got.resource_spans[b].schema_url)
          << what << ": resource repeated";
    for (const auto& ss : got.resource_spans[a].scope_spans) EXPECT_FALSE(ss.spans.empty()) << what;
  }
}

// A trace ID drawn from `rng` (which the caller checks against the stored ones).
TraceId RandomTraceId(std::mt19937_64& rng) {
  TraceId id;
  uint64_t a = rng(), b = rng();
  std::memcpy(id.bytes.data(), &a, 8);
  std::memcpy(id.bytes.data() + 8, &b, 8);
  return id;
}

class BlockTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = backend::NewLocalObjectStore(dir_.path(), ::tracery::DefaultEnv()); }

  // Writes `generated` as one block of tenant "t" in row groups of 256 spans.
  Result<BlockMeta> WriteSmallRowGroups(const GeneratedBlock& generated) {
    WriterOptions options;
    options.row_group_spans = 256;
    return WriteBlock(*store_, "t", "sampled", generated.inputs, options);
  }

  TempDir dir_;
  std::unique_ptr<backend::ObjectStore> store_;
};

TEST_F(BlockTest, EveryTraceReadsBackEqual) {
  GeneratedBlock generated = Generate(3000, 42);
  ASSERT_EQ(generated.ids.size(), 3000u);
  WriterOptions options;
  options.row_group_spans = 256;
  auto meta = WriteBlock(*store_, "tenant-a", "sampled", generated.inputs, options);
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();

  uint64_t spans = 0, min_start = UINT64_MAX, max_end = 0;
  for (const auto& [id, trace] : generated.traces) {
    otlp::TracesData deduped = trace;
    DeduplicateSpans(deduped);
    spans += deduped.SpanCount();
    for (const auto& rs : trace.resource_spans)
      for (const auto& ss : rs.scope_spans)
        for (const auto& span : ss.spans) {
          min_start = std::min(min_start, span.start_time_unix_nano);
          max_end = std::max(max_end, span.end_time_unix_nano);
        }
  }
  EXPECT_EQ(meta->trace_count, 3000u);
  EXPECT_EQ(meta->span_count, spans);
  EXPECT_EQ(meta->min_start_unix_nano, min_start);
  EXPECT_EQ(meta->max_end_unix_nano, max_end);
  EXPECT_EQ(meta->tenant, "tenant-a");
  EXPECT_EQ(meta->tier, "sampled");
  EXPECT_EQ(meta->version, kFormatVersion);
  EXPECT_GE(meta->row_groups, spans / 300);
  EXPECT_GT(meta->row_groups, 10u);

  auto listed = store_->List("tenant-a");
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(*listed, std::vector<std::string>{meta->block_id});
  auto objects = store_->List("tenant-a/" + meta->block_id);
  ASSERT_TRUE(objects.ok());
  EXPECT_EQ(*objects, (std::vector<std::string>{"bloom-0", "data", "index", "meta.json"}));

  auto reader = BlockReader::Open(*store_, "tenant-a", meta->block_id);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  const BlockMeta& read_meta = (*reader)->meta();
  EXPECT_EQ(read_meta.block_id, meta->block_id);
  EXPECT_EQ(read_meta.trace_count, meta->trace_count);
  EXPECT_EQ(read_meta.span_count, meta->span_count);
  EXPECT_EQ(read_meta.min_start_unix_nano, min_start);
  EXPECT_EQ(read_meta.max_end_unix_nano, max_end);
  EXPECT_EQ(read_meta.row_groups, meta->row_groups);
  EXPECT_EQ((*reader)->row_groups().size(), meta->row_groups);
  uint64_t group_traces = 0, group_spans = 0;
  for (const auto& rg : (*reader)->row_groups()) {
    group_traces += rg.trace_count;
    group_spans += rg.span_count;
    EXPECT_LE(rg.min_start_unix_nano, rg.max_end_unix_nano);
  }
  EXPECT_EQ(group_traces, 3000u);
  EXPECT_EQ(group_spans, spans);
  std::set<std::string> services;
  for (const auto& rg : (*reader)->row_groups()) services.insert(rg.services.begin(), rg.services.end());
  EXPECT_EQ(services, (std::set<std::string>{"service-0", "service-1", "service-2", "service-3"}));

  // Listing the traces reads the trace columns alone and gives every ID, in order.
  std::vector<TraceId> listed_ids;
  uint64_t listed_spans = 0;
  for (uint32_t g = 0; g < meta->row_groups; ++g) {
    auto entries = (*reader)->ListTraces(g);
    ASSERT_TRUE(entries.ok()) << entries.status().ToString();
    EXPECT_EQ(entries->size(), (*reader)->row_groups()[g].trace_count);
    for (const auto& entry : *entries) {
      listed_ids.push_back(entry.id);
      listed_spans += entry.span_count;
      EXPECT_GE(entry.start_unix_nano, min_start);
    }
  }
  EXPECT_EQ(listed_ids, generated.ids);
  EXPECT_EQ(listed_spans, spans);

  for (const TraceId& id : generated.ids) {
    auto found = (*reader)->FindTrace(id);
    ASSERT_TRUE(found.ok()) << id.Hex() << ": " << found.status().ToString();
    ASSERT_TRUE(found->has_value()) << id.Hex() << " not found";
    for (const auto& rs : (**found).resource_spans)
      for (const auto& ss : rs.scope_spans)
        for (const auto& span : ss.spans) ASSERT_EQ(span.trace_id, std::string(id.View()));
    ExpectSameTrace(generated.traces[id], **found, id.Hex());
    if (HasFatalFailure()) return;
  }
}

TEST_F(BlockTest, AbsentIdsAreNotFoundAndBloomHasNoFalseNegatives) {
  GeneratedBlock generated = Generate(3000, 7);
  auto meta = WriteSmallRowGroups(generated);
  ASSERT_TRUE(meta.ok());
  auto reader = BlockReader::Open(*store_, "t", meta->block_id);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();

  for (const TraceId& id : generated.ids) EXPECT_TRUE((*reader)->MayContain(id)) << id.Hex();

  std::mt19937_64 rng(99);
  std::set<TraceId> present(generated.ids.begin(), generated.ids.end());
  int false_positives = 0, probes = 0;
  for (int i = 0; i < 100000; ++i) {
    TraceId id = RandomTraceId(rng);
    if (present.count(id)) continue;
    probes++;
    if ((*reader)->MayContain(id)) false_positives++;
    if (i < 2000) {
      auto found = (*reader)->FindTrace(id);
      ASSERT_TRUE(found.ok());
      EXPECT_FALSE(found->has_value()) << id.Hex();
    }
  }
  EXPECT_LT(double(false_positives) / probes, 0.03) << false_positives << " of " << probes;

  // Neighbours of stored IDs and IDs outside the stored range.
  for (size_t i = 0; i < generated.ids.size(); i += 97) {
    TraceId next = generated.ids[i];
    next.bytes[15] ^= 1;
    if (present.count(next)) continue;
    auto found = (*reader)->FindTrace(next);
    ASSERT_TRUE(found.ok());
    EXPECT_FALSE(found->has_value());
  }
  auto zero = (*reader)->FindTrace(TraceId());
  ASSERT_TRUE(zero.ok());
  EXPECT_FALSE(zero->has_value());
}

// Forwards to a store and counts its range reads (index pages, row groups).
class RangeCountingStore : public backend::ObjectStore {
 public:
  explicit RangeCountingStore(backend::ObjectStore& inner) : inner_(inner) {}
  Result<std::unique_ptr<backend::ObjectWriter>> NewWriter(const std::string& name) override { return inner_.NewWriter(name); }
  Result<std::string> Read(const std::string& name) override { return inner_.Read(name); }
  Result<std::string> ReadRange(const std::string& name, uint64_t offset, uint64_t length) override {
    ++range_reads;
    return inner_.ReadRange(name, offset, length);
  }
  Result<std::vector<std::string>> List(const std::string& prefix) override { return inner_.List(prefix); }
  Status Delete(const std::string& name) override { return inner_.Delete(name); }
  Status RemoveAbandonedWrites() override { return inner_.RemoveAbandonedWrites(); }
  uint64_t range_reads = 0;

 private:
  backend::ObjectStore& inner_;
};

// A trace ID the Bloom filter lets through but the block lacks is ruled out by the index's
// fingerprints, mostly without reading an index page; every stored ID is still found.
TEST_F(BlockTest, BloomFalsePositivesRarelyReadAnIndexPage) {
  GeneratedBlock generated = Generate(3000, 11);
  auto meta = WriteSmallRowGroups(generated);
  ASSERT_TRUE(meta.ok());
  RangeCountingStore counting(*store_);
  auto reader = BlockReader::Open(counting, "t", meta->block_id);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  for (const TraceId& id : generated.ids) {
    auto contains = (*reader)->Contains(id);
    ASSERT_TRUE(contains.ok());
    EXPECT_TRUE(*contains) << id.Hex();
  }
  EXPECT_EQ(counting.range_reads, generated.ids.size());  // one page each

  std::mt19937_64 rng(5);
  std::set<TraceId> present(generated.ids.begin(), generated.ids.end());
  uint64_t false_positives = 0;
  counting.range_reads = 0;
  for (int i = 0; i < 200000; ++i) {
    TraceId id = RandomTraceId(rng);
    if (present.count(id) || !(*reader)->MayContain(id)) continue;
    false_positives++;
    auto contains = (*reader)->Contains(id);
    ASSERT_TRUE(contains.ok());
    EXPECT_FALSE(*contains) << id.Hex();
  }
  ASSERT_GT(false_positives, 100u);
  // A page holds 256 fingerprints of 16 bits: about 0.4 % of the false positives read one.
  EXPECT_LT(counting.range_reads, false_positives / 20) << false_positives;
}

TEST(BloomFilterTest, EncodeDecodeAndShards) {
  BloomFilter filter = BloomFilter::ForCount(1000);
  std::vector<TraceId> ids;
  std::mt19937 rng(5);
  for (int i = 0; i < 1000; ++i) {
    TraceId id;
    for (auto& b : id.bytes) b = uint8_t(rng());
    filter.Add(id);
    ids.push_back(id);
  }
  std::string encoded = filter.Encode();
  auto decoded = BloomFilter::Decode(encoded);
  ASSERT_TRUE(decoded.ok());
  for (const auto& id : ids) EXPECT_TRUE(decoded->MayContain(id));
  EXPECT_EQ(decoded->Encode(), encoded);
  std::string damaged = encoded;
  damaged[20] ^= 4;
  EXPECT_FALSE(BloomFilter::Decode(damaged).ok());
  EXPECT_FALSE(BloomFilter::Decode(encoded.substr(0, 10)).ok());
  EXPECT_FALSE(BloomFilter::Decode("").ok());
  std::vector<int> per_shard(4);
  for (const auto& id : ids) {
    uint32_t shard = BloomFilter::ShardOf(id, 4);
    ASSERT_LT(shard, 4u);
    per_shard[shard]++;
  }
  for (int n : per_shard) EXPECT_GT(n, 150);
  EXPECT_EQ(BloomFilter::ShardOf(ids[0], 1), 0u);
}

TEST_F(BlockTest, ManyBloomShards) {
  GeneratedBlock generated = Generate(1200, 11);
  WriterOptions options;
  options.row_group_spans = 128;
  options.traces_per_bloom_shard = 250;
  auto meta = WriteBlock(*store_, "t", "sampled", generated.inputs, options);
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(meta->bloom_shards, 5u);
  auto reader = BlockReader::Open(*store_, "t", meta->block_id);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  for (size_t i = 0; i < generated.ids.size(); i += 3) {
    const TraceId& id = generated.ids[i];
    EXPECT_TRUE((*reader)->MayContain(id));
    auto found = (*reader)->FindTrace(id);
    ASSERT_TRUE(found.ok() && found->has_value()) << id.Hex();
    ExpectSameTrace(generated.traces[id], **found, id.Hex());
  }
}

TEST_F(BlockTest, EmptyBlock) {
  auto meta = WriteBlock(*store_, "t", "sampled", {}, WriterOptions());
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  EXPECT_EQ(meta->trace_count, 0u);
  EXPECT_EQ(meta->span_count, 0u);
  auto reader = BlockReader::Open(*store_, "t", meta->block_id);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  auto found = (*reader)->FindTrace(*ParseTraceIdHex("1234"));
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
}

TEST_F(BlockTest, SingleTraceWithOneSpan) {
  otlp::TracesData trace;
  otlp::Span& span = trace.resource_spans.emplace_back().scope_spans.emplace_back().spans.emplace_back();
  TraceId id = *ParseTraceIdHex("abcdef");
  span.trace_id.assign(id.View());
  span.span_id = std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8);
  std::string encoded = otlp::EncodeTracesData(trace);
  auto meta = WriteBlock(*store_, "t", "sampled", {{id, encoded}}, WriterOptions());
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(meta->row_groups, 1u);
  EXPECT_EQ(meta->min_start_unix_nano, 0u);
  auto reader = BlockReader::Open(*store_, "t", meta->block_id);
  ASSERT_TRUE(reader.ok());
  auto found = (*reader)->FindTrace(id);
  ASSERT_TRUE(found.ok() && found->has_value());
  ExpectSameTrace(trace, **found, "single");
}

TEST_F(BlockTest, UndecodableInputIsRefused) {
  TraceId id = *ParseTraceIdHex("1");
  auto meta = WriteBlock(*store_, "t", "sampled", {{id, "\x0a\x7f"}}, WriterOptions());
  EXPECT_FALSE(meta.ok());
  auto listed = store_->List("t");
  ASSERT_TRUE(listed.ok());
  for (const auto& block : *listed) {
    auto objects = store_->List("t/" + block);
    ASSERT_TRUE(objects.ok());
    EXPECT_EQ(std::count(objects->begin(), objects->end(), "meta.json"), 0) << "a failed block has no meta.json";
  }
}

TEST_F(BlockTest, MetaJsonRoundTripAndUnknownVersionIsRefused) {
  GeneratedBlock generated = Generate(50, 3);
  auto meta = WriteBlock(*store_, "t", "sampled", generated.inputs, WriterOptions());
  ASSERT_TRUE(meta.ok());
  auto parsed = BlockMeta::FromJson(meta->ToJson());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->block_id, meta->block_id);
  EXPECT_EQ(parsed->trace_count, meta->trace_count);
  EXPECT_EQ(parsed->span_count, meta->span_count);
  EXPECT_EQ(parsed->min_start_unix_nano, meta->min_start_unix_nano);
  EXPECT_EQ(parsed->max_end_unix_nano, meta->max_end_unix_nano);
  EXPECT_EQ(parsed->index_entries_offset, meta->index_entries_offset);
  EXPECT_EQ(parsed->created_unix_seconds, meta->created_unix_seconds);

  std::string name = "t/" + meta->block_id + "/meta.json";
  auto json = store_->Read(name);
  ASSERT_TRUE(json.ok());
  std::string future = *json;
  size_t at = future.find("\"version\":3");
  ASSERT_NE(at, std::string::npos) << future;
  future.replace(at, 11, "\"version\":4");
  ASSERT_TRUE(store_->Write(name, future).ok());
  auto reader = BlockReader::Open(*store_, "t", meta->block_id);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kCorruption);
  EXPECT_NE(reader.status().message().find("version"), std::string::npos) << reader.status().message();
  EXPECT_FALSE(BlockMeta::FromJson(future).ok());
  // A meta.json that claims an older version than its index's is refused too.
  std::string older = *json;
  older.replace(at, 11, "\"version\":2");
  ASSERT_TRUE(BlockMeta::FromJson(older).ok());
  ASSERT_TRUE(store_->Write(name, older).ok());
  EXPECT_FALSE(BlockReader::Open(*store_, "t", meta->block_id).ok());

  EXPECT_FALSE(BlockMeta::FromJson("not json").ok());
  EXPECT_FALSE(BlockMeta::FromJson("{}").ok());
  EXPECT_FALSE(BlockMeta::FromJson("[1]").ok());

  // Restored, it opens; opened under another name, it is refused.
  ASSERT_TRUE(store_->Write(name, *json).ok());
  EXPECT_TRUE(BlockReader::Open(*store_, "t", meta->block_id).ok());
  auto missing = BlockReader::Open(*store_, "t", "no-such-block");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->Write("other/" + meta->block_id + "/meta.json", *json).ok());
  EXPECT_FALSE(BlockReader::Open(*store_, "other", meta->block_id).ok());
}

TEST_F(BlockTest, DamagedIndexIsRefusedAtOpen) {
  GeneratedBlock generated = Generate(300, 4);
  auto meta = WriteBlock(*store_, "t", "sampled", generated.inputs, WriterOptions());
  ASSERT_TRUE(meta.ok());
  std::string name = "t/" + meta->block_id + "/index";
  auto index = store_->Read(name);
  ASSERT_TRUE(index.ok());
  std::string damaged = *index;
  damaged[6] ^= 0x10;  // inside the checksummed header
  ASSERT_TRUE(store_->Write(name, damaged).ok());
  auto reader = BlockReader::Open(*store_, "t", meta->block_id);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kCorruption);
  ASSERT_TRUE(store_->Write(name, index->substr(0, index->size() - 1)).ok());
  reader = BlockReader::Open(*store_, "t", meta->block_id);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kCorruption);
}

TEST_F(BlockTest, CorruptDataIsReportedNotReturnedOrCrashing) {
  GeneratedBlock generated = Generate(200, 8);
  WriterOptions options;
  options.row_group_spans = 64;
  auto meta = WriteBlock(*store_, "t", "sampled", generated.inputs, options);
  ASSERT_TRUE(meta.ok());
  std::string name = "t/" + meta->block_id + "/data";
  auto original = store_->Read(name);
  ASSERT_TRUE(original.ok());
  const size_t size = original->size();
  std::vector<size_t> positions = {0, 3, 4, 5, 6, 9, 20, size - 1, size / 2};
  for (size_t k = 1; k < 16; ++k) positions.push_back(size * k / 16 + k);
  std::vector<RowGroupStats> row_groups;
  {
    auto reader = BlockReader::Open(*store_, "t", meta->block_id);
    ASSERT_TRUE(reader.ok());
    row_groups = (*reader)->row_groups();
    ASSERT_GT(row_groups.size(), 4u);
    for (size_t g = 1; g < 4; ++g) {
      positions.push_back(row_groups[g].offset + 4);   // column count
      positions.push_back(row_groups[g].offset + 5);   // dictionary size
      positions.push_back(row_groups[g].offset + 12);  // column table
    }
  }
  for (size_t position : positions) {
    if (position >= size) continue;
    std::string damaged = *original;
    damaged[position] ^= 0x5a;
    ASSERT_TRUE(store_->Write(name, damaged).ok());
    auto reader = BlockReader::Open(*store_, "t", meta->block_id);
    ASSERT_TRUE(reader.ok()) << "the data object is not read at open";
    // Only the row group holding the flipped byte can change; check each of its traces.
    size_t group = 0, first_trace = 0;
    while (group + 1 < row_groups.size() && row_groups[group].offset + row_groups[group].size <= position)
      first_trace += row_groups[group++].trace_count;
    int corrupt = 0;
    for (size_t t = first_trace; t < first_trace + row_groups[group].trace_count; ++t) {
      const TraceId& id = generated.ids[t];
      auto found = (*reader)->FindTrace(id);
      if (!found.ok()) {
        EXPECT_EQ(found.status().code(), StatusCode::kCorruption) << found.status().ToString();
        corrupt++;
        continue;
      }
      ASSERT_TRUE(found->has_value()) << "byte " << position << ": " << id.Hex() << " vanished";
      ExpectSameTrace(generated.traces[id], **found, "byte " + std::to_string(position) + " " + id.Hex());
      if (HasFatalFailure()) return;
    }
    EXPECT_GT(corrupt, 0) << "flipping byte " << position << " went unnoticed";
  }
  ASSERT_TRUE(store_->Write(name, *original).ok());
  // A data object cut short is reported too.
  ASSERT_TRUE(store_->Write(name, original->substr(0, size / 2)).ok());
  auto reader = BlockReader::Open(*store_, "t", meta->block_id);
  ASSERT_TRUE(reader.ok());
  auto last = (*reader)->FindTrace(generated.ids.back());
  EXPECT_FALSE(last.ok());
}

// The spans field of a one-span TracesData, as its encoder writes it.
std::string SpanField(const otlp::Span& span) {
  otlp::TracesData data;
  data.resource_spans.emplace_back().scope_spans.emplace_back().spans.push_back(span);
  std::string encoded = otlp::EncodeTracesData(data);
  auto inner = [](std::string_view bytes, uint32_t number) {
    ByteReader reader(bytes);
    otlp::WireField f;
    while (!reader.empty() && otlp::ReadField(reader, f))
      if (f.number == number) return f.bytes;
    return std::string_view();
  };
  std::string_view span_bytes = inner(inner(inner(encoded, 1), 2), 2);
  std::string field;
  otlp::PutBytesField(field, 2, span_bytes);
  return field;
}

TEST_F(BlockTest, FieldOrderAndUnknownFieldsOnTheWireDoNotMatter) {
  TraceGenerator gen(21);
  TraceId id = *ParseTraceIdHex("5151");
  otlp::TracesData trace = gen.Trace(id, 5000);
  // Re-encode by hand: spans before their scope, scope spans before their resource, schema
  // URLs first, and unknown fields sprinkled in (protobuf allows any order).
  std::string encoded;
  for (const auto& rs : trace.resource_spans) {
    std::string rs_body;
    otlp::PutStringIfSet(rs_body, 3, rs.schema_url);
    for (const auto& ss : rs.scope_spans) {
      std::string ss_body;
      otlp::PutStringIfSet(ss_body, 3, ss.schema_url);
      for (const auto& span : ss.spans) {
        std::string field = SpanField(span);
        // Unknown fields inside the span: append them to its body and re-frame it.
        ByteReader reader(field);
        otlp::WireField f;
        ASSERT_TRUE(otlp::ReadField(reader, f));
        std::string body(f.bytes);
        otlp::PutTag(body, 99, otlp::kVarint);
        PutVarint(body, 12345);
        otlp::PutBytesField(body, 100, "unknown");
        otlp::PutBytesField(ss_body, 2, body);
      }
      std::string scope;
      otlp::EncodeScope(ss.scope, scope);
      otlp::PutBytesField(ss_body, 1, scope);
      otlp::PutTag(ss_body, 77, otlp::kFixed32);
      PutFixed32(ss_body, 7);
      otlp::PutBytesField(rs_body, 2, ss_body);
    }
    std::string resource;
    otlp::EncodeResource(rs.resource, resource);
    otlp::PutBytesField(rs_body, 1, resource);
    otlp::PutBytesField(encoded, 1, rs_body);
  }
  otlp::TracesData check;
  ASSERT_TRUE(otlp::DecodeTracesData(encoded, check).ok());
  ASSERT_EQ(check.SpanCount(), trace.SpanCount());

  auto meta = WriteBlock(*store_, "t", "sampled", {{id, encoded}}, WriterOptions());
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  auto reader = BlockReader::Open(*store_, "t", meta->block_id);
  ASSERT_TRUE(reader.ok());
  auto found = (*reader)->FindTrace(id);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_TRUE(found->has_value());
  ExpectSameTrace(trace, **found, "reordered");
}

TEST_F(BlockTest, MalformedSpanInsideATraceFailsTheWrite) {
  otlp::Span span;
  span.trace_id = std::string(16, '\x01');
  span.span_id = std::string(8, '\x02');
  std::string field = SpanField(span);
  ByteReader reader(field);
  otlp::WireField f;
  ASSERT_TRUE(otlp::ReadField(reader, f));
  std::string body(f.bytes);
  otlp::PutBytesField(body, 9, std::string("\x0a\x05", 2));  // an attribute cut short
  std::string ss_body;
  otlp::PutBytesField(ss_body, 2, body);
  std::string rs_body;
  otlp::PutBytesField(rs_body, 2, ss_body);
  std::string encoded;
  otlp::PutBytesField(encoded, 1, rs_body);
  auto meta = WriteBlock(*store_, "t", "sampled", {{TraceId::FromBytes(span.trace_id), encoded}}, WriterOptions());
  EXPECT_FALSE(meta.ok());
}

// ---- format 2: dedicated span-attribute columns ---------------------------------------------

// Span attributes for format 2's dedicated columns: every value type under common keys (ints
// at the limits of a dedicated entry, doubles bit for bit, arrays, key-value lists, bytes,
// empty), a key repeated in some spans, keys in a new order in every span, spans without
// them, rare keys under the 5 % threshold and more than 16 keys over it.
otlp::Attributes DedicatedColumnAttributes(std::mt19937& rng, TraceGenerator& values) {
  const int64_t ints[] = {0, -1, 1, 503, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(),
                          (int64_t(1) << 60) - 1, int64_t(1) << 60, -(int64_t(1) << 60), -(int64_t(1) << 60) - 1};
  const double doubles[] = {std::nan(""), -std::nan(""), -0.0, 0.0, std::numeric_limits<double>::infinity(),
                            std::numeric_limits<double>::denorm_min(), 1.5};
  auto chance = [&](uint32_t percent) { return rng() % 100 < percent; };
  otlp::Attributes out;
  if (chance(97)) out.push_back({"typed", values.Value(2)});
  if (chance(96)) out.push_back({"int", TraceGenerator::Int(ints[rng() % std::size(ints)])});
  if (chance(95)) {
    AnyValue number;
    number.type = AnyValue::Type::kDouble;
    number.double_value = doubles[rng() % std::size(doubles)];
    out.push_back({"double", number});
  }
  if (chance(94)) {
    out.push_back({"repeated", TraceGenerator::Str("first")});
    if (chance(20)) out.push_back({"repeated", TraceGenerator::Int(2)});
  }
  for (uint32_t k = 0; k < 20; ++k)
    if (chance(30 + 3 * k)) out.push_back({"common." + std::to_string(k), values.Value(0)});
  for (int k = 0; k < 4; ++k)
    if (chance(1)) out.push_back({"rare." + std::to_string(k), TraceGenerator::Int(k)});
  std::shuffle(out.begin(), out.end(), rng);
  if (chance(5)) out.clear();
  return out;
}

// Traces as Generate makes them (events, links, resources, repeats dropped) with the span
// attributes of DedicatedColumnAttributes.
GeneratedBlock GenerateForDedicatedColumns(int count, uint32_t seed) {
  std::mt19937 rng(seed);
  TraceGenerator values(seed + 1);
  return Generate(count, seed, [&](otlp::TracesData& trace) {
    DeduplicateSpans(trace);
    for (auto& rs : trace.resource_spans)
      for (auto& ss : rs.scope_spans)
        for (auto& span : ss.spans) span.attributes = DedicatedColumnAttributes(rng, values);
  });
}

TEST_F(BlockTest, DedicatedColumnsGiveBackEverySpanExactly) {
  GeneratedBlock generated = GenerateForDedicatedColumns(600, 17);
  WriterOptions options;
  options.row_group_spans = 256;
  auto meta = WriteBlock(*store_, "t", "sampled", generated.inputs, options);
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  EXPECT_EQ(meta->version, kFormatVersion);
  auto reader = BlockReader::Open(*store_, "t", meta->block_id);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();

  // Every row group gives 16 keys a column, the most common ones, and none to a rare key.
  auto data = store_->Read("t/" + meta->block_id + "/data");
  ASSERT_TRUE(data.ok());
  for (const auto& rg : (*reader)->row_groups()) {
    internal::RowGroupDecoder decoder;
    ASSERT_TRUE(decoder.Open(std::string_view(*data).substr(rg.offset, rg.size)).ok());
    std::set<std::string> keys;
    for (uint32_t key : decoder.dedicated_keys()) keys.emplace(decoder.dictionary()[key]);
    EXPECT_EQ(keys.size(), 16u);
    for (const char* key : {"typed", "int", "double", "repeated"}) EXPECT_EQ(keys.count(key), 1u) << key;
    for (const auto& key : keys) EXPECT_NE(key.substr(0, 5), "rare.");
  }

  for (const TraceId& id : generated.ids) {
    auto found = (*reader)->FindTrace(id);
    ASSERT_TRUE(found.ok() && found->has_value()) << id.Hex();
    ExpectSameTrace(generated.traces[id], **found, id.Hex());
    if (HasFatalFailure()) return;
  }
  // The projected reader, with and without the other columns.
  for (Projection projection : {Projection::All(), Projection{true, false, false, false}}) {
    size_t spans = 0;
    for (uint32_t g = 0; g < meta->row_groups; ++g) {
      Status status = (*reader)->ScanRowGroupProjected(
          g, SpanFilter{}, projection,
          [&](const TraceId& id, const std::vector<DecodedSpan>& decoded, size_t count, const RowGroupTables&) {
            auto want = SpanSet(generated.traces[id]);
            for (size_t i = 0; i < count; ++i, ++spans) {
              const otlp::Span& got = decoded[i].span;
              const otlp::Span& expected = want.at({got.span_id, int(got.kind)}).span;
              EXPECT_TRUE(got.attributes == expected.attributes) << id.Hex() << " " << HexEncode(got.span_id);
              EXPECT_EQ(got.events.size(), projection.events ? expected.events.size() : 0u);
            }
            return true;
          });
      ASSERT_TRUE(status.ok()) << status.ToString();
    }
    EXPECT_EQ(spans, meta->span_count);
  }
}

TEST_F(BlockTest, TracesLeftOutOfAScanAreReadPastExactly) {
  // Every value type, events and links; a scan that leaves out every other trace (read past,
  // not decoded) still decodes the ones it visits exactly, with each projection.
  GeneratedBlock generated = GenerateForDedicatedColumns(400, 23);
  for (uint32_t version : {1u, 3u}) {
    WriterOptions options;
    options.row_group_spans = 256;
    options.format_version = version;
    auto meta = WriteBlock(*store_, "t", "sampled", generated.inputs, options);
    ASSERT_TRUE(meta.ok()) << meta.status().ToString();
    auto reader = BlockReader::Open(*store_, "t", meta->block_id);
    ASSERT_TRUE(reader.ok());
    for (Projection projection : {Projection::All(), Projection{true, false, false, false}, Projection{false, true, true, true},
                                  Projection{false, false, false, false, false}}) {
      size_t visited = 0, skipped = 0;
      for (uint32_t g = 0; g < meta->row_groups; ++g) {
        uint32_t ordinal = 0;
        TraceSkip skip = [&](const TraceEntry&) {
          bool out = ordinal++ % 2 == 0;
          skipped += out;
          return out;
        };
        Status status = (*reader)->ScanRowGroupProjected(
            g, SpanFilter{}, projection,
            [&](const TraceId& id, const std::vector<DecodedSpan>& decoded, size_t count, const RowGroupTables&) {
              auto want = SpanSet(generated.traces[id]);
              EXPECT_EQ(count, want.size()) << id.Hex();
              for (size_t i = 0; i < count; ++i) {
                const otlp::Span& got = decoded[i].span;
                auto it = want.find({got.span_id, int(got.kind)});
                if (it == want.end()) {
                  ADD_FAILURE() << id.Hex() << ": span " << HexEncode(got.span_id) << " not in the trace";
                  continue;
                }
                const otlp::Span& expected = it->second.span;
                EXPECT_EQ(got.parent_span_id, expected.parent_span_id);
                EXPECT_EQ(got.start_time_unix_nano, expected.start_time_unix_nano);
                EXPECT_EQ(got.end_time_unix_nano, expected.end_time_unix_nano);
                EXPECT_EQ(got.name, projection.names ? expected.name : "");
                EXPECT_EQ(got.status_message, projection.status_message ? expected.status_message : "");
                EXPECT_TRUE(got.attributes == (projection.span_attributes ? expected.attributes : otlp::Attributes()))
                    << id.Hex();
                EXPECT_TRUE(got.events == (projection.events ? expected.events : std::vector<otlp::Event>())) << id.Hex();
                EXPECT_TRUE(got.links == (projection.links ? expected.links : std::vector<otlp::Link>())) << id.Hex();
              }
              visited++;
              return true;
            },
            nullptr, skip);
        ASSERT_TRUE(status.ok()) << status.ToString();
      }
      EXPECT_EQ(visited + skipped, generated.ids.size());
      EXPECT_GT(visited, 150u);
    }
  }
}

// The traces of a row group that ScanRowGroupProjected finds for `filter`.
std::set<TraceId> Candidates(const BlockReader& reader, uint32_t row_group, const SpanFilter& filter) {
  std::set<TraceId> out;
  Status status = reader.ScanRowGroupProjected(
      row_group, filter, Projection{false, false, false, false},
      [&](const TraceId& id, const std::vector<DecodedSpan>&, size_t, const RowGroupTables&) {
        out.insert(id);
        return true;
      });
  EXPECT_TRUE(status.ok()) << status.ToString();
  return out;
}

TEST_F(BlockTest, FormatOneBlocksStayReadableAndSearchable) {
  GeneratedBlock generated = Generate(500, 31);
  WriterOptions options;
  options.row_group_spans = 128;
  options.format_version = 1;
  auto one = WriteBlock(*store_, "t", "sampled", generated.inputs, options);
  options.format_version = 2;
  auto two = WriteBlock(*store_, "t", "sampled", generated.inputs, options);
  ASSERT_TRUE(one.ok() && two.ok());
  EXPECT_EQ(one->version, 1u);
  EXPECT_EQ(two->version, 2u);
  options.format_version = 3;
  auto three = WriteBlock(*store_, "t", "sampled", generated.inputs, options);
  ASSERT_TRUE(three.ok());
  EXPECT_EQ(three->version, 3u);
  options.format_version = 4;
  EXPECT_EQ(WriteBlock(*store_, "t", "sampled", generated.inputs, options).status().code(), StatusCode::kInvalidArgument);

  auto reader_one = BlockReader::Open(*store_, "t", one->block_id);
  auto reader_two = BlockReader::Open(*store_, "t", two->block_id);
  auto reader_three = BlockReader::Open(*store_, "t", three->block_id);
  ASSERT_TRUE(reader_one.ok() && reader_two.ok() && reader_three.ok());
  EXPECT_EQ((*reader_one)->meta().version, 1u);
  ASSERT_EQ(one->row_groups, two->row_groups);
  ASSERT_EQ(one->row_groups, three->row_groups);
  // Formats 1 and 2 have no value summary and bound trace starts by the latest end.
  for (const auto* reader : {&*reader_one, &*reader_two})
    for (const RowGroupStats& rg : (*reader)->row_groups()) {
      EXPECT_FALSE(rg.values.known);
      EXPECT_EQ(rg.max_trace_start_unix_nano, rg.max_end_unix_nano);
      EXPECT_TRUE(rg.values.MayHold("anything", ValueSummary::Type::kInt, ValueSummary::IntValue(1)));
    }
  // Format 1 row groups have format 1's 48 columns; formats 2 and 3 add their 18.
  for (auto [meta, columns] : {std::pair{&*one, 48u}, std::pair{&*two, 66u}, std::pair{&*three, 66u}}) {
    auto data = store_->Read("t/" + meta->block_id + "/data");
    ASSERT_TRUE(data.ok());
    ByteReader header(*data);
    uint32_t magic;
    uint64_t count;
    ASSERT_TRUE(header.ReadFixed32(magic) && header.ReadVarint(count));
    EXPECT_EQ(count, columns);
  }
  for (const TraceId& id : generated.ids) {
    auto found = (*reader_one)->FindTrace(id);
    ASSERT_TRUE(found.ok() && found->has_value()) << id.Hex();
    ExpectSameTrace(generated.traces[id], **found, id.Hex());
    if (HasFatalFailure()) return;
  }
  // The generator's values have random types, arrays among them, under common keys.
  std::vector<SpanFilter> filters;
  SpanCondition status_code;
  status_code.field = SpanCondition::Field::kSpanAttribute;
  status_code.key = "http.status_code";
  status_code.op = SpanCondition::Op::kGreater;
  status_code.type = SpanCondition::Type::kInt;
  filters.push_back({{status_code}});
  SpanCondition method = status_code;
  method.key = "http.method";
  method.op = SpanCondition::Op::kRegex;
  method.regex = std::make_shared<re2::RE2>("GET[1-3].*");
  filters.push_back({{method}});
  SpanCondition retry = status_code;
  retry.key = "retry";
  retry.op = SpanCondition::Op::kEqual;
  retry.type = SpanCondition::Type::kBool;
  retry.bool_value = true;
  filters.push_back({{retry, status_code}});
  SpanCondition host = status_code;
  host.field = SpanCondition::Field::kAnyAttribute;
  host.key = "host.id";
  host.op = SpanCondition::Op::kEqual;
  host.int_value = 1997;
  filters.push_back({{host}});
  size_t found = 0;
  for (uint32_t g = 0; g < one->row_groups; ++g)
    for (const SpanFilter& filter : filters) {
      std::set<TraceId> candidates = Candidates(**reader_one, g, filter);
      EXPECT_EQ(candidates, Candidates(**reader_two, g, filter)) << "row group " << g;
      EXPECT_EQ(candidates, Candidates(**reader_three, g, filter)) << "row group " << g;
      found += candidates.size();
    }
  EXPECT_GT(found, 100u);
}

// ---- format 3: latest trace starts and value summaries in the index ------------------------

// The literal a filter compares with, as the value summary compares it.
struct Literal {
  ValueSummary::Type type;
  SpanCondition condition;
  std::string value;
};

AnyValue Bool(bool value) {
  AnyValue out;
  out.type = AnyValue::Type::kBool;
  out.bool_value = value;
  return out;
}

TEST_F(BlockTest, ValueSummaryRulesOutOnlyRowGroupsWithoutTheValue) {
  // Attributes of every type under common keys, and low-cardinality keys of one type each.
  std::mt19937 rng(5);
  TraceGenerator values(6);
  const char* methods[] = {"GET", "POST", "PUT", "DELETE"};
  uint32_t mixed = 0;
  GeneratedBlock generated = Generate(800, 77, [&](otlp::TracesData& trace) {
    DeduplicateSpans(trace);
    for (auto& rs : trace.resource_spans)
      for (auto& ss : rs.scope_spans)
        for (auto& span : ss.spans) {
          span.attributes = DedicatedColumnAttributes(rng, values);
          if (rng() % 100 < 60) span.attributes.push_back({"http.status_code", TraceGenerator::Int(200 + int(rng() % 4) * 100 + int(rng() % 4))});
          if (rng() % 100 < 60) span.attributes.push_back({"http.method", TraceGenerator::Str(methods[rng() % 4])});
          if (rng() % 100 < 30) span.attributes.push_back({"cache.hit", Bool(rng() % 2 == 0)});
          // A string, every fifth time an int: every row group has both, so it is never summarised.
          if (rng() % 100 < 50) span.attributes.push_back({"mixed", mixed++ % 5 ? TraceGenerator::Str("7") : TraceGenerator::Int(7)});
          // Many distinct values: over the summary's limit.
          if (rng() % 100 < 50) span.attributes.push_back({"user", TraceGenerator::Str("u" + std::to_string(rng() % 1000))});
        }
  });
  WriterOptions options;
  options.row_group_spans = 200;
  auto meta = WriteBlock(*store_, "t", "sampled", generated.inputs, options);
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  EXPECT_EQ(meta->version, 3u);
  auto reader = BlockReader::Open(*store_, "t", meta->block_id);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();

  std::vector<Literal> literals;
  auto add = [&](const std::string& key, SpanCondition::Type type, ValueSummary::Type summary_type,
                 const std::string& summary_value, std::function<void(SpanCondition&)> set) {
    SpanCondition c;
    c.field = SpanCondition::Field::kSpanAttribute;
    c.op = SpanCondition::Op::kEqual;
    c.key = key;
    c.type = type;
    set(c);
    literals.push_back({summary_type, c, summary_value});
  };
  for (int64_t code : {200, 201, 303, 503, 504, 999, -1}) {
    add("http.status_code", SpanCondition::Type::kInt, ValueSummary::Type::kInt, ValueSummary::IntValue(code),
        [&](SpanCondition& c) { c.int_value = code; });
  }
  for (int64_t code : {0, 503, 1, -1}) {  // values of the generator's "int" key
    add("int", SpanCondition::Type::kInt, ValueSummary::Type::kInt, ValueSummary::IntValue(code),
        [&](SpanCondition& c) { c.int_value = code; });
  }
  for (std::string method : {"GET", "DELETE", "PATCH", "get"}) {
    add("http.method", SpanCondition::Type::kString, ValueSummary::Type::kString, method,
        [&](SpanCondition& c) { c.string_value = method; });
  }
  for (bool hit : {true, false}) {
    add("cache.hit", SpanCondition::Type::kBool, ValueSummary::Type::kBool, ValueSummary::BoolValue(hit),
        [&](SpanCondition& c) { c.bool_value = hit; });
  }
  add("mixed", SpanCondition::Type::kString, ValueSummary::Type::kString, "8", [](SpanCondition& c) { c.string_value = "8"; });
  add("mixed", SpanCondition::Type::kInt, ValueSummary::Type::kInt, ValueSummary::IntValue(8), [](SpanCondition& c) { c.int_value = 8; });
  add("user", SpanCondition::Type::kString, ValueSummary::Type::kString, "nobody", [](SpanCondition& c) { c.string_value = "nobody"; });

  // Sound: a row group the summary rules out has no candidate for the filter. Useful: it rules
  // some out. Keys of mixed types or too many values are never summarised.
  size_t ruled_out = 0;
  auto row_groups = (*reader)->row_groups();
  ASSERT_GT(row_groups.size(), 10u);
  for (uint32_t g = 0; g < row_groups.size(); ++g) {
    const RowGroupStats& rg = row_groups[g];
    EXPECT_TRUE(rg.values.known);
    for (const Literal& literal : literals) {
      bool may = rg.values.MayHold(literal.condition.key, literal.type, literal.value);
      std::set<TraceId> candidates = Candidates(**reader, g, SpanFilter{{literal.condition}});
      if (!may) {
        EXPECT_TRUE(candidates.empty()) << "row group " << g << " " << literal.condition.key;
        ruled_out++;
      }
      if (literal.condition.key == "mixed" || literal.condition.key == "user") {
        EXPECT_TRUE(may) << "row group " << g << " " << literal.condition.key;
      }
    }
    // The latest trace start, exactly.
    auto traces = (*reader)->ListTraces(g);
    ASSERT_TRUE(traces.ok());
    uint64_t latest = 0;
    for (const TraceEntry& entry : *traces) latest = std::max(latest, entry.start_unix_nano);
    EXPECT_EQ(rg.max_trace_start_unix_nano, latest) << "row group " << g;
    EXPECT_LE(rg.max_trace_start_unix_nano, rg.max_end_unix_nano);
  }
  EXPECT_GE(ruled_out, row_groups.size() * 4);  // status codes 999 and -1, methods PATCH and get
  // Summaries hold across a reopen (they are in the index, not computed by the writer).
  auto again = BlockReader::Open(*store_, "t", meta->block_id);
  ASSERT_TRUE(again.ok());
  for (uint32_t g = 0; g < row_groups.size(); ++g)
    EXPECT_EQ((*again)->row_groups()[g].values.value_hashes, row_groups[g].values.value_hashes);
}

// A row group taken apart: header fields and columns, decompressed.
struct RowGroupParts {
  uint64_t dictionary = 0, resources = 0, scopes = 0;
  std::vector<std::string> columns;
};

bool TakeApart(std::string_view bytes, RowGroupParts& parts) {
  ByteReader in(bytes);
  uint32_t magic;
  uint64_t count;
  if (!in.ReadFixed32(magic) || !in.ReadVarint(count) || !in.ReadVarint(parts.dictionary) ||
      !in.ReadVarint(parts.resources) || !in.ReadVarint(parts.scopes))
    return false;
  std::vector<std::pair<uint64_t, uint64_t>> sizes(count);
  for (auto& [raw, stored] : sizes) {
    uint32_t crc;
    if (!in.ReadVarint(raw) || !in.ReadVarint(stored) || !in.ReadFixed32(crc)) return false;
  }
  for (auto [raw, stored] : sizes) {
    std::string_view chunk;
    if (!in.ReadBytes(stored, chunk)) return false;
    std::string& column = parts.columns.emplace_back(raw, '\0');
    if (raw == stored) column.assign(chunk);
    else if (ZSTD_decompress(column.data(), raw, chunk.data(), chunk.size()) != raw) return false;
  }
  return true;
}

// The row group again, every column stored as it is, with its checksum.
std::string PutTogether(const RowGroupParts& parts) {
  std::string out;
  PutFixed32(out, internal::kRowGroupMagic);
  PutVarint(out, parts.columns.size());
  PutVarint(out, parts.dictionary);
  PutVarint(out, parts.resources);
  PutVarint(out, parts.scopes);
  for (const auto& column : parts.columns) {
    PutVarint(out, column.size());
    PutVarint(out, column.size());
    PutFixed32(out, Crc32c(column));
  }
  for (const auto& column : parts.columns) out += column;
  return out;
}

// Reads a row group every way there is: each read succeeds or reports corruption.
void ExpectReadOrCorruption(std::string_view row_group, const std::vector<SpanFilter>& filters, const std::string& what,
                            int& corrupt) {
  auto check = [&](const Status& status) {
    EXPECT_TRUE(status.ok() || status.code() == StatusCode::kCorruption) << what << ": " << status.ToString();
    corrupt += !status.ok();
  };
  std::vector<TraceEntry> traces;
  check(ListTracesInRowGroup(row_group, traces));
  for (uint32_t ordinal : {0u, uint32_t(traces.size() ? traces.size() - 1 : 0)}) {
    TraceId id;
    otlp::TracesData trace;
    check(ReadTraceFromRowGroup(row_group, ordinal, id, trace));
  }
  auto visit = [](const TraceId&, const std::vector<DecodedSpan>&, size_t, const RowGroupTables&) { return true; };
  for (const SpanFilter& filter : filters) check(ScanRowGroupProjected(row_group, filter, Projection::All(), visit));
}

TEST_F(BlockTest, DamagedDedicatedColumnsAreReportedNotCrashing) {
  GeneratedBlock generated = GenerateForDedicatedColumns(40, 9);
  RowGroupBuilder builder(3);
  for (const TraceInput& input : generated.inputs) ASSERT_TRUE(builder.AddTrace(input.id, input.otlp).ok());
  RowGroupStats stats;
  const std::string original = builder.Finish(stats);
  RowGroupParts parts;
  ASSERT_TRUE(TakeApart(original, parts));
  ASSERT_EQ(parts.columns.size(), internal::kColumnCount);

  std::vector<SpanFilter> filters(1);  // empty: every trace decoded
  SpanCondition int_value;
  int_value.field = SpanCondition::Field::kSpanAttribute;
  int_value.key = "int";
  int_value.op = SpanCondition::Op::kLess;
  int_value.type = SpanCondition::Type::kInt;
  filters.push_back({{int_value}});
  SpanCondition typed = int_value;
  typed.key = "typed";
  typed.op = SpanCondition::Op::kNotEqual;
  typed.type = SpanCondition::Type::kString;
  typed.string_value = "GET1";
  filters.push_back({{typed, int_value}});
  SpanCondition rare = int_value;
  rare.field = SpanCondition::Field::kAnyAttribute;
  rare.key = "rare.0";
  filters.push_back({{rare}});
  int corrupt = 0;
  ExpectReadOrCorruption(original, filters, "undamaged", corrupt);
  ASSERT_EQ(corrupt, 0);

  std::mt19937 rng(77);
  // Bytes flipped anywhere (the checksums catch these), and cut short.
  for (int i = 0; i < 1500; ++i) {
    std::string damaged = original;
    if (i % 10 == 0) damaged.resize(rng() % damaged.size());
    else damaged[rng() % damaged.size()] ^= char(1 + rng() % 255);
    ExpectReadOrCorruption(damaged, filters, "flip " + std::to_string(i), corrupt);
  }
  // Span attribute columns changed under valid checksums: the decoders' own checks.
  const uint32_t attribute_columns[] = {30, 31, 32, 33, 34, 35, 48, 49, 50, 51, 52, 57, 64, 65};
  const char interesting[] = {0, 1, 7, 8, 0x7f, char(0x80), char(0xff)};
  int changed = 0;
  for (int i = 0; i < 2500; ++i) {
    RowGroupParts damaged = parts;
    std::string& column = damaged.columns[attribute_columns[rng() % std::size(attribute_columns)]];
    if (column.empty()) continue;
    size_t at = rng() % column.size();
    switch (rng() % 4) {
      case 0: column[at] = interesting[rng() % std::size(interesting)]; break;
      case 1: column[at] ^= char(1 + rng() % 255); break;
      case 2: column.resize(at); break;
      default: column.insert(at, 1, char(rng())); break;
    }
    int before = corrupt;
    ExpectReadOrCorruption(PutTogether(damaged), filters, "column change " + std::to_string(i), corrupt);
    changed += corrupt > before;
    if (HasFailure()) return;
  }
  EXPECT_GT(changed, 1000);  // most changes are noticed; the rest decode as other valid values
}

TEST(DeduplicateTest, MergeDropsRepeatsAndRegroups) {
  TraceGenerator gen(1);
  TraceId id = *ParseTraceIdHex("77");
  otlp::TracesData a = gen.Trace(id, 1000);
  otlp::TracesData b = a;  // every span again
  otlp::TracesData c = gen.Trace(id, 2000);
  size_t unique_a = SpanSet([&] { otlp::TracesData x = a; DeduplicateSpans(x); return x; }()).size();
  size_t unique_c = SpanSet([&] { otlp::TracesData x = c; DeduplicateSpans(x); return x; }()).size();
  otlp::TracesData merged = a;
  MergeTraceInto(merged, std::move(b));
  EXPECT_EQ(merged.SpanCount(), unique_a);
  MergeTraceInto(merged, std::move(c));
  EXPECT_EQ(merged.SpanCount(), unique_a + unique_c);
  // Same span ID with another kind is another span (a client and a server sharing an ID).
  otlp::TracesData d;
  auto& spans = d.resource_spans.emplace_back().scope_spans.emplace_back().spans;
  otlp::Span client;
  client.span_id = "12345678";
  client.kind = otlp::SpanKind::kClient;
  otlp::Span server = client;
  server.kind = otlp::SpanKind::kServer;
  spans = {client, server, client};
  DeduplicateSpans(d);
  EXPECT_EQ(d.SpanCount(), 2u);
  otlp::TracesData empty;
  DeduplicateSpans(empty);
  EXPECT_TRUE(empty.resource_spans.empty());
}

TEST(ObjectNameTest, UnsafeNamesAreRejected) {
  for (const char* bad : {"", "../x", "/abs", "a//b", "a/./b", "a/..", "a/", ".", "..", "x/../../etc/passwd", "/"})
    EXPECT_FALSE(backend::IsSafeObjectName(bad)) << "'" << bad << "'";
  EXPECT_FALSE(backend::IsSafeObjectName(std::string_view("a\0b", 3)));
  for (const char* good : {"a", "a/b/c", "tenant/0f1e-2d/meta.json", "..a", "a..", ".hidden", "a/b.c"})
    EXPECT_TRUE(backend::IsSafeObjectName(good)) << "'" << good << "'";
}

TEST(ObjectNameTest, LocalStoreRefusesUnsafeNames) {
  TempDir dir;
  auto store = backend::NewLocalObjectStore(dir.path() + "/root", ::tracery::DefaultEnv());
  EXPECT_EQ(store->Write("../escape", "x").code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(dir.path() + "/escape"));
  EXPECT_EQ(store->Read("../escape").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->ReadRange("/etc/passwd", 0, 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Delete("..").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->List("a//b").status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(store->Write("a/b", "hello").ok());
  auto range = store->ReadRange("a/b", 1, 3);
  ASSERT_TRUE(range.ok());
  EXPECT_EQ(*range, "ell");
  EXPECT_FALSE(store->ReadRange("a/b", 3, 10).ok());
  EXPECT_EQ(store->Read("a/missing").status().code(), StatusCode::kNotFound);
}

TEST(BlockIdTest, NewBlockIdsAreUuids) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    std::string id = NewBlockId();
    ASSERT_EQ(id.size(), 36u);
    EXPECT_EQ(id[8], '-');
    EXPECT_EQ(id[14], '4');
    EXPECT_TRUE(backend::IsSafeObjectName(id));
    EXPECT_TRUE(seen.insert(id).second);
  }
}

}  // namespace
}  // namespace tracery::block
