// Decode speed of a DeepSeek-V3.2 model at given contexts, sparse attention (the indexer's
// top index_topk) against dense MLA on the same weights, alternated step by step.
//
//   build/bench/dsv3_bench_sparse_decode MODEL_DIR [--contexts 1024,8192,32768] [--steps 5] [--threads N]
//
// The cache is filled with random latent rows and indexer keys instead of a prefill (decode
// cost does not depend on the cached values, and a 32K prefill would take hours here); each
// step decodes one token at position `context` and is then rolled back, so every step sees
// the same context. Prints one line per context: median seconds per token (tok/s) of each,
// the sparse step's indexer time and the rest, and the cache bytes per token.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "model/indexer.h"
#include "model/model.h"
#include "tensor/dtype.h"

using namespace dsv3;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void fill_random(KVCache& cache, int64_t n, const ModelConfig& c) {
  cache.reserve(n + 1);
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t l = 0; l < cache.n_layers(); ++l) {
    float* rows = cache.layer(l);
    for (int64_t i = 0; i < n * cache.row_dim(); ++i) rows[i] = normal(rng);
    if (c.has_indexer()) {
      uint8_t* keys = cache.index_keys(l);
      for (int64_t i = 0; i < n * cache.index_key_dim(); ++i) keys[i] = f32_to_e4m3(normal(rng) * 100.0f);
      float* scales = cache.index_scales(l);
      for (int64_t i = 0; i < n; ++i) scales[i] = 1.0f / 128.0f;
    }
  }
  cache.advance(n);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL_DIR [--contexts 1024,8192,32768] [--steps 5] [--threads N]\n", argv[0]);
    return 2;
  }
  std::vector<int64_t> contexts = {1024, 8192, 32768};
  int steps = 5, threads = 0;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--steps") steps = std::atoi(value.c_str());
    else if (flag == "--threads") threads = std::atoi(value.c_str());
    else if (flag == "--contexts") {
      contexts.clear();
      std::stringstream ss(value);
      for (std::string part; std::getline(ss, part, ',');) contexts.push_back(std::atoll(part.c_str()));
    }
  }
  ModelOptions opt;
  opt.threads = threads;
  auto loaded = Model::load(argv[1], opt);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.error().message().c_str());
    return 1;
  }
  Model& model = **loaded;
  const ModelConfig& c = model.config();
  if (!c.has_indexer()) {
    std::fprintf(stderr, "%s is not a deepseek_v32 model (no indexer)\n", argv[1]);
    return 1;
  }
  KVCache probe = model.new_cache();
  std::printf("model %s: %lld layers, %lld heads, index_topk %lld; threads %d\n", argv[1],
              static_cast<long long>(c.num_hidden_layers), static_cast<long long>(c.num_attention_heads),
              static_cast<long long>(c.index_topk), model.pool().size());
  std::printf("cache bytes per token: %llu (latent rows %llu + indexer keys %llu)\n",
              static_cast<unsigned long long>(probe.row_bytes()),
              static_cast<unsigned long long>(probe.row_bytes() - probe.index_row_bytes() * probe.n_layers()),
              static_cast<unsigned long long>(probe.index_row_bytes() * probe.n_layers()));
  // "indexer" is the part of the sparse step spent in the indexer (all layers), "rest" the
  // sparse step without it: past index_topk, the rest stays flat and only the indexer grows.
  std::printf("%8s  %14s  %14s  %8s  %9s  %9s\n", "context", "dense s/token", "sparse s/token", "speedup", "indexer",
              "rest");
  for (int64_t ctx : contexts) {
    KVCache cache = model.new_cache();
    fill_random(cache, ctx, c);
    std::vector<double> dense, sparse, indexer;
    const std::vector<int32_t> token = {17};
    for (int s = 0; s < 2 * steps + 2; ++s) {
      const bool use_sparse = s % 2 == 1;
      model.set_sparse_attention(use_sparse);
      SequenceInput in{&cache, token, Logits::Last};
      ForwardOutput out;
      const int64_t indexer_ns0 = indexer_detail::elapsed_ns();
      const auto t0 = std::chrono::steady_clock::now();
      Status st = model.forward({&in, 1}, &out);
      const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (!st.ok()) {
        std::fprintf(stderr, "%s\n", st.error().message().c_str());
        return 1;
      }
      cache.truncate(ctx);
      if (s >= 2) (use_sparse ? sparse : dense).push_back(sec);  // the first pair warms up
      if (s >= 2 && use_sparse) indexer.push_back(1e-9 * static_cast<double>(indexer_detail::elapsed_ns() - indexer_ns0));
    }
    const double d = median(dense), sp = median(sparse), ix = median(indexer);
    std::printf("%8lld  %8.4f (%4.1f)  %8.4f (%4.1f)  %7.2fx  %9.4f  %9.4f\n", static_cast<long long>(ctx), d, 1.0 / d, sp,
                1.0 / sp, d / sp, ix, sp - ix);
    std::fflush(stdout);
  }
  return 0;
}
