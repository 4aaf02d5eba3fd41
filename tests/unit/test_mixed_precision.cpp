#include "lighter_test.h"

#include <cmath>
#include <limits>

#include <ATen/Context.h>

#include "lighter/training/mixed_precision.h"

namespace T = lighter::training;
using T::Precision;
using lighter_test::max_abs_diff;

namespace {
// A parameter with a given gradient.
torch::Tensor param_with_grad(const torch::Tensor& grad) {
  auto p = torch::zeros_like(grad).requires_grad_(true);
  p.mutable_grad() = grad.clone();
  return p;
}
}  // namespace

TEST_CASE("Precision names round trip, other names are errors listing the choices", "[mixed_precision]") {
  for (auto p : {Precision::float32, Precision::mixed_float16, Precision::mixed_bfloat16})
    REQUIRE(T::precision_from_string(T::to_string(p)) == p);
  REQUIRE(T::to_string(Precision::mixed_float16) == "mixed_float16");
  REQUIRE(T::compute_dtype(Precision::float32) == torch::kFloat);
  REQUIRE(T::compute_dtype(Precision::mixed_float16) == torch::kHalf);
  REQUIRE(T::compute_dtype(Precision::mixed_bfloat16) == torch::kBFloat16);
  LIGHTER_REQUIRE_THROWS_WITH(T::precision_from_string("fp16", "config.precision"),
                              "config.precision: expected one of \"float32\", \"mixed_float16\", \"mixed_bfloat16\"");
  LIGHTER_REQUIRE_THROWS_WITH(T::precision_from_string("float16"), "mixed_precision: expected one of");
  LIGHTER_REQUIRE_THROWS_WITH(T::precision_from_string("bfloat16"), "only the mixed policies are supported");
  REQUIRE_THROWS_AS(T::precision_from_string("Float32"), lighter::ConfigError);
}

TEST_CASE("AutocastGuard runs CPU matrix products in bfloat16 inside and float32 outside, and nests",
          "[mixed_precision]") {
  const torch::Device cpu(torch::kCPU);
  REQUIRE(T::autocast_supported(Precision::mixed_bfloat16, cpu));
  REQUIRE(T::autocast_supported(Precision::float32, cpu));
  const auto dtype_before = T::autocast_dtype(torch::kCPU);
  REQUIRE_FALSE(T::autocast_enabled(torch::kCPU));

  torch::manual_seed(0);
  auto a = torch::randn({4, 3});
  auto b = torch::randn({3, 5});
  torch::nn::Linear linear(3, 2);
  {
    T::AutocastGuard guard(Precision::mixed_bfloat16, cpu);
    REQUIRE(guard.active());
    REQUIRE(T::autocast_enabled(torch::kCPU));
    REQUIRE(T::autocast_dtype(torch::kCPU) == torch::kBFloat16);
    auto product = torch::mm(a, b);
    REQUIRE(product.scalar_type() == torch::kBFloat16);
    // The same product as casting the inputs by hand.
    REQUIRE(max_abs_diff(product, torch::mm(a.to(torch::kBFloat16), b.to(torch::kBFloat16))) == 0.0);
    REQUIRE(linear(a).scalar_type() == torch::kBFloat16);
    REQUIRE(linear->weight.scalar_type() == torch::kFloat);  // variables stay float32
    {
      T::AutocastGuard inner(Precision::mixed_bfloat16, cpu);
      REQUIRE(torch::mm(a, b).scalar_type() == torch::kBFloat16);
    }
    // The inner guard restored "enabled", not "disabled".
    REQUIRE(T::autocast_enabled(torch::kCPU));
    REQUIRE(torch::mm(a, b).scalar_type() == torch::kBFloat16);
    if (T::autocast_supported(Precision::mixed_float16, cpu)) {
      {
        T::AutocastGuard inner(Precision::mixed_float16, cpu);
        REQUIRE(torch::mm(a, b).scalar_type() == torch::kHalf);
      }
      // The outer dtype is back.
      REQUIRE(T::autocast_dtype(torch::kCPU) == torch::kBFloat16);
      REQUIRE(torch::mm(a, b).scalar_type() == torch::kBFloat16);
    }
  }
  REQUIRE_FALSE(T::autocast_enabled(torch::kCPU));
  REQUIRE(T::autocast_dtype(torch::kCPU) == dtype_before);
  REQUIRE(torch::mm(a, b).scalar_type() == torch::kFloat);
  REQUIRE(linear(a).scalar_type() == torch::kFloat);

  // Gradients through an autocast forward reach the float32 weights in float32.
  {
    torch::Tensor loss;
    {
      T::AutocastGuard guard(Precision::mixed_bfloat16, cpu);
      loss = linear(a).sum();
    }
    loss.backward();
    REQUIRE(linear->weight.grad().scalar_type() == torch::kFloat);
  }
}

