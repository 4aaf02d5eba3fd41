#include "lighter/layers/merge.h"

#include <torch/torch.h>

#include "lighter/core/error.h"

namespace lighter::layers {

namespace {

std::string list_of(const std::vector<Shape>& shapes) {
  std::string s;
  for (const auto& sh : shapes) s += (s.empty() ? "" : ", ") + shape_to_string(sh);
  return "[" + s + "]";
}

std::string who(const LayerImpl& l) { return "layer '" + l.layer_name() + "' (" + l.class_name() + ")"; }

void check_count(const LayerImpl& l, size_t n, size_t min_inputs, size_t max_inputs) {
  if (n < min_inputs || (max_inputs && n > max_inputs)) {
    std::string expected = min_inputs == max_inputs ? "exactly " + std::to_string(min_inputs)
                                                    : "at least " + std::to_string(min_inputs);
    throw ShapeError(who(l) + " must be called on a list of " + expected + " tensors, got " + std::to_string(n));
  }
}

torch::Tensor single_input_error(const LayerImpl& l) {
  throw ShapeError(who(l) + " must be called on a list of tensors (it merges several inputs), got one tensor");
}

// The shapes of run-time inputs, for the same checks compute_output_shape_list makes while building.
std::vector<Shape> shapes_of(const std::vector<torch::Tensor>& xs) {
  std::vector<Shape> shapes;
  shapes.reserve(xs.size());
  for (const auto& x : xs) shapes.emplace_back(x.sizes().begin(), x.sizes().end());
  return shapes;
}

// Masks made to one bool (N, T) form; undefined ones stay undefined.
std::vector<torch::Tensor> bool_masks(const std::vector<torch::Tensor>& masks) {
  std::vector<torch::Tensor> out;
  for (const auto& m : masks) out.push_back(m.defined() ? m.to(torch::kBool) : m);
  return out;
}

}  // namespace

// ---- Element-wise merges -----------------------------------------------------------------------------------

namespace {
const char* op_name(MergeImpl::Op op) {
  switch (op) {
    case MergeImpl::Op::Add: return "Add";
    case MergeImpl::Op::Subtract: return "Subtract";
    case MergeImpl::Op::Multiply: return "Multiply";
    case MergeImpl::Op::Average: return "Average";
    case MergeImpl::Op::Maximum: return "Maximum";
    case MergeImpl::Op::Minimum: return "Minimum";
  }
  return "Merge";
}
}  // namespace

MergeImpl::MergeImpl(Op op, const MergeOptions& options) : LayerImpl(op_name(op), options.layer_args()), op_(op) {}

torch::Tensor MergeImpl::forward(const torch::Tensor&) { return single_input_error(*this); }

Shape MergeImpl::compute_output_shape_list(const std::vector<Shape>& shapes) const {
  if (op_ == Op::Subtract) check_count(*this, shapes.size(), 2, 2);
  else check_count(*this, shapes.size(), 1, 0);
  Shape out = shapes.front();
  for (size_t k = 1; k < shapes.size(); ++k) {
    const Shape& s = shapes[k];
    if (s.size() != out.size())
      throw ShapeError(who(*this) + ": inputs must have the same rank, got shapes " + list_of(shapes));
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == out[i] || s[i] == 1) continue;
      if (out[i] == 1) out[i] = s[i];
      else if (out[i] < 0 || s[i] < 0) out[i] = out[i] < 0 ? s[i] : out[i];
      else
        throw ShapeError(who(*this) + ": inputs must have equal shapes (or 1 to broadcast), got shapes " + list_of(shapes));
    }
  }
  return out;
}

torch::Tensor MergeImpl::forward_list(const std::vector<torch::Tensor>& xs, const std::vector<torch::Tensor>&) {
  compute_output_shape_list(shapes_of(xs));  // the same checks at run time, with the real sizes
  torch::Tensor y = xs.front();
  for (size_t k = 1; k < xs.size(); ++k) {
    switch (op_) {
      case Op::Add:
      case Op::Average: y = y + xs[k]; break;
      case Op::Subtract: y = y - xs[k]; break;
      case Op::Multiply: y = y * xs[k]; break;
      case Op::Maximum: y = torch::maximum(y, xs[k]); break;
      case Op::Minimum: y = torch::minimum(y, xs[k]); break;
    }
  }
  if (op_ == Op::Average) y = y / static_cast<double>(xs.size());
  return y;
}

torch::Tensor MergeImpl::compute_mask_list(const std::vector<torch::Tensor>&, const std::vector<torch::Tensor>& masks) const {
  torch::Tensor out;
  for (const auto& m : bool_masks(masks))
    if (m.defined()) out = out.defined() ? out.logical_and(m) : m;
  return out;
}

