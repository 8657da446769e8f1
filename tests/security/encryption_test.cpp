// Encryption at rest: the chunked secretstream format, key files, in-memory model decryption and
// the record writer; plus a scan of everything written during an encrypted run for plaintext.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "edgelm/gguf.h"
#include "edgelm/model.h"
#include "edgelm/security/encryption.h"
#include "edgelm/tokenizer.h"
#include "security_test_util.h"

namespace edgelm::security {
namespace {

namespace fs = std::filesystem;
using test::read_bytes;
using test::TempDir;
using test::write_bytes;

constexpr size_t kHeader = 64;
constexpr size_t kChunkOverhead = 4 + 17;  // length prefix + secretstream tag and MAC

class Encryption : public ::testing::Test {
 protected:
  void SetUp() override {
    auto key = SecretKey::generate();
    ASSERT_TRUE(key);
    key_ = std::make_unique<SecretKey>(std::move(*key));
    plain_ = read_bytes(test::stories_model());
    encrypted_ = dir_ / "model.gguf.enc";
    ASSERT_TRUE(encrypt_file(test::stories_model(), encrypted_, *key_, kChunk));
  }
  std::string decrypt_error() {
    auto r = decrypt_to_memory(encrypted_, *key_);
    return r ? std::string("ok") : r.error().to_string();
  }
  // Offset of chunk i's length prefix (all chunks but the last hold kChunk bytes).
  static size_t chunk_offset(size_t i) { return kHeader + i * (kChunkOverhead + kChunk); }

  static constexpr uint32_t kChunk = 64 * 1024;
  TempDir dir_;
  std::unique_ptr<SecretKey> key_;
  std::string plain_;
  fs::path encrypted_;
};

TEST_F(Encryption, RoundTripIntoLockedMemoryParsesAsGguf) {
  EXPECT_TRUE(is_encrypted_file(encrypted_));
  EXPECT_FALSE(is_encrypted_file(test::stories_model()));
  struct stat st {};
  ASSERT_EQ(::stat(encrypted_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const size_t n_chunks = (plain_.size() + kChunk - 1) / kChunk;
  EXPECT_EQ(fs::file_size(encrypted_), kHeader + n_chunks * kChunkOverhead + plain_.size());

  auto buffer = decrypt_to_memory(encrypted_, *key_);
  ASSERT_TRUE(buffer) << buffer.error().to_string();
  ASSERT_EQ(buffer->size(), plain_.size());
  EXPECT_EQ(std::memcmp(buffer->data(), plain_.data(), plain_.size()), 0);
  EXPECT_TRUE(buffer->locked()) << "1.2 MB fits the usual 8 MB RLIMIT_MEMLOCK";
  auto gguf = format::GgufFile::parse(buffer->bytes());
  ASSERT_TRUE(gguf) << gguf.error().to_string();
  EXPECT_EQ(gguf->tensors().size(), 48u);
}

TEST_F(Encryption, DecryptFileRestoresTheBytes) {
  ASSERT_TRUE(decrypt_file(encrypted_, dir_ / "plain.gguf", *key_));
  EXPECT_EQ(read_bytes(dir_ / "plain.gguf"), plain_);
}

TEST_F(Encryption, EmptyAndExactChunkSizes) {
  for (size_t size : {size_t{0}, size_t{1}, size_t{kChunk}, size_t{2 * kChunk}, size_t{2 * kChunk + 1}}) {
    const std::string data(size, 'x');
    const fs::path out = dir_ / ("sized-" + std::to_string(size));
    ASSERT_TRUE(encrypt_bytes_to_file(std::span(reinterpret_cast<const uint8_t*>(data.data()), data.size()), out,
                                      *key_, kChunk));
    auto back = decrypt_to_memory(out, *key_);
    ASSERT_TRUE(back) << size << ": " << back.error().to_string();
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(back->data()), back->size()), data);
  }
}

TEST_F(Encryption, ModifiedChunkIsDetected) {
  std::string bytes = read_bytes(encrypted_);
  bytes[chunk_offset(3) + 100] ^= 0x01;
  write_bytes(encrypted_, bytes);
  EXPECT_NE(decrypt_error().find("chunk 3 failed authentication"), std::string::npos) << decrypt_error();
}

TEST_F(Encryption, ReorderedChunksAreDetected) {
  std::string bytes = read_bytes(encrypted_);
  const size_t len = kChunkOverhead + kChunk;
  std::string a = bytes.substr(chunk_offset(1), len), b = bytes.substr(chunk_offset(2), len);
  bytes.replace(chunk_offset(1), len, b);
  bytes.replace(chunk_offset(2), len, a);
  write_bytes(encrypted_, bytes);
  EXPECT_NE(decrypt_error().find("chunk 1 failed authentication"), std::string::npos) << decrypt_error();
}

TEST_F(Encryption, TruncationIsDetected) {
  const std::string bytes = read_bytes(encrypted_);
  const size_t n_chunks = (plain_.size() + kChunk - 1) / kChunk;
  // Dropping whole chunks, a single byte, or everything after the header.
  for (size_t cut : {chunk_offset(n_chunks - 1), bytes.size() - 1, kHeader, size_t{10}}) {
    write_bytes(encrypted_, bytes.substr(0, cut));
    EXPECT_NE(decrypt_error().find("truncated"), std::string::npos) << cut << ": " << decrypt_error();
  }
}

// With a header that also claims the shorter size, the missing final tag still gives it away.
TEST_F(Encryption, DroppedFinalChunkWithMatchingHeaderIsDetected) {
  std::string bytes = read_bytes(encrypted_);
  const size_t kept = 3;
  bytes.resize(chunk_offset(kept));
  const uint64_t claimed = kept * kChunk;
  for (int i = 0; i < 8; ++i) bytes[16 + i] = static_cast<char>(claimed >> (8 * i));
  write_bytes(encrypted_, bytes);
  // The header is authenticated as the first chunk's additional data.
  EXPECT_NE(decrypt_error().find("chunk 0 failed authentication"), std::string::npos) << decrypt_error();
}

TEST_F(Encryption, AppendedDataIsDetected) {
  write_bytes(encrypted_, read_bytes(encrypted_) + "more");
  EXPECT_NE(decrypt_error().find("does not match"), std::string::npos) << decrypt_error();
}

TEST_F(Encryption, WrongKeyIsNamed) {
  auto other = SecretKey::generate();
  ASSERT_TRUE(other);
  auto r = decrypt_to_memory(encrypted_, *other);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kSecurity);
  EXPECT_NE(r.error().message.find("different key"), std::string::npos);
}

TEST_F(Encryption, UnsupportedVersionAndHugeChunkAreRefused) {
  std::string bytes = read_bytes(encrypted_);
  std::string v2 = bytes;
  v2[8] = 2;
  write_bytes(encrypted_, v2);
  EXPECT_NE(decrypt_error().find("version 2"), std::string::npos) << decrypt_error();
  std::string huge = bytes;
  huge[15] = 0x7f;  // max_chunk far above the reader's limit
  write_bytes(encrypted_, huge);
  EXPECT_NE(decrypt_error().find("chunk size"), std::string::npos) << decrypt_error();
}

TEST(SecretKeyFile, PermissionsAndEnvironment) {
  TempDir dir;
  auto key = SecretKey::generate();
  ASSERT_TRUE(key);
  const fs::path path = dir / "model.key";
  ASSERT_TRUE(key->save(path));
  EXPECT_FALSE(key->save(path)) << "never overwrites a key";
  auto loaded = SecretKey::load(path);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->key_id(), key->key_id());

