#include "lighter/ensemble/ensemble.h"

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <numeric>

#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lighter/callbacks/monitor.h"
#include "lighter/core/error.h"
#include "lighter/core/json.h"
#include "lighter/core/logging.h"
#include "lighter/layers/core_layers.h"
#include "lighter/models/keras_json.h"
#include "lighter/models/saving.h"
#include "lighter/models/sequential.h"

namespace lighter::ensemble {

namespace {

using json = nlohmann::json;

const std::vector<std::string>& combinations() {
  static const std::vector<std::string> all{"average", "soft_voting", "hard_voting", "stacking"};
  return all;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

std::string member_label(size_t i) { return "member_" + std::to_string(i); }

// Clamps probabilities away from 0 and 1 as Keras' crossentropy does (epsilon 1e-7).
constexpr double kEpsilon = 1e-7;

torch::Tensor probabilities_to_pre_activation(const torch::Tensor& p, const std::string& activation) {
  if (activation == "softmax") return p.clamp_min(kEpsilon).log();
  if (activation == "sigmoid") {
    auto q = p.clamp(kEpsilon, 1 - kEpsilon);
    return q.log() - (-q).log1p();
  }
  return p;
}

torch::Device device_of(const models::ModelImpl& model) {
  for (const auto& p : model.parameters()) return p.device();
  for (const auto& b : model.buffers()) return b.device();
  return torch::kCPU;
}

torch::Tensor rows(const torch::Tensor& t, const torch::Tensor& index) {
  return t.defined() ? t.index_select(0, index) : t;
}

}  // namespace

// ---- EnsembleImpl ---------------------------------------------------------------------------------------------

EnsembleImpl::EnsembleImpl(std::vector<models::ModelPtr> members, EnsembleOptions options, std::string name,
                           models::ModelPtr meta_model)
    : ModelImpl("Ensemble", std::move(name)), members_(std::move(members)), options_(std::move(options)) {
  if (members_.empty()) throw ConfigError("members", "an ensemble needs at least one member");
  const auto& c = options_.combine();
  if (std::find(combinations().begin(), combinations().end(), c) == combinations().end())
    throw ConfigError("combine", "unknown combination '" + c + "' (supported: " + joined(combinations()) + ")");
  if (options_.weights_from() != "" && options_.weights_from() != "validation")
    throw ConfigError("weights", "expected a list of numbers, null or \"validation\", got \"" + options_.weights_from() + "\"");
  if (options_.folds() < 2)
    throw ConfigError("folds", "expected an integer of at least 2, got " + std::to_string(options_.folds()));
  for (size_t i = 0; i < members_.size(); ++i) {
    if (!members_[i]) throw ConfigError(join_path("members", i), "is null");
    if (members_[i]->num_outputs() != 1)
      throw ConfigError(join_path("members", i), "an ensemble member must have one output; this one has " +
                                                     std::to_string(members_[i]->num_outputs()));
    if (members_[i]->num_inputs() != members_.front()->num_inputs())
      throw ConfigError(join_path("members", i), "takes " + std::to_string(members_[i]->num_inputs()) +
                                                     " inputs but member 0 takes " +
                                                     std::to_string(members_.front()->num_inputs()));
    register_module(member_label(i), members_[i]);
  }
  pretrained_.assign(members_.size(), false);
  if (!options_.weights().empty()) set_weights(options_.weights());
  if (meta_model) set_meta_model(std::move(meta_model));
  bool members_built = true;
  for (const auto& m : members_) members_built = members_built && m->built();
  if (members_built) {
    check_members();
    checked_ = true;
    if (options_.combine() == "stacking" && !meta_) make_default_meta();
  }
}

std::vector<double> EnsembleImpl::weights() const {
  return options_.weights().empty() ? std::vector<double>(members_.size(), 1.0 / members_.size()) : options_.weights();
}

void EnsembleImpl::set_weights(const std::vector<double>& weights) {
  if (weights.size() != members_.size())
    throw ConfigError("weights", "expected one weight per member: " + std::to_string(members_.size()) + " members, " +
                                     std::to_string(weights.size()) + " weights");
  double sum = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    if (!std::isfinite(weights[i]) || weights[i] < 0)
      throw ConfigError(join_path("weights", i), "expected a non-negative number, got " + std::to_string(weights[i]));
    sum += weights[i];
  }
  if (!(sum > 0)) throw ConfigError("weights", "the weights sum to 0: at least one member must count");
  std::vector<double> normalised;
  for (double w : weights) normalised.push_back(w / sum);
  options_.weights(normalised);
}

void EnsembleImpl::set_meta_model(models::ModelPtr meta) {
  if (options_.combine() != "stacking")
    throw ConfigError("meta_model", "only a stacking ensemble has a meta-model (combine is \"" + options_.combine() + "\")");
  if (!meta) throw ConfigError("meta_model", "is null");
  if (meta->num_inputs() != 1 || meta->num_outputs() != 1)
    throw ConfigError("meta_model", "a meta-model takes one input (the members' outputs) and has one output");
  meta_ = meta;
  register_module("meta_model", meta_);
}

void EnsembleImpl::set_pretrained(std::vector<bool> pretrained) {
  if (pretrained.size() != members_.size())
    throw ConfigError("members", "set_pretrained takes one flag per member");
  pretrained_ = std::move(pretrained);
}

json EnsembleImpl::member_json(size_t i) const { return members_.at(i)->to_json(); }

void EnsembleImpl::check_members() const {
  const auto shape = members_.front()->output_shape();
  const auto activation = members_.front()->output_activation();
  for (size_t i = 1; i < members_.size(); ++i) {
    if (members_[i]->output_shape() != shape)
      throw ShapeError("ensemble '" + model_name() + "': member " + std::to_string(i) + " outputs " +
                       shape_to_string(members_[i]->output_shape()) + " but member 0 outputs " + shape_to_string(shape));
    if (options_.combine() != "stacking" && members_[i]->output_activation() != activation)
      throw ConfigError(join_path("members", i), "ends with " + members_[i]->output_activation() +
                                                     " but member 0 ends with " + activation +
                                                     ": averaged or voted outputs must be of one kind");
  }
  const auto& c = options_.combine();
  if ((c == "soft_voting" || c == "hard_voting") && activation != "softmax" && activation != "sigmoid")
    throw ConfigError("combine", c + " needs members that end with softmax or sigmoid (class probabilities); member 0 "
                                     "ends with " + activation + " (use \"average\" for regression outputs)");
}

std::vector<torch::Tensor> EnsembleImpl::member_outputs(const std::vector<torch::Tensor>& inputs,
                                                        const std::vector<torch::Tensor>& masks) {
  std::vector<torch::Tensor> out;
  for (const auto& m : members_) out.push_back(m->call(inputs, masks).values.front());
  return out;
}

torch::Tensor EnsembleImpl::combine(const std::vector<torch::Tensor>& outputs) const {
  if (outputs.size() != members_.size())
    throw ShapeError("ensemble '" + model_name() + "': combine takes one output per member (" +
                     std::to_string(members_.size()) + "), got " + std::to_string(outputs.size()));
  const auto& c = options_.combine();
  if (c == "stacking") throw ConfigError("combine", "a stacking ensemble combines through its meta-model (call)");
  for (size_t i = 1; i < outputs.size(); ++i)
    if (!outputs[i].sizes().equals(outputs[0].sizes()))
      throw ShapeError("ensemble '" + model_name() + "': member " + std::to_string(i) + " output " +
                       shape_to_string(Shape(outputs[i].sizes().begin(), outputs[i].sizes().end())) +
                       " differs from member 0's " +
                       shape_to_string(Shape(outputs[0].sizes().begin(), outputs[0].sizes().end())));
  const auto w = weights();
  torch::Tensor total;
  for (size_t i = 0; i < outputs.size(); ++i) {
    torch::Tensor v = outputs[i];
    if (c == "hard_voting") {
      // One vote per member: its most probable class (p > 0.5 for a single sigmoid unit).
      v = v.size(-1) == 1 ? (v > 0.5).to(v.scalar_type())
                          : torch::one_hot(v.argmax(-1), v.size(-1)).to(v.scalar_type());
    }
    v = v * w[i];
    total = total.defined() ? total + v : v;
  }
  return total;  // the weights sum to 1
}

torch::Tensor EnsembleImpl::stack_features(const std::vector<torch::Tensor>& outputs) const {
  if (outputs.size() != members_.size())
    throw ShapeError("ensemble '" + model_name() + "': stack_features takes one output per member (" +
                     std::to_string(members_.size()) + "), got " + std::to_string(outputs.size()));
  std::vector<torch::Tensor> scores;
  for (size_t i = 0; i < outputs.size(); ++i)
    scores.push_back(probabilities_to_pre_activation(outputs[i], members_[i]->output_activation()));
  return torch::cat(scores, -1);
}

void EnsembleImpl::make_default_meta() {
  // Dense(C) over the M·C member scores, starting as the average of the members' scores: weight [C, M·C] = M
  // blocks of I/M, bias 0.
  const Shape out = members_.front()->output_shape();
  const int64_t c = out.back(), m = static_cast<int64_t>(members_.size());
  std::vector<int64_t> in(out.begin() + 1, out.end());
  in.back() = m * c;
  auto dense = layers::Dense(layers::DenseOptions(c).activation(members_.front()->output_activation()));
  auto meta = std::make_shared<models::SequentialImpl>(
      std::vector<layers::LayerRef>{layers::Input(in), dense}, "meta_model");
  {
    torch::NoGradGuard no_grad;
    dense->weight.copy_(torch::eye(c).repeat({1, m}) / static_cast<double>(m));
    dense->bias.zero_();
  }
  meta->to(device_of(*members_.front()));
  set_meta_model(meta);
}

models::ModelOutputs EnsembleImpl::call(const std::vector<torch::Tensor>& inputs,
                                        const std::vector<torch::Tensor>& masks,
                                        const std::vector<bool>& pre_activation) {
  const bool pre = !pre_activation.empty() && pre_activation.front();
  std::vector<torch::Tensor> outs;
  torch::Tensor mask;
  for (const auto& m : members_) {
    auto r = m->call(inputs, masks);
    outs.push_back(r.values.front());
    if (!mask.defined() && !r.masks.empty()) mask = r.masks.front();
  }
  if (!checked_) {
    check_members();  // members without an input shape are built by their first call
    checked_ = true;
  }
  if (options_.combine() == "stacking") {
    if (!meta_) make_default_meta();
    auto r = meta_->call({stack_features(outs)}, {}, {pre});
    return {{r.values.front()}, {mask}};
  }
  torch::Tensor p = combine(outs);
  if (pre) p = probabilities_to_pre_activation(p, output_activation());
  return {{p}, {mask}};
}

std::string EnsembleImpl::output_activation() const {
  if (options_.combine() == "stacking" && meta_) return meta_->output_activation();
  return members_.front()->output_activation();
}

std::vector<layers::LayerPtr> EnsembleImpl::layers() const {
  std::vector<layers::LayerPtr> all;
  for (const auto& m : members_) {
    auto ls = m->layers();
    all.insert(all.end(), ls.begin(), ls.end());
  }
  if (meta_) {
    auto ls = meta_->layers();
    all.insert(all.end(), ls.begin(), ls.end());
  }
  return all;
}

bool EnsembleImpl::built() const {
  for (const auto& m : members_)
    if (!m->built()) return false;
  return options_.combine() != "stacking" || (meta_ && meta_->built());
}

Shape EnsembleImpl::output_shape() const {
  if (options_.combine() == "stacking" && meta_ && meta_->built()) return meta_->output_shape();
  return members_.front()->output_shape();
}

json EnsembleImpl::to_json() const {
  json members = json::array();
  for (const auto& m : members_) members.push_back(m->to_json());
  json config = {{"name", model_name()},
                 {"combine", options_.combine()},
                 {"weights", options_.weights().empty() ? json(nullptr) : json(options_.weights())},
                 {"weights_from", options_.weights_from().empty() ? json(nullptr) : json(options_.weights_from())},
                 {"weight_metric", options_.weight_metric().empty() ? json(nullptr) : json(options_.weight_metric())},
                 {"bagging", options_.bagging()},
                 {"folds", options_.folds()},
                 {"members", members},
                 {"meta_model", meta_ ? meta_->to_json() : json(nullptr)}};
  return {{"class_name", "Ensemble"}, {"config", config}};
}

std::vector<models::ModelImpl::SummaryRow> EnsembleImpl::summary_rows() const {
  std::vector<SummaryRow> rows;
  std::string inputs = joined(members_.front()->input_names());
  std::string all_members;
  for (size_t i = 0; i < members_.size(); ++i) {
    const auto& m = *members_[i];
    rows.push_back({member_label(i) + " (" + m.class_name() + ")", shape_to_string(m.output_shape()),
                    m.count_params().total(), inputs});
    all_members += (i ? ", " : "") + member_label(i);
  }
  if (meta_)
    rows.push_back({"meta_model (" + meta_->class_name() + ")",
                    meta_->built() ? shape_to_string(meta_->output_shape()) : "?", meta_->count_params().total(),
                    all_members});
  return rows;
}

void EnsembleImpl::adapt(const torch::Tensor& x) {
  for (const auto& m : members_) m->adapt(x);
}

// ---- JSON ------------------------------------------------------------------------------------------------------

std::shared_ptr<EnsembleImpl> ensemble_from_json(const json& config, const std::string& path) {
  ConfigReader r(config, path);
  std::string name = r.get<std::string>("name", "ensemble");
  EnsembleOptions options;
  options.combine(r.get<std::string>("combine", "average"));
  const json& weights = r.raw_or_null("weights");
  if (weights.is_string()) {
    if (weights.get<std::string>() != "validation")
      throw ConfigError(r.path_of("weights"), "expected a list of numbers, null or \"validation\", got " + describe(weights));
    options.weights_from("validation");
  } else if (!weights.is_null()) {
    options.weights(r.get<std::vector<double>>("weights"));
  }
  const json& from = r.raw_or_null("weights_from");  // written by to_json beside the weights it chose
  if (!from.is_null()) options.weights_from(r.get<std::string>("weights_from"));
  options.weight_metric(r.get<std::string>("weight_metric", ""));
  options.bagging(r.get<bool>("bagging", false));
  options.folds(r.get<int64_t>("folds", 5));
  if (options.folds() < 2)
    throw ConfigError(r.path_of("folds"), "expected an integer of at least 2, got " + std::to_string(options.folds()));
  const int64_t replicas = r.get<int64_t>("replicas", 1);
  if (replicas < 1)
    throw ConfigError(r.path_of("replicas"), "expected a positive integer, got " + std::to_string(replicas));
  const json& specs = r.raw("members");
  const std::string members_path = r.path_of("members");
  if (!specs.is_array() || specs.empty())
    throw ConfigError(members_path, "expected a non-empty list of models (Keras JSON or {\"path\": DIR}), got " +
                                        describe(specs));
  const json& meta_spec = r.raw_or_null("meta_model");
  const std::string meta_path = r.path_of("meta_model");
  r.ignore({"trainable"});
  r.finish();

  std::vector<models::ModelPtr> members;
  std::vector<bool> pretrained;
  for (int64_t k = 0; k < replicas; ++k) {
    for (size_t i = 0; i < specs.size(); ++i) {
      const json& spec = specs[i];
      const std::string mpath = join_path(members_path, i);
      if (spec.is_object() && spec.contains("path")) {
        ConfigReader m(spec, mpath);
        std::string dir = m.get<std::string>("path");
        m.finish();
        if (replicas > 1)
          throw ConfigError(mpath, "a member loaded from a folder is already trained; replicas repeat members built "
                                   "from JSON (replicas is " + std::to_string(replicas) + ")");
        try {
          members.push_back(load_model(dir));
        } catch (const Error& e) {
          throw ConfigError(m.path_of("path"), e.what());
        }
        pretrained.push_back(true);
      } else {
        members.push_back(models::model_from_json(spec, mpath));
        pretrained.push_back(false);
      }
      if (members.back()->num_outputs() != 1)
        throw ConfigError(mpath, "an ensemble member must have one output; this one has " +
                                     std::to_string(members.back()->num_outputs()));
    }
  }
  models::ModelPtr meta;
  if (!meta_spec.is_null()) {
    if (options.combine() != "stacking")
      throw ConfigError(meta_path, "only a stacking ensemble has a meta-model (combine is \"" + options.combine() + "\")");
    meta = models::model_from_json(meta_spec, meta_path);
  }
  std::shared_ptr<EnsembleImpl> e;
  try {
    e = std::make_shared<EnsembleImpl>(members, options, name, meta);
  } catch (const ConfigError& err) {
    throw ConfigError(join_path(path, err.path()), err.message());
  }
  e->set_pretrained(pretrained);
  return e;
}

namespace {
// Makes model_from_json build "Ensemble" (the library's CMake target keeps this object linked).
models::ModelPtr build_from_json(const json& config, const std::string& path) { return ensemble_from_json(config, path); }
}  // namespace

extern "C" {
extern const int lighter_ensemble_model_class;
const int lighter_ensemble_model_class = (models::register_model_class("Ensemble", build_from_json), 1);
}

// ---- training ----------------------------------------------------------------------------------------------------

torch::Tensor fold_assignment(int64_t n, int64_t k, uint64_t seed) {
  if (k < 2) throw ConfigError("folds", "expected an integer of at least 2, got " + std::to_string(k));
  if (n < k) throw ShapeError("stacking: " + std::to_string(k) + " folds need at least " + std::to_string(k) +
                              " samples, got " + std::to_string(n));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto perm = torch::randperm(n, gen, torch::kLong);
  // Position j of the permutation goes to fold floor(j·k / n): k parts whose sizes differ by at most one.
  auto fold_of_position = torch::arange(n, torch::kLong).mul(k).div(n, "floor");
  auto folds = torch::empty({n}, torch::kLong);
  folds.index_put_({perm}, fold_of_position);
  return folds;
}

namespace {

training::FitOptions quiet_copy_fit(const EnsembleFitOptions& options) {
  training::FitOptions f = options.fit;
  f.validation_data(std::nullopt).callbacks({}).verbose(0).validation_split(0.0);
  return f;
}

// Every member's predictions (after its final activation), concatenated: the meta-model's input.
torch::Tensor stacked_predictions(const EnsembleImpl& e, const torch::Tensor& x, int64_t batch_size) {
  std::vector<torch::Tensor> outs;
  for (const auto& m : e.members()) outs.push_back(m->predict(x, batch_size));
  return e.stack_features(outs);
}

}  // namespace

torch::Tensor out_of_fold_predictions(const EnsembleImpl& ensemble, const torch::Tensor& x, const torch::Tensor& y,
                                      const torch::Tensor& folds, const EnsembleFitOptions& options) {
  if (!options.compile) throw ConfigError("compile", "fit_ensemble needs a compile function for the fold copies");
  const int64_t n = x.size(0);
  if (folds.dim() != 1 || folds.size(0) != n)
    throw ShapeError("stacking: the fold assignment must have one entry per sample (" + std::to_string(n) + ")");
  const int64_t k = folds.max().item<int64_t>() + 1;
  const auto& members = ensemble.members();
  torch::Tensor features;
  for (int64_t f = 0; f < k; ++f) {
    auto held_out = torch::nonzero(folds == f).flatten();
    auto train = torch::nonzero(folds != f).flatten();
    if (held_out.numel() == 0 || train.numel() == 0) continue;
    std::vector<torch::Tensor> outs;
    for (size_t i = 0; i < members.size(); ++i) {
      auto copy = models::model_from_json(ensemble.member_json(i), member_label(i));
      copy->to(device_of(*members[i]));
      options.compile(*copy);
      logger()->info("stacking: fold {}/{}, {} copy: training on {} samples, predicting {}", f + 1, k,
                     member_label(i), train.numel(), held_out.numel());
      training::FitOptions fit = quiet_copy_fit(options);
      if (fit.sample_weight().defined()) fit.sample_weight(fit.sample_weight().index_select(0, train));
      copy->fit(x.index_select(0, train), rows(y, train), fit);
      copy->eval();
      outs.push_back(copy->predict(x.index_select(0, held_out), options.fit.batch_size()));
    }
    auto part = ensemble.stack_features(outs);
    if (!features.defined()) {
      auto sizes = part.sizes().vec();
      sizes[0] = n;
      features = torch::full(sizes, std::numeric_limits<float>::quiet_NaN(), part.options());
    }
    features.index_copy_(0, held_out, part);
  }
  return features;
}

std::string history_csv(const EnsembleFitResult& result) {
  std::vector<std::pair<std::string, const training::History*>> runs;
  for (size_t i = 0; i < result.member_histories.size(); ++i)
    runs.emplace_back(member_label(i), &result.member_histories[i]);
  runs.emplace_back("meta_model", &result.meta_history);
  std::vector<std::string> names;
  for (const auto& run : runs)
    for (const auto& kv : run.second->history)
      if (std::find(names.begin(), names.end(), kv.first) == names.end()) names.push_back(kv.first);
  std::sort(names.begin(), names.end());
  std::string out = "model,epoch";
  for (const auto& n : names) out += "," + n;
  out += "\n";
  char buf[64];
  for (const auto& [label, h] : runs) {
    for (size_t e = 0; e < h->epoch.size(); ++e) {
      out += label + "," + std::to_string(h->epoch[e]);
      for (const auto& n : names) {
        out += ",";
        auto it = h->history.find(n);
        if (it != h->history.end() && e < it->second.size()) {
          std::snprintf(buf, sizeof buf, "%.8g", it->second[e]);
          out += buf;
        }
      }
      out += "\n";
    }
  }
  return out;
}

EnsembleFitResult fit_ensemble(EnsembleImpl& ensemble, const torch::Tensor& x, const torch::Tensor& y,
                               const EnsembleFitOptions& options) {
  if (!options.compile) throw ConfigError("compile", "fit_ensemble needs a compile function for the members");
  const auto& opts = ensemble.options();
  const auto& members = ensemble.members();
  const int64_t n = x.size(0);
  EnsembleFitResult result;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  for (size_t i = 0; i < members.size(); ++i) {
    auto& member = *members[i];
    options.compile(member);
    if (ensemble.pretrained()[i]) {
      logger()->info("{}: given trained, not trained again", member_label(i));
      result.member_histories.emplace_back();
      continue;
    }
    training::FitOptions fit = options.fit;
    fit.callbacks(options.callbacks ? options.callbacks(i) : std::vector<training::CallbackPtr>{});
    torch::Tensor xi = x, yi = y;
    if (opts.bagging()) {
      auto index = torch::randint(n, {n}, gen, torch::kLong);
      xi = x.index_select(0, index);
      yi = rows(y, index);
      if (fit.sample_weight().defined()) fit.sample_weight(fit.sample_weight().index_select(0, index));
      logger()->info("{}/{}: training on a bootstrap sample ({} distinct of {} samples)", member_label(i),
                     members.size(), torch::bincount(index, {}, n).gt(0).sum().item<int64_t>(), n);
    } else {
      logger()->info("{}/{}: training", member_label(i), members.size());
    }
    result.member_histories.push_back(member.fit(xi, yi, fit));
  }

  training::EvaluateOptions eval;
  eval.batch_size(options.fit.batch_size());
  if (options.validation) {
    for (const auto& m : members) result.member_validation.push_back(m->evaluate(options.validation->first,
                                                                               options.validation->second, eval));
  }
  if (opts.weights_from() == "validation") {
    if (!options.validation)
      throw ConfigError("weights", "\"validation\" weights need validation data (a validation file or "
                                   "data.validation_split)");
    std::string metric = opts.weight_metric();
    if (metric.empty()) {
      auto ms = members.front()->trainer().metrics();
      metric = ms.empty() ? "loss" : ms.front()->name();
    }
    const bool higher = callbacks::resolve_mode("auto", metric) == "max";
    std::vector<double> w;
    for (size_t i = 0; i < members.size(); ++i) {
      const auto& scores = result.member_validation[i];
      auto it = scores.find(metric);
      if (it == scores.end()) {
        std::string keys;
        for (const auto& kv : scores) keys += (keys.empty() ? "" : ", ") + kv.first;
        throw ConfigError("weight_metric", "members log no '" + metric + "' (they log: " + keys + ")");
      }
      double s = it->second;
      if (!std::isfinite(s) || s < 0 || (!higher && s <= 0))
        throw DataError(member_label(i), "its validation " + metric + " is " + std::to_string(s) +
                                             ", which cannot weigh it (expected a positive score)");
      w.push_back(higher ? s : 1.0 / s);
    }
    ensemble.set_weights(w);
    std::string shown;
    for (double v : ensemble.weights()) shown += (shown.empty() ? "" : ", ") + std::to_string(v);
    logger()->info("ensemble weights from validation {}: {}", metric, shown);
  }

  if (opts.combine() == "stacking") {
    auto folds = fold_assignment(n, opts.folds(), options.seed);
    auto features = out_of_fold_predictions(ensemble, x, y, folds, options);
    {
      // Builds the (default) meta-model on the stacked width.
      torch::NoGradGuard no_grad;
      ensemble.eval();
      ensemble.call({x.narrow(0, 0, 1).to(device_of(*members.front()))});
    }
    auto& meta = *ensemble.meta_model();
    options.compile(meta);
    training::FitOptions fit = options.meta_fit ? *options.meta_fit : quiet_copy_fit(options);
    fit.callbacks({});
    if (options.validation) {
      for (const auto& m : members) m->eval();
      fit.validation_data(std::make_pair(stacked_predictions(ensemble, options.validation->first, eval.batch_size()),
                                         options.validation->second));
    }
    logger()->info("stacking: training the meta-model on {} out-of-fold predictions of {} features", n,
                   features.size(-1));
    result.meta_history = meta.fit(features, y, fit);
  }
  ensemble.eval();
  result.weights = ensemble.weights();
  return result;
}

}  // namespace lighter::ensemble
