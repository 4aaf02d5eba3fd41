#pragma once
/// Keras' convolution layers: Conv1D/2D/3D, Conv1D/2D/3DTranspose, DepthwiseConv1D/2D and SeparableConv1D/2D.
/// Weights are stored in torch's layouts, so they load into torch::nn::ConvNd / ConvTransposeNd unchanged; inputs in
/// Keras' default channels_last layout run through a zero-copy permute onto ATen's channels_last memory format.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <torch/arg.h>

#include "lighter/layers/activations.h"
#include "lighter/layers/layer.h"

/// Declares a Keras int-or-tuple argument of an options struct (TORCH_ARG style): a std::vector<int64_t> holding one
/// value or one per spatial axis, with an extra setter taking one integer, so `.strides(2)` and `.strides({2, 1})`
/// both work. The default follows as a braced list: `LIGHTER_INT_TUPLE_ARG(strides, {1});`.
#define LIGHTER_INT_TUPLE_ARG(name, ...)                          \
 public:                                                          \
  inline auto name(int64_t value)->decltype(*this) { /* NOLINT */ \
    this->name##_ = std::vector<int64_t>{value};                  \
    return *this;                                                 \
  }                                                               \
  TORCH_ARG(std::vector<int64_t>, name) = std::vector<int64_t> __VA_ARGS__

