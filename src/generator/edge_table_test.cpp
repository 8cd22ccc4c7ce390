#include "generator/edge_table.h"

#include <map>
#include <random>

#include <gtest/gtest.h>

namespace tracery::generator {
namespace {

// Random inserts, finds and erases against std::map, with hashes that collide on purpose
// (few distinct values) so that runs wrap around and deletion has to shift entries back.
TEST(EdgeTableTest, AgreesWithMapUnderCollisions) {
  EdgeTable<uint64_t, int> table;
  std::map<uint64_t, int> reference;
  std::mt19937_64 random(7);
  auto hash_of = [](uint64_t key) { return (key % 5) * 0x9E3779B97F4A7C15ull + (key % 3 == 0 ? 63 : 0); };
  for (int step = 0; step < 20000; ++step) {
    uint64_t key = random() % 300;
    switch (random() % 3) {
      case 0:
        if (!reference.count(key)) {
          table.Insert(key, hash_of(key)) = step;
          reference[key] = step;
        }
        break;
      case 1:
        table.Erase(key, hash_of(key));
        reference.erase(key);
        break;
      default: {
        int* found = table.Find(key, hash_of(key));
        ASSERT_EQ(found != nullptr, reference.count(key) == 1) << "key " << key << " at step " << step;
        if (found) {
          EXPECT_EQ(*found, reference[key]);
        }
      }
    }
    ASSERT_EQ(table.size(), reference.size());
  }
  std::vector<int> removed;
  table.RemoveIf([](const int& value) { return value % 2 == 0; }, [&](int& value) { removed.push_back(value); });
  for (auto it = reference.begin(); it != reference.end();) it = it->second % 2 == 0 ? reference.erase(it) : std::next(it);
  EXPECT_EQ(table.size(), reference.size());
  for (const auto& [key, value] : reference) ASSERT_NE(table.Find(key, hash_of(key)), nullptr);
}

}  // namespace
}  // namespace tracery::generator
