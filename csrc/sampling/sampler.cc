#include "sampling/sampler.h"

#include <algorithm>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

namespace vnp {
namespace {


uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

double ToUnit(uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

}  // namespace

int64_t SampleFiltered(const Filtered& f, double u, int64_t without) {
  const int64_t* ids = f.ids.data_ptr<int64_t>();
  const double* c = f.cum.data_ptr<double>();
  if (without < 0) {
    const double target = u * c[f.keep - 1];
    int64_t pick = 0;
    while (pick < f.keep - 1 && c[pick] <= target) ++pick;
    return ids[pick];
  }
  auto mass = [&](int64_t i) { return ids[i] == without ? 0.0 : c[i] - (i > 0 ? c[i - 1] : 0.0); };
  double total = 0.0;
  for (int64_t i = 0; i < f.keep; ++i) total += mass(i);
  const double target = u * total;
  double acc = 0.0;
  int64_t pick = -1;
  for (int64_t i = 0; i < f.keep; ++i) {
    if (ids[i] == without) continue;
    acc += mass(i);
    pick = ids[i];
    if (acc > target) break;  // the last kept token takes the rounding at the top end
  }
  return pick;
}

namespace {

// How many of the sorted candidates top-p keeps: every token whose preceding mass is below
// top_p, so the token that crosses it is kept too (vLLM's and HF's rule), and at least one.
int64_t TopPKeep(const at::Tensor& probs, const at::Tensor& cum, float top_p) {
  at::Tensor before = cum - probs;
  return std::max<int64_t>(1, before.lt(static_cast<double>(top_p)).sum().item<int64_t>());
}

}  // namespace

Filtered FilterLogits(const at::Tensor& logits, float temperature, int64_t top_k, float top_p) {
  at::Tensor scaled = logits / temperature;
  const int64_t vocab = scaled.size(0);
  const bool cut_k = top_k > 0 && top_k < vocab;
  if (!cut_k && top_p >= 1.0f) {
    // Nothing cut: any fixed order draws from the same distribution, so the vocabulary's own,
    // with no sort (sorting the 49k SmolLM2 vocabulary for every sampled row was ~7% of a
    // loaded server's engine time).
    at::Tensor cum = at::softmax(scaled, 0, at::kDouble).cumsum(0);
    return {at::arange(vocab, at::kLong), cum.contiguous(), vocab};
  }
  if (!cut_k) {
    // top-p alone: the kept tokens are usually among the first few hundred. Their
    // probabilities over the whole vocabulary decide; the full sort only when their mass
    // stays under top_p.
    const int64_t pool = std::min<int64_t>(vocab, 256);
    auto [values, indices] = at::topk(scaled, pool, /*dim=*/0, /*largest=*/true, /*sorted=*/true);
    at::Tensor probs = (values.to(at::kDouble) - at::logsumexp(scaled.to(at::kDouble), 0)).exp();
    at::Tensor cum = probs.cumsum(0);
    if (pool == vocab || cum[pool - 1].item<double>() >= top_p) {
      return {indices.contiguous(), cum.contiguous(), TopPKeep(probs, cum, top_p)};
    }
  }
  const int64_t k = cut_k ? top_k : vocab;
  auto [values, indices] = at::topk(scaled, k, /*dim=*/0, /*largest=*/true, /*sorted=*/true);
  at::Tensor probs = at::softmax(values, 0, at::kDouble);
  at::Tensor cum = probs.cumsum(0);
  const int64_t keep = top_p < 1.0f ? TopPKeep(probs, cum, top_p) : k;
  return {indices.contiguous(), cum.contiguous(), keep};
}

double Sampler::SeededUniform(uint64_t seed, uint64_t offset) {
  return ToUnit(SplitMix64(SplitMix64(seed) ^ (offset * 0xd1b54a32d192ed03ULL)));
}

double Sampler::Draw(int64_t seed, int64_t offset, uint64_t stream) {
  if (seed < 0) return std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  return SeededUniform(static_cast<uint64_t>(seed) ^ stream, static_cast<uint64_t>(offset));
}

at::Tensor Sampler::Draws(const SamplingBatch& batch) {
  const int64_t n = batch.seeds.numel();
  at::Tensor seeds = batch.seeds.to(at::kLong).contiguous();
  at::Tensor offsets = batch.offsets.to(at::kLong).contiguous();
  at::Tensor u = at::empty({n}, at::kDouble);
  for (int64_t i = 0; i < n; ++i) {
    u.data_ptr<double>()[i] = Draw(seeds.data_ptr<int64_t>()[i], offsets.data_ptr<int64_t>()[i]);
  }
  return u;
}

at::Tensor Sampler::SampleNxdi(const at::Tensor& logits, const at::Tensor& params,
                               const at::Tensor& u, const OnDeviceSampling& c) {
  const int64_t n = logits.size(0), vocab = logits.size(1);
  if (!c.do_sample && !c.dynamic) return logits.argmax(1);  // NxDI's greedy graph
  // Per-row top-k / top-p / temperature: the request's (vllm-neuron's mapping) when dynamic,
  // else the trace-time values for every row.
  at::Tensor temperature, top_k, top_p;
  if (c.dynamic) {
    at::Tensor t = params.select(1, 0).to(at::kFloat);
    at::Tensor greedy = t.lt(kGreedyBelow);
    at::Tensor k = params.select(1, 1).to(at::kLong);
    k = at::where(k.le(0), c.global_topk, k);
    top_k = at::where(greedy, 1, k);
    temperature = at::where(greedy, 1.0f, t);
    top_p = params.select(1, 2).to(at::kFloat);
  } else {
    top_k = at::full({n}, c.top_k <= 0 ? c.global_topk : c.top_k, at::kLong);
    temperature = at::full({n}, static_cast<float>(c.temperature), at::kFloat);
    top_p = at::full({n}, static_cast<float>(c.top_p), at::kFloat);
  }
  // 1. The global top-k candidate pool, sorted by falling logit.
  auto [values, indices] = at::topk(logits.to(at::kFloat), std::min(c.global_topk, vocab), 1);
  const int64_t pool = values.size(1);
  constexpr float kMasked = -3000.0f;  // NxDI's finite mask: softmax ~ 0 without NaN
  at::Tensor rank = at::arange(pool, at::kLong).unsqueeze(0);
  // 2. Per-row top-k (rank >= top_k masked; top_k 0 or -1 would mask nothing here: NxDI's
  // pitfall, mapped to global_topk above).
  values = values.masked_fill(rank.ge(top_k.unsqueeze(1)), kMasked);
  // 3. Temperature.
  values = values / temperature.unsqueeze(1);
  // 4. NxDI's top-p: keep a candidate iff its inclusive cumulative probability is <= top_p,
  // and always the first (the token that crosses top_p is dropped, unlike vLLM/HF).
  if (c.dynamic || c.top_p < 1.0) {
    at::Tensor cum = at::softmax(values, 1).cumsum(1);
    at::Tensor keep = cum.le(top_p.unsqueeze(1));
    keep.select(1, 0).fill_(true);
    values = values.masked_fill(keep.logical_not(), kMasked);
  }
  // 5. Inverse CDF: index = count(cdf < r), cdf normalised with its last entry forced to 1.
  at::Tensor cdf = at::softmax(values, 1).cumsum(1);
  cdf = cdf / cdf.narrow(1, pool - 1, 1);
  cdf.select(1, pool - 1).fill_(1.0f);
  at::Tensor r = c.deterministic ? at::full({n, 1}, 0.5f, at::kFloat)
                                 : u.to(at::kFloat).view({n, 1});
  at::Tensor index = cdf.lt(r).sum(1).clamp_max(pool - 1);
  return indices.gather(1, index.unsqueeze(1)).squeeze(1);
}

at::Tensor Sampler::Sample(const at::Tensor& logits, const SamplingBatch& batch) {
  const int64_t n = logits.size(0);
  if (n == 0) return at::empty({0}, at::kLong);
  if (on_device_) return SampleNxdi(logits, batch.params, Draws(batch), *on_device_);
  at::Tensor params = batch.params.to(at::kFloat).contiguous();
  const float* p = params.data_ptr<float>();
  at::Tensor u = Draws(batch);
  // Every row's greedy token; sampled rows overwrite theirs below.
  at::Tensor tokens = logits.argmax(1);
  bool any_sampled = false;
  for (int64_t i = 0; i < n && !any_sampled; ++i) any_sampled = p[3 * i] >= kGreedyBelow;
  if (!any_sampled) return tokens;
  int64_t* dst = tokens.data_ptr<int64_t>();
  const double* draws = u.data_ptr<double>();
  // Rows are independent (their draws are taken above): spread them over the threads.
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float temperature = p[3 * i];
      if (temperature < kGreedyBelow) continue;
      dst[i] = SampleFiltered(
          FilterLogits(logits[i], temperature, static_cast<int64_t>(p[3 * i + 1]), p[3 * i + 2]),
          draws[i]);
    }
  });
  return tokens;
}

}  // namespace vnp
