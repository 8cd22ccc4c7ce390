// The row group format's private parts, shared by the files of block/ that read it: column
// IDs (on-disk format: docs/block-format.md) and the decoder.
#pragma once

#include <zstd.h>

#include <bit>
#include <cstring>
#include <memory>
#include <tuple>
#include <string>
#include <string_view>
#include <vector>

#include "block/row_group.h"
#include "block/span_filter.h"
#include "common/coding.h"
#include "common/crc32c.h"

namespace tracery::block::internal {

constexpr uint32_t kRowGroupMagic = 0x47525254;  // "TRRG"

// Column IDs are part of the on-disk format (docs/block-format.md): never renumber.
enum Column : uint32_t {
  kDictionary = 0, kResources, kScopes,
  kTraceIds, kTraceSpanCounts, kTraceStarts,
  kSpanIds, kParents, kParentRaw, kNames, kResourceRefs, kScopeRefs, kKinds, kStatusCodes,
  kStatusMessages, kStarts, kDurations, kFlags, kTraceStates, kDroppedCounts,
  kEventCounts, kEventTimes, kEventNames, kEventDropped,
  kLinkCounts, kLinkTraceIds, kLinkSpanIds, kLinkTraceStates, kLinkFlags, kLinkDropped,
  kAttributeBase,  // three attribute sets (span, event, link), kAttributeColumns columns each
};
constexpr uint32_t kAttributeColumns = 6;  // count, key, type, string, int, other
enum AttributeSet { kSpanAttributes = 0, kEventAttributes = 1, kLinkAttributes = 2 };
constexpr uint32_t kColumnCountV1 = kAttributeBase + 3 * kAttributeColumns;  // 48: every row group has these
// Format 2: the row group's common span attribute keys, one value column per key, and which
// of the keys each span has.
constexpr uint32_t kDedicatedKeys = kColumnCountV1;
constexpr uint32_t kDedicatedValueBase = kDedicatedKeys + 1;
constexpr uint32_t kMaxDedicatedKeys = 16;
constexpr uint32_t kDedicatedPresence = kDedicatedValueBase + kMaxDedicatedKeys;
constexpr uint32_t kColumnCount = kDedicatedPresence + 1;  // 66, what writers of format 2 write

// The generic stream's type byte. kDedicated (format 2): the value is the span's entry in the
// dedicated column of the attribute's key.
enum ValueType : uint8_t { kEmpty = 0, kString, kFalse, kTrue, kInt, kDouble, kComplex, kDedicated };

inline uint32_t AttributeColumn(int set, uint32_t which) { return kAttributeBase + uint32_t(set) * kAttributeColumns + which; }

// A dedicated column's entry: a varint whose low 3 bits are the tag and the rest its payload.
enum DedicatedTag : uint8_t {
  kTagAbsent = 0,   // the span lacks the key: no entry (its presence bit is clear), never in a column
  kTagGeneric,      // the value is in the generic stream (repeated key, complex value, huge int)
  kTagFalse, kTagTrue,
  kTagString,       // payload: dictionary ID
  kTagInt,          // payload: zigzag, below 2^61
  kTagDouble,       // no payload; the double's 8 bytes follow
  kTagEmpty,
};
constexpr uint64_t kDedicatedPayloadLimit = 1ull << 61;

struct DedicatedValue {
  uint8_t tag = kTagAbsent;
  uint64_t payload = 0;  // kTagString: dictionary ID; kTagInt: zigzag; kTagDouble: the double's bits
};

inline void PutDedicatedValue(std::string& column, DedicatedTag tag, uint64_t payload) {
  if (tag == kTagDouble) {
    PutVarint(column, kTagDouble);
    PutFixed64(column, payload);
    return;
  }
  PutVarint(column, payload << 3 | tag);
}

// Reads one entry; false when the column ends or the entry is not one a writer makes.
[[gnu::always_inline]] inline bool ReadDedicatedValue(ByteReader& column, DedicatedValue& out) {
  uint64_t code;
  if (!column.ReadVarint(code)) return false;
  out.tag = uint8_t(code & 7);
  out.payload = code >> 3;
  if (out.tag == kTagDouble) return out.payload == 0 && column.ReadFixed64(out.payload);
  return out.tag != kTagAbsent && (out.payload == 0 || out.tag == kTagString || out.tag == kTagInt);
}


class RowGroupDecoder {
 public:
  // Decompresses the columns in `wanted` (all when null); the others are neither checked nor
  // decompressed, and reading them fails.
  Status Open(std::string_view bytes, const std::vector<bool>* wanted = nullptr) {
    ByteReader header(bytes);
    uint32_t magic;
    uint64_t columns;
    if (!header.ReadFixed32(magic) || magic != kRowGroupMagic) return Status::Corruption("row group: bad magic");
    if (!header.ReadVarint(columns) || columns < kColumnCountV1 || columns > 4096 || !header.ReadVarint(dictionary_size_) ||
        !header.ReadVarint(resource_count_) || !header.ReadVarint(scope_count_))
      return Status::Corruption("row group: bad header");
    chunks_.assign(columns, Chunk());
    for (auto& chunk : chunks_)
      if (!header.ReadVarint(chunk.raw) || !header.ReadVarint(chunk.compressed) || !header.ReadFixed32(chunk.crc))
        return Status::Corruption("row group: bad column table");
    size_t offset = bytes.size() - header.remaining();
    for (auto& chunk : chunks_) {
      if (chunk.compressed > bytes.size() - offset) return Status::Corruption("row group: truncated column");
      chunk.bytes = bytes.substr(offset, chunk.compressed);
      offset += chunk.compressed;
    }
    columns_.assign(columns, std::string());
    loaded_.assign(columns, false);
    return Load(wanted);
  }

