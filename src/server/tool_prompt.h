#pragma once
// A request's `tools` for chat templates that do not render them (DeepSeek-V3's and R1's
// templates ignore `tools`): the tool list goes into the system prompt in the form DeepSeek's
// V3.1 template writes it ("## Tools", one "### NAME" section per tool with its description and
// parameter schema, then the call format), the call format being the one the model's template
// writes tool calls in. The section is request text like any system message: its markers are
// encoded as plain text, never as control tokens.

#include <string>

#include "base/json.h"
#include "server/forced_tool_call.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::server {

// The chat template writes a request's tools into the prompt (probed by rendering one).
bool template_renders_tools(const Tokenizer& tokenizer);

// The "## Tools" section for `tools` (a validated, non-empty array).
std::string tools_system_section(const Json& tools, ToolCallFormat format);

// `messages` with the section appended to the first system message ("\n\n" between them), or
// as a new first system message when there is none.
Json messages_with_tools_section(const Json& messages, const Json& tools, ToolCallFormat format);

}  // namespace dsv3::server
