// The constants of the vectorised exp that the AVX2 kernels (Exp8, avx2_formats.h) and the
// AVX-512 flash attention (Exp16) share, so the two widths compute the same polynomial: exp(x)
// as 2^n · p(r), x = n·ln2 + r with |r| ≤ ln2/2 and p a degree-7 fit (Cephes' expf
// coefficients), ln2 split in two so that r keeps its low bits. x is clamped to [kMin, kMax],
// where 2^n is a normal float. Constants only: safe to include whatever a file's ISA flags.
#pragma once

namespace vnp::exp_poly {

constexpr float kMin = -87.0f, kMax = 88.0f;
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
// p(r) = 1 + r + r² · (((((kP[0] r + kP[1]) r + kP[2]) r + kP[3]) r + kP[4]) r + kP[5]).
constexpr float kP[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                         4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

}  // namespace vnp::exp_poly
