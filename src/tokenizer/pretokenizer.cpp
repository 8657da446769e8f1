#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 32
#include <pcre2.h>

#include "tokenizer/unicode.h"

namespace edgelm::tokenizer {

namespace {

// A regex and how llama.cpp applies it. llama.cpp runs the GPT-2 and Llama-3 patterns through
// hand-written matchers instead of std::regex; those treat unassigned code points (no category)
// as matching no class, and emit every unmatched code point as a piece of its own.
struct PatternSpec {
  std::string pattern;
  bool hand_matcher_quirks = false;
};

// GPT-2 (as llama.cpp's hand matcher implements it, which includes the trailing \s+).
const char* const kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}\p{Cn}]+|\s+(?!\S)|\s+)";
// Llama-3 with the case-insensitive group spelled out (llama.cpp's adapted form).
const char* const kLlama3 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}\p{Cn}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Cased letters of DeepSeek LLM's tokenizer.json, as code point ranges.
const char* const kDeepseekLetters =
    R"(\s?[A-Za-z\x{b5}\x{c0}-\x{d6}\x{d8}-\x{f6}\x{f8}-\x{1ba}\x{1bc}-\x{1bf}\x{1c4}-\x{293})"
    R"(\x{295}-\x{2af}\x{370}-\x{373}\x{376}\x{377}\x{37b}-\x{37d}\x{37f}\x{386}\x{388}-\x{38a})"
    R"(\x{38c}\x{38e}-\x{3a1}\x{3a3}-\x{3f5}\x{3f7}-\x{481}\x{48a}-\x{52f}\x{531}-\x{556})"
    R"(\x{10a0}-\x{10c5}\x{13a0}-\x{13f5}\x{13f8}-\x{13fd}\x{1c90}-\x{1cba}\x{1cbd}-\x{1cbf})"
    R"(\x{1d00}-\x{1d2b}\x{1d6b}-\x{1d77}\x{1d79}-\x{1d9a}\x{1e00}-\x{1f15}\x{1f18}-\x{1f1d})"
    R"(\x{1f20}-\x{1f45}\x{1f48}-\x{1f4d}\x{1f50}-\x{1f57}\x{1f59}\x{1f5b}\x{1f5d}\x{1f5f}-\x{1f7d})"
    R"(\x{1f80}-\x{1fb4}\x{1fb6}-\x{1fbc}\x{1fbe}\x{1fc2}-\x{1fc4}\x{1fc6}-\x{1fcc}\x{1fd0}-\x{1fd3})"
    R"(\x{1fd6}-\x{1fdb}\x{1fe0}-\x{1fec}\x{1ff2}-\x{1ff4}\x{1ff6}-\x{1ffc}\x{2102}\x{2107})"
    R"(\x{210a}-\x{2113}\x{2115}\x{2119}-\x{211d}\x{2124}\x{2126}\x{2128}\x{212a}-\x{212d})"
    R"(\x{212f}-\x{2134}\x{2139}\x{213c}-\x{213f}\x{2145}-\x{2149}\x{214e}\x{2183}\x{2184})"
    R"(\x{2c00}-\x{2c7b}\x{2c7e}-\x{2ce4}\x{2ceb}-\x{2cee}\x{2cf2}\x{2cf3}\x{a640}-\x{a66d})"
    R"(\x{a680}-\x{a69b}\x{a722}-\x{a76f}\x{a771}-\x{a787}\x{a78b}-\x{a78e}\x{ab70}-\x{abbf})"
    R"(\x{fb00}-\x{fb06}\x{fb13}-\x{fb17}\x{ff21}-\x{ff3a}\x{ff41}-\x{ff5a}\x{10400}-\x{1044f})"
    R"(\x{104b0}-\x{104d3}\x{104d8}-\x{104fb}\x{10c80}-\x{10cb2}\x{10cc0}-\x{10cf2})"
    R"(\x{118a0}-\x{118df}\x{1e900}-\x{1e943}]+)";
