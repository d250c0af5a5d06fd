// Tokenizer::load: reads and validates tokenizer.json and tokenizer_config.json. Every
// rejection names the file and the entry (a missing file, invalid JSON, a model other than
// BPE, bad vocab ids or merges, an unknown pre-tokenizer, clashing added tokens, a chat
// template that does not compile).

#include <chrono>

#include "base/log.h"
#include "base/mapped_file.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace dsv3 {

namespace {

constexpr uint64_t kMaxTokenizerJsonBytes = 512ull << 20;
constexpr uint64_t kMaxConfigBytes = 64ull << 20;
// Ids index dense tables; a bogus id of 2^31 must not allocate gigabytes.
constexpr int64_t kMaxTokenId = (1 << 24) - 1;

std::string snip(const std::string& s) { return json_snippet(Json(s)); }

// What a token spelled in the byte-level alphabet decodes to; HF's ByteLevel decoder keeps a
// token's own UTF-8 bytes when any of its characters is outside the alphabet.
std::string byte_level_decode(const std::string& spelled) {
  std::string out;
  size_t pos = 0;
  while (pos < spelled.size()) {
    auto d = unicode::decode_utf8(spelled, pos);
    int b = d.cp == unicode::kInvalid ? -1 : unicode::char_to_byte(d.cp);
    if (b < 0) return spelled;
    out += static_cast<char>(b);
    pos += d.len;
  }
  return out;
}

Status check_model_options(const Json& model) {
  auto null_or = [&](const char* key, auto ok) -> bool {
    return !model.contains(key) || model[key].is_null() || ok(model[key]);
  };
  if (!null_or("dropout", [](const Json& v) { return v.is_number() && v.get<double>() == 0.0; }))
    return Error("model.dropout is not supported");
  if (!null_or("continuing_subword_prefix", [](const Json& v) { return v.is_string() && v.get<std::string>().empty(); }))
    return Error("model.continuing_subword_prefix is not supported");
  if (!null_or("end_of_word_suffix", [](const Json& v) { return v.is_string() && v.get<std::string>().empty(); }))
    return Error("model.end_of_word_suffix is not supported");
  if (!null_or("byte_fallback", [](const Json& v) { return v.is_boolean() && !v.get<bool>(); }))
    return Error("model.byte_fallback=true is not supported (byte-level BPE needs no fallback)");
  return {};
}

Status check_normalizer(const Json& root) {
  if (!root.contains("normalizer") || root["normalizer"].is_null()) return {};
  const Json& n = root["normalizer"];
  if (n.is_object() && n.value("type", "") == "Sequence" && n.contains("normalizers") && n["normalizers"].is_array() &&
      n["normalizers"].empty())
    return {};
  return Error("normalizer " + json_snippet(n) + " is not supported (only none / an empty Sequence)");
}

Status check_decoder(const Json& root) {
  if (!root.contains("decoder") || root["decoder"].is_null()) return {};
  const Json& d = root["decoder"];
  if (d.is_object() && d.value("type", "") == "ByteLevel") return {};
  return Error("decoder " + json_snippet(d) + " is not supported (only ByteLevel)");
}

Result<std::vector<AddedToken>> read_added_tokens(const Json& root) {
  std::vector<AddedToken> out;
  if (!root.contains("added_tokens") || root["added_tokens"].is_null()) return out;
  const Json& list = root["added_tokens"];
  if (!list.is_array()) return Error("added_tokens: expected an array");
  for (size_t i = 0; i < list.size(); ++i) {
    const Json& e = list[i];
    std::string where = "added_tokens[" + std::to_string(i) + "]";
    if (!e.is_object()) return Error(where + ": expected an object");
    AddedToken t;
    DSV3_ASSIGN(int64_t id, json_int(e, "id").context(where));
    if (id < 0 || id > kMaxTokenId) return Error(where + ": id " + std::to_string(id) + " out of range");
    t.id = static_cast<int32_t>(id);
    DSV3_ASSIGN(t.content, json_string(e, "content").context(where));
    if (t.content.empty()) return Error(where + " (id " + std::to_string(id) + "): empty content");
    if (find_invalid_utf8(t.content)) return Error(where + ": content is not valid UTF-8");
    auto flag = [&](const char* key, bool def, bool& dst) -> Status {
      if (!e.contains(key)) {
        dst = def;
        return {};
      }
      if (!e[key].is_boolean()) return Error(where + ": field '" + key + "' must be a boolean");
      dst = e[key].get<bool>();
      return {};
    };
    DSV3_TRY(flag("special", false, t.special));
    DSV3_TRY(flag("normalized", !t.special, t.normalized));
    DSV3_TRY(flag("lstrip", false, t.lstrip));
    DSV3_TRY(flag("rstrip", false, t.rstrip));
    DSV3_TRY(flag("single_word", false, t.single_word));
    out.push_back(std::move(t));
  }
  return out;
}

// A token named in tokenizer_config.json: a string, an AddedToken object, or null.
Result<std::optional<std::string>> config_token(const Json& config, const char* key) {
  if (!config.contains(key) || config[key].is_null()) return std::optional<std::string>();
  const Json& v = config[key];
  if (v.is_string()) return std::optional<std::string>(v.get<std::string>());
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return std::optional<std::string>(v["content"].get<std::string>());
  return Error(std::string("field '") + key + "': expected a string or an object with 'content', got " + json_snippet(v));
}

}  // namespace