  // Decompresses the columns in `wanted` (all when null) that are not loaded yet, parses the
  // tables among them, and starts every column over from its first value (a new pass).
  Status Load(const std::vector<bool>* wanted) {
    for (size_t c = 0; c < chunks_.size(); ++c) {
      if (loaded_[c] || (wanted && (c >= wanted->size() || !(*wanted)[c]))) continue;
      const Chunk& chunk = chunks_[c];
      if (Crc32c(chunk.bytes) != chunk.crc) return Status::Corruption("row group: column checksum mismatch");
      loaded_[c] = true;
      if (chunk.raw == 0) continue;
      if (chunk.raw > (1ull << 31)) return Status::Corruption("row group: column too large");
      if (chunk.compressed == chunk.raw) {  // stored raw
        columns_[c].assign(chunk.bytes);
        continue;
      }
      columns_[c].resize(chunk.raw);
      // One decompression context per thread, reused: creating one costs more than a small column.
      static thread_local std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> context(ZSTD_createDCtx(), ZSTD_freeDCtx);
      size_t n = ZSTD_decompressDCtx(context.get(), columns_[c].data(), chunk.raw, chunk.bytes.data(), chunk.bytes.size());
      if (ZSTD_isError(n) || n != chunk.raw) return Status::Corruption("row group: column does not decompress");
    }
    readers_.clear();
    for (const auto& column : columns_) readers_.emplace_back(column);
    trace_start_ = 0;
    // The tables of the columns loaded: the caller reads its other columns itself.
    if (loaded_[kDictionary] && !dictionary_parsed_) {
      dictionary_parsed_ = true;
      ByteReader reader(columns_[kDictionary]);
      for (uint64_t i = 0; i < dictionary_size_; ++i) {
        std::string_view text;
        if (!reader.ReadLengthPrefixed(text)) return Status::Corruption("row group: bad dictionary");
        dictionary_.push_back(text);
      }
    }
    for (auto [column, count, table, parsed] :
         {std::tuple{kResources, resource_count_, &resources_, &resources_parsed_},
          std::tuple{kScopes, scope_count_, &scopes_, &scopes_parsed_}}) {
      if (!loaded_[column] || *parsed) continue;
      *parsed = true;
      ByteReader reader(columns_[column]);
      for (uint64_t i = 0; i < count; ++i) {
        std::string_view encoded, schema;
        if (!reader.ReadLengthPrefixed(encoded) || !reader.ReadLengthPrefixed(schema))
          return Status::Corruption("row group: bad resource or scope table");
        table->push_back({encoded, schema});
      }
    }
    if (kDedicatedKeys < loaded_.size() && loaded_[kDedicatedKeys] && !dedicated_parsed_)
      TRACERY_RETURN_IF_ERROR(ParseDedicatedKeys());
    if (dedicated_parsed_ && dictionary_parsed_ && !dedicated_indexed_) TRACERY_RETURN_IF_ERROR(IndexDedicatedKeys());
    // Tables are read through the lists above, never as streams.
    readers_[kDictionary] = ByteReader(std::string_view());
    readers_[kResources] = ByteReader(std::string_view());
    readers_[kScopes] = ByteReader(std::string_view());
    if (kDedicatedKeys < readers_.size()) readers_[kDedicatedKeys] = ByteReader(std::string_view());
    return Status::Ok();
  }

