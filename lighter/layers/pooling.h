#pragma once
/// Keras' pooling layers: MaxPooling1D/2D/3D, AveragePooling1D/2D/3D and the global poolings
/// GlobalMaxPooling1D/2D/3D, GlobalAveragePooling1D/2D/3D.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/arg.h>

#include "lighter/layers/convolution.h"
#include "lighter/layers/layer.h"

namespace lighter::layers {

/// Options of MaxPooling1D/2D/3D and AveragePooling1D/2D/3D (`D` spatial axes), with Keras' names and defaults.
template <size_t D>
struct PoolingOptions {
  /* implicit */ PoolingOptions(int64_t pool_size = 2) : pool_size_{pool_size} {}
  /* implicit */ PoolingOptions(std::vector<int64_t> pool_size) : pool_size_(std::move(pool_size)) {}
  LIGHTER_INT_TUPLE_ARG(pool_size, {2});
  /// Empty is Keras' None: the pool size.
  LIGHTER_INT_TUPLE_ARG(strides, {});
  /// "valid" or "same" (Keras' padding: max pooling ignores the padded cells, average pooling leaves them out of
  /// the count).
  TORCH_ARG(std::string, padding) = "valid";
  TORCH_ARG(std::string, data_format) = "channels_last";
  LIGHTER_LAYER_ARGS
};
using MaxPooling1DOptions = PoolingOptions<1>;
using MaxPooling2DOptions = PoolingOptions<2>;
using MaxPooling3DOptions = PoolingOptions<3>;
using AveragePooling1DOptions = PoolingOptions<1>;
using AveragePooling2DOptions = PoolingOptions<2>;
using AveragePooling3DOptions = PoolingOptions<3>;

/// Options of the global poolings.
struct GlobalPoolingOptions {
  TORCH_ARG(std::string, data_format) = "channels_last";
  /// Keep the spatial axes with length 1.
  TORCH_ARG(bool, keepdims) = false;
  LIGHTER_LAYER_ARGS
};
using GlobalMaxPooling1DOptions = GlobalPoolingOptions;
using GlobalMaxPooling2DOptions = GlobalPoolingOptions;
using GlobalMaxPooling3DOptions = GlobalPoolingOptions;
using GlobalAveragePooling1DOptions = GlobalPoolingOptions;
using GlobalAveragePooling2DOptions = GlobalPoolingOptions;
using GlobalAveragePooling3DOptions = GlobalPoolingOptions;

/// Which reduction a pooling layer computes.
enum class PoolKind { Max, Average };

/// Keras' MaxPoolingND / AveragePoolingND over windows of `pool_size` moved by `strides`, on ATen's max_pool /
/// avg_pool (channels_last inputs through zero-copy views). Keras' `same` padding puts the extra cell at the end;
/// torch's symmetric padding with ceil_mode gives exactly Keras' windows whenever that extra cell is at most
/// stride - 1 (then the window past the end is clipped, and with count_include_pad=false the average divides by
/// the cells inside the input, as Keras does). Otherwise (stride 1, even pool size) torch pads one more cell at
/// the start and the first output is dropped.
template <size_t D, PoolKind K>
class PoolingImpl : public LayerImpl {
 public:
  explicit PoolingImpl(const PoolingOptions<D>& options = {});
  torch::Tensor forward(const torch::Tensor& x) override;
  /// Keras' formula: valid floor((in - pool) / s) + 1, same ceil(in / s); ShapeError for a wrong rank or a pool
  /// larger than the input with `valid`.
  Shape compute_output_shape(const Shape& input_shape) const override;
  nlohmann::json get_config() const override;
  static std::shared_ptr<PoolingImpl> from_config(ConfigReader& r);
  const PoolingOptions<D>& options() const { return options_; }

