// Private to the generator: the half edges of a tenant that wait for their other half, by
// trace ID and client span ID. Open addressing (linear probing, deletion by shifting back)
// over a power-of-two array of small slots that point into a slab of entries reused through a
// free list: no allocation per half edge once the table has grown to its working size.
// Not thread-safe: the tenant's edges mutex guards it.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace tracery::generator {

// `Key` has operator==; `Value` is default-constructible and reusable (reset by the caller).
template <class Key, class Value>
class EdgeTable {
 public:
  size_t size() const { return size_; }

  // `hash` is the key's hash, computed once by the caller (seeded: keys come from the network).
  Value* Find(const Key& key, uint64_t hash) {
    if (slots_.empty()) return nullptr;
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.entry == 0) return nullptr;
      if (slot.tag != Tag(hash)) continue;  // most misses end without touching an entry
      Entry& entry = entries_[slot.entry - 1];
      if (entry.hash == hash && entry.key == key) return &entry.value;
    }
  }

  // Adds a key that is not in the table; the value is the previous user's of its entry.
  Value& Insert(const Key& key, uint64_t hash) {
    if ((size_ + 1) * 2 > slots_.size()) Grow();
    uint32_t index;
    if (!free_.empty()) {
      index = free_.back();
      free_.pop_back();
    } else {
      index = uint32_t(entries_.size());
      entries_.emplace_back();
    }
    Entry& entry = entries_[index];
    entry.key = key;
    entry.hash = hash;
    entry.live = true;
    Place(index);
    size_++;
    return entry.value;
  }

  void Erase(const Key& key, uint64_t hash) {
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      uint32_t e = slots_[i].entry;
      if (e == 0) return;
      if (slots_[i].tag != Tag(hash)) continue;
      Entry& entry = entries_[e - 1];
      if (entry.hash != hash || !(entry.key == key)) continue;
      entry.live = false;
      free_.push_back(e - 1);
      size_--;
      ShiftBack(i);
      return;
    }
  }

  // Calls `take(value)` for, and removes, every entry for which `expired(value)` holds.
  void RemoveIf(const std::function<bool(const Value&)>& expired, const std::function<void(Value&)>& take) {
    for (uint32_t index = 0; index < entries_.size(); ++index) {
      Entry& entry = entries_[index];
      if (!entry.live || !expired(entry.value)) continue;
      take(entry.value);
      Erase(Key(entry.key), entry.hash);
    }
  }

 private:
  struct Slot {
    uint32_t entry = 0;  // entry index + 1; 0: empty
    uint32_t tag = 0;    // high bits of the entry's hash
  };
  static uint32_t Tag(uint64_t hash) { return uint32_t(hash >> 32); }
  struct Entry {
    Key key{};
    uint64_t hash = 0;
    bool live = false;
    Value value{};
  };

  void Place(uint32_t index) {
    size_t i = entries_[index].hash & mask_;
    while (slots_[i].entry != 0) i = (i + 1) & mask_;
    slots_[i] = {index + 1, Tag(entries_[index].hash)};
  }

  void Grow() {
    slots_.assign(std::max<size_t>(64, slots_.size() * 2), Slot());
    mask_ = slots_.size() - 1;
    for (uint32_t index = 0; index < entries_.size(); ++index)
      if (entries_[index].live) Place(index);
  }

  // Empties slot `hole` and moves back later slots of its run that may live there, so that
  // every entry stays reachable from its home slot.
  void ShiftBack(size_t hole) {
    for (size_t i = (hole + 1) & mask_;; i = (i + 1) & mask_) {
      uint32_t e = slots_[i].entry;
      if (e == 0) break;
      size_t home = entries_[e - 1].hash & mask_;
      // The entry at i may move to the hole unless its home lies cyclically in (hole, i].
      bool home_after_hole = hole <= i ? (hole < home && home <= i) : (hole < home || home <= i);
      if (home_after_hole) continue;
      slots_[hole] = slots_[i];
      hole = i;
    }
    slots_[hole].entry = 0;
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  std::vector<Entry> entries_;
  std::vector<uint32_t> free_;
  size_t size_ = 0;
};

}  // namespace tracery::generator
