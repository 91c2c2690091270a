// The generic decoder-only transformer (Llama family for now): embedding, layers of
// attention + MLP with pre-RMSNorm, final norm, lm_head. Stateless apart from its weights;
// KV lives in the KvCache passed in.
#pragma once

#include <ATen/core/Tensor.h>

#include "config/model_config.h"
#include "kernels/paged_attention.h"
#include "kv/kv_cache.h"
#include "model/rope.h"
#include "weights/decoder_weights.h"

namespace vnp {

struct ForwardInput {
  at::Tensor token_ids;  // [T] int64
  at::Tensor positions;  // [T] int64
  SlotIndex slots;
  AttentionBatch attention;
  at::Tensor logits_rows;  // [N] int64: token rows whose logits are wanted
};

class Decoder {
 public:
  Decoder(ModelConfig config, DecoderWeights weights, int64_t max_positions);

  // Runs all layers, writes this step's K/V, returns fp32 logits [N, vocab] for logits_rows.
  at::Tensor Forward(const ForwardInput& in, KvCache& kv) const;

  const ModelConfig& config() const { return config_; }
  c10::ScalarType dtype() const { return weights_.embed_tokens.scalar_type(); }

 private:
  at::Tensor Attention(int64_t layer, const at::Tensor& x, const ForwardInput& in,
                       const std::pair<at::Tensor, at::Tensor>& rope, KvCache& kv) const;
  at::Tensor Mlp(const LayerWeights& w, const at::Tensor& x) const;

  ModelConfig config_;
  DecoderWeights weights_;
  Rope rope_;
};

}  // namespace vnp