Status Tokenizer::load_model(TokenizerFile& file) {
  const Json& root = file.root;
  if (!root.contains("model") || !root["model"].is_object()) return Error("missing 'model' object");
  const Json& model = root["model"];
  if (!model.contains("type")) {
    if (!file.has_vocab || !file.has_merges) return Error("model.type missing (only BPE is supported)");
  } else if (!model["type"].is_string() || model["type"].get<std::string>() != "BPE") {
    return Error("model.type " + json_snippet(model["type"]) + " is not supported (only BPE)");
  }
  if (!file.has_vocab) return Error("model.vocab missing");
  if (!file.has_merges) return Error("model.merges missing");
  DSV3_TRY(check_model_options(model));
  DSV3_TRY(check_normalizer(root));
  DSV3_TRY(check_decoder(root));
  if (!root.contains("pre_tokenizer") || root["pre_tokenizer"].is_null())
    return Error("pre_tokenizer missing (the DeepSeek-V3 Split + ByteLevel sequence is expected)");
  auto pre = PreTokenizer::from_json(root["pre_tokenizer"]);
  if (!pre.ok()) return std::move(pre).error();
  pre_tokenizer_ = std::move(*pre);
  if (model.contains("ignore_merges") && model["ignore_merges"].is_boolean()) ignore_merges_ = model["ignore_merges"].get<bool>();

  DSV3_ASSIGN(added_, read_added_tokens(root));

  // Dense id table.
  int64_t max_id = -1;
  for (const auto& [token, id] : file.vocab) {
    if (id < 0 || id > kMaxTokenId)
      return Error("model.vocab entry " + snip(token) + ": id " + std::to_string(id) + " out of range [0, " +
                   std::to_string(kMaxTokenId) + "]");
    max_id = std::max(max_id, id);
  }
  for (const auto& t : added_) max_id = std::max<int64_t>(max_id, t.id);
  if (max_id < 0) return Error("model.vocab is empty");
  tokens_.assign(static_cast<size_t>(max_id + 1), TokenInfo{});
  vocab_.reserve(file.vocab.size());
  for (auto& [token, id] : file.vocab) {
    TokenInfo& info = tokens_[static_cast<size_t>(id)];
    if (info.present) return Error("model.vocab entry " + snip(token) + ": duplicate id " + std::to_string(id));
    info.present = true;
    info.bytes = byte_level_decode(token);
    if (!vocab_.insert(token, static_cast<int32_t>(id)))
      return Error("model.vocab: duplicate entry " + snip(token));
  }
  TokenIndex added_ids;
  for (size_t i = 0; i < added_.size(); ++i) {
    const AddedToken& t = added_[i];
    std::string where = "added_tokens[" + std::to_string(i) + "] " + snip(t.content);
    if (!added_ids.insert(t.content, t.id)) return Error(where + ": content declared twice");
    TokenInfo& info = tokens_[static_cast<size_t>(t.id)];
    std::optional<int32_t> in_vocab = vocab_.find(t.content);
    if (info.present) {
      // An added token may restate a vocab entry (DeepSeek's ids 0-2), nothing else.
      if (in_vocab != t.id) return Error(where + ": id " + std::to_string(t.id) + " already belongs to another token");
    } else if (in_vocab) {
      return Error(where + ": also in model.vocab with id " + std::to_string(*in_vocab) + ", not " +
                   std::to_string(t.id));
    }
    info.present = true;
    info.special = t.special;
    info.bytes = byte_level_decode(t.content);
  }
  added_vocab_ = AddedVocabulary(added_);
  for (const TokenInfo& info : tokens_) max_token_bytes_ = std::max(max_token_bytes_, info.bytes.size());
  for (const AddedToken& t : added_) {
    max_token_bytes_ = std::max(max_token_bytes_, t.content.size());
    if (t.lstrip || t.rstrip) max_token_bytes_ = SIZE_MAX;  // it takes any run of whitespace with it
  }

  // Byte tokens: byte-level BPE starts from one token per byte, all 256 must exist.
  std::vector<int32_t> byte_ids(256);
  for (int b = 0; b < 256; ++b) {
    std::string spelled;
    unicode::append_utf8(spelled, unicode::byte_to_char(static_cast<uint8_t>(b)));
    std::optional<int32_t> id = vocab_.find(spelled);
    if (!id) return Error("model.vocab has no token for byte " + str_f("0x%02X", b) + " (" + spelled + ")");
    byte_ids[b] = *id;
  }

  MergeTable merges;
  std::string joined;
  for (size_t i = 0; i < file.merges.size(); ++i) {
    const auto& [a, b] = file.merges[i];
    joined.assign(a).append(b);
    std::optional<int32_t> ia = vocab_.find(a), ib = vocab_.find(b), merged = vocab_.find(joined);
    if (!ia || !ib || !merged) {
      const std::string& missing = !ia ? a : !ib ? b : joined;
      return Error("model.merges entry " + std::to_string(i) + " " + snip(a + " " + b) + ": token " + snip(missing) +
                   " is not in model.vocab");
    }
    merges.insert(*ia, *ib, static_cast<int32_t>(i), *merged);
  }
  if (merges.size() != file.merges.size())
    DSV3_LOG_WARN("tokenizer.json: %zu merges repeat an earlier pair (the later rank is used)",
                  file.merges.size() - merges.size());
  merges.finalize();
  bpe_ = std::make_unique<Bpe>(std::move(byte_ids), std::move(merges));
  return {};
}

