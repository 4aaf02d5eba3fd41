#include "lighter/layers/initializers.h"

#include <cmath>
#include <map>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "lighter/core/json.h"

namespace lighter::initializers {

namespace {

// snake_case alias -> Keras class name.
const std::map<std::string, std::string>& aliases() {
  static const std::map<std::string, std::string> a = {
      {"zeros", "Zeros"},           {"ones", "Ones"},
      {"constant", "Constant"},     {"random_normal", "RandomNormal"},
      {"random_uniform", "RandomUniform"}, {"truncated_normal", "TruncatedNormal"},
      {"glorot_normal", "GlorotNormal"},   {"glorot_uniform", "GlorotUniform"},
      {"he_normal", "HeNormal"},    {"he_uniform", "HeUniform"},
      {"lecun_normal", "LecunNormal"}, {"lecun_uniform", "LecunUniform"},
      {"orthogonal", "Orthogonal"}, {"variance_scaling", "VarianceScaling"},
      {"Zero", "Zeros"},            {"One", "Ones"},
      {"uniform", "RandomUniform"}, {"normal", "RandomNormal"},  // Keras' short aliases
      {"OrthogonalInitializer", "Orthogonal"}};  // Keras 3's class name
  return a;
}

// Class name -> default config (the keys Keras writes).
const std::map<std::string, json>& defaults() {
  static const std::map<std::string, json> d = {
      {"Zeros", json::object()},
      {"Ones", json::object()},
      {"Constant", {{"value", 0.0}}},
      {"RandomNormal", {{"mean", 0.0}, {"stddev", 0.05}, {"seed", nullptr}}},
      {"RandomUniform", {{"minval", -0.05}, {"maxval", 0.05}, {"seed", nullptr}}},
      {"TruncatedNormal", {{"mean", 0.0}, {"stddev", 0.05}, {"seed", nullptr}}},
      {"GlorotNormal", {{"seed", nullptr}}},
      {"GlorotUniform", {{"seed", nullptr}}},
      {"HeNormal", {{"seed", nullptr}}},
      {"HeUniform", {{"seed", nullptr}}},
      {"LecunNormal", {{"seed", nullptr}}},
      {"LecunUniform", {{"seed", nullptr}}},
      {"Orthogonal", {{"gain", 1.0}, {"seed", nullptr}}},
      {"VarianceScaling",
       {{"scale", 1.0}, {"mode", "fan_in"}, {"distribution", "truncated_normal"}, {"seed", nullptr}}}};
  return d;
}

std::string known_names() {
  std::string out;
  for (const auto& kv : defaults()) out += (out.empty() ? "" : ", ") + kv.first;
  for (const auto& kv : aliases()) out += ", " + kv.first;
  return out;
}

c10::optional<at::Generator> generator_for(const json& config) {
  auto it = config.find("seed");
  if (it == config.end() || it->is_null()) return c10::nullopt;
  return at::detail::createCPUGenerator(it->get<uint64_t>());
}

// Normal samples redrawn until they lie within two standard deviations (Keras' TruncatedNormal).
torch::Tensor truncated_standard_normal(at::IntArrayRef sizes, const c10::optional<at::Generator>& gen) {
  auto t = torch::empty(sizes, torch::kFloat);
  t.normal_(0.0, 1.0, gen);
  for (int i = 0; i < 100; ++i) {
    auto outside = t.abs() > 2.0;
    if (!outside.any().item<bool>()) break;
    auto fresh = torch::empty(sizes, torch::kFloat).normal_(0.0, 1.0, gen);
    t = torch::where(outside, fresh, t);
  }
  return t;
}

void variance_scaling_fill(torch::Tensor& t, double scale, const std::string& mode, const std::string& distribution,
                           int64_t fan_in, int64_t fan_out, const c10::optional<at::Generator>& gen) {
  double fan = mode == "fan_in" ? fan_in : mode == "fan_out" ? fan_out : (fan_in + fan_out) / 2.0;
  scale /= std::max(1.0, fan);
  if (distribution == "uniform") {
    double limit = std::sqrt(3.0 * scale);
    t.uniform_(-limit, limit, gen);
  } else if (distribution == "untruncated_normal" || distribution == "normal") {
    t.normal_(0.0, std::sqrt(scale), gen);
  } else {
    // Keras divides by the stddev of a unit normal truncated at ±2 so the variance comes out as `scale`.
    double stddev = std::sqrt(scale) / 0.87962566103423978;
    t.copy_(truncated_standard_normal(t.sizes(), gen) * stddev);
  }
}

void orthogonal_fill(torch::Tensor& t, double gain, const c10::optional<at::Generator>& gen) {
  if (t.dim() < 2) throw ConfigError("initializer", "Orthogonal needs a tensor of rank 2 or more");
  int64_t rows = t.size(0), cols = t.numel() / rows;
  auto flat = torch::empty({std::max(rows, cols), std::min(rows, cols)}, torch::kFloat).normal_(0.0, 1.0, gen);
  auto qr = torch::linalg_qr(flat);
  auto q = std::get<0>(qr) * torch::sign(torch::diagonal(std::get<1>(qr)));
  if (rows < cols) q = q.t();
  t.copy_((q * gain).reshape(t.sizes()));
}

}  // namespace

json normalize(const json& spec, const std::string& path) {
  ClassSpec s = read_class_spec(spec, path, "initializer");
  std::string name = s.class_name;
  const json& config = s.config;
  auto alias = aliases().find(name);
  if (alias != aliases().end()) name = alias->second;
  auto def = defaults().find(name);
  if (def == defaults().end())
    throw ConfigError(path, "unknown initializer '" + name + "' (supported: " + known_names() + ")");
  json out = def->second;
  const std::string& cpath = s.config_path;
  for (auto it = config.begin(); it != config.end(); ++it) {
    // Keras 2.0-2.2 wrote the weight dtype into initializer configs; float32 is what Lighter creates anyway.
    if (it.key() == "dtype" && it.value() == json("float32")) continue;
    if (!out.contains(it.key()))
      throw ConfigError(join_path(cpath, it.key()), "unknown key for " + name);
    const json& v = it.value();
    bool ok = it.key() == "seed" ? (v.is_null() || (v.is_number_integer() && v.get<int64_t>() >= 0))
              : (it.key() == "mode" || it.key() == "distribution") ? v.is_string()
                                                                     : v.is_number();
    if (!ok) throw ConfigError(join_path(cpath, it.key()), "unexpected value " + describe(v));
    out[it.key()] = v;
  }
  for (const char* key : {"stddev", "gain"})
    if (out.contains(key) && !(out[key].get<double>() >= 0))
      throw ConfigError(join_path(cpath, key), "expected a non-negative number, got " + describe(out[key]));
  if (name == "RandomUniform" && !(out["minval"].get<double>() <= out["maxval"].get<double>()))
    throw ConfigError(join_path(cpath, "maxval"), "maxval must not be below minval");
  if (name == "VarianceScaling") {
    std::string mode = out["mode"], dist = out["distribution"];
    if (mode != "fan_in" && mode != "fan_out" && mode != "fan_avg")
      throw ConfigError(join_path(cpath, "mode"), "expected fan_in, fan_out or fan_avg, got \"" + mode + "\"");
    if (dist != "truncated_normal" && dist != "untruncated_normal" && dist != "normal" && dist != "uniform")
      throw ConfigError(join_path(cpath, "distribution"),
                        "expected truncated_normal, untruncated_normal or uniform, got \"" + dist + "\"");
    if (!(out["scale"].get<double>() > 0)) throw ConfigError(join_path(cpath, "scale"), "expected a positive number");
  }
  return json{{"class_name", name}, {"config", out}};
}

void apply(torch::Tensor& tensor, const json& spec, int64_t fan_in, int64_t fan_out) {
  torch::NoGradGuard no_grad;
  json n = normalize(spec);
  const std::string name = n["class_name"];
  const json& c = n["config"];
  auto gen = generator_for(c);
  // Fill a CPU float tensor, then copy into the target (which may live on another device or dtype).
  auto t = torch::empty(tensor.sizes(), torch::kFloat);
  if (name == "Zeros") {
    t.zero_();
  } else if (name == "Ones") {
    t.fill_(1.0);
  } else if (name == "Constant") {
    t.fill_(c["value"].get<double>());
  } else if (name == "RandomNormal") {
    t.normal_(c["mean"].get<double>(), c["stddev"].get<double>(), gen);
  } else if (name == "RandomUniform") {
    t.uniform_(c["minval"].get<double>(), c["maxval"].get<double>(), gen);
  } else if (name == "TruncatedNormal") {
    t.copy_(truncated_standard_normal(t.sizes(), gen) * c["stddev"].get<double>() + c["mean"].get<double>());
  } else if (name == "GlorotNormal") {
    variance_scaling_fill(t, 1.0, "fan_avg", "truncated_normal", fan_in, fan_out, gen);
  } else if (name == "GlorotUniform") {
    variance_scaling_fill(t, 1.0, "fan_avg", "uniform", fan_in, fan_out, gen);
  } else if (name == "HeNormal") {
    variance_scaling_fill(t, 2.0, "fan_in", "truncated_normal", fan_in, fan_out, gen);
  } else if (name == "HeUniform") {
    variance_scaling_fill(t, 2.0, "fan_in", "uniform", fan_in, fan_out, gen);
  } else if (name == "LecunNormal") {
    variance_scaling_fill(t, 1.0, "fan_in", "truncated_normal", fan_in, fan_out, gen);
  } else if (name == "LecunUniform") {
    variance_scaling_fill(t, 1.0, "fan_in", "uniform", fan_in, fan_out, gen);
  } else if (name == "VarianceScaling") {
    variance_scaling_fill(t, c["scale"].get<double>(), c["mode"], c["distribution"], fan_in, fan_out, gen);
  } else if (name == "Orthogonal") {
    orthogonal_fill(t, c["gain"].get<double>(), gen);
  }
  tensor.copy_(t);
}

json constant(double value) { return {{"class_name", "Constant"}, {"config", {{"value", value}}}}; }
json random_normal(double mean, double stddev) {
  return {{"class_name", "RandomNormal"}, {"config", {{"mean", mean}, {"stddev", stddev}, {"seed", nullptr}}}};
}
json random_uniform(double minval, double maxval) {
  return {{"class_name", "RandomUniform"}, {"config", {{"minval", minval}, {"maxval", maxval}, {"seed", nullptr}}}};
}
json variance_scaling(double scale, const std::string& mode, const std::string& distribution) {
  return normalize({{"class_name", "VarianceScaling"},
                    {"config", {{"scale", scale}, {"mode", mode}, {"distribution", distribution}}}});
}

}  // namespace lighter::initializers
