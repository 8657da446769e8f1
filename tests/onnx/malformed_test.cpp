// Untrusted ONNX files: every defect is refused with an error that names what is wrong, never a
// crash, hang or huge allocation (this executable also runs under ASan/UBSan).
#include <gtest/gtest.h>

#include <random>

#include "onnx/model_builder.h"
#include "onnx/onnx_test_util.h"

namespace edgelm::onnx::test {
namespace {

// x -> Relu -> y, the base every broken variant starts from.
TestModel relu_model() {
  TestModel m;
  m.inputs = {{"x", DataType::kFloat, {2, 3}}};
  m.outputs = {{"y", DataType::kFloat, {2, 3}}};
  m.nodes = {{"Relu", {"x"}, {"y"}}};
  return m;
}

Error load_error(const TestModel& model) {
  const auto bytes = model.bytes();
  auto session = Session::from_bytes(bytes, SessionOptions{});
  EXPECT_FALSE(session) << "a broken model was accepted";
  return session ? Error{} : session.error();
}

void expect_error(const TestModel& model, ErrorCode code, const std::string& needle) {
  const Error e = load_error(model);
  EXPECT_EQ(e.code, code) << e.to_string();
  EXPECT_NE(e.message.find(needle), std::string::npos) << e.to_string();
}

TEST(OnnxMalformed, BaseModelRuns) {
  const auto bytes = relu_model().bytes();
  auto session = Session::from_bytes(bytes, SessionOptions{});
  ASSERT_TRUE(session) << session.error().to_string();
  auto x = Tensor::from_floats({2, 3}, std::vector<float>{-1, 2, -3, 4, -5, 6});
  auto y = (*session)->run({"y"}, {{"x", *x}});
  ASSERT_TRUE(y) << y.error().to_string();
  EXPECT_EQ(std::vector<float>((*y)[0].data<float>(), (*y)[0].data<float>() + 6),
            (std::vector<float>{0, 2, 0, 4, 0, 6}));
}

TEST(OnnxMalformed, CycleIsNamed) {
  TestModel m = relu_model();
  m.nodes = {{"Relu", {"b"}, {"a"}}, {"Add", {"a", "x"}, {"b"}}, {"Relu", {"b"}, {"y"}}};
  expect_error(m, ErrorCode::kInvalidFormat, "cycle");
}

TEST(OnnxMalformed, DanglingInputIsNamed) {
  TestModel m = relu_model();
  m.nodes = {{"Add", {"x", "ghost"}, {"y"}}};
  expect_error(m, ErrorCode::kInvalidFormat, "'ghost' is not produced");
}

TEST(OnnxMalformed, DuplicateDefinitionAndMissingOutput) {
  TestModel m = relu_model();
  m.nodes = {{"Relu", {"x"}, {"y"}}, {"Neg", {"x"}, {"y"}}};
  expect_error(m, ErrorCode::kInvalidFormat, "'y' is already defined");
  m.nodes = {{"Relu", {"x"}, {"z"}}};
  expect_error(m, ErrorCode::kInvalidFormat, "graph output 'y' is never produced");
}

TEST(OnnxMalformed, UnsupportedOperatorsListedByNameAndNode) {
  TestModel m = relu_model();
  m.nodes = {{"Relu", {"x"}, {"a"}},
             {"Einsum", {"a"}, {"b"}},
             {"Attention", {"b"}, {"y"}, {}, "com.microsoft"}};
  const Error e = load_error(m);
  EXPECT_EQ(e.code, ErrorCode::kUnsupported);
  EXPECT_NE(e.message.find("Einsum (node 'Einsum_b')"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("com.microsoft.Attention (node 'Attention_y')"), std::string::npos)
      << e.message;
}

TEST(OnnxMalformed, OpsetAndArityAndAttributeTypes) {
  TestModel m = relu_model();
  m.opset = 9;
  expect_error(m, ErrorCode::kUnsupported, "opset 9");
  m = relu_model();
  m.nodes = {{"Relu", {"x", "x"}, {"y"}}};
  expect_error(m, ErrorCode::kInvalidFormat, "has 2 inputs");
  m = relu_model();
  m.nodes = {{"Softmax", {"x"}, {"y"}, {TestAttr{"axis", 0, {1}, true}}}};
  expect_error(m, ErrorCode::kInvalidFormat, "attribute 'axis' has the wrong type");
}

TEST(OnnxMalformed, MismatchedTypesFailAtLoad) {
  TestModel m = relu_model();
  m.initializers = {{"c", DataType::kInt64, {1}, int64_bytes({1})}};
  m.nodes = {{"Add", {"x", "c"}, {"y"}}};
  expect_error(m, ErrorCode::kInvalidFormat, "different types float and int64");
  m.nodes = {{"Where", {"x", "x", "x"}, {"y"}}};
  expect_error(m, ErrorCode::kInvalidFormat, "condition must be bool");
}

TEST(OnnxMalformed, InitializerSizes) {
  TestModel m = relu_model();
  m.nodes = {{"Add", {"x", "c"}, {"y"}}};
  m.initializers = {{"c", DataType::kFloat, {4}, float_bytes({1, 2})}};
  expect_error(m, ErrorCode::kInvalidFormat, "raw_data holds 8 bytes, shape needs 16");
  // A declared size far beyond the file (and beyond int64 elements) allocates nothing.
  m.initializers = {
      {"c", DataType::kFloat, {int64_t{1} << 40, int64_t{1} << 40}, float_bytes({1})}};
  expect_error(m, ErrorCode::kInvalidFormat, "overflows");
  m.initializers = {{"c", DataType::kFloat, {int64_t{1} << 40}, float_bytes({1})}};
  expect_error(m, ErrorCode::kInvalidFormat, "shape needs 4398046511104");
  m.initializers = {{"c", DataType::kFloat, {-3}, {}}};
  expect_error(m, ErrorCode::kInvalidFormat, "negative dimension");
  m.initializers = {{"c", DataType::kString, {1}, {}}};
  expect_error(m, ErrorCode::kInvalidFormat, "unsupported data type string");
}

TEST(OnnxMalformed, ExternalDataIsConfinedAndRangeChecked) {
  const fs::path dir =
      fs::temp_directory_path() / ("edgelm_onnx_ext_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  {
    std::ofstream data(dir / "w.bin", std::ios::binary);
    const auto bytes = float_bytes({1, 2, 3, 4, 5, 6});
    data.write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
  }
  auto open_with = [&](std::vector<std::pair<std::string, std::string>> entries) {
    TestModel m = relu_model();
    m.nodes = {{"Add", {"x", "c"}, {"y"}}};
    m.initializers = {{"c", DataType::kFloat, {2, 3}, {}, std::move(entries)}};
    const auto bytes = m.bytes();
    std::ofstream(dir / "m.onnx", std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    return Session::open(dir / "m.onnx", SessionOptions{});
  };
  auto ok = open_with({{"location", "w.bin"}});
  ASSERT_TRUE(ok) << ok.error().to_string();
  auto x = Tensor::from_floats({2, 3}, std::vector<float>{1, 1, 1, 1, 1, 1});
  auto y = (*ok)->run({}, {{"x", *x}});
  ASSERT_TRUE(y);
  EXPECT_EQ((*y)[0].data<float>()[5], 7.0f);

  auto check = [&](std::vector<std::pair<std::string, std::string>> entries,
                   const std::string& needle) {
    auto s = open_with(std::move(entries));
    ASSERT_FALSE(s);
    EXPECT_NE(s.error().message.find(needle), std::string::npos) << s.error().to_string();
  };
  check({{"location", "w.bin"}, {"offset", "8"}}, "does not match");
  check({{"location", "w.bin"}, {"offset", "4"}, {"length", "24"}}, "outside 'w.bin'");
  check({{"location", "w.bin"}, {"offset", "18446744073709551615"}}, "is not a number");
  check({{"location", "w.bin"}, {"offset", "99999999999"}, {"length", "24"}}, "outside");
  check({{"location", "../w.bin"}}, "leaves the model directory");
  check({{"location", "/etc/passwd"}}, "must be relative");
  check({{"location", "missing.bin"}}, "external data 'missing.bin'");
  // In-memory models have no directory to resolve against.
  TestModel m = relu_model();
  m.nodes = {{"Add", {"x", "c"}, {"y"}}};
  m.initializers = {{"c", DataType::kFloat, {2, 3}, {}, {{"location", "w.bin"}}}};
  EXPECT_NE(load_error(m).message.find("needs a model file directory"), std::string::npos);
  fs::remove_all(dir);
}

TEST(OnnxMalformed, RuntimeShapeErrorsNameTheNode) {
  TestModel m;
  m.inputs = {{"x", DataType::kFloat, {-1, -1}}, {"shape", DataType::kInt64, {-1}}};
  m.outputs = {{"y", DataType::kFloat, {}}};
  m.nodes = {{"Reshape", {"x", "shape"}, {"y"}}};
  const auto bytes = m.bytes();
  auto session = Session::from_bytes(bytes, SessionOptions{});
  ASSERT_TRUE(session) << session.error().to_string();
  auto x = Tensor::from_floats({2, 3}, std::vector<float>(6, 1.0f));
  auto bad_shape = Tensor::from_int64({2}, std::vector<int64_t>{4, 4});
  auto r = (*session)->run({}, {{"x", *x}, {"shape", *bad_shape}});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("node 'Reshape_y' (Reshape): cannot reshape [2,3] to [4,4]"),
            std::string::npos)
      << r.error().to_string();
  // The session stays usable after an error.
  auto good_shape = Tensor::from_int64({1}, std::vector<int64_t>{6});
  r = (*session)->run({}, {{"x", *x}, {"shape", *good_shape}});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ((*r)[0].shape(), (std::vector<int64_t>{6}));
}

TEST(OnnxMalformed, HugeRuntimeAllocationsAreRefused) {
  TestModel m;
  m.inputs = {{"shape", DataType::kInt64, {-1}}};
  m.outputs = {{"y", DataType::kFloat, {}}};
  m.nodes = {{"ConstantOfShape", {"shape"}, {"y"}}};
  const auto bytes = m.bytes();
  auto session = Session::from_bytes(bytes, SessionOptions{});
  ASSERT_TRUE(session);
  auto shape = Tensor::from_int64({2}, std::vector<int64_t>{int64_t{1} << 20, int64_t{1} << 20});
  auto r = (*session)->run({}, {{"shape", *shape}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kOutOfRange) << r.error().to_string();
}

TEST(OnnxMalformed, IndexAndDivisionErrors) {
  TestModel m;
  m.inputs = {{"i", DataType::kInt64, {-1}}};
  m.outputs = {{"y", DataType::kInt64, {}}};
  m.initializers = {{"table", DataType::kInt64, {3}, int64_bytes({10, 20, 30})}};
  m.nodes = {{"Gather", {"table", "i"}, {"g"}}, {"Div", {"table", "g"}, {"y"}}};
  const auto bytes = m.bytes();
  auto session = Session::from_bytes(bytes, SessionOptions{});
  ASSERT_TRUE(session) << session.error().to_string();
  auto out_of_range = Tensor::from_int64({3}, std::vector<int64_t>{0, 3, 1});
  auto r = (*session)->run({}, {{"i", *out_of_range}});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("index 3 out of range"), std::string::npos)
      << r.error().to_string();
  auto ok = Tensor::from_int64(
      {3}, std::vector<int64_t>{-1, 0, 1});  // negative indices count from the end
  r = (*session)->run({}, {{"i", *ok}});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(std::vector<int64_t>((*r)[0].data<int64_t>(), (*r)[0].data<int64_t>() + 3),
            (std::vector<int64_t>{0, 2, 1}));
}

TEST(OnnxMalformed, FeedsAreChecked) {
  const auto bytes = relu_model().bytes();
  auto session = Session::from_bytes(bytes, SessionOptions{});
  ASSERT_TRUE(session);
  auto ids = Tensor::from_int64({2, 3}, std::vector<int64_t>(6, 1));
  auto x = Tensor::from_floats({3, 2}, std::vector<float>(6, 1.0f));
  EXPECT_NE((*session)->run({}, {{"x", *ids}}).error().message.find("must be float, got int64"),
            std::string::npos);
  EXPECT_NE((*session)->run({}, {{"x", *x}}).error().message.find("dimension 0 must be 2"),
            std::string::npos);
  EXPECT_NE((*session)->run({}, {}).error().message.find("'x' is not fed"), std::string::npos);
  auto good = Tensor::from_floats({2, 3}, std::vector<float>(6, 1.0f));
  EXPECT_NE(
      (*session)->run({"nope"}, {{"x", *good}}).error().message.find("'nope' is not an output"),
      std::string::npos);
}

// Every prefix of a real exported model is refused cleanly (protobuf lengths run past the end).
TEST(OnnxMalformed, TruncatedRealModel) {
  const auto file = read_bytes(models_dir() / "gpt2_op13.onnx");
  ASSERT_GT(file.size(), 1000u);
  const std::vector<uint8_t> bytes(file.begin(), file.end());
  for (size_t cut = 0; cut < bytes.size(); cut += 1 + cut / 8) {
    auto session =
        Session::from_bytes(std::span<const uint8_t>(bytes.data(), cut), SessionOptions{});
    EXPECT_FALSE(session) << "prefix of " << cut << " bytes accepted";
  }
}

// Random byte corruption of a small real model: load (and, when that works, run) never crashes.
TEST(OnnxMalformed, CorruptedBytesNeverCrash) {
  const auto file = read_bytes(models_dir() / "zoo_op17.onnx");
  const auto x = Tensor::from_floats({3, 8}, std::vector<float>(24, 0.5f));
  std::mt19937 rng(7);
  SessionOptions options;
  options.max_tensor_bytes = 1 << 24;
  int loaded = 0;
  for (int round = 0; round < 300; ++round) {
    std::vector<uint8_t> bytes(file.begin(), file.end());
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<uint8_t>(rng());
    auto session = Session::from_bytes(bytes, options);
    if (!session) continue;
    ++loaded;
    (void)(*session)->run({}, {{"x", *x}});
  }
  EXPECT_GT(loaded, 0);  // some corruptions hit only weights, so the fuzzing reaches run()
}

}  // namespace
}  // namespace edgelm::onnx::test
