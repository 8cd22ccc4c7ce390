#include "block/block.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <set>

#include <rapidjson/document.h>
#include <xxhash.h>

#include "common/coding.h"
#include "common/crc32c.h"

namespace tracery::block {
namespace {

constexpr uint32_t kIndexMagic = 0x58495254;  // "TRIX"
constexpr size_t kIndexEntryBytes = 24;       // trace ID, u32 row group, u32 ordinal
constexpr size_t kIndexPageEntries = 256;

// BlockIndex::fingerprints: a hash independent of the Bloom filter's (another function).
uint16_t Fingerprint(const char* trace_id) { return uint16_t(XXH64(trace_id, 16, 0xf1f1) >> 48); }

void PutStringSet(std::string& out, const std::set<std::string>& strings) {
  PutVarint(out, strings.size());
  for (const auto& s : strings) PutLengthPrefixed(out, s);
}

bool ReadStringSet(ByteReader& reader, std::set<std::string>& out) {
  uint64_t count;
  if (!reader.ReadVarint(count) || count > reader.remaining()) return false;
  for (uint64_t i = 0; i < count; ++i) {
    std::string_view s;
    if (!reader.ReadLengthPrefixed(s)) return false;
    out.emplace(s);
  }
  return true;
}

// Format 3's additions to a row group's entry: its latest trace start and its value summary.
void PutFormat3Stats(std::string& out, const RowGroupStats& rg) {
  PutVarint(out, rg.max_trace_start_unix_nano);
  PutVarint(out, rg.values.keys.size());
  for (const ValueSummary::Key& key : rg.values.keys) {
    PutLengthPrefixed(out, key.name);
    out += char(key.type);
    PutVarint(out, key.values.size());
    for (const std::string& value : key.values) {
      switch (key.type) {
        case ValueSummary::Type::kString: PutLengthPrefixed(out, value); break;
        case ValueSummary::Type::kInt: PutVarint(out, ZigZag(int64_t(LoadFixed64(value.data())))); break;
        case ValueSummary::Type::kBool: PutVarint(out, value == ValueSummary::BoolValue(true) ? 1 : 0); break;
      }
    }
  }
}

bool ReadFormat3Stats(ByteReader& in, RowGroupStats& rg) {
  uint64_t keys;
  if (!in.ReadVarint(rg.max_trace_start_unix_nano) || !in.ReadVarint(keys) || keys > in.remaining()) return false;
  for (uint64_t k = 0; k < keys; ++k) {
    ValueSummary::Key& key = rg.values.keys.emplace_back();
    std::string_view name, type;
    uint64_t count;
    if (!in.ReadLengthPrefixed(name) || !in.ReadBytes(1, type) || !in.ReadVarint(count) ||
        count > ValueSummary::kMaxValues)
      return false;
    key.name.assign(name);
    key.type = ValueSummary::Type(uint8_t(type[0]));
    for (uint64_t v = 0; v < count; ++v) {
      std::string_view text;
      uint64_t number;
      switch (key.type) {
        case ValueSummary::Type::kString:
          if (!in.ReadLengthPrefixed(text)) return false;
          key.values.emplace_back(text);
          break;
        case ValueSummary::Type::kInt:
          if (!in.ReadVarint(number)) return false;
          key.values.push_back(ValueSummary::IntValue(UnZigZag(number)));
          break;
        case ValueSummary::Type::kBool:
          if (!in.ReadVarint(number) || number > 1) return false;
          key.values.push_back(ValueSummary::BoolValue(number == 1));
          break;
        default: return false;
      }
    }
  }
  rg.values.Index();
  return true;
}

std::string BloomName(uint32_t shard) { return "bloom-" + std::to_string(shard); }

}  // namespace

std::string NewBlockId() {
  static thread_local std::mt19937_64 rng(std::random_device{}() ^ uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()));
  uint64_t hi = rng(), lo = rng();
  hi = (hi & ~0xf000ull) | 0x4000ull;               // version 4
  lo = (lo & ~(0xc000ull << 48)) | (0x8000ull << 48);  // variant 1
  std::string raw;
  for (int i = 7; i >= 0; --i) raw += char(hi >> (i * 8));
  for (int i = 7; i >= 0; --i) raw += char(lo >> (i * 8));
  std::string hex = HexEncode(raw);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) + "-" +
         hex.substr(20);
}

