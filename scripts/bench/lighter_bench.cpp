// lighter_bench: one cell of the benchmark (scripts/bench/run drives it), in a fresh process.
//
//   lighter_bench step --workload mlp|cnn|lstm|transformer|tiny_mlp --impl lighter|libtorch
//                      [--settings default|tuned|untuned] [--warmup N] [--steps N] [--windows N] [--seed N]
//   lighter_bench epoch --settings default|tuned [--images-dir DIR] [--output DIR] [--max-steps N (0: all)]
//   lighter_bench sgemm [--threads N] [--size N]
//
// `step` times training steps of one workload on float32 data held in memory, written either through Lighter's public
// API (a Keras-JSON model compiled with Adam and trained with Trainer::train_step) or by hand in LibTorch C++ (the
// same layers as torch::nn modules, Adam, cross_entropy). It prints one JSON line: milliseconds per step of each
// window of --steps steps after --warmup steps.
//
// Settings: for libtorch, "default" leaves LibTorch and glibc as they are (one thread per physical core, glibc's
// malloc thresholds) and "tuned" raises malloc's thresholds and uses one thread per hardware thread, as Lighter's
// defaults do. For lighter, "default" is what a Lighter program gets (the Trainer applies its runtime defaults) and
// "untuned" opts out of them (lighter::disable_runtime_defaults).
//
// `epoch` is the hand-written LibTorch program doing what `lighter train configs/fashion_mnist_cnn.json` does in one
// epoch: read the gzip IDX files, hold out the last 10% for validation, train one shuffled epoch at batch 64 with
// running loss and accuracy, evaluate validation and test, save the weights.
//
// `sgemm` measures the machine's float32 matrix-multiply rate (GFLOP/s) through torch::mm.
#include <malloc.h>
#include <sys/resource.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <torch/torch.h>

#include "lighter/lighter.h"

namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

struct Args {
  std::string mode, workload = "mlp", impl = "lighter", settings = "default";
  std::string images_dir = "/usr/share/datasets/fashion-mnist", output;
  int64_t warmup = 10, steps = 50, windows = 3, seed = 1, threads = 0, size = 1024, max_steps = 0;
};

Args parse(int argc, char** argv) {
  if (argc < 2) throw std::invalid_argument("usage: lighter_bench step|epoch|sgemm [options] (see the source's header)");
  Args a;
  a.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string k = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument(k + " needs a value");
    std::string v = argv[++i];
    auto integer = [&] {
      size_t used = 0;
      int64_t n = std::stoll(v, &used);
      if (used != v.size() || n < 0) throw std::invalid_argument(k + " needs a non-negative integer, got " + v);
      return n;
    };
    if (k == "--workload") a.workload = v;
    else if (k == "--impl") a.impl = v;
    else if (k == "--settings") a.settings = v;
    else if (k == "--images-dir") a.images_dir = v;
    else if (k == "--output") a.output = v;
    else if (k == "--warmup") a.warmup = integer();
    else if (k == "--steps") a.steps = integer();
    else if (k == "--windows") a.windows = integer();
    else if (k == "--seed") a.seed = integer();
    else if (k == "--threads") a.threads = integer();
    else if (k == "--size") a.size = integer();
    else if (k == "--max-steps") a.max_steps = integer();
    else throw std::invalid_argument("unknown option " + k);
  }
  return a;
}

