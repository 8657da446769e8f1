// Accuracy on a labelled validation set (see eval.h for the JSONL format and scoring rules).
#include <algorithm>
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "edgelm/eval.h"

namespace edgelm::tools {
namespace {

using nlohmann::json;

Error line_error(size_t line, const std::string& what) {
  return make_error(ErrorCode::kInvalidFormat,
                    "validation set line " + std::to_string(line) + ": " + what);
}

std::string_view trim(std::string_view s) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

Result<TaskItem> parse_item(const json& j, size_t line) {
  if (!j.is_object()) return line_error(line, "expected a JSON object");
  TaskItem item;
  for (const auto& [key, value] : j.items()) {
    if (key == "prompt") {
      if (!value.is_string()) return line_error(line, "\"prompt\" must be a string");
      item.prompt = value.get<std::string>();
    } else if (key == "answer") {
      if (!value.is_string()) return line_error(line, "\"answer\" must be a string");
      item.answer = value.get<std::string>();
    } else if (key == "choices") {
      if (!value.is_array() || value.empty()) {
        return line_error(line, "\"choices\" must be a non-empty array of strings");
      }
      for (const auto& c : value) {
        if (!c.is_string()) return line_error(line, "\"choices\" must hold only strings");
        item.choices.push_back(c.get<std::string>());
      }
    } else if (key == "label") {
      if (!value.is_number_integer()) return line_error(line, "\"label\" must be an integer");
      const auto label = value.get<int64_t>();
      item.label = label < 0 || label > 1000000 ? -1 : static_cast<int32_t>(label);
      if (item.label < 0) return line_error(line, "\"label\" " + value.dump() + " is out of range");
    } else if (key == "match") {
      if (value != "prefix" && value != "exact") {
        return line_error(line, "\"match\" must be \"prefix\" or \"exact\"");
      }
      item.exact_match = value == "exact";
    } else {
      return line_error(
          line, "unknown key \"" + key + "\" (valid: prompt, answer, choices, label, match)");
    }
  }
  if (!j.contains("prompt")) return line_error(line, "missing \"prompt\"");
  const bool has_answer = j.contains("answer");
  if (has_answer == item.is_choice()) {
    return line_error(line, "give either \"answer\" or \"choices\" with \"label\"");
  }
  if (item.is_choice()) {
    if (!j.contains("label")) return line_error(line, "\"choices\" needs a \"label\"");
    if (item.label >= static_cast<int32_t>(item.choices.size())) {
      return line_error(line, "\"label\" " + std::to_string(item.label) +
                                  " is not an index of the " + std::to_string(item.choices.size()) +
                                  " choices");
    }
  } else if (trim(item.answer).empty()) {
    return line_error(line, "\"answer\" is empty");
  }
  return item;
}

size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

double log_prob(const float* logits, int64_t n_vocab, int32_t token) {
  double max = logits[0];
  for (int64_t i = 1; i < n_vocab; ++i) max = std::max(max, static_cast<double>(logits[i]));
  double sum = 0;
  for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp(logits[i] - max);
  return logits[token] - max - std::log(sum);
}

// One context for every item; tokens cached from the previous item are reused when they match.
class Scorer {
 public:
  Scorer(model::Context& ctx, const tokenizer::Tokenizer& tok) : ctx_(ctx), tok_(tok) {}

  Result<TaskItemResult> generate(const TaskItem& item, const std::vector<int32_t>& prompt,
                                  int32_t max_new_tokens) {
    EDGELM_TRY(std::span<const float> logits, feed(prompt, prompt.size(), false));
    const int64_t n_vocab = ctx_.model().hparams().n_vocab;
    const std::string_view answer = trim(item.answer);
    std::vector<int32_t> out;
    TaskItemResult r;
    for (int32_t i = 0; i < max_new_tokens && ctx_.n_past() < ctx_.n_ctx(); ++i) {
      const auto next = static_cast<int32_t>(
          std::max_element(logits.begin(), logits.begin() + n_vocab) - logits.begin());
      if (tok_.is_eog(next)) break;
      out.push_back(next);
      r.generated = tok_.decode(out, false);
      const std::string_view text = trim(r.generated);
      // Stop as soon as the outcome is decided.
      if (item.exact_match ? r.generated.find('\n') != std::string::npos && !text.empty()
                           : text.size() >= answer.size()) {
        break;
      }
      cached_.push_back(next);
      EDGELM_TRY(logits, ctx_.decode(std::span<const int32_t>(&next, 1)));
    }
    std::string_view text = trim(r.generated);
    if (item.exact_match) {
      text = trim(text.substr(0, text.find('\n')));
      r.correct = text == answer;
    } else {
      r.correct = text.substr(0, answer.size()) == answer;
    }
    return r;
  }

  // Sum of log p(tokens[i] | tokens[0..i)) for i in [first, tokens.size()).
  Result<double> score(const std::vector<int32_t>& tokens, size_t first) {
    EDGELM_TRY(std::span<const float> logits, feed(tokens, first - 1, true));
    const int64_t n_vocab = ctx_.model().hparams().n_vocab;
    // feed() decoded tokens[n_keep..) with every row's logits; row k predicts tokens[n_keep+k+1].
    const size_t n_keep = tokens.size() - logits.size() / static_cast<size_t>(n_vocab);
    double total = 0;
    for (size_t i = first; i < tokens.size(); ++i) {
      total += log_prob(logits.data() + (i - 1 - n_keep) * n_vocab, n_vocab, tokens[i]);
    }
    return total;
  }

