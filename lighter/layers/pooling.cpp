#include "lighter/layers/pooling.h"

#include <limits>

#include <c10/util/SmallVector.h>
#include <torch/torch.h>

#include "lighter/core/error.h"
#include "lighter/layers/spatial.h"

namespace lighter::layers {

namespace {

// Where a checked value came from: its config path when read from JSON, the bare argument name from C++.
struct Paths {
  const ConfigReader* reader = nullptr;
  std::string operator()(const std::string& key) const { return reader ? reader->path_of(key) : key; }
};

template <size_t D>
PoolingOptions<D> checked(PoolingOptions<D> o, const Paths& p) {
  o.pool_size(detail::expand_tuple(o.pool_size(), D, p("pool_size")));
  // Keras' strides=None means the pool size; get_config then writes the resolved strides, as Keras does.
  o.strides(o.strides().empty() ? o.pool_size() : detail::expand_tuple(o.strides(), D, p("strides")));
  o.padding(detail::check_padding(o.padding(), p("padding"), /*allow_causal=*/false));
  o.data_format(detail::check_data_format(o.data_format(), p("data_format")));
  return o;
}

template <size_t D, PoolKind K>
std::string pooling_name() {
  return std::string(K == PoolKind::Max ? "MaxPooling" : "AveragePooling") + std::to_string(D) + "D";
}

template <size_t D, PoolKind K>
torch::Tensor pool(const torch::Tensor& x, at::IntArrayRef kernel, at::IntArrayRef stride, at::IntArrayRef padding,
                   bool ceil_mode) {
  const int64_t one = 1;  // dilation, expanded by ATen
  if constexpr (K == PoolKind::Max) {
    if constexpr (D == 1) {
      return at::max_pool1d(x, kernel, stride, padding, one, ceil_mode);
    } else if constexpr (D == 2) {
      return at::max_pool2d(x, kernel, stride, padding, one, ceil_mode);
    } else {
      return at::max_pool3d(x, kernel, stride, padding, one, ceil_mode);
    }
  } else {
    // count_include_pad=false: Keras' average over the cells inside the input.
    if constexpr (D == 1) {
      return at::avg_pool1d(x, kernel, stride, padding, ceil_mode, false);
    } else if constexpr (D == 2) {
      return at::avg_pool2d(x, kernel, stride, padding, ceil_mode, false, c10::nullopt);
    } else {
      return at::avg_pool3d(x, kernel, stride, padding, ceil_mode, false, c10::nullopt);
    }
  }
}

}  // namespace

// ---- MaxPooling / AveragePooling ---------------------------------------------------------------------------------

template <size_t D, PoolKind K>
PoolingImpl<D, K>::PoolingImpl(const PoolingOptions<D>& o)
    : LayerImpl(pooling_name<D, K>(), o.layer_args()), options_(checked(o, Paths{})) {
  same_ = options_.padding() == "same";
  channels_last_ = options_.data_format() == "channels_last";
  if (args_.batch_input_shape) build(*args_.batch_input_shape);
}

template <size_t D, PoolKind K>
std::string PoolingImpl<D, K>::describe() const {
  return "layer '" + layer_name() + "' (" + class_name() + ")";
}

template <size_t D, PoolKind K>
Shape PoolingImpl<D, K>::compute_output_shape(const Shape& s) const {
  if (s.size() != D + 2)
    throw ShapeError(describe() + " expects inputs of rank " + std::to_string(D + 2) + ", got shape " +
                     shape_to_string(s));
  const size_t first = channels_last_ ? 1 : 2;
  Shape out = s;
  for (size_t i = 0; i < D; ++i) {
    int64_t in = s[first + i];
    int64_t len = detail::conv_output_length(in, options_.pool_size()[i], options_.padding(), options_.strides()[i]);
    if (in >= 0 && len <= 0)
      throw ShapeError(describe() + ": input shape " + shape_to_string(s) + " is smaller than pool_size " +
                       detail::tuple_to_string(options_.pool_size()) + " and padding 'valid' allows");
    out[first + i] = len;
  }
  return out;
}

template <size_t D, PoolKind K>
torch::Tensor PoolingImpl<D, K>::forward(const torch::Tensor& x) {
  if (x.dim() != static_cast<int64_t>(D) + 2)
    throw ShapeError(describe() + " expects inputs of rank " + std::to_string(D + 2) + ", got shape " +
                     shape_to_string(x.sizes().vec()));
  const auto xf = channels_last_ ? detail::to_channels_first(x) : x;
  const auto& k = options_.pool_size();
  const auto& s = options_.strides();
  c10::SmallVector<int64_t, 3> padding(D, 0);
  c10::SmallVector<bool, 3> drop_first(D, false);
  bool any_drop = false;
  for (size_t i = 0; i < D; ++i) {
    const int64_t in = xf.size(2 + i);
    if (!same_) {
      if (in < k[i])
        throw ShapeError(describe() + ": input shape " + shape_to_string(x.sizes().vec()) +
                         " is smaller than pool_size " + detail::tuple_to_string(k) + " and padding 'valid' allows");
      continue;
    }
    const auto p = detail::same_padding(in, k[i], s[i]);
    if (p.after - p.before < s[i]) {
      padding[i] = p.before;  // with ceil_mode, the window past the end is clipped: Keras' extra cell at the end
    } else {
      // Stride 1 and an even pool: one more cell at the start (after = pool / 2 <= pool / 2, as torch requires),
      // which shifts every window by one; the first output is the one Keras does not have.
      padding[i] = p.after;
      drop_first[i] = any_drop = true;
    }
  }
  auto y = pool<D, K>(xf, k, s, padding, /*ceil_mode=*/same_);
  if (any_drop)
    for (size_t i = 0; i < D; ++i)
      if (drop_first[i]) y = y.narrow(2 + i, 1, xf.size(2 + i));
  return channels_last_ ? detail::to_channels_last(y) : y;
}

template <size_t D, PoolKind K>
json PoolingImpl<D, K>::get_config() const {
  json c = LayerImpl::get_config();
  c["pool_size"] = options_.pool_size();
  c["padding"] = options_.padding();
  c["strides"] = options_.strides();
  c["data_format"] = options_.data_format();
  return c;
}

template <size_t D, PoolKind K>
std::shared_ptr<PoolingImpl<D, K>> PoolingImpl<D, K>::from_config(ConfigReader& r) {
  LayerArgs a = detail::read_layer_args(r);
  PoolingOptions<D> o(detail::read_int_tuple(r, "pool_size", D, std::vector<int64_t>(D, 2)));
  o.strides(detail::read_int_tuple(r, "strides", D, std::vector<int64_t>{}));
  o.padding(r.get<std::string>("padding", "valid"));
  o.data_format(detail::read_data_format(r));
  o = checked(o, Paths{&r});
  o.name(a.name).trainable(a.trainable);
  auto layer = std::make_shared<PoolingImpl<D, K>>(o);
  if (a.batch_input_shape) {
    layer->args_.batch_input_shape = a.batch_input_shape;
    layer->build(*a.batch_input_shape);
  }
  return layer;
}

// ---- GlobalMaxPooling / GlobalAveragePooling ---------------------------------------------------------------------

template <size_t D, PoolKind K>
GlobalPoolingImpl<D, K>::GlobalPoolingImpl(const GlobalPoolingOptions& o)
    : LayerImpl("Global" + pooling_name<D, K>(), o.layer_args()), options_(o) {
  options_.data_format(detail::check_data_format(o.data_format(), "data_format"));
  const int64_t first = options_.data_format() == "channels_last" ? 1 : 2;
  for (int64_t i = 0; i < static_cast<int64_t>(D); ++i) axes_.push_back(first + i);
  if (args_.batch_input_shape) build(*args_.batch_input_shape);
}

template <size_t D, PoolKind K>
Shape GlobalPoolingImpl<D, K>::compute_output_shape(const Shape& s) const {
  if (s.size() != D + 2)
    throw ShapeError("layer '" + layer_name() + "' (" + class_name() + ") expects inputs of rank " +
                     std::to_string(D + 2) + ", got shape " + shape_to_string(s));
  if (options_.keepdims()) {
    Shape out = s;
    for (auto a : axes_) out[a] = 1;
    return out;
  }
  return {s[0], options_.data_format() == "channels_last" ? s.back() : s[1]};
}

template <size_t D, PoolKind K>
torch::Tensor GlobalPoolingImpl<D, K>::forward(const torch::Tensor& x) {
  if (x.dim() != static_cast<int64_t>(D) + 2)
    throw ShapeError("layer '" + layer_name() + "' (" + class_name() + ") expects inputs of rank " +
                     std::to_string(D + 2) + ", got shape " + shape_to_string(x.sizes().vec()));
  if constexpr (K == PoolKind::Max) {
    return x.amax(axes_, options_.keepdims());
  } else {
    return x.mean(axes_, options_.keepdims());
  }
}

template <size_t D, PoolKind K>
torch::Tensor GlobalPoolingImpl<D, K>::forward_masked(const torch::Tensor& x, const torch::Tensor& mask) {
  if (!mask.defined() || D != 1) return forward(x);
  const int64_t t_axis = axes_[0];
  TORCH_CHECK(x.dim() == 3 && mask.dim() == 2 && mask.size(0) == x.size(0) && mask.size(1) == x.size(t_axis),
              "layer '", layer_name(), "' (", class_name(), "): mask of shape ", mask.sizes(),
              " does not match input of shape ", x.sizes());
  // (N, T) -> (N, T, 1) or (N, 1, T), broadcast over the channels.
  torch::Tensor m = t_axis == 1 ? mask.unsqueeze(2) : mask.unsqueeze(1);
  if constexpr (K == PoolKind::Max) {
    return x.masked_fill(m.logical_not(), -std::numeric_limits<double>::infinity()).amax(axes_, options_.keepdims());
  } else {
    torch::Tensor mf = m.to(x.scalar_type());
    return (x * mf).sum(axes_, options_.keepdims()) / mf.sum(axes_, options_.keepdims());
  }
}

template <size_t D, PoolKind K>
json GlobalPoolingImpl<D, K>::get_config() const {
  json c = LayerImpl::get_config();
  c["data_format"] = options_.data_format();
  c["keepdims"] = options_.keepdims();
  return c;
}

template <size_t D, PoolKind K>
std::shared_ptr<GlobalPoolingImpl<D, K>> GlobalPoolingImpl<D, K>::from_config(ConfigReader& r) {
  LayerArgs a = detail::read_layer_args(r);
  GlobalPoolingOptions o;
  o.data_format(detail::read_data_format(r));
  o.keepdims(r.get<bool>("keepdims", false));
  o.name(a.name).trainable(a.trainable);
  auto layer = std::make_shared<GlobalPoolingImpl<D, K>>(o);
  if (a.batch_input_shape) {
    layer->args_.batch_input_shape = a.batch_input_shape;
    layer->build(*a.batch_input_shape);
  }
  return layer;
}

template class PoolingImpl<1, PoolKind::Max>;
template class PoolingImpl<2, PoolKind::Max>;
template class PoolingImpl<3, PoolKind::Max>;
template class PoolingImpl<1, PoolKind::Average>;
template class PoolingImpl<2, PoolKind::Average>;
template class PoolingImpl<3, PoolKind::Average>;
template class GlobalPoolingImpl<1, PoolKind::Max>;
template class GlobalPoolingImpl<2, PoolKind::Max>;
template class GlobalPoolingImpl<3, PoolKind::Max>;
template class GlobalPoolingImpl<1, PoolKind::Average>;
template class GlobalPoolingImpl<2, PoolKind::Average>;
template class GlobalPoolingImpl<3, PoolKind::Average>;

}  // namespace lighter::layers
