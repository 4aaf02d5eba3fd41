#include "lighter_test.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include <malloc.h>
#include <sys/wait.h>

namespace L = lighter;
using L::json;
namespace fs = std::filesystem;

namespace {

// Runs a shell command line; returns its exit status and its output (stdout and stderr).
int run_shell(const std::string& command, std::string* output) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return -1;
  std::string text;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) text.append(buffer, n);
  int status = ::pclose(pipe);
  *output = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The `lighter` command with a clean thread environment (ctest sets OMP_NUM_THREADS=1 for the tests).
std::string cli(const std::string& env, const std::string& args) {
  return "env -u OMP_NUM_THREADS -u MKL_NUM_THREADS -u GLIBC_TUNABLES " + env + " " + LIGHTER_CLI_PATH + " " + args +
         " --log-level debug";
}

json iris_config(int epochs) {
  json c = L::read_json_file(lighter_test::source_path("configs/iris.json"));
  std::string data = lighter_test::source_path("examples/data/");
  c["data"]["train"]["path"] = data + "iris_train.csv";
  c["data"]["test"]["path"] = data + "iris_test.csv";
  c["fit"]["epochs"] = epochs;
  c["fit"]["verbose"] = 0;
  c["device"] = "cpu";
  return c;
}

std::string write(const std::string& dir, const std::string& name, const json& j) {
  std::string file = dir + "/" + name;
  std::ofstream(file) << j.dump(2);
  return file;
}

}  // namespace

TEST_CASE("configure_runtime sets the thread count and keeps large buffers in malloc's heap", "[runtime]") {
  const int before = torch::get_num_threads();
  L::configure_runtime({/*tune_allocator=*/true, /*threads=*/2});
  CHECK(torch::get_num_threads() == 2);
  CHECK(L::runtime_state().threads == 2);
#if defined(__GLIBC__)
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (!tunables || !std::strstr(tunables, "threshold")) {
    REQUIRE(L::runtime_state().allocator_tuned);
    // A 24 MiB block (above glibc's default 128 KiB threshold) comes from the heap, not from a fresh mapping.
    // (The blocks are written to and passed to an opaque asm statement so the compiler keeps the calls.)
    const size_t mapped_before = mallinfo2().hblkhd;
    char* block = static_cast<char*>(std::malloc(24u << 20));
    REQUIRE(block != nullptr);
    block[0] = 1;
    asm volatile("" : : "r"(block) : "memory");
    CHECK(mallinfo2().hblkhd == mapped_before);
    std::free(block);
    // Above the raised threshold (32 MiB) glibc still maps.
    char* large = static_cast<char*>(std::malloc(40u << 20));
    REQUIRE(large != nullptr);
    large[0] = 1;
    asm volatile("" : : "r"(large) : "memory");
    CHECK(mallinfo2().hblkhd >= mapped_before + (40u << 20));
    std::free(large);
  }
#endif
  L::configure_runtime({true, before});
  CHECK(torch::get_num_threads() == before);
}

