// Evaluation output: JSON, a terminal table and an SVG size-versus-quality plot.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "edgelm/eval.h"

namespace edgelm::tools {
namespace {

constexpr double kMiB = 1048576.0;

void put(nlohmann::json& j, const char* key, const std::optional<double>& v) {
  if (v) j[key] = *v;
}

std::string cell(const std::optional<double>& v, const char* format) {
  return v ? fmt::format(fmt::runtime(format), *v) : "-";
}

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// About five round tick values covering [lo, hi].
std::vector<double> ticks(double lo, double hi) {
  const double span = hi - lo;
  const double raw = span / 5.0;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    step = m * magnitude;
    if (step >= raw) break;
  }
  std::vector<double> out;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push_back(t);
  return out;
}

struct Metric {
  const char* label;
  std::optional<double> EvalMetrics::*field;
};

}  // namespace

nlohmann::json eval_to_json(const std::vector<EvalEntry>& entries) {
  nlohmann::json models = nlohmann::json::array();
  for (const EvalEntry& e : entries) {
    nlohmann::json j;
    j["name"] = e.name;
    j["file_bytes"] = e.file_bytes;
    j["is_base"] = e.is_base;
    const EvalMetrics& m = e.metrics;
    put(j, "perplexity", m.ppl_candidate);
    put(j, "base_perplexity", m.ppl_base);
    if (m.ppl_base && m.ppl_candidate) {
      j["ppl_increase_pct"] = 100.0 * (*m.ppl_candidate - *m.ppl_base) / *m.ppl_base;
    }
    put(j, "mean_kl", m.mean_kl);
    put(j, "p99_kl", m.p99_kl);
    put(j, "top1_agreement", m.top1_agreement);
    put(j, "accuracy", m.accuracy_candidate);
    put(j, "base_accuracy", m.accuracy_base);
    if (e.gate) {
      nlohmann::json failures = nlohmann::json::array();
      for (const auto& f : e.gate->failures)
        failures.push_back({{"threshold", f.threshold}, {"message", f.message}});
      j["gate"] = {{"passed", e.gate->passed}, {"failures", failures}};
    }
    models.push_back(std::move(j));
  }
  return {{"models", models}};
}

std::string eval_to_table(const std::vector<EvalEntry>& entries) {
  std::string out =
      fmt::format("{:<36} {:>9} {:>10} {:>8} {:>9} {:>9} {:>7} {:>8} {:>5}\n", "model", "size MiB",
                  "ppl", "dppl %", "mean KL", "p99 KL", "top-1", "accuracy", "gate");
  for (const EvalEntry& e : entries) {
    const EvalMetrics& m = e.metrics;
    std::optional<double> dppl;
    if (m.ppl_base && m.ppl_candidate)
      dppl = 100.0 * (*m.ppl_candidate - *m.ppl_base) / *m.ppl_base;
    const std::string name = e.name + (e.is_base ? " (base)" : "");
    out += fmt::format("{:<36} {:>9.3f} {:>10} {:>8} {:>9} {:>9} {:>7} {:>8} {:>5}\n", name,
                       e.file_bytes / kMiB, cell(m.ppl_candidate, "{:.4f}"), cell(dppl, "{:+.2f}"),
                       cell(m.mean_kl, "{:.5f}"), cell(m.p99_kl, "{:.5f}"),
                       cell(m.top1_agreement, "{:.4f}"), cell(m.accuracy_candidate, "{:.3f}"),
                       e.gate ? (e.gate->passed ? "pass" : "FAIL") : "-");
  }
  return out;
}

