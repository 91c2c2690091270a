// Token selection on the worker. Two modes:
// - vLLM's semantics (the default): greedy, temperature, top-k, top-p (vLLM/HF rule: the token
//   that crosses the threshold is kept). The rarer parameters run on the host (sampling.py).
// - NxDI's on-device sampler (on_device_sampling_config): a global top-k candidate pool,
//   per-row top-k, temperature, NxDI's top-p rule (the crossing token is dropped), an
//   inverse-CDF draw, or r = 0.5 when `deterministic` (nxdi-semantics §8).
// Per-request seeds in both: a seeded draw depends only on (seed, index of the token in its
// output), so it is reproducible across runs and batch mixes.
#pragma once

#include <cstdint>
#include <optional>
#include <random>

#include <ATen/core/Tensor.h>

#include "config/neuron_config.h"

namespace vnp {

struct SamplingBatch {
  at::Tensor params;   // [N, 3] float32: temperature (0 = greedy), top_k (<= 0 = off), top_p
  at::Tensor seeds;    // [N] int64, -1 = unseeded
  at::Tensor offsets;  // [N] int64, index of the token being drawn within its request's output
};

class Sampler {
 public:
  explicit Sampler(uint64_t seed, std::optional<OnDeviceSampling> on_device = std::nullopt)
      : rng_(seed), on_device_(on_device) {}

  // logits: [N, vocab] float32. Returns [N] int64 token ids.
  at::Tensor Sample(const at::Tensor& logits, const SamplingBatch& batch);

  // NxDI's algorithm for rows with vLLM parameters `params` [N, 3] (temperature, top_k, top_p),
  // mapped as vllm-neuron maps them when `dynamic`; uniform draws `u` [N] (ignored when
  // deterministic). Public so that tests can hold it to NxDI's worked examples.
  static at::Tensor SampleNxdi(const at::Tensor& logits, const at::Tensor& params,
                               const at::Tensor& u, const OnDeviceSampling& config);

  // A uniform draw in [0, 1) that is a pure function of (seed, offset).
  static double SeededUniform(uint64_t seed, uint64_t offset);

 private:
  at::Tensor Draws(const SamplingBatch& batch);

  std::mt19937_64 rng_;
  std::optional<OnDeviceSampling> on_device_;
};

}  // namespace vnp
