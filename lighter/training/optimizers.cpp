#include "lighter/training/optimizers.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <sstream>
#include <type_traits>

#include "lighter/core/error.h"
#include "lighter/core/json.h"

namespace lighter::optimizers {

namespace {

// ---- config parsing -----------------------------------------------------------------------------------------------

enum class Kind { fraction, unit, non_negative, boolean };

struct Param {
  const char* key;
  Kind kind;
  double fallback;  // 0/1 for booleans
};

struct ClassInfo {
  const char* class_name;
  const char* default_name;  // Keras 3's default `name`
  double default_lr;
  std::vector<Param> params;
};

const std::vector<ClassInfo>& classes() {
  static const std::vector<ClassInfo> all = {
      {"SGD", "SGD", 0.01, {{"momentum", Kind::unit, 0.0}, {"nesterov", Kind::boolean, 0}}},
      {"Adam",
       "adam",
       0.001,
       {{"beta_1", Kind::fraction, 0.9},
        {"beta_2", Kind::fraction, 0.999},
        {"epsilon", Kind::non_negative, 1e-7},
        {"amsgrad", Kind::boolean, 0}}},
      {"AdamW",
       "adamw",
       0.001,
       {{"beta_1", Kind::fraction, 0.9},
        {"beta_2", Kind::fraction, 0.999},
        {"epsilon", Kind::non_negative, 1e-7},
        {"amsgrad", Kind::boolean, 0}}},
      {"RMSprop",
       "rmsprop",
       0.001,
       {{"rho", Kind::fraction, 0.9},
        {"momentum", Kind::unit, 0.0},
        {"epsilon", Kind::non_negative, 1e-7},
        {"centered", Kind::boolean, 0}}},
      {"Adagrad",
       "adagrad",
       0.001,
       {{"initial_accumulator_value", Kind::non_negative, 0.1}, {"epsilon", Kind::non_negative, 1e-7}}},
      {"Adamax",
       "adamax",
       0.001,
       {{"beta_1", Kind::fraction, 0.9}, {"beta_2", Kind::fraction, 0.999}, {"epsilon", Kind::non_negative, 1e-7}}},
      {"Nadam",
       "nadam",
       0.001,
       {{"beta_1", Kind::fraction, 0.9}, {"beta_2", Kind::fraction, 0.999}, {"epsilon", Kind::non_negative, 1e-7}}},
  };
  return all;
}

// A number > 0, or null (absent) -> null.
json nullable_positive(ConfigReader& r, const std::string& key) {
  const json& v = r.raw_or_null(key);
  if (v.is_null()) return nullptr;
  if (!v.is_number() || !(v.get<double>() > 0))
    throw ConfigError(r.path_of(key), "expected a positive number or null, got " + describe(v));
  return v.get<double>();
}

json nullable_non_negative(ConfigReader& r, const std::string& key) {
  const json& v = r.raw_or_null(key);
  if (v.is_null()) return nullptr;
  if (!v.is_number() || !(v.get<double>() >= 0))
    throw ConfigError(r.path_of(key), "expected a non-negative number or null, got " + describe(v));
  return v.get<double>();
}

// Keys Keras accepts but Lighter only supports at their neutral value.
OptimizerSpec parse_config(const ClassInfo& info, const json& config, const std::string& path) {
  ConfigReader r(config, path);
  json out = json::object();
  out["name"] = r.get<std::string>("name", info.default_name);

  const json& lr = r.raw_or_null("learning_rate");
  if (lr.is_object()) {
    // A schedule (keras.optimizers.schedules) is kept in its validated, complete form.
    out["learning_rate"] = schedules::to_json(*schedules::from_json(lr, r.path_of("learning_rate")));
  } else {
    out["learning_rate"] = r.positive("learning_rate", info.default_lr);
  }

  if (std::string(info.class_name) == "AdamW") {
    const json& wd = r.raw_or_null("weight_decay");
    if (wd.is_null() && r.object().count("weight_decay"))
      throw ConfigError(r.path_of("weight_decay"), "AdamW needs a weight_decay number, got null");
    out["weight_decay"] = r.non_negative("weight_decay", 0.004);
  } else {
    out["weight_decay"] = nullable_non_negative(r, "weight_decay");
  }

  // Keras refuses more than one clipping option.
  std::string first_clip;
  for (const char* key : {"clipnorm", "global_clipnorm", "clipvalue"}) {
    out[key] = nullable_positive(r, key);
    if (out[key].is_null()) continue;
    if (!first_clip.empty())
      throw ConfigError(r.path_of(key), "only one of clipnorm, clipvalue and global_clipnorm can be set (" +
                                            first_clip + " is set too)");
    first_clip = key;
  }

  if (r.get<bool>("use_ema", false))
    throw ConfigError(r.path_of("use_ema"), "use_ema=true (moving average of the weights) is not supported");
  out["use_ema"] = false;
  double ema_momentum = r.get<double>("ema_momentum", 0.99);
  if (!(ema_momentum >= 0 && ema_momentum <= 1))
    throw ConfigError(r.path_of("ema_momentum"), "expected a number in [0, 1], got " + describe(r.raw("ema_momentum")));
  out["ema_momentum"] = ema_momentum;
  out["ema_overwrite_frequency"] =
      r.has("ema_overwrite_frequency") ? json(r.positive_int("ema_overwrite_frequency")) : json(nullptr);
  r.raw_or_null("ema_overwrite_frequency");  // mark it seen when null
  r.require_null("loss_scale_factor");
  out["loss_scale_factor"] = nullptr;
  // Keras 3: the variables are updated every N steps with the mean of the gradients since the last update.
  out["gradient_accumulation_steps"] =
      r.has("gradient_accumulation_steps") ? json(r.positive_int("gradient_accumulation_steps")) : json(nullptr);
  r.raw_or_null("gradient_accumulation_steps");

  // Keras 2 keys: accepted, checked, dropped.
  r.get<bool>("jit_compile", true);
  r.get<bool>("is_legacy_optimizer", false);
  if (r.get<double>("decay", 0.0) != 0.0)
    throw ConfigError(r.path_of("decay"),
                      "Keras 2's learning-rate decay is not supported yet (use 0), got " + describe(r.raw("decay")));

  for (const Param& p : info.params) {
    switch (p.kind) {
      case Kind::boolean:
        out[p.key] = r.get<bool>(p.key, p.fallback != 0);
        break;
      case Kind::fraction:
        out[p.key] = r.fraction(p.key, p.fallback);
        break;
      case Kind::non_negative:
        out[p.key] = r.non_negative(p.key, p.fallback);
        break;
      case Kind::unit: {
        double v = r.get<double>(p.key, p.fallback);
        if (!(v >= 0 && v <= 1))
          throw ConfigError(r.path_of(p.key), "expected a number in [0, 1], got " + describe(r.raw(p.key)));
        out[p.key] = v;
        break;
      }
    }
  }
  r.finish();
  return OptimizerSpec{info.class_name, std::move(out)};
}

Registry<OptimizerSpec, const json&, const std::string&> make_registry() {
  Registry<OptimizerSpec, const json&, const std::string&> reg("optimizer");
  for (const ClassInfo& info : classes()) {
    const ClassInfo* p = &info;
    reg.add(info.class_name, [p](const json& config, const std::string& path) { return parse_config(*p, config, path); });
    std::string lower = info.class_name;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    reg.alias(lower, info.class_name);
  }
  return reg;
}

// Exact name first, then case-insensitively ("RMSProp", "ADAM").
OptimizerSpec create(const std::string& name, const json& config, const std::string& name_path,
                     const std::string& config_path) {
  const auto& reg = registry();
  std::string key = name;
  if (!reg.contains(key)) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (reg.contains(lower)) key = lower;
  }
  if (!reg.contains(key)) return reg.create(name, name_path, config, config_path);  // throws, listing known names
  return reg.create(key, name_path, config, config_path);
}

OptimizerSpec build(const std::string& class_name, json config) { return create(class_name, config, "optimizer", "optimizer"); }

// ---- helpers for the torch optimizers ---------------------------------------------------------------------------

// torch 1.13 to ~2.1 key the optimizer state by the TensorImpl address printed as a string; later versions by the
// address itself. Pick the form the installed torch uses so our state is found by torch's own save/load.
using StateMap = std::decay_t<decltype(std::declval<torch::optim::Optimizer&>().state())>;
using StateKey = typename StateMap::key_type;

inline std::string state_key_as(std::string*, const torch::Tensor& p) {
  std::ostringstream out;
  out << static_cast<const void*>(p.unsafeGetTensorImpl());
  return out.str();
}
inline void* state_key_as(void**, const torch::Tensor& p) { return static_cast<void*>(p.unsafeGetTensorImpl()); }
inline StateKey state_key(const torch::Tensor& p) { return state_key_as(static_cast<StateKey*>(nullptr), p); }

void write_tensor(torch::serialize::OutputArchive& archive, const char* key, const torch::Tensor& t) {
  // Undefined tensors are skipped, as torch does for its own states.
  if (t.defined()) archive.write(key, c10::IValue(t));
}

torch::Tensor read_tensor(torch::serialize::InputArchive& archive, const char* key) {
  c10::IValue value;
  if (archive.try_read(key, value)) return value.toTensor();
  return {};
}

double read_double(torch::serialize::InputArchive& archive, const char* key, double fallback) {
  c10::IValue value;
  if (archive.try_read(key, value)) return value.toDouble();
  return fallback;
}

int64_t read_int(torch::serialize::InputArchive& archive, const char* key, int64_t fallback) {
  c10::IValue value;
  if (archive.try_read(key, value)) return value.toInt();
  return fallback;
}

}  // namespace

