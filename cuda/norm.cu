// LayerNorm and BatchNorm of CUDA tensors, float32, forward and backward (the CPU twins:
// cpp/kernels/layer_norm.cpp, cpp/kernels/batch_norm.cpp; same formulas, same elementwise float
// expressions with explicit round-to-nearest intrinsics so that no FMA is contracted in).
//
// LayerNorm   x, y, dy, dx (rows, cols); mean, rstd (rows); w, b, dw, db (cols) or NULL
//   forward   mean = sum(x) / cols, var = sum((x - mean)^2) / cols (two passes over the row, float32
//             sums), rstd = 1 / sqrt(var + eps), y = (x - mean) * rstd * w + b
//             a warp per row for cols <= 1024 (8 rows per 256-thread block), a 256-thread block per
//             row above
//   backward  dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w: as the forward;
//             dw = sum_rows(dy * xhat), db = sum_rows(dy): pass 1 gives per-chunk column partials
//             (a 256-thread block = 32 columns x 8 row lanes over a chunk of rows, the 8 lanes summed
//             in order through shared memory), pass 2 sums the chunks in order per column. The chunk
//             count depends on the shape only: deterministic, no atomics.
// BatchNorm   x, y, dy, dx (n, c, hw); save_mean, save_invstd, running_*, w, b, dw, db (c)
//   forward   a 256-thread block per channel: batch mean and biased variance (two passes, float32),
//             running stats updated in double as the CPU (unbiased variance), then y = x * scale +
//             shift; eval uses the running stats. num_batches_tracked (int32, optional) += 1 when
//             training, by one thread.
//   backward  a block per channel: sum(dy), sum(dy * xhat) -> db, dw, then dx.
// Sums are float32 trees where the CPU sums in double: agreement to rounding, not bit for bit.
#include <climits>

#include "norm_common.cuh"

