// Phone numbers through libphonenumber: its matcher finds candidates that parse as valid numbers
// for a region (national formats) or carry a country code (international formats).
#include <phonenumbers/phonenumbermatch.h>
#include <phonenumbers/phonenumbermatcher.h>
#include <phonenumbers/phonenumberutil.h>

#include <algorithm>
#include <cctype>

#include "hybrid/recognizers.h"

namespace edgelm::hybrid::detail {
namespace {

// Bounds the matcher's work on long inputs full of number-like text.
constexpr int kMaxTries = 1 << 16;

// An unformatted digit run right after "order", "invoice", "#", ... is a reference number, even
// when it would be a valid phone number.
bool is_reference_number(std::string_view text, size_t begin, const std::string& raw) {
  if (raw.find_first_not_of("0123456789") != std::string::npos) return false;
  size_t from = begin > 24 ? begin - 24 : 0;
  std::string before(text.substr(from, begin - from));
  for (char& c : before) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* word :
       {"order", "invoice", "ref", "tracking", "ticket", "account", "customer no", "#", "id"}) {
    if (before.find(word) != std::string::npos) return true;
  }
  return false;
}

// Windows of the text worth giving to the matcher: clusters of digits (consecutive digits at
// most 4 bytes apart) holding at least 5 digits, with some context on each side. The matcher costs
// far more per byte than the other recognizers, and prose without digit clusters has no numbers.
std::vector<std::pair<size_t, size_t>> digit_windows(std::string_view text) {
  constexpr size_t kMaxGap = 4, kMinDigits = 5, kContext = 12;
  std::vector<std::pair<size_t, size_t>> windows;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] < '0' || text[i] > '9') {
      ++i;
      continue;
    }
    size_t begin = i, end = i + 1, digits = 1;
    for (size_t j = i + 1; j < text.size() && j - end <= kMaxGap; ++j) {
      if (text[j] >= '0' && text[j] <= '9') {
        ++digits;
        end = j + 1;
      }
    }
    i = end;
    if (digits < kMinDigits) continue;
    size_t from = begin > kContext ? begin - kContext : 0;
    size_t to = std::min(text.size(), end + kContext);
    while (from > 0 && (static_cast<unsigned char>(text[from]) & 0xC0) == 0x80) --from;
    while (to < text.size() && (static_cast<unsigned char>(text[to]) & 0xC0) == 0x80) ++to;
    if (!windows.empty() && from <= windows.back().second) {
      windows.back().second = to;
    } else {
      windows.emplace_back(from, to);
    }
  }
  return windows;
}

}  // namespace

void PhoneRecognizer::find(std::string_view text, std::vector<EntitySpan>& out) const {
  using i18n::phonenumbers::PhoneNumberMatch;
  using i18n::phonenumbers::PhoneNumberMatcher;
  using i18n::phonenumbers::PhoneNumberUtil;
  const PhoneNumberUtil& util = *PhoneNumberUtil::GetInstance();
  for (const auto& [from, to] : digit_windows(text)) {
    // Line breaks inside a number (text wrapped by a mail client) become spaces, same length.
    std::string subject(text.substr(from, to - from));
    for (char& c : subject) {
      if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    }
    for (const auto& region : regions_) {
      PhoneNumberMatcher matcher(util, subject, region, PhoneNumberMatcher::VALID, kMaxTries);
      PhoneNumberMatch match;
      while (matcher.HasNext() && matcher.Next(&match)) {
        if (match.start() < 0) continue;
        size_t begin = from + static_cast<size_t>(match.start());
        size_t end = begin + match.raw_string().size();
        if (end > to || is_reference_number(text, begin, match.raw_string())) continue;
        out.push_back({begin, end, EntityType::kPhone});
      }
    }
  }
}

}  // namespace edgelm::hybrid::detail
