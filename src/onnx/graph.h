// The executable form of a validated graph: values numbered, nodes scheduled in topological
// order, constants folded, fused patterns replaced, and each value's last reader known so its
// buffer returns to the arena right after.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "edgelm/onnx/session.h"
#include "onnx/model.h"
#include "onnx/ops.h"

namespace edgelm::onnx {

struct PlannedNode {
  const NodeDef* def = nullptr;
  OpFn fn = nullptr;
  std::vector<int> inputs;   // value ids; -1 for an omitted optional input
  std::vector<int> outputs;  // value ids; -1 for an omitted optional output
  std::vector<int> release;  // values whose last reader is this node
  std::shared_ptr<const void> prepared;
};

struct Plan {
  std::vector<std::string> value_names;
  std::unordered_map<std::string, int> value_ids;
  std::vector<Tensor> constants;  // by value id; empty for values computed per run
  std::vector<PlannedNode> nodes;
  std::deque<NodeDef> synthetic_defs;  // definitions of fused nodes (stable addresses)
  std::vector<int> input_ids;
  std::vector<int> output_ids;
  int64_t folded = 0;
  int64_t fused = 0;

  int id_of(const std::string& name);
};

struct PlanOptions {
  bool optimize = true;
  int quant_bits = 0;
  uint64_t max_tensor_bytes = kDefaultMaxTensorBytes;
  ThreadPool* pool = nullptr;
  // Files the weights may view (ModelDef::files); null: never release pages.
  const std::vector<std::shared_ptr<const format::MappedFile>>* files = nullptr;
};

// Builds the plan for a validated model (order from validate_model). The plan takes the
// initializers' values (the model keeps their definitions), so that fusion can free the source of
// a weight it has packed.
Result<Plan> build_plan(ModelDef& model, const std::vector<size_t>& order,
                        const PlanOptions& options);

// Replaces MatMul/Gemm by constant weights (+ bias Add) with prepacked kernel calls, and the
// DynamicQuantizeLinear/MatMulInteger pattern quantize_dynamic writes by the int8 kernels, then
// folds Transposes around the remaining (activation x activation) MatMuls into their strides, and
// replaces Q K -> scale -> mask -> Softmax -> P V chains by one edgelm.Attention node.
void fuse_linear(Plan& plan, const PlanOptions& options);
// Replaces decomposed LayerNorm / RMSNorm / GELU subgraphs (opset 13 exports) by single ops.
void fuse_norms_and_activations(Plan& plan);
// Recomputes PlannedNode::release from the final node list.
void plan_liveness(Plan& plan);

}  // namespace edgelm::onnx
