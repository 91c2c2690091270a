#include "kernels/gemv_avx2.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <type_traits>

#include "kernels/avx2_formats.h"
#include "kernels/tile_sizes.h"

namespace vnp::avx2 {
namespace {

float Sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// `ahead` bytes ahead in the weight stream, which is contiguous across rows, so the prefetch
// also covers the start of the next rows.
template <class L, int ahead>
void Prefetch(const typename L::Elem* w) {
  _mm_prefetch(reinterpret_cast<const char*>(w + ahead / sizeof(typename L::Elem)), _MM_HINT_T0);
}

// R weight rows against one activation row, each row's sum in one accumulator over k in
// Tile's order (8 lanes, then Sum, then the scalar tail): a row's bits are the same at M = 1
// as in Tile at any M, so a row computes alike alone and batched. The R rows' chains hide the
// FMA latency. Rows from R separate places in the weights are R streams a thread reads at
// once: on the 2-core AVX2 host, SmolLM2's decode projections streamed by two threads read
// ~10-18% faster as two streams per thread than as one (a one-off stand-alone chain of the 30
// layers and the lm_head, variants interleaved). Prefetching 1 KB ahead (kPrefetch): on the
// AVX2 host, with the weights in huge pages, a chain of SmolLM2's decode projections ran ~7%
// faster than at 2 KB (alternating builds, 3 pairs); 4 KB was slower and 512 B no better, and
// an L2 hint (T1) slower still. On the Zen 4 host any distance was slower than none (see
// Gemv's prefetch_rows). The tiles below keep 2 KB, which measured 25-40% faster than 1 KB at
// 16 rows.
template <class L, bool kPrefetch, int R>
void DotRows(const float* x, const std::array<const typename L::Elem*, R>& w, int64_t K,
             const std::array<float*, R>& y) {
  __m256 a[R];
  for (auto& v : a) v = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) {
    __m256 xv[4];
    for (int j = 0; j < 4; ++j) xv[j] = _mm256_loadu_ps(x + k + 8 * j);
    for (int r = 0; r < R; ++r) {
      if constexpr (kPrefetch) Prefetch<L, 1024>(w[r] + k);
    }
    for (int j = 0; j < 4; ++j) {
      for (int r = 0; r < R; ++r) a[r] = _mm256_fmadd_ps(L::Load8(w[r] + k + 8 * j), xv[j], a[r]);
    }
  }
  for (; k + 8 <= K; k += 8) {
    const __m256 xv = _mm256_loadu_ps(x + k);
    for (int r = 0; r < R; ++r) a[r] = _mm256_fmadd_ps(L::Load8(w[r] + k), xv, a[r]);
  }
  for (int r = 0; r < R; ++r) {
    float s = Sum(a[r]);
    for (int64_t t = k; t < K; ++t) s += x[t] * L::One(w[r][t]);
    *y[r] = s;
  }
}

// NR weight rows against MR activation rows, 8 k at a time: each widened weight vector feeds
// MR FMAs whose x operands come straight from L1, so a 3×4 tile does 12 FMAs for 7 loads (one
// row against four rows did 8 for 10, and the loads, not the FMAs, bound it). 12 accumulators
// cover the FMA latency; with the 3 weight vectors and the x row's vector that is all 16 ymm
// registers. Not inlined: inlined into RunGemv's loops, GCC 12 ran short of registers and folded
// every x load into its FMA (15 loads for 12 FMAs, load-bound); on its own it keeps the x
// vector in a register, and SmolLM2's projections at 4-128 rows ran at 130-145 GFLOP/s on
// the 2-core Zen 3 host against 77-130 inlined (one-off, 2 threads).
template <class L, int NR, int MR>
__attribute__((noinline)) void Tile(const float* x, int64_t K, const typename L::Elem* w, float* y,
                                    int64_t ldy) {
  __m256 acc[NR][MR];
  for (auto& row : acc) {
    for (auto& v : row) v = _mm256_setzero_ps();
  }
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 wv[NR];
    for (int n = 0; n < NR; ++n) {
      if (k % 32 == 0) Prefetch<L, 2048>(w + n * K + k);
      wv[n] = L::Load8(w + n * K + k);
    }
    for (int m = 0; m < MR; ++m) {
      const __m256 xv = _mm256_loadu_ps(x + m * K + k);
      for (int n = 0; n < NR; ++n) acc[n][m] = _mm256_fmadd_ps(wv[n], xv, acc[n][m]);
    }
  }
  for (int n = 0; n < NR; ++n) {
    for (int m = 0; m < MR; ++m) {
      float s = Sum(acc[n][m]);
      for (int64_t t = k; t < K; ++t) s += x[m * K + t] * L::One(w[n * K + t]);
      y[m * ldy + n] = s;
    }
  }
}

