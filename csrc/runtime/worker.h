// The worker: owns the decoder, the KV storage and the sampler, and runs one step per call.
// Routing follows NxDI's graphs: a row is context encoding (prompt tokens from position 0 or
// after a cached prefix / earlier chunk) or token generation (one new token); both run in one
// flat batch here, since nothing on CPU forces NxDI's static shapes.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include <absl/status/statusor.h>

#include "config/model_config.h"
#include "config/neuron_config.h"
#include "kv/kv_cache.h"
#include "model/decoder.h"
#include "runtime/step.h"
#include "sampling/sampler.h"

namespace vnp {

class Worker {
 public:
  // Loads `model_dir` (config.json + safetensors) with the merged NeuronConfig JSON.
  static absl::StatusOr<std::unique_ptr<Worker>> Create(const std::string& model_dir,
                                                        const std::string& neuron_config_json,
                                                        uint64_t seed = 0);

  // Bytes of KV one block takes across all layers.
  int64_t KvBytesPerBlock(int64_t block_size) const;
  absl::Status AllocateKv(int64_t num_blocks, int64_t block_size);

  absl::StatusOr<StepOutput> Step(const StepInput& input);

  // NxDI warms each graph up at load; here one prefill of the smallest context-encoding bucket
  // (capped at 128 tokens) and one decode step pay the one-time costs (allocator, kernels)
  // before the first request. Writes no KV. Returns the seconds it took.
  absl::StatusOr<double> WarmUp();

  // Steps routed to each bucket since start: "context_encoding/128" → n. A prefill row counts
  // once per step (NxDI runs prefills one at a time); a step's decode rows count once, at the
  // bucket of their longest sequence (one token-generation call). "unbucketed/..." counts rows
  // past the largest bucket (only resumed requests, whose recompute is longer than a prompt).
  const std::map<std::string, int64_t>& bucket_counts() const { return bucket_counts_; }
  // The prepared artifact directory and whether this start reused it.
  const std::string& artifact_dir() const { return artifact_dir_; }
  bool artifact_reused() const { return artifact_reused_; }

  const ModelConfig& model_config() const { return decoder_.config(); }
  const NeuronConfig& neuron_config() const { return neuron_config_; }
  bool kv_allocated() const { return kv_.has_value(); }

 private:
  Worker(NeuronConfig neuron_config, Decoder decoder, uint64_t seed)
      : neuron_config_(std::move(neuron_config)), decoder_(std::move(decoder)),
        sampler_(seed, neuron_config_.on_device_sampling) {}

  absl::Status Validate(const StepInput& in) const;
  void CountBuckets(const std::vector<int64_t>& query_lens, const std::vector<int64_t>& context_lens);
  // A row of one new token after a context is a decode; anything else is a (chunk of a) prefill.
  static bool IsDecode(int64_t query_len, int64_t context_len) {
    return query_len == 1 && context_len > 0;
  }
  // Tokens in the context-encoding bucket a prefill row runs in (its own length if none fits).
  int64_t PrefillBucketTokens(int64_t query_len, int64_t context_len) const;
  // NxDI capacity_factor: the expert capacity of each prefill row; empty when not set.
  std::vector<CapacitySpan> MoeCapacity(const std::vector<int64_t>& query_lens,
                                        const std::vector<int64_t>& context_lens) const;

  NeuronConfig neuron_config_;
  Decoder decoder_;
  Sampler sampler_;
  std::optional<KvCache> kv_;
  std::map<std::string, int64_t> bucket_counts_;
  std::string artifact_dir_;
  bool artifact_reused_ = false;
};

}  // namespace vnp
