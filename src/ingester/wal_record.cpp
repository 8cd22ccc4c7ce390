#include "ingester/wal_record.h"

#include "common/coding.h"
#include "wal/wal.h"

namespace tracery::ingester {

// Version 3:  u8 3, tenant (varint length + bytes), varint fragment count, then per fragment:
//   16-byte trace ID, varint span count, varint min start, varint max end (unix ns),
//   u8 flags (1: a span has status ERROR, 2: a span has no parent), varint length + bytes.
std::string EncodeRecord(std::string_view tenant, const std::vector<const otlp::TraceFragment*>& fragments,
                         std::vector<RecordFragment>& layout) {
  size_t size = 16 + tenant.size();
  for (const auto* f : fragments) size += 48 + f->bytes.size();
  std::string record = wal::NewRecordBuffer(size);
  const size_t base = record.size();
  record += char(kIndexedRecordV3);
  PutLengthPrefixed(record, tenant);
  PutVarint(record, fragments.size());
  layout.clear();
  layout.reserve(fragments.size());
  for (const auto* f : fragments) {
    record.append(f->trace_id.View());
    PutVarint(record, f->span_count);
    uint64_t min_start = f->min_start_unix_nano == UINT64_MAX ? 0 : f->min_start_unix_nano;
    PutVarint(record, min_start);
    PutVarint(record, f->max_end_unix_nano);
    record += char((f->has_error ? 1 : 0) | (f->has_root ? 2 : 0));
    PutVarint(record, f->bytes.size());
    layout.push_back({f->trace_id, f->span_count, f->has_error, f->has_root, min_start, f->max_end_unix_nano,
                      record.size() - base, uint32_t(f->bytes.size())});
    record.append(f->bytes);
  }
  return record;
}

bool DecodeRecord(std::string_view payload, std::string_view& tenant, std::vector<RecordFragment>& fragments) {
  fragments.clear();
  ByteReader in(payload);
  std::string_view version, id;
  uint64_t count;
  if (!in.ReadBytes(1, version) || uint8_t(version[0]) != kIndexedRecordV3 || !in.ReadLengthPrefixed(tenant) ||
      !in.ReadVarint(count) || count > in.remaining())
    return false;
  fragments.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    RecordFragment f;
    uint64_t spans, length;
    std::string_view flags, bytes;
    if (!in.ReadBytes(16, id) || !in.ReadVarint(spans) || !in.ReadVarint(f.min_start_unix_nano) ||
        !in.ReadVarint(f.max_end_unix_nano) || !in.ReadBytes(1, flags) || !in.ReadVarint(length) ||
        length > in.remaining() || length > UINT32_MAX)
      return false;
    f.trace_id = TraceId::FromBytes(id);
    f.span_count = uint32_t(spans);
    f.has_error = (uint8_t(flags[0]) & 1) != 0;
    f.has_root = (uint8_t(flags[0]) & 2) != 0;
    f.offset = uint64_t(in.position() - payload.data());
    f.length = uint32_t(length);
    in.ReadBytes(length, bytes);
    fragments.push_back(f);
  }
  return in.empty();
}

std::string EncodeDecisions(std::string_view tenant, const std::vector<RecordDecision>& decisions) {
  std::string record = wal::NewRecordBuffer(16 + tenant.size() + decisions.size() * 17);
  record += char(kDecisionsRecord);
  PutLengthPrefixed(record, tenant);
  PutVarint(record, decisions.size());
  for (const auto& d : decisions) {
    record.append(d.trace_id.View());
    record += char(d.decision);
  }
  return record;
}

bool DecodeDecisions(std::string_view payload, std::string_view& tenant, std::vector<RecordDecision>& decisions) {
  decisions.clear();
  ByteReader in(payload);
  std::string_view version, id, kind;
  uint64_t count;
  if (!in.ReadBytes(1, version) || uint8_t(version[0]) != kDecisionsRecord || !in.ReadLengthPrefixed(tenant) ||
      !in.ReadVarint(count) || count > in.remaining() / 17)
    return false;
  decisions.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    if (!in.ReadBytes(16, id) || !in.ReadBytes(1, kind)) return false;
    uint8_t k = uint8_t(kind[0]);
    if (k < uint8_t(Decision::kDropped) || k > uint8_t(Decision::kUnpinned)) return false;
    decisions.push_back({TraceId::FromBytes(id), Decision(k)});
  }
  return in.empty();
}

bool DecodeLegacyRecord(std::string_view payload, std::string& tenant, std::vector<otlp::TraceFragment>& fragments) {
  fragments.clear();
  ByteReader in(payload);
  std::string_view version, name;
  if (!in.ReadBytes(1, version) || !in.ReadLengthPrefixed(name)) return false;
  tenant.assign(name);
  std::string_view rest(in.position(), in.remaining());
  if (uint8_t(version[0]) == kRequestRecordV2) {
    // The request as received: split it by trace again.
    otlp::SplitRequest split;
    if (!otlp::SplitByTrace(rest, split).ok()) return false;
    fragments = std::move(split.fragments);
    return true;
  }
  if (uint8_t(version[0]) != kFragmentsRecordV1) return false;
  // Fragments of accepted spans; split them again for their summaries.
  uint64_t count;
  std::string encoded;
  std::string_view id, bytes;
  if (!in.ReadVarint(count) || count > in.remaining()) return false;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t spans;
    if (!in.ReadBytes(16, id) || !in.ReadVarint(spans) || !in.ReadLengthPrefixed(bytes)) return false;
    encoded.append(bytes);
  }
  otlp::SplitRequest split;
  if (!otlp::SplitByTrace(encoded, split).ok()) return false;
  fragments = std::move(split.fragments);
  return true;
}

}  // namespace tracery::ingester
