#include "kernels/ops.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/amx.h"
#include "kernels/dispatch.h"

namespace dsv3::kernels {
namespace {

// Number of equal chunks to split `total` units into: enough for every thread to get a few
// (dynamic scheduling evens out noise), none smaller than `min_chunk` units.
int64_t chunk_size(int64_t total, int threads, int64_t min_chunk, int64_t align) {
  int64_t target_tasks = static_cast<int64_t>(threads) * 8;
  int64_t c = (total + target_tasks - 1) / target_tasks;
  c = std::max(c, min_chunk);
  c = (c + align - 1) / align * align;
  return std::max<int64_t>(c, 1);
}

// Scratch buffer reused by a thread across calls.
std::vector<float>& scratch(size_t n) {
  thread_local std::vector<float> buf;
  if (buf.size() < n) buf.resize(n);
  return buf;
}

}  // namespace

void matmul(ThreadPool& pool, const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy) {
  if (n <= 0 || w.rows <= 0) return;
  if (amx_handles(w)) return amx_matmul(pool, w, x, n, ldx, y, ldy);  // opt-in, see amx.h
  const KernelTable& k = active_table();
  // Rows in multiples of 16 so that SIMD kernels see whole row groups; small tensors stay
  // in one task.
  int64_t chunk = chunk_size(w.rows, pool.size(), 16, 16);
  int64_t tasks = (w.rows + chunk - 1) / chunk;
  pool.parallel_for(tasks, [&](int64_t task) {
    int64_t r0 = task * chunk, r1 = std::min(w.rows, r0 + chunk);
    k.matmul_rows(w, x, n, ldx, y + r0, ldy, r0, r1);
  });
}

void matmul_transposed(ThreadPool& pool, const LinearWeight& w, const float* x, int64_t n, int64_t ldx, float* y,
                       int64_t ldy) {
  if (n <= 0 || w.cols <= 0) return;
  const KernelTable& k = active_table();
  int64_t chunk = chunk_size(w.cols, pool.size(), 64, 16);
  int64_t tasks = (w.cols + chunk - 1) / chunk;
  pool.parallel_for(tasks, [&](int64_t task) {
    int64_t c0 = task * chunk, c1 = std::min(w.cols, c0 + chunk);
    k.matmul_t_cols(w, x, n, ldx, y + c0, ldy, c0, c1);
  });
}

void matmul_batch(ThreadPool& pool, std::span<const MatmulJob> jobs) {
  if (jobs.empty()) return;
  const KernelTable& k = active_table();
  // Tasks: each job's rows (or columns, transposed) cut into parts of about equal cost,
  // about 4 tasks per thread in all, parts multiples of 16 like matmul's chunks. Cost of a
  // job ~ its weight bytes (decode streams them) plus its FMAs (prefill): the products of a
  // step differ a lot in size (an expert with 1 token, one with 60, the shared expert).
  // Tasks are handed out largest first; which thread runs a task changes no bits.
  struct Task {
    int32_t job;
    int64_t begin, end;
    double cost;
  };
  thread_local std::vector<Task> tasks;
  tasks.clear();
  auto cost_of = [](const MatmulJob& j) {
    return static_cast<double>(j.w.bytes()) + 0.5 * static_cast<double>(j.w.rows) * j.w.cols * j.n;
  };
  double total = 0;
  for (const MatmulJob& job : jobs)
    if (job.n > 0) total += cost_of(job);
  const double target = static_cast<double>(pool.size()) * 8;
  for (size_t j = 0; j < jobs.size(); ++j) {
    const MatmulJob& job = jobs[j];
    const int64_t units = job.transposed ? job.w.cols : job.w.rows;
    if (job.n <= 0 || units <= 0) continue;
    const double cost = cost_of(job);
    const int64_t pieces = std::clamp<int64_t>(std::llround(target * cost / total), 1, (units + 15) / 16);
    int64_t chunk = (units + pieces - 1) / pieces;
    chunk = (chunk + 15) / 16 * 16;
    for (int64_t b = 0; b < units; b += chunk) {
      const int64_t e = std::min(units, b + chunk);
      tasks.push_back({static_cast<int32_t>(j), b, e, cost * static_cast<double>(e - b) / static_cast<double>(units)});
    }
  }
  std::stable_sort(tasks.begin(), tasks.end(), [](const Task& a, const Task& b) { return a.cost > b.cost; });
  const std::vector<Task>& list = tasks;  // the thread_local of the calling thread
  pool.parallel_for(static_cast<int64_t>(list.size()), [&](int64_t i) {
    const Task& t = list[i];
    const MatmulJob& job = jobs[t.job];
    if (job.transposed) k.matmul_t_cols(job.w, job.x, job.n, job.ldx, job.y + t.begin, job.ldy, t.begin, t.end);
    else k.matmul_rows(job.w, job.x, job.n, job.ldx, job.y + t.begin, job.ldy, t.begin, t.end);
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

void softmax(float* x, int64_t n) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  if (!std::isfinite(mx)) {  // all -inf (or NaN): leave a uniform distribution, never NaN
    for (int64_t i = 0; i < n; ++i) x[i] = 1.0f / static_cast<float>(n);
    return;
  }
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void mla_attention(ThreadPool& pool, const MlaAttentionArgs& args) {
  mla_attention(pool, std::span<const MlaAttentionArgs>(&args, 1));
}

void mla_attention(ThreadPool& pool, std::span<const MlaAttentionArgs> sequences) {
  const KernelTable& k = active_table();
  // A task is one token of one sequence and a group of heads: every cache row is read once
  // per group (all heads of a token share the latent cache), so cache traffic falls by the
  // group size. Groups shrink when there are few tokens, to keep every thread busy. All the
  // sequences of a step share one parallel region (a batched decode: 8 sequences, 8 tasks of
  // 16 heads, each sequence's cache read once). Per (token, head) the arithmetic is the same
  // whatever the group or the other sequences: dot per cache row, softmax, axpy in row order.
  if (sequences.empty()) return;
  const int64_t n_heads = sequences[0].n_heads;
  // Sequence j's tokens are tokens [first_token[j], first_token[j + 1]) of the step.
  std::vector<int64_t> first_token(sequences.size() + 1, 0);
  for (size_t j = 0; j < sequences.size(); ++j) {
    DSV3_CHECK(sequences[j].n_heads == n_heads, "mla_attention: sequences with %lld and %lld heads",
               static_cast<long long>(n_heads), static_cast<long long>(sequences[j].n_heads));
    first_token[j + 1] = first_token[j] + sequences[j].n_tokens;
  }
  const int64_t total_tokens = first_token.back();
  const int64_t want_tasks = static_cast<int64_t>(pool.size()) * 4;
  const int64_t group = std::clamp<int64_t>(total_tokens * n_heads / std::max<int64_t>(want_tasks, 1), 1, 16);
  const int64_t n_groups = (n_heads + group - 1) / group;
  pool.parallel_for(total_tokens * n_groups, [&](int64_t task) {
    const int64_t token = task / n_groups, h0 = (task % n_groups) * group, h1 = std::min(n_heads, h0 + group);
    const size_t j = static_cast<size_t>(std::upper_bound(first_token.begin(), first_token.end(), token) -
                                         first_token.begin()) - 1;
    const MlaAttentionArgs& a = sequences[j];
    const int64_t t = token - first_token[j];
    const int64_t row = a.kv_lora_rank + a.rope_dim;
    const int64_t len = a.first_pos + t + 1;  // causal: rows [0, pos]
    std::vector<float>& scores = scratch(static_cast<size_t>((h1 - h0) * len));  // [heads of group, len]
    const float* q = a.q + t * a.n_heads * row;
    // score_s = (q_lat . c_s + q_pe . k_pe_s) * scale: one dot over the concatenated row.
    for (int64_t s = 0; s < len; ++s) {
      const float* c = a.cache + s * row;
      for (int64_t h = h0; h < h1; ++h) scores[(h - h0) * len + s] = k.dot(q + h * row, c, row) * a.scale;
    }
    for (int64_t h = h0; h < h1; ++h) softmax(scores.data() + (h - h0) * len, len);
    float* out = a.out + t * a.n_heads * a.kv_lora_rank;  // [n_heads, kv_lora_rank] of token t
    std::fill(out + h0 * a.kv_lora_rank, out + h1 * a.kv_lora_rank, 0.0f);
    for (int64_t s = 0; s < len; ++s) {
      const float* c = a.cache + s * row;
      for (int64_t h = h0; h < h1; ++h) k.axpy(scores[(h - h0) * len + s], c, out + h * a.kv_lora_rank, a.kv_lora_rank);
    }
  });
}

void mha_attention(ThreadPool& pool, const MhaAttentionArgs& a) {
  const KernelTable& k = active_table();
  pool.parallel_for(a.n_tokens * a.n_heads, [&](int64_t task) {
    const int64_t t = task / a.n_heads, h = task % a.n_heads;
    const int64_t len = a.first_pos + t + 1;
    const float* q = a.q + (t * a.n_heads + h) * a.qk_dim;
    std::vector<float>& scores = scratch(static_cast<size_t>(len));
    for (int64_t s = 0; s < len; ++s) scores[s] = k.dot(q, a.k + (s * a.n_heads + h) * a.qk_dim, a.qk_dim) * a.scale;
    softmax(scores.data(), len);
    float* out = a.out + (t * a.n_heads + h) * a.v_dim;
    std::fill(out, out + a.v_dim, 0.0f);
    for (int64_t s = 0; s < len; ++s) k.axpy(scores[s], a.v + (s * a.n_heads + h) * a.v_dim, out, a.v_dim);
  });
}

}  // namespace dsv3::kernels
