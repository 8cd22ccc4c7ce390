#include "otlp/split.h"

#include "common/utf8.h"

#include <algorithm>

#include "otlp/wire.h"

namespace tracery::otlp {
namespace {

constexpr int kMaxNesting = 32;
constexpr const char* kBadText =
    "a string field is not valid UTF-8 (OTLP strings are proto3 strings; send binary data as bytes_value)";

// What a field of a message must look like: its wire type, and for submessages their type.
struct FieldRule {
  WireType wire;
  bool is_message;
  MessageType message;
  bool is_text = false;  // a proto3 `string`: must be valid UTF-8
};

bool RuleFor(MessageType type, uint32_t field, FieldRule& rule) {
  auto scalar = [&](WireType w) { rule = {w, false, MessageType::kSpan}; return true; };
  auto message = [&](MessageType m) { rule = {kLengthDelimited, true, m}; return true; };
  auto text = [&] { rule = {kLengthDelimited, false, MessageType::kSpan, true}; return true; };
  switch (type) {
    case MessageType::kTracesData:
      if (field == 1) return message(MessageType::kResourceSpans);
      return false;
    case MessageType::kResourceSpans:
      if (field == 1) return message(MessageType::kResource);
      if (field == 2) return message(MessageType::kScopeSpans);
      if (field == 3) return text();
      return false;
    case MessageType::kResource:
      if (field == 1) return message(MessageType::kKeyValue);
      if (field == 2) return scalar(kVarint);
      return false;
    case MessageType::kScopeSpans:
      if (field == 1) return message(MessageType::kScope);
      if (field == 2) return message(MessageType::kSpan);
      if (field == 3) return text();
      return false;
    case MessageType::kScope:
      if (field == 1 || field == 2) return text();
      if (field == 3) return message(MessageType::kKeyValue);
      if (field == 4) return scalar(kVarint);
      return false;
    case MessageType::kSpan:
      switch (field) {
        case 1: case 2: case 4: return scalar(kLengthDelimited);
        case 3: case 5: return text();
        case 6: case 10: case 12: case 14: return scalar(kVarint);
        case 7: case 8: return scalar(kFixed64);
        case 9: return message(MessageType::kKeyValue);
        case 11: return message(MessageType::kEvent);
        case 13: return message(MessageType::kLink);
        case 15: return message(MessageType::kStatus);
        case 16: return scalar(kFixed32);
        default: return false;
      }
    case MessageType::kEvent:
      if (field == 1) return scalar(kFixed64);
      if (field == 2) return text();
      if (field == 3) return message(MessageType::kKeyValue);
      if (field == 4) return scalar(kVarint);
      return false;
    case MessageType::kLink:
      if (field == 1 || field == 2) return scalar(kLengthDelimited);
      if (field == 3) return text();
      if (field == 4) return message(MessageType::kKeyValue);
      if (field == 5) return scalar(kVarint);
      if (field == 6) return scalar(kFixed32);
      return false;
    case MessageType::kStatus:
      if (field == 2) return text();
      if (field == 3) return scalar(kVarint);
      return false;
    case MessageType::kKeyValue:
      if (field == 1) return text();
      if (field == 2) return message(MessageType::kAnyValue);
      return false;
    case MessageType::kAnyValue:
      switch (field) {
        case 1: return text();
        case 7: return scalar(kLengthDelimited);
        case 2: case 3: return scalar(kVarint);
        case 4: return scalar(kFixed64);
        case 5: return message(MessageType::kArrayValue);
        case 6: return message(MessageType::kKeyValueList);
        default: return false;
      }
    case MessageType::kArrayValue:
      if (field == 1) return message(MessageType::kAnyValue);
      return false;
    case MessageType::kKeyValueList:
      if (field == 1) return message(MessageType::kKeyValue);
      return false;
  }
  return false;
}

}  // namespace

bool IsWellFormed(std::string_view bytes, MessageType type, int depth, bool* bad_text) {
  if (depth > kMaxNesting) return false;
  ByteReader reader(bytes);
  WireField f;
  FieldRule rule;
  while (!reader.empty()) {
    if (!ReadField(reader, f)) return false;
    if (!RuleFor(type, f.number, rule)) continue;  // unknown fields are allowed and kept
    if (f.type != rule.wire) return false;
    if (rule.is_message && !IsWellFormed(f.bytes, rule.message, depth + 1, bad_text)) return false;
    if (rule.is_text && !IsValidUtf8(f.bytes)) {
      if (bad_text) *bad_text = true;
      return false;
    }
  }
  return true;
}

void SplitRequest::Clear() {
  fragments.clear();
  spans.clear();
  resources.clear();
  span_count = 0;
}

namespace {

struct ScopeGroup {
  std::string_view scope_field;   // the encoded `scope = 1` field, tag included, or empty
  std::string_view schema_field;  // the encoded `schema_url = 3` field, or empty
};

// Reads the summary fields of one span and checks its IDs.
Status ReadSpan(std::string_view bytes, SpanSummary& s, std::string_view& trace_id) {
  bool bad_text = false;
  if (!IsWellFormed(bytes, MessageType::kSpan, 0, &bad_text))
    return Status::InvalidArgument(bad_text ? kBadText + std::string(" (in a span)") : "malformed protobuf in span");
  ByteReader reader(bytes);
  WireField f;
  trace_id = {};
  while (!reader.empty()) {
    ReadField(reader, f);
    switch (f.number) {
      case 1: trace_id = f.bytes; break;
      case 2: s.span_id = f.bytes; break;
      case 4: s.parent_span_id = f.bytes; break;
      case 5: s.name = f.bytes; break;
      case 6: s.kind = uint8_t(f.integer <= 5 ? f.integer : 0); break;
      case 7: s.start_unix_nano = f.integer; break;
      case 8: s.end_unix_nano = f.integer; break;
      case 15: {
        ByteReader status(f.bytes);
        WireField g;
        while (!status.empty() && ReadField(status, g))
          if (g.number == 3) s.status_code = uint8_t(g.integer <= 2 ? g.integer : 0);
        break;
      }
      default: break;
    }
  }
  if (trace_id.size() != 16) return Status::InvalidArgument("span has a trace_id that is not 16 bytes");
  if (TraceId::FromBytes(trace_id).IsZero()) return Status::InvalidArgument("span has an all-zero trace_id");
  if (s.span_id.size() != 8) return Status::InvalidArgument("span has a span_id that is not 8 bytes");
  if (s.span_id == std::string_view("\0\0\0\0\0\0\0\0", 8)) return Status::InvalidArgument("span has an all-zero span_id");
  if (!s.parent_span_id.empty() && s.parent_span_id.size() != 8)
    return Status::InvalidArgument("span has a parent_span_id that is not 8 bytes");
  return Status::Ok();
}

size_t FieldSize(uint32_t number, size_t body) { return VarintLength(number << 3) + VarintLength(body) + body; }

}  // namespace

Status SplitByTrace(std::string_view request, SplitRequest& out) {
  out.Clear();
  // Per request: trace ID -> fragment index. Per ResourceSpans: its spans, to be regrouped.
  std::unordered_map<TraceId, uint32_t, TraceIdHasher> fragment_of;
  std::vector<ScopeGroup> scopes;
  struct Entry { uint32_t fragment, scope, summary; };
  std::vector<Entry> entries;

  ByteReader reader(request);
  WireField rs_field;
  while (!reader.empty()) {
    if (!ReadField(reader, rs_field)) return Status::InvalidArgument("malformed protobuf in request");
    if (rs_field.number != 1) continue;
    if (rs_field.type != kLengthDelimited) return Status::InvalidArgument("malformed protobuf: resource_spans");
    auto resource_index = static_cast<uint32_t>(out.resources.size());
    std::string_view resource_field, resource_schema_field;
    scopes.clear();
    entries.clear();

    ByteReader rs(rs_field.bytes);
    WireField f;
    out.resources.emplace_back();
    while (!rs.empty()) {
      if (!ReadField(rs, f)) return Status::InvalidArgument("malformed protobuf in resource_spans");
      std::string_view raw(f.start, size_t(rs.position() - f.start));
      if (f.number == 1) {
        bool bad_text = false;
        if (f.type != kLengthDelimited || !IsWellFormed(f.bytes, MessageType::kResource, 0, &bad_text))
          return Status::InvalidArgument(bad_text ? kBadText + std::string(" (in a resource)") : "malformed protobuf in resource");
        resource_field = raw;
        out.resources.back() = f.bytes;
      } else if (f.number == 3) {
        if (f.type != kLengthDelimited) return Status::InvalidArgument("malformed schema_url");
        if (!IsValidUtf8(f.bytes)) return Status::InvalidArgument(kBadText + std::string(" (schema_url)"));
        resource_schema_field = raw;
      } else if (f.number == 2) {
        if (f.type != kLengthDelimited) return Status::InvalidArgument("malformed protobuf: scope_spans");
        auto scope_index = static_cast<uint32_t>(scopes.size());
        ScopeGroup& group = scopes.emplace_back();
        ByteReader ss(f.bytes);
        WireField g;
        while (!ss.empty()) {
          if (!ReadField(ss, g)) return Status::InvalidArgument("malformed protobuf in scope_spans");
          std::string_view graw(g.start, size_t(ss.position() - g.start));
          if (g.number == 1) {
            bool bad_text = false;
            if (g.type != kLengthDelimited || !IsWellFormed(g.bytes, MessageType::kScope, 0, &bad_text))
              return Status::InvalidArgument(bad_text ? kBadText + std::string(" (in a scope)") : "malformed protobuf in scope");
            group.scope_field = graw;
          } else if (g.number == 3) {
            if (g.type != kLengthDelimited) return Status::InvalidArgument("malformed schema_url");
            if (!IsValidUtf8(g.bytes)) return Status::InvalidArgument(kBadText + std::string(" (schema_url)"));
            group.schema_field = graw;
          } else if (g.number == 2) {
            if (g.type != kLengthDelimited) return Status::InvalidArgument("malformed protobuf: spans");
            SpanSummary summary;
            std::string_view trace_id;
            TRACERY_RETURN_IF_ERROR(ReadSpan(g.bytes, summary, trace_id));
            summary.encoded = graw;  // tag included: copied as-is into the fragment
            summary.resource_index = resource_index;
            TraceId id = TraceId::FromBytes(trace_id);
            auto [it, inserted] = fragment_of.try_emplace(id, uint32_t(out.fragments.size()));
            if (inserted) out.fragments.emplace_back().trace_id = id;
            TraceFragment& fragment = out.fragments[it->second];
            fragment.span_count++;
            fragment.min_start_unix_nano = std::min(fragment.min_start_unix_nano, summary.start_unix_nano);
            fragment.max_end_unix_nano = std::max(fragment.max_end_unix_nano, summary.end_unix_nano);
            fragment.has_error |= summary.status_code == 2;  // STATUS_CODE_ERROR
            fragment.has_root |= summary.parent_span_id.empty();
            summary.fragment_index = it->second;
            entries.push_back({it->second, scope_index, uint32_t(out.spans.size())});
            out.spans.push_back(summary);
          }
        }
      }
    }

    // Regroup this ResourceSpans' spans by trace, keeping scope order within each trace.
    std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
      return a.fragment != b.fragment ? a.fragment < b.fragment : a.scope < b.scope;
    });
    for (size_t i = 0; i < entries.size();) {
      size_t trace_end = i;
      while (trace_end < entries.size() && entries[trace_end].fragment == entries[i].fragment) ++trace_end;
      // Sizes first, so each length prefix is written once, before its body.
      size_t rs_body = resource_field.size() + resource_schema_field.size();
      for (size_t j = i; j < trace_end;) {
        size_t scope_end = j;
        size_t ss_body = scopes[entries[j].scope].scope_field.size() + scopes[entries[j].scope].schema_field.size();
        while (scope_end < trace_end && entries[scope_end].scope == entries[j].scope)
          ss_body += out.spans[entries[scope_end++].summary].encoded.size();
        rs_body += FieldSize(2, ss_body);
        j = scope_end;
      }
      std::string& bytes = out.fragments[entries[i].fragment].bytes;
      bytes.reserve(bytes.size() + FieldSize(1, rs_body));
      PutTag(bytes, 1, kLengthDelimited);
      PutVarint(bytes, rs_body);
      bytes.append(resource_field);
      for (size_t j = i; j < trace_end;) {
        const ScopeGroup& scope = scopes[entries[j].scope];
        size_t scope_end = j;
        size_t ss_body = scope.scope_field.size() + scope.schema_field.size();
        while (scope_end < trace_end && entries[scope_end].scope == entries[j].scope)
          ss_body += out.spans[entries[scope_end++].summary].encoded.size();
        PutTag(bytes, 2, kLengthDelimited);
        PutVarint(bytes, ss_body);
        bytes.append(scope.scope_field);
        for (size_t k = j; k < scope_end; ++k) bytes.append(out.spans[entries[k].summary].encoded);
        bytes.append(scope.schema_field);
        j = scope_end;
      }
      bytes.append(resource_schema_field);
      i = trace_end;
    }
  }
  out.span_count = out.spans.size();
  return Status::Ok();
}

}  // namespace tracery::otlp
