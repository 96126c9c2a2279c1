// Lab for the SIMT SGEMM (cuda/gemm_sgemm.cu): builds its tile variants (launch_sgemm_variant under
// TSM_SGEMM_LAB) into one program that checks each against cublasSgemm on random inputs and times
// both with CUDA events, so one call on a lent GPU compares them all. Not part of the library build.
//
// Build here (nvcc, no GPU needed):
//   nvcc -std=c++17 -O3 -gencode arch=compute_90a,code=sm_90a -Icpp/include -Icpp -Icuda \
//        -o .device/sgemm_lab tools/gpu-lab/sgemm_lab.cu -ldl
// Run there:  sgemm_lab LAYOUT VARIANT M N K [reps]   (LAYOUT nn|nt|tn|tt, row-major; VARIANT 0 is the
// library's own choice, 1.. the cases of launch_sgemm_variant; prints one line: variant, shape, ours
// and cuBLAS in ms and TFLOP/s, the ratio and the relative L2 error against cuBLAS).
#define TSM_SGEMM_LAB 1
#include <string>
#include <vector>

#include "../../cuda/gemm_sgemm.cu"
#include "lab_common.cuh"

using namespace tsm::cuda;
using namespace lab;

int main(int argc, char** argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: sgemm_lab nn|nt|tn|tt VARIANT M N K [reps]\n");
    return 1;
  }
  const std::string lay = argv[1];
  const bool ta = lay[0] == 't', tb = lay[1] == 't';
  const int variant = atoi(argv[2]);
  const int M = atoi(argv[3]), N = atoi(argv[4]), K = atoi(argv[5]);
  const int reps = argc > 6 ? atoi(argv[6]) : 30;
  const size_t abytes = size_t(M) * K * 4, bbytes = size_t(N) * K * 4, cbytes = size_t(M) * N * 4;
  const int sets = input_sets(abytes, bbytes);
  cudaStream_t stream;
  CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  using SgemmFn = int (*)(void*, int, int, int, int, int, const float*, const float*, int, const float*, int,
                          const float*, float*, int);
  const Cublas cublas = open_cublas(stream, "cublasSgemm_v2");
  const auto sgemm = reinterpret_cast<SgemmFn>(cublas.fn);

  const Operands ops = make_operands(stream, sets, int64_t(M) * K, int64_t(N) * K, cbytes, 0);

  GemmProblem p{};
  p.type = TSM_CUDA_GEMM_F32;
  p.ta = ta;
  p.tb = tb;
  p.batch = 1;
  p.m = M; p.n = N; p.k = K;
  p.alpha = 1.f; p.beta = 0.f;
  p.lda = ta ? M : K; p.ldb = tb ? K : N; p.ldc = N;
  p.c_dtype = 0;
  p.act = 0;
  auto ours = [&](int i) {
    p.a = ops.a[i]; p.b = ops.b[i]; p.c = ops.c[i];
    if (launch_sgemm_variant(p, stream, variant) != TSM_OK) exit(3);
  };
  const float one = 1.f, zero = 0.f;
  auto peer = [&](int i, void* c) {
    // row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: cuBLAS gets B first.
    int st = sgemm(cublas.handle, tb ? 1 : 0, ta ? 1 : 0, N, M, K, &one, static_cast<const float*>(ops.b[i]), int(p.ldb),
                   static_cast<const float*>(ops.a[i]), int(p.lda), &zero, static_cast<float*>(c), N);
    if (st != 0) { fprintf(stderr, "cublasSgemm status %d\n", st); exit(2); }
  };

  // Check: poison C, run once, compare with cuBLAS.
  run_check(stream, ops, cbytes, ours, peer);
  const size_t nc = size_t(M) * N;
  std::vector<float> o(nc), r(nc);
  CK(cudaMemcpy(o.data(), ops.c[0], cbytes, cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(r.data(), ops.cref, cbytes, cudaMemcpyDeviceToHost));
  size_t bad = 0;
  const double rel = rel_error(o, r, &bad);

  double mo = 0, mp = 0;
  time_pair(stream, sets, reps, ours, [&](int i) { peer(i, ops.c[i]); }, &mo, &mp);
  const double fl = 2.0 * M * N * K;
  printf("f32 %s v%-3d %5dx%5dx%5d  ours %8.4f ms %6.1f TF  cublas %8.4f ms %6.1f TF  ratio %.3f  relerr %.2e%s\n",
         argv[1], variant, M, N, K, mo, fl / mo / 1e9, mp, fl / mp / 1e9, mp / mo, rel, bad ? "  NONFINITE" : "");
  return 0;
}
