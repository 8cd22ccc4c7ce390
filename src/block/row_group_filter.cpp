// Scanning a row group with a span filter: the filter's columns are decompressed and checked
// span by span first, and only the traces with a passing span are decoded.
#include <re2/re2.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <optional>
#include <unordered_map>

#include "block/row_group.h"
#include "block/row_group_internal.h"
#include "block/span_filter.h"

namespace tracery::block {
using namespace internal;
namespace {

using Op = SpanCondition::Op;
using Field = SpanCondition::Field;
using Type = SpanCondition::Type;

template <typename T>
bool Compare(const T& value, Op op, const T& literal) {
  switch (op) {
    case Op::kEqual: return value == literal;
    case Op::kNotEqual: return value != literal;
    case Op::kLess: return value < literal;
    case Op::kLessEqual: return value <= literal;
    case Op::kGreater: return value > literal;
    case Op::kGreaterEqual: return value >= literal;
    default: return true;
  }
}

bool StringPasses(std::string_view value, const SpanCondition& c) {
  if (c.op == Op::kRegex || c.op == Op::kNotRegex) {
    if (!c.regex) return true;
    bool matched = re2::RE2::FullMatch(re2::StringPiece(value.data(), value.size()), *c.regex);
    return c.op == Op::kRegex ? matched : !matched;
  }
  if (c.type != Type::kString) return true;  // the query engine decides what other comparisons mean
  return Compare(value, c.op, std::string_view(c.string_value));
}

bool NumberPasses(double value, const SpanCondition& c) {
  if (c.type == Type::kInt) return Compare(value, c.op, double(c.int_value));
  if (c.type == Type::kFloat) return Compare(value, c.op, c.float_value);
  return true;
}

bool IntPasses(int64_t value, const SpanCondition& c) {
  if (c.type == Type::kInt) return Compare(value, c.op, c.int_value);
  if (c.type == Type::kFloat) return Compare(double(value), c.op, c.float_value);
  return true;
}

bool AnyValuePasses(const otlp::AnyValue& value, const SpanCondition& c) {
  switch (value.type) {
    case otlp::AnyValue::Type::kString: return StringPasses(value.string_value, c);
    case otlp::AnyValue::Type::kInt: return IntPasses(value.int_value, c);
    case otlp::AnyValue::Type::kDouble: return NumberPasses(value.double_value, c);
    case otlp::AnyValue::Type::kBool:
      return c.type == Type::kBool ? Compare(value.bool_value, c.op, c.bool_value) : true;
    default: return true;  // arrays and the rest: left to the query engine
  }
}

bool IsSpanAttribute(const SpanCondition& c) {
  return c.field == Field::kSpanAttribute || c.field == Field::kAnyAttribute;
}

// Whether a condition looks at string values (StringPasses passes any string otherwise).
bool ReadsStrings(const SpanCondition& c) {
  return c.type == Type::kString || c.op == Op::kRegex || c.op == Op::kNotRegex;
}

// One condition, resolved against a row group's dictionary and resources.
struct Resolved {
  const SpanCondition* condition = nullptr;
  uint32_t key = UINT32_MAX;               // attribute key's dictionary ID; UINT32_MAX: not in the row group
  int dedicated = -1;                      // the key's dedicated column; -1: its values are in the generic stream
  std::vector<int8_t> dictionary_result;   // string tests by dictionary ID: -1 not computed yet
  std::vector<uint8_t> resource_passes;    // resource attribute tests, by resource
  bool possible = true;                    // false: no span of the row group can pass

