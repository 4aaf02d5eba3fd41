#include "lighter_test.h"

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "lighter/callbacks/reduce_lr_on_plateau.h"
#include "lighter/callbacks/registry.h"
#include "lighter/callbacks/tensorboard.h"
#include "lighter/core/event_file.h"

namespace L = lighter;
namespace C = lighter::callbacks;
using L::json;
using namespace lighter::layers;
namespace fs = std::filesystem;

namespace {

// An Event as read back from a file, field by field.
struct Event {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;
  std::vector<std::pair<std::string, float>> values;
  float value(const std::string& tag) const {
    for (const auto& [t, v] : values)
      if (t == tag) return v;
    FAIL("no value tagged " << tag);
    return 0;
  }
  bool has(const std::string& tag) const {
    for (const auto& tv : values)
      if (tv.first == tag) return true;
    return false;
  }
};

// A minimal protobuf wire-format reader, written from the format's description (independent of the writer).
struct Wire {
  const std::string& s;
  size_t pos = 0;
  bool done() const { return pos >= s.size(); }
  uint8_t byte() {
    REQUIRE(pos < s.size());
    return static_cast<uint8_t>(s[pos++]);
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      uint8_t b = byte();
      v |= uint64_t{b & 0x7Fu} << shift;
      if (!(b & 0x80u)) return v;
    }
    FAIL("varint longer than 10 bytes");
    return 0;
  }
  uint64_t fixed(int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= uint64_t{byte()} << (8 * i);
    return v;
  }
  std::string bytes() {
    uint64_t n = varint();
    REQUIRE(pos + n <= s.size());
    std::string out = s.substr(pos, n);
    pos += n;
    return out;
  }
};

uint32_t masked(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

Event decode_event(const std::string& data) {
  Event e;
  Wire w{data};
  while (!w.done()) {
    uint64_t key = w.varint();
    uint64_t field = key >> 3, type = key & 7;
    if (field == 1) {
      REQUIRE(type == 1);
      uint64_t bits = w.fixed(8);
      std::memcpy(&e.wall_time, &bits, 8);
    } else if (field == 2) {
      REQUIRE(type == 0);
      e.step = static_cast<int64_t>(w.varint());
    } else if (field == 3) {
      REQUIRE(type == 2);
      e.file_version = w.bytes();
    } else if (field == 5) {
      REQUIRE(type == 2);
      std::string summary = w.bytes();
      Wire sw{summary};
      while (!sw.done()) {
        REQUIRE(sw.varint() == ((1u << 3) | 2u));  // Summary.value = 1, length-delimited
        std::string value = sw.bytes();
        Wire vw{value};
        std::string tag;
        float simple = std::nanf("");
        while (!vw.done()) {
          uint64_t k = vw.varint();
          if (k == ((1u << 3) | 2u)) {
            tag = vw.bytes();
          } else if (k == ((2u << 3) | 5u)) {
            uint32_t bits = static_cast<uint32_t>(vw.fixed(4));
            std::memcpy(&simple, &bits, 4);
          } else {
            FAIL("unexpected Summary.Value key " << k);
          }
        }
        e.values.emplace_back(tag, simple);
      }
    } else {
      FAIL("unexpected Event field " << field);
    }
  }
  return e;
}

// Reads a TFRecord file, checking both CRCs of every record, and decodes each record as an Event.
std::vector<Event> read_events(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<Event> events;
  size_t pos = 0;
  auto le = [&](size_t at, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= uint64_t{static_cast<uint8_t>(file[at + i])} << (8 * i);
    return v;
  };
  while (pos < file.size()) {
    REQUIRE(pos + 12 <= file.size());
    uint64_t length = le(pos, 8);
    REQUIRE(le(pos + 8, 4) == masked(L::crc32c(file.data() + pos, 8)));
    REQUIRE(pos + 12 + length + 4 <= file.size());
    std::string data = file.substr(pos + 12, length);
    REQUIRE(le(pos + 12 + length, 4) == masked(L::crc32c(data.data(), data.size())));
    events.push_back(decode_event(data));
    pos += 12 + length + 4;
  }
  return events;
}

// The single event file in a folder.
std::string only_event_file(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir)) files.push_back(entry.path().string());
  REQUIRE(files.size() == 1);
  return files[0];
}

}  // namespace

