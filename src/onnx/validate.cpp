// Graph-level validation of an untrusted model: everything that can be checked before running.
#include <algorithm>
#include <deque>
#include <map>
#include <set>
#include <unordered_map>

#include "onnx/model.h"
#include "onnx/ops.h"

namespace edgelm::onnx {
namespace {

constexpr int64_t kMinOpset = 13;
constexpr int64_t kMaxOpset = 21;

Error invalid(std::string_view source, const std::string& what) {
  return make_error(ErrorCode::kInvalidFormat, std::string(source) + ": " + what);
}

// Attributes edgelm reads, with the type it reads them as.
AttrType expected_attr_type(std::string_view name) {
  static const std::map<std::string_view, AttrType> table = {
      {"axis", AttrType::kInt},
      {"to", AttrType::kInt},
      {"transA", AttrType::kInt},
      {"transB", AttrType::kInt},
      {"keepdims", AttrType::kInt},
      {"allowzero", AttrType::kInt},
      {"upper", AttrType::kInt},
      {"start", AttrType::kInt},
      {"end", AttrType::kInt},
      {"value_int", AttrType::kInt},
      {"noop_with_empty_axes", AttrType::kInt},
      {"epsilon", AttrType::kFloat},
      {"alpha", AttrType::kFloat},
      {"beta", AttrType::kFloat},
      {"value_float", AttrType::kFloat},
      {"perm", AttrType::kInts},
      {"axes", AttrType::kInts},
      {"split", AttrType::kInts},
      {"value_ints", AttrType::kInts},
      {"value_floats", AttrType::kFloats},
      {"value", AttrType::kTensor},
  };
  auto it = table.find(name);
  return it == table.end() ? AttrType::kUndefined : it->second;
}

bool is_float_type(DataType t) {
  return t == DataType::kFloat;
}

// Output types of a node from its input types (kUndefined: not known statically). An error when
// the types cannot work, so a file with mixed-up types fails at load rather than mid-run.
Status infer_types(const NodeDef& node, const std::vector<DataType>& in, std::vector<DataType>& out,
                   std::string_view source) {
  auto known = [](DataType t) { return t != DataType::kUndefined; };
  auto fail = [&](const std::string& what) { return invalid(source, node.label() + ": " + what); };
  const std::string& op = node.op_type;
  std::fill(out.begin(), out.end(), DataType::kUndefined);
  auto same_inputs = [&](size_t count) -> Status {
    for (size_t i = 1; i < std::min(count, in.size()); ++i) {
      if (known(in[0]) && known(in[i]) && in[0] != in[i]) {
        return fail("inputs have different types " + data_type_name(in[0]) + " and " +
                    data_type_name(in[i]));
      }
    }
    return {};
  };
  if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Concat" || op == "Max" ||
      op == "Min") {
    EDGELM_CHECK(same_inputs(in.size()));
    out[0] = in[0];
  } else if (op == "Equal" || op == "Less" || op == "Greater") {
    EDGELM_CHECK(same_inputs(2));
    out[0] = DataType::kBool;
  } else if (op == "Not" || op == "And" || op == "Or") {
    for (DataType t : in) {
      if (known(t) && t != DataType::kBool)
        return fail("inputs must be bool, got " + data_type_name(t));
    }
    out[0] = DataType::kBool;
  } else if (op == "Where") {
    if (known(in[0]) && in[0] != DataType::kBool) return fail("condition must be bool");
    if (known(in[1]) && known(in[2]) && in[1] != in[2]) return fail("X and Y have different types");
    out[0] = known(in[1]) ? in[1] : in[2];
  } else if (op == "Sqrt" || op == "Reciprocal" || op == "Erf" || op == "Tanh" || op == "Sigmoid" ||
             op == "Relu" || op == "Cos" || op == "Sin" || op == "Exp" || op == "Softmax" ||
             op == "LogSoftmax" || op == "ReduceMean" || op == "ReduceSum" || op == "ReduceMax" ||
             op == "Pow" || op == "MatMul" || op == "Gemm" || op == "LayerNormalization" ||
             op == "DynamicQuantizeLinear") {
    if (known(in[0]) && !is_float_type(in[0]))
      return fail("input must be float, got " + data_type_name(in[0]));
    if ((op == "MatMul" || op == "Gemm") && known(in[1]) && !is_float_type(in[1])) {
      return fail("B must be float, got " + data_type_name(in[1]));
    }
    out[0] = DataType::kFloat;
    if (op == "DynamicQuantizeLinear") {
      out[0] = DataType::kUint8;
      out[1] = DataType::kFloat;
      out[2] = DataType::kUint8;
    } else {
      for (size_t i = 1; i < out.size(); ++i) out[i] = DataType::kFloat;
    }
  } else if (op == "Shape" || op == "Size") {
    out[0] = DataType::kInt64;
  } else if (op == "Cast") {
    const AttributeDef* to = node.attr("to");
    if (!to) return fail("missing attribute 'to'");
    out[0] = static_cast<DataType>(to->i);
    if (data_type_size(out[0]) == 0) return fail("cannot cast to " + data_type_name(out[0]));
  } else if (op == "MatMulInteger") {
    for (size_t i = 0; i < 2; ++i) {
      if (known(in[i]) && in[i] != DataType::kUint8 && in[i] != DataType::kInt8) {
        return fail("inputs must be uint8 or int8, got " + data_type_name(in[i]));
      }
    }
    out[0] = DataType::kInt32;
  } else if (op == "QuantizeLinear") {
    out[0] = in.size() > 2 && known(in[2]) ? in[2] : DataType::kUint8;
  } else if (op == "DequantizeLinear") {
    out[0] = DataType::kFloat;
  } else if (op == "Constant") {
    if (const AttributeDef* v = node.attr("value"); v && !v->t.empty()) out[0] = v->t.dtype();
    if (node.attr("value_float") || node.attr("value_floats")) out[0] = DataType::kFloat;
    if (node.attr("value_int") || node.attr("value_ints")) out[0] = DataType::kInt64;
  } else if (op == "ConstantOfShape") {
    const AttributeDef* v = node.attr("value");
    out[0] = v && !v->t.empty() ? v->t.dtype() : DataType::kFloat;
  } else if (op == "Range") {
    EDGELM_CHECK(same_inputs(3));
    out[0] = in[0];
  } else {
    // Data movement (Reshape, Gather, Slice, Split, Transpose, ...): outputs keep the data type.
    std::fill(out.begin(), out.end(), in.empty() ? DataType::kUndefined : in[0]);
  }
  return {};
}

}  // namespace

