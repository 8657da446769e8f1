#include "edgelm/tokenizer.h"
#include "tokenizer/detokenize.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace edgelm::tokenizer {

struct StreamDecoder::State {
  const Tokenizer::Impl* impl = nullptr;
  bool render_special = false;
  bool at_first_token = true;  // decode()'s leading-space rule applies to this token
  SpaceCleaner cleaner;
  std::string pending;  // bytes of an incomplete UTF-8 character

  // Appends `bytes` to the pending tail and returns the complete characters; bytes that cannot
  // start or continue a valid character become U+FFFD. At the end, an incomplete one does too.
  std::string complete_utf8(std::string_view bytes, bool at_end) {
    pending.append(bytes);
    std::string out;
    size_t pos = 0;
    while (pos < pending.size()) {
      uint32_t cp = 0;
      const int length = unicode::decode_one(pending, pos, cp);
      if (length > 0) {
        out.append(pending, pos, length);
        pos += length;
      } else if (length < 0 && !at_end) {
        break;  // wait for the rest of this character
      } else {
        unicode::append_utf8(out, unicode::kReplacement);
        pos = length < 0 ? pending.size() : pos + 1;
      }
    }
    pending.erase(0, pos);
    return out;
  }
};

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool render_special, bool continues_text)
    : state_(std::make_unique<State>()) {
  state_->impl = tokenizer.impl_.get();
  state_->render_special = render_special;
  state_->at_first_token = !continues_text;
}
StreamDecoder::~StreamDecoder() = default;
StreamDecoder::StreamDecoder(StreamDecoder&&) noexcept = default;
StreamDecoder& StreamDecoder::operator=(StreamDecoder&&) noexcept = default;

std::string StreamDecoder::push(int32_t id) {
  std::string_view piece = state_->impl->piece(id, state_->render_special);
  if (state_->at_first_token && state_->impl->vocab.add_space_prefix && !piece.empty() &&
      piece.front() == ' ') {
    piece.remove_prefix(1);
  }
  state_->at_first_token = false;
  if (!state_->impl->vocab.clean_spaces) return state_->complete_utf8(piece, false);
  return state_->complete_utf8(state_->cleaner.feed(piece), false);
}

std::string StreamDecoder::flush() {
  const std::string tail = state_->impl->vocab.clean_spaces ? state_->cleaner.finish() : "";
  return state_->complete_utf8(tail, true);
}

}  // namespace edgelm::tokenizer
