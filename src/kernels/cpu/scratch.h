#pragma once
// Per-thread scratch memory for kernel tiles: 64-byte aligned, grown on demand, reused
// across calls, so a kernel call allocates nothing in the steady state. Baseline code
// (no target attribute), callable from any kernel region.

#include <cstddef>

namespace dsv3::kernels::cpu {

// Slots let one kernel hold several buffers at once (e.g. a weight tile and accumulators).
enum class ScratchSlot { WeightTile = 0, Accumulators = 1, Activations = 2, ScaledActivations = 3, Count = 4 };

// At least n_floats floats, 64-byte aligned; contents unspecified. Valid until the same
// thread asks for the same slot again.
float* thread_scratch(ScratchSlot slot, size_t n_floats);

}  // namespace dsv3::kernels::cpu
