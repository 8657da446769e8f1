// Encryption at rest: a versioned, chunked, authenticated file format on libsodium's
// crypto_secretstream_xchacha20poly1305.
//
// Layout (little-endian):
//   header, 64 bytes: magic "EDGELMEF" | u16 version (1) | u16 kind (1 blob, 2 records)
//                     | u32 max_chunk (plaintext bytes per chunk) | u64 plaintext_size (blob; 0 for
//                     records) | 16-byte key id | 24-byte secretstream header
//   chunks:           u32 ciphertext length | ciphertext (plaintext + 17 bytes)
// The header is the additional data of the first chunk, so every field is authenticated. The last
// chunk carries TAG_FINAL and nothing may follow it: truncation, reordering, modification and
// appended data are all detected.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "edgelm/error.h"
#include "edgelm/security/keys.h"
#include "edgelm/security/secure_buffer.h"

namespace edgelm::security {

inline constexpr std::string_view kEncryptedMagic = "EDGELMEF";
inline constexpr uint16_t kEncryptedVersion = 1;
inline constexpr uint32_t kDefaultChunkSize = 1u << 20;
inline constexpr uint32_t kMaxChunkSize = 1u << 26;  // a reader refuses larger chunks (64 MiB)

// True when the file starts with kEncryptedMagic (false when it cannot be read).
bool is_encrypted_file(const std::filesystem::path& path);

// Encrypts `in` into `out` (mode 0600, written beside it and renamed into place).
Status encrypt_file(const std::filesystem::path& in, const std::filesystem::path& out, const SecretKey& key,
                    uint32_t chunk_size = kDefaultChunkSize);
Status encrypt_bytes_to_file(std::span<const uint8_t> plaintext, const std::filesystem::path& out,
                             const SecretKey& key, uint32_t chunk_size = kDefaultChunkSize);
// Writes the plaintext to `out` (mode 0600): for users who ask for it explicitly.
Status decrypt_file(const std::filesystem::path& in, const std::filesystem::path& out, const SecretKey& key);

// Decrypts a blob file into locked process memory; the plaintext never touches a file. The
// buffer is page-aligned, so GgufFile::parse(buffer.bytes()) can read a model from it.
Result<SecureBuffer> decrypt_to_memory(const std::filesystem::path& path, const SecretKey& key);

// Appends records (log lines, cache entries, audit events) to a new encrypted file. Each record is
// one authenticated chunk written through to the OS at once, so a crash loses at most the record
// being written; close() (or the destructor) writes the final tag.
class EncryptedWriter {
 public:
  // Creates `path` (mode 0600); refuses to replace an existing file.
  static Result<EncryptedWriter> create(const std::filesystem::path& path, const SecretKey& key,
                                        uint32_t max_record = kDefaultChunkSize);
  EncryptedWriter(EncryptedWriter&&) noexcept;
  EncryptedWriter& operator=(EncryptedWriter&&) noexcept;
  ~EncryptedWriter();

  Status append(std::span<const uint8_t> record);
  Status append(std::string_view record) {
    return append(std::span(reinterpret_cast<const uint8_t*>(record.data()), record.size()));
  }
  Status close();

 private:
  struct State;
  explicit EncryptedWriter(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

struct EncryptedRecords {
  std::vector<std::string> records;
  bool complete = false;  // the final tag was read (false: the writer did not close, e.g. a crash)
};
// Reads every record. Records that fail authentication are errors; a missing final tag is
// reported through `complete` when allow_unfinished, else as an error.
Result<EncryptedRecords> read_encrypted_records(const std::filesystem::path& path, const SecretKey& key,
                                                bool allow_unfinished = false);

}  // namespace edgelm::security