std::string BlockMeta::ToJson() const {
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                "{\"format\":\"tracery-block\",\"version\":%u,\"blockID\":\"%s\",\"tenantID\":\"%s\",\"tier\":\"%s\","
                "\"startTimeUnixNano\":\"%llu\",\"endTimeUnixNano\":\"%llu\",\"totalTraces\":%llu,\"totalSpans\":%llu,"
                "\"rowGroups\":%llu,\"dataBytes\":%llu,\"indexBytes\":%llu,\"indexEntriesOffset\":%llu,"
                "\"bloomShards\":%u,\"createdUnixSeconds\":%lld}\n",
                version, block_id.c_str(), tenant.c_str(), tier.c_str(), (unsigned long long)min_start_unix_nano,
                (unsigned long long)max_end_unix_nano, (unsigned long long)trace_count, (unsigned long long)span_count,
                (unsigned long long)row_groups, (unsigned long long)data_bytes, (unsigned long long)index_bytes,
                (unsigned long long)index_entries_offset, bloom_shards, (long long)created_unix_seconds);
  std::string json = buf;
  if (compacted_from.empty()) return json;
  // Only when present, so blocks that were not compacted read as before.
  json.resize(json.size() - 2);  // "}\n"
  json += ",\"compactedFrom\":[";
  for (size_t i = 0; i < compacted_from.size(); ++i) json += (i ? ",\"" : "\"") + compacted_from[i] + "\"";
  json += "]}\n";
  return json;
}

Result<BlockMeta> BlockMeta::FromJson(std::string_view json) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject()) return Status::Corruption("meta.json is not a JSON object");
  auto u64 = [&](const char* key, uint64_t& out) {
    auto it = d.FindMember(key);
    if (it == d.MemberEnd()) return false;
    if (it->value.IsUint64()) { out = it->value.GetUint64(); return true; }
    if (it->value.IsString()) { out = std::strtoull(it->value.GetString(), nullptr, 10); return true; }
    return false;
  };
  auto str = [&](const char* key, std::string& out) {
    auto it = d.FindMember(key);
    if (it == d.MemberEnd() || !it->value.IsString()) return false;
    out = it->value.GetString();
    return true;
  };
  BlockMeta m;
  uint64_t version = 0, shards = 0, created = 0;
  std::string format;
  if (!str("format", format) || format != "tracery-block" || !u64("version", version))
    return Status::Corruption("meta.json does not describe a tracery block");
  if (version < kFirstFormatVersion || version > kFormatVersion)
    return Status::Corruption("block format version " + std::to_string(version) + " is not known to this reader (knows " +
                              std::to_string(kFirstFormatVersion) + " to " + std::to_string(kFormatVersion) + ")");
  if (!str("blockID", m.block_id) || !str("tenantID", m.tenant) || !str("tier", m.tier) ||
      !u64("startTimeUnixNano", m.min_start_unix_nano) || !u64("endTimeUnixNano", m.max_end_unix_nano) ||
      !u64("totalTraces", m.trace_count) || !u64("totalSpans", m.span_count) || !u64("rowGroups", m.row_groups) ||
      !u64("dataBytes", m.data_bytes) || !u64("indexBytes", m.index_bytes) ||
      !u64("indexEntriesOffset", m.index_entries_offset) || !u64("bloomShards", shards) || shards == 0 ||
      shards > 4096)
    return Status::Corruption("meta.json misses a field or has a bad value");
  u64("createdUnixSeconds", created);
  if (auto from = d.FindMember("compactedFrom"); from != d.MemberEnd()) {
    if (!from->value.IsArray()) return Status::Corruption("meta.json: compactedFrom is not an array");
    for (const auto& id : from->value.GetArray()) {
      if (!id.IsString()) return Status::Corruption("meta.json: compactedFrom holds a non-string");
      m.compacted_from.emplace_back(id.GetString());
    }
  }
  m.version = uint32_t(version);
  m.bloom_shards = uint32_t(shards);
  m.created_unix_seconds = int64_t(created);
  return m;
}

