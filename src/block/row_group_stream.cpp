// Reading a row group span by span (RowGroupSpanReader): compaction streams traces from its
// inputs into the block it writes without holding any of them whole.
#include "block/row_group.h"
#include "block/row_group_internal.h"

namespace tracery::block {
namespace internal {

bool RowGroupDecoder::NextTraceHeader(TraceEntry& entry) {
  std::string_view raw_id;
  uint64_t span_count, start_delta;
  if (!readers_[kTraceIds].ReadBytes(16, raw_id) || !readers_[kTraceSpanCounts].ReadVarint(span_count) ||
      !readers_[kTraceStarts].ReadVarint(start_delta) || span_count > readers_[kSpanIds].remaining() / 8)
    return false;
  trace_start_ += uint64_t(UnZigZag(start_delta));
  entry = {TraceId::FromBytes(raw_id), uint32_t(span_count), trace_start_};
  // A parent given by position names a span of the same trace, maybe a later one: its ID is
  // read from the span ID column ahead of the span itself.
  streamed_span_ids_ = readers_[kSpanIds].position();
  streamed_spans_ = span_count;
  return true;
}

bool RowGroupDecoder::NextStreamedSpan(otlp::Span& span, uint32_t& resource, uint32_t& scope) {
  uint64_t parent_code = 0, resource_ref = 0, scope_ref = 0;
  span.parent_span_id.clear();
  if (!ReadSpan(span, parent_code, resource_ref, scope_ref) || resource_ref >= resources_.size() ||
      scope_ref >= scopes_.size())
    return false;
  if (parent_code >= 2) {
    if (parent_code - 2 >= streamed_spans_) return false;
    span.parent_span_id.assign(streamed_span_ids_ + 8 * (parent_code - 2), 8);
  }
  resource = uint32_t(resource_ref);
  scope = uint32_t(scope_ref);
  return true;
}

}  // namespace internal

RowGroupSpanReader::RowGroupSpanReader() = default;
RowGroupSpanReader::~RowGroupSpanReader() = default;
RowGroupSpanReader::RowGroupSpanReader(RowGroupSpanReader&&) noexcept = default;
RowGroupSpanReader& RowGroupSpanReader::operator=(RowGroupSpanReader&&) noexcept = default;

Status RowGroupSpanReader::Open(std::string_view row_group) {
  // Every column is decompressed or copied: nothing points into `row_group` afterwards.
  decoder_ = std::make_unique<internal::RowGroupDecoder>();
  return decoder_->Open(row_group);
}

Status RowGroupSpanReader::NextTrace(TraceEntry& trace, bool& found) {
  found = false;
  if (decoder_->Column(internal::kTraceIds).empty()) return Status::Ok();
  if (!decoder_->NextTraceHeader(trace)) return Status::Corruption("row group: bad trace columns");
  found = true;
  return Status::Ok();
}

Status RowGroupSpanReader::NextSpan(StreamedSpan& out) {
  uint32_t resource, scope;
  if (!decoder_->NextStreamedSpan(span_, resource, scope)) return Status::Corruption("row group: a span does not decode");
  encoded_.clear();
  otlp::EncodeSpan(span_, encoded_);
  out.span = &span_;
  out.encoded = encoded_;
  out.resource = decoder_->resources()[resource];
  out.scope = decoder_->scopes()[scope];
  return Status::Ok();
}

}  // namespace tracery::block
