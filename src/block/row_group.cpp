#include "block/row_group.h"
#include "block/row_group_internal.h"

#include <xxhash.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "common/coding.h"
#include "common/crc32c.h"
#include "otlp/split.h"
#include "otlp/wire.h"

namespace tracery::block {
using namespace internal;
using otlp::kFixed64;
using otlp::kLengthDelimited;
using otlp::kVarint;
using otlp::PutTag;
using otlp::ReadField;
using otlp::WireField;
namespace {

std::string_view ServiceName(const otlp::Resource& resource) {
  for (const auto& kv : resource.attributes)
    if (kv.key == "service.name" && kv.value.type == otlp::AnyValue::Type::kString) return kv.value.string_value;
  return {};
}

// An array, key-value list or bytes value keeps its encoding, as a KeyValue with no key.
std::string EncodeComplexValue(std::string_view any_value) {
  std::string key_value, encoded;
  PutTag(key_value, 2, kLengthDelimited);
  PutLengthPrefixed(key_value, any_value);
  PutTag(encoded, 1, kLengthDelimited);
  PutLengthPrefixed(encoded, key_value);
  return encoded;
}

}  // namespace

size_t RowGroupBuilder::ViewHash::operator()(std::string_view v) const { return XXH3_64bits(v.data(), v.size()); }

void RowGroupBuilder::Reset() {
  stats_ = RowGroupStats();
  columns_.assign(format_version_ >= 2 ? kColumnCount : kColumnCountV1, std::string());
  dictionary_index_.clear();
  dictionary_.clear();
  resources_.clear();
  scopes_.clear();
  resource_index_.clear();
  scope_index_.clear();
  span_key_use_.clear();
  span_values_.clear();
  span_attribute_counts_.clear();
  span_complex_values_.clear();
  previous_trace_start_ = 0;
  last_resource_ref_ = last_scope_ref_ = UINT32_MAX;  // the tables are empty again
}

uint32_t RowGroupBuilder::Intern(std::string_view text) {
  auto it = dictionary_index_.find(text);
  if (it != dictionary_index_.end()) return it->second;
  auto id = uint32_t(dictionary_.size());
  const std::string& stored = dictionary_.emplace_back(text);
  dictionary_index_.emplace(stored, id);
  return id;
}

static std::string TableKey(std::string_view encoded, std::string_view schema) {
  std::string key;
  PutLengthPrefixed(key, encoded);
  key.append(schema);
  return key;
}

uint32_t RowGroupBuilder::ResourceRef(std::string_view resource, std::string_view schema) {
  auto [it, inserted] = resource_index_.try_emplace(TableKey(resource, schema), uint32_t(resources_.size()));
  if (inserted) {
    resources_.emplace_back(resource, schema);
    otlp::Resource decoded;
    if (otlp::DecodeResource(resource, decoded).ok()) {
      std::string_view service = ServiceName(decoded);
      if (!service.empty()) stats_.services.emplace(service);
    }
  }
  return it->second;
}

uint32_t RowGroupBuilder::ScopeRef(std::string_view scope, std::string_view schema) {
  auto [it, inserted] = scope_index_.try_emplace(TableKey(scope, schema), uint32_t(scopes_.size()));
  if (inserted) scopes_.emplace_back(scope, schema);
  return it->second;
}

// Pass 1 over a trace: where each span is, with its resource and scope, ID, kind and start.
bool RowGroupBuilder::CollectSpans(std::string_view encoded) {
  spans_.clear();
  ByteReader traces(encoded);
  WireField rs_field, f, g, h;
  while (!traces.empty()) {
    if (!ReadField(traces, rs_field)) return false;
    if (rs_field.number != 1) continue;
    if (rs_field.type != kLengthDelimited) return false;
    std::string_view resource, resource_schema;
    ByteReader rs(rs_field.bytes);
    while (!rs.empty()) {  // resource and schema first: they may follow the spans on the wire
      if (!ReadField(rs, f)) return false;
      if (f.number == 1 && f.type == kLengthDelimited) resource = f.bytes;
      if (f.number == 3 && f.type == kLengthDelimited) resource_schema = f.bytes;
    }
    uint32_t resource_ref = ResourceRef(resource, resource_schema);
    rs = ByteReader(rs_field.bytes);
    while (!rs.empty()) {
      ReadField(rs, f);
      if (f.number != 2 || f.type != kLengthDelimited) continue;
      std::string_view scope, scope_schema;
      ByteReader ss(f.bytes);
      while (!ss.empty()) {
        if (!ReadField(ss, g)) return false;
        if (g.number == 1 && g.type == kLengthDelimited) scope = g.bytes;
        if (g.number == 3 && g.type == kLengthDelimited) scope_schema = g.bytes;
      }
      uint32_t scope_ref = ScopeRef(scope, scope_schema);
      ss = ByteReader(f.bytes);
      while (!ss.empty()) {
        ReadField(ss, g);
        if (g.number != 2 || g.type != kLengthDelimited) continue;
        SpanRef span{g.bytes, {}, 0, 0, resource_ref, scope_ref};
        ByteReader fields(g.bytes);
        while (!fields.empty()) {
          if (!ReadField(fields, h)) return false;
          if (h.number == 2 && h.type == kLengthDelimited) span.span_id = h.bytes;
          else if (h.number == 6 && h.type == kVarint) span.kind = uint8_t(h.integer <= 5 ? h.integer : 0);
          else if (h.number == 7 && h.type == kFixed64) span.start = h.integer;
        }
        spans_.push_back(span);
      }
    }
  }
  return true;
}

bool RowGroupBuilder::AddAttribute(int set, std::string_view key_value) {
  std::string_view key, value;
  ByteReader kv(key_value);
  WireField f;
  while (!kv.empty()) {
    if (!ReadField(kv, f)) return false;
    if (f.number == 1 && f.type == kLengthDelimited) key = f.bytes;
    if (f.number == 2 && f.type == kLengthDelimited) value = f.bytes;
  }
  uint32_t key_id = Intern(key);
  PutVarint(columns_[AttributeColumn(set, 1)], key_id);
  // The last member of the oneof wins, as protobuf decoding does.
  WireField chosen;
  chosen.number = 0;
  ByteReader any(value);
  while (!any.empty()) {
    if (!ReadField(any, f)) return false;
    if (f.number >= 1 && f.number <= 7) chosen = f;
  }
  PendingValue pending{key_id, kEmpty, 0, 0};
  std::string complex;
  switch (chosen.number) {
    case 0: break;
    case 1: pending.type = kString; pending.value = Intern(chosen.bytes); break;
    case 2: pending.type = chosen.integer ? kTrue : kFalse; break;
    case 3: pending.type = kInt; pending.value = ZigZag(int64_t(chosen.integer)); break;
    case 4: pending.type = kDouble; pending.value = chosen.integer; break;
    default: pending.type = kComplex; complex = EncodeComplexValue(value); break;
  }
  if (set != kSpanAttributes) {
    PutGenericValue(set, pending.type, pending.value, complex);
    return true;
  }
  // A span attribute's value waits for Finish, which knows the keys that get a column.
  if (key_id >= span_key_use_.size()) span_key_use_.resize(key_id + 1);
  KeyUse& use = span_key_use_[key_id];
  auto span = uint32_t(span_attribute_counts_.size());  // the span being added
  if (use.last_span != span) {
    use.last_span = span;
    use.spans++;
  }
  if (pending.type == kComplex) {
    pending.value = span_complex_values_.size();
    pending.complex_size = uint32_t(complex.size());
    span_complex_values_ += complex;
  }
  span_values_.push_back(pending);
  return true;
}

void RowGroupBuilder::PutGenericValue(int set, uint8_t type, uint64_t value, std::string_view complex) {
  columns_[AttributeColumn(set, 2)] += char(type);
  switch (type) {
    case kString: PutVarint(columns_[AttributeColumn(set, 3)], value); break;
    case kInt: PutVarint(columns_[AttributeColumn(set, 4)], value); break;
    case kDouble: PutFixed64(columns_[AttributeColumn(set, 5)], value); break;
    case kComplex: PutLengthPrefixed(columns_[AttributeColumn(set, 5)], complex); break;
    default: break;  // the type says it all, or the value is in a dedicated column
  }
}

bool RowGroupBuilder::AddEvent(std::string_view event, uint64_t span_start) {
  uint64_t time = 0, dropped = 0, attributes = 0;
  std::string_view name;
  ByteReader in(event);
  WireField f;
  while (!in.empty()) {
    if (!ReadField(in, f)) return false;
    switch (f.number) {
      case 1: time = f.integer; break;
      case 2: name = f.bytes; break;
      case 3:
        if (!AddAttribute(kEventAttributes, f.bytes)) return false;
        attributes++;
        break;
      case 4: dropped = f.integer; break;
      default: break;
    }
  }
  PutVarint(columns_[kEventTimes], ZigZag(int64_t(time - span_start)));
  PutVarint(columns_[kEventNames], Intern(name));
  PutVarint(columns_[kEventDropped], dropped);
  PutVarint(columns_[AttributeColumn(kEventAttributes, 0)], attributes);
  return true;
}

bool RowGroupBuilder::AddLink(std::string_view link) {
  std::string_view trace_id, span_id, trace_state;
  uint64_t dropped = 0, flags = 0, attributes = 0;
  ByteReader in(link);
  WireField f;
  while (!in.empty()) {
    if (!ReadField(in, f)) return false;
    switch (f.number) {
      case 1: trace_id = f.bytes; break;
      case 2: span_id = f.bytes; break;
      case 3: trace_state = f.bytes; break;
      case 4:
        if (!AddAttribute(kLinkAttributes, f.bytes)) return false;
        attributes++;
        break;
      case 5: dropped = f.integer; break;
      case 6: flags = f.integer; break;
      default: break;
    }
  }
  PutLengthPrefixed(columns_[kLinkTraceIds], trace_id);
  PutLengthPrefixed(columns_[kLinkSpanIds], span_id);
  PutVarint(columns_[kLinkTraceStates], Intern(trace_state));
  PutVarint(columns_[kLinkFlags], flags);
  PutVarint(columns_[kLinkDropped], dropped);
  PutVarint(columns_[AttributeColumn(kLinkAttributes, 0)], attributes);
  return true;
}

// Pass 2: one span's fields into the columns.
bool RowGroupBuilder::AddSpan(const SpanRef& span, uint64_t trace_start) {
  std::string_view trace_state, parent, name, status_message;
  uint64_t end = 0, flags = 0, dropped_attributes = 0, dropped_events = 0, dropped_links = 0, status_code = 0;
  ByteReader in(span.bytes);
  WireField f, g;
  while (!in.empty()) {  // scalars first: event times are stored relative to the span's start
    ReadField(in, f);
    switch (f.number) {
      case 3: trace_state = f.bytes; break;
      case 4: parent = f.bytes; break;
      case 5: name = f.bytes; break;
      case 8: end = f.integer; break;
      case 10: dropped_attributes = f.integer; break;
      case 12: dropped_events = f.integer; break;
      case 14: dropped_links = f.integer; break;
      case 15: {
        ByteReader status(f.bytes);
        while (!status.empty()) {
          if (!ReadField(status, g)) return false;
          if (g.number == 2) status_message = g.bytes;
          if (g.number == 3) status_code = g.integer <= 2 ? g.integer : 0;
        }
        break;
      }
      case 16: flags = f.integer; break;
      default: break;
    }
  }
  columns_[kSpanIds].append(span.span_id);
  if (streaming_) {
    // A streamed trace's parents and starts wait for EndTrace: its other spans' IDs and its
    // start are not known yet.
    PutLengthPrefixed(streamed_parents_, parent);
    streamed_starts_.push_back(span.start);
  } else {
    PutParent(parent);
  }
  PutVarint(columns_[kNames], Intern(name));
  PutVarint(columns_[kResourceRefs], span.resource);
  PutVarint(columns_[kScopeRefs], span.scope);
  columns_[kKinds] += char(span.kind);
  columns_[kStatusCodes] += char(status_code);
  PutVarint(columns_[kStatusMessages], Intern(status_message));
  if (!streaming_) PutVarint(columns_[kStarts], span.start - trace_start);
  PutVarint(columns_[kDurations], ZigZag(int64_t(end - span.start)));
  PutVarint(columns_[kFlags], flags);
  PutVarint(columns_[kTraceStates], Intern(trace_state));
  PutVarint(columns_[kDroppedCounts], dropped_attributes);
  PutVarint(columns_[kDroppedCounts], dropped_events);
  PutVarint(columns_[kDroppedCounts], dropped_links);

  uint64_t attributes = 0, events = 0, links = 0;
  in = ByteReader(span.bytes);
  while (!in.empty()) {
    ReadField(in, f);
    if (f.number == 9) {
      if (!AddAttribute(kSpanAttributes, f.bytes)) return false;
      attributes++;
    } else if (f.number == 11) {
      if (!AddEvent(f.bytes, span.start)) return false;
      events++;
    } else if (f.number == 13) {
      if (!AddLink(f.bytes)) return false;
      links++;
    }
  }
  PutVarint(columns_[AttributeColumn(kSpanAttributes, 0)], attributes);
  span_attribute_counts_.push_back(uint32_t(attributes));
  PutVarint(columns_[kEventCounts], events);
  PutVarint(columns_[kLinkCounts], links);

  stats_.min_start_unix_nano = std::min(stats_.min_start_unix_nano, span.start);
  stats_.max_end_unix_nano = std::max(stats_.max_end_unix_nano, end);
  if (end > span.start) stats_.max_duration_nano = std::max(stats_.max_duration_nano, end - span.start);
  return true;
}

void RowGroupBuilder::PutParent(std::string_view parent) {
  if (parent.empty()) {
    PutVarint(columns_[kParents], 0);
    return;
  }
  auto it = std::lower_bound(span_positions_.begin(), span_positions_.end(), std::make_pair(parent, uint32_t(0)));
  if (it != span_positions_.end() && it->first == parent) {
    PutVarint(columns_[kParents], 2 + uint64_t(it->second));
  } else {
    PutVarint(columns_[kParents], 1);
    columns_[kParentRaw].append(parent);
  }
}

void RowGroupBuilder::PutTrace(const TraceId& id, uint32_t spans, uint64_t trace_start) {
  columns_[kTraceIds].append(id.View());
  PutVarint(columns_[kTraceSpanCounts], spans);
  PutVarint(columns_[kTraceStarts], ZigZag(int64_t(trace_start - previous_trace_start_)));
  previous_trace_start_ = trace_start;
  stats_.max_trace_start_unix_nano = std::max(stats_.max_trace_start_unix_nano, trace_start);
  stats_.trace_count++;
  stats_.span_count += spans;
}

void RowGroupBuilder::BeginTrace() {
  streaming_ = true;
  streamed_ids_.clear();
  streamed_parents_.clear();
  streamed_starts_.clear();
}

Status RowGroupBuilder::AddStreamedSpan(std::string_view span, std::string_view resource,
                                        std::string_view resource_schema, std::string_view scope,
                                        std::string_view scope_schema) {
  // Consecutive spans mostly share their resource and scope: compare with the last one's
  // before hashing a table key.
  if (last_resource_ref_ == UINT32_MAX || resource != last_resource_ || resource_schema != last_resource_schema_) {
    last_resource_ref_ = ResourceRef(resource, resource_schema);
    last_resource_.assign(resource);
    last_resource_schema_.assign(resource_schema);
  }
  if (last_scope_ref_ == UINT32_MAX || scope != last_scope_ || scope_schema != last_scope_schema_) {
    last_scope_ref_ = ScopeRef(scope, scope_schema);
    last_scope_.assign(scope);
    last_scope_schema_.assign(scope_schema);
  }
  SpanRef ref{span, {}, 0, 0, last_resource_ref_, last_scope_ref_};
  ByteReader fields(span);
  WireField h;
  while (!fields.empty()) {
    if (!ReadField(fields, h)) return Status::Corruption("a streamed span does not decode");
    if (h.number == 2 && h.type == kLengthDelimited) ref.span_id = h.bytes;
    else if (h.number == 6 && h.type == kVarint) ref.kind = uint8_t(h.integer <= 5 ? h.integer : 0);
    else if (h.number == 7 && h.type == kFixed64) ref.start = h.integer;
  }
  PutLengthPrefixed(streamed_ids_, ref.span_id);
  if (!AddSpan(ref, 0)) return Status::Corruption("a streamed span does not decode");
  return Status::Ok();
}

void RowGroupBuilder::EndTrace(const TraceId& id) {
  const auto spans = uint32_t(streamed_starts_.size());
  uint64_t trace_start = spans ? *std::min_element(streamed_starts_.begin(), streamed_starts_.end()) : 0;
  span_positions_.clear();
  ByteReader ids(streamed_ids_);
  std::string_view span_id, parent;
  for (uint32_t i = 0; i < spans && ids.ReadLengthPrefixed(span_id); ++i) span_positions_.emplace_back(span_id, i);
  std::sort(span_positions_.begin(), span_positions_.end());
  ByteReader parents(streamed_parents_);
  for (uint32_t i = 0; i < spans; ++i) {
    if (!parents.ReadLengthPrefixed(parent)) parent = {};
    PutParent(parent);
    PutVarint(columns_[kStarts], streamed_starts_[i] - trace_start);
  }
  PutTrace(id, spans, trace_start);
  streaming_ = false;
}

Status RowGroupBuilder::AddTrace(const TraceId& id, std::string_view encoded) {
  // Input was validated when it was received (and the WAL is checksummed); the readers here
  // still stop at malformed bytes rather than trust them.
  if (!CollectSpans(encoded))
    return Status::Corruption("trace " + id.Hex() + " does not decode");

  // Drop repeated spans (same ID and kind), keeping the first; index the rest by span ID.
  std::vector<uint32_t> order(spans_.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    if (spans_[a].span_id != spans_[b].span_id) return spans_[a].span_id < spans_[b].span_id;
    if (spans_[a].kind != spans_[b].kind) return spans_[a].kind < spans_[b].kind;
    return a < b;
  });
  duplicate_.assign(spans_.size(), false);
  for (size_t i = 1; i < order.size(); ++i) {
    const SpanRef& a = spans_[order[i - 1]];
    const SpanRef& b = spans_[order[i]];
    if (a.span_id == b.span_id && a.kind == b.kind) duplicate_[order[i]] = true;
  }
  span_positions_.clear();
  uint64_t trace_start = UINT64_MAX;
  uint32_t kept = 0;
  for (uint32_t i = 0; i < spans_.size(); ++i) {
    if (duplicate_[i]) continue;
    span_positions_.emplace_back(spans_[i].span_id, kept++);
    trace_start = std::min(trace_start, spans_[i].start);
  }
  std::sort(span_positions_.begin(), span_positions_.end());
  if (kept == 0) trace_start = 0;

