#include "tokenizer/jinja/text.h"

#include <cstdint>

#include "base/result.h"
#include "tokenizer/jinja/error.h"
#include "tokenizer/jinja/value.h"

namespace dsv3::jinja {

namespace {
thread_local RenderBudget* current_budget = nullptr;

std::string mib(size_t bytes) { return str_f("%.1f MiB", static_cast<double>(bytes) / (1 << 20)); }
}  // namespace

DataSpans slice_spans(const DataSpans& spans, size_t begin, size_t end) {
  DataSpans out;
  for (const auto& [b, e] : spans) {
    if (e <= begin) continue;
    if (b >= end) break;
    out.emplace_back(std::max(b, begin) - begin, std::min(e, end) - begin);
  }
  return out;
}

void TextBuilder::grow(size_t n) {
  if (max_bytes_) {
    if (text_.size() + n > max_bytes_)
      throw OutputLimitError(str_f("%s exceeds the size limit (%s)", what_ ? what_ : "a template value", mib(max_bytes_).c_str()));
  } else if (text_.size() + n > max_value_bytes()) {
    fail("a template value would be too large (over " + mib(max_value_bytes()) + ")");
  }
}

void TextBuilder::add_span(size_t begin, size_t end) {
  if (begin == end) return;
  if (!spans_.empty() && spans_.back().second == begin) spans_.back().second = end;
  else spans_.emplace_back(begin, end);
}

void TextBuilder::append_template(std::string_view text) {
  grow(text.size());
  text_.append(text);
}

void TextBuilder::append_data(std::string_view text) {
  grow(text.size());
  const size_t at = text_.size();
  text_.append(text);
  add_span(at, text_.size());
}

void TextBuilder::append(const std::string& text, const DataSpans& spans) {
  grow(text.size());
  const size_t at = text_.size();
  text_.append(text);
  for (const auto& [b, e] : spans) add_span(at + b, at + e);
}

void TextBuilder::append(const Value& v) {
  if (v.is_string()) {
    if (const DataSpans* spans = v.data_spans()) append(v.as_string(), *spans);
    else append_template(v.as_string());
    return;
  }
  const Value t = text_of(v);
  append(t);
}

void TextBuilder::append_piece(const Value& s, size_t begin, size_t end) {
  grow(end - begin);
  const size_t at = text_.size();
  text_.append(s.as_string(), begin, end - begin);
  if (const DataSpans* spans = s.data_spans())
    for (const auto& [b, e] : slice_spans(*spans, begin, end)) add_span(at + b, at + e);
}

Value TextBuilder::take() {
  Value v = Value::string_with_data(std::move(text_), std::move(spans_));
  text_.clear();
  spans_.clear();
  return v;
}

bool has_data(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kString: return v.data_spans() != nullptr;
    case Value::Kind::kList:
      for (const Value& item : v.as_list())
        if (has_data(item)) return true;
      return false;
    case Value::Kind::kDict:
    case Value::Kind::kNamespace:
      if (v.as_dict().data_keys) return true;
      for (const auto& kv : v.as_dict().items)
        if (has_data(kv.second)) return true;
      return false;
    default: return false;
  }
}

Value text_of(const Value& v) {
  if (v.is_string()) return v;
  Value s(v.str());
  return has_data(v) ? s.as_data() : s;
}

Value mark_data_from(Value result, std::initializer_list<const Value*> inputs) {
  if (!result.is_string()) return result;
  for (const Value* in : inputs)
    if (in && has_data(*in)) return result.as_data();
  return result;
}

void charge_built(size_t bytes) {
  RenderBudget* b = current_budget;
  if (!b) return;
  if (bytes > b->max_value_bytes) fail("a template value would be too large (over " + mib(b->max_value_bytes) + ")");
  b->built += bytes;
  if (b->built > b->max_built_bytes)
    fail("the template built more than " + mib(b->max_built_bytes) +
         " of strings and lists in one render (text copied in a loop?)");
}

size_t max_value_bytes() { return current_budget ? current_budget->max_value_bytes : SIZE_MAX; }

ScopedRenderBudget::ScopedRenderBudget(RenderBudget* budget) : previous_(current_budget) { current_budget = budget; }
ScopedRenderBudget::~ScopedRenderBudget() { current_budget = previous_; }

}  // namespace dsv3::jinja
