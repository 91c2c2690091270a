#include "kernels/flash_attention_avx512.h"

#if defined(__x86_64__)
// As in gemv_avx512.cc: GCC 12's AVX-512 intrinsics trip -Wuninitialized (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "kernels/exp_poly.h"
#include "kernels/tile_sizes.h"

namespace vnp::avx512 {
namespace {

constexpr int64_t kLanes = kFlashTokens;
constexpr int64_t kPairs = kFlashKeys / 2;

int64_t Min(int64_t a, int64_t b) { return a < b ? a : b; }  // see gemv_avx512.cc on std::min

// The 32-bit word at p: two bf16 values, broadcast as a pair to every lane of a dot product.
__m512bh Pair(const uint16_t* p) {
  int32_t bits;
  __builtin_memcpy(&bits, p, sizeof bits);
  return (__m512bh)_mm512_set1_epi32(bits);
}
__m512bh PairAt(const uint32_t* p) { return (__m512bh)_mm512_set1_epi32(static_cast<int32_t>(*p)); }

// exp(x) in 16 lanes through exp_poly.h's polynomial, as the AVX2 kernels' Exp8 (relative
// error within 2e-7 between kMin and kMax); 0 below kMin, so masked scores (-inf) give exactly
// 0; a NaN passes through.
__m512 Exp16(__m512 x) {
  using namespace exp_poly;
  const __mmask16 tiny = _mm512_cmp_ps_mask(x, _mm512_set1_ps(kMin), _CMP_LT_OQ);
  x = _mm512_min_ps(_mm512_set1_ps(kMax), _mm512_max_ps(_mm512_set1_ps(kMin), x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), r);
  __m512 p = _mm512_set1_ps(kP[0]);
  for (int i = 1; i < 6; ++i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP[i]));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  const __m512i e =
      _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_maskz_mov_ps(static_cast<__mmask16>(~tiny), _mm512_mul_ps(p, _mm512_castsi512_ps(e)));
}

// Where one call's pieces live in its scratch (offsets in floats; 32-bit words for the
// packed bf16 pairs). The one layout gives both the pointers and FlashScratchFloats.
struct Scratch {
  uint32_t* q;   // [heads][head_dim / 2][16]: q pairs, a token per lane
  float* s;      // [heads][kFlashKeys][16]: one key tile's scores, a token per lane
  uint32_t* p;   // [heads][kPairs][16]: probabilities of key pairs (2i, 2i + 1), bf16 pairs
  uint32_t* v;   // [kPairs][head_dim]: value pairs, v[2i][d] and v[2i + 1][d] side by side
  float* o;      // [heads · 16][head_dim]: unnormalised outputs, row h · 16 + t
  float* max;    // [heads][16]: running maxima of the raw scores
  float* sum;    // [heads][16]: running sums of the probabilities
  float* alpha;  // [heads][16]: this tile's rescale of earlier outputs
  int64_t floats = 0;  // the total
  Scratch(float* base, int64_t heads, int64_t D) {
    auto take = [&](int64_t n) {
      float* at = base ? base + floats : nullptr;  // null base: only the total is wanted
      floats += n;
      return at;
    };
    q = reinterpret_cast<uint32_t*>(take(heads * D / 2 * kLanes));
    s = take(heads * kFlashKeys * kLanes);
    p = reinterpret_cast<uint32_t*>(take(heads * kPairs * kLanes));
    v = reinterpret_cast<uint32_t*>(take(kPairs * D));
    o = take(heads * kLanes * D);
    max = take(heads * kLanes);
    sum = take(heads * kLanes);
    alpha = take(heads * kLanes);
  }
};

// Scores of NR keys for MG heads: s[g][i] (16 lanes) = Σ_j q[g][j] · key_i[j] over the
// head_dim / 2 pairs j. Each key pair is broadcast from the cache row; each q vector serves NR
// keys, so the tile does NR · MG dot products for MG loads and NR broadcasts.
template <int NR, int MG>
void ScoreTile(const uint32_t* q, int64_t J, const uint16_t* const* keys, float* s,
               int64_t s_head_stride) {
  __m512 acc[NR][MG];
  for (auto& row : acc) {
    for (auto& a : row) a = _mm512_setzero_ps();
  }
  for (int64_t j = 0; j < J; ++j) {
    __m512bh qv[MG];
    for (int g = 0; g < MG; ++g) qv[g] = (__m512bh)_mm512_loadu_si512(q + (g * J + j) * kLanes);
    for (int r = 0; r < NR; ++r) {
      const __m512bh kv = Pair(keys[r] + 2 * j);
      for (int g = 0; g < MG; ++g) acc[r][g] = _mm512_dpbf16_ps(acc[r][g], kv, qv[g]);
    }
  }
  for (int r = 0; r < NR; ++r) {
    for (int g = 0; g < MG; ++g) _mm512_storeu_ps(s + g * s_head_stride + r * kLanes, acc[r][g]);
  }
}

template <int MG>
void ScoreHeads(const uint32_t* q, int64_t J, const uint16_t* const* keys, int64_t n, float* s) {
  constexpr int NR = MG == 4 ? 4 : 8;  // at most 24 accumulators of the 32 registers
  const int64_t stride = kFlashKeys * kLanes;
  int64_t i = 0;
  for (; i + NR <= n; i += NR) ScoreTile<NR, MG>(q, J, keys + i, s + i * kLanes, stride);
  for (; i < n; ++i) ScoreTile<1, MG>(q, J, keys + i, s + i * kLanes, stride);
}

// R output rows, 16 · DV columns from d0: o = o · alpha + Σ_i p[i] · v[i] over the tile's key
// pairs i, each row's probability pair broadcast against DV value vectors.
template <int R, int DV>
void ValueTile(const uint32_t* const* p, const float* alpha, const uint32_t* v, int64_t D,
               int64_t pairs, float* const* o, int64_t d0) {
  __m512 acc[R][DV];
  for (int r = 0; r < R; ++r) {
    const __m512 a = _mm512_set1_ps(alpha[r]);
    for (int j = 0; j < DV; ++j) acc[r][j] = _mm512_mul_ps(_mm512_loadu_ps(o[r] + d0 + 16 * j), a);
  }
  for (int64_t i = 0; i < pairs; ++i) {
    __m512bh vv[DV];
    for (int j = 0; j < DV; ++j) vv[j] = (__m512bh)_mm512_loadu_si512(v + i * D + d0 + 16 * j);
    for (int r = 0; r < R; ++r) {
      const __m512bh pv = PairAt(p[r] + i * kLanes);
      for (int j = 0; j < DV; ++j) acc[r][j] = _mm512_dpbf16_ps(acc[r][j], pv, vv[j]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < DV; ++j) _mm512_storeu_ps(o[r] + d0 + 16 * j, acc[r][j]);
  }
}

template <int R>
void ValueRows(const uint32_t* const* p, const float* alpha, const uint32_t* v, int64_t D,
               int64_t pairs, float* const* o) {
  int64_t d = 0;
  for (; d + 64 <= D; d += 64) ValueTile<R, 4>(p, alpha, v, D, pairs, o, d);
  for (; d < D; d += 32) ValueTile<R, 2>(p, alpha, v, D, pairs, o, d);  // D is a multiple of 32
}

}  // namespace

int64_t FlashScratchFloats(int64_t heads, int64_t head_dim) {
  return Scratch(nullptr, heads, head_dim).floats;
}

void FlashAttentionBf16(const FlashHead& h, const FlashTile& tile, float* scratch) {
  const int64_t H = h.heads, D = h.head_dim, J = D / 2, T = tile.tokens;
  Scratch w(scratch, H, D);
  // q as pairs, a token per lane; lanes past the tile's tokens hold zeros and the last
  // token's position, and their results are not stored.
  for (int64_t g = 0; g < H; ++g) {
    for (int64_t j = 0; j < J; ++j) {
      for (int64_t t = 0; t < kLanes; ++t) {
        uint32_t bits = 0;
        if (t < T) __builtin_memcpy(&bits, tile.q + t * tile.stride + g * D + 2 * j, sizeof bits);
        w.q[(g * J + j) * kLanes + t] = bits;
      }
    }
  }
  for (int64_t i = 0; i < H * kLanes * D; ++i) w.o[i] = 0.f;
  for (int64_t i = 0; i < H * kLanes; ++i) w.max[i] = -__builtin_inff(), w.sum[i] = 0.f;
  const int64_t last = tile.first_pos + T - 1;
  const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  const __m512i qpos = _mm512_min_epi32(_mm512_add_epi32(lane, _mm512_set1_epi32(static_cast<int32_t>(tile.first_pos))),
                                        _mm512_set1_epi32(static_cast<int32_t>(last)));
  const __m512i qfloor = _mm512_sub_epi32(qpos, _mm512_set1_epi32(static_cast<int32_t>(h.window)));
  const __m512 scale = _mm512_set1_ps(h.scale), neg_inf = _mm512_set1_ps(-__builtin_inff());
  // Value pairs of two rows, 16 columns each: words (a[d], b[d]) for d in the low and high halves.
  const __m512i lo = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8,
                                      39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
  const __m512i hi = _mm512_add_epi16(lo, _mm512_set1_epi16(16));
  // bf16 pairs (p0[t], p1[t]) from cvtne2ps(p1, p0), whose low half is p0 and high half p1.
  const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                              23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const int64_t begin = FirstKeyTile(h, tile.first_pos, kFlashKeys);
  const uint16_t* keys[kFlashKeys];
  for (int64_t k0 = begin; k0 <= last; k0 += kFlashKeys) {
    const int64_t n = Min(kFlashKeys, last + 1 - k0), pairs = (n + 1) / 2;
    for (int64_t i = 0; i < n; ++i) keys[i] = CacheRow(h, h.k, k0 + i);
    ForEachRowGroup<4>(H, [&](auto mg, int64_t g) {
      ScoreHeads<mg>(w.q + g * J * kLanes, J, keys, n, w.s + g * kFlashKeys * kLanes);
    });
    // Keys some lane must not see: past the first token (causal) or before the last token's
    // window; a masked score is -inf, so its probability is exactly 0.
    const bool masked = TileHidesKeys(h, tile.first_pos, last, k0, n);
    __mmask16 visible[kFlashKeys];
    for (int64_t i = 0; masked && i < n; ++i) {
      const __m512i kpos = _mm512_set1_epi32(static_cast<int32_t>(k0 + i));
      visible[i] = _mm512_cmp_epi32_mask(kpos, qpos, _MM_CMPINT_LE);
      if (h.window > 0) visible[i] &= _mm512_cmp_epi32_mask(kpos, qfloor, _MM_CMPINT_NLE);
    }
    for (int64_t g = 0; g < H; ++g) {
      float* s = w.s + g * kFlashKeys * kLanes;
      __m512 m = _mm512_loadu_ps(w.max + g * kLanes);
      const __m512 before = m;
      for (int64_t i = 0; i < n; ++i) {
        __m512 si = _mm512_loadu_ps(s + i * kLanes);
        if (masked) _mm512_storeu_ps(s + i * kLanes, si = _mm512_mask_mov_ps(neg_inf, visible[i], si));
        m = _mm512_max_ps(m, si);
      }
      // A lane that has seen no visible key yet keeps 0 as its reference: exp(-inf - 0) = 0.
      const __m512 ref = _mm512_mul_ps(_mm512_mask_mov_ps(m, _mm512_cmp_ps_mask(m, neg_inf, _CMP_EQ_OQ),
                                                          _mm512_setzero_ps()), scale);
      // Exactly 1 where the max held (the same product both times), 0 before any visible key.
      const __m512 alpha = Exp16(_mm512_sub_ps(_mm512_mul_ps(before, scale), ref));
      _mm512_storeu_ps(w.max + g * kLanes, m);
      _mm512_storeu_ps(w.alpha + g * kLanes, alpha);
      __m512 total = _mm512_mul_ps(_mm512_loadu_ps(w.sum + g * kLanes), alpha);
      for (int64_t i = 0; i < pairs; ++i) {
        const __m512 p0 = Exp16(_mm512_fmsub_ps(_mm512_loadu_ps(s + 2 * i * kLanes), scale, ref));
        const __m512 p1 = 2 * i + 1 < n
                              ? Exp16(_mm512_fmsub_ps(_mm512_loadu_ps(s + (2 * i + 1) * kLanes), scale, ref))
                              : _mm512_setzero_ps();
        total = _mm512_add_ps(_mm512_add_ps(total, p0), p1);
        const __m512i pair = _mm512_permutexvar_epi16(interleave, (__m512i)_mm512_cvtne2ps_pbh(p1, p0));
        _mm512_storeu_si512(w.p + (g * kPairs + i) * kLanes, pair);
      }
      _mm512_storeu_ps(w.sum + g * kLanes, total);
    }
    // Value pairs; an odd last key pairs with zeros (its partner's probability is 0).
    for (int64_t i = 0; i < pairs; ++i) {
      const uint16_t* a = CacheRow(h, h.v, k0 + 2 * i);
      const uint16_t* b = 2 * i + 1 < n ? CacheRow(h, h.v, k0 + 2 * i + 1) : nullptr;
      for (int64_t d = 0; d < D; d += 32) {
        const __m512i av = _mm512_loadu_si512(a + d);
        const __m512i bv = b ? _mm512_loadu_si512(b + d) : _mm512_setzero_si512();
        _mm512_storeu_si512(w.v + i * D + d, _mm512_permutex2var_epi16(av, lo, bv));
        _mm512_storeu_si512(w.v + i * D + d + 16, _mm512_permutex2var_epi16(av, hi, bv));
      }
    }
    // The stored rows (head g, token t < T), four at a time.
    const int64_t rows = H * T;
    for (int64_t r0 = 0; r0 < rows; r0 += 4) {
      const int64_t R = Min(4, rows - r0);
      const uint32_t* p[4];
      float alpha[4];
      float* o[4];
      for (int64_t r = 0; r < R; ++r) {
        const int64_t g = (r0 + r) / T, t = (r0 + r) % T;
        p[r] = w.p + g * kPairs * kLanes + t;
        alpha[r] = w.alpha[g * kLanes + t];
        o[r] = w.o + (g * kLanes + t) * D;
      }
      WithSize<4>(R, [&](auto r) { ValueRows<r>(p, alpha, w.v, D, pairs, o); });
    }
  }
  for (int64_t g = 0; g < H; ++g) {
    for (int64_t t = 0; t < T; ++t) {
      const __m512 total = _mm512_set1_ps(w.sum[g * kLanes + t]);
      const float* o = w.o + (g * kLanes + t) * D;
      uint16_t* out = tile.out + t * tile.stride + g * D;
      for (int64_t d = 0; d < D; d += 16) {
        const __m256bh y = _mm512_cvtneps_pbh(_mm512_div_ps(_mm512_loadu_ps(o + d), total));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + d), (__m256i)y);
      }
    }
  }
}

}  // namespace vnp::avx512

#else  // Not x86-64: never called (CpuHasAvx512Bf16() is false); defined so the library links.

#include <cstdlib>

namespace vnp::avx512 {
int64_t FlashScratchFloats(int64_t, int64_t) { return 0; }
void FlashAttentionBf16(const FlashHead&, const FlashTile&, float*) { std::abort(); }
}  // namespace vnp::avx512

#endif
