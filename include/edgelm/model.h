// The model layer: architectures, hyper-parameters from GGUF metadata, and the forward pass over a
// KV cache. A Model is immutable and may be shared by several Contexts (one per sequence).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "edgelm/error.h"
#include "edgelm/gguf.h"
#include "edgelm/kernels.h"
#include "edgelm/tensor_type.h"
#include "edgelm/thread_pool.h"

namespace edgelm::model {

enum class RopeScaling {
  kNone,      // rope.scaling.type "none": no frequency scaling
  kLinear,    // positions divided by rope.scaling.factor (also the default with no factor)
  kLongRope,  // phi3: rope_factors_long/short tensors chosen by context size
};

enum class FfnActivation {
  kSilu,  // SwiGLU: silu(gate) * up
  kGelu,  // GeGLU (gemma): gelu_tanh(gate) * up
};

// Hyper-parameters from the `<arch>.*` GGUF keys, checked against the tensor shapes.
struct HParams {
  std::string arch;  // general.architecture: llama, qwen2, qwen3, phi3, gemma3
  int32_t n_vocab = 0;
  int32_t n_ctx_train = 0;
  int32_t n_embd = 0;
  int32_t n_layer = 0;
  int32_t n_head = 0;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;  // attention.key_length, else n_embd / n_head
  int32_t n_ff = 0;
  int32_t n_rot = 0;  // rotated dims per head (rope.dimension_count), <= head_dim
  float rms_eps = 0.0f;

  kernels::RopeStyle rope_style = kernels::RopeStyle::kNorm;
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // 1 / rope.scaling.factor
  RopeScaling rope_scaling = RopeScaling::kLinear;
  int32_t rope_n_ctx_orig = 0;    // rope.scaling.original_context_length (LongRoPE long/short)
  float rope_attn_factor = 1.0f;  // rope.scaling.attn_factor: scales the rotated dims of q and k
  bool has_rope_freqs = false;    // llama3 scaling: the rope_freqs tensor divides frequencies

  bool tied_embeddings = false;  // output.weight absent: logits use token_embd.weight
  bool attn_bias = false;        // q/k/v biases (qwen2)
  bool qk_norm = false;          // per-head RMSNorm of q and k before RoPE (qwen3, gemma3)
  bool fused_qkv = false;        // attn_qkv holds q, k, v rows (phi3)
  bool fused_gate_up = false;    // ffn_up holds gate then up rows (phi3)
  bool post_norms = false;       // post_attention_norm / post_ffw_norm (gemma3)
  FfnActivation ffn_activation = FfnActivation::kSilu;

  float embd_scale = 1.0f;     // token embeddings are multiplied by this (gemma: sqrt(n_embd))
  float attn_scale = 0.0f;     // q·k scale (1/sqrt(head_dim); gemma3 27B: 1/sqrt(n_embd/n_head))
  float attn_softcap = 0.0f;   // attn_logit_softcapping (0: off)
  float final_softcap = 0.0f;  // final_logit_softcapping (0: off)

  // Sliding-window attention (gemma3): layers with swa_layers[il] see only the last
  // sliding_window positions and use their own rope base and scale.
  int32_t sliding_window = 0;
  std::vector<bool> swa_layers;  // n_layer entries
  float rope_freq_base_swa = 10000.0f;
  float rope_freq_scale_swa = 1.0f;

  bool is_swa(int32_t il) const { return sliding_window > 0 && swa_layers[il]; }
};

// Reads the hyper-parameters of `file` (no tensor checks).
Result<HParams> read_hparams(const format::GgufFile& file);

// Architectures this build runs ("llama", "qwen2", ...).
std::vector<std::string> supported_architectures();

namespace detail {
struct Weights;  // views of the model's tensors (src/model/weights.h)
class Forward;   // the forward pass over a batch of rows (src/model/forward.h)
struct Segment;  // the rows of one sequence in a pass
}  // namespace detail

struct LoadOptions {
  bool use_mmap = true;  // false: read the whole file into memory
  // Copy the matmul weights the active CPU path multiplies faster in another layout (q8_0 and
  // q4_0 on AVX-512 VNNI) into that layout at load time; the mapped pages they replace are given
  // back. false: every weight is read where it lies in the file.
  bool repack = true;
};

class Model {
 public:
  static Result<std::unique_ptr<Model>> load(const std::filesystem::path& path,
                                             const LoadOptions& options = {});
  // Validates hyper-parameters and every expected tensor (name, shape, type) of an opened file
  // (options.use_mmap is the file's business and is not read here).
  static Result<std::unique_ptr<Model>> from_gguf(format::GgufFile&& file,
                                                  const LoadOptions& options = {});
  // Parses a GGUF image held in memory (a model decrypted into locked memory, quantized at load
  // time, ...). `owner` keeps `bytes` alive for the Model's lifetime, e.g. a
  // std::shared_ptr<std::vector<uint8_t>> or a shared_ptr to a security::SecureBuffer; the bytes
  // must not change while the Model lives. Weights are never repacked: a copy would double the
  // memory (heap bytes cannot be given back) and would leave locked memory.
  static Result<std::unique_ptr<Model>> from_memory(std::span<const uint8_t> bytes,
                                                    std::shared_ptr<const void> owner);
  ~Model();

