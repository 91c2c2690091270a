// The decoder's weights in runtime layout and dtype, converted from an HF checkpoint.
#pragma once

#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <absl/status/statusor.h>

#include "config/model_config.h"

namespace vnp {

class Checkpoint;

struct LayerWeights {
  at::Tensor input_norm;          // [H]
  at::Tensor q_proj, k_proj, v_proj, o_proj;  // [out, in], HF layout
  at::Tensor q_bias, k_bias, v_bias, o_bias;  // undefined when the model has none
  at::Tensor post_attention_norm;  // [H]
  at::Tensor gate_proj, up_proj, down_proj;
  at::Tensor gate_bias, up_bias, down_bias;
};

struct DecoderWeights {
  at::Tensor embed_tokens;  // [V, H]
  std::vector<LayerWeights> layers;
  at::Tensor final_norm;  // [H]
  at::Tensor lm_head;     // [V, H]; the embedding itself when tied

  // Reads every tensor the config calls for, casts to `dtype` (zero copy where the checkpoint
  // already has it), and fails naming any missing tensor, wrong shape or unexpected tensor.
  static absl::StatusOr<DecoderWeights> Load(const Checkpoint& ckpt, const ModelConfig& config,
                                             c10::ScalarType dtype);
};

}  // namespace vnp