  // The columns a projected scan decompresses.
  static std::vector<bool> ColumnsFor(const Projection& projection) {
    std::vector<bool> wanted(kColumnCount, false);
    for (uint32_t c : {kResources, kScopes, kTraceIds, kTraceSpanCounts, kTraceStarts, kSpanIds, kParents, kParentRaw,
                       kResourceRefs, kScopeRefs, kKinds, kStatusCodes, kStarts, kDurations})
      wanted[c] = true;
    wanted[kNames] = projection.names;
    wanted[kDictionary] = projection.names || projection.status_message || projection.span_attributes ||
                          projection.events || projection.links;
    wanted[kStatusMessages] = projection.status_message;
    for (uint32_t k = 0; k < kAttributeColumns; ++k) {
      wanted[AttributeColumn(kSpanAttributes, k)] = projection.span_attributes;
      wanted[AttributeColumn(kEventAttributes, k)] = projection.events;
      wanted[AttributeColumn(kLinkAttributes, k)] = projection.links;
    }
    for (uint32_t c = kDedicatedKeys; c < kColumnCount; ++c) wanted[c] = projection.span_attributes;
    for (uint32_t c : {kEventCounts, kEventTimes, kEventNames, kEventDropped}) wanted[c] = projection.events;
    for (uint32_t c : {kLinkCounts, kLinkTraceIds, kLinkSpanIds, kLinkTraceStates, kLinkFlags, kLinkDropped})
      wanted[c] = projection.links;
    return wanted;
  }

  // The resource and scope tables, decoded through the calling thread's cache (spans point
  // into them; see RowGroupTables).
  Status DecodeTables(RowGroupTables& tables) const;

  // Decodes the next trace's spans into `spans` (reusing its objects and their buffers:
  // no allocation once warm), reading only the projection's columns (Open must have
  // decompressed ColumnsFor(projection)). `count` is set to the trace's span count.
  bool NextTraceSpans(TraceId& id, std::vector<DecodedSpan>& spans, size_t& count, const Projection& projection) {
    std::string_view raw_id;
    uint64_t span_count, start_delta;
    if (!readers_[kTraceIds].ReadBytes(16, raw_id) || !readers_[kTraceSpanCounts].ReadVarint(span_count) ||
        !readers_[kTraceStarts].ReadVarint(start_delta) || span_count > (1u << 30))
      return false;
    id = TraceId::FromBytes(raw_id);
    trace_start_ += uint64_t(UnZigZag(start_delta));
    if (spans.size() < span_count) spans.resize(span_count);
    parent_codes_.resize(span_count);
    for (uint64_t i = 0; i < span_count; ++i) {
      DecodedSpan& d = spans[i];
      uint64_t resource = 0, scope = 0;
      if (!ReadSpanProjected(d.span, parent_codes_[i], resource, scope, projection)) return false;
      d.span.trace_id.clear();  // the trace's ID comes with the visit, not in every span
      if (resource >= resources_.size() || scope >= scopes_.size()) return false;
      d.resource = uint32_t(resource);
      d.scope = uint32_t(scope);
    }
    for (uint64_t i = 0; i < span_count; ++i) {
      if (parent_codes_[i] >= 2) {
        if (parent_codes_[i] - 2 >= span_count) return false;
        spans[i].span.parent_span_id = spans[parent_codes_[i] - 2].span.span_id;
      }
    }
    count = size_t(span_count);
    return true;
  }

  // Moves the projection's columns past the next trace without decoding it (no objects, no
  // strings): what a scan does with a trace it does not visit. Column by column, in bulk.
  bool SkipTrace(const Projection& projection) {
    std::string_view raw;
    uint64_t span_count, start_delta;
    if (!readers_[kTraceIds].ReadBytes(16, raw) || !readers_[kTraceSpanCounts].ReadVarint(span_count) ||
        !readers_[kTraceStarts].ReadVarint(start_delta) || span_count > (1u << 30))
      return false;
    trace_start_ += uint64_t(UnZigZag(start_delta));
    const uint64_t n = span_count;
    if (n > readers_[kSpanIds].remaining() / 8 || !readers_[kSpanIds].ReadBytes(size_t(n * 8), raw)) return false;
    uint64_t raw_parents = 0;
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t code;
      if (!readers_[kParents].ReadVarint(code)) return false;
      raw_parents += code == 1;
    }
    if (raw_parents > readers_[kParentRaw].remaining() / 8 || !readers_[kParentRaw].ReadBytes(size_t(raw_parents * 8), raw))
      return false;
    if (n > readers_[kKinds].remaining() || n > readers_[kStatusCodes].remaining() ||
        !readers_[kKinds].ReadBytes(size_t(n), raw) || !readers_[kStatusCodes].ReadBytes(size_t(n), raw) ||
        !SkipVarints(kResourceRefs, n) || !SkipVarints(kScopeRefs, n) || !SkipVarints(kStarts, n) ||
        !SkipVarints(kDurations, n) || (projection.names && !SkipVarints(kNames, n)) ||
        (projection.status_message && !SkipVarints(kStatusMessages, n)) ||
        (projection.span_attributes && !SkipAttributes(kSpanAttributes, n)))
      return false;
    if (projection.events) {
      uint64_t events;
      if (!SumVarints(kEventCounts, n, events) || !SkipVarints(kEventTimes, events) || !SkipVarints(kEventNames, events) ||
          !SkipVarints(kEventDropped, events) || !SkipAttributes(kEventAttributes, events))
        return false;
    }
    if (projection.links) {
      uint64_t links;
      if (!SumVarints(kLinkCounts, n, links)) return false;
      for (uint64_t i = 0; i < links; ++i)
        if (!readers_[kLinkTraceIds].ReadLengthPrefixed(raw) || !readers_[kLinkSpanIds].ReadLengthPrefixed(raw))
          return false;
      if (!SkipVarints(kLinkTraceStates, links) || !SkipVarints(kLinkFlags, links) || !SkipVarints(kLinkDropped, links) ||
          !SkipAttributes(kLinkAttributes, links))
        return false;
    }
    return true;
  }