const char* const kDeepseekPunct =
    R"(\s?[!-/:-~\x{ff01}-\x{ff0f}\x{ff1a}-\x{ff5e}\x{2018}-\x{201f}\x{3000}-\x{3002}]+)";
const char* const kDeepseekCjk = R"([\x{4e00}-\x{9fa5}\x{800}-\x{4e00}\x{ac00}-\x{d7ff}]+)";
const char* const kBloom =
    R"( ?[^(\s|.,!?\x{2026}\x{3002}\x{ff0c}\x{3001}\x{964}\x{6d4}\x{60c})]+)";

std::vector<PatternSpec> pattern_specs(PreType type) {
  const PatternSpec gpt2{kGpt2, true};
  const PatternSpec llama3{kLlama3, true};
  switch (type) {
    case PreType::kLlama3:
    case PreType::kDbrx:
    case PreType::kSmaug:
    case PreType::kChatglm4:
      return {llama3};
    case PreType::kDeepseekLlm:
      return {{"[\r\n]"},  {kDeepseekLetters}, {kDeepseekPunct},
              {R"(\s+$)"}, {kDeepseekCjk},     {R"(\p{N}+)"}};
    case PreType::kDeepseek3Llm:
      return {
          {R"(\p{N}{1,3})"},
          {R"([\x{4e00}-\x{9fa5}\x{3040}-\x{309f}\x{30a0}-\x{30ff}]+)"},
          {R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}};
    case PreType::kDeepseekCoder:
      return {{"[\r\n]"}, {R"(\s?\p{L}+)"}, {R"(\s?\p{P}+)"}, {kDeepseekCjk}, {R"(\p{N})"}};
    case PreType::kFalcon:
      return {{R"([\p{P}\$\+<=>\^~\|`]+)"}, gpt2, {"[0-9][0-9][0-9]"}};
    case PreType::kStarcoder:
    case PreType::kRefact:
    case PreType::kCommandR:
    case PreType::kSmollm:
    case PreType::kCodeshell:
    case PreType::kExaone:
    case PreType::kMinerva:
      return {{R"(\p{N})"}, gpt2};
    case PreType::kGpt2:
    case PreType::kMpt:
    case PreType::kOlmo:
    case PreType::kJais:
      return {gpt2};
    case PreType::kStablelm2:
    case PreType::kQwen2:
      return {{kQwen2}};
    case PreType::kPoro:
    case PreType::kBloom:
    case PreType::kGpt3Finnish:
      return {{kBloom}};
    case PreType::kViking:
      return {{kBloom}, {R"(\p{N})"}};
    case PreType::kTekken:
      return {
          {R"([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}};
    case PreType::kChameleon:
      return {{"<sentinel:[0-9]+>"},       {"(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z"},
              {"([\\t\\n]|    |  )"},      {R"(\p{N})"},
              {R"([\p{P}!-/:-@\[-`{-~])"}, gpt2};
    case PreType::kDefault:
      break;
  }
  return {{R"([\p{P}\$\+<=>\^~\|]+)"}, gpt2, {R"(\p{N}+)"}, {"[0-9][0-9][0-9]"}};
}

struct CodeDeleter {
  void operator()(pcre2_code* code) const { pcre2_code_free(code); }
};
struct MatchDataDeleter {
  void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
};
struct MatchContextDeleter {
  void operator()(pcre2_match_context* context) const { pcre2_match_context_free(context); }
};
struct JitStackDeleter {
  void operator()(pcre2_jit_stack* stack) const { pcre2_jit_stack_free(stack); }
};

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  const int n = pcre2_get_error_message(code, buffer, 256);
  std::string message;
  for (int i = 0; i < n; ++i) unicode::append_utf8(message, buffer[i]);
  return message;
}

}  // namespace

struct PreTokenizer::Regex {
  std::unique_ptr<pcre2_code, CodeDeleter> code;
  bool hand_matcher_quirks = false;
  bool jit = false;
};

PreTokenizer::PreTokenizer(std::vector<std::unique_ptr<Regex>> regexes)
    : regexes_(std::move(regexes)) {}
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;
PreTokenizer::~PreTokenizer() = default;

