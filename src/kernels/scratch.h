#pragma once
// Per-thread scratch memory for the kernels: 64-byte aligned, grown on demand, reused across
// calls, so that a kernel call allocates nothing in the steady state. Baseline code (no
// target attribute), callable from any kernel region.

#include <cstddef>

namespace dsv3::kernels {

// Slots let one thread hold several buffers at once: a matmul task's weight tile and
// accumulators, an attention task's scores while its matmuls take their own.
enum class ScratchSlot {
  WeightTile = 0,
  Accumulators = 1,
  Activations = 2,
  ScaledActivations = 3,
  AttentionScores = 4,
  Count = 5,
};

// At least n_floats floats, 64-byte aligned; contents unspecified. Valid until the same
// thread asks for the same slot again.
float* thread_scratch(ScratchSlot slot, size_t n_floats);

}  // namespace dsv3::kernels
