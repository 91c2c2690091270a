// bf16 GEMV on the AVX512_BF16 dot-product unit (vdpbf16ps): 32 bf16 products summed into 16
// fp32 lanes per instruction, from the bf16 weights and activations as stored, with no widening
// of either. No ATen here, for the reason gemv_avx2.h gives: this is the only file compiled with
// -mavx512*, and callers check CpuHasAvx512Bf16() first.
#pragma once

#include <cstdint>

namespace vnp::avx512 {

// y[m, n] = Σ_k x[m, k] · w[n, k] for m < M and n0 ≤ n < n1, in fp32: each product of
// two bf16 values is exact in fp32, and the sums are fp32 in another order than the AVX2
// kernel's (vdpbf16ps treats subnormal inputs and results as zero). x: bf16 [M, K]; w: bf16
// [N, K], both row-major; y: fp32 with row stride ldy.
void GemvBf16(const uint16_t* x, int64_t M, int64_t K, const uint16_t* w, int64_t n0, int64_t n1,
              float* y, int64_t ldy);

// acc[m, d] += Σ_i a[m · lda + i] · v[i, d] for m < M, i < n, d < D: attention's weighted sum
// of bf16 value rows, widened to fp32 (exact) and accumulated in fp32 in the AVX2 kernel's
// order (avx2::AccumulateRows gives the same sums). v: bf16 [n, D] row-major; acc: fp32 [M, D].
void AccumulateRowsBf16(const float* a, int64_t lda, int64_t M, const uint16_t* v, int64_t n,
                        int64_t D, float* acc);

}  // namespace vnp::avx512