 private:
  // Makes the context hold `tokens`, reusing at most `reuse_limit` cached ones, and returns the
  // logits of the tokens it decoded (every row with all_logits, else the last row).
  Result<std::span<const float>> feed(const std::vector<int32_t>& tokens, size_t reuse_limit,
                                      bool all_logits) {
    size_t n_keep = std::min({common_prefix(cached_, tokens), reuse_limit, tokens.size() - 1});
    ctx_.truncate(static_cast<int32_t>(n_keep));
    cached_.resize(n_keep);
    const auto rest = std::span<const int32_t>(tokens).subspan(n_keep);
    auto logits = ctx_.decode(rest, all_logits);
    if (!logits) {
      cached_.clear();
      ctx_.truncate(0);
      return logits;
    }
    cached_ = tokens;
    return logits;
  }

  model::Context& ctx_;
  const tokenizer::Tokenizer& tok_;
  std::vector<int32_t> cached_;
};

}  // namespace

Result<std::vector<TaskItem>> parse_task_jsonl(std::string_view text) {
  std::vector<TaskItem> items;
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const size_t eol = text.find('\n');
    const std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    if (trim(line).empty()) continue;
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) {
      return line_error(line_no, std::string("invalid JSON: ") + e.what());
    }
    EDGELM_TRY(TaskItem item, parse_item(j, line_no));
    items.push_back(std::move(item));
  }
  if (items.empty()) return make_error(ErrorCode::kInvalidFormat, "validation set: no items");
  return items;
}

Result<TaskResult> task_accuracy(const model::Model& model, const tokenizer::Tokenizer& tokenizer,
                                 const std::vector<TaskItem>& items, const TaskOptions& options) {
  if (options.max_new_tokens < 1) {
    return make_error(ErrorCode::kInvalidArgument, "eval: max_new_tokens must be >= 1");
  }
  // Tokenize first so the context can be sized to the longest item.
  struct Prepared {
    std::vector<int32_t> prompt;
    std::vector<std::vector<int32_t>> choices;  // prompt + choice
    std::vector<size_t> first;                  // first token of the choice in each
  };
  std::vector<Prepared> prepared(items.size());
  size_t longest = 1;
  for (size_t i = 0; i < items.size(); ++i) {
    const TaskItem& item = items[i];
    Prepared& p = prepared[i];
    EDGELM_TRY(p.prompt, tokenize_text(tokenizer, item.prompt));
    if (p.prompt.empty()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "eval: item " + std::to_string(i + 1) + " has an empty prompt and no BOS");
    }
    longest = std::max(longest, p.prompt.size() + static_cast<size_t>(options.max_new_tokens));
    for (size_t c = 0; c < item.choices.size(); ++c) {
      EDGELM_TRY(std::vector<int32_t> whole,
                 tokenize_text(tokenizer, item.prompt + item.choices[c]));
      const size_t first = std::max<size_t>(1, common_prefix(p.prompt, whole));
      if (first >= whole.size()) {
        return make_error(ErrorCode::kInvalidArgument, "eval: item " + std::to_string(i + 1) +
                                                           " choice " + std::to_string(c) +
                                                           " adds no tokens to the prompt");
      }
      longest = std::max(longest, whole.size());
      p.choices.push_back(std::move(whole));
      p.first.push_back(first);
    }
  }
  const int32_t n_ctx_train = model.hparams().n_ctx_train;
  if (longest > static_cast<size_t>(n_ctx_train)) {
    return make_error(ErrorCode::kOutOfRange,
                      "eval: the longest validation item needs " + std::to_string(longest) +
                          " tokens; the model's context is " + std::to_string(n_ctx_train));
  }
  model::ContextOptions copts;
  copts.n_ctx = static_cast<int32_t>(longest);
  copts.n_threads = std::max(1, options.n_threads);
  copts.kv_type = options.kv_type;
  EDGELM_TRY(auto ctx, model::Context::create(model, copts));
  Scorer scorer(*ctx, tokenizer);

  TaskResult result;
  for (size_t i = 0; i < items.size(); ++i) {
    const TaskItem& item = items[i];
    const Prepared& p = prepared[i];
    TaskItemResult r;
    if (item.is_choice()) {
      for (size_t c = 0; c < p.choices.size(); ++c) {
        EDGELM_TRY(double lp, scorer.score(p.choices[c], p.first[c]));
        r.choice_logprobs.push_back(lp);
      }
      r.chosen = static_cast<int32_t>(
          std::max_element(r.choice_logprobs.begin(), r.choice_logprobs.end()) -
          r.choice_logprobs.begin());
      r.correct = r.chosen == item.label;
    } else {
      EDGELM_TRY(r, scorer.generate(item, p.prompt, options.max_new_tokens));
    }
    result.n_correct += r.correct ? 1 : 0;
    result.items.push_back(std::move(r));
  }
  result.accuracy = static_cast<double>(result.n_correct) / static_cast<double>(items.size());
  return result;
}

}  // namespace edgelm::tools
