// config.json → per-architecture options, NeuronConfig's MoE keys against the model, and the
// MoE router's capacity rule (NxDI's token dropping).
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "config/model_config.h"
#include "config/neuron_config.h"
#include "model/moe.h"

namespace vnp {
namespace {

using nlohmann::json;

json Base(const char* arch) {
  json j = json::parse(R"({"vocab_size": 100, "hidden_size": 64, "intermediate_size": 128,
      "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2})");
  j["architectures"] = {arch};
  return j;
}

ModelConfig Parse(const json& j) {
  auto c = ModelConfig::FromJson(j);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : ModelConfig{};
}

TEST(ArchitecturesTest, BiasesFollowEachModel) {
  json llama = Base("LlamaForCausalLM");
  llama["attention_bias"] = true;
  ModelConfig c = Parse(llama);
  EXPECT_TRUE(c.qkv_bias && c.o_bias);
  c = Parse(Base("Qwen2ForCausalLM"));  // q/k/v bias always, none on o_proj
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias || c.qk_norm);
  c = Parse(Base("Qwen3ForCausalLM"));
  EXPECT_FALSE(c.qkv_bias || c.o_bias);
  EXPECT_TRUE(c.qk_norm);
  json mistral = Base("MistralForCausalLM");
  mistral["attention_bias"] = true;  // Mistral has no bias whatever the file says
  EXPECT_FALSE(Parse(mistral).qkv_bias);
}

TEST(ArchitecturesTest, SlidingWindowLayers) {
  json mistral = Base("MistralForCausalLM");
  mistral["sliding_window"] = 16;
  EXPECT_EQ(Parse(mistral).sliding_window, (std::vector<int64_t>{16, 16, 16, 16}));
  mistral["sliding_window"] = nullptr;
  EXPECT_EQ(Parse(mistral).sliding_window, (std::vector<int64_t>{0, 0, 0, 0}));

  json qwen = Base("Qwen2ForCausalLM");
  qwen["sliding_window"] = 16;  // ignored without use_sliding_window, as in transformers
  EXPECT_EQ(Parse(qwen).sliding_window, (std::vector<int64_t>{0, 0, 0, 0}));
  qwen["use_sliding_window"] = true;
  qwen["max_window_layers"] = 2;
  EXPECT_EQ(Parse(qwen).sliding_window, (std::vector<int64_t>{0, 0, 16, 16}));
  qwen["layer_types"] = {"sliding_attention", "full_attention", "sliding_attention",
                         "full_attention"};
  EXPECT_EQ(Parse(qwen).sliding_window, (std::vector<int64_t>{16, 0, 16, 0}));
  qwen["layer_types"] = {"sliding_attention", "chunked_attention", "full_attention",
                         "full_attention"};
  auto bad = ModelConfig::FromJson(qwen);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "config.json: layer_types[1] is 'chunked_attention'; allowed: full_attention, "
            "sliding_attention");
}

TEST(ArchitecturesTest, GraniteMultipliers) {
  json j = Base("GraniteForCausalLM");
  j["embedding_multiplier"] = 12.0;
  j["residual_multiplier"] = 0.22;
  j["attention_multiplier"] = 0.0078125;
  j["logits_scaling"] = 8.0;
  ModelConfig c = Parse(j);
  EXPECT_DOUBLE_EQ(c.embedding_multiplier, 12.0);
  EXPECT_DOUBLE_EQ(c.residual_multiplier, 0.22);
  EXPECT_DOUBLE_EQ(c.AttentionScale(), 0.0078125);
  EXPECT_DOUBLE_EQ(c.logits_scaling, 8.0);
  EXPECT_DOUBLE_EQ(Parse(Base("LlamaForCausalLM")).AttentionScale(), 0.25);  // 1/sqrt(16)
}

TEST(ArchitecturesTest, MoeLayouts) {
  json mixtral = Base("MixtralForCausalLM");
  mixtral["num_local_experts"] = 8;
  mixtral["num_experts_per_tok"] = 2;
  ModelConfig c = Parse(mixtral);
  EXPECT_EQ(c.moe.num_experts, 8);
  EXPECT_EQ(c.moe.intermediate_size, 128);
  EXPECT_TRUE(c.moe.normalize_top_k);
  EXPECT_EQ(c.moe.prefix, "block_sparse_moe");
  EXPECT_EQ(c.sparse_layer, (std::vector<bool>{true, true, true, true}));

  json qwen = Base("Qwen3MoeForCausalLM");
  qwen["num_experts"] = 4;  // the Hub spelling; transformers 5 writes num_local_experts
  qwen["num_experts_per_tok"] = 2;
  qwen["moe_intermediate_size"] = 32;
  qwen["norm_topk_prob"] = true;
  qwen["decoder_sparse_step"] = 2;
  qwen["mlp_only_layers"] = {3};
  c = Parse(qwen);
  EXPECT_EQ(c.moe.num_experts, 4);
  EXPECT_EQ(c.moe.intermediate_size, 32);
  EXPECT_TRUE(c.moe.normalize_top_k && c.moe.affinities_in_activation_dtype);
  EXPECT_EQ(c.sparse_layer, (std::vector<bool>{false, true, false, false}));

  mixtral["num_experts_per_tok"] = 9;
  EXPECT_FALSE(ModelConfig::FromJson(mixtral).ok());
}

