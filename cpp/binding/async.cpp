// Asynchronous entry points for the heavy inference kernels: sgemm, conv2d forward, max/avg pooling
// forward and softmax forward. Each validates its arguments exactly like its synchronous twin (same
// positional arguments, same errors, thrown synchronously), then runs the kernel as a
// Napi::AsyncWorker on the libuv thread pool and returns a Promise<void>.
//
// Memory safety across the await: the inputs are snapshotted into native buffers before the
// call returns, and the kernel writes into a native output buffer that is copied into the caller's
// preallocated output array on the main thread when the kernel is done. The output arrays are held
// by references until then. So a caller that mutates, transfers or detaches any of the arrays while
// the kernel runs cannot make native code touch freed memory: at worst the promise rejects with a
// RangeError saying the output was detached. The copies cost O(inputs + outputs) memcpy, small next
// to the O(work) of the kernels this is meant for.
//
//   sgemmAsync(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
//   conv2dForwardAsync(y, x, w, bias|null, N, C, H, W, OC, KH, KW, sH, sW, pH, pW, dH, dW, groups)
//   maxPool2dForwardAsync(y, indices, x, N, C, H, W, KH, KW, sH, sW, pH, pW, dH, dW, ceilMode)
//   avgPool2dForwardAsync(y, x, N, C, H, W, KH, KW, sH, sW, pH, pW, ceilMode, countIncludePad)
//   softmaxForwardAsync(y, x, outer, dim, inner, log)
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "binding.h"

using namespace tsm_binding;

namespace {

constexpr int64_t kMaxElems = int64_t(1) << 53;

int64_t mul(Napi::Env env, const char* op, int64_t a, int64_t b) {
  if (a < 0 || b < 0) range_error(env, std::string(op) + ": sizes must be >= 0");
  if (a != 0 && b > kMaxElems / a) range_error(env, std::string(op) + ": tensor size is too large");
  return a * b;
}

int64_t elems4(Napi::Env env, const char* op, int64_t a, int64_t b, int64_t c, int64_t d) {
  return mul(env, op, mul(env, op, mul(env, op, a, b), c), d);
}

int64_t arg_size(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name, int64_t min) {
  const int64_t v = arg_int(info, i, op, name);
  if (v < min)
    range_error(info.Env(), std::string(op) + ": " + name + " must be >= " + std::to_string(min) + ", got " +
                                std::to_string(v));
  if (v > (int64_t(1) << 40))
    range_error(info.Env(), std::string(op) + ": " + name + " = " + std::to_string(v) + " is too large");
  return v;
}

// rows x cols with leading dimension ld, or a RangeError when the span does not fit a safe integer.
int64_t span_checked(Napi::Env env, const char* op, int64_t rows, int64_t cols, int64_t ld) {
  if (rows <= 0 || cols <= 0) return 0;
  int64_t t = 0;
  if (__builtin_mul_overflow(rows - 1, ld, &t) || __builtin_add_overflow(t, cols, &t) || t > kMaxElems)
    range_error(env, std::string(op) + ": matrix extent is too large");
  return t;
}

// A snapshot of a JS typed array's first `count` elements.
template <typename T>
std::vector<T> snapshot(Napi::Env env, const char* op, const T* p, int64_t count) {
  try {
    std::vector<T> v(static_cast<size_t>(count));
    if (count) std::memcpy(v.data(), p, static_cast<size_t>(count) * sizeof(T));
    return v;
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(env, std::string(op) + ": out of memory");
  }
}

// One output: a native buffer the kernel writes, copied into the JS array afterwards.
struct Output {
  Napi::Reference<Napi::TypedArray> js;
  std::vector<float> f;
  std::vector<int32_t> i;
  bool is_int = false;
  int64_t count = 0;
};

class KernelWorker : public Napi::AsyncWorker {
 public:
  KernelWorker(Napi::Env env, const char* op)
      : Napi::AsyncWorker(env, op), op_(op), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  // Registers the output at argument i (already validated to hold `count` elements).
  Output& output(const Napi::CallbackInfo& info, size_t i, int64_t count, bool is_int, bool copy_in) {
    outs_.emplace_back(new Output());
    Output& o = *outs_.back();
    o.js = Napi::Persistent(info[i].As<Napi::TypedArray>());
    o.is_int = is_int;
    o.count = count;
    // Outputs that are not read are allocated on the worker thread (Execute), not here.
    if (copy_in && count) {
      if (is_int) o.i = snapshot(info.Env(), op_, info[i].As<Napi::Int32Array>().Data(), count);
      else o.f = snapshot(info.Env(), op_, info[i].As<Napi::Float32Array>().Data(), count);
    }
    return o;
  }

