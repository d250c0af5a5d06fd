#include "tokenizer/jinja/lexer.h"

#include "tokenizer/jinja/error.h"
#include "tokenizer/unicode.h"

namespace dsv3::jinja {

namespace {

std::string normalize_newlines(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      out += '\n';
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else {
      out += s[i];
    }
  }
  // keep_trailing_newline=False: one trailing newline of the template is dropped.
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

constexpr size_t kMaxTokensPerTag = 2048;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

class Lexer {
 public:
  explicit Lexer(std::string_view source) : src_(normalize_newlines(source)) {}

  std::vector<Token> run() {
    bool line_starting = true;  // the previous tag's match ended with a newline
    while (pos_ < src_.size()) {
      size_t open = find_open(pos_);
      std::string text = src_.substr(pos_, open - pos_);
      if (open == src_.size()) {
        emit_text(text);
        pos_ = open;
        break;
      }
      char kind = src_[open + 1];  // '{', '%' or '#'
      char mark = open + 2 < src_.size() ? src_[open + 2] : '\0';
      if (mark == '-') {
        size_t keep = text.size();
        while (keep > 0 && is_space(text[keep - 1])) --keep;
        text.resize(keep);
      } else if (mark != '+' && kind != '{') {
        // lstrip_blocks: drop spaces/tabs between the line start and a block/comment tag.
        size_t line_pos = text.rfind('\n');
        size_t l_pos = line_pos == std::string::npos ? 0 : line_pos + 1;
        if (l_pos > 0 || line_starting) {
          if (text.find_first_not_of(" \t", l_pos) == std::string::npos) text.resize(l_pos);
        }
      }
      emit_text(text);
      line_ += count_newlines(pos_, open);
      pos_ = open + 2 + ((mark == '-' || mark == '+') ? 1 : 0);
      if (kind == '#') {
        line_starting = skip_comment();
      } else if (kind == '%' && is_raw_block()) {
        line_starting = lex_raw();
      } else {
        line_starting = lex_tag(kind == '{');
      }
    }
    tokens_.push_back({TokenType::kEnd, "", line_});
    return std::move(tokens_);
  }

 private:
  size_t find_open(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i)
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    return src_.size();
  }
  int count_newlines(size_t a, size_t b) const {
    int n = 0;
    for (size_t i = a; i < b && i < src_.size(); ++i) n += src_[i] == '\n';
    return n;
  }
  void emit_text(const std::string& text) {
    if (!text.empty()) tokens_.push_back({TokenType::kText, text, line_});
  }
  [[noreturn]] void error(const std::string& message) const { throw TemplateError(message, line_); }

  // After a closing mark: '-' strips all following whitespace; trim_blocks drops one newline
  // after %} and #}. Returns whether the consumed closing text ended with a newline.
  bool after_close(bool strip, bool block_like) {
    size_t start = pos_;
    if (strip) {
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
    } else if (block_like && pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;
    }
    line_ += count_newlines(start, pos_);
    return pos_ > start && src_[pos_ - 1] == '\n';
  }

  bool skip_comment() {
    int start_line = line_;
    for (size_t i = pos_; i + 1 < src_.size(); ++i) {
      if (src_[i] == '#' && src_[i + 1] == '}') {
        bool strip = i > pos_ && src_[i - 1] == '-';
        line_ += count_newlines(pos_, i);
        pos_ = i + 2;
        return after_close(strip, true);
      }
    }
    throw TemplateError("unterminated comment", start_line);
  }

  // {% raw %}: everything up to {% endraw %} is text.
  bool is_raw_block() const {
    size_t p = pos_;
    while (p < src_.size() && is_space(src_[p])) ++p;
    if (src_.compare(p, 3, "raw") != 0) return false;
    p += 3;
    while (p < src_.size() && is_space(src_[p])) ++p;
    return src_.compare(p, 2, "%}") == 0 || src_.compare(p, 3, "-%}") == 0;
  }
  bool lex_raw() {
    size_t close = src_.find("%}", pos_);
    bool strip_after_open = src_[close - 1] == '-';
    line_ += count_newlines(pos_, close + 2);
    pos_ = close + 2;
    after_close(strip_after_open, true);
    for (size_t i = pos_; i + 1 < src_.size(); ++i) {
      if (src_[i] != '{' || src_[i + 1] != '%') continue;
      size_t p = i + 2;
      bool strip_before = p < src_.size() && src_[p] == '-';
      if (strip_before || (p < src_.size() && src_[p] == '+')) ++p;
      while (p < src_.size() && is_space(src_[p])) ++p;
      if (src_.compare(p, 6, "endraw") != 0) continue;
      p += 6;
      while (p < src_.size() && is_space(src_[p])) ++p;
      bool strip_after = p < src_.size() && src_[p] == '-';
      if (strip_after) ++p;
      if (src_.compare(p, 2, "%}") != 0) continue;
      std::string text = src_.substr(pos_, i - pos_);
      if (strip_before) {
        while (!text.empty() && is_space(text.back())) text.pop_back();
      }
      emit_text(text);
      line_ += count_newlines(pos_, p + 2);
      pos_ = p + 2;
      return after_close(strip_after, true);
    }
    error("unterminated raw block (missing {% endraw %})");
  }

