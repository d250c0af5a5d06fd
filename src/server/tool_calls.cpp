#include "server/tool_calls.h"

#include <algorithm>

#include "base/json.h"
#include "server/text_stream.h"
#include "tokenizer/jinja/value.h"

namespace dsv3::server {
namespace {

const std::string kCallsBegin = "<｜tool▁calls▁begin｜>";
const std::string kCallsEnd = "<｜tool▁calls▁end｜>";
const std::string kCallBegin = "<｜tool▁call▁begin｜>";
const std::string kCallEnd = "<｜tool▁call▁end｜>";
const std::string kSep = "<｜tool▁sep｜>";
const char* const kSpace = " \t\r\n";
const std::string kDsmlBegin = "<｜DSML｜function_calls>";
const std::string kDsmlBeginLine = "\n\n" + kDsmlBegin;  // as the encoder writes it after content
const std::string kDsmlEnd = "</｜DSML｜function_calls>";

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(kSpace);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(kSpace) - b + 1);
}

bool is_name(const std::string& s) {
  return !s.empty() && s.find_first_of(std::string(kSpace) + "<>{}\"") == std::string::npos;
}

bool is_json_object(const std::string& s) {
  if (!Json::accept(s)) return false;
  return Json::parse(s).is_object();
}

// V3 / R1: "function" <sep> NAME "\n```json\n" ARGS "\n```"
bool parse_v3(const std::string& head, const std::string& tail, ParsedToolCall* out) {
  if (trim(head) != "function") return false;
  const size_t nl = tail.find('\n');
  if (nl == std::string::npos) return false;
  std::string rest = trim(tail.substr(nl + 1));
  const std::string open = "```json", close = "```";
  if (rest.compare(0, open.size(), open) != 0 || rest.size() < open.size() + close.size() ||
      rest.compare(rest.size() - close.size(), close.size(), close) != 0)
    return false;
  out->name = trim(tail.substr(0, nl));
  out->arguments = trim(rest.substr(open.size(), rest.size() - open.size() - close.size()));
  return is_name(out->name) && is_json_object(out->arguments);
}

// V3.1: NAME <sep> ARGS
bool parse_v31(const std::string& head, const std::string& tail, ParsedToolCall* out) {
  out->name = trim(head);
  out->arguments = trim(tail);
  return is_name(out->name) && is_json_object(out->arguments);
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

// `s` is a proper beginning of `marker` (more text may complete it).
bool may_become(const std::string& s, const std::string& marker) {
  return s.size() < marker.size() && marker.compare(0, s.size(), s) == 0;
}

// Python's json.dumps(s, ensure_ascii=False) of a string, as DeepSeek's encoder writes DSML
// arguments: the Jinja engine's tojson, which already matches json.dumps byte for byte.
std::string json_string(const std::string& s) { return jinja::Value(s).to_json(); }

bool take(const std::string& s, size_t& i, const std::string& token) {
  if (s.compare(i, token.size(), token) != 0) return false;
  i += token.size();
  return true;
}

}  // namespace

