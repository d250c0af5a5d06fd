#pragma once
// Chat messages -> prompt token ids through the model's chat template.
//
// Text from the request is data, not markup, in every role: special-token strings such as
// "<｜User｜>" or "<｜end▁of▁sentence｜>" typed in any message's content, a tool call's name
// or arguments, or the tools are encoded as plain text, never as the control tokens the
// template itself writes. The template sees the text as sent (it may split or strip it); the
// renderer remembers which bytes of its output came from the request (ChatTemplate::
// render_marked), and only the others may become added tokens. Nothing is written in band:
// no text a client sends can change which bytes are which.

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
  bool opens_reasoning = false;  // the template's own <think> opens the answer (no </think> after it)
};

// With `context` > 0 (tokens), what cannot fit is refused before the template runs (400
// context_length_exceeded, param "messages"): more messages than the context has tokens, or
// more text in them than it can hold at the tokenizer's longest token. The template's output
// is then bounded by that much text too (past it: context_length_exceeded), and what it may
// build while it renders by a multiple of it (past it: a template error).
std::optional<ApiError> build_chat_prompt(const Tokenizer& tokenizer, const ChatRequest& request, ChatPrompt* out,
                                          int64_t context = 0);

// Text encoding for /v1/completions: BOS per tokenizer_config.json, special tokens honoured
// (a raw prompt is the caller's own markup).
std::vector<int32_t> encode_completion_prompt(const Tokenizer& tokenizer, const std::string& text);

}  // namespace dsv3::server
