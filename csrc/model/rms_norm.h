// RMSNorm with HF's cast order (normalise in fp32, cast back, then scale), which is what parity
// with HF transformers needs in bf16 (NxDI scales before the cast; see nxdi-semantics P21).
#pragma once

#include <ATen/core/Tensor.h>

namespace vnp {

at::Tensor RmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps);

// h = h + out (the residual stream, updated in place when the fused loop runs), then
// RmsNorm(h): one pass instead of two ops between the blocks of a layer.
at::Tensor AddRmsNorm(at::Tensor& h, const at::Tensor& out, const at::Tensor& weight, double eps);

}  // namespace vnp