/// What a hand-written program does to get Lighter's runtime settings: mallopt and every hardware thread.
void tune_by_hand() {
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
  torch::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// ---- the workloads' data -----------------------------------------------------------------------------------------

constexpr int64_t kBatches = 8;  // distinct batches, cycled

struct Workload {
  int64_t batch = 0;
  // Lighter's inputs are Keras-shaped (images NHWC); the hand-written models take NCHW images.
  std::vector<torch::Tensor> x, x_nchw, y;
  json keras;    // the Lighter model
  json loss;     // its loss
};

json dense(int64_t units, const std::string& activation) {
  return {{"class_name", "Dense"}, {"config", {{"units", units}, {"activation", activation}}}};
}

json sequential(const std::string& name, std::vector<json> layers) {
  return {{"class_name", "Sequential"}, {"config", {{"name", name}, {"layers", layers}}}};
}

json input_layer(std::vector<json> shape, const std::string& dtype = "float32") {
  shape.insert(shape.begin(), nullptr);
  return {{"class_name", "InputLayer"}, {"config", {{"batch_shape", shape}, {"dtype", dtype}}}};
}

constexpr int64_t kVocab = 1000, kSeq = 32;             // LSTM classifier
constexpr int64_t kChars = 96, kContext = 64, kModel = 128, kHeads = 4, kFeedForward = 512;  // transformer LM

Workload make_workload(const std::string& name) {
  Workload w;
  auto classes = [&](int64_t n, int64_t k) {
    for (int64_t i = 0; i < kBatches; ++i) w.y.push_back(torch::randint(k, {n}, torch::kLong));
  };
  if (name == "mlp" || name == "tiny_mlp") {
    const bool tiny = name == "tiny_mlp";
    w.batch = tiny ? 16 : 128;
    const int64_t in = tiny ? 4 : 784, out = tiny ? 3 : 10;
    for (int64_t i = 0; i < kBatches; ++i) w.x.push_back(torch::rand({w.batch, in}));
    classes(w.batch, out);
    w.keras = tiny ? sequential(name, {input_layer({in}), dense(16, "relu"), dense(out, "softmax")})
                   : sequential(name, {input_layer({in}), dense(512, "relu"), dense(256, "relu"), dense(out, "softmax")});
    w.loss = "sparse_categorical_crossentropy";
  } else if (name == "cnn") {
    w.batch = 64;
    for (int64_t i = 0; i < kBatches; ++i) {
      auto img = torch::rand({w.batch, 28, 28, 1});
      w.x.push_back(img);
      w.x_nchw.push_back(img.permute({0, 3, 1, 2}).contiguous());
    }
    classes(w.batch, 10);
    auto conv = [](int64_t filters) {
      return json{{"class_name", "Conv2D"}, {"config", {{"filters", filters}, {"kernel_size", 3}, {"activation", "relu"}}}};
    };
    auto pool = json{{"class_name", "MaxPooling2D"}, {"config", {{"pool_size", 2}}}};
    w.keras = sequential("cnn", {input_layer({28, 28, 1}), conv(32), pool, conv(64), pool,
                                 {{"class_name", "Flatten"}, {"config", json::object()}}, dense(128, "relu"),
                                 {{"class_name", "Dropout"}, {"config", {{"rate", 0.5}}}}, dense(10, "softmax")});
    w.loss = "sparse_categorical_crossentropy";
  } else if (name == "lstm") {
    w.batch = 64;
    // Ids 1..999: with mask_zero the mask is all ones, so Lighter's masked path runs (and masks nothing).
    for (int64_t i = 0; i < kBatches; ++i) w.x.push_back(torch::randint(1, kVocab, {w.batch, kSeq}, torch::kLong));
    classes(w.batch, 2);
    w.keras = sequential("lstm", {input_layer({kSeq}, "int64"),
                                  {{"class_name", "Embedding"},
                                   {"config", {{"input_dim", kVocab}, {"output_dim", 64}, {"mask_zero", true}}}},
                                  {{"class_name", "LSTM"}, {"config", {{"units", 128}}}}, dense(2, "softmax")});
    w.loss = "sparse_categorical_crossentropy";
  } else if (name == "transformer") {
    w.batch = 32;
    for (int64_t i = 0; i < kBatches; ++i) {
      w.x.push_back(torch::randint(kChars, {w.batch, kContext}, torch::kLong));
      w.y.push_back(torch::randint(kChars, {w.batch, kContext}, torch::kLong));
    }
    json decoder = {{"class_name", "TransformerDecoder"},
                    {"config", {{"intermediate_dim", kFeedForward}, {"num_heads", kHeads}, {"normalize_first", true}}}};
    w.keras = sequential("transformer", {input_layer({kContext}, "int64"),
                                         {{"class_name", "TokenAndPositionEmbedding"},
                                          {"config", {{"vocabulary_size", kChars}, {"sequence_length", kContext},
                                                      {"embedding_dim", kModel}}}},
                                         decoder, decoder,
                                         {{"class_name", "LayerNormalization"}, {"config", {{"epsilon", 1e-5}}}},
                                         dense(kChars, "linear")});
    w.loss = {{"class_name", "SparseCategoricalCrossentropy"}, {"config", {{"from_logits", true}}}};
  } else {
    throw std::invalid_argument("unknown workload '" + name + "' (mlp, cnn, lstm, transformer, tiny_mlp)");
  }
  return w;
}

// ---- the hand-written LibTorch models ------------------------------------------------------------------------------

struct MlpImpl : torch::nn::Module {
  std::vector<torch::nn::Linear> layers;
  explicit MlpImpl(std::vector<int64_t> sizes) {
    for (size_t i = 0; i + 1 < sizes.size(); ++i)
      layers.push_back(register_module("fc" + std::to_string(i), torch::nn::Linear(sizes[i], sizes[i + 1])));
  }
  torch::Tensor forward(torch::Tensor x) {
    for (size_t i = 0; i < layers.size(); ++i) {
      x = layers[i]->forward(x);
      if (i + 1 < layers.size()) x = torch::relu(x);
    }
    return x;
  }
};
TORCH_MODULE(Mlp);

struct CnnImpl : torch::nn::Module {
  torch::nn::Conv2d c1{nullptr}, c2{nullptr};
  torch::nn::Linear f1{nullptr}, f2{nullptr};
  CnnImpl() {
    c1 = register_module("c1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 32, 3)));
    c2 = register_module("c2", torch::nn::Conv2d(torch::nn::Conv2dOptions(32, 64, 3)));
    f1 = register_module("f1", torch::nn::Linear(64 * 5 * 5, 128));
    f2 = register_module("f2", torch::nn::Linear(128, 10));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = torch::max_pool2d(torch::relu(c1->forward(x)), 2);
    x = torch::max_pool2d(torch::relu(c2->forward(x)), 2);
    x = torch::relu(f1->forward(x.flatten(1)));
    return f2->forward(torch::dropout(x, 0.5, is_training()));
  }
};
TORCH_MODULE(Cnn);

struct LstmClassifierImpl : torch::nn::Module {
  torch::nn::Embedding embedding{nullptr};
  torch::nn::LSTM lstm{nullptr};
  torch::nn::Linear out{nullptr};
  LstmClassifierImpl() {
    embedding = register_module("embedding", torch::nn::Embedding(kVocab, 64));
    lstm = register_module("lstm", torch::nn::LSTM(torch::nn::LSTMOptions(64, 128).batch_first(true)));
    out = register_module("out", torch::nn::Linear(128, 2));
  }
  torch::Tensor forward(const torch::Tensor& ids) {
    auto h = std::get<0>(std::get<1>(lstm->forward(embedding->forward(ids))));  // (1, N, 128): the last step
    return out->forward(h.squeeze(0));
  }
};
TORCH_MODULE(LstmClassifier);

struct DecoderBlockImpl : torch::nn::Module {
  torch::nn::LayerNorm ln1{nullptr}, ln2{nullptr};
  torch::nn::Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr}, ff1{nullptr}, ff2{nullptr};
  DecoderBlockImpl() {
    ln1 = register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({kModel}).eps(1e-5)));
    ln2 = register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({kModel}).eps(1e-5)));
    q = register_module("q", torch::nn::Linear(kModel, kModel));
    k = register_module("k", torch::nn::Linear(kModel, kModel));
    v = register_module("v", torch::nn::Linear(kModel, kModel));
    o = register_module("o", torch::nn::Linear(kModel, kModel));
    ff1 = register_module("ff1", torch::nn::Linear(kModel, kFeedForward));
    ff2 = register_module("ff2", torch::nn::Linear(kFeedForward, kModel));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& causal_bias) {
    const int64_t n = x.size(0), t = x.size(1), d = kModel / kHeads;
    auto heads = [&](const torch::Tensor& z) { return z.view({n, t, kHeads, d}).transpose(1, 2); };
    auto h = ln1->forward(x);
    auto qh = heads(q->forward(h)), kh = heads(k->forward(h)), vh = heads(v->forward(h));
    auto scores = torch::matmul(qh * (1.0 / std::sqrt(static_cast<double>(d))), kh.transpose(-2, -1)) + causal_bias;
    auto context = torch::matmul(torch::softmax(scores, -1), vh).transpose(1, 2).reshape({n, t, kModel});
    auto x1 = x + o->forward(context);
    return x1 + ff2->forward(torch::relu(ff1->forward(ln2->forward(x1))));
  }
};
TORCH_MODULE(DecoderBlock);

