// SGEMM, row-major, BLAS semantics:  C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C[m,n]
//
// BLIS-style structure (Goto's algorithm):
//   for jc in n by NC:                      B block  op(B)[pc:pc+KC, jc:jc+NC]  packed once (L3)
//     for pc in k by KC:
//       pack B block into NR-wide panels    (all threads share the packed block)
//       for ic in m by MC:   (parallel)     A block  op(A)[ic:ic+MC, pc:pc+KC]  packed per thread (L2)
//         for jr in NC by NR:               B micro-panel KC x NR stays in L1
//           for ir in MC by MR:             micro-kernel: MR x NR tile of C in registers
// Transposes are absorbed by the packing routines, so one micro-kernel serves all four cases.
// Few rows (m <= 2 MC) split the columns between threads instead, and an untransposed B is then
// packed by the micro-kernel as it computes each panel's first row tile (macro_kernel_pack_b).
// Edge tiles (m % MR, n % NR) run the micro-kernel on a zero-padded tile and copy the valid part.
// On AVX2 the last 1-4 rows of an A block go in 4-row panels of a 4x16 kernel instead (RowPanels,
// gemm_rows.h).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "../runtime/runtime.h"
#include "gemm_rows.h"
#include "kernels.h"
#include "simd/gemm_pack.h"
#include "simd/gemm_ukernel.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

