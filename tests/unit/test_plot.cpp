#include "lighter_test.h"

#include <cmath>
#include <limits>
#include <regex>
#include <vector>

#include "lighter/training/plot.h"

using lighter::training::History;
using lighter::training::history_to_svg;

namespace {

History make_history(int epochs, bool with_accuracy = true) {
  History h;
  for (int e = 0; e < epochs; ++e) {
    h.epoch.push_back(e);
    h.history["loss"].push_back(1.0 / (e + 1));
    h.history["val_loss"].push_back(1.2 / (e + 1));
    if (with_accuracy) {
      h.history["accuracy"].push_back(0.5 + 0.1 * e);
      h.history["val_accuracy"].push_back(0.45 + 0.1 * e);
    }
  }
  return h;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

// Well-formed in a simple sense: tags balance and nest, attribute values are quoted, and text holds no raw '<'
// and no '&' outside an entity.
bool well_formed(const std::string& svg, std::string* why) {
  std::vector<std::string> open;
  size_t i = 0;
  bool seen_root = false;
  auto check_text = [&](const std::string& text) {
    static const std::regex entity("^&(amp|lt|gt|quot|apos);");
    for (size_t k = 0; k < text.size(); ++k) {
      if (text[k] == '&' && !std::regex_search(text.substr(k, 6), entity)) return false;
    }
    return true;
  };
  while (i < svg.size()) {
    size_t lt = svg.find('<', i);
    std::string text = svg.substr(i, lt == std::string::npos ? std::string::npos : lt - i);
    if (!check_text(text)) return *why = "bad entity in text: " + text, false;
    if (lt == std::string::npos) break;
    size_t gt = svg.find('>', lt);
    if (gt == std::string::npos) return *why = "unterminated tag", false;
    std::string tag = svg.substr(lt + 1, gt - lt - 1);
    i = gt + 1;
    if (tag.empty()) return *why = "empty tag", false;
    if (tag[0] == '?') {
      if (seen_root || tag.back() != '?') return *why = "misplaced declaration", false;
      continue;
    }
    if (tag.find('<') != std::string::npos) return *why = "'<' inside a tag: " + tag, false;
    if (count(tag, "\"") % 2 != 0) return *why = "unbalanced quotes: " + tag, false;
    if (!check_text(tag)) return *why = "bad entity in attribute: " + tag, false;
    if (tag[0] == '/') {
      std::string name = tag.substr(1);
      if (open.empty() || open.back() != name) return *why = "unbalanced </" + name + ">", false;
      open.pop_back();
      continue;
    }
    std::string name = tag.substr(0, tag.find_first_of(" \n/"));
    if (open.empty()) {
      if (seen_root) return *why = "second root element", false;
      if (name != "svg") return *why = "root is not <svg>", false;
      seen_root = true;
    }
    if (tag.back() != '/') open.push_back(name);
  }
  if (!open.empty()) return *why = "unclosed <" + open.back() + ">", false;
  if (!seen_root) return *why = "no <svg>", false;
  return true;
}

// The points attributes of every <polyline>, by data-series.
std::vector<std::pair<std::string, size_t>> polylines(const std::string& svg) {
  std::vector<std::pair<std::string, size_t>> out;
  static const std::regex poly("<polyline[^>]*data-series=\"([^\"]*)\"[^>]*points=\"([^\"]*)\"");
  for (std::sregex_iterator it(svg.begin(), svg.end(), poly), end; it != end; ++it) {
    std::string points = (*it)[2];
    out.emplace_back((*it)[1], count(points, ",") /* one comma per x,y pair */);
  }
  return out;
}

bool has_non_finite_text(const std::string& svg) {
  std::string lower = svg;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower.find("nan") != std::string::npos || lower.find("inf") != std::string::npos;
}

}  // namespace

#define REQUIRE_WELL_FORMED(svg)               \
  do {                                         \
    std::string why_;                          \
    bool ok_ = well_formed(svg, &why_);        \
    INFO(why_);                                \
    REQUIRE(ok_);                              \
  } while (false)

TEST_CASE("history plot: one curve per series with one point per epoch", "[plot]") {
  std::string svg = history_to_svg(make_history(5), "run");
  REQUIRE_WELL_FORMED(svg);
  REQUIRE(svg.rfind("<?xml", 0) == 0);
  REQUIRE(count(svg, "<svg") == 1);
  REQUIRE(count(svg, "</svg>") == 1);
  REQUIRE(svg.find("xmlns=\"http://www.w3.org/2000/svg\"") != std::string::npos);
  REQUIRE(svg.find("font-family=\"sans-serif\"") != std::string::npos);
  // Standalone: nothing to fetch or run.
  REQUIRE(svg.find("<script") == std::string::npos);
  REQUIRE(svg.find("href") == std::string::npos);
  REQUIRE(svg.find("@import") == std::string::npos);

  auto lines = polylines(svg);
  REQUIRE(count(svg, "<polyline") == 4);
  REQUIRE(lines.size() == 4);
  // Loss panel first, then the metrics; training before validation within a panel.
  REQUIRE(lines[0].first == "loss");
  REQUIRE(lines[1].first == "val_loss");
  REQUIRE(lines[2].first == "accuracy");
  REQUIRE(lines[3].first == "val_accuracy");
  for (const auto& l : lines) REQUIRE(l.second == 5);
  // Validation dashed, training solid.
  REQUIRE(count(svg, "stroke-dasharray") == 2 /* curves */ + 2 /* legend entries */);
  REQUIRE(svg.find(">run</text>") != std::string::npos);
  REQUIRE(svg.find(">loss</text>") != std::string::npos);
  REQUIRE(svg.find(">accuracy</text>") != std::string::npos);
  REQUIRE(svg.find(">epoch</text>") != std::string::npos);
  REQUIRE(!has_non_finite_text(svg));
}

TEST_CASE("history plot: tick labels are nice round numbers", "[plot]") {
  History h;
  for (int e = 0; e < 10; ++e) {
    h.epoch.push_back(e);
    h.history["loss"].push_back(0.13 + 0.237 * e);  // 0.13 .. 2.263
  }
  std::string svg = history_to_svg(h);
  // y labels: 0, 0.5, 1, ... 2.5; x labels: whole epochs.
  for (const char* label : {">0<", ">0.5<", ">1<", ">1.5<", ">2<", ">2.5<", ">10<"}) {
    INFO(label);
    REQUIRE(svg.find(label) != std::string::npos);
  }
  REQUIRE(svg.find(">0.13") == std::string::npos);
  // Coordinates are kept short: no number with more than two decimals.
  REQUIRE(!std::regex_search(svg, std::regex("[0-9]\\.[0-9]{3}")));
}

TEST_CASE("history plot: non-finite values are skipped", "[plot]") {
  History h = make_history(5, false);
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  h.history["loss"][2] = nan;
  h.history["val_loss"][0] = inf;
  h.history["val_loss"][4] = -inf;
  std::string svg = history_to_svg(h);
  REQUIRE_WELL_FORMED(svg);
  REQUIRE(!has_non_finite_text(svg));
  auto lines = polylines(svg);
  REQUIRE(lines.size() == 2);
  REQUIRE(lines[0].second == 4);
  REQUIRE(lines[1].second == 3);

  // A series with no finite value at all still gives a valid chart.
  History all_nan;
  all_nan.epoch = {0, 1};
  all_nan.history["loss"] = {nan, inf};
  svg = history_to_svg(all_nan);
  REQUIRE_WELL_FORMED(svg);
  REQUIRE(!has_non_finite_text(svg));
  REQUIRE(count(svg, "<polyline") == 0);
}

TEST_CASE("history plot: names are XML-escaped", "[plot]") {
  History h = make_history(3, false);
  h.history["a<&>\"'b"] = {1, 2, 3};
  h.history["val_a<&>\"'b"] = {2, 3, 4};
  std::string svg = history_to_svg(h, "title <&>");
  REQUIRE_WELL_FORMED(svg);
  REQUIRE(svg.find("a<&>") == std::string::npos);
  REQUIRE(svg.find(">a&lt;&amp;&gt;&quot;&apos;b</text>") != std::string::npos);
  REQUIRE(svg.find("title &lt;&amp;&gt;") != std::string::npos);
  REQUIRE(count(svg, "<polyline") == 4);
}

TEST_CASE("history plot: a single epoch draws markers, constant values get a range", "[plot]") {
  History one = make_history(1);
  std::string svg = history_to_svg(one);
  REQUIRE_WELL_FORMED(svg);
  REQUIRE(count(svg, "<polyline") == 0);
  REQUIRE(count(svg, "<circle") == 4);
  REQUIRE(!has_non_finite_text(svg));

  History flat;
  for (int e = 0; e < 4; ++e) {
    flat.epoch.push_back(e);
    flat.history["loss"].push_back(0.0);
    flat.history["accuracy"].push_back(1.0);
  }
  svg = history_to_svg(flat);
  REQUIRE_WELL_FORMED(svg);
  REQUIRE(!has_non_finite_text(svg));
  auto lines = polylines(svg);
  REQUIRE(lines.size() == 2);
  // The flat loss sits inside its panel, with distinct ticks around it.
  REQUIRE(svg.find(">-1<") != std::string::npos);
  REQUIRE(svg.find(">1<") != std::string::npos);
}

TEST_CASE("history plot: an empty history says so", "[plot]") {
  for (const History& h : {History(), [] {
                             History e;
                             e.history["loss"];  // a key without values
                             return e;
                           }()}) {
    std::string svg = history_to_svg(h, "t");
    REQUIRE_WELL_FORMED(svg);
    REQUIRE(svg.find("no data") != std::string::npos);
    REQUIRE(count(svg, "<polyline") == 0);
  }
}

TEST_CASE("history plot: save_history_plot writes the SVG file", "[plot]") {
  std::string dir = lighter_test::temp_dir("plot");
  History h = make_history(5);
  lighter::training::save_history_plot(h, dir + "/history.svg", "iris");
  std::string content = lighter::read_text_file(dir + "/history.svg");
  REQUIRE((content.rfind("<?xml", 0) == 0 || content.rfind("<svg", 0) == 0));
  REQUIRE(content == history_to_svg(h, "iris"));
  REQUIRE_THROWS_AS(lighter::training::save_history_plot(h, "/nonexistent-dir/h.svg"), lighter::DataError);
}
