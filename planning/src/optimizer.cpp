#include "isoline/planning/optimizer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>

#include "isoline/core/error.h"
#include "optimizer_impl.h"

#ifdef _OPENMP
#include <omp.h>
#else
static int omp_get_max_threads() { return 1; }
static int omp_get_num_threads() { return 1; }
static int omp_get_thread_num() { return 0; }
#endif

namespace isoline::planning {

using core::fail;
using core::InvalidInput;

void SparseMatrix::validate(const char* what) const {
  if (rows < 0 || cols < 0 || row_ptr.size() != static_cast<std::size_t>(rows + 1))
    fail<InvalidInput>("check influence matrix", what, "row pointer array has the wrong length");
  if (row_ptr.front() != 0 || row_ptr.back() != static_cast<std::int64_t>(val.size()) ||
      col.size() != val.size())
    fail<InvalidInput>("check influence matrix", what, "row pointers do not match the entries");
  for (std::int64_t r = 0; r < rows; ++r)
    if (row_ptr[r + 1] < row_ptr[r])
      fail<InvalidInput>("check influence matrix", what, "row pointers decrease");
  for (auto c : col)
    if (c < 0 || c >= cols) fail<InvalidInput>("check influence matrix", what, "column index out of range");
}

void SparseMatrix::multiply(const std::vector<float>& x, std::vector<float>* y) const {
  y->assign(static_cast<std::size_t>(rows), 0.f);
  float* out = y->data();
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < rows; ++r) {
    double s = 0.0;
    for (std::int64_t n = row_ptr[r]; n < row_ptr[r + 1]; ++n) s += double(val[n]) * x[col[n]];
    out[r] = static_cast<float>(s);
  }
}

void SparseMatrix::multiply_transpose(const std::vector<double>& g, std::vector<double>* out) const {
  out->assign(static_cast<std::size_t>(cols), 0.0);
  const int threads = omp_get_max_threads();
  std::vector<std::vector<double>> partial(static_cast<std::size_t>(threads));
#pragma omp parallel num_threads(threads)
  {
    std::vector<double>& local = partial[static_cast<std::size_t>(omp_get_thread_num())];
    local.assign(static_cast<std::size_t>(cols), 0.0);
#pragma omp for schedule(static)
    for (std::int64_t r = 0; r < rows; ++r) {
      const double gr = g[r];
      if (gr == 0.0) continue;
      for (std::int64_t n = row_ptr[r]; n < row_ptr[r + 1]; ++n) local[col[n]] += gr * val[n];
    }
  }
  // Summed in thread order: deterministic for a given thread count.
  for (const auto& local : partial)
    for (std::size_t c = 0; c < local.size(); ++c) (*out)[c] += local[c];
}

