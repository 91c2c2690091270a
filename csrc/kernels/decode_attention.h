// Attention for decode rows (one query token each) and verify rows (a few) read in place
// from the paged KV: no gather of the blocks into a contiguous copy, fp32 scores and
// accumulation, one task per query token with all its heads (each key and value vector read
// once for the q heads that share it), each token's keys split in chunks whose softmaxes merge
// after (flash-decoding), the chunks set by the token's own key count: a token computes the
// same bits alone and batched.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "kernels/paged_attention.h"

namespace vnp {

// True when the kernel runs these tensors (one dtype for q and the caches: fp32, bf16 or fp16;
// contiguous caches); otherwise the caller takes the general path.
bool DecodeAttentionSupports(const at::Tensor& q, const at::Tensor& k_cache,
                             const at::Tensor& v_cache);

// For each batch row in `rows`, writes the attention output of each of its query tokens (flat
// tokens query_start[row] .. query_start[row + 1], the last at position seq_lens[row] - 1,
// each seeing the keys up to its own position) into out[token] ([T, num_heads, head_dim],
// q's dtype). `window` as in PagedAttention.
// DecodeAttention as tasks, for a caller that runs them in its own parallel region (the fused
// decode step): Plan a batch, Run every task (a query token over one chunk of its keys), then,
// once all have ended, Merge every token below merges(). q's values and the caches are read
// only by Run. One object serves step after step (Plan again), its scratch kept.
class DecodeAttentionTasks {
 public:
  DecodeAttentionTasks(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                       double scale, at::Tensor out);
  void Plan(const AttentionBatch& batch, const std::vector<int64_t>& rows, int64_t window);
  ~DecodeAttentionTasks();

  int64_t size() const { return tasks_; }
  // thread < at::get_num_threads(): whose scratch the task uses.
  void Run(int64_t task, int64_t thread);
  int64_t merges() const { return merges_; }
  void Merge(int64_t token);

 private:
  template <class T> void RunTask(int64_t task, int64_t thread);
  template <class T> void MergeToken(int64_t token);

  // One item per query token: (row, flat token, first visible key, keys it sees up to, its
  // chunks, its first task).
  struct Item { int64_t row, token, first, len, chunks, task0; };
  struct Scratch { std::vector<float> qv, acc, scores, total, maxs; };
  at::Tensor q_, k_cache_, v_cache_, out_, tables_;
  float scale_;
  std::vector<Item> items_;
  std::vector<int64_t> task_items_;  // each task's item
  int64_t tasks_ = 0, merges_ = 0;
  std::vector<float> part_max_, part_sum_, part_acc_;
  std::vector<Scratch> scratch_;
};

void DecodeAttention(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                     const AttentionBatch& batch, const std::vector<int64_t>& rows, double scale,
                     int64_t window, at::Tensor& out);

}  // namespace vnp
