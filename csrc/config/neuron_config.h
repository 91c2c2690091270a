// NeuronConfig: the NxDI runtime configuration, parsed from the merged JSON that the Python side
// builds (NxDI defaults → values derived from vLLM → the user's override_neuron_config).
// This is the walking-skeleton subset; keys outside it are refused by name, never ignored.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/statusor.h>
#include <c10/core/ScalarType.h>

namespace vnp {

struct NeuronConfig {
  int64_t tp_degree = 1;
  int64_t batch_size = 1;
  int64_t seq_len = 128;
  int64_t max_context_length = 128;  // NxDI: defaults to seq_len
  c10::ScalarType torch_dtype = c10::ScalarType::BFloat16;
  bool is_block_kv_layout = false;
  int64_t pa_block_size = 128;
  int64_t pa_num_blocks = 0;  // 0 = sized by the caller (vLLM's KV cache config)
  bool is_prefix_caching = false;
  bool is_chunked_prefill = false;
  bool output_logits = false;

  static absl::StatusOr<NeuronConfig> FromJson(std::string_view text);
  std::string ToJson() const;
};

// Keys this build understands, sorted.
const std::vector<std::string>& KnownNeuronConfigKeys();

// The known key closest to `key` by edit distance (for "did you mean" messages).
std::string ClosestKey(std::string_view key, const std::vector<std::string>& known);

}  // namespace vnp
