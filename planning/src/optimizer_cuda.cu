// CUDA twin of the optimiser's matrix products (optimizer.cpp): y = A x with one warp per row of
// A, and A^T g with one warp per row of the transposed matrix (a column of A). Each warp sums its
// row in a fixed order (lane-strided partial sums, then a shuffle tree), so results do not
// change from run to run. Sees only the plain structs of optimizer_impl.h.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "optimizer_impl.h"

namespace isoline::planning::detail {

namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    throw std::runtime_error(std::string("cuda: ") + what + ": " + cudaGetErrorString(e));
}

template <class T>
T* upload(const T* host, std::size_t n, const char* what) {
  T* d = nullptr;
  check(cudaMalloc(&d, (n ? n : 1) * sizeof(T)), what);
  if (n) check(cudaMemcpy(d, host, n * sizeof(T), cudaMemcpyHostToDevice), what);
  return d;
}

struct DeviceCsr {
  std::int64_t rows = 0, cols = 0;
  std::int64_t* row_ptr = nullptr;
  std::int32_t* col = nullptr;
  float* val = nullptr;
};

__device__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// One warp per row: out[r] = sum_n val[n] * in[col[n]].
template <class In, class Out>
__global__ void csr_rows(DeviceCsr m, const In* in, Out* out) {
  const long long warp = (blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (warp >= m.rows) return;
  double s = 0.0;
  for (std::int64_t n = m.row_ptr[warp] + lane; n < m.row_ptr[warp + 1]; n += 32)
    s += static_cast<double>(m.val[n]) * static_cast<double>(in[m.col[n]]);
  s = warp_sum(s);
  if (lane == 0) out[warp] = static_cast<Out>(s);
}

}  // namespace

struct CudaProducts {
  int device = 0;
  DeviceCsr a, at;
  float* x = nullptr;    // cols
  float* y = nullptr;    // rows
  double* g = nullptr;   // rows
  double* gx = nullptr;  // cols
};

namespace {
void release(CudaProducts* p) {
  for (void* q :
       {static_cast<void*>(p->a.row_ptr), static_cast<void*>(p->a.col),
        static_cast<void*>(p->a.val), static_cast<void*>(p->at.row_ptr),
        static_cast<void*>(p->at.col), static_cast<void*>(p->at.val), static_cast<void*>(p->x),
        static_cast<void*>(p->y), static_cast<void*>(p->g), static_cast<void*>(p->gx)})
    if (q) cudaFree(q);
  delete p;
}

DeviceCsr to_device(const CsrView& v) {
  DeviceCsr d;
  d.rows = v.rows;
  d.cols = v.cols;
  const std::size_t nnz = static_cast<std::size_t>(v.row_ptr[v.rows]);
  d.row_ptr = upload(v.row_ptr, static_cast<std::size_t>(v.rows + 1), "copy influence matrix");
  d.col = upload(v.col, nnz, "copy influence matrix");
  d.val = upload(v.val, nnz, "copy influence matrix");
  return d;
}

unsigned blocks_for_warps(std::int64_t warps, int threads) {
  return static_cast<unsigned>((warps * 32 + threads - 1) / threads);
}
}  // namespace

CudaProducts* cuda_products_create(const CsrView& a, const CsrView& a_transpose, int device) {
  auto* p = new CudaProducts;
  try {
    p->device = device;
    check(cudaSetDevice(device), "cudaSetDevice");
    p->a = to_device(a);
    p->at = to_device(a_transpose);
    check(cudaMalloc(&p->x, (a.cols ? a.cols : 1) * sizeof(float)), "cudaMalloc");
    check(cudaMalloc(&p->y, (a.rows ? a.rows : 1) * sizeof(float)), "cudaMalloc");
    check(cudaMalloc(&p->g, (a.rows ? a.rows : 1) * sizeof(double)), "cudaMalloc");
    check(cudaMalloc(&p->gx, (a.cols ? a.cols : 1) * sizeof(double)), "cudaMalloc");
  } catch (...) {
    release(p);
    throw;
  }
  return p;
}

void cuda_products_destroy(CudaProducts* p) {
  if (p) release(p);
}

void cuda_multiply(CudaProducts* p, const float* x, float* y) {
  check(cudaSetDevice(p->device), "cudaSetDevice");
  check(cudaMemcpy(p->x, x, p->a.cols * sizeof(float), cudaMemcpyHostToDevice), "copy weights");
  const int threads = 256;
  if (p->a.rows > 0) {
    csr_rows<float, float><<<blocks_for_warps(p->a.rows, threads), threads>>>(p->a, p->x, p->y);
    check(cudaGetLastError(), "dose product kernel");
  }
  check(cudaMemcpy(y, p->y, p->a.rows * sizeof(float), cudaMemcpyDeviceToHost), "copy dose");
}

void cuda_multiply_transpose(CudaProducts* p, const double* g, double* out) {
  check(cudaSetDevice(p->device), "cudaSetDevice");
  check(cudaMemcpy(p->g, g, p->a.rows * sizeof(double), cudaMemcpyHostToDevice),
        "copy dose gradient");
  const int threads = 256;
  if (p->at.rows > 0) {
    csr_rows<double, double>
        <<<blocks_for_warps(p->at.rows, threads), threads>>>(p->at, p->g, p->gx);
    check(cudaGetLastError(), "gradient product kernel");
  }
  check(cudaMemcpy(out, p->gx, p->at.rows * sizeof(double), cudaMemcpyDeviceToHost),
        "copy gradient");
}

}  // namespace isoline::planning::detail
