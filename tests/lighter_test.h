#ifndef LIGHTER_TESTS_LIGHTER_TEST_H
#define LIGHTER_TESTS_LIGHTER_TEST_H
// Every test file includes this header first. Torch must come before Catch2: torch defines its own
// CHECK macro, and Catch2's would be silently replaced otherwise.
#include <torch/torch.h>

#if __has_include(<catch2/catch_test_macros.hpp>)
// Catch2 3 (Debian trixie): split headers, Approx and the substring matcher renamed.
#include <catch2/catch_approx.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>
using Catch::Approx;
#define LIGHTER_CONTAINS(text) Catch::Matchers::ContainsSubstring(text)
#else
// Catch2 2.13 (Debian bookworm): one header.
#include <catch2/catch.hpp>
#define LIGHTER_CONTAINS(text) Catch::Matchers::Contains(text)
#endif

#include <string>

#include "lighter/lighter.h"
#include "lighter/cli/run_config.h"

namespace lighter_test {

/// Path of a file in the source tree.
inline std::string source_path(const std::string& relative) { return std::string(LIGHTER_SOURCE_DIR) + "/" + relative; }
/// Path of a file under ../shared/fixtures.
inline std::string fixture_path(const std::string& relative) {
  return std::string(LIGHTER_FIXTURES_DIR) + "/" + relative;
}
/// Whether ../shared/fixtures is beside the checkout (CI has it; a clone elsewhere may not). Tests that read
/// fixtures skip with a WARN without it, as CUDA tests do without a GPU.
bool have_fixtures();
/// A fresh empty folder for one test.
std::string temp_dir(const std::string& name);
/// Largest absolute difference between two tensors.
inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}
/// Runs the `lighter` command with arguments; returns exit status and captures stdout+stderr.
int run_cli(const std::string& args, std::string* output = nullptr);

}  // namespace lighter_test

// Expects `expr` to throw a lighter::Error whose message contains `text`.
#define LIGHTER_REQUIRE_THROWS_WITH(expr, text) \
  REQUIRE_THROWS_WITH(expr, LIGHTER_CONTAINS(text))

#endif  // LIGHTER_TESTS_LIGHTER_TEST_H
