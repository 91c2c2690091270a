// Attention for decode rows (one query token each) and verify rows (a few) read in place
// from the paged KV: no gather of the blocks into a contiguous copy, fp32 scores and
// accumulation, one task per query token with all its heads (each key and value vector read
// once for the q heads that share it), the keys split in chunks whose softmaxes merge when that
// leaves threads idle (batch-1 decode).
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "kernels/paged_attention.h"

namespace vnp {

// True when the kernel runs these tensors (one dtype for q and the caches: fp32, bf16 or fp16;
// contiguous caches); otherwise the caller takes the general path.
bool DecodeAttentionSupports(const at::Tensor& q, const at::Tensor& k_cache,
                             const at::Tensor& v_cache);

// For each batch row in `rows`, writes the attention output of each of its query tokens (flat
// tokens query_start[row] .. query_start[row + 1], the last at position seq_lens[row] - 1,
// each seeing the keys up to its own position) into out[token] ([T, num_heads, head_dim],
// q's dtype). `window` as in PagedAttention.
void DecodeAttention(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                     const AttentionBatch& batch, const std::vector<int64_t>& rows, double scale,
                     int64_t window, at::Tensor& out);

}  // namespace vnp
