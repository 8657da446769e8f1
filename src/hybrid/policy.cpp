#include <cmath>
#include <string>

#include "edgelm/hybrid/redactor.h"

namespace edgelm::hybrid {
namespace {

constexpr std::array<std::string_view, 5> kActionNames = {"placeholder", "mask", "hash", "drop",
                                                          "keep"};

Result<RedactionAction> parse_action(const nlohmann::json& value, std::string_view where) {
  if (value.is_string()) {
    const auto& name = value.get_ref<const std::string&>();
    for (size_t i = 0; i < kActionNames.size(); ++i) {
      if (kActionNames[i] == name) return static_cast<RedactionAction>(i);
    }
  }
  return make_error(ErrorCode::kInvalidArgument,
                    std::string(where) +
                        ": expected one of placeholder, mask, hash, drop, keep, got " +
                        value.dump());
}

}  // namespace

std::string_view redaction_action_name(RedactionAction action) {
  return kActionNames[static_cast<size_t>(action)];
}

std::string_view name_signals_name(NameSignals signals) {
  return kNameSignalsNames[static_cast<size_t>(signals)];
}

Result<NameSignals> parse_name_signals(std::string_view name, std::string_view what) {
  for (size_t i = 0; i < kNameSignalsNames.size(); ++i) {
    if (kNameSignalsNames[i] == name) return static_cast<NameSignals>(i);
  }
  return make_error(ErrorCode::kInvalidArgument,
                    std::string(what) +
                        ": expected one of context, gazetteer, both, model, all, got '" +
                        std::string(name) + "'");
}

bool uses_context(NameSignals s) {
  return s == NameSignals::kContext || s == NameSignals::kBoth || s == NameSignals::kAll;
}
bool uses_gazetteer(NameSignals s) {
  return s == NameSignals::kGazetteer || s == NameSignals::kBoth || s == NameSignals::kAll;
}
bool uses_model(NameSignals s) {
  return s == NameSignals::kModel || s == NameSignals::kAll;
}

Result<RedactionPolicy> RedactionPolicy::from_json(const nlohmann::json& json,
                                                   std::string_view source) {
  const std::string prefix = std::string(source) + ": ";
  if (!json.is_object())
    return make_error(ErrorCode::kInvalidArgument, prefix + "redaction policy must be an object");
  RedactionPolicy policy;
  for (const auto& [key, value] : json.items()) {
    if (key == "default") {
      EDGELM_TRY(auto action, parse_action(value, prefix + "'default'"));
      policy.actions.fill(action);
    } else if (key == "entities" || key == "phone_regions" || key == "hash_salt" ||
               key == "mask_keep_last" || key == "name_signals" || key == "name_model" ||
               key == "name_model_threshold") {
      continue;  // below, after "default" so per-entity actions win whatever the key order
    } else {
      return make_error(
          ErrorCode::kInvalidArgument,
          prefix + "unknown key '" + key +
              "' (known: default, entities, phone_regions, hash_salt, mask_keep_last, "
              "name_signals, name_model, name_model_threshold)");
    }
  }
  if (auto it = json.find("entities"); it != json.end()) {
    if (!it->is_object())
      return make_error(ErrorCode::kInvalidArgument, prefix + "'entities' must be an object");
    for (const auto& [name, value] : it->items()) {
      auto type = parse_entity_type(name);
      if (!type)
        return make_error(ErrorCode::kInvalidArgument,
                          prefix + "'entities': unknown entity type '" + name + "'");
      EDGELM_TRY(auto action, parse_action(value, prefix + "'entities." + name + "'"));
      policy.actions[static_cast<size_t>(*type)] = action;
    }
  }
  if (auto it = json.find("phone_regions"); it != json.end()) {
    if (!it->is_array())
      return make_error(ErrorCode::kInvalidArgument, prefix + "'phone_regions' must be an array");
    policy.phone_regions.clear();
    for (const auto& region : *it) {
      if (!region.is_string() || region.get_ref<const std::string&>().size() != 2) {
        return make_error(
            ErrorCode::kInvalidArgument,
            prefix + "'phone_regions': expected two-letter region codes, got " + region.dump());
      }
      policy.phone_regions.push_back(region.get<std::string>());
    }
  }
  if (auto it = json.find("hash_salt"); it != json.end()) {
    if (!it->is_string())
      return make_error(ErrorCode::kInvalidArgument, prefix + "'hash_salt' must be a string");
    policy.hash_salt = it->get<std::string>();
  }
  if (auto it = json.find("mask_keep_last"); it != json.end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > 8) {
      return make_error(ErrorCode::kInvalidArgument,
                        prefix + "'mask_keep_last' must be an integer in [0, 8]");
    }
    policy.mask_keep_last = it->get<int>();
  }
  if (auto it = json.find("name_signals"); it != json.end()) {
    if (!it->is_string()) {
      return make_error(ErrorCode::kInvalidArgument,
                        prefix +
                            "'name_signals': expected one of context, gazetteer, both, model, "
                            "all, got " +
                            it->dump());
    }
    EDGELM_TRY(policy.name_signals,
               parse_name_signals(it->get_ref<const std::string&>(), prefix + "'name_signals'"));
  }
  if (auto it = json.find("name_model"); it != json.end()) {
    if (!it->is_string())
      return make_error(ErrorCode::kInvalidArgument,
                        prefix + "'name_model' must be a string (a GGUF model path)");
    policy.name_model = it->get<std::string>();
  }
  if (auto it = json.find("name_model_threshold"); it != json.end()) {
    if (!it->is_number() || !std::isfinite(it->get<double>()))
      return make_error(ErrorCode::kInvalidArgument,
                        prefix + "'name_model_threshold' must be a finite number (nats)");
    policy.name_model_threshold = it->get<double>();
  }
  // A model signal without 'name_model' is accepted here (a command line may name the model);
  // Redactor::create refuses it.
  return policy;
}

}  // namespace edgelm::hybrid