struct CharLmImpl : torch::nn::Module {
  torch::nn::Embedding tokens{nullptr}, positions{nullptr};
  DecoderBlock b1{nullptr}, b2{nullptr};
  torch::nn::LayerNorm ln{nullptr};
  torch::nn::Linear head{nullptr};
  torch::Tensor causal_bias, position_ids;
  CharLmImpl() {
    tokens = register_module("tokens", torch::nn::Embedding(kChars, kModel));
    positions = register_module("positions", torch::nn::Embedding(kContext, kModel));
    b1 = register_module("b1", DecoderBlock());
    b2 = register_module("b2", DecoderBlock());
    ln = register_module("ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({kModel}).eps(1e-5)));
    head = register_module("head", torch::nn::Linear(kModel, kChars));
    causal_bias = torch::full({kContext, kContext}, -1e9).triu(1);
    position_ids = torch::arange(kContext, torch::kLong);
  }
  torch::Tensor forward(const torch::Tensor& ids) {
    auto x = tokens->forward(ids) + positions->forward(position_ids);
    x = b2->forward(b1->forward(x, causal_bias), causal_bias);
    return head->forward(ln->forward(x));
  }
};
TORCH_MODULE(CharLm);

// ---- timing ---------------------------------------------------------------------------------------------------------

struct Timing {
  std::vector<double> ms_per_step;
  double setup_ms = 0;
};

Timing time_steps(const Args& a, const std::function<void(int64_t)>& step) {
  Timing t;
  for (int64_t i = 0; i < a.warmup; ++i) step(i);
  int64_t i = a.warmup;
  for (int64_t w = 0; w < a.windows; ++w) {
    auto t0 = Clock::now();
    for (int64_t s = 0; s < a.steps; ++s) step(i++);
    t.ms_per_step.push_back(ms_since(t0) / static_cast<double>(std::max<int64_t>(1, a.steps)));
  }
  return t;
}

template <typename Net, typename Forward>
Timing hand_written(const Args& a, Net net, const Workload& w, Forward forward) {
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-3));
  net->train();
  const auto& xs = w.x_nchw.empty() ? w.x : w.x_nchw;
  return time_steps(a, [&](int64_t i) {
    const auto& x = xs[i % kBatches];
    const auto& y = w.y[i % kBatches];
    opt.zero_grad();
    auto logits = forward(net, x);
    auto loss = torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), y.reshape({-1}));
    loss.backward();
    opt.step();
  });
}

