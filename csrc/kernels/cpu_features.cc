#include "kernels/cpu_features.h"

#include <ATen/ATen.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace vnp {

bool CpuHasAvx2Kernels() {
#if defined(__x86_64__)
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                          __builtin_cpu_supports("f16c");
  return has;
#else
  return false;
#endif
}

bool CpuHasAvx512Bf16() {
#if defined(__x86_64__)
  // BW/VL/DQ beside the BF16 dot products: our kernel's masked 16-bit loads need BW, and
  // oneDNN's AVX-512 bf16 kernels all three.
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512bf16");
  return has;
#else
  return false;
#endif
}

bool CpuSplits512BitOps() {
#if defined(__x86_64__)
  static const bool splits = [] {
    unsigned a = 0, b = 0, c = 0, d = 0, vendor[3];
    if (!__get_cpuid(0, &a, &vendor[0], &vendor[2], &vendor[1])) return false;
    const bool amd = vendor[0] == 0x68747541u;  // "Auth" of "AuthenticAMD"
    if (!amd || !__get_cpuid(1, &a, &b, &c, &d)) return false;
    const unsigned family = ((a >> 8) & 0xf) == 0xf ? 0xf + ((a >> 20) & 0xff) : (a >> 8) & 0xf;
    return family == 0x19;
  }();
  return splits;
#else
  return false;
#endif
}

bool CpuHasNativeBf16Gemm() {
  static const bool has =
      CpuHasAvx512Bf16() && at::hasMKLDNN() && at::globalContext().userEnabledMkldnn();
  return has;
}

std::optional<avx2::Format> Avx2Format(const at::Tensor& t) {
  return t.device().is_cpu() ? Avx2Format(t.scalar_type()) : std::nullopt;
}

std::optional<avx2::Format> Avx2Format(c10::ScalarType t) {
  if (!CpuHasAvx2Kernels()) return std::nullopt;
  switch (t) {
    case at::kFloat: return avx2::Format::kF32;
    case at::kBFloat16: return avx2::Format::kBf16;
    case at::kHalf: return avx2::Format::kF16;
    default: return std::nullopt;
  }
}

}  // namespace vnp