namespace {

struct Bound {
  const Objective* objective;
  const VoxelSet* voxels;
};

std::vector<Bound> bind(const FluenceProblem& p) {
  if (!p.influence) fail<InvalidInput>("optimise fluence", "problem", "no influence matrix");
  std::map<std::string, const VoxelSet*> by_name;
  const std::int64_t nrows = p.influence->rows;
  for (const auto& s : p.structures) {
    // A voxel index beyond the matrix would be read out of bounds.
    for (std::int64_t r : s.rows)
      if (r < 0 || r >= nrows)
        fail<InvalidInput>("optimise fluence", s.name,
                           "voxel (row) index " + std::to_string(r) + " out of range (the influence matrix has " +
                               std::to_string(nrows) + " rows)");
    if (!s.distance_mm.empty() && s.distance_mm.size() != s.rows.size())
      fail<InvalidInput>("optimise fluence", s.name, "distances need one value per voxel");
    by_name[s.name] = &s;
  }
  std::vector<Bound> out;
  for (const auto& o : p.objectives) {
    auto it = by_name.find(o.structure);
    if (it == by_name.end())
      fail<InvalidInput>("optimise fluence", o.structure, "objective names a structure without voxels");
    if (it->second->rows.empty()) continue;  // nothing to optimise for an empty structure
    if (o.weight < 0 || !std::isfinite(o.weight))
      fail<InvalidInput>("optimise fluence", o.structure, "objective weight must be >= 0");
    if (o.type == ObjectiveType::FallOff && (it->second->distance_mm.size() != it->second->rows.size() || !(o.falloff_mm > 0)))
      fail<InvalidInput>("optimise fluence", o.structure, "fall-off objective needs distances and falloff_mm > 0");
    if ((o.type == ObjectiveType::MaxDvh || o.type == ObjectiveType::MinDvh) &&
        !(o.volume_percent > 0 && o.volume_percent < 100))
      fail<InvalidInput>("optimise fluence", o.structure, "dose-volume objective needs 0 < volume % < 100");
    out.push_back({&o, it->second});
  }
  return out;
}

// Dose below which `percent` % of the structure's hottest voxels lie: D_v.
double dose_at_volume(const std::vector<float>& d, const VoxelSet& s, double percent, std::vector<float>* scratch) {
  scratch->resize(s.rows.size());
  for (std::size_t i = 0; i < s.rows.size(); ++i) (*scratch)[i] = d[s.rows[i]];
  std::size_t k = static_cast<std::size_t>(std::floor(percent / 100.0 * scratch->size()));
  k = std::min(k, scratch->size() - 1);
  std::nth_element(scratch->begin(), scratch->begin() + k, scratch->end(), std::greater<float>());
  return (*scratch)[k];
}

// Objective value; when grad_d is given, also d f / d dose per row.
double evaluate(const FluenceProblem& p, const std::vector<Bound>& bound, const std::vector<float>& x,
                const std::vector<float>& d, std::vector<double>* grad_d) {
  double f = 0.0;
  std::vector<float> scratch;
  for (const auto& b : bound) {
    const Objective& o = *b.objective;
    const VoxelSet& s = *b.voxels;
    const double n = static_cast<double>(s.rows.size());
    const double c = o.weight / n;
    auto penalise = [&](std::int64_t row, double diff) {  // diff > 0 is a violation
      f += c * diff * diff;
      if (grad_d) (*grad_d)[row] += 2.0 * c * diff;
    };
    switch (o.type) {
      case ObjectiveType::MinDose:
        for (auto r : s.rows)
          if (d[r] < o.dose_gy) {
            const double diff = o.dose_gy - d[r];
            f += c * diff * diff;
            if (grad_d) (*grad_d)[r] -= 2.0 * c * diff;
          }
        break;
      case ObjectiveType::MaxDose:
        for (auto r : s.rows)
          if (d[r] > o.dose_gy) penalise(r, d[r] - o.dose_gy);
        break;
      case ObjectiveType::UniformDose:
        for (auto r : s.rows) penalise(r, d[r] - o.dose_gy);
        break;
      case ObjectiveType::FallOff:
        for (std::size_t i = 0; i < s.rows.size(); ++i) {
          const double t = std::min(1.0, s.distance_mm[i] / o.falloff_mm);
          const double limit = o.dose_gy + (o.low_dose_gy - o.dose_gy) * t;
          if (d[s.rows[i]] > limit) penalise(s.rows[i], d[s.rows[i]] - limit);
        }
        break;
      case ObjectiveType::MaxMean: {
        double mean = 0;
        for (auto r : s.rows) mean += d[r];
        mean /= n;
        if (mean > o.dose_gy) {
          const double diff = mean - o.dose_gy;
          f += o.weight * diff * diff;
          if (grad_d)
            for (auto r : s.rows) (*grad_d)[r] += 2.0 * o.weight * diff / n;
        }
        break;
      }
      case ObjectiveType::MaxDvh: {
        const double dv = dose_at_volume(d, s, o.volume_percent, &scratch);
        if (dv > o.dose_gy)
          for (auto r : s.rows)
            if (d[r] > o.dose_gy && d[r] <= dv) penalise(r, d[r] - o.dose_gy);
        break;
      }
      case ObjectiveType::MinDvh: {
        const double dv = dose_at_volume(d, s, o.volume_percent, &scratch);
        if (dv < o.dose_gy)
          for (auto r : s.rows)
            if (d[r] < o.dose_gy && d[r] >= dv) {
              const double diff = o.dose_gy - d[r];
              f += c * diff * diff;
              if (grad_d) (*grad_d)[r] -= 2.0 * c * diff;
            }
        break;
      }
    }
  }
  for (const auto& [i, j] : p.neighbours) {
    const double diff = double(x[i]) - x[j];
    f += p.smoothness_weight * diff * diff;
  }
  return f;
}

}  // namespace

