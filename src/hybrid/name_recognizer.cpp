// Person, organization and location names from context words and gazetteers. A capitalized word
// alone says little (sentence starts, titles), so every rule needs a second signal: a gazetteer
// hit plus capitalization, a trigger phrase, an honorific, or a legal-form suffix. NameSignals
// switches the two families off for the ablation: without context words no trigger, honorific,
// suffix or preposition rule fires; without gazetteers every list lookup answers "no". The model
// signal then looks at the capitalized words no rule claimed.
#include <utf8proc.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>

#include "hybrid/recognizers.h"

namespace edgelm::hybrid::detail {
namespace {

struct Word {
  size_t begin = 0;
  size_t end = 0;  // possessive "'s" excluded
  std::string folded;
  bool capitalized = false;  // first letter upper or title case
};

bool starts_capitalized(std::string_view word) {
  utf8proc_int32_t cp = 0;
  if (utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(word.data()),
                       static_cast<utf8proc_ssize_t>(word.size()), &cp) <= 0) {
    return false;
  }
  auto category = utf8proc_category(cp);
  return category == UTF8PROC_CATEGORY_LU || category == UTF8PROC_CATEGORY_LT;
}

std::string_view strip_possessive(std::string_view word) {
  for (std::string_view suffix : {std::string_view("'s"), std::string_view("\xE2\x80\x99s")}) {
    if (word.size() > suffix.size() + 1 && word.substr(word.size() - suffix.size()) == suffix) {
      return word.substr(0, word.size() - suffix.size());
    }
  }
  return word;
}

// Names do not continue across line breaks: a signature puts name, company and phone on
// separate lines.
bool is_space_only(std::string_view gap, size_t max_bytes) {
  if (gap.empty() || gap.size() > max_bytes) return false;
  for (char c : gap) {
    if (c != ' ' && c != '\t') return false;
  }
  return true;
}

bool is_legal_form(std::string_view word) {
  for (std::string_view form :
       {"Inc", "Corp", "LLC", "Ltd", "GmbH", "AG", "SA", "PLC", "plc", "LLP", "Co", "KG"}) {
    if (word == form) return true;
  }
  return false;
}

// Punctuation and spaces only (", ", ",\n", ": "), as between "Regards," and a signature.
bool is_punctuation_gap(std::string_view gap, size_t max_bytes) {
  if (gap.size() > max_bytes) return false;
  for (char c : gap) {
    if (!(c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == ':' || c == '-' ||
          c == '.')) {
      return false;
    }
  }
  return true;
}

// Words scored by the model per text at most (the cost bound; the scorer caches words).
constexpr size_t kMaxModelWordsPerText = 64;

class Scanner {
 public:
  Scanner(std::string_view text, std::vector<Word> words, std::vector<EntitySpan>& out,
          NameSignals signals)
      : text_(text),
        words_(std::move(words)),
        out_(out),
        context_(uses_context(signals)),
        gazetteer_(uses_gazetteer(signals)) {}

  void run() {
    if (!context_ && !gazetteer_) return;
    for (size_t i = 0; i < words_.size(); ++i) {
      organization_at(i);
      location_at(i);
      person_at(i);
    }
  }

  // Runs of name-like words that overlap nothing found so far become PERSON when the model's
  // name affinity of one of their words reaches the threshold.
  void run_model(const NameModelScorer& scorer, double threshold) {
    size_t scored = 0;
    for (size_t i = 0; i < words_.size() && scored < kMaxModelWordsPerText; ++i) {
      if (!name_like(i) || covered(i)) continue;
      size_t last = i;
      while (last + 1 < words_.size() && last - i < 2 && adjacent(last + 1) &&
             name_like(last + 1) && !covered(last + 1)) {
        ++last;
      }
      double best = -std::numeric_limits<double>::infinity();
      for (size_t k = i; k <= last && scored < kMaxModelWordsPerText; ++k, ++scored) {
        best = std::max(best, scorer.name_affinity(surface(k)));
      }
      if (best >= threshold) emit(i, last, EntityType::kPerson);
      i = last;
    }
  }

