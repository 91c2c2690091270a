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

bool CpuHasNativeBf16Gemm() {
#if defined(__x86_64__)
  // oneDNN's AVX-512 bf16 kernels need BW/VL/DQ beside the BF16 dot products.
  static const bool has = __builtin_cpu_supports("avx512bf16") &&
                          __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                          __builtin_cpu_supports("avx512dq") && at::hasMKLDNN() &&
                          at::globalContext().userEnabledMkldnn();
  return has;
#else
  return false;
#endif
}

std::optional<avx2::Format> Avx2Format(const at::Tensor& t) {
  if (!CpuHasAvx2Kernels() || !t.device().is_cpu()) return std::nullopt;
  switch (t.scalar_type()) {
    case at::kFloat: return avx2::Format::kF32;
    case at::kBFloat16: return avx2::Format::kBf16;
    case at::kHalf: return avx2::Format::kF16;
    default: return std::nullopt;
  }
}

}  // namespace vnp