namespace lighter::layers {

namespace detail {

/// Padding of one spatial axis: cells added before and after the input.
struct AxisPadding {
  int64_t before = 0;
  int64_t after = 0;
};

/// Keras' (TensorFlow's) `same` padding of one axis: total = max((ceil(in/s) - 1)·s + d·(k-1) + 1 - in, 0),
/// before = total / 2, after = the rest. The extra cell of an odd total goes at the end, unlike torch's symmetric
/// padding, so stride > 1 or an even kernel can need an asymmetric pad.
AxisPadding same_padding(int64_t input_length, int64_t kernel, int64_t stride, int64_t dilation = 1);

/// Keras' padding argument lower-cased and checked: "valid", "same", and "causal" when `allow_causal` (Conv1D only).
std::string check_padding(const std::string& padding, const std::string& path, bool allow_causal);

/// `(3, 3)`, as Keras prints tuples in messages.
std::string tuple_to_string(const std::vector<int64_t>& values);

}  // namespace detail

// ---- options ---------------------------------------------------------------------------------------------------

/// Options of Conv1D/2D/3D (`D` spatial axes), with Keras' argument names and defaults.
template <size_t D>
struct ConvOptions {
  ConvOptions(int64_t filters, std::vector<int64_t> kernel_size) : filters_(filters), kernel_size_(std::move(kernel_size)) {}
  ConvOptions(int64_t filters, int64_t kernel_size) : filters_(filters), kernel_size_{kernel_size} {}
  TORCH_ARG(int64_t, filters);
  LIGHTER_INT_TUPLE_ARG(kernel_size, {});
  LIGHTER_INT_TUPLE_ARG(strides, {1});
  /// "valid", "same" (Keras' asymmetric same padding) or, for Conv1D only, "causal" (left padding).
  TORCH_ARG(std::string, padding) = "valid";
  TORCH_ARG(std::string, data_format) = "channels_last";
  LIGHTER_INT_TUPLE_ARG(dilation_rate, {1});
  /// Input channels and filters are split into `groups` independent convolutions.
  TORCH_ARG(int64_t, groups) = 1;
  TORCH_ARG(std::string, activation) = "linear";
  TORCH_ARG(bool, use_bias) = true;
  TORCH_ARG(nlohmann::json, kernel_initializer) = "glorot_uniform";
  TORCH_ARG(nlohmann::json, bias_initializer) = "zeros";
  TORCH_ARG(nlohmann::json, kernel_regularizer) = nullptr;
  TORCH_ARG(nlohmann::json, bias_regularizer) = nullptr;
  TORCH_ARG(nlohmann::json, activity_regularizer) = nullptr;
  LIGHTER_LAYER_ARGS
};
using Conv1DOptions = ConvOptions<1>;
using Conv2DOptions = ConvOptions<2>;
using Conv3DOptions = ConvOptions<3>;

/// Options of Conv1D/2D/3DTranspose, with Keras' argument names and defaults.
template <size_t D>
struct ConvTransposeOptions {
  ConvTransposeOptions(int64_t filters, std::vector<int64_t> kernel_size)
      : filters_(filters), kernel_size_(std::move(kernel_size)) {}
  ConvTransposeOptions(int64_t filters, int64_t kernel_size) : filters_(filters), kernel_size_{kernel_size} {}
  TORCH_ARG(int64_t, filters);
  LIGHTER_INT_TUPLE_ARG(kernel_size, {});
  LIGHTER_INT_TUPLE_ARG(strides, {1});
  /// "valid" or "same".
  TORCH_ARG(std::string, padding) = "valid";
  /// Extra cells at the end of each output axis, each < strides; empty is Keras' None (the length follows from padding).
  LIGHTER_INT_TUPLE_ARG(output_padding, {});
  TORCH_ARG(std::string, data_format) = "channels_last";
  LIGHTER_INT_TUPLE_ARG(dilation_rate, {1});
  TORCH_ARG(std::string, activation) = "linear";
  TORCH_ARG(bool, use_bias) = true;
  TORCH_ARG(nlohmann::json, kernel_initializer) = "glorot_uniform";
  TORCH_ARG(nlohmann::json, bias_initializer) = "zeros";
  TORCH_ARG(nlohmann::json, kernel_regularizer) = nullptr;
  TORCH_ARG(nlohmann::json, bias_regularizer) = nullptr;
  TORCH_ARG(nlohmann::json, activity_regularizer) = nullptr;
  LIGHTER_LAYER_ARGS
};
using Conv1DTransposeOptions = ConvTransposeOptions<1>;
using Conv2DTransposeOptions = ConvTransposeOptions<2>;
using Conv3DTransposeOptions = ConvTransposeOptions<3>;

/// Options of DepthwiseConv1D/2D, with Keras' argument names and defaults.
template <size_t D>
struct DepthwiseConvOptions {
  /* implicit */ DepthwiseConvOptions(std::vector<int64_t> kernel_size) : kernel_size_(std::move(kernel_size)) {}
  /* implicit */ DepthwiseConvOptions(int64_t kernel_size) : kernel_size_{kernel_size} {}
  LIGHTER_INT_TUPLE_ARG(kernel_size, {});
  LIGHTER_INT_TUPLE_ARG(strides, {1});
  /// "valid" or "same".
  TORCH_ARG(std::string, padding) = "valid";
  /// Output channels per input channel.
  TORCH_ARG(int64_t, depth_multiplier) = 1;
  TORCH_ARG(std::string, data_format) = "channels_last";
  LIGHTER_INT_TUPLE_ARG(dilation_rate, {1});
  TORCH_ARG(std::string, activation) = "linear";
  TORCH_ARG(bool, use_bias) = true;
  TORCH_ARG(nlohmann::json, depthwise_initializer) = "glorot_uniform";
  TORCH_ARG(nlohmann::json, bias_initializer) = "zeros";
  TORCH_ARG(nlohmann::json, depthwise_regularizer) = nullptr;
  TORCH_ARG(nlohmann::json, bias_regularizer) = nullptr;
  TORCH_ARG(nlohmann::json, activity_regularizer) = nullptr;
  LIGHTER_LAYER_ARGS
};
using DepthwiseConv1DOptions = DepthwiseConvOptions<1>;
using DepthwiseConv2DOptions = DepthwiseConvOptions<2>;

/// Options of SeparableConv1D/2D, with Keras' argument names and defaults.
template <size_t D>
struct SeparableConvOptions {
  SeparableConvOptions(int64_t filters, std::vector<int64_t> kernel_size)
      : filters_(filters), kernel_size_(std::move(kernel_size)) {}
  SeparableConvOptions(int64_t filters, int64_t kernel_size) : filters_(filters), kernel_size_{kernel_size} {}
  TORCH_ARG(int64_t, filters);
  LIGHTER_INT_TUPLE_ARG(kernel_size, {});
  LIGHTER_INT_TUPLE_ARG(strides, {1});
  /// "valid" or "same" (of the depthwise step; the pointwise step is 1×1).
  TORCH_ARG(std::string, padding) = "valid";
  TORCH_ARG(std::string, data_format) = "channels_last";
  LIGHTER_INT_TUPLE_ARG(dilation_rate, {1});
  /// Depthwise output channels per input channel.
  TORCH_ARG(int64_t, depth_multiplier) = 1;
  TORCH_ARG(std::string, activation) = "linear";
  TORCH_ARG(bool, use_bias) = true;
  TORCH_ARG(nlohmann::json, depthwise_initializer) = "glorot_uniform";
  TORCH_ARG(nlohmann::json, pointwise_initializer) = "glorot_uniform";
  TORCH_ARG(nlohmann::json, bias_initializer) = "zeros";
  TORCH_ARG(nlohmann::json, depthwise_regularizer) = nullptr;
  TORCH_ARG(nlohmann::json, pointwise_regularizer) = nullptr;
  TORCH_ARG(nlohmann::json, bias_regularizer) = nullptr;
  TORCH_ARG(nlohmann::json, activity_regularizer) = nullptr;
  LIGHTER_LAYER_ARGS
};
using SeparableConv1DOptions = SeparableConvOptions<1>;
using SeparableConv2DOptions = SeparableConvOptions<2>;

// ---- layers ----------------------------------------------------------------------------------------------------

/// What every convolution layer shares: Keras' spatial arguments, the input checks, the channels_last views around
/// the ATen op (a contiguous NHWC input reaches ATen as a channels_last NCHW tensor: no copy), the activation and the
/// activity penalty. Subclasses create the weights and run the op on channels-first tensors. A 1-d convolution on
/// channels_last inputs runs as a 2-d one on an (N, C, 1, L) channels_last view (see run() for the measurement).
class BaseConvImpl : public LayerImpl {
 public:
  /// Keras' padding, parsed once (no string comparison per step).
  enum class Padding { Valid, Same, Causal };
  /// The arguments every convolution has, checked and expanded to one value per spatial axis.
  struct SpatialArgs {
    size_t rank = 0;
    std::vector<int64_t> kernel_size, strides, dilation_rate;
    std::string padding, data_format, activation;
    Padding padding_kind = Padding::Valid;
    bool channels_last = true;
    nlohmann::json activity_regularizer;
    std::vector<int64_t> zeros, ones;  // `rank` zeros / ones, for ATen's arguments
    // The same arguments with a unit axis in front, for a 1-d convolution run as a 2-d one (see run()).
    std::vector<int64_t> lifted_strides, lifted_dilation, lifted_zeros, lifted_ones;
  };

