// N-API entry points of the fused GPU attention (cuda/attention_fwd.cu, attention_bwd.cu). Thin:
// lib/cuda-attention.ts validates and explains; here every handle must be live and every tensor
// must fit its buffer, so that no call from JavaScript can make a kernel read or write out of bounds.
//
//   cudaAttentionForward(o, lse, q, k, v, keyLengths | null, B, H, Lq, Lk, D, dtype, scale, isCausal, algo)
//   cudaAttentionBackward(dq, dk, dv, dout, q, k, v, o, lse, keyLengths | null, B, H, Lq, Lk, D, dtype,
//                         scale, isCausal, algo)
//   cudaTimeAttention(backward, buffers[], keyLengths | null, B, H, Lq, Lk, D, dtype, scale, isCausal,
//                     algo, warmup, reps) -> ms[]   (benchmarks; builds with CUDA only)
// dtype: 0 float32, 1 bfloat16, 2 float16; algo: 0 auto, 1 mma, 2 general. Sizes in elements.
// Errors: the C ABI's invalid-argument status is a RangeError; anything else an Error named
// 'TsmCudaError' with `call` (lib/cuda.ts turns it into the class).
#include <string>
#include <vector>

#include "binding.h"

#if TSM_CUDA_COMPILED
#include <cuda_runtime.h>
#endif

using namespace tsm_binding;