  /** The native buffer of output k (valid inside run(), after Execute allocated it). */
  float* f32_out(size_t k) { return outs_[k]->f.empty() ? nullptr : outs_[k]->f.data(); }
  int32_t* i32_out(size_t k) { return outs_[k]->i.empty() ? nullptr : outs_[k]->i.data(); }

  std::function<tsm_status()> run;

 protected:
  void Execute() override {
    try {
      for (auto& po : outs_) {
        Output& o = *po;
        if (o.is_int && o.i.size() != static_cast<size_t>(o.count)) o.i.resize(static_cast<size_t>(o.count));
        if (!o.is_int && o.f.size() != static_cast<size_t>(o.count)) o.f.resize(static_cast<size_t>(o.count));
      }
    } catch (const std::bad_alloc&) {
      status_ = TSM_ERR_OUT_OF_MEMORY;
      message_ = "out of memory for the output";
      return;
    }
    status_ = run();
    // tsm_last_error() is per thread: read it on the thread that ran the kernel.
    if (status_ != TSM_OK) {
      message_ = tsm_last_error();
      if (message_.empty()) message_ = tsm_status_string(status_);
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (status_ != TSM_OK) {
      const std::string msg = std::string(op_) + ": " + message_;
      Napi::Error e = status_ == TSM_ERR_INVALID_ARGUMENT ? Napi::Error(Napi::RangeError::New(env, msg))
                                                         : Napi::Error::New(env, msg);
      deferred_.Reject(e.Value());
      return;
    }
    for (auto& po : outs_) {
      Output& o = *po;
      Napi::TypedArray ta = o.js.Value();
      // napi_get_typedarray_info gives the data pointer for ArrayBuffer and SharedArrayBuffer
      // backing alike (Napi::ArrayBuffer::Data() throws for shared memory).
      napi_typedarray_type type;
      size_t length = 0;
      void* data = nullptr;
      if (napi_get_typedarray_info(env, ta, &type, &length, &data, nullptr, nullptr) != napi_ok) length = 0;
      if (static_cast<int64_t>(length) < o.count || (o.count > 0 && data == nullptr)) {
        deferred_.Reject(Napi::RangeError::New(env, std::string(op_) +
                                                        ": an output array was detached or shrunk while "
                                                        "the kernel ran; its result is lost")
                             .Value());
        return;
      }
      if (o.count == 0) continue;
      void* dst = data;
      if (o.is_int) std::memcpy(dst, o.i.data(), static_cast<size_t>(o.count) * sizeof(int32_t));
      else std::memcpy(dst, o.f.data(), static_cast<size_t>(o.count) * sizeof(float));
    }
    deferred_.Resolve(env.Undefined());
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:

  const char* op_;
  Napi::Promise::Deferred deferred_;
  std::vector<std::unique_ptr<Output>> outs_;
  tsm_status status_ = TSM_OK;
  std::string message_;
};

Napi::Value queue(KernelWorker* w) {
  Napi::Promise p = w->Promise();
  w->Queue();  // the worker deletes itself after OnOK/OnError
  return p;
}

// Creates the worker, or deletes it and rethrows when setting it up throws.
template <typename Setup>
Napi::Value start(Napi::Env env, const char* op, Setup setup) {
  KernelWorker* w = new KernelWorker(env, op);
  try {
    setup(*w);
  } catch (...) {
    delete w;
    throw;
  }
  return queue(w);
}

// sgemmAsync(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
Napi::Value SgemmAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "sgemmAsync";
  const bool ta = arg_bool(info, 0), tb = arg_bool(info, 1);
  const int64_t m = arg_int(info, 2, op, "m"), n = arg_int(info, 3, op, "n"), k = arg_int(info, 4, op, "k");
  const float alpha = static_cast<float>(arg_num(info, 5, op, "alpha"));
  size_t la = 0, lb = 0, lc = 0;
  const float* a = arg_f32(info, 6, op, "a", &la);
  const int64_t lda = arg_int(info, 7, op, "lda");
  const float* b = arg_f32(info, 8, op, "b", &lb);
  const int64_t ldb = arg_int(info, 9, op, "ldb");
  const float beta = static_cast<float>(arg_num(info, 10, op, "beta"));
  arg_f32(info, 11, op, "c", &lc);
  const int64_t ldc = arg_int(info, 12, op, "ldc");
  if (m < 0 || n < 0 || k < 0) range_error(env, "sgemmAsync: m, n and k must be >= 0");
  if (lda < 1 || ldb < 1 || ldc < 1) range_error(env, "sgemmAsync: leading dimensions must be >= 1");
  int64_t na = 0, nb = 0;
  if (m > 0 && n > 0 && k > 0) {
    na = ta ? span_checked(env, op, k, m, lda) : span_checked(env, op, m, k, lda);
    nb = tb ? span_checked(env, op, n, k, ldb) : span_checked(env, op, k, n, ldb);
    need(env, op, "a", la, na);
    need(env, op, "b", lb, nb);
  }
  const int64_t nc = span_checked(env, op, m, n, ldc);
  need(env, op, "c", lc, nc);
  return start(env, op, [&](KernelWorker& w) {
    auto A = std::make_shared<std::vector<float>>(snapshot(env, op, a, na));
    auto B = std::make_shared<std::vector<float>>(snapshot(env, op, b, nb));
    // beta != 0 reads C: copy it in; beta == 0 never reads it.
    w.output(info, 11, nc, false, beta != 0.0f);
    KernelWorker* self = &w;
    w.run = [=]() {
      return tsm_sgemm(ta, tb, m, n, k, alpha, A->empty() ? nullptr : A->data(), lda,
                       B->empty() ? nullptr : B->data(), ldb, beta, self->f32_out(0), ldc);
    };
  });
}

// conv2dForwardAsync(y, x, w, bias|null, N, C, H, W, OC, KH, KW, sH, sW, pH, pW, dH, dW, groups)
Napi::Value Conv2dForwardAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "conv2dForwardAsync";
  size_t ly = 0, lx = 0, lw = 0, lb = 0;
  arg_f32(info, 0, op, "y", &ly);
  const float* x = arg_f32(info, 1, op, "x", &lx);
  const float* wt = arg_f32(info, 2, op, "w", &lw);
  const float* bias = nullptr;
  const bool has_bias = info.Length() > 3 && !info[3].IsNull() && !info[3].IsUndefined();
  if (has_bias) bias = arg_f32(info, 3, op, "bias", &lb);
  tsm_conv2d_desc d;
  const char* names[14] = {"N", "C", "H", "W", "OC", "KH", "KW", "sH", "sW", "pH", "pW", "dH", "dW", "groups"};
  int64_t v[14];
  for (int i = 0; i < 14; ++i) v[i] = arg_size(info, 4 + i, op, names[i], (i == 9 || i == 10) ? 0 : 1);
  d.n = v[0]; d.c = v[1]; d.h = v[2]; d.w = v[3]; d.oc = v[4]; d.kh = v[5]; d.kw = v[6];
  d.stride_h = v[7]; d.stride_w = v[8]; d.pad_h = v[9]; d.pad_w = v[10]; d.dil_h = v[11]; d.dil_w = v[12];
  d.groups = v[13];
  if (d.c % d.groups || d.oc % d.groups)
    range_error(env, std::string(op) + ": C = " + std::to_string(d.c) + " and OC = " + std::to_string(d.oc) +
                         " must be divisible by groups = " + std::to_string(d.groups));
  // Every size is <= 2^40, so these products fit in 128 bits; compare before narrowing.
  const __int128 oh128 = (__int128)d.h + 2 * (__int128)d.pad_h - (__int128)d.dil_h * (d.kh - 1) - 1;
  const __int128 ow128 = (__int128)d.w + 2 * (__int128)d.pad_w - (__int128)d.dil_w * (d.kw - 1) - 1;
  int64_t oh = oh128 < 0 ? -1 : static_cast<int64_t>(oh128);
  int64_t ow = ow128 < 0 ? -1 : static_cast<int64_t>(ow128);
  if (oh < 0 || ow < 0)
    range_error(env, std::string(op) + ": output size would be < 1 (the dilated kernel is larger than the "
                                       "padded input)");
  oh = oh / d.stride_h + 1;
  ow = ow / d.stride_w + 1;
  const int64_t ny = elems4(env, op, d.n, d.oc, oh, ow), nx = elems4(env, op, d.n, d.c, d.h, d.w),
                nw = elems4(env, op, d.oc, d.c / d.groups, d.kh, d.kw);
  need(env, op, "y", ly, ny);
  need(env, op, "x", lx, nx);
  need(env, op, "w", lw, nw);
  if (has_bias) need(env, op, "bias", lb, d.oc);
  return start(env, op, [&](KernelWorker& w) {
    auto X = std::make_shared<std::vector<float>>(snapshot(env, op, x, nx));
    auto Wt = std::make_shared<std::vector<float>>(snapshot(env, op, wt, nw));
    auto Bs = std::make_shared<std::vector<float>>(snapshot(env, op, bias, has_bias ? d.oc : 0));
    w.output(info, 0, ny, false, false);
    KernelWorker* self = &w;
    w.run = [=]() {
      return tsm_conv2d_forward(self->f32_out(0), X->data(), Wt->data(), has_bias ? Bs->data() : nullptr, &d);
    };
  });
}

// Reads N, C, H, W, KH, KW, sH, sW, pH, pW [, dH, dW] from `first`.
tsm_pool2d_desc pool_desc(const Napi::CallbackInfo& info, size_t first, const char* op, bool dilation) {
  tsm_pool2d_desc d;
  d.n = arg_size(info, first + 0, op, "N", 1);
  d.c = arg_size(info, first + 1, op, "C", 1);
  d.h = arg_size(info, first + 2, op, "H", 1);
  d.w = arg_size(info, first + 3, op, "W", 1);
  d.kh = arg_size(info, first + 4, op, "KH", 1);
  d.kw = arg_size(info, first + 5, op, "KW", 1);
  d.stride_h = arg_size(info, first + 6, op, "sH", 1);
  d.stride_w = arg_size(info, first + 7, op, "sW", 1);
  d.pad_h = arg_size(info, first + 8, op, "pH", 0);
  d.pad_w = arg_size(info, first + 9, op, "pW", 0);
  d.dil_h = dilation ? arg_size(info, first + 10, op, "dH", 1) : 1;
  d.dil_w = dilation ? arg_size(info, first + 11, op, "dW", 1) : 1;
  d.ceil_mode = 0;
  d.count_include_pad = 1;
  if (d.pad_h > d.kh / 2 || d.pad_w > d.kw / 2)
    range_error(info.Env(), std::string(op) + ": padding must be at most half the kernel size");
  return d;
}

int64_t pool_out(Napi::Env env, const char* op, int64_t in, int64_t k, int64_t s, int64_t p, int64_t dil,
                 bool ceil_mode) {
  const int64_t out = tsm_pool2d_output_size(in, k, s, p, dil, ceil_mode);
  if (out < 1) range_error(env, std::string(op) + ": output size would be " + std::to_string(out) + "; it must be >= 1");
  return out;
}

// maxPool2dForwardAsync(y, indices, x, N, C, H, W, KH, KW, sH, sW, pH, pW, dH, dW, ceilMode)
Napi::Value MaxPool2dForwardAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "maxPool2dForwardAsync";
  size_t ly = 0, li = 0, lx = 0;
  arg_f32(info, 0, op, "y", &ly);
  arg_i32(info, 1, op, "indices", &li);
  const float* x = arg_f32(info, 2, op, "x", &lx);
  tsm_pool2d_desc d = pool_desc(info, 3, op, true);
  d.ceil_mode = arg_bool(info, 15);
  const int64_t oh = pool_out(env, op, d.h, d.kh, d.stride_h, d.pad_h, d.dil_h, d.ceil_mode);
  const int64_t ow = pool_out(env, op, d.w, d.kw, d.stride_w, d.pad_w, d.dil_w, d.ceil_mode);
  if (mul(env, op, d.h, d.w) > INT32_MAX) range_error(env, std::string(op) + ": H*W must fit in an int32 index");
  const int64_t ny = elems4(env, op, d.n, d.c, oh, ow), nx = elems4(env, op, d.n, d.c, d.h, d.w);
  need(env, op, "y", ly, ny);
  need(env, op, "indices", li, ny);
  need(env, op, "x", lx, nx);
  return start(env, op, [&](KernelWorker& w) {
    auto X = std::make_shared<std::vector<float>>(snapshot(env, op, x, nx));
    w.output(info, 0, ny, false, false);
    w.output(info, 1, ny, true, false);
    KernelWorker* self = &w;
    w.run = [=]() { return tsm_max_pool2d_forward(self->f32_out(0), self->i32_out(1), X->data(), &d); };
  });
}

