#pragma once
// Deterministic random tensor values for make-random checkpoints. Every value is a pure
// function of (seed, tensor, row, column): the stream of each row is seeded from a hash of
// the global seed, the tensor's name and the row index, so the result does not depend on
// threading or on how rows are grouped, and a test can redraw any row to check what a
// checkpoint stores.
//
// Distributions follow the reference harness (tools/reference/make_ckpt.py): projections
// N(0, 1/in) times a log-normal magnitude per 128x128 block (so FP8 block scales matter),
// norms 1 + 0.1 N, embeddings N(0, 1), other matrices N(0, 1/in), router bias 0.1 N. Normal
// variates are approximated by a sum of four uniforms (Irwin-Hall), fast enough for
// multi-GB checkpoints.

#include <cstdint>
#include <string>
#include <vector>

namespace dsv3 {

enum class RandomKind { Projection, Matrix, Embedding, Norm, Bias };

struct RandomTensor {
  std::string seed_name;  // name the stream is keyed on (a shared tensor uses its original)
  int64_t rows = 1, cols = 1;
  RandomKind kind = RandomKind::Matrix;
};

// Fills out[(r - r0) * cols + c] for rows [r0, r1).
void draw_random_rows(const RandomTensor& t, uint64_t seed, int64_t r0, int64_t r1, float* out);

uint64_t hash_name(const std::string& s);

}  // namespace dsv3