  PutTrace(id, kept, trace_start);
  for (uint32_t i = 0; i < spans_.size(); ++i) {
    if (duplicate_[i]) continue;
    if (!AddSpan(spans_[i], trace_start)) return Status::Corruption("trace " + id.Hex() + ": a span does not decode");
  }
  return Status::Ok();
}

std::string RowGroupBuilder::Finish(RowGroupStats& stats) {
  for (uint32_t key = 0; key < span_key_use_.size(); ++key)
    if (span_key_use_[key].spans > 0) stats_.attribute_keys.emplace(dictionary_[key]);
  if (format_version_ >= 3) SummarizeValues();  // before the values move to their columns
  WriteSpanAttributeValues(format_version_ >= 2 ? ChooseDedicatedKeys() : std::vector<uint32_t>());
  for (const auto& text : dictionary_) PutLengthPrefixed(columns_[kDictionary], text);
  for (const auto& [encoded, schema] : resources_) {
    PutLengthPrefixed(columns_[kResources], encoded);
    PutLengthPrefixed(columns_[kResources], schema);
  }
  for (const auto& [encoded, schema] : scopes_) {
    PutLengthPrefixed(columns_[kScopes], encoded);
    PutLengthPrefixed(columns_[kScopes], schema);
  }
  std::string header, body;
  PutFixed32(header, kRowGroupMagic);
  PutVarint(header, columns_.size());
  PutVarint(header, dictionary_.size());
  PutVarint(header, resources_.size());
  PutVarint(header, scopes_.size());
  for (size_t c = 0; c < columns_.size(); ++c) {
    const std::string& raw = columns_[c];
    std::string compressed;
    if (!raw.empty()) {
      compressed.resize(ZSTD_compressBound(raw.size()));
      size_t n = ZSTD_compressCCtx(compression_.get(), compressed.data(), compressed.size(), raw.data(), raw.size(), zstd_level_);
      // A chunk that zstd does not make smaller (or, for want of memory, cannot compress) is
      // stored as it is: equal raw and stored sizes mean "not compressed".
      if (ZSTD_isError(n) || n >= raw.size()) compressed = raw;
      else compressed.resize(n);
    }
    PutVarint(header, raw.size());
    PutVarint(header, compressed.size());
    PutFixed32(header, Crc32c(compressed));
    body += compressed;
  }
  stats = stats_;
  Reset();
  return header + body;
}

