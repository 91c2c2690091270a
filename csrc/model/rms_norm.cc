#include "model/rms_norm.h"

#include <ATen/ATen.h>

#include "kernels/elementwise.h"

namespace vnp {

at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  if (FusedCpuSupports(x) && weight.scalar_type() == x.scalar_type()) {
    return FusedRmsNorm(x, weight, eps);
  }
  at::Tensor h = x.to(at::kFloat);
  at::Tensor variance = h.pow(2).mean(-1, /*keepdim=*/true);
  h = h * at::rsqrt(variance + eps);
  return weight * h.to(x.scalar_type());
}

at::Tensor AddRmsNorm(at::Tensor& h, const at::Tensor& out, const at::Tensor& weight, double eps) {
  if (FusedCpuSupports(h) && weight.scalar_type() == h.scalar_type() &&
      out.scalar_type() == h.scalar_type() && h.sizes() == out.sizes() && h.is_contiguous() &&
      out.is_contiguous()) {
    return FusedAddRmsNorm(h, out, weight, eps);
  }
  h = h + out;
  return RmsNorm(h, weight, eps);
}

}  // namespace vnp
