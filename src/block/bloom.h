// A Bloom filter over trace IDs: ~10 bits per trace and 7 probes give about 1 % false
// positives. Blocks keep several independent shards so that object storage can fetch one.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/ids.h"
#include "common/status.h"

namespace tracery::block {

class BloomFilter {
 public:
  static BloomFilter ForCount(uint64_t expected_items);
  static Result<BloomFilter> Decode(std::string_view bytes);  // checks the header and CRC

  // A trace ID's hashes, computed once to probe many filters (one per block).
  struct Key {
    uint64_t low = 0, high = 0;  // the probes
    uint64_t shard = 0;          // which shard
  };
  static Key KeyOf(const TraceId& id);

  void Add(const TraceId& id);
  bool MayContain(const TraceId& id) const { return MayContain(KeyOf(id)); }
  bool MayContain(const Key& key) const;
  std::string Encode() const;
  size_t SizeBytes() const { return bits_.size() * 8; }

  // Which shard of `shards` holds a trace ID.
  static uint32_t ShardOf(const TraceId& id, uint32_t shards) { return ShardOf(KeyOf(id), shards); }
  static uint32_t ShardOf(const Key& key, uint32_t shards) { return shards <= 1 ? 0 : uint32_t(key.shard % shards); }

 private:
  std::vector<uint64_t> bits_;
  uint32_t probes_ = 7;
  // floor(2^64 / bit count), so that a probe's bit index needs no division (MayContain is
  // asked of every nearby block for each trace a search judges).
  uint64_t reciprocal_ = 0;
};

}  // namespace tracery::block
