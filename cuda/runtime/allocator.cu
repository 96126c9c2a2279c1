// The caching device allocator. cudaMalloc/cudaFree are slow (cudaFree synchronizes the device), so
// freed blocks are kept in per-device free lists keyed by their bucketed size and handed out again.
//
// Buckets: requests up to 1 MiB round up to a multiple of 512 B, larger ones to a multiple of 2 MiB.
// A cached block serves a request when it is at least the bucketed size and at most 25% larger (so a
// small request never pins a huge block). Blocks are never split or merged: simple, and the waste is
// bounded by the bucket rounding.
//
// Safety without events: every kernel and copy of the library runs on the device's one stream, so a
// block freed while kernels that use it are queued can be reused at once: the next user's work is
// queued behind them. (Work queued on other streams by outside code must synchronize first.)
//
// Out of memory: the device's cache is returned to the driver and the cudaMalloc retried once; a
// second failure is reported as TSM_ERR_CUDA "cudaMalloc: out of memory ...".
//
// The state is heap-allocated and never destroyed, so nothing calls into a torn-down CUDA runtime at
// process exit (the driver reclaims device memory when the process ends).
#include <cuda_runtime.h>

#include <map>
#include <mutex>
#include <unordered_map>

#include "cuda_common.cuh"

namespace tsm {
namespace cuda {

namespace {

constexpr size_t kSmallLimit = size_t(1) << 20;  // 1 MiB
constexpr size_t kSmallRound = 512;
constexpr size_t kLargeRound = size_t(2) << 20;  // 2 MiB

size_t bucket(size_t bytes) {
  if (bytes <= kSmallLimit) return (bytes + kSmallRound - 1) / kSmallRound * kSmallRound;
  return (bytes + kLargeRound - 1) / kLargeRound * kLargeRound;
}

struct Block {
  size_t size;
  int device;
};

struct DeviceCache {
  std::multimap<size_t, void*> free_blocks;  // size -> pointer
  uint64_t cached_bytes = 0;
};

struct State {
  std::mutex mutex;
  std::unordered_map<void*, Block> live;
  std::map<int, DeviceCache> caches;
  tsm_cuda_memory_stats stats{};
};

State& state() {
  static State* s = new State();  // never destroyed (see above)
  return *s;
}

// Frees the cached blocks of one device; the caller holds the mutex and has that device current.
tsm_status release_cache_locked(State& st, int device) {
  auto it = st.caches.find(device);
  if (it == st.caches.end()) return TSM_OK;
  tsm_status result = TSM_OK;
  for (auto& kv : it->second.free_blocks) {
    tsm_status s = check(cudaFree(kv.second), "cudaFree");
    if (s != TSM_OK && result == TSM_OK) result = s;
    st.stats.reserved_bytes -= kv.first;
  }
  it->second.free_blocks.clear();
  it->second.cached_bytes = 0;
  return result;
}

}  // namespace

tsm_status device_alloc(void** ptr, size_t bytes, const char* call) {
  *ptr = nullptr;
  if (bytes == 0) return TSM_OK;
  if (bytes > (size_t(1) << 50)) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: %zu bytes is too large", call, bytes);
  int device = 0;
  tsm_status s = ensure_device(call, &device);
  if (s != TSM_OK) return s;
  const size_t size = bucket(bytes);
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mutex);
  DeviceCache& cache = st.caches[device];
  auto it = cache.free_blocks.lower_bound(size);
  if (it != cache.free_blocks.end() && it->first <= size + size / 4) {
    void* p = it->second;
    size_t got = it->first;
    cache.free_blocks.erase(it);
    cache.cached_bytes -= got;
    st.live.emplace(p, Block{got, device});
    st.stats.allocated_bytes += got;
    if (st.stats.allocated_bytes > st.stats.peak_allocated_bytes) st.stats.peak_allocated_bytes = st.stats.allocated_bytes;
    st.stats.num_allocs++;
    st.stats.num_cache_hits++;
    *ptr = p;
    return TSM_OK;
  }
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, size);
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    st.stats.num_oom_retries++;
    release_cache_locked(st, device);
    err = cudaMalloc(&p, size);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      return fail(TSM_ERR_CUDA,
                  "cudaMalloc: out of memory allocating %zu bytes on device %d (%llu bytes held by "
                  "live tensorsmith allocations; the cache was released and the allocation retried once)",
                  size, device, (unsigned long long)st.stats.allocated_bytes);
    }
  }
  s = check(err, "cudaMalloc");
  if (s != TSM_OK) return s;
  st.live.emplace(p, Block{size, device});
  st.stats.allocated_bytes += size;
  st.stats.reserved_bytes += size;
  if (st.stats.allocated_bytes > st.stats.peak_allocated_bytes) st.stats.peak_allocated_bytes = st.stats.allocated_bytes;
  st.stats.num_allocs++;
  st.stats.num_device_allocs++;
  *ptr = p;
  return TSM_OK;
}

tsm_status device_free(void* ptr, const char* call) {
  if (!ptr) return TSM_OK;
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mutex);
  auto it = st.live.find(ptr);
  if (it == st.live.end())
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: %p was not allocated by tsm_cuda_malloc (or was freed already)", call, ptr);
  Block b = it->second;
  st.live.erase(it);
  st.stats.allocated_bytes -= b.size;
  DeviceCache& cache = st.caches[b.device];
  cache.free_blocks.emplace(b.size, ptr);
  cache.cached_bytes += b.size;
  return TSM_OK;
}

}  // namespace cuda
}  // namespace tsm

using namespace tsm::cuda;

extern "C" {

TSM_API tsm_status tsm_cuda_malloc(void** ptr, size_t bytes) {
  if (!ptr) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "cuda_malloc: ptr is NULL");
  return device_alloc(ptr, bytes, "cuda_malloc");
}

TSM_API tsm_status tsm_cuda_free(void* ptr) { return device_free(ptr, "cuda_free"); }

TSM_API tsm_status tsm_cuda_empty_cache(void) {
  tsm_status s = ensure_device("cuda_empty_cache");
  if (s != TSM_OK) return s;
  int current = 0;
  TSM_CUDA_TRY(cudaGetDevice(&current), "cudaGetDevice");
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mutex);
  tsm_status result = TSM_OK;
  for (auto& kv : st.caches) {
    if (kv.second.free_blocks.empty()) continue;
    if (kv.first != current) {
      s = check(cudaSetDevice(kv.first), "cudaSetDevice");
      if (s != TSM_OK) { result = s; continue; }
    }
    s = release_cache_locked(st, kv.first);
    if (s != TSM_OK && result == TSM_OK) result = s;
  }
  s = check(cudaSetDevice(current), "cudaSetDevice");
  return result != TSM_OK ? result : s;
}

TSM_API tsm_status tsm_cuda_memory_stats_get(tsm_cuda_memory_stats* stats) {
  if (!stats) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "cuda_memory_stats_get: stats is NULL");
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mutex);
  *stats = st.stats;
  return TSM_OK;
}

}  // extern "C"
