#include "model/moe.h"

#include <cmath>

#include <ATen/ATen.h>

#include "kernels/linear.h"

namespace vnp {

int64_t ExpertCapacity(const MoeConfig& c, double capacity_factor, int64_t tokens) {
  if (capacity_factor >= static_cast<double>(c.num_experts) / c.top_k) return -1;
  const double want = std::ceil(tokens * c.top_k * capacity_factor / c.num_experts);
  return std::min(static_cast<int64_t>(want), tokens);
}

MoeRouting RouteTokens(const MoeConfig& c, const at::Tensor& router, const at::Tensor& x,
                       const std::vector<CapacitySpan>& capacity) {
  at::Tensor logits = at::linear(x, router);
  at::Tensor probs = at::softmax(logits.to(at::kFloat), -1);
  auto [top, experts] = at::topk(probs, c.top_k, -1);
  at::Tensor kept = at::ones_like(experts, at::kBool);
  for (const CapacitySpan& span : capacity) {
    if (span.capacity < 0 || span.length == 0) continue;
    // 1-based position of each token in each expert's queue, counted in token order.
    at::Tensor chosen = experts.narrow(0, span.start, span.length);
    at::Tensor one_hot = at::one_hot(chosen, c.num_experts).sum(1);  // [L, E]
    at::Tensor position = one_hot.cumsum(0).gather(1, chosen);       // [L, k]
    kept.narrow(0, span.start, span.length).copy_(position.le(span.capacity));
  }
  top = top * kept;
  if (c.normalize_top_k) {
    // NxDI normalises over the kept experts (F.normalize, p = 1); with nothing dropped this is
    // HF's top / top.sum().
    top = top / top.sum(-1, /*keepdim=*/true).clamp_min(1e-12);
  }
  if (c.affinities_in_activation_dtype) top = top.to(x.scalar_type());
  return {experts, top, kept};
}

at::Tensor RunExperts(const MoeWeights& w, const at::Tensor& x, const MoeRouting& r) {
  at::Tensor out = at::zeros_like(x);
  const int64_t E = w.gate_up.size(0), I = w.down.size(2);
  // One pass per expert that has tokens, over exactly those tokens (HF's loop; a token meets an
  // expert at most once, so the per-token sum runs in expert order as in HF).
  at::Tensor hits = at::bincount(r.experts.masked_select(r.kept), {}, E).to(at::kCPU);
  for (int64_t e = 0; e < E; ++e) {
    if (hits.data_ptr<int64_t>()[e] == 0) continue;
    at::Tensor where = r.experts.eq(e).logical_and(r.kept).nonzero();  // [n, 2]: token, slot
    at::Tensor tokens = where.select(1, 0), slots = where.select(1, 1);
    at::Tensor gate_up = Linear(x.index_select(0, tokens), w.gate_up[e]);
    at::Tensor h = at::silu(gate_up.narrow(1, 0, I)) * gate_up.narrow(1, I, I);
    h = Linear(h, w.down[e]);
    at::Tensor weight = r.weights.index({tokens, slots}).unsqueeze(1);
    out.index_add_(0, tokens, (h * weight).to(x.scalar_type()));
  }
  return out;
}

at::Tensor MoeForward(const MoeConfig& c, const MoeWeights& w, const at::Tensor& x,
                      const std::vector<CapacitySpan>& capacity) {
  return RunExperts(w, x, RouteTokens(c, w.router, x, capacity));
}

}  // namespace vnp
