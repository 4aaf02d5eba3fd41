#pragma once
/// Mixed precision and determinism: Keras' dtype policies ("float32", "mixed_float16", "mixed_bfloat16") mapped
/// onto ATen's autocast, dynamic loss scaling as Keras' LossScaleOptimizer / torch's GradScaler, and a switch for
/// deterministic algorithms. Self-contained: the Trainer decides when to use them.
///
/// Builds against LibTorch 1.13 and 2.x: the autocast state is read and written through the device-type-taking
/// functions of LibTorch >= 2.4 (`at::autocast::set_autocast_enabled(at::kCPU, ...)`) and through the older
/// per-device ones (`set_cpu_enabled`, `set_autocast_gpu_dtype`, ...) before that.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace lighter::training {

/// Keras' dtype policies. Variables always stay float32; only the computation runs in the lower precision.
enum class Precision { float32, mixed_float16, mixed_bfloat16 };

/// Reads a Keras dtype-policy name: "float32", "mixed_float16" or "mixed_bfloat16". Keras' pure "float16" and
/// "bfloat16" policies (float16 variables) are not the mixed ones and are rejected, like any other name, with a
/// ConfigError at `path` listing the choices.
Precision precision_from_string(const std::string& name, const std::string& path = "mixed_precision");
/// The Keras name: "float32", "mixed_float16", "mixed_bfloat16".
std::string to_string(Precision p);
/// The compute dtype: kFloat, kHalf or kBFloat16.
torch::ScalarType compute_dtype(Precision p);

/// Whether autocast for `p` can run on `device` with the LibTorch in use. float32 needs no autocast: always true.
/// CPU: bfloat16 always; float16 only on LibTorch versions whose CPU autocast takes float16 (not 1.13; probed once
/// on 2.x). CUDA: both when CUDA is available and the device index exists (bfloat16 on GPUs before Ampere runs,
/// but slowly). Other device types: false.
bool autocast_supported(Precision p, const torch::Device& device);

/// Whether autocast is on for this thread and device type (CPU or CUDA; false for others).
bool autocast_enabled(torch::DeviceType device_type);
/// The autocast dtype of this thread for the device type (CPU or CUDA).
torch::ScalarType autocast_dtype(torch::DeviceType device_type);

/// RAII region of autocast, the C++ counterpart of `with torch.autocast(device_type, dtype)`: turns autocast on for
/// the device's type with the precision's dtype, and on destruction restores the previous enabled flag and dtype,
/// clearing the autocast cast cache when the outermost region ends (as torch.autocast does). Nests. float32 is a
/// no-op. Autocast state is per thread: destroy the guard on the thread that made it.
/// Throws ConfigError("mixed_precision", ...) when autocast_supported() is false.
class AutocastGuard {
 public:
  AutocastGuard(Precision p, const torch::Device& device);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;
  AutocastGuard(AutocastGuard&&) = delete;
  AutocastGuard& operator=(AutocastGuard&&) = delete;

  /// False for a float32 guard (nothing was changed).
  bool active() const { return active_; }

 private:
  bool active_ = false;
  torch::DeviceType device_type_ = torch::kCPU;
  bool previous_enabled_ = false;
  torch::ScalarType previous_dtype_ = torch::kFloat;
};

/// Dynamic loss scaling, as Keras' LossScaleOptimizer and torch's GradScaler. Defaults are theirs: initial scale
/// 2^15, growth factor 2, backoff 0.5, growth interval 2000 good steps (Keras' `dynamic_growth_steps`).
/// A step: `scale(loss).backward()`; `found_inf = !unscale(params)`; step the optimizer only when `!found_inf`;
/// `update(found_inf)`.
class LossScaler {
 public:
  /// ConfigError ("loss_scaler.<argument>") unless initial_scale is positive and finite, growth_factor > 1,
  /// backoff_factor in (0, 1) and growth_interval > 0.
  explicit LossScaler(double initial_scale = 32768.0, double growth_factor = 2.0, double backoff_factor = 0.5,
                      int64_t growth_interval = 2000);

  /// loss * scale.
  torch::Tensor scale(const torch::Tensor& loss) const;
  /// Multiplies every defined `.grad()` of `params` by 1 / scale in place (exact for a power-of-two scale, which
  /// the defaults keep); returns true when every gradient was finite. CUDA gradients go through ATen's fused
  /// `_amp_foreach_non_finite_check_and_unscale_` (grouped by device and dtype, as GradScaler does); others through
  /// plain tensor ops; sparse gradients are coalesced first. One host synchronisation at most.
  bool unscale(const std::vector<torch::Tensor>& params);
  /// After an update attempt: on overflow the scale is multiplied by backoff_factor and the good-step count reset;
  /// otherwise the count grows, and after growth_interval good steps in a row the scale is multiplied by
  /// growth_factor (unless that would overflow a double) and the count restarts.
  void update(bool found_inf);

  double scale_value() const { return scale_; }
  int64_t good_steps() const { return good_steps_; }
  double growth_factor() const { return growth_factor_; }
  double backoff_factor() const { return backoff_factor_; }
  int64_t growth_interval() const { return growth_interval_; }

  /// {"scale": ..., "good_steps": ...} for checkpoints.
  nlohmann::json state() const;
  /// Restores state(); a ConfigError at "loss_scaler" when `s` is not an object with exactly a positive finite
  /// "scale" and a non-negative integer "good_steps".
  void load_state(const nlohmann::json& s);

 private:
  double scale_;
  double growth_factor_;
  double backoff_factor_;
  int64_t growth_interval_;
  int64_t good_steps_ = 0;
};

/// Deterministic mode. Enabled: `at::globalContext().setDeterministicAlgorithms(true, warn_only)` (an op without a
/// deterministic implementation throws, or only warns with `warn_only`), cuDNN deterministic on and cuDNN
/// benchmark off; when CUDA is available also CUBLAS_WORKSPACE_CONFIG=:4096:8 in the environment unless already
/// set. cuBLAS reads that variable when it creates its handle, so call this before the first CUDA matrix product
/// of the process. Disabled: deterministic algorithms and cuDNN deterministic off (benchmark left as is; the
/// environment variable stays).
void set_deterministic(bool enabled, bool warn_only = false);
/// Whether deterministic algorithms are on.
bool deterministic();

}  // namespace lighter::training
