#include "edgelm/onnx/session.h"

#include <chrono>
#include <unordered_set>

#include "format/mapped_file.h"
#include "onnx/graph.h"

namespace edgelm::onnx {

struct Session::Impl {
  ModelDef model;
  SessionOptions options;
  std::unique_ptr<ThreadPool> pool;
  Plan plan;
  std::unique_ptr<Arena> arena;
  std::vector<ValueInfo> inputs;
  std::vector<ValueInfo> outputs;
  std::vector<const ValueInfoDef*> input_defs;  // parallel to plan.input_ids
  SessionStats stats;
  std::string source;
};

Result<SessionOptions> SessionOptions::from_config(const Config& config) {
  if (config.provider != "cpu") {
    return make_error(ErrorCode::kUnsupported,
                      "onnx: provider '" + config.provider + "' is not available (cpu only)");
  }
  SessionOptions options;
  options.threads = config.resolved_threads();
  options.use_mmap = config.use_mmap;
  options.quant_bits = config.quant_bits;
  return options;
}

namespace {

ValueInfo public_info(const ValueInfoDef& def) {
  return {def.name, def.dtype, def.dims};
}

Result<std::unique_ptr<Session::Impl>> prepare(ModelDef model, const SessionOptions& options,
                                               std::string source,
                                               std::chrono::steady_clock::time_point start) {
  if (options.quant_bits != 0 && options.quant_bits != 4 && options.quant_bits != 8) {
    return make_error(ErrorCode::kInvalidArgument, "onnx: quant_bits must be 0, 4 or 8");
  }
  auto impl = std::make_unique<Session::Impl>();
  impl->model = std::move(model);
  impl->options = options;
  impl->source = std::move(source);
  impl->pool = std::make_unique<ThreadPool>(std::max(1, options.threads));
  impl->arena = std::make_unique<Arena>(options.max_tensor_bytes);
  EDGELM_TRY(auto order, validate_model(impl->model, impl->source));
  PlanOptions plan_options{options.optimize, options.quant_bits, options.max_tensor_bytes,
                           impl->pool.get()};
  auto plan = build_plan(impl->model, order, plan_options);
  if (!plan) return make_error(plan.error().code, impl->source + ": " + plan.error().message);
  impl->plan = std::move(*plan);
  for (int id : impl->plan.input_ids) {
    for (const auto& def : impl->model.graph.inputs) {
      if (def.name == impl->plan.value_names[id]) {
        impl->inputs.push_back(public_info(def));
        impl->input_defs.push_back(&def);
        break;
      }
    }
  }
  for (const auto& def : impl->model.graph.outputs) impl->outputs.push_back(public_info(def));
  impl->stats.nodes_in_file = static_cast<int64_t>(impl->model.graph.nodes.size());
  impl->stats.nodes_scheduled = static_cast<int64_t>(impl->plan.nodes.size());
  impl->stats.folded_nodes = impl->plan.folded;
  impl->stats.fused_patterns = impl->plan.fused;
  impl->stats.load_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return impl;
}

}  // namespace

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::~Session() = default;

Result<std::unique_ptr<Session>> Session::open(const std::filesystem::path& path,
                                               const SessionOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  EDGELM_TRY(ModelDef model, load_model_file(path, options.use_mmap));
  EDGELM_TRY(auto impl, prepare(std::move(model), options, path.filename().string(), start));
  return std::unique_ptr<Session>(new Session(std::move(impl)));
}

Result<std::unique_ptr<Session>> Session::from_bytes(std::span<const uint8_t> bytes,
                                                     const SessionOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  LoadOptions load;
  load.source = "model";
  EDGELM_TRY(ModelDef model, parse_model(bytes, nullptr, load));
  EDGELM_TRY(auto impl, prepare(std::move(model), options, "model", start));
  return std::unique_ptr<Session>(new Session(std::move(impl)));
}

const std::vector<ValueInfo>& Session::inputs() const {
  return impl_->inputs;
}
const std::vector<ValueInfo>& Session::outputs() const {
  return impl_->outputs;
}
const SessionStats& Session::stats() const {
  return impl_->stats;
}

Result<std::vector<Tensor>> Session::run(const std::vector<std::string>& output_names,
                                         const std::vector<std::pair<std::string, Tensor>>& feeds) {
  Impl& s = *impl_;
  Plan& plan = s.plan;
  auto bad = [&](const std::string& what) {
    return make_error(ErrorCode::kInvalidArgument, s.source + ": " + what);
  };
  std::vector<Tensor> values(plan.value_names.size());
  std::vector<bool> fed(plan.value_names.size(), false);
  for (const auto& [name, tensor] : feeds) {
    size_t k = 0;
    while (k < plan.input_ids.size() && plan.value_names[plan.input_ids[k]] != name) ++k;
    if (k == plan.input_ids.size()) return bad("'" + name + "' is not an input of the model");
    const ValueInfoDef& def = *s.input_defs[k];
    if (tensor.dtype() != def.dtype) {
      return bad("input '" + name + "' must be " + data_type_name(def.dtype) + ", got " +
                 data_type_name(tensor.dtype()));
    }
    if (def.has_shape) {
      if (tensor.shape().size() != def.dims.size()) {
        return bad("input '" + name + "' must have rank " + std::to_string(def.dims.size()) +
                   ", got shape " + shape_string(tensor.shape()));
      }
      for (size_t d = 0; d < def.dims.size(); ++d) {
        if (def.dims[d] >= 0 && def.dims[d] != tensor.shape()[d]) {
          return bad("input '" + name + "' dimension " + std::to_string(d) + " must be " +
                     std::to_string(def.dims[d]) + ", got shape " + shape_string(tensor.shape()));
        }
      }
    }
    values[plan.input_ids[k]] = tensor;
    fed[plan.input_ids[k]] = true;
  }
  for (int id : plan.input_ids) {
    if (!fed[id]) return bad("input '" + plan.value_names[id] + "' is not fed");
  }
  std::vector<int> wanted;
  if (output_names.empty()) {
    wanted = plan.output_ids;
  } else {
    for (const auto& name : output_names) {
      auto it = plan.value_ids.find(name);
      if (it == plan.value_ids.end() || std::find(plan.output_ids.begin(), plan.output_ids.end(),
                                                  it->second) == plan.output_ids.end()) {
        return bad("'" + name + "' is not an output of the model");
      }
      wanted.push_back(it->second);
    }
  }

  Arena& arena = *s.arena;
  arena.reclaim();
  (void)arena.take_requested_bytes();
  const int64_t opset = s.model.default_opset();
  std::vector<const Tensor*> inputs;
  std::vector<Tensor> outputs;
  auto clear = [&] {
    for (auto& v : values) arena.release(std::move(v));
  };
  for (const PlannedNode& node : plan.nodes) {
    inputs.clear();
    for (int id : node.inputs) {
      if (id < 0) {
        inputs.push_back(nullptr);
        continue;
      }
      const Tensor* t = !plan.constants[id].empty() ? &plan.constants[id] : &values[id];
      if (t->empty()) {
        clear();
        return make_error(ErrorCode::kInternal, s.source + ": " + node.def->label() + ": input '" +
                                                    plan.value_names[id] + "' was not computed");
      }
      inputs.push_back(t);
    }
    outputs.assign(node.outputs.size(), Tensor());
    OpContext ctx{*node.def, opset, s.pool.get(), &arena, node.prepared.get()};
    auto status = node.fn(ctx, inputs, outputs);
    if (!status) {
      clear();
      Error e = std::move(status).error();
      e.message = s.source + ": " + e.message;
      return e;
    }
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      if (node.outputs[k] >= 0) values[node.outputs[k]] = std::move(outputs[k]);
    }
    for (int id : node.release) arena.release(std::move(values[id]));
  }
  std::vector<Tensor> result;
  for (int id : wanted) {
    const Tensor& t = !plan.constants[id].empty() ? plan.constants[id] : values[id];
    if (t.empty()) {
      clear();
      return make_error(ErrorCode::kInternal,
                        s.source + ": output '" + plan.value_names[id] + "' was not computed");
    }
    result.push_back(t);
    arena.lend(t);
  }
  clear();
  s.stats.peak_arena_bytes = std::max(s.stats.peak_arena_bytes, arena.peak_bytes());
  s.stats.last_run_value_bytes = arena.take_requested_bytes();
  return result;
}

}  // namespace edgelm::onnx
