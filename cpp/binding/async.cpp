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
#include "conv_args.h"

using namespace tsm_binding;

namespace {


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
  const ConvArgs ca = conv_args(info, 4, op);
  const tsm_conv2d_desc d = ca.d;
  const int64_t oh = ca.oh, ow = ca.ow;
  const int64_t ny = elems(env, op, d.n, d.oc, oh, ow), nx = elems(env, op, d.n, d.c, d.h, d.w),
                nw = elems(env, op, d.oc, d.c / d.groups, d.kh, d.kw);
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
  const int64_t oh = pool_out(env, op, "height", d.h, d.kh, d.stride_h, d.pad_h, d.dil_h, d.ceil_mode);
  const int64_t ow = pool_out(env, op, "width", d.w, d.kw, d.stride_w, d.pad_w, d.dil_w, d.ceil_mode);
  if (mul(env, op, d.h, d.w) > INT32_MAX) range_error(env, std::string(op) + ": H*W must fit in an int32 index");
  const int64_t ny = elems(env, op, d.n, d.c, oh, ow), nx = elems(env, op, d.n, d.c, d.h, d.w);
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
  const int64_t oh = pool_out(env, op, "height", d.h, d.kh, d.stride_h, d.pad_h, 1, d.ceil_mode);
  const int64_t ow = pool_out(env, op, "width", d.w, d.kw, d.stride_w, d.pad_w, 1, d.ceil_mode);
  const int64_t ny = elems(env, op, d.n, d.c, oh, ow), nx = elems(env, op, d.n, d.c, d.h, d.w);
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
