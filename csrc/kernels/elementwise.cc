#include "kernels/elementwise.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "kernels/cpu_features.h"
#include "kernels/rows_avx2.h"

namespace vnp {
namespace {

// Rounds through T, as storing an intermediate tensor of dtype T does.
template <class T>
float R(float v) {
  return static_cast<float>(static_cast<T>(v));
}

// The row loops below take the AVX2 ones (kernels/rows_avx2.h, the same bits) where `format`
// says there are any, else the scalar loops here.
using Format = std::optional<avx2::Format>;

// x[i] = dtype(x[i] + add[i]): the residual add.
template <class T>
void AddInPlace(const Format& format, T* x, const T* add, int64_t n) {
  if (format) return avx2::AddRow(*format, x, add, n);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = static_cast<T>(static_cast<float>(x[i]) + static_cast<float>(add[i]));
  }
}

// One running fp32 sum, in order (see RmsNormRows).
template <class T>
float SumOfSquares(const Format& format, const T* x, int64_t n) {
  if (format) return avx2::SumOfSquares(*format, x, n);
  float ss = 0.f;
  for (int64_t i = 0; i < n; ++i) {
    const float v = static_cast<float>(x[i]);
    ss += v * v;
  }
  return ss;
}

// out = w · dtype(x · rsqrt(ss / n + eps)), ss the sum of squares of x's n values; out may be x.
template <class T>
void WriteNormed(const Format& format, const T* x, float ss, const T* w, T* out, int64_t n,
                 float eps) {
  const float scale = 1.f / std::sqrt(ss / static_cast<float>(n) + eps);
  if (format) return avx2::ScaleRow(*format, x, scale, w, out, n);
  for (int64_t i = 0; i < n; ++i) {
    out[i] = static_cast<T>(static_cast<float>(w[i]) * R<T>(static_cast<float>(x[i]) * scale));
  }
}

// With `add`, first x[r] = dtype(x[r] + add[r]) in place (the residual), then the norm of it.
template <class T>
void RmsNormRows(T* x, const T* add, const T* w, T* out, int64_t rows, int64_t n, float eps) {
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    // Four rows at a time: each row's sum of squares is one running fp32 sum, in order. Eight
    // partial sums (vectorised) were as accurate in aggregate (tests/python/
    // test_precision_smollm2.py) but flipped the README chat prompt's first greedy token, a
    // near-tie in bf16, so the order stays; one such chain is bound by the add's latency, so
    // four rows' chains run side by side, each summing as it would alone.
    constexpr int64_t kRows = 4;
    const Format format = Avx2Format(c10::CppTypeToScalarType<T>::value);
    for (int64_t r0 = begin; r0 < end; r0 += kRows) {
      const int64_t m = std::min(kRows, end - r0);
      if (add != nullptr) AddInPlace(format, x + r0 * n, add + r0 * n, m * n);
      float ss[kRows] = {0.f, 0.f, 0.f, 0.f};
      if (m == kRows) {
        const T* x0 = x + r0 * n;
        for (int64_t i = 0; i < n; ++i) {
          for (int64_t j = 0; j < kRows; ++j) {
            const float v = static_cast<float>(x0[j * n + i]);
            ss[j] += v * v;
          }
        }
      } else {
        for (int64_t j = 0; j < m; ++j) ss[j] = SumOfSquares(format, x + (r0 + j) * n, n);
      }
      for (int64_t j = 0; j < m; ++j) {
        WriteNormed(format, x + (r0 + j) * n, ss[j], w, out + (r0 + j) * n, n, eps);
      }
    }
  });
}

// One head of d values; out must not overlap x.
template <class T>
void RopeHead(const T* x, const T* c, const T* s, T* out, int64_t d) {
  const int64_t half = d / 2;
  // rotate_half(x)[i] is -x[i + half] in the first half and x[i - half] in the second: two
  // branch-free loops, which the compiler vectorises.
  auto rotate = [&](int64_t lo, int64_t hi, int64_t from, float sign) {
    for (int64_t i = lo; i < hi; ++i) {
      const float a = R<T>(static_cast<float>(x[i]) * static_cast<float>(c[i]));
      const float b = R<T>(sign * static_cast<float>(x[i + from]) * static_cast<float>(s[i]));
      out[i] = static_cast<T>(a + b);
    }
  };
  rotate(0, half, half, -1.f);
  rotate(half, d, -half, 1.f);
}

template <class T>
void RopeRows(const T* x, const T* cos, const T* sin, T* out, int64_t tokens, int64_t heads,
              int64_t d) {
  at::parallel_for(0, tokens, 16, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      // RopeRow: the AVX2 loop where it applies (the same bits), else RopeHead per head.
      RopeRow(c10::CppTypeToScalarType<T>::value, x + t * heads * d, cos + t * d, sin + t * d,
              out + t * heads * d, heads, d, d);
    }
  });
}