 private:
  std::string_view gap(size_t i) const {  // between words i-1 and i
    return text_.substr(words_[i - 1].end, words_[i].begin - words_[i - 1].end);
  }
  bool adjacent(size_t i) const { return i > 0 && i < words_.size() && is_space_only(gap(i), 3); }
  std::string_view surface(size_t i) const {
    return text_.substr(words_[i].begin, words_[i].end - words_[i].begin);
  }
  bool name_like(size_t i) const {
    return words_[i].capitalized && !is_capitalized_stopword(words_[i].folded) &&
           !is_organization_suffix(surface(i));
  }
  bool covered(size_t i) const {
    EntitySpan word{words_[i].begin, words_[i].end, EntityType::kPerson};
    return std::any_of(out_.begin(), out_.end(),
                       [&](const EntitySpan& s) { return s.overlaps(word); });
  }
  // Gazetteer lookups, all "no" when the gazetteer signal is off.
  bool first_name(std::string_view folded) const { return gazetteer_ && is_first_name(folded); }
  bool ambiguous_first_name(std::string_view folded) const {
    return gazetteer_ && is_ambiguous_first_name(folded);
  }
  bool surname(std::string_view folded) const { return gazetteer_ && is_surname(folded); }
  bool location(std::string_view folded) const { return gazetteer_ && is_location(folded); }
  bool organization(std::string_view folded) const { return gazetteer_ && is_organization(folded); }
  void emit(size_t first, size_t last, EntityType type) {
    out_.push_back({words_[first].begin, words_[last].end, type});
  }
  // The last word of a run of name-like words starting at `first` (at most `max_words`).
  size_t extend(size_t first, size_t max_words) const {
    size_t last = first;
    while (last + 1 < words_.size() && last + 1 - first < max_words && adjacent(last + 1) &&
           name_like(last + 1)) {
      ++last;
    }
    return last;
  }
  bool previous_is(size_t i, std::initializer_list<std::string_view> options) const {
    if (i == 0) return false;
    for (auto option : options) {
      if (words_[i - 1].folded == option) return true;
    }
    return false;
  }

  void organization_at(size_t i) {
    const Word& w = words_[i];
    std::string_view surface = text_.substr(w.begin, w.end - w.begin);
    // "Acme Widgets, Inc." / "Globex Corporation": capitalized words before a legal form.
    bool of_follows = i + 1 < words_.size() && words_[i + 1].folded == "of" && adjacent(i + 1);
    if (context_ && is_organization_suffix(surface) && i > 0 && !of_follows) {
      size_t first = i;
      while (first > 0 && i - first < 4 && name_like(first - 1) &&
             (adjacent(first) || gap(first) == " & " ||
              (first == i && is_legal_form(surface) && gap(first) == ", "))) {
        --first;
      }
      if (first < i) {
        size_t end = w.end;
        if (end < text_.size() && text_[end] == '.' && surface.size() <= 4 && surface != "Co.")
          ++end;
        out_.push_back({words_[first].begin, end, EntityType::kOrganization});
      }
    }
    // "University of Leeds", "Bank of America".
    if (context_ && w.capitalized &&
        (w.folded == "university" || w.folded == "bank" || w.folded == "institute" ||
         w.folded == "college" || w.folded == "ministry" || w.folded == "department")) {
      if (i + 2 < words_.size() && words_[i + 1].folded == "of" && adjacent(i + 1) &&
          adjacent(i + 2)) {
        size_t first_name = i + 2;
        if (words_[first_name].folded == "the" && first_name + 1 < words_.size()) ++first_name;
        if (name_like(first_name)) emit(i, extend(first_name, 3), EntityType::kOrganization);
      }
    }
    // Gazetteer, longest phrase first.
    if (w.capitalized) {
      for (size_t n = 3; n >= 1; --n) {
        if (i + n > words_.size()) continue;
        std::string phrase = phrase_of(i, n);
        if (!phrase.empty() && organization(phrase)) {
          emit(i, i + n - 1, EntityType::kOrganization);
          break;
        }
      }
    }
  }

  // "Kessler & Partner Corporation": a legal form within the next few words.
  bool organization_suffix_follows(size_t i) const {
    for (size_t k = i + 1; k < words_.size() && k <= i + 4; ++k) {
      if (!adjacent(k) && gap(k) != " & ") return false;
      if (is_organization_suffix(text_.substr(words_[k].begin, words_[k].end - words_[k].begin)))
        return true;
    }
    return false;
  }

  void location_at(size_t i) {
    if (!words_[i].capitalized) return;
    // "flew to Tbilisi", "born in Valparaíso": a capitalized word after a place preposition that
    // is no known name of another kind.
    if (context_ && name_like(i) && i > 0 && is_space_only(gap(i), 1) &&
        previous_is(i, {"in", "to", "from", "near", "visiting", "visited", "via"}) &&
        !first_name(words_[i].folded) && !surname(words_[i].folded) &&
        !organization(words_[i].folded) && !organization_suffix_follows(i)) {
      size_t last = i;
      while (last + 1 < words_.size() && last - i < 2 && adjacent(last + 1) && name_like(last + 1))
        ++last;
      emit(i, last, EntityType::kLocation);
      return;
    }
    for (size_t n = 4; n >= 1; --n) {
      if (i + n > words_.size()) continue;
      std::string phrase = phrase_of(i, n);
      if (phrase.empty() || !location(phrase)) continue;
      if (is_ambiguous_location(phrase) &&
          !(context_ && previous_is(i, {"in", "at", "from", "to", "near", "visit", "visiting",
                                        "visited", "around", "outside", "towards", "via", "of",
                                        "born", "live", "lives", "living"}))) {
        continue;
      }
      emit(i, i + n - 1, EntityType::kLocation);
      return;
    }
  }