TEST_CASE("A float32 AutocastGuard changes nothing, an unsupported one is a ConfigError", "[mixed_precision]") {
  const torch::Device cpu(torch::kCPU);
  auto a = torch::randn({2, 2});
  {
    T::AutocastGuard guard(Precision::float32, cpu);
    REQUIRE_FALSE(guard.active());
    REQUIRE_FALSE(T::autocast_enabled(torch::kCPU));
    REQUIRE(torch::mm(a, a).scalar_type() == torch::kFloat);
  }
  {
    // float32 inside a mixed region leaves that region as it is.
    T::AutocastGuard outer(Precision::mixed_bfloat16, cpu);
    { T::AutocastGuard inner(Precision::float32, cpu); }
    REQUIRE(T::autocast_enabled(torch::kCPU));
  }
  REQUIRE_FALSE(T::autocast_enabled(torch::kCPU));

  if (!T::autocast_supported(Precision::mixed_float16, cpu)) {
    LIGHTER_REQUIRE_THROWS_WITH(T::AutocastGuard(Precision::mixed_float16, cpu),
                                "mixed_precision: mixed_float16 on cpu: CPU autocast in float16 is not available");
    REQUIRE_FALSE(T::autocast_enabled(torch::kCPU));
  }
  if (!torch::cuda::is_available()) {
    REQUIRE_FALSE(T::autocast_supported(Precision::mixed_bfloat16, torch::Device("cuda:0")));
    LIGHTER_REQUIRE_THROWS_WITH(T::AutocastGuard(Precision::mixed_bfloat16, torch::Device("cuda:0")),
                                "mixed_precision: mixed_bfloat16 on cuda:0: CUDA is not available");
  }
  REQUIRE(T::autocast_supported(Precision::float32, torch::Device("cuda:0")));
}

TEST_CASE("AutocastGuard and LossScaler on CUDA", "[mixed_precision][cuda]") {
  if (!torch::cuda::is_available()) {
    WARN("CUDA is not available: skipping the CUDA mixed-precision test");
    return;
  }
  const torch::Device cuda(torch::kCUDA, 0);
  auto a = torch::randn({8, 8}, cuda);
  {
    T::AutocastGuard guard(Precision::mixed_float16, cuda);
    REQUIRE(torch::mm(a, a).scalar_type() == torch::kHalf);
    {
      T::AutocastGuard inner(Precision::mixed_bfloat16, cuda);
      REQUIRE(torch::mm(a, a).scalar_type() == torch::kBFloat16);
    }
    REQUIRE(torch::mm(a, a).scalar_type() == torch::kHalf);
  }
  REQUIRE_FALSE(T::autocast_enabled(torch::kCUDA));
  REQUIRE(torch::mm(a, a).scalar_type() == torch::kFloat);

  // The fused unscale, with float and half gradients in separate groups.
  T::LossScaler scaler(8.0);
  auto p1 = param_with_grad(torch::tensor({8.0f, -16.0f}, torch::TensorOptions().device(cuda)));
  auto p2 = param_with_grad(torch::tensor({4.0f}, torch::TensorOptions().device(cuda).dtype(torch::kHalf)));
  REQUIRE(scaler.unscale({p1, p2}));
  REQUIRE(torch::equal(p1.grad().cpu(), torch::tensor({1.0f, -2.0f})));
  REQUIRE(p2.grad().item<float>() == 0.5f);
  auto p3 = param_with_grad(torch::tensor({1.0f, std::numeric_limits<float>::infinity()}, torch::TensorOptions().device(cuda)));
  REQUIRE_FALSE(scaler.unscale({p1, p3}));
}