Result<std::string> size_quality_svg(const std::vector<EvalEntry>& entries) {
  static constexpr Metric kMetrics[] = {
      {"perplexity (lower is better)", &EvalMetrics::ppl_candidate},
      {"mean KL from base, nats (lower is better)", &EvalMetrics::mean_kl},
      {"task accuracy (higher is better)", &EvalMetrics::accuracy_candidate},
  };
  if (entries.empty()) return make_error(ErrorCode::kInvalidArgument, "plot: no models");
  const Metric* metric = nullptr;
  for (const Metric& m : kMetrics) {
    const bool all = std::all_of(entries.begin(), entries.end(), [&](const EvalEntry& e) {
      return (e.metrics.*(m.field)).has_value() || (e.is_base && m.field == &EvalMetrics::mean_kl);
    });
    if (all) {
      metric = &m;
      break;
    }
  }
  if (metric == nullptr) {
    return make_error(
        ErrorCode::kInvalidArgument,
        "plot: no quality metric (perplexity, KL, accuracy) was measured for every model");
  }
  struct Point {
    double x, y;
    std::string label;
  };
  std::vector<Point> points;
  for (const EvalEntry& e : entries) {
    const auto& v = e.metrics.*(metric->field);
    points.push_back({e.file_bytes / kMiB, v.value_or(0.0), e.name + (e.is_base ? " (base)" : "")});
  }
  const auto [xmin_it, xmax_it] = std::minmax_element(
      points.begin(), points.end(), [](const Point& a, const Point& b) { return a.x < b.x; });
  const auto [ymin_it, ymax_it] = std::minmax_element(
      points.begin(), points.end(), [](const Point& a, const Point& b) { return a.y < b.y; });
  // Pad the ranges so points sit inside the frame; a single value gets a range around it.
  const auto padded = [](double lo, double hi) {
    const double pad = hi > lo ? 0.08 * (hi - lo) : std::max(std::fabs(lo) * 0.1, 1e-3);
    return std::pair<double, double>(lo - pad, hi + pad);
  };
  // Plain doubles: lambdas below capture them (clang 14 cannot capture structured bindings).
  double x0 = 0, x1 = 0, y0 = 0, y1 = 0;
  std::tie(x0, x1) = padded(xmin_it->x, xmax_it->x);
  std::tie(y0, y1) = padded(ymin_it->y, ymax_it->y);
  x0 = std::max(x0, 0.0);
  if (metric->field != &EvalMetrics::ppl_candidate) y0 = std::max(y0, 0.0);

  const double width = 720, height = 480, left = 90, right = 200, top = 50, bottom = 70;
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  const auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * plot_w; };
  const auto py = [&](double y) { return top + plot_h - (y - y0) / (y1 - y0) * plot_h; };

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} "
      "{1}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{2}\" y=\"28\" font-size=\"16\" text-anchor=\"middle\">Model size versus "
      "quality</text>\n"
      "<rect x=\"{3}\" y=\"{4}\" width=\"{5}\" height=\"{6}\" fill=\"none\" stroke=\"black\"/>\n",
      width, height, left + plot_w / 2, left, top, plot_w, plot_h);
  for (double t : ticks(x0, x1)) {
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#ddd\"/>"
        "<text x=\"{0:.1f}\" y=\"{3:.1f}\" text-anchor=\"middle\">{4:g}</text>\n",
        px(t), top, top + plot_h, top + plot_h + 18, t);
  }
  for (double t : ticks(y0, y1)) {
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"#ddd\"/>"
        "<text x=\"{3:.1f}\" y=\"{4:.1f}\" text-anchor=\"end\">{5:.4g}</text>\n",
        left, py(t), left + plot_w, left - 6, py(t) + 4, t);
  }
  svg +=
      fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">file size (MiB)</text>\n",
                  left + plot_w / 2, height - 25);
  svg += fmt::format(
      "<text transform=\"translate(24 {:.1f}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
      top + plot_h / 2, xml_escape(metric->label));
  for (const Point& p : points) {
    svg += fmt::format(
        "<circle cx=\"{0:.1f}\" cy=\"{1:.1f}\" r=\"5\" fill=\"#1f77b4\"/>"
        "<text x=\"{2:.1f}\" y=\"{3:.1f}\">{4}</text>\n",
        px(p.x), py(p.y), px(p.x) + 8, py(p.y) + 4, xml_escape(p.label));
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace edgelm::tools
