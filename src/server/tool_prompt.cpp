#include "server/tool_prompt.h"

namespace dsv3::server {

bool template_renders_tools(const Tokenizer& tok) {
  if (tok.uses_dsv32_encoding()) return true;  // the V3.2 encoder writes them itself
  if (!tok.chat_template()) return false;
  const std::string name = "dsv3_probe_tool_name";
  const Json tools = Json::array({Json{{"type", "function"},
                                       {"function", {{"name", name}, {"description", "probe"},
                                                     {"parameters", {{"type", "object"}}}}}}});
  const Json messages = Json::array({Json{{"role", "system"}, {"content", "s"}}, Json{{"role", "user"}, {"content", "x"}}});
  auto text = tok.apply_chat_template(messages, /*add_generation_prompt=*/true, Json{{"tools", tools}});
  return text.ok() && text->find(name) != std::string::npos;
}

std::string tools_system_section(const Json& tools, ToolCallFormat format) {
  std::string s = "## Tools\nYou have access to the following tools:\n";
  for (const Json& t : tools) {
    const Json& f = t.at("function");
    s += "\n### " + f.at("name").get<std::string>() + "\n";
    if (f.contains("description") && f.at("description").is_string())
      s += "Description: " + f.at("description").get<std::string>() + "\n";
    s += "\nParameters: " + (f.contains("parameters") ? f.at("parameters").dump() : std::string("{}")) + "\n";
  }
  s += "\nIMPORTANT: ALWAYS adhere to this exact format for tool use:\n";
  if (format == ToolCallFormat::V31)
    s += "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>tool_call_name<｜tool▁sep｜>tool_call_arguments<｜tool▁call▁end｜>"
         "{{additional_tool_calls}}<｜tool▁calls▁end｜>\n";
  else
    s += "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>tool_call_name\n```json\ntool_call_arguments\n```"
         "<｜tool▁call▁end｜>{{additional_tool_calls}}<｜tool▁calls▁end｜>\n";
  s += "\nWhere:\n\n"
       "- `tool_call_name` must be an exact match to one of the available tools\n"
       "- `tool_call_arguments` must be valid JSON that strictly follows the tool's Parameters Schema\n"
       "- For multiple tool calls, chain them directly without separators or spaces\n";
  return s;
}

Json messages_with_tools_section(const Json& messages, const Json& tools, ToolCallFormat format) {
  Json out = messages;
  const std::string section = tools_system_section(tools, format);
  for (Json& m : out)
    if (m.at("role") == "system") {
      const std::string content = m.at("content").is_string() ? m.at("content").get<std::string>() : "";
      m["content"] = content.empty() ? section : content + "\n\n" + section;
      return out;
    }
  out.insert(out.begin(), Json{{"role", "system"}, {"content", section}});
  return out;
}

}  // namespace dsv3::server