TEST_CASE("CRC32C matches the Castagnoli check values", "[callbacks][tensorboard]") {
  const std::string digits = "123456789";
  REQUIRE(L::crc32c(digits.data(), digits.size()) == 0xE3069283u);
  std::string zeros(32, '\0'), ones(32, '\xFF');
  REQUIRE(L::crc32c(zeros.data(), zeros.size()) == 0x8A9136AAu);
  REQUIRE(L::crc32c(ones.data(), ones.size()) == 0x62A8AB43u);  // RFC 3720, B.4
  REQUIRE(L::crc32c("", 0) == 0u);
  // Continuing a CRC over a second piece equals one pass over both.
  REQUIRE(L::crc32c(digits.data() + 4, 5, L::crc32c(digits.data(), 4)) == 0xE3069283u);
  REQUIRE(L::masked_crc32c(digits.data(), digits.size()) == masked(0xE3069283u));
}

TEST_CASE("events are TFRecords holding hand-encoded tensorflow.Event messages", "[callbacks][tensorboard]") {
  // wall_time 1.5 (double 0x3FF8000000000000), step 3, one value {tag "a", simple_value 2.0f (0x40000000)}.
  std::string bytes = L::detail::encode_event(1.5, 3, "", {{"a", 2.0f}});
  const unsigned char expected[] = {0x09, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F,  // field 1, fixed64
                                    0x10, 0x03,                          // field 2, varint
                                    0x2A, 0x0A,                          // field 5, 10 bytes
                                    0x0A, 0x08,                          // Summary.value, 8 bytes
                                    0x0A, 0x01, 'a',                     // Value.tag
                                    0x15, 0, 0, 0, 0x40};                // Value.simple_value, fixed32
  REQUIRE(bytes == std::string(reinterpret_cast<const char*>(expected), sizeof expected));

  std::string record = L::detail::tfrecord(bytes);
  REQUIRE(record.size() == bytes.size() + 16);
  REQUIRE(static_cast<uint8_t>(record[0]) == bytes.size());
  for (int i = 1; i < 8; ++i) REQUIRE(record[i] == '\0');
  REQUIRE(record.substr(12, bytes.size()) == bytes);

  // The writer: version record first, then the events; negative steps and zero values survive the round trip.
  std::string dir = lighter_test::temp_dir("tensorboard_writer");
  double before = L::unix_time_now();
  std::string path;
  {
    L::EventFileWriter w(dir + "/run");
    path = w.path();
    REQUIRE(fs::path(path).parent_path() == fs::path(dir + "/run"));
    REQUIRE(fs::path(path).filename().string().rfind("events.out.tfevents.", 0) == 0);
    w.add_scalars(-2, {{"x", 0.0f}, {"y", -1.25f}});
    w.add_scalar("z", 3.5f, 1000000);
  }  // the destructor flushes and closes
  auto events = read_events(path);
  REQUIRE(events.size() == 3);
  REQUIRE(events[0].file_version == "brain.Event:2");
  REQUIRE(events[0].values.empty());
  REQUIRE(events[0].wall_time >= std::floor(before));
  REQUIRE(events[1].step == -2);
  REQUIRE(events[1].values.size() == 2);
  REQUIRE(events[1].value("x") == 0.0f);
  REQUIRE(events[1].value("y") == -1.25f);
  REQUIRE(events[2].step == 1000000);
  REQUIRE(events[2].value("z") == 3.5f);
  REQUIRE(events[2].wall_time <= L::unix_time_now());

  // Two writers in the same folder and second get different files.
  L::EventFileWriter a(dir + "/two"), b(dir + "/two");
  REQUIRE(a.path() != b.path());
}