namespace tsm {
namespace cuda {
namespace norm {

constexpr int kRowWarpMaxCols = 1024;  // longer rows get a block each
constexpr int kBlock = 256;
constexpr int kColTile = 32, kRowLanes = kBlock / kColTile;  // column-reduction block: 32 x 8
constexpr int64_t kTargetBlocks = 512;                       // column-reduction pass-1 blocks wanted

#if defined(__CUDACC__) || defined(TSM_NORM_EMULATE)

// One row group: a warp (kWarp) or the whole block. Loops are uniform over the group.
template <bool kWarp>
__device__ __forceinline__ float group_sum(float v, float* smem) {
  if (kWarp) return nsum_warp(v);
  return nsum_block(v, smem);
}

template <bool kWarp>
__global__ void __launch_bounds__(kBlock) ln_forward_kernel(float* __restrict__ y, float* __restrict__ mean,
                                                            float* __restrict__ rstd, const float* __restrict__ x,
                                                            const float* __restrict__ w, const float* __restrict__ b,
                                                            int64_t rows, int64_t cols, float eps) {
  TSM_NORM_SMEM(float, smem);
  const int64_t per_block = kWarp ? int64_t(blockDim.x) / 32 : 1;
  const int64_t first = kWarp ? int64_t(threadIdx.x) & 31 : int64_t(threadIdx.x);
  const int64_t step = kWarp ? 32 : int64_t(blockDim.x);
  const int64_t r0 = int64_t(blockIdx.x) * per_block + (kWarp ? int64_t(threadIdx.x) / 32 : 0);
  for (int64_t r = r0; r < rows; r += int64_t(gridDim.x) * per_block) {
    const float* xr = x + r * cols;
    float s = 0.f;
    for (int64_t j = first; j < cols; j += step) s += xr[j];
    s = group_sum<kWarp>(s, smem);
    const float m = cols > 0 ? s / float(cols) : 0.f;
    float q = 0.f;
    for (int64_t j = first; j < cols; j += step) {
      const float d = xr[j] - m;
      q += d * d;
    }
    q = group_sum<kWarp>(q, smem);
    const float var = cols > 0 ? q / float(cols) : 0.f;
    const float rs = 1.f / sqrtf(var + eps);
    if (first == 0) {
      mean[r] = m;
      rstd[r] = rs;
    }
    float* yr = y + r * cols;
    for (int64_t j = first; j < cols; j += step) {
      float v = __fmul_rn(__fsub_rn(xr[j], m), rs);
      if (w) v = __fmul_rn(v, w[j]);
      if (b) v = __fadd_rn(v, b[j]);
      yr[j] = v;
    }
  }
}

template <bool kWarp>
__global__ void __launch_bounds__(kBlock) ln_backward_dx_kernel(float* __restrict__ dx, const float* __restrict__ dy,
                                                                const float* __restrict__ x,
                                                                const float* __restrict__ mean,
                                                                const float* __restrict__ rstd,
                                                                const float* __restrict__ w, int64_t rows,
                                                                int64_t cols) {
  TSM_NORM_SMEM(float, smem);
  const int64_t per_block = kWarp ? int64_t(blockDim.x) / 32 : 1;
  const int64_t first = kWarp ? int64_t(threadIdx.x) & 31 : int64_t(threadIdx.x);
  const int64_t step = kWarp ? 32 : int64_t(blockDim.x);
  const int64_t r0 = int64_t(blockIdx.x) * per_block + (kWarp ? int64_t(threadIdx.x) / 32 : 0);
  for (int64_t r = r0; r < rows; r += int64_t(gridDim.x) * per_block) {
    const float* xr = x + r * cols;
    const float* gr = dy + r * cols;
    const float m = mean[r], rs = rstd[r];
    float sg = 0.f, sgx = 0.f;
    for (int64_t j = first; j < cols; j += step) {
      const float g = w ? __fmul_rn(gr[j], w[j]) : gr[j];
      const float xh = __fmul_rn(__fsub_rn(xr[j], m), rs);
      sg += g;
      sgx += g * xh;
    }
    sg = group_sum<kWarp>(sg, smem);
    sgx = group_sum<kWarp>(sgx, smem);
    const float a = sg / float(cols), c = sgx / float(cols);
    float* dr = dx + r * cols;
    for (int64_t j = first; j < cols; j += step) {
      const float g = w ? __fmul_rn(gr[j], w[j]) : gr[j];
      const float xh = __fmul_rn(__fsub_rn(xr[j], m), rs);
      dr[j] = __fmul_rn(rs, __fsub_rn(__fsub_rn(g, a), __fmul_rn(xh, c)));
    }
  }
}

// Pass 1 of dw/db: block (tile, chunk) = blockIdx.x % tiles, blockIdx.x / tiles. Thread (lane, rl):
// column tile*32 + lane, rows chunk_start + rl, + 8, ... The 8 row lanes are summed in order.
// With one chunk the sums go straight to dw/db, otherwise to part_w/part_b [chunks][cols].
__global__ void __launch_bounds__(kBlock) ln_backward_cols_kernel(float* __restrict__ out_w, float* __restrict__ out_b,
                                                                  const float* __restrict__ dy,
                                                                  const float* __restrict__ x,
                                                                  const float* __restrict__ mean,
                                                                  const float* __restrict__ rstd, int64_t rows,
                                                                  int64_t cols, int64_t tiles, int64_t chunk_rows) {
  TSM_NORM_SMEM(float, smem);  // [2][kRowLanes][kColTile]
  const int lane = int(threadIdx.x) % kColTile, rl = int(threadIdx.x) / kColTile;
  const int64_t tile = int64_t(blockIdx.x) % tiles, chunk = int64_t(blockIdx.x) / tiles;
  const int64_t j = tile * kColTile + lane;
  const int64_t r_begin = chunk * chunk_rows;
  const int64_t r_end = r_begin + chunk_rows < rows ? r_begin + chunk_rows : rows;
  float sw = 0.f, sb = 0.f;
  if (j < cols) {
    for (int64_t r = r_begin + rl; r < r_end; r += kRowLanes) {
      const float g = dy[r * cols + j];
      const float xh = __fmul_rn(__fsub_rn(x[r * cols + j], mean[r]), rstd[r]);
      sw += g * xh;
      sb += g;
    }
  }
  smem[rl * kColTile + lane] = sw;
  smem[(kRowLanes + rl) * kColTile + lane] = sb;
  __syncthreads();
  if (rl == 0 && j < cols) {
    float tw = 0.f, tb = 0.f;
    for (int k = 0; k < kRowLanes; ++k) {
      tw += smem[k * kColTile + lane];
      tb += smem[(kRowLanes + k) * kColTile + lane];
    }
    if (out_w) out_w[chunk * cols + j] = tw;
    if (out_b) out_b[chunk * cols + j] = tb;
  }
}

// Pass 2: dw[j] = sum over chunks in order of part_w[chunk][j] (db likewise).
__global__ void __launch_bounds__(kBlock) ln_sum_chunks_kernel(float* __restrict__ dw, float* __restrict__ db,
                                                               const float* __restrict__ part_w,
                                                               const float* __restrict__ part_b, int64_t chunks,
                                                               int64_t cols) {
  for (int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; j < cols; j += int64_t(gridDim.x) * blockDim.x) {
    float tw = 0.f, tb = 0.f;
    for (int64_t k = 0; k < chunks; ++k) {
      tw += part_w[k * cols + j];
      tb += part_b[k * cols + j];
    }
    if (dw) dw[j] = tw;
    if (db) db[j] = tb;
  }
}

// Sum over the channel's n * hw values of f(value index e, flat offset); every thread of the block.
__device__ __forceinline__ int64_t bn_offset(int64_t e, int64_t ch, int64_t c, int64_t hw) {
  const int64_t i = e / hw;
  return (i * c + ch) * hw + (e - i * hw);
}

__global__ void __launch_bounds__(kBlock) bn_forward_kernel(float* __restrict__ y, float* __restrict__ save_mean,
                                                            float* __restrict__ save_invstd,
                                                            float* __restrict__ running_mean,
                                                            float* __restrict__ running_var,
                                                            const float* __restrict__ x, const float* __restrict__ w,
                                                            const float* __restrict__ b, int64_t n, int64_t c,
                                                            int64_t hw, int training, float momentum, float eps,
                                                            int32_t* __restrict__ num_batches_tracked) {
  TSM_NORM_SMEM(float, smem);
  const int64_t count = n * hw;
  if (training && num_batches_tracked && blockIdx.x == 0 && threadIdx.x == 0) *num_batches_tracked += 1;
  for (int64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
    float m, inv;
    if (training) {
      float s = 0.f;
      for (int64_t e = threadIdx.x; e < count; e += blockDim.x) s += x[bn_offset(e, ch, c, hw)];
      s = nsum_block(s, smem);
      m = s / float(count);
      float q = 0.f;
      for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
        const float d = x[bn_offset(e, ch, c, hw)] - m;
        q += d * d;
      }
      q = nsum_block(q, smem);
      inv = float(1.0 / sqrt(double(q) / double(count) + double(eps)));
      if (threadIdx.x == 0 && running_mean) {
        const double mo = momentum;
        running_mean[ch] = float((1.0 - mo) * double(running_mean[ch]) + mo * double(m));
        running_var[ch] = float((1.0 - mo) * double(running_var[ch]) + mo * (double(q) / double(count - 1)));
      }
    } else {
      m = running_mean[ch];
      inv = float(1.0 / sqrt(double(running_var[ch]) + double(eps)));
    }
    if (threadIdx.x == 0) {
      save_mean[ch] = m;
      save_invstd[ch] = inv;
    }
    const float scale = __fmul_rn(inv, w ? w[ch] : 1.f);
    const float shift = __fsub_rn(b ? b[ch] : 0.f, __fmul_rn(m, scale));
    for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
      const int64_t o = bn_offset(e, ch, c, hw);
      y[o] = __fadd_rn(__fmul_rn(x[o], scale), shift);
    }
  }
}

__global__ void __launch_bounds__(kBlock) bn_backward_kernel(float* __restrict__ dx, float* __restrict__ dw,
                                                             float* __restrict__ db, const float* __restrict__ dy,
                                                             const float* __restrict__ x,
                                                             const float* __restrict__ save_mean,
                                                             const float* __restrict__ save_invstd,
                                                             const float* __restrict__ w, int64_t n, int64_t c,
                                                             int64_t hw, int training) {
  TSM_NORM_SMEM(float, smem);
  const int64_t count = n * hw;
  for (int64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
    const float m = save_mean[ch], inv = save_invstd[ch];
    float sdy = 0.f, sdyx = 0.f;
    for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
      const int64_t o = bn_offset(e, ch, c, hw);
      const float g = dy[o];
      sdy += g;
      sdyx += g * __fmul_rn(__fsub_rn(x[o], m), inv);
    }
    sdy = nsum_block(sdy, smem);
    sdyx = nsum_block(sdyx, smem);
    if (threadIdx.x == 0) {
      if (db) db[ch] = sdy;
      if (dw) dw[ch] = sdyx;
    }
    if (!dx) continue;
    const float k1 = __fmul_rn(w ? w[ch] : 1.f, inv);
    const float mdy = sdy / float(count), mdyx = sdyx / float(count);
    for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
      const int64_t o = bn_offset(e, ch, c, hw);
      if (training) {
        const float xh = __fmul_rn(__fsub_rn(x[o], m), inv);
        dx[o] = __fmul_rn(k1, __fsub_rn(__fsub_rn(dy[o], mdy), __fmul_rn(xh, mdyx)));
      } else {
        dx[o] = __fmul_rn(dy[o], k1);
      }
    }
  }
}

