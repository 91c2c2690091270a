// A bounded property test of the NeuronConfig parser: random JSON (known keys with values of
// every type, mutated keys, nesting) and random byte edits of valid configs. The parser must
// never crash or throw, every rejection must be a clean InvalidArgument error that starts with
// "override_neuron_config", and every accepted config must round-trip through ToJson.
#include <chrono>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "config/neuron_config.h"

namespace vnp {
namespace {

using nlohmann::json;

class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed) {}

  int Int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  json Value(int depth) {
    switch (Int(0, depth > 2 ? 6 : 8)) {
      case 0: return nullptr;
      case 1: return Int(0, 1) == 1;
      case 2: return Int(-3, 5000);
      case 3: return std::ldexp(Int(-1000, 1000), Int(-8, 8));
      case 4: return Key();
      case 5: return std::vector<int>{Int(-1, 600), Int(1, 5000)};
      case 6: return json::array();
      case 7: {
        json o = json::object();
        for (int i = Int(0, 3); i > 0; --i) o[Key()] = Value(depth + 1);
        return o;
      }
      default: return json::array({Value(depth + 1), Value(depth + 1)});
    }
  }

  std::string Key() {
    const auto& keys = KnownNeuronConfigKeys();
    std::string k = keys[Int(0, static_cast<int>(keys.size()) - 1)];
    switch (Int(0, 5)) {
      case 0: k[Int(0, static_cast<int>(k.size()) - 1)] = static_cast<char>(Int(32, 126)); break;
      case 1: std::replace(k.begin(), k.end(), '_', '-'); break;
      case 2: return Int(0, 1) ? "top_k" : "do_sample";  // nested keys at the wrong level
      default: break;
    }
    return k;
  }

  json Config() {
    json o = json::object();
    for (int i = Int(0, 6); i > 0; --i) o[Key()] = Value(0);
    return o;
  }

  std::string Mutate(std::string s) {
    for (int i = Int(1, 4); i > 0 && !s.empty(); --i) {
      size_t at = Int(0, static_cast<int>(s.size()) - 1);
      switch (Int(0, 2)) {
        case 0: s.erase(at, 1); break;
        case 1: s.insert(at, 1, "{}[]\",:0-e\\\x01\xff"[Int(0, 13)]); break;
        default: s[at] = static_cast<char>(Int(0, 255)); break;
      }
    }
    return s;
  }

 private:
  std::mt19937_64 rng_;
};

void CheckOne(const std::string& text, int& accepted) {
  absl::StatusOr<NeuronConfig> c;
  ASSERT_NO_THROW(c = NeuronConfig::FromJson(text)) << text;
  if (!c.ok()) {
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_EQ(std::string(c.status().message()).rfind("override_neuron_config", 0), 0u) << c.status();
    return;
  }
  ++accepted;
  auto again = NeuronConfig::FromJson(c->ToJson());
  ASSERT_TRUE(again.ok()) << text << " → " << again.status();
  EXPECT_EQ(again->ToJson(), c->ToJson()) << text;
}

TEST(NeuronConfigFuzzTest, NeverCrashesAndRejectsCleanly) {
  Gen gen(20261127);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int runs = 0, accepted = 0;
  const std::string valid = R"({"seq_len": 256, "enable_bucketing": true,
      "context_encoding_buckets": [128, 256], "is_block_kv_layout": true,
      "on_device_sampling_config": null, "chunked_prefill_config": {"max_num_seqs": 2}})";
  while (std::chrono::steady_clock::now() < deadline && runs < 200000) {
    CheckOne(gen.Config().dump(), accepted);
    CheckOne(gen.Mutate(valid), accepted);
    runs += 2;
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_GT(runs, 1000);
  EXPECT_GT(accepted, 10);  // the generator reaches the accepting paths too
  std::cout << runs << " configs, " << accepted << " accepted\n";
}

}  // namespace
}  // namespace vnp
