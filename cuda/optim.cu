// Fused optimizer updates of CUDA parameters (the CPU twin: cpp/kernels/optim.cpp, same formulas):
//   tsm_cuda_sgd_step    params, momentum_bufs, grads: lists of (sizes[i])
//   tsm_cuda_adam_step   params, exp_avg, exp_avg_sq, max_exp_avg_sq, grads: lists of (sizes[i])
//
// Multi-tensor: up to kMaxTensors tensors go in one launch; their pointers and sizes travel in the
// kernel's argument struct (< 2 KB of the 4 KB parameter space). Each tensor is cut into chunks of
// kChunk elements, one 256-thread block per chunk; a block finds its tensor by scanning the
// struct's first-block table. The arithmetic is the CPU kernel's, in float32 with hyper-parameters
// rounded to float, and with explicit round-to-nearest operations (__fmul_rn, __fadd_rn) so nvcc
// does not contract them into FMAs: a CUDA step gives the CPU step's bits.
#include <climits>
#include <cmath>

#include "tensor_common.cuh"

namespace tsm {
namespace cuda {
namespace {

constexpr int kMaxTensors = 32;
constexpr int64_t kChunk = 4096;

struct SgdList {
  float* p[kMaxTensors];
  const float* g[kMaxTensors];
  float* buf[kMaxTensors];
  int64_t n[kMaxTensors];
  int64_t first_block[kMaxTensors + 1];
  int count;
};

struct AdamList {
  float* p[kMaxTensors];
  const float* g[kMaxTensors];
  float* m[kMaxTensors];
  float* v[kMaxTensors];
  float* vmax[kMaxTensors];
  int64_t n[kMaxTensors];
  int64_t first_block[kMaxTensors + 1];
  int count;
};

static_assert(sizeof(AdamList) < 4000, "kernel parameters are limited to 4 KB");

struct SgdHyper {
  float wd, mom, one_minus_damp, neg_lr;
  bool use_wd, use_mom, nesterov, maximize, first;
};

struct AdamHyper {
  float neg_step_size, bc2_sqrt, b1, omb1, b2, omb2, eps, wd, decay;
  bool l2, decoupled, amsgrad, maximize;
};

// The tensor of block b: the last t with first_block[t] <= b.
__device__ __forceinline__ int tensor_of(const int64_t* first_block, int count, int64_t b) {
  int t = 0;
  while (t + 1 < count && first_block[t + 1] <= b) ++t;
  return t;
}

__global__ void sgd_kernel(SgdList L, SgdHyper h) {
  const int64_t b = blockIdx.x;
  const int t = tensor_of(L.first_block, L.count, b);
  const int64_t n = L.n[t];
  const int64_t begin = (b - L.first_block[t]) * kChunk;
  const int64_t end = begin + kChunk < n ? begin + kChunk : n;
  float* p = L.p[t];
  const float* g = L.g[t];
  float* buf = L.buf[t];
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const float pi = p[i];
    float d = h.maximize ? -g[i] : g[i];
    if (h.use_wd) d = __fadd_rn(d, __fmul_rn(h.wd, pi));
    if (h.use_mom) {
      const float bi = h.first ? d : __fadd_rn(__fmul_rn(buf[i], h.mom), __fmul_rn(h.one_minus_damp, d));
      buf[i] = bi;
      d = h.nesterov ? __fadd_rn(d, __fmul_rn(h.mom, bi)) : bi;
    }
    p[i] = __fadd_rn(pi, __fmul_rn(h.neg_lr, d));
  }
}

__global__ void adam_kernel(AdamList L, AdamHyper h) {
  const int64_t b = blockIdx.x;
  const int t = tensor_of(L.first_block, L.count, b);
  const int64_t n = L.n[t];
  const int64_t begin = (b - L.first_block[t]) * kChunk;
  const int64_t end = begin + kChunk < n ? begin + kChunk : n;
  float* p = L.p[t];
  const float* g = L.g[t];
  float* m = L.m[t];
  float* v = L.v[t];
  float* vmax = L.vmax[t];
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    float pi = p[i];
    float gi = h.maximize ? -g[i] : g[i];
    if (h.decoupled) pi = __fmul_rn(pi, h.decay);
    else if (h.l2) gi = __fadd_rn(gi, __fmul_rn(h.wd, pi));
    const float mi = __fadd_rn(__fmul_rn(m[i], h.b1), __fmul_rn(h.omb1, gi));
    const float vi = __fadd_rn(__fmul_rn(v[i], h.b2), __fmul_rn(__fmul_rn(h.omb2, gi), gi));
    m[i] = mi;
    v[i] = vi;
    float vv = vi;
    if (h.amsgrad) {
      const float old = vmax[i];
      vv = (old > vi || old != old) ? old : vi;  // torch.maximum: NaN wins
      vmax[i] = vv;
    }
    const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vv), h.bc2_sqrt), h.eps);
    p[i] = __fadd_rn(pi, __fmul_rn(h.neg_step_size, __fdiv_rn(mi, denom)));
  }
}

