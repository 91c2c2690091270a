// Runtime row and key counts to the register tiles' template sizes, for the SIMD kernel files.
#pragma once

#include <cstdint>
#include <type_traits>

namespace vnp {
// Unnamed: each kernel file, built with its own instruction set, keeps its own copy. An inline
// template shared across them could be kept by the linker in its AVX-512 copy for every
// caller, which would fault on a CPU without AVX-512 (as gemv_avx512.cc says of std::min).
namespace {

// f(std::integral_constant<int, r>()) for a runtime r in [1, N] (below 1 as 1).
template <int N, class F>
void WithSize(int64_t r, const F& f) {
  if constexpr (N == 1) {
    f(std::integral_constant<int, 1>());
  } else if (r >= N) {
    f(std::integral_constant<int, N>());
  } else {
    WithSize<N - 1>(r, f);
  }
}

// f(size, m) for each group of up to N rows [m, m + size) of M, size as WithSize passes it.
template <int N, class F>
void ForEachRowGroup(int64_t M, const F& f) {
  for (int64_t m = 0; m < M; m += N) {
    WithSize<N>(M - m, [&](auto size) { f(size, m); });
  }
}

}  // namespace
}  // namespace vnp
