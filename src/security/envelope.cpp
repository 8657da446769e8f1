#include "edgelm/security/envelope.h"

#include <nlohmann/json.hpp>
#include <set>

#include "edgelm/security/hash.h"
#include "security/internal.h"

namespace edgelm::security {
using nlohmann::json;

std::string pre_authentication_encoding(std::string_view payload_type, std::string_view payload) {
  std::string out = "DSSEv1 ";
  out += std::to_string(payload_type.size());
  out += ' ';
  out += payload_type;
  out += ' ';
  out += std::to_string(payload.size());
  out += ' ';
  out += payload;
  return out;
}

Envelope sign_envelope(std::string payload_type, std::string payload,
                       std::span<const SigningKey* const> keys) {
  Envelope envelope{std::move(payload_type), std::move(payload), {}};
  const std::string pae = pre_authentication_encoding(envelope.payload_type, envelope.payload);
  for (const SigningKey* key : keys) {
    const Signature sig = key->sign(detail::as_bytes(pae));
    envelope.signatures.push_back(
        {key->public_key().key_id(), std::vector<uint8_t>(sig.begin(), sig.end())});
  }
  return envelope;
}

std::string envelope_to_json(const Envelope& envelope) {
  json sigs = json::array();
  for (const auto& s : envelope.signatures)
    sigs.push_back({{"keyid", s.key_id}, {"sig", to_base64(s.signature)}});
  const json doc = {{"payloadType", envelope.payload_type},
                    {"payload", to_base64(detail::as_bytes(envelope.payload))},
                    {"signatures", std::move(sigs)}};
  return doc.dump(2) + "\n";
}

Result<Envelope> parse_envelope(std::string_view json_text, std::string_view source) {
  const std::string where(source);
  const json doc = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  auto bad = [&](const std::string& what) {
    return make_error(ErrorCode::kInvalidFormat, where + ": not a DSSE envelope: " + what);
  };
  if (!doc.is_object()) return bad("expected a JSON object");
  if (!doc.contains("payloadType") || !doc["payloadType"].is_string())
    return bad("'payloadType' must be a string");
  if (!doc.contains("payload") || !doc["payload"].is_string())
    return bad("'payload' must be a base64 string");
  if (!doc.contains("signatures") || !doc["signatures"].is_array())
    return bad("'signatures' must be an array");
  Envelope envelope;
  envelope.payload_type = doc["payloadType"].get<std::string>();
  EDGELM_TRY(auto payload, from_base64(doc["payload"].get<std::string>(), where + ": payload"));
  envelope.payload.assign(payload.begin(), payload.end());
  for (const json& s : doc["signatures"]) {
    if (!s.is_object() || !s.contains("keyid") || !s["keyid"].is_string() || !s.contains("sig") ||
        !s["sig"].is_string()) {
      return bad("each signature needs string 'keyid' and 'sig'");
    }
    EDGELM_TRY(auto sig, from_base64(s["sig"].get<std::string>(), where + ": signature"));
    envelope.signatures.push_back({s["keyid"].get<std::string>(), std::move(sig)});
  }
  return envelope;
}

Status verify_envelope(const Envelope& envelope, std::string_view expected_type,
                       const KeyRing& trusted, size_t threshold, std::string_view source) {
  const std::string where(source);
  if (envelope.payload_type != expected_type) {
    return detail::security_error(where + ": payload type is '" + envelope.payload_type +
                                  "', expected '" + std::string(expected_type) + "'");
  }
  if (threshold == 0)
    return detail::security_error(where + ": a signature threshold of 0 is not allowed");
  const std::string pae = pre_authentication_encoding(envelope.payload_type, envelope.payload);
  std::set<std::string> valid;
  std::string problems;
  for (const auto& s : envelope.signatures) {
    const std::string short_id = s.key_id.substr(0, 16);
    const auto key = trusted.find(s.key_id);
    if (key == trusted.end()) {
      problems += "; key " + short_id + " is not trusted";
      continue;
    }
    Signature sig{};
    if (s.signature.size() != sig.size()) {
      problems += "; key " + short_id + ": malformed signature";
      continue;
    }
    std::copy(s.signature.begin(), s.signature.end(), sig.begin());
    if (!verify_signature(key->second, detail::as_bytes(pae), sig)) {
      problems += "; key " + short_id + ": bad signature";
      continue;
    }
    if (!valid.insert(s.key_id).second)
      problems += "; key " + short_id + ": duplicate signature not counted";
  }
  if (valid.size() >= threshold) return {};
  if (envelope.signatures.empty()) problems = "; no signatures";
  return detail::security_error(where +
                                ": signature check failed: " + std::to_string(valid.size()) +
                                " valid signature(s) from trusted keys, " +
                                std::to_string(threshold) + " required" + problems);
}

}  // namespace edgelm::security
