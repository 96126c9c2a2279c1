// GEMM micro-kernels: one register-blocked MR x NR tile of C per call.
//
//   c[i*ldc + j] = alpha * sum_p a[p*MR + i] * b[p*NR + j] + beta * c[i*ldc + j]
//   a: packed A micro-panel (k x MR, MR contiguous per p)
//   b: packed B micro-panel (k x NR, NR contiguous per p), 64-byte aligned
//   when beta == 0, c is written without being read.
//
// Each ISA has its own translation unit compiled with its own flags; gemm_ukernel_for() picks one
// at run time from the CPU features.
#pragma once
#include <cstdint>

#include "tensorsmith.h"

namespace tsm {

using GemmUkernelFn = void (*)(int64_t k, const float* a, const float* b, float* c, int64_t ldc,
                               float alpha, float beta);

// The same tile with B read in place from a row-major matrix (b[p*ldb + j], j < NR, any alignment),
// each row of it also stored to bpack (k x NR, 64-byte aligned): the first row tile of a panel packs
// the panel for the tiles after it while it computes, instead of a separate packing pass.
using GemmUkernelPackBFn = void (*)(int64_t k, const float* a, const float* b, int64_t ldb,
                                    float* bpack, float* c, int64_t ldc, float alpha, float beta);

struct GemmUkernel {
  const char* name;
  int mr, nr;        // register tile
  int mc, kc, nc;    // cache blocking: A block mc x kc in L2, B block kc x nc in L3, B panel in L1
  GemmUkernelFn fn;
  GemmUkernelPackBFn fn_pack_b = nullptr;  // nullptr where the ISA has none
  // A kernel of fewer rows (same NR, KC, with fn_pack_b) for the last rows of an A block where its
  // panels pad less (sgemm.cpp, RowPanels); nullptr where there is none.
  const GemmUkernel* tail = nullptr;
};

const GemmUkernel& gemm_ukernel_generic();
const GemmUkernel* gemm_ukernel_avx2();    // nullptr when not compiled in (non-x86 builds)
const GemmUkernel* gemm_ukernel_avx2_mr4();  // 4x16, for tail rows; nullptr when not compiled in
const GemmUkernel* gemm_ukernel_avx512();  // nullptr when not compiled in
const GemmUkernel* gemm_ukernel_avx512_mr8();  // nullptr when not compiled in
const GemmUkernel& gemm_ukernel_for(tsm_simd simd);
// The kernel for a product whose A has `rows` rows (at most a few blocks of MC): the AVX-512 8x32
// kernel where 8-row panels pad fewer rows than 12-row ones (64 rows: 64 instead of 72), else
// gemm_ukernel_for(simd).
const GemmUkernel& gemm_ukernel_for_rows(tsm_simd simd, int64_t rows);

}  // namespace tsm
