#ifndef LIGHTER_TESTS_INTEGRATION_S2S_TOY_H
#define LIGHTER_TESTS_INTEGRATION_S2S_TOY_H
// Toy word -> phoneme pairs for the sequence-to-sequence tests (recurrent and transformer examples).
#include <vector>

#include "examples/s2s/s2s.h"

namespace lighter_test {

/// A toy transduction: each letter becomes one or two target tokens, so outputs vary in length and content once
/// a small model has learnt a little of it. Draws from torch's global generator.
inline std::vector<s2s::Pair> toy_pairs(int64_t n) {
  std::vector<s2s::Pair> pairs;
  auto lengths = torch::randint(2, 8, {n}, torch::kLong);
  for (int64_t i = 0; i < n; ++i) {
    s2s::Pair p;
    auto letters = torch::randint(0, 8, {lengths[i].item<int64_t>()}, torch::kLong);
    for (int64_t j = 0; j < letters.numel(); ++j) {
      int64_t c = letters[j].item<int64_t>();
      p.word += static_cast<char>('a' + c);
      p.phonemes.push_back(s2s::arpabet()[c]);
      if (c % 3 == 0) p.phonemes.push_back(s2s::arpabet()[20 + c]);
    }
    pairs.push_back(p);
  }
  return pairs;
}

}  // namespace lighter_test

#endif  // LIGHTER_TESTS_INTEGRATION_S2S_TOY_H
