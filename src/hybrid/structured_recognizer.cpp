// Recognizers for personal data with a syntax: patterns, then checksums or context where the
// syntax alone matches too much.
#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <string>

#include "hybrid/recognizers.h"

namespace edgelm::hybrid::detail {
namespace {

constexpr std::string_view kMonth =
    "(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    "Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)";
constexpr std::string_view kStreetSuffix =
    "(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Way|Terrace|"
    "Ter|Circle|Cir|Parkway|Pkwy|Highway|Hwy|Square|Sq|Close|Crescent|Gardens|Grove|Mews|Row|Hill)";

struct SimpleSpec {
  EntityType type;
  std::string name;
  std::string pattern;
  bool caseless = false;
};

std::vector<SimpleSpec> simple_specs() {
  const std::string month(kMonth);
  const std::string street(kStreetSuffix);
  const std::string cap_word = "\\p{Lu}[\\p{L}\\p{M}'.\\-]*";
  return {
      {EntityType::kEmail, "email",
       "(?<![\\w.+%\\-])[\\w+%\\-](?:[\\w.+%\\-]*[\\w+%\\-])?@(?:[\\w\\-]+\\.)+\\p{L}{2,24}(?!["
       "\\w\\-])"},
      {EntityType::kMacAddress, "mac",
       "(?<![\\w:.\\-])(?:[0-9A-Fa-f]{2}([:\\-])[0-9A-Fa-f]{2}(?:\\1[0-9A-Fa-f]{2}){4}|"
       "[0-9A-Fa-f]{4}\\.[0-9A-Fa-f]{4}\\.[0-9A-Fa-f]{4})(?![\\w:\\-]|\\.\\w)"},
      {EntityType::kDate, "date_iso",
       "(?<![\\w\\-/.])(?:1[89]|20)\\d{2}([\\-/"
       ".])(?:0?[1-9]|1[0-2])\\1(?:0?[1-9]|[12]\\d|3[01])(?![\\w]|[\\-/.]\\d)"},
      {EntityType::kDate, "date_month_first",
       "\\b" + month +
           "\\.?\\s+(?:0?[1-9]|[12]\\d|3[01])(?:st|nd|rd|th)?\\b(?:,?\\s+(?:1[89]|20)\\d{2}\\b)?"},
      {EntityType::kDate, "date_day_first",
       "\\b(?:0?[1-9]|[12]\\d|3[01])(?:st|nd|rd|th)?\\s+(?:of\\s+)?" + month +
           "\\b\\.?,?(?:\\s+(?:1[89]|20)\\d{2}\\b)?"},
      {EntityType::kDate, "date_german",
       "\\b(?:0?[1-9]|[12]\\d|3[01])\\.\\s*(?:Januar|Februar|März|April|Mai|Juni|Juli|August|"
       "September|"
       "Oktober|November|Dezember)\\s+(?:1[89]|20)\\d{2}\\b"},
      {EntityType::kAddress, "address_us",
       "\\b\\d{1,6}[A-Za-z]?\\s+(?:[NSEW]\\.?\\s+)?(?:" + cap_word + "\\s+){1,4}" + street +
           "\\b\\.?(?:\\s+(?:NW|NE|SW|SE|N|S|E|W)\\b)?"
           "(?:,?\\s*(?:Apt|Apartment|Suite|Ste|Unit|Floor|Fl)\\.?\\s*#?\\s*[\\w\\-]+|\\s*#\\s*["
           "\\w\\-]+)?"
           "(?:,?\\s+(?:" +
           cap_word +
           "[ ]?){1,3},?\\s+[A-Z]{2}\\s+\\d{5}(?:-\\d{4})?\\b)?"
           "(?:,?\\s+(?:" +
           cap_word + "[ ]?){0,3},?\\s*[A-Z]{1,2}\\d[A-Z\\d]?\\s*\\d[A-Z]{2}\\b)?"},
      {EntityType::kAddress, "address_de",
       "\\b\\p{Lu}[\\p{L}\\-]*(?:straße|strasse|str\\.|weg|platz|allee|gasse|ring|damm|ufer)\\s+"
       "\\d{1,4}\\s?[a-z]?\\b"
       "(?:,?\\s+\\d{5}\\s+\\p{Lu}[\\p{L}\\-]+)?"},
      {EntityType::kAddress, "address_fr",
       "\\b\\d{1,4}(?:\\s?(?:bis|ter))?,?\\s+(?:rue|avenue|boulevard|bd|place|allée|chemin|impasse|"
       "quai)\\s+"
       "(?:(?:de|du|des|la|le|l'|d')\\s*)*\\p{Lu}[\\p{L}'\\-]*(?:\\s+\\p{Lu}[\\p{L}'\\-]*){0,3}"
       "(?:,?\\s+\\d{5}\\s+\\p{Lu}[\\p{L}\\-]+)?"},
      {EntityType::kAddress, "po_box", "\\bP\\.?\\s?O\\.?\\s+Box\\s+\\d{1,7}\\b", true},
  };
}

std::string digits_of(std::string_view text) {
  std::string digits;
  for (char c : text) {
    if (c >= '0' && c <= '9') digits.push_back(c);
  }
  return digits;
}

bool is_trailing_punctuation(char c) {
  return c == '.' || c == ',' || c == ';' || c == ':' || c == '!' || c == '?' || c == '\'' ||
         c == '"';
}

// URLs end before trailing punctuation, and before a ')' that closes a parenthesis opened
// outside the URL.
size_t trim_url_end(std::string_view url) {
  size_t end = url.size();
  while (end > 0) {
    char c = url[end - 1];
    if (is_trailing_punctuation(c)) {
      --end;
      continue;
    }
    if (c == ')' || c == ']' || c == '}') {
      char open = c == ')' ? '(' : c == ']' ? '[' : '{';
      auto body = url.substr(0, end);
      if (std::count(body.begin(), body.end(), open) < std::count(body.begin(), body.end(), c)) {
        --end;
        continue;
      }
    }
    break;
  }
  return end;
}

bool valid_day_month(int first, int second) {
  return (first >= 1 && first <= 12 && second >= 1 && second <= 31) ||
         (first >= 1 && first <= 31 && second >= 1 && second <= 12);
}

bool has_ssn_context(std::string_view text, size_t begin) {
  size_t from = begin > 48 ? begin - 48 : 0;
  std::string window(text.substr(from, begin - from));
  for (char& c : window) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return window.find("ssn") != std::string::npos ||
         window.find("social security") != std::string::npos ||
         window.find("soc. sec") != std::string::npos || window.find("ss#") != std::string::npos;
}

}  // namespace