namespace {

constexpr int64_t kMaxSafe = 9007199254740991;

[[noreturn]] void throw_cuda(Napi::Env env, const char* call, const std::string& msg, int status) {
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("name", Napi::String::New(env, "TsmCudaError"));
  e.Set("call", Napi::String::New(env, call));
  e.Set("status", Napi::Number::New(env, status));
  throw e;
}

void attn_check(Napi::Env env, const char* call, tsm_status status) {
  if (status == TSM_OK) return;
  std::string msg = tsm_last_error();
  if (msg.empty()) msg = tsm_status_string(status);
  if (status == TSM_ERR_INVALID_ARGUMENT) throw Napi::RangeError::New(env, std::string(call) + ": " + msg);
  throw_cuda(env, call, msg, int(status));
}

int64_t mul(Napi::Env env, const char* op, int64_t a, int64_t b) {
  if (a != 0 && b > kMaxSafe / a) range_error(env, std::string(op) + ": sizes are too large");
  return a * b;
}

struct Call {
  tsm_cuda_attention_desc desc{};
  int64_t q_elems = 0, kv_elems = 0, rows = 0;
  size_t esz = 2;
};

// Reads keyLengths (index i) and the sizes/options after it into c.desc.
Call read_desc(const Napi::CallbackInfo& info, size_t i, const char* op) {
  Napi::Env env = info.Env();
  Call c;
  const char* names[5] = {"B", "H", "Lq", "Lk", "D"};
  int64_t sz[5];
  for (int s = 0; s < 5; ++s) {
    sz[s] = arg_int(info, i + 1 + s, op, names[s]);
    if (sz[s] < 0) range_error(env, std::string(op) + ": " + names[s] + " must be >= 0");
  }
  const int64_t dtype = arg_int(info, i + 6, op, "dtype");
  if (dtype < 0 || dtype > 2) range_error(env, std::string(op) + ": dtype must be 0, 1 or 2");
  const double scale = arg_num(info, i + 7, op, "scale");
  const bool causal = arg_bool(info, i + 8);
  const int64_t algo = arg_int(info, i + 9, op, "algo");
  if (algo < 0 || algo > 2) range_error(env, std::string(op) + ": algo must be 0, 1 or 2");
  c.desc.b = sz[0];
  c.desc.h = sz[1];
  c.desc.lq = sz[2];
  c.desc.lk = sz[3];
  c.desc.d = sz[4];
  c.desc.dtype = int32_t(dtype);
  c.desc.scale = float(scale);
  c.desc.is_causal = causal ? 1 : 0;
  c.desc.algo = int32_t(algo);
  c.esz = dtype == 0 ? 4 : 2;
  const int64_t bh = mul(env, op, sz[0], sz[1]);
  c.rows = mul(env, op, bh, sz[2]);
  c.q_elems = mul(env, op, c.rows, sz[4]);
  c.kv_elems = mul(env, op, mul(env, op, bh, sz[3]), sz[4]);
  if (i < info.Length() && !info[i].IsNull() && !info[i].IsUndefined()) {
    size_t bytes = 0;
    void* p = tsm_binding_device_ptr(env, info[i], op, "keyLengths", &bytes);
    if (uint64_t(sz[0]) * 4 > bytes)
      range_error(env, std::string(op) + ": keyLengths holds " + std::to_string(bytes) + " bytes, needs " +
                           std::to_string(uint64_t(sz[0]) * 4));
    c.desc.key_lengths = static_cast<const int32_t*>(p);
  }
  return c;
}

// The device pointer of buffer argument `v`, which must hold elems * esz bytes.
void* buf(Napi::Env env, Napi::Value v, const char* op, const char* name, int64_t elems, size_t esz) {
  size_t bytes = 0;
  void* p = tsm_binding_device_ptr(env, v, op, name, &bytes);
  if (uint64_t(elems) * esz > bytes)
    range_error(env, std::string(op) + ": " + name + " holds " + std::to_string(bytes) + " bytes, needs " +
                         std::to_string(uint64_t(elems) * esz));
  return p;
}

struct FwdPtrs {
  void* o;
  float* lse;
  const void *q, *k, *v;
};
struct BwdPtrs {
  void *dq, *dk, *dv;
  const void *dout, *q, *k, *v, *o;
  const float* lse;
};

FwdPtrs fwd_ptrs(Napi::Env env, const char* op, const Call& c, const Napi::Value* a) {
  FwdPtrs p;
  p.o = buf(env, a[0], op, "o", c.q_elems, c.esz);
  p.lse = static_cast<float*>(buf(env, a[1], op, "lse", c.rows, 4));
  p.q = buf(env, a[2], op, "q", c.q_elems, c.esz);
  p.k = buf(env, a[3], op, "k", c.kv_elems, c.esz);
  p.v = buf(env, a[4], op, "v", c.kv_elems, c.esz);
  return p;
}

BwdPtrs bwd_ptrs(Napi::Env env, const char* op, const Call& c, const Napi::Value* a) {
  BwdPtrs p;
  p.dq = buf(env, a[0], op, "dq", c.q_elems, c.esz);
  p.dk = buf(env, a[1], op, "dk", c.kv_elems, c.esz);
  p.dv = buf(env, a[2], op, "dv", c.kv_elems, c.esz);
  p.dout = buf(env, a[3], op, "dout", c.q_elems, c.esz);
  p.q = buf(env, a[4], op, "q", c.q_elems, c.esz);
  p.k = buf(env, a[5], op, "k", c.kv_elems, c.esz);
  p.v = buf(env, a[6], op, "v", c.kv_elems, c.esz);
  p.o = buf(env, a[7], op, "o", c.q_elems, c.esz);
  p.lse = static_cast<const float*>(buf(env, a[8], op, "lse", c.rows, 4));
  return p;
}

tsm_status run_fwd(const FwdPtrs& p, const Call& c) {
  return tsm_cuda_attention_forward(p.o, p.lse, p.q, p.k, p.v, &c.desc);
}
tsm_status run_bwd(const BwdPtrs& p, const Call& c) {
  return tsm_cuda_attention_backward(p.dq, p.dk, p.dv, p.dout, p.q, p.k, p.v, p.o, p.lse, &c.desc);
}

std::vector<Napi::Value> args(const Napi::CallbackInfo& info, size_t first, size_t n, const char* op) {
  if (info.Length() < first + n) type_error(info.Env(), std::string(op) + ": expected " + std::to_string(first + n) + " arguments or more");
  std::vector<Napi::Value> a;
  for (size_t i = 0; i < n; ++i) a.push_back(info[first + i]);
  return a;
}

Napi::Value CudaAttentionForward(const Napi::CallbackInfo& info) {
  const char* op = "cudaAttentionForward";
  Napi::Env env = info.Env();
  const std::vector<Napi::Value> a = args(info, 0, 5, op);
  const Call c = read_desc(info, 5, op);
  const FwdPtrs p = fwd_ptrs(env, op, c, a.data());
  attn_check(env, op, run_fwd(p, c));
  return env.Undefined();
}

Napi::Value CudaAttentionBackward(const Napi::CallbackInfo& info) {
  const char* op = "cudaAttentionBackward";
  Napi::Env env = info.Env();
  const std::vector<Napi::Value> a = args(info, 0, 9, op);
  const Call c = read_desc(info, 9, op);
  const BwdPtrs p = bwd_ptrs(env, op, c, a.data());
  attn_check(env, op, run_bwd(p, c));
  return env.Undefined();
}

#if TSM_CUDA_COMPILED
void check_rt(Napi::Env env, const char* call, cudaError_t err) {
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw_cuda(env, call, std::string(call) + ": " + cudaGetErrorString(err), int(TSM_ERR_CUDA));
  }
}

