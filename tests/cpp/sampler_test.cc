#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "sampling/sampler.h"

namespace vnp {
namespace {

SamplingBatch Batch(int64_t n, float temperature, float top_k, float top_p, int64_t seed = -1) {
  at::Tensor params = at::tensor({temperature, top_k, top_p}).repeat({n, 1});
  return {params, at::full({n}, seed, at::kLong), at::arange(n, at::kLong)};
}

TEST(SamplerTest, GreedyIsArgmax) {
  Sampler s(0);
  at::Tensor logits = at::randn({8, 50});
  EXPECT_TRUE(at::equal(s.Sample(logits, Batch(8, 0.0f, 0, 1.0f)), logits.argmax(1)));
}

TEST(SamplerTest, TopKOneAndTinyTopPAreGreedy) {
  Sampler s(0);
  at::Tensor logits = at::randn({16, 50});
  EXPECT_TRUE(at::equal(s.Sample(logits, Batch(16, 1.0f, 1, 1.0f)), logits.argmax(1)));
  EXPECT_TRUE(at::equal(s.Sample(logits, Batch(16, 1.0f, 0, 1e-6f)), logits.argmax(1)));
}

TEST(SamplerTest, TopKNeverLeavesTheTopK) {
  Sampler s(1);
  at::Tensor logits = at::randn({1, 40}).repeat({2000, 1});
  at::Tensor picked = s.Sample(logits, Batch(2000, 2.0f, 3, 1.0f));
  at::Tensor top3 = std::get<1>(logits[0].topk(3));
  EXPECT_TRUE(at::isin(picked, top3).all().item<bool>());
  EXPECT_EQ(std::get<0>(at::_unique(picked)).numel(), 3);  // and, at T=2, reaches all three
}

TEST(SamplerTest, TopPKeepsTheCrossingToken) {
  // probs 0.5, 0.3, 0.2: top_p 0.6 keeps {0, 1} (0.5 < 0.6, crossing token 1 kept), never 2.
  Sampler s(2);
  at::Tensor logits = at::log(at::tensor({0.5f, 0.3f, 0.2f})).unsqueeze(0).repeat({3000, 1});
  at::Tensor picked = s.Sample(logits, Batch(3000, 1.0f, 0, 0.6f));
  EXPECT_EQ(picked.eq(2).sum().item<int64_t>(), 0);
  double frac0 = picked.eq(0).to(at::kDouble).mean().item<double>();
  EXPECT_NEAR(frac0, 0.5 / 0.8, 0.03);  // renormalised over the kept set
}

TEST(SamplerTest, SeededDrawsDependOnlyOnSeedAndOffset) {
  at::Tensor logits = at::randn({1, 1000}).repeat({4, 1});
  Sampler a(0), b(99);
  SamplingBatch batch = Batch(4, 1.0f, 0, 1.0f, 1234);
  at::Tensor x = a.Sample(logits, batch);
  at::Tensor y = b.Sample(logits, batch);
  EXPECT_TRUE(at::equal(x, y));
  // Same offsets in another row order give the same tokens per row.
  SamplingBatch flipped{batch.params, batch.seeds, batch.offsets.flip(0)};
  EXPECT_TRUE(at::equal(a.Sample(logits, flipped), x.flip(0)));
}

}  // namespace
}  // namespace vnp
