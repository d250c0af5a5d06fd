#pragma once
// The chat page served at / (web/): its files, bundled and embedded at build time.
#include <span>
#include <string_view>

namespace dsv3::server {

struct WebPageFile {
  std::string_view path;          // "/", "/app.js", "/app.css"
  std::string_view content_type;
  std::string_view body;
};

// Defined in the source web/embed.cmake generates.
std::span<const WebPageFile> web_page_files();

}  // namespace dsv3::server
