// Compute kernels used by the forward pass. Each has a scalar reference; fast paths are chosen at
// run time by CPU features (EDGELM_CPU=scalar|avx2|avx512|... forces one) and tested against it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "edgelm/tensor_type.h"
#include "edgelm/thread_pool.h"

namespace edgelm::kernels {

// How the bytes of a weight matrix are arranged.
enum class WeightLayout : uint8_t {
  // Rows of `type` blocks one after another, as stored in GGUF files.
  kRowMajor,
  // RepackedMatrix's layout for q8_0 and q4_0 on AVX-512 VNNI: groups of 16 rows; in a group,
  // block by block, the quants as 8 (q8_0) or 4 (q4_0) registers whose 32-bit lane i holds 4
  // quant bytes of row i (q8_0 stored + 128, unsigned), then the 16 rows' f16 block scales.
  kInterleaved16,
};

// A weight matrix of `rows` rows of `cols` elements each in `type` blocks (GGUF ne = [cols,
// rows]). Row-major: row r starts at data + r * row_bytes. Interleaved: see WeightLayout;
// row_bytes is still the size of one row of blocks.
struct MatrixView {
  TensorType type = TensorType::kF32;
  const uint8_t* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  uint64_t row_bytes = 0;
  WeightLayout layout = WeightLayout::kRowMajor;
};

// Weight matrices copied once, at load time, into the layout the active CPU path multiplies
// fastest, in one block of memory of its own (huge pages where the OS grants them, so the
// hardware prefetchers are not stopped at every 4 KiB page as they are in a file mapping).
class RepackedWeights {
 public:
  // Repacks every matrix in `matrices` that the active path multiplies faster in another layout:
  // its view is pointed at the copy, after `replaced` (if set) is called with the old view so
  // that the caller can give the source memory back. Matrices without a faster layout, or all of
  // them when the memory cannot be had, stay as they are.
  static RepackedWeights repack(const std::vector<MatrixView*>& matrices,
                                const std::function<void(const MatrixView&)>& replaced = nullptr);

  RepackedWeights() = default;
  RepackedWeights(RepackedWeights&&) noexcept = default;
  RepackedWeights& operator=(RepackedWeights&&) noexcept = default;

  uint64_t bytes() const { return bytes_; }  // 0: nothing was repacked

 private:
  struct Free {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t, Free> storage_;
  uint64_t bytes_ = 0;
};

// y[t * w.rows + r] = sum_c W[r][c] * x[t * w.cols + c] for t < n_tokens. Never writes x.
void matmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool);

// Copies row `row` of w into dst as floats (embedding lookup).
void get_row(const MatrixView& w, int64_t row, float* dst);

// out[i] = x[i] / sqrt(mean(x^2) + eps) * weight[i]; out may alias x; weight null: no scale.
void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out);

// In-place softmax over n values.
void softmax(float* x, int64_t n);

enum class RopeStyle {
  kNorm,  // rotate adjacent pairs (x[2i], x[2i+1]): llama
  kNeox,  // rotate halves (x[i], x[i + n_rot/2]): qwen2, qwen3, phi3, gemma3
};

// Rotates the first n_rot dims of each of n_heads consecutive vectors of head_dim floats for
// position pos: angle_i = pos * freq_scale * freq_base^(-2i/n_rot) / freq_factors[i]
// (freq_factors may be null: all 1).
void rope(float* x, int n_heads, int head_dim, int n_rot, int32_t pos, float freq_base,
          float freq_scale, const float* freq_factors, RopeStyle style);

// rope() in two steps, so that a position's angles are computed once for every head, q and k,
// and layer: cos_sin[i] = cos(angle_i) and cos_sin[n_rot / 2 + i] = sin(angle_i), i < n_rot / 2.
void rope_angles(int n_rot, int32_t pos, float freq_base, float freq_scale,
                 const float* freq_factors, float* cos_sin);
void rope_rotate(float* x, int n_heads, int head_dim, int n_rot, const float* cos_sin,
                 RopeStyle style);

// gate[i] = silu(gate[i]) * up[i]   (SwiGLU)
void silu_mul(float* gate, const float* up, int64_t n);
// gate[i] = gelu_tanh(gate[i]) * up[i]   (GeGLU, gemma)
void gelu_mul(float* gate, const float* up, int64_t n);

struct AttentionParams {
  int n_head = 0;
  int n_head_kv = 0;  // n_head must be a multiple (grouped-query attention)
  int head_dim = 0;
  float scale = 1.0f;    // applied to q·k before softcap/softmax, usually 1/sqrt(head_dim)
  float softcap = 0.0f;  // > 0: scores = softcap * tanh(scores / softcap)
  int32_t window = 0;    // > 0: a query at p sees only positions > p - window (sliding window)
};

// Causal attention for n_tokens query rows at positions pos0 .. pos0+n_tokens-1.
// q:   [n_tokens][n_head][head_dim]
// k,v: [kv_stride positions][n_head_kv][head_dim] F32 caches, already holding positions
//      0 .. pos0+n_tokens-1
// out: [n_tokens][n_head][head_dim]
void attention(const AttentionParams& p, const float* q, int64_t n_tokens, int32_t pos0,
               const float* k, const float* v, float* out, ThreadPool* pool);
// attention() over F16 caches (IEEE half bits, as to_f16 writes them): keys and values are
// widened to float as they are read; the arithmetic is that of the F32 version on those floats.
void attention_f16(const AttentionParams& p, const float* q, int64_t n_tokens, int32_t pos0,
                   const uint16_t* k, const uint16_t* v, float* out, ThreadPool* pool);
// attention() over q8_0 caches: each row of n_head_kv * head_dim values stored as GGUF q8_0
// blocks (as tensor::quantize_row writes them; head_dim a multiple of 32), each element read as
// d * q of its block.
void attention_q8_0(const AttentionParams& p, const float* q, int64_t n_tokens, int32_t pos0,
                    const uint8_t* k, const uint8_t* v, float* out, ThreadPool* pool);

// dst[i] = the F16 bits of src[i] for i < n, rounded to nearest even exactly as
// tensor::fp32_to_fp16 does (fast paths use the CPU's conversion where it rounds the same way).
void to_f16(const float* src, uint16_t* dst, int64_t n);

// True when matmul and get_row accept weights of `type` (every type tensor::dequantize_row reads).
bool supports_type(TensorType type);

// Name of the CPU path in use ("scalar", "avx2", "avx512", ...).
std::string_view active_cpu_path();
// Paths this CPU can run, fastest first; "scalar" (the reference kernels) is always last.
std::vector<std::string_view> available_cpu_paths();
// Switches every kernel to the named path (tests, benchmarks); false, keeping the current path,
// when `name` is not in available_cpu_paths(). Not safe while kernels run on other threads.
bool set_cpu_path(std::string_view name);

}  // namespace edgelm::kernels
