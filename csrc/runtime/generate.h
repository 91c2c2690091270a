// A small continuous-batching generation loop that drives Worker::step without vLLM, with its
// own block allocator: for C++ tests and the worker-alone benchmarks.
#pragma once

#include <cstdint>
#include <vector>

#include <absl/status/statusor.h>

#include "runtime/worker.h"

namespace vnp {

struct GenerateRequest {
  std::vector<int64_t> prompt;
  int64_t max_new_tokens = 16;
  float temperature = 0.0f;
  int64_t top_k = 0;
  float top_p = 1.0f;
  int64_t seed = -1;
};

struct GenerateOptions {
  int64_t block_size = 16;
  int64_t num_blocks = 256;
  int64_t prefill_chunk = 0;  // > 0: prompts are fed in chunks of this many tokens
};

struct GenerateResult {
  std::vector<std::vector<int64_t>> tokens;  // per request, the generated tokens (prompt excluded)
  // Wall time of each Worker::Step, in order: the worker-alone benchmark's TTFT (a prompt's
  // prefill step) and inter-token latencies, measured without any Python in the loop.
  std::vector<double> step_seconds;
};

// Runs every request to its max_new_tokens. Allocates the worker's KV unless it already has
// this many blocks of this size.
absl::StatusOr<GenerateResult> Generate(Worker& worker, const std::vector<GenerateRequest>& requests,
                                        const GenerateOptions& options);

}  // namespace vnp
