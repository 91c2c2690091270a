// The fused decode step's row ops (kernels/elementwise.h's *Row functions, AVX2 loops on an AVX2
// host) against the whole-tensor fused ops, whose scalar loops round at the same points: the same
// bits in fp32, bf16 and fp16, for lengths with and without a tail of fewer than eight values
// (SiluMulRow, whose exp is not libm's, within an ulp of torch's silu instead).
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

// silu through the kernels' exp polynomial (the AVX2 loop) or libm's (the scalar loop), against
// torch's silu (its own vectorised exp) rounded at the same points: one unit in the last place
// at most (four in fp32), and in 16 bits the same value for all but a few.
TEST(RowOpsTest, SiluMulRowIsTorchsSiluTimesUpWithinAnUlp) {
  for (at::ScalarType t : {at::kFloat, at::kBFloat16, at::kHalf}) {
    for (int64_t n : {1536, 13, 3}) {
      SCOPED_TRACE(std::string(c10::toString(t)) + " n=" + std::to_string(n));
      at::Tensor gate = (Random({n}, at::kFloat, n) * 6).to(t);
      if (n > 8) {  // saturated, zero and overflowing gates
        gate.index_put_({at::indexing::Slice(0, 6)},
                        at::tensor({-100.f, -30.f, 0.f, 30.f, 100.f, -0.f}).to(t));
      }
      const at::Tensor up = Random({n}, t, n + 1);
      const at::Tensor want = (at::silu(gate.to(at::kFloat)).to(t).to(at::kFloat) *
                               up.to(at::kFloat)).to(t);
      at::Tensor got = gate.clone();  // in place, as the fused MLP phase calls it
      SiluMulRow(t, got.data_ptr(), up.const_data_ptr(), got.data_ptr(), n);
      const double ulp = t == at::kBFloat16 ? 0x1p-7 : t == at::kHalf ? 0x1p-10 : 0x1p-21;
      const at::Tensor g = got.to(at::kFloat), w = want.to(at::kFloat);
      EXPECT_TRUE(at::all((g - w).abs() <= w.abs() * ulp + 1e-30).item<bool>())
          << "max difference " << (g - w).abs().max().item<float>();
      if (t != at::kFloat) {  // fp32 keeps every ulp of the exp's difference
        EXPECT_GE(at::eq(g, w).sum().item<int64_t>(), n - std::max<int64_t>(1, n / 100));
      }
    }
  }
}

}  // namespace
}  // namespace vnp
