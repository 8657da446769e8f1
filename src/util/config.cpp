#include "edgelm/config.h"

#include <sched.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <vector>

namespace edgelm {
namespace {

using nlohmann::json;

struct KeySpec {
  std::string_view name;
  std::string_view type;  // shown in errors and help
  std::function<Status(const json&, Config&, const std::string& where)> apply;
};

Error bad_value(const std::string& where, std::string_view what) {
  return make_error(ErrorCode::kInvalidArgument, where + ": " + std::string(what));
}

Result<int64_t> integer_in(const json& v, const std::string& where, int64_t lo, int64_t hi) {
  if (!v.is_number_integer()) return bad_value(where, "expected an integer, got " + std::string(v.type_name()));
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi) {
    return bad_value(where, std::to_string(x) + " is out of range [" + std::to_string(lo) + ", " +
                                std::to_string(hi) + "]");
  }
  return x;
}

// Accepted provider spellings mapped to the short name; ONNX Runtime's names are accepted so
// configs written for it work unchanged.
constexpr std::pair<std::string_view, std::string_view> kProviders[] = {
    {"CPUExecutionProvider", "cpu"},
    {"cpu", "cpu"},
};

}  // namespace

Result<TensorType> parse_kv_type(std::string_view name, std::string_view what) {
  if (name == "f16") return TensorType::kF16;
  if (name == "f32") return TensorType::kF32;
  if (name == "q8_0") return TensorType::kQ8_0;
  return make_error(ErrorCode::kInvalidArgument, std::string(what) + ": unknown KV cache type '" +
                                                     std::string(name) +
                                                     "' (valid: f16, f32, q8_0)");
}

