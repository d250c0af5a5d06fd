#pragma once
// Helpers shared by the test suites: fixture paths, scratch directories, running the dsv3
// binary, reading safetensors outputs.

#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace dsv3::test {

// The reference fixtures (tests/fixtures: tiny checkpoints, goldens, tokenizer cases, configs).
inline std::string fixtures() { return std::string(DSV3_SOURCE_DIR) + "/tests/fixtures"; }

// DeepSeek-V3's tokenizer.json + tokenizer_config.json, bundled with the built-in default model.
inline std::string v3_tokenizer_dir() { return std::string(DSV3_SOURCE_DIR) + "/assets/deepseek-v3-tokenizer"; }

// A fresh scratch directory removed when the object dies.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "dsv3-test-XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    if (!p) std::abort();
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// `n` as 8 little-endian bytes: the length prefix of a safetensors file.
inline std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return s;
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct RunResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs `dsv3 <args>` through the shell; args are passed as written (quote as needed).
inline RunResult run_dsv3(const std::string& args, const std::string& stdin_text = "") {
  TempDir t;
  std::string in = t / "in", out = t / "out", err = t / "err";
  write_file(in, stdin_text);
  std::string cmd = std::string(DSV3_BIN) + " " + args + " <" + in + " >" + out + " 2>" + err;
  int status = std::system(cmd.c_str());
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

// Token ids joined by `sep`: "0,17,923" as the CLI's --tokens takes them, or as --ids prints
// them with " ".
inline std::string join_ids(const std::vector<int32_t>& ids, const char* sep = ",") {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += sep;
    s += std::to_string(ids[i]);
  }
  return s;
}

// The first index of the largest value, as the reference's torch.argmax picks it: the greedy
// token of a logits row, computed here rather than by the engine's sampler.
inline int32_t argmax(const float* row, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (row[i] > row[best]) best = i;
  return static_cast<int32_t>(best);
}

}  // namespace dsv3::test