Result<std::vector<size_t>> validate_model(const ModelDef& model, std::string_view source) {
  const GraphDef& g = model.graph;
  if (model.ir_version < 3) {
    return invalid(source, "ir_version " + std::to_string(model.ir_version) +
                               " is older than 3 (no opset_import)");
  }
  const int64_t opset = model.default_opset();
  if (opset == 0) return invalid(source, "no opset_import for the default ONNX domain");
  if (opset < kMinOpset || opset > kMaxOpset) {
    return make_error(ErrorCode::kUnsupported,
                      std::string(source) + ": opset " + std::to_string(opset) +
                          " is not supported (edgelm runs opsets " + std::to_string(kMinOpset) +
                          " to " + std::to_string(kMaxOpset) + ")");
  }

  // Every value is defined once: by a graph input, an initializer, or one node output.
  std::unordered_map<std::string, int64_t>
      producer;  // value -> node index, -1 for inputs/initializers
  std::unordered_map<std::string, DataType> types;
  for (const auto& init : g.initializers) {
    if (init.name.empty()) return invalid(source, "an initializer has no name");
    if (!producer.emplace(init.name, -1).second)
      return invalid(source, "initializer '" + init.name + "' is defined twice");
    types[init.name] = init.value.dtype();
  }
  for (const auto& input : g.inputs) {
    if (data_type_size(input.dtype) == 0) {
      return invalid(source, "graph input '" + input.name + "' has unsupported type " +
                                 data_type_name(input.dtype));
    }
    auto [it, fresh] = producer.emplace(input.name, -1);
    if (!fresh && types[input.name] != input.dtype) {
      return invalid(source, "graph input '" + input.name + "' and its initializer differ in type");
    }
    types[input.name] = input.dtype;
  }
  std::string unsupported;
  int64_t unsupported_count = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const NodeDef& node = g.nodes[i];
    for (const auto& out : node.outputs) {
      if (out.empty()) continue;
      if (!producer.emplace(out, static_cast<int64_t>(i)).second) {
        return invalid(source, node.label() + ": output '" + out + "' is already defined");
      }
    }
    const OpSpec* spec = node.domain.empty() ? find_op(node.op_type) : nullptr;
    if (!spec) {
      if (++unsupported_count <= 20) {
        if (!unsupported.empty()) unsupported += ", ";
        if (!node.domain.empty()) unsupported += node.domain + ".";
        unsupported += node.op_type + " (node '" + node.name + "')";
      }
      continue;
    }
    const int n_in = static_cast<int>(node.inputs.size()),
              n_out = static_cast<int>(node.outputs.size());
    if (n_in < spec->min_inputs || n_in > spec->max_inputs) {
      return invalid(source, node.label() + ": has " + std::to_string(n_in) + " inputs, expected " +
                                 std::to_string(spec->min_inputs) + ".." +
                                 std::to_string(spec->max_inputs));
    }
    if (n_out < spec->min_outputs || n_out > spec->max_outputs) {
      return invalid(source, node.label() + ": has " + std::to_string(n_out) +
                                 " outputs, expected " + std::to_string(spec->min_outputs) + ".." +
                                 std::to_string(spec->max_outputs));
    }
    for (int k = 0; k < spec->min_inputs; ++k) {
      if (node.inputs[k].empty())
        return invalid(source,
                       node.label() + ": required input " + std::to_string(k) + " is empty");
    }
    for (const auto& attr : node.attributes) {
      const AttrType want = expected_attr_type(attr.name);
      if (want != AttrType::kUndefined && attr.type != AttrType::kUndefined && attr.type != want) {
        return invalid(source, node.label() + ": attribute '" + attr.name + "' has the wrong type");
      }
    }
  }
  if (unsupported_count > 0) {
    return make_error(ErrorCode::kUnsupported,
                      std::string(source) + ": " + std::to_string(unsupported_count) +
                          " node(s) use operators edgelm does not support: " + unsupported +
                          (unsupported_count > 20 ? ", ..." : ""));
  }

  // Dangling references and the dependency graph.
  std::vector<std::vector<size_t>> consumers(g.nodes.size());
  std::vector<size_t> pending(g.nodes.size(), 0);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    std::set<int64_t> deps;
    for (const auto& in : g.nodes[i].inputs) {
      if (in.empty()) continue;
      auto it = producer.find(in);
      if (it == producer.end()) {
        return invalid(source, g.nodes[i].label() + ": input '" + in +
                                   "' is not produced by any node, input or initializer");
      }
      if (it->second >= 0) deps.insert(it->second);
    }
    for (int64_t d : deps) consumers[d].push_back(i);
    pending[i] = deps.size();
  }
  for (const auto& out : g.outputs) {
    if (!producer.count(out.name))
      return invalid(source, "graph output '" + out.name + "' is never produced");
  }
  if (g.outputs.empty()) return invalid(source, "graph has no outputs");

  // Kahn's algorithm, taking ready nodes in file order.
  std::vector<size_t> order;
  order.reserve(g.nodes.size());
  std::set<size_t> ready;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (pending[i] == 0) ready.insert(i);
  }
  while (!ready.empty()) {
    const size_t i = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(i);
    for (size_t c : consumers[i]) {
      if (--pending[c] == 0) ready.insert(c);
    }
  }
  if (order.size() != g.nodes.size()) {
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      if (pending[i] != 0)
        return invalid(source, "the graph has a cycle through " + g.nodes[i].label());
    }
  }

  // Static type inference along the schedule.
  for (size_t i : order) {
    const NodeDef& node = g.nodes[i];
    std::vector<DataType> in_types;
    for (const auto& in : node.inputs)
      in_types.push_back(in.empty() ? DataType::kUndefined : types[in]);
    std::vector<DataType> out_types(node.outputs.size());
    EDGELM_CHECK(infer_types(node, in_types, out_types, source));
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      if (!node.outputs[k].empty()) types[node.outputs[k]] = out_types[k];
    }
  }
  for (const auto& out : g.outputs) {
    const DataType t = types[out.name];
    if (out.dtype != DataType::kUndefined && t != DataType::kUndefined && t != out.dtype) {
      return invalid(source, "graph output '" + out.name + "' is declared " +
                                 data_type_name(out.dtype) + " but computed as " +
                                 data_type_name(t));
    }
  }
  return order;
}

}  // namespace edgelm::onnx