// ---- OptimizerSpec --------------------------------------------------------------------------------------------

OptimizerSpec OptimizerSpec::with(const std::string& key, const json& value) const {
  json config = this->config;
  config[key] = value;
  return create(class_name, config, "optimizer.class_name", "optimizer");
}

bool operator==(const OptimizerSpec& a, const OptimizerSpec& b) {
  return a.class_name == b.class_name && a.config == b.config;
}
bool operator!=(const OptimizerSpec& a, const OptimizerSpec& b) { return !(a == b); }

OptimizerSpec sgd(double learning_rate, double momentum, bool nesterov) {
  return build("SGD", {{"learning_rate", learning_rate}, {"momentum", momentum}, {"nesterov", nesterov}});
}

OptimizerSpec adam(double learning_rate, double beta_1, double beta_2, double epsilon, bool amsgrad) {
  return build("Adam", {{"learning_rate", learning_rate},
                        {"beta_1", beta_1},
                        {"beta_2", beta_2},
                        {"epsilon", epsilon},
                        {"amsgrad", amsgrad}});
}

OptimizerSpec adamw(double learning_rate, double weight_decay, double beta_1, double beta_2, double epsilon,
                    bool amsgrad) {
  return build("AdamW", {{"learning_rate", learning_rate},
                         {"weight_decay", weight_decay},
                         {"beta_1", beta_1},
                         {"beta_2", beta_2},
                         {"epsilon", epsilon},
                         {"amsgrad", amsgrad}});
}

