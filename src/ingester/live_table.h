// The index of live traces of one ingester shard, built for memory: a pending trace (tail
// sampling waits seconds for each) costs its 96-byte entry, about 14 bytes of hash index and
// 16 bytes for each WAL fragment after its first, with no allocation of its own.
//
// Layout:
// - Entries (LiveTrace, the trace's key inside) live in chunks of kChunkEntries that never
//   move while the table grows, so a LiveTrace& stays valid until its own Erase or a Trim.
//   Freed entries are reused first; Trim moves entries down and frees the chunks a burst left.
// - The hash index is open addressing with linear probing over 8-byte slots: 32 bits of the
//   key's mixed hash (which also give the home slot, so growing and deleting never touch an
//   entry) and the entry's number. Deletion shifts the run back: no tombstones.
// - A trace's first fragment location is inline; later ones are 16-byte nodes in a per-table
//   pool, chained newest first (appending is O(1); reading puts them back in order).
//
// Not thread-safe: the ingester holds the shard's mutex around every call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/ids.h"

namespace tracery::ingester {

// The largest WAL segment the ingester lets the WAL write: a fragment's offset (where its
// record starts, below this, plus its place in the record, a request of at most 2 GiB) then
// fits 32 bits.
inline constexpr uint64_t kMaxWalSegmentBytes = 1ull << 30;

// Where one fragment's bytes lie in the WAL.
struct FragmentLocation {
  uint32_t segment;
  uint32_t offset;
  uint32_t length;  // 0: the place of a decision record, not spans
};

struct LiveTrace {
  TraceId id;
  uint32_t tenant = 0;
  uint32_t span_count = 0;
  FragmentLocation first{};  // the oldest fragment (valid when fragment_count > 0)
  uint32_t more = 0;         // newest later fragment: its pool node + 1; 0: none
  uint32_t bytes = 0;           // of the fragments still in the index (saturating)
  uint32_t lifetime_bytes = 0;  // of every span the trace ever had, for max_bytes_per_trace (saturating)
  uint32_t cutting : 24 = 0;    // fragments [0, cutting) are being written into a block
  bool has_error : 1 = false, has_root : 1 = false;
  bool complete : 1 = false;  // queued for its tenant's next block
  bool decided : 1 = false;   // kept by sampling (always, without sampling)
  bool pinned : 1 = false;    // by the API or as an exemplar: kept, in the pinned tier
  // The tier earlier parts of the trace were cut into (1 + index in storage::kTiers; 0: none),
  // so that late spans join them there.
  uint8_t tier : 3 = 0;
  uint32_t fragment_count = 0;
  int64_t first_arrival = 0, last_arrival = 0;  // monotonic ns
  uint64_t min_start_unix_nano = UINT64_MAX, max_end_unix_nano = 0;
  uint64_t matched = 0;  // tail sampling: bit i, predicate i matched a span (TraceSummary::matched)

  static uint32_t Saturated(uint64_t bytes) { return bytes > UINT32_MAX ? UINT32_MAX : uint32_t(bytes); }
};
static_assert(sizeof(LiveTrace) == 96, "a live trace's entry is what a pending trace costs: keep it at 96 bytes");

class LiveTable {
 public:
  static constexpr uint32_t kChunkEntries = 32;
  static constexpr uint32_t kChunkNodes = 128;

  LiveTable() = default;
  LiveTable(const LiveTable&) = delete;
  LiveTable& operator=(const LiveTable&) = delete;

  size_t size() const { return size_; }
  // The trace's entry, or nullptr.
  LiveTrace* Find(const TraceId& id, uint32_t tenant) const;
  // A new entry for a key that is not in the table.
  LiveTrace& Insert(const TraceId& id, uint32_t tenant);
  // Removes the entry and its fragment nodes; the reference is dead afterwards.
  void Erase(LiveTrace& trace);

  void AppendFragment(LiveTrace& trace, FragmentLocation location);
  // The trace's fragments in arrival order, appended to `out`.
  void Fragments(const LiveTrace& trace, std::vector<FragmentLocation>& out) const;
  // Drops the oldest `count` fragments (they were cut into a block).
  void DropOldestFragments(LiveTrace& trace, uint32_t count);

  // Calls fn(LiveTrace&) for every entry; fn may Erase the entry it is given, nothing else.
  template <class Fn>
  void ForEach(Fn&& fn) {
    for (size_t c = 0; c < chunks_.size(); ++c) {
      LiveTrace* chunk = chunks_[c].get();
      for (uint32_t i = 0; i < kChunkEntries; ++i)
        if (chunk[i].tenant != kFree) fn(chunk[i]);
    }
  }
  template <class Fn>
  void ForEach(Fn&& fn) const {
    for (size_t c = 0; c < chunks_.size(); ++c) {
      const LiveTrace* chunk = chunks_[c].get();
      for (uint32_t i = 0; i < kChunkEntries; ++i)
        if (chunk[i].tenant != kFree) fn(chunk[i]);
    }
  }

  // Gives back what a burst left: entries are moved down into free places (references into the
  // table are dead afterwards), empty chunks and the fragment pool's slack are freed, the index
  // shrinks. Cheap when there is nothing to give back.
  void Trim();

  // Bytes this table has allocated: entries' chunks, the index, the free list, the pool.
  int64_t MemoryBytes() const;

 private:
  static constexpr uint32_t kFree = UINT32_MAX;  // the tenant of a free entry
  struct Node {
    FragmentLocation location;
    uint32_t next;  // the next older node + 1; 0: none (the inline first fragment is older)
  };

  static uint64_t Mixed(const TraceId& id, uint32_t tenant);
  uint32_t Home(uint32_t tag) const { return index_bits_ == 0 ? 0 : tag >> (32 - index_bits_); }
  LiveTrace& Entry(uint32_t number) const { return chunks_[number / kChunkEntries][number % kChunkEntries]; }
  size_t SlotOf(uint32_t number, uint32_t tag) const;
  void Rehash(uint32_t bits);
  void PlaceInIndex(uint64_t slot_value);
  void EraseSlot(size_t slot);
  uint32_t NewNode(FragmentLocation location, uint32_t next);
  void FreeChain(uint32_t head);
  void RebuildPool();

  std::vector<std::unique_ptr<LiveTrace[]>> chunks_;
  std::vector<uint32_t> free_entries_;
  std::vector<uint64_t> index_;  // tag << 32 | (entry number + 1); 0: empty
  uint32_t index_bits_ = 0;
  size_t size_ = 0;
  std::vector<std::unique_ptr<Node[]>> pool_;
  uint32_t free_nodes_ = 0;  // head of the free nodes' chain (+ 1)
  size_t nodes_used_ = 0, nodes_made_ = 0;
};

}  // namespace tracery::ingester
