#pragma once
/// The `lighter` command: train, evaluate, predict, summary, generate, merge, merge-adapter.
///
/// A config with an "adapters" section (run_config.h) makes `lighter train` an adapter run: the base model folder is
/// loaded with its weights, a LoRA/DoRA adapter is added (lighter/peft/lora.h) and only the adapter (and
/// modules_to_save, and biases with bias "all"/"lora_only") trains. Its output folder holds PEFT's
/// adapter_config.json + adapter_model.safetensors (base_model_name_or_path: the base folder, absolute), lighter.json
/// (the base's, with this run's name and loss and {"adapter": {"name", "base_model", "base_model_relative"}}: the
/// base folder, absolute and relative to the run, tried in that order), metrics.json, history.csv,
/// training_curves.svg and the resumable checkpoint (which holds base and adapter tensors); no model.json or
/// model.safetensors. evaluate, predict and generate with --weights on such a folder load the base named in
/// lighter.json and the adapter, unmerged. `lighter merge-adapter --base DIR --adapter DIR --output DIR` writes a
/// plain model folder instead: the adapter folded into the base's weights, the base's lighter.json plus
/// {"merge": {"method": "lora"|"dora", "base", "adapter", "adapter_name"}}.
///
/// metrics.json of every run records "parameters": {"trainable", "total"} (summary()'s counts) and "steps" and
/// "seconds_per_step" (the wall time of fit's training batches in this process, validation left out).
#include <string>
#include <vector>

namespace lighter::cli {

/// Runs the command line; returns the exit status (0 success, 1 a user or data error, 2 a usage error).
/// Errors are printed as one line on stderr.
int run(const std::vector<std::string>& args);

}  // namespace lighter::cli
