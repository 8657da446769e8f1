#include "edgelm/hybrid/calibration.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace edgelm::hybrid {

Calibration calibrate_threshold(const std::vector<CalibrationSample>& samples) {
  Calibration out;
  if (samples.empty()) return out;
  std::vector<double> candidates;
  for (const CalibrationSample& s : samples) candidates.push_back(s.value);
  std::sort(candidates.begin(), candidates.end());
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
  const double lowest = candidates.front() - 1.0;
  const double above_all = std::nextafter(candidates.back(), std::numeric_limits<double>::max());
  candidates.insert(candidates.begin(), lowest);
  candidates.push_back(above_all);

  const double n = static_cast<double>(samples.size());
  bool first = true;
  for (double t : candidates) {
    size_t escalated = 0, routed_right = 0, kept = 0, kept_correct = 0;
    for (const CalibrationSample& s : samples) {
      if (s.value < t) {
        ++escalated;
        if (!s.correct) ++routed_right;
      } else {
        ++kept;
        if (s.correct) {
          ++kept_correct;
          ++routed_right;
        }
      }
    }
    CalibrationPoint p;
    p.threshold = t;
    p.escalation_rate = static_cast<double>(escalated) / n;
    p.routing_accuracy = static_cast<double>(routed_right) / n;
    p.local_accuracy =
        kept == 0 ? 1.0 : static_cast<double>(kept_correct) / static_cast<double>(kept);
    out.curve.push_back(p);
    // Strictly better only: candidates rise, so ties keep the lower escalation rate.
    if (first || p.routing_accuracy > out.best.routing_accuracy) {
      out.best = p;
      first = false;
    }
  }
  out.threshold = out.best.threshold;
  return out;
}

std::string calibration_curve_csv(const Calibration& calibration) {
  std::string csv = "threshold,escalation_rate,routing_accuracy,local_accuracy\n";
  char line[128];
  for (const CalibrationPoint& p : calibration.curve) {
    std::snprintf(line, sizeof line, "%.17g,%.6f,%.6f,%.6f\n", p.threshold, p.escalation_rate,
                  p.routing_accuracy, p.local_accuracy);
    csv += line;
  }
  return csv;
}

namespace {

std::string normalize(std::string_view text) {
  std::string out;
  bool gap = false;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    const bool alnum =
        (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || u >= 0x80;
    if (!alnum) {
      gap = true;
      continue;
    }
    if (gap && !out.empty()) out += ' ';
    gap = false;
    out += (u >= 'A' && u <= 'Z') ? static_cast<char>(u - 'A' + 'a') : c;
  }
  return out;
}

}  // namespace

bool answer_matches(std::string_view answer, std::string_view reference) {
  const std::string a = normalize(answer);
  const std::string r = normalize(reference);
  if (r.empty()) return a.empty();
  return a.size() >= r.size() && a.compare(0, r.size(), r) == 0 &&
         (a.size() == r.size() || a[r.size()] == ' ');
}

}  // namespace edgelm::hybrid
