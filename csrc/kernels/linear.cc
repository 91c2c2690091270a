#include "kernels/linear.h"

#include <algorithm>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "kernels/cpu_features.h"

namespace vnp {
namespace {

// Measured on a 2-core AVX2 host (benchmarks/linear_kernel.py): up to here the GEMV, which
// reads each weight once, beats widening the weight for an fp32 GEMM.
constexpr int64_t kGemvMaxRows = 24;

at::Tensor WithBias(at::Tensor y, const at::Tensor& b) {
  return b.defined() ? y.add_(b.to(at::kFloat)) : y;
}

// The GEMV path without ATen ops between the loops (each op is a dispatch and an allocation,
// which at decode sizes costs as much as the arithmetic): x is widened into a local buffer, and
// each thread rounds its own output columns, bias added, into the result in x's dtype.
template <class T>
at::Tensor Gemv(avx2::Format format, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
  at::Tensor xc = x.contiguous(), wc = w.contiguous();
  at::Tensor bf = b.defined() ? b.to(at::kFloat).contiguous() : b;
  const T* xs = xc.const_data_ptr<T>();
  std::vector<float> xf(M * K), y(M * N);
  for (int64_t i = 0; i < M * K; ++i) xf[i] = static_cast<float>(xs[i]);
  at::Tensor out = at::empty({M, N}, x.options());
  T* op = out.data_ptr<T>();
  const float* bp = bf.defined() ? bf.const_data_ptr<float>() : nullptr;
  const void* wp = wc.const_data_ptr();
  // Blocks of 64 output rows: large enough to amortise the task, small enough to balance.
  constexpr int64_t kBlock = 64;
  at::parallel_for(0, (N + kBlock - 1) / kBlock, 1, [&](int64_t begin, int64_t end) {
    const int64_t n0 = begin * kBlock, n1 = std::min(N, end * kBlock);
    avx2::Gemv(format, xf.data(), M, K, wp, n0, n1, y.data(), N);
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t n = n0; n < n1; ++n) {
        op[m * N + n] = static_cast<T>(y[m * N + n] + (bp ? bp[n] : 0.f));
      }
    }
  });
  return out;
}

// y = x · wᵀ in fp32 with a 16-bit w widened a block of rows at a time: each thread widens its
// block into a buffer that stays in cache and runs a one-thread GEMM on it, so the whole fp32
// weight is never materialised (for an lm_head that was a 100+ MB allocation, page faults
// included, per call).
at::Tensor WidenedGemm(const at::Tensor& xf, const at::Tensor& w) {
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

int64_t LinearGemvMaxRows() { return kGemvMaxRows; }

at::Tensor Linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  const auto format = Avx2Format(w);
  const int64_t M = x.dim() == 2 ? x.size(0) : -1;
  const bool fp32 = w.scalar_type() == at::kFloat;
  // fp32 weights past the GEMV range: torch's own GEMM is the fast path already.
  if (!format || M < 0 || (fp32 && M > kGemvMaxRows)) {
    return b.defined() ? at::linear(x, w, b) : at::linear(x, w);
  }
  TORCH_CHECK(w.dim() == 2 && x.size(1) == w.size(1), "Linear: shapes ", x.sizes(), " and ",
              w.sizes());
  if (M > kGemvMaxRows) {
    return WithBias(WidenedGemm(x.to(at::kFloat).contiguous(), w), b).to(x.scalar_type());
  }
  at::Tensor out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "linear", [&] {
    out = Gemv<scalar_t>(*format, x, w, b);
  });
  return out;
}

}  // namespace vnp
