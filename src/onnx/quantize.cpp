// quantize_dynamic: rewrites float MatMul/Gemm weights to 8 bits with standard operators.
// The output is written field by field from the input's own bytes, so everything edgelm does not
// touch (metadata, value_info, doc strings, other initializers) passes through unchanged.
#include "edgelm/onnx/quantize.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "format/mapped_file.h"
#include "onnx/model.h"
#include "onnx/proto_wire.h"

namespace edgelm::onnx {

Result<WeightType> parse_weight_type(std::string_view name) {
  if (name == "quint8" || name == "QUInt8") return WeightType::kQUInt8;
  if (name == "qint8" || name == "QInt8") return WeightType::kQInt8;
  return make_error(ErrorCode::kInvalidArgument,
                    "weight type '" + std::string(name) + "' (valid: quint8, qint8)");
}

namespace {

using wire::Writer;

struct QuantizedWeight {
  std::string q_name, scale_name, zp_name;
  DataType q_type;
  int64_t k = 0, n = 0;
  std::vector<uint8_t> values;  // [k][n]
  std::vector<float> scales;    // 1 or n
  std::vector<uint8_t> zps;     // 1 or n (int8 stored as its byte)
};

// Quantizes w (row-major [k][n], element (r, c) at w[r * rs + c * cs]) per tensor or per column.
QuantizedWeight quantize_weight(const float* w, int64_t k, int64_t n, int64_t rs, int64_t cs,
                                const QuantizeOptions& options) {
  QuantizedWeight q;
  q.k = k;
  q.n = n;
  q.q_type = options.weight_type == WeightType::kQInt8 ? DataType::kInt8 : DataType::kUint8;
  q.values.resize(static_cast<size_t>(k * n));
  const int64_t groups = options.per_channel ? n : 1;
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t c0 = options.per_channel ? g : 0, c1 = options.per_channel ? g + 1 : n;
    float lo = 0, hi = 0;  // the range holds 0 so that zero stays exact
    for (int64_t r = 0; r < k; ++r) {
      for (int64_t c = c0; c < c1; ++c) {
        const float v = w[r * rs + c * cs];
        if (std::isfinite(v)) {
          lo = std::min(lo, v);
          hi = std::max(hi, v);
        }
      }
    }
    float scale;
    int32_t zp, qmin, qmax;
    if (options.weight_type == WeightType::kQInt8) {  // symmetric, as ORT's default for int8
      const float absmax = std::max(-lo, hi);
      scale = absmax / 127.0f;
      zp = 0;
      qmin = -127;
      qmax = 127;
    } else {
      scale = (hi - lo) / 255.0f;
      qmin = 0;
      qmax = 255;
      zp = scale > 0 ? static_cast<int32_t>(std::nearbyint(std::clamp(-lo / scale, 0.0f, 255.0f)))
                     : 0;
    }
    if (!(scale > 0) || !std::isfinite(scale)) scale = 1.0f;
    q.scales.push_back(scale);
    q.zps.push_back(static_cast<uint8_t>(zp));
    for (int64_t r = 0; r < k; ++r) {
      for (int64_t c = c0; c < c1; ++c) {
        const float v = w[r * rs + c * cs];
        const float x = std::isfinite(v) ? std::nearbyint(v / scale) + static_cast<float>(zp)
                                         : static_cast<float>(zp);
        q.values[r * n + c] = static_cast<uint8_t>(static_cast<int32_t>(
            std::clamp(x, static_cast<float>(qmin), static_cast<float>(qmax))));
      }
    }
  }
  return q;
}

void write_tensor(Writer& out, const std::string& name, DataType type,
                  const std::vector<int64_t>& dims, std::span<const uint8_t> raw) {
  Writer t;
  for (int64_t d : dims) t.varint_field(1, static_cast<uint64_t>(d));
  t.varint_field(2, static_cast<uint64_t>(type));
  t.string_field(8, name);
  t.bytes_field(9, raw);
  out.bytes_field(5, t.bytes());
}

struct NodeOut {
  std::string op, name;
  std::vector<std::string> inputs, outputs;
  int64_t to = -1;  // Cast's attribute
};

void write_node(Writer& out, const NodeOut& n) {
  Writer w;
  for (const auto& i : n.inputs) w.string_field(1, i);
  for (const auto& o : n.outputs) w.string_field(2, o);
  w.string_field(3, n.name);
  w.string_field(4, n.op);
  if (n.to >= 0) {
    Writer a;
    a.string_field(1, "to");
    a.varint_field(3, static_cast<uint64_t>(n.to));
    a.varint_field(20, static_cast<uint64_t>(AttrType::kInt));
    w.bytes_field(5, a.bytes());
  }
  out.bytes_field(1, w.bytes());
}

class Rewriter {
 public:
  Rewriter(const ModelDef& model, const QuantizeOptions& options)
      : model_(model), options_(options) {
    for (const auto& init : model.graph.initializers) initializers_[init.name] = &init;
    for (const auto& in : model.graph.inputs) taken_.insert(in.name);
    for (const auto& init : model.graph.initializers) taken_.insert(init.name);
    for (const auto& node : model.graph.nodes) {
      for (const auto& o : node.outputs) taken_.insert(o);
      for (const auto& i : node.inputs) uses_[i]++;
    }
    for (const auto& out : model.graph.outputs) uses_[out.name]++;
    for (const auto& in : model.graph.inputs) overridable_.insert(in.name);
  }