namespace tsm {

#if !(defined(__x86_64__) || defined(_M_X64))
// The SIMD packers are x86-only; elsewhere simd_pack() and avx2_pack() are false and they are
// never called.
void pack_a_rows_avx512(float*, const float*, int64_t, int64_t, int) {}
void pack_b32_trans_avx512(float*, const float*, int64_t, int64_t, int64_t) {}
void pack_a6_rows_avx2(float*, const float*, int64_t, int64_t) {}
void pack_a8_rows_avx2(float*, const float*, int64_t, int64_t) {}
void pack_b16_trans_avx2(float*, const float*, int64_t, int64_t, int64_t) {}
#endif

namespace {

// Whether the AVX-512 packers (simd/gemm_pack.h) apply: the 12x32 or 8x32 kernel on a CPU with
// AVX-512F.
inline bool simd_pack(int mr, int nr) {
#if defined(__x86_64__) || defined(_M_X64)
  return (mr == 12 || mr == 8) && nr == 32 && active_simd() == TSM_SIMD_AVX512;
#else
  (void)mr, (void)nr;
  return false;
#endif
}

// Whether the AVX2 packers apply: the 6x16 kernel on a CPU running the AVX2 path.
inline bool avx2_pack(int mr, int nr) {
#if defined(__x86_64__) || defined(_M_X64)
  return mr == 6 && nr == 16 && active_simd() == TSM_SIMD_AVX2;
#else
  (void)mr, (void)nr;
  return false;
#endif
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Copy `rows` rows of `width` floats, ld apart in src, to dst one after another (a band of a packed
// panel). The kernels' panel widths are compile-time cases: a constant-size copy is a vector move or
// a few, where a width known only at run time made each row a call into the C library (10% of NN
// 64x512x1600's samples) or an element loop (TN 15% slower than NN at 256x256x4096).
template <int W>
inline void copy_rows_w(float* dst, const float* src, int64_t ld, int64_t rows) {
  for (int64_t p = 0; p < rows; ++p, src += ld, dst += W) std::memcpy(dst, src, sizeof(float) * W);
}
inline void copy_rows(float* dst, const float* src, int64_t ld, int64_t rows, int width) {
  switch (width) {
    case 32: return copy_rows_w<32>(dst, src, ld, rows);
    case 16: return copy_rows_w<16>(dst, src, ld, rows);
    case 12: return copy_rows_w<12>(dst, src, ld, rows);
    case 8: return copy_rows_w<8>(dst, src, ld, rows);
    case 6: return copy_rows_w<6>(dst, src, ld, rows);
    case 4: return copy_rows_w<4>(dst, src, ld, rows);
    default:
      for (int64_t p = 0; p < rows; ++p, src += ld, dst += width)
        std::memcpy(dst, src, sizeof(float) * width);
  }
}

}  // namespace

void pack_a_panel(float* dst, const float* a, int64_t lda, int64_t rows, int64_t k, int mr) {
  if (rows == mr && mr == 8 && simd_pack(mr, 32)) {
    pack_a8_rows_avx2(dst, a, lda, k);  // 8x8 register transposes, unmasked stores
  } else if (rows == mr && simd_pack(mr, 32)) {
    pack_a_rows_avx512(dst, a, lda, k, mr);  // 16x16 register transposes
  } else if (rows == mr && avx2_pack(mr, 16)) {
    pack_a6_rows_avx2(dst, a, lda, k);  // 8x8 register transposes
#if defined(__x86_64__) || defined(_M_X64)
  } else if (rows == mr && mr == 4) {
    // The AVX2 4x16 kernel's tail panels (the LSTM's recurrent products): 4x4 SSE transposes.
    int64_t p = 0;
    for (; p + 4 <= k; p += 4) {
      __m128 r0 = _mm_loadu_ps(a + p), r1 = _mm_loadu_ps(a + lda + p);
      __m128 r2 = _mm_loadu_ps(a + 2 * lda + p), r3 = _mm_loadu_ps(a + 3 * lda + p);
      _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
      _mm_storeu_ps(dst + p * 4, r0);
      _mm_storeu_ps(dst + p * 4 + 4, r1);
      _mm_storeu_ps(dst + p * 4 + 8, r2);
      _mm_storeu_ps(dst + p * 4 + 12, r3);
    }
    for (; p < k; ++p)
      for (int i = 0; i < 4; ++i) dst[p * 4 + i] = a[i * lda + p];
#endif
  } else {
    // Each row is contiguous in p. Walk p in the outer loop so the writes are contiguous (the rows
    // are mr sequential read streams); writing with a stride of mr floats per element cost ~12% of
    // a 1024^3 product.
    const float* src[32];
    for (int64_t i = 0; i < rows; ++i) src[i] = a + i * lda;
    if (rows == mr) {
      for (int64_t p = 0; p < k; ++p) {
        float* d = dst + p * mr;
        for (int i = 0; i < mr; ++i) d[i] = src[i][p];
      }
    } else {
      for (int64_t p = 0; p < k; ++p) {
        float* d = dst + p * mr;
        for (int64_t i = 0; i < rows; ++i) d[i] = src[i][p];
      }
    }
    for (int64_t i = rows; i < mr; ++i)
      for (int64_t p = 0; p < k; ++p) dst[p * mr + i] = 0.0f;
  }
}

namespace {

// Pack panels [u0, u1) of the row panels `rp` of the block op(A)[i0:i0+rp.rows, p0:p0+kc] into
// dst[start(u) * kc ...] as micro-panels [p][i] of the panel's width, zero-padded.
void pack_a(float* dst, const float* a, int64_t lda, bool trans, int64_t i0, const RowPanels& rp,
            int64_t u0, int64_t u1, int64_t p0, int64_t kc) {
  if (trans) {
    // A(i, p) = a[p*lda + i]: each p gives the block's rows contiguous in i. In bands of 16 source
    // rows, panel by panel: the band stays in L1 while each panel's rows are written contiguously
    // (going down all kc rows per panel read mr floats of every row; going row by row across all
    // panels wrote to every panel at once, streams in one L1 set, 14% slower on TN 256x256x4096).
    // A last panel with fewer rows than its width is copied element by element after.
    const int64_t last = u1 - 1, last_rows = rp.rows - rp.start(last);
    const int64_t full_end = last_rows >= rp.kernel(last).mr ? u1 : last;
    constexpr int64_t PB = 16;
    for (int64_t pb = 0; full_end > u0 && pb < kc; pb += PB) {
      const int64_t band = std::min<int64_t>(kc - pb, PB);
      for (int64_t u = u0; u < full_end; ++u) {
        const int w = rp.kernel(u).mr;
        const int64_t r = rp.start(u);
        copy_rows(dst + r * kc + pb * w, a + (p0 + pb) * lda + i0 + r, lda, band, w);
      }
    }
    if (full_end < u1) {
      const int w = rp.kernel(last).mr;
      const int64_t r = rp.start(last);
      float* d = dst + r * kc;
      const float* src = a + p0 * lda + i0 + r;
      for (int64_t p = 0; p < kc; ++p, src += lda) {
        int64_t i = 0;
        for (; i < last_rows; ++i) d[p * w + i] = src[i];
        for (; i < w; ++i) d[p * w + i] = 0.0f;
      }
    }
    return;
  }
  for (int64_t u = u0; u < u1; ++u) {
    const int w = rp.kernel(u).mr;
    const int64_t r = rp.start(u);
    pack_a_panel(dst + r * kc, a + (i0 + r) * lda + p0, lda, std::min<int64_t>(w, rp.rows - r), kc, w);
  }
}

// All of the block's panels.
void pack_a(float* dst, const float* a, int64_t lda, bool trans, int64_t i0, const RowPanels& rp,
            int64_t p0, int64_t kc) {
  pack_a(dst, a, lda, trans, i0, rp, 0, rp.count(), p0, kc);
}

// Pack op(B)[p0:p0+kc, j0 + panel range] into NR-column micro-panels: dst[panel][p][j].
// by_rows (untransposed B only): walk B in bands of 16 rows across all the panels instead of panel
// by panel down all kc rows. A/B, for the shared B block of a large product: 1 thread 1024^3 +1.8%,
// 2 threads +3%, 1536^3 +1.5%. The first form went row by row across the panels, writing to all of
// them at once with streams a panel apart (16 or 128 KiB: one L1 set), and was 7-9% slower than
// panel by panel for the few-rows path's private panels. In bands, each panel's rows are written
// contiguously while the band's reads stay in cache (8th session, tools/ab-addons.js): one thread,
// NN 64x1600x512 +27% (AVX-512) and +18% (AVX2), 64x512x1600 +5% / +7%, large products unchanged;
// the few-rows path on 2 threads (AVX-512, both load orders, 7/7 rounds) 64x1600x512 +5-13%,
// 64x512x1600 +2-11%, 128x2048x256 +1.4-6%, 128x256x2048 +5%.
void pack_b_panels(float* dst, const float* b, int64_t ldb, bool trans, int64_t p0, int64_t kc,
                   int64_t j0, int64_t nc, int nr, int64_t panel_begin, int64_t panel_end,
                   bool by_rows) {
  const bool fast = trans && simd_pack(8, nr), fast2 = trans && avx2_pack(6, nr);
  if (!trans && by_rows) {
    // B(p, j) = b[p*ldb + j]: contiguous in j. The reads stream along bands of B's rows instead of
    // striding down a panel's column band; a partial last panel is left to the loop below.
    const int64_t full_end = std::min<int64_t>(panel_end, std::max<int64_t>(panel_begin, nc / nr));
    if (full_end > panel_begin) {
      constexpr int64_t PB = 16;
      for (int64_t pb = 0; pb < kc; pb += PB) {
        const int64_t band = std::min<int64_t>(kc - pb, PB);
        for (int64_t panel = panel_begin; panel < full_end; ++panel)
          copy_rows(dst + panel * kc * nr + pb * nr, b + (p0 + pb) * ldb + j0 + panel * nr, ldb, band, nr);
      }
    }
    panel_begin = full_end;
  }
  for (int64_t panel = panel_begin; panel < panel_end; ++panel) {
    const int64_t jr = panel * nr;
    const int64_t cols = std::min<int64_t>(nr, nc - jr);
    float* d = dst + panel * kc * nr;
    if (fast) {
      pack_b32_trans_avx512(d, b + (j0 + jr) * ldb + p0, ldb, cols, kc);  // 16x16 transposes
    } else if (fast2) {
      pack_b16_trans_avx2(d, b + (j0 + jr) * ldb + p0, ldb, cols, kc);  // 8x8 transposes
    } else if (!trans) {
      // B(p, j) = b[p*ldb + j]: contiguous in j.
      for (int64_t p = 0; p < kc; ++p) {
        const float* src = b + (p0 + p) * ldb + j0 + jr;
        float* row = d + p * nr;
        int64_t j = 0;
        for (; j < cols; ++j) row[j] = src[j];
        for (; j < nr; ++j) row[j] = 0.0f;
      }
    } else {
      // B(p, j) = b[j*ldb + p]: each column j is contiguous in p. Blocks of 8 p: read 8 floats of
      // each column, write 8 contiguous rows of the panel (neither side strided element by element).
      const float* src[64];
      for (int64_t j = 0; j < cols; ++j) src[j] = b + (j0 + jr + j) * ldb + p0;
      int64_t p = 0;
      for (; p + 8 <= kc; p += 8) {
        float blk[8][64];
        for (int64_t j = 0; j < cols; ++j)
          for (int q = 0; q < 8; ++q) blk[q][j] = src[j][p + q];
        for (int q = 0; q < 8; ++q) {
          float* row = d + (p + q) * nr;
          int64_t j = 0;
          for (; j < cols; ++j) row[j] = blk[q][j];
          for (; j < nr; ++j) row[j] = 0.0f;
        }
      }
      for (; p < kc; ++p) {
        float* row = d + p * nr;
        int64_t j = 0;
        for (; j < cols; ++j) row[j] = src[j][p];
        for (; j < nr; ++j) row[j] = 0.0f;
      }
    }
  }
}

// C = beta * C over an m x n block (beta == 0 writes zeros without reading).
void scale_c(float* c, int64_t ldc, int64_t m, int64_t n, float beta) {
  for (int64_t i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    if (beta == 0.0f) std::memset(ci, 0, sizeof(float) * n);
    else if (beta != 1.0f) for (int64_t j = 0; j < n; ++j) ci[j] *= beta;
  }
}

// C[0:rows, 0:cols] = tile + beta * C: an edge tile, computed whole into `tile` (ld nr).
void store_edge_tile(float* c, int64_t ldc, const float* tile, int nr, int64_t rows, int64_t cols,
                     float beta) {
  for (int64_t i = 0; i < rows; ++i) {
    float* ci = c + i * ldc;
    const float* ti = tile + i * nr;
    if (beta == 0.0f) for (int64_t j = 0; j < cols; ++j) ci[j] = ti[j];
    else for (int64_t j = 0; j < cols; ++j) ci[j] = ti[j] + beta * ci[j];
  }
}

// Run the micro-kernels of one packed A block against a range of packed B panels.
void macro_kernel(const RowPanels& rp, int64_t kc, const float* apack, const float* bpack,
                  int64_t panel_begin, int64_t panel_end, int64_t nc, float* c, int64_t ldc,
                  float alpha, float beta) {
  const int nr = rp.uk.nr;
  const int64_t count = rp.count();
  alignas(64) float tile[16 * 64];  // mr * nr <= 1024 for every kernel we ship
  for (int64_t panel = panel_begin; panel < panel_end; ++panel) {
    const int64_t jr = panel * nr;
    const int64_t cols = std::min<int64_t>(nr, nc - jr);
    const float* bp = bpack + panel * kc * nr;
    for (int64_t u = 0; u < count; ++u) {
      const GemmUkernel& k = rp.kernel(u);
      const int64_t ir = rp.start(u), rows = std::min<int64_t>(k.mr, rp.rows - ir);
      const float* ap = apack + ir * kc;
      float* cij = c + ir * ldc + jr;
      if (rows == k.mr && cols == nr) {
        k.fn(kc, ap, bp, cij, ldc, alpha, beta);
      } else {
        k.fn(kc, ap, bp, tile, nr, alpha, 0.0f);
        store_edge_tile(cij, ldc, tile, nr, rows, cols, beta);
      }
    }
  }
}

// macro_kernel for `panels` full panels of an untransposed B read in place (b: row 0 of the KC
// step, the range's first column): each panel's first row tile runs uk.fn_pack_b, which packs the
// panel into bpack (kc x nr) as it computes; the panel's other row tiles read bpack. The panel then
// comes from L3 or memory once, its loads overlapped with the FMAs, instead of in a packing pass of
// its own that writes all of the thread's panels before the kernel reads them back. A/B (2 threads,
// AVX-512, tools/ab-addons.js, 15 rounds, against packing all the panels first): NN 64x1600x512
// +11.5% (15/15), 100x1000x300 +8%, 128x256x2048 +3.8%, 64x512x1600 +2.5%, 128x2048x256 +2.3%.
void macro_kernel_pack_b(const RowPanels& rp, int64_t kc, const float* apack, const float* b,
                         int64_t ldb, int64_t panels, float* bpack, float* c, int64_t ldc,
                         float alpha, float beta) {
  const int nr = rp.uk.nr;
  const int64_t count = rp.count();
  alignas(64) float tile[16 * 64];
  for (int64_t panel = 0; panel < panels; ++panel) {
    const float* bsrc = b + panel * nr;
    for (int64_t u = 0; u < count; ++u) {
      const GemmUkernel& k = rp.kernel(u);
      const int64_t ir = rp.start(u), rows = std::min<int64_t>(k.mr, rp.rows - ir);
      const float* ap = apack + ir * kc;
      float* cij = c + ir * ldc + panel * nr;
      float* out = rows == k.mr ? cij : tile;
      const int64_t ldo = rows == k.mr ? ldc : nr;
      const float beta_o = rows == k.mr ? beta : 0.0f;
      if (u == 0) k.fn_pack_b(kc, ap, bsrc, ldb, bpack, out, ldo, alpha, beta_o);
      else k.fn(kc, ap, bpack, out, ldo, alpha, beta_o);
      if (rows < k.mr) store_edge_tile(cij, ldc, tile, nr, rows, nr, beta);
    }
  }
}

tsm_status check_args(const char* op, int64_t m, int64_t n, int64_t k, bool ta, bool tb,
                      const float* a, int64_t lda, const float* b, int64_t ldb, const float* c,
                      int64_t ldc) {
  if (m < 0) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: m must be >= 0, got %lld", op, (long long)m);
  if (n < 0) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: n must be >= 0, got %lld", op, (long long)n);
  if (k < 0) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: k must be >= 0, got %lld", op, (long long)k);
  const int64_t a_cols = ta ? m : k, b_cols = tb ? k : n;
  if (lda < std::max<int64_t>(1, a_cols))
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: lda must be >= max(1, %lld), got %lld", op,
                (long long)a_cols, (long long)lda);
  if (ldb < std::max<int64_t>(1, b_cols))
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: ldb must be >= max(1, %lld), got %lld", op,
                (long long)b_cols, (long long)ldb);
  if (ldc < std::max<int64_t>(1, n))
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: ldc must be >= max(1, %lld), got %lld", op,
                (long long)n, (long long)ldc);
  if (m > 0 && n > 0 && !c) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: c is NULL", op);
  if (m > 0 && n > 0 && k > 0 && (!a || !b))
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, !a ? "a" : "b");
  return TSM_OK;
}

}  // namespace

