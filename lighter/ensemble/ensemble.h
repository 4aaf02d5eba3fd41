#pragma once
/// Ensembles: several models kept at inference, their outputs combined by (weighted) averaging, hard voting or a
/// stacked meta-model (scikit-learn's VotingClassifier/VotingRegressor and StackingClassifier, over Lighter models).
///
///     auto e = std::make_shared<ensemble::EnsembleImpl>(std::vector<models::ModelPtr>{a, b, c},
///                                                        ensemble::EnsembleOptions().combine("hard_voting"));
///     ensemble::EnsembleFitOptions fit;
///     fit.compile = [](models::ModelImpl& m) { m.compile(optimizers::Adam(1e-3), "sparse_categorical_crossentropy"); };
///     fit.fit.epochs(10);
///     ensemble::fit_ensemble(*e, x, y, fit);   // trains every member (and a stacking meta-model)
///     e->compile(optimizers::Adam(1e-3), "sparse_categorical_crossentropy", {"accuracy"});
///     e->evaluate(x_test, y_test);            // the ensemble is a Model: evaluate, predict, save_model, summary
///
/// In JSON (the model part of a run config, or a model.json) an ensemble is
///     {"class_name": "Ensemble", "config": {"name": "ensemble", "combine": "average", "weights": null,
///      "members": [{"class_name": "Sequential", "config": {...}}, {"path": "runs/iris_dnn"}], "replicas": 1,
///      "bagging": false, "folds": 5, "meta_model": null}}
/// where a member is a model's Keras JSON or {"path": DIR}, a folder written by save_model / `lighter train`
/// (architecture and trained weights; such a member is not trained again).
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/arg.h>

#include "lighter/models/model.h"
#include "lighter/training/trainer.h"

namespace lighter::ensemble {

/// How the members' outputs (after their final activation) are combined:
///   "average"     Σ w_i p_i / Σ w_i: averaged class probabilities (scikit-learn's soft voting) or regression
///                 outputs;
///   "soft_voting" the same, for members that end with softmax or sigmoid (checked);
///   "hard_voting" each member votes for its most probable class (argmax over the last axis; a sigmoid member for
///                 p > 0.5) with weight w_i; the output is each class' share of the votes, so argmax is the
///                 majority (a tie goes to the lowest class id, as scikit-learn);
///   "stacking"    a meta-model takes the members' scores (stack_features) and makes the output, trained on
///                 out-of-fold predictions by fit_ensemble. The default meta-model is one Dense layer with the
///                 members' width and final activation, initialised to weigh every member 1/M (the log-linear
///                 average of the members), which training then re-weighs by member and class.
struct EnsembleOptions {
  TORCH_ARG(std::string, combine) = "average";
  /// Fixed weights, one per member (empty: equal). Non-negative with a positive sum.
  TORCH_ARG(std::vector<double>, weights) = {};
  /// "validation": fit_ensemble sets the weights from each member's score on the validation data, proportional to
  /// the score of `weight_metric` (or to 1/loss for "loss" and other lower-is-better scores). "": fixed weights.
  TORCH_ARG(std::string, weights_from) = "";
  /// The metric whose validation score weighs the members ("": the first compiled metric, else "loss").
  TORCH_ARG(std::string, weight_metric) = "";
  /// Bagging: fit_ensemble trains each member on a bootstrap sample (N rows drawn with replacement).
  TORCH_ARG(bool, bagging) = false;
  /// Stacking: the folds of the out-of-fold predictions the meta-model learns from (at least 2).
  TORCH_ARG(int64_t, folds) = 5;
};

class EnsembleImpl : public models::ModelImpl {
 public:
  /// Members must take the same inputs and have one output each of the same shape (checked once they are built).
  /// Stacking without a meta-model gets the default one (see "stacking" above) once the members are built.
  EnsembleImpl(std::vector<models::ModelPtr> members, EnsembleOptions options = {}, std::string name = "ensemble",
               models::ModelPtr meta_model = nullptr);

  const std::vector<models::ModelPtr>& members() const { return members_; }
  const EnsembleOptions& options() const { return options_; }
  /// The weight of each member (equal when none were given).
  std::vector<double> weights() const;
  /// Sets the members' weights (ConfigError for a wrong count, negative or non-finite weights or a zero sum).
  void set_weights(const std::vector<double>& weights);
  /// The stacking meta-model (null for the other combinations).
  const models::ModelPtr& meta_model() const { return meta_; }
  void set_meta_model(models::ModelPtr meta);
  /// Which members were given trained (loaded from a folder): fit_ensemble leaves them as they are.
  const std::vector<bool>& pretrained() const { return pretrained_; }
  void set_pretrained(std::vector<bool> pretrained);
  /// The JSON each member was built from (Keras JSON; for a member loaded from a folder, its architecture): fold
  /// copies of stacking are built from it.
  nlohmann::json member_json(size_t i) const;

  /// Each member's output for the inputs, after its final activation (what is combined).
  std::vector<torch::Tensor> member_outputs(const std::vector<torch::Tensor>& inputs,
                                            const std::vector<torch::Tensor>& masks = {});
  /// Combines member outputs as the ensemble does (not for stacking: see stack_features).
  torch::Tensor combine(const std::vector<torch::Tensor>& outputs) const;
  /// The meta-model's input: each member's output as a score before its final activation (log p for softmax,
  /// log p − log(1 − p) for sigmoid, p clamped to [1e-7, 1 − 1e-7]; other outputs as they are), concatenated along
  /// the last axis: (N, M·C) for M members of C outputs.
  torch::Tensor stack_features(const std::vector<torch::Tensor>& outputs) const;

