// AVX2/FMA/F16C inner loops over rows of fp32, bf16 or fp16 values, widened to fp32 in
// registers. No ATen here: this is the only file compiled with -mavx2, and inline ATen code built
// with those flags could be picked by the linker for the whole library and fault on a CPU
// without them. Callers check CpuHasAvx2Kernels() first.
#pragma once

#include <cstdint>

namespace vnp::avx2 {

enum class Format { kF32, kBf16, kF16 };

// y[m, n] = Σ_k x[m, k] · w[n, k] for m < M and n0 ≤ n < n1, accumulated in fp32.
// x: fp32 [M, K] row-major; w: [N, K] row-major in `format`; y: fp32 with row stride ldy.
// Weight rows stream once from memory (bandwidth-bound for the small M of decode); each row
// stays in L1 while the M activation rows use it, four at a time.
void Gemv(Format format, const float* x, int64_t M, int64_t K, const void* w, int64_t n0,
          int64_t n1, float* y, int64_t ldy);

// Σ_i x[i] · v[i] over n values.
float Dot(Format format, const float* x, const void* v, int64_t n);

// acc[i] += a · v[i] over n values.
void Axpy(Format format, float a, const void* v, float* acc, int64_t n);

}  // namespace vnp::avx2
