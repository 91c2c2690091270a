// Rotary position embedding for every RoPE variant of the supported checkpoints (default,
// linear, dynamic NTK, YaRN, llama3), computed the way HF transformers computes it (fp32
// frequencies, the same operation order, rotate-half) so that fp32 results match bit for bit.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "config/model_config.h"

namespace vnp {

class Rope {
 public:
  Rope(const RopeConfig& config, int64_t head_dim, int64_t max_positions);

  // x: [T, heads, head_dim]; cos / sin from Tables. Returns the rotated x in x's dtype.
  at::Tensor Apply(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) const;

  // cos / sin rows [T, 1, head_dim] in `dtype` for a step's tokens, shared by q and k of every
  // layer. Row b owns tokens [query_start[b], query_start[b+1]) and has seq_lens[b] tokens after
  // this step: dynamic NTK scales its base by that length, as HF does for a sequence whose
  // largest position is seq_len - 1.
  std::pair<at::Tensor, at::Tensor> Tables(const at::Tensor& positions, c10::ScalarType dtype,
                                           const std::vector<int64_t>& query_start,
                                           const std::vector<int64_t>& seq_lens) const;

  // inv_freq [head_dim / 2] fp32; `seq_len` only matters for dynamic NTK.
  static at::Tensor InverseFrequencies(const RopeConfig& config, int64_t head_dim,
                                       int64_t seq_len = 0);

 private:
  std::pair<at::Tensor, at::Tensor> CosSin(const at::Tensor& positions,
                                           const at::Tensor& inv_freq) const;

  RopeConfig config_;
  int64_t head_dim_;
  at::Tensor cos_;  // [max_positions, head_dim] fp32, attention factor applied
  at::Tensor sin_;
};

}  // namespace vnp