OptimizerSpec rmsprop(double learning_rate, double rho, double momentum, double epsilon, bool centered) {
  return build("RMSprop", {{"learning_rate", learning_rate},
                           {"rho", rho},
                           {"momentum", momentum},
                           {"epsilon", epsilon},
                           {"centered", centered}});
}

OptimizerSpec adagrad(double learning_rate, double initial_accumulator_value, double epsilon) {
  return build("Adagrad", {{"learning_rate", learning_rate},
                           {"initial_accumulator_value", initial_accumulator_value},
                           {"epsilon", epsilon}});
}

OptimizerSpec adamax(double learning_rate, double beta_1, double beta_2, double epsilon) {
  return build("Adamax", {{"learning_rate", learning_rate}, {"beta_1", beta_1}, {"beta_2", beta_2}, {"epsilon", epsilon}});
}

OptimizerSpec nadam(double learning_rate, double beta_1, double beta_2, double epsilon) {
  return build("Nadam", {{"learning_rate", learning_rate}, {"beta_1", beta_1}, {"beta_2", beta_2}, {"epsilon", epsilon}});
}

const Registry<OptimizerSpec, const json&, const std::string&>& registry() {
  static const auto reg = make_registry();
  return reg;
}

OptimizerSpec from_json(const json& spec, const std::string& path) {
  if (spec.is_string()) return create(spec.get<std::string>(), json::object(), path, path);
  if (!spec.is_object())
    throw ConfigError(path, "expected an optimizer name or {\"class_name\", \"config\"}, got " + describe(spec));
  ConfigReader r(spec, path);
  r.ignore({"module", "registered_name"});
  std::string class_name = r.get<std::string>("class_name");
  const json& config = r.raw_or_null("config");
  r.finish();
  static const json empty = json::object();
  return create(class_name, config.is_null() ? empty : config, r.path_of("class_name"), r.path_of("config"));
}