// cudaTimeAttention(backward, buffers, keyLengths | null, B, H, Lq, Lk, D, dtype, scale, isCausal, algo,
//                   warmup, reps) -> ms[]: `warmup` untimed calls, then `reps` calls each between two
// CUDA events on the library's stream. buffers: [o, lse, q, k, v] forward, [dq, dk, dv, dout, q, k,
// v, o, lse] backward.
Napi::Value CudaTimeAttention(const Napi::CallbackInfo& info) {
  const char* op = "cudaTimeAttention";
  Napi::Env env = info.Env();
  const bool backward = arg_bool(info, 0);
  if (info.Length() < 2 || !info[1].IsArray()) type_error(env, std::string(op) + ": buffers must be an array of device buffers");
  Napi::Array arr = info[1].As<Napi::Array>();
  const uint32_t need = backward ? 9 : 5;
  if (arr.Length() != need) range_error(env, std::string(op) + ": buffers must hold " + std::to_string(need) + " device buffers");
  std::vector<Napi::Value> a;
  for (uint32_t i = 0; i < need; ++i) a.push_back(arr.Get(i));
  const Call c = read_desc(info, 2, op);
  const int64_t warmup = arg_int(info, 12, op, "warmup"), reps = arg_int(info, 13, op, "reps");
  if (warmup < 0 || reps < 1 || reps > 100000) range_error(env, std::string(op) + ": bad warmup or reps");
  FwdPtrs fp{};
  BwdPtrs bp{};
  if (backward) bp = bwd_ptrs(env, op, c, a.data());
  else fp = fwd_ptrs(env, op, c, a.data());
  auto launch = [&]() { return backward ? run_bwd(bp, c) : run_fwd(fp, c); };
  for (int64_t i = 0; i < warmup; ++i) attn_check(env, op, launch());
  void* sp = nullptr;
  attn_check(env, op, tsm_cuda_get_stream(&sp));
  cudaStream_t stream = static_cast<cudaStream_t>(sp);
  std::vector<cudaEvent_t> ev(size_t(2 * reps), nullptr);
  for (auto& e : ev) check_rt(env, "cudaEventCreate", cudaEventCreate(&e));
  tsm_status failed = TSM_OK;
  std::string failed_msg;
  for (int64_t i = 0; i < reps && failed == TSM_OK; ++i) {
    cudaEventRecord(ev[size_t(2 * i)], stream);
    failed = launch();
    if (failed != TSM_OK) failed_msg = tsm_last_error();
    cudaEventRecord(ev[size_t(2 * i + 1)], stream);
  }
  cudaError_t sync = cudaStreamSynchronize(stream);
  std::vector<double> ms(size_t(reps), 0.0);
  for (int64_t i = 0; i < reps && sync == cudaSuccess && failed == TSM_OK; ++i) {
    float t = 0.f;
    cudaError_t e = cudaEventElapsedTime(&t, ev[size_t(2 * i)], ev[size_t(2 * i + 1)]);
    if (e != cudaSuccess) { sync = e; break; }
    ms[size_t(i)] = t;
  }
  for (auto& e : ev) cudaEventDestroy(e);
  if (failed != TSM_OK) throw_cuda(env, op, failed_msg, int(failed));
  check_rt(env, "cudaStreamSynchronize", sync);
  Napi::Array out = Napi::Array::New(env, size_t(reps));
  for (int64_t i = 0; i < reps; ++i) out.Set(uint32_t(i), Napi::Number::New(env, ms[size_t(i)]));
  return out;
}
#endif

}  // namespace

void register_ops_cuda_attention(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaAttentionForward", Napi::Function::New(env, CudaAttentionForward, "cudaAttentionForward"));
  exports.Set("cudaAttentionBackward", Napi::Function::New(env, CudaAttentionBackward, "cudaAttentionBackward"));
#if TSM_CUDA_COMPILED
  exports.Set("cudaTimeAttention", Napi::Function::New(env, CudaTimeAttention, "cudaTimeAttention"));
#endif
}
