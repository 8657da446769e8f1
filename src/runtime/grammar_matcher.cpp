// Grammar matching over UTF-8 bytes and vocabulary masking through a prefix trie.
//
// A parser stack is an immutable linked list of element positions: the top is the character class
// to match next, the rest are continuations to resume when the current alternative ends. Stacks are
// hash-consed (equal stacks are the same pointer), so a set of stacks is a sorted vector of
// pointers, and tokens sharing a prefix share work: the mask is one preorder walk of the trie.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>

#include "edgelm/grammar.h"

namespace edgelm::runtime {
namespace {

constexpr size_t kMaxStacks = 4096;         // ambiguity limit per position
constexpr size_t kMaxExpansion = 1 << 20;   // items one expansion may visit
constexpr size_t kMaxVocabBytes = 1 << 28;  // total token text, against absurd vocabularies

struct StackNode {
  uint32_t pos;  // element index: a kChars element at the top, a continuation below it
  const StackNode* next;
};

// Owns stack nodes and interns them by (pos, next).
class NodeArena {
 public:
  const StackNode* find(uint32_t pos, const StackNode* next) const {
    if (table_.empty()) return nullptr;
    for (size_t i = hash(pos, next) & mask();; i = (i + 1) & mask()) {
      const StackNode* node = table_[i];
      if (node == nullptr) return nullptr;
      if (node->pos == pos && node->next == next) return node;
    }
  }

  const StackNode* intern(uint32_t pos, const StackNode* next) {
    if (const StackNode* found = find(pos, next)) return found;
    if ((count_ + 1) * 2 > table_.size()) grow();
    StackNode* node = allocate();
    *node = {pos, next};
    insert(node);
    return node;
  }

  void reset() {
    std::fill(table_.begin(), table_.end(), nullptr);
    count_ = 0;
    chunk_ = 0;
    used_ = 0;
  }

 private:
  static constexpr size_t kChunk = 1024;

  static size_t hash(uint32_t pos, const StackNode* next) {
    uint64_t h =
        reinterpret_cast<uintptr_t>(next) * 0x9e3779b97f4a7c15ull ^ (pos * 0xff51afd7ed558ccdull);
    return static_cast<size_t>(h ^ (h >> 29));
  }
  size_t mask() const { return table_.size() - 1; }

  void insert(const StackNode* node) {
    size_t i = hash(node->pos, node->next) & mask();
    while (table_[i] != nullptr) i = (i + 1) & mask();
    table_[i] = node;
    ++count_;
  }

  void grow() {
    std::vector<const StackNode*> old(table_.empty() ? 64 : table_.size() * 2, nullptr);
    old.swap(table_);
    count_ = 0;
    for (const StackNode* node : old) {
      if (node != nullptr) insert(node);
    }
  }

  StackNode* allocate() {
    if (used_ == kChunk) {
      ++chunk_;
      used_ = 0;
    }
    if (chunk_ == chunks_.size()) chunks_.push_back(std::make_unique<StackNode[]>(kChunk));
    return &chunks_[chunk_][used_++];
  }

  std::vector<std::unique_ptr<StackNode[]>> chunks_;
  size_t chunk_ = 0, used_ = 0;
  std::vector<const StackNode*> table_;
  size_t count_ = 0;
};

// Set of (position, tail) pairs already expanded in one expand() call, so alternatives that
// reach the same item (e.g. `a ::= b | b`, nested) are expanded once, not exponentially often.
// Clearing is O(1): entries from older epochs count as empty.
class VisitedSet {
 public:
  void clear() {
    if (++epoch_ == 0) {  // wrapped: stale stamps could now look current
      for (Slot& slot : slots_) slot.epoch = 0;
      epoch_ = 1;
    }
    count_ = 0;
  }
  size_t size() const { return count_; }