json to_json(const OptimizerSpec& spec) { return {{"class_name", spec.class_name}, {"config", spec.config}}; }

// ---- Optimizer ------------------------------------------------------------------------------------------------

Optimizer::Optimizer(OptimizerSpec spec, std::vector<torch::Tensor> parameters)
    : spec_(from_json(to_json(spec), "optimizer")) {
  const json& c = spec_.config;
  const std::string& name = spec_.class_name;
  double lr = 0;
  if (c.at("learning_rate").is_object()) {
    schedule_ = schedules::from_json(c.at("learning_rate"), "optimizer.learning_rate");
    lr = (*schedule_)(0);
  } else {
    lr = c.at("learning_rate").get<double>();
  }
  auto num = [&c](const char* key) { return c.at(key).get<double>(); };
  auto flag = [&c](const char* key) { return c.at(key).get<bool>(); };

  if (name == "SGD") {
    optimizer_ = std::make_unique<torch::optim::SGD>(
        parameters, torch::optim::SGDOptions(lr).momentum(num("momentum")).nesterov(flag("nesterov")));
  } else if (name == "Adam" || name == "AdamW") {
    auto betas = std::make_tuple(num("beta_1"), num("beta_2"));
    if (name == "Adam") {
      optimizer_ = std::make_unique<torch::optim::Adam>(
          parameters, torch::optim::AdamOptions(lr).betas(betas).eps(num("epsilon")).amsgrad(flag("amsgrad")));
    } else {
      // torch's AdamW decays exactly as Keras does (p *= 1 - lr * wd, before the update), so it does it.
      optimizer_ = std::make_unique<torch::optim::AdamW>(parameters, torch::optim::AdamWOptions(lr)
                                                                         .betas(betas)
                                                                         .eps(num("epsilon"))
                                                                         .amsgrad(flag("amsgrad"))
                                                                         .weight_decay(num("weight_decay")));
    }
  } else if (name == "RMSprop") {
    optimizer_ = std::make_unique<torch::optim::RMSprop>(parameters, torch::optim::RMSpropOptions(lr)
                                                                         .alpha(num("rho"))
                                                                         .eps(num("epsilon"))
                                                                         .momentum(num("momentum"))
                                                                         .centered(flag("centered")));
  } else if (name == "Adagrad") {
    optimizer_ = std::make_unique<torch::optim::Adagrad>(
        parameters,
        torch::optim::AdagradOptions(lr).initial_accumulator_value(num("initial_accumulator_value")).eps(num("epsilon")));
  } else if (name == "Adamax") {
    optimizer_ = std::make_unique<Adamax>(
        parameters, AdamaxOptions(lr).beta_1(num("beta_1")).beta_2(num("beta_2")).epsilon(num("epsilon")));
  } else if (name == "Nadam") {
    optimizer_ = std::make_unique<Nadam>(
        parameters, NadamOptions(lr).beta_1(num("beta_1")).beta_2(num("beta_2")).epsilon(num("epsilon")));
  } else {
    throw ConfigError("optimizer.class_name", "no torch mapping for optimizer '" + name + "'");
  }

  if (name != "AdamW" && !c.at("weight_decay").is_null()) weight_decay_ = num("weight_decay");
  if (!c.at("clipvalue").is_null()) {
    clip_ = Clip::value;
    clip_threshold_ = num("clipvalue");
  } else if (!c.at("clipnorm").is_null()) {
    clip_ = Clip::norm;
    clip_threshold_ = num("clipnorm");
  } else if (!c.at("global_clipnorm").is_null()) {
    clip_ = Clip::global_norm;
    clip_threshold_ = num("global_clipnorm");
  }
  grads_.reserve(parameters.size());
}

