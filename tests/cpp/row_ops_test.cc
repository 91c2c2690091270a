// The row ops (kernels/elementwise.h's *Row functions, AVX2 loops on an AVX2 host) and the
// whole-tensor fused ops (which take the same loops since the prefill path shares them) against
// references written here: torch's op chain as HF's modules round, and, for the norm's sum of
// squares, one running fp32 sum in order. The same bits in fp32, bf16 and fp16, for lengths with
// and without a tail of fewer than eight values (SiluMulRow, whose exp is not libm's, within an
// ulp of torch's silu instead).
#include <cmath>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "kernels/elementwise.h"

namespace vnp {
namespace {

at::Tensor Random(std::vector<int64_t> shape, at::ScalarType dtype, int64_t seed) {
  at::manual_seed(seed);
  return at::randn(shape).to(dtype);
}

// HF's RMSNorm of one row x (dtype t) with the sum of squares taken in order in fp32: w ·
// dtype(x · rsqrt(mean(x²) + eps)).
at::Tensor ReferenceNorm(const at::Tensor& x, const at::Tensor& w, double eps) {
  const at::Tensor xf = x.to(at::kFloat).contiguous();
  const float* p = xf.const_data_ptr<float>();
  float ss = 0.f;
  for (int64_t i = 0; i < xf.numel(); ++i) ss += p[i] * p[i];
  const float scale = 1.f / std::sqrt(ss / static_cast<float>(xf.numel()) + static_cast<float>(eps));
  return w * (xf * scale).to(x.scalar_type());
}

// HF's rotate-half RoPE in torch ops: x · cos + rotate_half(x) · sin, each in x's dtype.
at::Tensor ReferenceRope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  const at::Tensor rotated = at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos + rotated * sin;
}

TEST(RowOpsTest, AddNormRowIsHfsAddNormBitForBit) {
  for (at::ScalarType t : {at::kFloat, at::kBFloat16, at::kHalf}) {
    for (int64_t n : {576, 64, 13, 3}) {
      SCOPED_TRACE(std::string(c10::toString(t)) + " n=" + std::to_string(n));
      const at::Tensor h = Random({1, n}, t, n), add = Random({1, n}, t, n + 1);
      const at::Tensor w = Random({n}, t, n + 2);
      const at::Tensor want_h = h + add;  // torch adds in fp32 and rounds to t
      const at::Tensor want = ReferenceNorm(want_h, w, 1e-5);
      at::Tensor got_h = h.clone(), got = at::empty_like(h);
      RmsNormRow(t, got_h.data_ptr(), add.const_data_ptr(), w.const_data_ptr(), got.data_ptr(), n,
                 1e-5);
      EXPECT_TRUE(at::equal(got_h, want_h));
      EXPECT_TRUE(at::equal(got, want));
      at::Tensor fused_h = h.clone();
      EXPECT_TRUE(at::equal(FusedAddRmsNorm(fused_h, add, w, 1e-5), want));
      EXPECT_TRUE(at::equal(fused_h, want_h));
      // In place, without the add (Qwen3's per-head q/k norm).
      at::Tensor in_place = h.clone();
      RmsNormRow(t, in_place.data_ptr(), nullptr, w.const_data_ptr(), in_place.data_ptr(), n,
                 1e-6);
      EXPECT_TRUE(at::equal(in_place, ReferenceNorm(h, w, 1e-6)));
      EXPECT_TRUE(at::equal(FusedRmsNorm(h, w, 1e-6), ReferenceNorm(h, w, 1e-6)));
    }
  }
}

TEST(RowOpsTest, RopeRowIsHfsRopeBitForBit) {
  for (at::ScalarType t : {at::kFloat, at::kBFloat16, at::kHalf}) {
    for (int64_t d : {64, 128, 12}) {  // 12: the scalar loop (a half not a multiple of eight)
      SCOPED_TRACE(std::string(c10::toString(t)) + " d=" + std::to_string(d));
      const int64_t heads = 3;
      const at::Tensor x = Random({1, heads, d}, t, d);
      const at::Tensor angle = Random({1, 1, d}, at::kFloat, d + 1);
      const at::Tensor cos = angle.cos().to(t), sin = angle.sin().to(t);
      const at::Tensor want = ReferenceRope(x, cos, sin);
      EXPECT_TRUE(at::equal(FusedRope(x, cos, sin), want));
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