  // True when newly inserted.
  bool insert(uint32_t pos, const StackNode* tail) {
    if ((count_ + 1) * 2 > slots_.size()) grow();
    for (size_t i = hash(pos, tail) & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
      Slot& slot = slots_[i];
      if (slot.epoch != epoch_) {
        slot = {pos, epoch_, tail};
        ++count_;
        return true;
      }
      if (slot.pos == pos && slot.tail == tail) return false;
    }
  }

 private:
  struct Slot {
    uint32_t pos = 0;
    uint32_t epoch = 0;
    const StackNode* tail = nullptr;
  };
  static size_t hash(uint32_t pos, const StackNode* tail) {
    const uint64_t h =
        reinterpret_cast<uintptr_t>(tail) * 0x9e3779b97f4a7c15ull ^ (pos * 0xff51afd7ed558ccdull);
    return static_cast<size_t>(h ^ (h >> 29));
  }
  void grow() {
    std::vector<Slot> old(slots_.empty() ? 64 : slots_.size() * 2);
    old.swap(slots_);
    count_ = 0;  // fresh slots have epoch 0, which is never current
    for (const Slot& slot : old) {
      if (slot.epoch == epoch_) insert(slot.pos, slot.tail);
    }
  }

  std::vector<Slot> slots_;
  uint32_t epoch_ = 1;
  size_t count_ = 0;
};

// An incomplete UTF-8 sequence: the bits seen so far and how many continuation bytes remain.
struct Utf8Partial {
  uint32_t value = 0;
  uint8_t remaining = 0;
  uint8_t length = 0;
};

}  // namespace

Result<std::shared_ptr<const GrammarVocab>> GrammarVocab::from_tokenizer(
    const tokenizer::Tokenizer& tokenizer) {
  std::vector<std::string> texts(static_cast<size_t>(tokenizer.n_vocab()));
  std::vector<int32_t> eog;
  for (int32_t id = 0; id < tokenizer.n_vocab(); ++id) {
    if (tokenizer.is_eog(id)) eog.push_back(id);
    if (!tokenizer.is_control(id))
      texts[static_cast<size_t>(id)] = tokenizer.token_to_piece(id, false);
  }
  return build(std::move(texts), std::move(eog));
}

Result<std::shared_ptr<const GrammarVocab>> GrammarVocab::build(
    std::vector<std::string> token_texts, std::vector<int32_t> eog_tokens) {
  auto vocab = std::make_shared<GrammarVocab>();
  const size_t n = token_texts.size();
  if (n == 0 || n > static_cast<size_t>(INT32_MAX)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "grammar vocab: size " + std::to_string(n) + " outside [1, 2^31)");
  }
  size_t total = 0;
  for (const std::string& text : token_texts) total += text.size();
  if (total > kMaxVocabBytes) {
    return make_error(ErrorCode::kOutOfRange, "grammar vocab: token texts exceed " +
                                                  std::to_string(kMaxVocabBytes) + " bytes");
  }
  vocab->is_eog_.assign(n, 0);
  for (int32_t id : eog_tokens) {
    if (id < 0 || static_cast<size_t>(id) >= n) {
      return make_error(ErrorCode::kInvalidArgument, "grammar vocab: end-of-generation token id " +
                                                         std::to_string(id) + " out of range");
    }
    vocab->is_eog_[static_cast<size_t>(id)] = 1;
  }
  vocab->texts_ = std::move(token_texts);
  const auto& texts = vocab->texts_;

  std::vector<int32_t>& sorted = vocab->sorted_tokens_;
  for (size_t i = 0; i < n; ++i) {
    if (!vocab->is_eog_[i] && !texts[i].empty()) sorted.push_back(static_cast<int32_t>(i));
  }
  std::sort(sorted.begin(), sorted.end(), [&](int32_t a, int32_t b) {
    const int c = texts[static_cast<size_t>(a)].compare(texts[static_cast<size_t>(b)]);
    return c != 0 ? c < 0 : a < b;
  });

