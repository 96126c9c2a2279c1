// Internal interface between cpp/kernels/attention.cpp (checks, threading, dispatch) and the
// per-ISA tile loops of simd/attention_impl.h.
#pragma once
#include <cstdint>

#include "tensorsmith.h"

namespace tsm {

// rng.cpp: u[0, end - begin) = the Philox [0, 1) uniforms of elements [begin, end).
void philox_uniform01(float* u, int64_t begin, int64_t end, uint64_t seed, uint64_t offset);

// Tile sizes: BQ query rows x BK keys per score tile (BQ * BK floats = 32 KiB, in L1/L2).
constexpr int64_t kAttnBQ = 64;
constexpr int64_t kAttnBK = 128;

struct AttnArgs {
  int64_t b, h, lq, lk, d;
  float scale;
  bool causal;
  int mask_kind;
  const void* mask;
  int64_t mask_strides[4];
  bool dropout;
  float p_round_up;   // p rounded up to a float: u >= p  <=>  u >= p_round_up (u is a multiple of 2^-24)
  float keep_scale;   // 1 / (1 - p)
  uint64_t seed, offset;
  const float *q, *k, *v, *dout, *lse, *delta;
  float *out, *lse_out, *dq, *dk, *dv;
};

struct AttnImpl {
  const char* name;
  void (*forward_block)(const AttnArgs& a, int64_t bh, int64_t qb, float* s, float* z);
  void (*backward_keys)(const AttnArgs& a, int64_t bh, int64_t kb0, int64_t kb1, float* dq_head, float* p,
                        float* pd, float* dp, float* z);
};

const AttnImpl& attention_impl_generic();
const AttnImpl* attention_impl_avx2();    // nullptr when not compiled in
const AttnImpl* attention_impl_avx512();  // nullptr when not compiled in

}  // namespace tsm
