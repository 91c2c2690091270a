// The generic decoder-only transformer: embedding, layers of attention + MLP (dense or MoE)
// with pre-RMSNorm, final norm, lm_head. Per-architecture differences (biases, Qwen3's q/k
// norms, sliding windows, Granite's multipliers, experts) are flags in ModelConfig, not
// subclasses. Stateless apart from its weights; KV lives in the KvCache passed in.
#pragma once

#include <memory>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "config/model_config.h"
#include "kernels/paged_attention.h"
#include "kv/kv_cache.h"
#include "model/fused_decode.h"
#include "model/moe.h"
#include "model/rope.h"
#include "weights/decoder_weights.h"

namespace vnp {

struct ForwardInput {
  at::Tensor token_ids;  // [T] int64
  at::Tensor positions;  // [T] int64
  SlotIndex slots;
  AttentionBatch attention;
  at::Tensor logits_rows;  // [N] int64: token rows whose logits are wanted
  // Context-encoding rows whose experts have a capacity (NxDI capacity_factor); empty: none.
  std::vector<CapacitySpan> moe_capacity;
};

class Decoder {
 public:
  Decoder(ModelConfig config, DecoderWeights weights, int64_t max_positions);

  // Runs all layers, writes this step's K/V, returns fp32 logits [N, vocab] for logits_rows.
  at::Tensor Forward(const ForwardInput& in, KvCache& kv) const;

  // The pieces Forward is made of, public so that module tests can hold each against HF.
  at::Tensor Embed(const at::Tensor& token_ids) const;
  std::pair<at::Tensor, at::Tensor> RopeTables(const ForwardInput& in, c10::ScalarType dtype) const;
  // x: [T, H] (already normalised). Writes K/V of layer `layer`, returns [T, H].
  at::Tensor Attention(int64_t layer, const at::Tensor& x, const ForwardInput& in,
                       const std::pair<at::Tensor, at::Tensor>& rope, KvCache& kv) const;
  // The layer's dense MLP or MoE block, on normalised x.
  at::Tensor Mlp(int64_t layer, const at::Tensor& x,
                 const std::vector<CapacitySpan>& capacity = {}) const;
  // Final norm, lm_head and logit scaling on hidden states [N, H] → fp32 [N, vocab].
  at::Tensor Logits(const at::Tensor& h) const;

  // Decode steps that model/fused_decode.h takes run there unless turned off (tests compare the
  // two paths; both give the same results).
  void set_fused_decode(bool on) {
    fused_decode_ = on && FusedDecodeModelSupported(config_, weights_);
  }
  // Drops the fused path's buffers, which hold the KV cache's tensors (before the cache is
  // replaced, so that the old one is freed first).
  void ReleaseFusedWorkspace() { fused_workspace_.reset(); }
  // Forward calls that took the fused path (tests check that the path they compare ran).
  int64_t fused_decode_steps() const { return fused_decode_steps_; }

  const ModelConfig& config() const { return config_; }
  const DecoderWeights& weights() const { return weights_; }
  c10::ScalarType dtype() const { return weights_.embed_tokens.scalar_type(); }

 private:
  at::Tensor Residual(const at::Tensor& h, const at::Tensor& out) const;
  // h = Residual(h, out) (in place where it can), then returns RmsNorm(h, norm).
  at::Tensor AddNorm(at::Tensor& h, const at::Tensor& out, const at::Tensor& norm) const;

  ModelConfig config_;
  DecoderWeights weights_;
  Rope rope_;
  bool fused_decode_;
  mutable int64_t fused_decode_steps_ = 0;
  // The last batch size's buffers and task lists (Forward runs one step at a time).
  mutable std::shared_ptr<FusedDecodeStep> fused_workspace_;
};

}  // namespace vnp
