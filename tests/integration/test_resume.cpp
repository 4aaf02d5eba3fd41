#include "lighter_test.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "lighter/callbacks/backup_and_restore.h"
#include "lighter/callbacks/csv_logger.h"
#include "lighter/callbacks/early_stopping.h"
#include "lighter/callbacks/lambda_callback.h"
#include "lighter/callbacks/reduce_lr_on_plateau.h"
#include "lighter/core/safetensors.h"
#include "lighter/data/csv.h"
#include "lighter/models/saving.h"

namespace L = lighter;
namespace C = lighter::callbacks;
using namespace lighter::layers;
namespace fs = std::filesystem;

namespace {

// Real data: sklearn's 8x8 digits (the CSV the digits example trains on), first 600 rows.
std::pair<torch::Tensor, torch::Tensor> digits() {
  L::data::CsvOptions o;
  o.target("digit").kind(L::data::TargetKind::Classification);
  auto t = L::data::read_csv(lighter_test::source_path("examples/data/digits_train.csv"), o);
  return {t.x.narrow(0, 0, 600) / 16.0, t.y.narrow(0, 0, 600)};
}

// A model with a seeded and an unseeded dropout (both random streams must resume), compiled with Adam.
L::Sequential digits_model() {
  auto model = L::Sequential({Input({64}), Dense(DenseOptions(32).activation("relu")), Dropout(0.3),
                              Dense(DenseOptions(16).activation("relu")), Dropout(DropoutOptions(0.2).seed(7)),
                              Dense(DenseOptions(10).activation("softmax"))});
  model->compile(L::optimizers::adam(3e-3), "sparse_categorical_crossentropy", {"accuracy"});
  return model;
}

// The callbacks whose state a resumed fit must carry on: patience counters, best values, a CSV file.
std::vector<L::training::CallbackPtr> stateful_callbacks(const std::string& dir) {
  return {std::make_shared<C::EarlyStopping>(C::EarlyStoppingOptions().patience(50).restore_best_weights(true)),
          std::make_shared<C::ReduceLROnPlateau>(C::ReduceLROnPlateauOptions().patience(1).factor(0.5).min_delta(0.5)),
          std::make_shared<C::CSVLogger>(dir + "/log.csv")};
}

L::training::FitOptions fit_options(int64_t epochs) {
  L::training::FitOptions o;
  o.epochs(epochs).batch_size(32).validation_split(0.2).verbose(0);
  return o;
}

std::map<std::string, torch::Tensor> weights(L::models::ModelImpl& model) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : model.named_parameters()) out[p.key()] = p.value().detach().clone();
  for (const auto& b : model.named_buffers()) out[b.key()] = b.value().detach().clone();
  return out;
}

