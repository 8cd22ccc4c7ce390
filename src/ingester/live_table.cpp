#include "ingester/live_table.h"

#include <algorithm>

namespace tracery::ingester {
namespace {

constexpr uint32_t kMinIndexBits = 4;
constexpr uint64_t kNumberMask = 0xFFFFFFFFull;

uint32_t TagOf(uint64_t slot_value) { return uint32_t(slot_value >> 32); }
uint32_t NumberIn(uint64_t slot_value) { return uint32_t(slot_value & kNumberMask) - 1; }

}  // namespace

uint64_t LiveTable::Mixed(const TraceId& id, uint32_t tenant) {
  // The shard was chosen from the low bits of the same hash: the index uses the high bits of
  // the product, which depend on all of them.
  return (id.Hash() ^ (uint64_t(tenant) * 0x9E3779B97F4A7C15ull)) * 0xD6E8FEB86659FD93ull;
}

LiveTrace* LiveTable::Find(const TraceId& id, uint32_t tenant) const {
  if (size_ == 0) return nullptr;
  uint32_t tag = uint32_t(Mixed(id, tenant) >> 32);
  size_t mask = index_.size() - 1;
  for (size_t slot = Home(tag);; slot = (slot + 1) & mask) {
    uint64_t value = index_[slot];
    if (value == 0) return nullptr;
    if (TagOf(value) != tag) continue;
    LiveTrace& entry = Entry(NumberIn(value));
    if (entry.tenant == tenant && entry.id == id) return &entry;
  }
}

LiveTrace& LiveTable::Insert(const TraceId& id, uint32_t tenant) {
  if (index_.empty() || (size_ + 1) * 4 > index_.size() * 3) Rehash(std::max(kMinIndexBits, index_bits_ + 1));
  if (free_entries_.empty()) {
    auto chunk = std::make_unique<LiveTrace[]>(kChunkEntries);
    uint32_t base = uint32_t(chunks_.size()) * kChunkEntries;
    for (uint32_t i = kChunkEntries; i-- > 0;) {
      chunk[i].tenant = kFree;
      free_entries_.push_back(base + i);  // the lowest is taken first
    }
    chunks_.push_back(std::move(chunk));
  }
  uint32_t number = free_entries_.back();
  free_entries_.pop_back();
  LiveTrace& entry = Entry(number);
  entry = LiveTrace();
  entry.id = id;
  entry.tenant = tenant;
  PlaceInIndex(uint64_t(uint32_t(Mixed(id, tenant) >> 32)) << 32 | (uint64_t(number) + 1));
  size_++;
  return entry;
}

size_t LiveTable::SlotOf(uint32_t number, uint32_t tag) const {
  size_t mask = index_.size() - 1;
  uint64_t wanted = uint64_t(tag) << 32 | (uint64_t(number) + 1);
  size_t slot = Home(tag);
  while (index_[slot] != wanted) slot = (slot + 1) & mask;
  return slot;
}

void LiveTable::Erase(LiveTrace& trace) {
  uint32_t tag = uint32_t(Mixed(trace.id, trace.tenant) >> 32);
  // The entry's number is in its index slot: probe for the key as Find does.
  size_t mask = index_.size() - 1;
  size_t slot = Home(tag);
  for (;; slot = (slot + 1) & mask) {
    uint64_t value = index_[slot];
    if (value != 0 && TagOf(value) == tag && &Entry(NumberIn(value)) == &trace) break;
  }
  uint32_t number = NumberIn(index_[slot]);
  EraseSlot(slot);
  FreeChain(trace.more);
  trace = LiveTrace();
  trace.tenant = kFree;
  free_entries_.push_back(number);
  size_--;
}

void LiveTable::PlaceInIndex(uint64_t slot_value) {
  size_t mask = index_.size() - 1;
  size_t slot = Home(TagOf(slot_value));
  while (index_[slot] != 0) slot = (slot + 1) & mask;
  index_[slot] = slot_value;
}

void LiveTable::EraseSlot(size_t hole) {
  // Backward shift: every later entry of the run whose home is not after the hole moves into it.
  size_t mask = index_.size() - 1;
  for (size_t next = (hole + 1) & mask; index_[next] != 0; next = (next + 1) & mask) {
    size_t home = Home(TagOf(index_[next]));
    // The entry at `next` may move to `hole` unless its home lies cyclically in (hole, next].
    bool home_between = hole <= next ? (home > hole && home <= next) : (home > hole || home <= next);
    if (home_between) continue;
    index_[hole] = index_[next];
    hole = next;
  }
  index_[hole] = 0;
}

void LiveTable::Rehash(uint32_t bits) {
  std::vector<uint64_t> old;
  old.swap(index_);
  index_.assign(size_t(1) << bits, 0);
  index_bits_ = bits;
  for (uint64_t value : old)
    if (value != 0) PlaceInIndex(value);
}

uint32_t LiveTable::NewNode(FragmentLocation location, uint32_t next) {
  uint32_t number;
  if (free_nodes_ != 0) {
    number = free_nodes_ - 1;
    free_nodes_ = pool_[number / kChunkNodes][number % kChunkNodes].next;
  } else {
    if (nodes_made_ == pool_.size() * kChunkNodes) pool_.push_back(std::make_unique<Node[]>(kChunkNodes));
    number = uint32_t(nodes_made_++);
  }
  pool_[number / kChunkNodes][number % kChunkNodes] = Node{location, next};
  nodes_used_++;
  return number + 1;
}

void LiveTable::FreeChain(uint32_t head) {
  while (head != 0) {
    Node& node = pool_[(head - 1) / kChunkNodes][(head - 1) % kChunkNodes];
    uint32_t next = node.next;
    node.next = free_nodes_;
    free_nodes_ = head;
    head = next;
    nodes_used_--;
  }
}

void LiveTable::AppendFragment(LiveTrace& trace, FragmentLocation location) {
  if (trace.fragment_count == 0) trace.first = location;
  else trace.more = NewNode(location, trace.more);
  trace.fragment_count++;
}

void LiveTable::Fragments(const LiveTrace& trace, std::vector<FragmentLocation>& out) const {
  if (trace.fragment_count == 0) return;
  out.push_back(trace.first);
  size_t later = out.size();
  for (uint32_t head = trace.more; head != 0;) {
    const Node& node = pool_[(head - 1) / kChunkNodes][(head - 1) % kChunkNodes];
    out.push_back(node.location);
    head = node.next;
  }
  std::reverse(out.begin() + ptrdiff_t(later), out.end());
}

void LiveTable::DropOldestFragments(LiveTrace& trace, uint32_t count) {
  std::vector<FragmentLocation> all;
  if (count < trace.fragment_count) Fragments(trace, all);
  FreeChain(trace.more);
  trace.more = 0;
  trace.fragment_count = 0;
  for (size_t i = count; i < all.size(); ++i) AppendFragment(trace, all[i]);
}

void LiveTable::RebuildPool() {
  // Every chain copied out in order, the pool dropped, the chains written back densely.
  std::vector<FragmentLocation> locations;
  std::vector<std::pair<uint32_t, uint32_t>> spans;  // entry number, its first location's index
  locations.reserve(nodes_used_ + size_);
  for (uint32_t number = 0; number < chunks_.size() * kChunkEntries; ++number) {
    const LiveTrace& trace = Entry(number);
    if (trace.tenant == kFree || trace.more == 0) continue;
    spans.emplace_back(number, uint32_t(locations.size()));
    Fragments(trace, locations);
  }
  pool_.clear();
  pool_.shrink_to_fit();
  free_nodes_ = 0;
  nodes_used_ = nodes_made_ = 0;
  for (size_t s = 0; s < spans.size(); ++s) {
    LiveTrace& trace = Entry(spans[s].first);
    size_t begin = spans[s].second, end = s + 1 < spans.size() ? spans[s + 1].second : locations.size();
    trace.more = 0;
    for (size_t i = begin + 1; i < end; ++i) trace.more = NewNode(locations[i], trace.more);
  }
}

void LiveTable::Trim() {
  // Entries: move the ones above what the live entries need into free places below.
  size_t capacity = chunks_.size() * kChunkEntries;
  if (capacity > 2 * size_ + kChunkEntries || (size_ == 0 && capacity > 0)) {
    size_t keep_chunks = (size_ + kChunkEntries - 1) / kChunkEntries;
    uint32_t limit = uint32_t(keep_chunks * kChunkEntries);
    uint32_t hole = 0;
    for (uint32_t number = limit; number < capacity; ++number) {
      LiveTrace& entry = Entry(number);
      if (entry.tenant == kFree) continue;
      while (Entry(hole).tenant != kFree) hole++;  // below limit: there are as many holes as entries above it
      uint32_t tag = uint32_t(Mixed(entry.id, entry.tenant) >> 32);
      index_[SlotOf(number, tag)] = uint64_t(tag) << 32 | (uint64_t(hole) + 1);
      Entry(hole) = entry;
      entry.tenant = kFree;
    }
    chunks_.resize(keep_chunks);
    chunks_.shrink_to_fit();
    free_entries_.clear();
    for (uint32_t number = limit; number-- > 0;)
      if (Entry(number).tenant == kFree) free_entries_.push_back(number);
    free_entries_.shrink_to_fit();
  }
  // The index: back to a load of at most a half.
  if ((index_bits_ > kMinIndexBits && size_ * 8 < index_.size()) || (size_ == 0 && !index_.empty())) {
    uint32_t bits = kMinIndexBits;
    while ((size_t(1) << bits) < size_ * 2) bits++;
    if (size_ == 0) {
      std::vector<uint64_t>().swap(index_);
      index_bits_ = 0;
    } else {
      Rehash(bits);
    }
  }
  // The pool of later fragments.
  if ((pool_.size() > 1 && nodes_used_ * 2 < nodes_made_) || (nodes_used_ == 0 && !pool_.empty())) RebuildPool();
}

int64_t LiveTable::MemoryBytes() const {
  return int64_t(chunks_.size() * kChunkEntries * sizeof(LiveTrace) + chunks_.capacity() * sizeof(void*) +
                 index_.capacity() * sizeof(uint64_t) + free_entries_.capacity() * sizeof(uint32_t) +
                 pool_.size() * kChunkNodes * sizeof(Node) + pool_.capacity() * sizeof(void*));
}

}  // namespace tracery::ingester
