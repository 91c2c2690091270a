// Prepared artifacts (NxDI's compiled-model directory): the resolved neuron_config.json beside
// the prepared weights (converted, fused, cast), in a directory named by a hash of the model and
// the resolved config, or $NEURON_COMPILED_ARTIFACTS. A second start with the same model and
// config reads the prepared weights as they are and skips conversion; a changed config gets a new
// directory, so an override is never silently ignored (unlike vllm-neuron, pitfall P17).
#pragma once

#include <string>

#include <absl/status/statusor.h>

#include "config/model_config.h"
#include "config/neuron_config.h"
#include "weights/decoder_weights.h"

namespace vnp {

struct PreparedWeights {
  DecoderWeights weights;
  std::string dir;      // the artifact directory; empty when save_sharded_checkpoint is false
  bool reused = false;  // loaded from an artifact an earlier start prepared
};

// A stable hash (hex) of the artifact format, the resolved config, the model's config.json
// and its weight files' names, sizes and modification times.
absl::StatusOr<std::string> ArtifactKey(const std::string& model_dir, const NeuronConfig& nc);

// $NEURON_COMPILED_ARTIFACTS, else <model_dir>/neuron-compiled-artifacts/<key> when the model
// directory is writable, else ~/.cache/vllm-neuron-plugin/artifacts/<key>.
std::string ArtifactDir(const std::string& model_dir, const std::string& key);

// Loads the decoder weights from the prepared artifact, preparing it first when missing.
absl::StatusOr<PreparedWeights> LoadOrPrepare(const std::string& model_dir, const ModelConfig& mc,
                                              const NeuronConfig& nc);

}  // namespace vnp
