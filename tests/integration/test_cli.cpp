#include "lighter_test.h"
#include "cli_runs.h"

#include <filesystem>
#include <fstream>

namespace L = lighter;
using L::json;
namespace fs = std::filesystem;

namespace {

// The iris config with absolute data paths and 3 quiet epochs.
json iris_config() { return lighter_test::iris_run_config(3); }

std::string write_config(const std::string& dir, const std::string& name, const std::string& text) {
  std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

}  // namespace

TEST_CASE("lighter train writes a complete run and lighter evaluate/predict/summary use it", "[cli][slow]") {
  std::string dir = lighter_test::temp_dir("cli_train");
  std::string cfg = write_config(dir, "iris.json", iris_config().dump(2));
  std::string out;
  int rc = lighter_test::run_cli("train " + cfg + " --set fit.epochs=40 --output-dir " + dir + "/run", &out);
  INFO(out);
  REQUIRE(rc == 0);
  for (const char* f : {"model.json", "model.safetensors", "metrics.json", "history.csv", "training_curves.svg", "lighter.json"})
    REQUIRE(fs::exists(dir + "/run/" + f));
  json metrics = L::read_json_file(dir + "/run/metrics.json");
  REQUIRE(metrics["epochs"] == 40);
  REQUIRE(metrics["test"]["accuracy"].get<double>() > 0.8);
  REQUIRE(metrics.contains("validation"));
  // history.csv: a header and one row per epoch.
  REQUIRE(count_lines(L::read_text_file(dir + "/run/history.csv")) == 41);

  rc = lighter_test::run_cli("evaluate " + cfg + " --weights " + dir + "/run", &out);
  INFO(out);
  REQUIRE(rc == 0);
  json eval = json::parse(out.substr(out.find('{')));
  REQUIRE(eval["accuracy"].get<double>() == Approx(metrics["test"]["accuracy"].get<double>()));

  rc = lighter_test::run_cli("predict " + cfg + " --weights " + dir + "/run --input " +
                                 lighter_test::source_path("examples/data/iris_test.csv") + " --output " + dir + "/pred.csv",
                             &out);
  REQUIRE(rc == 0);
  std::string pred = L::read_text_file(dir + "/pred.csv");
  REQUIRE(pred.rfind("setosa,versicolor,virginica,predicted\n", 0) == 0);
  REQUIRE(count_lines(pred) == 31);

  rc = lighter_test::run_cli("summary " + cfg, &out);
  REQUIRE(rc == 0);
  REQUIRE(out.find("Total params: 140") != std::string::npos);  // Normalization 4+4+1, Dense 80, Dense 51
}

TEST_CASE("lighter summary reads a bare Keras model file", "[cli]") {
  if (!lighter_test::have_fixtures()) return;
  std::string out;
  int rc = lighter_test::run_cli("summary " + lighter_test::fixture_path("keras/keras2_sequential_mlp_tfjs_tf215.json"), &out);
  INFO(out);
  REQUIRE(rc == 0);
  REQUIRE(out.find("Total params: 9,219") != std::string::npos);
  rc = lighter_test::run_cli("summary " + lighter_test::fixture_path("keras/keras2_sequential_lenet5_avgpool.json"), &out);
  REQUIRE(rc == 0);
  REQUIRE(out.find("Total params: 61,706") != std::string::npos);
  rc = lighter_test::run_cli("summary " + lighter_test::fixture_path("keras/keras3_sequential_simplernn_stock.json"), &out);
  REQUIRE(rc == 0);
  REQUIRE(out.find("Total params: 2,651") != std::string::npos);
  // A layer Lighter does not have: one line naming it.
  std::string dir = lighter_test::temp_dir("cli_summary_unknown");
  std::string custom = write_config(dir, "custom.json", R"({"class_name": "Sequential", "config": {"name": "s", "layers": [
      {"class_name": "InputLayer", "config": {"batch_shape": [null, 4]}},
      {"class_name": "MyCustomLayer", "config": {"units": 3}}]}})");
  rc = lighter_test::run_cli("summary " + custom, &out);
  REQUIRE(rc == 1);
  REQUIRE(out.find("unknown layer 'MyCustomLayer' (supported:") != std::string::npos);
  REQUIRE(count_lines(out) == 1);
}

