// Lab for the sm_90a GEMM (cuda/gemm_wgmma.cu): builds the kernel's variants (its compile-time
// flags) into one program that checks each against cuBLAS on random inputs and times both with CUDA
// events, so one call on a lent H100 compares them all. Not part of the library build.
//
// Build here (nvcc, no GPU needed):
//   nvcc -std=c++17 -O3 -gencode arch=compute_90a,code=sm_90a -Icpp/include -Icpp -Icuda \
//        -o .device/wgmma_lab tools/gpu-lab/wgmma_lab.cu -ldl
// Run there:  wgmma_lab TYPE FLAGS M N K [reps]   (TYPE bf16|tf32; FLAGS the variant, see WG_* in
// gemm_wgmma.cu; prints one line: variant, shape, ours and cuBLAS in ms and TFLOP/s, the ratio and
// the relative L2 error against cuBLAS). Run each variant in its own process under `timeout`:
// a hung kernel then costs one line.
#define TSM_WGMMA_LAB_VARIANTS(X) X(0) X(16)
#define TSM_WGMMA_LAB 1
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "../../cuda/gemm_wgmma.cu"
#include "lab_common.cuh"

using namespace tsm::cuda;
using namespace lab;

int main(int argc, char** argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: wgmma_lab bf16|tf32 FLAGS M N K [reps]\n");
    return 1;
  }
  const bool bf = std::string(argv[1]) == "bf16";
  const int flags = atoi(argv[2]);
  const int M = atoi(argv[3]), N = atoi(argv[4]), K = atoi(argv[5]);
  const int reps = argc > 6 ? atoi(argv[6]) : 30;
  const size_t esz = bf ? 2 : 4, csz = bf ? 2 : 4;
  const size_t abytes = size_t(M) * K * esz, bbytes = size_t(N) * K * esz, cbytes = size_t(M) * N * csz;
  const int sets = input_sets(abytes, bbytes);
  cudaStream_t stream;
  CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  using GemmExFn = int (*)(void*, int, int, int, int, int, const void*, const void*, int, int, const void*, int, int,
                           const void*, void*, int, int, int, int);
  const Cublas cublas = open_cublas(stream, "cublasGemmEx");
  const auto gemm_ex = reinterpret_cast<GemmExFn>(cublas.fn);

  const Operands ops = make_operands(stream, sets, int64_t(M) * K, int64_t(N) * K, cbytes, bf ? 1 : 0);

  GemmProblem p{};
  p.type = bf ? TSM_CUDA_GEMM_BF16 : TSM_CUDA_GEMM_TF32;
  p.ta = false;
  p.tb = true;
  p.batch = 1;
  p.m = M; p.n = N; p.k = K;
  p.alpha = 1.f; p.beta = 0.f;
  p.lda = K; p.ldb = K; p.ldc = N;
  p.c_dtype = bf ? 1 : 0;
  p.act = 0;
  auto ours = [&](int i) {
    p.a = ops.a[i]; p.b = ops.b[i]; p.c = ops.c[i];
    if (launch_wgmma_variant(p, stream, flags) != TSM_OK) exit(3);
  };
  const float one = 1.f, zero = 0.f;
  auto peer = [&](int i, void* c) {
    // row-major C (M x N) = A (M x K) B^T, B stored N x K: column-major C^T = op_T(B) op_N(A)
    const int dt = bf ? 14 : 0, comp = bf ? 68 : 77;
    int st = gemm_ex(cublas.handle, 1, 0, N, M, K, &one, ops.b[i], dt, K, ops.a[i], dt, K, &zero, c, dt, N, comp, -1);
    if (st != 0) { fprintf(stderr, "cublasGemmEx status %d\n", st); exit(2); }
  };

  // Check: poison C, run once, compare with cuBLAS.
  run_check(stream, ops, cbytes, ours, peer);
  const size_t nc = size_t(M) * N;
  std::vector<float> o(nc), r(nc);
  if (bf) {
    std::vector<uint16_t> a16(nc), b16(nc);
    CK(cudaMemcpy(a16.data(), ops.c[0], cbytes, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(b16.data(), ops.cref, cbytes, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < nc; ++i) {
      uint32_t x = uint32_t(a16[i]) << 16, y = uint32_t(b16[i]) << 16;
      memcpy(&o[i], &x, 4);
      memcpy(&r[i], &y, 4);
    }
  } else {
    CK(cudaMemcpy(o.data(), ops.c[0], cbytes, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(r.data(), ops.cref, cbytes, cudaMemcpyDeviceToHost));
  }
  size_t bad = 0;
  const double rel = rel_error(o, r, &bad);

  double mo = 0, mp = 0;
  time_pair(stream, sets, reps, ours, [&](int i) { peer(i, ops.c[i]); }, &mo, &mp);
  const double fl = 2.0 * M * N * K;
  printf("%-5s v%-3d %5dx%5dx%5d  ours %8.4f ms %6.1f TF  cublas %8.4f ms %6.1f TF  ratio %.3f  relerr %.2e%s\n",
         argv[1], flags, M, N, K, mo, fl / mo / 1e9, mp, fl / mp / 1e9, mp / mo, rel, bad ? "  NONFINITE" : "");
  return 0;
}
