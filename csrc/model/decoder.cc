#include "model/decoder.h"

#include <cmath>

#include <ATen/ATen.h>

#include "model/rms_norm.h"

namespace vnp {
namespace {

at::Tensor Linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  return b.defined() ? at::linear(x, w, b) : at::linear(x, w);
}

}  // namespace

Decoder::Decoder(ModelConfig config, DecoderWeights weights, int64_t max_positions)
    : config_(std::move(config)),
      weights_(std::move(weights)),
      rope_(config_.rope, config_.head_dim, max_positions) {}

at::Tensor Decoder::Attention(int64_t layer, const at::Tensor& x, const ForwardInput& in,
                              const std::pair<at::Tensor, at::Tensor>& rope, KvCache& kv) const {
  const LayerWeights& w = weights_.layers[layer];
  const int64_t T = x.size(0), D = config_.head_dim;
  at::Tensor q, k, v;
  if (w.qkv_proj.defined()) {  // fused_qkv: one matmul, then views of its column ranges
    const int64_t q_out = config_.num_heads * D, kv_out = config_.num_kv_heads * D;
    auto parts = Linear(x, w.qkv_proj, w.qkv_bias).split_with_sizes({q_out, kv_out, kv_out}, 1);
    q = parts[0], k = parts[1], v = parts[2];
  } else {
    q = Linear(x, w.q_proj, w.q_bias), k = Linear(x, w.k_proj, w.k_bias);
    v = Linear(x, w.v_proj, w.v_bias);
  }
  q = q.view({T, config_.num_heads, D});
  k = k.view({T, config_.num_kv_heads, D});
  v = v.view({T, config_.num_kv_heads, D});
  q = rope_.Apply(q, rope.first, rope.second);
  k = rope_.Apply(k, rope.first, rope.second);
  kv.Write(layer, in.slots, k, v);
  at::Tensor o = PagedAttention(q, kv.keys(layer), kv.values(layer), in.attention,
                                1.0 / std::sqrt(static_cast<double>(D)));
  return Linear(o.reshape({T, config_.num_heads * D}), w.o_proj, w.o_bias);
}

at::Tensor Decoder::Mlp(const LayerWeights& w, const at::Tensor& x) const {
  at::Tensor gate = at::silu(Linear(x, w.gate_proj, w.gate_bias));
  return Linear(gate * Linear(x, w.up_proj, w.up_bias), w.down_proj, w.down_bias);
}

at::Tensor Decoder::Forward(const ForwardInput& in, KvCache& kv) const {
  at::Tensor h = at::embedding(weights_.embed_tokens, in.token_ids);
  auto rope = rope_.Tables(in.positions, h.scalar_type());
  for (int64_t i = 0; i < config_.num_layers; ++i) {
    const LayerWeights& w = weights_.layers[i];
    h = h + Attention(i, RmsNorm(h, w.input_norm, config_.rms_norm_eps), in, rope, kv);
    h = h + Mlp(w, RmsNorm(h, w.post_attention_norm, config_.rms_norm_eps));
  }
  at::Tensor last = h.index_select(0, in.logits_rows);
  last = RmsNorm(last, weights_.final_norm, config_.rms_norm_eps);
  return at::linear(last, weights_.lm_head).to(at::kFloat);
}

}  // namespace vnp