TEST_CASE("LossScaler scales the loss and unscales gradients exactly", "[mixed_precision]") {
  T::LossScaler scaler(4.0);
  REQUIRE(scaler.scale_value() == 4.0);
  REQUIRE(scaler.scale(torch::tensor(1.5f)).item<float>() == 6.0f);

  auto p1 = param_with_grad(torch::tensor({4.0f, -2.0f, 1.0f}));
  auto p2 = param_with_grad(torch::tensor({{8.0, 12.0}}, torch::kDouble));
  auto no_grad = torch::ones({2}).requires_grad_(true);  // skipped: no gradient
  REQUIRE(scaler.unscale({p1, no_grad, p2}));
  REQUIRE(torch::equal(p1.grad(), torch::tensor({1.0f, -0.5f, 0.25f})));
  REQUIRE(torch::equal(p2.grad(), torch::tensor({{2.0, 3.0}}, torch::kDouble)));
  REQUIRE_FALSE(no_grad.grad().defined());
  REQUIRE(scaler.unscale({}));

  // A non-power-of-two scale multiplies by its reciprocal.
  T::LossScaler odd(3.0);
  auto p3 = param_with_grad(torch::tensor({3.0f, 6.0f}));
  REQUIRE(odd.unscale({p3}));
  REQUIRE(max_abs_diff(p3.grad(), torch::tensor({1.0f, 2.0f})) < 1e-6);

  // Sparse gradients are coalesced and their values unscaled.
  auto sparse_param = torch::zeros({3}).requires_grad_(true);
  auto indices = torch::tensor({{0, 2, 0}}, torch::kLong);
  sparse_param.mutable_grad() = torch::sparse_coo_tensor(indices, torch::tensor({2.0f, 4.0f, 6.0f}), {3});
  REQUIRE(scaler.unscale({sparse_param}));
  REQUIRE(torch::equal(sparse_param.grad().to_dense(), torch::tensor({2.0f, 0.0f, 1.0f})));
}

TEST_CASE("LossScaler finds infinite and NaN gradients", "[mixed_precision]") {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  T::LossScaler scaler(2.0);
  auto finite = param_with_grad(torch::tensor({2.0f}));
  REQUIRE_FALSE(scaler.unscale({finite, param_with_grad(torch::tensor({1.0f, inf}))}));
  REQUIRE_FALSE(scaler.unscale({param_with_grad(torch::tensor({-inf}))}));
  REQUIRE_FALSE(scaler.unscale({param_with_grad(torch::tensor({nan, 1.0f})), finite}));
  REQUIRE_FALSE(scaler.unscale({param_with_grad(torch::tensor({nan}, torch::kBFloat16))}));
  // Large but finite stays finite.
  REQUIRE(scaler.unscale({param_with_grad(torch::tensor({3.0e38f}))}));
}

TEST_CASE("LossScaler backs off on overflow and grows after growth_interval good steps", "[mixed_precision]") {
  T::LossScaler defaults;
  REQUIRE(defaults.scale_value() == 32768.0);
  REQUIRE(defaults.growth_factor() == 2.0);
  REQUIRE(defaults.backoff_factor() == 0.5);
  REQUIRE(defaults.growth_interval() == 2000);

  T::LossScaler scaler(1024.0, 2.0, 0.5, 3);
  scaler.update(false);
  scaler.update(false);
  REQUIRE(scaler.good_steps() == 2);
  REQUIRE(scaler.scale_value() == 1024.0);
  scaler.update(true);  // overflow: back off, count restarts
  REQUIRE(scaler.scale_value() == 512.0);
  REQUIRE(scaler.good_steps() == 0);
  scaler.update(false);
  scaler.update(false);
  REQUIRE(scaler.scale_value() == 512.0);
  scaler.update(false);  // the third good step in a row
  REQUIRE(scaler.scale_value() == 1024.0);
  REQUIRE(scaler.good_steps() == 0);
  scaler.update(true);
  scaler.update(true);
  REQUIRE(scaler.scale_value() == 256.0);

  // Growing never overflows to infinity.
  T::LossScaler huge(std::numeric_limits<double>::max() / 1.5, 2.0, 0.5, 1);
  const double before = huge.scale_value();
  huge.update(false);
  REQUIRE(huge.scale_value() == before);

  LIGHTER_REQUIRE_THROWS_WITH(T::LossScaler(0.0), "loss_scaler.initial_scale: expected a positive finite number");
  LIGHTER_REQUIRE_THROWS_WITH(T::LossScaler(8.0, 1.0), "loss_scaler.growth_factor");
  LIGHTER_REQUIRE_THROWS_WITH(T::LossScaler(8.0, 2.0, 1.0), "loss_scaler.backoff_factor");
  LIGHTER_REQUIRE_THROWS_WITH(T::LossScaler(8.0, 2.0, 0.5, 0), "loss_scaler.growth_interval");
}

