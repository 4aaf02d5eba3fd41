#include "lighter/ensemble/weight_merge.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <regex>

#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lighter/core/error.h"
#include "lighter/core/logging.h"
#include "lighter/core/shape.h"
#include "lighter/models/saving.h"

namespace lighter::ensemble {

namespace {

std::string shape_str(const torch::Tensor& t) { return shape_to_string(Shape(t.sizes().begin(), t.sizes().end())); }

std::string label_of(const std::vector<std::string>& labels, size_t i) {
  return i < labels.size() ? labels[i] : "model " + std::to_string(i);
}

std::vector<double> weights_or_ones(const std::vector<double>& weights, size_t n, const char* what) {
  if (weights.empty()) return std::vector<double>(n, 1.0);
  if (weights.size() != n)
    throw ConfigError("weights", std::string(what) + " takes one weight per model: " + std::to_string(n) + " models, " +
                                     std::to_string(weights.size()) + " weights");
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(weights[i])) throw ConfigError("weights[" + std::to_string(i) + "]", "expected a finite number");
  return weights;
}

void check_density(double density) {
  if (!(density > 0 && density <= 1))
    throw ConfigError("density", "expected a number in (0, 1], got " + std::to_string(density));
}

void check_models(const Weights* base, const std::vector<Weights>& models) {
  if (models.empty()) throw ConfigError("models", "nothing to merge: no models given");
  std::vector<const Weights*> all;
  std::vector<std::string> labels;
  if (base) {
    all.push_back(base);
    labels.push_back("the base model");
  }
  for (size_t i = 0; i < models.size(); ++i) {
    all.push_back(&models[i]);
    labels.push_back("model " + std::to_string(i));
  }
  check_same_architecture(all, labels);
}

// A tensor that is not merged (not floating point): equal everywhere, or the first one's with a warning.
torch::Tensor unmerged(const std::string& name, const torch::Tensor& first, const std::vector<torch::Tensor>& others) {
  for (const auto& t : others)
    if (!t.equal(first)) {
      logger()->warn("weight merging: tensor '{}' ({}) is not floating point and differs between the models; the "
                     "first model's is kept",
                     name, c10::toString(first.scalar_type()));
      break;
    }
  return first.clone();
}

// Applies `merge` to each floating-point tensor: merge(base tensor or undefined, the models' tensors, index).
template <class F>
Weights per_tensor(const Weights* base, const std::vector<Weights>& models, F&& merge) {
  Weights out;
  torch::NoGradGuard no_grad;
  const Weights& first = base ? *base : models.front();
  for (size_t k = 0; k < first.size(); ++k) {
    const std::string& name = first[k].first;
    std::vector<torch::Tensor> ts;
    for (const auto& m : models) ts.push_back(m[k].second.detach());
    torch::Tensor b = base ? (*base)[k].second.detach() : torch::Tensor();
    const torch::Tensor& ref = base ? b : ts.front();
    if (!ref.is_floating_point()) {
      out.emplace_back(name, unmerged(name, ref, ts));
      continue;
    }
    // Merging runs in float64 (sums of many small differences), the result takes the model's dtype back.
    std::vector<torch::Tensor> d;
    for (const auto& t : ts) d.push_back(t.to(torch::kDouble));
    torch::Tensor merged = merge(b.defined() ? b.to(torch::kDouble) : b, d, k);
    out.emplace_back(name, merged.to(ref.scalar_type()).contiguous());
  }
  return out;
}

// TIES' sign election and disjoint mean over weighted task vectors stacked on dim 0.
torch::Tensor elect_and_average(const torch::Tensor& stacked) {
  torch::Tensor majority = torch::where(stacked.sum(0) >= 0, torch::ones({}, stacked.options()), -torch::ones({}, stacked.options()));
  torch::Tensor agree = stacked.sign().eq(majority);
  torch::Tensor kept = (stacked * agree).sum(0);
  return kept / agree.sum(0).clamp_min(1).to(stacked.scalar_type());
}

// Keeps the int(density · n) largest magnitudes of a task vector (PEFT's magnitude pruning).
torch::Tensor trim(const torch::Tensor& tau, double density) {
  const int64_t n = tau.numel(), k = static_cast<int64_t>(density * static_cast<double>(n));
  if (k >= n) return tau;
  torch::Tensor mask = torch::zeros({n}, tau.options().dtype(torch::kBool));
  if (k > 0) mask.index_fill_(0, std::get<1>(tau.abs().reshape({-1}).topk(k)), true);
  return tau * mask.view(tau.sizes());
}

}  // namespace

