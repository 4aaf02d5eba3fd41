#include "lighter/training/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iomanip>
#include <limits>
#include <locale>
#include <sstream>
#include <vector>

#include "lighter/core/json.h"

namespace lighter::training {
namespace {

// Geometry, in SVG user units (pixels).
constexpr double kPanelWidth = 420, kPanelHeight = 280;
constexpr double kPlotLeft = 64, kPlotRight = 16, kPlotTop = 48, kPlotBottom = 46;
constexpr double kMargin = 12, kTitleHeight = 30;
constexpr int kColumns = 2;
constexpr const char* kTrainColor = "#1f77b4";  // matplotlib's blue and orange
constexpr const char* kValColor = "#ff7f0e";
constexpr const char* kValDash = "6,4";

// Numbers are written through the classic locale: a user's locale with a decimal comma would break the SVG.
std::string fixed(double v, int decimals) {
  if (!std::isfinite(v)) v = 0;  // never reached by callers that filter, but keep "nan" out of the output
  std::ostringstream os;
  os.imbue(std::locale::classic());
  os << std::fixed << std::setprecision(decimals) << v;
  std::string s = os.str();
  if (decimals > 0) {  // trim "12.50" to "12.5" and "12.00" to "12": smaller files
    while (!s.empty() && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
  }
  if (s == "-0") s = "0";
  return s;
}

// A coordinate: two decimals are far below a pixel.
std::string num(double v) { return fixed(v, 2); }

// Text content and attribute values. Control characters other than tab/newline are not allowed in XML 1.0.
std::string xml_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') break;
        out += c;
    }
  }
  return out;
}

// A 1, 2 or 5 times a power of ten close to `x` (Heckbert, "Nice numbers for graph labels", Graphics Gems 1990).
double nice_step(double x) {
  if (!(x > 0) || !std::isfinite(x)) return 1;
  double exponent = std::floor(std::log10(x));
  double fraction = x / std::pow(10.0, exponent);
  double nice = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10;
  return nice * std::pow(10.0, exponent);
}

// An axis: [lo, hi] rounded out to whole steps, and the step between ticks.
struct Axis {
  double lo = 0, hi = 1, step = 0.2;
  bool integer = false;

  // About five ticks over [min, max]; a zero range is widened so constant values still get a scale.
  static Axis fit(double min, double max, bool integer) {
    Axis a;
    a.integer = integer;
    if (!std::isfinite(min) || !std::isfinite(max)) min = 0, max = 1;
    if (max == min) {
      double pad = integer ? 1 : (min == 0 ? 1 : std::abs(min) * 0.1);
      min -= pad, max += pad;
    }
    double range = max - min;
    if (!std::isfinite(range)) range = std::numeric_limits<double>::max();
    // Of the nice steps near range/4, the one whose rounded-out axis has closest to five ticks (more on a tie).
    double base = nice_step(range / 4);
    int best_distance = std::numeric_limits<int>::max();
    for (double scale : {0.2, 0.4, 0.5, 1.0, 2.0, 2.5, 5.0}) {
      double step = nice_step(base * scale);
      if (integer) step = std::max(1.0, std::round(step));
      double count = std::ceil(max / step) - std::floor(min / step) + 1;
      if (!std::isfinite(count)) continue;
      int distance = static_cast<int>(std::abs(count - 5));
      if (distance < best_distance || (distance == best_distance && step < a.step)) best_distance = distance, a.step = step;
    }
    a.lo = std::floor(min / a.step) * a.step;
    a.hi = std::ceil(max / a.step) * a.step;
    if (!std::isfinite(a.lo) || !std::isfinite(a.hi) || a.hi <= a.lo) a.lo = min, a.hi = max;
    return a;
  }

  std::vector<double> ticks() const {
    std::vector<double> out;
    double count = std::round((hi - lo) / step);
    if (!std::isfinite(count) || count > 50) return {lo, hi};
    for (int64_t i = 0; i <= static_cast<int64_t>(count); ++i) {
      double v = lo + static_cast<double>(i) * step;
      if (std::abs(v) < step * 1e-9) v = 0;  // no "-0" or 1e-17 from accumulated rounding
      out.push_back(v);
    }
    return out;
  }

  // As many decimals as the step needs; scientific notation for very large or very small scales.
  std::string label(double v) const {
    double magnitude = std::max(std::abs(lo), std::abs(hi));
    if (magnitude >= 1e6 || step < 1e-4) {
      std::ostringstream os;
      os.imbue(std::locale::classic());
      os << std::setprecision(3) << v;
      return os.str();
    }
    int decimals = integer ? 0 : std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
    return fixed(v, std::min(decimals, 10));
  }

