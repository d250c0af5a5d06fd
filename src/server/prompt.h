#pragma once
// Chat messages -> prompt token ids through the model's chat template.
//
// User-supplied text is data, not markup: special-token strings such as "<｜User｜>" typed in
// user, system or tool content are encoded as plain text, never as the control tokens the
// template itself writes. Assistant content (model output fed back) is
// encoded as written.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/api_error.h"
#include "server/openai_request.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::server {

struct ChatPrompt {
  std::string text;             // the rendered template
  std::vector<int32_t> ids;
  bool opens_reasoning = false;  // the rendered prompt ends inside an open <think> block
};

std::optional<ApiError> build_chat_prompt(const Tokenizer& tokenizer, const ChatRequest& request, ChatPrompt* out);

// Text encoding for /v1/completions: BOS per tokenizer_config.json, special tokens honoured
// (a raw prompt is the caller's own markup).
std::vector<int32_t> encode_completion_prompt(const Tokenizer& tokenizer, const std::string& text);

}  // namespace dsv3::server
