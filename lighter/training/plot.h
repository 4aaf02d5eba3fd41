#pragma once
/// Training curves as a standalone SVG chart (no scripts, fonts or other external resources).
#include <string>

#include "lighter/training/callback.h"

namespace lighter::training {

/// An SVG chart of training curves: one panel per quantity (loss first, then each metric), each panel with the
/// training curve and, when present, the validation curve ("val_" + name), epoch on the x axis.
///
/// Panels sit in a grid of two per row. Epochs are shown 1-based (as the progress bar counts them); non-finite
/// values are skipped; a curve with one point is drawn as a marker. An empty history gives a chart saying
/// "no data". Each curve is one `<polyline>` (or one `<circle>` when it has a single point).
std::string history_to_svg(const History& history, const std::string& title = "");

/// Writes history_to_svg(history, title) atomically to `path` (DataError when it cannot be written).
void save_history_plot(const History& history, const std::string& path, const std::string& title = "");

}  // namespace lighter::training