std::shared_ptr<MergeImpl> merge_from_config(MergeImpl::Op op, ConfigReader& r) {
  LayerArgs a = detail::read_layer_args(r);
  MergeOptions o;
  o.name(a.name).trainable(a.trainable);
  return std::make_shared<MergeImpl>(op, o);
}

// ---- Concatenate --------------------------------------------------------------------------------------------

ConcatenateImpl::ConcatenateImpl(const ConcatenateOptions& o) : LayerImpl("Concatenate", o.layer_args()), options_(o) {}

torch::Tensor ConcatenateImpl::forward(const torch::Tensor&) { return single_input_error(*this); }

int64_t ConcatenateImpl::axis_for(size_t rank) const {
  int64_t axis = options_.axis() < 0 ? options_.axis() + static_cast<int64_t>(rank) : options_.axis();
  if (axis <= 0 || axis >= static_cast<int64_t>(rank))
    throw ShapeError(who(*this) + ": axis " + std::to_string(options_.axis()) + " is out of range for inputs of rank " +
                     std::to_string(rank) + " (the batch axis cannot be joined)");
  return axis;
}

Shape ConcatenateImpl::compute_output_shape_list(const std::vector<Shape>& shapes) const {
  check_count(*this, shapes.size(), 1, 0);
  const size_t rank = shapes.front().size();
  for (const auto& s : shapes)
    if (s.size() != rank) throw ShapeError(who(*this) + ": inputs must have the same rank, got shapes " + list_of(shapes));
  const int64_t axis = axis_for(rank);
  Shape out = shapes.front();
  for (size_t k = 1; k < shapes.size(); ++k) {
    for (size_t i = 0; i < rank; ++i) {
      const int64_t a = out[i], b = shapes[k][i];
      if (static_cast<int64_t>(i) == axis) {
        out[i] = (a < 0 || b < 0) ? -1 : a + b;
      } else if (a >= 0 && b >= 0 && a != b) {
        throw ShapeError(who(*this) + ": inputs must match in every axis but the concatenation axis " +
                         std::to_string(axis) + ", got shapes " + list_of(shapes));
      } else if (a < 0) {
        out[i] = b;
      }
    }
  }
  return out;
}

torch::Tensor ConcatenateImpl::forward_list(const std::vector<torch::Tensor>& xs, const std::vector<torch::Tensor>&) {
  compute_output_shape_list(shapes_of(xs));
  return torch::cat(xs, axis_for(xs.front().dim()));
}

torch::Tensor ConcatenateImpl::compute_mask_list(const std::vector<torch::Tensor>& xs,
                                                 const std::vector<torch::Tensor>& raw_masks) const {
  auto masks = bool_masks(raw_masks);
  bool any = false;
  for (const auto& m : masks) any = any || m.defined();
  if (!any || xs.front().dim() < 3) return {};
  const int64_t axis = axis_for(xs.front().dim());
  if (axis == 1) {
    // Joined along time: the masks join too (an input without one is valid everywhere).
    std::vector<torch::Tensor> parts;
    for (size_t k = 0; k < xs.size(); ++k)
      parts.push_back(k < masks.size() && masks[k].defined()
                          ? masks[k]
                          : torch::ones({xs[k].size(0), xs[k].size(1)}, xs[k].options().dtype(torch::kBool)));
    return torch::cat(parts, 1);
  }
  // Keras 3 takes any() over the joined features: a step is valid where any input says so.
  torch::Tensor out;
  for (size_t k = 0; k < xs.size(); ++k) {
    torch::Tensor m = k < masks.size() ? masks[k] : torch::Tensor();
    if (!m.defined()) return torch::ones({xs[k].size(0), xs[k].size(1)}, xs[k].options().dtype(torch::kBool));
    out = out.defined() ? out.logical_or(m) : m;
  }
  return out;
}

nlohmann::json ConcatenateImpl::get_config() const {
  auto c = LayerImpl::get_config();
  c["axis"] = options_.axis();
  return c;
}

std::shared_ptr<ConcatenateImpl> ConcatenateImpl::from_config(ConfigReader& r) {
  LayerArgs a = detail::read_layer_args(r);
  ConcatenateOptions o;
  o.axis(r.get<int64_t>("axis", -1));
  if (o.axis() == 0) throw ConfigError(r.path_of("axis"), "the batch axis 0 cannot be concatenated");
  o.name(a.name).trainable(a.trainable);
  return std::make_shared<ConcatenateImpl>(o);
}

// ---- Dot ----------------------------------------------------------------------------------------------------

