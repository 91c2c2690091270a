// Mixture-of-experts block (Mixtral, Qwen3-MoE): a softmax router picks top_k experts per
// token; each expert is a SwiGLU MLP; outputs are summed, weighted by the (optionally
// renormalised) router affinities. No token is dropped unless a capacity is given (NxDI's
// capacity_factor), and then only as NxDI drops them: per context-encoding row, in token order.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "config/model_config.h"

namespace vnp {

struct MoeWeights {
  at::Tensor router;   // [E, H]
  at::Tensor gate_up;  // [E, 2I, H]: rows [0, I) the gate projection, [I, 2I) the up projection
  at::Tensor down;     // [E, H, I]
};

// Tokens [start, start + length) form one context-encoding row whose experts each take at most
// `capacity` of its tokens; later tokens routed to a full expert lose that expert.
struct CapacitySpan {
  int64_t start = 0;
  int64_t length = 0;
  int64_t capacity = 0;
};

// NxDI's expert capacity for a context-encoding bucket of `tokens` tokens:
// min(ceil(tokens * top_k * capacity_factor / E), tokens); -1 (no limit) when
// capacity_factor >= E / top_k.
int64_t ExpertCapacity(const MoeConfig& config, double capacity_factor, int64_t tokens);

struct MoeRouting {
  at::Tensor experts;  // [T, top_k] int64, by falling affinity
  at::Tensor weights;  // [T, top_k] fp32, or the activation dtype where the model says so
  at::Tensor kept;     // [T, top_k] bool: false where a capacity dropped the assignment
};

MoeRouting RouteTokens(const MoeConfig& config, const at::Tensor& router, const at::Tensor& x,
                       const std::vector<CapacitySpan>& capacity = {});

// x: [T, H] → [T, H] in x's dtype.
at::Tensor MoeForward(const MoeConfig& config, const MoeWeights& w, const at::Tensor& x,
                      const std::vector<CapacitySpan>& capacity = {});

// The experts alone, for given routing (HF's `experts(hidden, top_k_index, top_k_weights)`).
at::Tensor RunExperts(const MoeWeights& w, const at::Tensor& x, const MoeRouting& routing);

}  // namespace vnp