  /// The combined output, with the members' (or the meta-model's) final activation. Asked for the
  /// pre-activation value (losses fold softmax/sigmoid into crossentropy), an averaged or voted probability p
  /// gives log p (softmax) or log p − log(1 − p) (sigmoid), clamped away from 0 and 1, so the activation
  /// maps it back to p.
  models::ModelOutputs call(const std::vector<torch::Tensor>& inputs, const std::vector<torch::Tensor>& masks = {},
                            const std::vector<bool>& pre_activation = {}) override;
  std::string output_activation() const override;
  size_t num_inputs() const override { return members_.front()->num_inputs(); }
  std::vector<std::string> input_names() const override { return members_.front()->input_names(); }
  std::vector<std::string> output_names() const override { return {model_name()}; }
  std::vector<Shape> input_shapes() const override { return members_.front()->input_shapes(); }
  std::vector<std::string> input_dtypes() const override { return members_.front()->input_dtypes(); }
  std::vector<std::string> output_activations() const override { return {output_activation()}; }
  /// Every member's layers, then the meta-model's (so count_params counts them all).
  std::vector<layers::LayerPtr> layers() const override;
  bool built() const override;
  Shape input_shape() const override { return members_.front()->input_shape(); }
  Shape output_shape() const override;
  std::string input_dtype() const override { return members_.front()->input_dtype(); }
  /// {"class_name": "Ensemble", "config": {...}} with every member inline (its Keras JSON), so a saved ensemble
  /// is one model.json and one model.safetensors (tensors `member_0.<name>`, ..., `meta_model.<name>`).
  nlohmann::json to_json() const override;
  void adapt(const torch::Tensor& x) override;

 protected:
  /// summary()'s rows: one per member (and the meta-model): name, class, output shape, parameters.
  std::vector<SummaryRow> summary_rows() const override;

 private:
  void check_members() const;
  void make_default_meta();
  std::vector<models::ModelPtr> members_;
  std::vector<bool> pretrained_;
  models::ModelPtr meta_;
  EnsembleOptions options_;
  bool checked_ = false;  // check_members ran (once the members are built)
};

/// Builds an ensemble from its JSON config (see the top of this file); `path` prefixes errors. Members given by
/// folder are loaded with their weights (relative folders resolve against the working directory; `lighter train`
/// resolves them against the config file's folder). "replicas": k repeats the member list k times (each copy
/// with its own initial weights).
std::shared_ptr<EnsembleImpl> ensemble_from_json(const nlohmann::json& config, const std::string& path = "model.config");

/// How fit_ensemble trains.
struct EnsembleFitOptions {
  /// Compiles a freshly built model for training (each member, each stacking fold copy, the meta-model).
  std::function<void(models::ModelImpl&)> compile;
  /// The fit of each member (its validation_data, if any, gives the members' validation logs) and of the
  /// meta-model (epochs and batch size; default: `fit`'s).
  training::FitOptions fit;
  std::optional<training::FitOptions> meta_fit;
  /// Fresh callbacks for the fit of member i (fit.callbacks is not shared between members; EarlyStopping and the
  /// like keep per-run state). Null: none.
  std::function<std::vector<training::CallbackPtr>(size_t)> callbacks;
  /// Seeds bagging's bootstrap draws and the fold assignment of stacking.
  uint64_t seed = 42;
  /// Held-out data for weights_from "validation" (ConfigError when it is needed and missing).
  std::optional<std::pair<torch::Tensor, torch::Tensor>> validation;
};

/// What fit_ensemble did: each member's history (empty for pretrained members), the meta-model's, each member's
/// validation scores (when validation data was given) and the weights in use.
struct EnsembleFitResult {
  std::vector<training::History> member_histories;
  training::History meta_history;
  std::vector<std::map<std::string, double>> member_validation;
  std::vector<double> weights;
};

/// The histories of a fit_ensemble as one CSV: a header `model,epoch,<names...>` (the union of the logged names)
/// and one row per epoch of each trained member (`member_0`, ...) and of the meta-model (`meta_model`); a value a
/// model did not log is left empty.
std::string history_csv(const EnsembleFitResult& result);

/// Trains the members that are not pretrained on (x, y), one after another (each on a bootstrap sample with
/// bagging); sets the weights from validation scores when asked; for stacking, trains the meta-model on
/// out_of_fold_predictions. Leaves the ensemble in eval mode.
EnsembleFitResult fit_ensemble(EnsembleImpl& ensemble, const torch::Tensor& x, const torch::Tensor& y,
                               const EnsembleFitOptions& options);

/// The fold (0..k-1) of each of n samples: a seeded random permutation cut into k nearly equal parts.
torch::Tensor fold_assignment(int64_t n, int64_t k, uint64_t seed);

/// Stacking's training inputs: for each fold, a fresh copy of every member (built from member_json, compiled with
/// options.compile) trains on the other folds and predicts this fold, so no prediction comes from a model that
/// saw the sample's label. Returns stack_features of those predictions, (N, M·C) in the samples' order.
torch::Tensor out_of_fold_predictions(const EnsembleImpl& ensemble, const torch::Tensor& x, const torch::Tensor& y,
                                      const torch::Tensor& folds, const EnsembleFitOptions& options);

}  // namespace lighter::ensemble
