// Builds a small model through the installed interface and trains it a few steps.
#include <cstdio>

#include <lighter/lighter.h>

int main() {
  namespace L = lighter;
  L::seed_everything(0);
  auto model = L::Sequential({L::Input({2}), L::Dense(L::DenseOptions(8).activation("tanh")), L::Dense(1)});
  model->compile(L::optimizers::adam(0.05), "mse", {"mae"});
  auto x = torch::randn({64, 2});
  auto y = (x.select(1, 0) - 2 * x.select(1, 1)).unsqueeze(1);
  auto history = model->fit(x, y, L::FitOptions().epochs(30).batch_size(16).verbose(0));
  double first = history.history.at("loss").front(), last = history.history.at("loss").back();
  std::printf("consumer: loss %.4f -> %.4f\n", first, last);
  return last < first / 2 ? 0 : 1;
}
