#include "kernels/flash_attention_avx2.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include "kernels/avx2_formats.h"
#include "kernels/tile_sizes.h"

namespace vnp::avx2 {
namespace {

constexpr int64_t kLanes = kFlashTokens;

int64_t Min(int64_t a, int64_t b) { return a < b ? a : b; }  // see gemv_avx512.cc on std::min

// Exp8, but exactly 0 below exp_poly::kMin (where Exp8 clamps): a masked score (-inf) gets a
// probability of exactly 0.
__m256 ExpOrZero(__m256 x) {
  const __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(exp_poly::kMin), _CMP_LT_OQ);
  return _mm256_andnot_ps(tiny, Exp8(x));
}

// n bf16 values at p widened into out (n a multiple of 8).
void WidenBf16(const uint16_t* p, float* out, int64_t n) {
  for (int64_t d = 0; d < n; d += 8) _mm256_storeu_ps(out + d, Bf16::Load8(p + d));
}

// Where one call's pieces live in its scratch (offsets in floats). The one layout gives both
// the pointers and FlashScratchFloats.
struct Scratch {
  float* q;      // [heads][head_dim][8]: q widened, a token per lane
  float* k;      // [kFlashKeys][head_dim]: one key tile widened
  float* v;      // [kFlashKeys][head_dim]: its values widened
  float* s;      // [heads][kFlashKeys][8]: the tile's scores, a token per lane
  float* p;      // [heads][kFlashKeys][8]: their probabilities, rounded to bf16 values
  float* o;      // [heads · 8][head_dim]: unnormalised outputs, row h · 8 + t
  float* max;    // [heads][8]: running maxima of the raw scores
  float* sum;    // [heads][8]: running sums of the probabilities
  float* alpha;  // [heads][8]: this tile's rescale of earlier outputs
  int64_t floats = 0;  // the total
  Scratch(float* base, int64_t heads, int64_t D) {
    auto take = [&](int64_t n) {
      float* at = base ? base + floats : nullptr;  // null base: only the total is wanted
      floats += n;
      return at;
    };
    q = take(heads * D * kLanes);
    k = take(kFlashKeys * D);
    v = take(kFlashKeys * D);
    s = take(heads * kFlashKeys * kLanes);
    p = take(heads * kFlashKeys * kLanes);
    o = take(heads * kLanes * D);
    max = take(heads * kLanes);
    sum = take(heads * kLanes);
    alpha = take(heads * kLanes);
  }
};

// Scores of NR keys for MG heads: s[g][r] (8 lanes) = Σ_d q[g][d] · k[r][d]. Each key value is
// broadcast against MG q vectors: NR · MG FMAs for MG loads and NR broadcasts a step of d.
// Out of line for the reason gemv_avx2.cc's Tile is (inlined, GCC 12 runs out of the 16
// registers). The broadcasts are _mm256_set1_ps of a loaded float, not _mm256_broadcast_ss:
// GCC 12 takes that builtin's pointer as one that may alias the accumulators (__m256 may alias
// anything) and stored all twelve to the stack before each broadcast (objdump), which ran this
// kernel at half the speed of torch's SDPA.
template <int NR, int MG>
__attribute__((noinline)) void ScoreTile(const float* q, int64_t D, const float* k, float* s,
                                         int64_t s_head_stride) {
  __m256 acc[NR][MG];
  for (auto& row : acc) {
    for (auto& a : row) a = _mm256_setzero_ps();
  }
  for (int64_t d = 0; d < D; ++d) {
    __m256 qv[MG];
    for (int g = 0; g < MG; ++g) qv[g] = _mm256_loadu_ps(q + (g * D + d) * kLanes);
    for (int r = 0; r < NR; ++r) {
      const __m256 kv = _mm256_set1_ps(k[r * D + d]);
      for (int g = 0; g < MG; ++g) acc[r][g] = _mm256_fmadd_ps(kv, qv[g], acc[r][g]);
    }
  }
  for (int r = 0; r < NR; ++r) {
    for (int g = 0; g < MG; ++g) _mm256_storeu_ps(s + g * s_head_stride + r * kLanes, acc[r][g]);
  }
}

template <int MG>
void ScoreHeads(const float* q, int64_t D, const float* k, int64_t n, float* s) {
  constexpr int NR = MG == 3 ? 4 : MG == 2 ? 6 : 8;  // at most 12 accumulators of 16 registers
  const int64_t stride = kFlashKeys * kLanes;
  int64_t i = 0;
  for (; i + NR <= n; i += NR) ScoreTile<NR, MG>(q, D, k + i * D, s + i * kLanes, stride);
  for (; i < n; ++i) ScoreTile<1, MG>(q, D, k + i * D, s + i * kLanes, stride);
}

// R output rows, 8 · DV columns from d0: o = o · alpha + Σ_i p[i] · v[i] over the tile's n
// keys, each row's probability broadcast against DV value vectors.
template <int R, int DV>
__attribute__((noinline)) void ValueTile(const float* const* p, const float* alpha,
                                         const float* v, int64_t D, int64_t n, float* const* o,
                                         int64_t d0) {
  __m256 acc[R][DV];
  for (int r = 0; r < R; ++r) {
    const __m256 a = _mm256_set1_ps(alpha[r]);
    for (int j = 0; j < DV; ++j) acc[r][j] = _mm256_mul_ps(_mm256_loadu_ps(o[r] + d0 + 8 * j), a);
  }
  for (int64_t i = 0; i < n; ++i) {
    __m256 vv[DV];
    for (int j = 0; j < DV; ++j) vv[j] = _mm256_loadu_ps(v + i * D + d0 + 8 * j);
    for (int r = 0; r < R; ++r) {
      const __m256 pv = _mm256_set1_ps(p[r][i * kLanes]);
      for (int j = 0; j < DV; ++j) acc[r][j] = _mm256_fmadd_ps(pv, vv[j], acc[r][j]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < DV; ++j) _mm256_storeu_ps(o[r] + d0 + 8 * j, acc[r][j]);
  }
}

template <int R>
void ValueRows(const float* const* p, const float* alpha, const float* v, int64_t D, int64_t n,
               float* const* o) {
  int64_t d = 0;
  for (; d + 16 <= D; d += 16) ValueTile<R, 2>(p, alpha, v, D, n, o, d);
  if (d < D) ValueTile<R, 1>(p, alpha, v, D, n, o, d);  // D is a multiple of 8
}

}  // namespace

int64_t FlashScratchFloats(int64_t heads, int64_t head_dim) {
  return Scratch(nullptr, heads, head_dim).floats;
}

void FlashAttentionBf16(const FlashHead& h, const FlashTile& tile, float* scratch) {
  const int64_t H = h.heads, D = h.head_dim, T = tile.tokens;
  Scratch w(scratch, H, D);
  // q widened, a token per lane; lanes past the tile's tokens hold zeros and the last token's
  // position, and their results are not stored.
  for (int64_t g = 0; g < H; ++g) {
    for (int64_t d = 0; d < D; ++d) {
      for (int64_t t = 0; t < kLanes; ++t) {
        w.q[(g * D + d) * kLanes + t] = t < T ? Bf16::One(tile.q[t * tile.stride + g * D + d]) : 0.f;
      }
    }
  }
  for (int64_t i = 0; i < H * kLanes * D; ++i) w.o[i] = 0.f;
  for (int64_t i = 0; i < H * kLanes; ++i) w.max[i] = -__builtin_inff(), w.sum[i] = 0.f;
  const int64_t last = tile.first_pos + T - 1;
  const __m256i qpos = _mm256_min_epi32(
      _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                       _mm256_set1_epi32(static_cast<int32_t>(tile.first_pos))),
      _mm256_set1_epi32(static_cast<int32_t>(last)));
  const __m256i qfloor = _mm256_sub_epi32(qpos, _mm256_set1_epi32(static_cast<int32_t>(h.window)));
  const __m256 scale = _mm256_set1_ps(h.scale), neg_inf = _mm256_set1_ps(-__builtin_inff());
  const int64_t begin = FirstKeyTile(h, tile.first_pos, kFlashKeys);
  for (int64_t k0 = begin; k0 <= last; k0 += kFlashKeys) {
    const int64_t n = Min(kFlashKeys, last + 1 - k0);
    for (int64_t i = 0; i < n; ++i) WidenBf16(CacheRow(h, h.k, k0 + i), w.k + i * D, D);
    ForEachRowGroup<3>(H, [&](auto mg, int64_t g) {
      ScoreHeads<mg>(w.q + g * D * kLanes, D, w.k, n, w.s + g * kFlashKeys * kLanes);
    });
    // Keys some lane must not see: past the first token (causal) or before the last token's
    // window; a masked score is -inf, so its probability is exactly 0.
    const bool masked = TileHidesKeys(h, tile.first_pos, last, k0, n);
    __m256 hidden[kFlashKeys];
    for (int64_t i = 0; masked && i < n; ++i) {
      const __m256i kpos = _mm256_set1_epi32(static_cast<int32_t>(k0 + i));
      __m256i out = _mm256_cmpgt_epi32(kpos, qpos);
      if (h.window > 0) out = _mm256_or_si256(out, _mm256_xor_si256(_mm256_cmpgt_epi32(kpos, qfloor),
                                                                      _mm256_set1_epi32(-1)));
      hidden[i] = _mm256_castsi256_ps(out);
    }
    for (int64_t g = 0; g < H; ++g) {
      float* s = w.s + g * kFlashKeys * kLanes;
      __m256 m = _mm256_loadu_ps(w.max + g * kLanes);
      const __m256 before = m;
      for (int64_t i = 0; i < n; ++i) {
        __m256 si = _mm256_loadu_ps(s + i * kLanes);
        if (masked) _mm256_storeu_ps(s + i * kLanes, si = _mm256_blendv_ps(si, neg_inf, hidden[i]));
        m = _mm256_max_ps(m, si);
      }
      // A lane that has seen no visible key yet keeps 0 as its reference: exp(-inf - 0) = 0.
      const __m256 ref = _mm256_mul_ps(
          _mm256_andnot_ps(_mm256_cmp_ps(m, neg_inf, _CMP_EQ_OQ), m), scale);
      // Exactly 1 where the max held (the same product both times), 0 before any visible key.
      const __m256 alpha = ExpOrZero(_mm256_sub_ps(_mm256_mul_ps(before, scale), ref));
      _mm256_storeu_ps(w.max + g * kLanes, m);
      _mm256_storeu_ps(w.alpha + g * kLanes, alpha);
      __m256 total = _mm256_mul_ps(_mm256_loadu_ps(w.sum + g * kLanes), alpha);
      float* pg = w.p + g * kFlashKeys * kLanes;
      for (int64_t i = 0; i < n; ++i) {
        const __m256 pi = ExpOrZero(_mm256_fmsub_ps(_mm256_loadu_ps(s + i * kLanes), scale, ref));
        total = _mm256_add_ps(total, pi);
        _mm256_storeu_ps(pg + i * kLanes, RoundBf16InF32(pi));
      }
      _mm256_storeu_ps(w.sum + g * kLanes, total);
    }
    for (int64_t i = 0; i < n; ++i) WidenBf16(CacheRow(h, h.v, k0 + i), w.v + i * D, D);
    // The stored rows (head g, token t < T), six at a time.
    constexpr int64_t kRows = 6;
    const int64_t rows = H * T;
    for (int64_t r0 = 0; r0 < rows; r0 += kRows) {
      const int64_t R = Min(kRows, rows - r0);
      const float* p[kRows];
      float alpha[kRows];
      float* o[kRows];
      for (int64_t r = 0; r < R; ++r) {
        const int64_t g = (r0 + r) / T, t = (r0 + r) % T;
        p[r] = w.p + g * kFlashKeys * kLanes + t;
        alpha[r] = w.alpha[g * kLanes + t];
        o[r] = w.o + (g * kLanes + t) * D;
      }
      WithSize<kRows>(R, [&](auto r) { ValueRows<r>(p, alpha, w.v, D, n, o); });
    }
  }
  for (int64_t g = 0; g < H; ++g) {
    for (int64_t t = 0; t < T; ++t) {
      const __m256 total = _mm256_set1_ps(w.sum[g * kLanes + t]);
      const float* o = w.o + (g * kLanes + t) * D;
      uint16_t* out = tile.out + t * tile.stride + g * D;
      for (int64_t d = 0; d < D; d += 8) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + d),
                         RoundBf16(_mm256_div_ps(_mm256_loadu_ps(o + d), total)));
      }
    }
  }
}

}  // namespace vnp::avx2

#else  // Not x86-64: never called (CpuHasAvx2Kernels() is false); defined so the library links.

#include <cstdlib>

namespace vnp::avx2 {
int64_t FlashScratchFloats(int64_t, int64_t) { return 0; }
void FlashAttentionBf16(const FlashHead&, const FlashTile&, float*) { std::abort(); }
}  // namespace vnp::avx2

#endif