bool parse_dsml_block(const std::string& body, std::vector<ParsedToolCall>* out) {
  const std::string invoke = "<｜DSML｜invoke name=\"", invoke_end = "</｜DSML｜invoke>";
  const std::string param = "<｜DSML｜parameter name=\"", param_end = "</｜DSML｜parameter>";
  std::vector<ParsedToolCall> calls;
  size_t i = 0;
  // ("\n" invoke)* "\n"
  while (take(body, i, "\n")) {
    if (i == body.size()) break;
    if (!take(body, i, invoke)) return false;
    const size_t name_end = body.find("\">\n", i);
    if (name_end == std::string::npos) return false;
    ParsedToolCall call;
    call.name = body.substr(i, name_end - i);
    i = name_end + 3;
    if (!is_name(call.name)) return false;
    std::vector<std::string> keys;
    call.arguments = "{";
    // (parameter "\n")*
    while (take(body, i, param)) {
      const size_t key_end = body.find("\" string=\"", i);
      if (key_end == std::string::npos) return false;
      std::string key = body.substr(i, key_end - i);
      i = key_end + 10;
      bool is_string;
      if (take(body, i, "true\">")) is_string = true;
      else if (take(body, i, "false\">")) is_string = false;
      else return false;
      const size_t value_end = body.find(param_end, i);
      if (value_end == std::string::npos) return false;
      const std::string value = body.substr(i, value_end - i);
      i = value_end + param_end.size();
      if (!take(body, i, "\n")) return false;
      if (std::find(keys.begin(), keys.end(), key) != keys.end()) return false;
      if (!is_string && !Json::accept(value)) return false;
      call.arguments += (keys.empty() ? "" : ", ") + json_string(key) + ": " + (is_string ? json_string(value) : value);
      keys.push_back(std::move(key));
    }
    call.arguments += "}";
    if (!take(body, i, invoke_end) || !is_json_object(call.arguments)) return false;
    calls.push_back(std::move(call));
  }
  if (i != body.size() || calls.empty()) return false;
  *out = std::move(calls);
  return true;
}

const std::vector<std::string>& tool_call_markers() {
  static const std::vector<std::string> markers = {kCallsBegin, kCallsEnd, kCallBegin, kCallEnd, kSep};
  return markers;
}

bool parse_tool_call_body(const std::string& body, ParsedToolCall* out) {
  const size_t sep = body.find(kSep);
  if (sep == std::string::npos) return false;
  const std::string head = body.substr(0, sep), tail = body.substr(sep + kSep.size());
  ParsedToolCall call;
  if (!parse_v3(head, tail, &call) && !parse_v31(head, tail, &call)) return false;
  *out = std::move(call);
  return true;
}

void ToolCallParser::stream_open_call(const std::string& text, ToolCallDelta& out) {
  const std::string body = text.substr(kCallBegin.size());
  const size_t sep = body.find(kSep);
  if (sep == std::string::npos) return;
  const std::string head = body.substr(0, sep), tail = body.substr(sep + kSep.size());
  std::string name, args;
  if (trim(head) == "function") {  // V3 / R1: NAME "\n```json\n" ARGS "\n```"
    const size_t nl = tail.find('\n');
    if (nl == std::string::npos) return;
    name = trim(tail.substr(0, nl));
    const std::string after = tail.substr(nl + 1);
    const size_t f = after.find_first_not_of(kSpace);
    if (f == std::string::npos || after.compare(f, 7, "```json") != 0) return;
    args = after.substr(f + 7);
  } else {  // V3.1: NAME <sep> ARGS
    name = trim(head);
    args = tail;
  }
  if (!is_name(name)) return;
  // As the whole call's arguments are trimmed: no leading or trailing whitespace, and not what
  // may be the closing fence or marker.
  args.resize(args.size() - partial_suffix_match(args, kCallEnd));
  args = trim(args);
  if (args.size() >= 3 && args.compare(args.size() - 3, 3, "```") == 0) args.resize(args.size() - 3);
  args.resize(args.size() - partial_suffix_match(args, "```"));
  args = trim(args);
  if (!streaming_) {
    out.pieces.push_back({pieces_calls_, true, name, ""});
    streaming_ = true;
    streamed_ = 0;
  }
  if (args.size() > streamed_) {  // (what went out is a prefix: args only grow at the end)
    out.pieces.push_back({pieces_calls_, false, "", args.substr(streamed_)});
    streamed_ = args.size();
  }
}

void ToolCallParser::end_call(const ParsedToolCall* call, ToolCallDelta& out) {
  if (call) {
    if (!streaming_) out.pieces.push_back({pieces_calls_, true, call->name, call->arguments});
    else if (call->arguments.size() > streamed_) out.pieces.push_back({pieces_calls_, false, "", call->arguments.substr(streamed_)});
    out.calls.push_back(*call);
  }
  if (call || streaming_) ++pieces_calls_;
  streaming_ = false;
  streamed_ = 0;
}