  // Sorted texts give the trie in preorder: walk down from the common prefix with the previous
  // text.
  auto& trie = vocab->trie_;
  trie.push_back({});
  std::vector<uint32_t> path = {0};  // node indices from the root to the current text's node
  std::string_view previous;
  for (size_t i = 0; i < sorted.size(); ++i) {
    const std::string_view text = texts[static_cast<size_t>(sorted[i])];
    size_t common = 0;
    while (common < previous.size() && common < text.size() && previous[common] == text[common]) {
      ++common;
    }
    while (path.size() - 1 > common) {
      trie[path.back()].subtree_end = static_cast<uint32_t>(trie.size());
      path.pop_back();
    }
    for (size_t d = common; d < text.size(); ++d) {
      TrieNode node;
      node.depth = static_cast<uint32_t>(d + 1);
      node.byte = static_cast<uint8_t>(text[d]);
      path.push_back(static_cast<uint32_t>(trie.size()));
      trie.push_back(node);
    }
    TrieNode& end = trie[path.back()];
    if (end.tokens_end == end.tokens_begin) end.tokens_begin = static_cast<uint32_t>(i);
    end.tokens_end = static_cast<uint32_t>(i + 1);
    previous = text;
  }
  for (uint32_t node : path) trie[node].subtree_end = static_cast<uint32_t>(trie.size());
  return std::shared_ptr<const GrammarVocab>(std::move(vocab));
}

struct GrammarMatcher::Impl {
  std::shared_ptr<const Grammar> grammar;
  std::shared_ptr<const GrammarVocab> vocab;
  const GrammarElement* elements = nullptr;

  // Current state lives in `main`; `scratch` holds trial steps; `spare` receives compaction.
  NodeArena main, scratch, spare;
  std::vector<const StackNode*> stacks;  // nullptr = the empty stack (grammar complete)
  Utf8Partial partial;

  // Reused buffers.
  std::vector<std::pair<uint32_t, const StackNode*>> work;
  VisitedSet visited;
  bool overflow = false;

  // Mask memo, valid during one allowed_tokens() call: a lazily built automaton whose states are
  // (interned stack set, partial UTF-8) and whose transitions sit in a flat [state][byte] table.
  // Tokens share few distinct states (inside a JSON string nearly every trie node is in the same
  // one), so most trie nodes cost one table read.
  static constexpr uint32_t kDead = UINT32_MAX;  // no stack survives
  static constexpr uint32_t kUnknown = UINT32_MAX - 1;
  std::vector<std::vector<const StackNode*>> sets;  // by set id (first n_sets valid)
  size_t n_sets = 0;
  std::unordered_map<uint64_t, std::vector<uint32_t>> set_ids;  // content hash -> set ids
  std::vector<std::pair<uint32_t, Utf8Partial>> states;         // by state id
  std::unordered_map<uint64_t, uint32_t> state_ids;             // (set, partial) -> state id
  std::vector<uint32_t> next_state;                             // [state * 256 + byte]
  std::vector<uint32_t> level;                                  // state per trie depth
  std::vector<const StackNode*> step_out;

  void clear_memo() {
    n_sets = 0;
    set_ids.clear();
    states.clear();
    state_ids.clear();
    next_state.clear();
  }