Status Tokenizer::load_config(const Json& config) {
  if (!config.is_object()) return Error("expected a JSON object");
  if (config.contains("add_bos_token") && !config["add_bos_token"].is_null()) {
    if (!config["add_bos_token"].is_boolean()) return Error("field 'add_bos_token': expected a boolean");
    add_bos_token_ = config["add_bos_token"].get<bool>();
  }
  auto resolve = [&](const char* key, std::string& text, std::optional<int32_t>& id) -> Status {
    DSV3_ASSIGN(std::optional<std::string> tok, config_token(config, key));
    if (!tok) return {};
    std::optional<int32_t> found = token_to_id(*tok);
    if (!found) return Error(std::string("field '") + key + "': token " + snip(*tok) + " is not in the vocabulary");
    text = *tok;
    id = found;
    return {};
  };
  DSV3_TRY(resolve("bos_token", bos_token_, bos_id_));
  DSV3_TRY(resolve("eos_token", eos_token_, eos_id_));
  std::string pad_text;
  std::optional<int32_t> pad_id;
  DSV3_TRY(resolve("pad_token", pad_text, pad_id));
  if (add_bos_token_ && !bos_id_) return Error("add_bos_token is true but there is no bos_token");

  if (config.contains("chat_template") && !config["chat_template"].is_null()) {
    const Json& ct = config["chat_template"];
    std::string source;
    if (ct.is_string()) {
      source = ct.get<std::string>();
    } else if (ct.is_array()) {
      // HF's named templates: [{"name": "default", "template": "..."}, ...]; use "default".
      for (const auto& e : ct)
        if (e.is_object() && e.value("name", "") == "default" && e.contains("template") && e["template"].is_string())
          source = e["template"].get<std::string>();
      if (source.empty()) return Error("field 'chat_template': a list without a 'default' template");
    } else {
      return Error("field 'chat_template': expected a string or a list of named templates");
    }
    auto compiled = ChatTemplate::compile(source);
    if (!compiled.ok()) return std::move(compiled).error().context("field 'chat_template'");
    chat_template_ = std::make_unique<ChatTemplate>(std::move(*compiled));
  }
  return {};
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_strings(std::string_view tokenizer_json, std::string_view config_text,
                                                           const std::string& where) {
  std::string json_name = where + "/tokenizer.json", config_name = where + "/tokenizer_config.json";
  DSV3_ASSIGN(TokenizerFile file, parse_tokenizer_file(tokenizer_json, json_name));
  std::unique_ptr<Tokenizer> tok(new Tokenizer());
  DSV3_TRY_CTX(tok->load_model(file), json_name);
  if (!config_text.empty()) {
    DSV3_ASSIGN(Json config, parse_json(config_text, config_name));
    DSV3_TRY_CTX(tok->load_config(config), config_name);
  }
  return tok;
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::load(const std::string& dir) {
  auto start = std::chrono::steady_clock::now();
  DSV3_ASSIGN(std::string json_text, read_text_file(dir + "/tokenizer.json", kMaxTokenizerJsonBytes));
  DSV3_ASSIGN(std::string config_text, read_text_file(dir + "/tokenizer_config.json", kMaxConfigBytes));
  if (config_text.empty()) return Error(dir + "/tokenizer_config.json: empty file");
  DSV3_ASSIGN(auto tok, from_strings(json_text, config_text, dir));
  if (!tok->chat_template()) {
    // DeepSeek-V3.2 (no chat template): its own encoder, when the model's config.json says so.
    auto model_config = read_text_file(dir + "/config.json", kMaxConfigBytes);
    if (model_config.ok()) {
      auto j = parse_json(*model_config, dir + "/config.json");
      if (j.ok() && j->is_object() && j->value("model_type", std::string()) == "deepseek_v32") tok->use_dsv32_encoding();
    }
  }
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  DSV3_LOG_INFO("tokenizer: %d ids, %zu added tokens, loaded in %.1f ms", tok->vocab_size(), tok->added_.size(), ms);
  return tok;
}

}  // namespace dsv3
