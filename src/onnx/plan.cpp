#include <algorithm>

#include "onnx/graph.h"

namespace edgelm::onnx {

int Plan::id_of(const std::string& name) {
  auto [it, fresh] = value_ids.emplace(name, static_cast<int>(value_names.size()));
  if (fresh) {
    value_names.push_back(name);
    constants.emplace_back();
  }
  return it->second;
}

namespace {

// Evaluates a node whose inputs are all constants, storing its outputs as constants.
Status fold_node(Plan& plan, const PlannedNode& node, int64_t opset, const PlanOptions& options) {
  Arena arena(options.max_tensor_bytes);
  OpContext ctx{*node.def, opset, options.pool, &arena, node.prepared.get()};
  std::vector<const Tensor*> inputs;
  for (int id : node.inputs) inputs.push_back(id < 0 ? nullptr : &plan.constants[id]);
  std::vector<Tensor> outputs(node.outputs.size());
  EDGELM_CHECK(node.fn(ctx, inputs, outputs));
  for (size_t k = 0; k < node.outputs.size(); ++k) {
    if (node.outputs[k] >= 0) plan.constants[node.outputs[k]] = std::move(outputs[k]);
  }
  return {};
}

}  // namespace

void plan_liveness(Plan& plan) {
  std::vector<int> last_use(plan.value_names.size(), -1);
  for (size_t i = 0; i < plan.nodes.size(); ++i) {
    plan.nodes[i].release.clear();
    for (int id : plan.nodes[i].inputs) {
      if (id >= 0) last_use[id] = static_cast<int>(i);
    }
    // An output nobody reads is released right after its producer.
    for (int id : plan.nodes[i].outputs) {
      if (id >= 0 && last_use[id] < static_cast<int>(i)) last_use[id] = static_cast<int>(i);
    }
  }
  for (int id : plan.output_ids) last_use[id] = -1;  // handed to the caller
  for (size_t id = 0; id < last_use.size(); ++id) {
    if (last_use[id] >= 0 && plan.constants[id].empty())
      plan.nodes[last_use[id]].release.push_back(static_cast<int>(id));
  }
}

Result<Plan> build_plan(ModelDef& model, const std::vector<size_t>& order,
                        const PlanOptions& options) {
  Plan plan;
  GraphDef& g = model.graph;
  for (auto& init : g.initializers) plan.constants[plan.id_of(init.name)] = std::move(init.value);
  for (const auto& input : g.inputs) {
    const int id = plan.id_of(input.name);
    if (plan.constants[id].empty()) plan.input_ids.push_back(id);
  }
  for (size_t i : order) {
    const NodeDef& def = g.nodes[i];
    PlannedNode node;
    node.def = &def;
    node.fn = find_op(def.op_type)->fn;
    for (const auto& in : def.inputs) node.inputs.push_back(in.empty() ? -1 : plan.id_of(in));
    for (const auto& out : def.outputs) node.outputs.push_back(out.empty() ? -1 : plan.id_of(out));
    plan.nodes.push_back(std::move(node));
  }
  for (const auto& out : g.outputs) plan.output_ids.push_back(plan.id_of(out.name));

  if (options.optimize) {
    // Constant folding: one pass in schedule order sees every constant subgraph.
    std::vector<PlannedNode> kept;
    for (PlannedNode& node : plan.nodes) {
      const bool all_constant = std::all_of(node.inputs.begin(), node.inputs.end(), [&](int id) {
        return id < 0 || !plan.constants[id].empty();
      });
      if (all_constant) {
        EDGELM_CHECK(fold_node(plan, node, model.default_opset(), options));
        ++plan.folded;
      } else {
        kept.push_back(std::move(node));
      }
    }
    plan.nodes = std::move(kept);
    fuse_norms_and_activations(plan);
    PlanOptions fusion = options;
    fusion.files = &model.files;
    fuse_linear(plan, fusion);
  }
  plan_liveness(plan);
  return plan;
}

}  // namespace edgelm::onnx
