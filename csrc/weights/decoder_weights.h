// The decoder's weights in runtime layout and dtype, converted from an HF checkpoint.
#pragma once

#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <absl/status/statusor.h>

#include "config/model_config.h"
#include "model/moe.h"

namespace vnp {

class Checkpoint;

struct LayerWeights {
  at::Tensor input_norm;          // [H]
  at::Tensor q_proj, k_proj, v_proj, o_proj;  // [out, in], HF layout
  at::Tensor q_bias, k_bias, v_bias, o_bias;  // undefined when the model has none
  // fused_qkv: one [q_out + 2 * kv_out, H] matrix (NxDI's Wqkv = cat(Wq, Wk, Wv)); q/k/v_proj
  // and their biases are then undefined.
  at::Tensor qkv_proj, qkv_bias;
  at::Tensor q_norm, k_norm;       // [head_dim], Qwen3's per-head norms; else undefined
  at::Tensor post_attention_norm;  // [H]
  // The dense MLP, or (sparse layers) the experts in `moe` with these left undefined.
  at::Tensor gate_proj, up_proj, down_proj;
  at::Tensor gate_bias, up_bias, down_bias;
  MoeWeights moe;
};

struct DecoderWeights {
  at::Tensor embed_tokens;  // [V, H]
  std::vector<LayerWeights> layers;
  at::Tensor final_norm;  // [H]
  at::Tensor lm_head;     // [V, H]; the embedding itself when tied
  bool converted = false;  // some tensor was cast, fused or stacked: it no longer maps the file

  // Reads every tensor the config calls for, casts to `dtype` (zero copy where the checkpoint
  // already has it), and fails naming any missing tensor, wrong shape or unexpected tensor.
  // Reads HF checkpoints and prepared ones (which may hold a fused qkv_proj and stacked
  // experts); `fused_qkv` decides the attention layout returned. Experts are always stacked
  // ([E, 2I, H] gate|up and [E, H, I] down), as NxDI stores them.
  static absl::StatusOr<DecoderWeights> Load(const Checkpoint& ckpt, const ModelConfig& config,
                                             c10::ScalarType dtype, bool fused_qkv = false);

  // Every tensor under its checkpoint name (HF names; fused: "...self_attn.qkv_proj.weight"),
  // for writing a prepared checkpoint. A tied lm_head is left out: loading re-ties it.
  std::vector<std::pair<std::string, at::Tensor>> Named(const ModelConfig& config) const;
};

}  // namespace vnp