// avgPool2dForwardAsync(y, x, N, C, H, W, KH, KW, sH, sW, pH, pW, ceilMode, countIncludePad)
Napi::Value AvgPool2dForwardAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "avgPool2dForwardAsync";
  size_t ly = 0, lx = 0;
  arg_f32(info, 0, op, "y", &ly);
  const float* x = arg_f32(info, 1, op, "x", &lx);
  tsm_pool2d_desc d = pool_desc(info, 2, op, false);
  d.ceil_mode = arg_bool(info, 12);
  d.count_include_pad = arg_bool(info, 13);
  const int64_t oh = pool_out(env, op, d.h, d.kh, d.stride_h, d.pad_h, 1, d.ceil_mode);
  const int64_t ow = pool_out(env, op, d.w, d.kw, d.stride_w, d.pad_w, 1, d.ceil_mode);
  const int64_t ny = elems4(env, op, d.n, d.c, oh, ow), nx = elems4(env, op, d.n, d.c, d.h, d.w);
  need(env, op, "y", ly, ny);
  need(env, op, "x", lx, nx);
  return start(env, op, [&](KernelWorker& w) {
    auto X = std::make_shared<std::vector<float>>(snapshot(env, op, x, nx));
    w.output(info, 0, ny, false, false);
    KernelWorker* self = &w;
    w.run = [=]() { return tsm_avg_pool2d_forward(self->f32_out(0), X->data(), &d); };
  });
}