  bool DictionaryPasses(uint64_t id, const std::vector<std::string_view>& dictionary) {
    if (id >= dictionary.size()) return true;
    int8_t& cached = dictionary_result[id];
    if (cached < 0) cached = StringPasses(dictionary[id], *condition) ? 1 : 0;
    return cached == 1;
  }
};

// Whether an attribute value passes, given as a dedicated column holds it: values from the
// generic stream and from a dedicated column are judged alike. Absent fails; kTagGeneric
// fails here, as the value is judged where it is, in the generic stream. Inlined: it runs for
// every span of a scan.
[[gnu::always_inline]] inline bool ValuePasses(const DedicatedValue& value, Resolved& r,
                                               const std::vector<std::string_view>& dictionary) {
  const SpanCondition& c = *r.condition;
  switch (value.tag) {
    case kTagString: return !ReadsStrings(c) || r.DictionaryPasses(value.payload, dictionary);
    case kTagInt: return IntPasses(UnZigZag(value.payload), c);
    case kTagDouble: {
      double number;
      std::memcpy(&number, &value.payload, 8);
      return NumberPasses(number, c);
    }
    case kTagFalse:
    case kTagTrue: return c.type == Type::kBool ? Compare(value.tag == kTagTrue, c.op, c.bool_value) : true;
    case kTagEmpty: return true;  // left to the query engine
    default: return false;
  }
}

// A key's dictionary ID, UINT32_MAX when the row group lacks it.
uint32_t KeyId(std::string_view key, const std::vector<std::string_view>& dictionary) {
  for (uint32_t id = 0; id < dictionary.size(); ++id)
    if (dictionary[id] == key) return id;
  return UINT32_MAX;
}

// Where a row group's span attributes are read for a filter: a condition's key from its
// dedicated column when it has one; the generic stream when a key has none, or when its
// column leaves some values in the stream (kTagGeneric: repeated keys, arrays, huge ints).
struct AttributeColumns {
  std::vector<int> dedicated;        // the dedicated columns read, each once per span
  uint32_t mixed = 0;                // bit d: dedicated column d has kTagGeneric entries
  bool generic = false;              // the generic stream is read
  bool generic_arrays = false;       // it holds a non-scalar value
};

}  // namespace

struct FilterNeeds {  // which columns a filter reads
  bool names = false, kinds = false, statuses = false, durations = false, resources = false, attributes = false;
};

static FilterNeeds NeedsOf(const SpanFilter& filter) {
  FilterNeeds needs;
  for (const SpanCondition& c : filter.all_of) {
    needs.names |= c.field == Field::kName;
    needs.kinds |= c.field == Field::kKind;
    needs.statuses |= c.field == Field::kStatus;
    needs.durations |= c.field == Field::kDuration;
    needs.resources |= c.field == Field::kResourceAttribute || c.field == Field::kAnyAttribute;
    needs.attributes |= IsSpanAttribute(c);
  }
  return needs;
}

void internal::AddFilterColumns(const SpanFilter& filter, std::vector<bool>& wanted) {
  FilterNeeds needs = NeedsOf(filter);
  wanted.resize(kColumnCount, false);
  wanted[kTraceIds] = wanted[kTraceSpanCounts] = wanted[kTraceStarts] = true;
  if (needs.names) wanted[kNames] = true;
  if (needs.kinds) wanted[kKinds] = true;
  if (needs.statuses) wanted[kStatusCodes] = true;
  if (needs.durations) wanted[kDurations] = true;
  if (needs.resources) wanted[kResources] = wanted[kResourceRefs] = true;
  // Which attribute columns follow depends on the row group's dedicated keys (MarkCandidates).
  if (needs.attributes) wanted[kDedicatedKeys] = true;
}

// Finds where each span attribute condition reads its key (sets its `dedicated` and `key`)
// and loads those columns: a dedicated key's column (and the presence column) alone when
// all the key's values are there; the generic stream for the other keys and for columns that
// leave values in it (kTagGeneric). The dictionary only when something reads it: span names,
// string values, keys without a column, the generic stream. A number compared on a
// dedicated column needs none, and the dictionary is most of a search's decompression.
static Status LoadAttributeColumns(RowGroupDecoder& columns, const FilterNeeds& needs, std::vector<Resolved>& resolved,
                                   AttributeColumns& plan) {
  std::vector<bool> wanted(kColumnCount, false);
  wanted[kDictionary] = needs.names;
  for (Resolved& r : resolved) {
    const SpanCondition& c = *r.condition;
    if (!IsSpanAttribute(c)) continue;
    r.dedicated = columns.DedicatedIndex(std::string_view(c.key));
    if (r.dedicated < 0 || ReadsStrings(c)) wanted[kDictionary] = true;
    if (r.dedicated < 0) continue;
    r.key = columns.dedicated_keys()[r.dedicated];
    if (!wanted[kDedicatedValueBase + r.dedicated]) {
      wanted[kDedicatedValueBase + r.dedicated] = wanted[kDedicatedPresence] = true;
      plan.dedicated.push_back(r.dedicated);
    }
  }
  TRACERY_RETURN_IF_ERROR(columns.Load(&wanted));
  for (int d : plan.dedicated) {
    ByteReader column = columns.Column(kDedicatedValueBase + d);  // a copy: the span walk starts at the top
    DedicatedValue value;
    while (!column.empty() && !(plan.mixed & (1u << d))) {
      if (!ReadDedicatedValue(column, value)) return Status::Corruption("row group: bad dedicated column");
      if (value.tag == kTagGeneric) plan.mixed |= 1u << d;
    }
  }
  plan.generic = plan.mixed != 0;
  for (Resolved& r : resolved) {
    if (!IsSpanAttribute(*r.condition) || r.dedicated >= 0) continue;
    r.key = KeyId(r.condition->key, columns.dictionary());
    plan.generic |= r.key != UINT32_MAX;
  }
  if (plan.generic) {
    for (uint32_t k = 0; k < kAttributeColumns; ++k) wanted[AttributeColumn(kSpanAttributes, k)] = true;
    wanted[kDictionary] = true;  // the generic stream's keys are dictionary IDs
    TRACERY_RETURN_IF_ERROR(columns.Load(&wanted));
    const ByteReader& types = columns.Column(AttributeColumn(kSpanAttributes, 2));
    plan.generic_arrays = std::memchr(types.position(), kComplex, types.remaining()) != nullptr;
  }
  return Status::Ok();
}

// MarkCandidates for a filter of one condition comparing a number or a boolean with a span
// attribute that has a dedicated column in the row group: its presence and value columns are
// all that is read, span by span, with nothing else to decide (what a full scan runs for every
// span). `int_test` judges an int value (the common case, inlined). A column that leaves a
// value in the generic stream (kTagGeneric) gives up: nullopt, and MarkCandidates reads the
// row group its general way (which reads that stream too).
template <typename IntTest>
static Result<std::optional<bool>> MarkOnDedicatedColumn(RowGroupDecoder& columns, Resolved& r, std::vector<TraceEntry>& traces,
                                          std::vector<bool>& candidate, uint64_t* spans_checked, IntTest int_test) {
  const int d = r.dedicated;
  std::vector<bool> wanted(kColumnCount, false);
  wanted[kDedicatedValueBase + d] = wanted[kDedicatedPresence] = true;
  TRACERY_RETURN_IF_ERROR(columns.Load(&wanted));
  TRACERY_RETURN_IF_ERROR(columns.ListTraces(traces));
  candidate.assign(traces.size(), false);
  ByteReader& presence = columns.Column(kDedicatedPresence);
  ByteReader& values = columns.Column(kDedicatedValueBase + d);
  const auto& dictionary = columns.dictionary();  // not loaded: numbers and booleans need none
  const uint64_t bit = uint64_t(1) << d;
  bool any_candidate = false;
  uint64_t checked = 0;
  for (size_t t = 0; t < traces.size(); ++t) {
    bool passed = false;
    for (uint32_t s = 0; s < traces[t].span_count; ++s) {
      uint64_t has;
      if (!presence.ReadVarint(has)) return Status::Corruption("row group: bad span columns");
      if (!(has & bit)) continue;
      DedicatedValue value;
      if (!ReadDedicatedValue(values, value)) return Status::Corruption("row group: bad dedicated column");
      if (value.tag == kTagGeneric) return std::optional<bool>();
      passed |= value.tag == kTagInt ? int_test(UnZigZag(value.payload)) : ValuePasses(value, r, dictionary);
    }
    checked += traces[t].span_count;
    if (passed) candidate[t] = any_candidate = true;
  }
  if (spans_checked) *spans_checked += checked;
  return std::optional<bool>(any_candidate);
}

// The one condition of `filter` when MarkOnDedicatedColumn can judge it: its column found.
static bool OnDedicatedColumn(const RowGroupDecoder& columns, const SpanFilter& filter, Resolved& r) {
  if (filter.all_of.size() != 1) return false;
  const SpanCondition& c = filter.all_of[0];
  if (c.field != Field::kSpanAttribute || ReadsStrings(c)) return false;
  r.condition = &c;
  r.dedicated = columns.DedicatedIndex(std::string_view(c.key));
  return r.dedicated >= 0;
}

Result<bool> internal::MarkCandidates(RowGroupDecoder& columns, const SpanFilter& filter, std::vector<TraceEntry>& traces,
                                      std::vector<bool>& candidate, uint64_t* spans_checked) {
  if (Resolved only; OnDedicatedColumn(columns, filter, only)) {
    const SpanCondition& c = *only.condition;
    uint64_t checked = 0;
    auto mark = [&](auto int_test) { return MarkOnDedicatedColumn(columns, only, traces, candidate, &checked, int_test); };
    const int64_t literal = c.int_value;
    auto run = [&]() -> Result<std::optional<bool>> {
      switch (c.type == Type::kInt ? c.op : Op::kRegex) {  // kRegex: not an int literal
        case Op::kEqual: return mark([literal](int64_t v) { return v == literal; });
        case Op::kNotEqual: return mark([literal](int64_t v) { return v != literal; });
        case Op::kLess: return mark([literal](int64_t v) { return v < literal; });
        case Op::kLessEqual: return mark([literal](int64_t v) { return v <= literal; });
        case Op::kGreater: return mark([literal](int64_t v) { return v > literal; });
        case Op::kGreaterEqual: return mark([literal](int64_t v) { return v >= literal; });
        default: return mark([&c](int64_t v) { return IntPasses(v, c); });
      }
    };
    Result<std::optional<bool>> marked = run();
    if (!marked.ok()) return marked.status();
    if (marked->has_value()) {
      if (spans_checked) *spans_checked += checked;
      return **marked;
    }
  }
  FilterNeeds needs = NeedsOf(filter);
  const bool names = needs.names, kinds = needs.kinds, statuses = needs.statuses, durations = needs.durations,
             resources = needs.resources;
  const auto& dictionary = columns.dictionary();

  // Resolve each condition once for the row group.
  std::vector<Resolved> resolved(filter.all_of.size());
  std::vector<otlp::Resource> decoded_resources;
  if (resources) {
    for (const auto& [encoded, schema] : columns.resources()) {
      otlp::Resource& resource = decoded_resources.emplace_back();
      if (!otlp::DecodeResource(encoded, resource).ok()) return Status::Corruption("row group: bad resource");
    }
  }
  for (size_t i = 0; i < resolved.size(); ++i) resolved[i].condition = &filter.all_of[i];
  AttributeColumns attributes;
  TRACERY_RETURN_IF_ERROR(LoadAttributeColumns(columns, needs, resolved, attributes));
  for (Resolved& r : resolved) {
    const SpanCondition& c = *r.condition;
    if (c.field == Field::kName || IsSpanAttribute(c)) r.dictionary_result.assign(dictionary.size(), -1);
    bool any_resource = false;
    if (c.field == Field::kResourceAttribute || c.field == Field::kAnyAttribute) {
      for (const otlp::Resource& resource : decoded_resources) {
        bool passes = false;
        for (const auto& kv : resource.attributes)
          if (kv.key == c.key && AnyValuePasses(kv.value, c)) passes = true;
        r.resource_passes.push_back(passes);
        any_resource |= passes;
      }
    }
    // A string compared for equality must be in the dictionary (span names and string
    // attribute values are interned there): one look-up rules the row group out. Arrays keep
    // their elements outside the dictionary: not where the key may hold one (any key, in the
    // generic stream; this key only, in a dedicated column).
    bool arrays = r.dedicated >= 0 ? (attributes.mixed >> r.dedicated) & 1 : attributes.generic_arrays;
    bool literal_present = true;
    if (c.op == Op::kEqual && c.type == Type::kString && (c.field == Field::kName || (IsSpanAttribute(c) && !arrays))) {
      literal_present = false;
      for (const auto& text : dictionary) literal_present |= text == c.string_value;
    }
    // A missing attribute fails every comparison: a key the row group lacks rules it out.
    if (c.field == Field::kName) r.possible = literal_present;
    if (c.field == Field::kSpanAttribute) r.possible = r.key != UINT32_MAX && literal_present;
    if (c.field == Field::kResourceAttribute) r.possible = any_resource;
    if (c.field == Field::kAnyAttribute) r.possible = (r.key != UINT32_MAX && literal_present) || any_resource;
    if (!r.possible) return false;
  }

  TRACERY_RETURN_IF_ERROR(columns.ListTraces(traces));
  candidate.assign(traces.size(), false);
  std::vector<uint8_t> satisfied(resolved.size());
  bool any_candidate = false;
  uint64_t checked = 0;
  DedicatedValue dedicated[kMaxDedicatedKeys];  // the span's entries of the columns read
  ByteReader* presence_column = nullptr;  // format 1 row groups have none
  std::vector<ByteReader*> dedicated_columns;
  for (int d : attributes.dedicated) dedicated_columns.push_back(&columns.Column(kDedicatedValueBase + d));
  if (!dedicated_columns.empty()) presence_column = &columns.Column(kDedicatedPresence);
  ByteReader& attribute_counts = columns.Column(AttributeColumn(kSpanAttributes, 0));
  ByteReader& attribute_keys = columns.Column(AttributeColumn(kSpanAttributes, 1));
  ByteReader& attribute_types = columns.Column(AttributeColumn(kSpanAttributes, 2));
  ByteReader& attribute_strings = columns.Column(AttributeColumn(kSpanAttributes, 3));
  ByteReader& attribute_ints = columns.Column(AttributeColumn(kSpanAttributes, 4));
  ByteReader& attribute_others = columns.Column(AttributeColumn(kSpanAttributes, 5));
  const Status bad = Status::Corruption("row group: bad span columns");
  for (size_t t = 0; t < traces.size(); ++t) {
    for (uint32_t s = 0; s < traces[t].span_count; ++s) {
      ++checked;
      uint64_t name = 0, resource = 0, duration = 0;
      std::string_view kind, status;
      if ((names && !columns.Column(kNames).ReadVarint(name)) ||
          (resources && !columns.Column(kResourceRefs).ReadVarint(resource)) ||
          (kinds && !columns.Column(kKinds).ReadBytes(1, kind)) ||
          (statuses && !columns.Column(kStatusCodes).ReadBytes(1, status)) ||
          (durations && !columns.Column(kDurations).ReadVarint(duration)))
        return bad;
      if (!attributes.dedicated.empty()) {
        uint64_t presence;
        if (!presence_column->ReadVarint(presence)) return bad;
        for (size_t k = 0; k < attributes.dedicated.size(); ++k) {
          int d = attributes.dedicated[k];
          dedicated[d].tag = kTagAbsent;
          if ((presence >> d & 1) && !ReadDedicatedValue(*dedicated_columns[k], dedicated[d])) return bad;
        }
      }
      for (size_t i = 0; i < resolved.size(); ++i) {
        Resolved& r = resolved[i];
        const SpanCondition& c = *r.condition;
        switch (c.field) {
          case Field::kName: satisfied[i] = r.DictionaryPasses(name, dictionary); break;
          case Field::kKind: {
            int64_t code = uint8_t(kind[0]) <= 5 ? uint8_t(kind[0]) : 0;  // as the decoder reads it
            satisfied[i] = c.op == Op::kEqual ? code == c.int_value : c.op == Op::kNotEqual ? code != c.int_value : true;
            break;
          }
          case Field::kStatus: {
            int64_t code = uint8_t(status[0]) <= 2 ? uint8_t(status[0]) : 0;
            satisfied[i] = c.op == Op::kEqual ? code == c.int_value : c.op == Op::kNotEqual ? code != c.int_value : true;
            break;
          }
          case Field::kDuration: {
            int64_t nanos = std::max<int64_t>(0, UnZigZag(duration));
            satisfied[i] = IntPasses(nanos, c);
            break;
          }
          case Field::kResourceAttribute:
            satisfied[i] = resource < r.resource_passes.size() ? r.resource_passes[resource] : true;
            break;
          case Field::kSpanAttribute:  // the generic stream, when read, may still set it below
            satisfied[i] = r.dedicated >= 0 && ValuePasses(dedicated[r.dedicated], r, dictionary);
            break;
          case Field::kAnyAttribute:
            satisfied[i] = (resource < r.resource_passes.size() && r.resource_passes[resource]) ||
                           (r.dedicated >= 0 && ValuePasses(dedicated[r.dedicated], r, dictionary));
            break;
        }
      }
      if (attributes.generic) {
        uint64_t count;
        if (!attribute_counts.ReadVarint(count)) return bad;
        for (uint64_t a = 0; a < count; ++a) {
          uint64_t key;
          std::string_view type, complex;
          if (!attribute_keys.ReadVarint(key) || !attribute_types.ReadBytes(1, type)) return bad;
          DedicatedValue value;  // as a dedicated column would hold it
          switch (uint8_t(type[0])) {
            case kEmpty: value.tag = kTagEmpty; break;
            case kString: value.tag = kTagString; if (!attribute_strings.ReadVarint(value.payload)) return bad; break;
            case kFalse: value.tag = kTagFalse; break;
            case kTrue: value.tag = kTagTrue; break;
            case kInt: value.tag = kTagInt; if (!attribute_ints.ReadVarint(value.payload)) return bad; break;
            case kDouble: value.tag = kTagDouble; if (!attribute_others.ReadFixed64(value.payload)) return bad; break;
            case kComplex: value.tag = kTagGeneric; if (!attribute_others.ReadLengthPrefixed(complex)) return bad; break;
            case kDedicated:  // judged on its column above
              if (columns.DedicatedIndex(key) < 0) return bad;
              continue;
            default: return bad;
          }
          for (size_t i = 0; i < resolved.size(); ++i) {
            Resolved& r = resolved[i];
            if (satisfied[i] || r.key != key || !IsSpanAttribute(*r.condition)) continue;
            // Arrays and the rest are left to the query engine.
            satisfied[i] = value.tag == kTagGeneric || ValuePasses(value, r, dictionary);
          }
        }
      }
      bool passes = true;
      for (uint8_t ok : satisfied) passes = passes && ok;
      if (passes && !candidate[t]) {
        candidate[t] = true;
        any_candidate = true;
      }
    }
  }
  if (spans_checked) *spans_checked += checked;
  return any_candidate;
}

namespace {

// Each thread's decoded resources and scopes by their encoded bytes. Emptied (and given a new
// generation) only when it has grown past its bound, between row groups.
struct DecodedTableCache {
  static constexpr size_t kMaxEntries = 4096;
  std::unordered_map<std::string, otlp::Resource> resources;
  std::unordered_map<std::string, otlp::Scope> scopes;
  uint64_t generation = 0;
};

uint64_t NewTableGeneration() {
  static std::atomic<uint64_t> next{0};
  return next.fetch_add(1, std::memory_order_relaxed) + 1;
}

template <typename Decoded, typename Decode>
Result<const Decoded*> CachedDecode(std::unordered_map<std::string, Decoded>& cache, std::string_view encoded,
                                    Decode decode) {
  // C++20's heterogeneous lookup needs a transparent hash; a key string per look-up is cheap
  // next to decoding (resources are a few hundred bytes, looked up once per row group).
  thread_local std::string key;
  key.assign(encoded);
  auto it = cache.find(key);
  if (it != cache.end()) return &it->second;
  Decoded decoded;
  if (!decode(encoded, decoded).ok()) return Status::Corruption("row group: bad resource or scope");
  return &cache.emplace(key, std::move(decoded)).first->second;
}

}  // namespace

Status internal::RowGroupDecoder::DecodeTables(RowGroupTables& tables) const {
  thread_local DecodedTableCache cache;
  if (cache.generation == 0 || cache.resources.size() + cache.scopes.size() > DecodedTableCache::kMaxEntries) {
    cache.resources.clear();
    cache.scopes.clear();
    cache.generation = NewTableGeneration();
  }
  tables.generation = cache.generation;
  tables.resources.resize(resources_.size());
  tables.scopes.resize(scopes_.size());
  for (size_t i = 0; i < resources_.size(); ++i) {
    auto decoded = CachedDecode(cache.resources, resources_[i].first, otlp::DecodeResource);
    if (!decoded.ok()) return decoded.status();
    tables.resources[i] = *decoded;
  }
  for (size_t i = 0; i < scopes_.size(); ++i) {
    auto decoded = CachedDecode(cache.scopes, scopes_[i].first, otlp::DecodeScope);
    if (!decoded.ok()) return decoded.status();
    tables.scopes[i] = *decoded;
  }
  return Status::Ok();
}

Status ScanRowGroupProjected(std::string_view row_group, const SpanFilter& filter, const Projection& projection,
                             const DecodedTraceVisit& visit, uint64_t* spans_checked, const TraceSkip& skip) {
  std::vector<TraceEntry> traces;
  std::vector<bool> candidate;
  // The filter's columns first (or the trace columns alone); the projection's only when a
  // trace passed (the filter's are not decompressed twice).
  std::vector<bool> wanted;
  if (!filter.empty()) {
    AddFilterColumns(filter, wanted);
  } else if (skip) {
    wanted.assign(kColumnCount, false);
    wanted[kTraceIds] = wanted[kTraceSpanCounts] = wanted[kTraceStarts] = true;
  } else {
    wanted = RowGroupDecoder::ColumnsFor(projection);
  }
  RowGroupDecoder decoder;
  TRACERY_RETURN_IF_ERROR(decoder.Open(row_group, &wanted));
  if (filter.empty()) {
    TRACERY_RETURN_IF_ERROR(decoder.ListTraces(traces));
    candidate.assign(traces.size(), true);
    if (spans_checked)
      for (const auto& entry : traces) *spans_checked += entry.span_count;
  } else {
    auto any = MarkCandidates(decoder, filter, traces, candidate, spans_checked);
    if (!any.ok()) return any.status();
    if (!*any) return Status::Ok();
  }
  size_t end = 0;  // one past the last trace to visit
  for (size_t t = 0; t < traces.size(); ++t) {
    if (candidate[t] && skip && skip(traces[t])) candidate[t] = false;
    if (candidate[t]) end = t + 1;
  }
  if (end == 0) return Status::Ok();
  std::vector<bool> projected = RowGroupDecoder::ColumnsFor(projection);
  TRACERY_RETURN_IF_ERROR(decoder.Load(&projected));  // and every column starts over
  RowGroupTables tables;
  TRACERY_RETURN_IF_ERROR(decoder.DecodeTables(tables));
  // Span objects and their buffers are reused from trace to trace and row group to row group.
  thread_local std::vector<DecodedSpan> spans;
  for (size_t t = 0; t < end; ++t) {
    if (!candidate[t]) {  // read past, not decoded
      if (!decoder.SkipTrace(projection)) return Status::Corruption("row group: trace does not decode");
      continue;
    }
    TraceId id;
    size_t count = 0;
    if (!decoder.NextTraceSpans(id, spans, count, projection)) return Status::Corruption("row group: trace does not decode");
    if (!visit(id, spans, count, tables)) break;
  }
  return Status::Ok();
}

}  // namespace tracery::block
