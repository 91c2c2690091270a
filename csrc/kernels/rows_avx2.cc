#include "kernels/rows_avx2.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include "kernels/avx2_formats.h"

namespace vnp::avx2 {
namespace {

// A row of values of one format, read and written eight at a time or, in the tail, one at a
// time through the same vector code (a broadcast in, lane 0 out), so every value rounds alike.
struct Row {
  Format format;
  const void* p;
  const char* At(int64_t i) const { return static_cast<const char*>(p) + i * ElementSize(format); }
  template <class E>
  const E* As(int64_t i) const { return reinterpret_cast<const E*>(At(i)); }
  __m256 Load(int64_t i, bool one) const {
    if (!one) return Load8(format, At(i));
    switch (format) {
      case Format::kBf16: return _mm256_set1_ps(Bf16::One(*As<uint16_t>(i)));
      case Format::kF16: return _mm256_set1_ps(F16::One(*As<uint16_t>(i)));
      default: return _mm256_set1_ps(*As<float>(i));
    }
  }
  void Store(int64_t i, __m256 v, bool one) const {
    char* at = const_cast<char*>(At(i));
    if (!one) return Store8(format, v, at);
    if (format == Format::kF32) {
      *reinterpret_cast<float*>(at) = _mm256_cvtss_f32(v);
    } else {
      *reinterpret_cast<uint16_t*>(at) =
          static_cast<uint16_t>(_mm_extract_epi16(Round16(format, v), 0));
    }
  }
};

// out[i] = op(ins[i]...) for i < n, each in and out of `format`.
template <class Op, class... In>
void Map(Format format, void* out, int64_t n, Op op, In... ins) {
  const Row o{format, out};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) o.Store(i, op(Row{format, ins}.Load(i, false)...), false);
  for (; i < n; ++i) o.Store(i, op(Row{format, ins}.Load(i, true)...), true);
}

}  // namespace

void AddRow(Format format, void* x, const void* add, int64_t n) {
  Map(format, x, n, [](__m256 a, __m256 b) { return _mm256_add_ps(a, b); },
      static_cast<const void*>(x), add);
}

float SumOfSquares(Format format, const void* x, int64_t n) {
  const Row r{format, x};
  float ss = 0.f;
  alignas(32) float sq[8];
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = r.Load(i, false);
    _mm256_store_ps(sq, _mm256_mul_ps(v, v));
    for (float s : sq) ss += s;
  }
  for (; i < n; ++i) {  // the square as a vector product too: no FMA contraction into ss
    const __m256 v = r.Load(i, true);
    ss += _mm256_cvtss_f32(_mm256_mul_ps(v, v));
  }
  return ss;
}

void ScaleRow(Format format, const void* x, float scale, const void* w, void* out, int64_t n) {
  const __m256 s = _mm256_set1_ps(scale);
  Map(format, out, n,
      [&](__m256 xv, __m256 wv) { return _mm256_mul_ps(wv, Round8(format, _mm256_mul_ps(xv, s))); },
      x, w);
}

void RopeRow(Format format, const void* x, const void* cos, const void* sin, void* out,
             int64_t heads, int64_t d, int64_t out_head_stride) {
  const int64_t half = d / 2, es = ElementSize(format);
  const Row c{format, cos}, s{format, sin};
  const __m256 sign = _mm256_set1_ps(-0.f);
  for (int64_t h = 0; h < heads; ++h) {
    const Row xh{format, static_cast<const char*>(x) + h * d * es};
    const Row oh{format, static_cast<char*>(out) + h * out_head_stride * es};
    for (int64_t i = 0; i < half; i += 8) {
      const __m256 lo = xh.Load(i, false), hi = xh.Load(i + half, false);
      // out[i] = x[i]·cos[i] - x[i + half]·sin[i]; out[i + half] = x[i + half]·cos + x[i]·sin.
      const __m256 a0 = Round8(format, _mm256_mul_ps(lo, c.Load(i, false)));
      const __m256 b0 = Round8(format, _mm256_mul_ps(_mm256_xor_ps(hi, sign), s.Load(i, false)));
      const __m256 a1 = Round8(format, _mm256_mul_ps(hi, c.Load(i + half, false)));
      const __m256 b1 = Round8(format, _mm256_mul_ps(lo, s.Load(i + half, false)));
      oh.Store(i, _mm256_add_ps(a0, b0), false);
      oh.Store(i + half, _mm256_add_ps(a1, b1), false);
    }
  }
}

void SiluMulRow(Format format, const void* gate, const void* up, void* out, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.f), sign = _mm256_set1_ps(-0.f);
  Map(format, out, n,
      [&](__m256 g, __m256 u) {
        const __m256 e = Exp8(_mm256_xor_ps(g, sign));
        return _mm256_mul_ps(Round8(format, _mm256_div_ps(g, _mm256_add_ps(one, e))), u);
      },
      gate, up);
}

void Widen(Format format, const void* x, float* out, int64_t n) {
  const Row r{format, x};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, r.Load(i, false));
  for (; i < n; ++i) out[i] = _mm256_cvtss_f32(r.Load(i, true));
}

}  // namespace vnp::avx2

#else  // Not x86-64: never called (CpuHasAvx2Kernels() is false); defined so the library links.

#include <cstdlib>

namespace vnp::avx2 {
void AddRow(Format, void*, const void*, int64_t) { std::abort(); }
float SumOfSquares(Format, const void*, int64_t) { std::abort(); }
void ScaleRow(Format, const void*, float, const void*, void*, int64_t) { std::abort(); }
void RopeRow(Format, const void*, const void*, const void*, void*, int64_t, int64_t, int64_t) {
  std::abort();
}
void SiluMulRow(Format, const void*, const void*, void*, int64_t) { std::abort(); }
void Widen(Format, const void*, float*, int64_t) { std::abort(); }
}  // namespace vnp::avx2

#endif
