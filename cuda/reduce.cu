// Reductions of CUDA tensors over the middle axis of x viewed as (outer, dim, inner), float32
// (the CPU twins: cpp/kernels/reduce.cpp):
//   tsm_cuda_sum                   out (outer, inner) = sum_d x[o, d, i] / divisor
//   tsm_cuda_arg_reduce            values, indices (outer, inner): first max / min, NaN wins
//   tsm_cuda_arg_reduce_backward   dx (outer, dim, inner) = dy[o, i] where indices[o, i] == d, else 0
//
// Sums: inner == 1 reduces rows: a thread per row up to 32 elements, a warp per row up to 4096, else
// one 256-thread block per row (float4 loads when aligned, warp shuffles then shared memory); inner > 1 reduces columns with (32 x 8)-thread blocks, 32 adjacent
// columns per block (coalesced), 8 partial sums per column combined in shared memory. When there
// are too few rows/column groups to fill the GPU and dim is long, dim is split over several blocks
// whose partial sums go to a scratch buffer that a second pass of the same kernel reduces. Sums are
// in float32 (tree order), the CPU kernel accumulates in double: results agree to float rounding.
#include <climits>

#include "tensor_common.cuh"

namespace tsm {
namespace cuda {
namespace {

constexpr int kColRows = 8;  // threadIdx.y extent of the column kernels
constexpr int64_t kTargetBlocks = 1024;

// out[r] = sum of row r of x (rows, n) / divisor, one thread per row (short rows).
__global__ void sum_rows_thread_kernel(float* out, const float* x, int64_t rows, int64_t n, float divisor) {
  const int64_t stride = grid_threads();
  for (int64_t r = global_thread(); r < rows; r += stride) {
    const float* xr = x + r * n;
    float acc = 0.f;
    for (int64_t j = 0; j < n; ++j) acc += xr[j];
    out[r] = acc / divisor;
  }
}

// out[r] = sum of row r of x (rows, n) / divisor, one warp per row (8 rows per 256-thread block).
__global__ void sum_rows_warp_kernel(float* out, const float* x, int64_t rows, int64_t n, float divisor) {
  const int lane = threadIdx.x & 31;
  const int64_t wpb = blockDim.x >> 5;
  for (int64_t r = int64_t(blockIdx.x) * wpb + (threadIdx.x >> 5); r < rows; r += int64_t(gridDim.x) * wpb) {
    const float* xr = x + r * n;
    float acc = 0.f;
    for (int64_t j = lane; j < n; j += 32) acc += xr[j];
    acc = warp_sum(acc);
    if (lane == 0) out[r] = acc / divisor;
  }
}

// out[t] for t in [0, tasks) with task t = (row, split): sum of x[row * n + j], j in the split's
// range [s * chunk, min(n, (s + 1) * chunk)), divided by divisor. vec: x 16-byte aligned and n,
// chunk multiples of 4.
__global__ void sum_rows_kernel(float* out, const float* x, int64_t tasks, int64_t splits, int64_t n, int64_t chunk,
                                float divisor, bool vec) {
  __shared__ float smem[32];
  for (int64_t t = blockIdx.x; t < tasks; t += gridDim.x) {
    const int64_t row = t / splits, s = t - row * splits;
    const int64_t begin = s * chunk;
    const int64_t end = begin + chunk < n ? begin + chunk : n;
    const float* xr = x + row * n;
    float acc = 0.f;
    if (vec) {
      const float4* v = reinterpret_cast<const float4*>(xr + begin);
      const int64_t n4 = (end - begin) / 4;
      for (int64_t j = threadIdx.x; j < n4; j += blockDim.x) {
        const float4 q = v[j];
        acc += (q.x + q.y) + (q.z + q.w);
      }
    } else {
      for (int64_t j = begin + threadIdx.x; j < end; j += blockDim.x) acc += xr[j];
    }
    acc = block_sum(acc, smem);
    if (threadIdx.x == 0) out[t] = acc / divisor;
  }
}

// out[t * inner + i] for t in [0, tasks) with t = (o, split), i in [0, inner): sum over j in the
// split's range of x[(o * n + j) * inner + i], divided by divisor. Block (32, kColRows).
__global__ void sum_cols_kernel(float* out, const float* x, int64_t tasks, int64_t splits, int64_t n, int64_t chunk,
                                int64_t inner, float divisor) {
  __shared__ float smem[kColRows][33];
  const int64_t i = int64_t(blockIdx.x) * 32 + threadIdx.x;
  for (int64_t t = blockIdx.y; t < tasks; t += gridDim.y) {
    const int64_t o = t / splits, s = t - o * splits;
    const int64_t begin = s * chunk;
    const int64_t end = begin + chunk < n ? begin + chunk : n;
    float acc = 0.f;
    if (i < inner) {
      const float* xo = x + o * n * inner + i;
      for (int64_t j = begin + threadIdx.y; j < end; j += kColRows) acc += xo[j * inner];
    }
    smem[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && i < inner) {
      float r = 0.f;
#pragma unroll
      for (int k = 0; k < kColRows; ++k) r += smem[k][threadIdx.x];
      out[t * inner + i] = r / divisor;
    }
    __syncthreads();
  }
}

tsm_status launch_rows(const char* op, cudaStream_t st, float* out, const float* x, int64_t rows, int64_t splits,
                       int64_t n, int64_t chunk, float divisor) {
  const bool vec = aligned16(x) && n % 4 == 0 && chunk % 4 == 0;
  const int64_t tasks = rows * splits;
  sum_rows_kernel<<<grid_for(tasks, 1), kThreads, 0, st>>>(out, x, tasks, splits, n, chunk, divisor, vec);
  return check_launch(op);
}

tsm_status launch_cols(const char* op, cudaStream_t st, float* out, const float* x, int64_t outer, int64_t splits,
                       int64_t n, int64_t chunk, int64_t inner, float divisor) {
  const int64_t bx = ceil_div(inner, 32);
  if (bx > INT_MAX) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: inner (%lld) is too large", op, (long long)inner);
  const int64_t tasks = outer * splits;
  const dim3 grid(unsigned(bx), unsigned(tasks < kMaxGridYZ ? tasks : kMaxGridYZ));
  sum_cols_kernel<<<grid, dim3(32, kColRows), 0, st>>>(out, x, tasks, splits, n, chunk, inner, divisor);
  return check_launch(op);
}

// Runs f(scratch) with `floats` floats of device scratch, freed after (stream-ordered reuse is safe).
template <class F>
tsm_status with_scratch(const char* op, int64_t floats, const F& f) {
  void* p = nullptr;
  tsm_status s = device_alloc(&p, size_t(floats) * sizeof(float), op);
  if (s != TSM_OK) return s;
  s = f(static_cast<float*>(p));
  tsm_status s2 = device_free(p, op);
  return s != TSM_OK ? s : s2;
}

// ---- arg reduce ----

// Whether (v2, i2) replaces (v1, i1): NaN wins (the first NaN), else strictly better, ties to the
// lower index. A strict total order on distinct indices, so any reduction tree gives the answer of
// the sequential scan of the CPU kernel.
__device__ __forceinline__ bool takes(float v2, int32_t i2, float v1, int32_t i1, bool is_max) {
  const bool n1 = isnan(v1), n2 = isnan(v2);
  if (n1) return n2 && i2 < i1;
  if (n2) return true;
  if (v2 == v1) return i2 < i1;
  return is_max ? v2 > v1 : v2 < v1;
}

// inner == 1: one block per row (grid-stride), values may be NULL.
__global__ void arg_rows_kernel(float* values, int32_t* indices, const float* x, int64_t rows, int64_t n,
                                bool is_max) {
  __shared__ float sv[32];
  __shared__ int32_t si[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * n;
    float v = is_max ? -INFINITY : INFINITY;
    int32_t idx = INT_MAX;  // loses to every element (ties break to the lower index)
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      const float u = xr[j];
      if (takes(u, int32_t(j), v, idx, is_max)) {
        v = u;
        idx = int32_t(j);
      }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float v2 = __shfl_xor_sync(0xffffffffu, v, o);
      const int32_t i2 = __shfl_xor_sync(0xffffffffu, idx, o);
      if (takes(v2, i2, v, idx, is_max)) {
        v = v2;
        idx = i2;
      }
    }
    if (lane == 0) {
      sv[warp] = v;
      si[warp] = idx;
    }
    __syncthreads();
    if (warp == 0) {
      v = lane < warps ? sv[lane] : (is_max ? -INFINITY : INFINITY);
      idx = lane < warps ? si[lane] : INT_MAX;
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) {
        const float v2 = __shfl_xor_sync(0xffffffffu, v, o);
        const int32_t i2 = __shfl_xor_sync(0xffffffffu, idx, o);
        if (takes(v2, i2, v, idx, is_max)) {
          v = v2;
          idx = i2;
        }
      }
      if (lane == 0) {
        indices[r] = idx;
        if (values) values[r] = v;
      }
    }
    __syncthreads();
  }
}

// inner > 1: one thread per (o, i), a sequential scan over dim (coalesced across i).
__global__ void arg_cols_kernel(float* values, int32_t* indices, const float* x, int64_t outer, int64_t n,
                                int64_t inner, bool is_max) {
  const int64_t total = outer * inner, stride = grid_threads();
  for (int64_t t = global_thread(); t < total; t += stride) {
    const int64_t o = t / inner, i = t - o * inner;
    const float* xo = x + o * n * inner + i;
    float v = xo[0];
    int32_t idx = 0;
    for (int64_t j = 1; j < n; ++j) {
      const float u = xo[j * inner];
      if (takes(u, int32_t(j), v, idx, is_max)) {
        v = u;
        idx = int32_t(j);
      }
    }
    indices[t] = idx;
    if (values) values[t] = v;
  }
}

// dx (outer, n, inner) = dy[o, i] where indices[o, i] == j, else 0.
__global__ void arg_backward_kernel(float* dx, const float* dy, const int32_t* indices, int64_t total, int64_t n,
                                    int64_t inner) {
  const int64_t stride = grid_threads();
  for (int64_t e = global_thread(); e < total; e += stride) {
    const int64_t oi = e / (n * inner), rem = e - oi * n * inner;
    const int64_t j = rem / inner, i = rem - j * inner;
    const int64_t k = oi * inner + i;
    dx[e] = indices[k] == j ? dy[k] : 0.f;
  }
}

tsm_status check_dims(const char* op, int64_t outer, int64_t dim, int64_t inner, int64_t* total) {
  if (outer < 0 || dim < 0 || inner < 0)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: outer, dim and inner must be >= 0, got %lld, %lld, %lld", op,
                (long long)outer, (long long)dim, (long long)inner);
  if ((dim > 0 && outer > INT64_MAX / dim) || (inner > 0 && outer * dim > INT64_MAX / inner))
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: outer * dim * inner overflows", op);
  *total = outer * dim * inner;
  return TSM_OK;
}

}  // namespace
}  // namespace cuda
}  // namespace tsm

