// ModelProto decoding. Field numbers are those of onnx.proto (ModelProto.graph = 7, ...).
#include <cstring>
#include <fstream>
#include <limits>

#include "format/mapped_file.h"
#include "onnx/model.h"
#include "onnx/proto_wire.h"

namespace edgelm::onnx {
namespace {

using wire::Field;
using wire::Reader;
using wire::WireType;

// Count limits keep a hostile file from making us build huge vectors of tiny objects.
constexpr size_t kMaxNodes = 1 << 20;
constexpr size_t kMaxRank = 16;
constexpr size_t kMaxNameBytes = 4096;

Error format_error(const std::string& where, const std::string& what) {
  return make_error(ErrorCode::kInvalidFormat, where + ": " + what);
}

Status reader_status(const Reader& reader, const std::string& where) {
  if (reader.failed()) return format_error(where, "malformed protobuf: " + reader.error());
  return {};
}

Result<std::string> read_name(const Field& f, const std::string& where) {
  if (f.type != WireType::kBytes) return format_error(where, "expected a string field");
  if (f.bytes.size() > kMaxNameBytes) return format_error(where, "name longer than 4096 bytes");
  return std::string(wire::as_string(f.bytes));
}

// Repeated int64 in either packed or one-per-field encoding.
Status read_int64s(const Field& f, std::vector<int64_t>& out, const std::string& where) {
  if (f.type == WireType::kVarint) {
    out.push_back(static_cast<int64_t>(f.varint));
    return {};
  }
  if (f.type == WireType::kBytes && wire::unpack_varints(f.bytes, out)) return {};
  return format_error(where, "malformed repeated integer field " + std::to_string(f.number));
}

// Repeated fixed-width values (float, double) in packed or unpacked form, appended as raw bytes.
Status read_fixed(const Field& f, size_t width, std::vector<uint8_t>& out,
                  const std::string& where) {
  if ((width == 4 && f.type == WireType::kFixed32) ||
      (width == 8 && f.type == WireType::kFixed64)) {
    uint8_t bits[8];
    std::memcpy(bits, &f.varint, 8);  // little-endian host: the low bytes are the value
    out.insert(out.end(), bits, bits + width);
    return {};
  }
  if (f.type == WireType::kBytes && f.bytes.size() % width == 0) {
    out.insert(out.end(), f.bytes.begin(), f.bytes.end());
    return {};
  }
  return format_error(where, "malformed repeated fixed-width field " + std::to_string(f.number));
}

bool parse_decimal(std::string_view text, uint64_t& value) {
  if (text.empty() || text.size() > 19) return false;
  value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return true;
}

class ModelParser {
 public:
  ModelParser(std::shared_ptr<const void> owner, const LoadOptions& options)
      : owner_(std::move(owner)), options_(options) {}

  Result<ModelDef> parse(std::span<const uint8_t> bytes);

 private:
  Status parse_graph(std::span<const uint8_t> bytes, GraphDef& graph);
  Result<NodeDef> parse_node(std::span<const uint8_t> bytes, size_t index);
  Result<AttributeDef> parse_attribute(std::span<const uint8_t> bytes, const std::string& where);
  Result<InitializerDef> parse_tensor(std::span<const uint8_t> bytes, const std::string& where);
  Result<ValueInfoDef> parse_value_info(std::span<const uint8_t> bytes, const std::string& where);
  Result<Tensor> external_tensor(const std::string& name, DataType dtype, std::vector<int64_t> dims,
                                 const std::vector<std::pair<std::string, std::string>>& entries);

  std::string where(const std::string& what) const { return options_.source + ": " + what; }

