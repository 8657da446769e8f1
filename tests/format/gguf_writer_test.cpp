// GgufWriter: round trips of every value type, nested arrays and tensor types; byte-identical
// re-writes of the real files; agreement with the independent Python writer.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>

#include "format/gguf_test_util.h"

namespace edgelm::format {
namespace {

using ::testing::HasSubstr;

std::filesystem::path temp_dir() {
  auto dir = edgelm::test::binary_dir() / "test_tmp" / ("format_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

GgufArray int_array(GgufType type, std::vector<int64_t> ints) {
  GgufArray a;
  a.elem_type = type;
  a.ints = std::move(ints);
  return a;
}

GgufArray float_array(GgufType type, std::vector<double> floats) {
  GgufArray a;
  a.elem_type = type;
  a.floats = std::move(floats);
  return a;
}

GgufArray string_array(std::vector<std::string> strings) {
  GgufArray a;
  a.elem_type = GgufType::kString;
  a.strings = std::move(strings);
  return a;
}

GgufArray array_of_arrays(std::vector<GgufArray> arrays) {
  GgufArray a;
  a.elem_type = GgufType::kArray;
  a.arrays = std::move(arrays);
  return a;
}

// A writer exercising every value type (scalars and arrays), nested arrays, and several tensor
// types including quantized block types, with random tensor bytes.
GgufWriter make_rich_writer() {
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("llama"));
  w.set("t.u8", {GgufType::kUint8, uint64_t{255}});
  w.set("t.i8", {GgufType::kInt8, int64_t{-128}});
  w.set("t.u16", {GgufType::kUint16, uint64_t{65535}});
  w.set("t.i16", {GgufType::kInt16, int64_t{-32768}});
  w.set("t.u32", GgufValue::u32(4294967295u));
  w.set("t.i32", GgufValue::i32(std::numeric_limits<int32_t>::min()));
  w.set("t.f32", GgufValue::f32(-1.5e-7f));
  w.set("t.bool", GgufValue::boolean(true));
  w.set("t.string", GgufValue::string(std::string("with \0 nul and \xff invalid utf-8", 31)));
  w.set("t.empty_string", GgufValue::string(""));
  w.set("t.u64", GgufValue::u64(std::numeric_limits<uint64_t>::max()));
  w.set("t.i64", {GgufType::kInt64, std::numeric_limits<int64_t>::min()});
  w.set("t.f64", {GgufType::kFloat64, 3.141592653589793});
  w.set("t.nan", GgufValue::f32(std::numeric_limits<float>::quiet_NaN()));
  w.set("a.u8", GgufValue::array(int_array(GgufType::kUint8, {0, 1, 255})));
  w.set("a.i8", GgufValue::array(int_array(GgufType::kInt8, {-128, 0, 127})));
  w.set("a.u16", GgufValue::array(int_array(GgufType::kUint16, {0, 65535})));
  w.set("a.i16", GgufValue::array(int_array(GgufType::kInt16, {-32768, 32767})));
  w.set("a.u32", GgufValue::array(int_array(GgufType::kUint32, {0, 4294967295})));
  w.set("a.i32", GgufValue::array(int_array(GgufType::kInt32, {-2147483648LL, 2147483647})));
  w.set("a.u64",
        GgufValue::array(int_array(GgufType::kUint64, {-1, 0})));  // -1: u64 max, bit for bit
  w.set("a.i64",
        GgufValue::array(int_array(GgufType::kInt64, {std::numeric_limits<int64_t>::min(), 5})));
  w.set("a.bool", GgufValue::array(int_array(GgufType::kBool, {1, 0, 1})));
  const GgufArray f32s = float_array(GgufType::kFloat32, {0.5, -2.0, 1e30});
  w.set("a.f32", GgufValue::array(f32s));
  w.set("a.f64", GgufValue::array(float_array(GgufType::kFloat64, {1e-300, -0.0})));
  const GgufArray strings = string_array({"a", "", "\xe2\x96\x81Once"});
  w.set("a.string", GgufValue::array(strings));
  w.set("a.empty", GgufValue::array(int_array(GgufType::kUint32, {})));
  w.set("a.nested", GgufValue::array(array_of_arrays({int_array(GgufType::kInt32, {1, 2, 3}),
                                                      strings, array_of_arrays({f32s})})));

  uint32_t seed = 1;
  const std::vector<std::pair<TensorType, std::vector<uint64_t>>> tensors = {
      {TensorType::kF32, {7}},
      {TensorType::kF16, {3, 5}},
      {TensorType::kBF16, {2, 2, 2}},
      {TensorType::kQ4_0, {64, 3}},
      {TensorType::kQ8_0, {32, 2, 1, 2}},
      {TensorType::kQ4_K, {256, 2}},
      {TensorType::kQ6_K, {512}},
      {TensorType::kIQ4_NL, {32}},
      {TensorType::kI8, {33}},
      {TensorType::kTQ2_0, {256}}};
  for (const auto& [type, ne] : tensors) {
    uint64_t n = 1;
    for (uint64_t d : ne) n *= d;
    const auto bytes = random_bytes(*tensor_bytes(type, n), seed++);
    std::string name = std::to_string(seed);
    name.insert(0, 1, 't');
    name += ".";
    name += tensor_type_name(type);
    const Status s = w.add_tensor(name, type, ne, bytes);
    EXPECT_TRUE(s.has_value()) << s.error().to_string();
  }
  return w;
}

TEST(GgufWriter, RichFileRoundTripsExactly) {
  const GgufWriter w = make_rich_writer();
  auto bytes = w.to_bytes();
  ASSERT_TRUE(bytes.has_value()) << bytes.error().to_string();
  auto file = GgufFile::parse(*bytes);
  ASSERT_TRUE(file.has_value()) << file.error().to_string();
  const GgufFile& f = *file;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.metadata().size(), 29u);
  EXPECT_EQ(*f.get_uint("t.u8"), 255u);
  EXPECT_EQ(*f.get_int("t.i8"), -128);
  EXPECT_EQ(*f.get_int("t.i32"), std::numeric_limits<int32_t>::min());
  EXPECT_FALSE(f.get_uint("t.i32").has_value());  // negative: does not fit unsigned
  EXPECT_EQ(*f.get_uint("t.u64"), std::numeric_limits<uint64_t>::max());
  EXPECT_FALSE(f.get_int("t.u64").has_value());  // too large for int64
  EXPECT_EQ(*f.get_int("t.i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(*f.get_float("t.f32"), double{-1.5e-7f});
  EXPECT_EQ(*f.get_float("t.f64"), 3.141592653589793);
  EXPECT_TRUE(std::isnan(*f.get_float("t.nan")));
  EXPECT_TRUE(*f.get_bool("t.bool"));
  EXPECT_EQ(*f.get_string("t.string"), std::string("with \0 nul and \xff invalid utf-8", 31));
  EXPECT_EQ(*f.get_string("t.empty_string"), "");
  EXPECT_EQ((*f.get_array("a.u64"))->ints, (std::vector<int64_t>{-1, 0}));
  EXPECT_EQ((*f.get_array("a.bool"))->ints, (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ((*f.get_array("a.f32"))->floats, (std::vector<double>{0.5, -2.0, double{1e30f}}));
  EXPECT_EQ((*f.get_array("a.empty"))->size(), 0u);
  const GgufArray& nested = **f.get_array("a.nested");
  ASSERT_EQ(nested.arrays.size(), 3u);
  EXPECT_EQ(nested.arrays[0].ints, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(nested.arrays[1].strings[2], "\xe2\x96\x81Once");
  ASSERT_EQ(nested.arrays[2].arrays.size(), 1u);
  EXPECT_EQ(nested.arrays[2].arrays[0].floats[0], 0.5);

  ASSERT_EQ(f.tensors().size(), 10u);
  uint32_t seed = 1;
  uint64_t expected_offset = 0;
  for (const auto& t : f.tensors()) {
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.offset, expected_offset);  // add order, each aligned to 32
    EXPECT_EQ(t.offset % 32, 0u);
    expected_offset = (t.offset + t.n_bytes + 31) / 32 * 32;
    const auto data = f.tensor_data(t);
    const auto expected = random_bytes(t.n_bytes, seed++);
    ASSERT_EQ(data.size(), expected.size());
    EXPECT_TRUE(std::equal(data.begin(), data.end(), expected.begin()));
  }
  EXPECT_EQ(f.find_tensor("t5.q4_0")->ne, (std::vector<uint64_t>{64, 3}));
  EXPECT_EQ(f.find_tensor("t5.q4_0")->n_bytes, 6u * 18u);
  EXPECT_EQ(f.bytes().size(), f.data_offset() + expected_offset);  // padded to the alignment
  // write(read(x)) == x.
  auto again = GgufWriter::from_file(f).to_bytes();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, *bytes);
}

TEST(GgufWriter, PaddingIsZeros) {
  GgufWriter w;
  w.set("k", GgufValue::string("x"));
  const std::vector<uint8_t> data(4 * 3, 0xAB);
  ASSERT_TRUE(w.add_tensor("a", TensorType::kF32, {3}, data).has_value());
  ASSERT_TRUE(w.add_tensor("b", TensorType::kF32, {3}, data).has_value());
  auto bytes = w.to_bytes();
  ASSERT_TRUE(bytes.has_value());
  // Header by hand: magic+version+counts 24, kv "k" (8+1 + 4 + 8+1) 22, two infos (8+1 + 4 + 8 + 4
  // + 8) 33 each: 112 bytes, padded to 128; then a at 128, zeros to 160, b at 160, zeros to 192.
  ASSERT_EQ(bytes->size(), 192u);
  auto f = GgufFile::parse(*bytes);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->data_offset(), 128u);
  EXPECT_EQ(f->find_tensor("b")->offset, 32u);
  for (size_t i = 0; i < bytes->size(); ++i) {
    const bool in_tensor = (i >= 128 && i < 140) || (i >= 160 && i < 172);
    if (in_tensor) {
      EXPECT_EQ((*bytes)[i], 0xAB) << "byte " << i;
    } else if (i >= 112) {
      EXPECT_EQ((*bytes)[i], 0) << "byte " << i;
    }
  }
}

TEST(GgufWriter, CustomAlignmentIsStoredAndHonoured) {
  GgufWriter w;
  w.set_alignment(64);
  const std::vector<uint8_t> data(34, 1);
  ASSERT_TRUE(w.add_tensor("q", TensorType::kQ8_0, {32}, data).has_value());
  ASSERT_TRUE(w.add_tensor("r", TensorType::kQ8_0, {32}, data).has_value());
  auto bytes = w.to_bytes();
  ASSERT_TRUE(bytes.has_value()) << bytes.error().to_string();
  auto f = GgufFile::parse(*bytes);
  ASSERT_TRUE(f.has_value()) << f.error().to_string();
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(*f->get_uint("general.alignment"), 64u);
  EXPECT_EQ(f->data_offset() % 64, 0u);
  EXPECT_EQ(f->find_tensor("r")->offset, 64u);
  EXPECT_EQ(*GgufWriter::from_file(*f).to_bytes(), *bytes);

  GgufWriter bad;
  bad.set_alignment(48);
  auto result = bad.to_bytes();
  ASSERT_FALSE(result.has_value());
  EXPECT_THAT(result.error().message, HasSubstr("48"));
}

TEST(GgufWriter, SetReplacesAndRemoveDeletes) {
  GgufWriter w;
  w.set("a", GgufValue::u32(1));
  w.set("b", GgufValue::u32(2));
  w.set("a", GgufValue::string("replaced"));
  w.remove("b");
  w.remove("missing");
  auto f = GgufFile::parse(*w.to_bytes());
  ASSERT_TRUE(f.has_value());
  ASSERT_EQ(f->metadata().size(), 1u);
  EXPECT_EQ(*f->get_string("a"), "replaced");
}

TEST(GgufWriter, RejectsBadInputWithClearErrors) {
  GgufWriter w;
  const std::vector<uint8_t> four(4, 0);
  EXPECT_THAT(w.add_tensor("x", TensorType::kF32, {2}, four).error().message,
              HasSubstr("expected 8"));
  EXPECT_THAT(w.add_tensor("x", TensorType::kF32, {}, four).error().message,
              HasSubstr("dimensions"));
  EXPECT_THAT(w.add_tensor("x", TensorType::kF32, {1, 1, 1, 1, 1}, four).error().message,
              HasSubstr("dimensions"));
  EXPECT_THAT(w.add_tensor("x", TensorType::kF32, {0}, {}).error().message,
              HasSubstr("ne[0] is 0"));
  EXPECT_THAT(w.add_tensor("x", TensorType::kQ4_0, {16}, four).error().message,
              HasSubstr("block size 32"));
  EXPECT_THAT(w.add_tensor("x", TensorType::kF32, {1ull << 32, 1ull << 32}, four).error().message,
              HasSubstr("overflow"));
  EXPECT_FALSE(w.add_tensor("", TensorType::kF32, {1}, four).has_value());
  ASSERT_TRUE(w.add_tensor("x", TensorType::kF32, {1}, four).has_value());
  EXPECT_THAT(w.add_tensor("x", TensorType::kF32, {1}, four).error().message, HasSubstr("twice"));

  const auto fails_with = [](GgufValue v, const std::string& text) {
    GgufWriter w2;
    w2.set("bad.key", std::move(v));
    auto bytes = w2.to_bytes();
    ASSERT_FALSE(bytes.has_value()) << text;
    EXPECT_THAT(bytes.error().message, HasSubstr("'bad.key'"));
    EXPECT_THAT(bytes.error().message, HasSubstr(text));
  };
  fails_with({GgufType::kUint8, uint64_t{256}}, "does not fit u8");
  fails_with({GgufType::kInt8, int64_t{128}}, "does not fit i8");
  fails_with({GgufType::kUint32, int64_t{-1}}, "does not fit u32");
  fails_with({GgufType::kString, uint64_t{1}}, "does not match");
  fails_with({GgufType::kFloat32, std::string("x")}, "does not match");
  fails_with({static_cast<GgufType>(42), uint64_t{1}}, "unknown value type id 42");
  fails_with(GgufValue::array(int_array(GgufType::kUint8, {1, 300})), "[1]");
  GgufArray mixed = string_array({});
  mixed.ints = {1};
  fails_with(GgufValue::array(mixed), "another type");
  GgufArray deep = int_array(GgufType::kUint8, {});
  for (int i = 0; i < 10; ++i) deep = array_of_arrays({deep});
  fails_with(GgufValue::array(deep), "nested deeper");
  GgufWriter w3;
  w3.set("general.alignment", GgufValue::string("32"));
  EXPECT_FALSE(w3.to_bytes().has_value());
}

TEST(GgufWriter, WriteIsAtomicAndRoundTrips) {
  const auto dir = temp_dir();
  const auto path = dir / "rich.gguf";
  const GgufWriter w = make_rich_writer();
  ASSERT_TRUE(w.write(path).has_value());
  EXPECT_EQ(test::read_bytes(path), *w.to_bytes());
  // Overwriting replaces the whole file; no temporary file is left behind.
  GgufWriter small;
  small.set("k", GgufValue::u32(1));
  ASSERT_TRUE(small.write(path).has_value());
  EXPECT_EQ(test::read_bytes(path), *small.to_bytes());
  size_t n_files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n_files;
  EXPECT_EQ(n_files, 1u);
  // A bad value fails before the existing file is touched.
  GgufWriter bad;
  bad.set("k", {GgufType::kUint8, uint64_t{999}});
  EXPECT_FALSE(bad.write(path).has_value());
  EXPECT_EQ(test::read_bytes(path), *small.to_bytes());
  // An unwritable place is an I/O error naming the path.
  auto denied = small.write(dir / "no-such-dir" / "x.gguf");
  ASSERT_FALSE(denied.has_value());
  EXPECT_EQ(denied.error().code, ErrorCode::kIo);
  EXPECT_THAT(denied.error().message, HasSubstr("no-such-dir"));
  std::filesystem::remove_all(dir);
}

// Every real v3 file, stories260K included, is reproduced byte for byte by read + write.
TEST(GgufWriter, RewritingRealFilesIsByteIdentical) {
  for (const auto& path : test::real_gguf_files()) {
    auto file = GgufFile::open(path);
    if (!file.has_value()) continue;  // the v1 file
    SCOPED_TRACE(path.string());
    auto bytes = GgufWriter::from_file(*file).to_bytes();
    ASSERT_TRUE(bytes.has_value()) << bytes.error().to_string();
    ASSERT_EQ(bytes->size(), file->bytes().size());
    EXPECT_TRUE(std::equal(bytes->begin(), bytes->end(), file->bytes().begin()));
  }
}

// The independent Python writer (tests/reference/gguf.py) produces the same bytes as ours for the
// rich file, and its reader agrees with the file we wrote.
TEST(GgufWriter, MatchesIndependentPythonWriter) {
  const auto dir = temp_dir();
  const auto ours = dir / "ours.gguf";
  const auto theirs = dir / "theirs.gguf";
  ASSERT_TRUE(make_rich_writer().write(ours).has_value());
  const std::string script =
      "import sys; sys.path.insert(0, sys.argv[1]); import gguf\n"
      "md, ts = gguf.read_gguf(sys.argv[2], with_types=True)\n"
      "gguf.write_gguf(sys.argv[3], md, ts)\n";
  const auto script_path = dir / "rewrite.py";
  {
    std::ofstream out(script_path);
    out << script;
  }
  const std::string cmd = edgelm::test::python3() + " " + script_path.string() + " " +
                          (edgelm::test::source_dir() / "tests" / "reference").string() + " " +
                          ours.string() + " " + theirs.string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  EXPECT_EQ(test::read_bytes(theirs), test::read_bytes(ours));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace edgelm::format