using namespace tsm::cuda;

extern "C" {

TSM_API tsm_status tsm_cuda_sum(float* out, const float* x, int64_t outer, int64_t dim, int64_t inner, float divisor) {
  const char* name = "cuda_sum";
  int64_t total = 0;
  if (tsm_status s = check_dims(name, outer, dim, inner, &total)) return s;
  if (outer == 0 || inner == 0) return TSM_OK;
  if (!out || (dim > 0 && !x)) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", name, !out ? "out" : "x");
  cudaStream_t st = stream(name);
  if (!st) return TSM_ERR_CUDA;
  if (inner == 1 && dim <= 32) {
    sum_rows_thread_kernel<<<grid_for(outer), kThreads, 0, st>>>(out, x, outer, dim, divisor);
    return check_launch(name);
  }
  if (inner == 1 && dim <= 4096) {
    sum_rows_warp_kernel<<<grid_for(outer, kThreads / 32), kThreads, 0, st>>>(out, x, outer, dim, divisor);
    return check_launch(name);
  }
  if (inner == 1) {
    // Split long rows when there are too few of them to fill the GPU.
    int64_t splits = 1, chunk = dim;
    if (outer < kTargetBlocks / 2 && dim >= 16384) {
      int64_t want = ceil_div(kTargetBlocks, outer), most = ceil_div(dim, 4096);
      splits = want < most ? want : most;
      chunk = ceil_div(ceil_div(dim, splits), 4) * 4;
      splits = ceil_div(dim, chunk);
    }
    if (splits <= 1) return launch_rows(name, st, out, x, outer, 1, dim, dim, divisor);
    return with_scratch(name, outer * splits, [&](float* part) {
      tsm_status s = launch_rows(name, st, part, x, outer, splits, dim, chunk, 1.f);
      if (s != TSM_OK) return s;
      return launch_rows(name, st, out, part, outer, 1, splits, splits, divisor);
    });
  }
  const int64_t bx = ceil_div(inner, 32), base = outer * bx;
  int64_t splits = 1, chunk = dim;
  if (base < kTargetBlocks / 2 && dim >= 1024) {
    int64_t want = ceil_div(kTargetBlocks, base), most = ceil_div(dim, 128);
    splits = want < most ? want : most;
    chunk = ceil_div(dim, splits);
    splits = ceil_div(dim, chunk);
  }
  if (splits <= 1) return launch_cols(name, st, out, x, outer, 1, dim, dim, inner, divisor);
  return with_scratch(name, outer * splits * inner, [&](float* part) {
    tsm_status s = launch_cols(name, st, part, x, outer, splits, dim, chunk, inner, 1.f);
    if (s != TSM_OK) return s;
    return launch_cols(name, st, out, part, outer, 1, splits, splits, inner, divisor);
  });
}

TSM_API tsm_status tsm_cuda_arg_reduce(float* values, int32_t* indices, const float* x, int64_t outer, int64_t dim,
                                       int64_t inner, int is_max) {
  const char* name = "cuda_arg_reduce";
  int64_t total = 0;
  if (tsm_status s = check_dims(name, outer, dim, inner, &total)) return s;
  if (outer == 0 || inner == 0) return TSM_OK;
  if (dim == 0 || dim > INT_MAX)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: dim must be in [1, 2^31), got %lld", name, (long long)dim);
  if (!indices || !x) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", name, !indices ? "indices" : "x");
  cudaStream_t st = stream(name);
  if (!st) return TSM_ERR_CUDA;
  if (inner == 1)
    arg_rows_kernel<<<grid_for(outer, 1), kThreads, 0, st>>>(values, indices, x, outer, dim, is_max != 0);
  else
    arg_cols_kernel<<<grid_for(outer * inner), kThreads, 0, st>>>(values, indices, x, outer, dim, inner, is_max != 0);
  return check_launch(name);
}

TSM_API tsm_status tsm_cuda_arg_reduce_backward(float* dx, const float* dy, const int32_t* indices, int64_t outer,
                                                int64_t dim, int64_t inner) {
  const char* name = "cuda_arg_reduce_backward";
  int64_t total = 0;
  if (tsm_status s = check_dims(name, outer, dim, inner, &total)) return s;
  if (total == 0) return TSM_OK;
  if (!dx || !dy || !indices)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", name, !dx ? "dx" : !dy ? "dy" : "indices");
  cudaStream_t st = stream(name);
  if (!st) return TSM_ERR_CUDA;
  arg_backward_kernel<<<grid_for(total), kThreads, 0, st>>>(dx, dy, indices, total, dim, inner);
  return check_launch(name);
}

}  // extern "C"
