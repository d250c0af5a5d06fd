#include "tokenizer/dsv32_encoding.h"

#include <string>

#include "tokenizer/jinja/value.h"

namespace dsv3 {
namespace {

const std::string kBos = "<｜begin▁of▁sentence｜>";
const std::string kEos = "<｜end▁of▁sentence｜>";
const std::string kThinkStart = "<think>";
const std::string kThinkEnd = "</think>";
const std::string kDsml = "｜DSML｜";
const std::string kUser = "<｜User｜>";
const std::string kAssistant = "<｜Assistant｜>";

// The tools section of a system (or developer) message; {tool_schemas} goes between the two
// halves. Text of DeepSeek's TOOLS_SYSTEM_TEMPLATE: it is part of the prompt the model was
// trained with.
std::string tools_intro() {
  const std::string d = kDsml;
  return "## Tools\n\n"
         "You have access to a set of tools you can use to answer the user's question.\n"
         "You can invoke functions by writing a \"<" + d + "function_calls>\" block like the following as part of your reply to the user:\n"
         "<" + d + "function_calls>\n"
         "<" + d + "invoke name=\"$FUNCTION_NAME\">\n"
         "<" + d + "parameter name=\"$PARAMETER_NAME\" string=\"true|false\">$PARAMETER_VALUE</" + d + "parameter>\n"
         "...\n"
         "</" + d + "invoke>\n"
         "<" + d + "invoke name=\"$FUNCTION_NAME2\">\n"
         "...\n"
         "</" + d + "invoke>\n"
         "</" + d + "function_calls>\n\n"
         "String and scalar parameters should be specified as is without any escaping or quotes, while lists and objects "
         "should use JSON format. The \"string\" attribute should be set to \"true\" for string type parameters and \"false\" "
         "for other types (numbers, booleans, arrays, objects).\n\n"
         "If the thinking_mode is enabled, then after function results you should strongly consider outputting a thinking "
         "block. Here is an example:\n\n"
         "<" + d + "function_calls>\n"
         "...\n"
         "</" + d + "function_calls>\n\n"
         "<function_results>\n"
         "...\n"
         "</function_results>\n\n" +
         kThinkStart + "...thinking about results" + kThinkEnd + "\n\n"
         "Here are the functions available in JSONSchema format:\n"
         "<functions>\n";
}
const char* const kToolsOutro = "\n</functions>\n";
const char* const kResponseFormatIntro = "## Response Format:\n\nYou MUST strictly adhere to the following schema to reply:\n";

// Python's json.dumps(value, ensure_ascii=False), key order as given.
template <typename J>
std::string to_json(const J& v) {
  return jinja::Value::from_json(v).to_json();
}

// Python truthiness of a message field (absent, null, "", [], {} are false).
template <typename J>
bool truthy(const J& msg, const char* key) {
  if (!msg.is_object() || !msg.contains(key)) return false;
  const J& v = msg.at(key);
  if (v.is_null()) return false;
  if (v.is_string()) return !v.template get_ref<const std::string&>().empty();
  if (v.is_array() || v.is_object()) return !v.empty();
  if (v.is_boolean()) return v.template get<bool>();
  return true;
}

// str(value) as Python's str.format writes a field: strings as they are, None as "None".
template <typename J>
std::string str_of(const J& v) {
  if (v.is_string()) return v.template get<std::string>();
  if (v.is_null()) return "None";
  return to_json(v);
}

template <typename J>
std::string field_str(const J& msg, const char* key) {
  return msg.contains(key) ? str_of(msg.at(key)) : "None";
}

// `content or ""`
template <typename J>
std::string field_or_empty(const J& msg, const char* key) {
  return truthy(msg, key) ? str_of(msg.at(key)) : std::string();
}

class Writer {
 public:
  void markup(const std::string& s) { r_.text += s; }
  void data(const std::string& s) {
    if (s.empty()) return;
    const size_t b = r_.text.size();
    r_.text += s;
    if (!r_.data_spans.empty() && r_.data_spans.back().second == b) r_.data_spans.back().second = r_.text.size();
    else r_.data_spans.emplace_back(b, r_.text.size());
  }
  ChatTemplate::Rendered take() { return std::move(r_); }

