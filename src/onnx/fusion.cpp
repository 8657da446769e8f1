// Pattern fusion onto edgelm's kernels. Every rewrite checks that the intermediate values it
// removes have no other readers and are not graph outputs; unmatched graphs run unchanged.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <utility>

#include "edgelm/kernels.h"
#include "edgelm/quant.h"
#include "edgelm/sgemm.h"
#include "onnx/graph.h"

namespace edgelm::onnx {
namespace {

// Who produces and who reads each value, over the current node list.
struct Uses {
  std::vector<int> producer;              // node index or -1
  std::vector<std::vector<int>> readers;  // node indices
  std::vector<bool> is_output;

  explicit Uses(const Plan& plan) {
    const size_t n = plan.value_names.size();
    producer.assign(n, -1);
    readers.assign(n, {});
    is_output.assign(n, false);
    for (size_t i = 0; i < plan.nodes.size(); ++i) {
      for (int id : plan.nodes[i].outputs) {
        if (id >= 0) producer[id] = static_cast<int>(i);
      }
      for (int id : plan.nodes[i].inputs) {
        if (id >= 0) readers[id].push_back(static_cast<int>(i));
      }
    }
    for (int id : plan.output_ids) is_output[id] = true;
  }
  // The only reader of value id (and id is internal), or -1.
  int sole_reader(int id) const {
    if (id < 0 || is_output[id] || readers[id].size() != 1) return -1;
    return readers[id][0];
  }
};

bool is_op(const Plan& plan, int node, std::string_view op) {
  return node >= 0 && plan.nodes[node].def->op_type == op;
}

const Tensor* constant(const Plan& plan, int id) {
  return id >= 0 && !plan.constants[id].empty() ? &plan.constants[id] : nullptr;
}

// A constant float scalar (any rank, one element).
bool constant_scalar(const Plan& plan, int id, float& value) {
  const Tensor* t = constant(plan, id);
  if (!t || t->dtype() != DataType::kFloat || t->numel() != 1) return false;
  value = *t->data<float>();
  return true;
}

// For a binary node, the input that is not `id` (or -1 when both or neither are).
int other_input(const PlannedNode& node, int id) {
  if (node.inputs.size() != 2) return -1;
  if (node.inputs[0] == id && node.inputs[1] != id) return node.inputs[1];
  if (node.inputs[1] == id && node.inputs[0] != id) return node.inputs[0];
  return -1;
}

bool reduces_last_axis(const Plan& plan, const PlannedNode& node) {
  if (node.def->op_type != "ReduceMean" || node.inputs.size() != 1) return false;
  const AttributeDef* axes = node.def->attr("axes");
  const AttributeDef* keep = node.def->attr("keepdims");
  return axes && axes->ints.size() == 1 && axes->ints[0] == -1 && (!keep || keep->i == 1);
}

// Drops nodes none of whose outputs are read or returned.
void remove_dead_nodes(Plan& plan) {
  std::vector<bool> needed(plan.value_names.size(), false);
  for (int id : plan.output_ids) needed[id] = true;
  std::vector<PlannedNode> kept;
  for (size_t i = plan.nodes.size(); i-- > 0;) {
    PlannedNode& node = plan.nodes[i];
    const bool live = std::any_of(node.outputs.begin(), node.outputs.end(),
                                  [&](int id) { return id >= 0 && needed[id]; });
    if (!live) continue;
    for (int id : node.inputs) {
      if (id >= 0) needed[id] = true;
    }
    kept.push_back(std::move(node));
  }
  std::reverse(kept.begin(), kept.end());
  plan.nodes = std::move(kept);
}

NodeDef& synthetic(Plan& plan, const NodeDef& like, std::string op_type) {
  NodeDef def;
  def.name = like.name;
  def.op_type = std::move(op_type);
  plan.synthetic_defs.push_back(std::move(def));
  return plan.synthetic_defs.back();
}

// ---- Linear: y = x W (+ b) with W prepacked for the float GEMM or as edgelm weight rows ----

struct PackedLinear {
  kernels::PackedMatrix gemm;      // float weights: [k][n] in GEMM panels
  kernels::PackedInt8Matrix int8;  // MatMulInteger weights for the u8 x s8 GEMM
  Tensor storage;                  // quantized weights: packed rows
  kernels::MatrixView weight;      // rows = n (output features), cols = k (shape even for `gemm`)
  std::vector<float> bias;         // n values or empty
  kernels::Activation activation = kernels::Activation::kNone;  // `gemm` and `int8` only
};

Status linear_op(const OpContext& ctx, std::span<const Tensor* const> in,
                 std::vector<Tensor>& out) {
  const auto& p = *static_cast<const PackedLinear*>(ctx.prepared);
  const Tensor& x = *in[0];
  EDGELM_CHECK(expect_type(ctx, x, DataType::kFloat, "A"));
  if (x.rank() == 0 || x.shape().back() != p.weight.cols) {
    return ctx.error("A " + shape_string(x.shape()) + " does not match the weight's " +
                     std::to_string(p.weight.cols) + " inputs");
  }
  std::vector<int64_t> shape = x.shape();
  shape.back() = p.weight.rows;
  EDGELM_TRY(out[0], ctx.alloc(DataType::kFloat, shape));
  const int64_t tokens = p.weight.cols ? x.numel() / p.weight.cols : 0;
  float* y = out[0].mutable_data<float>();
  if (!p.int8.empty()) {
    // Activations are quantized per call like DynamicQuantizeLinear; the buffer is reused.
    thread_local kernels::QuantizedRows quantized;
    kernels::dynamic_quantize_rows(x.data<float>(), tokens, p.weight.cols, quantized);
    kernels::gemm_u8s8_packed(quantized, p.int8, p.bias.empty() ? nullptr : p.bias.data(), y,
                              p.weight.rows, ctx.pool, p.activation);
    return {};
  }
  if (!p.gemm.empty()) {
    kernels::sgemm_packed(x.data<float>(), tokens, p.weight.cols, p.gemm,
                          p.bias.empty() ? nullptr : p.bias.data(), y, p.weight.rows, ctx.pool,
                          p.activation);
    return {};
  }
  kernels::matmul(p.weight, x.data<float>(), tokens, y, ctx.pool);
  if (!p.bias.empty()) {
    for (int64_t t = 0; t < tokens; ++t) {
      float* row = y + t * p.weight.rows;
      for (int64_t c = 0; c < p.weight.rows; ++c) row[c] += p.bias[c];
    }
  }
  return {};
}

// Packs w_t ([n][k] floats, row per output feature) as F32, or q8_0/q4_0 when asked and k fits.
std::shared_ptr<PackedLinear> pack_rows(const std::vector<float>& w_t, int64_t n, int64_t k,
                                        int quant_bits) {
  auto packed = std::make_shared<PackedLinear>();
  TensorType type = TensorType::kF32;
  if (k % 32 == 0 && quant_bits == 8) type = TensorType::kQ8_0;
  if (k % 32 == 0 && quant_bits == 4) type = TensorType::kQ4_0;
  const uint64_t row_bytes = tensor_bytes(type, static_cast<uint64_t>(k)).value_or(0);
  auto storage = Tensor::zeros(DataType::kUint8, {static_cast<int64_t>(row_bytes * n)});
  if (!storage || row_bytes == 0) return nullptr;
  packed->storage = std::move(*storage);
  auto* dst = static_cast<uint8_t*>(packed->storage.mutable_raw());
  for (int64_t r = 0; r < n; ++r) {
    if (type == TensorType::kF32) {
      std::memcpy(dst + r * row_bytes, w_t.data() + r * k, row_bytes);
    } else if (!tensor::quantize_row(type, w_t.data() + r * k, dst + r * row_bytes, k)) {
      return nullptr;
    }
  }
  packed->weight = {type, dst, n, k, row_bytes};
  return packed;
}

// Once a kernel holds a packed copy of weight `value` and no other node reads it, frees the
// source: a heap copy is dropped, and a view of a file mapping gives its pages back (they would
// fault in again from the file if read; MappedFile never does this to a heap buffer). Otherwise
// the weights are resident twice.
void drop_packed_source(Plan& plan, const Uses& uses, const PlanOptions& options, int value) {
  if (uses.is_output[value] || uses.readers[value].size() != 1) return;
  const Tensor t = std::exchange(plan.constants[value], Tensor());
  if (!options.files) return;
  for (const auto& file : *options.files) {
    if (t.owner().get() == file.get()) file->release_pages(t.bytes());
  }
}

// Adds a constant bias Add reading `value` into the linear node when it is the only reader.
int absorb_bias(Plan& plan, const Uses& uses, int value, PackedLinear& packed) {
  const int add = uses.sole_reader(value);
  if (!is_op(plan, add, "Add")) return value;
  const Tensor* bias = constant(plan, other_input(plan.nodes[add], value));
  if (!bias || bias->dtype() != DataType::kFloat || bias->numel() != packed.weight.rows ||
      bias->rank() != 1)
    return value;
  packed.bias.assign(bias->data<float>(), bias->data<float>() + bias->numel());
  const int out = plan.nodes[add].outputs[0];
  plan.nodes[add].outputs[0] = -1;  // now dead; removed with the other leftovers
  plan.nodes[add].inputs.clear();
  return out;
}

// Replaces node `at` by a Linear over x producing `out_value`.
void emit_linear(Plan& plan, int at, int x, int out_value, std::shared_ptr<PackedLinear> packed) {
  PlannedNode node;
  node.def = &synthetic(plan, *plan.nodes[at].def, "edgelm.Linear");
  node.fn = &linear_op;
  node.inputs = {x};
  node.outputs = {out_value};
  node.prepared = std::move(packed);
  plan.nodes[at] = std::move(node);
  ++plan.fused;
}

void fuse_float_linear(Plan& plan, const PlanOptions& options) {
  for (size_t i = 0; i < plan.nodes.size(); ++i) {
    const Uses uses(plan);
    PlannedNode& node = plan.nodes[i];
    const std::string& op = node.def->op_type;
    if (op != "MatMul" && op != "Gemm") continue;
    const Tensor* w = constant(plan, node.inputs[1]);
    if (!w || w->dtype() != DataType::kFloat || w->rank() != 2) continue;
    bool trans_b = false;
    if (op == "Gemm") {
      if (node.def->attr("transA") && node.def->attr("transA")->i != 0) continue;
      const AttributeDef* alpha = node.def->attr("alpha");
      const AttributeDef* beta = node.def->attr("beta");
      if ((alpha && alpha->f != 1.0f) || (beta && beta->f != 1.0f)) continue;
      trans_b = node.def->attr("transB") && node.def->attr("transB")->i != 0;
    }
    const int64_t k = trans_b ? w->shape()[1] : w->shape()[0];
    const int64_t n = trans_b ? w->shape()[0] : w->shape()[1];
    const float* src = w->data<float>();
    std::shared_ptr<PackedLinear> packed;
    if (options.quant_bits == 0) {
      // Packed once here, like ONNX Runtime's prepacking: every run reads the panels directly.
      packed = std::make_shared<PackedLinear>();
      packed->gemm = kernels::PackedMatrix::pack(src, k, n, trans_b ? 1 : n, trans_b ? k : 1);
      packed->weight = {TensorType::kF32, nullptr, n, k, 0};
    } else {
      std::vector<float> w_t(static_cast<size_t>(n * k));
      if (trans_b) {
        std::copy(src, src + n * k, w_t.begin());
      } else {
        transpose_blocked(src, k, n, w_t.data());
      }
      packed = pack_rows(w_t, n, k, options.quant_bits);
    }
    if (!packed) continue;
    int out = node.outputs[0];
    if (op == "Gemm" && node.inputs.size() > 2 && node.inputs[2] >= 0) {
      const Tensor* c = constant(plan, node.inputs[2]);
      if (!c || c->dtype() != DataType::kFloat || c->numel() != n) continue;
      packed->bias.assign(c->data<float>(), c->data<float>() + n);
    } else {
      out = absorb_bias(plan, uses, out, *packed);
    }
    drop_packed_source(plan, uses, options, node.inputs[1]);
    emit_linear(plan, static_cast<int>(i), node.inputs[0], out, std::move(packed));
  }
}

// Values of a constant uint8/int8 tensor as int32.
bool int8_values(const Tensor* t, std::vector<int32_t>& out) {
  if (!t) return false;
  out.resize(static_cast<size_t>(t->numel()));
  if (t->dtype() == DataType::kUint8) {
    std::copy_n(t->data<uint8_t>(), t->numel(), out.begin());
  } else if (t->dtype() == DataType::kInt8) {
    std::copy_n(t->data<int8_t>(), t->numel(), out.begin());
  } else {
    return false;
  }
  return true;
}

// quantize_dynamic's pattern, rooted at the final Mul:
//   (xq, xs, xz) = DynamicQuantizeLinear(x); i = MatMulInteger(xq, Wq, xz, Wz)
//   y = Mul(Cast<float>(i), Mul(xs, Ws))
// becomes one Linear: on CPUs with an 8-bit dot-product path, the u8 x s8 GEMM over the file's
// weights with the same per-tensor activation quantization; elsewhere W = (Wq - Wz) * Ws
// re-blocked as q8_0 (activations quantized per 32-block: the error stays at the 8-bit level).
void fuse_integer_linear(Plan& plan, const PlanOptions& options) {
  for (size_t i = 0; i < plan.nodes.size(); ++i) {
    const Uses uses(plan);
    PlannedNode& mi = plan.nodes[i];
    if (mi.def->op_type != "MatMulInteger" || mi.inputs.size() != 4) continue;
    const int dql = mi.inputs[0] >= 0 ? uses.producer[mi.inputs[0]] : -1;
    if (!is_op(plan, dql, "DynamicQuantizeLinear")) continue;
    const PlannedNode& dq = plan.nodes[dql];
    if (mi.inputs[2] != dq.outputs[2]) continue;
    const Tensor* wq = constant(plan, mi.inputs[1]);
    std::vector<int32_t> wq_values, wz_values;
    if (!wq || wq->rank() != 2 || !int8_values(wq, wq_values) ||
        !int8_values(constant(plan, mi.inputs[3]), wz_values))
      continue;
    const int64_t k = wq->shape()[0], n = wq->shape()[1];
    const int cast = uses.sole_reader(mi.outputs[0]);
    if (!is_op(plan, cast, "Cast") || plan.nodes[cast].def->attr("to") == nullptr ||
        plan.nodes[cast].def->attr("to")->i != static_cast<int64_t>(DataType::kFloat))
      continue;
    const int mul = uses.sole_reader(plan.nodes[cast].outputs[0]);
    if (!is_op(plan, mul, "Mul")) continue;
    const int scale_value = other_input(plan.nodes[mul], plan.nodes[cast].outputs[0]);
    const int scale_mul = scale_value >= 0 ? uses.producer[scale_value] : -1;
    if (!is_op(plan, scale_mul, "Mul") || uses.sole_reader(scale_value) != mul) continue;
    const Tensor* ws = constant(plan, other_input(plan.nodes[scale_mul], dq.outputs[1]));
    if (!ws || ws->dtype() != DataType::kFloat || (ws->numel() != 1 && ws->numel() != n)) continue;
    if (wz_values.size() != 1 && static_cast<int64_t>(wz_values.size()) != n) continue;
    std::shared_ptr<PackedLinear> packed;
    if (options.quant_bits != 4 && kernels::gemm_u8s8_accelerated()) {
      // The integer GEMM runs the file's own arithmetic (per-tensor activation quantization).
      packed = std::make_shared<PackedLinear>();
      packed->int8 = kernels::PackedInt8Matrix::pack(
          wq->raw(), wq->dtype() == DataType::kUint8, k, n, wz_values.data(),
          static_cast<int64_t>(wz_values.size()), ws->data<float>(), ws->numel());
      packed->weight = {TensorType::kF32, nullptr, n, k, 0};
    } else {
      std::vector<float> w_t(static_cast<size_t>(n * k));
      for (int64_t r = 0; r < n; ++r) {
        const float s = ws->data<float>()[ws->numel() == 1 ? 0 : r];
        const int32_t z = wz_values[wz_values.size() == 1 ? 0 : r];
        for (int64_t c = 0; c < k; ++c)
          w_t[r * k + c] = static_cast<float>(wq_values[c * n + r] - z) * s;
      }
      packed = pack_rows(w_t, n, k, options.quant_bits == 4 ? 4 : 8);
    }
    if (!packed) continue;
    const int out = absorb_bias(plan, uses, plan.nodes[mul].outputs[0], *packed);
    const int x = dq.inputs[0];
    drop_packed_source(plan, uses, options, mi.inputs[1]);
    // The Linear takes the final Mul's place (its inputs are ready there); the rest goes dead.
    emit_linear(plan, mul, x, out, std::move(packed));
  }
}

// ---- Norms and activations ----

struct RmsNormParams {
  std::vector<float> weight;
  float eps = 0;
};

Status rms_norm_op(const OpContext& ctx, std::span<const Tensor* const> in,
                   std::vector<Tensor>& out) {
  const auto& p = *static_cast<const RmsNormParams*>(ctx.prepared);
  const Tensor& x = *in[0];
  EDGELM_CHECK(expect_type(ctx, x, DataType::kFloat, "input"));
  const int64_t n = static_cast<int64_t>(p.weight.size());
  if (x.rank() == 0 || x.shape().back() != n)
    return ctx.error("input " + shape_string(x.shape()) + " does not end in " + std::to_string(n));
  EDGELM_TRY(out[0], ctx.alloc(DataType::kFloat, x.shape()));
  for (int64_t r = 0; r < x.numel() / n; ++r) {
    kernels::rms_norm(x.data<float>() + r * n, p.weight.data(), n, p.eps,
                      out[0].mutable_data<float>() + r * n);
  }
  return {};
}

// Pow(x, 2) -> ReduceMean(-1) -> Add(eps) -> Sqrt -> Div(1, .) | Reciprocal -> Mul(x, .) -> Mul(w,
// .)
bool try_rms_norm(Plan& plan, const Uses& uses, int pow_node) {
  const PlannedNode& pow = plan.nodes[pow_node];
  float two = 0;
  if (pow.def->op_type != "Pow" || !constant_scalar(plan, pow.inputs[1], two) || two != 2.0f)
    return false;
  const int x = pow.inputs[0];
  const int mean = uses.sole_reader(pow.outputs[0]);
  if (!is_op(plan, mean, "ReduceMean") || !reduces_last_axis(plan, plan.nodes[mean])) return false;
  const int add = uses.sole_reader(plan.nodes[mean].outputs[0]);
  float eps = 0;
  if (!is_op(plan, add, "Add") ||
      !constant_scalar(plan, other_input(plan.nodes[add], plan.nodes[mean].outputs[0]), eps))
    return false;
  const int sqrt = uses.sole_reader(plan.nodes[add].outputs[0]);
  if (!is_op(plan, sqrt, "Sqrt")) return false;
  const int inv = uses.sole_reader(plan.nodes[sqrt].outputs[0]);
  float one = 0;
  if (is_op(plan, inv, "Div")) {
    if (plan.nodes[inv].inputs[1] != plan.nodes[sqrt].outputs[0] ||
        !constant_scalar(plan, plan.nodes[inv].inputs[0], one) || one != 1.0f)
      return false;
  } else if (!is_op(plan, inv, "Reciprocal")) {
    return false;
  }
  const int scale = uses.sole_reader(plan.nodes[inv].outputs[0]);
  if (!is_op(plan, scale, "Mul") || other_input(plan.nodes[scale], plan.nodes[inv].outputs[0]) != x)
    return false;
  const int weigh = uses.sole_reader(plan.nodes[scale].outputs[0]);
  if (!is_op(plan, weigh, "Mul")) return false;
  const Tensor* w = constant(plan, other_input(plan.nodes[weigh], plan.nodes[scale].outputs[0]));
  if (!w || w->dtype() != DataType::kFloat || w->rank() != 1 || w->numel() == 0) return false;
  auto params = std::make_shared<RmsNormParams>();
  params->weight.assign(w->data<float>(), w->data<float>() + w->numel());
  params->eps = eps;
  PlannedNode node;
  node.def = &synthetic(plan, *plan.nodes[weigh].def, "edgelm.RMSNorm");
  node.fn = &rms_norm_op;
  node.inputs = {x};
  node.outputs = {plan.nodes[weigh].outputs[0]};
  node.prepared = std::move(params);
  plan.nodes[weigh] = std::move(node);  // the rest of the chain is now unread
  ++plan.fused;
  return true;
}

// ReduceMean(x) -> Sub(x, m) -> {Pow(d, 2) -> ReduceMean -> Add(eps) -> Sqrt, Div(d, .)}
//   -> Mul(gamma) -> Add(beta)   ==  LayerNormalization(x, gamma, beta, epsilon)
bool try_layer_norm(Plan& plan, const Uses& uses, int mean_node) {
  const PlannedNode& m = plan.nodes[mean_node];
  if (!reduces_last_axis(plan, m)) return false;
  const int x = m.inputs[0];
  const int sub = uses.sole_reader(m.outputs[0]);
  if (!is_op(plan, sub, "Sub") || plan.nodes[sub].inputs[0] != x ||
      plan.nodes[sub].inputs[1] != m.outputs[0])
    return false;
  const int d = plan.nodes[sub].outputs[0];
  if (uses.is_output[d] || uses.readers[d].size() != 2) return false;
  int pow = -1, div = -1;
  for (int r : uses.readers[d]) {
    if (is_op(plan, r, "Pow")) pow = r;
    if (is_op(plan, r, "Div")) div = r;
  }
  float two = 0, eps = 0;
  if (pow < 0 || div < 0 || plan.nodes[pow].inputs[0] != d ||
      !constant_scalar(plan, plan.nodes[pow].inputs[1], two) || two != 2.0f)
    return false;
  const int var = uses.sole_reader(plan.nodes[pow].outputs[0]);
  if (!is_op(plan, var, "ReduceMean") || !reduces_last_axis(plan, plan.nodes[var])) return false;
  const int add = uses.sole_reader(plan.nodes[var].outputs[0]);
  if (!is_op(plan, add, "Add") ||
      !constant_scalar(plan, other_input(plan.nodes[add], plan.nodes[var].outputs[0]), eps))
    return false;
  const int sqrt = uses.sole_reader(plan.nodes[add].outputs[0]);
  if (!is_op(plan, sqrt, "Sqrt") || uses.sole_reader(plan.nodes[sqrt].outputs[0]) != div ||
      plan.nodes[div].inputs[0] != d)
    return false;
  const int mul = uses.sole_reader(plan.nodes[div].outputs[0]);
  if (!is_op(plan, mul, "Mul")) return false;
  const int gamma = other_input(plan.nodes[mul], plan.nodes[div].outputs[0]);
  const Tensor* g = constant(plan, gamma);
  if (!g || g->dtype() != DataType::kFloat || g->rank() != 1) return false;
  int last = mul;
  int beta = -1;
  const int bias_add = uses.sole_reader(plan.nodes[mul].outputs[0]);
  if (is_op(plan, bias_add, "Add")) {
    const int b = other_input(plan.nodes[bias_add], plan.nodes[mul].outputs[0]);
    const Tensor* bt = constant(plan, b);
    if (bt && bt->dtype() == DataType::kFloat && bt->rank() == 1 && bt->numel() == g->numel()) {
      beta = b;
      last = bias_add;
    }
  }
  NodeDef& def = synthetic(plan, *plan.nodes[last].def, "LayerNormalization");
  AttributeDef eps_attr;
  eps_attr.name = "epsilon";
  eps_attr.type = AttrType::kFloat;
  eps_attr.f = eps;
  def.attributes.push_back(eps_attr);
  PlannedNode node;
  node.def = &def;
  node.fn = find_op("LayerNormalization")->fn;
  node.inputs = {x, gamma};
  if (beta >= 0) node.inputs.push_back(beta);
  node.outputs = {plan.nodes[last].outputs[0]};
  plan.nodes[last] = std::move(node);
  ++plan.fused;
  return true;
}

// ---- GELU (both forms PyTorch exports) and SiLU onto the SIMD activations ----

// A constant float scalar within relative 1e-4 of `want` (exports round the constants).
bool constant_near(const Plan& plan, int id, double want) {
  float value = 0;
  return constant_scalar(plan, id, value) && std::fabs(value - want) <= 1e-4 * std::fabs(want);
}

Status activation_op(const OpContext& ctx, std::span<const Tensor* const> in,
                     std::vector<Tensor>& out) {
  const auto activation = *static_cast<const kernels::Activation*>(ctx.prepared);
  const Tensor& x = *in[0];
  EDGELM_CHECK(expect_type(ctx, x, DataType::kFloat, "input"));
  EDGELM_TRY(out[0], ctx.alloc(DataType::kFloat, x.shape()));
  float* y = out[0].mutable_data<float>();
  std::copy_n(x.data<float>(), x.numel(), y);
  kernels::apply_activation(activation, y, x.numel());
  return {};
}

// From the value f(x) (erf or tanh term): Add(f, 1) -> Mul(x, .) -> Mul(., 0.5), or
// Add(f, 1) -> Mul(Mul(x, 0.5), .). Returns the node producing GELU(x), or -1.
int match_gelu_tail(const Plan& plan, const Uses& uses, int x, int f) {
  const int add = uses.sole_reader(f);
  if (!is_op(plan, add, "Add") || !constant_near(plan, other_input(plan.nodes[add], f), 1.0))
    return -1;
  const int a1 = plan.nodes[add].outputs[0];
  const int mul = uses.sole_reader(a1);
  if (!is_op(plan, mul, "Mul")) return -1;
  const int other = other_input(plan.nodes[mul], a1);
  if (other == x) {
    const int half = uses.sole_reader(plan.nodes[mul].outputs[0]);
    if (!is_op(plan, half, "Mul") ||
        !constant_near(plan, other_input(plan.nodes[half], plan.nodes[mul].outputs[0]), 0.5))
      return -1;
    return half;
  }
  const int half = other >= 0 ? uses.producer[other] : -1;
  if (!is_op(plan, half, "Mul") || uses.sole_reader(other) != mul ||
      !constant_near(plan, other_input(plan.nodes[half], x), 0.5))
    return -1;
  return mul;
}

// The producer of `value` when it is `op` and `value` has no other reader, else -1.
int sole_producer(const Plan& plan, const Uses& uses, int value, std::string_view op) {
  const int node = value >= 0 ? uses.producer[value] : -1;
  if (!is_op(plan, node, op) || uses.sole_reader(value) < 0) return -1;
  return node;
}

// Erf(Div(x, sqrt 2) | Mul(x, 1/sqrt 2)) + tail.
int match_gelu_erf(const Plan& plan, const Uses& uses, int erf, int& x) {
  const int arg = plan.nodes[erf].inputs[0];
  int scale = sole_producer(plan, uses, arg, "Div");
  if (scale >= 0) {
    if (!constant_near(plan, plan.nodes[scale].inputs[1], std::sqrt(2.0))) return -1;
    x = plan.nodes[scale].inputs[0];
  } else {
    scale = sole_producer(plan, uses, arg, "Mul");
    if (scale < 0) return -1;
    for (int in : plan.nodes[scale].inputs) {
      if (constant_near(plan, in, std::sqrt(0.5))) x = other_input(plan.nodes[scale], in);
    }
    if (x < 0) return -1;
  }
  return match_gelu_tail(plan, uses, x, plan.nodes[erf].outputs[0]);
}

// Tanh(Mul(sqrt(2/pi), Add(x, Mul(0.044715, x^3)))) + tail, x^3 as Pow(x, 3) or Mul(x, Mul(x, x)).
int match_gelu_tanh(const Plan& plan, const Uses& uses, int tanh, int& x) {
  const int scale = sole_producer(plan, uses, plan.nodes[tanh].inputs[0], "Mul");
  if (scale < 0) return -1;
  int sum = -1;
  for (int in : plan.nodes[scale].inputs) {
    if (constant_near(plan, in, std::sqrt(2.0 / std::numbers::pi)))
      sum = other_input(plan.nodes[scale], in);
  }
  const int add = sole_producer(plan, uses, sum, "Add");
  if (add < 0) return -1;
  for (int cubic_term : plan.nodes[add].inputs) {
    const int candidate_x = other_input(plan.nodes[add], cubic_term);
    const int coef = sole_producer(plan, uses, cubic_term, "Mul");
    if (coef < 0 || candidate_x < 0) continue;
    int cube = -1;
    for (int in : plan.nodes[coef].inputs) {
      if (constant_near(plan, in, 0.044715)) cube = other_input(plan.nodes[coef], in);
    }
    const int pow = sole_producer(plan, uses, cube, "Pow");
    const int mul = sole_producer(plan, uses, cube, "Mul");
    bool is_cube = false;
    if (pow >= 0) {
      is_cube = plan.nodes[pow].inputs[0] == candidate_x &&
                constant_near(plan, plan.nodes[pow].inputs[1], 3.0);
    } else if (mul >= 0) {
      const int square = other_input(plan.nodes[mul], candidate_x);
      const int sq = sole_producer(plan, uses, square, "Mul");
      is_cube = sq >= 0 && plan.nodes[sq].inputs[0] == candidate_x &&
                plan.nodes[sq].inputs[1] == candidate_x;
    }
    if (!is_cube) continue;
    x = candidate_x;
    return match_gelu_tail(plan, uses, x, plan.nodes[tanh].outputs[0]);
  }
  return -1;
}

// Mul(x, Sigmoid(x)).
int match_silu(const Plan& plan, const Uses& uses, int sigmoid, int& x) {
  x = plan.nodes[sigmoid].inputs[0];
  const int mul = uses.sole_reader(plan.nodes[sigmoid].outputs[0]);
  if (!is_op(plan, mul, "Mul") || other_input(plan.nodes[mul], plan.nodes[sigmoid].outputs[0]) != x)
    return -1;
  return mul;
}

bool try_activation(Plan& plan, const Uses& uses, int seed) {
  int x = -1, last = -1;
  kernels::Activation activation = kernels::Activation::kNone;
  if (is_op(plan, seed, "Sigmoid")) {
    last = match_silu(plan, uses, seed, x);
    activation = kernels::Activation::kSilu;
  } else if (is_op(plan, seed, "Erf")) {
    last = match_gelu_erf(plan, uses, seed, x);
    activation = kernels::Activation::kGeluErf;
  } else if (is_op(plan, seed, "Tanh")) {
    last = match_gelu_tanh(plan, uses, seed, x);
    activation = kernels::Activation::kGeluTanh;
  }
  if (last < 0 || x < 0) return false;
  PlannedNode node;
  node.def = &synthetic(plan, *plan.nodes[last].def, "edgelm.Activation");
  node.fn = &activation_op;
  node.inputs = {x};
  node.outputs = {plan.nodes[last].outputs[0]};
  node.prepared = std::make_shared<kernels::Activation>(activation);
  plan.nodes[last] = std::move(node);  // the rest of the chain is now unread
  ++plan.fused;
  return true;
}

// Linear -> activation, the Linear's output read by nothing else: the GEMM applies it as it
// stores.
void fuse_linear_activation(Plan& plan) {
  const Uses uses(plan);
  for (PlannedNode& act : plan.nodes) {
    if (act.def->op_type != "edgelm.Activation") continue;
    const int x = act.inputs[0];
    const int linear = uses.producer[x];
    if (!is_op(plan, linear, "edgelm.Linear") || uses.sole_reader(x) < 0) continue;
    const auto& packed = *static_cast<const PackedLinear*>(plan.nodes[linear].prepared.get());
    if ((packed.gemm.empty() && packed.int8.empty()) ||
        packed.activation != kernels::Activation::kNone)
      continue;
    auto fused = std::make_shared<PackedLinear>(packed);
    fused->activation = *static_cast<const kernels::Activation*>(act.prepared.get());
    plan.nodes[linear].prepared = std::move(fused);
    plan.nodes[linear].outputs[0] = act.outputs[0];
    act.outputs[0] = -1;  // dead now
    act.inputs.clear();
    ++plan.fused;
  }
}

// ---- Transposes around activation x activation MatMuls (attention) ----

// The explicit perm of Transpose node `t` (a missing perm reverses an unknown rank: not folded).
const std::vector<int64_t>* transpose_perm(const Plan& plan, int t) {
  if (!is_op(plan, t, "Transpose")) return nullptr;
  const AttributeDef* perm = plan.nodes[t].def->attr("perm");
  return perm && perm->ints.size() >= 2 ? &perm->ints : nullptr;
}

// MatMul(Transpose(x), Transpose(y)) -> Transpose: the GEMM reads x and y through strides and
// writes the product in the transposed layout (attention's head split/merge and K^T), so the
// transposed copies are never made.
void fuse_matmul_transposes(Plan& plan) {
  for (size_t i = 0; i < plan.nodes.size(); ++i) {
    if (plan.nodes[i].def->op_type != "MatMul" || plan.nodes[i].inputs.size() != 2) continue;
    const Uses uses(plan);
    PlannedNode& mm = plan.nodes[i];
    auto perms = std::make_shared<MatMulPerms>();
    std::vector<int> inputs = mm.inputs;
    for (int side = 0; side < 2; ++side) {
      const int value = mm.inputs[side];
      const int t = value >= 0 ? uses.producer[value] : -1;
      const std::vector<int64_t>* perm = transpose_perm(plan, t);
      if (!perm || uses.sole_reader(value) != static_cast<int>(i)) continue;
      // A's rows must stay contiguous for the GEMM; B is packed, so any order works.
      if (side == 0 && perm->back() != static_cast<int64_t>(perm->size()) - 1) continue;
      (side == 0 ? perms->a : perms->b) = *perm;
      inputs[side] = plan.nodes[t].inputs[0];
    }
    int out = mm.outputs[0];
    const int reader = uses.sole_reader(out);
    const std::vector<int64_t>* out_perm = transpose_perm(plan, reader);
    // The product's rank is only known when a folded input fixes it (and both agree).
    const size_t rank = !perms->a.empty() ? perms->a.size() : perms->b.size();
    const bool ranks_agree =
        perms->a.empty() || perms->b.empty() || perms->a.size() == perms->b.size();
    if (out_perm && rank == out_perm->size() && ranks_agree &&
        out_perm->back() == static_cast<int64_t>(out_perm->size()) - 1) {
      perms->out = *out_perm;
      out = plan.nodes[reader].outputs[0];
      plan.nodes[reader].outputs[0] = -1;  // dead now
      plan.nodes[reader].inputs.clear();
    }
    if (perms->a.empty() && perms->b.empty() && perms->out.empty()) continue;
    PlannedNode node;
    node.def = &synthetic(plan, *mm.def, "edgelm.PermutedMatMul");
    node.fn = &permuted_matmul_op;
    node.inputs = inputs;
    node.outputs = {out};
    node.prepared = std::move(perms);
    plan.nodes[i] = std::move(node);  // the folded Transposes are unread now
    ++plan.fused;
  }
}

// ---- Attention: Q K -> scale -> mask -> Softmax -> P V as one node ----

// The folded Transposes of a MatMul or PermutedMatMul node (none for MatMul); null otherwise.
const MatMulPerms* matmul_perms(const Plan& plan, int node) {
  static const MatMulPerms kNoPerms;
  if (node < 0 || plan.nodes[node].inputs.size() != 2) return nullptr;
  if (is_op(plan, node, "MatMul")) return &kNoPerms;
  if (is_op(plan, node, "edgelm.PermutedMatMul"))
    return static_cast<const MatMulPerms*>(plan.nodes[node].prepared.get());
  return nullptr;
}

// The producer of `value` when `value` has exactly one reader and is no graph output, else -1.
int single_use_producer(const Uses& uses, int value) {
  return value >= 0 && uses.sole_reader(value) >= 0 ? uses.producer[value] : -1;
}

// value = [Mul(., c) | Div(., c)](Q K) with c a constant scalar: fills the nodes and the scale.
bool match_scores(const Plan& plan, const Uses& uses, int value, AttentionSpec& spec,
                  int& scale_node, int& qk_node) {
  scale_node = -1;
  spec.scale_op = AttentionSpec::Scale::kNone;
  int node = single_use_producer(uses, value);
  if (is_op(plan, node, "Mul") && plan.nodes[node].inputs.size() == 2) {
    for (int side = 0; side < 2 && scale_node < 0; ++side) {
      if (constant_scalar(plan, plan.nodes[node].inputs[side], spec.scale)) {
        scale_node = node;
        spec.scale_op = AttentionSpec::Scale::kMul;
        value = plan.nodes[node].inputs[1 - side];
      }
    }
  } else if (is_op(plan, node, "Div") && plan.nodes[node].inputs.size() == 2 &&
             constant_scalar(plan, plan.nodes[node].inputs[1], spec.scale)) {
    scale_node = node;
    spec.scale_op = AttentionSpec::Scale::kDiv;
    value = plan.nodes[node].inputs[0];
  }
  if (scale_node >= 0) node = single_use_producer(uses, value);
  const MatMulPerms* perms = matmul_perms(plan, node);
  if (!perms || !perms->out.empty()) return false;
  spec.qk = *perms;
  qk_node = node;
  return true;
}

// Seeded at a last-axis Softmax. The chain's intermediate values must have no other reader;
// the Softmax's input may pass through a Cast to float (Llama exports softmax(x.float())).
bool try_attention(Plan& plan, const Uses& uses, int softmax) {
  const PlannedNode& sm = plan.nodes[softmax];
  const AttributeDef* axis = sm.def->attr("axis");
  if (sm.inputs.size() != 1 || sm.outputs.size() != 1 || (axis && axis->i != -1)) return false;
  auto spec = std::make_shared<AttentionSpec>();
  const int pv = uses.sole_reader(sm.outputs[0]);
  const MatMulPerms* pv_perms = matmul_perms(plan, pv);
  if (!pv_perms || !pv_perms->a.empty() || plan.nodes[pv].inputs[0] != sm.outputs[0] ||
      plan.nodes[pv].inputs[1] == sm.outputs[0])
    return false;
  spec->pv = *pv_perms;
  int merge = -1;  // the head-merge Transpose after P V, when it is not folded yet
  if (spec->pv.out.empty()) {
    const int t = uses.sole_reader(plan.nodes[pv].outputs[0]);
    const std::vector<int64_t>* perm = transpose_perm(plan, t);
    if (perm && perm->size() == 4 && perm->back() == 3) {
      spec->pv.out = *perm;
      merge = t;
    }
  }
  int value = sm.inputs[0];
  const int cast = single_use_producer(uses, value);
  if (is_op(plan, cast, "Cast")) {
    const AttributeDef* to = plan.nodes[cast].def->attr("to");
    if (!to || to->i != static_cast<int64_t>(DataType::kFloat)) return false;
    value = plan.nodes[cast].inputs[0];
  }
  int mask_node = -1, mask_value = -1, scale_node = -1, qk = -1;
  const int m = single_use_producer(uses, value);
  if (is_op(plan, m, "Add") && plan.nodes[m].inputs.size() == 2) {
    for (int side = 0; side < 2 && mask_node < 0; ++side) {
      if (match_scores(plan, uses, plan.nodes[m].inputs[side], *spec, scale_node, qk)) {
        mask_node = m;
        mask_value = plan.nodes[m].inputs[1 - side];
        spec->mask = AttentionSpec::Mask::kAdd;
      }
    }
  } else if (is_op(plan, m, "Where") && plan.nodes[m].inputs.size() == 3) {
    const auto& in = plan.nodes[m].inputs;
    if (constant_scalar(plan, in[1], spec->fill) &&
        match_scores(plan, uses, in[2], *spec, scale_node, qk)) {
      spec->mask = AttentionSpec::Mask::kWhereFillIfTrue;
    } else if (constant_scalar(plan, in[2], spec->fill) &&
               match_scores(plan, uses, in[1], *spec, scale_node, qk)) {
      spec->mask = AttentionSpec::Mask::kWhereFillIfFalse;
    }
    if (spec->mask != AttentionSpec::Mask::kNone) {
      mask_node = m;
      mask_value = in[0];
    }
  }
  if (mask_node < 0 && !match_scores(plan, uses, value, *spec, scale_node, qk)) return false;

  const int cast_node = is_op(plan, cast, "Cast") ? cast : -1;
  std::vector<int> chain{qk, scale_node, mask_node, cast_node, softmax, pv, merge};
  chain.erase(std::remove(chain.begin(), chain.end(), -1), chain.end());
  // The fused node's inputs: every value the chain reads but does not compute.
  std::vector<int> inputs;
  std::vector<int> computed;
  for (int n : chain) {
    if (plan.nodes[n].outputs.size() != 1) return false;
    for (int id : plan.nodes[n].inputs) {
      if (id < 0) return false;
      const bool internal = std::find(computed.begin(), computed.end(), id) != computed.end();
      if (!internal && std::find(inputs.begin(), inputs.end(), id) == inputs.end())
        inputs.push_back(id);
    }
    computed.push_back(plan.nodes[n].outputs[0]);
  }
  auto slot = [&](int id) {
    const auto c = std::find(computed.begin(), computed.end(), id);
    if (c != computed.end()) return static_cast<int>(inputs.size() + (c - computed.begin()));
    return static_cast<int>(std::find(inputs.begin(), inputs.end(), id) - inputs.begin());
  };
  for (int n : chain) {
    AttentionSpec::Step step{plan.nodes[n].def, plan.nodes[n].fn, plan.nodes[n].prepared, {}};
    for (int id : plan.nodes[n].inputs) step.inputs.push_back(slot(id));
    spec->steps.push_back(std::move(step));
  }
  spec->q = slot(plan.nodes[qk].inputs[0]);
  spec->k = slot(plan.nodes[qk].inputs[1]);
  spec->v = slot(plan.nodes[pv].inputs[1]);
  if (mask_value >= 0) spec->mask_input = slot(mask_value);
  const int last = chain.back();
  PlannedNode node;
  node.def = &synthetic(plan, *plan.nodes[last].def, "edgelm.Attention");
  node.fn = &attention_op;
  node.inputs = std::move(inputs);
  node.outputs = {plan.nodes[last].outputs[0]};
  node.prepared = std::move(spec);
  plan.nodes[last] = std::move(node);  // the rest of the chain is now unread
  ++plan.fused;
  return true;
}

void fuse_attention(Plan& plan) {
  for (size_t i = 0; i < plan.nodes.size(); ++i) {
    if (plan.nodes[i].def->op_type != "Softmax") continue;
    const Uses uses(plan);
    try_attention(plan, uses, static_cast<int>(i));
  }
}

}  // namespace

void fuse_norms_and_activations(Plan& plan) {
  for (size_t i = 0; i < plan.nodes.size(); ++i) {
    const Uses uses(plan);
    if (plan.nodes[i].outputs.empty() || plan.nodes[i].outputs[0] < 0) continue;
    if (try_rms_norm(plan, uses, static_cast<int>(i))) continue;
    if (try_activation(plan, uses, static_cast<int>(i))) continue;
    try_layer_norm(plan, uses, static_cast<int>(i));
  }
  remove_dead_nodes(plan);
}

void fuse_linear(Plan& plan, const PlanOptions& options) {
  fuse_integer_linear(plan, options);
  remove_dead_nodes(plan);
  fuse_float_linear(plan, options);
  remove_dead_nodes(plan);
  fuse_linear_activation(plan);
  remove_dead_nodes(plan);
  fuse_matmul_transposes(plan);
  remove_dead_nodes(plan);
  fuse_attention(plan);
  remove_dead_nodes(plan);
}

}  // namespace edgelm::onnx
