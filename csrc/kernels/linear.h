// y = x · wᵀ + b for the decoder's projections, computed in fp32 and rounded to x's dtype once,
// as a 16-bit GEMM with fp32 accumulation does. On an AVX2 CPU:
// - up to LinearGemvMaxRows() rows (decode), an AVX2 GEMV that streams the weight once and
//   widens 16-bit values in registers: bandwidth-bound, where torch's bf16 path is not and its
//   fp32 sgemv reached about half the read bandwidth;
// - more rows (prefill), 16-bit weights are widened a cache-sized block at a time into fp32
//   GEMM: torch's bf16 GEMM runs at a fraction of its fp32 rate on CPUs without bf16 FMA units.
// On a CPU with them (AVX512_BF16), bf16 weights run AVX-512 BF16 dot-product tiles from 2 to
// 32 rows, on the bf16 activations as they are, and torch's bf16 linear (oneDNN) beyond: the
// fastest there. Elsewhere, at::linear.
#pragma once

#include <vector>

#include <ATen/core/Tensor.h>

namespace vnp {

// x: [M, K]; w: [N, K]; b: [N] or undefined. Returns [M, N] in x's dtype.
at::Tensor Linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b = {});

struct Projection {
  const at::Tensor& w;
  const at::Tensor& b;
};

// Several projections of one x (q/k/v, gate/up) in one pass: on the GEMV path they share one
// parallel region. Same results as Linear on each; the results are new tensors, which callers
// may overwrite.
std::vector<at::Tensor> Linears(const at::Tensor& x, const std::vector<Projection>& ps);

// Up to this many rows the GEMV path runs for weights of dtype `w`; beyond it, widened-weight
// fp32 GEMM, or for bf16 on a CPU with bf16 units, torch's bf16 linear.
int64_t LinearGemvMaxRows(c10::ScalarType w);

}  // namespace vnp
