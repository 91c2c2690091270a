#include "kernels/linear.h"

#include <algorithm>
#include <memory>
#include <type_traits>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "kernels/cpu_features.h"
#include "kernels/dynamic_parallel.h"
#include "kernels/gemv_avx512.h"
#include "kernels/rows_avx2.h"

namespace vnp {
namespace {

// Measured on a 2-core AVX2 host (benchmarks/linear_kernel.py): up to here the register-tiled
// GEMV, which reads each 16-bit weight once, beats widening the weight for torch's fp32 GEMM
// (which then also packs it); at 256 rows the two tie, at 512 the GEMM wins.
constexpr int64_t kGemvMaxRows = 128;
// With bf16 dot-product units (CpuHasNativeBf16Gemm), the GEMV's AVX-512 BF16 tiles beat
// torch's own bf16 linear (oneDNN) up to here and tie at 32 rows on SmolLM2's shapes (a 2-core
// Zen 4: 1.1-1.6x at 16 rows, 1.0-1.2x at 32, 0.97-0.99x at 64 for the MLP shapes); beyond, the
// oneDNN GEMM, 2.3-2.5x faster than widening the weight for the fp32 GEMM.
constexpr int64_t kNativeBf16GemvMaxRows = 32;

// torch's bf16 linear runs on the CPU's bf16 units: beyond kNativeBf16GemvMaxRows, no widening.
bool NativeBf16(const at::Tensor& x, const at::Tensor& w) {
  return x.scalar_type() == at::kBFloat16 && w.scalar_type() == at::kBFloat16 &&
         w.device().is_cpu() && CpuHasNativeBf16Gemm();
}

at::Tensor WithBias(at::Tensor y, const at::Tensor& b) {
  return b.defined() ? y.add_(b.to(at::kFloat)) : y;
}

// y = x · wᵀ in fp32 with a 16-bit w widened. A layer's weight (a few MB) is widened whole and
// takes torch's multithreaded fp32 GEMM, the fastest measured. A large one (an lm_head under
// prompt logprobs) is widened a block of rows at a time instead: each thread widens its block
// into a buffer that stays in cache and runs a one-thread GEMM on it, so the whole fp32 copy
// (100+ MB, page faults included, per call) is never made.
at::Tensor WidenedGemm(const at::Tensor& xf, const at::Tensor& w) {
  constexpr int64_t kWholeBytes = 32 << 20;
  if (w.numel() * 4 <= kWholeBytes) return at::linear(xf, w.to(at::kFloat));
  const int64_t M = xf.size(0), N = w.size(0);
  at::Tensor yt = at::empty({N, M}, xf.options());  // yᵀ: each block's rows are contiguous
  at::Tensor xt = xf.t();
  constexpr int64_t kBlock = 128;
  at::parallel_for(0, (N + kBlock - 1) / kBlock, 1, [&](int64_t begin, int64_t end) {
    for (int64_t blk = begin; blk < end; ++blk) {
      const int64_t n0 = blk * kBlock, nb = std::min(kBlock, N - n0);
      at::Tensor out = yt.narrow(0, n0, nb);
      at::mm_out(out, w.narrow(0, n0, nb).to(at::kFloat), xt);
    }
  });
  return yt.t().contiguous();
}

}  // namespace

// The GEMV path has no ATen ops between its loops (each op is a dispatch and an allocation,
// which at decode sizes costs as much as the arithmetic). Several projections of the same x
// (q/k/v, gate/up) share one parallel region over their rows laid end to end, so small ones
// (k and v are a third of q with GQA) do not each pay a fork/join and leave a thread idle.
// Each task rounds its own output columns, bias added, into the results in x's dtype.
bool GemvTasks::Supports(const at::Tensor& x, const std::vector<Projection>& ps) {
  return x.dim() == 2 && x.device().is_cpu() && Supports(x.scalar_type(), x.size(0), x.size(1), ps);
}

bool GemvTasks::Supports(c10::ScalarType x_dtype, int64_t M, int64_t K,
                         const std::vector<Projection>& ps) {
  const at::Tensor& w0 = ps.front().w;
  bool gemv = Avx2Format(w0) && Avx2Format(x_dtype) && M >= 0 &&
              M <= LinearGemvMaxRows(w0.scalar_type());
  for (const auto& p : ps) {
    gemv = gemv && p.w.dim() == 2 && p.w.scalar_type() == w0.scalar_type() && p.w.size(1) == K &&
           p.w.device().is_cpu();
  }
  return gemv;
}

GemvTasks::GemvTasks(const at::Tensor& x, const std::vector<Projection>& ps,
                     std::vector<at::Tensor> outs, float* y)
    : format_(*Avx2Format(ps.front().w)),
      out_format_(*Avx2Format(x)),
      M_(x.size(0)),
      K_(x.size(1)),
      x_(x.contiguous()),
      outs_(std::move(outs)),
      y_(y) {
  const int64_t P = static_cast<int64_t>(ps.size());
  // bf16 x and weights on bf16 dot-product units: both as stored, x not widened. At one row,
  // which is bandwidth-bound, only with full-width 512-bit units: on the Zen 4 host the AVX2
  // loop read 2-15% faster (weights cycled through more than the L3 holds, alternating in one
  // process); on the Zen 5 host the AVX-512 one decoded SmolLM2 at batch 1 faster in 5 of 6
  // alternating runs, 146.4 against 139.7 tok/s on average.
  dot_bf16_ = out_format_ == avx2::Format::kBf16 && format_ == avx2::Format::kBf16 &&
              (M_ >= 2 || !CpuSplits512BitOps()) && CpuHasAvx512Bf16();
  // The one-row loop's software prefetch: ~7% faster on the AVX2 host; on the Zen 4 host
  // (AVX512_BF16) slower than none, which decoded at 18.9-19.3 against 14.4-17.2 tok/s for the
  // 1B shape and 106-115 against 103-105 for SmolLM2 (alternating one-off runs).
  prefetch_rows_ = !CpuHasAvx512Bf16();
  if (!dot_bf16_) xf_.resize(M_ * K_);
  ws_.resize(P), bs_.resize(P), start_.assign(P + 1, 0);
  const bool allocate = outs_.empty();
  if (allocate) outs_.resize(P);
  for (int64_t p = 0; p < P; ++p) {
    ws_[p] = ps[p].w.contiguous();
    if (ps[p].b.defined()) bs_[p] = ps[p].b.to(at::kFloat).contiguous();
    if (allocate) outs_[p] = at::empty({M_, ws_[p].size(0)}, x.options());
    start_[p + 1] = start_[p] + ws_[p].size(0);
  }
  total_ = start_[P];
  // Every element is written by the GEMV before it is read, so no zero fill (at batch 1 the
  // lm_head's is 192 KB per step).
  if (y_ == nullptr) {
    own_y_.reset(new float[M_ * total_]);
    y_ = own_y_.get();
  }
  bounds_ = Bounds(total_);
}

GemvTasks::~GemvTasks() = default;

std::vector<int64_t> GemvTasks::Bounds(int64_t total) {
  const int64_t share = 2 * at::get_num_threads();
  std::vector<int64_t> bounds{0};
  for (int64_t at = 0; at < total;) {
    const int64_t rows = std::max<int64_t>(24, ((total - at) / share + 23) / 24 * 24);
    at = std::min(total, at + rows);
    bounds.push_back(at);
  }
  return bounds;
}

void GemvTasks::LoadRows(int64_t m0, int64_t m1) {
  for (int64_t m = m0; m < m1; ++m) Load(m * K_, (m + 1) * K_);
}

void GemvTasks::LoadColumns(int64_t k0, int64_t k1) {
  for (int64_t m = 0; m < M_; ++m) Load(m * K_ + k0, m * K_ + k1);
}

void GemvTasks::Load(int64_t i0, int64_t i1) {
  if (dot_bf16_) return;
  avx2::Widen(out_format_, static_cast<const char*>(x_.const_data_ptr()) + i0 * x_.element_size(),
              xf_.data() + i0, i1 - i0);
}

void GemvTasks::RunRows(int64_t p, int64_t lo, int64_t hi) const {
  float* yp = y_ + start_[p];
  const void* w = ws_[p].const_data_ptr();
  if (dot_bf16_) {
    avx512::GemvBf16(static_cast<const uint16_t*>(x_.const_data_ptr()), M_, K_,
                     static_cast<const uint16_t*>(w), lo, hi, yp, total_);
  } else {
    avx2::Gemv(format_, xf_.data(), M_, K_, w, lo, hi, yp, total_, prefetch_rows_);
  }
  const float* bp = bs_[p].defined() ? bs_[p].const_data_ptr<float>() : nullptr;
  avx2::StoreRows(out_format_, yp, total_, bp, M_, lo, hi, outs_[p].data_ptr(), outs_[p].size(1));
}

void GemvTasks::Run(int64_t block) const {
  const int64_t v0 = bounds_[block], v1 = bounds_[block + 1];
  for (size_t p = 0; p + 1 < start_.size(); ++p) {
    const int64_t lo = std::max(v0, start_[p]) - start_[p];
    const int64_t hi = std::min(v1, start_[p + 1]) - start_[p];
    if (lo < hi) RunRows(static_cast<int64_t>(p), lo, hi);
  }
}

int64_t LinearGemvMaxRows(c10::ScalarType w) {
  return w == at::kBFloat16 && CpuHasNativeBf16Gemm() ? kNativeBf16GemvMaxRows : kGemvMaxRows;
}

std::vector<at::Tensor> Linears(const at::Tensor& x, const std::vector<Projection>& ps) {
  // fp64 x against 16-bit or fp32 weights: the GEMV reads x in fp32 and its output rounding
  // takes fp32/bf16/fp16, so x goes in as fp32 and the fp32 results come back widened.
  if (x.scalar_type() == at::kDouble && x.dim() == 2 && x.device().is_cpu() &&
      GemvTasks::Supports(at::kFloat, x.size(0), x.size(1), ps)) {
    std::vector<at::Tensor> outs = Linears(x.to(at::kFloat), ps);
    for (at::Tensor& o : outs) o = o.to(at::kDouble);
    return outs;
  }
  if (GemvTasks::Supports(x, ps)) {
    GemvTasks gemv(x, ps);
    gemv.LoadRows(0, x.size(0));
    ParallelDynamic(gemv.size(), [&](int64_t b, int64_t) { gemv.Run(b); });
    return gemv.outputs();
  }
  const at::Tensor& w0 = ps.front().w;
  const auto format = Avx2Format(w0);
  const int64_t M = x.dim() == 2 ? x.size(0) : -1;
  const int64_t max_rows = LinearGemvMaxRows(w0.scalar_type());
  std::vector<at::Tensor> outs;
  at::Tensor xf;  // x in fp32, made once for all the widened projections
  for (const auto& p : ps) {
    const bool widen = format && M > max_rows && p.w.scalar_type() != at::kFloat &&
                       !NativeBf16(x, p.w);
    if (widen) {
      if (!xf.defined()) xf = x.to(at::kFloat).contiguous();
      outs.push_back(WithBias(WidenedGemm(xf, p.w), p.b).to(x.scalar_type()));
    } else {
      outs.push_back(p.b.defined() ? at::linear(x, p.w, p.b) : at::linear(x, p.w));
    }
  }
  return outs;
}

at::Tensor Linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  return Linears(x, {{w, b}}).front();
}

}  // namespace vnp
