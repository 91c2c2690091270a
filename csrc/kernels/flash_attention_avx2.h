// Causal prefill attention in bf16 with AVX2 FMAs, read in place from the paged KV cache
// (kernels/flash_attention.h): what flash_attention_avx512.h does on CPUs without AVX512_BF16.
// torch's SDPA, which such CPUs took before, ran SmolLM2's attention at 60 GFLOP/s for a
// 512-token prompt and 100 at 2048 on a 2-core Zen 3 (fp32 FMA peak ~170). No ATen here, for
// the reason gemv_avx2.h gives; callers check CpuHasAvx2Kernels() first.
//
// A tile's 8 query tokens sit in the 8 fp32 lanes (softmax maxima and sums lane-wise, each lane
// alone), key tiles start at multiples of kFlashKeys in absolute position: a token computes the
// same whatever tokens share its tile and however its prompt was chunked.
#pragma once

#include <cstdint>

#include "kernels/flash_attention.h"

namespace vnp::avx2 {

inline constexpr int64_t kFlashTokens = 8;  // query tokens per task: the fp32 lanes
inline constexpr int64_t kFlashKeys = 32;   // keys per tile

// Floats of scratch one call needs (one buffer per thread, reused across calls).
int64_t FlashScratchFloats(int64_t heads, int64_t head_dim);

// The arithmetic of avx512::FlashAttentionBf16 with the bf16 operands widened to fp32 (exact)
// instead of fed to a dot-product unit: scores as fp32 sums of exact products, times scale, an
// fp32 online softmax, the probabilities rounded to bf16 for the value sums, the output divided
// by the fp32 sum of the unrounded probabilities and rounded to bf16. head_dim a multiple of 8.
void FlashAttentionBf16(const FlashHead& head, const FlashTile& tile, float* scratch);

}  // namespace vnp::avx2
