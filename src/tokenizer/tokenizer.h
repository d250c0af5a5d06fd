#pragma once
// DeepSeek-V3's tokenizer, read from a model directory's tokenizer.json (byte-level BPE:
// added tokens, the Split pre-tokenizer, BPE by merge rank, the ByteLevel decoder) and
// tokenizer_config.json (bos/eos, add_bos_token, chat_template).
//
// Thread safety: after load() every member function is const and touches no mutable state,
// so one Tokenizer may serve any number of threads.
//
// Policies:
// - encode() takes any bytes: invalid UTF-8 bytes are characters of no Unicode class and go
//   through byte-level BPE like any other byte, so decode(encode(s)) == s for all s. Callers
//   that want to refuse invalid UTF-8 (the dsv3 tokenize command, the server) check first.
// - Added tokens (special or not) written in the text are matched as tokenizer.json declares
//   (HF behaviour): "<｜User｜>" in a text becomes id 128803. Code building prompts from user
//   content must decide itself whether to allow that (user text must not forge control tokens).
// - decode() refuses ids outside [0, vocab_size()) and ids no token has.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "base/result.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/token_index.h"
#include "tokenizer/tokenizer_file.h"

namespace dsv3 {

class ChatTemplate;

class Tokenizer {
 public:
  // Reads <dir>/tokenizer.json and <dir>/tokenizer_config.json. Errors name the file and the
  // entry (bad JSON, vocab, merges, pre-tokenizer or added tokens); a chat template that does
  // not compile fails here.
  static Result<std::unique_ptr<Tokenizer>> load(const std::string& dir);
  // The same from file contents; `config_text` may be empty (no config: no BOS, no template).
  static Result<std::unique_ptr<Tokenizer>> from_strings(std::string_view tokenizer_json, std::string_view config_text,
                                                         const std::string& where = "tokenizer");
  ~Tokenizer();

  // Text -> ids. With add_bos, BOS is prepended when tokenizer_config.json's add_bos_token is
  // true, unless the ids already start with BOS (a template that writes it): never twice.
  std::vector<int32_t> encode(std::string_view text, bool add_bos = false) const;
  // Text -> ids treating added-token strings as plain text (pre-tokenizer and BPE only): for
  // user content that must not become control tokens.
  std::vector<int32_t> encode_ordinary(std::string_view text) const;
  // Byte ranges [begin, end) of the added tokens encode() would match in `text`, in order.
  std::vector<std::pair<size_t, size_t>> added_token_spans(std::string_view text) const;
  // encode(), with added tokens matched only outside the `plain` byte ranges (sorted,
  // disjoint): text inside them is plain text, as encode_ordinary() reads it. BPE runs across
  // the ranges' edges as it runs across any text between two added tokens, so a prompt whose
  // plain ranges hold no added-token text encodes exactly as encode() encodes it.
  std::vector<int32_t> encode_with_plain_text(std::string_view text, std::span<const std::pair<size_t, size_t>> plain,
                                              bool add_bos) const;
  // The most bytes of text one token stands for: n bytes of text are at least
  // n / max_token_bytes() tokens.
  size_t max_token_bytes() const { return max_token_bytes_; }
  // Ids -> text (invalid UTF-8 from partial tokens becomes U+FFFD). Error for ids out of range.
  Result<std::string> decode(std::span<const int32_t> ids, bool skip_special_tokens) const;

  int32_t vocab_size() const { return static_cast<int32_t>(tokens_.size()); }  // highest id + 1
  std::optional<int32_t> bos_id() const { return bos_id_; }
  std::optional<int32_t> eos_id() const { return eos_id_; }
  bool add_bos_token() const { return add_bos_token_; }
  const std::string& bos_token() const { return bos_token_; }
  const std::string& eos_token() const { return eos_token_; }
  // True for added tokens declared special (skipped by decode(..., true)).
  bool is_special(int32_t id) const;
  // True when some token has this id.
  bool has_id(int32_t id) const;
  // Raw bytes a token decodes to (for logprobs "bytes"); empty for an unknown id.
  std::string token_bytes(int32_t id) const;
  // Id of a token by its content (added token text, or vocab entry in byte-level spelling).
  std::optional<int32_t> token_to_id(std::string_view content) const;
  const std::vector<AddedToken>& added_tokens() const { return added_; }

  // Null when tokenizer_config.json has no chat_template.
  const ChatTemplate* chat_template() const { return chat_template_.get(); }
  // DeepSeek-V3.2 ships no chat template: its prompts come from its encoder (dsv32_encoding.h).
  // load() turns this on when the directory's config.json says model_type deepseek_v32 and
  // tokenizer_config.json has no chat_template. The apply_chat_template functions then encode
  // with it: thinking mode when the variable "thinking" is true, request tools from "tools".
  void use_dsv32_encoding() { dsv32_encoding_ = true; }
  bool uses_dsv32_encoding() const { return dsv32_encoding_ && !chat_template_; }
  // A chat template or the V3.2 encoder: chat messages can become a prompt.
  bool has_chat_format() const { return chat_template_ != nullptr || dsv32_encoding_; }
  // Renders the chat template with bos_token/eos_token filled in from the config (entries of
  // `extra` win). Error when there is no template or rendering fails.
  Result<std::string> apply_chat_template(const Json& messages, bool add_generation_prompt,
                                          const Json& extra = Json::object()) const;
  // Same with key order kept (tools | tojson then matches HF byte for byte).
  Result<std::string> apply_chat_template(const OrderedJson& messages, bool add_generation_prompt,
                                          const OrderedJson& extra) const;
  // apply_chat_template with what came from messages and `data` marked (ChatTemplate::
  // render_marked), within `limits`.
  Result<ChatTemplate::Rendered> apply_chat_template_marked(const Json& messages, bool add_generation_prompt,
                                                            const Json& extra, const Json& data,
                                                            const ChatTemplate::Limits& limits) const;

  const PreTokenizer& pre_tokenizer() const { return pre_tokenizer_; }
  const Bpe& bpe_for_testing() const { return *bpe_; }

 private:
  Tokenizer() = default;
  Status load_model(TokenizerFile& file);
  Status load_config(const Json& config);
  void encode_text(std::string_view text, std::vector<int32_t>& out) const;

  struct TokenInfo {
    std::string bytes;  // what the token decodes to
    bool present = false;
    bool special = false;
  };
  std::vector<TokenInfo> tokens_;
  TokenIndex vocab_;  // vocab key (byte-level spelling) -> id
  std::vector<AddedToken> added_;
  AddedVocabulary added_vocab_;
  PreTokenizer pre_tokenizer_;
  std::unique_ptr<Bpe> bpe_;
  bool ignore_merges_ = false;

  std::optional<int32_t> bos_id_, eos_id_;
  std::string bos_token_, eos_token_;
  bool add_bos_token_ = false;
  size_t max_token_bytes_ = 0;
  std::unique_ptr<ChatTemplate> chat_template_;
  bool dsv32_encoding_ = false;
};

}  // namespace dsv3