TEST_CASE("bad inputs give one clear line, a non-zero exit, and keep the earlier run", "[cli][slow]") {
  std::string dir = lighter_test::temp_dir("cli_bad");
  std::string good = write_config(dir, "good.json", iris_config().dump(2));
  std::string out;
  REQUIRE(lighter_test::run_cli("train " + good + " --output-dir " + dir + "/run", &out) == 0);
  std::string metrics_before = L::read_text_file(dir + "/run/metrics.json");
  std::string weights_before = L::read_text_file(dir + "/run/model.safetensors");

  auto mutate = [](const std::function<void(json&)>& f) {
    json c = iris_config();
    f(c);
    return c.dump(2);
  };
  struct Case {
    std::string name, config, expected;
  };
  std::string csv_dir = dir + "/csv";
  fs::create_directories(csv_dir);
  std::ofstream(csv_dir + "/bad.csv") << "a,b,c,d,species\n1,2,3,4,setosa\n1,x,3,4,setosa\n";
  std::vector<Case> cases = {
      {"malformed JSON", "{\"name\": \"x\",\n \"seed\": }", "bad.json:2:"},
      {"unknown layer", mutate([](json& c) { c["model"]["config"]["layers"][2]["class_name"] = "Dense3D"; }),
       "model.config.layers[2].class_name: unknown layer 'Dense3D' (supported:"},
      {"unknown key", mutate([](json& c) { c["fit"]["epocs"] = 3; }), "fit.epocs: unknown key"},
      {"wrong type", mutate([](json& c) { c["fit"]["shuffle"] = "yes"; }), "fit.shuffle: expected true or false"},
      {"non-positive units", mutate([](json& c) { c["model"]["config"]["layers"][2]["config"]["units"] = -4; }),
       "model.config.layers[2].config.units: expected a positive integer, got -4"},
      {"unknown loss", mutate([](json& c) { c["compile"]["loss"] = "crossentropy_of_doom"; }),
       "compile.loss: unknown loss 'crossentropy_of_doom' (supported: "},
      {"unknown optimizer", mutate([](json& c) { c["compile"]["optimizer"] = "adamm"; }),
       "compile.optimizer: unknown optimizer 'adamm' (supported: "},
      {"unknown metric", mutate([](json& c) { c["compile"]["metrics"] = {"acuracy"}; }),
       "compile.metrics[0]: unknown metric 'acuracy' (supported: "},
      {"negative learning rate",
       mutate([](json& c) { c["compile"]["optimizer"]["config"]["learning_rate"] = -0.1; }),
       "compile.optimizer.config.learning_rate: expected a positive number, got -0.1"},
      {"zero batch size", mutate([](json& c) { c["fit"]["batch_size"] = 0; }),
       "fit.batch_size: expected a positive integer, got 0"},
      {"missing data file", mutate([](json& c) { c["data"]["train"]["path"] = "/nonexistent/iris.csv"; }),
       "/nonexistent/iris.csv: cannot open file"},
      {"unknown target column", mutate([](json& c) { c["data"]["train"]["target"] = "colour"; }),
       "unknown target column 'colour' (columns: sepal_length, sepal_width, petal_length, petal_width, species)"},
      {"non-numeric feature", mutate([&](json& c) { c["data"]["train"]["path"] = csv_dir + "/bad.csv"; }),
       "bad.csv:3:2"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    std::string cfg = write_config(dir, "bad.json", c.config);
    int rc = lighter_test::run_cli("train " + cfg + " --output-dir " + dir + "/run", &out);
    INFO(out);
    REQUIRE(rc == 1);
    REQUIRE(count_lines(out) == 1);
    REQUIRE(out.rfind("lighter: error: ", 0) == 0);
    REQUIRE(out.find(c.expected) != std::string::npos);
    REQUIRE(L::read_text_file(dir + "/run/metrics.json") == metrics_before);
  }
  REQUIRE(L::read_text_file(dir + "/run/model.safetensors") == weights_before);

  // A truncated weights file.
  fs::copy(dir + "/run", dir + "/broken", fs::copy_options::recursive);
  fs::resize_file(dir + "/broken/model.safetensors", fs::file_size(dir + "/broken/model.safetensors") - 7);
  int rc = lighter_test::run_cli("evaluate " + good + " --weights " + dir + "/broken", &out);
  INFO(out);
  REQUIRE(rc == 1);
  REQUIRE(count_lines(out) == 1);
  REQUIRE(out.find("model.safetensors") != std::string::npos);

  // An output folder that holds other files is never replaced.
  fs::create_directories(dir + "/mine");
  std::ofstream(dir + "/mine/thesis.tex") << "precious";
  rc = lighter_test::run_cli("train " + good + " --output-dir " + dir + "/mine/", &out);
  INFO(out);
  REQUIRE(rc == 1);
  REQUIRE(out.find("not a Lighter run") != std::string::npos);
  REQUIRE(L::read_text_file(dir + "/mine/thesis.tex") == "precious");
  // A trailing slash names the same folder as without.
  REQUIRE(lighter_test::run_cli("train " + good + " --output-dir " + dir + "/run/", &out) == 0);
  REQUIRE(fs::exists(dir + "/run/metrics.json"));

  // Usage mistakes exit with 2.
  REQUIRE(lighter_test::run_cli("train", &out) == 2);
  REQUIRE(lighter_test::run_cli("frobnicate x", &out) == 2);
  REQUIRE(lighter_test::run_cli("train " + good + " --bogus", &out) == 2);
}

TEST_CASE("apply_override sets nested keys and list elements", "[cli]") {
  json c = {{"fit", {{"epochs", 1}}}, {"model", {{"config", {{"layers", {{{"config", {{"units", 4}}}}}}}}}}};
  lighter::cli::apply_override(c, "fit.epochs=5");
  lighter::cli::apply_override(c, "model.config.layers[0].config.units=32");
  lighter::cli::apply_override(c, "name=fancy run");
  REQUIRE(c["fit"]["epochs"] == 5);
  REQUIRE(c["model"]["config"]["layers"][0]["config"]["units"] == 32);
  REQUIRE(c["name"] == "fancy run");
  REQUIRE_THROWS_AS(lighter::cli::apply_override(c, "model.config.layers[3].x=1"), L::ConfigError);
  REQUIRE_THROWS_AS(lighter::cli::apply_override(c, "novalue"), L::ConfigError);
}

namespace {
// Digits (8x8 images, pixel values 0-16) as a model over images: Flatten, Dense, Dense.
json digits_image_config(const json& train, const json& test) {
  return {
      {"name", "digits_images"},
      {"seed", 3},
      {"device", "cpu"},
      {"data", {{"train", train}, {"test", test}, {"validation_split", 0.1}}},
      {"model",
       {{"class_name", "Sequential"},
        {"config",
         {{"name", "digits_images"},
          {"layers",
           {{{"class_name", "InputLayer"}, {"config", {{"batch_shape", {nullptr, 8, 8, 1}}}}},
            {{"class_name", "Flatten"}, {"config", json::object()}},
            {{"class_name", "Dense"}, {"config", {{"units", 32}, {"activation", "relu"}}}},
            {{"class_name", "Dense"}, {"config", {{"units", 10}, {"activation", "softmax"}}}}}}}}}},
      {"compile", {{"optimizer", {{"class_name", "Adam"}, {"config", {{"learning_rate", 0.01}}}}},
                   {"loss", "sparse_categorical_crossentropy"},
                   {"metrics", {"accuracy"}}}},
      {"fit", {{"epochs", 15}, {"batch_size", 32}, {"verbose", 0}}},
  };
}
}  // namespace

TEST_CASE("lighter train reads IDX and NPY data sources, and predict takes NPY and IDX inputs", "[cli][io][slow]") {
  std::string dir = lighter_test::temp_dir("cli_idx_npy");
  auto options = L::data::CsvOptions().target("digit").kind(L::data::TargetKind::Classification);
  auto train = L::data::read_csv(lighter_test::source_path("examples/data/digits_train.csv"), options);
  auto test = L::data::read_csv(lighter_test::source_path("examples/data/digits_test.csv"), options);
  auto images = [](const L::data::Table& t) { return t.x.reshape({-1, 8, 8}).to(torch::kUInt8); };
  L::data::write_idx(dir + "/train-images", images(train));
  L::data::write_idx(dir + "/train-labels", train.y.to(torch::kUInt8));
  L::data::write_idx(dir + "/test-images", images(test));
  L::data::write_idx(dir + "/test-labels", test.y.to(torch::kUInt8));
  L::data::write_npy(dir + "/train_x.npy", train.x.reshape({-1, 8, 8, 1}));
  L::data::write_npy(dir + "/train_y.npy", train.y);
  L::data::write_npy(dir + "/test_x.npy", test.x.reshape({-1, 8, 8, 1}));
  L::data::write_npy(dir + "/test_y.npy", test.y.to(torch::kInt32));

  // Paths relative to the config file's folder.
  json idx = digits_image_config({{"format", "idx"}, {"images", "train-images"}, {"labels", "train-labels"},
                                  {"shuffle", true}},
                                 {{"format", "idx"}, {"images", "test-images"}, {"labels", "test-labels"}});
  json npy = digits_image_config({{"format", "npy"}, {"x", "train_x.npy"}, {"y", "train_y.npy"}, {"shuffle", true}},
                                 {{"format", "npy"}, {"x", "test_x.npy"}, {"y", "test_y.npy"}});
  std::string out;
  for (const auto& [name, config] : std::vector<std::pair<std::string, json>>{{"idx", idx}, {"npy", npy}}) {
    INFO(name);
    std::string cfg = write_config(dir, name + ".json", config.dump(2));
    int rc = lighter_test::run_cli("train " + cfg + " --output-dir " + dir + "/run_" + name, &out);
    INFO(out);
    REQUIRE(rc == 0);
    json metrics = L::read_json_file(dir + "/run_" + name + "/metrics.json");
    REQUIRE(metrics["test"]["accuracy"].get<double>() > 0.9);
  }

  // predict on images given as .npy and as IDX: one row per image, the same predictions.
  std::string cfg = dir + "/idx.json";
  REQUIRE(lighter_test::run_cli("predict " + cfg + " --weights " + dir + "/run_idx --input " + dir +
                                    "/test_x.npy --output " + dir + "/p_npy.csv", &out) == 0);
  REQUIRE(lighter_test::run_cli("predict " + cfg + " --weights " + dir + "/run_idx --input " + dir +
                                    "/test-images --output " + dir + "/p_idx.csv", &out) == 0);
  std::string p = L::read_text_file(dir + "/p_npy.csv");
  REQUIRE(count_lines(p) == test.size() + 1);
  REQUIRE(p.rfind("0,1,2,3,4,5,6,7,8,9,predicted\n", 0) == 0);
  REQUIRE(p == L::read_text_file(dir + "/p_idx.csv"));

  // Bad sources: one clear line naming the file or key.
  struct Case {
    json train;
    std::string expected;
  };
  L::data::write_idx(dir + "/labels-short", train.y.narrow(0, 0, 10).to(torch::kUInt8));
  std::vector<Case> cases = {
      {{{"format", "idx"}, {"images", "train-images"}, {"labels", "labels-short"}}, "10 labels for 1438 images"},
      {{{"format", "idx"}, {"images", "train-images"}}, "data.train.labels: required key is missing"},
      {{{"format", "idx"}, {"images", "missing-images"}, {"labels", "train-labels"}}, "missing-images: no such file"},
      {{{"format", "idx"}, {"images", "train_x.npy"}, {"labels", "train-labels"}}, "not an IDX file"},
      {{{"format", "npy"}, {"x", "train_x.npy"}, {"y", "test_y.npy"}}, "359 targets for 1438 samples"},
      {{{"format", "npy"}, {"x", "train_x.npy"}, {"path", "x.csv"}}, "data.train.path: unknown key"},
      {{{"format", "parquet"}, {"path", "x"}}, "data.train.format"},
  };
  for (const auto& c : cases) {
    INFO(c.expected);
    json bad = idx;
    bad["data"]["train"] = c.train;
    std::string path = write_config(dir, "bad.json", bad.dump(2));
    int rc = lighter_test::run_cli("train " + path + " --output-dir " + dir + "/bad_run", &out);
    INFO(out);
    REQUIRE(rc == 1);
    REQUIRE(count_lines(out) == 1);
    REQUIRE(out.find(c.expected) != std::string::npos);
  }
}

TEST_CASE("the Fashion-MNIST CNN config reads and has Keras' parameter counts", "[cli]") {
  // Trained outside CI (about 4 minutes here); its model and data sections are checked here.
  std::string out;
  int rc = lighter_test::run_cli("summary " + lighter_test::source_path("configs/fashion_mnist_cnn.json"), &out);
  INFO(out);
  REQUIRE(rc == 0);
  // Conv2D 3x3x1x32 (no bias) 288 + BatchNorm 4x32 128 + Conv2D 3x3x32x64 18,432 + BatchNorm 4x64 256
  // + Dense 3136x128+128 401,536 + Dense 128x10+10 1,290 = 421,930; the moving statistics 2x(32+64) = 192.
  REQUIRE(out.find("Total params: 421,930") != std::string::npos);
  REQUIRE(out.find("Non-trainable params: 192") != std::string::npos);
  REQUIRE(out.find("(None, 7, 7, 64)") != std::string::npos);
  auto cfg = lighter::cli::load_run_config(lighter_test::source_path("configs/fashion_mnist_cnn.json"));
  REQUIRE(cfg.train.format == "idx");
  REQUIRE(cfg.train.classes.size() == 10);
  REQUIRE(cfg.test->labels == std::string(L::data::kFashionMnistDir) + "/t10k-labels-idx1-ubyte.gz");
}