TEST(ArchitecturesTest, RopeVariants) {
  json j = Base("LlamaForCausalLM");
  j["max_position_embeddings"] = 4096;
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0},
                       {"original_max_position_embeddings", 1024}};
  ModelConfig c = Parse(j);
  EXPECT_EQ(c.rope.type, RopeType::kYarn);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 1024);
  EXPECT_NEAR(c.rope.attention_factor, 0.1 * std::log(4.0) + 1.0, 1e-12);
  j["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};  // the pre-rope_type spelling
  c = Parse(j);
  EXPECT_EQ(c.rope.type, RopeType::kDynamic);
  EXPECT_EQ(c.rope.dynamic_threshold, 4096);
  j["rope_scaling"] = {{"rope_type", "linear"}};
  auto bad = ModelConfig::FromJson(j);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "config.json: rope type 'linear' needs a numeric 'factor' >= 1");
  j["rope_scaling"] = {{"rope_type", "longrope"}, {"factor", 2.0}};
  bad = ModelConfig::FromJson(j);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "config.json: rope type 'longrope' is not supported; supported: default, linear, "
            "dynamic, yarn, llama3");
}

TEST(ArchitecturesTest, UnsupportedArchitectureListsTheSupportedOnes) {
  auto c = ModelConfig::FromJson(Base("GPT2LMHeadModel"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "architecture 'GPT2LMHeadModel' is not supported; supported: LlamaForCausalLM, "
            "MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, GraniteForCausalLM, "
            "MixtralForCausalLM, Qwen3MoeForCausalLM");
}

TEST(ArchitecturesTest, MoeKeysAreCheckedAgainstTheModel) {
  ModelConfig llama = Parse(Base("LlamaForCausalLM"));
  auto nc = NeuronConfig::FromJson(R"({"capacity_factor": 1.0})");
  ASSERT_TRUE(nc.ok());
  EXPECT_EQ(nc->CheckModel(llama).message(),
            "override_neuron_config: 'capacity_factor' applies to mixture-of-experts models "
            "(MixtralForCausalLM, Qwen3MoeForCausalLM); LlamaForCausalLM has no experts");
  json q = Base("Qwen3MoeForCausalLM");
  q["num_experts"] = 4, q["num_experts_per_tok"] = 2, q["moe_intermediate_size"] = 32;
  ModelConfig qwen = Parse(q);  // norm_topk_prob absent: false
  EXPECT_TRUE(nc->CheckModel(qwen).ok());
  nc = NeuronConfig::FromJson(R"({"normalize_top_k_affinities": true})");
  ASSERT_TRUE(nc.ok());
  EXPECT_EQ(nc->CheckModel(qwen).message(),
            "override_neuron_config: normalize_top_k_affinities=true contradicts the checkpoint: "
            "Qwen3MoeForCausalLM takes it from config.json norm_topk_prob, which gives false");
  EXPECT_TRUE(NeuronConfig::FromJson("{}")->CheckModel(qwen).ok());  // the default defers
}

TEST(MoeTest, ExpertCapacityIsNxdis) {
  MoeConfig m;
  m.num_experts = 8, m.top_k = 2;
  EXPECT_EQ(ExpertCapacity(m, 1.0, 128), 32);   // ceil(128 * 2 * 1 / 8)
  EXPECT_EQ(ExpertCapacity(m, 1.1, 100), 28);   // ceil(27.5)
  EXPECT_EQ(ExpertCapacity(m, 3.9, 10), 10);    // capped at the token count
  EXPECT_EQ(ExpertCapacity(m, 4.0, 10), -1);    // >= E / top_k: full capacity
}

TEST(MoeTest, CapacityDropsLaterTokensOnly) {
  // Four tokens all preferring expert 0, then expert 1; capacity 2 per expert.
  MoeConfig m;
  m.num_experts = 3, m.top_k = 2, m.intermediate_size = 1;
  at::Tensor router = at::tensor({3.0f, 2.0f, 0.0f}).view({3, 1});
  at::Tensor x = at::ones({4, 1});
  MoeRouting r = RouteTokens(m, router, x, {{0, 4, 2}});
  EXPECT_TRUE(at::equal(r.experts, at::tensor({0, 1, 0, 1, 0, 1, 0, 1}, at::kLong).view({4, 2})));
  at::Tensor kept = at::tensor({1, 1, 1, 1, 0, 0, 0, 0}).to(at::kBool).view({4, 2});
  EXPECT_TRUE(at::equal(r.kept, kept));
  // Kept tokens keep normalised affinities; dropped ones contribute nothing.
  EXPECT_TRUE(at::allclose(r.weights.sum(1), at::tensor({1.0f, 1.0f, 0.0f, 0.0f})));
  // Without a capacity nothing is dropped.
  EXPECT_TRUE(RouteTokens(m, router, x).kept.all().item<bool>());
  // A span only limits its own tokens: a second row starts its count again.
  r = RouteTokens(m, router, x, {{0, 2, 1}, {2, 2, 1}});
  EXPECT_TRUE(at::equal(r.kept.select(1, 0), at::tensor({1, 0, 1, 0}).to(at::kBool)));
}

}  // namespace
}  // namespace vnp