TEST_CASE("records equal, byte for byte, ones serialized by TensorFlow's event writers", "[callbacks][tensorboard]") {
  // Reference records from event files written with the protobuf library: a version record (wall_time
  // 1440183447.0, no step), and one with wall_time 256.5 for each of a version record and two scalar events.
  auto bytes = [](std::initializer_list<unsigned> b) {
    std::string s;
    for (unsigned x : b) s.push_back(static_cast<char>(x));
    return s;
  };
  namespace D = lighter::detail;
  REQUIRE(D::tfrecord(D::encode_event(1440183447.0, 0, "brain.Event:1", {})) ==
          bytes({0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xA3, 0x7F, 0x4B, 0x22, 0x09, 0x00,
                 0x00, 0xC0, 0x25, 0xDD, 0x75, 0xD5, 0x41, 0x1A, 0x0D, 0x62, 0x72, 0x61, 0x69, 0x6E,
                 0x2E, 0x45, 0x76, 0x65, 0x6E, 0x74, 0x3A, 0x31, 0xEC, 0xF3, 0x32, 0x8D}));
  REQUIRE(D::tfrecord(D::encode_event(256.5, 0, "brain.Event:2", {})) ==
          bytes({0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xA3, 0x7F, 0x4B, 0x22, 0x09, 0x00,
                 0x00, 0x00, 0x00, 0x00, 0x08, 0x70, 0x40, 0x1A, 0x0D, 0x62, 0x72, 0x61, 0x69, 0x6E,
                 0x2E, 0x45, 0x76, 0x65, 0x6E, 0x74, 0x3A, 0x32, 0xBC, 0x98, 0x21, 0x2B}));
  REQUIRE(D::tfrecord(D::encode_event(256.5, 1, "", {{"v/1", 1.5f}})) ==
          bytes({0x19, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x8B, 0xF1, 0x08, 0x28, 0x09, 0x00,
                 0x00, 0x00, 0x00, 0x00, 0x08, 0x70, 0x40, 0x10, 0x01, 0x2A, 0x0C, 0x0A, 0x0A, 0x0A,
                 0x03, 0x76, 0x2F, 0x31, 0x15, 0x00, 0x00, 0xC0, 0x3F, 0x2C, 0xEC, 0xC0, 0x87}));
  REQUIRE(D::tfrecord(D::encode_event(256.5, 2, "", {{"v/22", 16.0f}})) ==
          bytes({0x1A, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12, 0x9B, 0xD8, 0x2D, 0x09, 0x00,
                 0x00, 0x00, 0x00, 0x00, 0x08, 0x70, 0x40, 0x10, 0x02, 0x2A, 0x0D, 0x0A, 0x0B, 0x0A,
                 0x04, 0x76, 0x2F, 0x32, 0x32, 0x15, 0x00, 0x00, 0x80, 0x41, 0x8F, 0xA3, 0xB6, 0x88}));
}

