// y = x · wᵀ + b for the decoder's projections, computed in fp32 and rounded to x's dtype once,
// as a 16-bit GEMM with fp32 accumulation does. On an AVX2 CPU:
// - up to LinearGemvMaxRows() rows (decode), an AVX2 GEMV that streams the weight once and
//   widens 16-bit values in registers: bandwidth-bound, where torch's bf16 path is not and its
//   fp32 sgemv reached about half the read bandwidth;
// - more rows (prefill), 16-bit weights are widened a cache-sized block at a time into fp32
//   GEMM: torch's bf16 GEMM runs at a fraction of its fp32 rate on CPUs without bf16 FMA units.
// On a CPU with them (AVX512_BF16), bf16 weights run AVX-512 BF16 dot-product tiles up to 32
// rows (from 2 on Zen 4, whose split 512-bit units lose to the AVX2 loop at one row), on the
// bf16 activations as they are, and torch's bf16 linear (oneDNN) beyond: the
// fastest there. Elsewhere, at::linear.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include <ATen/core/Tensor.h>

#include "kernels/gemv_avx2.h"

namespace vnp {

// x: [M, K]; w: [N, K]; b: [N] or undefined. Returns [M, N] in x's dtype.
at::Tensor Linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b = {});

struct Projection {
  const at::Tensor& w;
  const at::Tensor& b;
};

// Several projections of one x (q/k/v, gate/up) in one pass: on the GEMV path they share one
// parallel region. Same results as Linear on each; the results are new tensors, which callers
// may overwrite.
std::vector<at::Tensor> Linears(const at::Tensor& x, const std::vector<Projection>& ps);

// The GEMV path of Linears as tasks, for a caller that runs them in its own parallel region (the
// fused decode step): the projections' rows laid end to end and cut into blocks, each block a
// task that writes its rows of every output, rounded to x's dtype with the bias added.
class GemvTasks {
 public:
  // True when Linears would take the GEMV path for x [M, K] against every projection.
  static bool Supports(const at::Tensor& x, const std::vector<Projection>& ps);
  // The same for an x of dtype `x_dtype` on the CPU with M rows of K values.
  static bool Supports(c10::ScalarType x_dtype, int64_t M, int64_t K,
                       const std::vector<Projection>& ps);

  // x: [M, K], whose values are read only by Load* and Run (the caller may fill it after).
  // outs: one [M, N_p] contiguous tensor in x's dtype per projection, or empty to allocate them.
  // y: fp32 scratch of M × ScratchFloats() values, or null to allocate it; tasks of one
  // GemvTasks use disjoint parts of it, so GEMVs that run one after another may share one.
  GemvTasks(const at::Tensor& x, const std::vector<Projection>& ps,
            std::vector<at::Tensor> outs = {}, float* y = nullptr);
  ~GemvTasks();

  // Reads x's rows [m0, m1), or columns [k0, k1) of every row (widened to fp32 where the loop
  // needs it). Every value of x before any Run.
  void LoadRows(int64_t m0, int64_t m1);
  void LoadColumns(int64_t k0, int64_t k1);
  // The projections' total output rows: one row of the y scratch.
  int64_t ScratchFloats() const { return total_; }
  // Task boundaries over `total` output rows on the current thread count, in multiples of 24
  // rows (whole 3-row register tiles, 8-row cache lines of fp32 output): each task about
  // 1/(2·threads) of the rows not yet handed out, at least 24. Handed out in order, the tasks
  // shrink toward the end, so the phase's tail (the last task running while the other threads
  // wait) is a small one without the many small tasks equal blocks that size would need.
  static std::vector<int64_t> Bounds(int64_t total);
  int64_t size() const { return static_cast<int64_t>(bounds_.size()) - 1; }
  void Run(int64_t block) const;
  // Rows [lo, hi) of projection p alone.
  void RunRows(int64_t p, int64_t lo, int64_t hi) const;
  const std::vector<at::Tensor>& outputs() const { return outs_; }

 private:
  void Load(int64_t i0, int64_t i1);  // x's flat elements [i0, i1)

  avx2::Format format_, out_format_;
  bool dot_bf16_, prefetch_rows_;
  int64_t M_, K_, total_;
  std::vector<int64_t> bounds_;  // task b: virtual rows [bounds_[b], bounds_[b + 1])
  at::Tensor x_;
  std::vector<float> xf_;  // x in fp32, for the loops that take it
  std::vector<at::Tensor> ws_, bs_, outs_;  // bs_: fp32 biases, or undefined
  std::vector<int64_t> start_;  // projection p owns virtual rows [start_[p], start_[p + 1])
  std::unique_ptr<float[]> own_y_;
  float* y_;  // fp32 results, projection p at column start_[p], stride total_
};

// Up to this many rows the GEMV path runs for weights of dtype `w`; beyond it, widened-weight
// fp32 GEMM, or for bf16 on a CPU with bf16 units, torch's bf16 linear.
int64_t LinearGemvMaxRows(c10::ScalarType w);

}  // namespace vnp
