#include "server/api_error.h"

namespace dsv3::server {

Json ApiError::to_json() const {
  Json e = {{"message", bounded_text(message, 1000)}, {"type", type}};
  e["param"] = param ? Json(*param) : Json(nullptr);
  e["code"] = code ? Json(*code) : Json(nullptr);
  return Json{{"error", e}};
}

ApiError api_error(int status, std::string message, std::string type, std::optional<std::string> code) {
  ApiError e;
  e.status = status;
  e.message = std::move(message);
  e.type = std::move(type);
  e.code = std::move(code);
  return e;
}

ApiError invalid_request(std::string message, std::optional<std::string> param, std::optional<std::string> code) {
  ApiError e = api_error(400, std::move(message), "invalid_request_error", std::move(code));
  e.param = std::move(param);
  return e;
}

std::string bounded_text(const std::string& s, size_t max_bytes) {
  std::string out;
  size_t i = 0;
  while (i < s.size() && out.size() < max_bytes) {
    auto bad = find_invalid_utf8(std::string_view(s).substr(i, 4));
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || i + len > s.size() || (bad && *bad == 0)) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
      continue;
    }
    out.append(s, i, len);
    i += len;
  }
  if (i < s.size()) out += "...";
  return out;
}

}  // namespace dsv3::server
