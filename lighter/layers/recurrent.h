#pragma once
/// Keras' recurrent layers (SimpleRNN, LSTM, GRU) and the wrappers Bidirectional and TimeDistributed.
#include <string>
#include <vector>

#include <torch/arg.h>

#include "lighter/layers/activations.h"
#include "lighter/layers/layer.h"

namespace lighter::layers {

// ---- SimpleRNN, LSTM, GRU ------------------------------------------------------------------------------------------

/// Options of the recurrent layers, with Keras' argument names and defaults. One struct serves the three layers;
/// unit_forget_bias is LSTM's, reset_after GRU's, recurrent_activation LSTM's and GRU's.
struct RecurrentOptions {
  /* implicit */ RecurrentOptions(int64_t units) : units_(units) {}
  TORCH_ARG(int64_t, units);
  TORCH_ARG(std::string, activation) = "tanh";
  TORCH_ARG(std::string, recurrent_activation) = "sigmoid";
  TORCH_ARG(bool, use_bias) = true;
  TORCH_ARG(nlohmann::json, kernel_initializer) = "glorot_uniform";
  TORCH_ARG(nlohmann::json, recurrent_initializer) = "orthogonal";
  TORCH_ARG(nlohmann::json, bias_initializer) = "zeros";
  /// LSTM: the forget gate's bias starts at 1 (the other gates' from bias_initializer).
  TORCH_ARG(bool, unit_forget_bias) = true;
  TORCH_ARG(nlohmann::json, kernel_regularizer) = nullptr;
  TORCH_ARG(nlohmann::json, recurrent_regularizer) = nullptr;
  TORCH_ARG(nlohmann::json, bias_regularizer) = nullptr;
  TORCH_ARG(nlohmann::json, activity_regularizer) = nullptr;
  /// Fraction of the inputs dropped in training (one mask per sequence, shared by all steps, as Keras does).
  TORCH_ARG(double, dropout) = 0.0;
  /// Fraction of the recurrent state dropped in training (one mask per sequence); needs the step loop.
  TORCH_ARG(double, recurrent_dropout) = 0.0;
  TORCH_ARG(int64_t, seed) = -1;
  TORCH_ARG(bool, return_sequences) = false;
  TORCH_ARG(bool, return_state) = false;
  TORCH_ARG(bool, go_backwards) = false;
  /// The final states of a batch are the initial states of the next (same batch size); reset_states() clears them.
  TORCH_ARG(bool, stateful) = false;
  /// Accepted for Keras configs; has no effect.
  TORCH_ARG(bool, unroll) = false;
  /// GRU: Keras 3's default true is torch's GRU (reset gate applied after the recurrent matmul, two biases).
  TORCH_ARG(bool, reset_after) = true;
  /// The output at a masked step: zeros when true, the previous output when false (Keras' default).
  TORCH_ARG(bool, zero_output_for_mask) = false;
  LIGHTER_LAYER_ARGS
};
using SimpleRNNOptions = RecurrentOptions;
using LSTMOptions = RecurrentOptions;
using GRUOptions = RecurrentOptions;

/// Base of SimpleRNN, LSTM and GRU: input (N, T, F) -> output (N, units), or (N, T, units) with return_sequences.
///
/// Weights are stored the way torch's fused modules store them, so they load into torch::nn::LSTM/GRU/RNN:
/// `weight_ih` [G·units, F] (Keras' kernel transposed), `weight_hh` [G·units, units] (recurrent_kernel transposed),
/// and Keras' single bias `bias` [G·units] (G = 1, 4, 3). Gate order: LSTM i, f, g(c), o (Keras' and torch's);
/// GRU r, z, n (torch's; Keras' kernel is z, r, h, so Keras weights are reordered by blocks when imported). GRU with
/// reset_after keeps Keras' two biases as `bias_ih` and `bias_hh` [3·units] each (Keras' bias [2, 3·units]).
///
/// Runs on ATen's fused lstm/gru/rnn_tanh/rnn_relu when Keras' semantics allow it: default activations (tanh with
/// sigmoid, or relu for SimpleRNN), GRU with reset_after, no recurrent dropout in training, and no mask or a
/// right-padded one (packed sequences, also read backwards). Otherwise a step loop of ATen ops
/// computes the same cell. Masked steps keep the state and output the previous output (zeros with
/// zero_output_for_mask), as Keras' rnn does.
///
/// Outputs (forward_all): [output] or, with return_state, [output, h] (SimpleRNN, GRU) or [output, h, c] (LSTM).
class RecurrentImpl : public LayerImpl {
 public:
  enum class Cell { SimpleRNN, LSTM, GRU };
  RecurrentImpl(Cell cell, const RecurrentOptions& options);