  torch::Tensor forward(const torch::Tensor& x) override;
  torch::Tensor forward_pre_activation(const torch::Tensor& x) override;
  std::string output_activation() const override { return spatial_.activation; }
  /// Keras' output shape: valid floor((in - d·(k-1) - 1) / s) + 1, same and causal ceil(in / s) (transposed:
  /// Keras' deconv length). ShapeError for a wrong rank, an unknown or unfitting channel count, or an empty output.
  Shape compute_output_shape(const Shape& input_shape) const override;
  torch::Tensor regularization_loss() const override;

  /// The checked spatial arguments.
  const SpatialArgs& spatial() const { return spatial_; }
  /// Input channels the layer was built for (-1 before build).
  int64_t input_channels() const { return input_channels_; }
  /// This layer's convolution (padding, strides, dilation) with another weight in torch's layout, on a
  /// channels-first input as an adapter hook gets it (a 1-d layer's may be lifted to (N, C, 1, L)).
  torch::Tensor convolve_with(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias = {},
                              int64_t groups = 1) const {
    return padded_conv(x, weight, bias, groups);
  }

 protected:
  BaseConvImpl(std::string class_name, LayerArgs args) : LayerImpl(std::move(class_name), std::move(args)) {}
  /// Stores the checked arguments (called by the subclass constructor). `transposed`: no minimum input size.
  void set_spatial(SpatialArgs spatial, bool transposed = false);

