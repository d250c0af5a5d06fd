#pragma once
// The third part of an engine step: the logits of a forward pass become tokens. For every
// entry of the plan that samples, its sequence's sampler processes the last row (bias,
// penalties) and draws; the log probabilities asked for are computed from the same processed
// row. For a chunk of a scored prompt, each row scores the prompt token after it.
//
// The entries are independent (each sequence has its own sampler and generator), so they
// run in parallel on the model's thread pool, which is idle between forward steps: a draw at
// temperature > 0 passes over the whole vocabulary, and for 8 sequences on one thread that
// costs about a tenth of a decode step.

#include <vector>

#include "base/thread_pool.h"
#include "model/model.h"
#include "runtime/scheduler.h"

namespace dsv3 {

std::vector<StepOutput> sample_step(ThreadPool& pool, const StepPlan& plan, const ForwardOutput& out, int64_t vocab);

}  // namespace dsv3