  static uint64_t set_hash(const std::vector<const StackNode*>& set) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (const StackNode* node : set)
      h = (h ^ reinterpret_cast<uintptr_t>(node)) * 0x100000001b3ull;
    return h;
  }

  uint32_t intern_set(const std::vector<const StackNode*>& set) {
    std::vector<uint32_t>& candidates = set_ids[set_hash(set)];
    for (uint32_t id : candidates) {
      if (sets[id] == set) return id;
    }
    if (n_sets == sets.size()) sets.emplace_back();
    sets[n_sets] = set;
    candidates.push_back(static_cast<uint32_t>(n_sets));
    return static_cast<uint32_t>(n_sets++);
  }

  uint32_t intern_state(uint32_t set, const Utf8Partial& p) {
    const uint64_t key =
        (uint64_t{set} << 32) ^ (uint64_t{p.value} << 8) ^ (uint64_t{p.remaining} << 4) ^ p.length;
    auto [it, inserted] = state_ids.try_emplace(key, static_cast<uint32_t>(states.size()));
    if (inserted) {
      states.push_back({set, p});
      next_state.resize(next_state.size() + 256, kUnknown);
    }
    return it->second;
  }

  uint32_t transition(uint32_t state, uint8_t byte) {
    const size_t slot = size_t{state} * 256 + byte;
    if (next_state[slot] == kUnknown) {
      const auto [set, partial] = states[state];  // copy: interning below may reallocate
      Utf8Partial to_partial;
      const uint32_t to = step(sets[set], partial, byte, step_out, to_partial)
                              ? intern_state(intern_set(step_out), to_partial)
                              : kDead;
      next_state[slot] = to;
    }
    return next_state[slot];
  }

  Impl(std::shared_ptr<const Grammar> g, std::shared_ptr<const GrammarVocab> v)
      : grammar(std::move(g)), vocab(std::move(v)), elements(grammar->elements().data()) {
    restart();
  }

  const StackNode* intern(uint32_t pos, const StackNode* next) {
    if (const StackNode* found = main.find(pos, next)) return found;
    return scratch.intern(pos, next);
  }

  // Adds to `out` every stack reachable from (pos, next) without consuming input.
  void expand(uint32_t pos, const StackNode* next, std::vector<const StackNode*>& out) {
    work.clear();
    visited.clear();
    work.push_back({pos, next});
    while (!work.empty()) {
      auto [p, tail] = work.back();
      work.pop_back();
      if (!visited.insert(p, tail)) continue;
      if (visited.size() > kMaxExpansion) {
        overflow = true;
        return;
      }
      const GrammarElement& e = elements[p];
      switch (e.kind) {
        case GrammarElement::Kind::kEnd:
          if (tail == nullptr) {
            out.push_back(nullptr);
          } else {
            work.push_back({tail->pos, tail->next});
          }
          break;
        case GrammarElement::Kind::kChars:
          out.push_back(intern(p, tail));
          break;
        case GrammarElement::Kind::kRuleRef: {
          // Tail call: a reference that ends its alternative needs no continuation frame.
          const StackNode* cont =
              elements[p + 1].kind == GrammarElement::Kind::kEnd ? tail : intern(p + 1, tail);
          for (uint32_t start : grammar->rule_alternatives()[e.index])
            work.push_back({start, cont});
          break;
        }
      }
    }
  }

  static void normalize(std::vector<const StackNode*>& set) {
    std::sort(set.begin(), set.end());
    set.erase(std::unique(set.begin(), set.end()), set.end());
  }

  void restart() {
    main.reset();
    scratch.reset();
    stacks.clear();
    partial = {};
    overflow = false;
    std::vector<const StackNode*> initial;
    for (uint32_t start : grammar->rule_alternatives()[grammar->root()]) {
      expand(start, nullptr, initial);
    }
    normalize(initial);
    // The initial nodes went to scratch; move them into main.
    stacks = compact(initial);
  }

  // Deep-copies stacks into `spare`, makes it the main arena, and clears scratch.
  std::vector<const StackNode*> compact(const std::vector<const StackNode*>& from) {
    spare.reset();
    std::vector<const StackNode*> result;
    std::vector<const StackNode*> chain;
    for (const StackNode* top : from) {
      chain.clear();
      for (const StackNode* n = top; n != nullptr; n = n->next) chain.push_back(n);
      const StackNode* copy = nullptr;
      for (auto it = chain.rbegin(); it != chain.rend(); ++it)
        copy = spare.intern((*it)->pos, copy);
      result.push_back(copy);
    }
    std::swap(main, spare);
    scratch.reset();
    spare.reset();
    normalize(result);
    return result;
  }

  static constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};

  // One byte of input. Returns false when no stack survives (or on overflow).
  bool step(const std::vector<const StackNode*>& in, Utf8Partial in_partial, uint8_t byte,
            std::vector<const StackNode*>& out, Utf8Partial& out_partial) {
    out.clear();
    Utf8Partial p = in_partial;
    if (p.remaining == 0) {
      if (byte < 0x80) {
        return advance(in, byte, out, out_partial);
      }
      if (byte >= 0xC2 && byte <= 0xDF) {
        p = {byte & 0x1Fu, 1, 2};
      } else if (byte >= 0xE0 && byte <= 0xEF) {
        p = {byte & 0x0Fu, 2, 3};
      } else if (byte >= 0xF0 && byte <= 0xF4) {
        p = {byte & 0x07u, 3, 4};
      } else {
        return false;
      }
    } else {
      if ((byte & 0xC0) != 0x80) return false;
      p.value = (p.value << 6) | (byte & 0x3Fu);
      --p.remaining;
      if (p.remaining == 0) {
        const uint32_t cp = p.value;
        if (cp < kMinForLength[p.length] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
          return false;
        }
        return advance(in, cp, out, out_partial);
      }
    }
    // Still inside a code point: keep the stacks that could match some valid completion of it
    // (not overlong, not beyond U+10FFFF, not a surrogate).
    const uint32_t lo = std::max(p.value << (6 * p.remaining), kMinForLength[p.length]);
    const uint32_t hi = std::min((p.value << (6 * p.remaining)) | ((1u << (6 * p.remaining)) - 1),
                                 uint32_t{0x10FFFF});
    if (lo > hi || (lo >= 0xD800 && hi <= 0xDFFF)) return false;
    for (const StackNode* s : in) {
      if (s != nullptr && grammar->char_classes()[elements[s->pos].index].may_match(lo, hi)) {
        out.push_back(s);
      }
    }
    out_partial = p;
    return !out.empty();
  }

  bool advance(const std::vector<const StackNode*>& in, uint32_t cp,
               std::vector<const StackNode*>& out, Utf8Partial& out_partial) {
    out_partial = {};
    for (const StackNode* s : in) {
      if (s == nullptr) continue;
      if (grammar->char_classes()[elements[s->pos].index].matches(cp)) {
        expand(s->pos + 1, s->next, out);
      }
    }
    normalize(out);
    if (overflow || out.size() > kMaxStacks) {
      overflow = true;
      out.clear();
    }
    return !out.empty();
  }

  // Runs `text` from the current state into `result`; false when rejected.
  bool run_text(std::string_view text, std::vector<const StackNode*>& result,
                Utf8Partial& result_partial) {
    scratch.reset();
    std::vector<const StackNode*> current = stacks;
    Utf8Partial current_partial = partial;
    for (char c : text) {
      if (!step(current, current_partial, static_cast<uint8_t>(c), result, result_partial))
        return false;
      current.swap(result);
      current_partial = result_partial;
    }
    result.swap(current);
    result_partial = current_partial;
    return true;
  }

  bool complete() const {
    return partial.remaining == 0 && !stacks.empty() && stacks.front() == nullptr;
  }
};

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> grammar,
                               std::shared_ptr<const GrammarVocab> vocab)
    : impl_(std::make_unique<Impl>(std::move(grammar), std::move(vocab))) {}

