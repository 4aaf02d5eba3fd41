#include "lighter/models/saving.h"

#include <filesystem>

#include <torch/torch.h>

#include "lighter/core/error.h"
#include "lighter/core/json.h"
#include "lighter/core/safetensors.h"
#include "lighter/models/keras_json.h"

namespace lighter {

std::vector<std::pair<std::string, torch::Tensor>> model_tensors(const models::ModelImpl& model, bool with_adapters) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : model.named_parameters(true))
    if (with_adapters || !layers::detail::is_adapter_tensor_name(p.key())) out.emplace_back(p.key(), p.value());
  for (const auto& b : model.named_buffers(true))
    if (with_adapters || !layers::detail::is_adapter_tensor_name(b.key())) out.emplace_back(b.key(), b.value());
  return out;
}

namespace {

std::string shape_str(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

void save_weights(const models::ModelImpl& model, const std::string& file) {
  if (!model.built()) throw ShapeError("cannot save the weights of model '" + model.model_name() + "': it is not built yet");
  save_safetensors(file, model_tensors(model), {{"format", "pt"}, {"producer", "lighter"}});
}

void load_weights(models::ModelImpl& model, const std::string& file) {
  if (!model.built()) throw ShapeError("cannot load weights into model '" + model.model_name() + "': it is not built yet");
  auto stored = load_safetensors(file);
  auto wanted = model_tensors(model);
  // Validate everything before copying anything, so a bad file leaves the model as it was.
  for (const auto& [name, tensor] : wanted) {
    auto it = stored.find(name);
    if (it == stored.end()) throw DataError(file, "tensor '" + name + "' is missing (is this the weights of another model?)");
    if (it->second.sizes() != tensor.sizes())
      throw DataError(file, "tensor '" + name + "' has shape " + shape_str(it->second.sizes()) + ", the model expects " +
                                shape_str(tensor.sizes()));
    if (it->second.scalar_type() != tensor.scalar_type())
      throw DataError(file, "tensor '" + name + "' has dtype " + std::string(c10::toString(it->second.scalar_type())) +
                                ", the model expects " + c10::toString(tensor.scalar_type()));
  }
  if (stored.size() != wanted.size()) {
    for (const auto& kv : stored) {
      bool known = false;
      for (const auto& w : wanted) known = known || w.first == kv.first;
      if (!known) throw DataError(file, "tensor '" + kv.first + "' does not belong to the model");
    }
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, tensor] : wanted) tensor.copy_(stored.at(name));
  for (const auto& layer : model.layers()) layer->on_weights_loaded();
}

void save_model(const models::ModelImpl& model, const std::string& dir, const nlohmann::json& extra) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw DataError(dir, "cannot create folder: " + ec.message());
  save_weights(model, dir + "/model.safetensors");
  write_file_atomic(dir + "/model.json", model.to_json().dump(2) + "\n");
  if (!extra.is_null()) {
    write_file_atomic(dir + "/lighter.json", extra.dump(2) + "\n");
  } else {
    std::filesystem::remove(dir + "/lighter.json", ec);  // a stale one would describe another model
  }
}

models::ModelPtr load_model(const std::string& dir) {
  if (!std::filesystem::is_directory(dir)) throw DataError(dir, "no saved model here (expected a folder with model.json)");
  auto model = models::model_from_file(dir + "/model.json");
  if (!model->built())
    throw DataError(dir + "/model.json", "the architecture has no input shape, so its weights cannot be placed");
  load_weights(*model, dir + "/model.safetensors");
  return model;
}

nlohmann::json load_model_extra(const std::string& dir) {
  std::string file = dir + "/lighter.json";
  if (!std::filesystem::exists(file)) return nullptr;
  return read_json_file(file);
}

}  // namespace lighter
