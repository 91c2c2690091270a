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

// The GEMV path without ATen ops between the loops (each op is a dispatch and an allocation,
// which at decode sizes costs as much as the arithmetic). Several projections of the same x
// (q/k/v, gate/up) share one parallel region over their rows laid end to end, so small ones
// (k and v are a third of q with GQA) do not each pay a fork/join and leave a thread idle.
// x is widened once into a local buffer; each thread rounds its own output columns, bias added,
// into the results in x's dtype.
template <class T>
std::vector<at::Tensor> Gemv(avx2::Format format, const at::Tensor& x,
                             const std::vector<Projection>& ps) {
  const int64_t M = x.size(0), K = x.size(1), P = static_cast<int64_t>(ps.size());
  const std::optional<avx2::Format> out_format = Avx2Format(x);  // nullopt for fp64
  at::Tensor xc = x.contiguous();
  const T* xs = xc.const_data_ptr<T>();
  // bf16 x and weights on bf16 dot-product units: both as stored, x not widened. Not at one
  // row, which is bandwidth-bound and where the AVX2 loop read 2-15% faster (weights cycled
  // through more than the L3 holds, alternating in one process).
  const bool dot_bf16 = std::is_same_v<T, c10::BFloat16> && format == avx2::Format::kBf16 &&
                        M >= 2 && CpuHasAvx512Bf16();
  // The one-row loop's software prefetch: ~7% faster on the AVX2 host; on the Zen 4 host
  // (AVX512_BF16) slower than none, which decoded at 18.9-19.3 against 14.4-17.2 tok/s for the
  // 1B shape and 106-115 against 103-105 for SmolLM2 (alternating one-off runs).
  const bool prefetch_rows = !CpuHasAvx512Bf16();
  std::vector<float> xf(dot_bf16 ? 0 : M * K);
  for (int64_t i = 0; i < static_cast<int64_t>(xf.size()); ++i) xf[i] = static_cast<float>(xs[i]);
  std::vector<at::Tensor> ws(P), bs(P), outs(P);
  std::vector<int64_t> start(P + 1, 0);  // projection p owns virtual rows [start[p], start[p+1])
  for (int64_t p = 0; p < P; ++p) {
    ws[p] = ps[p].w.contiguous();
    if (ps[p].b.defined()) bs[p] = ps[p].b.to(at::kFloat).contiguous();
    outs[p] = at::empty({M, ws[p].size(0)}, x.options());
    start[p + 1] = start[p] + ws[p].size(0);
  }
  const int64_t total = start[P];
  // Projection p at column offset start[p], row stride total; every element is written by the
  // GEMV before it is read, so no zero fill (at batch 1 the lm_head's is 192 KB per step).
  std::unique_ptr<float[]> y(new float[M * total]);
  // About eight blocks per thread, in multiples of 24 rows (whole 3-row register tiles, 8-row
  // cache lines of fp32 output), for balance without tiny tasks.
  const int64_t threads = at::get_num_threads();
  const int64_t block = std::max<int64_t>(24, (total / (threads * 8) + 23) / 24 * 24);
  ParallelDynamic((total + block - 1) / block, [&](int64_t b, int64_t) {
    const int64_t v0 = b * block, v1 = std::min(total, v0 + block);
    for (int64_t p = 0; p < P; ++p) {
      const int64_t lo = std::max(v0, start[p]) - start[p], hi = std::min(v1, start[p + 1]) - start[p];
      if (lo >= hi) continue;
      const int64_t N = start[p + 1] - start[p];
      float* yp = y.get() + start[p];
      if (dot_bf16) {
        avx512::GemvBf16(reinterpret_cast<const uint16_t*>(xs), M, K,
                         static_cast<const uint16_t*>(ws[p].const_data_ptr()), lo, hi, yp, total);
      } else {
        avx2::Gemv(format, xf.data(), M, K, ws[p].const_data_ptr(), lo, hi, yp, total,
                   prefetch_rows);
      }
      const float* bp = bs[p].defined() ? bs[p].const_data_ptr<float>() : nullptr;
      T* op = outs[p].data_ptr<T>();
      if (out_format) {
        avx2::StoreRows(*out_format, yp, total, bp, M, lo, hi, op, N);
        continue;
      }
      for (int64_t m = 0; m < M; ++m) {
        for (int64_t n = lo; n < hi; ++n) {
          op[m * N + n] = static_cast<T>(yp[m * total + n] + (bp ? bp[n] : 0.f));
        }
      }
    }
  });
  return outs;
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

int64_t LinearGemvMaxRows(c10::ScalarType w) {
  return w == at::kBFloat16 && CpuHasNativeBf16Gemm() ? kNativeBf16GemvMaxRows : kGemvMaxRows;
}

std::vector<at::Tensor> Linears(const at::Tensor& x, const std::vector<Projection>& ps) {
  const at::Tensor& w0 = ps.front().w;
  const auto format = Avx2Format(w0);
  const int64_t M = x.dim() == 2 ? x.size(0) : -1;
  const int64_t max_rows = LinearGemvMaxRows(w0.scalar_type());
  bool gemv = format && M >= 0 && M <= max_rows;
  for (const auto& p : ps) {
    gemv = gemv && p.w.dim() == 2 && p.w.scalar_type() == w0.scalar_type() &&
           p.w.size(1) == x.size(1) && p.w.device().is_cpu();
  }
  std::vector<at::Tensor> outs;
  if (gemv) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "linear", [&] {
      outs = Gemv<scalar_t>(*format, x, ps);
    });
    return outs;
  }
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
