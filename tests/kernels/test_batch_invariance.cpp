// Batch invariance, bit for bit: y[t, r] must not depend on the number of tokens in the call,
// on the other tokens, on the row (or column) range a task got, or on the thread count.
// Reference: each token computed alone (n = 1) on one thread; every other arrangement must
// reproduce those bits exactly.

#include <numeric>

#include "base/thread_pool.h"
#include "kernel_test_util.h"
#include "kernels/ops.h"

using namespace dsv3;
using namespace dsv3::test;

namespace {

constexpr int64_t kBatch = 70;  // past 64 tokens: fused in chunks of 64 on AVX-512, tiled on AVX2

bool same_bits(const float* a, const float* b, int64_t n) { return std::memcmp(a, b, sizeof(float) * n) == 0; }

// The weights under test: an FP8 band starting inside a scale block with a partial last
// block, kv_a-like 576 rows, and BF16.
std::vector<TestWeight> weights_under_test() {
  std::vector<TestWeight> out;
  TestWeight band = make_weight(DType::F8_E4M3, 300, 2051, 11);
  band.view = band.view.row_band(5, 129);
  out.push_back(std::move(band));
  out.push_back(make_weight(DType::F8_E4M3, 576, 576, 12));
  out.push_back(make_weight(DType::BF16, 67, 2083, 13));
  return out;
}

class BatchInvariance : public testing::TestWithParam<NamedTable> {
 protected:
  void SetUp() override { kernels::set_active_table_for_testing(*GetParam().table); }
  void TearDown() override { (void)kernels::select_isa(kernels::best_isa()); }
};

std::string table_name(const testing::TestParamInfo<NamedTable>& p) { return p.param.name; }

}  // namespace

TEST_P(BatchInvariance, MatmulRowsSameBitsWhateverTheBatch) {
  const kernels::KernelTable& k = *GetParam().table;
  for (const TestWeight& tw : weights_under_test()) {
    const LinearWeight& w = tw.view;
    const int64_t R = w.rows, K = w.cols;
    auto x = random_activations(kBatch * K, 21);
    // Reference: each token alone, one task over all rows.
    std::vector<float> alone(static_cast<size_t>(kBatch * R));
    for (int64_t t = 0; t < kBatch; ++t) k.matmul_rows(w, x.data() + t * K, 1, K, alone.data() + t * R, R, 0, R);

    // Token t at offset p inside batches of n random others.
    for (int64_t n : {2, 3, 4, 5, 6, 7, 8, 9, 37, 70}) {  // fused, in chunks of 8, of 64 (AVX2: tiled)
      auto others = random_activations(n * K, 1000 + n);
      for (int64_t t : {0, 7, 36}) {
        for (int64_t p : {int64_t{0}, n / 2, n - 1}) {
          std::vector<float> xb = others;
          std::copy(x.begin() + t * K, x.begin() + (t + 1) * K, xb.begin() + p * K);
          std::vector<float> y(static_cast<size_t>(n * R));
          k.matmul_rows(w, xb.data(), n, K, y.data(), R, 0, R);
          EXPECT_TRUE(same_bits(y.data() + p * R, alone.data() + t * R, R))
              << GetParam().name << " rows=" << R << " token " << t << " at " << p << " of n=" << n;
        }
      }
    }
    // Row ranges: the rows split into uneven slices, each its own call.
    for (int64_t cut : {int64_t{1}, int64_t{5}, R / 2, R - 3}) {
      if (cut <= 0 || cut >= R) continue;
      std::vector<float> y(static_cast<size_t>(kBatch * R));
      k.matmul_rows(w, x.data(), kBatch, K, y.data(), R, 0, cut);
      k.matmul_rows(w, x.data(), kBatch, K, y.data() + cut, R, cut, R);
      EXPECT_TRUE(same_bits(y.data(), alone.data(), kBatch * R)) << GetParam().name << " cut at " << cut;
    }
    // Through ops::matmul on 1..4 threads.
    for (int threads = 1; threads <= 4; ++threads) {
      ThreadPool pool(threads);
      for (int64_t n : {int64_t{1}, int64_t{3}, int64_t{37}, kBatch}) {
        std::vector<float> y(static_cast<size_t>(n * R));
        kernels::matmul(pool, w, x.data(), n, y.data());
        EXPECT_TRUE(same_bits(y.data(), alone.data(), n * R))
            << GetParam().name << " threads=" << threads << " n=" << n << " rows=" << R;
      }
    }
  }
}

