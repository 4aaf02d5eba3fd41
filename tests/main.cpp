#define CATCH_CONFIG_RUNNER
#include "lighter_test.h"
#include "cli_runs.h"

// Catch2 3 declares Catch::Session in its own header; 2.13's catch.hpp has it already.
#if __has_include(<catch2/catch_session.hpp>)
#include <catch2/catch_session.hpp>
#endif

#include <cstdio>
#include <filesystem>

#include <unistd.h>

namespace lighter_test {

std::string temp_dir(const std::string& name) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("lighter_test_" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

bool have_fixtures() {
  bool present = std::filesystem::exists(fixture_path("keras/expected.json"));
  if (!present) WARN("no Keras fixtures at " << fixture_path("keras") << " (set LIGHTER_SHARED_DIR): skipped");
  return present;
}

int run_command(const std::string& command_line, std::string* output) {
  FILE* pipe = ::popen((command_line + " 2>&1").c_str(), "r");
  if (!pipe) return -1;
  std::string text;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) text.append(buffer, n);
  int status = ::pclose(pipe);
  if (output) *output = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int run_cli(const std::string& args, std::string* output) {
  return run_command(std::string(LIGHTER_CLI_PATH) + " " + args, output);
}

nlohmann::json iris_run_config(int epochs) {
  nlohmann::json c = lighter::read_json_file(source_path("configs/iris.json"));
  std::string data = source_path("examples/data/");
  c["data"]["train"]["path"] = data + "iris_train.csv";
  c["data"]["test"]["path"] = data + "iris_test.csv";
  c["fit"]["epochs"] = epochs;
  c["fit"]["verbose"] = 0;
  c["device"] = "cpu";
  return c;
}

}  // namespace lighter_test

int main(int argc, char* argv[]) {
  lighter::set_log_level("warn");
  // One intra-op thread (ctest runs one test per core); the Trainers of the tests keep it.
  lighter::configure_runtime({/*tune_allocator=*/true, /*threads=*/1});
  int result = Catch::Session().run(argc, argv);
  std::filesystem::remove_all(std::filesystem::temp_directory_path() /
                              ("lighter_test_" + std::to_string(::getpid())));
  return result;
}
