#include "lighter/core/runtime.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>

#include "lighter/core/logging.h"

namespace lighter {

namespace {

std::mutex runtime_mutex;
bool settled = false;  // defaults applied, opted out, or configured by the program
bool allocator_tuned = false;

bool env_set(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0';
}

bool tune_allocator() {
#if defined(__GLIBC__)
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables && (std::strstr(tunables, "mmap_threshold") || std::strstr(tunables, "trim_threshold"))) {
    logger()->debug("malloc: GLIBC_TUNABLES sets the thresholds, left as they are");
    return false;
  }
  // 32 MiB is the largest mmap threshold glibc accepts on 64-bit systems; setting it also stops glibc's dynamic
  // threshold, which otherwise keeps moving buffers of a few MiB between the heap and fresh mappings.
  const bool ok = mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024) == 1 && mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024) == 1;
  if (!ok) logger()->warn("malloc: mallopt refused the mmap/trim thresholds; glibc's defaults stay");
  return ok;
#else
  return false;
#endif
}

void apply(const RuntimeOptions& o) {
  if (o.tune_allocator && !allocator_tuned) allocator_tuned = tune_allocator();
  const int threads = o.threads > 0 ? o.threads : default_thread_count();
  if (at::get_num_threads() != threads) at::set_num_threads(threads);
  logger()->debug("runtime: {} intra-op threads, malloc thresholds {}", at::get_num_threads(),
                  allocator_tuned ? "raised" : "glibc's");
}

}  // namespace

int default_thread_count() {
  if (env_set("OMP_NUM_THREADS") || env_set("MKL_NUM_THREADS")) return at::get_num_threads();
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

void configure_runtime(const RuntimeOptions& options) {
  std::lock_guard<std::mutex> lock(runtime_mutex);
  settled = true;
  apply(options);
}

void apply_runtime_defaults() {
  std::lock_guard<std::mutex> lock(runtime_mutex);
  if (settled) return;
  settled = true;
  const char* off = std::getenv("LIGHTER_RUNTIME_DEFAULTS");
  if (off && std::strcmp(off, "0") == 0) {
    logger()->debug("runtime: LIGHTER_RUNTIME_DEFAULTS=0, malloc and threads left as they are");
    return;
  }
  RuntimeOptions o;
  // A thread count the program chose is kept (and default_thread_count keeps the environment's).
  if (at::get_num_threads() != at::intraop_default_num_threads()) o.threads = at::get_num_threads();
  apply(o);
}

void disable_runtime_defaults() {
  std::lock_guard<std::mutex> lock(runtime_mutex);
  settled = true;
}

RuntimeState runtime_state() {
  std::lock_guard<std::mutex> lock(runtime_mutex);
  return {allocator_tuned, at::get_num_threads()};
}

}  // namespace lighter
