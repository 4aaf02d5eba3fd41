#pragma once
/// Process-wide settings around LibTorch's kernels: glibc's allocator and the number of intra-op threads.
///
/// Measured on the 2-vCPU machines Lighter is developed on (see the README's benchmark table): glibc's malloc hands
/// LibTorch's large buffers (above its dynamic mmap threshold) back to the OS after every step and faults them in
/// again on the next one; raising the mmap threshold to 32 MiB and the trim threshold to 1 GiB keeps them in the
/// heap. LibTorch starts one thread per physical core, which leaves the second hardware thread of these machines
/// unused. The `lighter` command and every Trainer apply Lighter's defaults (both wins) once per process unless
/// told otherwise:
///  - `disable_runtime_defaults()` before the first Trainer, or `LIGHTER_RUNTIME_DEFAULTS=0` in the environment,
///    leaves malloc and the thread count as the process set them;
///  - `configure_runtime(options)` applies chosen settings now (and counts as the process's own choice, so a later
///    Trainer leaves them alone).
/// A thread count the program chose itself (with torch::set_num_threads, or OMP_NUM_THREADS / MKL_NUM_THREADS) is
/// kept, and so are malloc thresholds given in GLIBC_TUNABLES.
namespace lighter {

struct RuntimeOptions {
  /// Raise glibc malloc's mmap threshold (32 MiB, its maximum) and trim threshold (1 GiB). No-op off glibc.
  bool tune_allocator = true;
  /// Intra-op threads: 0 = default_thread_count(), else that many.
  int threads = 0;
};

/// Applies `options` now: mallopt and torch::set_num_threads. Trainers created later leave them as they are.
void configure_runtime(const RuntimeOptions& options = {});

/// What Trainer's constructor and the `lighter` command call: Lighter's defaults, applied once per process, unless
/// the process opted out or configured the runtime itself (see above).
void apply_runtime_defaults();

/// Opts the process out of Lighter's runtime defaults (call it before the first Trainer).
void disable_runtime_defaults();

/// Lighter's default thread count: the one OMP_NUM_THREADS / MKL_NUM_THREADS chose when either is set, else one per
/// hardware thread.
int default_thread_count();

/// What is in force: whether Lighter raised malloc's thresholds, and torch's intra-op thread count.
struct RuntimeState {
  bool allocator_tuned = false;
  int threads = 1;
};
RuntimeState runtime_state();

}  // namespace lighter
