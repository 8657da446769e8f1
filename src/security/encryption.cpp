#include "edgelm/security/encryption.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "edgelm/security/hash.h"
#include "security/internal.h"

namespace edgelm::security {
namespace fs = std::filesystem;
using detail::Fd;

namespace {

constexpr size_t kHeaderSize = 64;
constexpr size_t kAbytes = crypto_secretstream_xchacha20poly1305_ABYTES;
constexpr size_t kLengthPrefix = 4;
static_assert(crypto_secretstream_xchacha20poly1305_HEADERBYTES == 24);
static_assert(8 + 2 + 2 + 4 + 8 + 16 + 24 == kHeaderSize);

enum class Kind : uint16_t { kBlob = 1, kRecords = 2 };

struct Header {
  uint16_t version = kEncryptedVersion;
  Kind kind = Kind::kBlob;
  uint32_t max_chunk = 0;
  uint64_t plaintext_size = 0;
  std::array<uint8_t, 16> key_id{};
  std::array<uint8_t, crypto_secretstream_xchacha20poly1305_HEADERBYTES> stream_header{};
};

void put_le(uint8_t* p, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint64_t get_le(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= uint64_t{p[i]} << (8 * i);
  return v;
}

std::array<uint8_t, kHeaderSize> encode(const Header& h) {
  std::array<uint8_t, kHeaderSize> out{};
  std::memcpy(out.data(), kEncryptedMagic.data(), 8);
  put_le(out.data() + 8, h.version, 2);
  put_le(out.data() + 10, static_cast<uint16_t>(h.kind), 2);
  put_le(out.data() + 12, h.max_chunk, 4);
  put_le(out.data() + 16, h.plaintext_size, 8);
  std::memcpy(out.data() + 24, h.key_id.data(), 16);
  std::memcpy(out.data() + 40, h.stream_header.data(), h.stream_header.size());
  return out;
}

// Reads exactly n bytes; returns how many were read before end of file.
Result<size_t> read_up_to(int fd, uint8_t* out, size_t n, const fs::path& path) {
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::read(fd, out + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return detail::io_error(path, "read failed");
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return got;
}

// Encrypts chunk by chunk into an open file.
class StreamWriter {
 public:
  static Result<StreamWriter> start(int fd, const fs::path& path, const SecretKey& key, Kind kind,
                                    uint32_t max_chunk, uint64_t plaintext_size) {
    EDGELM_CHECK(detail::require_sodium());
    if (max_chunk == 0 || max_chunk > kMaxChunkSize) {
      return make_error(ErrorCode::kInvalidArgument, "chunk size " + std::to_string(max_chunk) +
                                                         " is not in [1, " +
                                                         std::to_string(kMaxChunkSize) + "]");
    }
    StreamWriter w;
    w.fd_ = fd;
    w.path_ = path;
    Header h;
    h.kind = kind;
    h.max_chunk = max_chunk;
    h.plaintext_size = plaintext_size;
    h.key_id = key.key_id();
    crypto_secretstream_xchacha20poly1305_init_push(&w.state_, h.stream_header.data(),
                                                    key.bytes().data());
    w.header_ = encode(h);
    w.max_chunk_ = max_chunk;
    EDGELM_CHECK(detail::write_all(fd, w.header_, path));
    return w;
  }

  Status push(std::span<const uint8_t> plaintext, bool final) {
    if (plaintext.size() > max_chunk_) {
      return make_error(ErrorCode::kOutOfRange,
                        detail::quoted(path_) + ": record of " + std::to_string(plaintext.size()) +
                            " bytes exceeds the chunk size " + std::to_string(max_chunk_));
    }
    buffer_.resize(kLengthPrefix + plaintext.size() + kAbytes);
    put_le(buffer_.data(), plaintext.size() + kAbytes, 4);
    const uint8_t tag = final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
                              : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
    // The header is the first chunk's additional data, which authenticates every header field.
    const uint8_t* ad = first_ ? header_.data() : nullptr;
    const size_t ad_len = first_ ? header_.size() : 0;
    crypto_secretstream_xchacha20poly1305_push(&state_, buffer_.data() + kLengthPrefix, nullptr,
                                               plaintext.data(), plaintext.size(), ad, ad_len, tag);
    first_ = false;
    return detail::write_all(fd_, buffer_, path_);
  }

  ~StreamWriter() { sodium_memzero(&state_, sizeof state_); }
  StreamWriter(StreamWriter&&) = default;

 private:
  StreamWriter() = default;
  int fd_ = -1;
  fs::path path_;
  crypto_secretstream_xchacha20poly1305_state state_{};
  std::array<uint8_t, kHeaderSize> header_{};
  uint32_t max_chunk_ = 0;
  bool first_ = true;
  std::vector<uint8_t> buffer_;
};

struct Chunk {
  size_t size = 0;
  bool final = false;
};

// Decrypts chunk by chunk from an open file, checking every bound before reading.
class StreamReader {
 public:
  static Result<StreamReader> open(const fs::path& path, const SecretKey& key, Kind kind) {
    EDGELM_CHECK(detail::require_sodium());
    StreamReader r;
    r.path_ = path;
    r.fd_ = Fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (r.fd_.get() < 0) {
      if (errno == ENOENT)
        return make_error(ErrorCode::kNotFound, detail::quoted(path) + " does not exist");
      return detail::io_error(path, "cannot open");
    }
    struct stat st {};
    if (::fstat(r.fd_.get(), &st) != 0) return detail::io_error(path, "stat failed");
    r.file_size_ = static_cast<uint64_t>(st.st_size);
    EDGELM_TRY(size_t got, read_up_to(r.fd_.get(), r.header_bytes_.data(), kHeaderSize, path));
    if (got < 8 || std::memcmp(r.header_bytes_.data(), kEncryptedMagic.data(), 8) != 0) {
      return r.bad("not an edgelm encrypted file (no EDGELMEF magic)");
    }
    if (got < kHeaderSize) return r.bad("truncated: the 64-byte header is incomplete");
    const uint8_t* h = r.header_bytes_.data();
    r.header_.version = static_cast<uint16_t>(get_le(h + 8, 2));
    r.header_.kind = static_cast<Kind>(get_le(h + 10, 2));
    r.header_.max_chunk = static_cast<uint32_t>(get_le(h + 12, 4));
    r.header_.plaintext_size = get_le(h + 16, 8);
    std::memcpy(r.header_.key_id.data(), h + 24, 16);
    std::memcpy(r.header_.stream_header.data(), h + 40, 24);
    if (r.header_.version != kEncryptedVersion) {
      return make_error(ErrorCode::kUnsupported,
                        detail::quoted(path) + ": encrypted format version " +
                            std::to_string(r.header_.version) + " (this build reads 1)");
    }
    if (r.header_.kind != kind) {
      return r.bad(kind == Kind::kBlob ? "holds records (a log), not an encrypted file"
                                       : "holds an encrypted file, not records");
    }
    if (r.header_.max_chunk == 0 || r.header_.max_chunk > kMaxChunkSize) {
      return r.bad("chunk size " + std::to_string(r.header_.max_chunk) + " is out of range");
    }
    if (r.header_.key_id != key.key_id()) {
      return detail::security_error(
          detail::quoted(path) + " was encrypted with a different key (key id " +
          to_hex(r.header_.key_id) + ", this key " + to_hex(key.key_id()) + ")");
    }
    if (crypto_secretstream_xchacha20poly1305_init_pull(&r.state_, r.header_.stream_header.data(),
                                                        key.bytes().data()) != 0) {
      return r.bad("invalid stream header");
    }
    r.ciphertext_.resize(r.header_.max_chunk + kAbytes);
    return r;
  }

  const Header& header() const { return header_; }
  uint64_t file_size() const { return file_size_; }

  // Decrypts the next chunk into `out` (room for max_chunk bytes); nullopt at end of file.
  Result<std::optional<Chunk>> next(uint8_t* out) {
    uint8_t prefix[kLengthPrefix];
    EDGELM_TRY(size_t got, read_up_to(fd_.get(), prefix, kLengthPrefix, path_));
    if (got == 0) return std::optional<Chunk>();
    if (got < kLengthPrefix) return bad("truncated inside chunk " + std::to_string(index_));
    const uint64_t len = get_le(prefix, 4);
    if (len < kAbytes || len > header_.max_chunk + kAbytes) {
      return bad("chunk " + std::to_string(index_) + " has an invalid length " +
                 std::to_string(len));
    }
    EDGELM_TRY(got, read_up_to(fd_.get(), ciphertext_.data(), len, path_));
    if (got < len) return bad("truncated inside chunk " + std::to_string(index_));
    unsigned long long plain_len = 0;
    uint8_t tag = 0;
    const uint8_t* ad = index_ == 0 ? header_bytes_.data() : nullptr;
    const size_t ad_len = index_ == 0 ? kHeaderSize : 0;
    if (crypto_secretstream_xchacha20poly1305_pull(&state_, out, &plain_len, &tag,
                                                   ciphertext_.data(), len, ad, ad_len) != 0) {
      return detail::security_error(
          detail::quoted(path_) + ": chunk " + std::to_string(index_) +
          " failed authentication (modified, reordered or from another file)");
    }
    ++index_;
    return std::optional<Chunk>(Chunk{static_cast<size_t>(plain_len),
                                      tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL});
  }

  Status expect_end() {
    uint8_t extra = 0;
    EDGELM_TRY(size_t got, read_up_to(fd_.get(), &extra, 1, path_));
    if (got != 0)
      return detail::security_error(detail::quoted(path_) + ": data after the final chunk");
    return {};
  }

  Error bad(const std::string& what) const {
    return detail::security_error("encrypted file '" + path_.string() + "': " + what);
  }

  ~StreamReader() { sodium_memzero(&state_, sizeof state_); }
  StreamReader(StreamReader&&) = default;

 private:
  StreamReader() = default;
  fs::path path_;
  Fd fd_;
  uint64_t file_size_ = 0;
  std::array<uint8_t, kHeaderSize> header_bytes_{};
  Header header_;
  crypto_secretstream_xchacha20poly1305_state state_{};
  std::vector<uint8_t> ciphertext_;
  uint64_t index_ = 0;
};

// A file created beside its destination and renamed into place only when complete.
class PendingFile {
 public:
  static Result<PendingFile> create(const fs::path& dest) {
    std::random_device rd;
    PendingFile f;
    f.dest_ = dest;
    f.tmp_ = dest.string() + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(rd());
    f.fd_ = Fd(::open(f.tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (f.fd_.get() < 0) return detail::io_error(f.tmp_, "cannot create");
    return f;
  }
  int fd() const { return fd_.get(); }
  Status commit() {
    if (::fsync(fd_.get()) != 0) return detail::io_error(tmp_, "fsync failed");
    if (::close(fd_.release()) != 0) return detail::io_error(tmp_, "close failed");
    if (::rename(tmp_.c_str(), dest_.c_str()) != 0)
      return detail::io_error(dest_, "cannot rename into place");
    tmp_.clear();
    return detail::fsync_path(dest_.has_parent_path() ? dest_.parent_path() : fs::path("."));
  }
  PendingFile(PendingFile&&) = default;
  ~PendingFile() {
    if (!tmp_.empty()) ::unlink(tmp_.c_str());
  }

 private:
  PendingFile() = default;
  fs::path dest_;
  fs::path tmp_;
  Fd fd_;
};

Status write_blob(std::span<const uint8_t> plaintext, const fs::path& out, const SecretKey& key,
                  uint32_t chunk_size) {
  EDGELM_TRY(PendingFile file, PendingFile::create(out));
  EDGELM_TRY(StreamWriter writer,
             StreamWriter::start(file.fd(), out, key, Kind::kBlob, chunk_size, plaintext.size()));
  size_t off = 0;
  do {
    const size_t n = std::min<size_t>(chunk_size, plaintext.size() - off);
    EDGELM_CHECK(writer.push(plaintext.subspan(off, n), off + n == plaintext.size()));
    off += n;
  } while (off < plaintext.size());
  return file.commit();
}

// Decrypts a blob, handing each plaintext chunk to `sink` at its offset; checks the exact file
// size first so truncation is reported before any work.
template <class Sink>
Status read_blob(StreamReader& reader, uint8_t* scratch_or_null, Sink&& sink) {
  const Header& h = reader.header();
  const uint64_t n_chunks =
      h.plaintext_size == 0 ? 1 : (h.plaintext_size + h.max_chunk - 1) / h.max_chunk;
  if (h.plaintext_size > reader.file_size() ||
      kHeaderSize + n_chunks * (kLengthPrefix + kAbytes) + h.plaintext_size != reader.file_size()) {
    return reader.bad("file size " + std::to_string(reader.file_size()) + " does not match the " +
                      std::to_string(h.plaintext_size) +
                      " bytes its header declares (truncated or extended)");
  }
  uint64_t off = 0;
  for (uint64_t i = 0; i < n_chunks; ++i) {
    const uint64_t expected = std::min<uint64_t>(h.max_chunk, h.plaintext_size - off);
    uint8_t* out = sink.destination(off);
    EDGELM_TRY(auto chunk, reader.next(out != nullptr ? out : scratch_or_null));
    if (!chunk || chunk->size != expected)
      return reader.bad("chunk " + std::to_string(i) + " has the wrong size");
    if (chunk->final != (i + 1 == n_chunks)) {
      return reader.bad(chunk->final ? "final tag before the end (truncated stream)"
                                     : "the last chunk has no final tag (truncated)");
    }
    EDGELM_CHECK(sink.consume(off, chunk->size));
    off += chunk->size;
  }
  return reader.expect_end();
}

}  // namespace

bool is_encrypted_file(const fs::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return false;
  uint8_t magic[8];
  auto got = read_up_to(fd.get(), magic, sizeof magic, path);
  return got && *got == sizeof magic &&
         std::memcmp(magic, kEncryptedMagic.data(), sizeof magic) == 0;
}

Status encrypt_bytes_to_file(std::span<const uint8_t> plaintext, const fs::path& out,
                             const SecretKey& key, uint32_t chunk_size) {
  return write_blob(plaintext, out, key, chunk_size);
}

Status encrypt_file(const fs::path& in, const fs::path& out, const SecretKey& key,
                    uint32_t chunk_size) {
  EDGELM_TRY(detail::MappedFile file, detail::MappedFile::open(in));
  return write_blob(file.bytes(), out, key, chunk_size);
}

Status decrypt_file(const fs::path& in, const fs::path& out, const SecretKey& key) {
  EDGELM_TRY(StreamReader reader, StreamReader::open(in, key, Kind::kBlob));
  EDGELM_TRY(SecureBuffer scratch, SecureBuffer::allocate(reader.header().max_chunk));
  EDGELM_TRY(PendingFile file, PendingFile::create(out));
  struct FileSink {
    uint8_t* scratch;
    int fd;
    const fs::path& path;
    uint8_t* destination(uint64_t) { return nullptr; }
    Status consume(uint64_t, size_t n) { return detail::write_all(fd, {scratch, n}, path); }
  } sink{scratch.data(), file.fd(), out};
  EDGELM_CHECK(read_blob(reader, scratch.data(), sink));
  return file.commit();
}

Result<SecureBuffer> decrypt_to_memory(const fs::path& path, const SecretKey& key) {
  EDGELM_TRY(StreamReader reader, StreamReader::open(path, key, Kind::kBlob));
  if (reader.header().plaintext_size > reader.file_size()) {
    return reader.bad("declares more plaintext than the file holds (truncated)");
  }
  EDGELM_TRY(SecureBuffer buffer, SecureBuffer::allocate(reader.header().plaintext_size));
  struct MemorySink {
    uint8_t* base;
    uint8_t* destination(uint64_t off) { return base + off; }
    Status consume(uint64_t, size_t) { return {}; }
  } sink{buffer.data()};
  uint8_t empty_scratch = 0;  // a zero-byte model still needs a valid output pointer
  EDGELM_CHECK(read_blob(reader, &empty_scratch, sink));
  return buffer;
}

struct EncryptedWriter::State {
  Fd fd;
  fs::path path;
  std::optional<StreamWriter> writer;
  bool closed = false;
};

EncryptedWriter::EncryptedWriter(std::unique_ptr<State> state) : state_(std::move(state)) {}
EncryptedWriter::EncryptedWriter(EncryptedWriter&&) noexcept = default;
EncryptedWriter& EncryptedWriter::operator=(EncryptedWriter&&) noexcept = default;
EncryptedWriter::~EncryptedWriter() {
  if (state_ && !state_->closed) (void)close();
}

Result<EncryptedWriter> EncryptedWriter::create(const fs::path& path, const SecretKey& key,
                                                uint32_t max_record) {
  auto state = std::make_unique<State>();
  state->path = path;
  state->fd = Fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (state->fd.get() < 0) {
    if (errno == EEXIST) {
      return make_error(ErrorCode::kInvalidArgument,
                        detail::quoted(path) + " exists already; not replacing it");
    }
    return detail::io_error(path, "cannot create");
  }
  EDGELM_TRY(StreamWriter writer,
             StreamWriter::start(state->fd.get(), path, key, Kind::kRecords, max_record, 0));
  state->writer.emplace(std::move(writer));
  return EncryptedWriter(std::move(state));
}

Status EncryptedWriter::append(std::span<const uint8_t> record) {
  if (!state_ || state_->closed)
    return make_error(ErrorCode::kInvalidArgument, "encrypted writer is closed");
  return state_->writer->push(record, /*final=*/false);
}

Status EncryptedWriter::close() {
  if (!state_ || state_->closed) return {};
  state_->closed = true;
  EDGELM_CHECK(state_->writer->push({}, /*final=*/true));
  state_->writer.reset();
  if (::fsync(state_->fd.get()) != 0) return detail::io_error(state_->path, "fsync failed");
  if (::close(state_->fd.release()) != 0) return detail::io_error(state_->path, "close failed");
  return {};
}

Result<EncryptedRecords> read_encrypted_records(const fs::path& path, const SecretKey& key,
                                                bool allow_unfinished) {
  EDGELM_TRY(StreamReader reader, StreamReader::open(path, key, Kind::kRecords));
  EDGELM_TRY(SecureBuffer scratch, SecureBuffer::allocate(reader.header().max_chunk));
  EncryptedRecords out;
  for (;;) {
    EDGELM_TRY(auto chunk, reader.next(scratch.data()));
    if (!chunk) break;
    if (chunk->final) {
      if (chunk->size != 0) return reader.bad("the final chunk must be empty");
      EDGELM_CHECK(reader.expect_end());
      out.complete = true;
      return out;
    }
    out.records.emplace_back(reinterpret_cast<const char*>(scratch.data()), chunk->size);
  }
  if (!allow_unfinished) {
    return reader.bad("no final tag after " + std::to_string(out.records.size()) +
                      " records (truncated, or the writer did not close)");
  }
  return out;
}

}  // namespace edgelm::security
