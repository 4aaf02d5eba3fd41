#pragma once
/// Weight merging: one model out of several of the same architecture. Uniform and greedy model soups (Wortsman et
/// al. 2022), task arithmetic (Ilharco et al. 2023), TIES (Yadav et al. 2023), DARE (Yu et al. 2024) and SLERP,
/// on the named tensors of models (`model_tensors`' form), computed in ATen.
///
/// Floating-point tensors are merged. Other tensors (integer counters and the like) are not averaged: they must be
/// equal in every model, and are otherwise taken from the first one (the base, where there is one) with a warning.
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "lighter/models/model.h"

namespace lighter::ensemble {

/// The named tensors of one model, in the model's order (parameters, then buffers).
using Weights = std::vector<std::pair<std::string, torch::Tensor>>;

/// Detached copies of a built model's weights.
Weights weights_of(const models::ModelImpl& model);
/// Copies `weights` into a model of the same architecture (DataError naming the first tensor that differs).
void assign_weights(models::ModelImpl& model, const Weights& weights);

/// DataError unless every entry has the same tensor names, shapes and dtypes in the same order as the first;
/// names the first differing tensor and the entry (`labels[i]`, or "model i").
void check_same_architecture(const std::vector<const Weights*>& models, const std::vector<std::string>& labels = {});

/// Weighted average Σ w_i θ_i / Σ w_i (uniform without weights): the uniform soup. Weights must be non-negative
/// with a positive sum.
Weights average(const std::vector<Weights>& models, const std::vector<double>& weights = {});

/// Task arithmetic: base + λ · Σ w_i (θ_i − base). Weights default to 1 and may be negative (forgetting a task).
Weights task_arithmetic(const Weights& base, const std::vector<Weights>& models, const std::vector<double>& weights = {},
                        double lambda = 1.0);

/// TIES-merging: each task vector θ_i − base is trimmed to its `density` fraction of largest magnitudes (the
/// int(density · n) largest, as PEFT), weighted by w_i; the sign of each entry is elected by the summed weighted
/// values (ties go to +); the entries agreeing with it are averaged (disjoint mean), and base + λ · that is
/// returned. density in (0, 1].
Weights ties(const Weights& base, const std::vector<Weights>& models, double density, const std::vector<double>& weights = {},
             double lambda = 1.0);

/// DARE: each entry of each task vector is dropped with probability 1 − density and the kept ones are divided by
/// density (Bernoulli draws from a generator seeded with `seed`, tensor by tensor in order); the rescaled task
/// vectors are then combined linearly (base + λ Σ w_i τ_i) or, with `use_ties`, by TIES' sign election and
/// disjoint mean (without further trimming).
Weights dare(const Weights& base, const std::vector<Weights>& models, double density, uint64_t seed,
             const std::vector<double>& weights = {}, bool use_ties = false, double lambda = 1.0);

/// Spherical linear interpolation between two models, tensor by tensor: sin((1−t)Ω)/sin Ω · a + sin(tΩ)/sin Ω · b
/// with Ω the angle between the flattened tensors, and linear interpolation when they are nearly parallel
/// (|cos Ω| > 0.9995) or one is zero. `t_by_name` sets t for the tensors whose name matches a regular expression
/// (the first match wins; e.g. {"attention", 0.3}); the others take `t`. t in [0, 1].
Weights slerp(const Weights& a, const Weights& b, double t, const std::vector<std::pair<std::string, double>>& t_by_name = {});

/// The greedy soup: models are ranked by their own held-out score; starting from the best, each next one joins
/// the soup (a uniform average) only if the soup's score does not drop. `score` evaluates weights (higher is
/// better unless `higher_is_better` is false).
struct GreedySoup {
  Weights weights;
  std::vector<size_t> ingredients;  // indices into the models, in the order they joined
  std::vector<double> individual_scores;
  double score = 0;
};
GreedySoup greedy_soup(const std::vector<Weights>& models, const std::function<double(const Weights&)>& score,
                       bool higher_is_better = true);

}  // namespace lighter::ensemble
