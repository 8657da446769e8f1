// Operator implementations: one function per ONNX operator over Tensors, with the checks the
// spec asks for (shapes, types, index ranges) returned as errors that name the node.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "edgelm/error.h"
#include "edgelm/onnx/tensor.h"
#include "edgelm/thread_pool.h"
#include "onnx/model.h"

namespace edgelm::onnx {

// Recycles intermediate buffers: a value's buffer returns here after its last reader ran, and
// the next allocation of a similar size takes it (the memory plan of a run).
class Arena {
 public:
  explicit Arena(uint64_t max_tensor_bytes) : max_tensor_bytes_(max_tensor_bytes) {}
  // Uninitialised storage (ops write every element).
  Result<Tensor> alloc(DataType type, std::vector<int64_t> shape);
  // Offers t's buffer for reuse when nobody else holds it.
  void release(Tensor&& t);
  // Lends t's buffer to the caller (a graph output): reclaim() takes it back once the caller has
  // dropped every copy, so steady-state runs allocate (and page-fault) nothing.
  void lend(const Tensor& t);
  void reclaim();
  uint64_t max_tensor_bytes() const { return max_tensor_bytes_; }
  uint64_t peak_bytes() const { return peak_bytes_; }
  // Bytes handed out since the last call (the sum over every value a run computed).
  uint64_t take_requested_bytes() { return std::exchange(requested_bytes_, 0); }

 private:
  struct Block {
    std::shared_ptr<const void> owner;
    size_t capacity = 0;
  };
  uint64_t max_tensor_bytes_;
  std::multimap<size_t, Block> free_;       // capacity -> idle buffer
  std::map<const void*, size_t> capacity_;  // every buffer this arena made
  std::vector<Block> lent_;
  uint64_t live_bytes_ = 0;
  uint64_t peak_bytes_ = 0;
  uint64_t requested_bytes_ = 0;
};

struct OpContext {
  const NodeDef& node;
  int64_t opset = 0;
  ThreadPool* pool = nullptr;
  Arena* arena = nullptr;
  const void* prepared = nullptr;  // per-node data built at load (fused ops)

  Result<Tensor> alloc(DataType type, std::vector<int64_t> shape) const {
    auto t = arena->alloc(type, std::move(shape));
    if (!t) return make_error(t.error().code, node.label() + ": " + t.error().message);
    return t;
  }
  Error error(const std::string& what) const {
    return make_error(ErrorCode::kInvalidFormat, node.label() + ": " + what);
  }
  Error unsupported(const std::string& what) const {
    return make_error(ErrorCode::kUnsupported, node.label() + ": " + what);
  }
  int64_t attr_int(std::string_view name, int64_t fallback) const;
  float attr_float(std::string_view name, float fallback) const;
  const std::vector<int64_t>* attr_ints(std::string_view name) const;
};

// inputs[i] is null for an omitted optional input. outputs arrive empty and sized to the node's
// output count; an op fills each (optional outputs the graph does not use may stay empty).
using OpFn = Status (*)(const OpContext& ctx, std::span<const Tensor* const> inputs,
                        std::vector<Tensor>& outputs);

struct OpSpec {
  std::string_view op_type;
  OpFn fn;
  int min_inputs, max_inputs;
  int min_outputs, max_outputs;
};

// Standard-domain operators edgelm runs; null when op_type is not among them.
const OpSpec* find_op(std::string_view op_type);

// --- helpers shared by the op files ---

std::string shape_string(std::span<const int64_t> shape);
// Maps axis in [-rank, rank) to [0, rank); an error otherwise.
Result<int64_t> normalize_axis(const OpContext& ctx, int64_t axis, int64_t rank);
// Numpy-style broadcast of two shapes.
Result<std::vector<int64_t>> broadcast_shapes(const OpContext& ctx, std::span<const int64_t> a,
                                              std::span<const int64_t> b);
// Values of a 1-D (or scalar) int64/int32 tensor, e.g. Reshape's shape or Slice's starts.
Result<std::vector<int64_t>> read_int_list(const OpContext& ctx, const Tensor& t,
                                           std::string_view what);
// Requires t to be float (or the listed alternative); names the input.
Status expect_type(const OpContext& ctx, const Tensor& t, DataType type, std::string_view what);
// Row-major strides of a shape, in elements.
std::vector<int64_t> contiguous_strides(std::span<const int64_t> shape);

// Each op file registers its operators here.
void register_elementwise_ops(std::vector<OpSpec>& table);
void register_shape_ops(std::vector<OpSpec>& table);
void register_math_ops(std::vector<OpSpec>& table);
void register_quant_ops(std::vector<OpSpec>& table);

// dst[c][r] = src[r][c] for src [rows][cols], tiled for the cache.
void transpose_blocked(const float* src, int64_t rows, int64_t cols, float* dst);

// Transposes folded into a MatMul (fusion.cpp): A and B are read as Transpose(input, perm) and
// the product is stored as Transpose(product, out). Empty: no transpose. `a` and `out` keep the
// last axis in place (rows stay contiguous); `b` may be any permutation.
struct MatMulPerms {
  std::vector<int64_t> a, b, out;
};
// ONNX MatMul (numpy broadcasting of the batch dims) over the permuted views.
Status matmul_permuted(const OpContext& ctx, const Tensor& a, const Tensor& b,
                       const MatMulPerms& perms, Tensor& out);
// The fused node: inputs (A, B), ctx.prepared a MatMulPerms.
Status permuted_matmul_op(const OpContext& ctx, std::span<const Tensor* const> inputs,
                          std::vector<Tensor>& outputs);

// Fused attention (fusion.cpp matches it, attention.cpp runs it):
//   out = MatMul(Softmax(mask(scale(MatMul(Q, K)))), V), Transposes folded as in MatMulPerms,
// with scale = Mul/Div by a constant scalar and mask = Add(float mask) or Where(bool, fill, .),
// each optional. The fast path takes rank-4 operands with equal batch and head dims and a mask
// that broadcasts onto the scores; anything else runs `steps`, the nodes it replaced.
struct AttentionSpec {
  enum class Scale { kNone, kMul, kDiv };
  enum class Mask { kNone, kAdd, kWhereFillIfTrue, kWhereFillIfFalse };
  struct Step {
    const NodeDef* def = nullptr;
    OpFn fn = nullptr;
    std::shared_ptr<const void> prepared;
    // Slot i < number of fused inputs: that input; otherwise the output of step i - that number.
    std::vector<int> inputs;
  };
  MatMulPerms qk;  // qk.out empty
  MatMulPerms pv;  // pv.a empty
  Scale scale_op = Scale::kNone;
  float scale = 1.0f;
  Mask mask = Mask::kNone;
  float fill = 0.0f;                            // Where's constant
  int q = -1, k = -1, v = -1, mask_input = -1;  // indices into the fused node's inputs
  std::vector<Step> steps;                      // in order; the last one yields the output
};
Status attention_op(const OpContext& ctx, std::span<const Tensor* const> inputs,
                    std::vector<Tensor>& outputs);

// Float matmul of a [m, k] row-major by b [k, n] row-major into out [m, n], on edgelm's kernels.
void matmul_f32(const float* a, const float* b, int64_t m, int64_t k, int64_t n, float* out,
                ThreadPool* pool);

}  // namespace edgelm::onnx
