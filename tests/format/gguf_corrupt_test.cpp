// Malformed GGUF input: truncations, random byte flips and hand-crafted absurd headers are all
// rejected with an error naming what is wrong (flips inside tensor data are accepted), and never
// crash.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "format/gguf_test_util.h"

namespace edgelm::format {
namespace {

using test::ByteBuilder;
using ::testing::HasSubstr;

constexpr uint32_t kF32 = 0;
constexpr uint32_t kQ4_0 = 2;

// Checks what every successfully parsed file must satisfy, independently of the parser.
void expect_consistent(const GgufFile& f) {
  const uint64_t size = f.bytes().size();
  for (const auto& t : f.tensors()) {
    ASSERT_LE(f.data_offset() + t.offset + t.n_bytes, size) << t.name;
    const auto data = f.tensor_data(t);
    ASSERT_EQ(data.size(), t.n_bytes);
    ASSERT_GE(data.data(), f.bytes().data());
  }
}

class StoriesBytes : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    bytes_ = new std::vector<uint8_t>(test::read_bytes(test::stories_path()));
    auto f = GgufFile::parse(*bytes_);
    ASSERT_TRUE(f.has_value());
    data_offset_ = f->data_offset();
  }
  static void TearDownTestSuite() { delete bytes_; }
  static std::vector<uint8_t>* bytes_;
  static uint64_t data_offset_;
};
std::vector<uint8_t>* StoriesBytes::bytes_ = nullptr;
uint64_t StoriesBytes::data_offset_ = 0;

TEST_F(StoriesBytes, TruncationAtEveryHeaderOffsetIsRejected) {
  ASSERT_EQ(data_offset_, 14176u);
  for (uint64_t n = 0; n < data_offset_; ++n) {
    auto f = GgufFile::parse(std::span<const uint8_t>(bytes_->data(), n));
    ASSERT_FALSE(f.has_value()) << "prefix of " << n << " bytes was accepted";
    ASSERT_EQ(f.error().code, ErrorCode::kInvalidFormat) << f.error().to_string();
    ASSERT_FALSE(f.error().message.empty());
  }
}

TEST_F(StoriesBytes, TruncationInTheDataRegionNamesATensor) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 300; ++i) {
    const uint64_t n = data_offset_ + rng() % (bytes_->size() - data_offset_);
    auto f = GgufFile::parse(std::span<const uint8_t>(bytes_->data(), n));
    ASSERT_FALSE(f.has_value()) << n;
    ASSERT_THAT(f.error().message, HasSubstr("runs past the end of the file")) << n;
    ASSERT_THAT(f.error().message, HasSubstr("tensor '")) << n;
  }
}

TEST_F(StoriesBytes, RandomByteFlipsNeverCrash) {
  std::mt19937_64 rng(20240601);
  std::vector<uint8_t> copy;
  int accepted_header = 0;
  int rejected = 0;
  for (int i = 0; i < 3000; ++i) {
    copy = *bytes_;
    const int n_flips = 1 + static_cast<int>(rng() % 4);
    bool header_touched = false;
    for (int k = 0; k < n_flips; ++k) {
      // Mostly the header, where flips matter; sometimes anywhere.
      const uint64_t pos = (rng() % 4 != 0) ? rng() % data_offset_ : rng() % copy.size();
      header_touched |= pos < data_offset_;
      copy[pos] ^= static_cast<uint8_t>(1 + rng() % 255);
    }
    auto f = GgufFile::parse(copy);
    if (!header_touched) {
      ASSERT_TRUE(f.has_value()) << "a flip in tensor data only was rejected: "
                                 << f.error().to_string();
    }
    if (f.has_value()) {
      expect_consistent(*f);
      accepted_header += header_touched ? 1 : 0;
    } else {
      ++rejected;
      ASSERT_FALSE(f.error().message.empty());
    }
  }
  // Most flips in the header hit string or float bytes and keep the file valid; many do not.
  EXPECT_GT(rejected, 300);
  EXPECT_GT(accepted_header, 100);
}

// Flips that land in tensor data change exactly the bytes of one tensor and are accepted.
TEST_F(StoriesBytes, FlipsInTensorDataAreAccepted) {
  std::mt19937_64 rng(7);
  std::vector<uint8_t> copy = *bytes_;
  for (int i = 0; i < 200; ++i) {
    const uint64_t pos = data_offset_ + rng() % (copy.size() - data_offset_);
    copy[pos] ^= 0xff;
  }
  auto f = GgufFile::parse(copy);
  ASSERT_TRUE(f.has_value()) << f.error().to_string();
  EXPECT_EQ(f->tensors().size(), 48u);
}

