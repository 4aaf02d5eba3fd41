#include "lighter/callbacks/model_checkpoint.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <regex>

#include <spdlog/spdlog.h>

#include "lighter/callbacks/monitor.h"
#include "lighter/core/error.h"
#include "lighter/core/logging.h"
#include "lighter/models/model.h"
#include "lighter/models/saving.h"

namespace lighter::callbacks {

namespace detail {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// One replacement field's value, formatted by a Python format spec:
// [[fill]align][sign][#][0][width][,|_][.precision][type].
std::string format_one(const std::string& templ, const std::string& name, const std::string& spec, bool is_int,
                       double value) {
  static const std::regex re(R"(^(?:(.)?([<>=^]))?([+\- ])?(#)?(0)?(\d+)?([,_])?(?:\.(\d+))?([deEfFgG%s])?$)");
  std::smatch m;
  auto fail = [&](const std::string& why) -> std::string {
    throw ConfigError("filepath", "Failed to format this callback filepath: \"" + templ + "\". Reason: field '" +
                                      name + "' " + why);
  };
  if (!std::regex_match(spec, m, re)) fail("has an unsupported format spec '" + spec + "'");
  if (m[7].matched) fail("uses a thousands separator, which is not supported");
  std::string type = m[9].matched ? m[9].str() : "";
  if (type == "s") fail("has type 's' for a number");
  if (type == "d" && !is_int) fail("has type 'd' but holds a float (as Python: Unknown format code 'd' for float)");
  std::string sign = m[3].matched ? m[3].str() : "-";
  std::string body;
  char buf[128];
  int precision = m[8].matched ? std::stoi(m[8].str()) : -1;
  double v = value;
  if (type.empty() && is_int) type = "d";
  if (type == "d") {
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(std::llabs(static_cast<long long>(v))));
    body = buf;
  } else if (type.empty() && precision < 0) {
    // str(float): the shortest repr, with ".0" for whole numbers.
    auto r = std::to_chars(buf, buf + sizeof buf, std::fabs(v));
    body.assign(buf, r.ptr);
    if (std::isfinite(v) && body.find_first_of(".e") == std::string::npos) body += ".0";
  } else {
    std::string t = type.empty() ? "g" : type == "%" ? "f" : type;
    if (type == "%") v *= 100;
    std::string fmt = std::string("%") + (m[4].matched ? "#" : "") + "." +
                      std::to_string(precision < 0 ? 6 : precision) + t;
    std::snprintf(buf, sizeof buf, fmt.c_str(), std::fabs(v));
    body = buf;
    if (type == "%") body += "%";
  }
  std::string sign_text = std::signbit(value) && !(std::isnan(value)) ? "-" : sign == "+" ? "+" : sign == " " ? " " : "";
  size_t width = m[6].matched ? std::stoul(m[6].str()) : 0;
  char fill = m[1].matched ? m[1].str()[0] : (m[5].matched && !m[2].matched ? '0' : ' ');
  char align = m[2].matched ? m[2].str()[0] : (m[5].matched ? '=' : '>');
  size_t len = sign_text.size() + body.size();
  if (len >= width) return sign_text + body;
  size_t pad = width - len;
  switch (align) {
    case '<': return sign_text + body + std::string(pad, fill);
    case '^': return std::string(pad / 2, fill) + sign_text + body + std::string(pad - pad / 2, fill);
    case '=': return sign_text + std::string(pad, fill) + body;
    default: return std::string(pad, fill) + sign_text + body;
  }
}

}  // namespace

