#include "server/forced_tool_call.h"

#include <string>
#include <utility>
#include <vector>

#include "grammar/json_schema.h"

namespace dsv3::server {
namespace {

const std::string kCallsBegin = "<｜tool▁calls▁begin｜>";
const std::string kCallBegin = "<｜tool▁call▁begin｜>";
const std::string kSep = "<｜tool▁sep｜>";
const std::string kCallEnd = "<｜tool▁call▁end｜>";
const std::string kCallsEnd = "<｜tool▁calls▁end｜>";

// `before` + name + `after` as tokens: the markup's added tokens as the tokenizer has them, the
// name (request text) always as plain text.
std::vector<int32_t> markup_around(const Tokenizer& tok, const std::string& before, const std::string& name,
                                   const std::string& after) {
  const std::string text = before + name + after;
  const std::pair<size_t, size_t> plain[] = {{before.size(), before.size() + name.size()}};
  return tok.encode_with_plain_text(text, plain, /*add_bos=*/false);
}

}  // namespace

const char* tool_call_format_name(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::V3: return "V3/R1";
    case ToolCallFormat::V31: return "V3.1";
    case ToolCallFormat::Dsml: return "DSML (V3.2)";
    case ToolCallFormat::Unknown: break;
  }
  return "unknown";
}

ToolCallFormat probe_tool_call_format(const Tokenizer& tok) {
  if (tok.uses_dsv32_encoding()) return ToolCallFormat::Dsml;
  if (!tok.chat_template()) return ToolCallFormat::Unknown;
  const std::string name = "dsv3_probe_fn";
  const Json messages = Json::array(
      {Json{{"role", "user"}, {"content", "x"}},
       Json{{"role", "assistant"},
            {"content", nullptr},
            {"tool_calls", Json::array({Json{{"id", "call_0"},
                                             {"type", "function"},
                                             {"function", {{"name", name}, {"arguments", "{}"}}}}})}}});
  auto text = tok.apply_chat_template(messages, /*add_generation_prompt=*/false);
  if (!text.ok()) return ToolCallFormat::Unknown;
  if (text->find("DSML") != std::string::npos) return ToolCallFormat::Dsml;
  if (text->find(kSep + name) != std::string::npos) return ToolCallFormat::V3;
  if (text->find(name + kSep) != std::string::npos) return ToolCallFormat::V31;
  return ToolCallFormat::Unknown;
}

bool tool_choice_forces_call(const Json& tool_choice) {
  return tool_choice == "required" || tool_choice.is_object();
}

std::optional<ApiError> forced_tool_call_grammar(const Tokenizer& tok, ToolCallFormat format,
                                                 std::shared_ptr<const grammar::TokenVocabulary> vocabulary,
                                                 const Json& tools, const Json& tool_choice, bool opens_reasoning,
                                                 std::shared_ptr<const grammar::ToolCallGrammar>* out) {
  if (format != ToolCallFormat::V3 && format != ToolCallFormat::V31)
    return invalid_request(std::string("'tool_choice' \"required\" or a named function is enforced for the V3/R1 and V3.1 "
                                       "tool-call formats; this model's chat format writes ") +
                               tool_call_format_name(format) + " tool calls",
                           "tool_choice", "not_supported");
  auto g = std::make_shared<grammar::ToolCallGrammar>();
  g->vocabulary_size = vocabulary->size();
  if (auto eos = tok.eos_id()) g->end_tokens.push_back(*eos);
  const std::string think = opens_reasoning ? "</think>\n\n" : "";
  for (size_t i = 0; i < tools.size(); ++i) {
    const Json& f = tools[i].at("function");
    const std::string name = f.at("name").get<std::string>();
    if (tool_choice.is_object() && tool_choice.at("function").at("name") != name) continue;
    std::shared_ptr<const grammar::Schema> schema;
    if (f.contains("parameters") && !f.at("parameters").is_null()) {
      auto compiled = grammar::compile_json_schema(f.at("parameters"), str_f("tools[%zu].function.parameters", i));
      if (!compiled.ok()) return invalid_request(bounded_text(compiled.error().message(), 300), "tools");
      schema = std::make_shared<grammar::Schema>(std::move(compiled).value());
    } else {
      schema = std::make_shared<grammar::Schema>(grammar::any_json_object_schema());
    }
    grammar::ToolCallOption option;
    if (format == ToolCallFormat::V3) {
      option.opening = markup_around(tok, think + kCallsBegin + kCallBegin + "function" + kSep, name, "\n```json\n");
      option.closing = tok.encode("\n```" + kCallEnd + kCallsEnd);
    } else {
      option.opening = markup_around(tok, think + kCallsBegin + kCallBegin, name, kSep);
      option.closing = tok.encode(kCallEnd + kCallsEnd);
    }
    option.arguments = std::make_shared<grammar::JsonGrammar>(
        grammar::JsonGrammar{std::move(schema), vocabulary, {}});
    g->tools.push_back(std::move(option));
  }
  if (g->tools.empty()) return invalid_request("'tool_choice' names a function that is not in 'tools'", "tool_choice");
  *out = std::move(g);
  return std::nullopt;
}

}  // namespace dsv3::server
