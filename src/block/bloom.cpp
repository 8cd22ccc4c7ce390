#include "block/bloom.h"

#include <xxhash.h>

#include "common/coding.h"
#include "common/crc32c.h"

namespace tracery::block {
namespace {
constexpr uint32_t kBloomMagic = 0x4d4f4c42;  // "BLOM"
}

BloomFilter BloomFilter::ForCount(uint64_t expected_items) {
  BloomFilter filter;
  uint64_t bits = std::max<uint64_t>(512, expected_items * 10);
  filter.bits_.assign((bits + 63) / 64, 0);
  filter.reciprocal_ = UINT64_MAX / (filter.bits_.size() * 64);
  return filter;
}

BloomFilter::Key BloomFilter::KeyOf(const TraceId& id) {
  XXH128_hash_t h = XXH3_128bits(id.bytes.data(), id.bytes.size());
  return Key{h.low64, h.high64, XXH3_64bits_withSeed(id.bytes.data(), 16, 0x5eed)};
}

void BloomFilter::Add(const TraceId& id) {
  Key key = KeyOf(id);
  uint64_t m = bits_.size() * 64;
  for (uint32_t i = 0; i < probes_; ++i) {
    uint64_t bit = (key.low + i * key.high) % m;
    bits_[bit / 64] |= uint64_t(1) << (bit % 64);
  }
}

bool BloomFilter::MayContain(const Key& key) const {
  if (bits_.empty()) return false;
  const uint64_t m = bits_.size() * 64;
  // x mod m without a division: q = floor(x * floor(2^64 / m) / 2^64) is floor(x / m) or one
  // less, so the remainder needs at most one correction.
  const uint64_t reciprocal = reciprocal_;
  for (uint32_t i = 0; i < probes_; ++i) {
    const uint64_t x = key.low + i * key.high;
    uint64_t bit = x - uint64_t((static_cast<unsigned __int128>(x) * reciprocal) >> 64) * m;
    while (bit >= m) bit -= m;
    if (!(bits_[bit / 64] & (uint64_t(1) << (bit % 64)))) return false;
  }
  return true;
}

// Layout: u32 magic, u32 probes, u64 word count, words (little-endian), u32 crc32c of all before.
std::string BloomFilter::Encode() const {
  std::string out;
  PutFixed32(out, kBloomMagic);
  PutFixed32(out, probes_);
  PutFixed64(out, bits_.size());
  for (uint64_t word : bits_) PutFixed64(out, word);
  PutFixed32(out, Crc32c(out));
  return out;
}

Result<BloomFilter> BloomFilter::Decode(std::string_view bytes) {
  if (bytes.size() < 20) return Status::Corruption("bloom filter too short");
  uint32_t crc = LoadFixed32(bytes.data() + bytes.size() - 4);
  if (Crc32c(bytes.substr(0, bytes.size() - 4)) != crc) return Status::Corruption("bloom filter checksum mismatch");
  if (LoadFixed32(bytes.data()) != kBloomMagic) return Status::Corruption("not a bloom filter");
  BloomFilter filter;
  filter.probes_ = LoadFixed32(bytes.data() + 4);
  uint64_t words = LoadFixed64(bytes.data() + 8);
  if (filter.probes_ == 0 || filter.probes_ > 32 || words * 8 + 20 != bytes.size())
    return Status::Corruption("bloom filter header is inconsistent");
  filter.bits_.resize(words);
  for (uint64_t i = 0; i < words; ++i) filter.bits_[i] = LoadFixed64(bytes.data() + 16 + i * 8);
  if (words) filter.reciprocal_ = UINT64_MAX / (words * 64);
  return filter;
}

}  // namespace tracery::block
