// Beamlet influence matrix: one CCCS calculation per beamlet on the sub-box its dose can reach
// (the beamlet's tube widened by the lateral cutoff), beamlets in parallel (OpenMP).
#include <algorithm>
#include <cmath>
#include <utility>

#include "engine_internal.h"

namespace isoline::dose {

namespace {

struct BBox {
  int lo[3] = {1 << 30, 1 << 30, 1 << 30};
  int hi[3] = {-1, -1, -1};
  void add(int i, int j, int k) {
    const int p[3] = {i, j, k};
    for (int a = 0; a < 3; ++a) {
      lo[a] = std::min(lo[a], p[a]);
      hi[a] = std::max(hi[a], p[a]);
    }
  }
  void add(const BBox& o) {
    if (o.hi[0] < 0) return;
    for (int a = 0; a < 3; ++a) {
      lo[a] = std::min(lo[a], o.lo[a]);
      hi[a] = std::max(hi[a], o.hi[a]);
    }
  }
  bool empty() const { return hi[0] < 0; }
};

// Serial transport over a box (the caller parallelises over beamlets).
// `tl`, `th`: bounding box (inclusive, box indices) of the voxels with TERMA. Lines carry no
// energy before they reach it, so steps before it and sheets that never cross it are skipped.
void cccs_serial(const impl::Box& box, const std::uint16_t* q, const float* ta, const float* tb,
                 const detail::DirectionSet& ds, float* dose, std::vector<float>& RA,
                 std::vector<float>& RB, const int tl[3], const int th[3]) {
  for (std::size_t di = 0; di < ds.dirs.size(); ++di) {
    const impl::Direction& d = ds.dirs[di];
    const float* lut = ds.lut.data() + di * impl::kLutPerDirection;
    int lo_i, n_i, lo_o, n_o;
    impl::line_range(d, box, lo_i, n_i, lo_o, n_o);
    if (RA.size() < static_cast<std::size_t>(n_i)) {
      RA.resize(n_i);
      RB.resize(n_i);
    }
    const int nk = box.n[d.axis];
    const int s0 = d.sign > 0 ? tl[d.axis] : nk - 1 - th[d.axis];
    const int s1 = d.sign > 0 ? th[d.axis] : nk - 1 - tl[d.axis];
    const int sh0 = static_cast<int>(std::floor(s0 * d.to + 0.5f)), sh1 = static_cast<int>(std::floor(s1 * d.to + 0.5f));
    const int shmin = std::min(sh0, sh1), shmax = std::max(sh0, sh1);
    for (int o = 0; o < n_o; ++o) {
      const int oo = lo_o + o;
      if (oo + shmax < tl[d.ao] || oo + shmin > th[d.ao]) continue;  // never crosses the TERMA
      impl::transport_sheet(d, box, lo_i, n_i, oo, q, ta, tb, lut, dose, RA.data(), RB.data(), s0);
    }
  }
}

struct BeamletWork {
  impl::Box sub{};
  std::vector<std::uint16_t> q;
  std::vector<float> ta, tb;
  int tl[3] = {0, 0, 0}, th[3] = {-1, -1, -1};  ///< bounding box of the voxels with TERMA
  bool empty = true;
};

#ifdef ISOLINE_DOSE_WITH_CUDA
constexpr long kCudaBatch = 256;                ///< at most this many beamlets per GPU batch
constexpr long long kCudaBatchVoxels = 1LL << 26;  ///< and this many sub-box voxels (~0.9 GB host)
#endif

inline float edge_profile(float x, float a, float b, float inv_s) {
  return 0.5f * (std::erf((x - a) * inv_s) - std::erf((x - b) * inv_s));
}

}  // namespace

std::vector<float> InfluenceMatrix::multiply(const std::vector<float>& x) const {
  if (static_cast<std::int64_t>(x.size()) != cols)
    throw EngineError(EngineError::Input, "influence multiply: x has " + std::to_string(x.size()) +
                                              " entries, expected " + std::to_string(cols));
  std::vector<float> y(static_cast<std::size_t>(rows), 0.f);
#pragma omp parallel for schedule(dynamic, 4096)
  for (std::int64_t r = 0; r < rows; ++r) {
    double s = 0;
    for (std::int64_t p = row_ptr[r]; p < row_ptr[r + 1]; ++p) s += values[p] * x[col_index[p]];
    y[r] = static_cast<float>(s);
  }
  return y;
}

InfluenceMatrix compute_influence(const Grid& grid, const std::vector<float>& density,
                                  const std::vector<std::uint8_t>& target,
                                  const std::vector<Beam>& beams, const Machine& m,
                                  const CalcOptions& o, const InfluenceOptions& io,
                                  void (*progress)(double, void*), void* user) {
  const std::size_t N = grid.num_voxels();
  if (density.size() != N || target.size() != N)
    throw EngineError(EngineError::Input, "compute influence: density and target must match the grid");
  validate_beams(beams, m, grid);
  if (!(io.bixel_mm > 0) || !(io.lateral_cutoff_mm > 0))
    throw EngineError(EngineError::Input, "compute influence: bixel size and lateral cutoff must be > 0");
  if (o.use_cuda && !engine_cuda_available())
    throw EngineError(EngineError::Device, engine_built_with_cuda()
                                               ? "compute influence: cuda: no CUDA device is available"
                                               : "compute influence: cuda: this build has no CUDA kernels");
  const double kcal = calibration_factor(m, o);
  detail::PreparedBox pb = detail::prepare_box(grid, density, o.density_threshold);
  const impl::Box& B = pb.box;
  const std::size_t nb = pb.density.size();
  const float thr = static_cast<float>(o.density_threshold);
  const impl::Spectrum sp = detail::spectrum(m);
  const float step = 0.75f * std::min({pb.geom.spacing[0], pb.geom.spacing[1], pb.geom.spacing[2]});
  const float inv_s = static_cast<float>(1.0 / (std::sqrt(2.0) * m.source_sigma_mm));

  InfluenceMatrix out;
  out.rows = static_cast<std::int64_t>(N);
  std::vector<std::vector<std::pair<std::int64_t, float>>> columns;

  for (std::size_t bi = 0; bi < beams.size(); ++bi) {
    const Beam& beam = beams[bi];
    const impl::BeamFrame f = detail::beam_frame(beam, m);
    const detail::DirectionSet ds = detail::make_directions(f, m, o, pb.geom);
    float src[3];
    detail::source_index(grid, B, f, src);
    // Per voxel: projection onto the isocentre plane and unit TERMA (fluence 1).
    std::vector<float> U(nb, 1e30f), V(nb, 1e30f), TU(nb, 0.f), KR(nb, 0.f);
#pragma omp parallel for schedule(dynamic, 1) collapse(2)
    for (int k = 0; k < B.n[2]; ++k)
      for (int j = 0; j < B.n[1]; ++j)
        for (int i = 0; i < B.n[0]; ++i) {
          const long idx = (static_cast<long>(k) * B.n[1] + j) * B.n[0] + i;
          if (pb.density[idx] < thr) continue;
          float p[3];
          impl::voxel_world(pb.geom, static_cast<float>(i + B.lo[0]), static_cast<float>(j + B.lo[1]),
                            static_cast<float>(k + B.lo[2]), p);
          float u, v, dist;
          if (!impl::project(f, p, u, v, dist)) continue;
          U[idx] = u;
          V[idx] = v;
          if (u < beam.jaw_x1_mm - io.lateral_cutoff_mm || u > beam.jaw_x2_mm + io.lateral_cutoff_mm ||
              v < beam.jaw_y1_mm - io.lateral_cutoff_mm || v > beam.jaw_y2_mm + io.lateral_cutoff_mm)
            continue;
          const float drad = impl::radiological_depth(B, pb.density.data(), src, i, j, k, pb.geom.spacing, step);
          TU[idx] = impl::unit_terma(sp, dist, f.sad, drad, &KR[idx]) * detail::horn(m, std::hypot(u, v));
        }
    // Bixel grid over the jaws, extended by the cutoff for the voxel bounding boxes.
    const double bx = io.bixel_mm;
    const int nx = std::max(1, static_cast<int>(std::ceil((beam.jaw_x2_mm - beam.jaw_x1_mm) / bx - 1e-9)));
    const int ny = std::max(1, static_cast<int>(std::ceil((beam.jaw_y2_mm - beam.jaw_y1_mm) / bx - 1e-9)));
    const double x0 = 0.5 * (beam.jaw_x1_mm + beam.jaw_x2_mm) - 0.5 * nx * bx;
    const double y0 = 0.5 * (beam.jaw_y1_mm + beam.jaw_y2_mm) - 0.5 * ny * bx;
    const int ext = static_cast<int>(std::ceil(io.lateral_cutoff_mm / bx)) + 1;
    const int ex_nx = nx + 2 * ext, ex_ny = ny + 2 * ext;
    std::vector<BBox> cell(static_cast<std::size_t>(ex_nx) * ex_ny);
    std::vector<char> selected(static_cast<std::size_t>(nx) * ny, 0);
    const int mx = static_cast<int>(std::ceil(io.target_margin_mm / bx));
    for (int k = 0; k < B.n[2]; ++k)
      for (int j = 0; j < B.n[1]; ++j)
        for (int i = 0; i < B.n[0]; ++i) {
          const long idx = (static_cast<long>(k) * B.n[1] + j) * B.n[0] + i;
          if (U[idx] > 1e29f) continue;
          const int cx = static_cast<int>(std::floor((U[idx] - x0) / bx)) + ext;
          const int cy = static_cast<int>(std::floor((V[idx] - y0) / bx)) + ext;
          if (cx < 0 || cy < 0 || cx >= ex_nx || cy >= ex_ny) continue;
          cell[static_cast<std::size_t>(cy) * ex_nx + cx].add(i, j, k);
          const std::size_t g = (static_cast<std::size_t>(k + B.lo[2]) * grid.size[1] + (j + B.lo[1])) * grid.size[0] + (i + B.lo[0]);
          if (target[g]) {
            for (int dy = -mx; dy <= mx; ++dy)
              for (int dx = -mx; dx <= mx; ++dx) {
                const int sx = cx - ext + dx, sy = cy - ext + dy;
                if (sx >= 0 && sy >= 0 && sx < nx && sy < ny) selected[static_cast<std::size_t>(sy) * nx + sx] = 1;
              }
          }
        }
    std::vector<std::pair<int, int>> list;
    for (int sy = 0; sy < ny; ++sy)
      for (int sx = 0; sx < nx; ++sx)
        if (selected[static_cast<std::size_t>(sy) * nx + sx]) list.emplace_back(sx, sy);
    const std::size_t first_col = columns.size();
    columns.resize(first_col + list.size());
    for (const auto& [sx, sy] : list) {
      BeamletInfo info;
      info.beam = static_cast<int>(bi);
      info.x_mm = x0 + (sx + 0.5) * bx;
      info.y_mm = y0 + (sy + 0.5) * bx;
      out.beamlets.push_back(info);
    }
    const double scale = kcal * head_scatter(m, detail::equivalent_square_cm(beam));
    const float cut2 = static_cast<float>(io.lateral_cutoff_mm * io.lateral_cutoff_mm);
    // One beamlet's work: set up its sub-box (quantised density, TERMA), transport (CPU or GPU),
    // then keep the entries within the cutoff.
    // the sub-box a beamlet's dose can reach (n = 0 when none)
    auto sub_box = [&](long li) {
      const int sx = list[li].first, sy = list[li].second;
      BBox bbx;
      for (int dy = -ext; dy <= ext; ++dy)
        for (int dx = -ext; dx <= ext; ++dx) {
          const int cx = sx + ext + dx, cy = sy + ext + dy;
          if (cx >= 0 && cy >= 0 && cx < ex_nx && cy < ex_ny) bbx.add(cell[static_cast<std::size_t>(cy) * ex_nx + cx]);
        }
      impl::Box sub{};
      if (!bbx.empty())
        for (int a = 0; a < 3; ++a) {
          sub.lo[a] = bbx.lo[a];
          sub.n[a] = bbx.hi[a] - bbx.lo[a] + 1;
        }
      return sub;
    };
    auto setup = [&](long li, BeamletWork& w) {
      const int sx = list[li].first, sy = list[li].second;
      w.empty = true;
      w.sub = sub_box(li);
      const impl::Box& sub = w.sub;
      if (sub.n[0] == 0) return;
      const std::size_t ns = static_cast<std::size_t>(impl::box_count(sub));
      w.q.assign(ns, 0);
      w.ta.assign(ns, 0.f);
      w.tb.assign(ns, 0.f);
      const float ua = static_cast<float>(x0 + sx * bx), ub = static_cast<float>(ua + bx);
      const float va = static_cast<float>(y0 + sy * bx), vb = static_cast<float>(va + bx);
      const float ja = static_cast<float>(beam.jaw_x1_mm), jb = static_cast<float>(beam.jaw_x2_mm);
      const float jc = static_cast<float>(beam.jaw_y1_mm), jd = static_cast<float>(beam.jaw_y2_mm);
      for (int a = 0; a < 3; ++a) w.tl[a] = 1 << 30, w.th[a] = -1;
      for (int k = 0; k < sub.n[2]; ++k)
        for (int j = 0; j < sub.n[1]; ++j)
          for (int i = 0; i < sub.n[0]; ++i) {
            const std::size_t s = (static_cast<std::size_t>(k) * sub.n[1] + j) * sub.n[0] + i;
            const long p = (static_cast<long>(k + sub.lo[2]) * B.n[1] + (j + sub.lo[1])) * B.n[0] + (i + sub.lo[0]);
            w.q[s] = pb.q[p];
            if (TU[p] > 0.f) {
              // bixel clipped by the jaws, blurred by the focal spot
              const float px = edge_profile(U[p], std::max(ua, ja), std::min(ub, jb), inv_s);
              const float py = edge_profile(V[p], std::max(va, jc), std::min(vb, jd), inv_s);
              const float psi = px * py;
              if (psi > 1e-5f) {
                impl::split_terma(sp, psi * TU[p], KR[p], w.ta[s], w.tb[s]);
                const int c[3] = {i, j, k};
                for (int a = 0; a < 3; ++a) {
                  w.tl[a] = std::min(w.tl[a], c[a]);
                  w.th[a] = std::max(w.th[a], c[a]);
                }
              }
            }
          }
      w.empty = w.th[0] < 0;  // no TERMA: the beamlet misses the body
    };
    auto extract = [&](long li, const BeamletWork& w, const float* dose) {
      const int sx = list[li].first, sy = list[li].second;
      const float ua = static_cast<float>(x0 + sx * bx), ub = static_cast<float>(ua + bx);
      const float va = static_cast<float>(y0 + sy * bx), vb = static_cast<float>(va + bx);
      const float uc = 0.5f * (ua + ub), vc = 0.5f * (va + vb);
      const impl::Box& sub = w.sub;
      const std::size_t ns = static_cast<std::size_t>(impl::box_count(sub));
      float dmax = 0.f;
      for (std::size_t s = 0; s < ns; ++s) dmax = std::max(dmax, dose[s]);
      auto& col = columns[first_col + li];
      const float cutoff_value = io.relative_threshold * dmax;
      for (int k = 0; k < sub.n[2]; ++k)
        for (int j = 0; j < sub.n[1]; ++j)
          for (int i = 0; i < sub.n[0]; ++i) {
            const std::size_t s = (static_cast<std::size_t>(k) * sub.n[1] + j) * sub.n[0] + i;
            if (dose[s] <= cutoff_value || dose[s] <= 0.f) continue;
            const long p = (static_cast<long>(k + sub.lo[2]) * B.n[1] + (j + sub.lo[1])) * B.n[0] + (i + sub.lo[0]);
            const float du = U[p] - uc, dv = V[p] - vc;
            if (U[p] > 1e29f || du * du + dv * dv > cut2) continue;
            const std::int64_t g = (static_cast<std::int64_t>(k + sub.lo[2] + B.lo[2]) * grid.size[1] +
                                    (j + sub.lo[1] + B.lo[1])) * grid.size[0] + (i + sub.lo[0] + B.lo[0]);
            col.emplace_back(g, static_cast<float>(dose[s] * scale));
          }
    };
    if (!o.use_cuda) {
#pragma omp parallel
      {
        BeamletWork w;
        std::vector<float> dose, RA, RB;
#pragma omp for schedule(dynamic, 1)
        for (long li = 0; li < static_cast<long>(list.size()); ++li) {
          setup(li, w);
          if (w.empty) continue;
          dose.assign(w.q.size(), 0.f);
          cccs_serial(w.sub, w.q.data(), w.ta.data(), w.tb.data(), ds, dose.data(), RA, RB, w.tl, w.th);
          extract(li, w, dose.data());
        }
      }
    } else {
#ifdef ISOLINE_DOSE_WITH_CUDA
      // Batches of beamlets: set up on the CPU (OpenMP), transported together on the GPU
      // (one thread per line of every beamlet's sub-box, one launch per direction), extracted
      // on the CPU.
      // batches of at most kCudaBatch beamlets and kCudaBatchVoxels sub-box voxels (host memory
      // ~ 14 bytes per voxel, GPU the same)
      const long nl = static_cast<long>(list.size());
      for (long b0 = 0, nbat = 0; b0 < nl; b0 += nbat) {
        long long voxels = 0;
        nbat = 0;
        while (b0 + nbat < nl && nbat < kCudaBatch) {
          const long long v = impl::box_count(sub_box(b0 + nbat));
          if (nbat > 0 && voxels + v > kCudaBatchVoxels) break;
          voxels += v;
          ++nbat;
        }
        std::vector<BeamletWork> work(static_cast<std::size_t>(nbat));
#pragma omp parallel for schedule(dynamic, 1)
        for (long t = 0; t < nbat; ++t) setup(b0 + t, work[t]);
        std::vector<long> idx;
        std::vector<impl::Box> boxes;
        std::vector<const std::uint16_t*> qs;
        std::vector<const float*> tas, tbs;
        std::vector<std::vector<float>> doses;
        for (long t = 0; t < nbat; ++t)
          if (!work[t].empty) idx.push_back(t);
        doses.resize(idx.size());
        std::vector<float*> outs;
        for (std::size_t c = 0; c < idx.size(); ++c) {
          const BeamletWork& w = work[idx[c]];
          boxes.push_back(w.sub);
          qs.push_back(w.q.data());
          tas.push_back(w.ta.data());
          tbs.push_back(w.tb.data());
          doses[c].assign(w.q.size(), 0.f);
          outs.push_back(doses[c].data());
        }
        if (idx.empty()) continue;
        detail::CudaInfluenceBatch job{};
        job.n = static_cast<int>(idx.size());
        job.boxes = boxes.data();
        job.q = qs.data();
        job.ta = tas.data();
        job.tb = tbs.data();
        job.dose_out = outs.data();
        job.dirs = ds.dirs.data();
        job.n_dirs = static_cast<int>(ds.dirs.size());
        job.lut = ds.lut.data();
        job.device = o.cuda_device;
        detail::influence_batch_cuda(job);
#pragma omp parallel for schedule(dynamic, 1)
        for (long c = 0; c < static_cast<long>(idx.size()); ++c) extract(b0 + idx[c], work[idx[c]], doses[c].data());
      }
#endif
    }
    // reported between beams only: the callback may throw (cancel) and must not run inside
    // a parallel region
    if (progress) progress(static_cast<double>(bi + 1) / beams.size(), user);
  }
  // Columns -> CSR by voxel rows.
  out.cols = static_cast<std::int64_t>(columns.size());
  out.row_ptr.assign(N + 1, 0);
  std::size_t nnz = 0;
  for (const auto& c : columns) {
    nnz += c.size();
    for (const auto& e : c) ++out.row_ptr[e.first + 1];
  }
  for (std::size_t r = 0; r < N; ++r) out.row_ptr[r + 1] += out.row_ptr[r];
  out.col_index.resize(nnz);
  out.values.resize(nnz);
  std::vector<std::int64_t> fill(out.row_ptr.begin(), out.row_ptr.end() - 1);
  for (std::size_t c = 0; c < columns.size(); ++c) {
    for (const auto& e : columns[c]) {
      const std::int64_t at = fill[e.first]++;
      out.col_index[at] = static_cast<std::int32_t>(c);
      out.values[at] = e.second;
    }
    std::vector<std::pair<std::int64_t, float>>().swap(columns[c]);
  }
  return out;
}

}  // namespace isoline::dose