  const HParams& hparams() const { return hparams_; }
  const format::GgufFile& gguf() const { return file_; }
  const detail::Weights& weights() const { return *weights_; }  // for Context

 private:
  Model(format::GgufFile&& file, HParams hparams, std::shared_ptr<const void> owner);
  static Result<std::unique_ptr<Model>> build(format::GgufFile&& file,
                                              std::shared_ptr<const void> owner, bool repack);
  std::shared_ptr<const void> owner_;  // declared first: released after file_ and the views
  format::GgufFile file_;
  HParams hparams_;
  std::unique_ptr<detail::Weights> weights_;
};

// Called with the input rows of every weight matmul, before it runs: weight_name is the GGUF
// tensor name ("blk.0.attn_q.weight", "blk.3.attn_qkv.weight", "output.weight", or
// "token_embd.weight" for tied output embeddings), input is [n_rows][n_cols] floats (n_cols = the
// weight's row length). q, k and v read the same input and are reported once each. The output
// matmul sees only the rows whose logits are asked for.
using MatmulObserver = std::function<void(std::string_view weight_name, const float* input,
                                          int64_t n_rows, int64_t n_cols)>;

struct ContextOptions {
  int32_t n_ctx = 0;  // 0: min(n_ctx_train, 4096)
  int n_threads = 1;
  int32_t n_batch = 512;  // prompt tokens evaluated per matrix-matrix pass
  // Element type of the KV cache: kF16 (keys and values rounded to half precision as they are
  // stored, half the memory and attention traffic; llama.cpp's default), kF32, or kQ8_0 (each
  // row of a head quantized to GGUF q8_0 blocks, 34 bytes per 32 values, as llama.cpp's
  // --cache-type-k/v q8_0; needs head_dim % 32 == 0).
  TensorType kv_type = TensorType::kF16;
  // A KV cache and positions only, for contexts evaluated by a BatchDecoder: no scratch buffers
  // and no threads. decode() and embed() on such a context return kInvalidArgument.
  bool cache_only = false;
  MatmulObserver matmul_observer = nullptr;  // empty: no calls, no cost
};

// How embed() reduces the final-normed hidden states of its tokens to one vector.
enum class Pooling {
  kMean,  // mean over the tokens of the call
  kLast,  // the last token's
};

// One sequence: a KV cache and (unless cache_only) the scratch buffers of the forward pass,
// planned once.
class Context {
 public:
  static Result<std::unique_ptr<Context>> create(const Model& model,
                                                 const ContextOptions& options = {});
  ~Context();

  // Evaluates `tokens` at positions n_past().., appending their keys and values. Returns the
  // logits of the last token (n_vocab floats) or, with all_logits, of every token
  // ([tokens.size()][n_vocab]); the span stays valid until the next call. kContextFull (nothing
  // changed) when they do not fit; kInvalidArgument for an empty span or an id out of range.
  Result<std::span<const float>> decode(std::span<const int32_t> tokens, bool all_logits = false);

  // Evaluates `tokens` like decode() (appending to the cache) but returns, instead of logits, the
  // pooled final-normed hidden states of these tokens (n_embd floats, not L2-normalized).
  Result<std::vector<float>> embed(std::span<const int32_t> tokens, Pooling pooling);

  int32_t n_past() const { return n_past_; }
  int32_t n_ctx() const { return n_ctx_; }
  int32_t n_batch() const { return n_batch_; }
  TensorType kv_type() const { return kv_type_; }
  bool cache_only() const { return forward_ == nullptr; }
  const Model& model() const { return model_; }

  // Forgets positions >= n_keep.
  void truncate(int32_t n_keep);
  // Context shift: drops positions [n_keep, n_keep + n_discard), moves the later ones down and
  // re-rotates their cached keys by -n_discard positions.
  Status shift(int32_t n_keep, int32_t n_discard);

  // Final-normed hidden state of the last evaluated token (n_embd floats), also after a
  // BatchDecoder step.
  std::span<const float> last_hidden() const { return last_hidden_; }