  for (mode_t mode : {0640, 0604, 0660}) {
    ::chmod(path.c_str(), mode);
    auto refused = SecretKey::load(path);
    ASSERT_FALSE(refused) << std::oct << mode;
    EXPECT_EQ(refused.error().code, ErrorCode::kSecurity);
  }
  ::chmod(path.c_str(), 0600);

  ::unsetenv(kKeyFileEnv);
  auto none = resolve_secret_key("");
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find(kKeyFileEnv), std::string::npos);
  ::setenv(kKeyFileEnv, path.c_str(), 1);
  auto from_env = resolve_secret_key("");
  ::unsetenv(kKeyFileEnv);
  ASSERT_TRUE(from_env) << from_env.error().to_string();
  EXPECT_EQ(from_env->key_id(), key->key_id());
}

TEST(EncryptedRecords, RoundTripAndTampering) {
  TempDir dir;
  auto key = SecretKey::generate();
  ASSERT_TRUE(key);
  const fs::path log = dir / "audit.log.enc";
  {
    auto writer = EncryptedWriter::create(log, *key);
    ASSERT_TRUE(writer);
    ASSERT_TRUE(writer->append("first record"));
    ASSERT_TRUE(writer->append(""));
    ASSERT_TRUE(writer->append("third record"));
    ASSERT_TRUE(writer->close());
  }
  EXPECT_FALSE(EncryptedWriter::create(log, *key)) << "never replaces an existing file";
  auto records = read_encrypted_records(log, *key);
  ASSERT_TRUE(records) << records.error().to_string();
  EXPECT_TRUE(records->complete);
  EXPECT_EQ(records->records, (std::vector<std::string>{"first record", "", "third record"}));
  EXPECT_FALSE(decrypt_to_memory(log, *key)) << "a record file is not a blob";

  const std::string bytes = read_bytes(log);
  // Swap records 0 and 2 (same length).
  const size_t r0 = kHeader, len = 4 + 12 + 17, r2 = kHeader + len + 4 + 17;
  std::string swapped = bytes;
  swapped.replace(r0, len, bytes.substr(r2, len));
  swapped.replace(r2, len, bytes.substr(r0, len));
  write_bytes(log, swapped);
  EXPECT_FALSE(read_encrypted_records(log, *key));
  // Drop the final tag: strict readers refuse, tolerant ones say the log is incomplete.
  write_bytes(log, bytes.substr(0, bytes.size() - (4 + 17)));
  auto strict = read_encrypted_records(log, *key);
  ASSERT_FALSE(strict);
  EXPECT_NE(strict.error().message.find("no final tag"), std::string::npos);
  auto tolerant = read_encrypted_records(log, *key, /*allow_unfinished=*/true);
  ASSERT_TRUE(tolerant);
  EXPECT_FALSE(tolerant->complete);
  EXPECT_EQ(tolerant->records.size(), 3u);
}