void require_identical(const std::map<std::string, torch::Tensor>& a, const std::map<std::string, torch::Tensor>& b) {
  REQUIRE(a.size() == b.size());
  for (const auto& [name, t] : a) {
    INFO(name);
    REQUIRE(torch::equal(t, b.at(name)));
  }
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct Crash : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace

TEST_CASE("BackupAndRestore: a fit that crashed resumes to exactly the uninterrupted weights", "[training][checkpoint]") {
  auto [x, y] = digits();
  const int64_t epochs = 7;
  std::string dir = lighter_test::temp_dir("resume_cpp");

  // Uninterrupted.
  torch::manual_seed(11);
  auto a = digits_model();
  fs::create_directories(dir + "/a");
  auto history_a = a->fit(x, y, fit_options(epochs).callbacks(stateful_callbacks(dir + "/a")));
  auto weights_a = weights(*a);

  // Interrupted: an exception in epoch 4's on_epoch_end, before the backup of that epoch is written.
  torch::manual_seed(11);
  auto b = digits_model();
  fs::create_directories(dir + "/b");
  auto crash = std::make_shared<C::LambdaCallback>();
  crash->on_epoch_end_fn = [](int64_t epoch, L::training::Logs&) {
    if (epoch == 3) throw Crash("simulated crash");
  };
  C::BackupAndRestoreOptions backup(dir + "/b/backup");
  auto callbacks_b = stateful_callbacks(dir + "/b");
  callbacks_b.push_back(std::make_shared<C::BackupAndRestore>(backup));
  callbacks_b.push_back(crash);
  REQUIRE_THROWS_AS(b->fit(x, y, fit_options(epochs).callbacks(callbacks_b)), Crash);
  auto info = L::training::Trainer::checkpoint_info(dir + "/b/backup/checkpoint.safetensors");
  REQUIRE(info["epoch"] == 3);

  // A new process would start from a fresh model, whatever the generators did meanwhile.
  torch::manual_seed(999);
  auto c = digits_model();
  // Resumed with the same callbacks (the crashing one now passive): a checkpoint restores into the same list.
  crash->on_epoch_end_fn = nullptr;
  auto callbacks_c = stateful_callbacks(dir + "/b");
  callbacks_c.push_back(std::make_shared<C::BackupAndRestore>(backup));
  callbacks_c.push_back(crash);
  auto history_c = c->fit(x, y, fit_options(epochs).callbacks(callbacks_c));

  require_identical(weights_a, weights(*c));
  REQUIRE(history_c.epoch == history_a.epoch);
  REQUIRE(history_c.history == history_a.history);
  // The learning rate was reduced on the same epochs (its plateau counters came back), and the CSV log has every
  // epoch once, as the uninterrupted run's.
  REQUIRE(history_a.history.at("learning_rate").back() < 3e-3);
  REQUIRE(read_all(dir + "/b/log.csv") == read_all(dir + "/a/log.csv"));
  // delete_checkpoint (Keras' default): a finished fit leaves no backup.
  REQUIRE_FALSE(fs::exists(dir + "/b/backup"));
}

TEST_CASE("BackupAndRestore: corrupt or truncated checkpoints are refused, the previous good one loads",
          "[training][checkpoint]") {
  auto [x, y] = digits();
  std::string dir = lighter_test::temp_dir("resume_corrupt");
  C::BackupAndRestoreOptions backup(dir + "/backup");
  backup.double_checkpoint(true).delete_checkpoint(false);
  torch::manual_seed(3);
  auto model = digits_model();
  model->fit(x, y, fit_options(3).callbacks({std::make_shared<C::BackupAndRestore>(backup)}));
  std::string latest = dir + "/backup/checkpoint.safetensors", previous = dir + "/backup/checkpoint.prev.safetensors";
  REQUIRE(L::training::Trainer::checkpoint_info(latest)["epoch"] == 3);
  REQUIRE(L::training::Trainer::checkpoint_info(previous)["epoch"] == 2);
  std::string good_latest = read_all(latest);

  // A flipped byte in the data: the checksum catches it.
  std::string bytes = good_latest;
  bytes[bytes.size() - 100] = static_cast<char>(bytes[bytes.size() - 100] ^ 0x01);
  L::write_file_atomic(latest, bytes);
  LIGHTER_REQUIRE_THROWS_WITH(L::training::Trainer::checkpoint_info(latest), "checksum");
  // Truncated (a copy cut short, a full disk): refused with the file's name.
  L::write_file_atomic(latest, good_latest.substr(0, good_latest.size() / 2));
  LIGHTER_REQUIRE_THROWS_WITH(L::training::Trainer::checkpoint_info(latest), "truncated");
  LIGHTER_REQUIRE_THROWS_WITH(L::training::Trainer::checkpoint_info(latest), latest);

  // Resuming falls back to the previous checkpoint: the fit goes on from epoch 3 (index 2), so it runs 2 epochs.
  torch::manual_seed(3);
  auto resumed = digits_model();
  auto history = resumed->fit(x, y, fit_options(4).callbacks({std::make_shared<C::BackupAndRestore>(backup)}));
  REQUIRE(history.epoch == std::vector<int64_t>{0, 1, 2, 3});  // History came back with epochs 0 and 1
  REQUIRE(L::training::Trainer::checkpoint_info(latest)["epoch"] == 4);

  // Without a previous checkpoint, a corrupt one is an error naming it, and the model is left as it was.
  L::write_file_atomic(latest, good_latest.substr(0, 64));
  fs::remove(previous);
  auto fresh = digits_model();
  fresh->fit(x.narrow(0, 0, 8), y.narrow(0, 0, 8), fit_options(0));  // builds the optimizer, trains nothing
  auto before = weights(*fresh);
  LIGHTER_REQUIRE_THROWS_WITH(fresh->fit(x, y, fit_options(4).callbacks({std::make_shared<C::BackupAndRestore>(backup)})),
                              latest);
  require_identical(before, weights(*fresh));

  // A checkpoint of another architecture is refused before anything changes.
  L::write_file_atomic(latest, good_latest);
  auto other = L::Sequential({Input({64}), Dense(DenseOptions(10).activation("softmax"))});
  other->compile(L::optimizers::adam(3e-3), "sparse_categorical_crossentropy");
  LIGHTER_REQUIRE_THROWS_WITH(other->fit(x, y, fit_options(4).callbacks({std::make_shared<C::BackupAndRestore>(backup)})),
                              "another model architecture");

  // Weight files: truncated or corrupt model.safetensors is refused by load_model with its name.
  std::string saved = dir + "/saved";
  L::save_model(*model, saved);
  std::string w = read_all(saved + "/model.safetensors");
  L::write_file_atomic(saved + "/model.safetensors", w.substr(0, w.size() - 7));
  LIGHTER_REQUIRE_THROWS_WITH(L::load_model(saved), "model.safetensors");
  w[w.size() - 3] = static_cast<char>(w[w.size() - 3] ^ 0x40);
  L::write_file_atomic(saved + "/model.safetensors", w);
  LIGHTER_REQUIRE_THROWS_WITH(L::load_model(saved), "checksum");
}

TEST_CASE("lighter train --resume after SIGKILL ends with the weights of an uninterrupted run", "[cli][checkpoint]") {
  std::string dir = lighter_test::temp_dir("resume_cli");
  std::string cfg = lighter_test::source_path("configs/digits.json");
  // EarlyStopping (never triggers), ReduceLROnPlateau and CSVLogger carry state across the restart.
  std::string sets =
      " --set fit.epochs=30 --set fit.verbose=0 --set "
      "'fit.callbacks=[{\"class_name\":\"ReduceLROnPlateau\",\"config\":{\"patience\":2,\"factor\":0.5}},"
      "{\"class_name\":\"EarlyStopping\",\"config\":{\"patience\":100,\"restore_best_weights\":true}},"
      "{\"class_name\":\"CSVLogger\",\"config\":{\"filename\":\"log.csv\"}}]'";
  std::string out;
  REQUIRE(lighter_test::run_cli("train " + cfg + sets + " --output-dir " + dir + "/whole", &out) == 0);

  // The same run, killed once its checkpoint says 3 epochs are done.
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::string command = std::string(LIGHTER_CLI_PATH) + " train " + cfg + sets + " --output-dir " + dir +
                          "/killed --log-level error >/dev/null 2>&1";
    ::execl("/bin/sh", "sh", "-c", ("exec " + command).c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  std::string checkpoint = dir + "/killed.partial/checkpoint.safetensors";
  int64_t seen = -1;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      if (fs::exists(checkpoint)) seen = L::training::Trainer::checkpoint_info(checkpoint)["epoch"].get<int64_t>();
    } catch (const std::exception&) {
      // renamed under us: look again
    }
    if (seen >= 3) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(seen >= 3);
  REQUIRE(WIFSIGNALED(status));  // killed mid-run, not finished
  REQUIRE_FALSE(fs::exists(dir + "/killed/model.safetensors"));

  // Without --resume the interrupted run is not thrown away.
  REQUIRE(lighter_test::run_cli("train " + cfg + sets + " --output-dir " + dir + "/killed", &out) == 1);
  REQUIRE_THAT(out, LIGHTER_CONTAINS("--resume"));
  REQUIRE(lighter_test::run_cli("train " + cfg + sets + " --output-dir " + dir + "/killed --resume", &out) == 0);

  auto whole = L::load_safetensors(dir + "/whole/model.safetensors");
  auto resumed = L::load_safetensors(dir + "/killed/model.safetensors");
  require_identical(whole, resumed);
  REQUIRE(read_all(dir + "/killed/log.csv") == read_all(dir + "/whole/log.csv"));
  REQUIRE(read_all(dir + "/killed/history.csv") == read_all(dir + "/whole/history.csv"));
  REQUIRE_FALSE(fs::exists(dir + "/killed.partial"));
  // The finished run keeps its checkpoint: --resume with more epochs continues it.
  REQUIRE(L::training::Trainer::checkpoint_info(dir + "/killed/checkpoint.safetensors")["epoch"] == 30);
  REQUIRE(lighter_test::run_cli("train " + cfg + sets + " --set fit.epochs=32 --output-dir " + dir + "/killed --resume",
                                &out) == 0);
  REQUIRE(L::training::Trainer::checkpoint_info(dir + "/killed/checkpoint.safetensors")["epoch"] == 32);
}