Result<std::unique_ptr<StructuredRecognizer>> StructuredRecognizer::create() {
  std::unique_ptr<StructuredRecognizer> r(new StructuredRecognizer());
  for (const auto& spec : simple_specs()) {
    EDGELM_TRY(auto pattern, Pattern::compile(spec.name, spec.pattern, spec.caseless));
    r->simple_.emplace_back(spec.type, std::move(pattern));
  }
  auto make = [](std::string_view name, std::string_view pattern, bool caseless,
                 std::unique_ptr<Pattern>& out) -> Status {
    EDGELM_TRY(auto compiled, Pattern::compile(name, pattern, caseless));
    out = std::make_unique<Pattern>(std::move(compiled));
    return {};
  };
  EDGELM_CHECK(
      make("url", "\\b(?:(?:https?|ftp)://|www\\.)[^\\s<>\"'\\x{201C}\\x{201D}\\x{2018}\\x{2019}]+",
           true, r->url_));
  EDGELM_CHECK(make("ipv4",
                    "(?<![\\w.])(?:(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)\\.){3}"
                    "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(?!\\w|\\.\\d)",
                    false, r->ipv4_));
  EDGELM_CHECK(
      make("ipv6", "(?<![\\w:.])[0-9A-Fa-f:][0-9A-Fa-f:.]{1,44}(?![\\w:])", false, r->ipv6_));
  EDGELM_CHECK(
      make("ssn", "(?<![\\w\\-])(?!000|666|9\\d\\d)\\d{3}-(?!00)\\d{2}-(?!0000)\\d{4}(?![\\w\\-])",
           false, r->ssn_));
  EDGELM_CHECK(
      make("ssn_context",
           "(?<![\\w\\-])(?!000|666|9\\d\\d)\\d{3}([ .]?)(?!00)\\d{2}\\1(?!0000)\\d{4}(?![\\w\\-])",
           false, r->ssn_context_));
  EDGELM_CHECK(make("card", "(?<![\\w+\\-])\\d(?:[ \\-]?\\d){11,22}(?!\\w)", false, r->card_));
  EDGELM_CHECK(make("iban", "(?<!\\w)[A-Z]{2}\\d{2}(?:[ ]?[A-Z0-9]){11,32}", false, r->iban_));
  EDGELM_CHECK(
      make("numeric_date",
           "(?<![\\w./\\-])(\\d{1,2})([./\\-])(\\d{1,2})\\2(?:\\d{4}|\\d{2})(?!\\w|[./\\-]\\d)",
           false, r->numeric_date_));
  return r;
}

