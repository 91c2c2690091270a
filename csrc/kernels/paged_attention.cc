#include "kernels/paged_attention.h"

#include <ATen/ATen.h>

namespace vnp {
namespace {

// [num_blocks, kv_heads, block_size, D] gathered for one sequence → [1, kv_heads, len, D].
at::Tensor GatherSequence(const at::Tensor& cache, const at::Tensor& blocks, int64_t len) {
  const int64_t kv_heads = cache.size(1), bs = cache.size(2), d = cache.size(3);
  at::Tensor g = cache.index_select(0, blocks);  // [nb, kv_heads, bs, D]
  return g.permute({1, 0, 2, 3}).reshape({kv_heads, blocks.size(0) * bs, d}).narrow(1, 0, len)
      .unsqueeze(0);
}

}  // namespace

at::Tensor PagedAttention(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                          const AttentionBatch& batch, double scale) {
  const int64_t block_size = k_cache.size(2);
  at::Tensor out = at::empty_like(q);
  const int64_t rows = static_cast<int64_t>(batch.seq_lens.size());
  for (int64_t b = 0; b < rows; ++b) {
    const int64_t qs = batch.query_start[b], qlen = batch.query_start[b + 1] - qs;
    if (qlen == 0) continue;
    const int64_t len = batch.seq_lens[b];
    const int64_t nb = (len + block_size - 1) / block_size;
    at::Tensor blocks = batch.block_tables[b].narrow(0, 0, nb);
    at::Tensor k = GatherSequence(k_cache, blocks, len);
    at::Tensor v = GatherSequence(v_cache, blocks, len);
    at::Tensor qb = q.narrow(0, qs, qlen).transpose(0, 1).unsqueeze(0);  // [1, H, qlen, D]
    std::optional<at::Tensor> mask;
    bool causal = false;
    if (qlen == len) {
      causal = qlen > 1;  // a whole sequence: plain causal attention
    } else if (qlen > 1) {
      // Query i sits at position (len - qlen + i) and sees keys 0..that position.
      at::Tensor qpos = at::arange(len - qlen, len, at::kLong).unsqueeze(1);
      at::Tensor kpos = at::arange(len, at::kLong).unsqueeze(0);
      mask = kpos.le(qpos);
    }
    at::Tensor o = at::scaled_dot_product_attention(qb, k, v, mask, 0.0, causal, scale,
                                                    /*enable_gqa=*/true);
    out.narrow(0, qs, qlen).copy_(o.squeeze(0).transpose(0, 1));
  }
  return out;
}

}  // namespace vnp