std::vector<std::string> PreTokenizer::patterns(PreType type) {
  std::vector<std::string> result;
  for (PatternSpec& spec : pattern_specs(type)) result.push_back(std::move(spec.pattern));
  return result;
}

Result<PreTokenizer> PreTokenizer::create(PreType type) {
  std::vector<std::unique_ptr<Regex>> regexes;
  for (const PatternSpec& spec : pattern_specs(type)) {
    const std::vector<uint32_t> pattern = unicode::decode(spec.pattern);
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    pcre2_code* code =
        pcre2_compile(pattern.data(), pattern.size(), PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY,
                      &error, &error_offset, nullptr);
    if (code == nullptr) {
      return make_error(ErrorCode::kInternal,
                        "pre-tokenizer regex '" + spec.pattern + "' does not compile at offset " +
                            std::to_string(error_offset) + ": " + pcre2_message(error));
    }
    auto regex = std::make_unique<Regex>();
    regex->code.reset(code);
    regex->hand_matcher_quirks = spec.hand_matcher_quirks;
    regex->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    regexes.push_back(std::move(regex));
  }
  return PreTokenizer(std::move(regexes));
}

Result<std::vector<std::string>> PreTokenizer::split(std::string_view text) const {
  const std::vector<uint32_t> cps = unicode::decode(text);
  // Like llama.cpp, non-ASCII white space is matched as U+000B so that \s means White_Space.
  std::vector<uint32_t> subject = cps;
  for (uint32_t& cp : subject) {
    if (cp > 0x7F && unicode::is_whitespace(cp)) cp = 0x0B;
  }

  std::unique_ptr<pcre2_match_context, MatchContextDeleter> context(
      pcre2_match_context_create(nullptr));
  std::unique_ptr<pcre2_jit_stack, JitStackDeleter> jit_stack(
      pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr));
  if (!context || !jit_stack) {
    return make_error(ErrorCode::kInternal, "pre-tokenizer: cannot allocate PCRE2 match state");
  }
  pcre2_jit_stack_assign(context.get(), nullptr, jit_stack.get());

  std::vector<size_t> lengths = {cps.size()};  // piece lengths in code points
  std::vector<size_t> next;
  for (const auto& regex : regexes_) {
    std::unique_ptr<pcre2_match_data, MatchDataDeleter> match(
        pcre2_match_data_create_from_pattern(regex->code.get(), nullptr));
    if (!match) return make_error(ErrorCode::kInternal, "pre-tokenizer: out of memory");
    next.clear();
    const auto add_gap = [&](size_t length) {
      if (length == 0) return;
      if (regex->hand_matcher_quirks) {
        next.insert(next.end(), length, 1);
      } else {
        next.push_back(length);
      }
    };
    size_t piece_start = 0;
    for (size_t piece_length : lengths) {
      const uint32_t* piece = subject.data() + piece_start;
      size_t search_from = 0;
      size_t emitted = 0;
      while (search_from < piece_length) {
        const int rc = pcre2_match(regex->code.get(), piece, piece_length, search_from,
                                   PCRE2_NO_UTF_CHECK, match.get(), context.get());
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
          return make_error(
              ErrorCode::kOutOfRange,
              "pre-tokenizer: regex matching gave up on this input: " + pcre2_message(rc));
        }
        const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.get());
        const size_t begin = ovector[0];
        const size_t end = ovector[1];
        if (end == begin) {  // no pattern here can match empty; be safe anyway
          search_from = begin + 1;
          continue;
        }
        add_gap(begin - emitted);
        next.push_back(end - begin);
        emitted = end;
        search_from = end;
      }
      add_gap(piece_length - emitted);
      piece_start += piece_length;
    }
    lengths.swap(next);
  }

  std::vector<std::string> words;
  words.reserve(lengths.size());
  size_t start = 0;
  for (size_t length : lengths) {
    words.push_back(unicode::encode(std::span<const uint32_t>(cps.data() + start, length)));
    start += length;
  }
  return words;
}

}  // namespace edgelm::tokenizer
