// The one call per step: flat tensors in, tokens (and optionally logits) out.
#pragma once

#include <ATen/core/Tensor.h>

namespace vnp {

enum class LogitsMode { kNone = 0, kLast = 1, kAll = 2 };

struct StepInput {
  at::Tensor token_ids;     // [T] int: the tokens to compute, rows back to back
  at::Tensor positions;     // [T] int
  at::Tensor query_lens;    // [B] int: tokens of each row in this step
  at::Tensor context_lens;  // [B] int: tokens of each row already in KV before this step
  at::Tensor block_tables;  // [B, max_blocks] int
  at::Tensor slot_mapping;  // [T] int, -1 = do not write
  at::Tensor sample_rows;   // [B] bool: rows that emit a token (false for a partial prefill chunk)
  at::Tensor sampling;      // [B, 3] float: temperature, top_k, top_p
  at::Tensor seeds;         // [B] int64, -1 = unseeded
  at::Tensor seed_offsets;  // [B] int64: index of the token drawn within the request's output
  LogitsMode logits = LogitsMode::kNone;
  // [B] int (optional; undefined = none): the last draft_lens[b] tokens of row b are draft
  // tokens to verify (speculative decoding). Only rows that emit a token may have drafts.
  at::Tensor draft_lens{};
};

struct StepOutput {
  // [B, 1 + max(draft_lens)] int64: each row's emitted tokens (1..draft_lens[b] + 1 for a row
  // that emits, verified as Sampler::Verify says), then -1; all -1 for rows that emit nothing.
  at::Tensor tokens;
  at::Tensor logits;  // kLast: [B, vocab] (rows that emit nothing hold their last token's
                      // logits); kAll: [T, vocab]; undefined for kNone
};

}  // namespace vnp