  // Emits node `index` (quantized if it qualifies) into graph writer g.
  void emit_node(Writer& g, size_t index, std::span<const uint8_t> raw) {
    const NodeDef& node = model_.graph.nodes[index];
    const float* w = nullptr;
    int64_t k = 0, n = 0, rs = 0, cs = 0;
    std::string bias;
    if (!qualifies(node, w, k, n, rs, cs, bias)) {
      if (node.op_type == "MatMul" || node.op_type == "Gemm") ++report_.skipped;
      g.bytes_field(1, raw);
      return;
    }
    const std::string& a = node.inputs[0];
    const std::string& weight = node.inputs[1];
    const std::string key = weight + (rs == 1 ? "#t" : "");
    auto it = weights_.find(key);
    if (it == weights_.end()) {
      QuantizedWeight q = quantize_weight(w, k, n, rs, cs, options_);
      q.q_name = fresh(weight + "_quantized");
      q.scale_name = fresh(weight + "_scale");
      q.zp_name = fresh(weight + "_zero_point");
      it = weights_.emplace(key, std::move(q)).first;
    }
    const QuantizedWeight& q = it->second;
    replaced_uses_[weight]++;
    auto dq = activations_.find(a);
    if (dq == activations_.end()) {
      const std::array<std::string, 3> names = {fresh(a + "_quantized"), fresh(a + "_scale"),
                                                fresh(a + "_zero_point")};
      write_node(g, {"DynamicQuantizeLinear",
                     fresh_node(a + "_QuantizeLinear"),
                     {a},
                     {names[0], names[1], names[2]}});
      dq = activations_.emplace(a, names).first;
    }
    const auto& [aq, as, az] = dq->second;
    const std::string& y = node.outputs[0];
    const std::string integer = fresh(y + "_MatMulInteger"), cast = fresh(y + "_cast"),
                      scale = fresh(y + "_scale");
    write_node(g, {"MatMulInteger",
                   fresh_node(node.name + "_quant"),
                   {aq, q.q_name, az, q.zp_name},
                   {integer}});
    write_node(g, {"Cast",
                   fresh_node(node.name + "_cast"),
                   {integer},
                   {cast},
                   static_cast<int64_t>(DataType::kFloat)});
    write_node(g, {"Mul", fresh_node(node.name + "_scales_mul"), {as, q.scale_name}, {scale}});
    if (bias.empty()) {
      write_node(g, {"Mul", fresh_node(node.name + "_output_scale_mul"), {cast, scale}, {y}});
    } else {
      const std::string scaled = fresh(y + "_scaled");
      write_node(g, {"Mul", fresh_node(node.name + "_output_scale_mul"), {cast, scale}, {scaled}});
      write_node(g, {"Add", fresh_node(node.name + "_bias_add"), {scaled, bias}, {y}});
    }
    ++report_.quantized;
  }

  // True when every reader of the float weight was rewritten (so it can be dropped).
  bool weight_dropped(const std::string& name) const {
    auto it = replaced_uses_.find(name);
    if (it == replaced_uses_.end() || overridable_.count(name)) return false;
    return it->second == uses_.at(name);
  }

  void emit_new_initializers(Writer& g) const {
    for (const auto& [key, q] : weights_) {
      write_tensor(g, q.q_name, q.q_type, {q.k, q.n}, q.values);
      const std::vector<int64_t> dims =
          q.scales.size() == 1 ? std::vector<int64_t>{} : std::vector<int64_t>{q.n};
      write_tensor(g, q.scale_name, DataType::kFloat, dims,
                   {reinterpret_cast<const uint8_t*>(q.scales.data()), q.scales.size() * 4});
      write_tensor(g, q.zp_name, q.q_type, dims, q.zps);
    }
  }

  QuantizeReport& report() { return report_; }

 private:
  bool qualifies(const NodeDef& node, const float*& w, int64_t& k, int64_t& n, int64_t& rs,
                 int64_t& cs, std::string& bias) const {
    if (!node.domain.empty() || (node.op_type != "MatMul" && node.op_type != "Gemm")) return false;
    if (node.inputs.size() < 2 || node.outputs.size() != 1) return false;
    auto it = initializers_.find(node.inputs[1]);
    if (it == initializers_.end() || overridable_.count(node.inputs[1])) return false;
    const Tensor& t = it->second->value;
    if (t.dtype() != DataType::kFloat || t.rank() != 2 || t.numel() < options_.min_elements)
      return false;
    w = t.data<float>();
    bool trans_b = false;
    if (node.op_type == "Gemm") {
      const AttributeDef* ta = node.attr("transA");
      const AttributeDef* tb = node.attr("transB");
      const AttributeDef* alpha = node.attr("alpha");
      const AttributeDef* beta = node.attr("beta");
      if ((ta && ta->i != 0) || (alpha && alpha->f != 1.0f) || (beta && beta->f != 1.0f))
        return false;
      trans_b = tb && tb->i != 0;
      if (node.inputs.size() > 2) bias = node.inputs[2];
    }
    k = trans_b ? t.shape()[1] : t.shape()[0];
    n = trans_b ? t.shape()[0] : t.shape()[1];
    rs = trans_b ? 1 : n;  // element (r, c) of the [k][n] weight
    cs = trans_b ? k : 1;
    return true;
  }