// A writer killed before close() leaves every appended record readable and authenticated.
TEST(EncryptedRecords, CrashKeepsWrittenRecords) {
  TempDir dir;
  auto key = SecretKey::generate();
  ASSERT_TRUE(key);
  const fs::path log = dir / "crash.log.enc";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto writer = EncryptedWriter::create(log, *key);
    if (!writer || !writer->append("before the crash")) ::_exit(1);
    ::kill(::getpid(), SIGKILL);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  auto records = read_encrypted_records(log, *key, /*allow_unfinished=*/true);
  ASSERT_TRUE(records) << records.error().to_string();
  EXPECT_FALSE(records->complete);
  EXPECT_EQ(records->records, std::vector<std::string>{"before the crash"});
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Everything written while serving from an encrypted model with an encrypted log is scanned for
// the prompt, the generated text and pieces of the model's plaintext.
TEST(EncryptedRun, NoPlaintextReachesTheDisk) {
  TempDir dir;
  const fs::path written = dir / "written";  // every byte the run writes lands under here
  fs::create_directories(written / "tmp");
  const char* old_tmpdir = std::getenv("TMPDIR");
  const std::string saved_tmpdir = old_tmpdir != nullptr ? old_tmpdir : "";
  ::setenv("TMPDIR", (written / "tmp").c_str(), 1);

  auto key = SecretKey::generate();
  ASSERT_TRUE(key);
  const fs::path key_file = dir / "run.key";
  ASSERT_TRUE(key->save(key_file));
  const std::string plain_model = read_bytes(test::stories_model());
  ASSERT_TRUE(encrypt_file(test::stories_model(), written / "model.gguf.enc", *key));

  const std::string prompt = "Once upon a time, Zorblatt the purple dragon";
  std::string generated;
  {
    auto run_key = resolve_secret_key(key_file);
    ASSERT_TRUE(run_key);
    auto buffer = decrypt_to_memory(written / "model.gguf.enc", *run_key);
    ASSERT_TRUE(buffer) << buffer.error().to_string();
    auto gguf = format::GgufFile::parse(buffer->bytes());
    ASSERT_TRUE(gguf);
    auto tokenizer = tokenizer::Tokenizer::from_gguf(*gguf);
    ASSERT_TRUE(tokenizer);
    auto model = model::Model::from_gguf(std::move(*gguf));
    ASSERT_TRUE(model) << model.error().to_string();
    auto context = model::Context::create(**model);
    ASSERT_TRUE(context);
    auto tokens = (*tokenizer)->encode(prompt, /*add_special=*/true, /*parse_special=*/false);
    ASSERT_TRUE(tokens);
    std::vector<int32_t> out;
    std::vector<int32_t> next = *tokens;
    for (int i = 0; i < 24; ++i) {
      auto logits = (*context)->decode(next);
      ASSERT_TRUE(logits) << logits.error().to_string();
      const int32_t best = static_cast<int32_t>(std::max_element(logits->begin(), logits->end()) - logits->begin());
      out.push_back(best);
      next = {best};
    }
    generated = (*tokenizer)->decode(out, /*render_special=*/false);
    auto log = EncryptedWriter::create(written / "requests.log.enc", *run_key);
    ASSERT_TRUE(log);
    ASSERT_TRUE(log->append("prompt: " + prompt));
    ASSERT_TRUE(log->append("output: " + generated));
    ASSERT_TRUE(log->close());
  }
  if (old_tmpdir != nullptr) {
    ::setenv("TMPDIR", saved_tmpdir.c_str(), 1);
  } else {
    ::unsetenv("TMPDIR");
  }
  ASSERT_GE(generated.size(), 20u);

  // Needles: the texts, and 64-byte windows spread over the model (metadata and tensor data).
  std::vector<std::string> needles = {prompt, "Zorblatt", generated.substr(0, 20)};
  for (size_t off = 0; off + 64 <= plain_model.size(); off += plain_model.size() / 97) {
    needles.push_back(plain_model.substr(off, 64));
  }
  // The scanner finds them in plaintext (positive control).
  const std::string control = plain_model + "prompt: " + prompt + "output: " + generated;
  for (const auto& needle : needles) ASSERT_TRUE(contains(control, needle));

  size_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(written)) {
    if (!entry.is_regular_file()) continue;
    ++files;
    const std::string bytes = read_bytes(entry.path());
    for (size_t i = 0; i < needles.size(); ++i) {
      EXPECT_FALSE(contains(bytes, needles[i])) << entry.path() << " holds plaintext needle " << i;
    }
  }
  EXPECT_EQ(files, 2u) << "the encrypted model and the encrypted log, nothing else";

  auto records = read_encrypted_records(written / "requests.log.enc", *key);
  ASSERT_TRUE(records);
  EXPECT_EQ(records->records[0], "prompt: " + prompt);
}

}  // namespace
}  // namespace edgelm::security