ToolCallDelta ToolCallParser::route(bool final) {
  ToolCallDelta out;
  for (;;) {
    if (in_dsml_) {
      // A DSML block: its calls once it closes; text if it is malformed or never closes.
      const size_t end = held_.find(kDsmlEnd);
      if (end == std::string::npos) {
        if (!final) return out;
        out.content += kDsmlBeginLine + held_;
        held_.clear();
        in_dsml_ = false;
        return out;
      }
      std::vector<ParsedToolCall> calls;
      if (parse_dsml_block(held_.substr(0, end), &calls))
        for (auto& c : calls) end_call(&c, out);
      else
        out.content += kDsmlBeginLine + held_.substr(0, end + kDsmlEnd.size());
      held_.erase(0, end + kDsmlEnd.size());
      in_dsml_ = false;
      continue;
    }
    if (!in_calls_) {
      // A DSML block (V3.2) opens; the blank line the encoder writes before it is markup.
      if (const size_t d = held_.find(kDsmlBegin); d != std::string::npos &&
                                                   d < std::min(held_.find(kCallsBegin), held_.find(kCallBegin))) {
        const bool blank = d >= 2 && held_.compare(d - 2, 2, "\n\n") == 0;
        out.content += held_.substr(0, blank ? d - 2 : d);
        held_.erase(0, d + kDsmlBegin.size());
        in_dsml_ = true;
        continue;
      }
      // Content until a calls block (or, as V3.1 sometimes writes, a bare call) begins.
      const size_t block = held_.find(kCallsBegin), call = held_.find(kCallBegin);
      const size_t p = std::min(block, call);
      if (p != std::string::npos) {
        out.content += held_.substr(0, p);
        held_.erase(0, p == block ? p + kCallsBegin.size() : p);
        in_calls_ = true;
        continue;
      }
      const size_t keep = final ? 0
                                : std::max({partial_suffix_match(held_, kCallsBegin), partial_suffix_match(held_, kCallBegin),
                                            partial_suffix_match(held_, kDsmlBeginLine), partial_suffix_match(held_, kDsmlBegin)});
      out.content += held_.substr(0, held_.size() - keep);
      held_.erase(0, held_.size() - keep);
      return out;
    }
    const size_t first = held_.find_first_not_of(kSpace);
    if (first == std::string::npos) {  // only whitespace so far: between calls, or the end
      if (final) held_.clear();
      return out;
    }
    const std::string rest = held_.substr(first);
    if (starts_with(rest, kCallsEnd)) {
      held_ = rest.substr(kCallsEnd.size());
      in_calls_ = false;
      continue;
    }
    if (starts_with(rest, kCallBegin)) {
      const size_t end = rest.find(kCallEnd);
      if (end == std::string::npos) {
        if (!final) {  // the call is still being written
          stream_open_call(rest, out);
          return out;
        }
        out.content += rest;     // unfinished at the end: text
        end_call(nullptr, out);
        held_.clear();
        return out;
      }
      const std::string body = rest.substr(kCallBegin.size(), end - kCallBegin.size());
      ParsedToolCall call;
      if (parse_tool_call_body(body, &call)) {
        end_call(&call, out);
      } else {
        out.content += rest.substr(0, end + kCallEnd.size());  // malformed: text
        end_call(nullptr, out);
      }
      held_ = rest.substr(end + kCallEnd.size());
      continue;
    }
    if (!final && (may_become(rest, kCallsEnd) || may_become(rest, kCallBegin))) return out;
    // Anything else inside the block is not a call: back to content.
    held_ = rest;
    in_calls_ = false;
  }
}

ToolCallDelta ToolCallParser::push(const std::string& piece) {
  held_ += piece;
  return route(false);
}

ToolCallDelta ToolCallParser::flush() { return route(true); }

}  // namespace dsv3::server
