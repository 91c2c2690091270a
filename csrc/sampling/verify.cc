// Sampler::Verify: accepting draft tokens (speculative decoding). See sampler.h.
#include <ATen/ATen.h>

#include "sampling/sampler.h"

namespace vnp {
namespace {

constexpr uint64_t kResidualStream = 0x5bd1e995a4b2c3d7ULL;  // the draw after a rejection

// p(token) under a filtered distribution; 0 outside the kept set.
double Probability(const Filtered& f, int64_t token) {
  const int64_t* ids = f.ids.data_ptr<int64_t>();
  const double* cum = f.cum.data_ptr<double>();
  for (int64_t i = 0; i < f.keep; ++i) {
    if (ids[i] == token) return (cum[i] - (i > 0 ? cum[i - 1] : 0.0)) / cum[f.keep - 1];
  }
  return 0.0;
}

}  // namespace

at::Tensor Sampler::Verify(const at::Tensor& logits, const std::vector<int64_t>& starts,
                           const std::vector<int64_t>& draft_lens, const at::Tensor& drafts,
                           const SamplingBatch& batch) {
  const int64_t rows = static_cast<int64_t>(starts.size());
  const int64_t width = drafts.size(1) + 1;
  at::Tensor out = at::full({rows, width}, -1, at::kLong);
  if (rows == 0) return out;
  at::Tensor params = batch.params.to(at::kFloat).contiguous();
  at::Tensor seeds = batch.seeds.to(at::kLong).contiguous();
  at::Tensor offsets = batch.offsets.to(at::kLong).contiguous();
  at::Tensor d = drafts.to(at::kLong).contiguous();
  at::Tensor greedy = logits.argmax(1).contiguous();
  const int64_t* g = greedy.data_ptr<int64_t>();
  for (int64_t r = 0; r < rows; ++r) {
    const float* p = params.data_ptr<float>() + 3 * r;
    const int64_t* draft = d.data_ptr<int64_t>() + r * (width - 1);
    int64_t* dst = out.data_ptr<int64_t>() + r * width;
    const int64_t n = draft_lens[r], start = starts[r];
    const int64_t seed = seeds.data_ptr<int64_t>()[r], offset = offsets.data_ptr<int64_t>()[r];
    if (p[0] < kGreedyBelow) {
      for (int64_t i = 0; i <= n; ++i) {
        dst[i] = g[start + i];
        if (i == n || draft[i] != dst[i]) break;
      }
      continue;
    }
    for (int64_t i = 0; i <= n; ++i) {
      Filtered f = FilterLogits(logits[start + i], p[0], static_cast<int64_t>(p[1]), p[2]);
      const double u = Draw(seed, offset + i);
      if (i == n) {  // every draft kept: the bonus token
        dst[i] = SampleFiltered(f, u);
        break;
      }
      if (u < Probability(f, draft[i])) {
        dst[i] = draft[i];
        continue;
      }
      dst[i] = SampleFiltered(f, Draw(seed, offset + i, kResidualStream), draft[i]);
      break;
    }
  }
  return out;
}

}  // namespace vnp
