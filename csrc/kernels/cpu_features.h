// Which hand-vectorised kernels this build and this CPU can run.
#pragma once

#include <optional>

#include <ATen/core/Tensor.h>

#include "kernels/gemv_avx2.h"

namespace vnp {

// True when the AVX2 kernels are compiled in (x86-64 builds) and the CPU has AVX2, FMA, F16C.
bool CpuHasAvx2Kernels();

// The AVX2 row format of a CPU tensor's dtype (fp32, bf16, fp16), or nullopt.
std::optional<avx2::Format> Avx2Format(const at::Tensor& t);

}  // namespace vnp
