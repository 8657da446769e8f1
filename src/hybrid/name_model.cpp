// The local model as a name tagger: how much better the word as written fits the slot after "a
// little girl named" than its lower-case reading fits the slot after "She found a" (in nats). A
// story model has seen thousands of names in the first slot and common nouns in the second, so
// names score high and words low, whatever the surrounding sentence. (Scoring the word itself in
// both slots was tried first: capitalized non-nouns such as "Reset" or "Visa" then look like
// names, because the noun slot dislikes them in any spelling.)
#include <algorithm>
#include <cmath>
#include <limits>

#include "edgelm/engine.h"
#include "edgelm/model.h"
#include "hybrid/recognizers.h"

namespace edgelm::hybrid::detail {
namespace {

constexpr std::string_view kNameSlot = "Once upon a time, there was a little girl named";
constexpr std::string_view kNounSlot = "Once upon a time, there was a little girl. She found a";
constexpr size_t kMaxWordBytes = 48;      // longer words are not scored (bounded cost)
constexpr size_t kMaxCachedWords = 4096;  // the cache is cleared when it grows past this
constexpr int32_t kContextTokens = 160;   // prefix (~20 tokens) + the longest word's tokens

double log_softmax_at(std::span<const float> row, int32_t token) {
  float max_logit = *std::max_element(row.begin(), row.end());
  double sum = 0;
  for (float l : row) sum += std::exp(static_cast<double>(l - max_logit));
  return static_cast<double>(row[static_cast<size_t>(token)] - max_logit) - std::log(sum);
}

}  // namespace

struct NameModelScorer::Slot {
  std::string prefix;
  std::vector<int32_t> prefix_tokens;
  std::unique_ptr<model::Context> context;
  std::vector<int32_t> cached;  // the tokens in the context's cache
};

NameModelScorer::NameModelScorer() = default;
NameModelScorer::~NameModelScorer() = default;

Result<std::unique_ptr<NameModelScorer>> NameModelScorer::load(const std::filesystem::path& path) {
  Config config;
  config.threads = 1;
  config.ctx = kContextTokens;
  auto engine = runtime::Engine::load(path, config);
  if (!engine) {
    return make_error(engine.error().code,
                      "name model '" + path.string() + "': " + engine.error().message);
  }
  std::unique_ptr<NameModelScorer> scorer(new NameModelScorer());
  scorer->engine_ = std::move(*engine);
  for (std::string_view prefix : {kNameSlot, kNounSlot}) {
    auto slot = std::make_unique<Slot>();
    slot->prefix = std::string(prefix);
    EDGELM_TRY(slot->prefix_tokens, scorer->engine_->tokenize(slot->prefix));
    model::ContextOptions options;
    options.n_ctx = kContextTokens;
    options.n_threads = 1;
    EDGELM_TRY(slot->context, model::Context::create(scorer->engine_->model(), options));
    scorer->slots_.push_back(std::move(slot));
  }
  return scorer;
}

// log P(word | slot prefix): the word's tokens after the prefix, each scored by the logits of the
// position before it. Tokenization can merge across the boundary, so the word starts where the
// tokens of prefix and full text part; the cache keeps what the previous word shared with it.
Result<double> NameModelScorer::log_prob(Slot& slot, std::string_view word) const {
  EDGELM_TRY(auto full, engine_->tokenize(slot.prefix + " " + std::string(word)));
  auto shared = [&](const std::vector<int32_t>& other) {
    size_t n = 0;
    while (n < full.size() && n < other.size() && full[n] == other[n]) ++n;
    return n;
  };
  const size_t word_begin = shared(slot.prefix_tokens);
  if (word_begin == 0 || word_begin >= full.size() ||
      full.size() > static_cast<size_t>(kContextTokens)) {
    return -std::numeric_limits<double>::infinity();
  }
  // Positions word_begin - 1 .. full.size() - 2 predict the word's tokens: re-evaluate from the
  // first of them that is not already cached.
  const size_t keep = std::min(shared(slot.cached), word_begin - 1);
  slot.context->truncate(static_cast<int32_t>(keep));
  slot.cached.clear();
  std::span<const int32_t> rest(full.data() + keep, full.size() - keep);
  EDGELM_TRY(auto logits, slot.context->decode(rest, /*all_logits=*/true));
  slot.cached = full;
  const size_t n_vocab = logits.size() / rest.size();
  double total = 0;
  for (size_t pos = word_begin - 1; pos + 1 < full.size(); ++pos) {
    total += log_softmax_at(logits.subspan((pos - keep) * n_vocab, n_vocab), full[pos + 1]);
  }
  return total;
}

double NameModelScorer::name_affinity(std::string_view word) const {
  if (word.empty() || word.size() > kMaxWordBytes) return -std::numeric_limits<double>::infinity();
  std::lock_guard<std::mutex> lock(mutex_);
  std::string key(word);
  if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  double affinity = -std::numeric_limits<double>::infinity();
  auto name = log_prob(*slots_[0], word);
  auto noun = log_prob(*slots_[1], fold_case(word));
  if (name && noun && std::isfinite(*name) && std::isfinite(*noun)) affinity = *name - *noun;
  if (cache_.size() >= kMaxCachedWords) cache_.clear();
  cache_.emplace(std::move(key), affinity);
  return affinity;
}

}  // namespace edgelm::hybrid::detail
