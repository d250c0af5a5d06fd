#include "tokenizer/tokenizer.h"

#include "tokenizer/chat_template.h"
#include "tokenizer/dsv32_encoding.h"
#include "tokenizer/unicode.h"

namespace dsv3 {

Tokenizer::~Tokenizer() = default;

namespace {

// Runs BPE on each pre-tokenizer piece as it is produced.
class BpeSink final : public PieceSink {
 public:
  BpeSink(std::string_view text, const Bpe& bpe, const TokenIndex* whole_words,
          std::vector<int32_t>& out)
      : text_(text), bpe_(bpe), whole_words_(whole_words), out_(out) {}
  void piece(size_t begin, size_t end) override {
    std::string_view word = text_.substr(begin, end - begin);
    if (whole_words_) {  // ignore_merges: a piece that is a vocab token is taken whole
      std::string spelled;
      for (unsigned char c : word) unicode::append_utf8(spelled, unicode::byte_to_char(c));
      if (auto id = whole_words_->find(spelled)) {
        out_.push_back(*id);
        return;
      }
    }
    bpe_.encode_word(word, out_);
  }

 private:
  std::string_view text_;
  const Bpe& bpe_;
  const TokenIndex* whole_words_;
  std::vector<int32_t>& out_;
};

}  // namespace

void Tokenizer::encode_text(std::string_view text, std::vector<int32_t>& out) const {
  BpeSink sink(text, *bpe_, ignore_merges_ ? &vocab_ : nullptr, out);
  pre_tokenizer_.split(text, sink);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  bool want_bos = add_bos && add_bos_token_ && bos_id_.has_value();
  if (want_bos) out.push_back(*bos_id_);
  for (const Segment& s : added_vocab_.split(text)) {
    if (s.added_id >= 0) out.push_back(s.added_id);
    else encode_text(text.substr(s.begin, s.end - s.begin), out);
  }
  // A text (or template) that already starts with BOS keeps that one only.
  if (want_bos && out.size() >= 2 && out[1] == *bos_id_) out.erase(out.begin());
  return out;
}

std::vector<int32_t> Tokenizer::encode_ordinary(std::string_view text) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  encode_text(text, out);
  return out;
}

std::vector<int32_t> Tokenizer::encode_with_plain_text(std::string_view text,
                                                       std::span<const std::pair<size_t, size_t>> plain,
                                                       bool add_bos) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  const bool want_bos = add_bos && add_bos_token_ && bos_id_.has_value();
  if (want_bos) out.push_back(*bos_id_);
  // Added tokens are looked for in the runs between plain ranges only; the text between two
  // added tokens, plain or not, is encoded as one.
  std::vector<Segment> markup;
  size_t pos = 0;
  for (size_t k = 0; pos < text.size(); ++k) {
    const size_t run_end = k < plain.size() ? std::min(plain[k].first, text.size()) : text.size();
    if (pos < run_end) added_vocab_.split(text, pos, run_end, markup);
    if (k >= plain.size()) break;
    pos = std::max(pos, plain[k].second);
  }
  size_t stretch = 0;  // start of the text not encoded yet
  for (const Segment& s : markup) {
    if (s.added_id < 0) continue;
    if (stretch < s.begin) encode_text(text.substr(stretch, s.begin - stretch), out);
    out.push_back(s.added_id);
    stretch = s.end;
  }
  if (stretch < text.size()) encode_text(text.substr(stretch), out);
  if (want_bos && out.size() >= 2 && out[1] == *bos_id_) out.erase(out.begin());
  return out;
}

std::vector<std::pair<size_t, size_t>> Tokenizer::added_token_spans(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> spans;
  for (const Segment& s : added_vocab_.split(text))
    if (s.added_id >= 0) spans.emplace_back(s.begin, s.end);
  return spans;
}

bool Tokenizer::has_id(int32_t id) const {
  return id >= 0 && id < vocab_size() && tokens_[static_cast<size_t>(id)].present;
}

bool Tokenizer::is_special(int32_t id) const { return has_id(id) && tokens_[static_cast<size_t>(id)].special; }

std::string Tokenizer::token_bytes(int32_t id) const {
  return has_id(id) ? tokens_[static_cast<size_t>(id)].bytes : std::string();
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view content) const {
  for (const auto& t : added_)
    if (t.content == content) return t.id;
  return vocab_.find(content);
}

