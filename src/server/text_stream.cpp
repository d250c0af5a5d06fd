#include "server/text_stream.h"

#include <algorithm>

namespace dsv3::server {

size_t partial_suffix_match(const std::string& text, const std::string& needle) {
  const size_t max_k = std::min(text.size(), needle.empty() ? 0 : needle.size() - 1);
  for (size_t k = max_k; k > 0; --k)
    if (text.compare(text.size() - k, k, needle, 0, k) == 0) return k;
  return 0;
}

std::string StopMatcher::push(const std::string& piece) {
  if (stopped_) return "";
  held_ += piece;
  size_t first = std::string::npos;
  for (const auto& s : stops_) {
    size_t p = held_.find(s);
    if (p != std::string::npos) first = std::min(first, p);
  }
  if (first != std::string::npos) {
    stopped_ = true;
    std::string out = held_.substr(0, first);
    held_.clear();
    return out;
  }
  size_t keep = 0;
  for (const auto& s : stops_) keep = std::max(keep, partial_suffix_match(held_, s));
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string StopMatcher::flush() {
  std::string out;
  if (!stopped_) out.swap(held_);
  held_.clear();
  return out;
}

namespace {
const std::string kOpen = "<think>";
const std::string kClose = "</think>";
}  // namespace

SplitText ReasoningSplitter::route(std::string text, bool final) {
  SplitText out;
  for (;;) {
    switch (state_) {
      case State::Start: {
        // Skip leading whitespace, then either "<think>" opens reasoning (or repeats the
        // prompt's) or this is the first text of the block the prompt opened, or content.
        size_t p = text.find_first_not_of(" \t\r\n");
        if (p == std::string::npos) {
          if (final) {
            if (opened_by_prompt_) out.reasoning += text;
            return out;
          }
          held_ = text;
          return out;
        }
        std::string rest = text.substr(p);
        if (rest.compare(0, kOpen.size(), kOpen) == 0) {
          state_ = State::Reasoning;
          text = rest.substr(kOpen.size());
          continue;
        }
        if (!final && kOpen.compare(0, rest.size(), rest) == 0) {  // could still become <think>
          held_ = text;
          return out;
        }
        state_ = opened_by_prompt_ ? State::Reasoning : State::Content;
        continue;
      }
      case State::Reasoning: {
        size_t p = text.find(kClose);
        if (p != std::string::npos) {
          out.reasoning += text.substr(0, p);
          text = text.substr(p + kClose.size());
          state_ = State::AfterThink;
          continue;
        }
        size_t keep = final ? 0 : partial_suffix_match(text, kClose);
        out.reasoning += text.substr(0, text.size() - keep);
        held_ = text.substr(text.size() - keep);
        return out;
      }
      case State::AfterThink: {
        // The answer starts after the newlines that follow </think>.
        size_t p = text.find_first_not_of("\r\n");
        if (p == std::string::npos) return out;
        text = text.substr(p);
        state_ = State::Content;
        continue;
      }
      case State::Content:
        out.content += text;
        return out;
    }
  }
}

SplitText ReasoningSplitter::push(const std::string& piece) {
  std::string text = held_ + piece;
  held_.clear();
  return route(std::move(text), false);
}

SplitText ReasoningSplitter::flush() {
  std::string text;
  text.swap(held_);
  return route(std::move(text), true);
}

}  // namespace dsv3::server