// The latent cache as attention's F32 weight: whole vectors of columns are read in place, the
// rest through the tile; both the same bits.
TEST_P(BatchInvariance, MatmulTransposedF32InPlaceAndTiledSameBits) {
  const kernels::KernelTable& k = *GetParam().table;
  TestWeight tw = make_weight(DType::F32, 300, 576, 33);  // [cache rows, kv_lora_rank + rope]
  const LinearWeight& w = tw.view;
  const int64_t R = w.rows, C = 512;
  auto x = random_activations(16 * R, 34);  // 16 heads' probabilities
  std::vector<float> whole(static_cast<size_t>(16 * C)), cut(whole.size());
  k.matmul_t_cols(w, x.data(), 16, R, whole.data(), C, 0, C);  // in place (512 = 32 vectors)
  for (int64_t at : {int64_t{17}, int64_t{129}, int64_t{511}}) {
    std::fill(cut.begin(), cut.end(), NAN);
    k.matmul_t_cols(w, x.data(), 16, R, cut.data(), C, 0, at);  // not whole vectors: the tile
    k.matmul_t_cols(w, x.data(), 16, R, cut.data() + at, C, at, C);
    EXPECT_TRUE(same_bits(cut.data(), whole.data(), 16 * C)) << GetParam().name << " cut at " << at;
  }
}

TEST_P(BatchInvariance, MatmulTransposedSameBitsWhateverTheBatch) {
  const kernels::KernelTable& k = *GetParam().table;
  TestWeight tw = make_weight(DType::F8_E4M3, 256, 515, 31);
  const LinearWeight w = tw.view.row_band(3, 128);  // one head's W_UK, not block aligned
  const int64_t R = w.rows, C = w.cols;
  auto x = random_activations(kBatch * R, 32);
  std::vector<float> alone(static_cast<size_t>(kBatch * C));
  for (int64_t t = 0; t < kBatch; ++t) k.matmul_t_cols(w, x.data() + t * R, 1, R, alone.data() + t * C, C, 0, C);
  std::vector<float> y(static_cast<size_t>(kBatch * C));
  for (int64_t cut : {int64_t{1}, int64_t{17}, int64_t{256}, C - 2}) {
    k.matmul_t_cols(w, x.data(), kBatch, R, y.data(), C, 0, cut);
    k.matmul_t_cols(w, x.data(), kBatch, R, y.data() + cut, C, cut, C);
    EXPECT_TRUE(same_bits(y.data(), alone.data(), kBatch * C)) << GetParam().name << " cut at " << cut;
  }
  for (int threads = 1; threads <= 4; ++threads) {
    ThreadPool pool(threads);
    for (int64_t n : {int64_t{1}, int64_t{2}, int64_t{5}, kBatch}) {
      std::fill(y.begin(), y.end(), NAN);
      kernels::matmul_transposed(pool, w, x.data(), n, R, y.data(), C);
      EXPECT_TRUE(same_bits(y.data(), alone.data(), n * C)) << GetParam().name << " threads=" << threads << " n=" << n;
    }
  }
}

TEST_P(BatchInvariance, MatmulTransposedOneTokenAlignedSameBitsAsBatch) {
  // A head's W_UK in whole 128 x 128 blocks, as in the released checkpoints: one token takes
  // the direct path (accumulators in registers), a batch the tile; the same bits.
  const kernels::KernelTable& k = *GetParam().table;
  TestWeight tw = make_weight(DType::F8_E4M3, 512, 512, 35);
  const LinearWeight w = tw.view.row_band(128, 128);
  const int64_t R = w.rows, C = w.cols;
  auto x = random_activations(kBatch * R, 36);
  std::vector<float> batch(static_cast<size_t>(kBatch * C)), one(static_cast<size_t>(C));
  k.matmul_t_cols(w, x.data(), kBatch, R, batch.data(), C, 0, C);
  for (int64_t t = 0; t < kBatch; ++t) {
    std::fill(one.begin(), one.end(), NAN);
    k.matmul_t_cols(w, x.data() + t * R, 1, R, one.data(), C, 0, C);
    EXPECT_TRUE(same_bits(one.data(), batch.data() + t * C, C)) << GetParam().name << " token " << t;
  }
}

TEST_P(BatchInvariance, MlaAttentionSameBitsWhateverTheBatch) {
  // A sequence whose 37 new tokens follow 20 cached ones: token i computed inside the batch
  // equals token i computed alone at its position, on any thread count.
  const int64_t H = 16, R = 512, rope = 64, row = R + rope, first = 20, n = 21;
  auto cache = random_activations((first + n) * row, 41);
  auto q = random_activations(n * H * row, 42, 0.1f);
  kernels::MlaAttentionArgs a;
  a.n_heads = H;
  a.kv_lora_rank = R;
  a.rope_dim = rope;
  a.cache = cache.data();
  a.scale = 0.07f;
  std::vector<float> alone(static_cast<size_t>(n * H * R));
  {
    ThreadPool pool(1);
    for (int64_t i = 0; i < n; ++i) {
      a.n_tokens = 1;
      a.first_pos = first + i;
      a.q = q.data() + i * H * row;
      a.out = alone.data() + i * H * R;
      kernels::mla_attention(pool, a);
    }
  }
  for (int threads = 1; threads <= 4; ++threads) {
    ThreadPool pool(threads);
    std::vector<float> out(alone.size(), NAN);
    a.n_tokens = n;
    a.first_pos = first;
    a.q = q.data();
    a.out = out.data();
    kernels::mla_attention(pool, a);
    EXPECT_TRUE(same_bits(out.data(), alone.data(), n * H * R)) << GetParam().name << " threads=" << threads;
  }
}