  void person_at(size_t i) {
    const Word& w = words_[i];
    if (!name_like(i)) return;
    bool after_honorific =
        context_ && i > 0 && is_honorific(words_[i - 1].folded) && is_punctuation_gap(gap(i), 3);
    bool after_trigger =
        context_ &&
        (i > 0 && is_punctuation_gap(gap(i), 3) &&
         previous_is(i, {"named",     "called",    "dear",     "hi",        "hello",    "hey",
                         "regards",   "sincerely", "thanks",   "cheers",    "best",     "yours",
                         "signed",    "patient",   "customer", "client",    "contact",  "colleague",
                         "friend",    "wife",      "husband",  "son",       "daughter", "mother",
                         "father",    "brother",   "sister",   "boss",      "manager",  "neighbor",
                         "neighbour", "tenant",    "employee", "applicant", "holder",   "person",
                         "attention", "attn",      "met",      "from",      "with",     "cc",
                         "to",        "by",        "ask",      "tell",      "i'm",      "name",
                         "is"})) &&
        (words_[i - 1].folded != "is" || (i >= 2 && words_[i - 2].folded == "name")) &&
        (words_[i - 1].folded != "from" || first_name(w.folded)) &&
        (words_[i - 1].folded != "with" || first_name(w.folded)) &&
        (words_[i - 1].folded != "to" || first_name(w.folded)) &&
        (words_[i - 1].folded != "by" || first_name(w.folded));
    bool has_surname_next = i + 1 < words_.size() && adjacent(i + 1) && name_like(i + 1);
    if (after_honorific || after_trigger) {
      if (location(w.folded) && !first_name(w.folded) && !after_honorific) return;
      emit(i, extend(i, 3), EntityType::kPerson);
      return;
    }
    if (first_name(w.folded)) {
      if (i > 0 && adjacent(i) && name_like(i - 1) && first_name(words_[i - 1].folded)) return;
      if (ambiguous_first_name(w.folded) && !has_surname_next) return;
      emit(i, extend(i, 3), EntityType::kPerson);
      return;
    }
    // "Ngozi Okonkwo" with only the surname known.
    if (has_surname_next && surname(words_[i + 1].folded) && !location(w.folded)) {
      if (i > 0 && adjacent(i) && name_like(i - 1)) return;  // inside a longer run
      emit(i, extend(i, 3), EntityType::kPerson);
    }
  }

  // Folded words i..i+n-1 joined by spaces, or "" when they are not adjacent.
  std::string phrase_of(size_t i, size_t n) const {
    std::string phrase = words_[i].folded;
    for (size_t k = i + 1; k < i + n; ++k) {
      if (!adjacent(k)) return {};
      phrase += ' ';
      phrase += words_[k].folded;
    }
    return phrase;
  }

  std::string_view text_;
  std::vector<Word> words_;
  std::vector<EntitySpan>& out_;
  bool context_;
  bool gazetteer_;
};

}  // namespace

Result<std::unique_ptr<NameRecognizer>> NameRecognizer::create(NameSignals signals,
                                                               const NameModelScorer* scorer,
                                                               double model_threshold) {
  if (uses_model(signals) && scorer == nullptr) {
    return make_error(ErrorCode::kInvalidArgument,
                      "name_signals '" + std::string(name_signals_name(signals)) +
                          "' uses the model, but no name model was loaded");
  }
  std::unique_ptr<NameRecognizer> r(new NameRecognizer());
  r->signals_ = signals;
  r->scorer_ = scorer;
  r->model_threshold_ = model_threshold;
  EDGELM_TRY(
      auto word,
      Pattern::compile("word", "[\\p{L}\\p{M}](?:[\\p{L}\\p{M}'\\x{2019}\\-]*[\\p{L}\\p{M}])?"));
  r->word_ = std::make_unique<Pattern>(std::move(word));
  return r;
}

void NameRecognizer::find(std::string_view text, std::vector<EntitySpan>& out) const {
  std::vector<Word> words;
  word_->for_each(text, [&](const Match& m) {
    std::string_view surface = strip_possessive(text.substr(m.begin, m.end - m.begin));
    Word w;
    w.begin = m.begin;
    w.end = m.begin + surface.size();
    w.folded = fold_case(surface);
    w.capitalized = starts_capitalized(surface);
    words.push_back(std::move(w));
    return true;
  });
  Scanner scanner(text, std::move(words), out, signals_);
  scanner.run();
  if (uses_model(signals_)) scanner.run_model(*scorer_, model_threshold_);
}

}  // namespace edgelm::hybrid::detail