Timing run_libtorch(const Args& a, const Workload& w) {
  auto call = [](auto& net, const torch::Tensor& x) { return net->forward(x); };
  if (a.workload == "mlp") return hand_written(a, Mlp(std::vector<int64_t>{784, 512, 256, 10}), w, call);
  if (a.workload == "tiny_mlp") return hand_written(a, Mlp(std::vector<int64_t>{4, 16, 3}), w, call);
  if (a.workload == "cnn") return hand_written(a, Cnn(), w, call);
  if (a.workload == "lstm") return hand_written(a, LstmClassifier(), w, call);
  return hand_written(a, CharLm(), w, call);
}

Timing run_lighter(const Args& a, const Workload& w) {
  auto model = lighter::models::model_from_json(w.keras, "model");
  model->compile(lighter::optimizers::adam(1e-3), w.loss);
  auto& trainer = model->trainer();
  model->train();
  return time_steps(a, [&](int64_t i) { trainer.train_step(w.x[i % kBatches], w.y[i % kBatches]); });
}

// ---- the Fashion-MNIST epoch by hand --------------------------------------------------------------------------------

std::vector<uint8_t> gunzip(const std::string& file) {
  gzFile f = gzopen(file.c_str(), "rb");
  if (!f) throw std::runtime_error("cannot open " + file);
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  int n = 0;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
  gzclose(f);
  if (n < 0) throw std::runtime_error("cannot read " + file);
  return out;
}