  // Maps a value to [0, 1] along the axis.
  double unit(double v) const { return (v - lo) / (hi - lo); }
};

struct Curve {
  std::vector<double> x, y;  // finite points only
  bool validation = false;
};

struct Panel {
  std::string name;
  std::vector<Curve> curves;  // train first, then validation, each only when logged
  bool has_values = false;    // some series has values (finite or not)
};

// The quantities to plot: "loss" first, then the others by name; "val_x" joins the panel of "x".
std::vector<Panel> collect_panels(const History& history) {
  std::vector<std::string> names;
  auto add_name = [&](const std::string& n) {
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
  };
  for (const auto& kv : history.history) {
    const std::string& key = kv.first;
    if (kv.second.empty()) continue;
    add_name(key.rfind("val_", 0) == 0 && key.size() > 4 ? key.substr(4) : key);
  }
  std::stable_sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
    if ((a == "loss") != (b == "loss")) return a == "loss";
    return a < b;
  });

  std::vector<Panel> panels;
  for (const auto& name : names) {
    Panel panel;
    panel.name = name;
    for (bool validation : {false, true}) {
      auto it = history.history.find(validation ? "val_" + name : name);
      if (it == history.history.end() || it->second.empty()) continue;
      panel.has_values = true;
      Curve curve;
      curve.validation = validation;
      const auto& values = it->second;
      for (size_t i = 0; i < values.size(); ++i) {
        if (!std::isfinite(values[i])) continue;
        // Epoch numbers 1-based; a series longer than the epoch list falls back to its index.
        double e = i < history.epoch.size() ? static_cast<double>(history.epoch[i]) : static_cast<double>(i);
        curve.x.push_back(e + 1);
        curve.y.push_back(values[i]);
      }
      panel.curves.push_back(std::move(curve));
    }
    if (panel.has_values) panels.push_back(std::move(panel));
  }
  return panels;
}

std::string svg_header(double width, double height) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
         "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" +
         num(width) + "\" height=\"" + num(height) + "\" viewBox=\"0 0 " + num(width) + " " + num(height) +
         "\" font-family=\"sans-serif\" font-size=\"12\">\n"
         "<rect x=\"0\" y=\"0\" width=\"" +
         num(width) + "\" height=\"" + num(height) + "\" fill=\"#ffffff\"/>\n";
}

std::string text(double x, double y, const std::string& content, const std::string& extra = "") {
  return "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\"" + (extra.empty() ? "" : " " + extra) + ">" +
         xml_escape(content) + "</text>\n";
}

std::string line(double x1, double y1, double x2, double y2, const std::string& style) {
  return "<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) + "\" y2=\"" + num(y2) + "\" " +
         style + "/>\n";
}