  // Compaction's streaming read (row_group_stream.cpp), every column loaded: the next trace's
  // ID, span count and start, then its spans one at a time into `span` (reused: no allocation
  // once warm) with their resource and scope refs. A trace's spans are all read before the
  // next trace's header.
  bool NextTraceHeader(TraceEntry& entry);
  bool NextStreamedSpan(otlp::Span& span, uint32_t& resource, uint32_t& scope);

  ByteReader& Column(uint32_t column) { return readers_[column]; }
  bool loaded(uint32_t column) const { return column < loaded_.size() && loaded_[column]; }
  // The dedicated column (0-based, after kDedicatedValueBase) of a span attribute key given
  // by dictionary ID, or -1 when its values are in the generic stream. Known once the
  // dictionary and column kDedicatedKeys are loaded.
  int DedicatedIndex(uint64_t key) const { return key < dedicated_index_.size() ? dedicated_index_[key] : -1; }
  // The same by name, from column kDedicatedKeys alone (a filter on a number needs no dictionary).
  int DedicatedIndex(std::string_view name) const {
    for (size_t d = 0; d < dedicated_names_.size(); ++d)
      if (dedicated_names_[d] == name) return int(d);
    return -1;
  }
  const std::vector<uint32_t>& dedicated_keys() const { return dedicated_keys_; }
  const std::vector<std::string_view>& dictionary() const { return dictionary_; }
  const std::vector<std::pair<std::string_view, std::string_view>>& resources() const { return resources_; }
  const std::vector<std::pair<std::string_view, std::string_view>>& scopes() const { return scopes_; }

  // The trace columns alone: IDs, span counts, start times.
  Status ListTraces(std::vector<TraceEntry>& out) {
    out.clear();
    uint64_t start = 0;
    while (!readers_[kTraceIds].empty()) {
      std::string_view raw_id;
      uint64_t span_count, start_delta;
      if (!readers_[kTraceIds].ReadBytes(16, raw_id) || !readers_[kTraceSpanCounts].ReadVarint(span_count) ||
          !readers_[kTraceStarts].ReadVarint(start_delta) || span_count > UINT32_MAX)
        return Status::Corruption("row group: bad trace columns");
      start += uint64_t(UnZigZag(start_delta));
      out.push_back({TraceId::FromBytes(raw_id), uint32_t(span_count), start});
    }
    return Status::Ok();
  }

