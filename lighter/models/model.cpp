#include "lighter/models/model.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include <spdlog/spdlog.h>

#include "lighter/core/error.h"
#include "lighter/core/logging.h"

namespace lighter::models {

ModelImpl::ModelImpl(std::string class_name, std::string name)
    : torch::nn::Module(class_name), class_name_(std::move(class_name)), name_(std::move(name)) {}

// Out of line so that Trainer is complete where the shared_ptr is destroyed.
ModelImpl::~ModelImpl() = default;

void ModelImpl::expect_single_io(const std::string& what) const {
  if (num_inputs() != 1 || num_outputs() != 1)
    throw ShapeError(what + ": model '" + name_ + "' has " + std::to_string(num_inputs()) + " inputs and " +
                     std::to_string(num_outputs()) + " outputs; pass a list of tensors (call) instead of one tensor");
}

torch::Tensor ModelImpl::forward(const torch::Tensor& x) {
  expect_single_io("forward");
  return call({x}).values.front();
}

torch::Tensor ModelImpl::forward_pre_activation(const torch::Tensor& x) {
  expect_single_io("forward_pre_activation");
  return call({x}, {}, {true}).values.front();
}

void ModelImpl::warn_mask_dropped(const layers::LayerImpl& layer) {
  if (mask_dropped_warned_.insert(&layer).second)
    logger()->warn("layer '{}' ({}) does not support masking; the mask of its input is dropped", layer.layer_name(),
                   layer.class_name());
}

torch::Tensor ModelImpl::forward_step(const torch::Tensor&, layers::DecodeCache&, bool) {
  throw ShapeError("model '" + name_ + "' (" + class_name_ +
                   ") cannot decode step by step; generation with a cache needs a Sequential model");
}

std::string ModelImpl::output_activation() const {
  expect_single_io("output_activation");
  return output_activations().front();
}

layers::LayerPtr ModelImpl::get_layer(const std::string& name) const {
  std::string known;
  for (const auto& l : layers()) {
    if (l->layer_name() == name) return l;
    known += (known.empty() ? "" : ", ") + l->layer_name();
  }
  throw ConfigError("layer", "no layer named '" + name + "' (layers: " + known + ")");
}

layers::ParamCount ModelImpl::count_params() const {
  layers::ParamCount c;
  for (const auto& l : layers()) c += l->count_params();
  return c;
}

torch::Tensor ModelImpl::regularization_loss() const {
  torch::Tensor total;
  for (const auto& l : layers()) {
    auto r = l->regularization_loss();
    if (r.defined()) total = total.defined() ? total + r : r;
  }
  return total;
}

bool ModelImpl::needs_adapt() const {
  for (const auto& l : layers())
    if (l->needs_adapt()) return true;
  return false;
}

namespace {

std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

// Keras' readable_memory_size: powers of 1024 with two decimals.
std::string readable_bytes(double bytes) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f %s", bytes, units[u]);
  return buf;
}

// Pads or cuts `s` (UTF-8 free text: names and shapes are ASCII) to `width` characters.
std::string cell(const std::string& s, size_t width, bool right = false) {
  std::string t = s.size() > width ? s.substr(0, width - 1) + "…" : s;
  size_t len = s.size() > width ? width : s.size();
  std::string pad(width - len, ' ');
  return right ? pad + t : t + pad;
}

std::string repeat(const std::string& glyph, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += glyph;
  return out;
}

}  // namespace

std::vector<ModelImpl::SummaryRow> ModelImpl::summary_rows() const {
  std::vector<SummaryRow> rows;
  for (const auto& l : layers())
    rows.push_back({l->layer_name() + " (" + l->class_name() + ")", shape_to_string(l->output_shape()),
                    l->count_params().total(), connections_of(*l)});
  return rows;
}

std::string ModelImpl::summary(int line_length) const {
  if (!built())
    throw ShapeError("model '" + name_ + "' is not built yet: give it an input shape (Input or input_shape) or call it");
  // Keras 3's column splits: 45% / 32% / 23% of the line; with the "Connected to" column of graph models
  // 30% / 30% / 10% / 30% of a wider line.
  const bool graph = class_name_ != "Sequential";
  size_t total = std::max(graph ? 100 : 60, line_length) - (graph ? 6 : 4);
  std::vector<size_t> w = graph ? std::vector<size_t>{total * 30 / 100, total * 30 / 100, total * 10 / 100, 0}
                                : std::vector<size_t>{total * 45 / 100, total * 32 / 100, 0};
  w.back() = total;
  for (size_t i = 0; i + 1 < w.size(); ++i) w.back() -= w[i];
  std::ostringstream out;
  out << "Model: \"" << name_ << "\"\n";
  auto rule = [&](const char* l, const char* h, const char* m, const char* r) {
    out << l;
    for (size_t i = 0; i < w.size(); ++i) out << repeat(h, w[i] + 2) << (i + 1 < w.size() ? m : r);
    out << "\n";
  };
  auto row = [&](const char* bar, const std::vector<std::string>& cells) {
    for (size_t i = 0; i < w.size(); ++i) out << bar << " " << cell(cells[i], w[i], i == 2) << " ";
    out << bar << "\n";
  };
  rule("┏", "━", "┳", "┓");
  std::vector<std::string> head{"Layer (type)", "Output Shape", "Param #"};
  if (graph) head.push_back("Connected to");
  row("┃", head);
  rule("┡", "━", "╇", "┩");
  auto rows = summary_rows();
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    std::vector<std::string> cells{r.layer, r.output_shape, with_commas(r.params)};
    if (graph) cells.push_back(r.connected_to);
    row("│", cells);
    if (i + 1 < rows.size()) rule("├", "─", "┼", "┤");
  }
  rule("└", "─", "┴", "┘");
  auto c = count_params();
  out << " Total params: " << with_commas(c.total()) << " (" << readable_bytes(4.0 * c.total()) << ")\n";
  out << " Trainable params: " << with_commas(c.trainable) << " (" << readable_bytes(4.0 * c.trainable) << ")\n";
  out << " Non-trainable params: " << with_commas(c.non_trainable) << " (" << readable_bytes(4.0 * c.non_trainable)
      << ")\n";
  return out.str();
}

}  // namespace lighter::models
