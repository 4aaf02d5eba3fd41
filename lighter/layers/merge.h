#pragma once
/// Keras' merge layers, called on a list of tensors in Functional models: Add, Subtract, Multiply, Average,
/// Maximum, Minimum, Concatenate, Dot.
#include <string>
#include <vector>

#include <torch/nn/pimpl.h>

#include "lighter/layers/layer.h"

namespace lighter::layers {

struct MergeOptions {
  LIGHTER_LAYER_ARGS
};

/// Base of the element-wise merges. Inputs have one rank; each axis (batch included) is equal across inputs, 1
/// (broadcast) or unknown. The output mask is the logical and of the inputs' masks (Keras' Merge.compute_mask).
class MergeImpl : public LayerImpl {
 public:
  enum class Op { Add, Subtract, Multiply, Average, Maximum, Minimum };
  MergeImpl(Op op, const MergeOptions& options);

  bool takes_list() const override { return true; }
  bool supports_masking() const override { return true; }
  torch::Tensor forward(const torch::Tensor& x) override;
  Shape compute_output_shape_list(const std::vector<Shape>& shapes) const override;
  torch::Tensor forward_list(const std::vector<torch::Tensor>& inputs, const std::vector<torch::Tensor>& masks) override;
  torch::Tensor compute_mask_list(const std::vector<torch::Tensor>& inputs,
                                  const std::vector<torch::Tensor>& masks) const override;
  Op op() const { return op_; }

 private:
  Op op_;
};

/// Reads a merge layer of `op` from its Keras config (only the common layer arguments).
std::shared_ptr<MergeImpl> merge_from_config(MergeImpl::Op op, ConfigReader& r);

#define LIGHTER_MERGE_LAYER(Name)                                                            \
  class Name##Impl : public MergeImpl {                                                      \
   public:                                                                                   \
    explicit Name##Impl(const MergeOptions& options = {}) : MergeImpl(Op::Name, options) {} \
    static std::shared_ptr<MergeImpl> from_config(ConfigReader& r) {                         \
      return merge_from_config(Op::Name, r);                                                 \
    }                                                                                        \
  };                                                                                         \
  TORCH_MODULE(Name)

/// Keras' Add: the sum of the inputs.
LIGHTER_MERGE_LAYER(Add);
/// Keras' Subtract: inputs[0] - inputs[1] (exactly two inputs).
LIGHTER_MERGE_LAYER(Subtract);
/// Keras' Multiply: the element-wise product.
LIGHTER_MERGE_LAYER(Multiply);
/// Keras' Average: the element-wise mean.
LIGHTER_MERGE_LAYER(Average);
/// Keras' Maximum: the element-wise maximum.
LIGHTER_MERGE_LAYER(Maximum);
/// Keras' Minimum: the element-wise minimum.
LIGHTER_MERGE_LAYER(Minimum);

#undef LIGHTER_MERGE_LAYER

struct ConcatenateOptions {
  /// The axis to join along (negative counts from the end; the batch axis 0 is refused).
  TORCH_ARG(int64_t, axis) = -1;
  LIGHTER_LAYER_ARGS
};

/// Keras' Concatenate: inputs equal in every axis but `axis`, joined along it. Masks as Keras 3: joined along the
/// time axis when axis is 1, otherwise the logical or of the inputs' masks (a missing mask counts as all valid).
class ConcatenateImpl : public LayerImpl {
 public:
  explicit ConcatenateImpl(const ConcatenateOptions& options = {});
  bool takes_list() const override { return true; }
  bool supports_masking() const override { return true; }
  torch::Tensor forward(const torch::Tensor& x) override;
  Shape compute_output_shape_list(const std::vector<Shape>& shapes) const override;
  torch::Tensor forward_list(const std::vector<torch::Tensor>& inputs, const std::vector<torch::Tensor>& masks) override;
  torch::Tensor compute_mask_list(const std::vector<torch::Tensor>& inputs,
                                  const std::vector<torch::Tensor>& masks) const override;
  nlohmann::json get_config() const override;
  static std::shared_ptr<ConcatenateImpl> from_config(ConfigReader& r);

 private:
  int64_t axis_for(size_t rank) const;
  ConcatenateOptions options_;
};
TORCH_MODULE(Concatenate);

struct DotOptions {
  /* implicit */ DotOptions(int64_t axes) : axes_({axes, axes}) {}
  DotOptions(int64_t axes_a, int64_t axes_b) : axes_({axes_a, axes_b}) {}
  /// The axis of each input summed over (negative counts from the end; the batch axis 0 is refused).
  TORCH_ARG(std::vector<int64_t>, axes);
  /// L2-normalise both inputs along their axes first, so that the result is the cosine similarity.
  TORCH_ARG(bool, normalize) = false;
  LIGHTER_LAYER_ARGS
};

/// Keras' Dot: the batched dot product of two inputs along one axis each (Keras' batch_dot): (N, a, d)·(N, b, d)
/// with axes (2, 2) gives (N, a, b); two (N, d) inputs give (N, 1). The output carries no mask.
class DotImpl : public LayerImpl {
 public:
  explicit DotImpl(const DotOptions& options);
  bool takes_list() const override { return true; }
  torch::Tensor forward(const torch::Tensor& x) override;
  Shape compute_output_shape_list(const std::vector<Shape>& shapes) const override;
  torch::Tensor forward_list(const std::vector<torch::Tensor>& inputs, const std::vector<torch::Tensor>& masks) override;
  nlohmann::json get_config() const override;
  static std::shared_ptr<DotImpl> from_config(ConfigReader& r);

 private:
  /// The axes normalised for the inputs' ranks.
  std::pair<int64_t, int64_t> axes_for(size_t rank_a, size_t rank_b) const;
  DotOptions options_;
};
TORCH_MODULE(Dot);

}  // namespace lighter::layers
