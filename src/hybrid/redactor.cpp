#include "edgelm/hybrid/redactor.h"

#include <utf8proc.h>

#include <algorithm>
#include <cctype>

#include "edgelm/security/hash.h"
#include "hybrid/recognizers.h"

namespace edgelm::hybrid {
namespace {

// Which of two overlapping candidates wins: checksummed and unambiguous syntaxes first.
int precedence(EntityType type) {
  switch (type) {
    case EntityType::kCreditCard:
    case EntityType::kIban:
      return 9;
    case EntityType::kEmail:
    case EntityType::kUrl:
      return 8;
    case EntityType::kMacAddress:
    case EntityType::kIpAddress:
    case EntityType::kSsn:
      return 7;
    case EntityType::kPhone:  // dates and phones compete for digit groups: the longer wins
    case EntityType::kDate:
      return 6;
    case EntityType::kAddress:
      return 4;
    case EntityType::kOrganization:
      return 3;
    case EntityType::kPerson:
      return 2;
    case EntityType::kLocation:
      return 1;
  }
  return 0;
}

// A copy of `text` with each byte that is not part of valid UTF-8 replaced by '?', so the
// recognizers (PCRE2 in UTF mode, libphonenumber) see valid text at the same offsets.
std::string sanitize_utf8(std::string_view text) {
  std::string out(text);
  size_t pos = 0;
  while (pos < out.size()) {
    if (static_cast<unsigned char>(out[pos]) < 0x80) {
      if (out[pos] == '\0') out[pos] = ' ';
      ++pos;
      continue;
    }
    utf8proc_int32_t cp = 0;
    utf8proc_ssize_t n =
        utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(out.data() + pos),
                         static_cast<utf8proc_ssize_t>(out.size() - pos), &cp);
    if (n <= 0) {
      out[pos] = '?';
      ++pos;
    } else {
      pos += static_cast<size_t>(n);
    }
  }
  return out;
}

std::string mask(std::string_view value, int keep_last) {
  // Count digits so the last `keep_last` stay visible.
  int digits = 0;
  for (char c : value) digits += (c >= '0' && c <= '9') ? 1 : 0;
  std::string out;
  int digit_index = 0;
  size_t pos = 0;
  while (pos < value.size()) {
    unsigned char c = static_cast<unsigned char>(value[pos]);
    size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    n = std::min(n, value.size() - pos);
    if (c >= '0' && c <= '9') {
      ++digit_index;
      out.push_back(digit_index > digits - keep_last ? static_cast<char>(c) : '*');
    } else if (std::isalpha(c) || c >= 0x80) {
      out.push_back('*');
    } else {
      out.push_back(static_cast<char>(c));
    }
    pos += n;
  }
  return out;
}

std::string hashed(const RedactionPolicy& policy, EntityType type, std::string_view value) {
  std::string material = policy.hash_salt;
  material.push_back('\0');
  material.append(entity_type_name(type));
  material.push_back('\0');
  material.append(detail::fold_case(value));
  auto digest = security::sha256(material);
  // Appended piecewise: g++ 12 warns (-Wrestrict, a false positive) on the operator+ chain.
  std::string out = "<";
  out.append(entity_type_name(type));
  out.push_back('#');
  out.append(security::to_hex(digest), 0, 16);
  out.push_back('>');
  return out;
}

}  // namespace

struct Redactor::Recognizers {
  std::unique_ptr<detail::StructuredRecognizer> structured;
  std::unique_ptr<detail::PhoneRecognizer> phone;
  std::unique_ptr<detail::NameModelScorer> name_model;  // when the name signals use the model
  std::unique_ptr<detail::NameRecognizer> names;
};

Redactor::Redactor(RedactionPolicy policy, std::unique_ptr<Recognizers> recognizers)
    : policy_(std::move(policy)), recognizers_(std::move(recognizers)) {}
Redactor::~Redactor() = default;

Result<std::unique_ptr<Redactor>> Redactor::create(const RedactionPolicy& policy) {
  auto recognizers = std::make_unique<Recognizers>();
  EDGELM_TRY(recognizers->structured, detail::StructuredRecognizer::create());
  recognizers->phone = std::make_unique<detail::PhoneRecognizer>(policy.phone_regions);
  if (uses_model(policy.name_signals)) {
    if (policy.name_model.empty()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "name_signals '" + std::string(name_signals_name(policy.name_signals)) +
                            "' uses the model: set name_model to a GGUF file");
    }
    EDGELM_TRY(recognizers->name_model, detail::NameModelScorer::load(policy.name_model));
  }
  EDGELM_TRY(recognizers->names,
             detail::NameRecognizer::create(policy.name_signals, recognizers->name_model.get(),
                                            policy.name_model_threshold));
  return std::unique_ptr<Redactor>(new Redactor(policy, std::move(recognizers)));
}

std::vector<EntitySpan> Redactor::detect(std::string_view text) const {
  const std::string clean = sanitize_utf8(text);
  std::vector<EntitySpan> candidates;
  recognizers_->structured->find(clean, candidates);
  recognizers_->phone->find(clean, candidates);
  recognizers_->names->find(clean, candidates);
  std::sort(candidates.begin(), candidates.end(), [](const EntitySpan& a, const EntitySpan& b) {
    int pa = precedence(a.type), pb = precedence(b.type);
    if (pa != pb) return pa > pb;
    if (a.size() != b.size()) return a.size() > b.size();
    // "03.01.1997" parses as a phone number too; a date pattern is the more specific match.
    if ((a.type == EntityType::kDate) != (b.type == EntityType::kDate))
      return a.type == EntityType::kDate;
    return a.begin < b.begin;
  });
  std::vector<EntitySpan> accepted;
  for (const auto& c : candidates) {
    if (c.end <= c.begin || c.end > text.size()) continue;
    bool free = std::none_of(accepted.begin(), accepted.end(),
                             [&](const EntitySpan& a) { return a.overlaps(c); });
    if (free) accepted.push_back(c);
  }
  std::sort(accepted.begin(), accepted.end(),
            [](const EntitySpan& a, const EntitySpan& b) { return a.begin < b.begin; });
  return accepted;
}

RedactionResult Redactor::redact(std::string_view text, Vault& vault) const {
  RedactionResult result;
  result.text.reserve(text.size());
  size_t pos = 0;
  for (const auto& span : detect(text)) {
    RedactionAction action = policy_.action(span.type);
    if (action == RedactionAction::kKeep) continue;
    std::string_view value = text.substr(span.begin, span.size());
    std::string replacement;
    switch (action) {
      case RedactionAction::kPlaceholder:
        replacement = vault.placeholder_for(span.type, value);
        break;
      case RedactionAction::kMask:
        replacement = mask(value, policy_.mask_keep_last);
        break;
      case RedactionAction::kHash:
        replacement = hashed(policy_, span.type, value);
        break;
      case RedactionAction::kDrop:
      case RedactionAction::kKeep:
        break;
    }
    result.text.append(text.substr(pos, span.begin - pos));
    result.text.append(replacement);
    pos = span.end;
    ++result.counts[static_cast<size_t>(span.type)];
    result.entities.push_back({span, action, std::move(replacement)});
  }
  result.text.append(text.substr(pos));
  return result;
}

}  // namespace edgelm::hybrid
