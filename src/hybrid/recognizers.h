// The redactor's recognizers. Each appends candidate spans (possibly overlapping those of other
// recognizers) for a text that is valid UTF-8; Redactor::detect resolves the overlaps.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "edgelm/error.h"
#include "edgelm/hybrid/entity.h"
#include "edgelm/hybrid/redactor.h"
#include "hybrid/pattern.h"

namespace edgelm::runtime {
class Engine;
}

namespace edgelm::hybrid::detail {

// Checksums of structured identifiers (digits / alphanumerics only, separators removed).
bool luhn_valid(std::string_view digits);
bool is_card_number(std::string_view digits);  // issuer prefix + length + Luhn
bool iban_valid(std::string_view compact);     // country length + mod 97 == 1
int iban_length(std::string_view country);     // 0 for a country without IBAN

class StructuredRecognizer {
 public:
  static Result<std::unique_ptr<StructuredRecognizer>> create();
  // Email, URL, IPv4/6, MAC, SSN, credit card, IBAN, date, postal address.
  void find(std::string_view text, std::vector<EntitySpan>& out) const;

 private:
  StructuredRecognizer() = default;
  std::vector<std::pair<EntityType, Pattern>> simple_;  // matches taken as they are
  std::unique_ptr<Pattern> url_, ipv4_, ipv6_, ssn_, ssn_context_, card_, iban_, numeric_date_;
};

class PhoneRecognizer {
 public:
  explicit PhoneRecognizer(std::vector<std::string> regions) : regions_(std::move(regions)) {}
  void find(std::string_view text, std::vector<EntitySpan>& out) const;

 private:
  std::vector<std::string> regions_;
};

// The local model as a name tagger (name_model.cpp). Thread-safe: one lock around the model's
// contexts and a per-word cache.
class NameModelScorer {
 public:
  static Result<std::unique_ptr<NameModelScorer>> load(const std::filesystem::path& path);
  ~NameModelScorer();
  // log P(word | name slot) - log P(lower-case word | noun slot) in nats; -infinity when it
  // cannot be scored.
  double name_affinity(std::string_view word) const;

 private:
  struct Slot;
  NameModelScorer();
  Result<double> log_prob(Slot& slot, std::string_view word) const;
  std::unique_ptr<runtime::Engine> engine_;
  std::vector<std::unique_ptr<Slot>> slots_;  // name slot, noun slot
  mutable std::mutex mutex_;
  mutable std::unordered_map<std::string, double> cache_;
};

class NameRecognizer {
 public:
  // `scorer` (not owned, outlives the recognizer) is required when `signals` uses the model.
  static Result<std::unique_ptr<NameRecognizer>> create(NameSignals signals,
                                                        const NameModelScorer* scorer,
                                                        double model_threshold);
  // Person, organization and location names.
  void find(std::string_view text, std::vector<EntitySpan>& out) const;

 private:
  NameRecognizer() = default;
  std::unique_ptr<Pattern> word_;
  NameSignals signals_ = NameSignals::kBoth;
  const NameModelScorer* scorer_ = nullptr;
  double model_threshold_ = 0;
};

// Gazetteers (gazetteer.cpp), looked up by case-folded word or phrase.
bool is_first_name(std::string_view folded);
bool is_ambiguous_first_name(std::string_view folded);  // also a common word ("Will", "Grace")
bool is_surname(std::string_view folded);
bool is_location(std::string_view folded);              // cities, countries, regions (phrases)
bool is_ambiguous_location(std::string_view folded);    // also a word or name ("Nice", "Reading")
bool is_organization(std::string_view folded);          // well-known organizations
bool is_organization_suffix(std::string_view word);     // "Inc", "GmbH", "Bank" (as written)
bool is_honorific(std::string_view folded);             // "mr", "dr", "frau"
bool is_capitalized_stopword(std::string_view folded);  // "the", "monday", "i"

// Lower-case (Unicode case folding) of UTF-8 text.
std::string fold_case(std::string_view text);

}  // namespace edgelm::hybrid::detail
