#include "test_util.h"

#include <filesystem>
#include <fstream>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "weights/safetensors.h"

namespace vnp::testing {

std::string TempDir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("vnp_test_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

void WriteSafetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors) {
  auto s = vnp::WriteSafetensors(path, {tensors.begin(), tensors.end()});
  if (!s.ok()) throw std::runtime_error(std::string(s.message()));
}

std::string WriteTinyLlama(const std::string& name, const TinyLlama& s, uint64_t seed) {
  std::string dir = TempDir(name);
  at::manual_seed(seed);
  const int64_t d = s.hidden / s.heads;
  std::map<std::string, at::Tensor> w;
  auto rnd = [](std::vector<int64_t> shape) { return at::randn(shape) * 0.2; };
  w["model.embed_tokens.weight"] = rnd({s.vocab, s.hidden});
  for (int64_t i = 0; i < s.layers; ++i) {
    std::string p = "model.layers." + std::to_string(i) + ".";
    w[p + "input_layernorm.weight"] = 1 + 0.1 * at::randn({s.hidden});
    w[p + "post_attention_layernorm.weight"] = 1 + 0.1 * at::randn({s.hidden});
    w[p + "self_attn.q_proj.weight"] = rnd({s.heads * d, s.hidden});
    w[p + "self_attn.k_proj.weight"] = rnd({s.kv_heads * d, s.hidden});
    w[p + "self_attn.v_proj.weight"] = rnd({s.kv_heads * d, s.hidden});
    w[p + "self_attn.o_proj.weight"] = rnd({s.hidden, s.heads * d});
    w[p + "mlp.gate_proj.weight"] = rnd({s.intermediate, s.hidden});
    w[p + "mlp.up_proj.weight"] = rnd({s.intermediate, s.hidden});
    w[p + "mlp.down_proj.weight"] = rnd({s.hidden, s.intermediate});
  }
  w["model.norm.weight"] = at::ones({s.hidden});
  if (!s.tied) w["lm_head.weight"] = rnd({s.vocab, s.hidden});
  WriteSafetensors(dir + "/model.safetensors", w);
  std::ofstream(dir + "/config.json") << R"({"architectures": ["LlamaForCausalLM"], "vocab_size": )"
      << s.vocab << R"(, "hidden_size": )" << s.hidden << R"(, "intermediate_size": )"
      << s.intermediate << R"(, "num_hidden_layers": )" << s.layers
      << R"(, "num_attention_heads": )" << s.heads << R"(, "num_key_value_heads": )" << s.kv_heads
      << R"(, "rms_norm_eps": 1e-5, "max_position_embeddings": 256, "tie_word_embeddings": )"
      << (s.tied ? "true" : "false") << ", " << s.rope_json << R"(, "torch_dtype": "float32"})";
  return dir;
}

}  // namespace vnp::testing
