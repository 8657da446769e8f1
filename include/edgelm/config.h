// The small JSON config every edgelm command accepts, e.g.
//   {"quant_bits": 8, "use_mmap": true, "provider": "CPUExecutionProvider", "threads": 2}
// Unknown keys, wrong types and bad values are errors that name the key and list the valid choices.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "edgelm/error.h"
#include "edgelm/tensor_type.h"

namespace edgelm {

struct Config {
  int quant_bits = 0;    // 0: keep stored types; 8 or 4: quantize wider weights at load time
  bool use_mmap = true;  // map tensor data read-only instead of reading it into memory
  bool repack = true;    // copy q8_0/q4_0 matmul weights into the CPU's fastest layout at load
  std::string provider = "cpu";  // execution provider; normalized to its short name
  int threads = 0;               // 0: one per available core
  int32_t ctx = 0;               // context length; 0: the model's training length, capped at 4096
  int32_t batch = 512;           // prompt tokens evaluated per forward pass
  bool context_shift = false;  // when the context is full: shift (drop old tokens) instead of error
  TensorType kv_type = TensorType::kF16;  // KV cache elements: "f16" (default), "f32", "q8_0"

  // Trust policy for model files (see include/edgelm/security/model_signing.h).
  bool require_signature = false;         // refuse models without a valid signed manifest
  std::vector<std::string> trusted_keys;  // public key files whose signatures are accepted
  // Encryption at rest: the key file for encrypted models and for everything edgelm writes that
  // can hold user data (empty: $EDGELM_KEY_FILE).
  std::string key_file;
  bool encrypt_at_rest = false;  // encrypt logs, caches and audit records edgelm writes

  // Threads to use: `threads`, or the number of cores available to this process.
  int resolved_threads() const;
};

// Parses config JSON text; `source` (a file name) prefixes error messages.
Result<Config> parse_config(std::string_view json_text, std::string_view source = "config");
// Reads and parses a config file.
Result<Config> load_config(const std::filesystem::path& path);
// The KV cache type named "f16", "f32" or "q8_0" (config key kv_type, --kv-type); `what` prefixes
// errors.
Result<TensorType> parse_kv_type(std::string_view name, std::string_view what = "kv_type");
// A one-line list of the accepted keys with their types, for help texts and errors.
std::string config_keys_help();

}  // namespace edgelm
