// Writes small ONNX ModelProtos for tests (valid or deliberately broken), field numbers from
// onnx.proto.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "edgelm/onnx/tensor.h"
#include "onnx/proto_wire.h"

namespace edgelm::onnx::test {

struct TestAttr {
  std::string name;
  int64_t i = 0;
  std::vector<int64_t> ints;
  bool is_ints = false;
};

struct TestNode {
  TestNode(std::string op_type, std::vector<std::string> in, std::vector<std::string> out,
           std::vector<TestAttr> attributes = {}, std::string node_domain = "")
      : op(std::move(op_type)),
        inputs(std::move(in)),
        outputs(std::move(out)),
        attrs(std::move(attributes)),
        domain(std::move(node_domain)) {}
  std::string op;
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  std::vector<TestAttr> attrs;
  std::string domain;
};

struct TestInit {
  TestInit(std::string init_name, DataType type, std::vector<int64_t> shape,
           std::vector<uint8_t> raw_data,
           std::vector<std::pair<std::string, std::string>> external_data = {})
      : name(std::move(init_name)),
        dtype(type),
        dims(std::move(shape)),
        raw(std::move(raw_data)),
        external(std::move(external_data)) {}
  std::string name;
  DataType dtype = DataType::kFloat;
  std::vector<int64_t> dims;
  std::vector<uint8_t> raw;                                   // raw_data
  std::vector<std::pair<std::string, std::string>> external;  // external_data entries
};

struct TestValue {
  std::string name;
  DataType dtype = DataType::kFloat;
  std::vector<int64_t> dims;  // -1: symbolic
};

struct TestModel {
  int64_t ir_version = 8;
  int64_t opset = 17;
  std::vector<TestNode> nodes;
  std::vector<TestInit> initializers;
  std::vector<TestValue> inputs;
  std::vector<TestValue> outputs;

  std::vector<uint8_t> bytes() const {
    using wire::Writer;
    Writer graph;
    for (const auto& n : nodes) {
      Writer w;
      for (const auto& i : n.inputs) w.string_field(1, i);
      for (const auto& o : n.outputs) w.string_field(2, o);
      w.string_field(3, n.op + "_" + (n.outputs.empty() ? "" : n.outputs[0]));
      w.string_field(4, n.op);
      if (!n.domain.empty()) w.string_field(7, n.domain);
      for (const auto& a : n.attrs) {
        Writer aw;
        aw.string_field(1, a.name);
        if (a.is_ints) {
          for (int64_t v : a.ints) aw.varint_field(8, static_cast<uint64_t>(v));
          aw.varint_field(20, 7);
        } else {
          aw.varint_field(3, static_cast<uint64_t>(a.i));
          aw.varint_field(20, 2);
        }
        w.bytes_field(5, aw.bytes());
      }
      graph.bytes_field(1, w.bytes());
    }
    for (const auto& t : initializers) {
      Writer w;
      for (int64_t d : t.dims) w.varint_field(1, static_cast<uint64_t>(d));
      w.varint_field(2, static_cast<uint64_t>(t.dtype));
      w.string_field(8, t.name);
      if (t.external.empty()) {
        w.bytes_field(9, t.raw);
      } else {
        for (const auto& [k, v] : t.external) {
          Writer e;
          e.string_field(1, k);
          e.string_field(2, v);
          w.bytes_field(13, e.bytes());
        }
        w.varint_field(14, 1);
      }
      graph.bytes_field(5, w.bytes());
    }
    auto value_info = [](const TestValue& v) {
      Writer shape;
      for (int64_t d : v.dims) {
        Writer dim;
        if (d >= 0)
          dim.varint_field(1, static_cast<uint64_t>(d));
        else
          dim.string_field(2, "n");
        shape.bytes_field(1, dim.bytes());
      }
      Writer tensor;
      tensor.varint_field(1, static_cast<uint64_t>(v.dtype));
      tensor.bytes_field(2, shape.bytes());
      Writer type;
      type.bytes_field(1, tensor.bytes());
      Writer info;
      info.string_field(1, v.name);
      info.bytes_field(2, type.bytes());
      return info.bytes();
    };
    for (const auto& v : inputs) graph.bytes_field(11, value_info(v));
    for (const auto& v : outputs) graph.bytes_field(12, value_info(v));
    Writer model;
    model.varint_field(1, static_cast<uint64_t>(ir_version));
    Writer opset_id;
    opset_id.string_field(1, "");
    opset_id.varint_field(2, static_cast<uint64_t>(opset));
    model.bytes_field(8, opset_id.bytes());
    model.bytes_field(7, graph.bytes());
    return model.bytes();
  }
};

inline std::vector<uint8_t> float_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

inline std::vector<uint8_t> int64_bytes(const std::vector<int64_t>& v) {
  std::vector<uint8_t> b(v.size() * 8);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

}  // namespace edgelm::onnx::test