#endif  // __CUDACC__ || TSM_NORM_EMULATE


// Chunks of rows for the column reduction of the layer-norm backward (a function of the shape only).
inline int64_t ln_chunks(int64_t rows, int64_t cols) {
  const int64_t tiles = ceil_div(cols, kColTile);
  int64_t chunks = ceil_div(kTargetBlocks, tiles);
  const int64_t by_rows = ceil_div(rows, 4 * kRowLanes);  // at least 4 rows per row lane
  if (chunks > by_rows) chunks = by_rows;
  return chunks < 1 ? 1 : chunks;
}

}  // namespace norm
}  // namespace cuda
}  // namespace tsm

using namespace tsm::cuda;
using namespace tsm::cuda::norm;

extern "C" {

TSM_API tsm_status tsm_cuda_layer_norm_forward(float* y, float* mean, float* rstd, const float* x, const float* w,
                                               const float* b, int64_t rows, int64_t cols, float eps) {
  const char* op = "cuda_layer_norm_forward";
  if (rows < 0 || cols < 0)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: rows and cols must be >= 0, got %lld, %lld", op, (long long)rows,
                     (long long)cols);
  if (!(eps >= 0.0f)) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: eps must be >= 0", op);
  if (rows == 0) return TSM_OK;
  if (!mean || !rstd) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, !mean ? "mean" : "rstd");
  if (cols > 0 && (!y || !x)) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, !y ? "y" : "x");
  cudaStream_t st = stream(op);
  if (!st) return TSM_ERR_CUDA;
  const size_t smem = 32 * sizeof(float);
  if (cols <= kRowWarpMaxCols)
    TSM_NORM_LAUNCH(ln_forward_kernel<true>, grid_for(rows, kBlock / 32), kBlock, smem, st, y, mean, rstd, x, w, b,
                    rows, cols, eps);
  else
    TSM_NORM_LAUNCH(ln_forward_kernel<false>, grid_for(rows, 1), kBlock, smem, st, y, mean, rstd, x, w, b, rows, cols,
                    eps);
  return check_launch(op);
}

