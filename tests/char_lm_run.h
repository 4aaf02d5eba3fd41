#pragma once
// Run configs of the `lighter` command shared by the adapter and reward-based fine-tuning tests: a tiny character
// language model (Embedding + Dense, a bigram model) to adapt, and writing a config file.
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace lighter_test {

/// Writes `j` into `file` and returns the file's name.
inline std::string write_json(const std::string& file, const nlohmann::json& j) {
  std::ofstream(file) << j.dump(2);
  return file;
}

/// `lighter train` config of a character bigram model of the text in `text_file` (whose characters must be a, b, c,
/// space and newline: with padding and OOV, 7 ids), 20% held out, Adam at `learning_rate`, into `output_dir`.
inline nlohmann::json tiny_char_lm_run(const std::string& text_file, const std::string& output_dir, int epochs,
                                       double learning_rate) {
  using nlohmann::json;
  json layers = json::array(
      {{{"class_name", "InputLayer"}, {"config", {{"batch_shape", {nullptr, nullptr}}, {"dtype", "int64"}}}},
       {{"class_name", "Embedding"}, {"config", {{"input_dim", 7}, {"output_dim", 8}}}},
       {{"class_name", "Dense"}, {"config", {{"units", 7}}}}});
  return {{"name", "tiny_lm"},
          {"device", "cpu"},
          {"data",
           {{"train", {{"format", "language_model"}, {"path", text_file}, {"sequence_length", 8}}},
            {"validation_split", 0.2},
            {"text_vectorization", {{"split", "character"}, {"standardize", nullptr}}}}},
          {"model", {{"class_name", "Sequential"}, {"config", {{"name", "tiny_lm"}, {"layers", layers}}}}},
          {"compile",
           {{"optimizer", {{"class_name", "Adam"}, {"config", {{"learning_rate", learning_rate}}}}},
            {"loss", {{"class_name", "SparseCategoricalCrossentropy"}, {"config", {{"from_logits", true}}}}}}},
          {"fit", {{"epochs", epochs}, {"batch_size", 8}, {"verbose", 0}}},
          {"output_dir", output_dir}};
}

}  // namespace lighter_test
