#include "kernels/prefill_attention.h"

#include <algorithm>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "kernels/cpu_features.h"
#include "kernels/dynamic_parallel.h"
#include "kernels/flash_attention_avx2.h"
#include "kernels/flash_attention_avx512.h"

namespace vnp {

namespace {

// The kernel for a head dim on this CPU: the AVX512_BF16 one where it runs (head dims of 32s),
// else the AVX2 one (8s).
enum class Kernel { kNone, kAvx512, kAvx2 };

Kernel KernelFor(int64_t head_dim) {
  if (CpuHasAvx512Bf16() && head_dim % 32 == 0) return Kernel::kAvx512;
  if (CpuHasAvx2Kernels() && head_dim % 8 == 0) return Kernel::kAvx2;
  return Kernel::kNone;
}

}  // namespace

bool PrefillAttentionSupports(const at::Tensor& q, const at::Tensor& k_cache,
                              const at::Tensor& v_cache) {
  return q.device().is_cpu() && k_cache.device().is_cpu() && q.scalar_type() == at::kBFloat16 &&
         k_cache.scalar_type() == at::kBFloat16 && v_cache.scalar_type() == at::kBFloat16 &&
         q.is_contiguous() && k_cache.is_contiguous() && v_cache.is_contiguous() &&
         q.size(1) % k_cache.size(1) == 0 && KernelFor(q.size(2)) != Kernel::kNone;
}

void PrefillAttention(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                      const AttentionBatch& batch, const std::vector<int64_t>& rows, double scale,
                      int64_t window, at::Tensor& out) {
  TORCH_CHECK(out.is_contiguous() && out.scalar_type() == at::kBFloat16,
              "PrefillAttention: out must be contiguous bf16");
  const int64_t H = q.size(1), D = q.size(2), KVH = k_cache.size(1), BS = k_cache.size(2);
  const int64_t group = H / KVH;
  const bool avx512 = KernelFor(D) == Kernel::kAvx512;
  const int64_t tile_tokens = avx512 ? avx512::kFlashTokens : avx2::kFlashTokens;
  at::Tensor tables = batch.block_tables.to(at::kLong).contiguous();
  const int64_t* tp = tables.const_data_ptr<int64_t>();
  const auto* qp = static_cast<const uint16_t*>(q.const_data_ptr());
  const auto* kp = static_cast<const uint16_t*>(k_cache.const_data_ptr());
  const auto* vp = static_cast<const uint16_t*>(v_cache.const_data_ptr());
  auto* op = static_cast<uint16_t*>(out.data_ptr());
  // One task per KV head and tile of query tokens of a row (16 AVX-512, 8 AVX2); the ones with
  // the most keys first, so the last to finish are short.
  struct Task { int64_t row, head, token, tokens, first_pos, keys; };
  std::vector<Task> tasks;
  for (int64_t row : rows) {
    const int64_t qs = batch.query_start[row], qe = batch.query_start[row + 1];
    const int64_t first_q = batch.seq_lens[row] - (qe - qs);
    for (int64_t t = qs; t < qe; t += tile_tokens) {
      const int64_t tokens = std::min(tile_tokens, qe - t), pos = first_q + (t - qs);
      const int64_t keys = pos + tokens - FirstVisibleKey(pos, window);
      for (int64_t g = 0; g < KVH; ++g) tasks.push_back({row, g, t, tokens, pos, keys});
    }
  }
  std::stable_sort(tasks.begin(), tasks.end(),
                   [](const Task& a, const Task& b) { return a.keys > b.keys; });
  const int64_t scratch_floats =
      avx512 ? avx512::FlashScratchFloats(group, D) : avx2::FlashScratchFloats(group, D);
  std::vector<std::vector<float>> scratch(at::get_num_threads());
  ParallelDynamic(static_cast<int64_t>(tasks.size()), [&](int64_t i, int64_t thread) {
    const Task& task = tasks[i];
    auto& buffer = scratch[thread];
    buffer.resize(scratch_floats);
    const FlashHead head{group, D, kp + task.head * BS * D, vp + task.head * BS * D,
                         KVH * BS * D, BS, tp + task.row * tables.size(1), window,
                         static_cast<float>(scale)};
    const int64_t offset = task.token * H * D + task.head * group * D;
    const FlashTile tile{qp + offset, op + offset, H * D, task.tokens, task.first_pos};
    if (avx512) {
      avx512::FlashAttentionBf16(head, tile, buffer.data());
    } else {
      avx2::FlashAttentionBf16(head, tile, buffer.data());
    }
  });
}

}  // namespace vnp