  // Decodes the next trace; when `out` is null the trace is read past and dropped.
  bool NextTrace(TraceId& id, otlp::TracesData* out) {
    std::string_view raw_id;
    uint64_t span_count, start_delta;
    if (!readers_[kTraceIds].ReadBytes(16, raw_id) || !readers_[kTraceSpanCounts].ReadVarint(span_count) ||
        !readers_[kTraceStarts].ReadVarint(start_delta))
      return false;
    id = TraceId::FromBytes(raw_id);
    trace_start_ += uint64_t(UnZigZag(start_delta));
    resource_of_.clear();  // positions within this trace's resource_spans
    scope_of_.clear();
    std::vector<std::string> span_ids(span_count);
    struct Placed { uint32_t resource, scope; otlp::Span span; };
    std::vector<Placed> spans(out ? span_count : 0);
    otlp::Span scratch;
    std::vector<uint64_t> parent_codes(span_count);
    for (uint64_t i = 0; i < span_count; ++i) {
      otlp::Span& s = out ? spans[i].span : scratch;
      s = otlp::Span();
      uint64_t resource = 0, scope = 0;
      if (!ReadSpan(s, parent_codes[i], resource, scope)) return false;
      s.trace_id.assign(raw_id);
      span_ids[i] = s.span_id;
      if (out) {
        if (resource >= resources_.size() || scope >= scopes_.size()) return false;
        spans[i].resource = uint32_t(resource);
        spans[i].scope = uint32_t(scope);
      }
    }
    if (!out) return true;
    for (uint64_t i = 0; i < span_count; ++i) {
      if (parent_codes[i] >= 2) {
        if (parent_codes[i] - 2 >= span_count) return false;
        spans[i].span.parent_span_id = span_ids[parent_codes[i] - 2];
      }
    }
    // Group by (resource, scope) in order of first appearance, as the spans were stored.
    for (auto& placed : spans) {
      otlp::ResourceSpans* rs = nullptr;
      for (size_t r = 0; r < out->resource_spans.size(); ++r)
        if (resource_of_[r] == placed.resource) rs = &out->resource_spans[r];
      if (!rs) {
        rs = &out->resource_spans.emplace_back();
        resource_of_.push_back(placed.resource);
        scope_of_.emplace_back();
        if (!otlp::DecodeResource(resources_[placed.resource].first, rs->resource).ok()) return false;
        rs->schema_url.assign(resources_[placed.resource].second);
      }
      size_t r = size_t(rs - out->resource_spans.data());
      otlp::ScopeSpans* ss = nullptr;
      for (size_t k = 0; k < rs->scope_spans.size(); ++k)
        if (scope_of_[r][k] == placed.scope) ss = &rs->scope_spans[k];
      if (!ss) {
        ss = &rs->scope_spans.emplace_back();
        scope_of_[r].push_back(placed.scope);
        if (!otlp::DecodeScope(scopes_[placed.scope].first, ss->scope).ok()) return false;
        ss->schema_url.assign(scopes_[placed.scope].second);
      }
      ss->spans.push_back(std::move(placed.span));
    }
    return true;
  }

 private:
  bool SkipVarints(uint32_t column, uint64_t count) {
    ByteReader& reader = readers_[column];
    uint64_t value;
    for (uint64_t i = 0; i < count; ++i)
      if (!reader.ReadVarint(value)) return false;
    return true;
  }

  bool SumVarints(uint32_t column, uint64_t count, uint64_t& sum) {
    ByteReader& reader = readers_[column];
    sum = 0;
    for (uint64_t i = 0; i < count; ++i) {
      uint64_t value;
      if (!reader.ReadVarint(value) || value > (1u << 30)) return false;
      sum += value;
    }
    return true;
  }

  // Skips the attributes of `owners` spans, events or links of one set: a span's dedicated
  // entries (presence first), then the generic stream's keys, types and the values they name.
  bool SkipAttributes(int set, uint64_t owners) {
    if (set == kSpanAttributes && !dedicated_keys_.empty()) {
      DedicatedValue value;
      for (uint64_t i = 0; i < owners; ++i) {
        uint64_t presence;
        if (!readers_[kDedicatedPresence].ReadVarint(presence) || presence >> dedicated_keys_.size()) return false;
        for (; presence; presence &= presence - 1)
          if (!ReadDedicatedValue(readers_[kDedicatedValueBase + std::countr_zero(presence)], value)) return false;
      }
    }
    uint64_t count;
    if (!SumVarints(AttributeColumn(set, 0), owners, count) || !SkipVarints(AttributeColumn(set, 1), count)) return false;
    std::string_view types, value;
    if (count > readers_[AttributeColumn(set, 2)].remaining() || !readers_[AttributeColumn(set, 2)].ReadBytes(size_t(count), types))
      return false;
    ByteReader& strings = readers_[AttributeColumn(set, 3)];
    ByteReader& ints = readers_[AttributeColumn(set, 4)];
    ByteReader& others = readers_[AttributeColumn(set, 5)];
    uint64_t number;
    for (char type : types) {
      switch (uint8_t(type)) {
        case kString: if (!strings.ReadVarint(number)) return false; break;
        case kInt: if (!ints.ReadVarint(number)) return false; break;
        case kDouble: if (!others.ReadFixed64(number)) return false; break;
        case kComplex: if (!others.ReadLengthPrefixed(value)) return false; break;
        case kEmpty: case kFalse: case kTrue: break;
        case kDedicated: if (set != kSpanAttributes) return false; break;
        default: return false;
      }
    }
    return true;
  }