// y[n] for rows [n0, n1) against one activation row: the range in kStreams parts side by side,
// kStreams weight streams (see DotRows); the rows left over one at a time. Four streams of one
// accumulator each decoded SmolLM2 a few percent faster than two streams of four accumulators
// each, and eight slower (Zen 3 host, alternating builds in one process).
constexpr int kStreams = 4;
template <class L, bool kPrefetch>
void OneRowGemv(const float* x, int64_t K, const typename L::Elem* w, int64_t n0, int64_t n1,
                float* y) {
  const int64_t part = (n1 - n0) / kStreams;
  for (int64_t j = n0; j < n0 + part; ++j) {
    std::array<const typename L::Elem*, kStreams> rows;
    std::array<float*, kStreams> out;
    for (int s = 0; s < kStreams; ++s) rows[s] = w + (j + s * part) * K, out[s] = y + j + s * part;
    DotRows<L, kPrefetch, kStreams>(x, rows, K, out);
  }
  for (int64_t n = n0 + kStreams * part; n < n1; ++n) {
    DotRows<L, kPrefetch, 1>(x, {w + n * K}, K, {y + n});
  }
}

// Weight rows [n0, n1) in blocks that stay in L2 while every group of four activation rows
// passes over them: the weights stream from memory once whatever M is, and each group's x
// rows (at most 4 × K floats) stay in L1 across the block.
template <class L>
void RunGemv(const float* x, int64_t M, int64_t K, const void* wv, int64_t n0, int64_t n1,
             float* y, int64_t ldy, bool prefetch_rows) {
  const auto* w = static_cast<const typename L::Elem*>(wv);
  if (M == 1) {  // batch-1 decode: one row is bandwidth-bound; DotRows unrolls k instead
    if (prefetch_rows) {
      OneRowGemv<L, true>(x, K, w, n0, n1, y);
    } else {
      OneRowGemv<L, false>(x, K, w, n0, n1, y);
    }
    return;
  }
  constexpr int64_t kBlockBytes = 32 << 10;
  const int64_t block = std::max<int64_t>(3, kBlockBytes / (K * sizeof(typename L::Elem)) / 3 * 3);
  for (int64_t b0 = n0; b0 < n1; b0 += block) {
    const int64_t b1 = std::min(n1, b0 + block);
    ForEachRowGroup<4>(M, [&](auto mr, int64_t m) {
      const float* xm = x + m * K;
      float* ym = y + m * ldy;
      int64_t n = b0;
      for (; n + 3 <= b1; n += 3) Tile<L, 3, mr>(xm, K, w + n * K, ym + n, ldy);
      if (n < b1) {
        WithSize<2>(b1 - n, [&](auto nr) { Tile<L, nr, mr>(xm, K, w + n * K, ym + n, ldy); });
      }
    });
  }
}

// The sums of four vectors' lanes, in order, in one vector (one shuffle network for all four).
__m128 Sum4(const __m256 (&a)[4]) {
  // s01: a0's and a1's sums of lanes {0,2} and {1,3} (the upper half {4,6} and {5,7}); s23: a2's
  // and a3's. Then v's lane c is vector c's sum of lanes 0-3, and lane c + 4 that of lanes 4-7.
  const __m256 s01 =
      _mm256_add_ps(_mm256_unpacklo_ps(a[0], a[1]), _mm256_unpackhi_ps(a[0], a[1]));
  const __m256 s23 =
      _mm256_add_ps(_mm256_unpacklo_ps(a[2], a[3]), _mm256_unpackhi_ps(a[2], a[3]));
  const __m256 v =
      _mm256_add_ps(_mm256_shuffle_ps(s01, s23, 0x44), _mm256_shuffle_ps(s01, s23, 0xEE));
  return _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
}

