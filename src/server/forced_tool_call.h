#pragma once
// tool_choice "required" and a named function, enforced: the grammar (grammar::ToolCallGrammar)
// whose output is one tool call in the markup the model's chat format writes tool calls in,
// with the arguments a value of the tool's `parameters` schema.
//
// The format is found by rendering an assistant tool call through the model's chat format
// (template or V3.2 encoder) and looking at what comes out, not by the model's name:
//   V3 / R1:  <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\n
//             ARGS\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>
//   V3.1:     <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>NAME<｜tool▁sep｜>ARGS<｜tool▁call▁end｜>
//             <｜tool▁calls▁end｜>
//   DSML (V3.2): parameters one by one, not one JSON value; not enforced (400 naming tool_choice).

#include <cstdint>
#include <memory>
#include <optional>

#include "base/json.h"
#include "grammar/tool_call_constraint.h"
#include "server/api_error.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::server {

enum class ToolCallFormat { Unknown, V3, V31, Dsml };

// What the tokenizer's chat format writes for an assistant message with a tool call.
ToolCallFormat probe_tool_call_format(const Tokenizer& tokenizer);
const char* tool_call_format_name(ToolCallFormat format);

// tool_choice "required" (any of `tools`) or {"type": "function", "function": {"name": N}}
// (that tool): the grammar of one call. `opens_reasoning`: the prompt ends inside <think>, so
// the output closes it first ("</think>\n\n"). Error (400): a tool's parameters the matcher
// cannot enforce (param "tools", the message naming the keyword's path), or a format with no
// JSON arguments (param "tool_choice").
std::optional<ApiError> forced_tool_call_grammar(const Tokenizer& tokenizer, ToolCallFormat format,
                                                 std::shared_ptr<const grammar::TokenVocabulary> vocabulary,
                                                 const Json& tools, const Json& tool_choice, bool opens_reasoning,
                                                 std::shared_ptr<const grammar::ToolCallGrammar>* out);

// tool_choice asks for a forced call ("required" or a named function).
bool tool_choice_forces_call(const Json& tool_choice);

}  // namespace dsv3::server