GrammarMatcher::~GrammarMatcher() = default;

size_t GrammarMatcher::vocab_size() const {
  return impl_->vocab->size();
}

bool GrammarMatcher::is_complete() const {
  return impl_->complete();
}

void GrammarMatcher::reset() {
  impl_->restart();
  finished_ = false;
}

bool GrammarMatcher::text_allowed(std::string_view text) {
  if (finished_) return false;
  std::vector<const StackNode*> result;
  Utf8Partial result_partial;
  return impl_->run_text(text, result, result_partial);
}

Status GrammarMatcher::accept_text(std::string_view text) {
  if (finished_) {
    return make_error(ErrorCode::kInvalidArgument, "grammar: text after end of generation");
  }
  std::vector<const StackNode*> result;
  Utf8Partial result_partial;
  if (!impl_->run_text(text, result, result_partial)) {
    return make_error(ErrorCode::kInvalidArgument,
                      impl_->overflow
                          ? "grammar: too many parser stacks (grammar too ambiguous)"
                          : "grammar: text '" + std::string(text) + "' is not allowed here");
  }
  impl_->stacks = impl_->compact(result);
  impl_->partial = result_partial;
  return {};
}

bool GrammarMatcher::token_allowed(int32_t token) {
  const GrammarVocab& vocab = *impl_->vocab;
  if (finished_ || token < 0 || static_cast<size_t>(token) >= vocab.size()) return false;
  if (vocab.is_eog(token)) return impl_->complete();
  const std::string& text = vocab.text(token);
  return !text.empty() && text_allowed(text);
}