 private:
  ChatTemplate::Rendered r_;
};

template <typename J>
std::string role_of(const J& msg) {
  return msg.is_object() && msg.contains("role") && msg.at("role").is_string() ? msg.at("role").template get<std::string>() : "";
}

template <typename J>
void write_tools_and_format(Writer& w, const J& msg) {
  if (truthy(msg, "tools")) {
    w.markup("\n\n" + tools_intro());
    bool first = true;
    for (const J& tool : msg.at("tools")) {
      if (!first) w.markup("\n");
      first = false;
      w.data(to_json(tool.contains("function") ? tool.at("function") : tool));
    }
    w.markup(kToolsOutro);
  }
  if (truthy(msg, "response_format")) {
    w.markup(std::string("\n\n") + kResponseFormatIntro);
    w.data(to_json(msg.at("response_format")));
  }
}

// One assistant tool call as DSML: the arguments (a JSON object text) parameter by parameter,
// strings as they are, anything else as JSON.
template <typename J>
Status write_tool_call(Writer& w, const J& call, size_t index) {
  const J& fn = call.contains("function") ? call.at("function") : call;
  if (!fn.contains("name") || !fn.at("name").is_string()) return error_f("assistant tool_calls[%zu]: no function name", index);
  OrderedJson args;
  const J& raw = fn.contains("arguments") ? fn.at("arguments") : J();
  if (raw.is_string()) {
    auto parsed = parse_ordered_json(raw.template get_ref<const std::string&>(), "arguments");
    if (!parsed.ok()) return error_f("assistant tool_calls[%zu]: arguments are not JSON", index);
    args = std::move(parsed).value();
  } else {
    args = OrderedJson::parse(raw.dump());
  }
  if (!args.is_object()) return error_f("assistant tool_calls[%zu]: arguments are not a JSON object", index);
  w.markup("<" + kDsml + "invoke name=\"");
  w.data(fn.at("name").template get<std::string>());
  w.markup("\">\n");
  bool first = true;
  for (auto it = args.begin(); it != args.end(); ++it) {
    if (!first) w.markup("\n");
    first = false;
    const bool is_str = it.value().is_string();
    w.markup("<" + kDsml + "parameter name=\"");
    w.data(it.key());
    w.markup(std::string("\" string=\"") + (is_str ? "true" : "false") + "\">");
    w.data(is_str ? it.value().template get<std::string>() : to_json(it.value()));
    w.markup("</" + kDsml + "parameter>");
  }
  w.markup("\n</" + kDsml + "invoke>");
  return {};
}

template <typename J>
Result<ChatTemplate::Rendered> encode(const J& messages, const Dsv32EncodeOptions& o) {
  if (!messages.is_array()) return Error("messages must be a list");
  const int64_t n = static_cast<int64_t>(messages.size());
  int64_t last_user = -1;
  for (int64_t i = n - 1; i >= 0; --i) {
    const std::string r = role_of(messages[i]);
    if (r == "user" || r == "developer") {
      last_user = i;
      break;
    }
  }
  Writer w;
  if (o.add_bos) w.markup(kBos);
  for (int64_t i = 0; i < n; ++i) {
    const J& msg = messages[i];
    const std::string role = role_of(msg);
    auto user_turn_end = [&] { w.markup(kAssistant + (i == last_user && o.thinking ? kThinkStart : kThinkEnd)); };
    if (role == "system") {
      w.data(field_or_empty(msg, "content"));
      write_tools_and_format(w, msg);
    } else if (role == "developer") {
      if (!truthy(msg, "content")) return error_f("messages[%lld]: a developer message needs content", static_cast<long long>(i));
      w.markup(kUser);
      write_tools_and_format(w, msg);
      w.markup("\n\n# The user's message is: ");
      w.data(field_str(msg, "content"));
      user_turn_end();
    } else if (role == "user") {
      w.markup(kUser);
      w.data(field_str(msg, "content"));
      user_turn_end();
    } else if (role == "tool") {
      // The i-th result after an assistant message answers its i-th tool call.
      int64_t a = i - 1;
      while (a >= 0 && role_of(messages[a]) == "tool") --a;
      if (a < 0 || role_of(messages[a]) != "assistant")
        return error_f("messages[%lld]: a tool result must follow an assistant message with tool_calls", static_cast<long long>(i));
      const int64_t order = i - a;
      const int64_t calls = truthy(messages[a], "tool_calls") ? static_cast<int64_t>(messages[a].at("tool_calls").size()) : 0;
      if (calls < order)
        return error_f("messages[%lld]: more tool results than messages[%lld] made tool calls", static_cast<long long>(i),
                       static_cast<long long>(a));
      if (order == 1) w.markup("\n\n<function_results>");
      w.markup("\n<result>");
      w.data(field_str(msg, "content"));
      w.markup("</result>");
      if (order == calls)
        w.markup("\n</function_results>\n\n" + (i >= last_user && o.thinking ? kThinkStart : kThinkEnd));
    } else if (role == "assistant") {
      // Reasoning shows only after the last user message (in thinking mode): earlier turns'
      // reasoning is dropped.
      const bool has_calls = truthy(msg, "tool_calls");
      if (o.thinking && i > last_user) {
        if (!truthy(msg, "reasoning_content") && !has_calls)
          return error_f("messages[%lld]: in thinking mode an assistant message after the last user message needs "
                         "reasoning_content or tool_calls", static_cast<long long>(i));
        w.data(field_or_empty(msg, "reasoning_content"));
        w.markup(kThinkEnd);
      }
      w.data(field_or_empty(msg, "content"));
      if (has_calls) {
        w.markup("\n\n<" + kDsml + "function_calls>\n");
        size_t k = 0;
        for (const J& call : msg.at("tool_calls")) {
          if (k > 0) w.markup("\n");
          if (Status s = write_tool_call(w, call, k); !s.ok()) return s.error().context(str_f("messages[%lld]", static_cast<long long>(i)));
          ++k;
        }
        w.markup("\n</" + kDsml + "function_calls>");
      }
      w.markup(kEos);
    } else {
      return error_f("messages[%lld]: unknown role '%s'", static_cast<long long>(i), role.c_str());
    }
  }
  return w.take();
}

}  // namespace

Result<ChatTemplate::Rendered> encode_dsv32(const Json& messages, const Dsv32EncodeOptions& options) {
  return encode(messages, options);
}
Result<ChatTemplate::Rendered> encode_dsv32(const OrderedJson& messages, const Dsv32EncodeOptions& options) {
  return encode(messages, options);
}

Json dsv32_attach_tools(const Json& messages, const Json& tools) {
  Json out = messages;
  if (!tools.is_array() || tools.empty() || !out.is_array()) return out;
  if (!out.empty() && out[0].is_object() && out[0].value("role", "") == "system") {
    out[0]["tools"] = tools;
  } else {
    out.insert(out.begin(), Json{{"role", "system"}, {"content", ""}, {"tools", tools}});
  }
  return out;
}

}  // namespace dsv3