TEST_CASE("TensorBoard writes the History's values as train and validation scalars", "[callbacks][tensorboard]") {
  std::string dir = lighter_test::temp_dir("tensorboard_fit");
  L::seed_everything(7);
  auto model = L::Sequential({Input({4}), Dense(DenseOptions(8).activation("relu")),
                              Dense(DenseOptions(2).activation("softmax"))});
  model->compile(L::optimizers::adam(1e-2), "sparse_categorical_crossentropy", {"accuracy"});
  auto x = torch::randn({16, 4});
  auto y = (x.select(1, 0) > 0).to(torch::kLong);

  auto tb = std::make_shared<C::TensorBoard>(C::TensorBoardOptions(dir + "/logs").update_freq(2));
  REQUIRE(tb->wants_batch_logs());
  // ReduceLROnPlateau before TensorBoard puts "learning_rate" in the logs.
  auto plateau = std::make_shared<C::ReduceLROnPlateau>(C::ReduceLROnPlateauOptions().patience(100));
  // After TensorBoard in the list: at each epoch end the file already holds that epoch (flushed), before the fit
  // ends.
  struct Peek : L::training::Callback {
    std::shared_ptr<C::TensorBoard> tb;
    std::vector<size_t> records;
    void on_epoch_end(int64_t, L::training::Logs&) override { records.push_back(read_events(tb->train_file()).size()); }
  };
  auto peek = std::make_shared<Peek>();
  peek->tb = tb;
  double before = L::unix_time_now();
  // 12 training rows (validation_split 0.25 of 16), batches of 4: 3 batches per epoch, 9 in all.
  auto h = model->fit(x, y,
                      L::FitOptions().epochs(3).batch_size(4).validation_split(0.25).verbose(0).callbacks(
                          {plateau, tb, peek}));
  double after = L::unix_time_now();

  REQUIRE(fs::path(tb->train_file()).parent_path() == fs::path(dir + "/logs/train"));
  REQUIRE(fs::path(tb->validation_file()).parent_path() == fs::path(dir + "/logs/validation"));
  REQUIRE(only_event_file(dir + "/logs/train") == tb->train_file());
  REQUIRE(only_event_file(dir + "/logs/validation") == tb->validation_file());
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  REQUIRE(fs::path(tb->train_file()).filename().string().find(std::string(".") + host + ".") != std::string::npos);

  auto train = read_events(tb->train_file());
  auto val = read_events(tb->validation_file());
  REQUIRE(train[0].file_version == "brain.Event:2");
  REQUIRE(val[0].file_version == "brain.Event:2");
  std::vector<Event> epochs, batches;
  for (size_t i = 1; i < train.size(); ++i) {
    REQUIRE(train[i].file_version.empty());
    REQUIRE(train[i].wall_time >= before);
    REQUIRE(train[i].wall_time <= after);
    (train[i].has("batch_loss") ? batches : epochs).push_back(train[i]);
  }
  // Batch scalars every 2 of the 9 batches, at the global batch count.
  REQUIRE(batches.size() == 4);
  for (size_t i = 0; i < batches.size(); ++i) {
    REQUIRE(batches[i].step == static_cast<int64_t>(2 * (i + 1)));
    REQUIRE(batches[i].has("batch_accuracy"));
    REQUIRE(batches[i].values.size() == 2);
    REQUIRE(std::isfinite(batches[i].value("batch_loss")));
  }
  // Flushed per epoch: after epoch 0 the file holds the version, the batch-2 event and epoch 0's event; epoch 1
  // adds batches 4 and 6, epoch 2 batch 8.
  REQUIRE(peek->records == std::vector<size_t>{3, 6, 8});

  REQUIRE(epochs.size() == 3);
  REQUIRE(val.size() == 1 + 3);
  const auto& hist = h.history;
  for (int64_t e = 0; e < 3; ++e) {
    const Event& t = epochs[e];
    const Event& v = val[e + 1];
    REQUIRE(t.step == e);
    REQUIRE(v.step == e);
    // Values are stored as floats; the History holds doubles.
    REQUIRE(t.value("epoch_loss") == static_cast<float>(hist.at("loss")[e]));
    REQUIRE(t.value("epoch_accuracy") == static_cast<float>(hist.at("accuracy")[e]));
    REQUIRE(t.value("epoch_learning_rate") == static_cast<float>(hist.at("learning_rate")[e]));
    REQUIRE(t.value("epoch_learning_rate") == Approx(1e-2));
    REQUIRE(t.values.size() == 3);  // no val_ tags in train/
    REQUIRE(v.value("epoch_loss") == static_cast<float>(hist.at("val_loss")[e]));
    REQUIRE(v.value("epoch_accuracy") == static_cast<float>(hist.at("val_accuracy")[e]));
    REQUIRE(v.values.size() == 2);
  }

  // A second fit adds a new file to each folder (TensorBoard reads them all); batch steps count from 1 again.
  model->fit(x, y, L::FitOptions().epochs(1).batch_size(4).validation_split(0.25).verbose(0).callbacks({tb}));
  size_t n_train = 0;
  for (const auto& entry : fs::directory_iterator(dir + "/logs/train")) n_train += entry.is_regular_file();
  REQUIRE(n_train == 2);
  auto second = read_events(tb->train_file());
  REQUIRE(second.size() == 1 + 1 + 1);  // version, batch event at batch 2, epoch 0
  REQUIRE(second[1].step == 2);
  REQUIRE(second[1].has("batch_loss"));
  REQUIRE(second[2].step == 0);
  REQUIRE_FALSE(second[2].has("epoch_learning_rate"));  // no ReduceLROnPlateau this time
}