  bool Text(uint32_t column, std::string& out) {
    uint64_t index;
    if (!readers_[column].ReadVarint(index) || index >= dictionary_.size()) return false;
    out.assign(dictionary_[index]);
    return true;
  }

  bool Byte(uint32_t column, uint8_t& out) {
    std::string_view b;
    if (!readers_[column].ReadBytes(1, b)) return false;
    out = uint8_t(b[0]);
    return true;
  }

  template <typename T>
  bool Small(uint32_t column, T& out) {
    uint64_t v;
    if (!readers_[column].ReadVarint(v)) return false;
    out = static_cast<T>(v);
    return true;
  }

  // Column kDedicatedKeys: the keys with a dedicated column (dictionary ID and name), none in
  // a format 1 row group (which has no such column).
  Status ParseDedicatedKeys() {
    dedicated_parsed_ = true;
    ByteReader reader(columns_[kDedicatedKeys]);
    uint64_t count;
    if (!reader.ReadVarint(count) || count > kMaxDedicatedKeys || kDedicatedPresence >= chunks_.size())
      return Status::Corruption("row group: bad dedicated key count");
    for (uint64_t i = 0; i < count; ++i) {
      uint64_t key;
      std::string_view name;
      if (!reader.ReadVarint(key) || key >= dictionary_size_ || !reader.ReadLengthPrefixed(name))
        return Status::Corruption("row group: bad dedicated key");
      dedicated_keys_.push_back(uint32_t(key));
      dedicated_names_.push_back(name);
    }
    return reader.empty() ? Status::Ok() : Status::Corruption("row group: bad dedicated keys");
  }

  // Maps dictionary IDs to dedicated columns, once per row group, checking the names agree.
  Status IndexDedicatedKeys() {
    dedicated_indexed_ = true;
    dedicated_index_.assign(dictionary_.size(), -1);
    for (size_t d = 0; d < dedicated_keys_.size(); ++d) {
      uint32_t key = dedicated_keys_[d];
      if (key >= dictionary_.size() || dedicated_index_[key] >= 0 || dictionary_[key] != dedicated_names_[d])
        return Status::Corruption("row group: dedicated key does not match the dictionary");
      dedicated_index_[key] = int8_t(d);
    }
    return Status::Ok();
  }

  // The span's entries of the dedicated keys it has, read before its attributes: the
  // presence column says which (each span has a presence entry when the row group has
  // dedicated keys), whether or not the generic stream names the key.
  bool ReadDedicatedEntries() {
    dedicated_pending_ = 0;
    if (dedicated_keys_.empty()) return true;
    uint64_t presence;
    if (!readers_[kDedicatedPresence].ReadVarint(presence) || presence >> dedicated_keys_.size()) return false;
    for (; presence; presence &= presence - 1) {  // the keys the span has, lowest first
      int i = std::countr_zero(presence);
      if (!ReadDedicatedValue(readers_[kDedicatedValueBase + i], span_dedicated_[i])) return false;
      if (span_dedicated_[i].tag >= kTagFalse) dedicated_pending_ |= 1u << i;
    }
    return true;
  }

  // The value of a kDedicated attribute: this span's entry of its key, which only one
  // attribute may take.
  bool TakeDedicated(uint64_t key, otlp::AnyValue& v) {
    int index = DedicatedIndex(key);
    if (index < 0 || !(dedicated_pending_ & (1u << index))) return false;
    dedicated_pending_ &= ~(1u << index);
    const DedicatedValue& d = span_dedicated_[index];
    switch (d.tag) {
      case kTagFalse: case kTagTrue: v.type = otlp::AnyValue::Type::kBool; v.bool_value = d.tag == kTagTrue; break;
      case kTagString:
        if (d.payload >= dictionary_.size()) return false;
        v.type = otlp::AnyValue::Type::kString;
        v.string_value.assign(dictionary_[d.payload]);
        break;
      case kTagInt: v.type = otlp::AnyValue::Type::kInt; v.int_value = UnZigZag(d.payload); break;
      case kTagDouble: v.type = otlp::AnyValue::Type::kDouble; std::memcpy(&v.double_value, &d.payload, 8); break;
      default: v = otlp::AnyValue(); break;  // kTagEmpty
    }
    return true;
  }

