// Rotary position embedding tables (default and llama3 scaling), computed the way HF
// transformers computes them (fp32 frequencies, rotate-half) so fp32 results match bit for bit.
#pragma once

#include <ATen/core/Tensor.h>

#include "config/model_config.h"

namespace vnp {

class Rope {
 public:
  Rope(const RopeConfig& config, int64_t head_dim, int64_t max_positions);

  // x: [T, heads, head_dim]; positions: [T] int64. Returns the rotated x in x's dtype.
  at::Tensor Apply(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) const;
  // cos / sin rows for `positions`, [T, 1, head_dim] in `dtype`, shared by q and k of a layer.
  std::pair<at::Tensor, at::Tensor> Tables(const at::Tensor& positions, c10::ScalarType dtype) const;

  int64_t max_positions() const { return cos_.size(0); }
  static at::Tensor InverseFrequencies(const RopeConfig& config, int64_t head_dim);

 private:
  at::Tensor cos_;  // [max_positions, head_dim] fp32
  at::Tensor sin_;
};

}  // namespace vnp
