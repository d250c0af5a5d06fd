#pragma once
// Text post-processing of a generated stream, as pure functions of text pieces:
//   StopMatcher: ends generation at the first stop string, never letting a stop string or
//     a prefix of one leak into the output (text that could still become a stop string is
//     held back until it cannot).
//   ReasoningSplitter: separates a reasoning model's <think>...</think> block
//     (reasoning_content) from the answer (content).

#include <string>
#include <vector>

namespace dsv3::server {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  // Text that is safe to emit after appending `piece`. After a match, returns the text
  // before the stop string and stopped() turns true; later pieces are ignored.
  std::string push(const std::string& piece);
  // End of stream: whatever was held back.
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

struct SplitText {
  std::string reasoning;
  std::string content;
};

class ReasoningSplitter {
 public:
  // in_reasoning: the prompt already opened a think block (the template ended with <think>):
  // the output is reasoning up to </think>, whether or not it repeats the <think> (models
  // trained on R1's older template do). Otherwise a think block is recognised only at the
  // very start of the output.
  explicit ReasoningSplitter(bool in_reasoning) : opened_by_prompt_(in_reasoning) {}
  SplitText push(const std::string& piece);
  SplitText flush();

 private:
  enum class State { Start, Reasoning, AfterThink, Content };
  SplitText route(std::string text, bool final);
  bool opened_by_prompt_;
  State state_ = State::Start;
  std::string held_;
};

// Length of the longest suffix of `text` that is a proper prefix of `needle`.
size_t partial_suffix_match(const std::string& text, const std::string& needle);

}  // namespace dsv3::server