std::string draw_panel(const Panel& panel, double ox, double oy) {
  std::string out = "<g transform=\"translate(" + num(ox) + "," + num(oy) + ")\">\n";
  const double left = kPlotLeft, top = kPlotTop;
  const double width = kPanelWidth - kPlotLeft - kPlotRight, height = kPanelHeight - kPlotTop - kPlotBottom;
  const double right = left + width, bottom = top + height;

  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  bool train = false, validation = false;
  for (const auto& c : panel.curves) {
    (c.validation ? validation : train) = true;
    for (size_t i = 0; i < c.x.size(); ++i) {
      xmin = std::min(xmin, c.x[i]), xmax = std::max(xmax, c.x[i]);
      ymin = std::min(ymin, c.y[i]), ymax = std::max(ymax, c.y[i]);
    }
  }
  bool any_point = std::isfinite(xmin);
  Axis xa = any_point ? Axis::fit(xmin, xmax, true) : Axis::fit(1, 1, true);
  Axis ya = any_point ? Axis::fit(ymin, ymax, false) : Axis::fit(0, 1, false);
  auto px = [&](double v) { return left + xa.unit(v) * width; };
  auto py = [&](double v) { return bottom - ya.unit(v) * height; };

  // Title, then the legend on its own line above the plot: neither covers a curve, however long the name.
  out += text((left + right) / 2, 18, panel.name, "text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\"");
  // One legend entry per logged series, right-aligned.
  double lx = right - (train ? 60 : 0) - (validation ? 95 : 0), ly = 36;
  if (train) {
    out += line(lx, ly - 4, lx + 22, ly - 4, std::string("stroke=\"") + kTrainColor + "\" stroke-width=\"2\"");
    out += text(lx + 27, ly, "train");
    lx += 65;
  }
  if (validation) {
    out += line(lx, ly - 4, lx + 22, ly - 4,
                std::string("stroke=\"") + kValColor + "\" stroke-width=\"2\" stroke-dasharray=\"" + kValDash + "\"");
    out += text(lx + 27, ly, "validation");
  }

  // Grid and tick labels.
  for (double t : ya.ticks()) {
    double y = py(t);
    out += line(left, y, right, y, "stroke=\"#e5e5e5\" stroke-width=\"1\"");
    out += line(left - 4, y, left, y, "stroke=\"#333333\" stroke-width=\"1\"");
    out += text(left - 7, y + 4, ya.label(t), "text-anchor=\"end\"");
  }
  for (double t : xa.ticks()) {
    double x = px(t);
    out += line(x, bottom, x, bottom + 4, "stroke=\"#333333\" stroke-width=\"1\"");
    out += text(x, bottom + 17, xa.label(t), "text-anchor=\"middle\"");
  }
  out += "<path d=\"M" + num(left) + "," + num(top) + " V" + num(bottom) + " H" + num(right) +
         "\" fill=\"none\" stroke=\"#333333\" stroke-width=\"1\"/>\n";
  out += text((left + right) / 2, bottom + 36, "epoch", "text-anchor=\"middle\"");

  // Curves: one element each, so a reader of the file can match them to series.
  for (const auto& c : panel.curves) {
    const char* color = c.validation ? kValColor : kTrainColor;
    std::string series = xml_escape(c.validation ? "val_" + panel.name : panel.name);
    std::string cls = c.validation ? "validation" : "train";
    if (c.x.size() == 1) {
      out += "<circle class=\"" + cls + "\" data-series=\"" + series + "\" cx=\"" + num(px(c.x[0])) + "\" cy=\"" +
             num(py(c.y[0])) + "\" r=\"4\" fill=\"" + color + "\"/>\n";
    } else if (c.x.size() > 1) {
      std::string points;
      for (size_t i = 0; i < c.x.size(); ++i) {
        if (i) points += ' ';
        points += num(px(c.x[i])) + "," + num(py(c.y[i]));
      }
      out += "<polyline class=\"" + cls + "\" data-series=\"" + series + "\" fill=\"none\" stroke=\"" + color +
             "\" stroke-width=\"2\" stroke-linejoin=\"round\"" +
             (c.validation ? std::string(" stroke-dasharray=\"") + kValDash + "\"" : std::string()) + " points=\"" +
             points + "\"/>\n";
    }
  }
  if (!any_point) {
    out += text((left + right) / 2, (top + bottom) / 2, "no finite values",
                "text-anchor=\"middle\" fill=\"#888888\"");
  }
  return out + "</g>\n";
}

}  // namespace

std::string history_to_svg(const History& history, const std::string& title) {
  std::vector<Panel> panels = collect_panels(history);
  const double title_height = title.empty() ? 0 : kTitleHeight;

  if (panels.empty()) {
    const double width = 320, height = 120 + title_height;
    std::string out = svg_header(width, height);
    if (!title.empty()) out += text(width / 2, 24, title, "text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\"");
    out += text(width / 2, title_height + 64, "no data", "text-anchor=\"middle\" font-size=\"16\" fill=\"#888888\"");
    return out + "</svg>\n";
  }

  const int columns = std::min<int>(kColumns, static_cast<int>(panels.size()));
  const int rows = (static_cast<int>(panels.size()) + columns - 1) / columns;
  const double width = 2 * kMargin + columns * kPanelWidth;
  const double height = 2 * kMargin + title_height + rows * kPanelHeight;
  std::string out = svg_header(width, height);
  if (!title.empty()) {
    out += text(width / 2, kMargin + 20, title, "text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\"");
  }
  for (size_t i = 0; i < panels.size(); ++i) {
    double ox = kMargin + static_cast<double>(i % columns) * kPanelWidth;
    double oy = kMargin + title_height + static_cast<double>(i / columns) * kPanelHeight;
    out += draw_panel(panels[i], ox, oy);
  }
  return out + "</svg>\n";
}

void save_history_plot(const History& history, const std::string& path, const std::string& title) {
  write_file_atomic(path, history_to_svg(history, title));
}

}  // namespace lighter::training