uint32_t be32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }

std::pair<torch::Tensor, torch::Tensor> read_idx(const std::string& dir, const std::string& prefix) {
  auto images = gunzip(dir + "/" + prefix + "-images-idx3-ubyte.gz");
  auto labels = gunzip(dir + "/" + prefix + "-labels-idx1-ubyte.gz");
  const int64_t n = be32(images.data() + 4);
  auto x = torch::from_blob(images.data() + 16, {n, 1, 28, 28}, torch::kUInt8).to(torch::kFloat);
  auto y = torch::from_blob(labels.data() + 8, {n}, torch::kUInt8).to(torch::kLong);
  return {x, y};
}

struct FashionCnnImpl : torch::nn::Module {
  torch::nn::Conv2d c1{nullptr}, c2{nullptr};
  torch::nn::BatchNorm2d n1{nullptr}, n2{nullptr};
  torch::nn::Linear f1{nullptr}, f2{nullptr};
  FashionCnnImpl() {
    c1 = register_module("c1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 32, 3).padding(1).bias(false)));
    n1 = register_module("n1", torch::nn::BatchNorm2d(torch::nn::BatchNormOptions(32).eps(1e-3).momentum(0.01)));
    c2 = register_module("c2", torch::nn::Conv2d(torch::nn::Conv2dOptions(32, 64, 3).padding(1).bias(false)));
    n2 = register_module("n2", torch::nn::BatchNorm2d(torch::nn::BatchNormOptions(64).eps(1e-3).momentum(0.01)));
    f1 = register_module("f1", torch::nn::Linear(64 * 7 * 7, 128));
    f2 = register_module("f2", torch::nn::Linear(128, 10));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = x * (1.0 / 255.0);
    x = torch::max_pool2d(torch::relu(n1->forward(c1->forward(x))), 2);
    x = torch::max_pool2d(torch::relu(n2->forward(c2->forward(x))), 2);
    x = torch::dropout(x.flatten(1), 0.3, is_training());
    x = torch::dropout(torch::relu(f1->forward(x)), 0.3, is_training());
    return f2->forward(x);
  }
};
TORCH_MODULE(FashionCnn);

json run_epoch(const Args& a) {
  auto t0 = Clock::now();
  torch::manual_seed(42);
  auto [x_all, y_all] = read_idx(a.images_dir, "train");
  auto [x_test, y_test] = read_idx(a.images_dir, "t10k");
  const int64_t n_all = x_all.size(0), n = n_all - n_all / 10;  // Keras' validation_split: the last 10%
  auto x = x_all.narrow(0, 0, n), y = y_all.narrow(0, 0, n);
  auto vx = x_all.narrow(0, n, n_all - n), vy = y_all.narrow(0, n, n_all - n);
  const double load_ms = ms_since(t0);

  FashionCnn net;
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-3).eps(1e-7));
  const int64_t batch = 64;
  auto t1 = Clock::now();
  net->train();
  auto order = torch::randperm(n, torch::kLong);
  torch::Tensor loss_sum = torch::zeros({}), correct = torch::zeros({}, torch::kLong);
  int64_t trained = 0;
  for (int64_t begin = 0; begin < n && (a.max_steps == 0 || begin / batch < a.max_steps); begin += batch) {
    auto idx = order.narrow(0, begin, std::min(batch, n - begin));
    auto xb = x.index_select(0, idx), yb = y.index_select(0, idx);
    opt.zero_grad();
    auto logits = net->forward(xb);
    auto loss = torch::nn::functional::cross_entropy(logits, yb);
    loss.backward();
    opt.step();
    torch::NoGradGuard g;
    loss_sum += loss.detach() * static_cast<double>(idx.size(0));
    correct += logits.argmax(1).eq(yb).sum();
    trained += idx.size(0);
  }
  const double train_ms = ms_since(t1);
  auto evaluate = [&](const torch::Tensor& ex, const torch::Tensor& ey) {
    torch::NoGradGuard g;
    net->eval();
    int64_t right = 0;
    for (int64_t begin = 0; begin < ex.size(0); begin += batch) {
      const int64_t len = std::min(batch, ex.size(0) - begin);
      right += net->forward(ex.narrow(0, begin, len)).argmax(1).eq(ey.narrow(0, begin, len)).sum().item<int64_t>();
    }
    return static_cast<double>(right) / static_cast<double>(ex.size(0));
  };
  const double val_accuracy = evaluate(vx, vy), test_accuracy = evaluate(x_test, y_test);
  if (!a.output.empty()) {
    std::filesystem::create_directories(a.output);
    torch::save(net, a.output + "/model.pt");
  }
  return {{"load_ms", load_ms},
          {"train_ms", train_ms},
          {"total_ms", ms_since(t0)},
          {"loss", loss_sum.item<double>() / static_cast<double>(trained)},
          {"accuracy", correct.item<double>() / static_cast<double>(trained)},
          {"val_accuracy", val_accuracy},
          {"test_accuracy", test_accuracy}};
}

