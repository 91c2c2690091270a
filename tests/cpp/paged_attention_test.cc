#include <algorithm>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "kernels/paged_attention.h"
#include "kernels/prefill_attention.h"
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

// Rows: a full prefill (7 tokens), a prefill after a 5-token prefix (3 new), then decode rows
// of the given lengths (a length 1 is a one-token prompt, which takes the decode kernel too).
// With two threads, one or three decode rows make the in-place kernel split each row's keys
// into two chunks whose softmaxes it merges ({1, 40, 9}: the 1-key row leaves a chunk empty);
// two or six take one task per row. Groups of 2, 3 and 4 q heads per KV head take the 2- and
// 3-row tiles (4: a 3-head score tile and a 1-head one); D 56 and 72 cover the 64-, 32-, 16-
// and 8-wide value loops and their tails, D 12 the scalar tail. bf16 compares at its rounding;
// its prefill rows take the bf16 prefill kernels (AVX-512 BF16 for D of 32s where the CPU has
// it, else AVX2 for D of 8s: 8, 56, 72) and SDPA otherwise (D 12).
// `prefills`: the prefill rows' (length, query tokens).
using Lens = std::vector<int64_t>;
using Prefills = std::vector<std::pair<int64_t, int64_t>>;
void CheckMixedBatch(int64_t window, int64_t D, const Lens& decode_lens,
                     at::ScalarType dtype = at::kFloat, int64_t heads = 4,
                     const Prefills& prefills = {{7, 7}, {8, 3}}, int64_t bs = 4) {
  at::manual_seed(0);
  at::set_num_threads(2);
  const int64_t kv_heads = 2;
  std::vector<int64_t> lens, qlens;
  for (auto [len, qlen] : prefills) lens.push_back(len), qlens.push_back(qlen);
  for (int64_t len : decode_lens) lens.push_back(len), qlens.push_back(1);
  const int64_t rows = static_cast<int64_t>(lens.size());
  const int64_t longest = *std::max_element(lens.begin(), lens.end());
  int64_t num_blocks = 1;
  for (int64_t len : lens) num_blocks += (len + bs - 1) / bs;
  KvCache kv(1, num_blocks, kv_heads, bs, D, dtype);
  // Blocks handed out in a scrambled order, so that no row's blocks are consecutive.
  at::Tensor order = at::randperm(num_blocks - 1, at::kLong) + 1;
  at::Tensor tables = at::zeros({rows, (longest + bs - 1) / bs}, at::kLong);
  std::vector<at::Tensor> full_k, full_v, qs, step_k, step_v;
  std::vector<int64_t> slots;
  AttentionBatch batch;
  batch.query_start = {0};
  int64_t next_block = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t nb = (lens[r] + bs - 1) / bs;
    tables[r].narrow(0, 0, nb).copy_(order.narrow(0, next_block, nb));
    next_block += nb;
    // Inputs rounded to the cache dtype; the reference computes on those values in fp32.
    at::Tensor k = at::randn({lens[r], kv_heads, D}).to(dtype).to(at::kFloat);
    at::Tensor v = at::randn({lens[r], kv_heads, D}).to(dtype).to(at::kFloat);
    full_k.push_back(k), full_v.push_back(v);
    for (int64_t p = 0; p < lens[r]; ++p) {
      const int64_t slot = tables[r][p / bs].item<int64_t>() * bs + p % bs;
      if (p >= lens[r] - qlens[r]) {
        slots.push_back(slot);
        step_k.push_back(k[p].to(dtype)), step_v.push_back(v[p].to(dtype));
      } else {  // prior context already in the cache
        kv.Write(0, SlotIndex::FromSlotMapping(at::tensor({slot}, at::kLong), bs),
                 k[p].unsqueeze(0).to(dtype), v[p].unsqueeze(0).to(dtype));
      }
    }
    qs.push_back(at::randn({qlens[r], heads, D}).to(dtype));
    batch.query_start.push_back(batch.query_start.back() + qlens[r]);
    batch.seq_lens.push_back(lens[r]);
  }
  batch.block_tables = tables;
  kv.Write(0, SlotIndex::FromSlotMapping(at::tensor(slots, at::kLong), bs), at::stack(step_k),
           at::stack(step_v));
  at::Tensor out = PagedAttention(at::cat(qs), kv.keys(0), kv.values(0), batch, 0.3, window);
  const double tol = dtype == at::kFloat ? 1e-5 : 2e-2;
  for (int64_t r = 0; r < rows; ++r) {
    at::Tensor want = Reference(qs[r].to(at::kFloat), full_k[r], full_v[r], 0.3, window);
    at::Tensor got = out.narrow(0, batch.query_start[r], qlens[r]).to(at::kFloat);
    EXPECT_TRUE(at::allclose(got, want, tol, tol))
        << "row " << r << " window " << window << " D " << D << " heads " << heads << " decode rows "
        << decode_lens.size() << " " << dtype << " max diff " << (got - want).abs().max().item<float>();
  }
}

