#include "lighter/layers/recurrent.h"

#include <ATen/ATen.h>
#include <torch/nn/functional/linear.h>
#include <torch/nn/utils/rnn.h>
#include <torch/torch.h>

#include "lighter/core/error.h"
#include "lighter/layers/initializers.h"
#include "lighter/layers/registry.h"
#include "lighter/layers/regularizers.h"

namespace lighter::layers {

namespace {

std::string cell_class(RecurrentImpl::Cell c) {
  switch (c) {
    case RecurrentImpl::Cell::SimpleRNN: return "SimpleRNN";
    case RecurrentImpl::Cell::LSTM: return "LSTM";
    default: return "GRU";
  }
}

/// Keras' default layer name for a cell kind (the base of forward_<name> in Bidirectional).
std::string cell_default_name(RecurrentImpl::Cell c) {
  switch (c) {
    case RecurrentImpl::Cell::SimpleRNN: return "simple_rnn";
    case RecurrentImpl::Cell::LSTM: return "lstm";
    default: return "gru";
  }
}

std::string remove_prefix(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0 ? s.substr(prefix.size()) : s;
}

void add_to(torch::Tensor& total, const torch::Tensor& t) {
  if (t.defined()) total = total.defined() ? total + t : t;
}

/// An inverted-dropout mask (kept entries scaled by 1/(1 - rate)).
torch::Tensor dropout_mask(const std::vector<int64_t>& shape, double rate, const torch::TensorOptions& options) {
  return torch::empty(shape, options).bernoulli_(1.0 - rate).div_(1.0 - rate);
}

}  // namespace

// ---- SimpleRNN, LSTM, GRU ------------------------------------------------------------------------------------------

RecurrentImpl::RecurrentImpl(Cell cell, const RecurrentOptions& o)
    : LayerImpl(cell_class(cell), o.layer_args()), cell_(cell), options_(o) {
  if (o.units() <= 0) throw ConfigError("units", "expected a positive integer, got " + std::to_string(o.units()));
  if (!(o.dropout() >= 0 && o.dropout() < 1))
    throw ConfigError("dropout", "expected a number in [0, 1), got " + std::to_string(o.dropout()));
  if (!(o.recurrent_dropout() >= 0 && o.recurrent_dropout() < 1))
    throw ConfigError("recurrent_dropout", "expected a number in [0, 1), got " + std::to_string(o.recurrent_dropout()));
  options_.activation(activations::canonical(o.activation(), "activation"));
  activation_ = activations::get(options_.activation());
  if (cell != Cell::SimpleRNN) {
    options_.recurrent_activation(activations::canonical(o.recurrent_activation(), "recurrent_activation"));
    recurrent_activation_ = activations::get(options_.recurrent_activation());
  }
  options_.kernel_initializer(initializers::normalize(o.kernel_initializer(), "kernel_initializer"));
  options_.recurrent_initializer(initializers::normalize(o.recurrent_initializer(), "recurrent_initializer"));
  options_.bias_initializer(initializers::normalize(o.bias_initializer(), "bias_initializer"));
  options_.kernel_regularizer(regularizers::normalize(o.kernel_regularizer(), "kernel_regularizer"));
  options_.recurrent_regularizer(regularizers::normalize(o.recurrent_regularizer(), "recurrent_regularizer"));
  options_.bias_regularizer(regularizers::normalize(o.bias_regularizer(), "bias_regularizer"));
  options_.activity_regularizer(regularizers::normalize(o.activity_regularizer(), "activity_regularizer"));
  const std::string& act = options_.activation();
  switch (cell) {
    case Cell::SimpleRNN: fusable_ = act == "tanh" || act == "relu"; break;
    case Cell::LSTM: fusable_ = act == "tanh" && options_.recurrent_activation() == "sigmoid"; break;
    case Cell::GRU:
      fusable_ = act == "tanh" && options_.recurrent_activation() == "sigmoid" && options_.reset_after();
      break;
  }
  if (args_.batch_input_shape) build(*args_.batch_input_shape);
}

Shape RecurrentImpl::compute_output_shape(const Shape& s) const {
  if (s.size() != 3)
    throw ShapeError("layer '" + layer_name() + "' (" + class_name() + ") expects inputs (batch, timesteps, features), got " +
                     shape_to_string(s));
  if (s[2] < 0)
    throw ShapeError("layer '" + layer_name() + "' (" + class_name() + ") needs a known feature dimension, got " +
                     shape_to_string(s));
  if (options_.return_sequences()) return {s[0], s[1], options_.units()};
  return {s[0], options_.units()};
}

std::vector<Shape> RecurrentImpl::compute_output_shapes(const Shape& s) const {
  std::vector<Shape> out{compute_output_shape(s)};
  if (options_.return_state())
    for (int64_t i = 0; i < num_states(); ++i) out.push_back({s[0], options_.units()});
  return out;
}

void RecurrentImpl::build_impl(const Shape& s) {
  const int64_t in = s[2], u = options_.units(), g = gates();
  // Keras' kernel is [in, g·u] and recurrent_kernel [u, g·u]: the fans are those of Keras' shapes.
  weight_ih = register_parameter("weight_ih", torch::empty({g * u, in}));
  initializers::apply(weight_ih, options_.kernel_initializer(), in, g * u);
  weight_hh = register_parameter("weight_hh", torch::empty({g * u, u}));
  initializers::apply(weight_hh, options_.recurrent_initializer(), u, g * u);
  if (!options_.use_bias()) return;
  if (cell_ == Cell::GRU && options_.reset_after()) {
    bias = register_parameter("bias_ih", torch::empty({g * u}));
    bias_hh = register_parameter("bias_hh", torch::empty({g * u}));
    initializers::apply(bias, options_.bias_initializer(), in, g * u);
    initializers::apply(bias_hh, options_.bias_initializer(), in, g * u);
    return;
  }
  bias = register_parameter("bias", torch::empty({g * u}));
  initializers::apply(bias, options_.bias_initializer(), in, g * u);
  if (cell_ == Cell::LSTM && options_.unit_forget_bias()) {
    torch::NoGradGuard no_grad;
    bias.narrow(0, u, u).fill_(1.0);
  }
}

torch::Tensor RecurrentImpl::compute_mask(const torch::Tensor&, const torch::Tensor& mask) const {
  return options_.return_sequences() ? mask : torch::Tensor();
}

std::vector<torch::Tensor> RecurrentImpl::run(const torch::Tensor& x, const torch::Tensor& mask_in,
                                              const std::vector<torch::Tensor>& initial_state) {
  TORCH_CHECK(built_, class_name(), " layer '", layer_name(), "' is used before it was built");
  TORCH_CHECK(x.dim() == 3 && x.size(2) == weight_ih.size(1) && x.size(1) > 0, "layer '", layer_name(), "' (",
              class_name(), ") expects input (batch, timesteps, ", weight_ih.size(1), "), got ", x.sizes());
  const int64_t n = x.size(0), t = x.size(1), u = options_.units();
  torch::Tensor mask = mask_in;
  if (mask.defined()) {
    TORCH_CHECK(mask.dim() == 2 && mask.size(0) == n && mask.size(1) == t, "layer '", layer_name(), "' (", class_name(),
                "): mask of shape ", mask.sizes(), " does not match input of shape ", x.sizes());
    if (mask.scalar_type() != torch::kBool) mask = mask.ne(0);
  }

  std::vector<torch::Tensor> states;
  if (!initial_state.empty()) {
    TORCH_CHECK(static_cast<int64_t>(initial_state.size()) == num_states(), "layer '", layer_name(), "' (", class_name(),
                ") takes ", num_states(), " initial states, got ", initial_state.size());
    for (const auto& s : initial_state) {
      TORCH_CHECK(s.dim() == 2 && s.size(0) == n && s.size(1) == u, "layer '", layer_name(),
                  "': initial states must be (batch, units), got ", s.sizes());
      states.push_back(s);
    }
  } else if (options_.stateful() && !states_.empty() && states_[0].size(0) == n) {
    states = states_;
  } else {
    for (int64_t i = 0; i < num_states(); ++i) states.push_back(torch::zeros({n, u}, x.options()));
  }

  const bool training = is_training();
  torch::Tensor input = x;
  if (training && options_.dropout() > 0)
    input = x * dropout_mask({n, 1, x.size(2)}, options_.dropout(), x.options());
  torch::Tensor recurrent_mask;
  if (training && options_.recurrent_dropout() > 0)
    recurrent_mask = dropout_mask({n, u}, options_.recurrent_dropout(), x.options());

  bool fused = use_fused_ && fusable_ && !recurrent_mask.defined();
  torch::Tensor lengths;
  if (fused && mask.defined()) {
    // Right-padded masks (valid steps first) run as packed sequences; anything else takes the loop.
    torch::Tensor len = mask.sum(1);
    torch::Tensor right_padded = torch::arange(t, len.options()).unsqueeze(0).lt(len.unsqueeze(1));
    if (!right_padded.equal(mask)) {
      fused = false;
    } else if (len.min().item<int64_t>() == t) {
      mask = torch::Tensor();  // nothing is masked
    } else if (len.min().item<int64_t>() == 0) {
      fused = false;
    } else {
      lengths = len;
    }
  }
  last_fused_ = fused;

  std::vector<torch::Tensor> result;
  if (fused && lengths.defined() && options_.go_backwards()) {
    // Read backwards, a right-padded sequence is left-padded: Keras' rnn first skips the padding (state kept,
    // output zeros) and then reads the valid steps last to first. The same with packed sequences: reverse each
    // sequence within its length, run it right-padded, and move its outputs to the end of the time axis.
    auto steps = torch::arange(t, lengths.options()).unsqueeze(0);
    auto last = (lengths - 1).unsqueeze(1);
    auto rev = torch::where(steps.le(last), last - steps, steps);
    auto reversed = input.gather(1, rev.unsqueeze(2).expand({n, t, input.size(2)}));
    result = run_fused(reversed, lengths, states);
    auto src = steps - (t - lengths).unsqueeze(1);
    auto idx = src.clamp_min(0).unsqueeze(2).expand({n, t, u});
    result[0] = result[0].gather(1, idx) * src.ge(0).unsqueeze(2).to(result[0].scalar_type());
  } else if (fused) {
    result = run_fused(options_.go_backwards() ? input.flip(1) : input, lengths, states);
    if (lengths.defined() && !options_.zero_output_for_mask()) {
      // Keras repeats the last valid output over the padded steps (packed sequences leave zeros there).
      auto steps = torch::arange(t, lengths.options()).unsqueeze(0);
      auto idx = torch::minimum(steps, (lengths - 1).unsqueeze(1)).unsqueeze(2).expand({n, t, u});
      result[0] = result[0].gather(1, idx);
    }
  } else {
    result = run_loop(input, mask, states, recurrent_mask);
  }

  std::vector<torch::Tensor> outputs;
  outputs.push_back(options_.return_sequences() ? result[0] : result[0].select(1, t - 1));
  if (options_.stateful()) {
    states_.clear();
    for (size_t i = 1; i < result.size(); ++i) states_.push_back(result[i].detach());
  }
  if (!options_.activity_regularizer().is_null() && training)
    activity_loss_ = regularizers::penalty(options_.activity_regularizer(), outputs[0]);
  if (options_.return_state())
    for (size_t i = 1; i < result.size(); ++i) outputs.push_back(result[i]);
  return outputs;
}

std::vector<torch::Tensor> RecurrentImpl::run_fused(const torch::Tensor& x, const torch::Tensor& lengths,
                                                    std::vector<torch::Tensor> states) {
  std::vector<torch::Tensor> params{weight_ih, weight_hh};
  const bool has_biases = options_.use_bias();
  if (has_biases) {
    params.push_back(bias);
    // Keras has one bias where torch adds two (except GRU with reset_after): the second is zero.
    params.push_back(bias_hh.defined() ? bias_hh : torch::zeros_like(bias));
  }
  const bool train = is_training();
  const bool relu = cell_ == Cell::SimpleRNN && options_.activation() == "relu";
  std::vector<torch::Tensor> hx;
  for (auto& s : states) hx.push_back(s.unsqueeze(0));

  torch::Tensor seq;
  std::vector<torch::Tensor> finals;
  if (!lengths.defined()) {
    if (cell_ == Cell::LSTM) {
      auto r = at::lstm(x, hx, params, has_biases, 1, 0.0, train, false, true);
      seq = std::get<0>(r);
      finals = {std::get<1>(r), std::get<2>(r)};
    } else {
      std::tuple<torch::Tensor, torch::Tensor> r;
      if (cell_ == Cell::GRU)
        r = at::gru(x, hx[0], params, has_biases, 1, 0.0, train, false, true);
      else if (relu)
        r = at::rnn_relu(x, hx[0], params, has_biases, 1, 0.0, train, false, true);
      else
        r = at::rnn_tanh(x, hx[0], params, has_biases, 1, 0.0, train, false, true);
      seq = std::get<0>(r);
      finals = {std::get<1>(r)};
    }
  } else {
    namespace rnn = torch::nn::utils::rnn;
    auto packed = rnn::pack_padded_sequence(x, lengths.cpu(), /*batch_first=*/true, /*enforce_sorted=*/false);
    for (auto& h : hx) h = h.index_select(1, packed.sorted_indices());
    torch::Tensor data;
    if (cell_ == Cell::LSTM) {
      auto r = at::lstm(packed.data(), packed.batch_sizes(), hx, params, has_biases, 1, 0.0, train, false);
      data = std::get<0>(r);
      finals = {std::get<1>(r), std::get<2>(r)};
    } else {
      std::tuple<torch::Tensor, torch::Tensor> r;
      if (cell_ == Cell::GRU)
        r = at::gru(packed.data(), packed.batch_sizes(), hx[0], params, has_biases, 1, 0.0, train, false);
      else if (relu)
        r = at::rnn_relu(packed.data(), packed.batch_sizes(), hx[0], params, has_biases, 1, 0.0, train, false);
      else
        r = at::rnn_tanh(packed.data(), packed.batch_sizes(), hx[0], params, has_biases, 1, 0.0, train, false);
      data = std::get<0>(r);
      finals = {std::get<1>(r)};
    }
    for (auto& h : finals) h = h.index_select(1, packed.unsorted_indices());
    rnn::PackedSequence out(data, packed.batch_sizes(), packed.sorted_indices(), packed.unsorted_indices());
    seq = std::get<0>(rnn::pad_packed_sequence(out, /*batch_first=*/true, 0.0, x.size(1)));
  }
  std::vector<torch::Tensor> result{seq};
  for (auto& h : finals) result.push_back(h.squeeze(0));
  return result;
}

std::vector<torch::Tensor> RecurrentImpl::run_loop(const torch::Tensor& x_in, const torch::Tensor& mask_in,
                                                   std::vector<torch::Tensor> states,
                                                   const torch::Tensor& recurrent_mask) {
  const bool backwards = options_.go_backwards();
  const torch::Tensor x = backwards ? x_in.flip(1) : x_in;
  const torch::Tensor mask = mask_in.defined() && backwards ? mask_in.flip(1) : mask_in;
  const int64_t t_len = x.size(1), u = options_.units();
  const bool gru_after = cell_ == Cell::GRU && options_.reset_after();
  // The input projections of all steps in one matmul (with Keras' input bias).
  const torch::Tensor xp = torch::nn::functional::linear(x, weight_ih, bias);
  torch::Tensor w_hh_t = weight_hh.t(), w_rz_t, w_n_t;
  if (cell_ == Cell::GRU && !gru_after) {
    w_rz_t = weight_hh.narrow(0, 0, 2 * u).t();
    w_n_t = weight_hh.narrow(0, 2 * u, u).t();
  }
  torch::Tensor h = states[0], c = cell_ == Cell::LSTM ? states[1] : torch::Tensor();
  torch::Tensor prev_out = torch::zeros_like(h);
  std::vector<torch::Tensor> outs;
  outs.reserve(t_len);
  for (int64_t t = 0; t < t_len; ++t) {
    const torch::Tensor xt = xp.select(1, t);
    const torch::Tensor hr = recurrent_mask.defined() ? h * recurrent_mask : h;
    torch::Tensor h_new, c_new;
    switch (cell_) {
      case Cell::SimpleRNN: h_new = activation_(xt + hr.matmul(w_hh_t)); break;
      case Cell::LSTM: {
        auto z = (xt + hr.matmul(w_hh_t)).chunk(4, 1);
        auto i = recurrent_activation_(z[0]), f = recurrent_activation_(z[1]);
        auto g = activation_(z[2]), o = recurrent_activation_(z[3]);
        c_new = f * c + i * g;
        h_new = o * activation_(c_new);
        break;
      }
      case Cell::GRU: {
        auto xs = xt.chunk(3, 1);
        torch::Tensor r, z, n;
        if (gru_after) {
          torch::Tensor hp = hr.matmul(w_hh_t);
          if (bias_hh.defined()) hp = hp + bias_hh;
          auto hs = hp.chunk(3, 1);
          r = recurrent_activation_(xs[0] + hs[0]);
          z = recurrent_activation_(xs[1] + hs[1]);
          n = activation_(xs[2] + r * hs[2]);
        } else {
          auto hs = hr.matmul(w_rz_t).chunk(2, 1);
          r = recurrent_activation_(xs[0] + hs[0]);
          z = recurrent_activation_(xs[1] + hs[1]);
          n = activation_(xs[2] + (r * hr).matmul(w_n_t));
        }
        h_new = z * hr + (1 - z) * n;
        break;
      }
    }
    torch::Tensor out = h_new;
    if (mask.defined()) {
      // A masked step keeps the states and repeats the previous output (or zeros), as Keras' rnn does.
      const torch::Tensor m = mask.select(1, t).unsqueeze(1);
      out = torch::where(m, h_new, options_.zero_output_for_mask() ? torch::zeros_like(h_new) : prev_out);
      h = torch::where(m, h_new, h);
      if (c.defined()) c = torch::where(m, c_new, c);
    } else {
      h = h_new;
      c = c_new;
    }
    outs.push_back(out);
    prev_out = out;
  }
  std::vector<torch::Tensor> result{torch::stack(outs, 1), h};
  if (cell_ == Cell::LSTM) result.push_back(c);
  return result;
}

torch::Tensor RecurrentImpl::regularization_loss() const {
  torch::Tensor total;
  if (weight_ih.defined() && weight_ih.requires_grad())
    add_to(total, regularizers::penalty(options_.kernel_regularizer(), weight_ih));
  if (weight_hh.defined() && weight_hh.requires_grad())
    add_to(total, regularizers::penalty(options_.recurrent_regularizer(), weight_hh));
  if (bias.defined() && bias.requires_grad()) add_to(total, regularizers::penalty(options_.bias_regularizer(), bias));
  if (bias_hh.defined() && bias_hh.requires_grad())
    add_to(total, regularizers::penalty(options_.bias_regularizer(), bias_hh));
  if (is_training()) add_to(total, activity_loss_);
  return total;
}

json RecurrentImpl::get_config() const {
  json c = LayerImpl::get_config();
  c["units"] = options_.units();
  c["activation"] = options_.activation();
  if (cell_ != Cell::SimpleRNN) c["recurrent_activation"] = options_.recurrent_activation();
  c["use_bias"] = options_.use_bias();
  c["kernel_initializer"] = options_.kernel_initializer();
  c["recurrent_initializer"] = options_.recurrent_initializer();
  c["bias_initializer"] = options_.bias_initializer();
  if (cell_ == Cell::LSTM) c["unit_forget_bias"] = options_.unit_forget_bias();
  c["kernel_regularizer"] = options_.kernel_regularizer();
  c["recurrent_regularizer"] = options_.recurrent_regularizer();
  c["bias_regularizer"] = options_.bias_regularizer();
  c["activity_regularizer"] = options_.activity_regularizer();
  c["kernel_constraint"] = nullptr;
  c["recurrent_constraint"] = nullptr;
  c["bias_constraint"] = nullptr;
  c["dropout"] = options_.dropout();
  c["recurrent_dropout"] = options_.recurrent_dropout();
  c["seed"] = options_.seed() >= 0 ? json(options_.seed()) : json(nullptr);
  c["return_sequences"] = options_.return_sequences();
  c["return_state"] = options_.return_state();
  c["go_backwards"] = options_.go_backwards();
  c["stateful"] = options_.stateful();
  c["unroll"] = options_.unroll();
  if (cell_ == Cell::GRU) c["reset_after"] = options_.reset_after();
  if (options_.zero_output_for_mask()) c["zero_output_for_mask"] = true;
  return c;
}

LayerArgs RecurrentImpl::read_common(ConfigReader& r, RecurrentOptions& o, bool has_recurrent_activation) {
  LayerArgs a = detail::read_layer_args(r);
  o.activation(activations::canonical(r.get<std::string>("activation", "tanh"), r.path_of("activation")));
  if (has_recurrent_activation)
    o.recurrent_activation(
        activations::canonical(r.get<std::string>("recurrent_activation", "sigmoid"), r.path_of("recurrent_activation")));
  o.use_bias(r.get<bool>("use_bias", true));
  o.kernel_initializer(initializers::normalize(r.get<json>("kernel_initializer", "glorot_uniform"),
                                               r.path_of("kernel_initializer")));
  o.recurrent_initializer(initializers::normalize(r.get<json>("recurrent_initializer", "orthogonal"),
                                                  r.path_of("recurrent_initializer")));
  o.bias_initializer(initializers::normalize(r.get<json>("bias_initializer", "zeros"), r.path_of("bias_initializer")));
  o.kernel_regularizer(regularizers::normalize(r.get<json>("kernel_regularizer", nullptr), r.path_of("kernel_regularizer")));
  o.recurrent_regularizer(
      regularizers::normalize(r.get<json>("recurrent_regularizer", nullptr), r.path_of("recurrent_regularizer")));
  o.bias_regularizer(regularizers::normalize(r.get<json>("bias_regularizer", nullptr), r.path_of("bias_regularizer")));
  o.activity_regularizer(
      regularizers::normalize(r.get<json>("activity_regularizer", nullptr), r.path_of("activity_regularizer")));
  for (const char* k : {"kernel_constraint", "recurrent_constraint", "bias_constraint"}) r.require_null(k);
  o.dropout(r.fraction("dropout", 0.0));
  o.recurrent_dropout(r.fraction("recurrent_dropout", 0.0));
  if (r.has("seed")) {
    int64_t seed = r.get<int64_t>("seed");
    if (seed < 0) throw ConfigError(r.path_of("seed"), "expected a non-negative integer or null");
    o.seed(seed);
  }
  o.return_sequences(r.get<bool>("return_sequences", false));
  o.return_state(r.get<bool>("return_state", false));
  o.go_backwards(r.get<bool>("go_backwards", false));
  o.stateful(r.get<bool>("stateful", false));
  o.unroll(r.get<bool>("unroll", false));
  o.zero_output_for_mask(r.get<bool>("zero_output_for_mask", false));
  if (r.get<bool>("time_major", false))
    throw ConfigError(r.path_of("time_major"), "time_major inputs are not supported (only false is accepted)");
  // Keras 2's implementation (1 or 2) and Keras 3's use_cudnn choose kernels, not results.
  r.ignore({"implementation", "use_cudnn"});
  return a;
}

void RecurrentImpl::finish_from_config(const LayerArgs& a) {
  // Declared but not built here: Keras 2 copied batch_input_shape onto stacked recurrent layers, where Keras
  // ignores it; the model builds the layer from the shape it really gets (a first layer from this one).
  if (a.batch_input_shape) args_.batch_input_shape = a.batch_input_shape;
}

std::shared_ptr<SimpleRNNImpl> SimpleRNNImpl::from_config(ConfigReader& r) {
  SimpleRNNOptions o(r.positive_int("units"));
  LayerArgs a = read_common(r, o, false);
  o.name(a.name).trainable(a.trainable);
  auto layer = std::make_shared<SimpleRNNImpl>(o);
  layer->finish_from_config(a);
  return layer;
}

std::shared_ptr<LSTMImpl> LSTMImpl::from_config(ConfigReader& r) {
  LSTMOptions o(r.positive_int("units"));
  LayerArgs a = read_common(r, o, true);
  o.unit_forget_bias(r.get<bool>("unit_forget_bias", true));
  o.name(a.name).trainable(a.trainable);
  auto layer = std::make_shared<LSTMImpl>(o);
  layer->finish_from_config(a);
  return layer;
}

std::shared_ptr<GRUImpl> GRUImpl::from_config(ConfigReader& r) {
  GRUOptions o(r.positive_int("units"));
  LayerArgs a = read_common(r, o, true);
  o.reset_after(r.get<bool>("reset_after", true));
  o.name(a.name).trainable(a.trainable);
  auto layer = std::make_shared<GRUImpl>(o);
  layer->finish_from_config(a);
  return layer;
}

// ---- Bidirectional ------------------------------------------------------------------------------------------------

namespace {
std::shared_ptr<RecurrentImpl> as_recurrent(const LayerPtr& layer, const std::string& path) {
  auto rnn = std::dynamic_pointer_cast<RecurrentImpl>(layer);
  if (!rnn)
    throw ConfigError(path, "Bidirectional wraps a recurrent layer (SimpleRNN, LSTM, GRU), got " +
                                (layer ? "'" + layer->class_name() + "'" : std::string("nothing")));
  return rnn;
}

json inner_config(const LayerImpl& layer) {
  json j = to_json(layer);
  j["config"].erase("batch_input_shape");
  return j;
}
}  // namespace

BidirectionalImpl::BidirectionalImpl(const BidirectionalOptions& o)
    : LayerImpl("Bidirectional", o.layer_args()), merge_mode_(o.merge_mode()) {
  static const std::vector<std::string> modes = {"concat", "sum", "mul", "ave", "none"};
  if (std::find(modes.begin(), modes.end(), merge_mode_) == modes.end())
    throw ConfigError("merge_mode", "expected concat, sum, mul, ave or none (null), got \"" + merge_mode_ + "\"");
  forward_ = as_recurrent(o.layer(), "layer");
  const std::string base = remove_prefix(
      forward_->layer_name().empty() ? cell_default_name(forward_->cell()) : forward_->layer_name(), "forward_");
  forward_->set_layer_name("forward_" + base);
  if (o.backward_layer()) {
    backward_ = as_recurrent(o.backward_layer(), "backward_layer");
    custom_backward_ = true;
    if (backward_->options().go_backwards() == forward_->options().go_backwards())
      throw ConfigError("backward_layer", "go_backwards of backward_layer must differ from that of layer");
    if (backward_->options().return_sequences() != forward_->options().return_sequences() ||
        backward_->options().return_state() != forward_->options().return_state())
      throw ConfigError("backward_layer", "return_sequences and return_state of backward_layer must equal those of layer");
    const std::string bname = backward_->layer_name().empty() ? cell_default_name(backward_->cell()) : backward_->layer_name();
    backward_->set_layer_name("backward_" + remove_prefix(bname, "backward_"));
  } else {
    // A fresh layer of the same configuration that reads the sequence the other way.
    json spec = inner_config(*forward_);
    spec["config"]["go_backwards"] = !forward_->options().go_backwards();
    spec["config"]["name"] = "backward_" + base;
    backward_ = as_recurrent(from_json(spec, "layer"), "layer");
  }
  // Keras sets zero_output_for_mask on both layers when they return sequences.
  forward_->set_zero_output_for_mask(forward_->options().return_sequences());
  backward_->set_zero_output_for_mask(backward_->options().return_sequences());
  register_module("forward_layer", forward_);
  register_module("backward_layer", backward_);
  if (args_.batch_input_shape) build(*args_.batch_input_shape);
}

int64_t BidirectionalImpl::num_outputs() const {
  int64_t n = merge_mode_ == "none" ? 2 : 1;
  if (forward_->options().return_state()) n += forward_->num_states() + backward_->num_states();
  return n;
}

Shape BidirectionalImpl::compute_output_shape(const Shape& s) const {
  Shape out = forward_->compute_output_shape(s);
  if (merge_mode_ == "concat") out.back() *= 2;
  return out;
}

std::vector<Shape> BidirectionalImpl::compute_output_shapes(const Shape& s) const {
  std::vector<Shape> out{compute_output_shape(s)};
  if (merge_mode_ == "none") out.push_back(out.front());
  auto f = forward_->compute_output_shapes(s), b = backward_->compute_output_shapes(s);
  out.insert(out.end(), f.begin() + 1, f.end());
  out.insert(out.end(), b.begin() + 1, b.end());
  return out;
}

void BidirectionalImpl::build_impl(const Shape& s) {
  forward_->build(s);
  backward_->build(s);
}

std::vector<torch::Tensor> BidirectionalImpl::forward_all(const torch::Tensor& x, const torch::Tensor& mask) {
  auto f = forward_->forward_all(x, mask);
  auto b = backward_->forward_all(x, mask);
  torch::Tensor yf = f[0], yb = b[0];
  // The backward layer returns its sequence in its own (reversed) order.
  if (backward_->options().return_sequences()) yb = yb.flip(1);
  std::vector<torch::Tensor> outs;
  if (merge_mode_ == "concat") {
    outs.push_back(torch::cat({yf, yb}, -1));
  } else if (merge_mode_ == "sum") {
    outs.push_back(yf + yb);
  } else if (merge_mode_ == "mul") {
    outs.push_back(yf * yb);
  } else if (merge_mode_ == "ave") {
    outs.push_back((yf + yb) / 2);
  } else {
    outs.push_back(yf);
    outs.push_back(yb);
  }
  if (forward_->options().return_state()) {
    outs.insert(outs.end(), f.begin() + 1, f.end());
    outs.insert(outs.end(), b.begin() + 1, b.end());
  }
  return outs;
}

torch::Tensor BidirectionalImpl::compute_mask(const torch::Tensor&, const torch::Tensor& mask) const {
  return forward_->options().return_sequences() ? mask : torch::Tensor();
}

torch::Tensor BidirectionalImpl::regularization_loss() const {
  torch::Tensor total;
  add_to(total, forward_->regularization_loss());
  add_to(total, backward_->regularization_loss());
  return total;
}

json BidirectionalImpl::get_config() const {
  json c = LayerImpl::get_config();
  c["merge_mode"] = merge_mode_ == "none" ? json(nullptr) : json(merge_mode_);
  c["layer"] = inner_config(*forward_);
  c["backward_layer"] = inner_config(*backward_);
  return c;
}

std::shared_ptr<BidirectionalImpl> BidirectionalImpl::from_config(ConfigReader& r) {
  LayerArgs a = detail::read_layer_args(r);
  LayerPtr inner = from_json(r.raw("layer"), r.path_of("layer"));
  BidirectionalOptions o(inner);
  // Absent: Keras' default "concat"; an explicit null is Keras' None (the two outputs as a list).
  const bool given = r.object().contains("merge_mode");
  const json& mode = r.raw_or_null("merge_mode");
  if (!given) {
    o.merge_mode("concat");
  } else if (mode.is_null()) {
    o.merge_mode("none");
  } else if (mode.is_string()) {
    o.merge_mode(mode.get<std::string>());
  } else {
    throw ConfigError(r.path_of("merge_mode"), "expected concat, sum, mul, ave or null, got " + describe(mode));
  }
  if (r.has("backward_layer")) o.backward_layer(from_json(r.raw("backward_layer"), r.path_of("backward_layer")));
  o.name(a.name).trainable(a.trainable);
  std::shared_ptr<BidirectionalImpl> layer;
  try {
    layer = std::make_shared<BidirectionalImpl>(o);
  } catch (const ConfigError& e) {
    throw ConfigError(e.path().empty() ? r.path() : r.path_of(e.path()), e.message());
  }
  if (a.batch_input_shape) {
    layer->args_.batch_input_shape = a.batch_input_shape;
    layer->build(*a.batch_input_shape);
  }
  return layer;
}

// ---- TimeDistributed ------------------------------------------------------------------------------------------

TimeDistributedImpl::TimeDistributedImpl(const TimeDistributedOptions& o)
    : LayerImpl("TimeDistributed", o.layer_args()), layer_(o.layer()) {
  if (!layer_) throw ConfigError("layer", "TimeDistributed needs a layer");
  if (layer_->layer_name().empty()) layer_->set_layer_name("layer");
  register_module("layer", layer_);
  if (args_.batch_input_shape) build(*args_.batch_input_shape);
}

namespace {
/// The shape of one step: (N, T, d...) -> (-1, d...).
Shape step_shape(const Shape& s) {
  Shape inner{-1};
  inner.insert(inner.end(), s.begin() + 2, s.end());
  return inner;
}
}  // namespace

Shape TimeDistributedImpl::compute_output_shape(const Shape& s) const {
  detail::expect_min_rank(*this, s, 3);
  Shape inner = layer_->compute_output_shape(step_shape(s));
  Shape out{s[0], s[1]};
  out.insert(out.end(), inner.begin() + 1, inner.end());
  return out;
}

void TimeDistributedImpl::build_impl(const Shape& s) { layer_->build(step_shape(s)); }

namespace {
torch::Tensor unfold_steps(const torch::Tensor& y, int64_t n, int64_t t) {
  std::vector<int64_t> shape{n, t};
  shape.insert(shape.end(), y.sizes().begin() + 1, y.sizes().end());
  return y.reshape(shape);
}
}  // namespace

torch::Tensor TimeDistributedImpl::forward(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() >= 3, "layer '", layer_name(), "' (TimeDistributed) expects (batch, timesteps, ...), got ", x.sizes());
  return unfold_steps(layer_->forward(x.flatten(0, 1)), x.size(0), x.size(1));
}

torch::Tensor TimeDistributedImpl::forward_pre_activation(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() >= 3, "layer '", layer_name(), "' (TimeDistributed) expects (batch, timesteps, ...), got ", x.sizes());
  return unfold_steps(layer_->forward_pre_activation(x.flatten(0, 1)), x.size(0), x.size(1));
}

json TimeDistributedImpl::get_config() const {
  json c = LayerImpl::get_config();
  c["layer"] = inner_config(*layer_);
  return c;
}

std::shared_ptr<TimeDistributedImpl> TimeDistributedImpl::from_config(ConfigReader& r) {
  LayerArgs a = detail::read_layer_args(r);
  TimeDistributedOptions o(from_json(r.raw("layer"), r.path_of("layer")));
  o.name(a.name).trainable(a.trainable);
  auto layer = std::make_shared<TimeDistributedImpl>(o);
  if (a.batch_input_shape) {
    layer->args_.batch_input_shape = a.batch_input_shape;
    layer->build(*a.batch_input_shape);
  }
  return layer;
}

}  // namespace lighter::layers
