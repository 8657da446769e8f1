#include "edgelm/tokenizer.h"

#include "edgelm/gguf.h"
#include "tokenizer/algorithms.h"
#include "tokenizer/detokenize.h"
#include "tokenizer/tokenizer_impl.h"

namespace edgelm::tokenizer {

namespace {

// Prompts beyond this are refused instead of risking huge intermediate buffers.
constexpr size_t kMaxInputBytes = size_t{16} << 20;

std::string escape_spaces(std::string_view text) {
  std::string result;
  result.reserve(text.size() + 16);
  for (char c : text) {
    if (c == ' ') {
      result += "\xE2\x96\x81";
    } else {
      result.push_back(c);
    }
  }
  return result;
}

}  // namespace

std::string_view model_kind_name(ModelKind kind) {
  switch (kind) {
    case ModelKind::kSpm:
      return "spm";
    case ModelKind::kBpe:
      return "bpe";
    case ModelKind::kWpm:
      return "wpm";
  }
  return "unknown";
}

std::string_view Tokenizer::Impl::piece(int32_t id, bool render_special) const {
  if (!vocab.valid(id)) return {};
  if (!render_special && (vocab.tokens[id].attr & (kAttrControl | kAttrUnknown))) return {};
  return pieces[id];
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_gguf(const format::GgufFile& file) {
  auto impl = std::make_unique<Impl>();
  EDGELM_TRY(impl->vocab, load_vocab(file));
  if (impl->vocab.kind == ModelKind::kBpe) {
    EDGELM_TRY(PreTokenizer pre, PreTokenizer::create(impl->vocab.pre));
    impl->pre.emplace(std::move(pre));
  }
  impl->pieces = build_pieces(impl->vocab);
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
}

Result<std::vector<int32_t>> Tokenizer::encode(std::string_view text, bool add_special,
                                               bool parse_special) const {
  if (text.size() > kMaxInputBytes) {
    return make_error(ErrorCode::kOutOfRange, "tokenizer input of " + std::to_string(text.size()) +
                                                  " bytes exceeds the limit of " +
                                                  std::to_string(kMaxInputBytes));
  }
  const Vocab& vocab = impl_->vocab;
  const std::vector<Fragment> fragments = split_special_tokens(vocab, text, parse_special);
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  switch (vocab.kind) {
    case ModelKind::kSpm: {
      if (add_special && vocab.add_bos) out.push_back(vocab.bos);
      // SentencePiece adds a space before text that starts the input or follows a special token.
      bool after_special = true;
      for (const Fragment& fragment : fragments) {
        if (fragment.token != kNoToken) {
          out.push_back(fragment.token);
          after_special = true;
          continue;
        }
        std::string escaped = vocab.add_space_prefix && after_special ? "\xE2\x96\x81" : "";
        escaped += escape_spaces(fragment.text);
        spm_tokenize(vocab, escaped, out);
        after_special = false;
      }
      if (add_special && vocab.add_eos) out.push_back(vocab.eos);
      break;
    }
    case ModelKind::kBpe: {
      if (add_special && vocab.add_bos) out.push_back(vocab.bos);
      for (const Fragment& fragment : fragments) {
        if (fragment.token != kNoToken) {
          out.push_back(fragment.token);
        } else {
          EDGELM_CHECK(bpe_tokenize(vocab, *impl_->pre, fragment.text, out));
        }
      }
      if (add_special && vocab.add_eos) out.push_back(vocab.eos);
      break;
    }
    case ModelKind::kWpm: {
      // BERT frames the input as [CLS] ... [SEP] (bos and sep ids).
      if (add_special && vocab.bos != kNoToken) out.push_back(vocab.bos);
      for (const Fragment& fragment : fragments) {
        if (fragment.token != kNoToken) {
          out.push_back(fragment.token);
        } else {
          wpm_tokenize(vocab, fragment.text, out);
        }
      }
      if (add_special && vocab.sep != kNoToken) out.push_back(vocab.sep);
      break;
    }
  }
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id, bool render_special) const {
  return std::string(impl_->piece(id, render_special));
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool render_special) const {
  std::string raw;
  for (size_t i = 0; i < ids.size(); ++i) {
    std::string_view piece = impl_->piece(ids[i], render_special);
    if (i == 0 && impl_->vocab.add_space_prefix && !piece.empty() && piece.front() == ' ') {
      piece.remove_prefix(1);
    }
    raw.append(piece);
  }
  if (!impl_->vocab.clean_spaces) return raw;
  SpaceCleaner cleaner;
  std::string result = cleaner.feed(raw);
  result += cleaner.finish();
  return result;
}

int32_t Tokenizer::n_vocab() const {
  return impl_->vocab.n_tokens();
}
ModelKind Tokenizer::kind() const {
  return impl_->vocab.kind;
}
std::string_view Tokenizer::pre_type() const {
  return impl_->vocab.pre_name;
}
int32_t Tokenizer::bos() const {
  return impl_->vocab.bos;
}
int32_t Tokenizer::eos() const {
  return impl_->vocab.eos;
}
int32_t Tokenizer::eot() const {
  return impl_->vocab.eot;
}
int32_t Tokenizer::unk() const {
  return impl_->vocab.unk;
}
int32_t Tokenizer::pad() const {
  return impl_->vocab.pad;
}
int32_t Tokenizer::sep() const {
  return impl_->vocab.sep;
}
bool Tokenizer::add_bos() const {
  return impl_->vocab.add_bos;
}
bool Tokenizer::add_eos() const {
  return impl_->vocab.add_eos;
}
bool Tokenizer::add_space_prefix() const {
  return impl_->vocab.add_space_prefix;
}
bool Tokenizer::is_eog(int32_t id) const {
  return impl_->vocab.eog.count(id) > 0;
}
bool Tokenizer::is_control(int32_t id) const {
  return impl_->vocab.valid(id) && (impl_->vocab.tokens[id].attr & kAttrControl) != 0;
}
TokenType Tokenizer::token_type(int32_t id) const {
  return impl_->vocab.valid(id) ? impl_->vocab.tokens[id].type : TokenType::kUndefined;
}
std::string_view Tokenizer::token_text(int32_t id) const {
  return impl_->vocab.valid(id) ? impl_->vocab.tokens[id].text : std::string_view();
}
int32_t Tokenizer::find_token(std::string_view text) const {
  return impl_->vocab.find(text);
}

}  // namespace edgelm::tokenizer
