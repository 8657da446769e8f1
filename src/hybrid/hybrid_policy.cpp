#include "edgelm/hybrid/hybrid_policy.h"

#include <fstream>
#include <functional>
#include <sstream>

namespace edgelm::hybrid {
namespace {

using nlohmann::json;

Error policy_error(std::string_view source, const std::string& what) {
  return Error{ErrorCode::kInvalidArgument, std::string(source) + ": " + what};
}

// Visits the members of object `j` (at `where`), rejecting keys the handler does not know.
Status for_each_key(const json& j, std::string_view source, const std::string& where,
                    const std::function<Result<bool>(const std::string&, const json&)>& visit) {
  if (!j.is_object()) return policy_error(source, "'" + where + "' must be an object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string path = where.empty() ? it.key() : where + "." + it.key();
    EDGELM_TRY(bool known, visit(path, it.value()));
    if (!known) return policy_error(source, "unknown key '" + path + "'");
  }
  return {};
}

Status read_string(const json& v, std::string_view source, const std::string& path,
                   std::string& out) {
  if (!v.is_string()) return policy_error(source, "'" + path + "' must be a string");
  out = v.get<std::string>();
  return {};
}

template <typename Int>
Status read_int(const json& v, std::string_view source, const std::string& path, int64_t lo,
                int64_t hi, Int& out) {
  if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi) {
    return policy_error(source, "'" + path + "' must be an integer in [" + std::to_string(lo) +
                                    ", " + std::to_string(hi) + "]");
  }
  out = static_cast<Int>(v.get<int64_t>());
  return {};
}

Status read_bool(const json& v, std::string_view source, const std::string& path, bool& out) {
  if (!v.is_boolean()) return policy_error(source, "'" + path + "' must be true or false");
  out = v.get<bool>();
  return {};
}

}  // namespace

Result<HybridPolicy> HybridPolicy::from_json(const json& j, std::string_view source) {
  HybridPolicy p;
  bool has_threshold = false;
  constexpr int64_t kDay = 24 * 3600;
  EDGELM_CHECK(
      for_each_key(j, source, "", [&](const std::string& key, const json& v) -> Result<bool> {
        if (key == "redaction") {
          EDGELM_TRY(p.redaction,
                     RedactionPolicy::from_json(v, std::string(source) + " redaction"));
        } else if (key == "confidence") {
          EDGELM_CHECK(for_each_key(
              v, source, key, [&](const std::string& k, const json& x) -> Result<bool> {
                if (k == "confidence.metric") {
                  std::string name;
                  EDGELM_CHECK(read_string(x, source, k, name));
                  auto metric = parse_confidence_metric(name);
                  if (!metric)
                    return policy_error(source, "'" + k + "': " + metric.error().message);
                  p.metric = *metric;
                } else if (k == "confidence.threshold") {
                  if (!x.is_number()) return policy_error(source, "'" + k + "' must be a number");
                  p.threshold = x.get<double>();
                  has_threshold = true;
                } else {
                  return false;
                }
                return true;
              }));
        } else if (key == "deadline_ms") {
          EDGELM_CHECK(read_int(v, source, key, 1, kDay * 1000, p.deadline_ms));
        } else if (key == "local") {
          EDGELM_CHECK(for_each_key(
              v, source, key, [&](const std::string& k, const json& x) -> Result<bool> {
                if (k != "local.max_tokens") return false;
                EDGELM_CHECK(read_int(x, source, k, 1, 1 << 20, p.local_max_tokens));
                return true;
              }));
        } else if (key == "upstream") {
          EDGELM_CHECK(for_each_key(
              v, source, key, [&](const std::string& k, const json& x) -> Result<bool> {
                if (k == "upstream.url") {
                  EDGELM_CHECK(read_string(x, source, k, p.upstream.url));
                } else if (k == "upstream.model") {
                  EDGELM_CHECK(read_string(x, source, k, p.upstream.model));
                } else if (k == "upstream.api_key_env") {
                  EDGELM_CHECK(read_string(x, source, k, p.upstream.api_key_env));
                } else if (k == "upstream.timeout_ms") {
                  EDGELM_CHECK(read_int(x, source, k, 1, kDay * 1000, p.upstream.timeout_ms));
                } else if (k == "upstream.max_requests_per_minute") {
                  EDGELM_CHECK(
                      read_int(x, source, k, 0, 1000000, p.upstream.max_requests_per_minute));
                } else {
                  return false;
                }
                return true;
              }));
          if (p.upstream.url.rfind("http://", 0) != 0 && p.upstream.url.rfind("https://", 0) != 0) {
            return policy_error(source, "'upstream.url' must start with http:// or https://");
          }
        } else if (key == "consent") {
          EDGELM_CHECK(for_each_key(
              v, source, key, [&](const std::string& k, const json& x) -> Result<bool> {
                if (k == "consent.default") {
                  EDGELM_CHECK(read_bool(x, source, k, p.consent.default_consent));
                } else if (k == "consent.users") {
                  EDGELM_CHECK(for_each_key(
                      x, source, k,
                      [&](const std::string& user_path, const json& c) -> Result<bool> {
                        bool allowed = false;
                        EDGELM_CHECK(read_bool(c, source, user_path, allowed));
                        p.consent.users[user_path.substr(k.size() + 1)] = allowed;
                        return true;
                      }));
                } else {
                  return false;
                }
                return true;
              }));
        } else if (key == "key_file") {
          EDGELM_CHECK(read_string(v, source, key, p.key_file));
        } else if (key == "cache") {
          EDGELM_CHECK(for_each_key(
              v, source, key, [&](const std::string& k, const json& x) -> Result<bool> {
                if (k == "cache.path") {
                  EDGELM_CHECK(read_string(x, source, k, p.cache.path));
                } else if (k == "cache.ttl_s") {
                  EDGELM_CHECK(read_int(x, source, k, 0, 365 * kDay, p.cache.ttl_s));
                } else if (k == "cache.max_entries") {
                  EDGELM_CHECK(read_int(x, source, k, 1, 1000000, p.cache.max_entries));
                } else {
                  return false;
                }
                return true;
              }));
        } else if (key == "audit" || key == "profile") {
          std::string& out = key == "audit" ? p.audit_path : p.profile_path;
          EDGELM_CHECK(for_each_key(v, source, key,
                                    [&](const std::string& k, const json& x) -> Result<bool> {
                                      if (k != key + ".path") return false;
                                      EDGELM_CHECK(read_string(x, source, k, out));
                                      return true;
                                    }));
        } else {
          return false;
        }
        return true;
      }));
  if (!has_threshold) {
    return policy_error(source, "'confidence.threshold' is required (see edgelm calibrate)");
  }
  return p;
}

Result<HybridPolicy> HybridPolicy::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, "cannot read hybrid policy '" + path + "'");
  std::stringstream text;
  text << in.rdbuf();
  json j = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return make_error(ErrorCode::kInvalidFormat, path + ": not valid JSON");
  }
  return from_json(j, path);
}

}  // namespace edgelm::hybrid