Status GrammarMatcher::accept_token(int32_t token) {
  const GrammarVocab& vocab = *impl_->vocab;
  if (token < 0 || static_cast<size_t>(token) >= vocab.size()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "grammar: token id " + std::to_string(token) + " outside the vocabulary");
  }
  if (finished_) {
    return make_error(ErrorCode::kInvalidArgument,
                      "grammar: token " + std::to_string(token) + " after end of generation");
  }
  if (vocab.is_eog(token)) {
    if (!impl_->complete()) {
      return make_error(ErrorCode::kInvalidArgument, "grammar: end-of-generation token " +
                                                         std::to_string(token) +
                                                         " before the grammar is complete");
    }
    finished_ = true;
    return {};
  }
  if (vocab.text(token).empty()) {
    return make_error(ErrorCode::kInvalidArgument, "grammar: token " + std::to_string(token) +
                                                       " has no text and is not allowed");
  }
  Status status = accept_text(vocab.text(token));
  if (!status) {
    return make_error(ErrorCode::kInvalidArgument, "grammar: token " + std::to_string(token) +
                                                       " (" + status.error().message + ")");
  }
  return {};
}

Status GrammarMatcher::allowed_tokens(std::vector<uint8_t>& allowed) {
  Impl& m = *impl_;
  const GrammarVocab& vocab = *m.vocab;
  allowed.assign(vocab.size(), 0);
  if (finished_) return {};
  if (m.complete()) {
    for (size_t t = 0; t < vocab.size(); ++t) allowed[t] = vocab.is_eog(static_cast<int32_t>(t));
  }
  m.scratch.reset();
  m.overflow = false;
  m.clear_memo();
  const auto& trie = vocab.trie();
  const auto& sorted = vocab.sorted_tokens();
  m.level.resize(1);
  m.level[0] = m.intern_state(m.intern_set(m.stacks), m.partial);
  size_t i = 1;
  while (i < trie.size()) {
    const GrammarVocab::TrieNode& node = trie[i];
    if (m.level.size() <= node.depth) m.level.resize(node.depth + 1);
    const uint32_t next = m.transition(m.level[node.depth - 1], node.byte);
    if (next == Impl::kDead) {
      i = node.subtree_end;
      continue;
    }
    m.level[node.depth] = next;
    for (uint32_t k = node.tokens_begin; k < node.tokens_end; ++k) {
      allowed[static_cast<size_t>(sorted[k])] = 1;
    }
    ++i;
  }
  if (m.overflow) {
    return make_error(ErrorCode::kOutOfRange,
                      "grammar: too many parser stacks (grammar too ambiguous)");
  }
  return {};
}

}  // namespace edgelm::runtime
