#include "sampling/sampler.h"

#include <ATen/ATen.h>

namespace vnp {
namespace {

constexpr float kGreedyBelow = 1e-5f;  // vLLM treats temperatures under this as greedy

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

double ToUnit(uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

// One row: temperature, then top-k, then top-p over the sorted distribution; inverse-CDF draw.
int64_t SampleRow(const at::Tensor& logits, float temperature, int64_t top_k, float top_p,
                  double u) {
  at::Tensor scaled = logits / temperature;
  const int64_t vocab = scaled.size(0);
  const int64_t k = (top_k > 0 && top_k < vocab) ? top_k : vocab;
  auto [values, indices] = at::topk(scaled, k, /*dim=*/0, /*largest=*/true, /*sorted=*/true);
  at::Tensor probs = at::softmax(values, 0, at::kDouble);
  at::Tensor cum = probs.cumsum(0);
  int64_t keep = k;
  if (top_p < 1.0f) {
    // Keep every token whose preceding mass is below top_p: includes the crossing token.
    at::Tensor before = cum - probs;
    keep = std::max<int64_t>(1, before.lt(static_cast<double>(top_p)).sum().item<int64_t>());
  }
  const double* c = cum.data_ptr<double>();
  const double target = u * c[keep - 1];
  int64_t pick = 0;
  while (pick < keep - 1 && c[pick] <= target) ++pick;
  return indices[pick].item<int64_t>();
}

}  // namespace

double Sampler::SeededUniform(uint64_t seed, uint64_t offset) {
  return ToUnit(SplitMix64(SplitMix64(seed) ^ (offset * 0xd1b54a32d192ed03ULL)));
}

at::Tensor Sampler::Sample(const at::Tensor& logits, const SamplingBatch& batch) {
  const int64_t n = logits.size(0);
  at::Tensor out = at::empty({n}, at::kLong);
  if (n == 0) return out;
  at::Tensor params = batch.params.to(at::kFloat).contiguous();
  at::Tensor seeds = batch.seeds.to(at::kLong).contiguous();
  at::Tensor offsets = batch.offsets.to(at::kLong).contiguous();
  const float* p = params.data_ptr<float>();
  const int64_t* s = seeds.data_ptr<int64_t>();
  const int64_t* o = offsets.data_ptr<int64_t>();
  at::Tensor greedy = logits.argmax(1);
  int64_t* dst = out.data_ptr<int64_t>();
  const int64_t* g = greedy.data_ptr<int64_t>();
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  for (int64_t i = 0; i < n; ++i) {
    const float temperature = p[3 * i];
    if (temperature < kGreedyBelow) {
      dst[i] = g[i];
      continue;
    }
    const double u = s[i] >= 0 ? SeededUniform(static_cast<uint64_t>(s[i]), o[i]) : uniform(rng_);
    dst[i] = SampleRow(logits[i], temperature, static_cast<int64_t>(p[3 * i + 1]), p[3 * i + 2], u);
  }
  return out;
}

}  // namespace vnp