void StructuredRecognizer::find(std::string_view text, std::vector<EntitySpan>& out) const {
  for (const auto& [type, pattern] : simple_) {
    EntityType t = type;
    pattern.for_each(text, [&](const Match& m) {
      out.push_back({m.begin, m.end, t});
      return true;
    });
  }
  url_->for_each(text, [&](const Match& m) {
    size_t end = m.begin + trim_url_end(text.substr(m.begin, m.end - m.begin));
    if (end > m.begin + 4) out.push_back({m.begin, end, EntityType::kUrl});
    return true;
  });
  ipv4_->for_each(text, [&](const Match& m) {
    out.push_back({m.begin, m.end, EntityType::kIpAddress});
    return true;
  });
  ipv6_->for_each(text, [&](const Match& m) {
    std::string_view candidate = text.substr(m.begin, m.end - m.begin);
    while (!candidate.empty() && candidate.back() == '.') candidate.remove_suffix(1);
    if (std::count(candidate.begin(), candidate.end(), ':') < 2 || candidate.size() > 45)
      return true;
    std::string z(candidate);
    unsigned char address[16];
    if (inet_pton(AF_INET6, z.c_str(), address) == 1 &&
        z.find_first_of("0123456789abcdefABCDEF") != z.npos) {
      out.push_back({m.begin, m.begin + candidate.size(), EntityType::kIpAddress});
    }
    return true;
  });
  ssn_->for_each(text, [&](const Match& m) {
    out.push_back({m.begin, m.end, EntityType::kSsn});
    return true;
  });
  ssn_context_->for_each(text, [&](const Match& m) {
    if (has_ssn_context(text, m.begin)) out.push_back({m.begin, m.end, EntityType::kSsn});
    return true;
  });
  card_->for_each(text, [&](const Match& m) {
    // The digit run may carry unrelated digits after the card: try each group boundary.
    std::string digits;
    std::vector<std::pair<size_t, size_t>> boundaries;  // (digits so far, byte end)
    for (size_t i = m.begin; i < m.end; ++i) {
      if (text[i] >= '0' && text[i] <= '9') {
        digits.push_back(text[i]);
        if (i + 1 == m.end || text[i + 1] == ' ' || text[i + 1] == '-')
          boundaries.emplace_back(digits.size(), i + 1);
      }
    }
    for (auto it = boundaries.rbegin(); it != boundaries.rend(); ++it) {
      if (is_card_number(std::string_view(digits).substr(0, it->first))) {
        out.push_back({m.begin, it->second, EntityType::kCreditCard});
        break;
      }
    }
    return true;
  });
  iban_->for_each(text, [&](const Match& m) {
    int length = iban_length(text.substr(m.begin, 2));
    if (length == 0) return true;
    std::string compact;
    size_t end = m.begin;
    for (; end < m.end && static_cast<int>(compact.size()) < length; ++end) {
      if (text[end] != ' ') compact.push_back(text[end]);
    }
    if (iban_valid(compact)) out.push_back({m.begin, end, EntityType::kIban});
    return true;
  });
  numeric_date_->for_each(text, [&](const Match& m) {
    std::string_view candidate = text.substr(m.begin, m.end - m.begin);
    size_t first_sep = candidate.find_first_of("./-");
    size_t second_sep = candidate.find_first_of("./-", first_sep + 1);
    int first = std::stoi(std::string(candidate.substr(0, first_sep)));
    int second =
        std::stoi(std::string(candidate.substr(first_sep + 1, second_sep - first_sep - 1)));
    if (valid_day_month(first, second) && digits_of(candidate).size() >= 4) {
      out.push_back({m.begin, m.end, EntityType::kDate});
    }
    return true;
  });
}

}  // namespace edgelm::hybrid::detail