// --- hand-crafted files ---

Error parse_error(const std::vector<uint8_t>& bytes) {
  auto f = GgufFile::parse(bytes);
  if (f.has_value()) return make_error(ErrorCode::kInternal, "ACCEPTED");
  return f.error();
}

// A valid file with one f32 tensor "w" of ne [8] at offset 0, as a baseline for edits.
ByteBuilder one_tensor_file(std::vector<uint64_t> ne = {8}, uint32_t type = kF32,
                            uint64_t offset = 0, size_t data_bytes = 32) {
  ByteBuilder b;
  b.header(3, 1, 1)
      .kv_u32("general.x", 1)
      .tensor("w", std::move(ne), type, offset)
      .pad_to(32)
      .zeros(data_bytes);
  return b;
}

TEST(GgufCrafted, BaselineIsValid) {
  auto f = GgufFile::parse(one_tensor_file().bytes);
  ASSERT_TRUE(f.has_value()) << f.error().to_string();
  EXPECT_EQ(f->find_tensor("w")->n_bytes, 32u);
  ByteBuilder v2;
  v2.header(2, 0, 1).kv_u32("general.x", 1);
  auto f2 = GgufFile::parse(v2.bytes);
  ASSERT_TRUE(f2.has_value()) << f2.error().to_string();
  EXPECT_EQ(f2->version(), 2u);
}

TEST(GgufCrafted, MagicAndVersion) {
  EXPECT_THAT(parse_error({}).message, HasSubstr("too small"));
  EXPECT_THAT(parse_error({'G', 'G', 'U'}).message, HasSubstr("too small"));
  ByteBuilder ggml;
  ggml.u32(0x67676d6c).u32(1).zeros(32);
  EXPECT_THAT(parse_error(ggml.bytes).message, HasSubstr("bad magic"));
  ByteBuilder v1;
  v1.magic().u32(1).u32(0).u32(0);
  const Error e1 = parse_error(v1.bytes);
  EXPECT_EQ(e1.code, ErrorCode::kUnsupported);
  EXPECT_THAT(e1.message, HasSubstr("unsupported GGUF v1"));
  ByteBuilder v4;
  v4.header(4, 0, 0);
  EXPECT_THAT(parse_error(v4.bytes).message, HasSubstr("unsupported GGUF version 4"));
  ByteBuilder big_endian;
  big_endian.magic().u32(0x03000000).zeros(16);
  const Error be = parse_error(big_endian.bytes);
  EXPECT_EQ(be.code, ErrorCode::kUnsupported);
  EXPECT_THAT(be.message, HasSubstr("big-endian"));
  ByteBuilder no_counts;
  no_counts.magic().u32(3).u32(0);
  EXPECT_THAT(parse_error(no_counts.bytes).message, HasSubstr("tensor count"));
}

TEST(GgufCrafted, AbsurdCountsAreRejectedBeforeAllocating) {
  for (const auto& [n_tensors, n_kv] : std::vector<std::pair<uint64_t, uint64_t>>{
           {0, 1ull << 60}, {1ull << 63, 0}, {~0ull, ~0ull}, {3, 0}, {0, 2}}) {
    ByteBuilder b;
    b.header(3, n_tensors, n_kv).kv_u32("general.x", 1);
    const Error e = parse_error(b.bytes);
    EXPECT_THAT(e.message, HasSubstr("more than the"))
        << n_tensors << " " << n_kv << ": " << e.message;
  }
}

// Counts the file could hold but no real model needs: limits keep memory bounded for huge inputs.
TEST(GgufCrafted, CountLimits) {
  ByteBuilder many_kv;
  many_kv.header(3, 0, 70000);
  for (int i = 0; i < 70000; ++i) many_kv.str("k").u32(0).u8(0);
  const Error e = parse_error(many_kv.bytes);
  EXPECT_EQ(e.code, ErrorCode::kOutOfRange);
  EXPECT_THAT(e.message, HasSubstr("limits are 65536"));
  ByteBuilder big_arrays;  // two u8 arrays of 10M elements: 20M > 16M elements in total
  big_arrays.header(3, 0, 2).str("a").u32(9).u32(0).u64(10000000).zeros(10000000);
  big_arrays.str("b").u32(9).u32(0).u64(10000000).zeros(10000000);
  const Error e2 = parse_error(big_arrays.bytes);
  EXPECT_EQ(e2.code, ErrorCode::kOutOfRange) << e2.message;
  EXPECT_THAT(e2.message, HasSubstr("key 'b'"));
  EXPECT_THAT(e2.message, HasSubstr("exceeds the limit of 16777216 array elements"));
}