namespace {

#ifdef ISOLINE_PLANNING_WITH_CUDA
// The transpose in CSR (a column of A per row), entries of each row in ascending order: the same
// matrix whatever the thread count.
SparseMatrix transpose(const SparseMatrix& a) {
  SparseMatrix t;
  t.rows = a.cols;
  t.cols = a.rows;
  t.row_ptr.assign(static_cast<std::size_t>(t.rows + 1), 0);
  t.col.resize(a.nnz());
  t.val.resize(a.nnz());
  std::vector<std::vector<std::int64_t>> next;  // per thread and column: count, then position
  int threads = 1;
#pragma omp parallel
  {
#pragma omp single
    {
      threads = omp_get_num_threads();
      next.assign(static_cast<std::size_t>(threads), std::vector<std::int64_t>(static_cast<std::size_t>(a.cols), 0));
    }
    const int th = omp_get_thread_num();
    const std::int64_t r0 = a.rows * th / threads, r1 = a.rows * (th + 1) / threads;
    auto& mine = next[static_cast<std::size_t>(th)];
    for (std::int64_t r = r0; r < r1; ++r)
      for (std::int64_t n = a.row_ptr[r]; n < a.row_ptr[r + 1]; ++n) ++mine[a.col[n]];
#pragma omp barrier
#pragma omp single
    {
      std::int64_t pos = 0;
      for (std::int64_t c = 0; c < a.cols; ++c) {
        t.row_ptr[c] = pos;
        for (auto& counts : next) {
          const std::int64_t n = counts[c];
          counts[c] = pos;
          pos += n;
        }
      }
      t.row_ptr[a.cols] = pos;
    }
    for (std::int64_t r = r0; r < r1; ++r)
      for (std::int64_t n = a.row_ptr[r]; n < a.row_ptr[r + 1]; ++n) {
        const std::int64_t p = mine[a.col[n]]++;
        t.col[p] = static_cast<std::int32_t>(r);
        t.val[p] = a.val[n];
      }
  }
  return t;
}

detail::CsrView view(const SparseMatrix& m) {
  return {m.rows, m.cols, m.row_ptr.data(), m.col.data(), m.val.data()};
}
#endif

// The two products of every iteration, A x and A^T g, on the CPU or the GPU.
class Products {
 public:
  Products(const SparseMatrix& a, core::Device device) : a_(a) {
    if (device != core::Device::CUDA) return;
    core::require_device(device, "optimise fluence");
#ifdef ISOLINE_PLANNING_WITH_CUDA
    const SparseMatrix at = transpose(a);
    try {
      gpu_ = detail::cuda_products_create(view(a), view(at), 0);
    } catch (const std::runtime_error& e) {
      fail<core::DeviceError>("optimise fluence", "influence matrix on the GPU", e.what());
    }
#else
    fail<core::DeviceError>("optimise fluence", "cuda", "this build has no CUDA kernels for the optimiser");
#endif
  }
  ~Products() {
#ifdef ISOLINE_PLANNING_WITH_CUDA
    detail::cuda_products_destroy(gpu_);
#endif
  }
  Products(const Products&) = delete;
  Products& operator=(const Products&) = delete;

  void multiply(const std::vector<float>& x, std::vector<float>* y) const {
    if (!gpu_) return a_.multiply(x, y);
    y->resize(static_cast<std::size_t>(a_.rows));
    run([&] { detail::cuda_multiply(gpu_, x.data(), y->data()); });
  }
  void multiply_transpose(const std::vector<double>& g, std::vector<double>* out) const {
    if (!gpu_) return a_.multiply_transpose(g, out);
    out->resize(static_cast<std::size_t>(a_.cols));
    run([&] { detail::cuda_multiply_transpose(gpu_, g.data(), out->data()); });
  }

 private:
  template <class F>
  static void run(F&& f) {
    try {
      f();
    } catch (const std::runtime_error& e) {
      fail<core::DeviceError>("optimise fluence", "influence matrix product", e.what());
    }
  }
  const SparseMatrix& a_;
  detail::CudaProducts* gpu_ = nullptr;
};

void dose_of(const FluenceProblem& p, const Products& m, const std::vector<float>& x, std::vector<float>* d) {
  m.multiply(x, d);
  if (!p.offset_dose.empty())
    for (std::size_t r = 0; r < d->size(); ++r) (*d)[r] += p.offset_dose[r];
}
}  // namespace

double objective_value(const FluenceProblem& problem, const std::vector<float>& x) {
  auto bound = bind(problem);
  std::vector<float> d;
  dose_of(problem, Products(*problem.influence, core::Device::CPU), x, &d);
  return evaluate(problem, bound, x, d, nullptr);
}

