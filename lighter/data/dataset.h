#pragma once
/// In-memory datasets of contiguous tensors, Keras' validation split, and batching.
#include <cstdint>
#include <optional>
#include <utility>

#include <torch/torch.h>

namespace lighter::data {

/// In-memory dataset of contiguous tensors; batches are sliced by index (index_select/narrow), never stacked per sample.
/// `y` and `sample_weight` are optional (undefined tensors); when defined their first dimension is the sample count.
struct TensorDataset {
  torch::Tensor x, y, sample_weight;

  TensorDataset() = default;
  /// Checks that every defined tensor has the same number of samples (ShapeError otherwise).
  TensorDataset(torch::Tensor x, torch::Tensor y = {}, torch::Tensor sample_weight = {});

  /// Number of samples (0 when `x` is undefined).
  int64_t size() const;
  bool empty() const { return size() == 0; }
  /// The samples at `idx` (int64, any device; moved to the data's device when needed), gathered in that order.
  TensorDataset select(const torch::Tensor& idx) const;
  /// Samples [begin, end) as views (no copy).
  TensorDataset slice(int64_t begin, int64_t end) const;
  /// The same dataset on `device` (no copy when already there).
  TensorDataset to(const torch::Device& device, bool non_blocking = false) const;
};

/// Keras' validation_split: the LAST fraction of the samples (taken before any shuffling) -> {train, validation}.
/// As in Keras, the train part has floor(N * (1 - fraction)) samples; both parts are views of `d`.
/// fraction 0 gives {d, empty}; a fraction outside [0, 1) or one that leaves a part empty is a ConfigError.
std::pair<TensorDataset, TensorDataset> split_tail(const TensorDataset& d, double fraction);

/// Iterates batches of `batch_size` samples (the last one may be smaller), one epoch per reset().
/// In order, batches are zero-copy views; shuffled, one permutation is drawn per epoch (torch::randperm, from a
/// generator seeded once when `seed` is given, else from torch's global RNG so seed_everything applies) and each
/// batch is one index_select of a view of it. Nothing else is allocated per batch.
///
///     BatchIterator batches(train, 32, /*shuffle=*/true);
///     for (int epoch = 0; epoch < epochs; ++epoch) {
///       batches.reset();
///       TensorDataset batch;
///       while (batches.next(batch)) step(batch.x, batch.y);
///     }
class BatchIterator {
 public:
  BatchIterator(TensorDataset data, int64_t batch_size, bool shuffle = false, std::optional<uint64_t> seed = {});

  /// Starts a new epoch: rewinds and, when shuffling, draws a new permutation. A fresh iterator starts its first
  /// epoch on the first next() unless reset() came before, so calling reset() before every epoch draws no extra order.
  void reset();
  /// Fills `batch` with the next batch of the epoch; false (and `batch` untouched) when the epoch is done.
  bool next(TensorDataset& batch);

  /// Batches per epoch: ceil(size / batch_size).
  int64_t num_batches() const;
  /// Index of the batch the next call to next() returns.
  int64_t position() const { return position_; }
  int64_t batch_size() const { return batch_size_; }
  bool shuffle() const { return shuffle_; }
  const TensorDataset& data() const { return data_; }
  /// The sample order of the current epoch (int64, on the data's device); undefined when not shuffling.
  const torch::Tensor& order() const { return order_; }

 private:
  TensorDataset data_;
  int64_t batch_size_;
  bool shuffle_;
  std::optional<at::Generator> generator_;
  torch::Tensor order_;
  int64_t position_ = 0;
  bool started_ = false;
};

}  // namespace lighter::data
