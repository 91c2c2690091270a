// Attention for prefill rows (a prompt, or its next chunk after a cached prefix or an earlier
// chunk) in bf16: read in place from the paged KV, flash attention over key tiles
// (kernels/flash_attention.h) on the AVX512_BF16 kernel where the CPU has it, else the AVX2
// one; one task per tile of query tokens and KV head. Other dtypes and CPUs take
// PagedAttention's gather + SDPA path.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "kernels/paged_attention.h"

namespace vnp {

// True when a kernel runs these tensors: bf16 q and caches, contiguous, whole groups of q heads
// per KV head, and a CPU with AVX512_BF16 and a head dim of 32s, or AVX2 and a head dim of 8s.
bool PrefillAttentionSupports(const at::Tensor& q, const at::Tensor& k_cache,
                              const at::Tensor& v_cache);

// For each batch row in `rows`, writes the attention output of each of its query tokens (flat
// tokens query_start[row] .. query_start[row + 1], the last at position seq_lens[row] - 1,
// each seeing the keys up to its own position) into out[token] ([T, num_heads, head_dim]).
// `window` as in PagedAttention.
void PrefillAttention(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                      const AttentionBatch& batch, const std::vector<int64_t>& rows, double scale,
                      int64_t window, at::Tensor& out);

}  // namespace vnp