DotImpl::DotImpl(const DotOptions& o) : LayerImpl("Dot", o.layer_args()), options_(o) {
  if (o.axes().size() != 2) throw ConfigError("axes", "expected one axis or two (one per input)");
  for (auto a : o.axes())
    if (a == 0) throw ConfigError("axes", "the batch axis 0 cannot be summed over");
}

torch::Tensor DotImpl::forward(const torch::Tensor&) { return single_input_error(*this); }

std::pair<int64_t, int64_t> DotImpl::axes_for(size_t rank_a, size_t rank_b) const {
  auto norm = [&](int64_t a, size_t rank) {
    int64_t axis = a < 0 ? a + static_cast<int64_t>(rank) : a;
    if (axis <= 0 || axis >= static_cast<int64_t>(rank))
      throw ShapeError(who(*this) + ": axis " + std::to_string(a) + " is out of range for an input of rank " +
                       std::to_string(rank));
    return axis;
  };
  return {norm(options_.axes()[0], rank_a), norm(options_.axes()[1], rank_b)};
}

Shape DotImpl::compute_output_shape_list(const std::vector<Shape>& shapes) const {
  check_count(*this, shapes.size(), 2, 2);
  const Shape &a = shapes[0], &b = shapes[1];
  if (a.size() < 2 || b.size() < 2)
    throw ShapeError(who(*this) + ": inputs need a batch axis and at least one more, got shapes " + list_of(shapes));
  auto [ax, bx] = axes_for(a.size(), b.size());
  if (a[ax] >= 0 && b[bx] >= 0 && a[ax] != b[bx])
    throw ShapeError(who(*this) + ": the summed axes differ in size (" + std::to_string(a[ax]) + " vs " +
                     std::to_string(b[bx]) + "), got shapes " + list_of(shapes));
  if (a[0] >= 0 && b[0] >= 0 && a[0] != b[0])
    throw ShapeError(who(*this) + ": inputs have different batch sizes, got shapes " + list_of(shapes));
  Shape out{a[0] >= 0 ? a[0] : b[0]};
  for (size_t i = 1; i < a.size(); ++i)
    if (static_cast<int64_t>(i) != ax) out.push_back(a[i]);
  for (size_t i = 1; i < b.size(); ++i)
    if (static_cast<int64_t>(i) != bx) out.push_back(b[i]);
  if (out.size() == 1) out.push_back(1);  // Keras keeps a feature axis for two vectors
  return out;
}

torch::Tensor DotImpl::forward_list(const std::vector<torch::Tensor>& xs, const std::vector<torch::Tensor>&) {
  Shape out_shape = compute_output_shape_list(shapes_of(xs));
  auto [ax, bx] = axes_for(xs[0].dim(), xs[1].dim());
  torch::Tensor a = xs[0], b = xs[1];
  if (options_.normalize()) {
    a = torch::nn::functional::normalize(a, torch::nn::functional::NormalizeFuncOptions().p(2).dim(ax));
    b = torch::nn::functional::normalize(b, torch::nn::functional::NormalizeFuncOptions().p(2).dim(bx));
  }
  // One batched matmul: a as (N, P, d) with the summed axis last, b as (N, d, Q) with it first.
  const int64_t n = a.size(0), d = a.size(ax);
  a = a.movedim(ax, -1).reshape({n, -1, d});
  b = b.movedim(bx, 1).reshape({n, d, -1});
  Shape full = out_shape;
  full[0] = n;
  return torch::bmm(a, b).reshape(full);
}

nlohmann::json DotImpl::get_config() const {
  auto c = LayerImpl::get_config();
  c["axes"] = options_.axes()[0] == options_.axes()[1] ? nlohmann::json(options_.axes()[0]) : nlohmann::json(options_.axes());
  c["normalize"] = options_.normalize();
  return c;
}

std::shared_ptr<DotImpl> DotImpl::from_config(ConfigReader& r) {
  LayerArgs a = detail::read_layer_args(r);
  const auto& axes = r.raw("axes");
  std::vector<int64_t> list;
  if (axes.is_number_integer()) {
    list = {axes.get<int64_t>(), axes.get<int64_t>()};
  } else if (axes.is_array() && axes.size() == 2 && axes[0].is_number_integer() && axes[1].is_number_integer()) {
    list = {axes[0].get<int64_t>(), axes[1].get<int64_t>()};
  } else {
    throw ConfigError(r.path_of("axes"), "expected an integer or a list of two integers, got " + describe(axes));
  }
  for (auto v : list)
    if (v == 0) throw ConfigError(r.path_of("axes"), "the batch axis 0 cannot be summed over");
  DotOptions o(list[0], list[1]);
  o.normalize(r.get<bool>("normalize", false));
  o.name(a.name).trainable(a.trainable);
  return std::make_shared<DotImpl>(o);
}

}  // namespace lighter::layers
