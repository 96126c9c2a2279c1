// Index ops of CUDA tensors: gather, index_select, where, and the backward of the first two
// (the CPU twins are the loops in lib/ops.ts and lib/gradients.ts; contracts in tensorsmith.h,
// section "cuda sequence kernels"). 4-byte elements (float32 or int32) are moved as 32-bit words.
//
// Backward without atomics: each dx element gathers the dy elements that came from it, in the
// order the CPU's scatter-add visits them, so sums are bit-identical to the CPU and deterministic.
//   gather:       x element (p, v) sums dy[p with p[dim] = j] over j where index[p, j] == v, j in
//                 order: cost x elements * index_shape[dim] (fine for the usual index_shape[dim]
//                 of 1 .. a few hundred; a sort-based backward would be the fix beyond that).
//   index_select: row r of dx sums the dy rows at the positions of r, taken from a CSR list
//                 (row_start, positions) that lib/ builds on the host from the index.
#ifdef TSM_SEQ_EMULATE
// Host emulation (test/emu/seq_emu.cpp): C++ with each CUDA thread run in turn; see the shim.
#include "../test/emu/seq_emu_shim.h"
#else
#include "tensor_common.cuh"
#define TSM_SEQ_LAUNCH(kernel, grid, block, st) kernel<<<(grid), (block), 0, (st)>>>
#endif

