#include <cctype>
#include <string>

#include "edgelm/hybrid/redactor.h"
#include "hybrid/recognizers.h"

namespace edgelm::hybrid {
namespace {

// What makes two spellings "the same value": separators in numbers and identifiers do not count,
// nor does case in addresses and names.
std::string normalize(EntityType type, std::string_view value) {
  std::string key;
  switch (type) {
    case EntityType::kPhone:
    case EntityType::kCreditCard:
    case EntityType::kSsn:
    case EntityType::kIban:
    case EntityType::kMacAddress:
      for (char c : value) {
        if (std::isalnum(static_cast<unsigned char>(c))) {
          key.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
        }
      }
      return key;
    default: {
      std::string folded = detail::fold_case(value);
      bool space = false;
      for (char c : folded) {
        if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
          space = !key.empty();
          continue;
        }
        if (space) key.push_back(' ');
        space = false;
        key.push_back(c);
      }
      return key;
    }
  }
}

// "<TYPE_N>" -> entry index, for any placeholder-shaped text at `pos`; its length in `length`.
bool parse_placeholder(std::string_view text, size_t pos, size_t& length) {
  if (pos >= text.size() || text[pos] != '<') return false;
  size_t i = pos + 1;
  size_t letters = 0;
  while (i < text.size() && ((text[i] >= 'A' && text[i] <= 'Z') || text[i] == '_')) ++i, ++letters;
  if (letters < 2 || text[i - 1] != '_') return false;
  size_t digits = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i, ++digits;
  if (digits == 0 || i >= text.size() || text[i] != '>') return false;
  length = i + 1 - pos;
  return length <= kMaxPlaceholderBytes;
}

}  // namespace

const std::string& Vault::placeholder_for(EntityType type, std::string_view value) {
  std::string key = std::string(entity_type_name(type)) + '\n' + normalize(type, value);
  if (auto it = by_key_.find(key); it != by_key_.end()) return entries_[it->second].placeholder;
  int number = ++counters_[static_cast<size_t>(type)];
  Entry entry{"<", type, std::string(value)};
  entry.placeholder.append(entity_type_name(type));
  entry.placeholder.push_back('_');
  entry.placeholder.append(std::to_string(number));
  entry.placeholder.push_back('>');
  by_key_.emplace(std::move(key), entries_.size());
  by_placeholder_.emplace(entry.placeholder, entries_.size());
  entries_.push_back(std::move(entry));
  return entries_.back().placeholder;
}

const Vault::Entry* Vault::find_placeholder(std::string_view placeholder) const {
  auto it = by_placeholder_.find(placeholder);
  return it == by_placeholder_.end() ? nullptr : &entries_[it->second];
}

std::string Vault::restore(std::string_view text) const {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find('<', pos);
    if (open == std::string_view::npos) break;
    out.append(text.substr(pos, open - pos));
    size_t length = 0;
    const Entry* entry = nullptr;
    if (parse_placeholder(text, open, length)) entry = find_placeholder(text.substr(open, length));
    if (entry != nullptr) {
      out.append(entry->value);
      pos = open + length;
    } else {
      out.push_back('<');
      pos = open + 1;
    }
  }
  if (pos < text.size()) out.append(text.substr(pos));
  return out;
}

nlohmann::json Vault::to_json() const {
  nlohmann::json entries = nlohmann::json::array();
  for (const auto& e : entries_) {
    entries.push_back(
        {{"placeholder", e.placeholder}, {"type", entity_type_name(e.type)}, {"value", e.value}});
  }
  return {{"entries", std::move(entries)}};
}

Result<Vault> Vault::from_json(const nlohmann::json& json, std::string_view source) {
  const std::string prefix = std::string(source) + ": ";
  if (!json.is_object() || !json.contains("entries") || !json["entries"].is_array()) {
    return make_error(ErrorCode::kInvalidFormat,
                      prefix + "a vault is an object with an 'entries' array");
  }
  Vault vault;
  size_t index = 0;
  for (const auto& e : json["entries"]) {
    const std::string where = prefix + "entries[" + std::to_string(index++) + "]";
    if (!e.is_object() || !e.contains("type") || !e["type"].is_string() || !e.contains("value") ||
        !e["value"].is_string() || !e.contains("placeholder") || !e["placeholder"].is_string()) {
      return make_error(ErrorCode::kInvalidFormat,
                        where + ": needs string fields placeholder, type, value");
    }
    auto type = parse_entity_type(e["type"].get<std::string>());
    if (!type)
      return make_error(ErrorCode::kInvalidFormat, where + ": unknown type " + e["type"].dump());
    const std::string& value = e["value"].get_ref<const std::string&>();
    const std::string& expected = e["placeholder"].get_ref<const std::string&>();
    // Entries are replayed in order, so each must be the next placeholder of its type.
    if (vault.placeholder_for(*type, value) != expected) {
      return make_error(ErrorCode::kInvalidFormat, where + ": placeholder '" + expected +
                                                       "' is out of order or duplicates a value");
    }
  }
  return vault;
}

std::string StreamRestorer::feed(std::string_view chunk) {
  pending_.append(chunk);
  size_t hold = pending_.size();
  size_t open = pending_.rfind('<');
  if (open != std::string::npos && pending_.size() - open < kMaxPlaceholderBytes) {
    // Hold back a tail that may still become a placeholder: '<' then [A-Z_]* then [0-9]*.
    bool could_be = true;
    bool digits = false;
    for (size_t i = open + 1; i < pending_.size() && could_be; ++i) {
      char c = pending_[i];
      if (c >= '0' && c <= '9') {
        digits = true;
      } else if (!digits && ((c >= 'A' && c <= 'Z') || c == '_')) {
      } else {
        could_be = false;
      }
    }
    if (could_be) hold = open;
  }
  std::string out = vault_.restore(std::string_view(pending_).substr(0, hold));
  pending_.erase(0, hold);
  return out;
}

std::string StreamRestorer::finish() {
  std::string out = vault_.restore(pending_);
  pending_.clear();
  return out;
}

}  // namespace edgelm::hybrid