// NK keys against NH q heads, 8 dims a step: each widened key vector feeds NH FMAs (the q
// operands from L1, one key vector live at a time: 12 accumulators fit beside it), and each
// head's NK sums leave together through Sum4 instead of one horizontal sum per dot product.
template <class L, int NH, int NK>
void ScoreTile(const float* q, int64_t D, const typename L::Elem* k, float* s, int64_t lds) {
  __m256 acc[NH][4];
  for (auto& head : acc) {
    for (auto& v : head) v = _mm256_setzero_ps();
  }
  for (int64_t d = 0; d < D; d += 8) {
    for (int c = 0; c < NK; ++c) {
      const __m256 kv = L::Load8(k + c * D + d);
      for (int j = 0; j < NH; ++j) {
        acc[j][c] = _mm256_fmadd_ps(kv, _mm256_loadu_ps(q + j * D + d), acc[j][c]);
      }
    }
  }
  for (int j = 0; j < NH; ++j) {
    if constexpr (NK == 4) {
      _mm_storeu_ps(s + j * lds, Sum4(acc[j]));
    } else {
      alignas(16) float sums[4];
      _mm_store_ps(sums, Sum4(acc[j]));
      for (int c = 0; c < NK; ++c) s[j * lds + c] = sums[c];
    }
  }
}

template <class L, int NH>
void ScoreKeys(const float* q, int64_t D, const typename L::Elem* k, int64_t count, float* s,
               int64_t lds) {
  int64_t c = 0;
  for (; c + 4 <= count; c += 4) ScoreTile<L, NH, 4>(q, D, k + c * D, s + c, lds);
  if (c < count) {
    WithSize<3>(count - c, [&](auto nk) { ScoreTile<L, NH, nk>(q, D, k + c * D, s + c, lds); });
  }
}

template <class L>
void RunScores(const float* q, int64_t heads, int64_t D, const void* kv, int64_t count, float* s,
               int64_t lds) {
  const auto* k = static_cast<const typename L::Elem*>(kv);
  ForEachRowGroup<3>(heads, [&](auto nh, int64_t j) {
    ScoreKeys<L, nh>(q + j * D, D, k, count, s + j * lds, lds);
  });
}

// MR rows of acc, 8·DV columns from d0: acc[m, d] += Σ_i a[m · lda + i] · v[i, d]. Each widened
// v vector feeds MR FMAs, one live at a time; the acc tile stays in registers across the n rows
// of v, each element summing over i in order.
template <class L, int MR, int DV>
void AccTile(const float* a, int64_t lda, const typename L::Elem* v, int64_t n, int64_t D,
             int64_t d0, float* acc) {
  __m256 c[MR][DV];
  for (int m = 0; m < MR; ++m) {
    for (int j = 0; j < DV; ++j) c[m][j] = _mm256_loadu_ps(acc + m * D + d0 + 8 * j);
  }
  for (int64_t i = 0; i < n; ++i) {
    __m256 s[MR];
    for (int m = 0; m < MR; ++m) s[m] = _mm256_set1_ps(a[m * lda + i]);
    for (int j = 0; j < DV; ++j) {
      const __m256 vv = L::Load8(v + i * D + d0 + 8 * j);
      for (int m = 0; m < MR; ++m) c[m][j] = _mm256_fmadd_ps(s[m], vv, c[m][j]);
    }
  }
  for (int m = 0; m < MR; ++m) {
    for (int j = 0; j < DV; ++j) _mm256_storeu_ps(acc + m * D + d0 + 8 * j, c[m][j]);
  }
}

// Each accumulator is an FMA chain across the n rows, so few rows of acc need wide d chunks to
// keep enough chains in flight: 32 columns for up to three rows (4 to 12 chains; AccTile keeps
// one v vector live, so 3 × 4 accumulators, 3 broadcasts and it fit the 16 registers), 16 for
// four. With three rows (SmolLM2's three q heads per KV head) the 32 columns went over the
// values half as many times as 16 did: batch-16 decode steps ~3% shorter (in-process A/B).
template <class L, int MR>
void AccRows(const float* a, int64_t lda, const typename L::Elem* v, int64_t n, int64_t D,
             float* acc) {
  int64_t d = 0;
  if constexpr (MR <= 3) {
    for (; d + 32 <= D; d += 32) AccTile<L, MR, 4>(a, lda, v, n, D, d, acc);
  }
  for (; d + 16 <= D; d += 16) AccTile<L, MR, 2>(a, lda, v, n, D, d, acc);
  for (; d + 8 <= D; d += 8) AccTile<L, MR, 1>(a, lda, v, n, D, d, acc);
  for (; d < D; ++d) {
    for (int m = 0; m < MR; ++m) {
      for (int64_t i = 0; i < n; ++i) acc[m * D + d] += a[m * lda + i] * L::One(v[i * D + d]);
    }
  }
}

template <class L>
void RunAccumulateRows(const float* a, int64_t lda, int64_t M, const void* vv, int64_t n,
                       int64_t D, float* acc) {
  const auto* v = static_cast<const typename L::Elem*>(vv);
  ForEachRowGroup<4>(M, [&](auto mr, int64_t m) {
    AccRows<L, mr>(a + m * lda, lda, v, n, D, acc + m * D);
  });
}

