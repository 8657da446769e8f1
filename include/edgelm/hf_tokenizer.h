// Hugging Face tokenizer files as GGUF tokenizer metadata: what `tokenizer.json` (+
// `tokenizer_config.json`) says, written under the keys llama.cpp's converter uses
// (tokenizer.ggml.model/pre/tokens/token_type/merges, special token ids, add_bos_token,
// tokenizer.chat_template). Tokenizer::from_hf_json builds a tokenizer from it; a GGUF writer can
// also embed it in a model file.
#pragma once

#include <string_view>

#include "edgelm/error.h"
#include "edgelm/gguf.h"

namespace edgelm::tokenizer {

// Byte-level BPE only (GPT-2, SmolLM/StarCoder, Llama 3, Qwen2 pre-tokenizers, recognised by
// structure and regex). Errors name the file and what is unsupported or malformed.
Result<format::GgufWriter> hf_tokenizer_to_gguf(std::string_view tokenizer_json,
                                                std::string_view tokenizer_config = {});

}  // namespace edgelm::tokenizer