Result<std::unique_ptr<BlockWriter>> BlockWriter::Create(backend::ObjectStore& store, const std::string& tenant,
                                                         const std::string& tier, uint64_t expected_traces,
                                                         const WriterOptions& options) {
  if (options.format_version < kFirstFormatVersion || options.format_version > kFormatVersion)
    return Status::InvalidArgument("block writer: no format version " + std::to_string(options.format_version));
  std::unique_ptr<BlockWriter> writer(new BlockWriter(store, options));
  BlockMeta& meta = writer->meta_;
  meta.version = options.format_version;
  meta.block_id = NewBlockId();
  meta.tenant = tenant;
  meta.tier = tier;
  meta.bloom_shards = uint32_t(std::max<uint64_t>(1, (expected_traces + options.traces_per_bloom_shard - 1) /
                                                         options.traces_per_bloom_shard));
  meta.min_start_unix_nano = UINT64_MAX;
  for (uint32_t s = 0; s < meta.bloom_shards; ++s)
    writer->blooms_.push_back(BloomFilter::ForCount(expected_traces / meta.bloom_shards + 1));
  // Reserved once: grown by doubling, the entries of a large compaction would take up to three
  // times their size while copied (pages reserved and not written take no memory).
  writer->entries_.reserve(expected_traces * kIndexEntryBytes);
  auto data = store.NewWriter(tenant + "/" + meta.block_id + "/data");
  if (!data.ok()) return data.status();
  writer->data_ = std::move(data).value();
  return writer;
}

Status BlockWriter::AddTrace(const TraceId& id, std::string_view otlp) {
  if (!failed_.ok()) return failed_;
  if (meta_.trace_count > 0 && !(last_id_ < id))
    return Status::InvalidArgument("block writer: trace " + id.Hex() + " does not follow " + last_id_.Hex());
  uint32_t ordinal = builder_.trace_count();
  uint32_t spans_before = builder_.span_count();
  Status added = builder_.AddTrace(id, otlp);
  if (!added.ok()) return Status::InvalidArgument("trace " + id.Hex() + ": " + added.message());
  return Indexed(id, ordinal, spans_before);
}

Status BlockWriter::BeginTrace(const TraceId& id) {
  if (!failed_.ok()) return failed_;
  if (meta_.trace_count > 0 && !(last_id_ < id))
    return Status::InvalidArgument("block writer: trace " + id.Hex() + " does not follow " + last_id_.Hex());
  streamed_id_ = id;
  builder_.BeginTrace();
  return Status::Ok();
}

Status BlockWriter::AddSpan(std::string_view span, std::string_view resource, std::string_view resource_schema,
                            std::string_view scope, std::string_view scope_schema) {
  if (!failed_.ok()) return failed_;
  Status added = builder_.AddStreamedSpan(span, resource, resource_schema, scope, scope_schema);
  if (!added.ok()) failed_ = Status::InvalidArgument("trace " + streamed_id_.Hex() + ": " + added.message());
  return failed_;
}

Status BlockWriter::EndTrace() {
  if (!failed_.ok()) return failed_;
  uint32_t ordinal = builder_.trace_count();
  uint32_t spans_before = builder_.span_count();
  builder_.EndTrace(streamed_id_);
  return Indexed(streamed_id_, ordinal, spans_before);
}

Status BlockWriter::Indexed(const TraceId& id, uint32_t ordinal, uint32_t spans_before) {
  last_id_ = id;
  entries_.append(id.View());
  PutFixed32(entries_, uint32_t(row_group_count_));
  PutFixed32(entries_, ordinal);
  blooms_[BloomFilter::ShardOf(id, meta_.bloom_shards)].Add(id);
  meta_.trace_count++;
  meta_.span_count += builder_.span_count() - spans_before;
  if (builder_.span_count() >= options_.row_group_spans) return CloseRowGroup();
  return Status::Ok();
}

