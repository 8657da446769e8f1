// Personal-data entity types and detected spans, shared by the redactor, its evaluation and the
// hybrid router.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string_view>

namespace edgelm::hybrid {

enum class EntityType {
  kEmail,
  kPhone,
  kCreditCard,
  kIban,
  kSsn,
  kIpAddress,
  kMacAddress,
  kUrl,
  kDate,
  kAddress,
  kPerson,
  kOrganization,
  kLocation,
};
inline constexpr size_t kEntityTypeCount = 13;

// "EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "SSN", "IP_ADDRESS", "MAC_ADDRESS", "URL", "DATE",
// "ADDRESS", "PERSON", "ORGANIZATION", "LOCATION": the placeholder and config spelling.
std::string_view entity_type_name(EntityType type);
std::optional<EntityType> parse_entity_type(std::string_view name);
const std::array<EntityType, kEntityTypeCount>& all_entity_types();

// Types with a syntax (and often a checksum) that recognizers can match exactly; the rest
// (addresses, names) are found heuristically.
bool is_structured(EntityType type);

// A detected entity: bytes [begin, end) of the text.
struct EntitySpan {
  size_t begin = 0;
  size_t end = 0;
  EntityType type = EntityType::kEmail;

  size_t size() const { return end - begin; }
  bool overlaps(const EntitySpan& other) const { return begin < other.end && other.begin < end; }
};

}  // namespace edgelm::hybrid
