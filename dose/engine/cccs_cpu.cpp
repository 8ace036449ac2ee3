// CPU (OpenMP) implementation of TERMA ray tracing and collapsed-cone transport.
#include <algorithm>
#include <cmath>

#include "engine_internal.h"

namespace isoline::dose::detail {

void terma_cpu(const PreparedBox& pb, const impl::BeamFrame& f, const impl::Spectrum& sp,
               const impl::FluencePlane& plane, const float src_idx[3], float thr,
               std::vector<float>& ta, std::vector<float>& tb) {
  const impl::Box& b = pb.box;
  ta.assign(pb.density.size(), 0.f);
  tb.assign(pb.density.size(), 0.f);
  const float step = 0.75f * std::min({pb.geom.spacing[0], pb.geom.spacing[1], pb.geom.spacing[2]});
  const int nz = b.n[2], ny = b.n[1], nx = b.n[0];
#pragma omp parallel for schedule(dynamic, 1) collapse(2)
  for (int k = 0; k < nz; ++k)
    for (int j = 0; j < ny; ++j)
      for (int i = 0; i < nx; ++i) {
        const long idx = (static_cast<long>(k) * ny + j) * nx + i;
        if (pb.density[idx] < thr) continue;
        float p[3];
        impl::voxel_world(pb.geom, static_cast<float>(i + b.lo[0]), static_cast<float>(j + b.lo[1]),
                          static_cast<float>(k + b.lo[2]), p);
        float u, v, dist;
        if (!impl::project(f, p, u, v, dist)) continue;
        const float psi = impl::fluence_at(plane, u, v);
        if (psi <= 0.f) continue;
        const float drad = impl::radiological_depth(b, pb.density.data(), src_idx, i, j, k, pb.geom.spacing, step);
        float kr;
        const float T = psi * impl::unit_terma(sp, dist, f.sad, drad, &kr);
        impl::split_terma(sp, T, kr, ta[idx], tb[idx]);
      }
}

void cccs_cpu(const PreparedBox& pb, const DirectionSet& ds, const std::vector<float>& ta,
              const std::vector<float>& tb, std::vector<float>& dose) {
  dose.assign(pb.density.size(), 0.f);
  for (std::size_t di = 0; di < ds.dirs.size(); ++di) {
    const impl::Direction d = ds.dirs[di];
    const float* lut = ds.lut.data() + di * impl::kLutPerDirection;
    int lo_i, n_i, lo_o, n_o;
    impl::line_range(d, pb.box, lo_i, n_i, lo_o, n_o);
#pragma omp parallel
    {
      std::vector<float> RA(static_cast<std::size_t>(n_i)), RB(static_cast<std::size_t>(n_i));
#pragma omp for schedule(dynamic, 4)
      for (int o = 0; o < n_o; ++o)
        impl::transport_sheet(d, pb.box, lo_i, n_i, lo_o + o, pb.q.data(), ta.data(), tb.data(), lut,
                              dose.data(), RA.data(), RB.data());
    }
  }
}

}  // namespace isoline::dose::detail