  std::string fresh(const std::string& base) {
    std::string name = base;
    for (int i = 1; taken_.count(name); ++i) name = base + "_" + std::to_string(i);
    taken_.insert(name);
    return name;
  }
  std::string fresh_node(const std::string& base) {
    std::string name = base;
    for (int i = 1; node_names_.count(name); ++i) name = base + "_" + std::to_string(i);
    node_names_.insert(name);
    return name;
  }

  const ModelDef& model_;
  const QuantizeOptions& options_;
  std::unordered_map<std::string, const InitializerDef*> initializers_;
  std::unordered_set<std::string> taken_, node_names_, overridable_;
  std::unordered_map<std::string, int64_t> uses_, replaced_uses_;
  std::map<std::string, QuantizedWeight> weights_;
  std::unordered_map<std::string, std::array<std::string, 3>> activations_;
  QuantizeReport report_;
};

}  // namespace

Result<QuantizeReport> quantize_dynamic(const std::filesystem::path& in,
                                        const std::filesystem::path& out,
                                        const QuantizeOptions& options) {
  EDGELM_TRY(auto file, format::MappedFile::open(in, true));
  auto shared = std::make_shared<format::MappedFile>(std::move(file));
  LoadOptions load;
  load.base_dir = in.parent_path().empty() ? std::filesystem::path(".") : in.parent_path();
  load.source = in.filename().string();
  EDGELM_TRY(ModelDef model, parse_model(shared->bytes(), shared, load));
  EDGELM_TRY(const auto order, validate_model(model, load.source));
  Rewriter rewriter(model, options);

  // Top-level fields other than the graph are copied as they are (ModelProto has no fixed-width
  // fields); the graph is rebuilt from its own fields' bytes.
  std::span<const uint8_t> graph_bytes;
  Writer top;
  {
    wire::Reader reader(shared->bytes());
    wire::Field f;
    while (reader.next(f)) {
      if (f.number == 7 && f.type == wire::WireType::kBytes) {
        graph_bytes = f.bytes;
      } else if (f.type == wire::WireType::kBytes) {
        top.bytes_field(f.number, f.bytes);
      } else if (f.type == wire::WireType::kVarint) {
        top.varint_field(f.number, f.varint);
      }
    }
  }
  std::vector<std::span<const uint8_t>> node_bytes;
  std::vector<std::pair<uint32_t, std::span<const uint8_t>>> other_fields;
  std::vector<std::span<const uint8_t>> init_bytes;
  {
    wire::Reader reader(graph_bytes);
    wire::Field f;
    while (reader.next(f)) {
      if (f.type != wire::WireType::kBytes) continue;  // GraphProto has no scalar fields
      if (f.number == 1)
        node_bytes.push_back(f.bytes);
      else if (f.number == 5)
        init_bytes.push_back(f.bytes);
      else
        other_fields.emplace_back(f.number, f.bytes);
    }
  }
  Writer graph;
  for (size_t index : order) rewriter.emit_node(graph, index, node_bytes[index]);
  for (size_t i = 0; i < model.graph.initializers.size(); ++i) {
    const InitializerDef& init = model.graph.initializers[i];
    if (rewriter.weight_dropped(init.name)) continue;
    if (init.external) {  // inline: the output is one self-contained file
      write_tensor(graph, init.name, init.value.dtype(), init.value.shape(), init.value.bytes());
    } else {
      graph.bytes_field(5, init_bytes[i]);
    }
  }
  rewriter.emit_new_initializers(graph);
  for (const auto& [number, bytes] : other_fields) graph.bytes_field(number, bytes);
  top.bytes_field(7, graph.bytes());

  std::ofstream file_out(out, std::ios::binary | std::ios::trunc);
  if (!file_out) return make_error(ErrorCode::kIo, "cannot write '" + out.string() + "'");
  file_out.write(reinterpret_cast<const char*>(top.bytes().data()),
                 static_cast<std::streamsize>(top.bytes().size()));
  if (!file_out) return make_error(ErrorCode::kIo, "write to '" + out.string() + "' failed");
  QuantizeReport report = rewriter.report();
  report.bytes_in = shared->bytes().size();
  for (const auto& init : model.graph.initializers) {
    if (init.external) report.bytes_in += init.value.nbytes();
  }
  report.bytes_out = top.bytes().size();
  return report;
}

}  // namespace edgelm::onnx
