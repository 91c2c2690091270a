#include "kernels/decode_attention.h"

#include <algorithm>
#include <cmath>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "kernels/cpu_features.h"

namespace vnp {
namespace {

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
  // One item per query token: (row, flat token, keys it sees = its position + 1).
  struct Item { int64_t row, token, len; };
  std::vector<Item> items;
  for (int64_t row : rows) {
    const int64_t qs = batch.query_start[row], qe = batch.query_start[row + 1];
    for (int64_t t = qs; t < qe; ++t) items.push_back({row, t, batch.seq_lens[row] - (qe - 1 - t)});
  }
  // A task is one query token and one KV head with the q heads that share it (GQA): each key
  // and value vector is read once for all of them. With too few tokens to keep every thread
  // busy (batch-1 decode), a task takes one q head instead.
  const std::optional<avx2::Format> format = Avx2Format(k_cache);
  const int64_t threads = at::get_num_threads();
  const int64_t heads = static_cast<int64_t>(items.size()) * KVH >= 2 * threads ? group : 1;
  const int64_t per_kv = group / heads, tasks = static_cast<int64_t>(items.size()) * KVH * per_kv;
  at::parallel_for(0, tasks, 1, [&](int64_t begin_task, int64_t end_task) {
    std::vector<float> qv(heads * D), acc(heads * D), scores, total(heads);
    for (int64_t task = begin_task; task < end_task; ++task) {
      const Item& item = items[task / (KVH * per_kv)];
      const int64_t g = task / per_kv % KVH, h0 = g * group + task % per_kv * heads;
      const int64_t row = item.row, token = item.token, len = item.len;
      const int64_t first = FirstVisibleKey(len - 1, window), n = len - first;
      const int64_t* table = tp + row * table_stride;
      for (int64_t i = 0; i < heads * D; ++i) {
        qv[i] = static_cast<float>(qp[(token * H + h0) * D + i]) * scale;
      }
      // Calls f(offset of position p's vector for kv head g, p - first, count) for each run of
      // positions in one KV block ([num_blocks, KVH, BS, D]: a block's positions are contiguous).
      auto for_each_run = [&](auto&& f) {
        for (int64_t p = first; p < len;) {
          const int64_t count = std::min(BS - p % BS, len - p);
          f(((table[p / BS] * KVH + g) * BS + p % BS) * D, p - first, count);
          p += count;
        }
      };
      scores.resize(heads * n);  // [heads, n]
      for_each_run([&](int64_t at, int64_t i, int64_t count) {
        if (format) {
          avx2::Gemv(*format, qv.data(), heads, D, kp + at, 0, count, scores.data() + i, n);
          return;
        }
        for (int64_t j = 0; j < heads; ++j) {
          for (int64_t c = 0; c < count; ++c) {
            float s = 0.f;
            for (int64_t d = 0; d < D; ++d) s += qv[j * D + d] * static_cast<float>(kp[at + c * D + d]);
            scores[j * n + i + c] = s;
          }
        }
      });
      for (int64_t j = 0; j < heads; ++j) {
        float* sj = scores.data() + j * n;
        const float max_score = *std::max_element(sj, sj + n);
        total[j] = 0.f;
        for (int64_t i = 0; i < n; ++i) total[j] += (sj[i] = std::exp(sj[i] - max_score));
      }
      std::fill(acc.begin(), acc.end(), 0.f);
      for_each_run([&](int64_t at, int64_t i, int64_t count) {
        if (format) {
          avx2::AccumulateRows(*format, scores.data() + i, n, heads, vp + at, count, D, acc.data());
          return;
        }
        for (int64_t j = 0; j < heads; ++j) {
          for (int64_t c = 0; c < count; ++c) {
            const float w = scores[j * n + i + c];
            for (int64_t d = 0; d < D; ++d) acc[j * D + d] += w * static_cast<float>(vp[at + c * D + d]);
          }
        }
      });
      T* o = op + (token * H + h0) * D;
      for (int64_t i = 0; i < heads * D; ++i) o[i] = static_cast<T>(acc[i] / total[i / D]);
    }
  });
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
