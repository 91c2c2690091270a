#include "model/rope.h"

#include <cmath>

#include <ATen/ATen.h>

namespace vnp {

at::Tensor Rope::InverseFrequencies(const RopeConfig& c, int64_t head_dim) {
  at::Tensor exponent = at::arange(0, head_dim, 2, at::kLong).to(at::kFloat) / head_dim;
  at::Tensor inv_freq = at::reciprocal(at::pow(c.theta, exponent));
  if (c.type != RopeType::kLlama3) return inv_freq;
  const double low_wavelen = c.original_max_position_embeddings / c.low_freq_factor;
  const double high_wavelen = c.original_max_position_embeddings / c.high_freq_factor;
  // Python's `scalar / tensor` is reciprocal(tensor) * scalar; spelled the same way to match HF.
  at::Tensor wavelen = at::reciprocal(inv_freq) * (2 * M_PI);
  at::Tensor scaled = at::where(wavelen > low_wavelen, inv_freq / c.factor, inv_freq);
  at::Tensor smooth = (at::reciprocal(wavelen) * c.original_max_position_embeddings - c.low_freq_factor) /
                      (c.high_freq_factor - c.low_freq_factor);
  at::Tensor smoothed = (1 - smooth) * scaled / c.factor + smooth * scaled;
  at::Tensor medium = wavelen.ge(high_wavelen).logical_and(wavelen.le(low_wavelen));
  return at::where(medium, smoothed, scaled);
}

Rope::Rope(const RopeConfig& config, int64_t head_dim, int64_t max_positions) {
  at::Tensor inv_freq = InverseFrequencies(config, head_dim);                 // [D/2]
  at::Tensor pos = at::arange(max_positions, at::kLong).to(at::kFloat);       // [P]
  at::Tensor freqs = pos.unsqueeze(1) * inv_freq.unsqueeze(0);                // [P, D/2]
  at::Tensor emb = at::cat({freqs, freqs}, -1);
  cos_ = emb.cos();
  sin_ = emb.sin();
}

std::pair<at::Tensor, at::Tensor> Rope::Tables(const at::Tensor& positions,
                                               c10::ScalarType dtype) const {
  return {cos_.index_select(0, positions).to(dtype).unsqueeze(1),
          sin_.index_select(0, positions).to(dtype).unsqueeze(1)};
}

at::Tensor Rope::Apply(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) const {
  const int64_t half = x.size(-1) / 2;
  at::Tensor rotated = at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos + rotated * sin;
}

}  // namespace vnp
