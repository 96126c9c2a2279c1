// Layout kernels of CUDA tensors: copies of 4-byte elements (float32 or int32) between strided
// views. permute/transpose, expand (stride 0), slice (offset + stepped stride) and the backward of
// slice (strided destination) are all one call:
//   tsm_cuda_strided_copy   dst[dst_offset + sum idx[d] dst_strides[d]] = src[src_offset + sum idx[d] src_strides[d]]
//
// Dims are collapsed first (size-1 dims dropped, dims contiguous in both views merged). A batched
// 2-d transpose (the destination contiguous, the source contiguous along the destination's second-
// to-last dim) goes through 32x32 tiles in shared memory so that both the reads and the writes are
// coalesced; everything else is a grid-stride gather with 32-bit index math when it fits.
#include <climits>

#include "tensor_common.cuh"

namespace tsm {
namespace cuda {
namespace {

struct CopyArgs {
  int ndim;
  int64_t shape[kMaxDims];
  int64_t sd[kMaxDims];
  int64_t ss[kMaxDims];
};

template <typename I>
__global__ void strided_copy_kernel(uint32_t* dst, const uint32_t* src, int64_t n, CopyArgs p) {
  const int64_t stride = grid_threads();
  for (int64_t i = global_thread(); i < n; i += stride) {
    I r = I(i), od = 0, os = 0;
    for (int d = p.ndim - 1; d >= 0; --d) {
      const I s = I(p.shape[d]);
      const I q = r / s;
      const I idx = r - q * s;
      od += idx * I(p.sd[d]);
      os += idx * I(p.ss[d]);
      r = q;
    }
    dst[od] = src[os];
  }
}

constexpr int kTile = 32;
constexpr int kTileRows = 8;

// dst (batch, P, Q) contiguous = src read at b * sb + p + q * sq (contiguous along p).
// Block (32, 8); each block moves 32x32 tiles, grid-stride over batch * tiles.
__global__ void transpose_tiled_kernel(uint32_t* dst, const uint32_t* src, int64_t batch, int64_t P, int64_t Q,
                                       int64_t sb, int64_t sq) {
  __shared__ uint32_t tile[kTile][kTile + 1];
  const int64_t tiles_p = ceil_div_d(P, kTile), tiles_q = ceil_div_d(Q, kTile);
  const int64_t per_batch = tiles_p * tiles_q, total = batch * per_batch;
  const int tx = threadIdx.x, ty = threadIdx.y;
  for (int64_t t = blockIdx.x; t < total; t += gridDim.x) {
    const int64_t b = t / per_batch, rem = t - b * per_batch;
    const int64_t p0 = (rem / tiles_q) * kTile, q0 = (rem % tiles_q) * kTile;
    const uint32_t* s = src + b * sb;
    // Read: consecutive threads walk p, contiguous in the source. tile[j][x] = element (p0 + x, q0 + j).
    for (int j = ty; j < kTile; j += kTileRows) {
      const int64_t p = p0 + tx, q = q0 + j;
      if (p < P && q < Q) tile[j][tx] = s[p + q * sq];
    }
    __syncthreads();
    // Write: consecutive threads walk q, contiguous in the destination.
    uint32_t* d = dst + b * P * Q;
    for (int j = ty; j < kTile; j += kTileRows) {
      const int64_t p = p0 + j, q = q0 + tx;
      if (p < P && q < Q) d[p * Q + q] = tile[tx][j];
    }
    __syncthreads();
  }
}

bool contiguous(int ndim, const int64_t* shape, const int64_t* strides) {
  int64_t expect = 1;
  for (int d = ndim - 1; d >= 0; --d) {
    if (strides[d] != expect) return false;
    expect *= shape[d];
  }
  return true;
}

}  // namespace
}  // namespace cuda
}  // namespace tsm

using namespace tsm::cuda;

extern "C" {

TSM_API tsm_status tsm_cuda_strided_copy(void* dst, int64_t dst_offset, const int64_t* dst_strides, const void* src,
                                         int64_t src_offset, const int64_t* src_strides, int ndim,
                                         const int64_t* shape) {
  const char* name = "cuda_strided_copy";
  if (ndim < 0 || ndim > kMaxDims)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: ndim must be in [0, %d], got %d", name, kMaxDims, ndim);
  if (ndim > 0 && (!shape || !src_strides))
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: shape and src_strides must not be NULL", name);
  if (dst_offset < 0 || src_offset < 0)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: offsets must be >= 0", name);
  CopyArgs p{};
  int64_t n = 1;
  for (int d = 0; d < ndim; ++d) {
    if (shape[d] < 0 || src_strides[d] < 0 || (dst_strides && dst_strides[d] < 0))
      return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: sizes and strides must be >= 0 (dim %d)", name, d);
    if (shape[d] > 0 && n > INT64_MAX / shape[d])
      return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: the copy has more than 2^63 elements", name);
    n *= shape[d];
    p.shape[d] = shape[d];
    p.ss[d] = src_strides[d];
  }
  if (!dst_strides) {
    int64_t acc = 1;
    for (int d = ndim - 1; d >= 0; --d) {
      p.sd[d] = acc;
      acc *= p.shape[d];
    }
  } else {
    for (int d = 0; d < ndim; ++d) p.sd[d] = dst_strides[d];
  }
  if (n == 0) return TSM_OK;
  if (!dst || !src) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", name, !dst ? "dst" : "src");
  int64_t* strides[2] = {p.sd, p.ss};
  p.ndim = collapse_dims(ndim, p.shape, 2, strides);
  uint32_t* d = static_cast<uint32_t*>(dst) + dst_offset;
  const uint32_t* s = static_cast<const uint32_t*>(src) + src_offset;
  cudaStream_t st = stream(name);
  if (!st) return TSM_ERR_CUDA;
  const int r = p.ndim;
  if (r >= 2 && r <= 3 && contiguous(r, p.shape, p.sd) && p.ss[r - 2] == 1 && p.ss[r - 1] != 1) {
    // Batched transpose: dst (batch, P, Q), src contiguous along P.
    const int64_t batch = r == 3 ? p.shape[0] : 1, sb = r == 3 ? p.ss[0] : 0;
    const int64_t P = p.shape[r - 2], Q = p.shape[r - 1], sq = p.ss[r - 1];
    const int64_t tiles = batch * ceil_div(P, kTile) * ceil_div(Q, kTile);
    transpose_tiled_kernel<<<grid_for(tiles, 1), dim3(kTile, kTileRows), 0, st>>>(d, s, batch, P, Q, sb, sq);
    return check_launch(name);
  }
  const bool small = n <= INT_MAX && max_offset(p.ndim, p.shape, p.sd) <= INT_MAX &&
                     max_offset(p.ndim, p.shape, p.ss) <= INT_MAX;
  if (small)
    strided_copy_kernel<int32_t><<<grid_for(n), kThreads, 0, st>>>(d, s, n, p);
  else
    strided_copy_kernel<int64_t><<<grid_for(n), kThreads, 0, st>>>(d, s, n, p);
  return check_launch(name);
}

}  // extern "C"
