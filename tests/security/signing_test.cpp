// Hashing, Ed25519 keys, DSSE envelopes and signed model manifests.
#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>

#include "edgelm/gguf.h"
#include "edgelm/model.h"
#include "edgelm/security/envelope.h"
#include "edgelm/security/hash.h"
#include "edgelm/security/keys.h"
#include "edgelm/security/model_signing.h"
#include "security_test_util.h"

namespace edgelm::security {
namespace {

namespace fs = std::filesystem;
using test::read_bytes;
using test::TempDir;
using test::write_bytes;

std::string error_of(const Status& s) {
  return s ? std::string("ok") : s.error().to_string();
}

// FIPS 180-2 appendix B.1 test vector.
TEST(Hash, Sha256MatchesPublishedVector) {
  EXPECT_EQ(to_hex(sha256(std::string_view("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// FIPS 180-2 appendix B.3: one million 'a' (many blocks); and a file larger than one hashing piece
// against libsodium's independent portable implementation.
TEST(Hash, LongInputsMatchAnIndependentImplementation) {
  const std::string million(1000000, 'a');
  EXPECT_EQ(to_hex(sha256(std::string_view(million))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  TempDir dir;
  std::string bytes((17u << 20) + 13, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 2654435761u) >> 13);
  write_bytes(dir / "big.bin", bytes);
  auto digest = sha256_file(dir / "big.bin");
  ASSERT_TRUE(digest) << digest.error().to_string();
  ASSERT_EQ(sodium_init() >= 0, true);
  Sha256 expected{};
  crypto_hash_sha256(expected.data(), reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  EXPECT_EQ(to_hex(digest->sha256), to_hex(expected));
  EXPECT_EQ(digest->size, bytes.size());
}

// The digest MANIFEST.md records for the shared model file.
TEST(Hash, StreamedFileHashMatchesManifest) {
  auto digest = sha256_file(test::stories_model());
  ASSERT_TRUE(digest) << digest.error().to_string();
  EXPECT_EQ(digest->size, 1185376u);
  EXPECT_EQ(to_hex(digest->sha256),
            "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d");
}

TEST(Hash, HexAndBase64RejectGarbage) {
  EXPECT_FALSE(from_hex("abc", "x"));
  EXPECT_FALSE(from_hex("zz", "x"));
  EXPECT_FALSE(from_base64("not base64!", "x"));
  auto b = from_base64(
      to_base64(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>("hello"), 5)), "x");
  ASSERT_TRUE(b);
  EXPECT_EQ(std::string(b->begin(), b->end()), "hello");
}

// RFC 8032 section 7.1, TEST 1 (empty message).
TEST(Keys, Ed25519MatchesRfc8032Vector) {
  TempDir dir;
  const auto key_path = dir / "rfc.key";
  write_bytes(
      key_path,
      R"({"keytype": "ed25519", "private": "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"})");
  ::chmod(key_path.c_str(), 0600);
  auto key = SigningKey::load(key_path);
  ASSERT_TRUE(key) << key.error().to_string();
  EXPECT_EQ(to_hex(key->public_key().bytes),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  const Signature sig = key->sign({});
  EXPECT_EQ(to_hex(sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39"
            "701cf9b46bd25bf5f0595bbe24655141438e7a100b");
  EXPECT_TRUE(verify_signature(key->public_key(), {}, sig));
  Signature bad = sig;
  bad[0] ^= 1;
  EXPECT_FALSE(verify_signature(key->public_key(), {}, bad));
}

TEST(Keys, PrivateKeyFileIsOwnerOnlyAndNeverOverwritten) {
  TempDir dir;
  auto key = SigningKey::generate();
  ASSERT_TRUE(key);
  const auto path = dir / "signing.key";
  ASSERT_TRUE(key->save(path));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  Status again = key->save(path);
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message.find("exists already"), std::string::npos);

  auto loaded = SigningKey::load(path);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->public_key(), key->public_key());

  ::chmod(path.c_str(), 0640);
  auto refused = SigningKey::load(path);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kSecurity);
  EXPECT_NE(refused.error().message.find("chmod 600"), std::string::npos)
      << refused.error().message;
}

TEST(Keys, PublicKeyRoundTrip) {
  TempDir dir;
  auto key = SigningKey::generate();
  ASSERT_TRUE(key);
  ASSERT_TRUE(save_public_key(key->public_key(), dir / "k.pub"));
  auto pub = load_public_key(dir / "k.pub");
  ASSERT_TRUE(pub);
  EXPECT_EQ(*pub, key->public_key());
  EXPECT_EQ(pub->key_id(), to_hex(sha256(std::span<const uint8_t>(pub->bytes))));
}

// The example from the DSSE protocol specification.
TEST(Envelope, PaeMatchesSpecExample) {
  EXPECT_EQ(pre_authentication_encoding("http://example.com/HelloWorld", "hello world"),
            "DSSEv1 29 http://example.com/HelloWorld 11 hello world");
}

TEST(Envelope, ThresholdCountsDistinctTrustedKeys) {
  auto a = SigningKey::generate(), b = SigningKey::generate(), c = SigningKey::generate();
  ASSERT_TRUE(a && b && c);
  const SigningKey* signers[] = {&*a, &*a, &*c};  // a twice, c untrusted
  auto env = parse_envelope(envelope_to_json(sign_envelope("t", "payload", signers)), "env");
  ASSERT_TRUE(env);
  const KeyRing trusted = {{a->public_key().key_id(), a->public_key()},
                           {b->public_key().key_id(), b->public_key()}};
  EXPECT_TRUE(verify_envelope(*env, "t", trusted, 1, "env"));
  Status two = verify_envelope(*env, "t", trusted, 2, "env");
  ASSERT_FALSE(two);
  EXPECT_NE(two.error().message.find("1 valid signature(s) from trusted keys, 2 required"),
            std::string::npos)
      << two.error().message;
  EXPECT_NE(two.error().message.find("not trusted"), std::string::npos);
  EXPECT_FALSE(verify_envelope(*env, "other-type", trusted, 1, "env"));
  env->payload += "x";
  EXPECT_NE(error_of(verify_envelope(*env, "t", trusted, 1, "env")).find("bad signature"),
            std::string::npos);
}

class SignedModel : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = dir_ / "stories260K.gguf";
    fs::copy_file(test::stories_model(), model_);
    key_ = std::make_unique<SigningKey>(std::move(SigningKey::generate().value()));
    policy_.require_signature = true;
    policy_.trusted_keys[key_->public_key().key_id()] = key_->public_key();
  }
  Status sign(std::vector<fs::path> extra = {}) {
    const SigningKey* keys[] = {key_.get()};
    auto m = sign_model(model_, extra, keys, "stories260K", "1.0");
    if (!m) return m.error();
    return {};
  }
  std::string refusal() { return error_of(verify_model(model_, policy_)); }

  TempDir dir_;
  fs::path model_;
  std::unique_ptr<SigningKey> key_;
  TrustPolicy policy_;
};

TEST_F(SignedModel, SignedModelVerifies) {
  ASSERT_TRUE(sign());
  auto manifest = verify_model_manifest(model_, policy_);
  ASSERT_TRUE(manifest) << manifest.error().to_string();
  EXPECT_EQ(manifest->name, "stories260K");
  ASSERT_EQ(manifest->files.size(), 1u);
  EXPECT_EQ(to_hex(manifest->files[0].sha256),
            "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d");
}

TEST_F(SignedModel, UnsignedModelIsRefusedOnlyWhenRequired) {
  EXPECT_NE(refusal().find("unsigned check failed"), std::string::npos) << refusal();
  policy_.require_signature = false;
  EXPECT_TRUE(verify_model(model_, policy_));
}

TEST_F(SignedModel, TamperedModelIsRefused) {
  ASSERT_TRUE(sign());
  std::string bytes = read_bytes(model_);
  bytes[bytes.size() / 2] ^= 0x01;
  write_bytes(model_, bytes);
  EXPECT_NE(refusal().find("sha256 check failed"), std::string::npos) << refusal();
}

TEST_F(SignedModel, TruncatedModelIsRefused) {
  ASSERT_TRUE(sign());
  fs::resize_file(model_, fs::file_size(model_) - 100);
  EXPECT_NE(refusal().find("size check failed"), std::string::npos) << refusal();
  EXPECT_NE(refusal().find("truncated"), std::string::npos);
}

TEST_F(SignedModel, WronglySignedModelIsRefused) {
  auto other = SigningKey::generate();
  ASSERT_TRUE(other);
  const SigningKey* keys[] = {&*other};
  ASSERT_TRUE(sign_model(model_, {}, keys, "stories260K", "1.0"));
  EXPECT_NE(refusal().find("signature check failed"), std::string::npos) << refusal();
  EXPECT_NE(refusal().find("not trusted"), std::string::npos);
}

TEST_F(SignedModel, ForgedSignatureIsRefused) {
  ASSERT_TRUE(sign());
  std::string text = read_bytes(manifest_path_for(model_));
  const size_t at = text.find("\"sig\": \"") + 9;
  text[at] = text[at] == 'A' ? 'B' : 'A';
  write_bytes(manifest_path_for(model_), text);
  EXPECT_NE(refusal().find("bad signature"), std::string::npos) << refusal();
}

TEST_F(SignedModel, ManifestForAnotherFileDoesNotCoverTheModel) {
  const fs::path other = dir_ / "other.gguf";
  fs::copy_file(model_, other);
  const SigningKey* keys[] = {key_.get()};
  ASSERT_TRUE(sign_model(other, {}, keys, "other", "1"));
  fs::rename(manifest_path_for(other), manifest_path_for(model_));
  EXPECT_NE(refusal().find("coverage check failed"), std::string::npos) << refusal();
}

TEST_F(SignedModel, EveryListedFileIsChecked) {
  const fs::path extra = dir_ / "tokenizer.json";
  write_bytes(extra, "{\"vocab\": []}");
  ASSERT_TRUE(sign({extra}));
  EXPECT_TRUE(verify_model(model_, policy_));
  write_bytes(extra, "{\"vocab\": [1]}");
  EXPECT_NE(refusal().find("tokenizer.json"), std::string::npos);
  fs::remove(extra);
  EXPECT_NE(refusal().find("missing file check failed"), std::string::npos) << refusal();
}

TEST_F(SignedModel, FilesOutsideTheModelFolderCannotBeSignedOrListed) {
  TempDir elsewhere;
  write_bytes(elsewhere / "x", "x");
  const SigningKey* keys[] = {key_.get()};
  EXPECT_FALSE(sign_model(model_, {elsewhere / "x"}, keys, "m", "1"));
  auto parsed = parse_manifest(
      R"({"_type": "edgelm/model-manifest/v1", "name": "m", "version": "1", "files": [{"path": "../x", "size": 1,
          "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}]})",
      "manifest");
  ASSERT_FALSE(parsed);
  EXPECT_NE(parsed.error().message.find("../x"), std::string::npos);
}

// The loader's pattern: map the file, verify the mapped bytes, then build the model from them.
TEST_F(SignedModel, LoaderVerifiesTheBytesItRuns) {
  ASSERT_TRUE(sign());
  auto file = format::GgufFile::open(model_);
  ASSERT_TRUE(file);
  ASSERT_TRUE(verify_model_bytes(model_, file->bytes(), policy_));
  auto model = model::Model::from_gguf(std::move(*file));
  ASSERT_TRUE(model) << model.error().to_string();

  // Bytes that differ from the signed file (e.g. swapped after the check) are refused.
  std::string bytes = read_bytes(model_);
  bytes[1000] ^= 0x40;
  Status s = verify_model_bytes(
      model_, std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), policy_);
  EXPECT_NE(error_of(s).find("sha256 check failed"), std::string::npos);
}

}  // namespace
}  // namespace edgelm::security
