#include "kernels/cpu_features.h"

#include <ATen/ATen.h>

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
