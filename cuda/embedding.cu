// Embedding lookup of CUDA tensors, forward and backward (the CPU twin: cpp/kernels/embedding.cpp).
//
//   weight, dweight (num, dim); indices (n) int32 on the device; y, dy (n, dim)
//
// Forward: a thread per element of y, y[i, k] = weight[indices[i], k]; an index outside [0, num)
// gives a NaN row (device indices are not range-checked: that needs a synchronisation; as
// cross_entropy.cu's targets).
//
// Backward, without float atomics and with the CPU's sums bit for bit:
//   1. keys[i] = indices[i] (num for an out-of-range index: sorted past every row, never summed),
//      vals[i] = i;
//   2. a stable LSD radix sort of (key, val) by key, 8 bits per pass, as many passes as num needs
//      (2 for a vocabulary below 65536). Each pass: every thread owns a tile of kTile consecutive
//      elements and counts its digits into its own column of a [256][tiles] table (no atomics);
//      one block scans the table in digit-major order (exclusive); every thread then scatters its
//      tile in order to the scanned offsets. Stable, so the positions of each row stay ascending;
//   3. row_start/row_end of every row from the sorted keys (a thread per sorted position);
//   4. a thread per element of dweight sums dy[pos, k] over its row's positions in ascending order,
//      starting from 0.0f: the CPU kernel's counting-sort order and float additions exactly.
//      padding_idx rows (and rows no index names) are 0.
// Cost: one hot row (e.g. a padding token used everywhere) is summed by dim threads serially over
// its positions; splitting it would change the summation order (and the bit-for-bit equality).
// Scratch: 4n ints (keys/vals, double-buffered) + 256 * tiles + 2 * num ints.
#include <climits>

#include "norm_common.cuh"

namespace tsm {
namespace cuda {
namespace norm {

constexpr int kEmbBlock = 256;
constexpr int64_t kTile = 128;  // elements per thread in the radix passes
constexpr int kRadix = 256;

#if defined(__CUDACC__) || defined(TSM_NORM_EMULATE)

__global__ void __launch_bounds__(kEmbBlock) emb_forward_kernel(float* __restrict__ y,
                                                                const int32_t* __restrict__ indices,
                                                                const float* __restrict__ weight, int64_t n,
                                                                int64_t num, int64_t dim) {
  const int64_t total = n * dim;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = e / dim, k = e - i * dim;
    const int64_t r = indices[i];
    y[e] = (r >= 0 && r < num) ? weight[r * dim + k] : NAN;
  }
}

__global__ void __launch_bounds__(kEmbBlock) emb_keys_kernel(uint32_t* __restrict__ keys, int32_t* __restrict__ vals,
                                                             const int32_t* __restrict__ indices, int64_t n,
                                                             int64_t num) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = indices[i];
    keys[i] = (r >= 0 && r < num) ? uint32_t(r) : uint32_t(num);
    vals[i] = int32_t(i);
  }
}

// hist[d * tiles + t] = number of elements of tile t whose digit is d.
__global__ void __launch_bounds__(kEmbBlock) radix_hist_kernel(int32_t* __restrict__ hist,
                                                               const uint32_t* __restrict__ keys, int64_t n,
                                                               int64_t tiles, int shift) {
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < tiles; t += int64_t(gridDim.x) * blockDim.x) {
    for (int d = 0; d < kRadix; ++d) hist[d * tiles + t] = 0;
    const int64_t e1 = (t + 1) * kTile < n ? (t + 1) * kTile : n;
    for (int64_t e = t * kTile; e < e1; ++e) hist[int64_t((keys[e] >> shift) & (kRadix - 1)) * tiles + t] += 1;
  }
}

// In-place exclusive scan of a[0, len) by one block: each thread scans a contiguous slice.
__global__ void __launch_bounds__(kEmbBlock) scan_kernel(int32_t* __restrict__ a, int64_t len) {
  TSM_NORM_SMEM(int32_t, sums);  // [blockDim.x]
  const int64_t t = threadIdx.x, nt = blockDim.x;
  const int64_t b0 = len * t / nt, b1 = len * (t + 1) / nt;
  int32_t s = 0;
  for (int64_t i = b0; i < b1; ++i) s += a[i];
  sums[t] = s;
  __syncthreads();
  if (t == 0) {
    int32_t run = 0;
    for (int64_t k = 0; k < nt; ++k) {
      const int32_t v = sums[k];
      sums[k] = run;
      run += v;
    }
  }
  __syncthreads();
  int32_t run = sums[t];
  for (int64_t i = b0; i < b1; ++i) {
    const int32_t v = a[i];
    a[i] = run;
    run += v;
  }
}

