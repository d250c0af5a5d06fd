// dsv3_bench_tokenizer: tokenizer speed on one thread.
//   dsv3_bench_tokenizer [MODEL_DIR] [MEGABYTES] [RUNS]   (MODEL_DIR: assets/deepseek-v3-tokenizer)
// Builds MEGABYTES (default 12) of mixed text, deterministic (seeded): English prose, C++ /
// Python code, Chinese, numbers; then reports the median over RUNS (default 5) of the
// tokenizer load time, encode throughput (MB/s, tokens/s) per kind and mixed, decode
// throughput, and the worst cases: 1 MB of one repeated character, which must not take
// quadratic time.

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// CPU time of this thread: on a shared machine, wall time also counts the time other
// processes hold the core; throughput per CPU-second is what one dedicated core would do.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string english(std::mt19937& rng, size_t bytes) {
  static const char* words[] = {
      "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on", "not",
      "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "had", "they", "you", "were",
      "their", "one", "all", "we", "can", "her", "has", "there", "been", "if", "more", "when", "will", "would", "who",
      "so", "no", "model", "inference", "tokenizer", "attention", "experts", "throughput", "latency", "engine",
      "language", "mixture", "sequence", "parameters", "distributed", "quantization", "benchmark", "evaluation",
      "However", "Therefore", "Moreover", "DeepSeek", "Transformer", "GPU", "memory", "bandwidth", "performance"};
  std::string out;
  while (out.size() < bytes) {
    int len = 8 + static_cast<int>(rng() % 20);
    for (int i = 0; i < len; ++i) {
      std::string w = words[rng() % (sizeof(words) / sizeof(*words))];
      if (i == 0) w[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(w[0])));
      out += w;
      out += (i + 1 == len) ? "" : (rng() % 11 == 0 ? ", " : " ");
    }
    out += rng() % 5 == 0 ? ".\n\n" : ". ";
  }
  return out;
}

std::string code(std::mt19937& rng, size_t bytes) {
  static const char* lines[] = {
      "for (int i = 0; i < n; ++i) {\n", "    sum += values[i] * weights[i];\n", "}\n",
      "def forward(self, x: torch.Tensor) -> torch.Tensor:\n", "        return self.proj(F.silu(self.gate(x)) * self.up(x))\n",
      "    if (status != 0) return error_f(\"read failed: %s\", strerror(errno));\n",
      "#include <vector>\n", "std::vector<int32_t> ids = tokenizer.encode(text);\n",
      "    // Comments say why, not what the next line does.\n", "\tconst auto& [key, value] = *it;\n",
      "x = np.zeros((batch_size, seq_len, hidden_dim), dtype=np.float32)\n", "    }\n\n"};
  std::string out;
  while (out.size() < bytes) out += lines[rng() % (sizeof(lines) / sizeof(*lines))];
  return out;
}

std::string chinese(std::mt19937& rng, size_t bytes) {
  static const char* phrases[] = {"深度求索", "人工智能", "大语言模型", "推理引擎", "我们", "的", "是", "在", "和",
                                  "研究", "发布了", "模型", "数据", "计算", "能力", "世界", "中国", "训练",
                                  "，", "。", "专家", "注意力", "日本語", "カタカナ", "ひらがな"};
  std::string out;
  while (out.size() < bytes) {
    out += phrases[rng() % (sizeof(phrases) / sizeof(*phrases))];
    if (rng() % 40 == 0) out += "\n";
  }
  return out;
}

std::string digits(std::mt19937& rng, size_t bytes) {
  std::string out;
  while (out.size() < bytes) {
    int kind = static_cast<int>(rng() % 4);
    if (kind == 0) out += std::to_string(rng() % 10000000);
    else if (kind == 1) out += std::to_string(rng() % 1000) + "." + std::to_string(rng() % 100000);
    else if (kind == 2) out.append("2024-").append(std::to_string(1 + rng() % 12)).append("-").append(std::to_string(1 + rng() % 28));
    else out.append("$").append(std::to_string(rng() % 1000000)).append(",000");
    out += rng() % 8 == 0 ? "\n" : " ";
  }
  return out;
}

struct Measure {
  double mb_per_s, tokens_per_s;  // per CPU-second
  double wall_mb_per_s;
  size_t tokens;
};

