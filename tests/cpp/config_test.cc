#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "config/model_config.h"
#include "config/neuron_config.h"

namespace vnp {
namespace {

TEST(NeuronConfigTest, DefaultsFollowNxdi) {
  auto c = NeuronConfig::FromJson(R"({"seq_len": 512})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->max_context_length, 512);  // NxDI: max_context_length defaults to seq_len
  EXPECT_EQ(c->batch_size, 1);
  EXPECT_EQ(c->tp_degree, 1);
  EXPECT_EQ(c->torch_dtype, c10::ScalarType::BFloat16);
}

TEST(NeuronConfigTest, HyphenatedKeysMeanTheSame) {
  auto c = NeuronConfig::FromJson(R"({"seq-len": 64, "torch-dtype": "float32"})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->seq_len, 64);
  EXPECT_EQ(c->torch_dtype, c10::ScalarType::Float);
}

TEST(NeuronConfigTest, UnknownKeySuggestsClosest) {
  auto c = NeuronConfig::FromJson(R"({"batch_sise": 4})");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("'batch_sise'"), std::string::npos);
  EXPECT_NE(c.status().message().find("did you mean 'batch_size'"), std::string::npos);
}

TEST(NeuronConfigTest, BadValuesNameTheKeyAndTheRule) {
  struct Case { const char* json; const char* expect; };
  for (const Case& k : {Case{R"({"batch_size": 0})", "'batch_size' must be an integer >= 1, got 0"},
                        Case{R"({"batch_size": "4"})", "'batch_size' must be an integer >= 1"},
                        Case{R"({"torch_dtype": "int8"})", "'torch_dtype' must be one of \"float32\""},
                        Case{R"({"tp_degree": 2})", "supported: 1"},
                        Case{R"({"is_prefix_caching": 1})", "'is_prefix_caching' must be true or false"},
                        Case{R"({"seq_len": 64, "max_context_length": 128})",
                             "max_context_length (128) must not exceed max_length (64)"},
                        Case{R"({"is_prefix_caching": true})", "requires is_block_kv_layout"},
                        Case{R"([1, 2])", "must be a JSON object"},
                        Case{R"({"seq_len": )", "malformed JSON"}}) {
    auto c = NeuronConfig::FromJson(k.json);
    ASSERT_FALSE(c.ok()) << k.json;
    EXPECT_NE(c.status().message().find(k.expect), std::string::npos)
        << k.json << " gave: " << c.status().message();
  }
}

TEST(NeuronConfigTest, JsonRoundTrips) {
  auto c = NeuronConfig::FromJson(R"({"seq_len": 300, "batch_size": 8, "torch_dtype": "float16",
                                      "is_block_kv_layout": true, "is_prefix_caching": true})");
  ASSERT_TRUE(c.ok()) << c.status();
  auto again = NeuronConfig::FromJson(c->ToJson());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->ToJson(), c->ToJson());
}

nlohmann::json LlamaJson() {
  return nlohmann::json::parse(R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 100,
      "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
      "num_attention_heads": 4, "num_key_value_heads": 2})");
}

TEST(ModelConfigTest, DerivesHeadDimAndKvHeads) {
  auto c = ModelConfig::FromJson(LlamaJson());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_EQ(c->num_kv_heads, 2);
  EXPECT_EQ(c->rope.type, RopeType::kDefault);
}

TEST(ModelConfigTest, ReadsLlama3RopeFromEitherSpelling) {
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    auto j = LlamaJson();
    j[key] = {{"rope_type", "llama3"}, {"factor", 32.0}, {"low_freq_factor", 1.0},
              {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192},
              {"rope_theta", 500000.0}};
    auto c = ModelConfig::FromJson(j);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(c->rope.type, RopeType::kLlama3) << key;
    EXPECT_DOUBLE_EQ(c->rope.factor, 32.0);
    EXPECT_DOUBLE_EQ(c->rope.theta, 500000.0);
  }
}

TEST(ModelConfigTest, RefusesWhatItCannotRun) {
  auto j = LlamaJson();
  j["architectures"] = {"GPT2LMHeadModel"};
  auto c = ModelConfig::FromJson(j);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("supported: LlamaForCausalLM, MistralForCausalLM"),
            std::string::npos);
  j = LlamaJson();
  j["num_key_value_heads"] = 3;
  EXPECT_FALSE(ModelConfig::FromJson(j).ok());
  j = LlamaJson();
  j["rope_scaling"] = {{"rope_type", "mystery"}};
  EXPECT_FALSE(ModelConfig::FromJson(j).ok());
}

}  // namespace
}  // namespace vnp