TEST_CASE("TensorBoard without validation writes train/ only, epoch update_freq asks for no batch logs",
          "[callbacks][tensorboard]") {
  std::string dir = lighter_test::temp_dir("tensorboard_train_only");
  L::seed_everything(1);
  auto model = L::Sequential({Input({2}), Dense(3), Dense(1)});
  model->compile(L::optimizers::sgd(0.1), "mse");
  auto tb = std::make_shared<C::TensorBoard>(C::TensorBoardOptions(dir));
  REQUIRE_FALSE(tb->wants_batch_logs());
  auto h = model->fit(torch::randn({8, 2}), torch::randn({8, 1}),
                      L::FitOptions().epochs(2).batch_size(2).verbose(0).callbacks({tb}));
  REQUIRE(fs::exists(dir + "/train"));
  REQUIRE_FALSE(fs::exists(dir + "/validation"));
  REQUIRE(tb->validation_file().empty());
  auto events = read_events(only_event_file(dir + "/train"));
  REQUIRE(events.size() == 3);
  for (int64_t e = 0; e < 2; ++e) {
    REQUIRE(events[e + 1].step == e);
    REQUIRE(events[e + 1].values.size() == 1);
    REQUIRE(events[e + 1].value("epoch_loss") == static_cast<float>(h.history.at("loss")[e]));
  }
}

TEST_CASE("TensorBoard from JSON: Keras arguments, off-only features, errors naming the path",
          "[callbacks][tensorboard]") {
  auto make = [](const std::string& text, const std::string& base = "/runs/a") {
    return std::dynamic_pointer_cast<C::TensorBoard>(C::from_json(json::parse(text), "fit.callbacks[0]", base));
  };
  // Keras' defaults; log_dir resolves against the config's folder.
  auto d = make(R"({"class_name": "TensorBoard"})");
  REQUIRE(d);
  REQUIRE(d->options().log_dir() == "/runs/a/logs");
  REQUIRE(d->options().update_freq() == 0);
  REQUIRE(d->options().write_graph());
  REQUIRE(make(R"({"class_name": "TensorBoard", "config": {"log_dir": "/abs/tb"}})")->options().log_dir() == "/abs/tb");
  REQUIRE(make(R"({"class_name": "TensorBoard", "config": {"update_freq": "batch"}})")->options().update_freq() == 1);
  // Keras' full argument list at its defaults (as Keras writes it), and a round trip through to_json.
  json full = json::parse(R"({"class_name": "TensorBoard", "config": {"log_dir": "/abs/tb", "histogram_freq": 0,
      "write_graph": false, "write_images": false, "write_steps_per_second": false, "update_freq": 5,
      "profile_batch": 0, "embeddings_freq": 0}})");
  auto f = C::from_json(full, "c", "/base");
  REQUIRE(C::to_json(*f) == full);
  json with_meta = full;
  with_meta["config"]["embeddings_metadata"] = nullptr;
  with_meta["config"]["update_freq"] = "epoch";
  REQUIRE(C::to_json(*C::from_json(with_meta, "c"))["config"]["update_freq"] == "epoch");

  auto err = [&](const std::string& text) { return make(text); };
  LIGHTER_REQUIRE_THROWS_WITH(err(R"({"class_name": "TensorBoard", "config": {"histogram_freq": 1}})"),
                              "fit.callbacks[0].config.histogram_freq: weight histograms are not supported");
  LIGHTER_REQUIRE_THROWS_WITH(err(R"({"class_name": "TensorBoard", "config": {"write_images": true}})"),
                              "fit.callbacks[0].config.write_images");
  LIGHTER_REQUIRE_THROWS_WITH(err(R"({"class_name": "TensorBoard", "config": {"write_steps_per_second": true}})"),
                              "fit.callbacks[0].config.write_steps_per_second");
  LIGHTER_REQUIRE_THROWS_WITH(err(R"({"class_name": "TensorBoard", "config": {"profile_batch": [2, 5]}})"),
                              "fit.callbacks[0].config.profile_batch: profiling is not supported");
  LIGHTER_REQUIRE_THROWS_WITH(err(R"({"class_name": "TensorBoard", "config": {"embeddings_freq": 2}})"),
                              "fit.callbacks[0].config.embeddings_freq");
  LIGHTER_REQUIRE_THROWS_WITH(err(R"({"class_name": "TensorBoard", "config": {"update_freq": 0}})"),
                              "fit.callbacks[0].config.update_freq: expected \"epoch\", \"batch\" or a positive");
  LIGHTER_REQUIRE_THROWS_WITH(err(R"({"class_name": "TensorBoard", "config": {"update_freq": "step"}})"),
                              "fit.callbacks[0].config.update_freq");
  LIGHTER_REQUIRE_THROWS_WITH(err(R"({"class_name": "TensorBoard", "config": {"log_dir": ""}})"),
                              "fit.callbacks[0].config.log_dir: must not be empty");
  LIGHTER_REQUIRE_THROWS_WITH(err(R"({"class_name": "TensorBoard", "config": {"logdir": "x"}})"),
                              "fit.callbacks[0].config.logdir");
  LIGHTER_REQUIRE_THROWS_WITH(C::TensorBoard(C::TensorBoardOptions().histogram_freq(1)), "histogram_freq");
}

