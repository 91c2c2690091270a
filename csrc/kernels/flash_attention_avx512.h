// Causal prefill attention in bf16 on the AVX512_BF16 dot-product unit, read in place from
// the paged KV cache (kernels/flash_attention.h). No ATen here, for the reason gemv_avx2.h
// gives: this file is compiled with -mavx512*, and callers check CpuHasAvx512Bf16() first.
//
// The layout puts a tile's query tokens in the 16 fp32 lanes, so the softmax's maxima and sums
// over keys are lane-wise (no horizontal reductions) and each lane computes alone: a query's
// result does not depend on which tokens share its tile. Key tiles start at multiples of
// kFlashKeys in absolute position, so a prompt's token computes the same whether the prompt
// comes in one chunk or after a cached prefix.
#pragma once

#include <cstdint>

#include "kernels/flash_attention.h"

namespace vnp::avx512 {

inline constexpr int64_t kFlashTokens = 16;  // query tokens per task: the fp32 lanes
inline constexpr int64_t kFlashKeys = 32;    // keys per tile

// Floats of scratch one call needs (one buffer per thread, reused across calls).
int64_t FlashScratchFloats(int64_t heads, int64_t head_dim);

// Scores from q and the keys as stored (vdpbf16ps, fp32 sums) times scale, an fp32 online
// softmax, the probabilities rounded to bf16 for the value sums (vdpbf16ps again, fp32), as
// torch's CPU flash attention does for bf16; the output divided by the fp32 sum.
void FlashAttentionBf16(const FlashHead& head, const FlashTile& tile, float* scratch);

}  // namespace vnp::avx512
