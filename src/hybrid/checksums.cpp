#include <array>
#include <cctype>
#include <string_view>
#include <utility>

#include "hybrid/recognizers.h"

namespace edgelm::hybrid::detail {
namespace {

// IBAN lengths by country (ISO 13616 registry).
constexpr std::array<std::pair<std::string_view, int>, 77> kIbanLengths = {{
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16}, {"BG", 22},
    {"BH", 22}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24}, {"DE", 22},
    {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18}, {"FO", 18}, {"FR", 27},
    {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28},
    {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20},
    {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21}, {"LY", 25}, {"MC", 27},
    {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NL", 18}, {"NO", 15},
    {"PK", 24}, {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"SA", 24},
    {"SC", 31}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"ST", 25}, {"SV", 28}, {"TL", 23},
    {"TN", 24}, {"TR", 26}, {"UA", 29}, {"VG", 24}, {"XK", 20},
}};

bool has_prefix(std::string_view digits, std::string_view prefix) {
  return digits.substr(0, prefix.size()) == prefix;
}

int leading_number(std::string_view digits, size_t n) {
  int value = 0;
  for (size_t i = 0; i < n && i < digits.size(); ++i) value = value * 10 + (digits[i] - '0');
  return value;
}

}  // namespace

bool luhn_valid(std::string_view digits) {
  if (digits.empty()) return false;
  int sum = 0;
  bool double_it = false;
  for (size_t i = digits.size(); i-- > 0;) {
    if (digits[i] < '0' || digits[i] > '9') return false;
    int d = digits[i] - '0';
    if (double_it) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double_it = !double_it;
  }
  return sum % 10 == 0;
}

bool is_card_number(std::string_view digits) {
  const size_t n = digits.size();
  if (n < 13 || n > 19 || !luhn_valid(digits)) return false;
  const int two = leading_number(digits, 2);
  const int three = leading_number(digits, 3);
  const int four = leading_number(digits, 4);
  if (digits[0] == '4') return n == 13 || n == 16 || n == 19;                      // Visa
  if ((two >= 51 && two <= 55) || (four >= 2221 && four <= 2720)) return n == 16;  // Mastercard
  if (two == 34 || two == 37) return n == 15;                                      // Amex
  if (has_prefix(digits, "6011") || two == 65 || (three >= 644 && three <= 649)) return n >= 16;
  if (four >= 3528 && four <= 3589) return n >= 16;                              // JCB
  if (two == 36 || two == 38 || (three >= 300 && three <= 305)) return n >= 14;  // Diners
  if (two == 62) return n >= 16;                                                 // UnionPay
  if (two == 50 || (two >= 56 && two <= 69)) return n >= 12;                     // Maestro
  return false;
}

int iban_length(std::string_view country) {
  for (const auto& [code, length] : kIbanLengths) {
    if (code == country) return length;
  }
  return 0;
}

bool iban_valid(std::string_view compact) {
  if (compact.size() < 15 ||
      iban_length(compact.substr(0, 2)) != static_cast<int>(compact.size())) {
    return false;
  }
  if (!std::isdigit(static_cast<unsigned char>(compact[2])) ||
      !std::isdigit(static_cast<unsigned char>(compact[3]))) {
    return false;
  }
  // Move the first four characters to the end, letters become 10..35, the number mod 97 is 1.
  int remainder = 0;
  auto feed = [&remainder](char c) {
    unsigned char u = static_cast<unsigned char>(std::toupper(static_cast<unsigned char>(c)));
    if (std::isdigit(u)) {
      remainder = (remainder * 10 + (u - '0')) % 97;
      return true;
    }
    if (u >= 'A' && u <= 'Z') {
      remainder = (remainder * 100 + (u - 'A' + 10)) % 97;
      return true;
    }
    return false;
  };
  for (size_t i = 4; i < compact.size(); ++i) {
    if (!feed(compact[i])) return false;
  }
  for (size_t i = 0; i < 4; ++i) {
    if (!feed(compact[i])) return false;
  }
  return remainder == 1;
}

}  // namespace edgelm::hybrid::detail
