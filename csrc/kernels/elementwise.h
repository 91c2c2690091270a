// Fused loops for the per-token ops between projections: one pass instead of the 6–8 ATen ops
// (each a dispatch and an allocation) that make up an RMSNorm or a RoPE rotation. Decode runs
// ~100 such ops per layer, which on a 2-core host cost as much as reading the weights. Each
// loop rounds to the activation dtype at the same points as the op chain it replaces (HF's
// modules), so results match the ATen path. CPU, contiguous, fp32/bf16/fp16 only: callers use
// the ATen chain otherwise (the Supports* checks).
#pragma once

#include <ATen/core/Tensor.h>

namespace vnp {

bool FusedCpuSupports(const at::Tensor& x);

// HF RMSNorm: weight · dtype(x · rsqrt(mean(x²) + eps)), statistics in fp32, over the last dim.
at::Tensor FusedRmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps);

// The residual add and the next RMSNorm in one pass: h = dtype(h + out) in place (h is the
// residual stream, owned by the caller), returns FusedRmsNorm(h, weight, eps). h and out
// contiguous, same shape and dtype.
at::Tensor FusedAddRmsNorm(at::Tensor& h, const at::Tensor& out, const at::Tensor& weight,
                           double eps);

// HF rotate-half RoPE: x·cos + rotate_half(x)·sin, each product and the sum rounded to x's dtype.
// x: [T, heads, D]; cos, sin: [T, 1, D] in x's dtype.
at::Tensor FusedRope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

// at::silu_(gate).mul_(up) in one pass, in place on gate: gate = dtype(dtype(silu(gate)) · up)
// (SiluMulRow below). gate and up contiguous, same shape and dtype.
void FusedSiluMul(at::Tensor& gate, const at::Tensor& up);

// One row of the above on raw pointers of dtype t (fp32, bf16, fp16), for callers running their
// own parallel region (the fused decode step), with the same arithmetic.
// x[i] = dtype(x[i] + add[i]) when add is not null; then, when out is not null,
// out = FusedRmsNorm(x, w, eps) over the n values (out may be x).
void RmsNormRow(c10::ScalarType t, void* x, const void* add, const void* w, void* out, int64_t n,
                double eps);
// heads rows of d values of one token, rotated with that token's cos/sin ([d] each); head h goes
// to out + h · out_head_stride (a KV cache slot's heads are block_size · d apart).
void RopeRow(c10::ScalarType t, const void* x, const void* cos, const void* sin, void* out,
             int64_t heads, int64_t d, int64_t out_head_stride);
// out = dtype(dtype(silu(gate)) · up) over n values, as at::silu_(gate).mul_(up) rounds (out may
// be gate).
void SiluMulRow(c10::ScalarType t, const void* gate, const void* up, void* out, int64_t n);

}  // namespace vnp