  torch::Tensor forward(const torch::Tensor& x) override { return run(x, {}, {}).front(); }
  torch::Tensor forward_masked(const torch::Tensor& x, const torch::Tensor& mask) override {
    return run(x, mask, {}).front();
  }
  int64_t num_outputs() const override { return options_.return_state() ? 1 + num_states() : 1; }
  std::vector<torch::Tensor> forward_all(const torch::Tensor& x, const torch::Tensor& mask) override {
    return run(x, mask, {});
  }
  /// All outputs, starting from the given states ([h] or [h, c], each (N, units); empty: zeros).
  std::vector<torch::Tensor> forward_all(const torch::Tensor& x, const torch::Tensor& mask,
                                         const std::vector<torch::Tensor>& initial_state) {
    return run(x, mask, initial_state);
  }

  Shape compute_output_shape(const Shape& input_shape) const override;
  /// The output's shape, then with return_state one (batch, units) per state.
  std::vector<Shape> compute_output_shapes(const Shape& input_shape) const override;
  nlohmann::json get_config() const override;
  torch::Tensor regularization_loss() const override;
  bool supports_masking() const override { return true; }
  /// The input mask when returning sequences, none otherwise.
  torch::Tensor compute_mask(const torch::Tensor& input, const torch::Tensor& mask) const override;

  Cell cell() const { return cell_; }
  const RecurrentOptions& options() const { return options_; }
  /// 1 (h) or 2 (h, c for LSTM).
  int64_t num_states() const { return cell_ == Cell::LSTM ? 2 : 1; }
  /// Clears the states a stateful layer carries between batches.
  void reset_states() { states_.clear(); }
  /// Bidirectional sets Keras' zero_output_for_mask on its layers.
  void set_zero_output_for_mask(bool zero) { options_.zero_output_for_mask(zero); }
  /// Off: always use the step loop (tests compare both paths).
  void set_use_fused(bool use) { use_fused_ = use; }
  /// Whether the last forward call ran the fused ATen kernel.
  bool last_call_fused() const { return last_fused_; }

  torch::Tensor weight_ih, weight_hh, bias, bias_hh;

 protected:
  void build_impl(const Shape& input_shape) override;
  /// Reads the keys the three layers share into `o` (the caller reads its own: unit_forget_bias, reset_after, ...).
  static LayerArgs read_common(ConfigReader& r, RecurrentOptions& o, bool has_recurrent_activation);
  void finish_from_config(const LayerArgs& a);

 private:
  std::vector<torch::Tensor> run(const torch::Tensor& x, const torch::Tensor& mask,
                                 const std::vector<torch::Tensor>& initial_state);
  /// The fused ATen path; `lengths` (int64 on CPU) for right-padded masks, undefined otherwise. Returns the
  /// output sequence (N, T, units) and the final states.
  std::vector<torch::Tensor> run_fused(const torch::Tensor& x, const torch::Tensor& lengths,
                                       std::vector<torch::Tensor> states);
  /// The step loop (any activation, mask, recurrent dropout). Same return convention.
  std::vector<torch::Tensor> run_loop(const torch::Tensor& x, const torch::Tensor& mask, std::vector<torch::Tensor> states,
                                      const torch::Tensor& recurrent_mask);
  int64_t gates() const { return cell_ == Cell::LSTM ? 4 : cell_ == Cell::GRU ? 3 : 1; }