void Optimizer::zero_grad() { optimizer_->zero_grad(); }

void Optimizer::clip_gradients() {
  grads_.clear();
  for (auto& group : optimizer_->param_groups())
    for (auto& p : group.params())
      if (p.grad().defined()) grads_.push_back(p.grad());
  if (grads_.empty()) return;
  const double c = clip_threshold_;
  switch (clip_) {
    case Clip::none:
      break;
    case Clip::value:
      for (auto& g : grads_) g.clamp_(-c, c);
      break;
    case Clip::norm:
      // Keras' clip_by_norm: g * c / max(||g||, c); kept on the device (no .item() sync).
      for (auto& g : grads_) g.mul_(g.norm().clamp_min(c).reciprocal().mul_(c));
      break;
    case Clip::global_norm: {
      // Keras' clip_by_global_norm: every g * c / max(||(g_1, ..., g_n)||, c).
      std::vector<torch::Tensor> norms;
      norms.reserve(grads_.size());
      for (auto& g : grads_) {
        // Half-precision norms overflow easily; measure them in float.
        bool half = g.scalar_type() == torch::kHalf || g.scalar_type() == torch::kBFloat16;
        norms.push_back((half ? g.to(torch::kFloat) : g).norm().to(torch::kDouble));
      }
      auto scale = torch::stack(norms).norm().clamp_min(c).reciprocal().mul_(c);
      for (auto& g : grads_) g.mul_(scale.to(g.scalar_type()));
      break;
    }
  }
}

void Optimizer::apply_weight_decay() {
  // Keras: p -= p * weight_decay * lr, with the group's current learning rate.
  for (auto& group : optimizer_->param_groups()) {
    const double factor = 1.0 - group.options().get_lr() * weight_decay_;
    for (auto& p : group.params())
      if (p.grad().defined()) p.mul_(factor);
  }
}

void Optimizer::step() {
  torch::NoGradGuard no_grad;
  if (clip_ != Clip::none) clip_gradients();
  // Keras evaluates a schedule at optimizer.iterations, the number of updates done before this one.
  if (schedule_) set_group_learning_rate((*schedule_)(iterations_));
  if (weight_decay_ > 0) apply_weight_decay();
  optimizer_->step();
  ++iterations_;
}

double Optimizer::learning_rate() const { return optimizer_->param_groups().at(0).options().get_lr(); }

void Optimizer::set_learning_rate(double lr) {
  if (schedule_)
    throw Error("the learning rate of an optimizer built with a learning-rate schedule (" + schedule_->class_name() +
                ") cannot be set; the schedule sets it at every step");
  if (!(lr >= 0)) throw ConfigError("learning_rate", "expected a non-negative number, got " + std::to_string(lr));
  set_group_learning_rate(lr);
}

void Optimizer::set_group_learning_rate(double lr) {
  for (auto& group : optimizer_->param_groups()) group.options().set_lr(lr);
}

void Optimizer::set_iterations(int64_t iterations) {
  if (iterations < 0) throw Error("optimizer iterations must be non-negative, got " + std::to_string(iterations));
  iterations_ = iterations;
  if (schedule_) set_group_learning_rate((*schedule_)(iterations_));
}