TEST(GgufCrafted, AbsurdStringAndArrayLengths) {
  ByteBuilder key;
  key.header(3, 0, 1).u64(~0ull).zeros(16);
  EXPECT_THAT(parse_error(key.bytes).message, HasSubstr("exceeds the"));
  ByteBuilder value;
  value.header(3, 0, 1).str("general.name").u32(8).u64(1ull << 40).zeros(8);
  const Error ev = parse_error(value.bytes);
  EXPECT_THAT(ev.message, HasSubstr("'general.name'"));
  EXPECT_THAT(ev.message, HasSubstr("length 1099511627776"));
  ByteBuilder array;
  array.header(3, 0, 1).str("tokenizer.ggml.scores").u32(9).u32(6).u64(1ull << 61).zeros(64);
  const Error ea = parse_error(array.bytes);
  EXPECT_THAT(ea.message, HasSubstr("'tokenizer.ggml.scores'"));
  EXPECT_THAT(ea.message, HasSubstr("array of 2305843009213693952 f32"));
  ByteBuilder string_array;  // 100 strings need at least 800 bytes
  string_array.header(3, 0, 1).str("a").u32(9).u32(8).u64(100).zeros(400);
  EXPECT_THAT(parse_error(string_array.bytes).message, HasSubstr("array of 100 string"));
  ByteBuilder elem_overrun;  // a string element longer than what is left
  elem_overrun.header(3, 0, 1).str("a").u32(9).u32(8).u64(2).str("ok").u64(1000).zeros(8);
  EXPECT_THAT(parse_error(elem_overrun.bytes).message, HasSubstr("key 'a'[1]"));
}

TEST(GgufCrafted, NestedArraysAreBoundedInDepth) {
  ByteBuilder ok;
  ok.header(3, 0, 1).str("n").u32(9).u32(9).u64(1).u32(5).u64(2).u32(7).u32(8);
  auto f = GgufFile::parse(ok.bytes);
  ASSERT_TRUE(f.has_value()) << f.error().to_string();
  EXPECT_EQ((*f->get_array("n"))->arrays[0].ints, (std::vector<int64_t>{7, 8}));

  ByteBuilder deep;
  deep.header(3, 0, 1).str("deep").u32(9);
  for (int i = 0; i < 1000; ++i) deep.u32(9).u64(1);
  deep.u32(0).u64(0);
  const Error e = parse_error(deep.bytes);
  EXPECT_THAT(e.message, HasSubstr("nested deeper than 8"));
  EXPECT_THAT(e.message, HasSubstr("'deep'"));
}

TEST(GgufCrafted, ValueTypesAndKeys) {
  ByteBuilder type;
  type.header(3, 0, 1).str("k.type").u32(13).u32(0);
  EXPECT_THAT(parse_error(type.bytes).message,
              HasSubstr("key 'k.type' at offset 38: unknown value type id 13"));
  ByteBuilder elem;
  elem.header(3, 0, 1).str("k.elem").u32(9).u32(77).u64(0);
  EXPECT_THAT(parse_error(elem.bytes).message, HasSubstr("unknown array element type id 77"));
  ByteBuilder boolean;
  boolean.header(3, 0, 1).str("k.bool").u32(7).u8(2).zeros(8);
  EXPECT_THAT(parse_error(boolean.bytes).message, HasSubstr("bool value 2 is not 0 or 1"));
  ByteBuilder bool_array;
  bool_array.header(3, 0, 1).str("k.bools").u32(9).u32(7).u64(2).u8(1).u8(9);
  EXPECT_THAT(parse_error(bool_array.bytes).message, HasSubstr("'k.bools'[1]"));
  ByteBuilder dup;
  dup.header(3, 0, 2).kv_u32("same.key", 1).kv_u32("same.key", 2);
  EXPECT_THAT(parse_error(dup.bytes).message,
              HasSubstr("key 'same.key' at offset 48: duplicate key"));
  ByteBuilder odd_name;  // non-printable bytes in names are escaped in messages
  odd_name.header(3, 0, 2).kv_u32("a\x01\xff", 1).kv_u32("a\x01\xff", 2);
  EXPECT_THAT(parse_error(odd_name.bytes).message, HasSubstr("'a\\x01\\xff'"));
}