tsm_status check_lists(const char* op, const int64_t* sizes, int64_t count) {
  if (count < 0) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: count must be >= 0, got %lld", op, (long long)count);
  if (count > 0 && !sizes) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: sizes is NULL", op);
  for (int64_t t = 0; t < count; ++t)
    if (sizes[t] < 0)
      return fail(TSM_ERR_INVALID_ARGUMENT, "%s: sizes[%lld] must be >= 0, got %lld", op, (long long)t,
                  (long long)sizes[t]);
  return TSM_OK;
}

template <typename P>
tsm_status check_ptrs(const char* op, const char* name, P* const* ptrs, const int64_t* sizes, int64_t count,
                      bool required) {
  if (!required || count == 0) return TSM_OK;
  if (!ptrs) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, name);
  for (int64_t t = 0; t < count; ++t)
    if (sizes[t] > 0 && !ptrs[t])
      return fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s[%lld] is NULL", op, name, (long long)t);
  return TSM_OK;
}

// Calls launch(list, blocks) for groups of up to kMaxTensors non-empty tensors; fill(list, slot, t)
// copies tensor t's pointers into slot `slot` of the list.
template <class List, class Fill, class Launch>
tsm_status for_groups(const char* op, const int64_t* sizes, int64_t count, const Fill& fill, const Launch& launch) {
  List L{};
  int slot = 0;
  int64_t blocks = 0;
  auto flush = [&]() -> tsm_status {
    if (slot == 0) return TSM_OK;
    L.count = slot;
    L.first_block[slot] = blocks;
    tsm_status s = launch(L, blocks);
    L = List{};
    slot = 0;
    blocks = 0;
    return s;
  };
  for (int64_t t = 0; t < count; ++t) {
    if (sizes[t] == 0) continue;
    const int64_t nb = ceil_div(sizes[t], kChunk);
    if (slot == kMaxTensors || blocks + nb > INT_MAX) {
      if (tsm_status s = flush()) return s;
    }
    if (nb > INT_MAX) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: sizes[%lld] is too large", op, (long long)t);
    L.n[slot] = sizes[t];
    L.first_block[slot] = blocks;
    fill(L, slot, t);
    blocks += nb;
    ++slot;
  }
  return flush();
}

}  // namespace
}  // namespace cuda
}  // namespace tsm

using namespace tsm::cuda;

