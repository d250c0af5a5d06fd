#pragma once
// DeepSeek-V3.2's prompt format. V3.2 ships no Jinja chat template: its prompts come from
// DeepSeek's Python encoder (encoding/encoding_dsv32.py, published with the weights), which
// this restates: messages in OpenAI form (roles system, developer, user, assistant, tool;
// tools and response_format carried by a system or developer message), thinking or chat
// mode, tool calls written as DSML (<｜DSML｜function_calls> ... ), and the rule that only
// the assistant turns after the last user message show their reasoning.
// Tested against cases DeepSeek's encoder produced (tests/fixtures/tokenizer/dsv32).

#include "base/json.h"
#include "base/result.h"
#include "tokenizer/chat_template.h"

namespace dsv3 {

struct Dsv32EncodeOptions {
  bool thinking = false;  // thinking_mode "thinking" (else "chat")
  bool add_bos = true;    // add_default_bos_token
};

// encode_messages(messages, thinking_mode): the prompt text, with the byte ranges that came
// from the messages marked (as ChatTemplate::render_marked marks them, so that special-token
// text typed in a message stays text). Errors name the message and the rule it breaks.
Result<ChatTemplate::Rendered> encode_dsv32(const Json& messages, const Dsv32EncodeOptions& options);
Result<ChatTemplate::Rendered> encode_dsv32(const OrderedJson& messages, const Dsv32EncodeOptions& options);

// An OpenAI request's top-level tools, where the encoder reads them: on the first message
// when it is a system message, else on a new empty system message in front.
Json dsv32_attach_tools(const Json& messages, const Json& tools);

}  // namespace dsv3