Result<std::string> Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::string bytes;
  for (size_t i = 0; i < ids.size(); ++i) {
    int32_t id = ids[i];
    if (id < 0 || id >= vocab_size())
      return error_f("token id %d at position %zu is out of range [0, %d)", id, i, vocab_size());
    const TokenInfo& t = tokens_[static_cast<size_t>(id)];
    if (!t.present) return error_f("token id %d at position %zu has no token", id, i);
    if (skip_special_tokens && t.special) continue;
    bytes += t.bytes;
  }
  return unicode::to_valid_utf8(bytes);
}

namespace {

template <typename J>
Result<std::string> apply_template(const ChatTemplate* t, const J& messages, bool add_generation_prompt, const J& extra,
                                   const std::string& bos, const std::string& eos) {
  if (!t) return Error("the tokenizer has no chat_template (tokenizer_config.json)");
  if (!extra.is_null() && !extra.is_object()) return Error("chat template: extra variables must be a JSON object");
  J vars = extra.is_object() ? extra : J::object();
  if (!vars.contains("bos_token")) vars["bos_token"] = bos;
  if (!vars.contains("eos_token")) vars["eos_token"] = eos;
  return t->render(messages, add_generation_prompt, vars);
}

}  // namespace

// The V3.2 encoder for a chat request: tools (from `vars`) on the system message, thinking
// mode when vars["thinking"] is true.
template <typename J>
Result<ChatTemplate::Rendered> encode_v32(const J& messages, const J& vars) {
  Dsv32EncodeOptions o;
  o.thinking = vars.is_object() && vars.contains("thinking") && vars.at("thinking").is_boolean() &&
               vars.at("thinking").template get<bool>();
  if (vars.is_object() && vars.contains("tools") && vars.at("tools").is_array() && !vars.at("tools").empty()) {
    J with_tools = messages;
    if (!with_tools.empty() && with_tools[0].is_object() && with_tools[0].value("role", std::string()) == "system") {
      with_tools[0]["tools"] = vars.at("tools");
    } else {
      J system = J::object();
      system["role"] = "system";
      system["content"] = "";
      system["tools"] = vars.at("tools");
      with_tools.insert(with_tools.begin(), system);
    }
    return encode_dsv32(with_tools, o);
  }
  return encode_dsv32(messages, o);
}

Result<std::string> Tokenizer::apply_chat_template(const Json& messages, bool add_generation_prompt,
                                                   const Json& extra) const {
  if (uses_dsv32_encoding()) {
    DSV3_ASSIGN(auto r, encode_v32(messages, extra));
    return std::move(r.text);
  }
  return apply_template(chat_template_.get(), messages, add_generation_prompt, extra, bos_token_, eos_token_);
}

Result<std::string> Tokenizer::apply_chat_template(const OrderedJson& messages, bool add_generation_prompt,
                                                   const OrderedJson& extra) const {
  if (uses_dsv32_encoding()) {
    DSV3_ASSIGN(auto r, encode_v32(messages, extra));
    return std::move(r.text);
  }
  return apply_template(chat_template_.get(), messages, add_generation_prompt, extra, bos_token_, eos_token_);
}

Result<ChatTemplate::Rendered> Tokenizer::apply_chat_template_marked(const Json& messages, bool add_generation_prompt,
                                                                     const Json& extra, const Json& data,
                                                                     const ChatTemplate::Limits& limits) const {
  if (uses_dsv32_encoding()) {
    Json vars = data.is_object() ? data : Json::object();
    if (extra.is_object()) vars.update(extra);
    DSV3_ASSIGN(auto r, encode_v32(messages, vars));
    if (r.text.size() > limits.max_output_bytes) return ChatTemplate::Rendered{{}, {}, /*over_output_limit=*/true};
    return r;
  }
  if (!chat_template_) return Error("the tokenizer has no chat_template (tokenizer_config.json)");
  if (!extra.is_null() && !extra.is_object()) return Error("chat template: extra variables must be a JSON object");
  Json vars = extra.is_object() ? extra : Json::object();
  if (!vars.contains("bos_token")) vars["bos_token"] = bos_token_;
  if (!vars.contains("eos_token")) vars["eos_token"] = eos_token_;
  return chat_template_->render_marked(messages, add_generation_prompt, vars, data, limits);
}

}  // namespace dsv3