std::string format_filepath(const std::string& templ, int64_t epoch, std::optional<int64_t> batch,
                            const training::Logs& logs) {
  std::string out;
  for (size_t i = 0; i < templ.size(); ++i) {
    char c = templ[i];
    if (c == '}') {
      if (i + 1 < templ.size() && templ[i + 1] == '}') {
        out += '}';
        ++i;
        continue;
      }
      throw ConfigError("filepath", "Failed to format this callback filepath: \"" + templ +
                                        "\". Reason: single '}' encountered (write '}}' for a brace)");
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < templ.size() && templ[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    size_t close = templ.find('}', i);
    if (close == std::string::npos)
      throw ConfigError("filepath", "Failed to format this callback filepath: \"" + templ + "\". Reason: unclosed '{'");
    std::string field = templ.substr(i + 1, close - i - 1);
    size_t colon = field.find(':');
    std::string name = field.substr(0, colon), spec = colon == std::string::npos ? "" : field.substr(colon + 1);
    if (name == "epoch") {
      out += format_one(templ, name, spec, true, static_cast<double>(epoch));
    } else if (name == "batch" && batch) {
      out += format_one(templ, name, spec, true, static_cast<double>(*batch));
    } else {
      auto it = logs.find(name);
      if (it == logs.end()) {
        std::string keys = "epoch";
        if (batch) keys += ", batch";
        for (const auto& kv : logs) keys += ", " + kv.first;
        throw ConfigError("filepath", "Failed to format this callback filepath: \"" + templ + "\". Reason: '" +
                                          name + "' is not in the logs (available: " + keys + ")");
      }
      out += format_one(templ, name, spec, false, it->second);
    }
    i = close;
  }
  return out;
}

}  // namespace detail

ModelCheckpoint::ModelCheckpoint(ModelCheckpointOptions options) : options_(std::move(options)) {
  const std::string& path = options_.filepath();
  if (path.empty()) throw ConfigError("filepath", "must not be empty");
  if (options_.save_freq() < 0) throw ConfigError("save_freq", "expected 'epoch' or a positive number of batches");
  if (options_.save_weights_only() && !detail::ends_with(path, ".weights.safetensors"))
    throw ConfigError("filepath", "with save_weights_only=true it must end in .weights.safetensors, got '" + path + "'");
  if (!options_.save_weights_only() && detail::ends_with(path, ".safetensors"))
    throw ConfigError("filepath", "names a model folder when save_weights_only=false (save_model writes model.json "
                                  "and model.safetensors into it); for weights only, set save_weights_only=true");
  mode_ = resolve_mode(options_.mode(), options_.monitor());
  best_ = options_.initial_value_threshold().value_or(mode_ == "min" ? std::numeric_limits<double>::infinity()
                                                                     : -std::numeric_limits<double>::infinity());
}

void ModelCheckpoint::on_train_begin(training::Logs&) {
  last_batch_seen_ = -1;
  batches_since_save_ = 0;
}

training::CallbackState ModelCheckpoint::get_state() const {
  training::CallbackState s;
  s.values = {{"last_batch_seen", last_batch_seen_}, {"batches_since_save", batches_since_save_},
              {"last_saved", last_saved_}};
  s.tensors["best"] = double_state(best_);
  return s;
}

void ModelCheckpoint::set_state(const training::CallbackState& s) {
  const char* who = "ModelCheckpoint";
  last_batch_seen_ = read_int_state(s, "last_batch_seen", who);
  batches_since_save_ = read_int_state(s, "batches_since_save", who);
  best_ = read_double_state(s, "best", who);
  if (s.values.contains("last_saved") && s.values["last_saved"].is_string()) last_saved_ = s.values["last_saved"];
}

void ModelCheckpoint::on_epoch_begin(int64_t epoch, training::Logs&) { current_epoch_ = epoch; }

void ModelCheckpoint::on_epoch_end(int64_t epoch, training::Logs& logs) {
  if (options_.save_freq() == 0) save(epoch, std::nullopt, logs);
}

bool ModelCheckpoint::wants_batch_logs() {
  // Only the batch that will save needs the logs (filling them waits for the device).
  return options_.save_freq() > 0 && batches_since_save_ + 1 >= options_.save_freq();
}

void ModelCheckpoint::on_train_batch_end(int64_t batch, training::Logs& logs) {
  if (options_.save_freq() == 0) return;
  // As Keras: a batch index not above the last one seen starts a new epoch.
  batches_since_save_ += batch <= last_batch_seen_ ? batch + 1 : batch - last_batch_seen_;
  last_batch_seen_ = batch;
  if (batches_since_save_ < options_.save_freq()) return;
  batches_since_save_ = 0;
  save(current_epoch_, batch, logs);
}

void ModelCheckpoint::save(int64_t epoch, std::optional<int64_t> batch, const training::Logs& logs) {
  std::string path = detail::format_filepath(options_.filepath(), epoch + 1,
                                             batch ? std::optional<int64_t>(*batch + 1) : std::nullopt, logs);
  if (options_.save_best_only()) {
    auto it = logs.find(options_.monitor());
    if (it == logs.end()) {
      logger()->warn("Can save best model only with {} available, skipping.", options_.monitor());
      return;
    }
    double current = it->second;
    if (!improves(mode_, current, best_)) {
      if (options_.verbose() > 0)
        logger()->info("Epoch {}: {} did not improve from {:.5f}", epoch + 1, options_.monitor(), best_);
      return;
    }
    if (options_.verbose() > 0)
      logger()->info("Epoch {}: {} improved from {:.5f} to {:.5f}, saving model to {}", epoch + 1, options_.monitor(),
                     best_, current, path);
    best_ = current;
  } else if (options_.verbose() > 0) {
    logger()->info("Epoch {}: saving model to {}", epoch + 1, path);
  }
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  if (options_.save_weights_only()) {
    save_weights(model(), path);
  } else {
    save_model(model(), path);
  }
  last_saved_ = path;
}

}  // namespace lighter::callbacks