namespace tsm {
namespace cuda {
namespace {

constexpr uint32_t kBadIndexBits = 0x7FC00000u;  // NaN as float32

struct Dims8 {
  int64_t v[kMaxDims];
};

// out (index shape) = x at the index along dim.
__global__ void gather_kernel(uint32_t* __restrict__ out, const uint32_t* __restrict__ x,
                              const int32_t* __restrict__ index, int ndim, Dims8 ishape, Dims8 xstride, int dim,
                              int64_t xdim, int64_t total) {
  const int64_t stride = grid_threads();
  for (int64_t e = global_thread(); e < total; e += stride) {
    int64_t rem = e, off = 0;
    const int32_t v = index[e];
#pragma unroll
    for (int k = kMaxDims - 1; k >= 0; --k) {
      if (k >= ndim) continue;  // unrolled over kMaxDims: the Dims8 stay in registers
      const int64_t p = rem % ishape.v[k];
      rem /= ishape.v[k];
      off += (k == dim ? int64_t(v) : p) * xstride.v[k];
    }
    out[e] = (v >= 0 && v < xdim) ? x[off] : kBadIndexBits;
  }
}

// dx (x shape): element (p, v) = sum over j of dy[p, j] where index[p, j] == v, for p inside the
// index shape (0 outside).
__global__ void gather_backward_kernel(float* __restrict__ dx, const float* __restrict__ dy,
                                       const int32_t* __restrict__ index, int ndim, Dims8 xshape, Dims8 ishape,
                                       Dims8 istride, int dim, int64_t total) {
  const int64_t stride = grid_threads();
  for (int64_t e = global_thread(); e < total; e += stride) {
    int64_t rem = e, base = 0, v = 0, m = 0, st = 0;
    bool inside = true;
#pragma unroll
    for (int k = kMaxDims - 1; k >= 0; --k) {
      if (k >= ndim) continue;  // unrolled over kMaxDims: the Dims8 stay in registers
      const int64_t p = rem % xshape.v[k];
      rem /= xshape.v[k];
      if (k == dim) {
        v = p;
        m = ishape.v[k];
        st = istride.v[k];
      } else {
        if (p >= ishape.v[k]) inside = false;
        base += p * istride.v[k];
      }
    }
    float s = 0.f;
    if (inside) {
      for (int64_t j = 0; j < m; ++j) {
        const int64_t o = base + j * st;
        if (index[o] == v) s += dy[o];
      }
    }
    dx[e] = s;
  }
}

// out (outer, k, inner) = x (outer, n, inner) at rows index[i].
__global__ void index_select_kernel(uint32_t* __restrict__ out, const uint32_t* __restrict__ x,
                                    const int32_t* __restrict__ index, int64_t outer, int64_t n, int64_t k,
                                    int64_t inner) {
  const int64_t total = outer * k * inner, stride = grid_threads();
  for (int64_t e = global_thread(); e < total; e += stride) {
    const int64_t j = e % inner, oi = e / inner, i = oi % k, o = oi / k;
    int64_t r = index[i];
    if (r < 0) r += n;
    out[e] = (r >= 0 && r < n) ? x[(o * n + r) * inner + j] : kBadIndexBits;
  }
}

// dx (outer, n, inner): row r = sum of dy rows at positions[row_start[r] .. row_start[r+1]).
__global__ void index_select_backward_kernel(float* __restrict__ dx, const float* __restrict__ dy,
                                             const int32_t* __restrict__ row_start,
                                             const int32_t* __restrict__ positions, int64_t outer, int64_t n,
                                             int64_t k, int64_t inner) {
  const int64_t total = outer * n * inner, stride = grid_threads();
  for (int64_t e = global_thread(); e < total; e += stride) {
    const int64_t j = e % inner, orow = e / inner, r = orow % n, o = orow / n;
    float s = 0.f;
    const int32_t a = row_start[r], b = row_start[r + 1];
    for (int32_t q = a; q < b; ++q) s += dy[(o * k + positions[q]) * inner + j];
    dx[e] = s;
  }
}

// out (shape) = cond != 0 ? a : b, strided reads.
__global__ void where_kernel(uint32_t* __restrict__ out, const uint32_t* __restrict__ cond, int cond_is_int,
                             const uint32_t* __restrict__ a, const uint32_t* __restrict__ b, int ndim, Dims8 shape,
                             Dims8 cs, Dims8 as, Dims8 bs, int64_t total) {
  const int64_t stride = grid_threads();
  for (int64_t e = global_thread(); e < total; e += stride) {
    int64_t rem = e, co = 0, ao = 0, bo = 0;
#pragma unroll
    for (int k = kMaxDims - 1; k >= 0; --k) {
      if (k >= ndim) continue;  // unrolled over kMaxDims: the Dims8 stay in registers
      const int64_t p = rem % shape.v[k];
      rem /= shape.v[k];
      co += p * cs.v[k];
      ao += p * as.v[k];
      bo += p * bs.v[k];
    }
    const uint32_t c = cond[co];
    const bool take = cond_is_int ? c != 0u : __uint_as_float(c) != 0.0f;
    out[e] = take ? a[ao] : b[bo];
  }
}

tsm_status check_rank(const char* op, int ndim, int lo) {
  if (ndim < lo || ndim > kMaxDims)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: ndim must be in [%d, %d], got %d", op, lo, kMaxDims, ndim);
  return TSM_OK;
}

// Checks shapes (>= 0) and returns the element count; -1 on a negative size.
int64_t count_of(int ndim, const int64_t* shape) {
  int64_t n = 1;
  for (int d = 0; d < ndim; ++d) {
    if (shape[d] < 0) return -1;
    n *= shape[d];
  }
  return n;
}

tsm_status gather_geometry(const char* op, int ndim, const int64_t* x_shape, const int64_t* index_shape, int dim,
                           int64_t* nx, int64_t* ni) {
  if (tsm_status s = check_rank(op, ndim, 1)) return s;
  if (!x_shape || !index_shape) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: shapes must not be NULL", op);
  if (dim < 0 || dim >= ndim) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: dim %d out of range for rank %d", op, dim, ndim);
  *nx = count_of(ndim, x_shape);
  *ni = count_of(ndim, index_shape);
  if (*nx < 0 || *ni < 0) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: sizes must be >= 0", op);
  for (int d = 0; d < ndim; ++d)
    if (d != dim && index_shape[d] > x_shape[d])
      return fail(TSM_ERR_INVALID_ARGUMENT, "%s: index_shape[%d] = %lld exceeds x_shape[%d] = %lld", op, d,
                  (long long)index_shape[d], d, (long long)x_shape[d]);
  return TSM_OK;
}

Dims8 contiguous_strides(int ndim, const int64_t* shape) {
  Dims8 s{};
  int64_t acc = 1;
  for (int d = ndim - 1; d >= 0; --d) {
    s.v[d] = acc;
    acc *= shape[d] > 0 ? shape[d] : 1;
  }
  return s;
}

Dims8 copy_dims(int ndim, const int64_t* v) {
  Dims8 s{};
  for (int d = 0; d < ndim; ++d) s.v[d] = v[d];
  return s;
}

}  // namespace
}  // namespace cuda
}  // namespace tsm

using namespace tsm::cuda;

