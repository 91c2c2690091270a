// NxDI's bucket generation and routing, with the worked examples of nxdi-semantics §3.
#include <gtest/gtest.h>

#include "config/buckets.h"
#include "config/neuron_config.h"

namespace vnp {
namespace {

using V = std::vector<int64_t>;

TEST(BucketsTest, GenerateBucketsMatchesNxdi) {
  EXPECT_EQ(GenerateBuckets(128, 4096), (V{128, 256, 512, 1024, 2048, 4096}));
  EXPECT_EQ(GenerateBuckets(128, 2048), (V{128, 256, 512, 1024, 2048}));
  EXPECT_EQ(GenerateBuckets(128, 640), (V{128, 256, 640}));
  EXPECT_EQ(GenerateBuckets(128, 1100), (V{128, 256, 512, 1100}));  // round(log2) = 10
  EXPECT_EQ(GenerateBuckets(128, 1500), (V{128, 256, 512, 1024, 1500}));
  EXPECT_EQ(GenerateBuckets(128, 3000), (V{128, 256, 512, 1024, 2048, 3000}));
  EXPECT_EQ(GenerateBuckets(128, 200), (V{128, 200}));
  EXPECT_EQ(GenerateBuckets(128, 100), (V{100}));
  EXPECT_EQ(GenerateBuckets(512, 2048), (V{512, 1024, 2048}));
  EXPECT_EQ(GenerateBuckets(128, 128), (V{128}));
}

TEST(BucketsTest, FirstFitIsStrictExceptAtTheLargest) {
  const V cte = {128, 256, 512}, tkg = {128, 256, 512, 1024};
  EXPECT_EQ(FirstFit(cte, 100), 128);
  EXPECT_EQ(FirstFit(cte, 128), 256);  // pitfall P6: equal goes one bucket up
  EXPECT_EQ(FirstFit(cte, 512), 512);  // equal to the largest fits
  EXPECT_EQ(FirstFit(cte, 513), std::nullopt);
  EXPECT_EQ(FirstFit(tkg, 127), 128);
  EXPECT_EQ(FirstFit(tkg, 128), 256);
  EXPECT_EQ(FirstFit(tkg, 125 + 4), 256);  // fused speculation k=4 at position 125
}

TEST(BucketsTest, PrefixPrefillRecomputesTheTailOfThePrefix) {
  auto c = NeuronConfig::FromJson(R"({"seq_len": 2048, "enable_bucketing": true,
      "is_block_kv_layout": true, "is_prefix_caching": true})");
  ASSERT_TRUE(c.ok()) << c.status();
  const auto& pce = c->buckets.prefix_context_encoding;
  // nxdi-semantics §3.4: prompt 1500, 1024 cached → active 476 → [512, 1024].
  EXPECT_EQ(RoutePrefixPrefill(pce, 476, 1024), (Bucket2D{512, 1024}));
  EXPECT_EQ(RoutePrefixPrefill(pce, 300, 0), (Bucket2D{512, 0}));
  EXPECT_EQ(RoutePrefixPrefill(pce, 100, 200), (Bucket2D{512, 0}));  // 256 < 300 <= 512
  EXPECT_EQ(RoutePrefixPrefill(pce, 1500, 0), (Bucket2D{2048, 0}));
  EXPECT_EQ(RoutePrefixPrefill(pce, 4000, 0), std::nullopt);
  const auto& ptg = c->buckets.prefix_token_generation;
  EXPECT_EQ(ptg.front(), (Bucket2D{1, 256}));
  EXPECT_EQ(RoutePrefixDecode(ptg, 1, 300), (Bucket2D{1, 512}));
  EXPECT_EQ(RoutePrefixDecode(ptg, 1, 2048), std::nullopt);
}

TEST(BucketsTest, PlanFollowsTheConfig) {
  auto off = NeuronConfig::FromJson(R"({"seq_len": 1024, "max_context_length": 512})");
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->buckets.context_encoding, (V{512}));
  EXPECT_EQ(off->buckets.token_generation, (V{1024}));
  auto on = NeuronConfig::FromJson(R"({"seq_len": 1024, "max_context_length": 512,
      "enable_bucketing": true})");
  ASSERT_TRUE(on.ok());
  EXPECT_EQ(on->buckets.context_encoding, (V{128, 256, 512}));
  EXPECT_EQ(on->buckets.token_generation, (V{128, 256, 512, 1024}));
  EXPECT_EQ(on->buckets.Describe(),
            "context_encoding [128, 256, 512] token_generation [128, 256, 512, 1024]");
}

}  // namespace
}  // namespace vnp
