#include "tokenizer/tokenizer_file.h"

namespace dsv3 {

namespace {

constexpr int kMaxDepth = 128;

class Reader : public nlohmann::json_sax<Json> {
 public:
  explicit Reader(TokenizerFile& out) : out_(out) {}
  const std::string& error() const { return error_; }

  bool null() override { return value(Json(nullptr)); }
  bool boolean(bool v) override { return value(Json(v)); }
  // A scalar at the top level has no frame to look at (a file holding just `2` or `"x"`):
  // place() takes it as the root, and the caller refuses a root that is not an object.
  bool number_integer(number_integer_t v) override {
    if (!frames_.empty() && top().kind == Kind::kVocab) return vocab_id(v);
    return value(Json(v));
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (!frames_.empty() && top().kind == Kind::kVocab) {
      if (v > static_cast<number_unsigned_t>(INT64_MAX)) return fail("model.vocab entry " + snippet(key_) + ": id out of range");
      return vocab_id(static_cast<int64_t>(v));
    }
    return value(Json(v));
  }
  bool number_float(number_float_t v, const string_t&) override { return value(Json(v)); }
  bool binary(binary_t&) override { return fail("unexpected binary value"); }
  bool string(string_t& v) override {
    if (frames_.empty()) return value(Json(std::move(v)));
    Frame& f = top();
    if (f.kind == Kind::kMerges) {
      size_t space = v.find(' ');
      if (space == std::string::npos || v.find(' ', space + 1) != std::string::npos)
        return fail("model.merges entry " + std::to_string(out_.merges.size()) + " " + snippet(v) +
                    ": expected two tokens separated by one space");
      out_.merges.emplace_back(v.substr(0, space), v.substr(space + 1));
      return true;
    }
    if (f.kind == Kind::kMergePair) {
      f.pair.push_back(std::move(v));
      return true;
    }
    return value(Json(std::move(v)));
  }
  bool key(string_t& k) override {
    Frame& f = top();
    if (f.kind == Kind::kVocab) {
      key_ = std::move(k);
      return true;
    }
    if (f.node->contains(k)) return fail("duplicate key " + snippet(k) + " in " + path());
    key_ = std::move(k);
    return true;
  }
  bool start_object(std::size_t) override {
    if (frames_.size() >= static_cast<size_t>(kMaxDepth)) return fail("JSON nested deeper than 128 levels");
    if (is_model_member("vocab")) {
      out_.has_vocab = true;
      frames_.push_back({Kind::kVocab, nullptr, "vocab", {}});
      return true;
    }
    return open(Json::object());
  }
  bool end_object() override {
    frames_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    if (frames_.size() >= static_cast<size_t>(kMaxDepth)) return fail("JSON nested deeper than 128 levels");
    if (is_model_member("merges")) {
      out_.has_merges = true;
      frames_.push_back({Kind::kMerges, nullptr, "merges", {}});
      return true;
    }
    if (!frames_.empty() && top().kind == Kind::kMerges) {
      frames_.push_back({Kind::kMergePair, nullptr, "", {}});
      return true;
    }
    return open(Json::array());
  }
  bool end_array() override {
    Frame& f = top();
    if (f.kind == Kind::kMergePair) {
      if (f.pair.size() != 2)
        return fail("model.merges entry " + std::to_string(out_.merges.size()) + ": expected a pair of two token strings");
      out_.merges.emplace_back(std::move(f.pair[0]), std::move(f.pair[1]));
    }
    frames_.pop_back();
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) override {
    if (error_.empty()) error_ = ex.what();
    return false;
  }

 private:
  enum class Kind { kDom, kVocab, kMerges, kMergePair };
  struct Frame {
    Kind kind;
    Json* node;       // for kDom
    std::string name; // key in the parent, for paths in errors
    std::vector<std::string> pair;  // for kMergePair
  };

  Frame& top() { return frames_.back(); }

  static std::string snippet(const std::string& s) { return json_snippet(Json(s)); }

  std::string path() const {
    std::string p;
    for (size_t i = 1; i < frames_.size(); ++i) p += (i > 1 ? "." : "") + frames_[i].name;
    return p.empty() ? "the top-level object" : "'" + p + "'";
  }

  bool fail(const std::string& message) {
    if (error_.empty()) error_ = message;
    return false;
  }

  // True when the value about to open is the member `name` of the top-level "model" object.
  bool is_model_member(const char* name) const {
    return frames_.size() == 2 && frames_[1].name == "model" && frames_[1].kind == Kind::kDom &&
           frames_[1].node->is_object() && key_ == name;
  }

  bool vocab_id(int64_t id) {
    out_.vocab.emplace_back(std::move(key_), id);
    key_.clear();
    return true;
  }

  // Places a value in the current container.
  Json* place(Json v) {
    if (frames_.empty()) {
      out_.root = std::move(v);
      return &out_.root;
    }
    Frame& f = top();
    if (f.kind == Kind::kVocab) {
      fail("model.vocab entry " + snippet(key_) + ": id must be an integer, got " + json_snippet(v));
      return nullptr;
    }
    if (f.kind == Kind::kMerges || f.kind == Kind::kMergePair) {
      fail("model.merges entry " + std::to_string(out_.merges.size()) + ": expected a string or a pair of strings, got " +
           json_snippet(v));
      return nullptr;
    }
    if (f.node->is_object()) {
      Json& slot = (*f.node)[key_];
      slot = std::move(v);
      return &slot;
    }
    f.node->push_back(std::move(v));
    return &f.node->back();
  }

  bool value(Json v) { return place(std::move(v)) != nullptr; }

  bool open(Json container) {
    std::string name = frames_.empty() ? "" : (top().node && top().node->is_array() ? std::to_string(top().node->size()) : key_);
    Json* node = place(std::move(container));
    if (!node) return false;
    frames_.push_back({Kind::kDom, node, std::move(name), {}});
    return true;
  }

  TokenizerFile& out_;
  std::vector<Frame> frames_;
  std::string key_;
  std::string error_;
};

}  // namespace

Result<TokenizerFile> parse_tokenizer_file(std::string_view text, const std::string& what) {
  TokenizerFile out;
  Reader reader(out);
  bool ok = false;
  try {
    ok = Json::sax_parse(text.begin(), text.end(), &reader, Json::input_format_t::json, /*strict=*/true);
  } catch (const std::exception& e) {  // nlohmann may throw on some malformed inputs
    return Error(what + ": " + e.what());
  }
  if (!ok) return Error(what + ": " + (reader.error().empty() ? std::string("malformed JSON") : reader.error()));
  if (!out.root.is_object()) return Error(what + ": expected a JSON object at the top level");
  return out;
}

}  // namespace dsv3