Status BlockWriter::CloseRowGroup() {
  RowGroupStats rg;
  std::string encoded = builder_.Finish(rg);
  rg.offset = data_->BytesWritten();
  rg.size = encoded.size();
  Status written = data_->Append(encoded);
  if (!written.ok()) {
    failed_ = written;
    return written;
  }
  // The row group's index record now, not its statistics until Finish: a compaction writes
  // tens of thousands of row groups, whose sets of names would otherwise stay in memory.
  PutVarint(row_group_table_, rg.offset);
  PutVarint(row_group_table_, rg.size);
  PutVarint(row_group_table_, rg.trace_count);
  PutVarint(row_group_table_, rg.span_count);
  PutVarint(row_group_table_, rg.min_start_unix_nano);
  PutVarint(row_group_table_, rg.max_end_unix_nano);
  PutVarint(row_group_table_, rg.max_duration_nano);
  PutStringSet(row_group_table_, rg.services);
  PutStringSet(row_group_table_, rg.attribute_keys);
  if (meta_.version >= 3) PutFormat3Stats(row_group_table_, rg);
  meta_.min_start_unix_nano = std::min(meta_.min_start_unix_nano, rg.min_start_unix_nano);
  meta_.max_end_unix_nano = std::max(meta_.max_end_unix_nano, rg.max_end_unix_nano);
  ++row_group_count_;
  return Status::Ok();
}

Result<BlockMeta> BlockWriter::Finish() {
  if (!failed_.ok()) return failed_;
  if (builder_.trace_count() > 0) TRACERY_RETURN_IF_ERROR(CloseRowGroup());
  BlockMeta& meta = meta_;
  std::string index;
  PutFixed32(index, kIndexMagic);
  PutFixed32(index, meta.version);
  PutVarint(index, row_group_count_);
  index += row_group_table_;
  PutFixed32(index, Crc32c(index));
  meta.index_entries_offset = index.size();
  if (meta.min_start_unix_nano == UINT64_MAX) meta.min_start_unix_nano = 0;
  meta.row_groups = row_group_count_;
  meta.data_bytes = data_->BytesWritten();
  meta.index_bytes = index.size() + entries_.size();
  meta.created_unix_seconds =
      created_override_ ? created_override_
                        : std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();

  std::string prefix = meta.tenant + "/" + meta.block_id + "/";
  TRACERY_RETURN_IF_ERROR(data_->Commit());
  {
    // The entries follow the row-group table without being copied next to it.
    auto index_writer = store_.NewWriter(prefix + "index");
    if (!index_writer.ok()) return index_writer.status();
    TRACERY_RETURN_IF_ERROR((*index_writer)->Append(index));
    TRACERY_RETURN_IF_ERROR((*index_writer)->Append(entries_));
    TRACERY_RETURN_IF_ERROR((*index_writer)->Commit());
  }
  for (uint32_t s = 0; s < meta.bloom_shards; ++s) TRACERY_RETURN_IF_ERROR(store_.Write(prefix + BloomName(s), blooms_[s].Encode()));
  // meta.json last: a block without it is incomplete and never read.
  TRACERY_RETURN_IF_ERROR(store_.Write(prefix + "meta.json", meta.ToJson()));
  finished_ = true;
  return meta;
}

BlockWriter::~BlockWriter() {
  if (finished_) return;
  data_.reset();  // an uncommitted object removes itself
  (void)store_.Delete(meta_.tenant + "/" + meta_.block_id);
}

Result<BlockMeta> WriteBlock(backend::ObjectStore& store, const std::string& tenant, const std::string& tier,
                             const std::vector<TraceInput>& traces, const WriterOptions& options) {
  auto writer = BlockWriter::Create(store, tenant, tier, traces.size(), options);
  if (!writer.ok()) return writer.status();
  for (const auto& input : traces) TRACERY_RETURN_IF_ERROR((*writer)->AddTrace(input.id, input.otlp));
  return (*writer)->Finish();
}

std::string BlockReader::ObjectName(std::string_view object) const {
  return meta_.tenant + "/" + meta_.block_id + "/" + std::string(object);
}

Result<std::unique_ptr<BlockReader>> BlockReader::OpenLazily(backend::ObjectStore& store, const std::string& tenant,
                                                             const std::string& block_id) {
  Result<std::string> meta_json = store.Read(tenant + "/" + block_id + "/meta.json");
  if (!meta_json.ok()) return meta_json.status();
  Result<BlockMeta> meta = BlockMeta::FromJson(*meta_json);
  if (!meta.ok()) return Status::Corruption(tenant + "/" + block_id + ": " + meta.status().message());
  if (meta->tenant != tenant || meta->block_id != block_id)
    return Status::Corruption(tenant + "/" + block_id + ": meta.json names another block");
  return std::unique_ptr<BlockReader>(new BlockReader(store, std::move(meta).value()));
}