tsm_status sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                 int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return TSM_OK;
  if (k == 0 || alpha == 0.0f) {
    scale_c(c, ldc, m, n, beta);
    return TSM_OK;
  }
  // Few rows (m <= 2 MC) pick the row tile that pads least (64 rows: 8 x 8 instead of 6 x 12).
  const GemmUkernel& uk0 = gemm_ukernel_for(active_simd());
  const GemmUkernel& uk = m <= 2 * uk0.mc ? gemm_ukernel_for_rows(active_simd(), m) : uk0;
  const int mr = uk.mr, nr = uk.nr;
  const int nthreads = num_threads();
  // Small products are not worth waking the other threads.
  const bool threaded = nthreads > 1 && double(m) * double(n) * double(k) >= 48.0 * 48.0 * 48.0;
  const int nt = threaded ? nthreads : 1;

  // Split m into blocks of at most MC rows, their count a multiple of the thread count, so that
  // every thread gets the same number of equal blocks.
  int64_t n_ic = ceil_div(m, uk.mc);
  n_ic = round_up(n_ic, nt);
  const int64_t mc = std::min<int64_t>(round_up(ceil_div(m, n_ic), mr), round_up(m, mr));
  n_ic = ceil_div(m, mc);
  const int64_t nc_max = std::min<int64_t>(uk.nc, round_up(n, nr));
  const int64_t kc_max = std::min<int64_t>(uk.kc, k);

  // Few rows (m <= 2 MC): split the columns instead, each thread packing its own panels of B, with
  // one barrier in all (after A is packed, together, into a shared buffer). The shared-B path below
  // needs two barriers per KC step and leaves a thread idle when m splits into unequal row blocks;
  // for shapes like 128x256x2048 (k/KC = 8 steps of ~40 us each) those cost more. Packing A once
  // instead of once per thread measured +10% on 128x256x2048 and +3.5-8% on the CNN's fc1 shapes
  // (2 threads; tools/ab-addons.js, 15 of 15 rounds).
  const int64_t total_panels = ceil_div(n, nr);
  if (nt > 1 && m <= 2 * uk.mc && total_panels >= 2 * nt && ceil_div(total_panels, nt) * nr <= uk.nc) {
    bool oom = false;
    // When all of A packed fits in a few MiB, the threads pack it once together (each a share of
    // the (KC step, row panel) pieces) into the calling thread's slot-1 buffer, and then only read
    // it; otherwise each thread packs all of A for itself, KC step by KC step.
    const int64_t mpad = round_up(m, mr);
    const RowPanels rp(uk, m);
    const bool shared_a = mpad * k <= (int64_t(1) << 20);
    float* ashared = shared_a ? scratch(1, static_cast<size_t>(mpad * k)) : nullptr;
    if (shared_a) {
      if (!ashared) return fail(TSM_ERR_OUT_OF_MEMORY, "sgemm: cannot allocate the packing buffer");
      const int64_t steps = ceil_div(k, kc_max), mpanels = rp.count(), pieces = steps * mpanels;
      const int64_t nparts = std::min<int64_t>(nt, pieces);
      parallel_for(nparts, [&](int64_t t) {
        // The thread's pieces, each run of row panels of one KC step in one call.
        const int64_t u1 = pieces * (t + 1) / nparts;
        for (int64_t u = pieces * t / nparts; u < u1;) {
          const int64_t step = u / mpanels, panel = u % mpanels;
          const int64_t panels = std::min<int64_t>(mpanels - panel, u1 - u);
          const int64_t pc = step * kc_max, kc = std::min<int64_t>(kc_max, k - pc);
          pack_a(ashared + mpad * pc, a, lda, ta, 0, rp, panel, panel + panels, pc, kc);
          u += panels;
        }
      });
    }
    // Each thread's panels of an untransposed B are packed by the kernel itself, panel by panel
    // (macro_kernel_pack_b). The others (a transposed B, a partial last panel, an ISA without
    // fn_pack_b) are packed in groups of at most GROUP_BYTES, each group computed while it is in L2:
    // packing all of a thread's panels first (1.6 MiB for NT 64x512x1600) measured 1-2% slower on
    // the NT layer shapes (AVX-512, 11 rounds; AVX2 within 0.5%).
    const bool in_kernel = !tb && uk.fn_pack_b != nullptr;
    constexpr int64_t GROUP_BYTES = 256 * 1024;
    parallel_for(nt, [&](int64_t t) {
      const int64_t p0 = total_panels * t / nt, p1 = total_panels * (t + 1) / nt;
      const int64_t j0 = p0 * nr, ncols = std::min<int64_t>(n, p1 * nr) - j0;
      // The thread's panels wholly inside B (all but a partial last one) are packed by the kernel.
      const int64_t full = in_kernel ? std::min<int64_t>(p1 - p0, ncols / nr) : 0;
      // Slots 0 and 1 are the GEMM's own (see runtime.h): callers such as conv2d and attention hold
      // buffers in slots 2 and 3 while they call sgemm.
      const int64_t group = std::max<int64_t>(1, GROUP_BYTES / (sizeof(float) * kc_max * nr));
      // With the kernel packing, the buffer holds its current panel, or the partial last one.
      const int64_t buf_panels = in_kernel ? 1 : std::min<int64_t>(p1 - p0, group);
      float* bpriv = scratch(0, static_cast<size_t>(kc_max) * buf_panels * nr);
      float* apack = shared_a ? nullptr : scratch(1, static_cast<size_t>(mpad) * kc_max);
      if (!bpriv || (!shared_a && !apack)) { oom = true; return; }
      for (int64_t pc = 0; pc < k; pc += kc_max) {
        const int64_t kc = std::min<int64_t>(kc_max, k - pc);
        const float beta_eff = pc == 0 ? beta : 1.0f;
        const float* ap = apack;
        if (shared_a) ap = ashared + mpad * pc;
        else pack_a(apack, a, lda, ta, 0, rp, pc, kc);
        if (full > 0)
          macro_kernel_pack_b(rp, kc, ap, b + pc * ldb + j0, ldb, full, bpriv, c + j0, ldc, alpha,
                              beta_eff);
        for (int64_t g0 = full; g0 < p1 - p0; g0 += group) {
          const int64_t panels = std::min<int64_t>(group, p1 - p0 - g0);
          const int64_t jg = j0 + g0 * nr, cols = ncols - g0 * nr;
          pack_b_panels(bpriv, b, ldb, tb, pc, kc, jg, cols, nr, 0, panels, true);
          macro_kernel(rp, kc, ap, bpriv, 0, panels, cols, c + jg, ldc, alpha, beta_eff);
        }
      }
    });
    if (oom) return fail(TSM_ERR_OUT_OF_MEMORY, "sgemm: cannot allocate the packing buffer");
    return TSM_OK;
  }

  float* bpack = scratch(0, static_cast<size_t>(kc_max) * nc_max);
  if (!bpack) return fail(TSM_ERR_OUT_OF_MEMORY, "sgemm: cannot allocate the packing buffer");

  for (int64_t jc = 0; jc < n; jc += nc_max) {
    const int64_t nc = std::min<int64_t>(nc_max, n - jc);
    const int64_t n_panels = ceil_div(nc, nr);
    // When m gives fewer row blocks than threads, split the panels of B among them too.
    const int64_t nsplit = n_ic >= nt ? 1 : std::min<int64_t>(nt, n_panels);
    for (int64_t pc = 0; pc < k; pc += kc_max) {
      const int64_t kc = std::min<int64_t>(kc_max, k - pc);
      const float beta_eff = pc == 0 ? beta : 1.0f;
      // Pack the B block, its panels spread over the threads.
      const int64_t pack_tasks = std::min<int64_t>(nt, n_panels);
      parallel_for(pack_tasks, [&](int64_t t) {
        pack_b_panels(bpack, b, ldb, tb, pc, kc, jc, nc, nr, n_panels * t / pack_tasks,
                      n_panels * (t + 1) / pack_tasks, true);
      });
      bool oom = false;
      if (nsplit == 1 && nt > 1) {
        // Each thread takes an equal share of the rows (a multiple of MR), cut into blocks of at
        // most MC: equal blocks handed out in turn left one thread up to a block's worth of rows
        // short (2048 rows: 15 blocks of 132 and one of 68).
        parallel_for(nt, [&](int64_t t) {
          const int64_t r0 = std::min(m, round_up(m * t / nt, mr));
          const int64_t r1 = t + 1 == nt ? m : std::min(m, round_up(m * (t + 1) / nt, mr));
          if (r0 >= r1) return;
          const int64_t nb = ceil_div(r1 - r0, uk.mc);
          const int64_t mct = round_up(ceil_div(r1 - r0, nb), mr);
          float* apack = scratch(1, static_cast<size_t>(mct) * kc);
          if (!apack) { oom = true; return; }
          for (int64_t ic = r0; ic < r1; ic += mct) {
            const int64_t rows = std::min<int64_t>(mct, r1 - ic);
            const RowPanels rpb(uk, rows);
            pack_a(apack, a, lda, ta, ic, rpb, pc, kc);
            macro_kernel(rpb, kc, apack, bpack, 0, n_panels, nc, c + ic * ldc + jc, ldc, alpha,
                         beta_eff);
          }
        });
      } else {
        parallel_for(n_ic * nsplit, [&](int64_t task) {
          const int64_t ib = task / nsplit, part = task % nsplit;
          const int64_t ic = ib * mc;
          const int64_t rows = std::min<int64_t>(mc, m - ic);
          float* apack = scratch(1, static_cast<size_t>(round_up(rows, mr)) * kc);
          if (!apack) { oom = true; return; }
          const RowPanels rpb(uk, rows);
          pack_a(apack, a, lda, ta, ic, rpb, pc, kc);
          macro_kernel(rpb, kc, apack, bpack, n_panels * part / nsplit,
                       n_panels * (part + 1) / nsplit, nc, c + ic * ldc + jc, ldc, alpha, beta_eff);
        });
      }
      if (oom) return fail(TSM_ERR_OUT_OF_MEMORY, "sgemm: cannot allocate the packing buffer");
    }
  }
  return TSM_OK;
}

}  // namespace tsm

