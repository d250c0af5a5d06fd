#pragma once
// Text that remembers which of its bytes came from the caller's data (a request's messages
// and tools) rather than from the template, so that the prompt built from it can encode those
// bytes as plain text: "<｜User｜>" typed in a message stays characters, wherever the template
// copies it (a system prompt concatenated in a loop, a tool call's name, an argument).
//
// Operations that copy bytes (concatenation, output, captured blocks, join, slices, strip,
// split, replace) keep the ranges exactly; the others mark their whole result as data when any
// input holds data (upper, format, tojson of a structure holding data): never a control token
// from data, at worst template text read as plain text in a template that mixes both in a way
// no known chat template does.
//
// The render budget bounds what a template builds: one value (max_value_bytes) and all values
// of a render together (max_built_bytes), counted where strings and lists are made.

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dsv3::jinja {

class Value;

// Byte ranges [begin, end) of a string that came from the caller's data: sorted, disjoint and
// not touching.
using DataSpans = std::vector<std::pair<size_t, size_t>>;

// The ranges of `spans` within [begin, end), shifted to start at 0.
DataSpans slice_spans(const DataSpans& spans, size_t begin, size_t end);

// Builds a string piece by piece, its data ranges with it.
class TextBuilder {
 public:
  // Optional: a limit on the size, checked as it grows (an OutputLimitError naming `what`);
  // without one, the running render's max_value_bytes.
  explicit TextBuilder(size_t max_bytes = 0, const char* what = nullptr) : max_bytes_(max_bytes), what_(what) {}

  void append_template(std::string_view text);          // the template's own text
  void append_data(std::string_view text);              // text from the caller's data
  void append(const Value& v);                          // str(v), its data ranges kept
  void append_piece(const Value& s, size_t begin, size_t end);  // bytes [begin, end) of string s
  void append(const std::string& text, const DataSpans& spans);

  size_t size() const { return text_.size(); }
  const std::string& text() const { return text_; }
  const DataSpans& spans() const { return spans_; }
  Value take();  // the string built, as a value
  // The text and ranges built, not as a value (the render's output).
  std::pair<std::string, DataSpans> release() { return {std::move(text_), std::move(spans_)}; }

 private:
  void grow(size_t n);
  void add_span(size_t begin, size_t end);

  std::string text_;
  DataSpans spans_;
  size_t max_bytes_;
  const char* what_;
};

// True when v is, or holds, a string with data ranges, or a mapping with data keys.
bool has_data(const Value& v);
// str(v) as a value: a string keeps its ranges; the text of a list or mapping that holds data
// is data as a whole.
Value text_of(const Value& v);
// `result` (a string) marked as data as a whole when any of `inputs` holds data.
Value mark_data_from(Value result, std::initializer_list<const Value*> inputs);

// What one render may build: set by the renderer for its thread while it runs.
struct RenderBudget {
  size_t max_value_bytes;
  size_t max_built_bytes;
  size_t built = 0;
};

// Counts a value of `bytes` being made (a string's bytes, a list's items times their size);
// throws a TemplateError past the limits. Nothing when no render runs on this thread.
void charge_built(size_t bytes);
// The largest value the running render allows (SIZE_MAX when none runs).
size_t max_value_bytes();

class ScopedRenderBudget {
 public:
  explicit ScopedRenderBudget(RenderBudget* budget);
  ~ScopedRenderBudget();
  ScopedRenderBudget(const ScopedRenderBudget&) = delete;
  ScopedRenderBudget& operator=(const ScopedRenderBudget&) = delete;

 private:
  RenderBudget* previous_;
};

}  // namespace dsv3::jinja
