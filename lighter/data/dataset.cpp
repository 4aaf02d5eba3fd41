#include "lighter/data/dataset.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <sstream>

#include "lighter/core/error.h"

namespace lighter::data {

namespace {

torch::Tensor rows(const torch::Tensor& t, const torch::Tensor& idx) { return t.defined() ? t.index_select(0, idx) : t; }

torch::Tensor narrow_rows(const torch::Tensor& t, int64_t begin, int64_t length) {
  return t.defined() ? t.narrow(0, begin, length) : t;
}

torch::Tensor moved(const torch::Tensor& t, const torch::Device& device, bool non_blocking) {
  return t.defined() ? t.to(device, non_blocking) : t;
}

}  // namespace

TensorDataset::TensorDataset(torch::Tensor x_, torch::Tensor y_, torch::Tensor sample_weight_)
    : x(std::move(x_)), y(std::move(y_)), sample_weight(std::move(sample_weight_)) {
  auto check = [&](const torch::Tensor& t, const char* name) {
    if (!t.defined()) return;
    if (t.dim() == 0 || (x.defined() && t.size(0) != x.size(0))) {
      std::ostringstream message;
      message << "dataset: " << name << " has shape " << t.sizes() << " but x has " << x.size(0)
              << " samples (first dimensions must match)";
      throw ShapeError(message.str());
    }
  };
  if (x.defined() && x.dim() == 0) throw ShapeError("dataset: x must have a sample dimension, got a scalar");
  if (!x.defined() && (y.defined() || sample_weight.defined())) throw ShapeError("dataset: y given without x");
  check(y, "y");
  check(sample_weight, "sample_weight");
}

int64_t TensorDataset::size() const { return x.defined() ? x.size(0) : 0; }

TensorDataset TensorDataset::select(const torch::Tensor& idx) const {
  if (!x.defined()) return *this;
  // index_select wants its index on the data's device; .to is a no-op when it already is.
  torch::Tensor index = idx.to(x.device(), torch::kInt64);
  TensorDataset out;
  out.x = rows(x, index);
  out.y = rows(y, index);
  out.sample_weight = rows(sample_weight, index);
  return out;
}

TensorDataset TensorDataset::slice(int64_t begin, int64_t end) const {
  const int64_t n = size();
  if (begin < 0 || end < begin || end > n) {
    throw ShapeError("dataset: slice [" + std::to_string(begin) + ", " + std::to_string(end) +
                     ") is out of range for " + std::to_string(n) + " samples");
  }
  TensorDataset out;
  out.x = narrow_rows(x, begin, end - begin);
  out.y = narrow_rows(y, begin, end - begin);
  out.sample_weight = narrow_rows(sample_weight, begin, end - begin);
  return out;
}

TensorDataset TensorDataset::to(const torch::Device& device, bool non_blocking) const {
  TensorDataset out;
  out.x = moved(x, device, non_blocking);
  out.y = moved(y, device, non_blocking);
  out.sample_weight = moved(sample_weight, device, non_blocking);
  return out;
}

std::pair<TensorDataset, TensorDataset> split_tail(const TensorDataset& d, double fraction) {
  if (!(fraction >= 0.0 && fraction < 1.0)) {
    throw ConfigError("validation_split", "expected a number in [0, 1), got " + std::to_string(fraction));
  }
  const int64_t n = d.size();
  if (fraction == 0.0) return {d, d.slice(n, n)};
  // The same formula as Keras (train_validation_split), so both pick the same boundary.
  const auto split_at = static_cast<int64_t>(std::floor(static_cast<double>(n) * (1.0 - fraction)));
  if (split_at <= 0 || split_at >= n) {
    throw ConfigError("validation_split", std::to_string(n) + " samples are too few to split with validation_split=" +
                                              std::to_string(fraction) + " (one part would be empty)");
  }
  return {d.slice(0, split_at), d.slice(split_at, n)};
}

BatchIterator::BatchIterator(TensorDataset data, int64_t batch_size, bool shuffle, std::optional<uint64_t> seed)
    : data_(std::move(data)), batch_size_(batch_size), shuffle_(shuffle) {
  if (batch_size_ <= 0) {
    throw ConfigError("batch_size", "expected a positive integer, got " + std::to_string(batch_size_));
  }
  if (seed) generator_ = at::make_generator<at::CPUGeneratorImpl>(*seed);
}

void BatchIterator::reset() {
  started_ = true;
  position_ = 0;
  if (!shuffle_) return;
  const int64_t n = data_.size();
  torch::Tensor order = generator_ ? torch::randperm(n, *generator_, torch::kInt64) : torch::randperm(n, torch::kInt64);
  // Drawn on the CPU so a seed gives the same order on every device; moved once per epoch.
  order_ = data_.x.defined() ? order.to(data_.x.device()) : order;
}

bool BatchIterator::next(TensorDataset& batch) {
  if (!started_) reset();
  const int64_t n = data_.size();
  const int64_t begin = position_ * batch_size_;
  if (begin >= n) return false;
  const int64_t end = std::min(begin + batch_size_, n);
  batch = shuffle_ ? data_.select(order_.narrow(0, begin, end - begin)) : data_.slice(begin, end);
  ++position_;
  return true;
}

int64_t BatchIterator::num_batches() const { return (data_.size() + batch_size_ - 1) / batch_size_; }

}  // namespace lighter::data
