#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "kernels/paged_attention.h"
#include "kv/kv_cache.h"

namespace vnp {
namespace {

// Dense reference: one sequence's full K/V [len, kv_heads, D], queries at the last qlen positions.
// window > 0: keys more than window - 1 positions behind the query are hidden too.
at::Tensor Reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
                     int64_t window) {
  const int64_t qlen = q.size(0), len = k.size(0), group = q.size(1) / k.size(1);
  at::Tensor kk = k.repeat_interleave(group, 1), vv = v.repeat_interleave(group, 1);
  at::Tensor scores = at::einsum("qhd,khd->hqk", {q, kk}) * scale;
  at::Tensor qpos = at::arange(len - qlen, len).unsqueeze(1), kpos = at::arange(len).unsqueeze(0);
  scores = scores.masked_fill(kpos.gt(qpos), -INFINITY);
  if (window > 0) scores = scores.masked_fill(kpos.le(qpos - window), -INFINITY);
  return at::einsum("hqk,khd->qhd", {scores.softmax(-1), vv});
}

void CheckMixedBatch(int64_t window) {
  at::manual_seed(0);
  const int64_t heads = 4, kv_heads = 2, D = 8, bs = 4, num_blocks = 32;
  KvCache kv(1, num_blocks, kv_heads, bs, D, at::kFloat);
  // Rows: full prefill (7), prefill after a 5-token prefix (3 new), decode at length 10.
  std::vector<int64_t> lens = {7, 8, 10}, qlens = {7, 3, 1};
  std::vector<std::vector<int64_t>> blocks = {{5, 2}, {9, 1}, {3, 7, 11}};
  std::vector<at::Tensor> full_k, full_v;
  std::vector<at::Tensor> qs;
  std::vector<int64_t> slots;
  AttentionBatch batch;
  batch.query_start = {0};
  at::Tensor tables = at::zeros({3, 3}, at::kLong);
  std::vector<at::Tensor> step_k, step_v;
  for (size_t r = 0; r < lens.size(); ++r) {
    at::Tensor k = at::randn({lens[r], kv_heads, D}), v = at::randn({lens[r], kv_heads, D});
    full_k.push_back(k), full_v.push_back(v);
    for (int64_t p = 0; p < lens[r]; ++p) {
      int64_t slot = blocks[r][p / bs] * bs + p % bs;
      bool in_step = p >= lens[r] - qlens[r];
      if (in_step) {
        slots.push_back(slot);
        step_k.push_back(k[p]), step_v.push_back(v[p]);
      } else {  // prior context already in the cache
        kv.Write(0, SlotIndex::FromSlotMapping(at::tensor({slot}, at::kLong), bs), k[p].unsqueeze(0),
                 v[p].unsqueeze(0));
      }
    }
    qs.push_back(at::randn({qlens[r], heads, D}));
    batch.query_start.push_back(batch.query_start.back() + qlens[r]);
    batch.seq_lens.push_back(lens[r]);
    tables[r].narrow(0, 0, blocks[r].size()).copy_(at::tensor(blocks[r], at::kLong));
  }
  batch.block_tables = tables;
  kv.Write(0, SlotIndex::FromSlotMapping(at::tensor(slots, at::kLong), bs), at::stack(step_k),
           at::stack(step_v));
  at::Tensor out = PagedAttention(at::cat(qs), kv.keys(0), kv.values(0), batch, 0.3, window);
  for (size_t r = 0; r < lens.size(); ++r) {
    at::Tensor want = Reference(qs[r], full_k[r], full_v[r], 0.3, window);
    at::Tensor got = out.narrow(0, batch.query_start[r], qlens[r]);
    EXPECT_TRUE(at::allclose(got, want, 1e-5, 1e-5)) << "row " << r << " window " << window;
  }
}

TEST(PagedAttentionTest, MixedBatchMatchesDenseAttention) { CheckMixedBatch(0); }

// Windows shorter than the rows, shorter than a block, and longer than every row.
TEST(PagedAttentionTest, SlidingWindowMatchesDenseAttention) {
  for (int64_t window : {1, 3, 6, 64}) CheckMixedBatch(window);
}

TEST(KvCacheTest, NegativeSlotsAreNotWritten) {
  KvCache kv(1, 2, 1, 2, 1, at::kFloat);
  at::Tensor x = at::tensor({1.0f, 2.0f, 3.0f}).view({3, 1, 1});
  kv.Write(0, SlotIndex::FromSlotMapping(at::tensor({3, -1, 0}, at::kLong), 2), x, x);
  EXPECT_TRUE(at::equal(kv.keys(0).flatten(), at::tensor({3.0f, 0.0f, 0.0f, 1.0f})));
}

}  // namespace
}  // namespace vnp
