#include "kernels/paged_attention.h"

#include <algorithm>

#include <ATen/ATen.h>

#include "kernels/decode_attention.h"
#include "kernels/prefill_attention.h"

namespace vnp {
namespace {

// Positions [begin, end) of one sequence, gathered from [num_blocks, kv_heads, block_size, D]
// → [1, kv_heads, end - begin, D]. Only the blocks holding that range are read.
at::Tensor GatherSequence(const at::Tensor& cache, const at::Tensor& table, int64_t begin,
                          int64_t end) {
  const int64_t kv_heads = cache.size(1), bs = cache.size(2), d = cache.size(3);
  const int64_t first = begin / bs, nb = (end + bs - 1) / bs - first;
  at::Tensor g = cache.index_select(0, table.narrow(0, first, nb));  // [nb, kv_heads, bs, D]
  return g.permute({1, 0, 2, 3}).reshape({kv_heads, nb * bs, d})
      .narrow(1, begin - first * bs, end - begin).unsqueeze(0);
}

}  // namespace

AttentionBatch AttentionBatch::FromLengths(const std::vector<int64_t>& query_lens,
                                           const std::vector<int64_t>& context_lens,
                                           at::Tensor block_tables) {
  AttentionBatch batch;
  batch.query_start.assign(query_lens.size() + 1, 0);
  for (size_t b = 0; b < query_lens.size(); ++b) {
    batch.query_start[b + 1] = batch.query_start[b] + query_lens[b];
    batch.seq_lens.push_back(context_lens[b] + query_lens[b]);
  }
  batch.block_tables = std::move(block_tables);
  return batch;
}

at::Tensor PagedAttention(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                          const AttentionBatch& batch, double scale, int64_t window) {
  at::Tensor out = at::empty_like(q, at::MemoryFormat::Contiguous);
  const int64_t rows = static_cast<int64_t>(batch.seq_lens.size());
  // Decode rows (one query token) and verify rows take the in-place decode kernel together;
  // prefill rows take the in-place prefill kernel together where it runs (bf16, AVX512_BF16),
  // else, one by one, gather their span and run SDPA. Every prefill chunk of two or more
  // tokens takes the same kernel whatever its length, so with the prefill kernel a token's
  // attention is the same whether or not a prefix of its prompt was cached.
  const bool fused_decode = DecodeAttentionSupports(q, k_cache, v_cache);
  const bool fused_prefill = PrefillAttentionSupports(q, k_cache, v_cache);
  std::vector<int64_t> decode_rows, prefill_rows;
  for (int64_t b = 0; b < rows; ++b) {
    const int64_t qs = batch.query_start[b], qlen = batch.query_start[b + 1] - qs;
    if (qlen == 0) continue;
    const int64_t len = batch.seq_lens[b], first_q = len - qlen;
    const bool verify = !batch.draft_lens.empty() && batch.draft_lens[b] > 0;
    if (fused_decode && (qlen == 1 || verify)) {
      decode_rows.push_back(b);
      continue;
    }
    if (fused_prefill) {
      prefill_rows.push_back(b);
      continue;
    }
    const int64_t begin = FirstVisibleKey(first_q, window);  // the first key any query sees
    at::Tensor k = GatherSequence(k_cache, batch.block_tables[b], begin, len);
    at::Tensor v = GatherSequence(v_cache, batch.block_tables[b], begin, len);
    at::Tensor qb = q.narrow(0, qs, qlen).transpose(0, 1).unsqueeze(0);  // [1, H, qlen, D]
    std::optional<at::Tensor> mask;
    bool causal = false;
    const bool windowed = window > 0 && window < len;
    if (qlen == len && !windowed) {
      causal = qlen > 1;  // a whole sequence: plain causal attention
    } else if (qlen > 1) {
      // Query i sits at position first_q + i and sees keys up to it (and, windowed, after
      // position - window).
      at::Tensor qpos = at::arange(first_q, len, at::kLong).unsqueeze(1);
      at::Tensor kpos = at::arange(begin, len, at::kLong).unsqueeze(0);
      at::Tensor visible = kpos.le(qpos);
      if (window > 0) visible = visible.logical_and(kpos.gt(qpos - window));
      mask = visible;
    }
    at::Tensor o = at::scaled_dot_product_attention(qb, k, v, mask, 0.0, causal, scale,
                                                    /*enable_gqa=*/true);
    out.narrow(0, qs, qlen).copy_(o.squeeze(0).transpose(0, 1));
  }
  if (!prefill_rows.empty()) PrefillAttention(q, k_cache, v_cache, batch, prefill_rows, scale, window, out);
  if (!decode_rows.empty()) DecodeAttention(q, k_cache, v_cache, batch, decode_rows, scale, window, out);
  return out;
}

}  // namespace vnp