 private:
  std::string describe() const;
  PoolingOptions<D> options_;
  bool same_ = false, channels_last_ = true;
};

/// Keras' GlobalMaxPoolingND / GlobalAveragePoolingND: max or mean over the spatial axes ((N, ..., C) -> (N, C),
/// or (N, 1, ..., 1, C) with keepdims). The 1D versions take a time mask (N, T): the mean is over the valid steps
/// (Keras' sum(x·mask) / sum(mask)) and the max over the valid steps only; the output carries no mask.
template <size_t D, PoolKind K>
class GlobalPoolingImpl : public LayerImpl {
 public:
  explicit GlobalPoolingImpl(const GlobalPoolingOptions& options = {});
  torch::Tensor forward(const torch::Tensor& x) override;
  torch::Tensor forward_masked(const torch::Tensor& x, const torch::Tensor& mask) override;
  bool supports_masking() const override { return D == 1; }
  torch::Tensor compute_mask(const torch::Tensor&, const torch::Tensor&) const override { return {}; }
  Shape compute_output_shape(const Shape& input_shape) const override;
  nlohmann::json get_config() const override;
  static std::shared_ptr<GlobalPoolingImpl> from_config(ConfigReader& r);
  const GlobalPoolingOptions& options() const { return options_; }

 private:
  GlobalPoolingOptions options_;
  std::vector<int64_t> axes_;  // the spatial axes
};

extern template class PoolingImpl<1, PoolKind::Max>;
extern template class PoolingImpl<2, PoolKind::Max>;
extern template class PoolingImpl<3, PoolKind::Max>;
extern template class PoolingImpl<1, PoolKind::Average>;
extern template class PoolingImpl<2, PoolKind::Average>;
extern template class PoolingImpl<3, PoolKind::Average>;
extern template class GlobalPoolingImpl<1, PoolKind::Max>;
extern template class GlobalPoolingImpl<2, PoolKind::Max>;
extern template class GlobalPoolingImpl<3, PoolKind::Max>;
extern template class GlobalPoolingImpl<1, PoolKind::Average>;
extern template class GlobalPoolingImpl<2, PoolKind::Average>;
extern template class GlobalPoolingImpl<3, PoolKind::Average>;

using MaxPooling1DImpl = PoolingImpl<1, PoolKind::Max>;
using MaxPooling2DImpl = PoolingImpl<2, PoolKind::Max>;
using MaxPooling3DImpl = PoolingImpl<3, PoolKind::Max>;
using AveragePooling1DImpl = PoolingImpl<1, PoolKind::Average>;
using AveragePooling2DImpl = PoolingImpl<2, PoolKind::Average>;
using AveragePooling3DImpl = PoolingImpl<3, PoolKind::Average>;
using GlobalMaxPooling1DImpl = GlobalPoolingImpl<1, PoolKind::Max>;
using GlobalMaxPooling2DImpl = GlobalPoolingImpl<2, PoolKind::Max>;
using GlobalMaxPooling3DImpl = GlobalPoolingImpl<3, PoolKind::Max>;
using GlobalAveragePooling1DImpl = GlobalPoolingImpl<1, PoolKind::Average>;
using GlobalAveragePooling2DImpl = GlobalPoolingImpl<2, PoolKind::Average>;
using GlobalAveragePooling3DImpl = GlobalPoolingImpl<3, PoolKind::Average>;
TORCH_MODULE(MaxPooling1D);
TORCH_MODULE(MaxPooling2D);
TORCH_MODULE(MaxPooling3D);
TORCH_MODULE(AveragePooling1D);
TORCH_MODULE(AveragePooling2D);
TORCH_MODULE(AveragePooling3D);
TORCH_MODULE(GlobalMaxPooling1D);
TORCH_MODULE(GlobalMaxPooling2D);
TORCH_MODULE(GlobalMaxPooling3D);
TORCH_MODULE(GlobalAveragePooling1D);
TORCH_MODULE(GlobalAveragePooling2D);
TORCH_MODULE(GlobalAveragePooling3D);

}  // namespace lighter::layers
