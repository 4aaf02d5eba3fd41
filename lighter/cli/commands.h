#pragma once
/// The `lighter` command: train, evaluate, predict, summary.
#include <string>
#include <vector>

namespace lighter::cli {

/// Runs the command line; returns the exit status (0 success, 1 a user or data error, 2 a usage error).
/// Errors are printed as one line on stderr.
int run(const std::vector<std::string>& args);

}  // namespace lighter::cli
