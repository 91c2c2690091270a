// Which hand-vectorised kernels this build and this CPU can run.
#pragma once

#include <optional>

#include <ATen/core/Tensor.h>

#include "kernels/gemv_avx2.h"

namespace vnp {

// True when the AVX2 kernels are compiled in (x86-64 builds) and the CPU has AVX2, FMA, F16C.
bool CpuHasAvx2Kernels();

// AVX-512 with the BF16 dot-product instructions (avx512::GemvBf16 runs).
bool CpuHasAvx512Bf16();

// AMD family 19h (Zen 4, the first AMD cores with AVX-512): each 512-bit operation runs as two
// 256-bit halves. Zen 5 and Intel's AVX-512 cores have full-width units.
bool CpuSplits512BitOps();

// True when torch's bf16 matmul runs on bf16 dot-product units (x86 AVX512_BF16, through
// oneDNN): then it computes in fp32 from bf16 operands at 2-3x the fp32 GEMM's rate, and
// widening bf16 weights to fp32 only slows it.
bool CpuHasNativeBf16Gemm();

// The AVX2 row format of a CPU tensor's dtype (fp32, bf16, fp16), or nullopt.
std::optional<avx2::Format> Avx2Format(const at::Tensor& t);
std::optional<avx2::Format> Avx2Format(c10::ScalarType t);

}  // namespace vnp
