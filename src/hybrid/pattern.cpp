#define PCRE2_CODE_UNIT_WIDTH 8
#include "hybrid/pattern.h"

#include <pcre2.h>

namespace edgelm::hybrid::detail {
namespace {

// Bounds backtracking so a hostile input cannot make one pattern run for long.
constexpr uint32_t kMatchLimit = 200000;

struct MatchDataDeleter {
  void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
};
struct MatchContextDeleter {
  void operator()(pcre2_match_context* context) const { pcre2_match_context_free(context); }
};

}  // namespace

void Pattern::CodeDeleter::operator()(pcre2_real_code_8* code) const {
  pcre2_code_free(code);
}

Pattern::~Pattern() = default;

Result<Pattern> Pattern::compile(std::string_view name, std::string_view pattern, bool caseless) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  uint32_t options = PCRE2_UTF | PCRE2_UCP;
  if (caseless) options |= PCRE2_CASELESS;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   options, &error_code, &error_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof(message));
    return make_error(ErrorCode::kInternal, "redactor pattern '" + std::string(name) +
                                                "' at offset " + std::to_string(error_offset) +
                                                ": " + reinterpret_cast<const char*>(message));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional: the interpreter is the fallback
  return Pattern(std::unique_ptr<pcre2_real_code_8, CodeDeleter>(code));
}

void Pattern::for_each(std::string_view text,
                       const std::function<bool(const Match&)>& on_match) const {
  std::unique_ptr<pcre2_match_data, MatchDataDeleter> data(
      pcre2_match_data_create_from_pattern(code_.get(), nullptr));
  std::unique_ptr<pcre2_match_context, MatchContextDeleter> context(
      pcre2_match_context_create(nullptr));
  if (!data || !context) return;
  pcre2_set_match_limit(context.get(), kMatchLimit);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t offset = 0;
  while (offset <= text.size()) {
    int rc = pcre2_match(code_.get(), subject, text.size(), offset, PCRE2_NO_UTF_CHECK, data.get(),
                         context.get());
    if (rc < 0) return;  // no match, or the limit was hit
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data.get());
    Match match{ovector[0], ovector[1]};
    if (!on_match(match)) return;
    if (match.end > offset) {
      offset = match.end;
    } else {  // empty match: step over one whole UTF-8 character
      ++offset;
      while (offset < text.size() && (static_cast<unsigned char>(text[offset]) & 0xC0) == 0x80)
        ++offset;
    }
  }
}

}  // namespace edgelm::hybrid::detail
