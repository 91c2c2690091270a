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

// The draft model's part of a step (fused speculation, NxDI enable_fused_speculation): per row,
// the tokens its KV has not seen yet (flat, back to back, from position context_lens[b]), and
// how many drafts to propose after them.
struct ProposeInput {
  at::Tensor token_ids;     // [T] int
  at::Tensor query_lens;    // [B] int: catch-up tokens of each row (>= 1 where drafts are wanted)
  at::Tensor context_lens;  // [B] int: positions the draft's KV already holds
  at::Tensor block_tables;  // [B, max_blocks] int: the target's blocks (the draft KV shares ids)
  at::Tensor num_drafts;    // [B] int: drafts wanted (0: catch up only)
};

class Worker {
 public:
  // Loads `model_dir` (config.json + safetensors) with the merged NeuronConfig JSON, and a
  // draft model from `draft_dir` when given (same vocabulary; it runs in the same dtype).
  static absl::StatusOr<std::unique_ptr<Worker>> Create(const std::string& model_dir,
                                                        const std::string& neuron_config_json,
                                                        uint64_t seed = 0,
                                                        const std::string& draft_dir = "");

  // Bytes of KV one block takes across all layers (the target's; the draft's apart).
  int64_t KvBytesPerBlock(int64_t block_size) const;
  int64_t DraftKvBytesPerBlock(int64_t block_size) const;
  // Allocates the target's KV, and the draft's with the same block ids.
  absl::Status AllocateKv(int64_t num_blocks, int64_t block_size);

  absl::StatusOr<StepOutput> Step(const StepInput& input);

  // Runs the draft model over each row's catch-up tokens, writing its KV, then proposes
  // num_drafts[b] tokens greedily (NxDI's vanilla fused drafts are greedy), writing the KV of
  // all but the last. Every written position must lie inside the row's block table. Returns
  // [B, max(num_drafts)] int64, -1 padded.
  absl::StatusOr<at::Tensor> Propose(const ProposeInput& input);
  bool has_draft() const { return draft_.has_value(); }
  // Decode steps in one parallel region (model/fused_decode.h), on by default where the model
  // allows; tests turn it off to compare the two paths.
  void set_fused_decode(bool on) {
    decoder_.set_fused_decode(on);
    if (draft_) draft_->set_fused_decode(on);
  }
  int64_t fused_decode_steps() const { return decoder_.fused_decode_steps(); }

  // NxDI warms each graph up at load; here one prefill of the smallest context-encoding bucket
  // (capped at 128 tokens) and one decode step pay the one-time costs (allocator, kernels)
  // before the first request. Writes no KV. Returns the seconds it took.
  absl::StatusOr<double> WarmUp();

  // Steps routed to each bucket since start: "context_encoding/128" → n. A prefill row counts
  // once per step (NxDI runs prefills one at a time); a step's decode rows count once, at the
  // bucket of their longest sequence (one token-generation call), and so do its speculation
  // rows ("speculation/<token-generation bucket>", routed by context + drafts).
  // "unbucketed/..." counts rows past the largest bucket (only resumed requests, whose
  // recompute is longer than a prompt).
  const std::map<std::string, int64_t>& bucket_counts() const { return bucket_counts_; }
  // The prepared artifact directory and whether this start reused it.
  const std::string& artifact_dir() const { return artifact_dir_; }
  bool artifact_reused() const { return artifact_reused_; }

  const ModelConfig& model_config() const { return decoder_.config(); }
  const NeuronConfig& neuron_config() const { return neuron_config_; }
  const KvCache* kv() const { return kv_ ? &*kv_ : nullptr; }

 private:
  Worker(NeuronConfig neuron_config, Decoder decoder, uint64_t seed)
      : neuron_config_(std::move(neuron_config)), decoder_(std::move(decoder)),
        sampler_(seed, neuron_config_.on_device_sampling) {}

  // One forward of `decoder` writing `kv` (slots from each row's block table and positions),
  // returning the logits of each row's last token for rows in `want` ([B] bool).
  at::Tensor ForwardRows(const Decoder& decoder, KvCache& kv, const at::Tensor& token_ids,
                         const at::Tensor& positions, const std::vector<int64_t>& query_lens,
                         const std::vector<int64_t>& context_lens, const at::Tensor& block_tables,
                         const std::vector<int64_t>& want_rows) const;

  absl::Status Validate(const StepInput& in) const;
  // Per-row lengths of a step, on the host.
  struct Rows {
    std::vector<int64_t> query_lens, context_lens, draft_lens;
    // A row of one new token after a context is a decode; one whose query ends in drafts is a
    // speculation (verify); anything else is a (chunk of a) prefill.
    bool IsDecode(size_t b) const { return query_lens[b] == 1 && context_lens[b] > 0; }
    bool IsSpeculation(size_t b) const { return draft_lens[b] > 0; }
    bool IsPrefill(size_t b) const { return query_lens[b] > 0 && !IsDecode(b) && !IsSpeculation(b); }
  };
  void CountBuckets(const Rows& rows);
  // Tokens in the context-encoding bucket a prefill row runs in (its own length if none fits).
  int64_t PrefillBucketTokens(int64_t query_len, int64_t context_len) const;
  // NxDI capacity_factor: the expert capacity of each prefill row; empty when not set.
  std::vector<CapacitySpan> MoeCapacity(const Rows& rows) const;

  NeuronConfig neuron_config_;
  Decoder decoder_;
  Sampler sampler_;
  std::optional<KvCache> kv_;
  std::optional<Decoder> draft_;
  std::optional<KvCache> draft_kv_;
  std::map<std::string, int64_t> bucket_counts_;
  std::string artifact_dir_;
  bool artifact_reused_ = false;
};

}  // namespace vnp