at::Tensor NormRows(at::Tensor x, const at::Tensor* add, const at::Tensor& weight, double eps) {
  at::Tensor wc = weight.to(x.scalar_type()).contiguous();
  at::Tensor out = at::empty_like(x, at::MemoryFormat::Contiguous);
  const int64_t n = x.size(-1), rows = n == 0 ? 0 : x.numel() / n;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "rms_norm", [&] {
    RmsNormRows<scalar_t>(x.data_ptr<scalar_t>(), add ? add->const_data_ptr<scalar_t>() : nullptr,
                          wc.const_data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), rows, n,
                          static_cast<float>(eps));
  });
  return out;
}

// Calls f with a null pointer of the element type of t (fp32, bf16 or fp16).
template <class F>
void WithType(c10::ScalarType t, const F& f) {
  switch (t) {
    case at::kFloat: return f(static_cast<float*>(nullptr));
    case at::kBFloat16: return f(static_cast<c10::BFloat16*>(nullptr));
    case at::kHalf: return f(static_cast<c10::Half*>(nullptr));
    default: TORCH_CHECK(false, "fused row ops take fp32, bf16 or fp16, got ", t);
  }
}

}  // namespace

void RmsNormRow(c10::ScalarType t, void* x, const void* add, const void* w, void* out, int64_t n,
                double eps) {
  WithType(t, [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    const Format format = Avx2Format(t);
    T* xt = static_cast<T*>(x);
    if (add != nullptr) AddInPlace(format, xt, static_cast<const T*>(add), n);
    if (out != nullptr) {
      WriteNormed(format, xt, SumOfSquares(format, xt, n), static_cast<const T*>(w),
                  static_cast<T*>(out), n, static_cast<float>(eps));
    }
  });
}

void RopeRow(c10::ScalarType t, const void* x, const void* cos, const void* sin, void* out,
             int64_t heads, int64_t d, int64_t out_head_stride) {
  const auto format = Avx2Format(t);
  if (format && d % 16 == 0) {
    avx2::RopeRow(*format, x, cos, sin, out, heads, d, out_head_stride);
    return;
  }
  WithType(t, [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    for (int64_t h = 0; h < heads; ++h) {
      RopeHead(static_cast<const T*>(x) + h * d, static_cast<const T*>(cos),
               static_cast<const T*>(sin), static_cast<T*>(out) + h * out_head_stride, d);
    }
  });
}

void SiluMulRow(c10::ScalarType t, const void* gate, const void* up, void* out, int64_t n) {
  if (const auto format = Avx2Format(t)) {
    avx2::SiluMulRow(*format, gate, up, out, n);
    return;
  }
  WithType(t, [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    const T* g = static_cast<const T*>(gate);
    const T* u = static_cast<const T*>(up);
    T* o = static_cast<T*>(out);
    for (int64_t i = 0; i < n; ++i) {
      const float x = static_cast<float>(g[i]);
      o[i] = static_cast<T>(R<T>(x / (1.f + std::exp(-x))) * static_cast<float>(u[i]));
    }
  });
}

bool FusedCpuSupports(const at::Tensor& x) {
  const auto t = x.scalar_type();
  return x.device().is_cpu() && (t == at::kFloat || t == at::kBFloat16 || t == at::kHalf);
}

at::Tensor FusedRmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  return NormRows(x.contiguous(), nullptr, weight, eps);  // x is only read
}

at::Tensor FusedAddRmsNorm(at::Tensor& h, const at::Tensor& out, const at::Tensor& weight,
                           double eps) {
  TORCH_CHECK(h.is_contiguous() && out.is_contiguous() && h.sizes() == out.sizes() &&
              h.scalar_type() == out.scalar_type(), "FusedAddRmsNorm: h and out must match");
  return NormRows(h, &out, weight, eps);
}

void FusedSiluMul(at::Tensor& gate, const at::Tensor& up) {
  TORCH_CHECK(gate.is_contiguous() && up.is_contiguous() && gate.sizes() == up.sizes() &&
              gate.scalar_type() == up.scalar_type(), "FusedSiluMul: gate and up must match");
  const c10::ScalarType t = gate.scalar_type();
  const int64_t size = static_cast<int64_t>(gate.element_size());
  char* g = static_cast<char*>(gate.data_ptr());
  const char* u = static_cast<const char*>(up.const_data_ptr());
  // Flat ranges of 16K values: a long prompt's [T, intermediate] splits evenly over threads.
  at::parallel_for(0, gate.numel(), 1 << 14, [&](int64_t begin, int64_t end) {
    SiluMulRow(t, g + begin * size, u + begin * size, g + begin * size, end - begin);
  });
}

at::Tensor FusedRope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  at::Tensor xc = x.contiguous(), cc = cos.contiguous(), sc = sin.contiguous();
  at::Tensor out = at::empty_like(xc);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "rope", [&] {
    RopeRows<scalar_t>(xc.const_data_ptr<scalar_t>(), cc.const_data_ptr<scalar_t>(),
                       sc.const_data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), x.size(0),
                       x.size(1), x.size(2));
  });
  return out;
}

}  // namespace vnp