  std::shared_ptr<const void> owner_;
  const LoadOptions& options_;
  std::map<std::string, std::shared_ptr<format::MappedFile>> external_files_;
};

Result<ModelDef> ModelParser::parse(std::span<const uint8_t> bytes) {
  ModelDef model;
  bool has_graph = false;
  Reader reader(bytes);
  Field f;
  const std::string here = options_.source;
  while (reader.next(f)) {
    switch (f.number) {
      case 1:  // ir_version
        if (f.type != WireType::kVarint) return format_error(here, "ir_version is not an integer");
        model.ir_version = static_cast<int64_t>(f.varint);
        break;
      case 2:  // producer_name
        if (f.type == WireType::kBytes)
          model.producer = std::string(wire::as_string(f.bytes)).substr(0, 256);
        break;
      case 7:  // graph
        if (f.type != WireType::kBytes) return format_error(here, "graph is not a message");
        if (has_graph) return format_error(here, "more than one graph");
        has_graph = true;
        EDGELM_CHECK(parse_graph(f.bytes, model.graph));
        break;
      case 8: {  // opset_import
        if (f.type != WireType::kBytes) return format_error(here, "opset_import is not a message");
        std::string domain;
        int64_t version = -1;
        Reader sub(f.bytes);
        Field g;
        while (sub.next(g)) {
          if (g.number == 1) {
            EDGELM_TRY(domain, read_name(g, here + ": opset_import.domain"));
          } else if (g.number == 2 && g.type == WireType::kVarint) {
            version = static_cast<int64_t>(g.varint);
          }
        }
        EDGELM_CHECK(reader_status(sub, here + ": opset_import"));
        if (domain == "ai.onnx") domain.clear();
        if (version < 1)
          return format_error(here,
                              "opset_import for domain '" + domain + "' has no valid version");
        if (model.opsets.count(domain))
          return format_error(here, "opset_import lists domain '" + domain + "' twice");
        model.opsets[domain] = version;
        break;
      }
      default:
        break;  // doc strings, metadata, functions, training info: not needed to run
    }
  }
  EDGELM_CHECK(reader_status(reader, here));
  if (bytes.empty()) return format_error(here, "file is empty");
  if (!has_graph) return format_error(here, "model has no graph");
  for (const auto& [location, file] : external_files_) model.files.push_back(file);
  return model;
}

Status ModelParser::parse_graph(std::span<const uint8_t> bytes, GraphDef& graph) {
  Reader reader(bytes);
  Field f;
  const std::string here = where("graph");
  while (reader.next(f)) {
    if (f.number != 2 && f.type != WireType::kBytes &&
        (f.number == 1 || f.number == 5 || f.number == 11 || f.number == 12 || f.number == 13)) {
      return format_error(here, "field " + std::to_string(f.number) + " is not a message");
    }
    switch (f.number) {
      case 1: {
        if (graph.nodes.size() >= kMaxNodes) return format_error(here, "more than 2^20 nodes");
        EDGELM_TRY(NodeDef node, parse_node(f.bytes, graph.nodes.size()));
        graph.nodes.push_back(std::move(node));
        break;
      }
      case 2: {
        EDGELM_TRY(graph.name, read_name(f, here + ".name"));
      } break;
      case 5: {
        const std::string w =
            here + ".initializer[" + std::to_string(graph.initializers.size()) + "]";
        EDGELM_TRY(InitializerDef init, parse_tensor(f.bytes, w));
        graph.initializers.push_back(std::move(init));
        break;
      }
      case 11:
      case 12:
      case 13: {
        auto& list = f.number == 11   ? graph.inputs
                     : f.number == 12 ? graph.outputs
                                      : graph.value_infos;
        const char* kind = f.number == 11   ? ".input["
                           : f.number == 12 ? ".output["
                                            : ".value_info[";
        EDGELM_TRY(ValueInfoDef info,
                   parse_value_info(f.bytes, here + kind + std::to_string(list.size()) + "]"));
        list.push_back(std::move(info));
        break;
      }
      case 15:
        return format_error(here, "sparse initializers are not supported");
      default:
        break;
    }
  }
  return reader_status(reader, here);
}

Result<NodeDef> ModelParser::parse_node(std::span<const uint8_t> bytes, size_t index) {
  NodeDef node;
  std::string here = where("node[" + std::to_string(index) + "]");
  Reader reader(bytes);
  Field f;
  while (reader.next(f)) {
    switch (f.number) {
      case 1: {
        EDGELM_TRY(std::string name, read_name(f, here + ".input"));
        node.inputs.push_back(std::move(name));
        break;
      }
      case 2: {
        EDGELM_TRY(std::string name, read_name(f, here + ".output"));
        node.outputs.push_back(std::move(name));
        break;
      }
      case 3: {
        EDGELM_TRY(node.name, read_name(f, here + ".name"));
      } break;
      case 4: {
        EDGELM_TRY(node.op_type, read_name(f, here + ".op_type"));
      } break;
      case 7: {
        EDGELM_TRY(node.domain, read_name(f, here + ".domain"));
      } break;
      case 5: {
        if (f.type != WireType::kBytes) return format_error(here, "attribute is not a message");
        EDGELM_TRY(AttributeDef attr, parse_attribute(f.bytes, here));
        node.attributes.push_back(std::move(attr));
        break;
      }
      default:
        break;
    }
  }
  EDGELM_CHECK(reader_status(reader, here));
  if (node.op_type.empty()) return format_error(here, "node has no op_type");
  if (node.name.empty()) node.name = node.op_type + "_" + std::to_string(index);
  if (node.domain == "ai.onnx") node.domain.clear();
  return node;
}

Result<AttributeDef> ModelParser::parse_attribute(std::span<const uint8_t> bytes,
                                                  const std::string& node_where) {
  AttributeDef attr;
  Reader reader(bytes);
  Field f;
  std::vector<uint8_t> float_bytes;
  while (reader.next(f)) {
    const std::string here = node_where + " attribute '" + attr.name + "'";
    switch (f.number) {
      case 1: {
        EDGELM_TRY(attr.name, read_name(f, here));
      } break;
      case 20:
        if (f.type != WireType::kVarint) return format_error(here, "type is not an integer");
        attr.type = static_cast<AttrType>(static_cast<int32_t>(f.varint));
        break;
      case 2:
        if (f.type != WireType::kFixed32) return format_error(here, "f is not a float");
        std::memcpy(&attr.f, &f.varint, 4);
        break;
      case 3:
        if (f.type != WireType::kVarint) return format_error(here, "i is not an integer");
        attr.i = static_cast<int64_t>(f.varint);
        break;
      case 4:
        if (f.type != WireType::kBytes) return format_error(here, "s is not bytes");
        attr.s = std::string(wire::as_string(f.bytes));
        break;
      case 5: {
        if (f.type != WireType::kBytes) return format_error(here, "t is not a message");
        EDGELM_TRY(InitializerDef t, parse_tensor(f.bytes, here));
        attr.t = std::move(t.value);
        break;
      }
      case 7:
        EDGELM_CHECK(read_fixed(f, 4, float_bytes, here));
        break;
      case 8:
        EDGELM_CHECK(read_int64s(f, attr.ints, here));
        break;
      default:
        break;  // graphs, strings, sparse tensors: only used by operators edgelm does not run
    }
  }
  EDGELM_CHECK(reader_status(reader, node_where + " attribute"));
  if (attr.name.empty()) return format_error(node_where, "attribute without a name");
  attr.floats.resize(float_bytes.size() / 4);
  if (!float_bytes.empty()) std::memcpy(attr.floats.data(), float_bytes.data(), float_bytes.size());
  return attr;
}

Result<ValueInfoDef> ModelParser::parse_value_info(std::span<const uint8_t> bytes,
                                                   const std::string& here) {
  ValueInfoDef info;
  Reader reader(bytes);
  Field f;
  while (reader.next(f)) {
    if (f.number == 1) {
      EDGELM_TRY(info.name, read_name(f, here + ".name"));
    } else if (f.number == 2 && f.type == WireType::kBytes) {  // TypeProto
      Reader type_reader(f.bytes);
      Field t;
      while (type_reader.next(t)) {
        if (t.number != 1 || t.type != WireType::kBytes) continue;  // tensor_type only
        Reader tensor_reader(t.bytes);
        Field g;
        while (tensor_reader.next(g)) {
          if (g.number == 1 && g.type == WireType::kVarint) {
            info.dtype = static_cast<DataType>(static_cast<int32_t>(g.varint));
          } else if (g.number == 2 && g.type == WireType::kBytes) {  // TensorShapeProto
            info.has_shape = true;
            Reader shape_reader(g.bytes);
            Field d;
            while (shape_reader.next(d)) {
              if (d.number != 1 || d.type != WireType::kBytes) continue;
              if (info.dims.size() >= kMaxRank) return format_error(here, "rank above 16");
              int64_t dim = -1;
              Reader dim_reader(d.bytes);
              Field v;
              while (dim_reader.next(v)) {
                if (v.number == 1 && v.type == WireType::kVarint)
                  dim = static_cast<int64_t>(v.varint);
              }
              EDGELM_CHECK(reader_status(dim_reader, here + ".shape"));
              if (dim < -1) return format_error(here, "negative dimension " + std::to_string(dim));
              info.dims.push_back(dim);
            }
            EDGELM_CHECK(reader_status(shape_reader, here + ".shape"));
          }
        }
        EDGELM_CHECK(reader_status(tensor_reader, here + ".type"));
      }
      EDGELM_CHECK(reader_status(type_reader, here + ".type"));
    }
  }
  EDGELM_CHECK(reader_status(reader, here));
  if (info.name.empty()) return format_error(here, "value without a name");
  return info;
}

// Widens the int32_data field (ONNX stores int8/uint8/int16/uint16/bool/float16 there) into
// elements of dtype at dst.
Status store_int32_data(const std::vector<int64_t>& values, DataType dtype, uint8_t* dst) {
  const size_t n = values.size();
  for (size_t i = 0; i < n; ++i) {
    const int64_t v = values[i];
    switch (dtype) {
      case DataType::kInt32: {
        const int32_t x = static_cast<int32_t>(v);
        std::memcpy(dst + 4 * i, &x, 4);
        break;
      }
      case DataType::kInt16:
      case DataType::kUint16:
      case DataType::kFloat16:
      case DataType::kBfloat16: {
        const uint16_t x = static_cast<uint16_t>(v);
        std::memcpy(dst + 2 * i, &x, 2);
        break;
      }
      case DataType::kInt8:
      case DataType::kUint8:
      case DataType::kBool:
        dst[i] = static_cast<uint8_t>(v);
        break;
      default:
        return make_error(ErrorCode::kInvalidFormat,
                          "int32_data used for type " + data_type_name(dtype));
    }
  }
  return {};
}

Result<InitializerDef> ModelParser::parse_tensor(std::span<const uint8_t> bytes,
                                                 const std::string& where_prefix) {
  InitializerDef def;
  std::vector<int64_t> dims;
  DataType dtype = DataType::kUndefined;
  std::optional<std::span<const uint8_t>> raw;
  std::vector<uint8_t> fixed_data;  // float_data / double_data bytes
  std::vector<int64_t> int_data;    // int32_data / int64_data / uint64_data
  int int_field = 0;
  int fixed_field = 0;
  bool external = false;
  std::vector<std::pair<std::string, std::string>> entries;
  Reader reader(bytes);
  Field f;
  std::string here = where_prefix;
  while (reader.next(f)) {
    switch (f.number) {
      case 1:
        EDGELM_CHECK(read_int64s(f, dims, here + " dims"));
        if (dims.size() > kMaxRank) return format_error(here, "rank above 16");
        break;
      case 2:
        if (f.type != WireType::kVarint) return format_error(here, "data_type is not an integer");
        dtype = static_cast<DataType>(static_cast<int32_t>(f.varint));
        break;
      case 3:
        return format_error(here, "segmented tensors are not supported");
      case 4:
      case 10:
        fixed_field = static_cast<int>(f.number);
        EDGELM_CHECK(read_fixed(f, f.number == 4 ? 4 : 8, fixed_data, here));
        break;
      case 5:
      case 7:
      case 11:
        int_field = static_cast<int>(f.number);
        EDGELM_CHECK(read_int64s(f, int_data, here));
        break;
      case 6:
        return format_error(here, "string tensors are not supported");
      case 8: {
        EDGELM_TRY(def.name, read_name(f, here + ".name"));
      }
        here = where_prefix + " '" + def.name + "'";
        break;
      case 9:
        if (f.type != WireType::kBytes) return format_error(here, "raw_data is not bytes");
        raw = f.bytes;
        break;
      case 13: {
        if (f.type != WireType::kBytes) return format_error(here, "external_data is not a message");
        std::string key, value;
        Reader sub(f.bytes);
        Field g;
        while (sub.next(g)) {
          if (g.number == 1 || g.number == 2) {
            EDGELM_TRY(std::string text, read_name(g, here + " external_data entry"));
            (g.number == 1 ? key : value) = std::move(text);
          }
        }
        EDGELM_CHECK(reader_status(sub, here + " external_data"));
        entries.emplace_back(std::move(key), std::move(value));
        break;
      }
      case 14:
        external = f.type == WireType::kVarint && f.varint == 1;
        break;
      default:
        break;
    }
  }
  EDGELM_CHECK(reader_status(reader, here));
  const size_t elem = data_type_size(dtype);
  if (elem == 0) return format_error(here, "unsupported data type " + data_type_name(dtype));
  for (int64_t d : dims) {
    if (d < 0) return format_error(here, "negative dimension " + std::to_string(d));
  }
  auto numel = shape_elements(dims);
  if (!numel) return format_error(here, numel.error().message);
  const uint64_t n = static_cast<uint64_t>(*numel);
  if (n > std::numeric_limits<uint64_t>::max() / elem)
    return format_error(here, "byte size overflows");
  const uint64_t nbytes = n * elem;
  def.external = external;

  if (external) {
    EDGELM_TRY(def.value, external_tensor(here, dtype, dims, entries));
    return def;
  }
  if (raw) {
    if (raw->size() != nbytes) {
      return format_error(here, "raw_data holds " + std::to_string(raw->size()) +
                                    " bytes, shape needs " + std::to_string(nbytes));
    }
    if (reinterpret_cast<uintptr_t>(raw->data()) % elem == 0) {
      def.value = Tensor::view(dtype, dims, raw->data(), owner_);
      return def;
    }
    EDGELM_TRY(Tensor copy, Tensor::zeros(dtype, dims));
    if (nbytes) std::memcpy(copy.mutable_raw(), raw->data(), nbytes);
    if (options_.file) options_.file->release_pages(*raw);
    def.value = std::move(copy);
    return def;
  }
  // Typed fields: their element count bounds the allocation by the file size.
  const uint64_t given =
      fixed_field ? fixed_data.size() / (fixed_field == 4 ? 4 : 8) : int_data.size();
  if (given != n) {
    return format_error(
        here, "holds " + std::to_string(given) + " values, shape needs " + std::to_string(n));
  }
  EDGELM_TRY(Tensor value, Tensor::zeros(dtype, dims));
  auto* dst = static_cast<uint8_t*>(value.mutable_raw());
  if (n > 0) {
    if (fixed_field == 4 && dtype == DataType::kFloat) {
      std::memcpy(dst, fixed_data.data(), nbytes);
    } else if (fixed_field == 10 && dtype == DataType::kDouble) {
      std::memcpy(dst, fixed_data.data(), nbytes);
    } else if ((int_field == 7 && dtype == DataType::kInt64) ||
               (int_field == 11 && (dtype == DataType::kUint64 || dtype == DataType::kUint32))) {
      if (dtype == DataType::kUint32) {
        for (uint64_t i = 0; i < n; ++i) {
          const uint32_t x = static_cast<uint32_t>(int_data[i]);
          std::memcpy(dst + 4 * i, &x, 4);
        }
      } else {
        std::memcpy(dst, int_data.data(), nbytes);
      }
    } else if (int_field == 5) {
      auto status = store_int32_data(int_data, dtype, dst);
      if (!status) return format_error(here, status.error().message);
    } else {
      return format_error(here, "data field does not match data type " + data_type_name(dtype));
    }
  }
  def.value = std::move(value);
  return def;
}

Result<Tensor> ModelParser::external_tensor(
    const std::string& here, DataType dtype, std::vector<int64_t> dims,
    const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string location;
  uint64_t offset = 0;
  std::optional<uint64_t> length;
  for (const auto& [key, value] : entries) {
    if (key == "location") {
      location = value;
    } else if (key == "offset" || key == "length") {
      uint64_t number = 0;
      if (!parse_decimal(value, number))
        return format_error(here, "external " + key + " '" + value + "' is not a number");
      if (key == "offset")
        offset = number;
      else
        length = number;
    }
  }
  if (location.empty()) return format_error(here, "external data without a location");
  if (!options_.base_dir)
    return format_error(here, "external data '" + location + "' needs a model file directory");
  const std::filesystem::path rel(location);
  if (rel.is_absolute() || rel.has_root_name()) {
    return format_error(here, "external data location '" + location + "' must be relative");
  }
  for (const auto& part : rel) {
    if (part == "..")
      return format_error(here,
                          "external data location '" + location + "' leaves the model directory");
  }
  auto it = external_files_.find(location);
  if (it == external_files_.end()) {
    auto mapped = format::MappedFile::open(*options_.base_dir / rel, options_.use_mmap);
    if (!mapped)
      return format_error(here, "external data '" + location + "': " + mapped.error().message);
    it = external_files_.emplace(location, std::make_shared<format::MappedFile>(std::move(*mapped)))
             .first;
  }
  const auto file_bytes = it->second->bytes();
  const size_t elem = data_type_size(dtype);
  EDGELM_TRY(const int64_t n, shape_elements(dims));
  const uint64_t nbytes = static_cast<uint64_t>(n) * elem;
  const uint64_t size =
      length.value_or(file_bytes.size() >= offset ? file_bytes.size() - offset : 0);
  if (offset > file_bytes.size() || size > file_bytes.size() - offset) {
    return format_error(here, "external data range [" + std::to_string(offset) + ", +" +
                                  std::to_string(size) + ") is outside '" + location + "' (" +
                                  std::to_string(file_bytes.size()) + " bytes)");
  }
  if (size != nbytes) {
    return format_error(here, "external data length " + std::to_string(size) +
                                  " does not match the shape's " + std::to_string(nbytes) +
                                  " bytes");
  }
  const uint8_t* data = file_bytes.data() + offset;
  if (reinterpret_cast<uintptr_t>(data) % elem == 0) {
    return Tensor::view(dtype, std::move(dims), data, it->second);
  }
  EDGELM_TRY(Tensor copy, Tensor::zeros(dtype, std::move(dims)));
  if (nbytes) std::memcpy(copy.mutable_raw(), data, nbytes);
  it->second->release_pages({data, nbytes});  // only the copy is read from here on
  return copy;
}

}  // namespace

const AttributeDef* NodeDef::attr(std::string_view attr_name) const {
  for (const auto& a : attributes) {
    if (a.name == attr_name) return &a;
  }
  return nullptr;
}

std::string NodeDef::label() const {
  return "node '" + name + "' (" + op_type + ")";
}

int64_t ModelDef::default_opset() const {
  auto it = opsets.find("");
  return it == opsets.end() ? 0 : it->second;
}

Result<ModelDef> parse_model(std::span<const uint8_t> bytes, std::shared_ptr<const void> owner,
                             const LoadOptions& options) {
  ModelParser parser(std::move(owner), options);
  return parser.parse(bytes);
}

Result<ModelDef> load_model_file(const std::filesystem::path& path, bool use_mmap) {
  auto mapped = format::MappedFile::open(path, use_mmap);
  if (!mapped) return std::move(mapped).error();
  auto file = std::make_shared<format::MappedFile>(std::move(*mapped));
  LoadOptions options;
  options.use_mmap = use_mmap;
  options.base_dir = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  options.source = path.filename().string();
  options.file = file.get();
  EDGELM_TRY(ModelDef model, parse_model(file->bytes(), file, options));
  model.files.push_back(std::move(file));
  return model;
}

}  // namespace edgelm::onnx
