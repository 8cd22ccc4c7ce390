#include "block/bloom.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <random>

#include "common/coding.h"

namespace tracery::block {
namespace {

TraceId RandomId(std::mt19937_64& random) {
  TraceId id;
  for (auto& b : id.bytes) b = uint8_t(random());
  return id;
}

// The documented bit mapping, straight from the encoded filter: bit i of the probes is
// (h.low + i * h.high) mod (64 * words).
bool ReferenceMayContain(const std::string& encoded, const TraceId& id) {
  const uint32_t probes = LoadFixed32(encoded.data() + 4);
  const uint64_t words = LoadFixed64(encoded.data() + 8);
  const uint64_t m = words * 64;
  XXH128_hash_t h = XXH3_128bits(id.bytes.data(), id.bytes.size());
  for (uint32_t i = 0; i < probes; ++i) {
    uint64_t bit = (h.low64 + i * h.high64) % m;
    uint64_t word = LoadFixed64(encoded.data() + 16 + (bit / 64) * 8);
    if (!(word & (uint64_t(1) << (bit % 64)))) return false;
  }
  return true;
}

TEST(BloomFilter, ProbesMatchTheDocumentedMappingForEverySize) {
  std::mt19937_64 random(3);
  // Word counts that are and are not powers of two, small and large.
  for (uint64_t items : {1ull, 51ull, 52ull, 100ull, 1000ull, 6553ull, 6554ull, 200000ull}) {
    BloomFilter filter = BloomFilter::ForCount(items);
    std::vector<TraceId> added;
    for (uint64_t i = 0; i < items; ++i) {
      added.push_back(RandomId(random));
      filter.Add(added.back());
    }
    std::string encoded = filter.Encode();
    auto decoded = BloomFilter::Decode(encoded);
    ASSERT_TRUE(decoded.ok());
    for (const TraceId& id : added) {
      ASSERT_TRUE(decoded->MayContain(id));
      ASSERT_TRUE(decoded->MayContain(BloomFilter::KeyOf(id)));
    }
    uint64_t positives = 0;
    for (int i = 0; i < 20000; ++i) {
      TraceId id = RandomId(random);
      bool expected = ReferenceMayContain(encoded, id);
      ASSERT_EQ(decoded->MayContain(BloomFilter::KeyOf(id)), expected) << items;
      positives += expected;
    }
    if (items >= 1000) {
      EXPECT_LT(positives, 20000 * 3 / 100) << "false positives for " << items;  // ~1 %
    }
  }
}

TEST(BloomFilter, ShardOfAKeyEqualsShardOfItsId) {
  std::mt19937_64 random(4);
  for (int i = 0; i < 1000; ++i) {
    TraceId id = RandomId(random);
    for (uint32_t shards : {0u, 1u, 2u, 7u, 64u})
      EXPECT_EQ(BloomFilter::ShardOf(id, shards), BloomFilter::ShardOf(BloomFilter::KeyOf(id), shards));
    EXPECT_EQ(BloomFilter::ShardOf(id, 7), uint32_t(XXH3_64bits_withSeed(id.bytes.data(), 16, 0x5eed) % 7));
  }
}

}  // namespace
}  // namespace tracery::block