TEST_P(BatchInvariance, MlaAttentionFewTokensLongCachesSameBits) {
  // Fewer tokens than threads over caches of 256+ rows take the split path (scores over row
  // ranges, output over column ranges, every head of a token together); one thread takes
  // the grouped path. Two sequences: 1 token after 3000 cached rows, 2 after 300 (enough
  // tasks that the pool's workers take some, not only the calling thread).
  const int64_t H = 16, R = 512, rope = 64, row = R + rope;
  struct Seq {
    int64_t first, n;
    std::vector<float> cache, q;
  };
  std::vector<Seq> seqs = {{3000, 1, {}, {}}, {300, 2, {}, {}}};
  uint32_t seed = 61;
  for (Seq& sq : seqs) {
    sq.cache = random_activations((sq.first + sq.n) * row, seed++);
    sq.q = random_activations(sq.n * H * row, seed++, 0.1f);
  }
  auto args_of = [&](Seq& sq, int64_t i, int64_t n, float* out) {
    kernels::MlaAttentionArgs a;
    a.n_heads = H;
    a.kv_lora_rank = R;
    a.rope_dim = rope;
    a.cache = sq.cache.data();
    a.scale = 0.07f;
    a.n_tokens = n;
    a.first_pos = sq.first + i;
    a.q = sq.q.data() + i * H * row;
    a.out = out;
    return a;
  };
  std::vector<std::vector<float>> alone;
  {
    ThreadPool pool(1);
    for (Seq& sq : seqs) {
      alone.emplace_back(static_cast<size_t>(sq.n * H * R));
      for (int64_t i = 0; i < sq.n; ++i) kernels::mla_attention(pool, args_of(sq, i, 1, alone.back().data() + i * H * R));
    }
  }
  for (int threads = 2; threads <= 4; ++threads) {
    ThreadPool pool(threads);
    std::vector<std::vector<float>> got;
    std::vector<kernels::MlaAttentionArgs> batch;
    for (Seq& sq : seqs) got.emplace_back(static_cast<size_t>(sq.n * H * R), NAN);
    // threads 2: the first sequence alone; 3 and 4: both sequences in one call.
    const size_t n_seqs = threads == 2 ? 1 : 2;
    for (size_t j = 0; j < n_seqs; ++j) batch.push_back(args_of(seqs[j], 0, seqs[j].n, got[j].data()));
    kernels::mla_attention(pool, batch);
    for (size_t j = 0; j < n_seqs; ++j)
      EXPECT_TRUE(same_bits(got[j].data(), alone[j].data(), static_cast<int64_t>(alone[j].size())))
          << GetParam().name << " threads=" << threads << " sequence " << j;
  }
}

TEST_P(BatchInvariance, MatmulBatchEqualsSingleCalls) {
  // MLA's per-head products: W_UK_h^T (transposed) and W_UV_h bands of one kv_b_proj-like
  // tensor [H * (nope + v), kv_lora], both as one batch, against one call per head.
  const int64_t H = 6, nope = 128, v = 128, R = 512;
  TestWeight kv_b = make_weight(DType::F8_E4M3, H * (nope + v), R, 51);
  for (int64_t n : {1, 3, 37}) {
    auto q_nope = random_activations(n * H * nope, 52);  // [n, H, nope]
    auto o_lat = random_activations(n * H * R, 53);      // [n, H, R]
    std::vector<float> want_abs(static_cast<size_t>(n * H * R)), want_o(static_cast<size_t>(n * H * v));
    std::vector<kernels::MatmulJob> jobs;
    ThreadPool one(1);
    for (int64_t h = 0; h < H; ++h) {
      kernels::MatmulJob uk{kv_b.view.row_band(h * (nope + v), nope), q_nope.data() + h * nope, n, H * nope,
                            want_abs.data() + h * R, H * R, true};
      kernels::MatmulJob uv{kv_b.view.row_band(h * (nope + v) + nope, v), o_lat.data() + h * R, n, H * R,
                            want_o.data() + h * v, H * v, false};
      kernels::matmul_transposed(one, uk.w, uk.x, n, uk.ldx, uk.y, uk.ldy);
      kernels::matmul(one, uv.w, uv.x, n, uv.ldx, uv.y, uv.ldy);
      jobs.push_back(uk);
      jobs.push_back(uv);
    }
    for (int threads = 1; threads <= 4; ++threads) {
      ThreadPool pool(threads);
      std::vector<float> got_abs(want_abs.size(), NAN), got_o(want_o.size(), NAN);
      for (size_t j = 0; j < jobs.size(); ++j) {
        auto& job = jobs[j];
        const int64_t h = static_cast<int64_t>(j / 2);
        job.y = job.transposed ? got_abs.data() + h * R : got_o.data() + h * v;
      }
      kernels::matmul_batch(pool, jobs);
      EXPECT_TRUE(same_bits(got_abs.data(), want_abs.data(), n * H * R)) << GetParam().name << " threads=" << threads;
      EXPECT_TRUE(same_bits(got_o.data(), want_o.data(), n * H * v)) << GetParam().name << " threads=" << threads;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Tables, BatchInvariance, testing::ValuesIn(fast_tables()), table_name);