extern "C" {

TSM_API tsm_status tsm_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                             const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                             float* c, int64_t ldc) {
  tsm_status s = tsm::check_args("sgemm", m, n, k, trans_a, trans_b, a, lda, b, ldb, c, ldc);
  if (s != TSM_OK) return s;
  return tsm::sgemm(trans_a != 0, trans_b != 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

TSM_API tsm_status tsm_sgemm_strided_batched(int trans_a, int trans_b, int64_t batch, int64_t m,
                                             int64_t n, int64_t k, float alpha, const float* a,
                                             int64_t lda, int64_t stride_a, const float* b,
                                             int64_t ldb, int64_t stride_b, float beta, float* c,
                                             int64_t ldc, int64_t stride_c) {
  if (batch < 0)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "sgemm_strided_batched: batch must be >= 0, got %lld",
                     (long long)batch);
  if (stride_a < 0 || stride_b < 0 || stride_c < 0 || (batch > 1 && m > 0 && n > 0 && stride_c == 0))
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT,
                     "sgemm_strided_batched: strides must be >= 0 and stride_c > 0 for batch > 1");
  // With an empty batch nothing is read or written, so a, b and c may be NULL (sizes still checked).
  tsm_status s = tsm::check_args("sgemm_strided_batched", batch == 0 ? 0 : m, batch == 0 ? 0 : n,
                                 batch == 0 ? 0 : k, trans_a, trans_b, a, lda, b, ldb, c, ldc);
  if (s != TSM_OK || batch == 0) return s;
  for (int64_t i = 0; i < batch; ++i) {
    s = tsm::sgemm(trans_a != 0, trans_b != 0, m, n, k, alpha, a ? a + i * stride_a : a, lda,
                   b ? b + i * stride_b : b, ldb, beta, c + i * stride_c, ldc);
    if (s != TSM_OK) return s;
  }
  return TSM_OK;
}

TSM_API tsm_status tsm_sgemm_reference(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                                       float alpha, const float* a, int64_t lda, const float* b,
                                       int64_t ldb, float beta, float* c, int64_t ldc) {
  tsm_status s =
      tsm::check_args("sgemm_reference", m, n, k, trans_a, trans_b, a, lda, b, ldb, c, ldc);
  if (s != TSM_OK) return s;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0.0;
      for (int64_t p = 0; p < k; ++p) {
        const double av = trans_a ? a[p * lda + i] : a[i * lda + p];
        const double bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
        acc += av * bv;
      }
      float& cij = c[i * ldc + j];
      const double prior = beta == 0.0f ? 0.0 : double(beta) * cij;
      cij = static_cast<float>(double(alpha) * acc + prior);
    }
  }
  return TSM_OK;
}

}  // extern "C"
