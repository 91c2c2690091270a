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

// FilterLogits against a full sort of a 5000-token vocabulary (vLLM's rule), on peaked rows
// (top-p's kept set inside the first 256 candidates) and flat ones (past them: the full sort),
// and with nothing cut (vocabulary order, no sort).
TEST(SamplerTest, FilterLogitsMatchesTheFullSort) {
  at::manual_seed(5);
  for (float scale : {8.0f, 3.0f, 0.3f}) {
    at::Tensor logits = at::randn({5000}) * scale;
    for (float top_p : {0.5f, 0.95f, 1.0f}) {
      SCOPED_TRACE(testing::Message() << "scale " << scale << " top_p " << top_p);
      Filtered f = FilterLogits(logits, 0.7f, 0, top_p);
      at::Tensor probs = at::softmax(logits / 0.7f, 0, at::kDouble);
      auto [sorted, order] = probs.sort(0, /*descending=*/true);
      at::Tensor before = sorted.cumsum(0) - sorted;
      const int64_t keep = std::max<int64_t>(1, before.lt(top_p).sum().item<int64_t>());
      ASSERT_EQ(f.keep, keep);
      at::Tensor kept = f.ids.narrow(0, 0, keep);
      at::Tensor want = order.narrow(0, 0, keep);
      EXPECT_TRUE(at::equal(std::get<0>(kept.sort()), std::get<0>(want.sort())));
      // Each kept token's probability, over the whole vocabulary, as the cumulative sums say.
      at::Tensor cum = f.cum.narrow(0, 0, keep);
      at::Tensor p = cum - at::cat({at::zeros({1}, at::kDouble), cum.narrow(0, 0, keep - 1)});
      EXPECT_TRUE(at::allclose(p, probs.index_select(0, kept), 1e-9, 1e-12));
    }
  }
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

// NxDI's on-device sampler (nxdi-semantics §8), on its worked examples.
OnDeviceSampling Dynamic(bool deterministic = false) {
  OnDeviceSampling c;
  c.do_sample = true, c.dynamic = true, c.deterministic = deterministic;
  return c;
}

at::Tensor Params(float temperature, float top_k, float top_p, int64_t n = 1) {
  return at::tensor({temperature, top_k, top_p}).repeat({n, 1});
}

// Probabilities 0.5 / 0.3 / 0.2 over tokens 7 / 3 / 5 of a 10-token vocabulary.
at::Tensor ThreeWay(int64_t n) {
  at::Tensor logits = at::full({10}, -1e9f);
  logits[7] = std::log(0.5f), logits[3] = std::log(0.3f), logits[5] = std::log(0.2f);
  return logits.unsqueeze(0).repeat({n, 1});
}

TEST(NxdiSamplerTest, TopPDropsTheCrossingToken) {
  // top_p 0.6: NxDI keeps c <= 0.6 -> only token 7; vLLM's rule would also keep token 3.
  at::Tensor u = at::rand({2000}, at::kDouble);
  at::Tensor picked = Sampler::SampleNxdi(ThreeWay(2000), Params(1, -1, 0.6f, 2000), u, Dynamic());
  EXPECT_TRUE(picked.eq(7).all().item<bool>());
  // top_p 0.85 keeps 7 and 3 (cumulative 0.5, 0.8), never 5.
  picked = Sampler::SampleNxdi(ThreeWay(2000), Params(1, -1, 0.85f, 2000), u, Dynamic());
  EXPECT_TRUE(picked.eq(5).logical_not().all().item<bool>());
  EXPECT_TRUE(picked.eq(3).any().item<bool>());
}

TEST(NxdiSamplerTest, DeterministicDrawsAtOneHalf) {
  at::Tensor u = at::zeros({1}, at::kDouble);  // ignored: deterministic uses r = 0.5
  // cdf [0.5, 0.8, 1.0]: count(cdf < 0.5) = 0 -> the first candidate.
  EXPECT_EQ(Sampler::SampleNxdi(ThreeWay(1), Params(1, -1, 1, 1), u, Dynamic(true)).item<int64_t>(), 7);
  // 0.4 / 0.3 / 0.3: cdf [0.4, 0.7, 1.0] -> count(cdf < 0.5) = 1 -> the second candidate.
  at::Tensor logits = at::full({1, 10}, -1e9f);
  logits[0][2] = std::log(0.4f), logits[0][8] = std::log(0.3f), logits[0][9] = std::log(0.3f);
  at::Tensor got = Sampler::SampleNxdi(logits, Params(1, -1, 1, 1), u, Dynamic(true));
  EXPECT_EQ(got.item<int64_t>() == 8 || got.item<int64_t>() == 9, true);
}

TEST(NxdiSamplerTest, VllmParametersMapAsVllmNeuronMapsThem) {
  at::Tensor logits = at::randn({64, 300});
  at::Tensor u = at::rand({64}, at::kDouble);
  // temperature 0 -> top_k 1, T 1: the argmax, whatever the draw.
  EXPECT_TRUE(at::equal(Sampler::SampleNxdi(logits, Params(0, -1, 1, 64), u, Dynamic()),
                        logits.argmax(1)));
  // top_k <= 0 -> global_topk: draws stay inside the global pool of 4.
  OnDeviceSampling c = Dynamic();
  c.global_topk = 4;
  at::Tensor picked = Sampler::SampleNxdi(logits, Params(5, 0, 1, 64), u, c);
  at::Tensor pool = std::get<1>(logits.topk(4, 1));
  EXPECT_TRUE(pool.eq(picked.unsqueeze(1)).any(1).all().item<bool>());
  // Not dynamic and not do_sample: NxDI's greedy graph.
  OnDeviceSampling greedy;
  EXPECT_TRUE(at::equal(Sampler::SampleNxdi(logits, Params(5, 0, 1, 64), u, greedy),
                        logits.argmax(1)));
}

TEST(NxdiSamplerTest, ModeFollowsTheConfig) {
  Sampler s(0, Dynamic(true));
  EXPECT_EQ(s.Sample(ThreeWay(3), Batch(3, 1.0f, 0, 1.0f)).eq(7).all().item<bool>(), true);
}

}  // namespace
}  // namespace vnp
