// The fused decode step's row ops (kernels/elementwise.h's *Row functions, AVX2 loops on an AVX2
// host) against the whole-tensor fused ops, whose scalar loops round at the same points: the same
// bits in fp32, bf16 and fp16, for lengths with and without a tail of fewer than eight values.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "kernels/elementwise.h"

namespace vnp {
namespace {

at::Tensor Random(std::vector<int64_t> shape, at::ScalarType dtype, int64_t seed) {
  at::manual_seed(seed);
  return at::randn(shape).to(dtype);
}

TEST(RowOpsTest, AddNormRowIsTheFusedAddNormBitForBit) {
  for (at::ScalarType t : {at::kFloat, at::kBFloat16, at::kHalf}) {
    for (int64_t n : {576, 64, 13, 3}) {
      SCOPED_TRACE(std::string(c10::toString(t)) + " n=" + std::to_string(n));
      const at::Tensor h = Random({1, n}, t, n), add = Random({1, n}, t, n + 1);
      const at::Tensor w = Random({n}, t, n + 2);
      at::Tensor want_h = h.clone();
      const at::Tensor want = FusedAddRmsNorm(want_h, add, w, 1e-5);
      at::Tensor got_h = h.clone(), got = at::empty_like(h);
      RmsNormRow(t, got_h.data_ptr(), add.const_data_ptr(), w.const_data_ptr(), got.data_ptr(), n,
                 1e-5);
      EXPECT_TRUE(at::equal(got_h, want_h));
      EXPECT_TRUE(at::equal(got, want));
      // In place, without the add (Qwen3's per-head q/k norm).
      at::Tensor in_place = h.clone();
      RmsNormRow(t, in_place.data_ptr(), nullptr, w.const_data_ptr(), in_place.data_ptr(), n,
                 1e-6);
      EXPECT_TRUE(at::equal(in_place, FusedRmsNorm(h, w, 1e-6)));
    }
  }
}

TEST(RowOpsTest, RopeRowIsTheFusedRopeBitForBit) {
  for (at::ScalarType t : {at::kFloat, at::kBFloat16, at::kHalf}) {
    for (int64_t d : {64, 128, 12}) {  // 12: the scalar loop (a half not a multiple of eight)
      SCOPED_TRACE(std::string(c10::toString(t)) + " d=" + std::to_string(d));
      const int64_t heads = 3;
      const at::Tensor x = Random({1, heads, d}, t, d);
      const at::Tensor angle = Random({1, 1, d}, at::kFloat, d + 1);
      const at::Tensor cos = angle.cos().to(t), sin = angle.sin().to(t);
      const at::Tensor want = FusedRope(x, cos, sin);
      // Into a strided destination, as a KV cache slot's heads are block_size · d apart.
      at::Tensor out = at::zeros({heads, 4, d}, x.options());
      RopeRow(t, x.const_data_ptr(), cos.const_data_ptr(), sin.const_data_ptr(), out.data_ptr(),
              heads, d, 4 * d);
      EXPECT_TRUE(at::equal(out.select(1, 0), want[0]));
      EXPECT_TRUE(at::equal(out.select(1, 1), at::zeros({heads, d}, x.options())));
    }
  }
}

}  // namespace
}  // namespace vnp
