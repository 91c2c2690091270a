// Token selection on the worker: greedy, temperature, top-k, top-p (vLLM/HF rule: the token that
// crosses the threshold is kept), with per-request seeds. A seeded request's draw depends only on
// (seed, index of the token in its output), so it is reproducible across runs and batch mixes.
#pragma once

#include <cstdint>
#include <random>

#include <ATen/core/Tensor.h>

namespace vnp {

struct SamplingBatch {
  at::Tensor params;   // [N, 3] float32: temperature (0 = greedy), top_k (<= 0 = off), top_p
  at::Tensor seeds;    // [N] int64, -1 = unseeded
  at::Tensor offsets;  // [N] int64, index of the token being drawn within its request's output
};

class Sampler {
 public:
  explicit Sampler(uint64_t seed) : rng_(seed) {}

  // logits: [N, vocab] float32. Returns [N] int64 token ids.
  at::Tensor Sample(const at::Tensor& logits, const SamplingBatch& batch);

  // A uniform draw in [0, 1) that is a pure function of (seed, offset).
  static double SeededUniform(uint64_t seed, uint64_t offset);

 private:
  std::mt19937_64 rng_;
};

}  // namespace vnp
