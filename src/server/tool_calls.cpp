#include "server/tool_calls.h"

#include <algorithm>

#include "base/json.h"
#include "server/text_stream.h"

namespace dsv3::server {
namespace {

const std::string kCallsBegin = "<｜tool▁calls▁begin｜>";
const std::string kCallsEnd = "<｜tool▁calls▁end｜>";
const std::string kCallBegin = "<｜tool▁call▁begin｜>";
const std::string kCallEnd = "<｜tool▁call▁end｜>";
const std::string kSep = "<｜tool▁sep｜>";
const char* const kSpace = " \t\r\n";

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

}  // namespace

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

ToolCallDelta ToolCallParser::route(bool final) {
  ToolCallDelta out;
  for (;;) {
    if (!in_calls_) {
      // Content until a calls block (or, as V3.1 sometimes writes, a bare call) begins.
      const size_t block = held_.find(kCallsBegin), call = held_.find(kCallBegin);
      const size_t p = std::min(block, call);
      if (p != std::string::npos) {
        out.content += held_.substr(0, p);
        held_.erase(0, p == block ? p + kCallsBegin.size() : p);
        in_calls_ = true;
        continue;
      }
      const size_t keep =
          final ? 0 : std::max(partial_suffix_match(held_, kCallsBegin), partial_suffix_match(held_, kCallBegin));
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
        if (!final) return out;  // the call is still being written
        out.content += rest;     // unfinished at the end: text
        held_.clear();
        return out;
      }
      const std::string body = rest.substr(kCallBegin.size(), end - kCallBegin.size());
      ParsedToolCall call;
      if (parse_tool_call_body(body, &call))
        out.calls.push_back(std::move(call));
      else
        out.content += rest.substr(0, end + kCallEnd.size());  // malformed: text
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