torch::optim::Optimizer& Optimizer::torch_optimizer() { return *optimizer_; }
const OptimizerSpec& Optimizer::spec() const { return spec_; }

// ---- Adamax ---------------------------------------------------------------------------------------------------

void AdamaxOptions::serialize(torch::serialize::OutputArchive& archive) const {
  archive.write("lr", c10::IValue(lr()));
  archive.write("beta_1", c10::IValue(beta_1()));
  archive.write("beta_2", c10::IValue(beta_2()));
  archive.write("epsilon", c10::IValue(epsilon()));
}

void AdamaxOptions::serialize(torch::serialize::InputArchive& archive) {
  lr(read_double(archive, "lr", lr()));
  beta_1(read_double(archive, "beta_1", beta_1()));
  beta_2(read_double(archive, "beta_2", beta_2()));
  epsilon(read_double(archive, "epsilon", epsilon()));
}

void AdamaxParamState::serialize(torch::serialize::OutputArchive& archive) const {
  archive.write("step", c10::IValue(step()));
  write_tensor(archive, "exp_avg", exp_avg());
  write_tensor(archive, "exp_inf", exp_inf());
}

void AdamaxParamState::serialize(torch::serialize::InputArchive& archive) {
  step(read_int(archive, "step", 0));
  exp_avg(read_tensor(archive, "exp_avg"));
  exp_inf(read_tensor(archive, "exp_inf"));
}

Adamax::Adamax(std::vector<torch::optim::OptimizerParamGroup> param_groups, AdamaxOptions defaults)
    : torch::optim::Optimizer(std::move(param_groups), std::make_unique<AdamaxOptions>(defaults)) {
  TORCH_CHECK(defaults.lr() >= 0, "Invalid learning rate: ", defaults.lr());
  TORCH_CHECK(defaults.beta_1() >= 0 && defaults.beta_1() < 1, "Invalid beta_1: ", defaults.beta_1());
  TORCH_CHECK(defaults.beta_2() >= 0 && defaults.beta_2() < 1, "Invalid beta_2: ", defaults.beta_2());
  TORCH_CHECK(defaults.epsilon() >= 0, "Invalid epsilon: ", defaults.epsilon());
}

Adamax::Adamax(std::vector<torch::Tensor> params, AdamaxOptions defaults)
    : Adamax(std::vector<torch::optim::OptimizerParamGroup>{torch::optim::OptimizerParamGroup(std::move(params))},
             defaults) {}

torch::Tensor Adamax::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const AdamaxOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const auto& grad = p.grad();
      auto key = state_key(p);
      auto it = state_.find(key);
      if (it == state_.end()) {
        auto fresh = std::make_unique<AdamaxParamState>();
        fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        fresh->exp_inf(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        it = state_.emplace(key, std::move(fresh)).first;
      }
      auto& state = static_cast<AdamaxParamState&>(*it->second);
      state.step(state.step() + 1);
      auto& m = state.exp_avg();
      auto& u = state.exp_inf();
      m.lerp_(grad, 1 - options.beta_1());  // m += (g - m)(1 - beta_1)
      u.mul_(options.beta_2());
      torch::maximum_out(u, u, grad.abs());  // u = max(beta_2 u, |g|)
      const double step_size = options.lr() / (1 - std::pow(options.beta_1(), static_cast<double>(state.step())));
      p.addcdiv_(m, u + options.epsilon(), -step_size);
    }
  }
  return loss;
}

void Adamax::save(torch::serialize::OutputArchive& archive) const {
  torch::optim::serialize<AdamaxParamState, AdamaxOptions>(archive, *this);
}

void Adamax::load(torch::serialize::InputArchive& archive) {
  torch::optim::serialize<AdamaxParamState, AdamaxOptions>(archive, *this);
}

// ---- Nadam ----------------------------------------------------------------------------------------------------

void NadamOptions::serialize(torch::serialize::OutputArchive& archive) const {
  archive.write("lr", c10::IValue(lr()));
  archive.write("beta_1", c10::IValue(beta_1()));
  archive.write("beta_2", c10::IValue(beta_2()));
  archive.write("epsilon", c10::IValue(epsilon()));
}

