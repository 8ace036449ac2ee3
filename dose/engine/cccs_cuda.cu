// CUDA twin of cccs_cpu.cpp: TERMA ray tracing (one thread per voxel) and collapsed-cone
// transport (one thread per line, one launch per direction). Shares its math with the CPU
// through cccs_impl.h; sees only plain structs.
#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <vector>

#include "engine_internal.h"

namespace isoline::dose::detail {

namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    throw EngineError(EngineError::Device, std::string("compute dose: cuda: ") + what + ": " +
                                                cudaGetErrorString(e));
}

template <class T>
struct DeviceBuffer {
  T* p = nullptr;
  explicit DeviceBuffer(std::size_t n) {
    if (n) check(cudaMalloc(&p, n * sizeof(T)), "cudaMalloc");
  }
  ~DeviceBuffer() {
    if (p) cudaFree(p);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

__global__ void terma_kernel(impl::Box b, const float* density, impl::GridGeom geom,
                             impl::BeamFrame f, impl::Spectrum sp, impl::FluencePlane plane,
                             float sx, float sy, float sz, float thr, float step, float* ta,
                             float* tb) {
  long idx = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  long n = static_cast<long>(b.n[0]) * b.n[1] * b.n[2];
  if (idx >= n) return;
  ta[idx] = 0.f;
  tb[idx] = 0.f;
  if (density[idx] < thr) return;
  int i = static_cast<int>(idx % b.n[0]);
  int j = static_cast<int>((idx / b.n[0]) % b.n[1]);
  int k = static_cast<int>(idx / (static_cast<long>(b.n[0]) * b.n[1]));
  float p[3];
  impl::voxel_world(geom, static_cast<float>(i + b.lo[0]), static_cast<float>(j + b.lo[1]),
                    static_cast<float>(k + b.lo[2]), p);
  float u, v, dist;
  if (!impl::project(f, p, u, v, dist)) return;
  float psi = impl::fluence_at(plane, u, v);
  if (psi <= 0.f) return;
  float src[3] = {sx, sy, sz};
  float drad = impl::radiological_depth(b, density, src, i, j, k, geom.spacing, step);
  float kr;
  float T = psi * impl::unit_terma(sp, dist, f.sad, drad, &kr);
  impl::split_terma(sp, T, kr, ta[idx], tb[idx]);
}

__global__ void cccs_kernel(impl::Direction d, impl::Box b, int lo1, int n1, int lo2, int n2,
                            const std::uint16_t* q, const float* ta, const float* tb,
                            const float* lut, float* dose) {
  long l = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (l >= static_cast<long>(n1) * n2) return;
  // consecutive threads take neighbouring lines along the inner axis (coalesced access)
  int oi = lo1 + static_cast<int>(l % n1), oo = lo2 + static_cast<int>(l / n1);
  impl::transport_line(d, b, oi, oo, q, ta, tb, lut, dose);
}

// Influence matrix: blockIdx.y = beamlet of the batch, x = its lines for this direction.
__global__ void influence_kernel(impl::Direction d, const impl::Box* boxes, const long long* offsets,
                                 const std::uint16_t* q, const float* ta, const float* tb,
                                 const float* lut, float* dose) {
  const int bl = blockIdx.y;
  const impl::Box b = boxes[bl];
  int lo1, n1, lo2, n2;
  impl::line_range(d, b, lo1, n1, lo2, n2);
  long l = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (l >= static_cast<long>(n1) * n2) return;
  const long long off = offsets[bl];
  impl::transport_line(d, b, lo1 + static_cast<int>(l % n1), lo2 + static_cast<int>(l / n1), q + off, ta + off,
                       tb + off, lut, dose + off);
}

}  // namespace

void influence_batch_cuda(const CudaInfluenceBatch& job) {
  check(cudaSetDevice(job.device), "cudaSetDevice");
  std::vector<long long> offsets(static_cast<std::size_t>(job.n) + 1, 0);
  for (int c = 0; c < job.n; ++c) offsets[c + 1] = offsets[c] + impl::box_count(job.boxes[c]);
  const std::size_t n = static_cast<std::size_t>(offsets[job.n]);
  DeviceBuffer<float> d_ta(n), d_tb(n), d_dose(n);
  DeviceBuffer<std::uint16_t> d_q(n);
  DeviceBuffer<impl::Box> d_boxes(static_cast<std::size_t>(job.n));
  DeviceBuffer<long long> d_off(static_cast<std::size_t>(job.n));
  const std::size_t nlut = static_cast<std::size_t>(job.n_dirs) * impl::kLutPerDirection;
  DeviceBuffer<float> d_lut(nlut);
  for (int c = 0; c < job.n; ++c) {
    const std::size_t nc = static_cast<std::size_t>(offsets[c + 1] - offsets[c]), o = static_cast<std::size_t>(offsets[c]);
    check(cudaMemcpy(d_q.p + o, job.q[c], nc * sizeof(std::uint16_t), cudaMemcpyHostToDevice), "copy density");
    check(cudaMemcpy(d_ta.p + o, job.ta[c], nc * sizeof(float), cudaMemcpyHostToDevice), "copy TERMA");
    check(cudaMemcpy(d_tb.p + o, job.tb[c], nc * sizeof(float), cudaMemcpyHostToDevice), "copy TERMA");
  }
  check(cudaMemcpy(d_boxes.p, job.boxes, job.n * sizeof(impl::Box), cudaMemcpyHostToDevice), "copy boxes");
  check(cudaMemcpy(d_off.p, offsets.data(), job.n * sizeof(long long), cudaMemcpyHostToDevice), "copy offsets");
  check(cudaMemcpy(d_lut.p, job.lut, nlut * sizeof(float), cudaMemcpyHostToDevice), "copy kernel tables");
  check(cudaMemset(d_dose.p, 0, n * sizeof(float)), "clear dose");
  const int threads = 128;
  for (int di = 0; di < job.n_dirs; ++di) {
    long max_lines = 0;
    for (int c = 0; c < job.n; ++c) {
      int lo1, n1, lo2, n2;
      impl::line_range(job.dirs[di], job.boxes[c], lo1, n1, lo2, n2);
      max_lines = std::max(max_lines, static_cast<long>(n1) * n2);
    }
    dim3 grid(static_cast<unsigned>((max_lines + threads - 1) / threads), static_cast<unsigned>(job.n));
    influence_kernel<<<grid, threads>>>(job.dirs[di], d_boxes.p, d_off.p, d_q.p, d_ta.p, d_tb.p,
                                        d_lut.p + static_cast<std::size_t>(di) * impl::kLutPerDirection, d_dose.p);
    check(cudaGetLastError(), "influence CCCS kernel");
  }
  for (int c = 0; c < job.n; ++c) {
    const std::size_t nc = static_cast<std::size_t>(offsets[c + 1] - offsets[c]), o = static_cast<std::size_t>(offsets[c]);
    check(cudaMemcpy(job.dose_out[c], d_dose.p + o, nc * sizeof(float), cudaMemcpyDeviceToHost), "copy dose");
  }
}

int cuda_devices() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

void beam_dose_cuda(const CudaBeamJob& job) {
  check(cudaSetDevice(job.device), "cudaSetDevice");
  const impl::Box b = *job.box;
  const std::size_t n = static_cast<std::size_t>(impl::box_count(b));
  DeviceBuffer<float> d_density(n), d_ta(n), d_tb(n), d_dose(n);
  DeviceBuffer<std::uint16_t> d_q(n);
  const std::size_t nplane = static_cast<std::size_t>(job.plane.nu) * job.plane.nv;
  DeviceBuffer<float> d_plane(nplane);
  const std::size_t nlut = static_cast<std::size_t>(job.n_dirs) * impl::kLutPerDirection;
  DeviceBuffer<float> d_lut(nlut);
  check(cudaMemcpy(d_density.p, job.density, n * sizeof(float), cudaMemcpyHostToDevice), "copy density");
  check(cudaMemcpy(d_q.p, job.q, n * sizeof(std::uint16_t), cudaMemcpyHostToDevice), "copy density");
  check(cudaMemcpy(d_plane.p, job.plane.data, nplane * sizeof(float), cudaMemcpyHostToDevice), "copy fluence");
  check(cudaMemcpy(d_lut.p, job.lut, nlut * sizeof(float), cudaMemcpyHostToDevice), "copy kernel tables");
  check(cudaMemset(d_dose.p, 0, n * sizeof(float)), "clear dose");
  impl::FluencePlane plane = job.plane;
  plane.data = d_plane.p;
  const float step = 0.75f * fminf(job.geom.spacing[0], fminf(job.geom.spacing[1], job.geom.spacing[2]));
  const int threads = 256;
  terma_kernel<<<static_cast<unsigned>((n + threads - 1) / threads), threads>>>(
      b, d_density.p, job.geom, job.frame, job.spectrum, plane, job.src_idx[0], job.src_idx[1],
      job.src_idx[2], job.density_threshold, step, d_ta.p, d_tb.p);
  check(cudaGetLastError(), "TERMA kernel");
  for (int di = 0; di < job.n_dirs; ++di) {
    int lo1, n1, lo2, n2;
    impl::line_range(job.dirs[di], b, lo1, n1, lo2, n2);
    const long nlines = static_cast<long>(n1) * n2;
    cccs_kernel<<<static_cast<unsigned>((nlines + threads - 1) / threads), threads>>>(
        job.dirs[di], b, lo1, n1, lo2, n2, d_q.p, d_ta.p, d_tb.p,
        d_lut.p + static_cast<std::size_t>(di) * impl::kLutPerDirection, d_dose.p);
    check(cudaGetLastError(), "CCCS kernel");
  }
  check(cudaMemcpy(job.dose_out, d_dose.p, n * sizeof(float), cudaMemcpyDeviceToHost), "copy dose");
}

}  // namespace isoline::dose::detail