  /// The convolution (bias included) on a channels-first input; the result is channels-first. The input may be a
  /// 1-d layer's lifted (N, C, 1, L) view: padded_conv and op_args handle both.
  virtual torch::Tensor convolve(const torch::Tensor& x) const = 0;
  /// Output channels for an input with `input_channels` channels.
  virtual int64_t output_channels(int64_t input_channels) const = 0;
  /// Output length of spatial axis `axis` for an input length (-1 unknown).
  virtual int64_t output_length(size_t axis, int64_t input_length) const;
  /// Throws ShapeError when the layer cannot take `channels` input channels (e.g. not divisible by groups).
  virtual void check_channels(int64_t channels, const Shape& input_shape) const {}
  /// Penalties of the weight regularizers (undefined when none).
  virtual torch::Tensor weight_penalty() const = 0;
  /// Keras 2's batch_input_shape of a first layer read by from_config: declares it and builds.
  void declare_input_shape(const Shape& batch_input_shape);
  /// Records the channel count of `input_shape` (call first in build_impl).
  void set_input_channels(const Shape& input_shape);
  /// "layer 'conv2d' (Conv2D)", for messages.
  std::string describe() const;
  /// Keras' valid/same/causal convolution on a channels-first input (weight in torch's layout): torch's padding
  /// when the Keras padding is symmetric, an explicit (asymmetric) pad otherwise.
  torch::Tensor padded_conv(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                            int64_t groups) const;
  /// ATen's view of a convolution: the input convolve() got may be a 1-d layer's input lifted to 2-d, (N, C, 1, L);
  /// then weights need a unit axis (`weight()`) and the arguments one in front.
  struct OpArgs {
    bool lifted;
    at::IntArrayRef strides, dilation, zeros, ones;
    torch::Tensor weight(const torch::Tensor& w) const { return lifted ? w.unsqueeze(2) : w; }
  };
  OpArgs op_args(const torch::Tensor& x) const;

  SpatialArgs spatial_;
  int64_t input_channels_ = -1;

 private:
  torch::Tensor run(const torch::Tensor& x) const;
  void check_input(const torch::Tensor& x) const;
  void record_activity(const torch::Tensor& output);
  activations::Function activation_ = nullptr;
  bool transposed_ = false;
  torch::Tensor activity_loss_;
};

/// Keras' Conv1D/2D/3D: activation(conv(x, kernel) + bias). `weight` is [filters, in / groups, k...] and `bias`
/// [filters], torch::nn::ConvNd's layout. Initializer fans as Keras computes them for its kernel
/// (k..., in / groups, filters): fan_in = receptive field · in / groups, fan_out = receptive field · filters.
template <size_t D>
class ConvImpl : public BaseConvImpl {
 public:
  explicit ConvImpl(const ConvOptions<D>& options);
  nlohmann::json get_config() const override;
  static std::shared_ptr<ConvImpl> from_config(ConfigReader& r);
  const ConvOptions<D>& options() const { return options_; }
  bool supports_adapter_hook() const override { return true; }
  torch::Tensor weight, bias;

 protected:
  void build_impl(const Shape& input_shape) override;
  torch::Tensor convolve(const torch::Tensor& x) const override;
  int64_t output_channels(int64_t) const override { return options_.filters(); }
  void check_channels(int64_t channels, const Shape& input_shape) const override;
  torch::Tensor weight_penalty() const override;

 private:
  ConvOptions<D> options_;
};

/// Keras' Conv1D/2D/3DTranspose (the gradient of a convolution, as TensorFlow and JAX define it, including
/// Keras' asymmetric crop for `same`). `weight` is [in, filters, k...] and `bias` [filters], torch::nn::
/// ConvTransposeNd's layout. Keras' kernel is (k..., filters, in), so fan_in = receptive field · filters and
/// fan_out = receptive field · in.
template <size_t D>
class ConvTransposeImpl : public BaseConvImpl {
 public:
  explicit ConvTransposeImpl(const ConvTransposeOptions<D>& options);
  nlohmann::json get_config() const override;
  static std::shared_ptr<ConvTransposeImpl> from_config(ConfigReader& r);
  const ConvTransposeOptions<D>& options() const { return options_; }
  torch::Tensor weight, bias;

 protected:
  void build_impl(const Shape& input_shape) override;
  torch::Tensor convolve(const torch::Tensor& x) const override;
  int64_t output_channels(int64_t) const override { return options_.filters(); }
  int64_t output_length(size_t axis, int64_t input_length) const override;
  torch::Tensor weight_penalty() const override;

