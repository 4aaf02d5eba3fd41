#pragma once
// What the tests of the `lighter` command share (defined in main.cpp): the iris run config and a shell runner.
#include <string>

#include <nlohmann/json.hpp>

namespace lighter_test {

/// configs/iris.json with absolute data paths: `epochs` quiet epochs on the CPU.
nlohmann::json iris_run_config(int epochs);

/// Runs a shell command line with its stderr joined to its stdout; returns the exit status (128 + signal when
/// killed) and leaves the output in `output`.
int run_command(const std::string& command_line, std::string* output = nullptr);

}  // namespace lighter_test