  bool Attributes(int set, otlp::Attributes& out) {
    const bool span = set == kSpanAttributes;
    if (span && !ReadDedicatedEntries()) return false;
    uint64_t count;
    if (!readers_[AttributeColumn(set, 0)].ReadVarint(count) || count > readers_[AttributeColumn(set, 2)].remaining())
      return false;
    out.resize(count);
    for (auto& kv : out) {
      uint64_t key;
      uint8_t type;
      if (!readers_[AttributeColumn(set, 1)].ReadVarint(key) || key >= dictionary_.size() ||
          !Byte(AttributeColumn(set, 2), type))
        return false;
      kv.key.assign(dictionary_[key]);
      otlp::AnyValue& v = kv.value;
      switch (type) {
        case kEmpty: v = otlp::AnyValue(); break;
        case kString: v.type = otlp::AnyValue::Type::kString; if (!Text(AttributeColumn(set, 3), v.string_value)) return false; break;
        case kFalse: case kTrue: v.type = otlp::AnyValue::Type::kBool; v.bool_value = type == kTrue; break;
        case kInt: {
          uint64_t z;
          if (!readers_[AttributeColumn(set, 4)].ReadVarint(z)) return false;
          v.type = otlp::AnyValue::Type::kInt;
          v.int_value = UnZigZag(z);
          break;
        }
        case kDouble: {
          uint64_t bits;
          if (!readers_[AttributeColumn(set, 5)].ReadFixed64(bits)) return false;
          v.type = otlp::AnyValue::Type::kDouble;
          std::memcpy(&v.double_value, &bits, 8);
          break;
        }
        case kComplex: {
          std::string_view encoded;
          otlp::Attributes one;
          if (!readers_[AttributeColumn(set, 5)].ReadLengthPrefixed(encoded) ||
              !otlp::DecodeAttributes(encoded, one).ok() || one.size() != 1)
            return false;
          v = std::move(one[0].value);
          break;
        }
        case kDedicated:
          if (!span || !TakeDedicated(key, v)) return false;
          break;
        default: return false;
      }
    }
    return dedicated_pending_ == 0;  // a dedicated value no attribute took: the columns disagree
  }

  // A span's events and links, from their columns (times relative to the span's start).
  bool ReadEvents(otlp::Span& s) {
    uint64_t event_count;
    if (!readers_[kEventCounts].ReadVarint(event_count) || event_count > readers_[kEventTimes].remaining()) return false;
    s.events.resize(event_count);
    for (auto& e : s.events) {
      uint64_t delta;
      if (!readers_[kEventTimes].ReadVarint(delta) || !Text(kEventNames, e.name) ||
          !Small(kEventDropped, e.dropped_attributes_count) || !Attributes(kEventAttributes, e.attributes))
        return false;
      e.time_unix_nano = s.start_time_unix_nano + uint64_t(UnZigZag(delta));
    }
    return true;
  }

  bool ReadLinks(otlp::Span& s) {
    uint64_t link_count;
    if (!readers_[kLinkCounts].ReadVarint(link_count) || link_count > readers_[kLinkTraceIds].remaining()) return false;
    s.links.resize(link_count);
    for (auto& l : s.links) {
      std::string_view trace_id, span_id;
      if (!readers_[kLinkTraceIds].ReadLengthPrefixed(trace_id) || !readers_[kLinkSpanIds].ReadLengthPrefixed(span_id) ||
          !Text(kLinkTraceStates, l.trace_state) || !Small(kLinkFlags, l.flags) ||
          !Small(kLinkDropped, l.dropped_attributes_count) || !Attributes(kLinkAttributes, l.attributes))
        return false;
      l.trace_id.assign(trace_id);
      l.span_id.assign(span_id);
    }
    return true;
  }

  bool ReadSpan(otlp::Span& s, uint64_t& parent_code, uint64_t& resource, uint64_t& scope) {
    std::string_view raw;
    uint8_t kind, code;
    uint64_t start_offset, duration;
    if (!readers_[kSpanIds].ReadBytes(8, raw)) return false;
    s.span_id.assign(raw);
    if (!readers_[kParents].ReadVarint(parent_code)) return false;
    if (parent_code == 1) {
      if (!readers_[kParentRaw].ReadBytes(8, raw)) return false;
      s.parent_span_id.assign(raw);
    }
    if (!Text(kNames, s.name) || !readers_[kResourceRefs].ReadVarint(resource) ||
        !readers_[kScopeRefs].ReadVarint(scope) || !Byte(kKinds, kind) || !Byte(kStatusCodes, code) ||
        !Text(kStatusMessages, s.status_message) || !readers_[kStarts].ReadVarint(start_offset) ||
        !readers_[kDurations].ReadVarint(duration) || !Small(kFlags, s.flags) || !Text(kTraceStates, s.trace_state) ||
        !Small(kDroppedCounts, s.dropped_attributes_count) || !Small(kDroppedCounts, s.dropped_events_count) ||
        !Small(kDroppedCounts, s.dropped_links_count) || !Attributes(kSpanAttributes, s.attributes))
      return false;
    s.kind = otlp::SpanKind(kind <= 5 ? kind : 0);
    s.status_code = otlp::StatusCode(code <= 2 ? code : 0);
    s.start_time_unix_nano = trace_start_ + start_offset;
    s.end_time_unix_nano = s.start_time_unix_nano + uint64_t(UnZigZag(duration));
    return ReadEvents(s) && ReadLinks(s);
  }