Weights weights_of(const models::ModelImpl& model) {
  if (!model.built()) throw ShapeError("model '" + model.model_name() + "' is not built yet: it has no weights to merge");
  Weights out;
  for (const auto& [name, t] : model_tensors(model)) out.emplace_back(name, t.detach().clone());
  return out;
}

void assign_weights(models::ModelImpl& model, const Weights& weights) {
  Weights mine = model_tensors(model);
  check_same_architecture({&mine, &weights}, {"model '" + model.model_name() + "'", "the merged weights"});
  torch::NoGradGuard no_grad;
  for (size_t k = 0; k < mine.size(); ++k) mine[k].second.copy_(weights[k].second);
  for (const auto& layer : model.layers()) layer->on_weights_loaded();
}

void check_same_architecture(const std::vector<const Weights*>& models, const std::vector<std::string>& labels) {
  if (models.empty()) return;
  const Weights& first = *models.front();
  for (size_t i = 1; i < models.size(); ++i) {
    const Weights& other = *models[i];
    const std::string who = label_of(labels, i), ref = label_of(labels, 0);
    for (size_t k = 0; k < std::min(first.size(), other.size()); ++k) {
      const auto& [n1, t1] = first[k];
      const auto& [n2, t2] = other[k];
      if (n1 != n2)
        throw DataError(who, "tensor " + std::to_string(k) + " is '" + n2 + "' where " + ref + " has '" + n1 +
                                 "': the architectures differ");
      if (t1.sizes() != t2.sizes())
        throw DataError(who, "tensor '" + n1 + "' has shape " + shape_str(t2) + ", " + ref + " has " + shape_str(t1) +
                                 ": the architectures differ");
      if (t1.scalar_type() != t2.scalar_type())
        throw DataError(who, "tensor '" + n1 + "' has dtype " + std::string(c10::toString(t2.scalar_type())) + ", " +
                                 ref + " has " + c10::toString(t1.scalar_type()));
    }
    if (first.size() != other.size()) {
      const bool longer = other.size() > first.size();
      const std::string extra = longer ? other[first.size()].first : first[other.size()].first;
      throw DataError(who, std::to_string(other.size()) + " tensors where " + ref + " has " + std::to_string(first.size()) +
                               " (first unmatched: '" + extra + "'): the architectures differ");
    }
  }
}

Weights average(const std::vector<Weights>& models, const std::vector<double>& weights) {
  check_models(nullptr, models);
  std::vector<double> w = weights_or_ones(weights, models.size(), "average");
  double total = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    if (w[i] < 0) throw ConfigError("weights[" + std::to_string(i) + "]", "an average takes non-negative weights, got " + std::to_string(w[i]));
    total += w[i];
  }
  if (!(total > 0)) throw ConfigError("weights", "the weights of an average must have a positive sum");
  return per_tensor(nullptr, models, [&](const torch::Tensor&, const std::vector<torch::Tensor>& ts, size_t) {
    torch::Tensor sum = torch::zeros_like(ts.front());
    for (size_t i = 0; i < ts.size(); ++i) sum.add_(ts[i], w[i] / total);
    return sum;
  });
}

Weights task_arithmetic(const Weights& base, const std::vector<Weights>& models, const std::vector<double>& weights, double lambda) {
  check_models(&base, models);
  std::vector<double> w = weights_or_ones(weights, models.size(), "task arithmetic");
  return per_tensor(&base, models, [&](const torch::Tensor& b, const std::vector<torch::Tensor>& ts, size_t) {
    torch::Tensor sum = torch::zeros_like(b);
    for (size_t i = 0; i < ts.size(); ++i) sum.add_(ts[i] - b, w[i]);
    return b + lambda * sum;
  });
}

Weights ties(const Weights& base, const std::vector<Weights>& models, double density, const std::vector<double>& weights,
             double lambda) {
  check_density(density);
  check_models(&base, models);
  std::vector<double> w = weights_or_ones(weights, models.size(), "TIES");
  return per_tensor(&base, models, [&](const torch::Tensor& b, const std::vector<torch::Tensor>& ts, size_t) {
    std::vector<torch::Tensor> taus;
    for (size_t i = 0; i < ts.size(); ++i) taus.push_back(trim(ts[i] - b, density) * w[i]);
    return b + lambda * elect_and_average(torch::stack(taus));
  });
}