// Calls F<L> for the loader of `format`.
template <template <class> class F, class... Args>
auto ByFormat(Format format, Args... args) {
  switch (format) {
    case Format::kBf16: return F<Bf16>::Call(args...);
    case Format::kF16: return F<F16>::Call(args...);
    default: return F<F32>::Call(args...);
  }
}

template <class L> struct GemvOp { static void Call(auto... a) { RunGemv<L>(a...); } };
template <class L> struct ScoresOp { static void Call(auto... a) { RunScores<L>(a...); } };
template <class L> struct AccumulateRowsOp {
  static void Call(auto... a) { RunAccumulateRows<L>(a...); }
};

}  // namespace

void Gemv(Format format, const float* x, int64_t M, int64_t K, const void* w, int64_t n0,
          int64_t n1, float* y, int64_t ldy, bool prefetch_rows) {
  ByFormat<GemvOp>(format, x, M, K, w, n0, n1, y, ldy, prefetch_rows);
}

void Scores(Format format, const float* q, int64_t heads, int64_t D, const void* k,
            int64_t count, float* s, int64_t lds) {
  if (D % 8 != 0) return Gemv(format, q, heads, D, k, 0, count, s, lds);
  ByFormat<ScoresOp>(format, q, heads, D, k, count, s, lds);
}

void AccumulateRows(Format format, const float* a, int64_t lda, int64_t M, const void* v,
                    int64_t n, int64_t D, float* acc) {
  ByFormat<AccumulateRowsOp>(format, a, lda, M, v, n, D, acc);
}

void StoreRows(Format format, const float* y, int64_t ldy, const float* bias, int64_t M,
               int64_t n0, int64_t n1, void* out, int64_t ldo) {
  for (int64_t m = 0; m < M; ++m) {
    const float* ym = y + m * ldy;
    auto sum8 = [&](int64_t n) {
      const __m256 v = _mm256_loadu_ps(ym + n);
      return bias ? _mm256_add_ps(v, _mm256_loadu_ps(bias + n)) : v;
    };
    auto sum1 = [&](int64_t n) { return ym[n] + (bias ? bias[n] : 0.f); };
    int64_t n = n0;
    if (format == Format::kF32) {
      float* o = static_cast<float*>(out) + m * ldo;
      for (; n + 8 <= n1; n += 8) _mm256_storeu_ps(o + n, sum8(n));
      for (; n < n1; ++n) o[n] = sum1(n);
      continue;
    }
    uint16_t* o = static_cast<uint16_t*>(out) + m * ldo;
    for (; n + 8 <= n1; n += 8) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + n), Round16(format, sum8(n)));
    }
    for (; n < n1; ++n) {  // the tail through the same rounding
      o[n] = static_cast<uint16_t>(_mm_extract_epi16(Round16(format, _mm256_set1_ps(sum1(n))), 0));
    }
  }
}

float ExpSum(float* x, int64_t n, float shift) {
  const __m256 sv = _mm256_set1_ps(shift);
  __m256 total = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = Exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), sv));
    _mm256_storeu_ps(x + i, e);
    total = _mm256_add_ps(total, e);
  }
  float sum = Sum(total);
  if (i < n) {  // the tail through the same polynomial, so every element rounds alike
    alignas(32) float tail[8];
    for (int j = 0; j < 8; ++j) tail[j] = i + j < n ? x[i + j] - shift : -100.0f;
    _mm256_store_ps(tail, Exp8(_mm256_load_ps(tail)));
    for (int64_t j = 0; i + j < n; ++j) sum += (x[i + j] = tail[j]);
  }
  return sum;
}

}  // namespace vnp::avx2

#else  // Not x86-64: never called (CpuHasAvx2Kernels() is false); defined so the library links.

#include <cstdlib>

namespace vnp::avx2 {
void Gemv(Format, const float*, int64_t, int64_t, const void*, int64_t, int64_t, float*, int64_t,
          bool) {
  std::abort();
}
void Scores(Format, const float*, int64_t, int64_t, const void*, int64_t, float*, int64_t) {
  std::abort();
}
void AccumulateRows(Format, const float*, int64_t, int64_t, const void*, int64_t, int64_t,
                    float*) {
  std::abort();
}
float ExpSum(float*, int64_t, float) { std::abort(); }
void StoreRows(Format, const float*, int64_t, const float*, int64_t, int64_t, int64_t, void*,
               int64_t) {
  std::abort();
}
}  // namespace vnp::avx2

#endif