TEST_CASE("lighter train writes TensorBoard logs inside the run folder", "[callbacks][tensorboard][cli]") {
  std::string dir = lighter_test::temp_dir("cli_tensorboard");
  json c = L::read_json_file(lighter_test::source_path("configs/iris.json"));
  std::string data = lighter_test::source_path("examples/data/");
  c["data"]["train"]["path"] = data + "iris_train.csv";
  c["data"]["test"]["path"] = data + "iris_test.csv";
  c["device"] = "cpu";
  c["fit"]["epochs"] = 3;
  c["fit"]["verbose"] = 0;
  c["fit"]["callbacks"] = json::parse(R"([{"class_name": "TensorBoard", "config": {"log_dir": "tb"}}])");
  std::string cfg = dir + "/iris.json";
  std::ofstream(cfg) << c.dump(2);
  std::string out;
  int rc = lighter_test::run_cli("train " + cfg + " --output-dir " + dir + "/run", &out);
  INFO(out);
  REQUIRE(rc == 0);
  auto train = read_events(only_event_file(dir + "/run/tb/train"));
  auto val = read_events(only_event_file(dir + "/run/tb/validation"));
  REQUIRE(train.size() == 4);
  REQUIRE(val.size() == 4);
  // history.csv: "epoch,accuracy,loss,val_accuracy,val_loss" and one row per epoch (8 significant digits, so
  // compared up to a float's precision).
  std::istringstream history(L::read_text_file(dir + "/run/history.csv"));
  std::string line;
  std::getline(history, line);
  REQUIRE(line == "epoch,accuracy,loss,val_accuracy,val_loss");
  for (int64_t e = 0; e < 3; ++e) {
    REQUIRE(std::getline(history, line));
    std::vector<double> row;
    std::istringstream cells(line);
    for (std::string cell; std::getline(cells, cell, ',');) row.push_back(std::stod(cell));
    REQUIRE(row.size() == 5);
    REQUIRE(train[e + 1].step == e);
    REQUIRE(train[e + 1].value("epoch_accuracy") == Approx(row[1]).epsilon(1e-6));
    REQUIRE(train[e + 1].value("epoch_loss") == Approx(row[2]).epsilon(1e-6));
    REQUIRE(val[e + 1].value("epoch_accuracy") == Approx(row[3]).epsilon(1e-6));
    REQUIRE(val[e + 1].value("epoch_loss") == Approx(row[4]).epsilon(1e-6));
  }
}
