#include "kernels/decode_attention.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "kernels/cpu_features.h"
#include "kernels/dynamic_parallel.h"
#include "kernels/gemv_avx512.h"

namespace vnp {
namespace {

// How many chunks each query token's keys split into: one when the tokens already give every
// thread a few tasks; otherwise the fewest (up to four) that give every thread the same number
// of tasks (batch-1 decode on 2 threads: two chunks), each at least one KV block long. The
// chunks' partial softmaxes merge after (flash-decoding). More, smaller chunks measured slower
// at batch 1: each adds its fixed costs and its share of the merge.
int64_t KeyChunks(int64_t tokens, int64_t longest, int64_t block_size, int64_t threads) {
  if (threads <= 1 || tokens >= 4 * threads) return 1;
  int64_t chunks = 1;
  while (chunks < 4 && tokens * chunks % threads != 0) ++chunks;
  return std::max<int64_t>(1, std::min(chunks, longest / block_size));
}

// Which inner loops a task runs: AVX-512 BF16 (scores by vdpbf16ps from q and the keys as
// stored, values widened in 16-lane FMAs), AVX2 (both widened to fp32), or plain C++.
enum class Path { kAvx512Bf16, kAvx2, kScalar };

template <class T>
void Run(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
         const AttentionBatch& batch, const std::vector<int64_t>& rows, float scale,
         int64_t window, at::Tensor& out) {
  const int64_t H = q.size(1), D = q.size(2);
  const int64_t KVH = k_cache.size(1), BS = k_cache.size(2), group = H / KVH;
  const T* qp = q.const_data_ptr<T>();
  const T* kp = k_cache.const_data_ptr<T>();
  const T* vp = v_cache.const_data_ptr<T>();
  T* op = out.data_ptr<T>();
  at::Tensor tables = batch.block_tables.to(at::kLong).contiguous();
  const int64_t* tp = tables.const_data_ptr<int64_t>();
  const int64_t table_stride = tables.size(1);
  // One item per query token: (row, flat token, first visible key, keys it sees up to).
  struct Item { int64_t row, token, first, len; };
  std::vector<Item> items;
  int64_t longest = 0;
  for (int64_t row : rows) {
    const int64_t qs = batch.query_start[row], qe = batch.query_start[row + 1];
    for (int64_t t = qs; t < qe; ++t) {
      const int64_t len = batch.seq_lens[row] - (qe - 1 - t);
      items.push_back({row, t, FirstVisibleKey(len - 1, window), len});
      longest = std::max(longest, len - items.back().first);
    }
  }
  const std::optional<avx2::Format> format = Avx2Format(k_cache);
  const Path path = std::is_same_v<T, c10::BFloat16> && CpuHasAvx512Bf16() ? Path::kAvx512Bf16
                    : format ? Path::kAvx2 : Path::kScalar;
  // A task is one query token with all its heads, over one chunk of its keys: it reads each KV
  // block's keys (then values) for all KV heads, one contiguous span, and consecutive blocks of
  // a sequence (as a prompt's are allocated) make one stream. Per (token, KV head) tasks read
  // a third of a block each, in strided pieces the hardware prefetcher follows worse.
  const int64_t tokens = static_cast<int64_t>(items.size());
  const int64_t chunks = KeyChunks(tokens, longest, BS, at::get_num_threads());
  const int64_t tasks = tokens * chunks;
  // With chunks, each task leaves per q head its score max, its sum of exponentials and its
  // unnormalised value sum; one chunk writes the output directly.
  std::vector<float> part_max, part_sum, part_acc;
  if (chunks > 1) {
    part_max.resize(tasks * H), part_sum.resize(tasks * H), part_acc.resize(tasks * H * D);
  }
  struct Scratch { std::vector<float> qv, acc, scores, total, maxs; };
  std::vector<Scratch> scratch(at::get_num_threads());
  ParallelDynamic(tasks, [&](int64_t task, int64_t thread) {
    auto& [qv, acc, scores, total, maxs] = scratch[thread];
    acc.assign(H * D, 0.f), total.resize(H), maxs.resize(H);
    const Item& item = items[task / chunks];
    const int64_t chunk = task % chunks;
    const int64_t all = item.len - item.first, lo = all * chunk / chunks;
    const int64_t first = item.first + lo, n = all * (chunk + 1) / chunks - lo;
    const int64_t* table = tp + item.row * table_stride;
    const T* qt = qp + item.token * H * D;  // [H, D]: KV head g's q heads are rows g·group...
    if (path != Path::kAvx512Bf16) {
      qv.resize(H * D);
      for (int64_t i = 0; i < H * D; ++i) qv[i] = static_cast<float>(qt[i]);
    }
    // Calls f(offset of position p's block for KV head 0, p % BS, p - first, count) for each
    // run of positions in one KV block ([num_blocks, KVH, BS, D]: a block holds each head's
    // positions contiguously, the heads one after another).
    auto for_each_run = [&](auto&& f) {
      for (int64_t p = first; p < first + n;) {
        const int64_t count = std::min(BS - p % BS, first + n - p);
        f(table[p / BS] * KVH * BS * D, p % BS, p - first, count);
        p += count;
      }
    };
    scores.resize(H * n);  // [H, n]
    for_each_run([&](int64_t block, int64_t in_block, int64_t i, int64_t count) {
      for (int64_t g = 0; g < KVH; ++g) {
        const T* keys = kp + block + (g * BS + in_block) * D;
        float* s = scores.data() + g * group * n + i;
        if (path == Path::kAvx512Bf16) {
          avx512::GemvBf16(reinterpret_cast<const uint16_t*>(qt + g * group * D), group, D,
                           reinterpret_cast<const uint16_t*>(keys), 0, count, s, n);
        } else if (path == Path::kAvx2) {
          avx2::Gemv(*format, qv.data() + g * group * D, group, D, keys, 0, count, s, n);
        } else {
          for (int64_t j = 0; j < group; ++j) {
            for (int64_t c = 0; c < count; ++c) {
              float dot = 0.f;
              for (int64_t d = 0; d < D; ++d) {
                dot += qv[(g * group + j) * D + d] * static_cast<float>(keys[c * D + d]);
              }
              s[j * n + c] = dot;
            }
          }
        }
      }
    });
    for (int64_t h = 0; h < H; ++h) {
      float* sh = scores.data() + h * n;
      float m = -INFINITY;
      for (int64_t i = 0; i < n; ++i) m = std::max(m, sh[i] *= scale);
      maxs[h] = m;
      if (format) {
        total[h] = avx2::ExpSum(sh, n, m);
        continue;
      }
      total[h] = 0.f;
      for (int64_t i = 0; i < n; ++i) total[h] += (sh[i] = std::exp(sh[i] - m));
    }
    for_each_run([&](int64_t block, int64_t in_block, int64_t i, int64_t count) {
      for (int64_t g = 0; g < KVH; ++g) {
        const T* values = vp + block + (g * BS + in_block) * D;
        const float* a = scores.data() + g * group * n + i;
        float* ag = acc.data() + g * group * D;
        if (path == Path::kAvx512Bf16) {
          avx512::AccumulateRowsBf16(a, n, group, reinterpret_cast<const uint16_t*>(values),
                                     count, D, ag);
        } else if (path == Path::kAvx2) {
          avx2::AccumulateRows(*format, a, n, group, values, count, D, ag);
        } else {
          for (int64_t j = 0; j < group; ++j) {
            for (int64_t c = 0; c < count; ++c) {
              for (int64_t d = 0; d < D; ++d) {
                ag[j * D + d] += a[j * n + c] * static_cast<float>(values[c * D + d]);
              }
            }
          }
        }
      }
    });
    if (chunks > 1) {
      std::copy(maxs.begin(), maxs.end(), part_max.begin() + task * H);
      std::copy(total.begin(), total.end(), part_sum.begin() + task * H);
      std::copy(acc.begin(), acc.end(), part_acc.begin() + task * H * D);
      return;
    }
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t d = 0; d < D; ++d) acc[h * D + d] /= total[h];
    }
    T* o = op + item.token * H * D;
    if (format) {  // rounded as static_cast rounds, eight at a time
      avx2::StoreRows(*format, acc.data(), H * D, nullptr, 1, 0, H * D, o, H * D);
      return;
    }
    for (int64_t i = 0; i < H * D; ++i) o[i] = static_cast<T>(acc[i]);
  });
  if (chunks == 1) return;
  // Merge each (token, q head)'s chunks: rescale each to the overall max, then normalise.
  std::vector<float> o(D);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t h = 0; h < H; ++h) {
      float m = -INFINITY;
      for (int64_t c = 0; c < chunks; ++c) m = std::max(m, part_max[(t * chunks + c) * H + h]);
      float denominator = 0.f;
      std::fill(o.begin(), o.end(), 0.f);
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t k = (t * chunks + c) * H + h;
        if (part_max[k] == -INFINITY) continue;  // an empty chunk
        const float w = std::exp(part_max[k] - m);
        denominator += w * part_sum[k];
        const float* a = part_acc.data() + k * D;
        for (int64_t d = 0; d < D; ++d) o[d] += w * a[d];
      }
      T* dst = op + (items[t].token * H + h) * D;
      for (int64_t d = 0; d < D; ++d) dst[d] = static_cast<T>(o[d] / denominator);
    }
  }
}

}  // namespace

bool DecodeAttentionSupports(const at::Tensor& q, const at::Tensor& k_cache,
                             const at::Tensor& v_cache) {
  const auto t = q.scalar_type();
  return q.device().is_cpu() && k_cache.device().is_cpu() && k_cache.scalar_type() == t &&
         v_cache.scalar_type() == t && (t == at::kFloat || t == at::kBFloat16 || t == at::kHalf) &&
         q.is_contiguous() && k_cache.is_contiguous() && v_cache.is_contiguous() &&
         q.size(1) % k_cache.size(1) == 0;
}

void DecodeAttention(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                     const AttentionBatch& batch, const std::vector<int64_t>& rows, double scale,
                     int64_t window, at::Tensor& out) {
  TORCH_CHECK(out.is_contiguous() && out.scalar_type() == q.scalar_type(),
              "DecodeAttention: out must be contiguous in q's dtype");
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, q.scalar_type(), "decode_attention", [&] {
    Run<scalar_t>(q, k_cache, v_cache, batch, rows, static_cast<float>(scale), window, out);
  });
}

}  // namespace vnp
