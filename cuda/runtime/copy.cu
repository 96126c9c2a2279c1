// Host <-> device copies through pinned staging buffers.
//
// A copy from pageable host memory is staged by the driver anyway and cannot overlap with anything;
// here each device owns two pinned chunks (4 MiB each) used in turn: while the DMA engine moves chunk
// i, the CPU fills (h2d) or drains (d2h) chunk i^1. Events on the device's stream say when a chunk is
// free again. h2d returns once the host buffer has been read (the device copy may still be queued,
// ordered before later kernels on the same stream); d2h returns when the data is in the host buffer.
// When pinned memory cannot be had, the copy falls back to a plain cudaMemcpyAsync + synchronize.
#include <cuda_runtime.h>

#include <cstring>
#include <mutex>

#include "cuda_common.cuh"

namespace tsm {
namespace cuda {
namespace {

constexpr size_t kChunk = size_t(4) << 20;
constexpr int kMaxDevices = 64;

struct Staging {
  void* chunk[2] = {nullptr, nullptr};
  cudaEvent_t done[2] = {nullptr, nullptr};
  bool pending[2] = {false, false};
  bool failed = false;  // pinning failed once: use pageable copies from then on
};

std::mutex g_mutex;
Staging* g_staging[kMaxDevices] = {};  // never freed (see allocator.cu)

// The staging buffers of the current device, or nullptr when pinned memory is unavailable.
Staging* staging(int device) {
  Staging*& st = g_staging[device];
  if (!st) st = new Staging();
  if (st->failed) return nullptr;
  if (!st->chunk[0]) {
    for (int i = 0; i < 2; ++i) {
      if (cudaHostAlloc(&st->chunk[i], kChunk, cudaHostAllocDefault) != cudaSuccess ||
          cudaEventCreateWithFlags(&st->done[i], cudaEventDisableTiming) != cudaSuccess) {
        cudaGetLastError();
        st->failed = true;
        return nullptr;
      }
    }
  }
  return st;
}

tsm_status wait_chunk(Staging* st, int i) {
  if (!st->pending[i]) return TSM_OK;
  st->pending[i] = false;
  return check(cudaEventSynchronize(st->done[i]), "cudaEventSynchronize");
}

tsm_status prologue(const char* call, const void* dst, const void* src, size_t bytes, int* device,
                    cudaStream_t* s) {
  if (bytes > 0 && (!dst || !src)) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: NULL pointer", call);
  tsm_status r = ensure_device(call, device);
  if (r != TSM_OK) return r;
  *s = stream(call);
  return *s ? TSM_OK : TSM_ERR_CUDA;
}

}  // namespace
}  // namespace cuda
}  // namespace tsm

using namespace tsm::cuda;

extern "C" {

TSM_API tsm_status tsm_cuda_memcpy_h2d(void* dst, const void* src, size_t bytes) {
  int device = 0;
  cudaStream_t s = nullptr;
  tsm_status r = prologue("cuda_memcpy_h2d", dst, src, bytes, &device, &s);
  if (r != TSM_OK || bytes == 0) return r;
  std::lock_guard<std::mutex> lock(g_mutex);
  Staging* st = staging(device);
  if (!st) {
    TSM_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s), "cudaMemcpyAsync");
    TSM_CUDA_TRY(cudaStreamSynchronize(s), "cudaStreamSynchronize");
    return TSM_OK;
  }
  int i = 0;
  for (size_t off = 0; off < bytes; off += kChunk, i ^= 1) {
    const size_t len = bytes - off < kChunk ? bytes - off : kChunk;
    if ((r = wait_chunk(st, i)) != TSM_OK) return r;
    std::memcpy(st->chunk[i], static_cast<const char*>(src) + off, len);
    TSM_CUDA_TRY(cudaMemcpyAsync(static_cast<char*>(dst) + off, st->chunk[i], len,
                                 cudaMemcpyHostToDevice, s), "cudaMemcpyAsync");
    TSM_CUDA_TRY(cudaEventRecord(st->done[i], s), "cudaEventRecord");
    st->pending[i] = true;
  }
  return TSM_OK;
}

TSM_API tsm_status tsm_cuda_memcpy_d2h(void* dst, const void* src, size_t bytes) {
  int device = 0;
  cudaStream_t s = nullptr;
  tsm_status r = prologue("cuda_memcpy_d2h", dst, src, bytes, &device, &s);
  if (r != TSM_OK || bytes == 0) return r;
  std::lock_guard<std::mutex> lock(g_mutex);
  Staging* st = staging(device);
  if (!st) {
    TSM_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s), "cudaMemcpyAsync");
    TSM_CUDA_TRY(cudaStreamSynchronize(s), "cudaStreamSynchronize");
    return TSM_OK;
  }
  // Chunks left over from an h2d call are simply waited for.
  if ((r = wait_chunk(st, 0)) != TSM_OK || (r = wait_chunk(st, 1)) != TSM_OK) return r;
  const size_t nchunks = (bytes + kChunk - 1) / kChunk;
  auto issue = [&](size_t j) -> tsm_status {
    const size_t off = j * kChunk, len = bytes - off < kChunk ? bytes - off : kChunk;
    const int i = int(j & 1);
    TSM_CUDA_TRY(cudaMemcpyAsync(st->chunk[i], static_cast<const char*>(src) + off, len,
                                 cudaMemcpyDeviceToHost, s), "cudaMemcpyAsync");
    TSM_CUDA_TRY(cudaEventRecord(st->done[i], s), "cudaEventRecord");
    st->pending[i] = true;
    return TSM_OK;
  };
  for (size_t j = 0; j < nchunks && j < 2; ++j)
    if ((r = issue(j)) != TSM_OK) return r;
  for (size_t j = 0; j < nchunks; ++j) {
    const size_t off = j * kChunk, len = bytes - off < kChunk ? bytes - off : kChunk;
    const int i = int(j & 1);
    if ((r = wait_chunk(st, i)) != TSM_OK) return r;
    std::memcpy(static_cast<char*>(dst) + off, st->chunk[i], len);
    if (j + 2 < nchunks && (r = issue(j + 2)) != TSM_OK) return r;
  }
  return TSM_OK;
}

TSM_API tsm_status tsm_cuda_memcpy_d2d(void* dst, const void* src, size_t bytes) {
  int device = 0;
  cudaStream_t s = nullptr;
  tsm_status r = prologue("cuda_memcpy_d2d", dst, src, bytes, &device, &s);
  if (r != TSM_OK || bytes == 0) return r;
  TSM_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s), "cudaMemcpyAsync");
  return TSM_OK;
}

TSM_API tsm_status tsm_cuda_memset(void* dst, int value, size_t bytes) {
  int device = 0;
  cudaStream_t s = nullptr;
  tsm_status r = prologue("cuda_memset", dst, dst, bytes, &device, &s);
  if (r != TSM_OK || bytes == 0) return r;
  TSM_CUDA_TRY(cudaMemsetAsync(dst, value, bytes, s), "cudaMemsetAsync");
  return TSM_OK;
}

}  // extern "C"