  bool lex_tag(bool is_var) {
    tokens_.push_back({is_var ? TokenType::kVarBegin : TokenType::kBlockBegin, "", line_});
    int start_line = line_;
    brackets_.clear();
    size_t first_token = tokens_.size();
    while (true) {
      // A left-deep chain (a + b + c ...) nests as deep as it is long; bounding the tokens of
      // one tag bounds the recursion of parsing, rendering and freeing it.
      if (tokens_.size() - first_token > kMaxTokensPerTag)
        throw TemplateError("tag too long (more than " + std::to_string(kMaxTokensPerTag) + " tokens)", start_line);
      while (pos_ < src_.size() && is_space(src_[pos_])) {
        if (src_[pos_] == '\n') ++line_;
        ++pos_;
      }
      if (pos_ >= src_.size())
        throw TemplateError(is_var ? "unterminated '{{' (missing '}}')" : "unterminated '{%' (missing '%}')", start_line);
      char c = src_[pos_];
      // Closing marks, with optional - or + before them; as in Jinja2 they only close the tag
      // outside brackets, so {{ {'a': {'b': 1}} }} is one expression.
      char close0 = is_var ? '}' : '%';
      size_t p = pos_;
      bool strip = false, plus = false;
      if (brackets_.empty() && (c == '-' || c == '+') && src_.compare(p + 1, 2, std::string{close0, '}'}) == 0) {
        strip = c == '-';
        plus = c == '+';
        ++p;
      }
      if (brackets_.empty() && src_.compare(p, 2, std::string{close0, '}'}) == 0) {
        pos_ = p + 2;
        tokens_.push_back({is_var ? TokenType::kVarEnd : TokenType::kBlockEnd, "", line_});
        (void)plus;  // +%} keeps the newline: nothing to do beyond not trimming
        return after_close(strip, !is_var && !plus);
      }
      if (c == '\'' || c == '"') {
        lex_string(c);
      } else if (is_digit(c)) {
        lex_number();
      } else if (is_name_start(c)) {
        size_t b = pos_;
        while (pos_ < src_.size() && (is_name_start(src_[pos_]) || is_digit(src_[pos_]))) ++pos_;
        tokens_.push_back({TokenType::kName, src_.substr(b, pos_ - b), line_});
      } else {
        lex_operator();
      }
    }
  }

  void lex_string(char quote) {
    int start_line = line_;
    std::string out;
    ++pos_;
    while (true) {
      if (pos_ >= src_.size()) throw TemplateError("unterminated string literal", start_line);
      char c = src_[pos_++];
      if (c == quote) break;
      if (c == '\n') ++line_;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= src_.size()) throw TemplateError("unterminated string literal", start_line);
      char e = src_[pos_++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case '0': out += '\0'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case '\n': ++line_; break;  // line continuation
        case 'x':
        case 'u':
        case 'U': {
          int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (pos_ + static_cast<size_t>(digits) > src_.size()) error("truncated \\" + std::string(1, e) + " escape");
          uint32_t cp = 0;
          for (int i = 0; i < digits; ++i) {
            char h = src_[pos_++];
            int v = (h >= '0' && h <= '9') ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
            if (v < 0) error("invalid \\" + std::string(1, e) + " escape");
            cp = cp * 16 + static_cast<uint32_t>(v);
          }
          if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) error("escape gives an invalid code point");
          unicode::append_utf8(out, cp);
          break;
        }
        default:  // unknown escapes stay as written, like Python
          out += '\\';
          out += e;
      }
    }
    tokens_.push_back({TokenType::kString, std::move(out), line_});
  }

  void lex_number() {
    size_t b = pos_;
    bool is_float = false;
    while (pos_ < src_.size() && (is_digit(src_[pos_]) || src_[pos_] == '_')) ++pos_;
    if (pos_ + 1 < src_.size() && src_[pos_] == '.' && is_digit(src_[pos_ + 1])) {
      is_float = true;
      ++pos_;
      while (pos_ < src_.size() && (is_digit(src_[pos_]) || src_[pos_] == '_')) ++pos_;
    }
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      size_t p = pos_ + 1;
      if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
      if (p < src_.size() && is_digit(src_[p])) {
        is_float = true;
        pos_ = p;
        while (pos_ < src_.size() && is_digit(src_[pos_])) ++pos_;
      }
    }
    std::string text;
    for (size_t i = b; i < pos_; ++i)
      if (src_[i] != '_') text += src_[i];
    tokens_.push_back({is_float ? TokenType::kFloat : TokenType::kInt, text, line_});
  }

  void lex_operator() {
    static const char* const kTwo[] = {"//", "**", "==", "!=", "<=", ">="};
    for (const char* op : kTwo) {
      if (src_.compare(pos_, 2, op) == 0) {
        tokens_.push_back({TokenType::kOperator, op, line_});
        pos_ += 2;
        return;
      }
    }
    char c = src_[pos_];
    if (std::string_view("+-*/%~<>=()[]{},.:|").find(c) == std::string_view::npos)
      error(std::string("unexpected character '") + c + "' in tag");
    if (c == '(' || c == '[' || c == '{') {
      brackets_.push_back(c);
    } else if (c == ')' || c == ']' || c == '}') {
      char open = c == ')' ? '(' : c == ']' ? '[' : '{';
      if (brackets_.empty() || brackets_.back() != open) error(std::string("unexpected '") + c + "'");
      brackets_.pop_back();
    }
    tokens_.push_back({TokenType::kOperator, std::string(1, c), line_});
    ++pos_;
  }

  std::string src_;
  std::string brackets_;  // open brackets of the current tag
  size_t pos_ = 0;
  int line_ = 1;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source) { return Lexer(source).run(); }

}  // namespace dsv3::jinja
