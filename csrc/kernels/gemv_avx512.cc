#include "kernels/gemv_avx512.h"

#if defined(__x86_64__)
// GCC 12's AVX-512 intrinsics (_mm512_reduce_add_ps among them) pass an _mm512_undefined_*
// register as the merge source of unmasked builtins, which -Werror=uninitialized rejects once
// inlined (GCC bug 105593, fixed in 13).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "kernels/tile_sizes.h"

namespace vnp::avx512 {
namespace {

// Local, not std::min/max: an inline template instantiated in this file is compiled with
// AVX-512 enabled, and the linker may keep this copy for every caller in the library, which
// would then fault on a CPU without AVX-512.
int64_t Min(int64_t a, int64_t b) { return a < b ? a : b; }
int64_t Max(int64_t a, int64_t b) { return a < b ? b : a; }

__m512bh Load32(const uint16_t* p) { return (__m512bh)_mm512_loadu_si512(p); }

// The last `count` (< 32) values, the rest of the register zero.
__m512bh LoadTail(const uint16_t* p, int64_t count) {
  return (__m512bh)_mm512_maskz_loadu_epi16((__mmask32)((1u << count) - 1), p);
}

// The lane sums of a, b, c, d, in that order: one shuffle tree for the four instead of four
// separate reductions, which at K = 576 would cost a third as much as the dot products.
__m128 Sum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  // 256-bit halves: ab = [a.lo + a.hi | b.lo + b.hi], cd likewise.
  const __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
  const __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xEE));
  // 128-bit lanes: [a, b, c, d], each four partial sums.
  const __m512 t = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xDD));
  // Within each lane: pairs, then all four; lane i's element 0 is the sum of input i.
  const __m512 u = _mm512_add_ps(t, _mm512_shuffle_ps(t, t, 0x4E));
  const __m512 v = _mm512_add_ps(u, _mm512_shuffle_ps(u, u, 0xB1));
  // Element 0 of each lane, gathered into one __m128.
  const __m512i idx = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0);
  return _mm512_castps512_ps128(_mm512_permutexvar_ps(idx, v));
}

// NR weight rows against MR activation rows, 32 k at a time: each weight vector feeds MR dot
// products and each activation vector NR, so a 4 × 4 tile does 16 vdpbf16ps for 8 loads, in
// 16 accumulators (of 32 zmm registers). Weights are prefetched 2 KB ahead in each row's
// stream, as the AVX2 tiles do.
template <int NR, int MR>
void Tile(const uint16_t* x, int64_t K, const uint16_t* w, float* y, int64_t ldy) {
  __m512 acc[NR][MR];
  for (auto& row : acc) {
    for (auto& a : row) a = _mm512_setzero_ps();
  }
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) {
    __m512bh wv[NR];
    for (int n = 0; n < NR; ++n) {
      _mm_prefetch(reinterpret_cast<const char*>(w + n * K + k + 1024), _MM_HINT_T0);
      wv[n] = Load32(w + n * K + k);
    }
    for (int m = 0; m < MR; ++m) {
      const __m512bh xv = Load32(x + m * K + k);
      for (int n = 0; n < NR; ++n) acc[n][m] = _mm512_dpbf16_ps(acc[n][m], wv[n], xv);
    }
  }
  if (k < K) {  // the tail, zero-filled: zero products leave the sums as they are
    const int64_t count = K - k;
    __m512bh wv[NR];
    for (int n = 0; n < NR; ++n) wv[n] = LoadTail(w + n * K + k, count);
    for (int m = 0; m < MR; ++m) {
      const __m512bh xv = LoadTail(x + m * K + k, count);
      for (int n = 0; n < NR; ++n) acc[n][m] = _mm512_dpbf16_ps(acc[n][m], wv[n], xv);
    }
  }
  for (int m = 0; m < MR; ++m) {
    if constexpr (NR == 4) {
      _mm_storeu_ps(y + m * ldy, Sum4(acc[0][m], acc[1][m], acc[2][m], acc[3][m]));
    } else {
      for (int n = 0; n < NR; ++n) y[m * ldy + n] = _mm512_reduce_add_ps(acc[n][m]);
    }
  }
}

// 16 bf16 values widened exactly to fp32 (a bf16 is the top half of an fp32).
__m512 Widen16(const uint16_t* p) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(
      _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
}