OptimizerResult optimize_fluence(const FluenceProblem& p, const OptimizerOptions& opt, const core::Progress& progress) {
  auto bound = bind(p);
  const SparseMatrix& A = *p.influence;
  A.validate("optimise fluence");
  const std::size_t nb = static_cast<std::size_t>(A.cols);
  if (nb == 0) fail<InvalidInput>("optimise fluence", "problem", "no beamlets");
  for (const auto& [i, j] : p.neighbours)
    if (i < 0 || j < 0 || static_cast<std::size_t>(i) >= nb || static_cast<std::size_t>(j) >= nb)
      fail<InvalidInput>("optimise fluence", "neighbours", "beamlet index out of range");

  if (!p.offset_dose.empty() && p.offset_dose.size() != static_cast<std::size_t>(A.rows))
    fail<InvalidInput>("optimise fluence", "offset dose", "needs one value per row of the influence matrix");
  if (!p.initial_weights.empty() && p.initial_weights.size() != nb)
    fail<InvalidInput>("optimise fluence", "initial weights", "needs one value per beamlet");

  const Products M(A, opt.device);
  OptimizerResult res;
  std::vector<float> x(nb, 1.f), d;
  if (!p.initial_weights.empty())
    for (std::size_t i = 0; i < nb; ++i) x[i] = std::max(0.f, p.initial_weights[i]);
  dose_of(p, M, x, &d);
  // Scale the start so that the normalisation structure's mean dose is the prescription.
  for (const auto& s : p.structures)
    if (p.initial_weights.empty() && s.name == p.normalisation_structure && !s.rows.empty() && p.normalisation_dose_gy > 0) {
      double mean = 0;
      for (auto r : s.rows) mean += d[r];
      mean /= double(s.rows.size());
      if (mean > 0) {
        const float k = static_cast<float>(p.normalisation_dose_gy / mean);
        for (auto& v : x) v *= k;
        dose_of(p, M, x, &d);
      }
    }

  auto gradient = [&](const std::vector<float>& xx, const std::vector<float>& dd, std::vector<double>* g) {
    std::vector<double> gd(static_cast<std::size_t>(A.rows), 0.0);
    const double f = evaluate(p, bound, xx, dd, &gd);
    M.multiply_transpose(gd, g);
    for (const auto& [i, j] : p.neighbours) {
      const double diff = double(xx[i]) - xx[j];
      (*g)[i] += 2.0 * p.smoothness_weight * diff;
      (*g)[j] -= 2.0 * p.smoothness_weight * diff;
    }
    return f;
  };

  std::vector<double> g;
  double f = gradient(x, d, &g);
  res.objective_history.push_back(f);
  // Initial step: a projected-gradient step that changes weights by about 10 % of their mean.
  double gmax = 0, xmean = 0;
  for (std::size_t i = 0; i < nb; ++i) {
    gmax = std::max(gmax, std::abs(g[i]));
    xmean += x[i];
  }
  xmean /= double(nb);
  double alpha = gmax > 0 ? 0.1 * std::max(xmean, 1e-6) / gmax : 1.0;
  const int memory = 10;
  std::vector<float> xn(nb), dn;
  std::vector<float> best_x = x;
  double best_f = f;
  std::vector<double> gn;
  progress.update(0.0, "optimising");
  for (int it = 0; it < opt.max_iterations; ++it) {
    // Projected direction.
    std::vector<double> dir(nb);
    double gdir = 0;
    for (std::size_t i = 0; i < nb; ++i) {
      const double target = std::max(0.0, double(x[i]) - alpha * g[i]);
      dir[i] = target - x[i];
      gdir += g[i] * dir[i];
    }
    if (gdir > -1e-30) {  // stationary point
      res.converged = true;
      break;
    }
    const std::size_t h = res.objective_history.size();
    double fmax = f;
    for (std::size_t k = h > memory ? h - memory : 0; k < h; ++k) fmax = std::max(fmax, res.objective_history[k]);
    double lambda = 1.0, fn = 0;
    bool accepted = false;
    for (int ls = 0; ls < 30; ++ls) {
      for (std::size_t i = 0; i < nb; ++i) xn[i] = static_cast<float>(std::max(0.0, x[i] + lambda * dir[i]));
      dose_of(p, M, xn, &dn);
      fn = evaluate(p, bound, xn, dn, nullptr);
      if (fn <= fmax + 1e-4 * lambda * gdir) {
        accepted = true;
        break;
      }
      lambda *= 0.5;
    }
    if (!accepted) {
      res.converged = true;  // no descent possible at float precision
      break;
    }
    fn = gradient(xn, dn, &gn);
    double ss = 0, sy = 0;
    for (std::size_t i = 0; i < nb; ++i) {
      const double s = double(xn[i]) - x[i], y = gn[i] - g[i];
      ss += s * s;
      sy += s * y;
    }
    alpha = sy > 0 ? std::clamp(ss / sy, 1e-12, 1e12) : alpha * 2.0;
    x.swap(xn);
    d.swap(dn);
    g.swap(gn);
    f = fn;
    res.objective_history.push_back(f);
    res.iterations = it + 1;
    progress.update(double(it + 1) / opt.max_iterations, "optimising");
    if (f < best_f) {
      best_f = f;
      best_x = x;
    }
    // The line search is non-monotone: judge progress by the best value of the last 10
    // iterations against the best before them.
    const std::size_t n = res.objective_history.size();
    if (n > 20) {
      const double before = *std::min_element(res.objective_history.begin(), res.objective_history.end() - 10);
      const double recent = *std::min_element(res.objective_history.end() - 10, res.objective_history.end());
      if (before - recent <= opt.relative_tolerance * std::max(std::abs(before), 1e-30)) {
        res.converged = true;
        break;
      }
    }
  }
  progress.done();
  res.weights = f <= best_f ? std::move(x) : std::move(best_x);
  return res;
}

}  // namespace isoline::planning