TEST_CASE("the lighter command applies the runtime defaults, the flags and the config's threads", "[runtime][cli]") {
  std::string dir = lighter_test::temp_dir("runtime_cli");
  std::string good = write(dir, "iris.json", iris_config(1));
  const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::string out;

  // Defaults: one thread per hardware thread, malloc's thresholds raised.
  REQUIRE(run_shell(cli("", "summary " + good), &out) == 0);
  CHECK_THAT(out, LIGHTER_CONTAINS("runtime: " + std::to_string(hardware) + " intra-op threads, malloc thresholds raised"));

  // Flags win.
  REQUIRE(run_shell(cli("", "summary " + good + " --threads 1 --no-tune-allocator"), &out) == 0);
  CHECK_THAT(out, LIGHTER_CONTAINS("runtime: 1 intra-op threads, malloc thresholds glibc's"));

  // The environment's opt-out and thread count.
  REQUIRE(run_shell(cli("LIGHTER_RUNTIME_DEFAULTS=0 OMP_NUM_THREADS=1", "summary " + good), &out) == 0);
  CHECK_THAT(out, LIGHTER_CONTAINS("runtime: 1 intra-op threads, malloc thresholds glibc's"));

  // A training config's threads and tune_allocator, and --threads over them.
  json c = iris_config(1);
  c["threads"] = 1;
  c["tune_allocator"] = false;
  std::string with_threads = write(dir, "threads.json", c);
  REQUIRE(run_shell(cli("", "train " + with_threads + " --output-dir " + dir + "/run1"), &out) == 0);
  CHECK_THAT(out, LIGHTER_CONTAINS("runtime: 1 intra-op threads, malloc thresholds glibc's"));
  if (hardware > 1) {
    REQUIRE(run_shell(cli("", "train " + with_threads + " --threads 2 --output-dir " + dir + "/run2"), &out) == 0);
    CHECK_THAT(out, LIGHTER_CONTAINS("runtime: 2 intra-op threads"));
  }

  // Mistakes are named by their place.
  c["threads"] = 0;
  std::string bad = write(dir, "bad.json", c);
  CHECK(run_shell(cli("", "train " + bad + " --output-dir " + dir + "/run3"), &out) == 1);
  CHECK_THAT(out, LIGHTER_CONTAINS("threads: expected a positive integer, got 0"));
  CHECK_FALSE(fs::exists(dir + "/run3"));
  c["threads"] = 1;
  c["tune_allocator"] = "yes";
  bad = write(dir, "bad2.json", c);
  CHECK(run_shell(cli("", "train " + bad + " --output-dir " + dir + "/run4"), &out) == 1);
  CHECK_THAT(out, LIGHTER_CONTAINS("tune_allocator"));
  CHECK(run_shell(cli("", "summary " + good + " --threads 0"), &out) == 2);
  CHECK_THAT(out, LIGHTER_CONTAINS("--threads needs a positive integer"));
}

#ifdef LIGHTER_BENCH_PATH
TEST_CASE("scripts/bench/run runs every way of every workload and writes its tables", "[bench][slow]") {
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0)
    FAIL("/usr/bin/python3 cannot import torch: scripts/setup.sh installs Debian's python3-torch");
  if (!fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))
    FAIL("no Fashion-MNIST: scripts/setup.sh installs dataset-fashion-mnist");
  std::string dir = lighter_test::temp_dir("bench_smoke");
  std::string build = fs::path(LIGHTER_BENCH_PATH).parent_path().string();
  std::string out;
  int rc = run_shell(lighter_test::source_path("scripts/bench/run") + " --smoke --workloads tiny_mlp,lstm,epoch --build " +
                         build + " --out " + dir,
                     &out);
  INFO(out);
  REQUIRE(rc == 0);
  json r = L::read_json_file(dir + "/results.json");
  for (const std::string w : {"tiny_mlp", "lstm"}) {
    const json& cells = r.at("workloads").at(w).at("cells");
    for (const std::string v :
         {"lighter", "lighter_untuned", "libtorch", "libtorch_tuned", "pytorch", "pytorch_tuned", "lighter_1thread"}) {
      INFO(w << " " << v);
      REQUIRE(cells.contains(v));
      CHECK(cells[v]["time"]["median"].get<double>() > 0);
      CHECK(cells[v]["peak_rss_mib"].get<double>() > 10);
    }
    CHECK(r["workloads"][w]["lighter_over_libtorch_tuned"].get<double>() > 0);
  }
  const json& epoch = r.at("workloads").at("epoch").at("cells");
  for (const std::string v : {"lighter", "lighter_untuned", "libtorch", "libtorch_tuned", "lighter_1thread"})
    CHECK(epoch.contains(v));
  CHECK_FALSE(epoch.contains("pytorch"));
  std::string md = L::read_text_file(dir + "/results.md");
  CHECK_THAT(md, LIGHTER_CONTAINS("| workload | Lighter | LibTorch | PyTorch | Lighter ÷ LibTorch"));
  CHECK_THAT(md, LIGHTER_CONTAINS("Peak resident memory"));
  // One raw line per process.
  std::ifstream raw(dir + "/raw.jsonl");
  int lines = 0;
  for (std::string line; std::getline(raw, line);) ++lines;
  CHECK(lines == 2 * 7 + 5);

  // A mistake is one line and a non-zero exit.
  CHECK(run_shell(lighter_test::source_path("scripts/bench/run") + " --smoke --workloads nope --build " + build, &out) == 1);
  CHECK_THAT(out, LIGHTER_CONTAINS("unknown workload 'nope'"));
}
#endif
