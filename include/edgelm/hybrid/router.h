// The hybrid privacy router: the same OpenAI-compatible chat API as `edgelm serve`, answered on
// the device unless the local model is unsure, and then only anonymized and with consent.
//
// For each POST /v1/chat/completions:
//   1. the messages are redacted (Redactor + a per-request Vault);
//   2. the local model answers the original messages (plus the user's local profile) and its
//      confidence is measured from the logits it sampled from (confidence.h);
//   3. below the policy's threshold, with consent (X-Edgelm-Consent: yes|no header, else the
//      per-user table by API key name or "user", else the policy default) and within the
//      upstream's per-minute budget, only the redacted messages go upstream; placeholders in the
//      answer are restored (also when streaming, across chunks);
//   4. otherwise, or when the upstream fails (refused, slow, 500, garbage), the local answer is
//      returned, marked degraded. Every answer carries the extension field
//        "edgelm": {"route": "local"|"upstream"|"cache", "degraded": bool, "reason": "...",
//                   "confidence": {...}, "entities": {"EMAIL": 1, ...}, "consent": "..."}
//      (in the last chunk of a stream);
//   5. upstream answers are cached on the redacted request (response_cache.h);
//   6. every request sent upstream is audited (audit_log.h).
// The router is a serve::ChatHandler, so `edgelm serve --hybrid` is a Server with its handler.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "edgelm/error.h"
#include "edgelm/hybrid/audit_log.h"
#include "edgelm/hybrid/hybrid_policy.h"
#include "edgelm/hybrid/profile_store.h"
#include "edgelm/hybrid/redactor.h"
#include "edgelm/hybrid/response_cache.h"
#include "edgelm/hybrid/upstream_client.h"
#include "edgelm/serve/server.h"

namespace edgelm::hybrid {

inline constexpr const char* kConsentHeader = "X-Edgelm-Consent";

class HybridRouter {
 public:
  // Opens the cache, audit log and profiles the policy names; `cache_clock` (tests) replaces the
  // wall clock the cache's TTL is measured with.
  static Result<std::unique_ptr<HybridRouter>> create(HybridPolicy policy,
                                                      ResponseCache::Clock cache_clock = {});
  ~HybridRouter();

  // Answers one request; never throws.
  serve::ChatReply handle(const serve::ChatCall& call);
  // handle() as a handler for ServerOptions::chat_handler (the router must outlive the server).
  serve::ChatHandler handler() {
    return [this](const serve::ChatCall& call) { return handle(call); };
  }

  const HybridPolicy& policy() const { return policy_; }
  const AuditLog* audit_log() const { return audit_.get(); }

 private:
  struct Request;
  HybridRouter() = default;
  serve::ChatReply handle_parsed(const serve::ChatCall& call, Request& request);

  HybridPolicy policy_;
  std::unique_ptr<Redactor> redactor_;
  std::mutex redactor_mutex_;
  std::unique_ptr<UpstreamClient> upstream_;
  std::shared_ptr<const security::SecretKey> key_;
  std::unique_ptr<ResponseCache> cache_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<ProfileStore> profiles_;
};

}  // namespace edgelm::hybrid
