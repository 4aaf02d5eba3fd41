// Ensembles and weight soups on Fashion-MNIST (the real 60,000 + 10,000 images of Debian's dataset-fashion-mnist):
// independently trained members and their ensembles (averaging, hard voting, validation weights, stacking), then
// fine-tuned variants of one model and their uniform and greedy soups, all scored on the 10,000 test images.
//
//   build/example_ensemble [options]        run from the repository root; --help lists the options
#include <cstdio>
#include <filesystem>

#include "examples/ensemble/ensemble_example.h"
#include "examples/tnn/args.h"

namespace L = lighter;
namespace X = ensemble_example;

int main(int argc, char** argv) {
  try {
    tnn::Args args(std::vector<std::string>(argv + 1, argv + argc),
                   {"--members", "--epochs", "--hidden", "--folds", "--pretrain-epochs", "--variants",
                    "--finetune-epochs", "--limit", "--threads", "--output", "--data"});
    if (args.help()) {
      std::puts(
          "usage: example_ensemble [options]\n"
          "  --members N          independently trained members (default 5)\n"
          "  --epochs N           epochs per member (default 5)\n"
          "  --hidden N           hidden units of the MLP (default 256)\n"
          "  --folds N            stacking folds (default 3)\n"
          "  --pretrain-epochs N  epochs of the model the soup variants start from (default 3)\n"
          "  --variants N         fine-tuned variants in the soups (default 5)\n"
          "  --finetune-epochs N  epochs per variant (default 2)\n"
          "  --limit N            use the first N training images only (default: all 50,000)\n"
          "  --threads N          intra-op threads (default: LibTorch's)\n"
          "  --data DIR           the Fashion-MNIST folder (default /usr/share/datasets/fashion-mnist)\n"
          "  --output DIR         where results.json goes (default runs/example_ensemble)");
      return 0;
    }
    X::Options o;
    o.members = args.integer("--members", o.members, 1);
    o.epochs = args.integer("--epochs", o.epochs, 1);
    o.hidden = args.integer("--hidden", o.hidden, 1);
    o.folds = args.integer("--folds", o.folds, 2);
    o.pretrain_epochs = args.integer("--pretrain-epochs", o.pretrain_epochs, 1);
    o.variants = args.integer("--variants", o.variants, 1);
    o.finetune_epochs = args.integer("--finetune-epochs", o.finetune_epochs, 1);
    o.verbose = 2;
    const int64_t limit = args.integer("--limit", 0);
    const int64_t threads = args.integer("--threads", 0);
    if (threads > 0) torch::set_num_threads(static_cast<int>(threads));
    const std::string output = args.text("--output", "runs/example_ensemble");

    auto [train_all, test_table] = L::data::load_fashion_mnist(args.text("--data", L::data::kFashionMnistDir));
    // The last 10,000 of the shuffled training images are the validation set (validation weights, greedy soup).
    L::seed_everything(o.seed);
    auto order = torch::randperm(train_all.size(), torch::kLong);
    auto x = train_all.x.index_select(0, order), y = train_all.y.index_select(0, order);
    const int64_t n_valid = 10000, n_train = x.size(0) - n_valid;
    X::Split train{x.narrow(0, 0, n_train), y.narrow(0, 0, n_train)};
    X::Split valid{x.narrow(0, n_train, n_valid), y.narrow(0, n_train, n_valid)};
    if (limit > 0 && limit < n_train) train = {train.x.narrow(0, 0, limit), train.y.narrow(0, 0, limit)};
    X::Split test{test_table.x, test_table.y};
    const int64_t classes = static_cast<int64_t>(train_all.classes.size());
    std::printf("Fashion-MNIST: %lld training, %lld validation, %lld test images; %d threads\n",
                static_cast<long long>(train.x.size(0)), static_cast<long long>(n_valid),
                static_cast<long long>(test.x.size(0)), torch::get_num_threads());

    auto start = std::chrono::steady_clock::now();
    auto rows = X::run_ensembles(train, valid, test, classes, o);
    auto soups = X::run_soups(train, valid, test, classes, o);
    rows.insert(rows.end(), soups.begin(), soups.end());
    X::print(rows);
    std::printf("total %.0f s\n", X::seconds_since(start));

    std::filesystem::create_directories(output);
    nlohmann::json result = {{"dataset", "fashion-mnist"},
                             {"train", train.x.size(0)},
                             {"validation", n_valid},
                             {"test", test.x.size(0)},
                             {"options",
                              {{"members", o.members}, {"epochs", o.epochs}, {"hidden", o.hidden}, {"folds", o.folds},
                               {"pretrain_epochs", o.pretrain_epochs}, {"variants", o.variants},
                               {"finetune_epochs", o.finetune_epochs}}},
                             {"rows", X::to_json(rows)}};
    L::write_file_atomic(output + "/results.json", result.dump(2) + "\n");
    std::printf("results: %s/results.json\n", output.c_str());
  } catch (const L::Error& e) {
    std::fprintf(stderr, "example_ensemble: %s\n", e.what());
    return 1;
  }
  return 0;
}
