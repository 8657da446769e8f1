// bench/hybrid/plot_curve.py (the escalation plot of bench/hybrid/run) on a tiny curve that
// edgelm's own calibrate_threshold/calibration_curve_csv made: the SVG must parse as XML (Python's
// ElementTree), have one point per threshold on each curve, and mark the threshold calibrate
// chose — which also holds the plot's CSV reader and tie-break to the C++ ones.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/run_command.h"
#include "edgelm/hybrid/calibration.h"
#include "router_test_util.h"

namespace edgelm::hybrid {
namespace {

namespace fs = std::filesystem;
using edgelm::test::shell_quote;
using nlohmann::json;
using test::TempDir;

// Reads the SVG with ElementTree and prints each polyline's points and the chosen markers.
constexpr const char* kSvgReader = R"(
import json, sys, xml.etree.ElementTree as ET
ns = "{http://www.w3.org/2000/svg}"
root = ET.parse(sys.argv[1]).getroot()
out = {"curves": {}, "chosen": []}
for e in root.iter(ns + "polyline"):
    points = [[float(v) for v in p.split(",")] for p in e.get("points").split()]
    out["curves"][e.get("class")] = points
for e in root.iter(ns + "line"):
    if e.get("class") == "chosen":
        out["chosen"].append({"threshold": e.get("data-threshold"), "x": float(e.get("x1"))})
print(json.dumps(out))
)";

std::string plot_command(const fs::path& svg, const std::string& curve_arg) {
  return edgelm::test::python3() + " " +
         shell_quote((edgelm::test::source_dir() / "bench/hybrid/plot_curve.py").string()) + " " +
         shell_quote(svg.string()) + " " + shell_quote(curve_arg);
}

TEST(BenchPlot, EscalationSvgHasEveryThresholdAndTheChosenOne) {
  // Routing accuracy ties at -1.5 and -0.5 (5/6 each); calibrate keeps the lower escalation.
  const std::vector<CalibrationSample> samples = {{-3, false}, {-2, false},  {-1.5, true},
                                                  {-1, false}, {-0.5, true}, {-0.2, true}};
  const Calibration c = calibrate_threshold(samples);
  ASSERT_EQ(c.curve.size(), 8u);  // below all, six values, above all

  TempDir dir("bench-plot");
  const fs::path csv = dir.path() / "curve.csv";
  const fs::path svg = dir.path() / "curve.svg";
  std::ofstream(csv) << calibration_curve_csv(c);
  const auto plotted = edgelm::test::run_command(plot_command(svg, "tiny=" + csv.string()));
  ASSERT_EQ(plotted.exit_code, 0) << plotted.err;

  const auto read = edgelm::test::run_command(
      edgelm::test::python3() + " -c " + shell_quote(kSvgReader) + " " + shell_quote(svg.string()));
  ASSERT_EQ(read.exit_code, 0) << "not well-formed SVG: " << read.err;
  const json parsed = json::parse(read.out);
  for (const char* curve : {"escalation_rate", "routing_accuracy", "local_accuracy"}) {
    ASSERT_TRUE(parsed["curves"].contains(curve)) << curve;
    const json& points = parsed["curves"][curve];
    ASSERT_EQ(points.size(), c.curve.size()) << curve;
    // Rising thresholds (the last, just above the largest value, may share its pixel).
    for (size_t i = 1; i < points.size(); ++i) {
      EXPECT_GE(points[i][0].get<double>(), points[i - 1][0].get<double>()) << curve << " " << i;
    }
  }
  // Escalation rises with the threshold, so its points climb (SVG y grows downwards).
  const json& escalation = parsed["curves"]["escalation_rate"];
  EXPECT_GT(escalation.front()[1].get<double>(), escalation.back()[1].get<double>());
  for (size_t i = 1; i < escalation.size(); ++i) {
    EXPECT_LE(escalation[i][1].get<double>(), escalation[i - 1][1].get<double>()) << i;
  }

  ASSERT_EQ(parsed["chosen"].size(), 1u);
  const json& chosen = parsed["chosen"][0];
  EXPECT_EQ(std::stod(chosen["threshold"].get<std::string>()), c.threshold);
  size_t best = 0;
  while (best < c.curve.size() && c.curve[best].threshold != c.threshold) ++best;
  ASSERT_LT(best, c.curve.size());
  EXPECT_NEAR(chosen["x"].get<double>(), escalation[best][0].get<double>(), 0.01);
}

TEST(BenchPlot, RejectsACurveWithoutItsColumns) {
  TempDir dir("bench-plot-bad");
  const fs::path csv = dir.path() / "curve.csv";
  std::ofstream(csv) << "threshold,escalation_rate\n-1,0.5\n";
  const auto plotted =
      edgelm::test::run_command(plot_command(dir.path() / "curve.svg", "bad=" + csv.string()));
  EXPECT_NE(plotted.exit_code, 0);
  EXPECT_NE(plotted.err.find("missing columns"), std::string::npos) << plotted.err;
}

}  // namespace
}  // namespace edgelm::hybrid
