// Prepared artifacts: the first start writes neuron_config.json (and prepared weights when they
// differ from the checkpoint), the second start reuses them, a changed config gets a new
// directory, and a mismatching $NEURON_COMPILED_ARTIFACTS is refused by name.
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "runtime/generate.h"
#include "runtime/worker.h"
#include "test_util.h"

namespace vnp {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::unique_ptr<Worker> Make(const std::string& dir, const std::string& config) {
  auto w = Worker::Create(dir, config);
  EXPECT_TRUE(w.ok()) << w.status();
  return w.ok() ? *std::move(w) : nullptr;
}

std::vector<std::vector<int64_t>> Greedy(Worker& w) {
  std::vector<GenerateRequest> r(2);
  r[0].prompt = {3, 8, 1, 9, 30, 2};
  r[1].prompt = {5};
  for (auto& x : r) x.max_new_tokens = 8;
  auto out = Generate(w, r, {});
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? out->tokens : std::vector<std::vector<int64_t>>{};
}

json ReadJson(const fs::path& p) {
  std::ifstream in(p);
  return json::parse(in);
}

TEST(ArtifactsTest, SecondStartReusesThePreparedArtifact) {
  const std::string model = testing::WriteTinyLlama("artifact_reuse", {});
  const std::string cfg = R"({"seq_len": 64, "torch_dtype": "bfloat16", "fused_qkv": true})";
  auto first = Make(model, cfg);
  ASSERT_TRUE(first);
  EXPECT_FALSE(first->artifact_reused());
  const fs::path dir = first->artifact_dir();
  EXPECT_EQ(dir.parent_path(), fs::path(model) / "neuron-compiled-artifacts");
  // fp32 checkpoint cast to bf16 and fused: the artifact holds its own weights.
  EXPECT_TRUE(fs::exists(dir / "model.safetensors"));
  json saved = ReadJson(dir / "neuron_config.json");
  EXPECT_EQ(saved["metadata"]["weights"], "model.safetensors");
  EXPECT_EQ(saved["vocab_size"], 96);  // the HF attributes sit beside neuron_config, as in NxDI
  // neuron_config.json round-trips exactly.
  auto again = NeuronConfig::FromJson(saved["neuron_config"].dump());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(json::parse(again->ToJson()), saved["neuron_config"]);
  EXPECT_EQ(again->ToJson(), first->neuron_config().ToJson());

  auto second = Make(model, cfg);
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->artifact_reused());
  EXPECT_EQ(second->artifact_dir(), dir.string());
  EXPECT_EQ(Greedy(*first), Greedy(*second));

  // A changed config prepares a new artifact instead of reusing the old one.
  auto other = Make(model, R"({"seq_len": 64, "torch_dtype": "bfloat16"})");
  ASSERT_TRUE(other);
  EXPECT_FALSE(other->artifact_reused());
  EXPECT_NE(other->artifact_dir(), dir.string());
}

TEST(ArtifactsTest, FusedQkvGivesTheSameOutput) {
  const std::string model = testing::WriteTinyLlama("artifact_fused", {});
  auto plain = Make(model, R"({"seq_len": 64, "torch_dtype": "float32"})");
  auto fused = Make(model, R"({"seq_len": 64, "torch_dtype": "float32", "fused_qkv": true})");
  ASSERT_TRUE(plain && fused);
  EXPECT_EQ(Greedy(*plain), Greedy(*fused));
  // Unchanged fp32 weights are not copied: the artifact points back at the checkpoint.
  json saved = ReadJson(fs::path(plain->artifact_dir()) / "neuron_config.json");
  EXPECT_EQ(saved["metadata"]["weights"], "source");
  EXPECT_FALSE(fs::exists(fs::path(plain->artifact_dir()) / "model.safetensors"));
}

TEST(ArtifactsTest, SaveShardedCheckpointFalseWritesNothing) {
  const std::string model = testing::WriteTinyLlama("artifact_off", {});
  auto w = Make(model, R"({"seq_len": 64, "save_sharded_checkpoint": false})");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->artifact_dir(), "");
  EXPECT_FALSE(fs::exists(fs::path(model) / "neuron-compiled-artifacts"));
}

TEST(ArtifactsTest, MismatchingCompiledArtifactsDirIsRefused) {
  const std::string model = testing::WriteTinyLlama("artifact_env", {});
  const std::string dir = testing::TempDir("artifact_env_dir") + "/prepared";
  ::setenv("NEURON_COMPILED_ARTIFACTS", dir.c_str(), 1);
  auto first = Make(model, R"({"seq_len": 64})");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->artifact_dir(), dir);
  auto same = Make(model, R"({"seq_len": 64})");
  ASSERT_TRUE(same);
  EXPECT_TRUE(same->artifact_reused());
  auto changed = Worker::Create(model, R"({"seq_len": 96})");
  ::unsetenv("NEURON_COMPILED_ARTIFACTS");
  ASSERT_FALSE(changed.ok());
  const std::string msg(changed.status().message());
  EXPECT_NE(msg.find("NEURON_COMPILED_ARTIFACTS=" + dir), std::string::npos) << msg;
  EXPECT_NE(msg.find("seq_len=64"), std::string::npos) << msg;
}

TEST(ArtifactsTest, WarmUpRunsAndCountsNoBuckets) {
  const std::string model = testing::WriteTinyLlama("artifact_warm", {});
  auto w = Make(model, R"({"seq_len": 64, "enable_bucketing": true, "torch_dtype": "float32"})");
  ASSERT_TRUE(w);
  EXPECT_FALSE(w->WarmUp().ok());  // needs the KV cache
  ASSERT_TRUE(w->AllocateKv(8, 16).ok());
  auto secs = w->WarmUp();
  ASSERT_TRUE(secs.ok()) << secs.status();
  EXPECT_TRUE(w->bucket_counts().empty());
  Greedy(*w);
  // Prompts 6 and 1 → context bucket 64 (one list entry: 64); decodes → token-generation 64.
  EXPECT_EQ(w->bucket_counts().at("context_encoding/64"), 2);
  EXPECT_GT(w->bucket_counts().at("token_generation/64"), 0);
}

}  // namespace
}  // namespace vnp