Result<std::unique_ptr<BlockReader>> BlockReader::Open(backend::ObjectStore& store, const std::string& tenant,
                                                       const std::string& block_id) {
  auto reader = OpenLazily(store, tenant, block_id);
  if (!reader.ok()) return reader.status();
  auto index = (*reader)->Index();
  if (!index.ok()) return index.status();
  return reader;
}

Result<std::shared_ptr<const BlockIndex>> BlockReader::LoadIndex() const {
  auto loaded = std::make_shared<BlockIndex>();
  for (uint32_t s = 0; s < meta_.bloom_shards; ++s) {
    Result<std::string> bytes = store_.Read(ObjectName(BloomName(s)));
    if (!bytes.ok()) return bytes.status();
    Result<BloomFilter> bloom = BloomFilter::Decode(*bytes);
    if (!bloom.ok()) return bloom.status();
    loaded->blooms.push_back(std::move(bloom).value());
  }
  Result<std::string> index = store_.Read(ObjectName("index"));
  if (!index.ok()) return index.status();
  const BlockMeta& m = meta_;
  if (index->size() != m.index_bytes || m.index_entries_offset < 12 ||
      (index->size() - m.index_entries_offset) != m.trace_count * kIndexEntryBytes)
    return Status::Corruption(ObjectName("index") + ": size does not match meta.json");
  std::string_view header(index->data(), m.index_entries_offset - 4);
  if (Crc32c(header) != LoadFixed32(index->data() + header.size()))
    return Status::Corruption(ObjectName("index") + ": header checksum mismatch");
  ByteReader in(header);
  uint32_t magic, version;
  uint64_t count;
  if (!in.ReadFixed32(magic) || magic != kIndexMagic || !in.ReadFixed32(version) || version != m.version ||
      !in.ReadVarint(count) || count != m.row_groups)
    return Status::Corruption(ObjectName("index") + ": bad header");
  for (uint64_t i = 0; i < count; ++i) {
    RowGroupStats rg;
    uint64_t traces, spans;
    if (!in.ReadVarint(rg.offset) || !in.ReadVarint(rg.size) || !in.ReadVarint(traces) || !in.ReadVarint(spans) ||
        !in.ReadVarint(rg.min_start_unix_nano) || !in.ReadVarint(rg.max_end_unix_nano) ||
        !in.ReadVarint(rg.max_duration_nano) || !ReadStringSet(in, rg.services) || !ReadStringSet(in, rg.attribute_keys) ||
        rg.offset + rg.size > m.data_bytes || (m.version >= 3 && !ReadFormat3Stats(in, rg)))
      return Status::Corruption(ObjectName("index") + ": bad row group table");
    if (m.version < 3) rg.max_trace_start_unix_nano = rg.max_end_unix_nano;  // no trace starts later
    rg.trace_count = uint32_t(traces);
    rg.span_count = uint32_t(spans);
    loaded->row_groups.push_back(std::move(rg));
  }
  for (uint64_t e = 0; e < m.trace_count; e += kIndexPageEntries)
    loaded->sparse_index.push_back(TraceId::FromBytes({index->data() + m.index_entries_offset + e * kIndexEntryBytes, 16}));
  loaded->fingerprints.resize(m.trace_count);
  for (uint64_t e = 0; e < m.trace_count; ++e)
    loaded->fingerprints[e] = Fingerprint(index->data() + m.index_entries_offset + e * kIndexEntryBytes);
  return std::shared_ptr<const BlockIndex>(std::move(loaded));
}

Result<std::shared_ptr<const BlockIndex>> BlockReader::Index() const {
  {
    std::lock_guard lock(mutex_);
    if (index_) return index_;
  }
  // Loaded outside the lock; two first lookups may both load, and one result is kept.
  auto loaded = LoadIndex();
  if (!loaded.ok()) return loaded.status();
  std::lock_guard lock(mutex_);
  if (!index_) index_ = *loaded;
  return index_;
}

void BlockReader::Unload() const {
  std::lock_guard lock(mutex_);
  index_.reset();
}

bool BlockReader::Loaded() const {
  std::lock_guard lock(mutex_);
  return index_ != nullptr;
}