// softmaxForwardAsync(y, x, outer, dim, inner, log)
Napi::Value SoftmaxForwardAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "softmaxForwardAsync";
  size_t ly = 0, lx = 0;
  arg_f32(info, 0, op, "y", &ly);
  const float* x = arg_f32(info, 1, op, "x", &lx);
  const int64_t outer = arg_size(info, 2, op, "outer", 0), dim = arg_size(info, 3, op, "dim", 0),
                inner = arg_size(info, 4, op, "inner", 0);
  const bool log = arg_bool(info, 5);
  const int64_t n = mul(env, op, mul(env, op, outer, dim), inner);
  need(env, op, "x", lx, n);
  need(env, op, "y", ly, n);
  return start(env, op, [&](KernelWorker& w) {
    auto X = std::make_shared<std::vector<float>>(snapshot(env, op, x, n));
    w.output(info, 0, n, false, false);
    KernelWorker* self = &w;
    w.run = [=]() {
      return tsm_softmax_forward(self->f32_out(0), n ? X->data() : nullptr, outer, dim, inner, log ? 1 : 0);
    };
  });
}

}  // namespace

void register_async(Napi::Env env, Napi::Object exports) {
  exports.Set("sgemmAsync", Napi::Function::New(env, SgemmAsync, "sgemmAsync"));
  exports.Set("conv2dForwardAsync", Napi::Function::New(env, Conv2dForwardAsync, "conv2dForwardAsync"));
  exports.Set("maxPool2dForwardAsync", Napi::Function::New(env, MaxPool2dForwardAsync, "maxPool2dForwardAsync"));
  exports.Set("avgPool2dForwardAsync", Napi::Function::New(env, AvgPool2dForwardAsync, "avgPool2dForwardAsync"));
  exports.Set("softmaxForwardAsync", Napi::Function::New(env, SoftmaxForwardAsync, "softmaxForwardAsync"));
}
