#include "model/decoder.h"

#include <ATen/ATen.h>

#include "kernels/elementwise.h"
#include "kernels/linear.h"
#include "model/fused_decode.h"
#include "model/rms_norm.h"

namespace vnp {

Decoder::Decoder(ModelConfig config, DecoderWeights weights, int64_t max_positions)
    : config_(std::move(config)),
      weights_(std::move(weights)),
      rope_(config_.rope, config_.head_dim, max_positions),
      fused_decode_(FusedDecodeModelSupported(config_, weights_)) {}

at::Tensor Decoder::Embed(const at::Tensor& token_ids) const {
  at::Tensor h = at::embedding(weights_.embed_tokens, token_ids);
  return config_.embedding_multiplier == 1.0 ? h : h * config_.embedding_multiplier;
}

std::pair<at::Tensor, at::Tensor> Decoder::RopeTables(const ForwardInput& in,
                                                      c10::ScalarType dtype) const {
  return rope_.Tables(in.positions, dtype, in.attention.query_start, in.attention.seq_lens);
}

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
    auto qkv = Linears(x, {{w.q_proj, w.q_bias}, {w.k_proj, w.k_bias}, {w.v_proj, w.v_bias}});
    q = qkv[0], k = qkv[1], v = qkv[2];
  }
  q = q.view({T, config_.num_heads, D});
  k = k.view({T, config_.num_kv_heads, D});
  v = v.view({T, config_.num_kv_heads, D});
  if (w.q_norm.defined()) {  // Qwen3: per-head RMSNorm before RoPE
    q = RmsNorm(q, w.q_norm, config_.rms_norm_eps);
    k = RmsNorm(k, w.k_norm, config_.rms_norm_eps);
  }
  q = rope_.Apply(q, rope.first, rope.second);
  k = rope_.Apply(k, rope.first, rope.second);
  kv.Write(layer, in.slots, k, v);
  at::Tensor o = PagedAttention(q, kv.keys(layer), kv.values(layer), in.attention,
                                config_.AttentionScale(), config_.sliding_window[layer]);
  return Linear(o.reshape({T, config_.num_heads * D}), w.o_proj, w.o_bias);
}

at::Tensor Decoder::Mlp(int64_t layer, const at::Tensor& x,
                        const std::vector<CapacitySpan>& capacity) const {
  const LayerWeights& w = weights_.layers[layer];
  if (config_.sparse_layer[layer]) return MoeForward(config_.moe, w.moe, x, capacity);
  at::Tensor act;
  {
    // In place on gate (Linears returns fresh tensors), and up is released before the down
    // projection widens act to fp32: a long prefill holds two [T, intermediate] tensors at its
    // peak instead of four (at 2048 tokens of a 1B model, 64 MB of bf16 each).
    auto gate_up = Linears(x, {{w.gate_proj, w.gate_bias}, {w.up_proj, w.up_bias}});
    at::Tensor &gate = gate_up[0], &up = gate_up[1];
    // The fused decode step's SiLU·up (SiluMulRow), so that a token computes the same bits in
    // a decode step as in a verify or prefill step (test_batch_invariance).
    if (FusedCpuSupports(gate) && gate.is_contiguous() && up.is_contiguous() &&
        up.scalar_type() == gate.scalar_type()) {
      FusedSiluMul(gate, up);
      act = gate;
    } else {
      act = at::silu_(gate).mul_(up);
    }
  }
  return Linear(act, w.down_proj, w.down_bias);
}

at::Tensor Decoder::Residual(const at::Tensor& h, const at::Tensor& out) const {
  return config_.residual_multiplier == 1.0 ? h + out : h + out * config_.residual_multiplier;
}

at::Tensor Decoder::AddNorm(at::Tensor& h, const at::Tensor& out, const at::Tensor& norm) const {
  if (config_.residual_multiplier != 1.0) {
    h = Residual(h, out);
    return RmsNorm(h, norm, config_.rms_norm_eps);
  }
  return AddRmsNorm(h, out, norm, config_.rms_norm_eps);
}

at::Tensor Decoder::Logits(const at::Tensor& h) const {
  at::Tensor logits = Linear(RmsNorm(h, weights_.final_norm, config_.rms_norm_eps),
                            weights_.lm_head);
  // Granite divides in the activation dtype before the logits leave the model.
  if (config_.logits_scaling != 1.0) logits = logits / config_.logits_scaling;
  return logits.to(at::kFloat);
}

at::Tensor Decoder::Forward(const ForwardInput& in, KvCache& kv) const {
  at::Tensor h = Embed(in.token_ids);
  auto rope = RopeTables(in, h.scalar_type());
  if (fused_decode_ && FusedDecodeStepSupported(config_, weights_, in, kv, rope, h)) {
    FusedDecodeLayers(config_, weights_, in, rope, kv, h, fused_workspace_);
    ++fused_decode_steps_;
    return Logits(h.index_select(0, in.logits_rows));
  }
  // Each residual add goes with the norm after it (AddNorm) where the multiplier allows.
  const auto& layers = weights_.layers;
  const double eps = config_.rms_norm_eps;
  at::Tensor x = config_.num_layers > 0 ? RmsNorm(h, layers[0].input_norm, eps) : h;
  for (int64_t i = 0; i < config_.num_layers; ++i) {
    x = AddNorm(h, Attention(i, x, in, rope, kv), layers[i].post_attention_norm);
    at::Tensor mlp = Mlp(i, x, in.moe_capacity);
    if (i + 1 < config_.num_layers) {
      x = AddNorm(h, mlp, layers[i + 1].input_norm);
    } else {
      h = Residual(h, mlp);
    }
  }
  return Logits(h.index_select(0, in.logits_rows));
}

}  // namespace vnp