uint64_t BlockIndex::MemoryBytes() const {
  uint64_t bytes = sizeof(BlockIndex) + sparse_index.capacity() * sizeof(TraceId) +
                   fingerprints.capacity() * sizeof(uint16_t);
  for (const auto& bloom : blooms) bytes += bloom.SizeBytes();
  for (const auto& rg : row_groups) {
    bytes += sizeof(RowGroupStats);
    for (const auto& s : rg.services) bytes += 48 + s.size();
    for (const auto& s : rg.attribute_keys) bytes += 48 + s.size();
    bytes += rg.values.MemoryBytes();
  }
  return bytes;
}

uint64_t BlockReader::MemoryBytes() const {
  std::lock_guard lock(mutex_);
  return index_ ? index_->MemoryBytes() : 0;
}

std::vector<RowGroupStats> BlockReader::row_groups() const {
  auto index = Index();
  return index.ok() ? (*index)->row_groups : std::vector<RowGroupStats>();
}

bool BlockReader::MayContain(const TraceId& id) const {
  auto index = Index();
  if (!index.ok()) return true;
  return (*index)->blooms[BloomFilter::ShardOf(id, meta_.bloom_shards)].MayContain(id);
}

Result<std::optional<std::pair<uint32_t, uint32_t>>> BlockReader::Locate(const BlockIndex& index,
                                                                         const TraceId& id) const {
  using Position = std::optional<std::pair<uint32_t, uint32_t>>;
  const auto& sparse = index.sparse_index;
  if (!index.blooms[BloomFilter::ShardOf(id, meta_.bloom_shards)].MayContain(id) || sparse.empty() || id < sparse.front())
    return Position();
  size_t page = size_t(std::upper_bound(sparse.begin(), sparse.end(), id) - sparse.begin()) - 1;
  uint64_t first = page * kIndexPageEntries;
  uint64_t count = std::min<uint64_t>(kIndexPageEntries, meta_.trace_count - first);
  if (index.fingerprints.size() == meta_.trace_count) {
    const uint16_t wanted = Fingerprint(reinterpret_cast<const char*>(id.bytes.data()));
    const uint16_t* page_prints = index.fingerprints.data() + first;
    if (std::find(page_prints, page_prints + count, wanted) == page_prints + count) return Position();
  }
  Result<std::string> entries =
      store_.ReadRange(ObjectName("index"), meta_.index_entries_offset + first * kIndexEntryBytes, count * kIndexEntryBytes);
  if (!entries.ok()) return entries.status();
  if (entries->size() != count * kIndexEntryBytes) return Status::Corruption(ObjectName("index") + ": short index page");
  // Binary search within the page.
  size_t lo = 0, hi = count;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    TraceId at = TraceId::FromBytes({entries->data() + mid * kIndexEntryBytes, 16});
    if (at < id) lo = mid + 1;
    else hi = mid;
  }
  if (lo == count || TraceId::FromBytes({entries->data() + lo * kIndexEntryBytes, 16}) != id) return Position();
  uint32_t row_group = LoadFixed32(entries->data() + lo * kIndexEntryBytes + 16);
  uint32_t ordinal = LoadFixed32(entries->data() + lo * kIndexEntryBytes + 20);
  if (row_group >= index.row_groups.size()) return Status::Corruption(ObjectName("index") + ": entry names a missing row group");
  return Position(std::make_pair(row_group, ordinal));
}

Result<bool> BlockReader::Contains(const TraceId& id) const {
  auto loaded = Index();
  if (!loaded.ok()) return loaded.status();
  auto position = Locate(**loaded, id);
  if (!position.ok()) return position.status();
  return position->has_value();
}

Result<std::optional<otlp::TracesData>> BlockReader::FindTrace(const TraceId& id) const {
  auto loaded = Index();
  if (!loaded.ok()) return loaded.status();
  auto position = Locate(**loaded, id);
  if (!position.ok()) return position.status();
  if (!position->has_value()) return std::optional<otlp::TracesData>();
  auto [row_group, ordinal] = **position;
  const RowGroupStats& rg = (*loaded)->row_groups[row_group];
  Result<std::string> bytes = store_.ReadRange(ObjectName("data"), rg.offset, rg.size);
  if (!bytes.ok()) return bytes.status();
  otlp::TracesData trace;
  TraceId found;
  Status status = ReadTraceFromRowGroup(*bytes, ordinal, found, trace);
  if (!status.ok()) return Status::Corruption(ObjectName("data") + ": " + status.message());
  if (found != id) return Status::Corruption(ObjectName("data") + ": index points at another trace");
  return std::optional<otlp::TracesData>(std::move(trace));
}

