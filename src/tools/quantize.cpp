#include "edgelm/quantize.h"

#include <algorithm>
#include <vector>

#include "edgelm/imatrix.h"
#include "edgelm/quant.h"
#include "edgelm/thread_pool.h"

namespace edgelm::tools {
namespace {

// llama.cpp's general.file_type (LLAMA_FTYPE_*) for a whole-model target type.
uint32_t file_type_for(TensorType type) {
  switch (type) {
    case TensorType::kF32: return 0;
    case TensorType::kF16: return 1;
    case TensorType::kQ4_0: return 2;
    case TensorType::kQ4_1: return 3;
    case TensorType::kQ8_0: return 7;
    case TensorType::kQ5_0: return 8;
    case TensorType::kQ5_1: return 9;
    case TensorType::kQ2_K: return 10;
    case TensorType::kQ3_K: return 11;  // Q3_K_S: every matrix Q3_K
    case TensorType::kQ4_K: return 14;  // Q4_K_S
    case TensorType::kQ5_K: return 16;  // Q5_K_S
    case TensorType::kQ6_K: return 18;
    case TensorType::kBF16: return 32;
    case TensorType::kTQ1_0: return 36;
    case TensorType::kTQ2_0: return 37;
    default: return 0;
  }
}

// Next type to try when rows are not a whole number of `type` blocks.
TensorType fallback_for(TensorType type) {
  switch (type) {
    case TensorType::kQ2_K:
    case TensorType::kQ3_K:
    case TensorType::kQ4_K: return TensorType::kQ5_0;
    case TensorType::kQ5_K: return TensorType::kQ5_1;
    case TensorType::kQ6_K: return TensorType::kQ8_0;
    default: return TensorType::kF16;
  }
}

bool is_matrix(const format::GgufTensorInfo& info) {
  return info.ne.size() >= 2 && info.ne[1] > 1 && info.name.size() > 7 &&
         info.name.compare(info.name.size() - 7, 7, ".weight") == 0;
}

uint64_t bytes_per_element_x1000(TensorType t) {
  const auto& traits = tensor_type_traits(t);
  return 1000ull * traits.block_bytes / traits.block_size;
}

// Layer index of a "blk.N." tensor, or -1.
int32_t layer_of(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  int32_t layer = 0;
  size_t i = 4;
  for (; i < name.size() && name[i] >= '0' && name[i] <= '9' && layer < 100000; ++i) layer = layer * 10 + (name[i] - '0');
  return i > 4 && i < name.size() && name[i] == '.' ? layer : -1;
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// llama.cpp's use_more_bits(): the first and last eighth of the layers, and every third between.
bool layer_gets_more_bits(int32_t layer, int32_t n_layer) {
  return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

}  // namespace

Result<QuantRecipe> parse_quant_recipe(std::string_view name) {
  if (name == "q4_k_m" || name == "Q4_K_M") return QuantRecipe{"q4_k_m", TensorType::kQ4_K, TensorType::kQ6_K, 15};
  if (name == "q5_k_m" || name == "Q5_K_M") return QuantRecipe{"q5_k_m", TensorType::kQ5_K, TensorType::kQ6_K, 17};
  auto type = parse_tensor_type(name);
  if (!type || !tensor::can_quantize(*type)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "unknown quantization type '" + std::string(name) +
                          "' (valid: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k, "
                          "q4_k_m, q5_k_m, tq1_0, tq2_0)");
  }
  return QuantRecipe{std::string(tensor_type_name(*type)), *type, *type, file_type_for(*type)};
}

TensorType choose_tensor_type(const format::GgufTensorInfo& info, const QuantRecipe& recipe, int32_t n_layer) {
  if (!is_matrix(info)) return info.type;
  const int32_t layer = layer_of(info.name);
  const bool favoured = info.name == "output.weight" ||
                        ((ends_with(info.name, ".attn_v.weight") || ends_with(info.name, ".ffn_down.weight")) &&
                         layer >= 0 && layer_gets_more_bits(layer, n_layer));
  TensorType type = favoured ? recipe.more_bits : recipe.base;
  while (info.ne[0] % tensor_type_traits(type).block_size != 0) type = fallback_for(type);
  // Never widen: a tensor already narrower than the choice keeps its type.
  if (bytes_per_element_x1000(info.type) <= bytes_per_element_x1000(type)) return info.type;
  return type;
}

Result<QuantRecipe> recipe_for_quant_bits(int bits) {
  if (bits == 8) return parse_quant_recipe("q8_0");
  if (bits == 4) return parse_quant_recipe("q4_0");
  return make_error(ErrorCode::kInvalidArgument,
                    "quant_bits: " + std::to_string(bits) + " is not supported (valid: 8, 4)");
}

namespace {

// The per-column importance of a tensor whose rows have row_len elements: empty when the imatrix
// has no entry for it.
Result<std::vector<float>> importance_for(const format::GgufTensorInfo& info, const QuantizeOptions& options) {
  if (options.imatrix == nullptr) return std::vector<float>{};
  std::vector<float> importance = options.imatrix->mean_sq(info.name);
  if (!importance.empty() && importance.size() != info.ne[0]) {
    return make_error(ErrorCode::kInvalidArgument,
                      "quantize: imatrix entry for tensor '" + info.name + "' has " +
                          std::to_string(importance.size()) + " columns, the tensor's rows have " +
                          std::to_string(info.ne[0]) + " elements (imatrix of another model?)");
  }
  return importance;
}

// Quantizes every tensor of `in` into a writer holding the new file.
Result<format::GgufWriter> quantize_into_writer(const format::GgufFile& in, const QuantizeOptions& options,
                                                QuantizeReport& report) {
  const QuantRecipe& recipe = options.recipe;
  if (!tensor::can_quantize(recipe.base) || !tensor::can_quantize(recipe.more_bits)) {
    return make_error(ErrorCode::kUnsupported, "quantize: cannot quantize to " + recipe.name);
  }
  int32_t n_layer = 0;
  for (const auto& t : in.tensors()) n_layer = std::max(n_layer, layer_of(t.name) + 1);
  format::GgufWriter writer;
  writer.set_alignment(in.alignment());
  for (const auto& [key, value] : in.metadata()) writer.set(key, value);
  writer.set("general.file_type", format::GgufValue::u32(recipe.file_type));
  writer.set("general.quantization_version", format::GgufValue::u32(2));

  ThreadPool pool(std::max(1, options.n_threads));
  const auto& tensors = in.tensors();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& info = tensors[i];
    TensorType to = choose_tensor_type(info, recipe, n_layer);
    const bool keep = std::any_of(options.keep_f16.begin(), options.keep_f16.end(),
                                  [&](const std::string& k) { return info.name.find(k) != std::string::npos; });
    if (keep && is_matrix(info) && bytes_per_element_x1000(info.type) > 2000) to = TensorType::kF16;
    if (keep && is_matrix(info) && bytes_per_element_x1000(info.type) <= 2000) to = info.type;

    std::span<const uint8_t> src = in.tensor_data(info);
    std::vector<uint8_t> converted;
    bool used_imatrix = false;
    if (to != info.type) {
      if (!tensor::can_dequantize(info.type)) {
        return make_error(ErrorCode::kUnsupported, "quantize: tensor '" + info.name + "' has type " +
                                                       std::string(tensor_type_name(info.type)) +
                                                       " which cannot be converted");
      }
      EDGELM_TRY(const std::vector<float> importance, importance_for(info, options));
      used_imatrix = !importance.empty();
      const float* weights = used_imatrix ? importance.data() : nullptr;
      const int64_t row_len = static_cast<int64_t>(info.ne[0]);
      const int64_t n_rows = static_cast<int64_t>(info.n_elements / info.ne[0]);
      EDGELM_TRY(uint64_t out_row_bytes, tensor_bytes(to, info.ne[0]));
      const uint64_t in_row_bytes = info.n_bytes / n_rows;
      converted.resize(out_row_bytes * n_rows);
      std::vector<Status> status(pool.size());
      pool.run([&](int thread, int n_threads) {
        std::vector<float> row(row_len);
        for (int64_t r = thread; r < n_rows; r += n_threads) {
          Status s = tensor::dequantize_row(info.type, src.data() + r * in_row_bytes, row.data(), row_len);
          if (s) s = tensor::quantize_row(to, row.data(), converted.data() + r * out_row_bytes, row_len, weights);
          if (!s) {
            status[thread] = std::move(s);
            return;
          }
        }
      });
      for (auto& s : status) {
        if (!s) return make_error(s.error().code, "quantize: tensor '" + info.name + "': " + s.error().message);
      }
      src = converted;
    }
    EDGELM_CHECK(writer.add_tensor(info.name, to, info.ne, src));
    report.tensors.push_back({info.name, info.type, to, info.n_bytes, src.size(), used_imatrix});
    report.bytes_before += info.n_bytes;
    report.bytes_after += src.size();
    if (options.progress) options.progress(i + 1, tensors.size());
  }
  return writer;
}

}  // namespace

Result<QuantizeReport> quantize_model(const format::GgufFile& in, const std::filesystem::path& out,
                                      const QuantizeOptions& options) {
  QuantizeReport report;
  EDGELM_TRY(format::GgufWriter writer, quantize_into_writer(in, options, report));
  EDGELM_CHECK(writer.write(out));
  return report;
}

Result<std::vector<uint8_t>> quantize_model_to_bytes(const format::GgufFile& in, const QuantizeOptions& options,
                                                     QuantizeReport* report) {
  QuantizeReport local;
  EDGELM_TRY(format::GgufWriter writer, quantize_into_writer(in, options, report != nullptr ? *report : local));
  return writer.to_bytes();
}

}  // namespace edgelm::tools
