// The optimiser's two matrix products, y = A x and g_x = A^T g_d, on a GPU: plain structs and
// functions shared by optimizer.cpp and its CUDA twin optimizer_cuda.cu (which sees nothing else).
#pragma once

#include <cstdint>

namespace isoline::planning::detail {

/// Compressed sparse rows of a float32 matrix (rows x cols).
struct CsrView {
  std::int64_t rows = 0, cols = 0;
  const std::int64_t* row_ptr = nullptr;  ///< rows + 1
  const std::int32_t* col = nullptr;
  const float* val = nullptr;
};

/// A matrix and its transpose held on the GPU for repeated products. Each function throws
/// std::runtime_error naming the CUDA call that failed.
struct CudaProducts;
CudaProducts* cuda_products_create(const CsrView& a, const CsrView& a_transpose, int device);
void cuda_products_destroy(CudaProducts* p);
/// y (rows) = A x (cols), accumulated in double per row.
void cuda_multiply(CudaProducts* p, const float* x, float* y);
/// out (cols) = A^T g (rows), accumulated in double; deterministic (fixed summation order).
void cuda_multiply_transpose(CudaProducts* p, const double* g, double* out);

}  // namespace isoline::planning::detail