// ---- reading -------------------------------------------------------------------------------

Status ListTracesInRowGroup(std::string_view row_group, std::vector<TraceEntry>& out) {
  std::vector<bool> wanted(kColumnCount, false);
  wanted[kTraceIds] = wanted[kTraceSpanCounts] = wanted[kTraceStarts] = true;
  RowGroupDecoder decoder;
  TRACERY_RETURN_IF_ERROR(decoder.Open(row_group, &wanted));
  return decoder.ListTraces(out);
}

Status ReadTracesFromRowGroup(std::string_view row_group, uint32_t trace_count, std::vector<DecodedTrace>& out) {
  RowGroupDecoder decoder;
  TRACERY_RETURN_IF_ERROR(decoder.Open(row_group));
  if (trace_count > (1u << 24)) return Status::Corruption("row group: implausible trace count");
  out.clear();
  out.resize(trace_count);
  for (auto& trace : out)
    if (!decoder.NextTrace(trace.id, &trace.spans)) return Status::Corruption("row group: a trace does not decode");
  return Status::Ok();
}

Status ReadTraceFromRowGroup(std::string_view row_group, uint32_t ordinal, TraceId& id, otlp::TracesData& out) {
  RowGroupDecoder decoder;
  TRACERY_RETURN_IF_ERROR(decoder.Open(row_group));
  for (uint32_t i = 0; i < ordinal; ++i)
    if (!decoder.NextTrace(id, nullptr)) return Status::Corruption("row group: trace ordinal out of range");
  if (!decoder.NextTrace(id, &out)) return Status::Corruption("row group: trace does not decode");
  return Status::Ok();
}

}  // namespace tracery::block