// Each thread moves its tile, in order, to the scanned offsets of its digits (stable).
__global__ void __launch_bounds__(kEmbBlock) radix_scatter_kernel(uint32_t* __restrict__ keys_out,
                                                                  int32_t* __restrict__ vals_out,
                                                                  int32_t* __restrict__ offsets,
                                                                  const uint32_t* __restrict__ keys,
                                                                  const int32_t* __restrict__ vals, int64_t n,
                                                                  int64_t tiles, int shift) {
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < tiles; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t e1 = (t + 1) * kTile < n ? (t + 1) * kTile : n;
    for (int64_t e = t * kTile; e < e1; ++e) {
      const uint32_t k = keys[e];
      int32_t* o = offsets + int64_t((k >> shift) & (kRadix - 1)) * tiles + t;
      const int32_t pos = *o;
      *o = pos + 1;
      keys_out[pos] = k;
      vals_out[pos] = vals[e];
    }
  }
}

__global__ void __launch_bounds__(kEmbBlock) fill_i32_kernel(int32_t* __restrict__ p, int64_t len) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < len; i += int64_t(gridDim.x) * blockDim.x)
    p[i] = 0;
}

// row_start[r], row_end[r]: the range of sorted positions with key r (left 0, 0 for absent rows).
__global__ void __launch_bounds__(kEmbBlock) row_bounds_kernel(int32_t* __restrict__ row_start,
                                                               int32_t* __restrict__ row_end,
                                                               const uint32_t* __restrict__ keys, int64_t n,
                                                               int64_t num) {
  for (int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; j < n; j += int64_t(gridDim.x) * blockDim.x) {
    const uint32_t k = keys[j];
    if (int64_t(k) >= num) continue;
    if (j == 0 || keys[j - 1] != k) row_start[k] = int32_t(j);
    if (j == n - 1 || keys[j + 1] != k) row_end[k] = int32_t(j + 1);
  }
}

__global__ void __launch_bounds__(kEmbBlock) emb_gather_grad_kernel(float* __restrict__ dweight,
                                                                    const float* __restrict__ dy,
                                                                    const int32_t* __restrict__ vals,
                                                                    const int32_t* __restrict__ row_start,
                                                                    const int32_t* __restrict__ row_end, int64_t num,
                                                                    int64_t dim, int64_t padding_idx) {
  const int64_t total = num * dim;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = e / dim, k = e - r * dim;
    float s = 0.f;
    if (r != padding_idx)
      for (int64_t j = row_start[r]; j < row_end[r]; ++j) s = __fadd_rn(s, dy[int64_t(vals[j]) * dim + k]);
    dweight[e] = s;
  }
}

#endif  // __CUDACC__ || TSM_NORM_EMULATE

// Scratch bytes from the caching allocator, returned on scope exit.
struct ScratchBytes {
  void* p = nullptr;
  const char* op;
  explicit ScratchBytes(const char* o) : op(o) {}
  tsm_status alloc(size_t bytes) { return device_alloc(&p, bytes ? bytes : 4, op); }
  ~ScratchBytes() {
    if (p) device_free(p, op);
  }
};

inline int radix_passes(int64_t max_key) {
  int bits = 0;
  while (bits < 63 && (max_key >> bits) != 0) ++bits;
  return (bits + 7) / 8;
}

}  // namespace norm
}  // namespace cuda
}  // namespace tsm

using namespace tsm::cuda;
using namespace tsm::cuda::norm;

extern "C" {

TSM_API tsm_status tsm_cuda_embedding_forward(float* y, const int32_t* indices, const float* weight, int64_t n,
                                              int64_t num_embeddings, int64_t dim) {
  const char* op = "cuda_embedding_forward";
  if (n < 0 || num_embeddings < 0 || dim < 0)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: n, num_embeddings and dim must be >= 0, got %lld, %lld, %lld", op,
                     (long long)n, (long long)num_embeddings, (long long)dim);
  if (n == 0 || dim == 0) return TSM_OK;
  if (!y || !indices || (num_embeddings > 0 && !weight))
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, !y ? "y" : !indices ? "indices" : "weight");
  cudaStream_t st = stream(op);
  if (!st) return TSM_ERR_CUDA;
  TSM_NORM_LAUNCH(emb_forward_kernel, grid_for(n * dim), kEmbBlock, 0, st, y, indices, weight, n, num_embeddings, dim);
  return check_launch(op);
}

