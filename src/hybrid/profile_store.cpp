#include "edgelm/hybrid/profile_store.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "edgelm/security/encryption.h"

namespace edgelm::hybrid {

Result<ProfileStore> ProfileStore::load(const std::filesystem::path& path,
                                        const security::SecretKey* key) {
  const std::string name = "profile file '" + path.string() + "'";
  std::string text;
  if (security::is_encrypted_file(path)) {
    if (key == nullptr)
      return make_error(ErrorCode::kInvalidArgument, name + " is encrypted: no key");
    EDGELM_TRY(auto buffer, security::decrypt_to_memory(path, *key));
    const auto bytes = buffer.bytes();
    text.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error(ErrorCode::kIo, "cannot read " + name);
    std::stringstream s;
    s << in.rdbuf();
    text = s.str();
  }
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    return make_error(ErrorCode::kInvalidFormat, name + ": must be an object {user: [facts]}");
  }
  ProfileStore store;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string where = name + ": user '" + it.key() + "'";
    if (!it.value().is_array() || it.value().size() > kMaxFactsPerUser) {
      return make_error(
          ErrorCode::kInvalidFormat,
          where + ": must be an array of at most " + std::to_string(kMaxFactsPerUser) + " strings");
    }
    std::vector<std::string>& facts = store.facts_[it.key()];
    for (const auto& fact : it.value()) {
      if (!fact.is_string() || fact.get<std::string>().size() > kMaxFactBytes) {
        return make_error(ErrorCode::kInvalidFormat, where + ": facts must be strings of at most " +
                                                         std::to_string(kMaxFactBytes) + " bytes");
      }
      facts.push_back(fact.get<std::string>());
    }
  }
  return store;
}

const std::vector<std::string>* ProfileStore::facts(const std::string& user) const {
  auto it = facts_.find(user);
  return it == facts_.end() ? nullptr : &it->second;
}

std::string ProfileStore::local_context(const std::string& user) const {
  const std::vector<std::string>* list = facts(user);
  if (list == nullptr || list->empty()) return {};
  std::string text = "What the user asked you to remember:";
  for (const std::string& fact : *list) text += "\n- " + fact;
  return text;
}

}  // namespace edgelm::hybrid
