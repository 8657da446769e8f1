// The hybrid router's policy file (edgelm serve --hybrid POLICY.json):
//
// {
//   "redaction":  { ...RedactionPolicy::from_json... },
//   "confidence": {"metric": "mean_logprob", "threshold": -1.2},   // `edgelm calibrate` writes
//   this "deadline_ms": 20000,            // a request is answered within this, whatever the
//   upstream does "local":      {"max_tokens": 256}, "upstream":   {"url": "http://gateway:8080",
//   "model": "big", "api_key_env": "GATEWAY_KEY",
//                  "timeout_ms": 10000, "max_requests_per_minute": 60},
//   "consent":    {"default": false, "users": {"alice": true, "bob": false}},
//   "key_file":   "hybrid.key",      // encryption at rest (else $EDGELM_KEY_FILE)
//   "cache":      {"path": "cache.enc", "ttl_s": 3600, "max_entries": 1000},
//   "audit":      {"path": "audit-dir"},
//   "profile":    {"path": "profiles.json"}
// }
//
// Every section but "confidence" is optional (no upstream: every request is answered locally); no
// cache/audit/profile section: that feature is off. Unknown keys are errors naming the key.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "edgelm/error.h"
#include "edgelm/hybrid/confidence.h"
#include "edgelm/hybrid/redactor.h"

namespace edgelm::hybrid {

struct UpstreamPolicy {
  std::string url;          // scheme://host[:port][/base]; "" : no upstream
  std::string model;        // the model id sent upstream
  std::string api_key_env;  // environment variable holding the upstream API key ("" none)
  int32_t timeout_ms = 10000;
  int32_t max_requests_per_minute = 0;  // 0: unlimited
};

struct ConsentPolicy {
  bool default_consent = false;
  std::map<std::string, bool> users;  // by API key name or request "user"
};

struct CachePolicy {
  std::string path;  // "" : no cache
  int64_t ttl_s = 3600;
  size_t max_entries = 1000;
};

struct HybridPolicy {
  RedactionPolicy redaction;
  ConfidenceMetric metric = ConfidenceMetric::kMeanLogprob;
  double threshold = 0;
  int32_t deadline_ms = 20000;
  int32_t local_max_tokens = 256;
  UpstreamPolicy upstream;
  ConsentPolicy consent;
  std::string key_file;  // "" : $EDGELM_KEY_FILE (needed only when cache or audit is on)
  CachePolicy cache;
  std::string audit_path;    // a directory; "" : no audit
  std::string profile_path;  // "" : no profiles

  // `source` (the file name) prefixes errors.
  static Result<HybridPolicy> from_json(const nlohmann::json& json, std::string_view source);
  static Result<HybridPolicy> load(const std::string& path);
};

}  // namespace edgelm::hybrid