TSM_API tsm_status tsm_cuda_layer_norm_backward(float* dx, float* dw, float* db, const float* dy, const float* x,
                                                const float* mean, const float* rstd, const float* w, int64_t rows,
                                                int64_t cols) {
  const char* op = "cuda_layer_norm_backward";
  if (rows < 0 || cols < 0)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: rows and cols must be >= 0, got %lld, %lld", op, (long long)rows,
                     (long long)cols);
  if (cols == 0) return TSM_OK;
  if (rows > 0 && (!dy || !x || !mean || !rstd))
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: dy, x, mean and rstd must not be NULL", op);
  if (!dx && !dw && !db) return TSM_OK;
  cudaStream_t st = stream(op);
  if (!st) return TSM_ERR_CUDA;
  const size_t smem = 32 * sizeof(float);
  if (dx && rows > 0) {
    if (cols <= kRowWarpMaxCols)
      TSM_NORM_LAUNCH(ln_backward_dx_kernel<true>, grid_for(rows, kBlock / 32), kBlock, smem, st, dx, dy, x, mean, rstd,
                      w, rows, cols);
    else
      TSM_NORM_LAUNCH(ln_backward_dx_kernel<false>, grid_for(rows, 1), kBlock, smem, st, dx, dy, x, mean, rstd, w, rows,
                      cols);
    if (tsm_status s = check_launch(op)) return s;
  }
  if (!dw && !db) return TSM_OK;
  const int64_t tiles = ceil_div(cols, kColTile);
  const int64_t chunks = ln_chunks(rows, cols);
  const int64_t chunk_rows = rows > 0 ? ceil_div(rows, chunks) : 1;
  const size_t csmem = 2 * kBlock * sizeof(float);
  if (tiles * chunks > INT_MAX) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: cols = %lld is too large", op, (long long)cols);
  if (chunks == 1) {
    TSM_NORM_LAUNCH(ln_backward_cols_kernel, unsigned(tiles), kBlock, csmem, st, dw, db, dy, x, mean, rstd, rows, cols,
                    tiles, chunk_rows);
    return check_launch(op);
  }
  Scratch part(op);
  if (tsm_status s = part.alloc(2 * chunks * cols)) return s;
  float* pw = part.p;
  float* pb = part.p + chunks * cols;
  TSM_NORM_LAUNCH(ln_backward_cols_kernel, unsigned(tiles * chunks), kBlock, csmem, st, pw, pb, dy, x, mean, rstd, rows,
                  cols, tiles, chunk_rows);
  if (tsm_status s = check_launch(op)) return s;
  TSM_NORM_LAUNCH(ln_sum_chunks_kernel, grid_for(cols), kBlock, 0, st, dw, db, pw, pb, chunks, cols);
  return check_launch(op);
}