  Cell cell_;
  RecurrentOptions options_;
  activations::Function activation_ = nullptr, recurrent_activation_ = nullptr;
  bool fusable_ = false;  // activations and cell kind allow the fused kernels
  bool use_fused_ = true, last_fused_ = false;
  std::vector<torch::Tensor> states_;  // stateful layers' carried states
  torch::Tensor activity_loss_;
};

/// Keras' SimpleRNN: h' = activation(x·W + h·U + b).
class SimpleRNNImpl : public RecurrentImpl {
 public:
  explicit SimpleRNNImpl(const SimpleRNNOptions& options) : RecurrentImpl(Cell::SimpleRNN, options) {}
  static std::shared_ptr<SimpleRNNImpl> from_config(ConfigReader& r);
};
TORCH_MODULE(SimpleRNN);

/// Keras' LSTM (Hochreiter & Schmidhuber 1997, with a forget gate): i, f, o = σ(.), g = tanh(.), c' = f·c + i·g,
/// h' = o·tanh(c').
class LSTMImpl : public RecurrentImpl {
 public:
  explicit LSTMImpl(const LSTMOptions& options) : RecurrentImpl(Cell::LSTM, options) {}
  static std::shared_ptr<LSTMImpl> from_config(ConfigReader& r);
};
TORCH_MODULE(LSTM);

/// Keras' GRU (Cho et al. 2014): z, r = σ(.), with reset_after n = tanh(x·W_n + b_n + r·(h·U_n + b'_n)), without
/// n = tanh(x·W_n + (r·h)·U_n + b_n); h' = z·h + (1 - z)·n.
class GRUImpl : public RecurrentImpl {
 public:
  explicit GRUImpl(const GRUOptions& options) : RecurrentImpl(Cell::GRU, options) {}
  static std::shared_ptr<GRUImpl> from_config(ConfigReader& r);
};
TORCH_MODULE(GRU);

// ---- Bidirectional ------------------------------------------------------------------------------------------------

struct BidirectionalOptions {
  /* implicit */ BidirectionalOptions(const LayerRef& layer) : layer_(layer.ptr()) {}
  /// The recurrent layer run forwards.
  TORCH_ARG(LayerPtr, layer);
  /// "concat", "sum", "mul", "ave", or "none" (Keras' None: the two outputs are returned separately).
  TORCH_ARG(std::string, merge_mode) = "concat";
  /// The layer run backwards (go_backwards must differ from layer's); by default a copy of `layer` with
  /// go_backwards flipped.
  TORCH_ARG(LayerPtr, backward_layer) = nullptr;
  LIGHTER_LAYER_ARGS
};

/// Keras' Bidirectional: runs a recurrent layer forwards and a second one backwards over the sequence, the
/// backward outputs turned back to forward time order, and merges the two. Sub-modules `forward_layer` and
/// `backward_layer` (layer names forward_<name>, backward_<name>). Both output zeros at masked steps when
/// returning sequences, as Keras sets zero_output_for_mask on them. Outputs (forward_all): the merged output (two
/// with merge_mode none), then with return_state the forward states and the backward states.
class BidirectionalImpl : public LayerImpl {
 public:
  explicit BidirectionalImpl(const BidirectionalOptions& options);
  /// `Bidirectional(LSTM(32))`: merge_mode concat.
  explicit BidirectionalImpl(const LayerRef& layer) : BidirectionalImpl(BidirectionalOptions(layer)) {}
  torch::Tensor forward(const torch::Tensor& x) override { return forward_all(x, {}).front(); }
  torch::Tensor forward_masked(const torch::Tensor& x, const torch::Tensor& mask) override {
    return forward_all(x, mask).front();
  }
  int64_t num_outputs() const override;
  std::vector<torch::Tensor> forward_all(const torch::Tensor& x, const torch::Tensor& mask) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  std::vector<Shape> compute_output_shapes(const Shape& input_shape) const override;
  nlohmann::json get_config() const override;
  torch::Tensor regularization_loss() const override;
  bool supports_masking() const override { return true; }
  torch::Tensor compute_mask(const torch::Tensor& input, const torch::Tensor& mask) const override;
  static std::shared_ptr<BidirectionalImpl> from_config(ConfigReader& r);

  const std::shared_ptr<RecurrentImpl>& forward_layer() const { return forward_; }
  const std::shared_ptr<RecurrentImpl>& backward_layer() const { return backward_; }

 protected:
  void build_impl(const Shape& input_shape) override;

 private:
  std::string merge_mode_;
  std::shared_ptr<RecurrentImpl> forward_, backward_;
  bool custom_backward_ = false;
};
TORCH_MODULE(Bidirectional);

// ---- TimeDistributed ------------------------------------------------------------------------------------------

struct TimeDistributedOptions {
  /* implicit */ TimeDistributedOptions(const LayerRef& layer) : layer_(layer.ptr()) {}
  TORCH_ARG(LayerPtr, layer);
  LIGHTER_LAYER_ARGS
};

/// Keras' TimeDistributed: applies a layer to every step, (N, T, ...) -> (N, T, ...'), by folding the time axis
/// into the batch (one call of the inner layer). Sub-module `layer`; the mask passes through.
class TimeDistributedImpl : public LayerImpl {
 public:
  explicit TimeDistributedImpl(const TimeDistributedOptions& options);
  explicit TimeDistributedImpl(const LayerRef& layer) : TimeDistributedImpl(TimeDistributedOptions(layer)) {}
  torch::Tensor forward(const torch::Tensor& x) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  nlohmann::json get_config() const override;
  torch::Tensor regularization_loss() const override { return layer_->regularization_loss(); }
  bool supports_masking() const override { return true; }
  std::string output_activation() const override { return layer_->output_activation(); }
  torch::Tensor forward_pre_activation(const torch::Tensor& x) override;
  static std::shared_ptr<TimeDistributedImpl> from_config(ConfigReader& r);
  const LayerPtr& layer() const { return layer_; }

 protected:
  void build_impl(const Shape& input_shape) override;

 private:
  LayerPtr layer_;
};
TORCH_MODULE(TimeDistributed);

}  // namespace lighter::layers
