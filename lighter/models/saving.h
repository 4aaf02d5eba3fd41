#pragma once
/// Saving and loading models: the architecture as Keras JSON (model.json) and the weights as safetensors
/// (model.safetensors), keyed by the registered module names (`dense.weight`, `normalization.mean`, ...).
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "lighter/models/model.h"

namespace lighter {

/// The tensors a weight file holds, by registered name: parameters, then buffers (shared with the model). Adapter
/// tensors (lighter/peft, under a layer's adapter hook) are left out unless `with_adapters` (resumable checkpoints
/// keep them); adapters have their own files.
std::vector<std::pair<std::string, torch::Tensor>> model_tensors(const models::ModelImpl& model,
                                                                 bool with_adapters = false);

/// Writes the weights (parameters and weight buffers) of a built model to a safetensors file, atomically.
void save_weights(const models::ModelImpl& model, const std::string& file);

/// Loads weights saved by save_weights into a model of the same architecture. Every tensor must be present with
/// the model's shape and dtype, and the file must hold nothing else; otherwise a DataError names the file and the
/// first offending tensor, and the model is left unchanged.
void load_weights(models::ModelImpl& model, const std::string& file);

/// Saves `model.json` and `model.safetensors` into folder `dir` (created if needed). `extra` is stored as
/// `lighter.json` beside them (e.g. the class names of the training labels) when not null.
void save_model(const models::ModelImpl& model, const std::string& dir, const nlohmann::json& extra = nullptr);

/// Loads a model saved by save_model; it predicts exactly what the saved one did.
models::ModelPtr load_model(const std::string& dir);

/// The `lighter.json` written by save_model (null when absent).
nlohmann::json load_model_extra(const std::string& dir);

}  // namespace lighter