TEST(GgufCrafted, Alignment) {
  for (uint32_t bad : {0u, 3u, 48u}) {
    ByteBuilder b;
    b.header(3, 0, 1).kv_u32("general.alignment", bad);
    EXPECT_THAT(parse_error(b.bytes).message, HasSubstr("not a non-zero power of two")) << bad;
  }
  ByteBuilder wrong_type;
  wrong_type.header(3, 0, 1).str("general.alignment").u32(10).u64(32);
  EXPECT_THAT(parse_error(wrong_type.bytes).message, HasSubstr("stored as u64, expected u32"));
  ByteBuilder b64;
  b64.header(3, 1, 1)
      .kv_u32("general.alignment", 64)
      .tensor("w", {8}, kF32, 0)
      .pad_to(64)
      .zeros(32);
  auto f = GgufFile::parse(b64.bytes);
  ASSERT_TRUE(f.has_value()) << f.error().to_string();
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->data_offset() % 64, 0u);
}

TEST(GgufCrafted, TensorInfos) {
  const auto err = [](ByteBuilder b) { return parse_error(b.bytes).message; };
  EXPECT_THAT(err(one_tensor_file({})),
              HasSubstr("tensor 'w' at offset 58: n_dims 0 is not in 1..4"));
  EXPECT_THAT(err(one_tensor_file({1, 1, 1, 1, 8})), HasSubstr("n_dims 5"));
  EXPECT_THAT(err(one_tensor_file({8, 0})), HasSubstr("tensor 'w': ne[1] at offset 70 is 0"));
  EXPECT_THAT(err(one_tensor_file({1ull << 32, 1ull << 32})), HasSubstr("element count overflows"));
  EXPECT_THAT(err(one_tensor_file({~0ull})), HasSubstr("element count overflows"));
  EXPECT_THAT(err(one_tensor_file({8}, 99)),
              HasSubstr("tensor 'w' at offset 70: unknown tensor type id 99"));
  EXPECT_THAT(err(one_tensor_file({8}, 4)), HasSubstr("unknown tensor type id 4"));  // retired q4_2
  EXPECT_THAT(err(one_tensor_file({16}, kQ4_0)),
              HasSubstr("ne[0]=16 is not a multiple of the q4_0 block size 32"));
  EXPECT_THAT(err(one_tensor_file({8}, kF32, 4)),
              HasSubstr("data offset 4 is not a multiple of the alignment 32"));
  EXPECT_THAT(err(one_tensor_file({8}, kF32, 1ull << 62)),
              HasSubstr("runs past the end of the file"));
  EXPECT_THAT(err(one_tensor_file({8}, kF32, ~0ull - 31)),
              HasSubstr("runs past the end of the file"));
  EXPECT_THAT(err(one_tensor_file({9}, kF32, 0, 32)), HasSubstr("tensor 'w': data at file offset"));
  EXPECT_THAT(err(one_tensor_file({1ull << 40, 1ull << 20})), HasSubstr("runs past the end"));

  ByteBuilder empty_name;
  empty_name.header(3, 1, 0).tensor("", {8}, kF32, 0).pad_to(32).zeros(32);
  EXPECT_THAT(err(empty_name), HasSubstr("empty name"));
  ByteBuilder dup;
  dup.header(3, 2, 0).tensor("w", {8}, kF32, 0).tensor("w", {8}, kF32, 32).pad_to(32).zeros(64);
  EXPECT_THAT(err(dup), HasSubstr("tensor 'w' at offset 57: duplicate tensor name"));
  ByteBuilder overlap;
  overlap.header(3, 2, 0)
      .tensor("a", {16}, kF32, 0)
      .tensor("b", {8}, kF32, 32)
      .pad_to(32)
      .zeros(96);
  EXPECT_THAT(err(overlap),
              HasSubstr("tensor 'b': data at offset 32 overlaps tensor 'a' (offset 0, 64 bytes)"));
  ByteBuilder reordered;  // infos need not be in data order
  reordered.header(3, 2, 0)
      .tensor("a", {8}, kF32, 32)
      .tensor("b", {8}, kF32, 0)
      .pad_to(32)
      .zeros(64);
  auto f = GgufFile::parse(reordered.bytes);
  ASSERT_TRUE(f.has_value()) << f.error().to_string();
  EXPECT_EQ(f->tensor_data(*f->find_tensor("a")).data(), f->bytes().data() + f->data_offset() + 32);
}

// A tensor info from another file never yields a span outside this file's bytes.
TEST(GgufCrafted, ForeignTensorInfoGivesEmptySpan) {
  auto f = GgufFile::parse(one_tensor_file().bytes);
  ASSERT_TRUE(f.has_value());
  GgufTensorInfo foreign = *f->find_tensor("w");
  foreign.offset = 1ull << 40;
  EXPECT_TRUE(f->tensor_data(foreign).empty());
  foreign.offset = 0;
  foreign.n_bytes = ~0ull;
  EXPECT_TRUE(f->tensor_data(foreign).empty());
}

}  // namespace
}  // namespace edgelm::format
