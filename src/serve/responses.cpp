#include "serve/responses.h"

#include <sodium.h>

#include <cstring>

namespace edgelm::serve::detail {
namespace {

using nlohmann::json;

constexpr std::string_view kFingerprint = "fp_edgelm";

json bytes_json(const std::string& piece) {
  json bytes = json::array();
  for (unsigned char c : piece) bytes.push_back(static_cast<int>(c));
  return bytes;
}

json chat_choice_base(const ResponseHeader& h, std::string_view object) {
  return {{"id", h.id},
          {"object", object},
          {"created", h.created},
          {"model", h.model},
          {"system_fingerprint", kFingerprint}};
}

}  // namespace

std::string_view finish_reason_json(runtime::FinishReason reason) {
  return reason == runtime::FinishReason::kStop ? "stop" : "length";
}

std::string random_id(std::string_view prefix) {
  unsigned char bytes[12];
  randombytes_buf(bytes, sizeof bytes);
  static const char* digits = "0123456789abcdef";
  std::string id(prefix);
  for (unsigned char b : bytes) {
    id += digits[b >> 4];
    id += digits[b & 15];
  }
  return id;
}

json usage_json(const GenerationOutcome& o) {
  return {{"prompt_tokens", o.n_prompt},
          {"completion_tokens", o.n_generated},
          {"total_tokens", o.n_prompt + o.n_generated},
          {"prompt_tokens_details", {{"cached_tokens", o.n_prompt_cached}}}};
}

json chat_logprobs(const tokenizer::Tokenizer& tok, std::span<const int32_t> tokens,
                   std::span<const runtime::Logprobs> logprobs) {
  json content = json::array();
  for (size_t i = 0; i < tokens.size() && i < logprobs.size(); ++i) {
    const std::string piece = tok.token_to_piece(tokens[i], false);
    json top = json::array();
    for (const runtime::TokenLogprob& alt : logprobs[i].top) {
      const std::string alt_piece = tok.token_to_piece(alt.token, false);
      top.push_back(
          {{"token", alt_piece}, {"logprob", alt.logprob}, {"bytes", bytes_json(alt_piece)}});
    }
    content.push_back({{"token", piece},
                       {"logprob", logprobs[i].chosen.logprob},
                       {"bytes", bytes_json(piece)},
                       {"top_logprobs", std::move(top)}});
  }
  return {{"content", std::move(content)}, {"refusal", nullptr}};
}

json completion_logprobs(const tokenizer::Tokenizer& tok, std::span<const int32_t> tokens,
                         std::span<const runtime::Logprobs> logprobs, size_t offset0) {
  json pieces = json::array(), values = json::array(), tops = json::array(),
       offsets = json::array();
  size_t offset = offset0;
  for (size_t i = 0; i < tokens.size() && i < logprobs.size(); ++i) {
    const std::string piece = tok.token_to_piece(tokens[i], false);
    pieces.push_back(piece);
    values.push_back(logprobs[i].chosen.logprob);
    json top = json::object();
    for (const runtime::TokenLogprob& alt : logprobs[i].top) {
      top[tok.token_to_piece(alt.token, false)] = alt.logprob;
    }
    tops.push_back(std::move(top));
    offsets.push_back(offset);
    offset += piece.size();
  }
  return {{"tokens", std::move(pieces)},
          {"token_logprobs", std::move(values)},
          {"top_logprobs", std::move(tops)},
          {"text_offset", std::move(offsets)}};
}

json chat_completion(const ResponseHeader& h, const std::string& content, const json& logprobs,
                     const GenerationOutcome& outcome) {
  json r = chat_choice_base(h, "chat.completion");
  r["choices"] = json::array(
      {{{"index", 0},
        {"message", {{"role", "assistant"}, {"content", content}, {"refusal", nullptr}}},
        {"logprobs", logprobs},
        {"finish_reason", finish_reason_json(outcome.finish)}}});
  r["usage"] = usage_json(outcome);
  return r;
}

json chat_chunk(const ResponseHeader& h, json delta, const json& logprobs,
                const runtime::FinishReason* finish, bool include_usage) {
  json r = chat_choice_base(h, "chat.completion.chunk");
  json choice = {{"index", 0},
                 {"delta", std::move(delta)},
                 {"logprobs", logprobs},
                 {"finish_reason", nullptr}};
  if (finish != nullptr) choice["finish_reason"] = finish_reason_json(*finish);
  r["choices"] = json::array({std::move(choice)});
  if (include_usage) r["usage"] = nullptr;
  return r;
}

json text_completion(const ResponseHeader& h, const std::string& text, const json& logprobs,
                     const GenerationOutcome& outcome) {
  json r = chat_choice_base(h, "text_completion");
  r["choices"] = json::array({{{"index", 0},
                               {"text", text},
                               {"logprobs", logprobs},
                               {"finish_reason", finish_reason_json(outcome.finish)}}});
  r["usage"] = usage_json(outcome);
  return r;
}

json text_chunk(const ResponseHeader& h, const std::string& text, const json& logprobs,
                const runtime::FinishReason* finish, bool include_usage) {
  json r = chat_choice_base(h, "text_completion");
  json choice = {{"index", 0}, {"text", text}, {"logprobs", logprobs}, {"finish_reason", nullptr}};
  if (finish != nullptr) choice["finish_reason"] = finish_reason_json(*finish);
  r["choices"] = json::array({std::move(choice)});
  if (include_usage) r["usage"] = nullptr;
  return r;
}

json usage_chunk(const ResponseHeader& h, std::string_view object,
                 const GenerationOutcome& outcome) {
  json r = chat_choice_base(h, object);
  r["choices"] = json::array();
  r["usage"] = usage_json(outcome);
  return r;
}

json model_json(const std::string& id, int64_t created) {
  return {{"id", id}, {"object", "model"}, {"created", created}, {"owned_by", "edgelm"}};
}

std::string floats_base64(std::span<const float> values) {
  std::string bytes(values.size() * 4, '\0');
  for (size_t i = 0; i < values.size(); ++i) {
    uint32_t bits;
    std::memcpy(&bits, &values[i], 4);
    for (int b = 0; b < 4; ++b) bytes[i * 4 + b] = static_cast<char>((bits >> (8 * b)) & 0xFF);
  }
  std::string out(sodium_base64_encoded_len(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::strlen(out.c_str()));
  return out;
}

std::string dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace edgelm::serve::detail
