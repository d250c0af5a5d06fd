#include "server/openai_request.h"

#include <cmath>
#include <limits>

namespace dsv3::server {
namespace {

const char* type_of(const Json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

// Integer value of a JSON number that is exactly integral and within [lo, hi].
std::optional<ApiError> get_int(const Json& body, const char* key, int64_t lo, int64_t hi, int64_t* out) {
  const Json& v = body.at(key);
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(hi)) return invalid_request(str_f("'%s' must be at most %lld", key, static_cast<long long>(hi)), key);
    *out = static_cast<int64_t>(u);
  } else if (v.is_number_integer()) {
    *out = v.get<int64_t>();
  } else if (v.is_number_float()) {
    double d = v.get<double>();
    if (!std::isfinite(d) || d != std::floor(d)) return invalid_request(std::string("'") + key + "' must be an integer", key);
    // Past 2^53 a double no longer holds every integer: the value written may not be this one
    // (an integer literal outside int64 arrives here as a double too).
    if (std::fabs(d) >= 0x1p53)
      return invalid_request(str_f("'%s' is out of range (written as a float, or beyond 64 bits)", key), key);
    if (d < static_cast<double>(lo) || d > static_cast<double>(hi))
      return invalid_request(str_f("'%s' must be between %lld and %lld", key, static_cast<long long>(lo), static_cast<long long>(hi)), key);
    *out = static_cast<int64_t>(d);
  } else {
    return invalid_request(std::string("'") + key + "' must be an integer, got " + type_of(v), key);
  }
  if (*out < lo || *out > hi)
    return invalid_request(str_f("'%s' must be between %lld and %lld", key, static_cast<long long>(lo), static_cast<long long>(hi)), key);
  return std::nullopt;
}

std::optional<ApiError> get_float(const Json& body, const char* key, double lo, double hi, float* out) {
  const Json& v = body.at(key);
  if (!v.is_number()) return invalid_request(std::string("'") + key + "' must be a number, got " + type_of(v), key);
  double d = v.get<double>();
  if (!std::isfinite(d) || d < lo || d > hi) return invalid_request(str_f("'%s' must be between %g and %g", key, lo, hi), key);
  *out = static_cast<float>(d);
  return std::nullopt;
}

std::optional<ApiError> get_bool(const Json& body, const char* key, bool* out) {
  const Json& v = body.at(key);
  if (!v.is_boolean()) return invalid_request(std::string("'") + key + "' must be true or false, got " + type_of(v), key);
  *out = v.get<bool>();
  return std::nullopt;
}

bool present(const Json& body, const char* key) { return body.contains(key) && !body.at(key).is_null(); }

#define TRY_API(expr)               \
  do {                              \
    if (auto e_ = (expr)) return e_; \
  } while (0)

std::optional<ApiError> parse_model(const Json& body, const ServedModel& model, std::string* out) {
  if (!present(body, "model")) {
    *out = model.id;
    return std::nullopt;
  }
  const Json& m = body.at("model");
  if (!m.is_string()) return invalid_request("'model' must be a string", "model");
  if (m.get<std::string>() != model.id) {
    ApiError e = invalid_request("The model '" + bounded_text(m.get<std::string>(), 80) + "' does not exist (this server serves '" +
                                     bounded_text(model.id, 80) + "')",
                                 "model", "model_not_found");
    e.status = 404;
    return e;
  }
  *out = model.id;
  return std::nullopt;
}

std::optional<ApiError> parse_generation(const Json& body, const ServedModel& model, bool chat, GenerationRequest* g) {
  // max_tokens / max_completion_tokens (the newer name wins when both are given)
  // 0 only with echo (completions): the prompt scored or echoed, nothing generated.
  const bool echo = !chat && present(body, "echo") && body.at("echo").is_boolean() && body.at("echo").get<bool>();
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    if (!present(body, key)) continue;
    int64_t v = 0;
    TRY_API(get_int(body, key, echo ? 0 : 1, std::numeric_limits<int64_t>::max(), &v));
    g->max_tokens = v;
  }
  if (present(body, "temperature")) TRY_API(get_float(body, "temperature", 0.0, 2.0, &g->temperature));
  if (present(body, "top_p")) TRY_API(get_float(body, "top_p", 0.0, 1.0, &g->top_p));
  if (present(body, "top_k")) {
    int64_t k = 0;
    TRY_API(get_int(body, "top_k", -1, 1 << 30, &k));
    g->top_k = k < 0 ? 0 : static_cast<int>(k);
  }
  if (present(body, "seed")) {
    int64_t s = 0;
    TRY_API(get_int(body, "seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), &s));
    g->seed = static_cast<uint64_t>(s);
  }
  if (present(body, "n")) {
    int64_t n = 0;
    TRY_API(get_int(body, "n", 1, kMaxN, &n));
    g->n = static_cast<int>(n);
  }
  if (present(body, "stream")) TRY_API(get_bool(body, "stream", &g->stream));
  if (present(body, "stream_options") && g->stream) {
    const Json& so = body.at("stream_options");
    if (!so.is_object()) return invalid_request("'stream_options' must be an object", "stream_options");
    if (present(so, "include_usage")) {
      if (!so.at("include_usage").is_boolean())
        return invalid_request("'stream_options.include_usage' must be true or false", "stream_options");
      g->include_usage = so.at("include_usage").get<bool>();
    }
  }
  if (present(body, "stop")) {
    const Json& s = body.at("stop");
    std::vector<Json> items;
    if (s.is_string()) items.push_back(s);
    else if (s.is_array()) items.assign(s.begin(), s.end());
    else return invalid_request("'stop' must be a string or an array of strings", "stop");
    if (items.size() > static_cast<size_t>(kMaxStopStrings))
      return invalid_request(str_f("'stop' may hold at most %d strings", kMaxStopStrings), "stop");
    for (const Json& it : items) {
      if (!it.is_string()) return invalid_request("'stop' entries must be strings", "stop");
      std::string v = it.get<std::string>();
      if (v.empty()) return invalid_request("'stop' strings must not be empty", "stop");
      if (v.size() > kMaxStopBytes) return invalid_request(str_f("'stop' strings are limited to %zu bytes", kMaxStopBytes), "stop");
      g->stop.push_back(std::move(v));
    }
  }
  // logprobs: a boolean for chat; an integer (number of alternatives) for completions.
  if (present(body, "logprobs")) {
    if (chat) {
      TRY_API(get_bool(body, "logprobs", &g->logprobs));
    } else {
      int64_t k = 0;
      TRY_API(get_int(body, "logprobs", 0, 5, &k));
      g->logprobs = true;
      g->top_logprobs = static_cast<int>(k);
    }
  }
  if (chat && present(body, "top_logprobs")) {
    int64_t k = 0;
    TRY_API(get_int(body, "top_logprobs", 0, kMaxTopLogprobs, &k));
    if (!g->logprobs && k > 0) return invalid_request("'top_logprobs' requires 'logprobs' to be true", "top_logprobs");
    g->top_logprobs = static_cast<int>(k);
  }
  if (present(body, "logit_bias")) {
    const Json& lb = body.at("logit_bias");
    if (!lb.is_object()) return invalid_request("'logit_bias' must be an object of token id -> bias", "logit_bias");
    if (lb.size() > static_cast<size_t>(kMaxLogitBias))
      return invalid_request(str_f("'logit_bias' may hold at most %d entries", kMaxLogitBias), "logit_bias");
    for (auto it = lb.begin(); it != lb.end(); ++it) {
      const std::string& key = it.key();
      char* end = nullptr;
      errno = 0;
      long long id = key.empty() ? -1 : std::strtoll(key.c_str(), &end, 10);
      if (key.empty() || key.find_first_not_of("0123456789") != std::string::npos || *end != '\0' || errno == ERANGE ||
          id < 0 || id >= model.vocab_size)
        return invalid_request("'logit_bias' key '" + bounded_text(key, 30) + "' is not a token id in the vocabulary", "logit_bias");
      if (!it->is_number()) return invalid_request("'logit_bias' values must be numbers", "logit_bias");
      double b = it->get<double>();
      if (!std::isfinite(b) || b < -100 || b > 100) return invalid_request("'logit_bias' values must be between -100 and 100", "logit_bias");
      g->logit_bias.emplace_back(static_cast<int32_t>(id), static_cast<float>(b));
    }
  }
  if (present(body, "presence_penalty")) TRY_API(get_float(body, "presence_penalty", -2.0, 2.0, &g->presence_penalty));
  if (present(body, "frequency_penalty")) TRY_API(get_float(body, "frequency_penalty", -2.0, 2.0, &g->frequency_penalty));
  // Chat's response_format (JSON output) is parse_response_format's; completions take text only.
  if (present(body, "response_format") && !chat) {
    const Json& rf = body.at("response_format");
    if (!rf.is_object() || !rf.contains("type") || !rf.at("type").is_string())
      return invalid_request("'response_format' must be an object with a 'type'", "response_format");
    if (rf.at("type").get<std::string>() != "text") {
      ApiError e = invalid_request("response_format '" + bounded_text(rf.at("type").get<std::string>(), 30) +
                                       "' is not supported by this server (only 'text')",
                                   "response_format", "not_supported");
      return e;
    }
  }
  if (present(body, "ignore_eos")) TRY_API(get_bool(body, "ignore_eos", &g->ignore_eos));
  if (present(body, "best_of")) {
    int64_t b = 0;
    TRY_API(get_int(body, "best_of", 1, 1, &b));
  }
  if (present(body, "echo")) {
    TRY_API(get_bool(body, "echo", &g->echo));
    if (g->echo && chat) return invalid_request("'echo' is supported on /v1/completions only", "echo", "not_supported");
  }
  if (present(body, "suffix")) return invalid_request("'suffix' is not supported by this server", "suffix", "not_supported");
  return std::nullopt;
}

// Text of a message's content: a string, or an array of text parts (concatenated).
std::optional<ApiError> content_text(const Json& content, std::string* out) {
  if (content.is_string()) {
    *out = content.get<std::string>();
    return std::nullopt;
  }
  if (!content.is_array()) return invalid_request("message 'content' must be a string or an array of parts", "messages");
  for (const Json& part : content) {
    if (!part.is_object() || !part.contains("type") || !part.at("type").is_string())
      return invalid_request("content parts must be objects with a 'type'", "messages");
    std::string type = part.at("type").get<std::string>();
    if (type != "text")
      return invalid_request("content part type '" + bounded_text(type, 30) + "' is not supported (text only)", "messages",
                             "not_supported");
    if (!part.contains("text") || !part.at("text").is_string())
      return invalid_request("text parts need a string 'text'", "messages");
    *out += part.at("text").get<std::string>();
  }
  return std::nullopt;
}

std::optional<ApiError> parse_tools(const Json& tools, Json* out) {
  if (!tools.is_array()) return invalid_request("'tools' must be an array", "tools");
  for (const Json& t : tools) {
    if (!t.is_object() || !t.contains("type") || t.at("type") != "function" || !t.contains("function") ||
        !t.at("function").is_object())
      return invalid_request("each tool must be {\"type\": \"function\", \"function\": {...}}", "tools");
    const Json& f = t.at("function");
    if (!f.contains("name") || !f.at("name").is_string() || f.at("name").get<std::string>().empty() ||
        f.at("name").get<std::string>().size() > 64)
      return invalid_request("each tool function needs a 'name' (1 to 64 characters)", "tools");
    if (f.contains("parameters") && !f.at("parameters").is_object())
      return invalid_request("tool function 'parameters' must be an object (a JSON Schema)", "tools");
  }
  *out = tools;
  return std::nullopt;
}

// tool_choice as OpenAI defines it: "none", "auto", "required" (tools needed), or
// {"type": "function", "function": {"name": N}} naming one of the tools.
std::optional<ApiError> check_tool_choice(const Json& choice, const Json& tools) {
  const bool have_tools = tools.is_array() && !tools.empty();
  if (choice.is_string()) {
    const std::string c = choice.get<std::string>();
    if (c != "none" && c != "auto" && c != "required")
      return invalid_request("'tool_choice' must be \"none\", \"auto\", \"required\" or a function", "tool_choice");
    if (c == "required" && !have_tools) return invalid_request("'tool_choice' \"required\" needs 'tools'", "tool_choice");
    return std::nullopt;
  }
  if (!choice.is_object() || choice.value("type", Json()) != "function" || !choice.contains("function") ||
      !choice.at("function").is_object() || !choice.at("function").contains("name") ||
      !choice.at("function").at("name").is_string())
    return invalid_request("'tool_choice' must be a string or {\"type\": \"function\", \"function\": {\"name\": ...}}",
                           "tool_choice");
  const Json& name = choice.at("function").at("name");
  if (have_tools)
    for (const Json& t : tools)
      if (t.at("function").at("name") == name) return std::nullopt;
  return invalid_request("'tool_choice' names a function that is not in 'tools'", "tool_choice");
}

}  // namespace

// chat_template_kwargs: an object of template variables; the ones the server sets itself
// (the conversation, the tools, the generation prompt, the special tokens) cannot be replaced.
std::optional<ApiError> parse_template_kwargs(const Json& v, Json* out) {
  if (!v.is_object()) return invalid_request("'chat_template_kwargs' must be an object", "chat_template_kwargs");
  for (const char* reserved : {"messages", "tools", "add_generation_prompt", "bos_token", "eos_token"})
    if (v.contains(reserved))
      return invalid_request(str_f("chat_template_kwargs.%s is set by the server and cannot be given", reserved),
                             "chat_template_kwargs");
  *out = v;
  return std::nullopt;
}

namespace {

// response_format as OpenAI defines it: {"type": "text"}, {"type": "json_object"} (any JSON
// object), or {"type": "json_schema", "json_schema": {"name", "schema", "strict", ...}}. A schema
// the matcher cannot enforce is refused, the message naming the keyword's path.
std::optional<ApiError> parse_response_format(const Json& rf, std::shared_ptr<const grammar::Schema>* out) {
  const char* param = "response_format";
  if (!rf.is_object() || !rf.contains("type") || !rf.at("type").is_string())
    return invalid_request("'response_format' must be an object with a 'type'", param);
  const std::string type = rf.at("type").get<std::string>();
  if (type == "text") return std::nullopt;
  if (type == "json_object") {
    *out = std::make_shared<grammar::Schema>(grammar::any_json_object_schema());
    return std::nullopt;
  }
  if (type != "json_schema")
    return invalid_request("'response_format.type' must be \"text\", \"json_object\" or \"json_schema\"", param);
  if (!present(rf, "json_schema") || !rf.at("json_schema").is_object())
    return invalid_request("'response_format.json_schema' must be an object", param);
  const Json& js = rf.at("json_schema");
  if (!present(js, "name") || !js.at("name").is_string())
    return invalid_request("'response_format.json_schema.name' must be a string", param);
  if (present(js, "strict") && !js.at("strict").is_boolean())
    return invalid_request("'response_format.json_schema.strict' must be true or false", param);
  // Without a schema any JSON value passes (OpenAI requires one in strict mode only).
  if (!present(js, "schema")) {
    *out = std::make_shared<grammar::Schema>(grammar::any_json_schema());
    return std::nullopt;
  }
  auto schema = grammar::compile_json_schema(js.at("schema"), "response_format.json_schema.schema");
  if (!schema.ok()) return invalid_request(bounded_text(schema.error().message(), 300), param);
  *out = std::make_shared<grammar::Schema>(std::move(schema).value());
  return std::nullopt;
}

}  // namespace

std::optional<ApiError> parse_chat_request(const Json& body, const ServedModel& model, ChatRequest* out) {
  if (!body.is_object()) return invalid_request("the request body must be a JSON object", std::nullopt);
  TRY_API(parse_model(body, model, &out->model));
  if (!body.contains("messages")) return invalid_request("'messages' is required", "messages");
  const Json& msgs = body.at("messages");
  if (!msgs.is_array() || msgs.empty()) return invalid_request("'messages' must be a non-empty array", "messages");
  out->messages = Json::array();
  std::string prev_role;
  for (size_t i = 0; i < msgs.size(); ++i) {
    const Json& m = msgs[i];
    if (!m.is_object()) return invalid_request(str_f("messages[%zu] must be an object", i), "messages");
    if (!m.contains("role") || !m.at("role").is_string())
      return invalid_request(str_f("messages[%zu] needs a string 'role'", i), "messages");
    std::string role = m.at("role").get<std::string>();
    if (role == "developer") role = "system";
    if (role != "system" && role != "user" && role != "assistant" && role != "tool")
      return invalid_request(str_f("messages[%zu]: unknown role '%s'", i, bounded_text(role, 30).c_str()), "messages");
    Json msg = {{"role", role}};
    const bool has_tool_calls = m.contains("tool_calls") && !m.at("tool_calls").is_null();
    if (!m.contains("content") || m.at("content").is_null()) {
      if (!(role == "assistant" && has_tool_calls))
        return invalid_request(str_f("messages[%zu] needs 'content'", i), "messages");
      msg["content"] = nullptr;
    } else {
      std::string text;
      if (auto e = content_text(m.at("content"), &text)) {
        e->message = str_f("messages[%zu]: ", i) + e->message;
        return e;
      }
      msg["content"] = text;
    }
    if (has_tool_calls) {
      if (role != "assistant") return invalid_request(str_f("messages[%zu]: only assistant messages carry tool_calls", i), "messages");
      const Json& tc = m.at("tool_calls");
      if (!tc.is_array()) return invalid_request(str_f("messages[%zu]: 'tool_calls' must be an array", i), "messages");
      for (const Json& c : tc) {
        if (!c.is_object() || !c.contains("function") || !c.at("function").is_object() ||
            !c.at("function").contains("name") || !c.at("function").at("name").is_string())
          return invalid_request(str_f("messages[%zu]: each tool call needs function.name", i), "messages");
        if (c.at("function").contains("arguments") && !c.at("function").at("arguments").is_string())
          return invalid_request(str_f("messages[%zu]: tool call arguments must be a string", i), "messages");
      }
      msg["tool_calls"] = tc;
    }
    if (role == "tool") {
      if (!m.contains("tool_call_id") || !m.at("tool_call_id").is_string())
        return invalid_request(str_f("messages[%zu]: a tool message needs 'tool_call_id'", i), "messages");
      msg["tool_call_id"] = m.at("tool_call_id");
    }
    if (m.contains("name") && m.at("name").is_string()) msg["name"] = m.at("name");
    if (m.contains("reasoning_content") && m.at("reasoning_content").is_string()) msg["reasoning_content"] = m.at("reasoning_content");
    if (role == "assistant" && prev_role == "assistant")
      return invalid_request(str_f("messages[%zu]: two assistant messages in a row", i), "messages");
    prev_role = role;
    out->messages.push_back(std::move(msg));
  }
  out->continue_final_message = prev_role == "assistant" && !out->messages.back()["content"].is_null();
  if (present(body, "tools")) TRY_API(parse_tools(body.at("tools"), &out->tools));
  if (present(body, "chat_template_kwargs")) TRY_API(parse_template_kwargs(body.at("chat_template_kwargs"), &out->template_kwargs));
  if (present(body, "tool_choice")) {
    TRY_API(check_tool_choice(body.at("tool_choice"), out->tools));
    out->tool_choice = body.at("tool_choice");
  }
  if (present(body, "response_format")) TRY_API(parse_response_format(body.at("response_format"), &out->response_schema));
  return parse_generation(body, model, /*chat=*/true, &out->gen);
}

std::optional<ApiError> parse_completion_request(const Json& body, const ServedModel& model, CompletionRequest* out) {
  if (!body.is_object()) return invalid_request("the request body must be a JSON object", std::nullopt);
  TRY_API(parse_model(body, model, &out->model));
  if (!body.contains("prompt")) return invalid_request("'prompt' is required", "prompt");
  const Json& p = body.at("prompt");
  auto ids_of = [&](const Json& arr, std::vector<int32_t>* ids) -> std::optional<ApiError> {
    for (const Json& v : arr) {
      if (!v.is_number_integer() && !v.is_number_unsigned())
        return invalid_request("token-id prompts must hold integers", "prompt");
      if (v.is_number_unsigned() ? v.get<uint64_t>() >= static_cast<uint64_t>(model.vocab_size)
                                 : (v.get<int64_t>() < 0 || v.get<int64_t>() >= model.vocab_size))
        return invalid_request("token id " + bounded_text(v.dump(), 24) + " is out of vocabulary (must be >= 0 and < " +
                                   std::to_string(model.vocab_size) + ")",
                               "prompt");
      ids->push_back(static_cast<int32_t>(v.get<int64_t>()));
    }
    return std::nullopt;
  };
  if (p.is_string()) {
    out->prompts.push_back({p.get<std::string>(), {}});
  } else if (p.is_array() && !p.empty() && p[0].is_string()) {
    for (const Json& s : p) {
      if (!s.is_string()) return invalid_request("'prompt' arrays must hold only strings, or only token ids", "prompt");
      out->prompts.push_back({s.get<std::string>(), {}});
    }
  } else if (p.is_array() && !p.empty() && p[0].is_array()) {
    for (const Json& a : p) {
      if (!a.is_array()) return invalid_request("'prompt' arrays of token lists must hold only arrays", "prompt");
      CompletionPrompt cp;
      TRY_API(ids_of(a, &cp.ids));
      out->prompts.push_back(std::move(cp));
    }
  } else if (p.is_array()) {
    CompletionPrompt cp;
    TRY_API(ids_of(p, &cp.ids));
    out->prompts.push_back(std::move(cp));
  } else {
    return invalid_request("'prompt' must be a string, an array of strings or token ids", "prompt");
  }
  if (out->prompts.empty()) return invalid_request("'prompt' must not be empty", "prompt");
  if (out->prompts.size() > static_cast<size_t>(kMaxN))
    return invalid_request(str_f("at most %d prompts per request", kMaxN), "prompt");
  TRY_API(parse_generation(body, model, /*chat=*/false, &out->gen));
  if (out->prompts.size() * static_cast<size_t>(out->gen.n) > static_cast<size_t>(kMaxN))
    return invalid_request(str_f("prompts x n must be at most %d", kMaxN), "n");
  return std::nullopt;
}

}  // namespace dsv3::server
