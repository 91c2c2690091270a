// The operands of the causal prefill attention kernels, which read the paged KV cache in place
// (flash attention: keys in tiles, an online softmax, no score matrix): flash_attention_avx512.h
// on the AVX512_BF16 dot-product unit, flash_attention_avx2.h with AVX2 FMAs. Both put a tile's
// query tokens in the fp32 lanes and start key tiles at multiples of their tile size in
// absolute position, so a token's result depends neither on the tokens sharing its tile nor
// on how its prompt was split into chunks.
#pragma once

#include <cstdint>

namespace vnp {

// One sequence and one KV head: the cache rows and the query heads that share them.
struct FlashHead {
  int64_t heads;         // q heads per KV head
  int64_t head_dim;      // a multiple of the kernel's requirement (32 AVX-512, 8 AVX2)
  const uint16_t* k;     // this KV head's rows in block 0; block b's start at + b · block_stride
  const uint16_t* v;
  int64_t block_stride;  // elements between blocks
  int64_t block_size;
  const int64_t* table;  // the sequence's block ids
  int64_t window;        // > 0: the token at position p sees only keys in (p - window, p]
  float scale;
};

// Up to the kernel's kFlashTokens consecutive query tokens of that sequence. Token t sits at
// position first_pos + t and sees the keys up to it. q[t · stride + h · head_dim + d] for the
// KV head's q heads h; out likewise, written in bf16 (rounded to nearest even).
struct FlashTile {
  const uint16_t* q;
  uint16_t* out;
  int64_t stride;
  int64_t tokens;
  int64_t first_pos;
};

}  // namespace vnp