Measure measure_encode(const dsv3::Tokenizer& tok, const std::string& text, int runs) {
  std::vector<double> cpu, wall;
  size_t tokens = 0;
  for (int r = 0; r < runs; ++r) {
    auto t = Clock::now();
    double c = thread_cpu_seconds();
    auto ids = tok.encode(text);
    cpu.push_back(thread_cpu_seconds() - c);
    wall.push_back(seconds_since(t));
    tokens = ids.size();
  }
  double s = median(cpu);
  auto mb = static_cast<double>(text.size()) / 1e6;
  return {mb / s, static_cast<double>(tokens) / s, mb / median(wall), tokens};
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : std::string(DSV3_SOURCE_DIR) + "/assets/deepseek-v3-tokenizer";
  double megabytes = argc > 2 ? std::atof(argv[2]) : 12.0;
  int runs = argc > 3 ? std::atoi(argv[3]) : 5;
  if (runs < 1) runs = 1;

  std::vector<double> load_times, load_cpu;
  std::unique_ptr<dsv3::Tokenizer> tok;
  for (int r = 0; r < runs; ++r) {
    auto t = Clock::now();
    double c = thread_cpu_seconds();
    auto loaded = dsv3::Tokenizer::load(dir);
    load_cpu.push_back(thread_cpu_seconds() - c);
    load_times.push_back(seconds_since(t));
    if (!loaded.ok()) {
      std::fprintf(stderr, "dsv3_bench_tokenizer: error: %s\n", loaded.error().message().c_str());
      return 1;
    }
    tok = std::move(*loaded);
  }
  std::printf("tokenizer load (tokenizer.json + config): median %.1f ms wall, %.1f ms CPU over %d runs\n",
              median(load_times) * 1e3, median(load_cpu) * 1e3, runs);

  std::mt19937 rng(12345);
  auto part = static_cast<size_t>(megabytes * 1e6 / 4);
  std::vector<std::pair<const char*, std::string>> kinds = {
      {"english", english(rng, part)}, {"code", code(rng, part)}, {"chinese", chinese(rng, part)}, {"digits", digits(rng, part)}};
  // The mixed text interleaves 4 KB slices of each kind.
  std::string mixed;
  for (size_t off = 0; off < part; off += 4096)
    for (auto& [name, text] : kinds)
      if (off < text.size()) mixed += text.substr(off, 4096);

  std::printf("encode, one thread, median of %d runs (per CPU-second; wall in brackets):\n", runs);
  for (auto& [name, text] : kinds) {
    Measure m = measure_encode(*tok, text, runs);
    std::printf("  %-8s %6.2f MB  %7.2f MB/s  %6.2f M tokens/s  [%.2f MB/s]  (%.2f bytes/token)\n", name,
                text.size() / 1e6, m.mb_per_s, m.tokens_per_s / 1e6, m.wall_mb_per_s,
                static_cast<double>(text.size()) / static_cast<double>(m.tokens));
  }
  Measure m = measure_encode(*tok, mixed, runs);
  std::printf("  %-8s %6.2f MB  %7.2f MB/s  %6.2f M tokens/s  [%.2f MB/s]  (%zu tokens)\n", "mixed", mixed.size() / 1e6,
              m.mb_per_s, m.tokens_per_s / 1e6, m.wall_mb_per_s, m.tokens);

  auto ids = tok->encode(mixed);
  std::vector<double> dt;
  for (int r = 0; r < runs; ++r) {
    auto t = Clock::now();
    auto text = tok->decode(ids, false);
    dt.push_back(seconds_since(t));
  }
  std::printf("decode mixed: %.2f MB/s\n", static_cast<double>(mixed.size()) / 1e6 / median(dt));

  std::printf("1 MB of one repeated character (must not take quadratic time), one run each:\n");
  for (auto [name, unit] : std::vector<std::pair<const char*, std::string>>{
           {"'a'", "a"}, {"CJK", "\xe4\xb8\xad"}, {"'_'", "_"}, {"space", " "}, {"emoji", "\xf0\x9f\x98\x80"}, {"digit", "7"}}) {
    std::string text;
    while (text.size() < 1000000) text += unit;
    double c = thread_cpu_seconds();
    auto out = tok->encode(text);
    std::printf("  %-6s %7.1f ms CPU  %zu tokens\n", name, (thread_cpu_seconds() - c) * 1e3, out.size());
  }
  return 0;
}
