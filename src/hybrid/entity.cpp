#include "edgelm/hybrid/entity.h"

namespace edgelm::hybrid {
namespace {

constexpr std::array<std::string_view, kEntityTypeCount> kNames = {
    "EMAIL", "PHONE", "CREDIT_CARD", "IBAN",   "SSN",          "IP_ADDRESS", "MAC_ADDRESS",
    "URL",   "DATE",  "ADDRESS",     "PERSON", "ORGANIZATION", "LOCATION"};

constexpr std::array<EntityType, kEntityTypeCount> kAll = {
    EntityType::kEmail,      EntityType::kPhone,  EntityType::kCreditCard,
    EntityType::kIban,       EntityType::kSsn,    EntityType::kIpAddress,
    EntityType::kMacAddress, EntityType::kUrl,    EntityType::kDate,
    EntityType::kAddress,    EntityType::kPerson, EntityType::kOrganization,
    EntityType::kLocation};

}  // namespace

std::string_view entity_type_name(EntityType type) {
  return kNames[static_cast<size_t>(type)];
}

std::optional<EntityType> parse_entity_type(std::string_view name) {
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == name) return kAll[i];
  }
  return std::nullopt;
}

const std::array<EntityType, kEntityTypeCount>& all_entity_types() {
  return kAll;
}

bool is_structured(EntityType type) {
  switch (type) {
    case EntityType::kAddress:
    case EntityType::kPerson:
    case EntityType::kOrganization:
    case EntityType::kLocation:
      return false;
    default:
      return true;
  }
}

}  // namespace edgelm::hybrid
