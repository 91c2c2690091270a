// The layers of a decode step at small batch in one parallel region (kernels/task_phases.h):
// each layer is a few phases of tasks (the q/k/v projections; RoPE and the KV write; attention;
// the output projection; add + norm; gate/up with SiLU·up; down; add + norm), separated by
// spinning waits, into buffers allocated once per step. The same kernels and the same rounding
// points as Decoder's op-by-op path, so the same results; what goes is each op's dispatch and
// allocation and each projection's fork/join, which at batch-1 decode kept the second thread
// idle about a quarter of the time.
#pragma once

#include <memory>
#include <utility>

#include <ATen/core/Tensor.h>

#include "config/model_config.h"
#include "kv/kv_cache.h"
#include "weights/decoder_weights.h"

namespace vnp {

struct ForwardInput;

// The model's part of the conditions, checked once: every layer dense, residual multiplier 1,
// projections on the GEMV path and norms in the embeddings' dtype, which the fused loops take
// (fp32, bf16, fp16). Otherwise Decoder always runs op by op.
bool FusedDecodeModelSupported(const ModelConfig& config, const DecoderWeights& weights);

// The step's part, checked per step: every row one decode token (no verify drafts), the rows
// within the GEMV path, h, the RoPE tables and the caches in one contiguous CPU dtype.
bool FusedDecodeStepSupported(const ModelConfig& config, const DecoderWeights& weights,
                              const ForwardInput& in, const KvCache& kv,
                              const std::pair<at::Tensor, at::Tensor>& rope, const at::Tensor& h);

// The buffers and task lists for one batch size, kept between steps.
class FusedDecodeStep;

// Runs every layer on the embeddings h ([M, hidden], contiguous), writing each layer's K/V, and
// leaves in h the residual stream after the last layer (before the final norm). Reuses
// `workspace` when it was made for M rows and this KV cache; else replaces it.
void FusedDecodeLayers(const ModelConfig& config, const DecoderWeights& weights,
                       const ForwardInput& in, const std::pair<at::Tensor, at::Tensor>& rope,
                       KvCache& kv, at::Tensor& h, std::shared_ptr<FusedDecodeStep>& workspace);

}  // namespace vnp
