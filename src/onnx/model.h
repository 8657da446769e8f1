// The parts of an ONNX ModelProto edgelm uses, decoded from the wire format with every size
// checked. Tensor data stays in the (mapped) file where it is aligned.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "edgelm/error.h"
#include "edgelm/onnx/tensor.h"
#include "format/mapped_file.h"

namespace edgelm::onnx {

// AttributeProto.AttributeType values.
enum class AttrType : int32_t {
  kUndefined = 0,
  kFloat = 1,
  kInt = 2,
  kString = 3,
  kTensor = 4,
  kGraph = 5,
  kFloats = 6,
  kInts = 7,
  kStrings = 8,
  kTensors = 9,
  kGraphs = 10,
};

struct AttributeDef {
  std::string name;
  AttrType type = AttrType::kUndefined;
  float f = 0;
  int64_t i = 0;
  std::string s;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  Tensor t;  // kTensor
};

struct NodeDef {
  std::string name;
  std::string op_type;
  std::string domain;
  std::vector<std::string> inputs;  // "" marks an omitted optional input
  std::vector<std::string> outputs;
  std::vector<AttributeDef> attributes;

  const AttributeDef* attr(std::string_view attr_name) const;
  // "node 'name' (Op)" for error messages.
  std::string label() const;
};

struct ValueInfoDef {
  std::string name;
  DataType dtype = DataType::kUndefined;
  bool has_shape = false;
  std::vector<int64_t> dims;  // -1: symbolic or unknown
};

struct InitializerDef {
  std::string name;
  Tensor value;
  // Where the bytes came from, for the quantizer's rewrite: true when the file held raw_data.
  bool external = false;
};

struct GraphDef {
  std::string name;
  std::vector<NodeDef> nodes;
  std::vector<InitializerDef> initializers;
  std::vector<ValueInfoDef> inputs;
  std::vector<ValueInfoDef> outputs;
  std::vector<ValueInfoDef> value_infos;
};

struct ModelDef {
  int64_t ir_version = 0;
  std::map<std::string, int64_t> opsets;  // domain ("" for ai.onnx) -> version
  std::string producer;
  GraphDef graph;
  // The model file and external data files whose bytes initializers view (when they were opened
  // from files): fusion gives back the pages of weights it has copied into packed form.
  std::vector<std::shared_ptr<const format::MappedFile>> files;
  int64_t default_opset() const;
};

struct LoadOptions {
  bool use_mmap = true;
  std::optional<std::filesystem::path> base_dir;  // for external data; none: refuse it
  std::string source = "model";                   // file name prefixing errors
  // The file `bytes` come from, if any: pages of raw_data the loader had to copy (misaligned)
  // are given back to it, since only the copy is read afterwards.
  const format::MappedFile* file = nullptr;
};

// Decodes and structurally checks a model held in `bytes`, which `owner` keeps alive (tensors
// view into it). External data files are mapped and kept alive by the tensors that use them.
Result<ModelDef> parse_model(std::span<const uint8_t> bytes, std::shared_ptr<const void> owner,
                             const LoadOptions& options);
// Maps (or reads) a file and parses it.
Result<ModelDef> load_model_file(const std::filesystem::path& path, bool use_mmap);

// Graph-level checks: opset range, unique definitions, dangling names, cycles, supported
// operators (all unsupported ones listed by op type and node), attribute types, data types.
// Returns the nodes in a topological order (indices into graph.nodes).
Result<std::vector<size_t>> validate_model(const ModelDef& model, std::string_view source);

}  // namespace edgelm::onnx
