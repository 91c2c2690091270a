// NeuronConfig: the NxDI runtime configuration, parsed from the merged JSON that the Python side
// builds (NxDI defaults → values derived from vLLM → the user's override_neuron_config). Every
// NxDI key is known (config/neuron_config_schema.h); this struct holds the ones the worker
// reads, and the resolved JSON keeps them all.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/statusor.h>
#include <c10/core/ScalarType.h>

#include "config/buckets.h"
#include "config/model_config.h"

namespace vnp {

struct ChunkedPrefillConfig {
  int64_t max_num_seqs = 0;
  bool tkg_model_enabled = true;
};

// NxDI's OnDeviceSamplingConfig (nxdi-semantics §1.5, §8).
struct OnDeviceSampling {
  bool do_sample = false;
  bool dynamic = false;
  bool deterministic = false;
  int64_t global_topk = 256;
  int64_t top_k = 1;  // trace-time values, used for every row unless `dynamic`
  double top_p = 1.0;
  double temperature = 1.0;
};

struct NeuronConfig {
  int64_t tp_degree = 1;
  int64_t batch_size = 1;
  int64_t seq_len = 128;
  int64_t max_context_length = 128;  // NxDI: defaults to seq_len
  int64_t max_length = 128;          // NxDI: defaults to seq_len
  c10::ScalarType torch_dtype = c10::ScalarType::BFloat16;
  bool fused_qkv = false;
  bool save_sharded_checkpoint = true;
  bool skip_warmup = false;
  bool enable_bucketing = false;
  std::vector<int64_t> context_encoding_buckets;  // empty = NxDI's generated list
  std::vector<int64_t> token_generation_buckets;
  std::vector<int64_t> prefix_buckets;
  bool is_block_kv_layout = false;
  int64_t pa_block_size = 128;  // NxDI: defaults to seq_len
  int64_t pa_num_blocks = 1;    // NxDI: defaults to batch_size
  bool is_prefix_caching = false;
  std::optional<ChunkedPrefillConfig> chunked_prefill;
  std::optional<OnDeviceSampling> on_device_sampling;  // null: vLLM's sampling semantics
  // Speculative decoding: k drafts verified per step; fused = the draft model runs in the worker.
  int64_t speculation_length = 0;
  bool enable_fused_speculation = false;
  // MoE (MoENeuronConfig): capacity_factor; normalize_top_k_affinities only when given, since
  // the checkpoint decides it.
  std::optional<double> capacity_factor;
  std::optional<bool> normalize_top_k_affinities;

  BucketPlan buckets;
  // Keys given with a value other than their default that do nothing on this backend.
  std::vector<std::string> no_effect_keys;

  bool is_chunked_prefill() const { return chunked_prefill.has_value(); }

  // Parses, applies NxDI's defaults and derivations, validates. Errors name the key, the value
  // and what is allowed.
  static absl::StatusOr<NeuronConfig> FromJson(std::string_view text);
  // Rules that need the model too: MoE keys on a dense model, normalize_top_k_affinities
  // against the checkpoint's routing rule.
  absl::Status CheckModel(const ModelConfig& model) const;
  // Every key, resolved: sorted, indent 2, dtypes as strings. FromJson(ToJson()) gives it back.
  const std::string& ToJson() const { return json_; }

 private:
  std::string json_;
};

// Keys this build understands, sorted.
const std::vector<std::string>& KnownNeuronConfigKeys();

// The known key closest to `key` by edit distance (for "did you mean" messages).
std::string ClosestKey(std::string_view key, const std::vector<std::string>& known);

}  // namespace vnp