const std::vector<Lens> kDecodeSets = {{10}, {40}, {1, 40}, {1, 40, 9}, {10, 13, 16, 19, 22, 25}};

TEST(PagedAttentionTest, MixedBatchMatchesDenseAttention) {
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    for (int64_t D : {8, 56, 72, 12}) {
      for (int64_t heads : {4, 6, 8}) {
        for (const Lens& decodes : kDecodeSets) CheckMixedBatch(0, D, decodes, dtype, heads);
      }
    }
  }
}

// Prefills long enough for the bf16 prefill kernels' tiles (16 query tokens with AVX-512, 8
// with AVX2; 32 keys) and their edges: a whole 70-token prompt, 37 tokens after a 38-token
// prefix (the chunk starts inside a key tile), 17 after 23 (a one-token query tile on
// AVX-512). Head dims 32, 64 and 128; 1, 3, 4 and 5 q heads per KV head (AVX-512: 5 is a
// 4-head pass and a 1-head pass over each key tile; AVX2 takes them 3 at a time, so 4 and 5
// end on a 1- and a 2-head pass); windows inside a tile, across tiles, and longer than every
// row; decode rows beside them, chunked or not, and KV blocks of 4 and of 32 positions. Where
// the CPU has neither kernel, the same cases check the gather + SDPA path.
TEST(PagedAttentionTest, LongPrefillsMatchDenseAttention) {
  const Prefills prefills = {{70, 70}, {75, 37}, {40, 17}, {50, 2}};
  for (int64_t D : {32, 64, 128}) {
    for (int64_t heads : {2, 6, 8, 10}) {
      for (int64_t window : {0, 5, 40, 100}) {
        for (const Lens& decodes : kDecodeSets) {
          CheckMixedBatch(window, D, decodes, at::kBFloat16, heads, prefills);
        }
        CheckMixedBatch(window, D, {40, 1, 37}, at::kBFloat16, heads, prefills, 32);
      }
    }
  }
}

// The prefill kernel's promise: a token's output does not depend on how its prompt was split
// into chunks (a cached prefix, an earlier chunk) or on which tokens share its query tile; a
// prefix-cache hit then continues exactly as the uncached prompt does.
TEST(PagedAttentionTest, PrefillChunksComputeLikeTheWholePrompt) {
  at::manual_seed(1);
  at::set_num_threads(2);
  const int64_t len = 90, kv_heads = 2, heads = 6, D = 64, bs = 16;
  KvCache kv(1, (len + bs - 1) / bs + 1, kv_heads, bs, D, at::kBFloat16);
  if (!PrefillAttentionSupports(at::empty({1, heads, D}, at::kBFloat16), kv.keys(0), kv.values(0))) {
    GTEST_SKIP() << "the bf16 prefill kernels need AVX2 or AVX512_BF16; SDPA makes no such promise";
  }
  at::Tensor table = at::arange(1, (len + bs - 1) / bs + 1, at::kLong).unsqueeze(0);
  kv.Write(0, SlotIndex::FromSlotMapping(at::arange(bs, bs + len, at::kLong), bs),
           at::randn({len, kv_heads, D}).to(at::kBFloat16), at::randn({len, kv_heads, D}).to(at::kBFloat16));
  at::Tensor q = at::randn({len, heads, D}).to(at::kBFloat16);
  auto run = [&](int64_t begin, int64_t end, int64_t window) {  // the chunk [begin, end)
    AttentionBatch batch = AttentionBatch::FromLengths({end - begin}, {begin}, table);
    return PagedAttention(q.narrow(0, begin, end - begin).contiguous(), kv.keys(0), kv.values(0),
                          batch, 0.125, window);
  };
  for (int64_t window : {0, 24}) {
    at::Tensor whole = run(0, len, window);
    for (int64_t split : {38, 45, 64, 73, 88}) {
      at::Tensor tail = run(split, len, window), head = run(0, split, window);
      EXPECT_TRUE(at::equal(tail, whole.narrow(0, split, len - split))) << "split " << split;
      EXPECT_TRUE(at::equal(head, whole.narrow(0, 0, split))) << "split " << split;
    }
  }
}

// Windows shorter than the rows, shorter than a block, and longer than every row.
TEST(PagedAttentionTest, SlidingWindowMatchesDenseAttention) {
  for (int64_t window : {1, 3, 6, 64}) {
    for (const Lens& decodes : kDecodeSets) CheckMixedBatch(window, 8, decodes);
  }
}

TEST(KvCacheTest, NegativeSlotsAreNotWritten) {
  KvCache kv(1, 2, 1, 2, 1, at::kFloat);
  at::Tensor x = at::tensor({1.0f, 2.0f, 3.0f}).view({3, 1, 1});
  kv.Write(0, SlotIndex::FromSlotMapping(at::tensor({3, -1, 0}, at::kLong), 2), x, x);
  EXPECT_TRUE(at::equal(kv.keys(0).flatten(), at::tensor({3.0f, 0.0f, 0.0f, 1.0f})));
}

}  // namespace
}  // namespace vnp