namespace {

const std::vector<KeySpec>& key_specs() {
  static const std::vector<KeySpec> specs = {
      {"quant_bits", "integer: 0, 4 or 8",
       [](const json& v, Config& c, const std::string& where) -> Status {
         EDGELM_TRY(int64_t bits, integer_in(v, where, 0, 8));
         if (bits != 0 && bits != 4 && bits != 8) {
           return bad_value(where, std::to_string(bits) + " is not supported (valid: 0, 4, 8)");
         }
         c.quant_bits = static_cast<int>(bits);
         return {};
       }},
      {"use_mmap", "boolean",
       [](const json& v, Config& c, const std::string& where) -> Status {
         if (!v.is_boolean()) return bad_value(where, "expected true or false, got " + std::string(v.type_name()));
         c.use_mmap = v.get<bool>();
         return {};
       }},
      {"repack", "boolean",
       [](const json& v, Config& c, const std::string& where) -> Status {
         if (!v.is_boolean()) return bad_value(where, "expected true or false, got " + std::string(v.type_name()));
         c.repack = v.get<bool>();
         return {};
       }},
      {"provider", "string: CPUExecutionProvider or cpu",
       [](const json& v, Config& c, const std::string& where) -> Status {
         if (!v.is_string()) return bad_value(where, "expected a string, got " + std::string(v.type_name()));
         const std::string name = v.get<std::string>();
         for (const auto& [spelling, short_name] : kProviders) {
           if (name == spelling) {
             c.provider = std::string(short_name);
             return {};
           }
         }
         return bad_value(where, "unknown provider '" + name + "' (valid: CPUExecutionProvider, cpu)");
       }},
      {"threads", "integer >= 0 (0: all cores)",
       [](const json& v, Config& c, const std::string& where) -> Status {
         EDGELM_TRY(int64_t n, integer_in(v, where, 0, 1024));
         c.threads = static_cast<int>(n);
         return {};
       }},
      {"ctx", "integer >= 0 (0: model default)",
       [](const json& v, Config& c, const std::string& where) -> Status {
         EDGELM_TRY(int64_t n, integer_in(v, where, 0, 1 << 24));
         c.ctx = static_cast<int32_t>(n);
         return {};
       }},
      {"batch", "integer >= 1",
       [](const json& v, Config& c, const std::string& where) -> Status {
         EDGELM_TRY(int64_t n, integer_in(v, where, 1, 1 << 16));
         c.batch = static_cast<int32_t>(n);
         return {};
       }},
      {"context_shift", "boolean",
       [](const json& v, Config& c, const std::string& where) -> Status {
         if (!v.is_boolean()) return bad_value(where, "expected true or false, got " + std::string(v.type_name()));
         c.context_shift = v.get<bool>();
         return {};
       }},
      {"kv_type", "string: f16, f32 or q8_0",
       [](const json& v, Config& c, const std::string& where) -> Status {
         if (!v.is_string()) return bad_value(where, "expected a string, got " + std::string(v.type_name()));
         EDGELM_TRY(c.kv_type, parse_kv_type(v.get<std::string>(), where));
         return {};
       }},
      {"require_signature", "boolean",
       [](const json& v, Config& c, const std::string& where) -> Status {
         if (!v.is_boolean()) return bad_value(where, "expected true or false, got " + std::string(v.type_name()));
         c.require_signature = v.get<bool>();
         return {};
       }},
      {"trusted_keys", "array of public key file paths",
       [](const json& v, Config& c, const std::string& where) -> Status {
         if (!v.is_array()) return bad_value(where, "expected an array of strings, got " + std::string(v.type_name()));
         c.trusted_keys.clear();
         for (const auto& item : v) {
           if (!item.is_string()) return bad_value(where, "expected an array of strings, found " + std::string(item.type_name()));
           c.trusted_keys.push_back(item.get<std::string>());
         }
         return {};
       }},
      {"key_file", "string: path of the encryption key file",
       [](const json& v, Config& c, const std::string& where) -> Status {
         if (!v.is_string()) return bad_value(where, "expected a string, got " + std::string(v.type_name()));
         c.key_file = v.get<std::string>();
         return {};
       }},
      {"encrypt_at_rest", "boolean",
       [](const json& v, Config& c, const std::string& where) -> Status {
         if (!v.is_boolean()) return bad_value(where, "expected true or false, got " + std::string(v.type_name()));
         c.encrypt_at_rest = v.get<bool>();
         return {};
       }},
      // Read by `edgelm update` itself; other commands accept the same file and skip it.
      {"update", "object (edgelm update settings)",
       [](const json& v, Config&, const std::string& where) -> Status {
         if (!v.is_object()) return bad_value(where, "expected an object, got " + std::string(v.type_name()));
         return {};
       }},
  };
  return specs;
}

}  // namespace

int Config::resolved_threads() const {
  if (threads > 0) return threads;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

std::string config_keys_help() {
  std::string out;
  for (const auto& spec : key_specs()) {
    out += (out.empty() ? "" : ", ") + std::string(spec.name) + " (" + std::string(spec.type) + ")";
  }
  return out;
}

Result<Config> parse_config(std::string_view json_text, std::string_view source) {
  const std::string src(source);
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::parse_error& e) {
    return make_error(ErrorCode::kInvalidArgument,
                      src + ": not valid JSON (at byte " + std::to_string(e.byte) + ")");
  }
  if (!root.is_object()) {
    return make_error(ErrorCode::kInvalidArgument,
                      src + ": expected a JSON object, got " + std::string(root.type_name()));
  }
  Config config;
  for (const auto& item : root.items()) {
    const std::string& key = item.key();
    const json& value = item.value();
    const auto& specs = key_specs();
    auto it = std::find_if(specs.begin(), specs.end(), [&](const KeySpec& s) { return s.name == key; });
    if (it == specs.end()) {
      return make_error(ErrorCode::kInvalidArgument,
                        src + ": unknown key '" + key + "' (valid keys: " + config_keys_help() + ")");
    }
    EDGELM_CHECK(it->apply(value, config, src + ": key '" + key + "'"));
  }
  return config;
}

Result<Config> load_config(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, "cannot open config file '" + path.string() + "'");
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().size() > (1u << 20)) {
    return make_error(ErrorCode::kOutOfRange, "config file '" + path.string() + "' is larger than 1 MiB");
  }
  return parse_config(text.str(), path.string());
}

}  // namespace edgelm
