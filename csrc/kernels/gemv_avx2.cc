#include "kernels/gemv_avx2.h"

#if defined(__x86_64__)
#include <immintrin.h>

namespace vnp::avx2 {
namespace {

struct F32 {
  using Elem = float;
  static __m256 Load8(const float* p) { return _mm256_loadu_ps(p); }
  static float One(float v) { return v; }
};

struct Bf16 {
  using Elem = uint16_t;
  static __m256 Load8(const uint16_t* p) {
    __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
  static float One(uint16_t v) {
    uint32_t bits = static_cast<uint32_t>(v) << 16;
    float f;
    __builtin_memcpy(&f, &bits, sizeof f);
    return f;
  }
};

struct F16 {
  using Elem = uint16_t;
  static __m256 Load8(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static float One(uint16_t v) { return _cvtsh_ss(v); }
};

float Sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// ~2 KB ahead in the weight stream, which is contiguous across rows, so the prefetch also
// covers the start of the next rows.
template <class L>
void Prefetch(const typename L::Elem* w) {
  _mm_prefetch(reinterpret_cast<const char*>(w + 2048 / sizeof(typename L::Elem)), _MM_HINT_T0);
}

// One row against one activation row; four accumulators hide the FMA latency.
template <class L>
float Dot1(const float* x, const typename L::Elem* w, int64_t K) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) {
    Prefetch<L>(w + k);
    a0 = _mm256_fmadd_ps(L::Load8(w + k), _mm256_loadu_ps(x + k), a0);
    a1 = _mm256_fmadd_ps(L::Load8(w + k + 8), _mm256_loadu_ps(x + k + 8), a1);
    a2 = _mm256_fmadd_ps(L::Load8(w + k + 16), _mm256_loadu_ps(x + k + 16), a2);
    a3 = _mm256_fmadd_ps(L::Load8(w + k + 24), _mm256_loadu_ps(x + k + 24), a3);
  }
  for (; k + 8 <= K; k += 8) a0 = _mm256_fmadd_ps(L::Load8(w + k), _mm256_loadu_ps(x + k), a0);
  float s = Sum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; k < K; ++k) s += x[k] * L::One(w[k]);
  return s;
}

// One weight row against four activation rows: each widened weight vector feeds four FMAs,
// and two k steps per iteration give eight independent accumulators to cover FMA latency.
template <class L>
void Dot4(const float* x, int64_t K, const typename L::Elem* w, float* y, int64_t ldy) {
  __m256 a[8];
  for (auto& v : a) v = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    if (k % 32 == 0) Prefetch<L>(w + k);
    const __m256 w0 = L::Load8(w + k), w1 = L::Load8(w + k + 8);
    for (int m = 0; m < 4; ++m) {
      a[m] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + m * K + k), a[m]);
      a[4 + m] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + m * K + k + 8), a[4 + m]);
    }
  }
  for (; k + 8 <= K; k += 8) {
    const __m256 w0 = L::Load8(w + k);
    for (int m = 0; m < 4; ++m) a[m] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + m * K + k), a[m]);
  }
  float s[4];
  for (int m = 0; m < 4; ++m) s[m] = Sum(_mm256_add_ps(a[m], a[4 + m]));
  for (; k < K; ++k) {
    const float wk = L::One(w[k]);
    for (int m = 0; m < 4; ++m) s[m] += x[m * K + k] * wk;
  }
  for (int m = 0; m < 4; ++m) y[m * ldy] = s[m];
}

template <class L>
void RunGemv(const float* x, int64_t M, int64_t K, const void* wv, int64_t n0, int64_t n1,
             float* y, int64_t ldy) {
  const auto* w = static_cast<const typename L::Elem*>(wv);
  for (int64_t n = n0; n < n1; ++n) {
    int64_t m = 0;
    for (; m + 4 <= M; m += 4) Dot4<L>(x + m * K, K, w + n * K, y + m * ldy + n, ldy);
    for (; m < M; ++m) y[m * ldy + n] = Dot1<L>(x + m * K, w + n * K, K);
  }
}

template <class L>
void RunAxpy(float a, const void* vv, float* acc, int64_t n) {
  const auto* v = static_cast<const typename L::Elem*>(vv);
  const __m256 av = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(av, L::Load8(v + i), _mm256_loadu_ps(acc + i)));
  }
  for (; i < n; ++i) acc[i] += a * L::One(v[i]);
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
template <class L> struct DotOp {
  static float Call(const float* x, const void* v, int64_t n) {
    return Dot1<L>(x, static_cast<const typename L::Elem*>(v), n);
  }
};
template <class L> struct AxpyOp { static void Call(auto... a) { RunAxpy<L>(a...); } };

}  // namespace

void Gemv(Format format, const float* x, int64_t M, int64_t K, const void* w, int64_t n0,
          int64_t n1, float* y, int64_t ldy) {
  ByFormat<GemvOp>(format, x, M, K, w, n0, n1, y, ldy);
}

float Dot(Format format, const float* x, const void* v, int64_t n) {
  return ByFormat<DotOp>(format, x, v, n);
}

void Axpy(Format format, float a, const void* v, float* acc, int64_t n) {
  ByFormat<AxpyOp>(format, a, v, acc, n);
}

}  // namespace vnp::avx2

#else  // Not x86-64: never called (CpuHasAvx2Kernels() is false); defined so the library links.

#include <cstdlib>

namespace vnp::avx2 {
void Gemv(Format, const float*, int64_t, int64_t, const void*, int64_t, int64_t, float*, int64_t) {
  std::abort();
}
float Dot(Format, const float*, const void*, int64_t) { std::abort(); }
void Axpy(Format, float, const void*, float*, int64_t) { std::abort(); }
}  // namespace vnp::avx2

#endif
