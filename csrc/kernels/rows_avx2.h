// AVX2 loops for the per-token row ops of the fused decode step (kernels/elementwise.h's *Row
// functions), eight values at a time with the scalar loops' arithmetic: every product, sum and
// rounding to the activation dtype happens at the same point, so the results are the same bits
// (tests/cpp/row_ops_test.cc), SiluMulRow's exp excepted (below). At batch-1 decode each row
// op is a phase of its own that one thread runs while the other waits, ~120 of them a SmolLM2
// step; the scalar loops converted 16-bit values one at a time. Callers check
// CpuHasAvx2Kernels() first (kernels/cpu_features.h).
#pragma once

#include <cstdint>

#include "kernels/gemv_avx2.h"

namespace vnp::avx2 {

// x[i] = format(x[i] + add[i]) for i < n.
void AddRow(Format format, void* x, const void* add, int64_t n);

// Σ x[i]², each square rounded to fp32 and added in order of i (one running sum, as the scalar
// loop adds, which keeps near-tie greedy tokens where they were).
float SumOfSquares(Format format, const void* x, int64_t n);

// out[i] = format(w[i] · format(x[i] · scale)) for i < n; out may be x.
void ScaleRow(Format format, const void* x, float scale, const void* w, void* out, int64_t n);

// Rotate-half RoPE of `heads` heads of d values (d / 2 a multiple of 8): out = format(format(x ·
// cos) + format(rotate_half(x) · sin)), head h to out + h · out_head_stride elements.
void RopeRow(Format format, const void* x, const void* cos, const void* sin, void* out,
             int64_t heads, int64_t d, int64_t out_head_stride);

// out[i] = format(format(silu(gate[i])) · up[i]) for i < n, as the scalar loop rounds; out may be
// gate. exp through the kernels' polynomial (Exp8) rather than libm's: within a few fp32 ulps,
// so the silu rounds to the same 16-bit value but for rare ties (the test allows one ulp).
// Below a gate of -87, where Exp8 clamps, the silu is below 1e-36 rather than nearer 0.
void SiluMulRow(Format format, const void* gate, const void* up, void* out, int64_t n);

// out[i] = x[i] widened to fp32, for i < n.
void Widen(Format format, const void* x, float* out, int64_t n);

}  // namespace vnp::avx2
