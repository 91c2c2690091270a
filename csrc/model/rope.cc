#include "model/rope.h"

#include <algorithm>
#include <cmath>

#include <ATen/ATen.h>

#include "kernels/elementwise.h"

namespace vnp {
namespace {

// theta ** (2i / d) for i < d / 2, as `base ** (arange(0, d, 2).float() / d)`.
at::Tensor BasePowers(double theta, int64_t d) {
  at::Tensor exponent = at::arange(0, d, 2, at::kLong).to(at::kFloat) / d;
  return at::pow(theta, exponent);
}

at::Tensor Llama3(const RopeConfig& c, const at::Tensor& inv_freq) {
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

// YaRN: interpolated frequencies below the correction range, extrapolated above it, a linear
// ramp between (transformers' _compute_yarn_parameters).
at::Tensor Yarn(const RopeConfig& c, int64_t d) {
  at::Tensor pos_freqs = BasePowers(c.theta, d);
  at::Tensor extrapolation = at::reciprocal(pos_freqs);
  at::Tensor interpolation = at::reciprocal(pos_freqs * c.factor);
  auto correction_dim = [&](double rotations) {
    return (d * std::log(c.original_max_position_embeddings / (rotations * 2 * M_PI))) /
           (2 * std::log(c.theta));
  };
  double low = correction_dim(c.beta_fast), high = correction_dim(c.beta_slow);
  if (c.truncate) low = std::floor(low), high = std::ceil(high);
  low = std::max(low, 0.0), high = std::min(high, static_cast<double>(d - 1));
  if (low == high) high += 0.001;  // as transformers: avoid a zero-width ramp
  at::Tensor ramp = ((at::arange(d / 2, at::kFloat) - low) / (high - low)).clamp(0, 1);
  at::Tensor extrapolation_factor = 1 - ramp;
  return interpolation * (1 - extrapolation_factor) + extrapolation * extrapolation_factor;
}

// Dynamic NTK for a sequence of seq_len tokens: the base grows with the length, computed in
// fp32 tensor arithmetic as transformers does with its tensor seq_len.
at::Tensor DynamicNtk(const RopeConfig& c, int64_t d, int64_t seq_len) {
  at::Tensor len = at::scalar_tensor(std::max(seq_len, c.dynamic_threshold), at::kLong);
  at::Tensor base = ((len * c.factor) / c.dynamic_threshold - (c.factor - 1))
                        .pow(static_cast<double>(d) / (d - 2)) * c.theta;
  at::Tensor exponent = at::arange(0, d, 2, at::kLong).to(at::kFloat) / d;
  return at::reciprocal(at::pow(base, exponent));
}

}  // namespace

at::Tensor Rope::InverseFrequencies(const RopeConfig& c, int64_t d, int64_t seq_len) {
  switch (c.type) {
    case RopeType::kYarn: return Yarn(c, d);
    case RopeType::kDynamic:
      if (seq_len > c.dynamic_threshold) return DynamicNtk(c, d, seq_len);
      break;
    default: break;
  }
  at::Tensor inv_freq = at::reciprocal(BasePowers(c.theta, d));
  if (c.type == RopeType::kLinear) return inv_freq / c.factor;
  if (c.type == RopeType::kLlama3) return Llama3(c, inv_freq);
  return inv_freq;
}

std::pair<at::Tensor, at::Tensor> Rope::CosSin(const at::Tensor& positions,
                                               const at::Tensor& inv_freq) const {
  at::Tensor freqs = positions.to(at::kFloat).unsqueeze(1) * inv_freq.unsqueeze(0);  // [P, D/2]
  at::Tensor emb = at::cat({freqs, freqs}, -1);
  return {emb.cos() * config_.attention_factor, emb.sin() * config_.attention_factor};
}

Rope::Rope(const RopeConfig& config, int64_t head_dim, int64_t max_positions)
    : config_(config), head_dim_(head_dim) {
  std::tie(cos_, sin_) =
      CosSin(at::arange(max_positions, at::kLong), InverseFrequencies(config, head_dim));
}

std::pair<at::Tensor, at::Tensor> Rope::Tables(const at::Tensor& positions, c10::ScalarType dtype,
                                               const std::vector<int64_t>& query_start,
                                               const std::vector<int64_t>& seq_lens) const {
  at::Tensor cos = cos_.index_select(0, positions), sin = sin_.index_select(0, positions);
  if (config_.type == RopeType::kDynamic) {
    for (size_t b = 0; b < seq_lens.size(); ++b) {
      const int64_t qs = query_start[b], qlen = query_start[b + 1] - qs;
      if (qlen == 0 || seq_lens[b] <= config_.dynamic_threshold) continue;
      auto [c, s] = CosSin(positions.narrow(0, qs, qlen),
                           InverseFrequencies(config_, head_dim_, seq_lens[b]));
      cos.narrow(0, qs, qlen).copy_(c);
      sin.narrow(0, qs, qlen).copy_(s);
    }
  }
  return {cos.to(dtype).unsqueeze(1), sin.to(dtype).unsqueeze(1)};
}

at::Tensor Rope::Apply(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) const {
  if (FusedCpuSupports(x) && x.dim() == 3 && cos.scalar_type() == x.scalar_type() &&
      sin.scalar_type() == x.scalar_type() && cos.numel() == x.size(0) * x.size(2) &&
      sin.numel() == cos.numel()) {
    return FusedRope(x, cos, sin);
  }
  const int64_t half = x.size(-1) / 2;
  at::Tensor rotated = at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos + rotated * sin;
}

}  // namespace vnp