  bool ReadSpanProjected(otlp::Span& s, uint64_t& parent_code, uint64_t& resource, uint64_t& scope,
                         const Projection& projection) {
    std::string_view raw;
    uint8_t kind, code;
    uint64_t start_offset, duration;
    if (!readers_[kSpanIds].ReadBytes(8, raw)) return false;
    s.span_id.assign(raw);
    s.parent_span_id.clear();
    if (!readers_[kParents].ReadVarint(parent_code)) return false;
    if (parent_code == 1) {
      if (!readers_[kParentRaw].ReadBytes(8, raw)) return false;
      s.parent_span_id.assign(raw);
    }
    s.name.clear();
    if ((projection.names && !Text(kNames, s.name)) || !readers_[kResourceRefs].ReadVarint(resource) ||
        !readers_[kScopeRefs].ReadVarint(scope) ||
        !Byte(kKinds, kind) || !Byte(kStatusCodes, code) || !readers_[kStarts].ReadVarint(start_offset) ||
        !readers_[kDurations].ReadVarint(duration))
      return false;
    s.kind = otlp::SpanKind(kind <= 5 ? kind : 0);
    s.status_code = otlp::StatusCode(code <= 2 ? code : 0);
    s.start_time_unix_nano = trace_start_ + start_offset;
    s.end_time_unix_nano = s.start_time_unix_nano + uint64_t(UnZigZag(duration));
    s.status_message.clear();
    if (projection.status_message && !Text(kStatusMessages, s.status_message)) return false;
    s.attributes.clear();
    if (projection.span_attributes && !Attributes(kSpanAttributes, s.attributes)) return false;
    s.events.clear();
    if (projection.events && !ReadEvents(s)) return false;
    s.links.clear();
    if (projection.links && !ReadLinks(s)) return false;
    return true;
  }

  std::vector<uint64_t> parent_codes_;
  struct Chunk {
    uint64_t raw = 0, compressed = 0;
    uint32_t crc = 0;
    std::string_view bytes;  // compressed, in the row group
  };
  std::vector<Chunk> chunks_;
  std::vector<bool> loaded_;
  uint64_t dictionary_size_ = 0, resource_count_ = 0, scope_count_ = 0;
  bool dictionary_parsed_ = false, resources_parsed_ = false, scopes_parsed_ = false;
  bool dedicated_parsed_ = false, dedicated_indexed_ = false;
  std::vector<uint32_t> dedicated_keys_;           // dictionary IDs, in column order
  std::vector<std::string_view> dedicated_names_;  // the same keys' names
  std::vector<int8_t> dedicated_index_;            // by dictionary ID: the key's dedicated column, or -1
  DedicatedValue span_dedicated_[kMaxDedicatedKeys];  // the current span's entries, where it has the key
  uint32_t dedicated_pending_ = 0;                     // bits: entries with a value no attribute took yet
  std::vector<std::string> columns_;
  std::vector<ByteReader> readers_;
  std::vector<std::string_view> dictionary_;
  std::vector<std::pair<std::string_view, std::string_view>> resources_, scopes_;
  std::vector<uint32_t> resource_of_;
  std::vector<std::vector<uint32_t>> scope_of_;
  uint64_t trace_start_ = 0;
  const char* streamed_span_ids_ = nullptr;  // the streamed trace's span IDs, in column kSpanIds
  uint64_t streamed_spans_ = 0;
};

// The filter's two steps (row_group_filter.cpp), here for tests that look at the columns read.
// The columns a filter needs first: its own and the dedicated keys (the dictionary and the
// span attribute columns follow when MarkCandidates knows which it needs).
void AddFilterColumns(const SpanFilter& filter, std::vector<bool>& wanted);
// Marks the traces of a row group that have a span passing `filter` (not empty), reading
// `columns` (opened with AddFilterColumns' columns, at its start; left anywhere), and loading
// the span attribute columns the filter's keys need. `traces` receives the row group's trace
// list. Returns whether any trace passed.
Result<bool> MarkCandidates(RowGroupDecoder& columns, const SpanFilter& filter, std::vector<TraceEntry>& traces,
                            std::vector<bool>& candidate, uint64_t* spans_checked);

}  // namespace tracery::block::internal
