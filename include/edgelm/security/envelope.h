// DSSE envelopes (github.com/secure-systems-lab/dsse): a payload, its type, and signatures over
// the pre-authentication encoding PAE(type, payload). The payload is parsed only after the
// signatures check out, so no JSON canonicalization is involved.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "edgelm/error.h"
#include "edgelm/security/keys.h"

namespace edgelm::security {

struct EnvelopeSignature {
  std::string key_id;
  std::vector<uint8_t> signature;
};

struct Envelope {
  std::string payload_type;
  std::string payload;  // raw bytes (base64 in JSON)
  std::vector<EnvelopeSignature> signatures;
};

// "DSSEv1 <len(type)> <type> <len(payload)> <payload>"
std::string pre_authentication_encoding(std::string_view payload_type, std::string_view payload);

Envelope sign_envelope(std::string payload_type, std::string payload,
                       std::span<const SigningKey* const> keys);
std::string envelope_to_json(const Envelope& envelope);
// `source` (a file name) prefixes errors.
Result<Envelope> parse_envelope(std::string_view json_text, std::string_view source);

// Trusted keys by key id.
using KeyRing = std::map<std::string, PublicKey>;

// Checks the payload type and that at least `threshold` distinct keys of `trusted` made a valid
// signature. The kSecurity error lists what was wrong with each signature (untrusted key, bad
// signature, duplicate).
Status verify_envelope(const Envelope& envelope, std::string_view expected_type, const KeyRing& trusted,
                       size_t threshold, std::string_view source);

}  // namespace edgelm::security
