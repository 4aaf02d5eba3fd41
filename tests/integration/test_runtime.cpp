#include "lighter_test.h"
#include "cli_runs.h"
#include "char_lm_run.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <malloc.h>

namespace L = lighter;
using L::json;
namespace fs = std::filesystem;

namespace {

// The `lighter` command with a clean thread environment (ctest sets OMP_NUM_THREADS=1 for the tests).
std::string cli(const std::string& env, const std::string& args) {
  return "env -u OMP_NUM_THREADS -u MKL_NUM_THREADS -u GLIBC_TUNABLES " + env + " " + LIGHTER_CLI_PATH + " " + args +
         " --log-level debug";
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
  std::string good = lighter_test::write_json(dir + "/iris.json", lighter_test::iris_run_config(1));
  const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::string out;

  // Defaults: one thread per hardware thread, malloc's thresholds raised.
  REQUIRE(lighter_test::run_command(cli("", "summary " + good), &out) == 0);
  CHECK_THAT(out, LIGHTER_CONTAINS("runtime: " + std::to_string(hardware) + " intra-op threads, malloc thresholds raised"));

  // Flags win.
  REQUIRE(lighter_test::run_command(cli("", "summary " + good + " --threads 1 --no-tune-allocator"), &out) == 0);
  CHECK_THAT(out, LIGHTER_CONTAINS("runtime: 1 intra-op threads, malloc thresholds glibc's"));

  // The environment's opt-out and thread count.
  REQUIRE(lighter_test::run_command(cli("LIGHTER_RUNTIME_DEFAULTS=0 OMP_NUM_THREADS=1", "summary " + good), &out) == 0);
  CHECK_THAT(out, LIGHTER_CONTAINS("runtime: 1 intra-op threads, malloc thresholds glibc's"));

  // A training config's threads and tune_allocator, and --threads over them.
  json c = lighter_test::iris_run_config(1);
  c["threads"] = 1;
  c["tune_allocator"] = false;
  std::string with_threads = lighter_test::write_json(dir + "/threads.json", c);
  REQUIRE(lighter_test::run_command(cli("", "train " + with_threads + " --output-dir " + dir + "/run1"), &out) == 0);
  CHECK_THAT(out, LIGHTER_CONTAINS("runtime: 1 intra-op threads, malloc thresholds glibc's"));
  if (hardware > 1) {
    REQUIRE(lighter_test::run_command(cli("", "train " + with_threads + " --threads 2 --output-dir " + dir + "/run2"), &out) == 0);
    CHECK_THAT(out, LIGHTER_CONTAINS("runtime: 2 intra-op threads"));
  }

  // Mistakes are named by their place.
  c["threads"] = 0;
  std::string bad = lighter_test::write_json(dir + "/bad.json", c);
  CHECK(lighter_test::run_command(cli("", "train " + bad + " --output-dir " + dir + "/run3"), &out) == 1);
  CHECK_THAT(out, LIGHTER_CONTAINS("threads: expected a positive integer, got 0"));
  CHECK_FALSE(fs::exists(dir + "/run3"));
  c["threads"] = 1;
  c["tune_allocator"] = "yes";
  bad = lighter_test::write_json(dir + "/bad2.json", c);
  CHECK(lighter_test::run_command(cli("", "train " + bad + " --output-dir " + dir + "/run4"), &out) == 1);
  CHECK_THAT(out, LIGHTER_CONTAINS("tune_allocator"));
  CHECK(lighter_test::run_command(cli("", "summary " + good + " --threads 0"), &out) == 2);
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
  int rc = lighter_test::run_command(lighter_test::source_path("scripts/bench/run") + " --smoke --workloads tiny_mlp,lstm,epoch --build " +
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
  CHECK(lighter_test::run_command(lighter_test::source_path("scripts/bench/run") + " --smoke --workloads nope --build " + build, &out) == 1);
  CHECK_THAT(out, LIGHTER_CONTAINS("unknown workload 'nope'"));
}
#endif