 private:
  friend class detail::Forward;
  friend class BatchDecoder;
  Context(const Model& model, const ContextOptions& options, int32_t n_ctx);
  // kInvalidArgument for no tokens or an id outside the vocabulary, kContextFull when they do
  // not fit after n_past(); messages start with `what`.
  Status check_tokens(std::span<const int32_t> tokens, const std::string& what) const;
  // Evaluates checked tokens batch by batch on forward_: logits (all rows or the last one) to
  // logits_out unless null; every row's final-normed hidden state added to hidden_sum (n_embd
  // values) unless null.
  void run(std::span<const int32_t> tokens, bool all_logits, float* logits_out, double* hidden_sum);
  // Stores n_rows keys and values (rows of n_head_kv * head_dim floats) of layer il at positions
  // pos0.., rounded to the cache type.
  void store_kv(int32_t il, int32_t pos0, const float* k, const float* v, int32_t n_rows);
  // kernels::attention over layer il's cache for n_rows queries at positions pos0...
  void attend(int32_t il, const kernels::AttentionParams& params, const float* q, int32_t n_rows,
              int32_t pos0, float* out, ThreadPool* pool) const;

  const Model& model_;
  const HParams& hp_;
  int32_t n_ctx_;
  int32_t n_batch_;
  int32_t n_past_ = 0;
  const float* rope_factors_ = nullptr;  // rope_freqs or the LongRoPE set for this n_ctx

  // KV cache: [layer][position][n_head_kv][head_dim] elements of kv_type_; only the pair of
  // vectors of that type is allocated (F16 elements are IEEE half bits; q8_0 rows are blocks of
  // 32 elements, 34 bytes each).
  TensorType kv_type_;
  int64_t layer_cache_size_ = 0;  // elements per layer
  std::vector<float> k_f32_, v_f32_;
  std::vector<uint16_t> k_f16_, v_f16_;
  std::vector<uint8_t> k_q8_, v_q8_;
  std::vector<float> last_hidden_;  // [n_embd]

  std::unique_ptr<detail::Forward> forward_;  // null when cache_only
  std::vector<float> logits_;                 // [n_out][n_vocab], grown for all_logits calls
};

// The tokens of one sequence for a BatchDecoder step.
struct SequenceInput {
  Context* context = nullptr;  // any Context of the decoder's model (cache_only is enough)
  std::span<const int32_t> tokens;
  bool all_logits = false;  // logits of every token instead of the last one only
};

// Continuous batching: one forward pass evaluates the new tokens of several sequences, their
// rows stacked into one activation matrix so every weight matrix is read once per pass, while
// attention runs per sequence over its own Context's cache. Owns the scratch buffers and
// threads; not thread-safe (one decode() at a time).
class BatchDecoder {
 public:
  // max_batch_tokens: rows per forward pass (a step with more tokens runs in several passes).
  static Result<std::unique_ptr<BatchDecoder>> create(const Model& model,
                                                      int32_t max_batch_tokens = 512,
                                                      int n_threads = 1);
  ~BatchDecoder();

  // Evaluates every input's tokens at its context's positions n_past().., appending to its cache,
  // and returns per input (same order) the logits of its last token (n_vocab floats) or, with
  // all_logits, of every token ([tokens.size()][n_vocab]). The spans stay valid until the next
  // decode(). Logits equal those of Context::decode on each sequence alone (up to float
  // rounding of the kernels' blocking). Errors change no context: kInvalidArgument for no
  // inputs, a null context, a context of another model or listed twice, an empty token span or
  // an id out of range; kContextFull when an input's tokens do not fit its context. The message
  // names the input index.
  Result<std::vector<std::span<const float>>> decode(std::span<const SequenceInput> inputs);

  int32_t max_batch_tokens() const { return max_batch_tokens_; }
  const Model& model() const { return model_; }

 private:
  BatchDecoder(const Model& model, int32_t max_batch_tokens, int n_threads);
  const Model& model_;
  int32_t max_batch_tokens_;
  std::unique_ptr<detail::Forward> forward_;
  std::vector<float> logits_;  // every input's rows, in input order
  // One pass, reused between steps.
  std::vector<int32_t> pass_tokens_;
  std::vector<detail::Segment> segments_;
  std::vector<int32_t> out_rows_;
};

// Pooled final-normed hidden states of `tokens` evaluated from position 0 in a fresh context
// of exactly tokens.size() positions (for /v1/embeddings); n_embd floats, not L2-normalized.
Result<std::vector<float>> embed(const Model& model, std::span<const int32_t> tokens,
                                 Pooling pooling, int n_threads = 1);

}  // namespace edgelm::model
