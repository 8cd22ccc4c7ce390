// Format 2's dedicated span attribute columns, as a row group is finished: which keys get a
// column, and where each span attribute value goes. Layout in docs/block-format.md.
#include "block/row_group.h"
#include "block/row_group_internal.h"

#include <algorithm>

#include "common/coding.h"

namespace tracery::block {
using namespace internal;

// The span attribute keys present in at least 5 % of the row group's spans, the most frequent
// first (ties: first interned first), at most kMaxDedicatedKeys: the keys a search most likely
// names, and common enough to be worth a presence bit in every span.
std::vector<uint32_t> RowGroupBuilder::ChooseDedicatedKeys() const {
  std::vector<uint32_t> keys;
  for (uint32_t key = 0; key < span_key_use_.size(); ++key)
    if (span_key_use_[key].spans > 0 && uint64_t(span_key_use_[key].spans) * 20 >= stats_.span_count) keys.push_back(key);
  std::stable_sort(keys.begin(), keys.end(),
                   [&](uint32_t a, uint32_t b) { return span_key_use_[a].spans > span_key_use_[b].spans; });
  if (keys.size() > kMaxDedicatedKeys) keys.resize(kMaxDedicatedKeys);
  return keys;
}

namespace {

// The dedicated entry of a span's one value of a key; kTagGeneric when the value cannot be one.
DedicatedTag TagOf(uint8_t type, uint64_t value) {
  switch (type) {
    case kEmpty: return kTagEmpty;
    case kString: return kTagString;
    case kFalse: return kTagFalse;
    case kTrue: return kTagTrue;
    case kInt: return value < kDedicatedPayloadLimit ? kTagInt : kTagGeneric;
    case kDouble: return kTagDouble;
    default: return kTagGeneric;
  }
}

}  // namespace

// Writes the span attribute values, span by span. Format 2: the single scalar value of a
// dedicated key goes to the key's column, and the generic stream keeps the key with type
// kDedicated (attribute order stays as received); a key repeated in a span, or with a value
// that is no scalar, stays in the generic stream, and its column says so (kTagGeneric). The
// presence column has the span's dedicated keys; absent keys take no entry, as one entry per
// span and key would cost more than all the values (zstd codes such sparse bytes poorly).
void RowGroupBuilder::WriteSpanAttributeValues(const std::vector<uint32_t>& dedicated_keys) {
  if (format_version_ >= 2) {
    PutVarint(columns_[kDedicatedKeys], dedicated_keys.size());
    for (uint32_t key : dedicated_keys) {
      PutVarint(columns_[kDedicatedKeys], key);
      PutLengthPrefixed(columns_[kDedicatedKeys], dictionary_[key]);
    }
  }
  std::vector<int8_t> dedicated_index(dictionary_.size(), -1);
  for (size_t d = 0; d < dedicated_keys.size(); ++d) dedicated_index[dedicated_keys[d]] = int8_t(d);
  PendingValue* values = span_values_.data();
  for (uint32_t count : span_attribute_counts_) {
    uint32_t times[kMaxDedicatedKeys] = {};
    PendingValue* only[kMaxDedicatedKeys] = {};
    for (PendingValue* v = values; v < values + count; ++v) {
      int d = dedicated_index[v->key];
      if (d < 0) continue;
      times[d]++;
      only[d] = v;
    }
    uint32_t presence = 0;
    for (size_t d = 0; d < dedicated_keys.size(); ++d) {
      if (times[d] == 0) continue;
      presence |= 1u << d;
      DedicatedTag tag = times[d] > 1 ? kTagGeneric : TagOf(only[d]->type, only[d]->value);
      PutDedicatedValue(columns_[kDedicatedValueBase + d], tag, tag >= kTagFalse ? only[d]->value : 0);
      if (tag >= kTagFalse) only[d]->type = kDedicated;
    }
    if (!dedicated_keys.empty()) PutVarint(columns_[kDedicatedPresence], presence);
    for (PendingValue* v = values; v < values + count; ++v) {
      std::string_view complex;
      if (v->type == kComplex) complex = std::string_view(span_complex_values_).substr(v->value, v->complex_size);
      PutGenericValue(kSpanAttributes, v->type, v->value, complex);
    }
    values += count;
  }
}

}  // namespace tracery::block