TEST_CASE("LossScaler state round trips and rejects bad input", "[mixed_precision]") {
  T::LossScaler scaler(64.0, 2.0, 0.5, 10);
  scaler.update(true);
  scaler.update(false);
  scaler.update(false);
  auto s = scaler.state();
  REQUIRE(s == lighter::json({{"scale", 32.0}, {"good_steps", 2}}));
  T::LossScaler again(64.0, 2.0, 0.5, 10);
  again.load_state(s);
  REQUIRE(again.scale_value() == 32.0);
  REQUIRE(again.good_steps() == 2);
  REQUIRE(again.state() == s);

  LIGHTER_REQUIRE_THROWS_WITH(again.load_state(lighter::json::array()), "loss_scaler: expected an object");
  LIGHTER_REQUIRE_THROWS_WITH(again.load_state({{"good_steps", 1}}), "loss_scaler");
  LIGHTER_REQUIRE_THROWS_WITH(again.load_state({{"scale", -1.0}, {"good_steps", 1}}),
                              "loss_scaler.scale: expected a positive finite number");
  LIGHTER_REQUIRE_THROWS_WITH(again.load_state({{"scale", "big"}, {"good_steps", 1}}), "loss_scaler.scale");
  LIGHTER_REQUIRE_THROWS_WITH(again.load_state({{"scale", 2.0}, {"good_steps", 1.5}}),
                              "loss_scaler.good_steps: expected a non-negative integer");
  LIGHTER_REQUIRE_THROWS_WITH(again.load_state({{"scale", 2.0}, {"good_steps", 1}, {"extra", 0}}), "extra");
  // A rejected state leaves the scaler as it was.
  REQUIRE(again.state() == s);
}

TEST_CASE("A loss-scaled float32 training step gives the unscaled step's weights", "[mixed_precision]") {
  torch::manual_seed(7);
  torch::nn::Sequential plain(torch::nn::Linear(4, 8), torch::nn::Tanh(), torch::nn::Linear(8, 1));
  auto scaled = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(plain->clone());
  REQUIRE(scaled);
  torch::optim::SGD plain_opt(plain->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  torch::optim::SGD scaled_opt(scaled->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  T::LossScaler scaler(65536.0);  // a power of two: scaling and unscaling are exact

  for (int step = 0; step < 5; ++step) {
    auto x = torch::randn({16, 4});
    auto y = torch::randn({16, 1});
    plain_opt.zero_grad();
    torch::mse_loss(plain->forward(x), y).backward();
    plain_opt.step();

    scaled_opt.zero_grad();
    auto loss = torch::mse_loss(scaled->forward(x), y);
    scaler.scale(loss).backward();
    const bool finite = scaler.unscale(scaled->parameters());
    REQUIRE(finite);
    if (finite) scaled_opt.step();
    scaler.update(!finite);
  }
  auto a = plain->parameters();
  auto b = scaled->parameters();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) REQUIRE(max_abs_diff(a[i], b[i]) <= 1e-7);
  REQUIRE(scaler.good_steps() == 5);

  // An overflowing step is skipped and backs the scale off.
  scaled_opt.zero_grad();
  auto loss = torch::mse_loss(scaled->forward(torch::randn({2, 4})), torch::randn({2, 1}));
  T::LossScaler tiny_range(std::numeric_limits<float>::max());
  tiny_range.scale(loss * 1e10).backward();
  const bool finite = tiny_range.unscale(scaled->parameters());
  REQUIRE_FALSE(finite);
  tiny_range.update(!finite);
  REQUIRE(tiny_range.scale_value() == std::numeric_limits<float>::max() * 0.5);
}

TEST_CASE("set_deterministic toggles ATen's deterministic algorithms and cuDNN flags", "[mixed_precision]") {
  auto& context = at::globalContext();
  // Other tests expect the default (off), also when a check here fails.
  struct Restore {
    ~Restore() { T::set_deterministic(false); }
  } restore;
  REQUIRE_FALSE(T::deterministic());
  T::set_deterministic(true);
  REQUIRE(T::deterministic());
  REQUIRE(context.deterministicAlgorithms());
  REQUIRE_FALSE(context.deterministicAlgorithmsWarnOnly());
  REQUIRE(context.deterministicCuDNN());
  REQUIRE_FALSE(context.benchmarkCuDNN());
  if (torch::cuda::is_available()) REQUIRE(std::getenv("CUBLAS_WORKSPACE_CONFIG") != nullptr);
  T::set_deterministic(true, /*warn_only=*/true);
  REQUIRE(context.deterministicAlgorithmsWarnOnly());
  T::set_deterministic(false);
  REQUIRE_FALSE(T::deterministic());
  REQUIRE_FALSE(context.deterministicAlgorithms());
  REQUIRE_FALSE(context.deterministicCuDNN());
}
