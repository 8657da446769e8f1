// Importance-matrix collection (through the model's matmul observer) and its GGUF file format.
#include "edgelm/imatrix.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "edgelm/gguf.h"

namespace edgelm::tools {
namespace {

constexpr uint32_t kVersion = 1;
constexpr std::string_view kSumSuffix = ".in_sum_sq";
constexpr std::string_view kCountSuffix = ".in_count";

std::span<const uint8_t> as_bytes(const float* data, size_t n) {
  return {reinterpret_cast<const uint8_t*>(data), n * sizeof(float)};
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

Error bad_file(const std::filesystem::path& path, const std::string& what) {
  return make_error(ErrorCode::kInvalidFormat, "imatrix '" + path.string() + "': " + what);
}

Result<std::vector<float>> read_f32(const format::GgufFile& file, const format::GgufTensorInfo& t,
                                    const std::filesystem::path& path) {
  if (t.type != TensorType::kF32 || t.ne.size() != 1) {
    return bad_file(path, "tensor '" + t.name + "' must be a 1-D F32 tensor");
  }
  std::vector<float> v(t.n_elements);
  const auto bytes = file.tensor_data(t);
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

}  // namespace

Status ImportanceMatrix::add(std::string_view tensor, const float* x, int64_t rows,
                             int64_t n_cols) {
  auto it = entries.find(tensor);
  if (it == entries.end()) {
    it = entries.emplace(std::string(tensor), Entry{}).first;
    it->second.sum_sq.assign(static_cast<size_t>(n_cols), 0.0);
  } else if (static_cast<int64_t>(it->second.sum_sq.size()) != n_cols) {
    return make_error(ErrorCode::kInvalidArgument, "imatrix: tensor '" + std::string(tensor) +
                                                       "' has " + std::to_string(n_cols) +
                                                       " input columns, earlier " +
                                                       std::to_string(it->second.sum_sq.size()));
  }
  Entry& e = it->second;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * n_cols;
    for (int64_t c = 0; c < n_cols; ++c)
      e.sum_sq[static_cast<size_t>(c)] += double{row[c]} * row[c];
  }
  e.count += rows;
  return {};
}

const ImportanceMatrix::Entry* ImportanceMatrix::find(std::string_view tensor) const {
  const auto it = entries.find(tensor);
  return it == entries.end() ? nullptr : &it->second;
}

std::vector<float> ImportanceMatrix::mean_sq(std::string_view tensor) const {
  const Entry* e = find(tensor);
  if (e == nullptr || e->count == 0) return {};
  std::vector<float> mean(e->sum_sq.size());
  for (size_t i = 0; i < mean.size(); ++i) {
    mean[i] = static_cast<float>(e->sum_sq[i] / static_cast<double>(e->count));
  }
  return mean;
}

Status save_imatrix(const ImportanceMatrix& imatrix, const std::filesystem::path& path) {
  format::GgufWriter writer;
  writer.set("general.type", format::GgufValue::string("imatrix"));
  writer.set("edgelm.imatrix.version", format::GgufValue::u32(kVersion));
  writer.set("edgelm.imatrix.model", format::GgufValue::string(imatrix.model_name));
  writer.set("edgelm.imatrix.dataset", format::GgufValue::string(imatrix.dataset));
  writer.set("edgelm.imatrix.n_tokens",
             format::GgufValue::u64(static_cast<uint64_t>(imatrix.n_tokens)));
  writer.set("edgelm.imatrix.n_ctx", format::GgufValue::u32(static_cast<uint32_t>(imatrix.n_ctx)));
  for (const auto& [name, e] : imatrix.entries) {
    std::vector<float> sums(e.sum_sq.begin(), e.sum_sq.end());
    const float count = static_cast<float>(e.count);
    EDGELM_CHECK(writer.add_tensor(name + std::string(kSumSuffix), TensorType::kF32,
                                   {static_cast<uint64_t>(sums.size())},
                                   as_bytes(sums.data(), sums.size())));
    EDGELM_CHECK(writer.add_tensor(name + std::string(kCountSuffix), TensorType::kF32, {1},
                                   as_bytes(&count, 1)));
  }
  return writer.write(path);
}

Result<ImportanceMatrix> load_imatrix(const std::filesystem::path& path) {
  EDGELM_TRY(format::GgufFile file, format::GgufFile::open(path));
  EDGELM_TRY(std::string type, file.get_string_or("general.type", ""));
  if (type != "imatrix")
    return bad_file(path, "general.type is '" + type + "', expected 'imatrix'");
  EDGELM_TRY(uint64_t version, file.get_uint("edgelm.imatrix.version"));
  if (version != kVersion) {
    return make_error(ErrorCode::kUnsupported, "imatrix '" + path.string() + "': version " +
                                                   std::to_string(version) + " (this build reads " +
                                                   std::to_string(kVersion) + ")");
  }
  ImportanceMatrix m;
  EDGELM_TRY(m.model_name, file.get_string_or("edgelm.imatrix.model", ""));
  EDGELM_TRY(m.dataset, file.get_string_or("edgelm.imatrix.dataset", ""));
  EDGELM_TRY(uint64_t n_tokens, file.get_uint_or("edgelm.imatrix.n_tokens", 0));
  EDGELM_TRY(uint64_t n_ctx, file.get_uint_or("edgelm.imatrix.n_ctx", 0));
  m.n_tokens = static_cast<int64_t>(std::min<uint64_t>(n_tokens, INT64_MAX));
  m.n_ctx = static_cast<int32_t>(std::min<uint64_t>(n_ctx, INT32_MAX));
  for (const auto& t : file.tensors()) {
    if (ends_with(t.name, kCountSuffix)) continue;
    if (!ends_with(t.name, kSumSuffix)) return bad_file(path, "unexpected tensor '" + t.name + "'");
    const std::string name = t.name.substr(0, t.name.size() - kSumSuffix.size());
    const format::GgufTensorInfo* count_info = file.find_tensor(name + std::string(kCountSuffix));
    if (count_info == nullptr)
      return bad_file(path,
                      "tensor '" + t.name + "' has no '" + name + std::string(kCountSuffix) + "'");
    EDGELM_TRY(std::vector<float> sums, read_f32(file, t, path));
    EDGELM_TRY(std::vector<float> count, read_f32(file, *count_info, path));
    if (count.size() != 1 || !(count[0] >= 1.0f) || !(count[0] < 9.0e18f)) {
      return bad_file(path, "tensor '" + count_info->name + "' must hold one count >= 1");
    }
    ImportanceMatrix::Entry e;
    for (float s : sums) {
      if (!std::isfinite(s) || s < 0.0f)
        return bad_file(path, "tensor '" + t.name + "' holds a negative or non-finite sum");
      e.sum_sq.push_back(s);
    }
    e.count = static_cast<int64_t>(count[0]);
    m.entries.emplace(name, std::move(e));
  }
  return m;
}

Result<ImportanceMatrix> collect_imatrix(const model::Model& model, std::span<const int32_t> tokens,
                                         const ImatrixOptions& options) {
  if (options.n_ctx < 1) {
    return make_error(ErrorCode::kInvalidArgument, "imatrix: n_ctx must be >= 1");
  }
  if (tokens.empty())
    return make_error(ErrorCode::kInvalidArgument, "imatrix: no calibration tokens");
  ImportanceMatrix imatrix;
  imatrix.n_ctx = options.n_ctx;
  Status observed;
  model::ContextOptions copts;
  copts.n_ctx = options.n_ctx;
  copts.n_threads = std::max(1, options.n_threads);
  copts.n_batch = options.n_batch;
  copts.kv_type = options.kv_type;
  copts.matmul_observer = [&](std::string_view name, const float* x, int64_t n_rows,
                              int64_t n_cols) {
    if (observed) observed = imatrix.add(name, x, n_rows, n_cols);
  };
  EDGELM_TRY(auto ctx, model::Context::create(model, copts));
  for (size_t start = 0; start < tokens.size(); start += static_cast<size_t>(options.n_ctx)) {
    const size_t n = std::min(tokens.size() - start, static_cast<size_t>(options.n_ctx));
    ctx->truncate(0);
    EDGELM_TRY(auto logits, ctx->decode(tokens.subspan(start, n), true));
    (void)logits;
    EDGELM_CHECK(observed);
    imatrix.n_tokens += static_cast<int64_t>(n);
  }
  return imatrix;
}

}  // namespace edgelm::tools