TSM_API tsm_status tsm_cuda_batch_norm_forward(float* y, float* save_mean, float* save_invstd, float* running_mean,
                                               float* running_var, const float* x, const float* w, const float* b,
                                               int64_t n, int64_t c, int64_t hw, int training, float momentum,
                                               float eps, int32_t* num_batches_tracked) {
  const char* op = "cuda_batch_norm_forward";
  if (n < 0 || c < 0 || hw < 0)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: n, c and hw must be >= 0, got %lld, %lld, %lld", op, (long long)n,
                     (long long)c, (long long)hw);
  if (!(eps >= 0.0f)) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: eps must be >= 0", op);
  const int64_t count = n * hw;
  if (c > 0 && (!save_mean || !save_invstd))
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: save_mean and save_invstd must not be NULL", op);
  if ((running_mean == nullptr) != (running_var == nullptr))
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: running_mean and running_var must be both given or both NULL", op);
  if (training && c > 0 && count <= 1)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: training needs more than 1 value per channel, got n * hw = %lld", op,
                     (long long)count);
  if (!training && c > 0 && !running_mean)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: eval mode needs running_mean and running_var", op);
  if (count > 0 && c > 0 && (!x || !y)) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: x and y must not be NULL", op);
  if (c == 0 && !(training && num_batches_tracked)) return TSM_OK;
  cudaStream_t st = stream(op);
  if (!st) return TSM_ERR_CUDA;
  TSM_NORM_LAUNCH(bn_forward_kernel, grid_for(c, 1), kBlock, 32 * sizeof(float), st, y, save_mean, save_invstd,
                  running_mean, running_var, x, w, b, n, c, hw, training, momentum, eps, num_batches_tracked);
  return check_launch(op);
}

TSM_API tsm_status tsm_cuda_batch_norm_backward(float* dx, float* dw, float* db, const float* dy, const float* x,
                                                const float* save_mean, const float* save_invstd, const float* w,
                                                int64_t n, int64_t c, int64_t hw, int training) {
  const char* op = "cuda_batch_norm_backward";
  if (n < 0 || c < 0 || hw < 0)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: n, c and hw must be >= 0, got %lld, %lld, %lld", op, (long long)n,
                     (long long)c, (long long)hw);
  if (c == 0) return TSM_OK;
  if (!save_mean || !save_invstd)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: save_mean and save_invstd must not be NULL", op);
  if (n * hw > 0 && (!dy || !x)) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: dy and x must not be NULL", op);
  if (!dx && !dw && !db) return TSM_OK;
  cudaStream_t st = stream(op);
  if (!st) return TSM_ERR_CUDA;
  TSM_NORM_LAUNCH(bn_backward_kernel, grid_for(c, 1), kBlock, 32 * sizeof(float), st, dx, dw, db, dy, x, save_mean,
                  save_invstd, w, n, c, hw, training);
  return check_launch(op);
}

}  // extern "C"
