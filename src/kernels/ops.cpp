#include "kernels/ops.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/amx.h"
#include "kernels/dispatch.h"
#include "kernels/matmul_math.h"
#include "kernels/product_profile.h"
#include "kernels/scratch.h"

namespace dsv3::kernels {
namespace {

// Tasks per thread for a product with up to n_tokens tokens: 8, enough for dynamic
// scheduling to even out noise; 32 for one-token products (decode of one sequence), whose
// parallel regions end with one thread waiting for the other's last task: smaller tasks
// shorten that wait (perf, int4-experts decode, 2 threads: the pool's waiting fell from
// 5.5-5.8% to 3.7-4.2% of the integer kernels' samples), and each thread's contiguous share
// of them (ThreadPool::parallel_for_ranges) keeps its loads streaming across task
// boundaries. (Batched decode kept 8: at 4 sequences, 32 ran 2-14% slower in four
// alternated rounds, each FP8 task preparing its own scaled activations.)
int64_t tasks_per_thread(int64_t n_tokens) { return n_tokens == 1 ? 32 : 8; }

// Rows per task, for a product of n_tokens tokens on rows of row_bytes: multiples of 16 so
// that SIMD kernels see whole row groups, and for one-token products multiples of 48 (the
// one-token kernels' steps: 6 int rows, 8 FP8 rows; a chunk of 32 left 2 rows to a
// one-row step) of at least 64 KB (a task also looks up the quantized activations, and
// starts its streams: kernel_bench's int4 expert product in 44 tasks of 32 rows read 28-33
// GB/s against 40-48 in 48-row multiples of 64 KB and more).
int64_t row_align(int64_t n_tokens) { return n_tokens == 1 ? 48 : 16; }
int64_t min_task_rows(int64_t n_tokens, int64_t row_bytes) {
  if (n_tokens != 1) return 16;
  constexpr int64_t kMinTaskBytes = int64_t{64} << 10;
  return std::max<int64_t>(16, (kMinTaskBytes + row_bytes - 1) / std::max<int64_t>(row_bytes, 1));
}

// A chunk of at least `c` and `min_chunk` units, rounded up to a multiple of `align`.
int64_t fit_chunk(int64_t c, int64_t min_chunk, int64_t align) {
  c = std::max(c, min_chunk);
  return std::max<int64_t>((c + align - 1) / align * align, 1);
}

// Chunk size to split `total` units into about threads * per_thread equal chunks, none
// smaller than `min_chunk` units, multiples of `align`.
int64_t chunk_size(int64_t total, int threads, int64_t min_chunk, int64_t align, int64_t per_thread) {
  const int64_t target_tasks = static_cast<int64_t>(threads) * per_thread;
  return fit_chunk((total + target_tasks - 1) / target_tasks, min_chunk, align);
}

}  // namespace

void matmul(ThreadPool& pool, const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy) {
  if (n <= 0 || w.rows <= 0) return;
  if (amx_handles(w)) return amx_matmul(pool, w, x, n, ldx, y, ldy);  // opt-in, see amx.h (not profiled)
  ProductRegion region(static_cast<int64_t>(w.bytes()), pool.size());
  const MatmulRowsFn rows = matmul_rows_for(active_table(), w);  // the table's, or bf16 (matmul_math.h)
  // Small tensors stay in one task.
  int64_t chunk = chunk_size(w.rows, pool.size(), min_task_rows(n, w.row_bytes()), row_align(n), tasks_per_thread(n));
  int64_t tasks = (w.rows + chunk - 1) / chunk;
  pool.parallel_for_ranges(tasks, [&](int64_t task) {
    ProductRegion::Task timed(region);
    int64_t r0 = task * chunk, r1 = std::min(w.rows, r0 + chunk);
    rows(w, x, n, ldx, y + r0, ldy, r0, r1);
  });
}

void matmul_transposed(ThreadPool& pool, const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y,
                       int64_t ldy) {
  if (n <= 0 || w.cols <= 0) return;
  ProductRegion region(static_cast<int64_t>(w.bytes()), pool.size());
  const KernelTable& k = active_table();
  int64_t chunk = chunk_size(w.cols, pool.size(), 64, 16, 8);  // column strips: see matmul_batch
  int64_t tasks = (w.cols + chunk - 1) / chunk;
  pool.parallel_for_ranges(tasks, [&](int64_t task) {
    ProductRegion::Task timed(region);
    int64_t c0 = task * chunk, c1 = std::min(w.cols, c0 + chunk);
    k.matmul_t_cols(w, x, n, ldx, y + c0, ldy, c0, c1);
  });
}

void matmul_batch(ThreadPool& pool, std::span<const MatmulJob> jobs) {
  if (jobs.empty()) return;
  const KernelTable& k = active_table();
  // Tasks: each job's rows (or columns, transposed) cut into parts of about equal cost,
  // tasks_per_thread in all, in matmul's row multiples (row_align, min_task_rows) or
  // multiples of 16 columns; transposed jobs 8 per thread at most (finer, their tasks would
  // read ever narrower strips of each row: FP8 decode's W_UK products took 1.5x the time in
  // 128-column strips). Cost of a job ~ its weight bytes (decode streams them) plus its FMAs
  // (prefill): the products of a step differ a lot in size (an expert with 1 token, one with
  // 60, the shared expert).
  // Tasks stay in job and row order, and each thread runs its own contiguous share of them
  // (ThreadPool::parallel_for_ranges), so that its row chunks follow each other in memory;
  // which thread runs a task changes no bits.
  struct Task {
    int32_t job;
    int64_t begin, end;
  };
  thread_local std::vector<Task> tasks;
  tasks.clear();
  auto cost_of = [](const MatmulJob& j) {
    return static_cast<double>(j.w.bytes()) + 0.5 * static_cast<double>(j.w.rows) * j.w.cols * j.n;
  };
  double total = 0;
  for (const MatmulJob& job : jobs)
    if (job.n > 0) total += cost_of(job);
  int64_t most_tokens = 0;
  for (const MatmulJob& job : jobs) most_tokens = std::max(most_tokens, job.n);
  for (size_t j = 0; j < jobs.size(); ++j) {
    const MatmulJob& job = jobs[j];
    const int64_t units = job.transposed ? job.w.cols : job.w.rows;
    if (job.n <= 0 || units <= 0) continue;
    const double cost = cost_of(job);
    const double target = static_cast<double>(pool.size() * (job.transposed ? 8 : tasks_per_thread(most_tokens)));
    const int64_t pieces = std::clamp<int64_t>(std::llround(target * cost / total), 1, (units + 15) / 16);
    const int64_t even = (units + pieces - 1) / pieces;
    const int64_t chunk = job.transposed ? fit_chunk(even, 16, 16)
                                         : fit_chunk(even, min_task_rows(most_tokens, job.w.row_bytes()),
                                                     row_align(most_tokens));
    for (int64_t b = 0; b < units; b += chunk) {
      const int64_t e = std::min(units, b + chunk);
      tasks.push_back({static_cast<int32_t>(j), b, e});
    }
  }
  const std::vector<Task>& list = tasks;  // the thread_local of the calling thread
  int64_t weight_bytes = 0;  // for the profile only
  if (product_profile_on())
    for (const MatmulJob& job : jobs)
      if (job.n > 0) weight_bytes += static_cast<int64_t>(job.w.bytes());
  ProductRegion region(weight_bytes, pool.size());
  pool.parallel_for_ranges(static_cast<int64_t>(list.size()), [&](int64_t i) {
    ProductRegion::Task timed(region);
    const Task& t = list[i];
    const MatmulJob& job = jobs[t.job];
    if (job.transposed) k.matmul_t_cols(job.w, job.x, job.n, job.ldx, job.y + t.begin, job.ldy, t.begin, t.end);
    else matmul_rows_for(k, job.w)(job.w, job.x, job.n, job.ldx, job.y + t.begin, job.ldy, t.begin, t.end);
  });
}

void rms_norm(ThreadPool& pool, const float* x, const float* weight, int64_t n, int64_t dim, float eps, float* y,
              int64_t ldx, int64_t ldy) {
  const KernelTable& k = active_table();
  auto one = [&](int64_t t) { k.rms_norm_row(x + t * ldx, weight, dim, eps, y + t * ldy); };
  if (n * dim < (1 << 15)) {
    for (int64_t t = 0; t < n; ++t) one(t);
  } else {
    pool.parallel_for(n, one);
  }
}

void silu_mul(ThreadPool& pool, float* gate, const float* up, int64_t n) {
  const KernelTable& k = active_table();
  constexpr int64_t kChunk = 1 << 14;
  int64_t tasks = (n + kChunk - 1) / kChunk;
  pool.parallel_for(tasks, [&](int64_t task) {
    int64_t i0 = task * kChunk, i1 = std::min(n, i0 + kChunk);
    k.silu_mul(gate + i0, up + i0, i1 - i0);
  });
}

void exp_affine(const float* x, int64_t n, float shift, float scale, float* y) {
  active_table().exp_affine(x, n, shift, scale, y);
}

namespace {
// softmax(scale * x) in place, scale > 0: e^((x - max) * scale) on the kernel table, summed
// in double.
void softmax_scaled(const KernelTable& k, float* x, int64_t n, float scale) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  if (!std::isfinite(mx)) {  // all -inf (or NaN): leave a uniform distribution, never NaN
    for (int64_t i = 0; i < n; ++i) x[i] = 1.0f / static_cast<float>(n);
    return;
  }
  k.exp_affine(x, n, mx, scale, x);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

// `rows` x `cols` floats at `data` as the F32 weight of a product.
LinearWeight f32_rows(const float* data, int64_t rows, int64_t cols) {
  LinearWeight w;
  w.dtype = DType::F32;
  w.rows = rows;
  w.cols = cols;
  w.data = data;
  return w;
}

// Rows [0, len) of a sequence's latent cache as the F32 weight of a product.
LinearWeight cache_rows(const MlaAttentionArgs& a, int64_t len) {
  return f32_rows(a.cache, len, a.kv_lora_rank + a.rope_dim);
}

// Attention of nx query rows (row stride ldq) over the keys' rows as two matrix products:
//   scores [nx, rows] = q x keys^T; query row x's softmax over its first len_of(x) rows
//   out [nx, value_cols] = scores x values[:, :value_cols]      (row stride ldo)
// The products run over all the keys' rows (the block's last token's); an earlier token's
// scores past its own position are computed and dropped, its probabilities there are 0, and
// adding fma(v, 0, acc) = acc leaves its output's bits as they are (the rows hold finite
// values). So per query row the arithmetic is the same whatever the other rows of the block.
template <class LenOf>
void attend_rows(const KernelTable& k, const LinearWeight& keys, const LinearWeight& values, int64_t value_cols,
                 const float* q, int64_t nx, int64_t ldq, float scale, LenOf len_of, float* out, int64_t ldo) {
  const int64_t rows = keys.rows;
  float* scores = thread_scratch(ScratchSlot::AttentionScores, static_cast<size_t>(nx * rows));
  k.matmul_rows(keys, q, nx, ldq, scores, rows, 0, rows);
  for (int64_t x = 0; x < nx; ++x) {
    const int64_t len = len_of(x);
    softmax_scaled(k, scores + x * rows, len, scale);
    std::fill(scores + x * rows + len, scores + (x + 1) * rows, 0.0f);
  }
  k.matmul_t_cols(values, scores, nx, rows, out, ldo, 0, value_cols);
}

// Few tokens (fewer than threads) over long caches: a task per token and head group would
// split the heads, and each group would read the whole cache again (a single decode on 2
// threads: 2 groups, the cache read 4 times per layer). Instead every token's heads go
// together, in three parallel regions:
//   scores over row ranges of the cache        (matmul_rows, rows [r0, r1))
//   softmax per (token, head)
//   out over column ranges of the latent part  (matmul_t_cols, columns [c0, c1))
// so that the cache is read about once for the scores and once for the output. The same bits
// as the grouped path: neither product depends on the row or column range, nor on how many
// heads go together (kernel_table.h).
constexpr int64_t kSplitRowsPerTask = 256;
constexpr int64_t kSplitColsPerTask = 128;

void mla_attention_split(ThreadPool& pool, const KernelTable& k, std::span<const MlaAttentionArgs> sequences) {
  const int64_t n_heads = sequences[0].n_heads;
  struct TokenJob {
    const MlaAttentionArgs* a;
    int64_t t, len;
    size_t scores;  // offset of its [n_heads, len] scores in score_base
  };
  std::vector<TokenJob> tokens;
  size_t score_floats = 0;
  for (const MlaAttentionArgs& a : sequences)
    for (int64_t t = 0; t < a.n_tokens; ++t) {
      const int64_t len = a.first_pos + t + 1;
      tokens.push_back({&a, t, len, score_floats});
      score_floats += static_cast<size_t>(n_heads * len);
    }
  // The calling thread's scratch: the tasks, whichever thread runs them, get its address.
  float* const score_base = thread_scratch(ScratchSlot::AttentionScores, score_floats);
  auto scores_of = [score_base](const TokenJob& tj) { return score_base + tj.scores; };
  // (token, first row) of every scores task, then (token, first column) of every output task.
  std::vector<std::pair<size_t, int64_t>> tasks;
  for (size_t i = 0; i < tokens.size(); ++i)
    for (int64_t r0 = 0; r0 < tokens[i].len; r0 += kSplitRowsPerTask) tasks.emplace_back(i, r0);
  pool.parallel_for(static_cast<int64_t>(tasks.size()), [&](int64_t task) {
    const auto [i, r0] = tasks[static_cast<size_t>(task)];
    const TokenJob& tj = tokens[i];
    const MlaAttentionArgs& a = *tj.a;
    const int64_t row = a.kv_lora_rank + a.rope_dim, r1 = std::min(tj.len, r0 + kSplitRowsPerTask);
    k.matmul_rows(cache_rows(a, tj.len), a.q + tj.t * n_heads * row, n_heads, row, scores_of(tj) + r0, tj.len, r0, r1);
  });
  pool.parallel_for(static_cast<int64_t>(tokens.size()) * n_heads, [&](int64_t task) {
    const TokenJob& tj = tokens[static_cast<size_t>(task / n_heads)];
    softmax_scaled(k, scores_of(tj) + (task % n_heads) * tj.len, tj.len, tj.a->scale);
  });
  tasks.clear();
  for (size_t i = 0; i < tokens.size(); ++i)
    for (int64_t c0 = 0; c0 < tokens[i].a->kv_lora_rank; c0 += kSplitColsPerTask) tasks.emplace_back(i, c0);
  pool.parallel_for(static_cast<int64_t>(tasks.size()), [&](int64_t task) {
    const auto [i, c0] = tasks[static_cast<size_t>(task)];
    const TokenJob& tj = tokens[i];
    const MlaAttentionArgs& a = *tj.a;
    const int64_t c1 = std::min(a.kv_lora_rank, c0 + kSplitColsPerTask);
    float* out = a.out + tj.t * n_heads * a.kv_lora_rank;  // [n_heads, kv_lora_rank] of token t
    k.matmul_t_cols(cache_rows(a, tj.len), scores_of(tj), n_heads, tj.len, out + c0, a.kv_lora_rank, c0, c1);
  });
}

// Attention's scores per task ([query rows, cache rows], per thread and kept for the next
// call) stay under this many floats (16 MB): blocks of tokens or heads shrink to fit.
constexpr int64_t kScoreFloats = int64_t{1} << 22;

}  // namespace

void softmax(float* x, int64_t n) { softmax_scaled(active_table(), x, n, 1.0f); }

void mla_attention(ThreadPool& pool, const MlaAttentionArgs& args) {
  mla_attention(pool, std::span<const MlaAttentionArgs>(&args, 1));
}

void mla_attention(ThreadPool& pool, std::span<const MlaAttentionArgs> sequences) {
  const KernelTable& k = active_table();
  // A task is a group of heads of one token (or of a block of consecutive tokens) of one
  // sequence. All heads of a token share the latent cache, so a group's attention is two
  // matrix products with the cache rows as the weight (F32, [len, kv_lora_rank + rope_dim]):
  //   scores [group, len]          = queries [group, row] x cache^T    (matmul_rows)
  //   out    [group, kv_lora_rank] = softmax(scores) x cache[:, :rank] (matmul_t_cols)
  // each cache row read once per group and register-blocked over the group's heads (at 2K
  // tokens of context, dot and axpy per row and head made attention 40% of a decode step).
  // Groups shrink when there are few tokens, to keep every thread busy. All the sequences of
  // a step share one parallel region (a batched decode: 8 sequences, 8 tasks of 16 heads,
  // each sequence's cache read once). Per (token, head) the arithmetic is the same whatever
  // the group, the block or the other sequences: both products' reduction orders depend on
  // neither the number of rows of x nor its neighbours (kernel_table.h).
  if (sequences.empty()) return;
  const int64_t n_heads = sequences[0].n_heads;
  int64_t total_tokens = 0, longest = 0;
  for (const MlaAttentionArgs& a : sequences) {
    DSV3_CHECK(a.n_heads == n_heads, "mla_attention: sequences with %lld and %lld heads",
               static_cast<long long>(n_heads), static_cast<long long>(a.n_heads));
    total_tokens += a.n_tokens;
    longest = std::max(longest, a.first_pos + a.n_tokens);
  }
  if (total_tokens < pool.size() && longest >= kSplitRowsPerTask) return mla_attention_split(pool, k, sequences);
  // Many tokens (prefill): every head of a token in one task, and up to kBlockRows / n_heads
  // consecutive tokens of a sequence together, so that the cache rows are read once per
  // block instead of once per token and head group (attend_rows: the block's products run
  // over the rows of its last token). A task's scores stay under kScoreFloats: at 128K
  // tokens of context a 128-head model goes 32 heads at a time, a 16-head one 2 tokens.
  constexpr int64_t kBlockRows = 128;  // query rows (token x head) per block: 8 tokens of 16 heads
  const int threads = std::max(pool.size(), 1);
  const bool many = total_tokens >= 4 * threads;
  const int64_t group = many ? std::clamp<int64_t>(kScoreFloats / longest, std::min<int64_t>(n_heads, 16), n_heads)
                             : std::clamp<int64_t>(total_tokens * n_heads / threads, 1, 16);
  const int64_t n_groups = (n_heads + group - 1) / group;
  const int64_t block =
      group == n_heads ? std::max<int64_t>(1, std::min(kBlockRows, kScoreFloats / longest) / n_heads) : 1;
  struct Task {
    size_t seq;
    int64_t t0, t1, h0, h1;
  };
  std::vector<Task> tasks;
  for (size_t j = 0; j < sequences.size(); ++j)
    for (int64_t t0 = 0; t0 < sequences[j].n_tokens; t0 += block)
      for (int64_t g = 0; g < n_groups; ++g)
        tasks.push_back({j, t0, std::min(sequences[j].n_tokens, t0 + block), g * group,
                         std::min(n_heads, (g + 1) * group)});
  pool.parallel_for(static_cast<int64_t>(tasks.size()), [&](int64_t i) {
    const Task& task = tasks[static_cast<size_t>(i)];
    const MlaAttentionArgs& a = sequences[task.seq];
    const int64_t row = a.kv_lora_rank + a.rope_dim;
    const int64_t nh = task.h1 - task.h0, nx = (task.t1 - task.t0) * nh;  // x rows: (token, head)
    const int64_t rows = a.first_pos + task.t1;  // causal: the last token sees rows [0, pos]
    const LinearWeight cache = cache_rows(a, rows);
    // Token t, head h at x row (t - t0) * nh + (h - h0): heads contiguous, and tokens too when
    // the task has more than one (then nh = n_heads).
    const float* q = a.q + (task.t0 * n_heads + task.h0) * row;
    // score_s = (q_lat . c_s + q_pe . k_pe_s) * scale: the concatenated rows' product; the
    // values are the same rows' first kv_lora_rank columns.
    float* out = a.out + (task.t0 * n_heads + task.h0) * a.kv_lora_rank;
    attend_rows(k, cache, cache, a.kv_lora_rank, q, nx, row, a.scale,
                [&](int64_t x) { return a.first_pos + task.t0 + x / nh + 1; }, out, a.kv_lora_rank);
  });
}

void mha_attention(ThreadPool& pool, const MhaAttentionArgs& a) {
  const KernelTable& k = active_table();
  // A task is one head of a block of consecutive tokens: as in mla_attention, two matrix
  // products with the head's keys and values as the weight (attend_rows), each row read once
  // per block instead of a dot product and an axpy per (token, head, position). Per (token,
  // head) the arithmetic is the same whatever the block, so the result depends on neither
  // the number of tokens nor the thread count (kernel_table.h). Prefill in this form against
  // the absorbed one (Moonlight 8 layers, 2 threads, Zen 5, alternated): 512 tokens
  // 1.00-1.13x (median 1.02, 5 rounds), 2048 tokens 1.08-1.11x; the dot/axpy form read
  // 0.95-0.99x and 0.61-0.68x.
  // Tokens per block: 32, fewer where a block's scores would pass kScoreFloats.
  constexpr int64_t kBlockTokens = 32;
  const int64_t len_all = a.first_pos + a.n_tokens;
  const int64_t block = std::clamp<int64_t>(kScoreFloats / len_all, 1, kBlockTokens);
  const int64_t blocks = (a.n_tokens + block - 1) / block;
  pool.parallel_for(blocks * a.n_heads, [&](int64_t task) {
    const int64_t h = task % a.n_heads, t0 = task / a.n_heads * block;
    const int64_t t1 = std::min(a.n_tokens, t0 + block), rows = a.first_pos + t1;
    attend_rows(k, f32_rows(a.k + h * len_all * a.qk_dim, rows, a.qk_dim),
                f32_rows(a.v + h * len_all * a.v_dim, rows, a.v_dim), a.v_dim, a.q + (t0 * a.n_heads + h) * a.qk_dim,
                t1 - t0, a.n_heads * a.qk_dim, a.scale, [&](int64_t i) { return a.first_pos + t0 + i + 1; },
                a.out + (t0 * a.n_heads + h) * a.v_dim, a.n_heads * a.v_dim);
  });
}

}  // namespace dsv3::kernels
