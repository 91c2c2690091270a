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

inline constexpr float kGreedyBelow = 1e-5f;  // vLLM treats temperatures under this as greedy

// The distribution a sampled row draws from (vLLM's rule: temperature, then top-k, then top-p
// keeping the crossing token): the kept token ids by falling probability (in vocabulary order
// when nothing is cut) and their cumulative probabilities, unnormalised (the kept mass is
// cum[keep - 1]).
struct Filtered {
  at::Tensor ids;  // [k] int64
  at::Tensor cum;  // [k] float64
  int64_t keep;    // tokens kept, <= k
};
Filtered FilterLogits(const at::Tensor& logits, float temperature, int64_t top_k, float top_p);
// An inverse-CDF draw (u in [0, 1)) from `f`, with token `without` taken out and the rest
// renormalised (the residual of rejection sampling against a point proposal); -1 = none out.
int64_t SampleFiltered(const Filtered& f, double u, int64_t without = -1);

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

  // Verification of draft tokens (speculative decoding). Row r's logits are rows
  // [starts[r], starts[r] + n_r + 1) of `logits` [N, vocab] float32: the target after the
  // row's last accepted token and after each of its n_r drafts (draft_lens[r], drafts [R, k]).
  // Greedy rows keep the drafts up to the first that differs from the target's argmax, then the
  // target's token there (NxDI's prefix match). Sampled rows use speculative rejection sampling
  // against a point proposal (n-gram drafts and our greedy draft model are points): draft d is
  // kept with probability p(d); at the first rejection a token is drawn from p with d removed;
  // so each emitted token follows the target's distribution, whatever the draft. All kept: a
  // bonus token from the last position. Returns [R, k + 1] int64, each row 1..n_r + 1 tokens
  // then -1. A seeded row's draws depend only on (seed, offset of the emitted token).
  at::Tensor Verify(const at::Tensor& logits, const std::vector<int64_t>& starts,
                    const std::vector<int64_t>& draft_lens, const at::Tensor& drafts,
                    const SamplingBatch& batch);

  // NxDI's algorithm for rows with vLLM parameters `params` [N, 3] (temperature, top_k, top_p),
  // mapped as vllm-neuron maps them when `dynamic`; uniform draws `u` [N] (ignored when
  // deterministic). Public so that tests can hold it to NxDI's worked examples.
  static at::Tensor SampleNxdi(const at::Tensor& logits, const at::Tensor& params,
                               const at::Tensor& u, const OnDeviceSampling& config);

  // A uniform draw in [0, 1) that is a pure function of (seed, offset).
  static double SeededUniform(uint64_t seed, uint64_t offset);

 private:
  at::Tensor Draws(const SamplingBatch& batch);
  // One uniform draw for row `seed` (-1 = unseeded) at `offset`; `stream` separates draws that
  // share an offset (acceptance vs. the residual draw of speculative verification).
  double Draw(int64_t seed, int64_t offset, uint64_t stream = 0);

  std::mt19937_64 rng_;
  std::optional<OnDeviceSampling> on_device_;
};

}  // namespace vnp