 private:
  ConvTransposeOptions<D> options_;
  // torch's padding/output_padding for Keras' crop, and what is left to cut off the end of each axis.
  std::vector<int64_t> torch_padding_, torch_output_padding_, end_crop_;
};

/// Keras' DepthwiseConv1D/2D: each input channel convolved with its own `depth_multiplier` filters (a grouped
/// convolution with groups = channels; output channel c·depth_multiplier + m, as in Keras). `weight` is
/// [channels · depth_multiplier, 1, k...], `bias` [channels · depth_multiplier]: torch::nn::ConvNd's layout with
/// groups = channels. Keras' kernel is (k..., channels, depth_multiplier), and its fans follow from that shape.
template <size_t D>
class DepthwiseConvImpl : public BaseConvImpl {
 public:
  explicit DepthwiseConvImpl(const DepthwiseConvOptions<D>& options);
  nlohmann::json get_config() const override;
  static std::shared_ptr<DepthwiseConvImpl> from_config(ConfigReader& r);
  const DepthwiseConvOptions<D>& options() const { return options_; }
  torch::Tensor weight, bias;

 protected:
  void build_impl(const Shape& input_shape) override;
  torch::Tensor convolve(const torch::Tensor& x) const override;
  int64_t output_channels(int64_t in) const override { return in * options_.depth_multiplier(); }
  torch::Tensor weight_penalty() const override;

 private:
  DepthwiseConvOptions<D> options_;
};

/// Keras' SeparableConv1D/2D: a depthwise convolution (strides, padding, dilation) followed by a 1×1 pointwise one
/// with the bias. `depthwise_weight` is [channels · depth_multiplier, 1, k...], `pointwise_weight`
/// [filters, channels · depth_multiplier, 1...], `bias` [filters].
template <size_t D>
class SeparableConvImpl : public BaseConvImpl {
 public:
  explicit SeparableConvImpl(const SeparableConvOptions<D>& options);
  nlohmann::json get_config() const override;
  static std::shared_ptr<SeparableConvImpl> from_config(ConfigReader& r);
  const SeparableConvOptions<D>& options() const { return options_; }
  torch::Tensor depthwise_weight, pointwise_weight, bias;

 protected:
  void build_impl(const Shape& input_shape) override;
  torch::Tensor convolve(const torch::Tensor& x) const override;
  int64_t output_channels(int64_t) const override { return options_.filters(); }
  torch::Tensor weight_penalty() const override;

 private:
  SeparableConvOptions<D> options_;
};

extern template class ConvImpl<1>;
extern template class ConvImpl<2>;
extern template class ConvImpl<3>;
extern template class ConvTransposeImpl<1>;
extern template class ConvTransposeImpl<2>;
extern template class ConvTransposeImpl<3>;
extern template class DepthwiseConvImpl<1>;
extern template class DepthwiseConvImpl<2>;
extern template class SeparableConvImpl<1>;
extern template class SeparableConvImpl<2>;

using Conv1DImpl = ConvImpl<1>;
using Conv2DImpl = ConvImpl<2>;
using Conv3DImpl = ConvImpl<3>;
using Conv1DTransposeImpl = ConvTransposeImpl<1>;
using Conv2DTransposeImpl = ConvTransposeImpl<2>;
using Conv3DTransposeImpl = ConvTransposeImpl<3>;
using DepthwiseConv1DImpl = DepthwiseConvImpl<1>;
using DepthwiseConv2DImpl = DepthwiseConvImpl<2>;
using SeparableConv1DImpl = SeparableConvImpl<1>;
using SeparableConv2DImpl = SeparableConvImpl<2>;
TORCH_MODULE(Conv1D);
TORCH_MODULE(Conv2D);
TORCH_MODULE(Conv3D);
TORCH_MODULE(Conv1DTranspose);
TORCH_MODULE(Conv2DTranspose);
TORCH_MODULE(Conv3DTranspose);
TORCH_MODULE(DepthwiseConv1D);
TORCH_MODULE(DepthwiseConv2D);
TORCH_MODULE(SeparableConv1D);
TORCH_MODULE(SeparableConv2D);

}  // namespace lighter::layers
