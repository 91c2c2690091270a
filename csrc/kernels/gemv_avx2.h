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
// Weight rows stream once from memory (bandwidth-bound at batch 1); a block of them stays in
// L2 while the activation rows pass over it four at a time, three weight rows by four
// activation rows per register tile (compute-bound from a few rows on). prefetch_rows: the
// one-row loop prefetches its weight stream 1 KB ahead (faster on the AVX2 host, slower than
// the hardware prefetcher alone on the Zen 4 host).
void Gemv(Format format, const float* x, int64_t M, int64_t K, const void* w, int64_t n0,
          int64_t n1, float* y, int64_t ldy, bool prefetch_rows = true);

// s[j · lds + c] = Σ_d q[j · D + d] · k[c · D + d] for j < heads, c < count: decode attention's
// scores of `heads` fp32 q heads against `count` keys of `format` (a KV block's run), four keys
// by three heads a register tile, each head's four sums reduced together (Gemv's tiles reduce
// each dot product alone, a large share at D = 64). A D that is not a multiple of 8 goes
// through Gemv (the tile has no tail). Batch-16 SmolLM2 decode at depths 128-640: steps 13%
// shorter than through Gemv (in-process A/B, 6 of 6 rounds).
void Scores(Format format, const float* q, int64_t heads, int64_t D, const void* k,
            int64_t count, float* s, int64_t lds);

// acc[m, d] += Σ_i a[m · lda + i] · v[i, d] for m < M, i < n, d < D. v: [n, D] row-major in
// `format`; acc: fp32 [M, D]. Attention's weighted sum of value rows, several heads at once.
void AccumulateRows(Format format, const float* a, int64_t lda, int64_t M, const void* v,
                    int64_t n, int64_t D, float* acc);

// out[m, n] = y[m, n] + bias[n] (bias may be null) rounded to `format` to nearest even, as
// torch's casts do, for m < M and n0 ≤ n < n1; y and out with row strides ldy and ldo (in
// elements). The GEMV's results leaving fp32.
void StoreRows(Format format, const float* y, int64_t ldy, const float* bias, int64_t M,
               int64_t n0, int64_t n1, void* out, int64_t ldo);

// x[i] = exp(x[i] - shift) for i < n; returns their sum. Softmax's exponentials, eight at a
// time (relative error within 2e-7 of std::exp between -87 and 88; clamped outside).
float ExpSum(float* x, int64_t n, float shift);

}  // namespace vnp::avx2