Status BlockReader::ScanRowGroupProjected(uint32_t row_group, const SpanFilter& filter, const Projection& projection,
                                          const DecodedTraceVisit& visit, uint64_t* spans_checked,
                                          const TraceSkip& skip) const {
  Result<std::string> bytes = ReadRowGroupBytes(row_group);
  if (!bytes.ok()) return bytes.status();
  Status status = block::ScanRowGroupProjected(*bytes, filter, projection, visit, spans_checked, skip);
  if (!status.ok()) return Status::Corruption(ObjectName("data") + ": " + status.message());
  return Status::Ok();
}

Result<std::vector<TraceEntry>> BlockReader::ListTraces(uint32_t row_group) const {
  Result<std::string> bytes = ReadRowGroupBytes(row_group);
  if (!bytes.ok()) return bytes.status();
  std::vector<TraceEntry> entries;
  Status status = ListTracesInRowGroup(*bytes, entries);
  if (!status.ok()) return Status::Corruption(ObjectName("data") + ": " + status.message());
  return entries;
}

Result<std::vector<DecodedTrace>> BlockReader::ReadRowGroup(uint32_t row_group) const {
  auto loaded = Index();
  if (!loaded.ok()) return loaded.status();
  Result<std::string> bytes = ReadRowGroupBytes(row_group);
  if (!bytes.ok()) return bytes.status();
  std::vector<DecodedTrace> traces;
  Status status = ReadTracesFromRowGroup(*bytes, (*loaded)->row_groups[row_group].trace_count, traces);
  if (!status.ok()) return Status::Corruption(ObjectName("data") + ": " + status.message());
  return traces;
}

Result<std::string> BlockReader::ReadRowGroupBytes(uint32_t row_group) const {
  auto loaded = Index();
  if (!loaded.ok()) return loaded.status();
  if (row_group >= (*loaded)->row_groups.size())
    return Status::InvalidArgument(ObjectName("data") + ": no row group " + std::to_string(row_group));
  const RowGroupStats& rg = (*loaded)->row_groups[row_group];
  Result<std::string> bytes = store_.ReadRange(ObjectName("data"), rg.offset, rg.size);
  if (!bytes.ok()) return bytes.status();
  if (bytes->size() != rg.size) return Status::Corruption(ObjectName("data") + ": short row group");
  return bytes;
}

// ---- merging ---------------------------------------------------------------------------------

void DeduplicateSpans(otlp::TracesData& trace) {
  // Regroup by equal resource and scope, and keep the first copy of each (span ID, kind).
  otlp::TracesData merged;
  std::set<std::pair<std::string, int>> seen;
  for (auto& rs : trace.resource_spans) {
    otlp::ResourceSpans* target = nullptr;
    for (auto& existing : merged.resource_spans)
      if (existing.resource == rs.resource && existing.schema_url == rs.schema_url) target = &existing;
    if (!target) {
      target = &merged.resource_spans.emplace_back();
      target->resource = std::move(rs.resource);
      target->schema_url = std::move(rs.schema_url);
    }
    for (auto& ss : rs.scope_spans) {
      otlp::ScopeSpans* scope = nullptr;
      for (auto& existing : target->scope_spans)
        if (existing.scope == ss.scope && existing.schema_url == ss.schema_url) scope = &existing;
      if (!scope) {
        scope = &target->scope_spans.emplace_back();
        scope->scope = std::move(ss.scope);
        scope->schema_url = std::move(ss.schema_url);
      }
      for (auto& span : ss.spans)
        if (seen.emplace(span.span_id, int(span.kind)).second) scope->spans.push_back(std::move(span));
    }
  }
  std::erase_if(merged.resource_spans, [](otlp::ResourceSpans& rs) {
    std::erase_if(rs.scope_spans, [](const otlp::ScopeSpans& ss) { return ss.spans.empty(); });
    return rs.scope_spans.empty();
  });
  trace = std::move(merged);
}

void MergeTraceInto(otlp::TracesData& into, otlp::TracesData&& from) {
  for (auto& rs : from.resource_spans) into.resource_spans.push_back(std::move(rs));
  DeduplicateSpans(into);
}

}  // namespace tracery::block