extern "C" {

TSM_API tsm_status tsm_cuda_gather(void* out, const void* x, const int32_t* index, int ndim, const int64_t* x_shape,
                                   const int64_t* index_shape, int dim) {
  const char* op = "cuda_gather";
  int64_t nx = 0, ni = 0;
  if (tsm_status s = gather_geometry(op, ndim, x_shape, index_shape, dim, &nx, &ni)) return s;
  if (ni == 0) return TSM_OK;
  if (!out || !index || (!x && nx > 0)) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: a pointer is NULL", op);
  cudaStream_t st = stream(op);
  if (!st) return TSM_ERR_CUDA;
  // With x empty every index is out of range: out gets the bad-index bits (x is never read).
  TSM_SEQ_LAUNCH(gather_kernel, grid_for(ni), kThreads, st)(static_cast<uint32_t*>(out), static_cast<const uint32_t*>(x), index,
                                                   ndim, copy_dims(ndim, index_shape),
                                                   contiguous_strides(ndim, x_shape), dim, x_shape[dim], ni);
  return check_launch(op);
}

TSM_API tsm_status tsm_cuda_gather_backward(float* dx, const float* dy, const int32_t* index, int ndim,
                                            const int64_t* x_shape, const int64_t* index_shape, int dim) {
  const char* op = "cuda_gather_backward";
  int64_t nx = 0, ni = 0;
  if (tsm_status s = gather_geometry(op, ndim, x_shape, index_shape, dim, &nx, &ni)) return s;
  if (nx == 0) return TSM_OK;
  if (!dx || (ni > 0 && (!dy || !index))) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: a pointer is NULL", op);
  cudaStream_t st = stream(op);
  if (!st) return TSM_ERR_CUDA;
  // An empty index shape: no dy element, every dx element is 0 (the inside test fails or m == 0).
  TSM_SEQ_LAUNCH(gather_backward_kernel, grid_for(nx), kThreads, st)(dx, dy, index, ndim, copy_dims(ndim, x_shape),
                                                            copy_dims(ndim, index_shape),
                                                            contiguous_strides(ndim, index_shape), dim, nx);
  return check_launch(op);
}

TSM_API tsm_status tsm_cuda_index_select(void* out, const void* x, const int32_t* index, int64_t outer, int64_t n,
                                         int64_t k, int64_t inner) {
  const char* op = "cuda_index_select";
  if (outer < 0 || n < 0 || k < 0 || inner < 0)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: sizes must be >= 0", op);
  const int64_t total = outer * k * inner;
  if (total == 0) return TSM_OK;
  if (!out || !index || (!x && n > 0)) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: a pointer is NULL", op);
  cudaStream_t st = stream(op);
  if (!st) return TSM_ERR_CUDA;
  TSM_SEQ_LAUNCH(index_select_kernel, grid_for(total), kThreads, st)(static_cast<uint32_t*>(out),
                                                            static_cast<const uint32_t*>(x), index, outer, n, k, inner);
  return check_launch(op);
}

TSM_API tsm_status tsm_cuda_index_select_backward(float* dx, const float* dy, const int32_t* row_start,
                                                  const int32_t* positions, int64_t outer, int64_t n, int64_t k,
                                                  int64_t inner) {
  const char* op = "cuda_index_select_backward";
  if (outer < 0 || n < 0 || k < 0 || inner < 0)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: sizes must be >= 0", op);
  if (k > INT32_MAX) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: k must be < 2^31", op);
  const int64_t total = outer * n * inner;
  if (total == 0) return TSM_OK;
  if (!dx || !row_start || (k > 0 && (!dy || !positions)))
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: a pointer is NULL", op);
  cudaStream_t st = stream(op);
  if (!st) return TSM_ERR_CUDA;
  TSM_SEQ_LAUNCH(index_select_backward_kernel, grid_for(total), kThreads, st)(dx, dy, row_start, positions, outer, n, k, inner);
  return check_launch(op);
}

TSM_API tsm_status tsm_cuda_where(void* out, const void* cond, int cond_is_int, const void* a, const void* b, int ndim,
                                  const int64_t* shape, const int64_t* cond_strides, const int64_t* a_strides,
                                  const int64_t* b_strides) {
  const char* op = "cuda_where";
  if (tsm_status s = check_rank(op, ndim, 0)) return s;
  if (ndim > 0 && (!shape || !cond_strides || !a_strides || !b_strides))
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: shape and strides must not be NULL", op);
  const int64_t total = count_of(ndim, shape);
  if (total < 0) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: sizes must be >= 0", op);
  for (int d = 0; d < ndim; ++d)
    if (cond_strides[d] < 0 || a_strides[d] < 0 || b_strides[d] < 0)
      return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: strides must be >= 0", op);
  if (total == 0) return TSM_OK;
  if (!out || !cond || !a || !b) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: a pointer is NULL", op);
  cudaStream_t st = stream(op);
  if (!st) return TSM_ERR_CUDA;
  Dims8 sh{}, cs{}, as{}, bs{};
  for (int d = 0; d < ndim; ++d) {
    sh.v[d] = shape[d];
    cs.v[d] = cond_strides[d];
    as.v[d] = a_strides[d];
    bs.v[d] = b_strides[d];
  }
  TSM_SEQ_LAUNCH(where_kernel, grid_for(total), kThreads, st)(static_cast<uint32_t*>(out), static_cast<const uint32_t*>(cond),
                                                     cond_is_int, static_cast<const uint32_t*>(a),
                                                     static_cast<const uint32_t*>(b), ndim, sh, cs, as, bs, total);
  return check_launch(op);
}

}  // extern "C"
