// The seed of a randomized test: $MEMD_TEST_SEED when set (to replay a
// failure), else a random one. Tests print it with
// SCOPED_TRACE(testing::Message() << "replay with MEMD_TEST_SEED=" << seed).
#ifndef MEMD_TESTS_SUPPORT_TEST_SEED_H_
#define MEMD_TESTS_SUPPORT_TEST_SEED_H_

#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>

namespace memd::testing_support {

inline uint32_t TestSeed() {
  if (const char* env = std::getenv("MEMD_TEST_SEED")) return static_cast<uint32_t>(std::stoul(env));
  return std::random_device{}();
}

}  // namespace memd::testing_support

#endif  // MEMD_TESTS_SUPPORT_TEST_SEED_H_
