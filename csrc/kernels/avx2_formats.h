// The fp32 / bf16 / fp16 loads and roundings that the AVX2 kernel files share. Include only
// from files built with -mavx2 -mfma -mf16c (CMakeLists.txt): everything here has internal
// linkage, so no copy built with those flags can stand in for another file's code.
#pragma once

#if defined(__x86_64__)
#include <immintrin.h>

#include <cstdint>

#include "kernels/exp_poly.h"
#include "kernels/gemv_avx2.h"

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

// Eight fp32 values rounded to bf16 to nearest even, as c10::BFloat16 does (a NaN to 0x7FC0),
// left in the high halves of fp32 lanes (low halves zero): the bf16 value as an fp32.
inline __m256 RoundBf16InF32(__m256 v) {
  const __m256i bits = _mm256_castps_si256(v);
  const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  const __m256i half = _mm256_add_epi32(odd, _mm256_set1_epi32(0x7FFF));
  const __m256 r = _mm256_and_ps(_mm256_castsi256_ps(_mm256_add_epi32(bits, half)),
                                 _mm256_castsi256_ps(_mm256_set1_epi32(0xFFFF0000u)));
  return _mm256_blendv_ps(r, _mm256_castsi256_ps(_mm256_set1_epi32(0x7FC00000)),
                          _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

// The same eight bf16 values packed into 16-bit lanes.
inline __m128i RoundBf16(__m256 v) {
  const __m256i r = _mm256_srli_epi32(_mm256_castps_si256(RoundBf16InF32(v)), 16);
  // The eight 32-bit lanes' low halves, in order (packus works within 128-bit lanes).
  return _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0xD8));
}

// Eight fp32 values rounded to the 16-bit `format` (fp16 also to nearest even).
inline __m128i Round16(Format format, __m256 v) {
  return format == Format::kBf16 ? RoundBf16(v) : _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT);
}

// Eight values of `format` at p, widened to fp32.
inline __m256 Load8(Format format, const void* p) {
  switch (format) {
    case Format::kBf16: return Bf16::Load8(static_cast<const uint16_t*>(p));
    case Format::kF16: return F16::Load8(static_cast<const uint16_t*>(p));
    default: return F32::Load8(static_cast<const float*>(p));
  }
}

// Eight fp32 values stored as `format`, rounded to nearest even.
inline void Store8(Format format, __m256 v, void* p) {
  if (format == Format::kF32) {
    _mm256_storeu_ps(static_cast<float*>(p), v);
  } else {
    _mm_storeu_si128(static_cast<__m128i*>(p), Round16(format, v));
  }
}

// v rounded through `format` and back: what storing an intermediate of that dtype does.
inline __m256 Round8(Format format, __m256 v) {
  switch (format) {
    case Format::kBf16: return RoundBf16InF32(v);  // no pack and unpack
    case Format::kF16: return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    default: return v;
  }
}

// exp(x) in 8 lanes through exp_poly.h's polynomial; the operand order passes a NaN through.
inline __m256 Exp8(__m256 x) {
  using namespace exp_poly;
  x = _mm256_min_ps(_mm256_set1_ps(kMax), _mm256_max_ps(_mm256_set1_ps(kMin), x));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
  __m256 p = _mm256_set1_ps(kP[0]);
  for (int i = 1; i < 6; ++i) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP[i]));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

inline int64_t ElementSize(Format format) { return format == Format::kF32 ? 4 : 2; }

}  // namespace
}  // namespace vnp::avx2

#endif