extern "C" {

TSM_API tsm_status tsm_cuda_sgd_step(float* const* params, float* const* momentum_bufs, const float* const* grads,
                                     const int64_t* sizes, int64_t count, double lr, double momentum,
                                     double dampening, double weight_decay, int nesterov, int maximize,
                                     int first_step) {
  const char* op = "cuda_sgd_step";
  if (tsm_status s = check_lists(op, sizes, count)) return s;
  if (tsm_status s = check_ptrs(op, "params", params, sizes, count, true)) return s;
  if (tsm_status s = check_ptrs(op, "grads", grads, sizes, count, true)) return s;
  if (tsm_status s = check_ptrs(op, "momentum_bufs", momentum_bufs, sizes, count, momentum != 0.0)) return s;
  if (nesterov && (momentum <= 0.0 || dampening != 0.0))
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: nesterov needs momentum > 0 and dampening = 0", op);
  int64_t total = 0;
  for (int64_t t = 0; t < count; ++t) total += sizes[t];
  if (total == 0) return TSM_OK;
  cudaStream_t st = stream(op);
  if (!st) return TSM_ERR_CUDA;
  const SgdHyper h{float(weight_decay), float(momentum), float(1.0 - dampening), float(-lr),
                   weight_decay != 0.0, momentum != 0.0, nesterov != 0, maximize != 0, first_step != 0};
  return for_groups<SgdList>(
      op, sizes, count,
      [&](SgdList& L, int slot, int64_t t) {
        L.p[slot] = params[t];
        L.g[slot] = grads[t];
        L.buf[slot] = h.use_mom ? momentum_bufs[t] : nullptr;
      },
      [&](const SgdList& L, int64_t blocks) -> tsm_status {
        sgd_kernel<<<unsigned(blocks), kThreads, 0, st>>>(L, h);
        return check_launch(op);
      });
}

TSM_API tsm_status tsm_cuda_adam_step(float* const* params, float* const* exp_avg, float* const* exp_avg_sq,
                                      float* const* max_exp_avg_sq, const float* const* grads, const int64_t* sizes,
                                      int64_t count, double lr, double beta1, double beta2, double eps,
                                      double weight_decay, int64_t step, int amsgrad, int decoupled, int maximize) {
  const char* op = "cuda_adam_step";
  if (tsm_status s = check_lists(op, sizes, count)) return s;
  if (tsm_status s = check_ptrs(op, "params", params, sizes, count, true)) return s;
  if (tsm_status s = check_ptrs(op, "grads", grads, sizes, count, true)) return s;
  if (tsm_status s = check_ptrs(op, "exp_avg", exp_avg, sizes, count, true)) return s;
  if (tsm_status s = check_ptrs(op, "exp_avg_sq", exp_avg_sq, sizes, count, true)) return s;
  if (tsm_status s = check_ptrs(op, "max_exp_avg_sq", max_exp_avg_sq, sizes, count, amsgrad != 0)) return s;
  if (step < 1) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: step must be >= 1, got %lld", op, (long long)step);
  int64_t total = 0;
  for (int64_t t = 0; t < count; ++t) total += sizes[t];
  if (total == 0) return TSM_OK;
  cudaStream_t st = stream(op);
  if (!st) return TSM_ERR_CUDA;
  const double bc1 = 1.0 - std::pow(beta1, double(step));
  const double bc2 = 1.0 - std::pow(beta2, double(step));
  AdamHyper h{};
  h.neg_step_size = float(-(lr / bc1));
  h.bc2_sqrt = float(std::sqrt(bc2));
  h.b1 = float(beta1);
  h.omb1 = float(1.0 - beta1);
  h.b2 = float(beta2);
  h.omb2 = float(1.0 - beta2);
  h.eps = float(eps);
  h.wd = float(weight_decay);
  h.decay = float(1.0 - lr * weight_decay);
  h.decoupled = decoupled != 0;
  h.l2 = !decoupled && weight_decay != 0.0;
  h.amsgrad = amsgrad != 0;
  h.maximize = maximize != 0;
  return for_groups<AdamList>(
      op, sizes, count,
      [&](AdamList& L, int slot, int64_t t) {
        L.p[slot] = params[t];
        L.g[slot] = grads[t];
        L.m[slot] = exp_avg[t];
        L.v[slot] = exp_avg_sq[t];
        L.vmax[slot] = h.amsgrad ? max_exp_avg_sq[t] : nullptr;
      },
      [&](const AdamList& L, int64_t blocks) -> tsm_status {
        adam_kernel<<<unsigned(blocks), kThreads, 0, st>>>(L, h);
        return check_launch(op);
      });
}

}  // extern "C"