void NadamOptions::serialize(torch::serialize::InputArchive& archive) {
  lr(read_double(archive, "lr", lr()));
  beta_1(read_double(archive, "beta_1", beta_1()));
  beta_2(read_double(archive, "beta_2", beta_2()));
  epsilon(read_double(archive, "epsilon", epsilon()));
}

void NadamParamState::serialize(torch::serialize::OutputArchive& archive) const {
  archive.write("step", c10::IValue(step()));
  write_tensor(archive, "exp_avg", exp_avg());
  write_tensor(archive, "exp_avg_sq", exp_avg_sq());
  archive.write("mu_product", c10::IValue(mu_product()));
}

void NadamParamState::serialize(torch::serialize::InputArchive& archive) {
  step(read_int(archive, "step", 0));
  exp_avg(read_tensor(archive, "exp_avg"));
  exp_avg_sq(read_tensor(archive, "exp_avg_sq"));
  mu_product(read_double(archive, "mu_product", 1.0));
}

Nadam::Nadam(std::vector<torch::optim::OptimizerParamGroup> param_groups, NadamOptions defaults)
    : torch::optim::Optimizer(std::move(param_groups), std::make_unique<NadamOptions>(defaults)) {
  TORCH_CHECK(defaults.lr() >= 0, "Invalid learning rate: ", defaults.lr());
  TORCH_CHECK(defaults.beta_1() >= 0 && defaults.beta_1() < 1, "Invalid beta_1: ", defaults.beta_1());
  TORCH_CHECK(defaults.beta_2() >= 0 && defaults.beta_2() < 1, "Invalid beta_2: ", defaults.beta_2());
  TORCH_CHECK(defaults.epsilon() >= 0, "Invalid epsilon: ", defaults.epsilon());
}

Nadam::Nadam(std::vector<torch::Tensor> params, NadamOptions defaults)
    : Nadam(std::vector<torch::optim::OptimizerParamGroup>{torch::optim::OptimizerParamGroup(std::move(params))},
            defaults) {}

torch::Tensor Nadam::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const NadamOptions&>(group.options());
    const double beta_1 = options.beta_1(), beta_2 = options.beta_2();
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const auto& grad = p.grad();
      auto key = state_key(p);
      auto it = state_.find(key);
      if (it == state_.end()) {
        auto fresh = std::make_unique<NadamParamState>();
        fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        fresh->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        it = state_.emplace(key, std::move(fresh)).first;
      }
      auto& state = static_cast<NadamParamState&>(*it->second);
      state.step(state.step() + 1);
      const double t = static_cast<double>(state.step());
      const double u_t = beta_1 * (1.0 - 0.5 * std::pow(0.96, t));
      const double u_next = beta_1 * (1.0 - 0.5 * std::pow(0.96, t + 1));
      const double u_product = state.mu_product() * u_t;
      const double u_product_next = u_product * u_next;
      state.mu_product(u_product);

      auto& m = state.exp_avg();
      auto& v = state.exp_avg_sq();
      m.lerp_(grad, 1 - beta_1);
      v.mul_(beta_2).addcmul_(grad, grad, 1 - beta_2);
      // p -= lr * m_hat / (sqrt(v_hat) + eps), with m_hat split into its m and g parts.
      auto denom = (v / (1 - std::pow(beta_2, t))).sqrt_().add_(options.epsilon());
      p.addcdiv_(m, denom, -options.lr() * u_next / (1 - u_product_next));
      p.addcdiv_(grad, denom, -options.lr() * (1 - u_t) / (1 - u_product));
    }
  }
  return loss;
}

void Nadam::save(torch::serialize::OutputArchive& archive) const {
  torch::optim::serialize<NadamParamState, NadamOptions>(archive, *this);
}

void Nadam::load(torch::serialize::InputArchive& archive) {
  torch::optim::serialize<NadamParamState, NadamOptions>(archive, *this);
}

}  // namespace lighter::optimizers
