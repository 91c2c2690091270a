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

// Scalar helpers both kernels share, with internal linkage as in avx2_formats.h: each kernel
// file is built with its own -m flags, so no copy compiled for one may stand in for the other's.
namespace {

// The cache row of position pos in base (h.k or h.v).
inline const uint16_t* CacheRow(const FlashHead& h, const uint16_t* base, int64_t pos) {
  return base + h.table[pos / h.block_size] * h.block_stride + (pos % h.block_size) * h.head_dim;
}

// Where the key tiles of queries from first_pos start: the first key any of them sees (the
// window's start, else 0) rounded down to a multiple of tile_keys, the tiles' fixed grid.
inline int64_t FirstKeyTile(const FlashHead& h, int64_t first_pos, int64_t tile_keys) {
  int64_t begin = h.window > 0 ? first_pos - h.window + 1 : 0;
  if (begin < 0) begin = 0;
  return begin - begin % tile_keys;
}

// Whether some query at first_pos..last must not see some key of k0..k0 + n - 1: a key past
// the first query (causal), or before the last query's window.
inline bool TileHidesKeys(const FlashHead& h, int64_t first_pos, int64_t last, int64_t k0,
                          int64_t n) {
  return k0 + n - 1 > first_pos || (h.window > 0 && k0 <= last - h.window);
}

}  // namespace
}  // namespace vnp
