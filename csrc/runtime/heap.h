// The process heap's policy for the step's large temporaries.
#pragma once

#include <absl/status/status.h>

namespace vnp {

// Every step allocates and frees activations of a few MB (a prefill chunk's [tokens,
// intermediate] fp32 products, a batch's [rows, vocab] logits). glibc serves blocks above its
// mmap threshold with fresh mappings and returns freed heap tops to the kernel, so those pages
// were faulted in and zeroed again on every step. This keeps blocks up to 32 MB (glibc's limit
// for the threshold) on the heap and up to 256 MB of freed heap for reuse. Peak RSS is the
// same: the memory is what the step already used at its peak. The first call decides; later
// calls return its status.
// VNP_HEAP_POLICY picks it: unset or "heap" is this policy, "glibc" leaves glibc's defaults
// (benchmarks/step_costs.py compares the two); any other value is an error naming both.
absl::Status KeepStepAllocationsOnHeap();

}  // namespace vnp
