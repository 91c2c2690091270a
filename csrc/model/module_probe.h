// A decoder taken apart: each module run on its own, on one sequence, so that tests can hold
// every piece (embedding, norms, RoPE, attention, MLP, router, experts, lm_head) against the
// same piece of HF transformers. Uses the runtime's own code paths; no second implementation.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include <ATen/core/Tensor.h>
#include <absl/status/statusor.h>

#include "kv/kv_cache.h"
#include "model/decoder.h"

namespace vnp {

class ModuleProbe {
 public:
  // Loads `model_dir` (config.json + safetensors) in `dtype`, with KV room for max_positions.
  static absl::StatusOr<std::unique_ptr<ModuleProbe>> Open(const std::string& model_dir,
                                                           c10::ScalarType dtype,
                                                           int64_t max_positions);

  at::Tensor Embed(const at::Tensor& token_ids) const { return decoder_.Embed(token_ids); }
  // which: "input", "post_attention", "q", "k" (per layer) or "final" (layer ignored).
  absl::StatusOr<at::Tensor> Norm(int64_t layer, const std::string& which, const at::Tensor& x) const;
  // cos / sin [T, head_dim] in `dtype` for `positions` of a sequence seq_len tokens long.
  std::pair<at::Tensor, at::Tensor> Rope(const at::Tensor& positions, int64_t seq_len,
                                         c10::ScalarType dtype) const;
  // x: [T, H] normalised hidden states at positions [start, start + T) of the one sequence;
  // positions before `start` must have been run already (their K/V are in the probe's cache).
  absl::StatusOr<at::Tensor> Attention(int64_t layer, const at::Tensor& x, int64_t start);
  absl::StatusOr<at::Tensor> Mlp(int64_t layer, const at::Tensor& x) const;
  absl::StatusOr<MoeRouting> Route(int64_t layer, const at::Tensor& x) const;
  absl::StatusOr<at::Tensor> Experts(int64_t layer, const at::Tensor& x, const MoeRouting& r) const;
  // Final norm + lm_head (+ Granite's scaling): fp32 [T, vocab].
  at::Tensor Logits(const at::Tensor& h) const { return decoder_.Logits(h); }

  const ModelConfig& config() const { return decoder_.config(); }

 private:
  ModuleProbe(Decoder decoder, KvCache kv) : decoder_(std::move(decoder)), kv_(std::move(kv)) {}
  absl::Status CheckLayer(int64_t layer, bool sparse_wanted = false) const;

  static constexpr int64_t kBlockSize = 16;
  Decoder decoder_;
  KvCache kv_;
};

}  // namespace vnp