// ---- SGEMM ----------------------------------------------------------------------------------------------------------

json run_sgemm(const Args& a) {
  if (a.threads > 0) torch::set_num_threads(static_cast<int>(a.threads));
  const int64_t s = a.size;
  auto x = torch::rand({s, s}), y = torch::rand({s, s}), z = torch::empty({s, s});
  for (int i = 0; i < 3; ++i) torch::mm_out(z, x, y);
  double best = 0;
  for (int r = 0; r < 5; ++r) {
    const int reps = 10;
    auto t0 = Clock::now();
    for (int i = 0; i < reps; ++i) torch::mm_out(z, x, y);
    const double seconds = ms_since(t0) / 1000.0;
    best = std::max(best, 2.0 * static_cast<double>(s * s * s) * reps / seconds / 1e9);
  }
  return {{"gflops", best}, {"size", s}};
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Args a = parse(argc, argv);
    if (a.mode != "step") a.impl = "libtorch";
    json out = {{"mode", a.mode}, {"settings", a.settings}};
    if (a.settings == "tuned" && a.impl == "libtorch") tune_by_hand();
    else if (a.settings == "untuned" && a.impl == "lighter") lighter::disable_runtime_defaults();
    else if (a.settings != "default") throw std::invalid_argument("--settings " + a.settings + " does not apply to " + a.impl);
    torch::manual_seed(static_cast<uint64_t>(a.seed));
    if (a.mode == "step") {
      if (a.impl != "lighter" && a.impl != "libtorch") throw std::invalid_argument("--impl is lighter or libtorch");
      Workload w = make_workload(a.workload);
      Timing t = a.impl == "lighter" ? run_lighter(a, w) : run_libtorch(a, w);
      out.update({{"workload", a.workload}, {"impl", a.impl}, {"batch", w.batch}, {"ms_per_step", t.ms_per_step},
                  {"steps", a.steps}, {"warmup", a.warmup}});
    } else if (a.mode == "epoch") {
      if (a.images_dir.empty()) throw std::invalid_argument("epoch needs --images-dir");
      out.update(run_epoch(a));
      out["impl"] = "libtorch";
    } else if (a.mode == "sgemm") {
      out.update(run_sgemm(a));
    } else {
      throw std::invalid_argument("unknown mode '" + a.mode + "' (step, epoch, sgemm)");
    }
    out["threads"] = torch::get_num_threads();
    out["peak_rss_mib"] = peak_rss_mib();
    std::printf("%s\n", out.dump().c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lighter_bench: %s\n", e.what());
    return 1;
  }
}
