// Format 3's value summary of a row group (docs/block-format.md): written by the builder from
// the span attribute values waiting for Finish, kept by readers as hashes.
#include <xxhash.h>

#include <algorithm>
#include <cstring>

#include "block/row_group.h"
#include "block/row_group_internal.h"

namespace tracery::block {
using namespace internal;
namespace {

uint32_t KeyHash(std::string_view key, ValueSummary::Type type) {
  return uint32_t(XXH3_64bits_withSeed(key.data(), key.size(), uint64_t(type)));
}

uint32_t ValueHash(uint32_t key_hash, std::string_view value) {
  return uint32_t(XXH3_64bits_withSeed(value.data(), value.size(), key_hash));
}

}  // namespace

std::string ValueSummary::IntValue(int64_t value) {
  std::string out(8, '\0');
  auto bits = uint64_t(value);
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char(bits >> (8 * i));
  return out;
}

void ValueSummary::Index() {
  known = true;
  key_hashes.clear();
  value_hashes.clear();
  for (const Key& key : keys) {
    uint32_t hash = KeyHash(key.name, key.type);
    key_hashes.push_back(hash);
    for (const std::string& value : key.values) value_hashes.push_back(ValueHash(hash, value));
  }
  std::sort(key_hashes.begin(), key_hashes.end());
  std::sort(value_hashes.begin(), value_hashes.end());
  key_hashes.shrink_to_fit();
  value_hashes.shrink_to_fit();
  keys.clear();
  keys.shrink_to_fit();
}

ValueSummary::Probe ValueSummary::ProbeFor(std::string_view key, Type type, std::string_view value) {
  Probe probe;
  probe.key_hash = KeyHash(key, type);
  probe.value_hash = ValueHash(probe.key_hash, value);
  return probe;
}

bool ValueSummary::MayHold(const Probe& probe) const {
  if (!known || !std::binary_search(key_hashes.begin(), key_hashes.end(), probe.key_hash)) return true;
  return std::binary_search(value_hashes.begin(), value_hashes.end(), probe.value_hash);
}

bool ValueSummary::MayHold(std::string_view key, Type type, std::string_view value) const {
  return MayHold(ProbeFor(key, type, value));
}

// Which span attribute keys the summary covers: those whose every value in the row group is a
// string (of at most kMaxValueBytes), every one an int or every one a bool, with at most
// kMaxValues distinct values. Empty values, doubles, arrays, maps and bytes leave their key
// out: a filter's comparisons on them are not plain equality of like with like.
void RowGroupBuilder::SummarizeValues() {
  constexpr uint8_t kUnseen = 0xff, kMixed = 0xfe;
  struct Seen {
    uint8_t type = kUnseen;  // kString, kInt or kFalse (for both bools); kMixed: left out
    std::vector<uint64_t> values;  // dictionary IDs, zigzags or 0/1
  };
  std::vector<Seen> seen(span_key_use_.size());
  for (const PendingValue& v : span_values_) {
    Seen& key = seen[v.key];
    if (key.type == kMixed) continue;
    uint8_t type = v.type == kTrue ? uint8_t(kFalse) : v.type;
    uint64_t value = v.type == kTrue ? 1 : v.type == kFalse ? 0 : v.value;
    bool scalar = type == kString || type == kInt || type == kFalse;
    if (!scalar || (key.type != kUnseen && key.type != type) ||
        (type == kString && dictionary_[value].size() > ValueSummary::kMaxValueBytes)) {
      key.type = kMixed;
      key.values = {};
      continue;
    }
    key.type = type;
    if (std::find(key.values.begin(), key.values.end(), value) != key.values.end()) continue;
    if (key.values.size() == ValueSummary::kMaxValues) {
      key.type = kMixed;
      key.values = {};
      continue;
    }
    key.values.push_back(value);
  }
  for (uint32_t id = 0; id < seen.size(); ++id) {
    const Seen& key = seen[id];
    if (key.type == kUnseen || key.type == kMixed) continue;
    ValueSummary::Key& out = stats_.values.keys.emplace_back();
    out.name = dictionary_[id];
    for (uint64_t value : key.values) {
      switch (key.type) {
        case kString:
          out.type = ValueSummary::Type::kString;
          out.values.emplace_back(dictionary_[value]);
          break;
        case kInt:
          out.type = ValueSummary::Type::kInt;
          out.values.push_back(ValueSummary::IntValue(UnZigZag(value)));
          break;
        default:
          out.type = ValueSummary::Type::kBool;
          out.values.push_back(ValueSummary::BoolValue(value != 0));
          break;
      }
    }
    std::sort(out.values.begin(), out.values.end());
  }
}

}  // namespace tracery::block