TSM_API tsm_status tsm_cuda_embedding_backward(float* dweight, const float* dy, const int32_t* indices, int64_t n,
                                               int64_t num_embeddings, int64_t dim, int64_t padding_idx) {
  const char* op = "cuda_embedding_backward";
  if (n < 0 || num_embeddings < 0 || dim < 0)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: n, num_embeddings and dim must be >= 0, got %lld, %lld, %lld", op,
                     (long long)n, (long long)num_embeddings, (long long)dim);
  if (padding_idx < -1 || padding_idx >= num_embeddings)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: padding_idx must be -1 or in [0, %lld), got %lld", op,
                     (long long)num_embeddings, (long long)padding_idx);
  if (n > INT32_MAX - 1 || num_embeddings > INT32_MAX - 1)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: n and num_embeddings must be below 2^31 - 1, got %lld, %lld", op,
                     (long long)n, (long long)num_embeddings);
  if (dim == 0 || num_embeddings == 0) return TSM_OK;
  if (!dweight) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: dweight is NULL", op);
  if (n > 0 && (!dy || !indices)) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, !dy ? "dy" : "indices");
  cudaStream_t st = stream(op);
  if (!st) return TSM_ERR_CUDA;

  const int64_t tiles = ceil_div(n, kTile);
  const int passes = radix_passes(num_embeddings);  // keys are in [0, num_embeddings]
  // Layout: keys[2][n] (uint32), vals[2][n], hist[256 * tiles], row_start[num], row_end[num].
  const int64_t ints = 4 * n + kRadix * tiles + 2 * num_embeddings;
  ScratchBytes scratch(op);
  if (tsm_status s = scratch.alloc(size_t(ints) * 4)) return s;
  uint32_t* keys[2] = {static_cast<uint32_t*>(scratch.p), static_cast<uint32_t*>(scratch.p) + n};
  int32_t* vals[2] = {static_cast<int32_t*>(scratch.p) + 2 * n, static_cast<int32_t*>(scratch.p) + 3 * n};
  int32_t* hist = static_cast<int32_t*>(scratch.p) + 4 * n;
  int32_t* row_start = hist + kRadix * tiles;
  int32_t* row_end = row_start + num_embeddings;

  TSM_NORM_LAUNCH(fill_i32_kernel, grid_for(2 * num_embeddings), kEmbBlock, 0, st, row_start, 2 * num_embeddings);
  if (tsm_status s = check_launch(op)) return s;
  int cur = 0;
  if (n > 0) {
    TSM_NORM_LAUNCH(emb_keys_kernel, grid_for(n), kEmbBlock, 0, st, keys[0], vals[0], indices, n, num_embeddings);
    if (tsm_status s = check_launch(op)) return s;
    for (int p = 0; p < passes; ++p) {
      const int shift = 8 * p;
      TSM_NORM_LAUNCH(radix_hist_kernel, grid_for(tiles), kEmbBlock, 0, st, hist, keys[cur], n, tiles, shift);
      if (tsm_status s = check_launch(op)) return s;
      TSM_NORM_LAUNCH(scan_kernel, 1, kEmbBlock, kEmbBlock * sizeof(int32_t), st, hist, kRadix * tiles);
      if (tsm_status s = check_launch(op)) return s;
      TSM_NORM_LAUNCH(radix_scatter_kernel, grid_for(tiles), kEmbBlock, 0, st, keys[cur ^ 1], vals[cur ^ 1], hist,
                      keys[cur], vals[cur], n, tiles, shift);
      if (tsm_status s = check_launch(op)) return s;
      cur ^= 1;
    }
    TSM_NORM_LAUNCH(row_bounds_kernel, grid_for(n), kEmbBlock, 0, st, row_start, row_end, keys[cur], n, num_embeddings);
    if (tsm_status s = check_launch(op)) return s;
  }
  TSM_NORM_LAUNCH(emb_gather_grad_kernel, grid_for(num_embeddings * dim), kEmbBlock, 0, st, dweight, dy, vals[cur],
                  row_start, row_end, num_embeddings, dim, padding_idx);
  return check_launch(op);
}

}  // extern "C"
