// The redactor: finds personal data in text and replaces it according to a per-entity policy,
// by default with typed, numbered placeholders (<EMAIL_1>, <PERSON_2>) kept in a Vault so an
// answer that mentions them can be restored on the device.
//
// Detection runs recognizers over a copy of the text in which bytes that are not valid UTF-8 are
// replaced one-for-one by '?', so offsets always refer to the caller's bytes:
//   - email, URL, IPv4/IPv6, MAC, US SSN, dates, postal addresses: PCRE2 patterns (+ validation);
//   - credit cards: digit runs of 13-19 digits that pass the Luhn check and a known issuer prefix;
//   - IBAN: country code + check digits + BBAN of the country's length, passing mod 97;
//   - phone numbers: libphonenumber's matcher (valid numbers) for each configured region;
//   - person, organization, location names: context words (honorifics, "my name is", legal
//     suffixes, "University of"), gazetteers of first names, surnames, cities and countries, and
//     optionally the local model (RedactionPolicy::name_signals; docs/HYBRID.md measures each).
// Overlapping candidates are resolved by a fixed precedence (checksummed types first), then by
// length.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "edgelm/error.h"
#include "edgelm/hybrid/entity.h"

namespace edgelm::hybrid {

enum class RedactionAction {
  kPlaceholder,  // <TYPE_N>, restorable through the vault
  kMask,         // letters and digits replaced by '*' (the last mask_keep_last digits kept)
  kHash,         // <TYPE#16 hex>: salted SHA-256 of the normalized value, stable across runs
  kDrop,         // removed
  kKeep,         // left as is (and not reported)
};
std::string_view redaction_action_name(RedactionAction action);

// Which evidence the name recognizer uses. Context words: honorifics, trigger phrases ("my name
// is", "Dear"), legal-form suffixes, "University of", place prepositions. Gazetteers: lists of
// first names, surnames, places and organizations. Model: the local model scores each
// capitalized word that the other signals left undecided (does it fit a story's name slot better
// than a noun slot?) and tags it PERSON above a threshold.
enum class NameSignals {
  kContext,    // context words only
  kGazetteer,  // gazetteers only
  kBoth,       // context words and gazetteers (the default: best measured)
  kModel,      // the model only
  kAll,        // context words, gazetteers and the model
};
inline constexpr std::array<std::string_view, 5> kNameSignalsNames = {"context", "gazetteer",
                                                                      "both", "model", "all"};
std::string_view name_signals_name(NameSignals signals);
// Errors name `what` (a key or option) and the allowed values.
Result<NameSignals> parse_name_signals(std::string_view name, std::string_view what);
bool uses_context(NameSignals signals);
bool uses_gazetteer(NameSignals signals);
bool uses_model(NameSignals signals);

struct RedactionPolicy {
  std::array<RedactionAction, kEntityTypeCount> actions;
  // Regions whose national number formats are recognized (ISO 3166 codes); numbers written in
  // international format (+CC ...) are recognized whatever the region.
  std::vector<std::string> phone_regions = {"US", "GB", "DE", "FR"};
  std::string hash_salt;   // mixed into kHash digests so they cannot be looked up in a table
  int mask_keep_last = 0;  // digits left visible at the end of a masked value (e.g. 4 for cards)
  NameSignals name_signals = NameSignals::kBoth;
  // GGUF model scoring names when name_signals uses the model (loaded by Redactor::create).
  std::string name_model;
  // Minimum name affinity (nats: log P(word | name slot) - log P(word | noun slot)) for the model
  // to tag a word PERSON; tuned on the original labeled sets only (docs/HYBRID.md).
  double name_model_threshold = 4.0;

  RedactionPolicy() { actions.fill(RedactionAction::kPlaceholder); }
  RedactionAction action(EntityType type) const { return actions[static_cast<size_t>(type)]; }

  // {"default": "placeholder", "entities": {"DATE": "keep", "EMAIL": "hash"},
  //  "phone_regions": ["US", "GB"], "hash_salt": "...", "mask_keep_last": 4,
  //  "name_signals": "both", "name_model": "stories260K.gguf", "name_model_threshold": 4.0}
  // Every key is optional; unknown keys, types and actions are errors naming `source`.
  static Result<RedactionPolicy> from_json(const nlohmann::json& json, std::string_view source);
};

// Placeholders of one conversation: the same value (after normalization: case, spacing and
// separators that do not change it) always gets the same placeholder.
class Vault {
 public:
  struct Entry {
    std::string placeholder;  // "<EMAIL_1>"
    EntityType type;
    std::string value;  // the first spelling seen
  };

  // The placeholder for `value`, creating "<TYPE_N>" with the next N for its type if new.
  const std::string& placeholder_for(EntityType type, std::string_view value);
  const Entry* find_placeholder(std::string_view placeholder) const;
  const std::vector<Entry>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }

  // Replaces every placeholder of this vault in `text` by its value; anything else is copied.
  std::string restore(std::string_view text) const;

  // {"entries": [{"placeholder": "<EMAIL_1>", "type": "EMAIL", "value": "a@b.example"}]}
  nlohmann::json to_json() const;
  static Result<Vault> from_json(const nlohmann::json& json, std::string_view source);

 private:
  std::vector<Entry> entries_;
  std::map<std::string, size_t> by_key_;  // type name + normalized value -> entry
  std::map<std::string, size_t, std::less<>> by_placeholder_;
  std::array<int, kEntityTypeCount> counters_{};
};

// The longest placeholder a vault creates; streaming restoration holds back at most this much.
inline constexpr size_t kMaxPlaceholderBytes = 32;

struct RedactedEntity {
  EntitySpan span;  // in the input
  RedactionAction action;
  std::string replacement;  // what the output has instead ("" for kDrop)
};

struct RedactionResult {
  std::string text;
  std::vector<RedactedEntity> entities;        // kKeep entities are not listed
  std::array<int, kEntityTypeCount> counts{};  // per type, of the listed entities
};

class Redactor {
 public:
  // Loads policy.name_model when policy.name_signals uses the model (an error if it is empty).
  static Result<std::unique_ptr<Redactor>> create(const RedactionPolicy& policy);
  ~Redactor();

  // Every entity found, sorted by position, non-overlapping (whatever the policy's actions).
  std::vector<EntitySpan> detect(std::string_view text) const;
  // Applies the policy; placeholders are taken from (and added to) `vault`.
  RedactionResult redact(std::string_view text, Vault& vault) const;

  const RedactionPolicy& policy() const { return policy_; }

 private:
  struct Recognizers;
  Redactor(RedactionPolicy policy, std::unique_ptr<Recognizers> recognizers);
  RedactionPolicy policy_;
  std::unique_ptr<Recognizers> recognizers_;
};

// Restores placeholders in a stream of text chunks (a streamed answer): a placeholder split
// across chunks is held back until it is complete, so the output never shows half of one.
class StreamRestorer {
 public:
  explicit StreamRestorer(const Vault& vault) : vault_(vault) {}
  // The restored text that is final after `chunk`.
  std::string feed(std::string_view chunk);
  // Whatever is still held back (the stream ended).
  std::string finish();

 private:
  const Vault& vault_;
  std::string pending_;
};

}  // namespace edgelm::hybrid