Weights dare(const Weights& base, const std::vector<Weights>& models, double density, uint64_t seed,
             const std::vector<double>& weights, bool use_ties, double lambda) {
  check_density(density);
  check_models(&base, models);
  std::vector<double> w = weights_or_ones(weights, models.size(), "DARE");
  at::Generator gen = at::detail::createCPUGenerator(seed);
  return per_tensor(&base, models, [&](const torch::Tensor& b, const std::vector<torch::Tensor>& ts, size_t) {
    std::vector<torch::Tensor> taus;
    for (size_t i = 0; i < ts.size(); ++i) {
      torch::Tensor tau = ts[i] - b;
      torch::Tensor keep = torch::empty(tau.sizes(), tau.options().device(torch::kCPU)).bernoulli_(density, gen).to(tau.device());
      taus.push_back(tau * keep / density * w[i]);
    }
    torch::Tensor stacked = torch::stack(taus);
    return b + lambda * (use_ties ? elect_and_average(stacked) : stacked.sum(0));
  });
}

Weights slerp(const Weights& a, const Weights& b, double t, const std::vector<std::pair<std::string, double>>& t_by_name) {
  auto check_t = [](double v, const std::string& path) {
    if (!(v >= 0 && v <= 1)) throw ConfigError(path, "expected a number in [0, 1], got " + std::to_string(v));
  };
  check_t(t, "t");
  std::vector<std::pair<std::regex, double>> rules;
  for (size_t i = 0; i < t_by_name.size(); ++i) {
    const std::string path = "t_by_name[" + std::to_string(i) + "]";
    check_t(t_by_name[i].second, path);
    try {
      rules.emplace_back(std::regex(t_by_name[i].first), t_by_name[i].second);
    } catch (const std::regex_error& e) {
      throw ConfigError(path, "'" + t_by_name[i].first + "' is not a valid regular expression (" + e.what() + ")");
    }
  }
  std::vector<Weights> pair{b};
  check_models(&a, pair);
  return per_tensor(&a, pair, [&](const torch::Tensor& x, const std::vector<torch::Tensor>& ys, size_t k) {
    const std::string& name = a[k].first;
    double tk = t;
    for (const auto& [re, v] : rules)
      if (std::regex_search(name, re)) {
        tk = v;
        break;
      }
    const torch::Tensor& y = ys.front();
    const double nx = x.norm().item<double>(), ny = y.norm().item<double>();
    const double cos = (nx > 0 && ny > 0) ? (x.flatten().dot(y.flatten()).item<double>() / (nx * ny)) : 1.0;
    if (std::abs(cos) > 0.9995) return x * (1 - tk) + y * tk;
    const double omega = std::acos(std::clamp(cos, -1.0, 1.0)), s = std::sin(omega);
    return x * (std::sin((1 - tk) * omega) / s) + y * (std::sin(tk * omega) / s);
  });
}

GreedySoup greedy_soup(const std::vector<Weights>& models, const std::function<double(const Weights&)>& score,
                       bool higher_is_better) {
  check_models(nullptr, models);
  GreedySoup soup;
  for (const auto& m : models) soup.individual_scores.push_back(score(m));
  auto better_or_equal = [&](double x, double y) { return higher_is_better ? x >= y : x <= y; };
  std::vector<size_t> order(models.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t i, size_t j) {
    return higher_is_better ? soup.individual_scores[i] > soup.individual_scores[j]
                            : soup.individual_scores[i] < soup.individual_scores[j];
  });
  soup.ingredients = {order.front()};
  soup.weights = models[order.front()];
  soup.score = soup.individual_scores[order.front()];
  for (size_t r = 1; r < order.size(); ++r) {
    std::vector<Weights> candidate;
    for (size_t i : soup.ingredients) candidate.push_back(models[i]);
    candidate.push_back(models[order[r]]);
    Weights mixed = average(candidate);
    const double s = score(mixed);
    if (better_or_equal(s, soup.score)) {
      soup.ingredients.push_back(order[r]);
      soup.weights = std::move(mixed);
      soup.score = s;
    }
  }
  return soup;
}

}  // namespace lighter::ensemble