// MR rows of acc, 16·DV columns from d0: acc[m, d] += Σ_i a[m · lda + i] · v[i, d], each acc
// element one fp32 FMA chain over i in order, as the AVX2 kernel's, so both give the same
// sums. Each widened v vector feeds MR FMAs; MR × DV accumulators stay in registers across
// the n rows of v (at most 16, of 32 zmm).
template <int MR, int DV>
void AccTile(const float* a, int64_t lda, const uint16_t* v, int64_t n, int64_t D, int64_t d0,
             float* acc) {
  __m512 c[MR][DV];
  for (int m = 0; m < MR; ++m) {
    for (int j = 0; j < DV; ++j) c[m][j] = _mm512_loadu_ps(acc + m * D + d0 + 16 * j);
  }
  for (int64_t i = 0; i < n; ++i) {
    __m512 vv[DV];
    for (int j = 0; j < DV; ++j) vv[j] = Widen16(v + i * D + d0 + 16 * j);
    for (int m = 0; m < MR; ++m) {
      const __m512 s = _mm512_set1_ps(a[m * lda + i]);
      for (int j = 0; j < DV; ++j) c[m][j] = _mm512_fmadd_ps(s, vv[j], c[m][j]);
    }
  }
  for (int m = 0; m < MR; ++m) {
    for (int j = 0; j < DV; ++j) _mm512_storeu_ps(acc + m * D + d0 + 16 * j, c[m][j]);
  }
}

// All D columns of MR rows: 64 at a time, then 16, then the rest one by one.
template <int MR>
void AccRows(const float* a, int64_t lda, const uint16_t* v, int64_t n, int64_t D, float* acc) {
  int64_t d = 0;
  for (; d + 64 <= D; d += 64) AccTile<MR, 4>(a, lda, v, n, D, d, acc);
  for (; d + 16 <= D; d += 16) AccTile<MR, 1>(a, lda, v, n, D, d, acc);
  for (; d < D; ++d) {
    for (int m = 0; m < MR; ++m) {
      for (int64_t i = 0; i < n; ++i) {
        const uint32_t bits = static_cast<uint32_t>(v[i * D + d]) << 16;
        float f;
        __builtin_memcpy(&f, &bits, sizeof f);
        acc[m * D + d] = __builtin_fmaf(a[m * lda + i], f, acc[m * D + d]);
      }
    }
  }
}

}  // namespace

void GemvBf16(const uint16_t* x, int64_t M, int64_t K, const uint16_t* w, int64_t n0, int64_t n1,
              float* y, int64_t ldy) {
  // Blocks of weight rows that stay in L2 while every group of four activation rows passes
  // over them (the group's rows stay in L1): the weights stream from memory once whatever M is.
  constexpr int64_t kBlockBytes = 64 << 10;
  const int64_t block = Max(4, kBlockBytes / (K * 2) / 4 * 4);
  for (int64_t b0 = n0; b0 < n1; b0 += block) {
    const int64_t b1 = Min(n1, b0 + block);
    ForEachRowGroup<4>(M, [&](auto mr, int64_t m) {
      const uint16_t* xm = x + m * K;
      float* ym = y + m * ldy;
      int64_t n = b0;
      for (; n + 4 <= b1; n += 4) Tile<4, mr>(xm, K, w + n * K, ym + n, ldy);
      for (; n < b1; ++n) Tile<1, mr>(xm, K, w + n * K, ym + n, ldy);
    });
  }
}

void AccumulateRowsBf16(const float* a, int64_t lda, int64_t M, const uint16_t* v, int64_t n,
                        int64_t D, float* acc) {
  ForEachRowGroup<4>(M, [&](auto mr, int64_t m) {
    AccRows<mr>(a + m * lda, lda, v, n, D, acc + m * D);
  });
}

}  // namespace vnp::avx512

#else  // Not x86-64: never called (CpuHasAvx512Bf16() is false); defined so the library links.

#include <cstdlib>

namespace vnp::avx512 {
void GemvBf16(const uint16_t*, int64_t, int64_t, const uint16_t*, int64_t, int64_t, float*, int64_t) {
  std::abort();
}
void AccumulateRowsBf16(const float*, int64_t, int64_t, const uint16_t*, int64_t, int64_t, float*) {
  std::abort();
}
}  // namespace vnp::avx512

#endif
