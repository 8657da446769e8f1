// Choosing the confidence threshold from a labeled validation set (edgelm calibrate): each sample
// is the local answer's confidence value and whether that answer was correct. A threshold t sends
// every answer with value < t upstream. The objective is routing accuracy: the share of samples
// routed right (a correct local answer kept, a wrong one escalated); ties go to the threshold
// that escalates less.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace edgelm::hybrid {

struct CalibrationSample {
  double value = 0;  // confidence_value() of the local answer
  bool correct = false;
};

struct CalibrationPoint {
  double threshold = 0;
  double escalation_rate = 0;   // share of samples with value < threshold
  double routing_accuracy = 0;  // (correct kept + wrong escalated) / n
  double local_accuracy = 0;    // share of kept answers that are correct (1 when none is kept)
};

struct Calibration {
  double threshold = 0;
  CalibrationPoint best;
  std::vector<CalibrationPoint> curve;  // by increasing threshold
};

// Candidate thresholds: below every value (escalate nothing), each distinct value, and just above
// the largest (escalate everything). An empty set gives threshold 0 and an empty curve.
Calibration calibrate_threshold(const std::vector<CalibrationSample>& samples);

// "threshold,escalation_rate,routing_accuracy,local_accuracy\n" and one line per point.
std::string calibration_curve_csv(const Calibration& calibration);

// Whether a local answer matches the reference: after lower-casing and collapsing every run of
// non-alphanumeric ASCII to one space, the answer starts with the reference.
bool answer_matches(std::string_view answer, std::string_view reference);

}  // namespace edgelm::hybrid
