// Attention over paged KV for a flat batch of rows, each row a query span of one sequence:
// prefill from position 0, prefill after a cached prefix or an earlier chunk, or one decode token.
#pragma once

#include <algorithm>

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

namespace vnp {

struct AttentionBatch {
  std::vector<int64_t> query_start;  // [B + 1], offsets into the flat token dimension
  std::vector<int64_t> seq_lens;     // [B], tokens in KV after this step (context + query)
  at::Tensor block_tables;           // [B, max_blocks] int64
  // [B] or empty: drafts at the end of each row's query (a speculative verify). Such rows take
  // the decode kernel, so that each verified token computes exactly as its decode step would.
  std::vector<int64_t> draft_lens;

  // Offsets and lengths from each row's query tokens and the context already in KV before them.
  static AttentionBatch FromLengths(const std::vector<int64_t>& query_lens,
                                    const std::vector<int64_t>& context_lens, at::Tensor block_tables);
};

// The first key the query at `position` sees: 0, or with a window, position - window + 1.
inline int64_t FirstVisibleKey(int64_t position, int64_t window) {
  return window > 0 ? std::max<int64_t>(0, position - window + 1) : 0;
}

// q: [T, num_heads, head_dim], already rotated. Caches: [num_blocks, kv_heads, block_size,
// head_dim], already holding this step's K/V. `window` > 0: the query at position p sees only
// keys in (p - window, p] (HF's sliding window). Returns [T, num_heads, head_dim].
at::Tensor PagedAttention(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                          const AttentionBatch& batch, double scale, int64_t window = 0);

}  // namespace vnp
