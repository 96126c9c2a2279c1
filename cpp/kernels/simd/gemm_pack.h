// SIMD packing routines of sgemm.cpp and conv2d.cpp for the AVX-512 12x32 micro-kernel
// (simd/gemm_pack_avx512.cpp), and of sgemm.cpp for the AVX2 6x16 one (simd/gemm_pack_avx2.cpp). Both are transposes: the micro-kernel wants each operand k-major
// (A: 12 rows per k, B: 32 columns per k), while a row-major A and a transposed B are stored with
// k contiguous. Done element by element they cost ~2.5 cycles per float (1024^3 on one thread:
// packing A had 6% of the samples); in 16x16 register blocks they need ~4 shuffles per 16 floats.
#pragma once
#include <cstdint>

namespace tsm {

// d[p*mr + i] = a[i*lda + p] for i < mr, p < k (mr = 8 or 12 full rows). x86-64 only; the caller
// checks that AVX-512F is active.
void pack_a_rows_avx512(float* d, const float* a, int64_t lda, int64_t k, int mr);

// d[p*32 + j] = b[j*ldb + p] for j < cols, 0 for cols <= j < 32; p < k. x86-64 only.
void pack_b32_trans_avx512(float* d, const float* b, int64_t ldb, int64_t cols, int64_t k);

// The same two for the AVX2 6x16 kernel, in 8x8 register blocks: d[p*6 + i] = a[i*lda + p] for
// i < 6; d[p*16 + j] = b[j*ldb + p] for j < cols, 0 for cols <= j < 16. x86-64 only; the caller
// checks that AVX2 and FMA are active.
void pack_a6_rows_avx2(float* d, const float* a, int64_t lda, int64_t k);
// d[p*8 + i] = a[i*lda + p] for i < 8: the AVX-512 8x32 kernel's A panels, in 8x8 blocks (the 16x16
// transposes of pack_a_rows_avx512 carry 8 rows of zeros for them and store with masks). x86-64
// only; the caller checks that AVX2 is active.
void pack_a8_rows_avx2(float* d, const float* a, int64_t lda, int64_t k);
void pack_b16_trans_avx2(float* d, const float* b, int64_t ldb, int64_t cols, int64_t k);

// One packed-A micro-panel of the active micro-kernel, any ISA (defined in sgemm.cpp):
// d[p*mr + i] = a[i*lda + p] for i < rows, 0 for rows <= i < mr; p < k. Full panels of the AVX-512
// and AVX2 kernels go through the register transposes above.
void pack_a_panel(float* d, const float* a, int64_t lda, int64_t rows, int64_t k, int mr);

}  // namespace tsm
