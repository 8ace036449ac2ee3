// Fluence optimisation on small synthetic problems with known answers.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <cstdio>

#include <gtest/gtest.h>

#include "isoline/core/error.h"
#include "isoline/planning/optimizer.h"

using namespace isoline;
using planning::Objective;
using planning::ObjectiveType;

namespace {

// CSR matrix with the entries value(v, b) that are not 0.
template <class Value>
planning::SparseMatrix sparse(int rows, int cols, Value value) {
  planning::SparseMatrix A;
  A.rows = rows;
  A.cols = cols;
  A.row_ptr.push_back(0);
  for (int v = 0; v < rows; ++v) {
    for (int b = 0; b < cols; ++b)
      if (const double w = value(v, b); w != 0) {
        A.col.push_back(b);
        A.val.push_back(static_cast<float>(w));
      }
    A.row_ptr.push_back(static_cast<std::int64_t>(A.val.size()));
  }
  return A;
}

// 1-D "patient": 120 voxels, 30 beamlets with Gaussian dose profiles (sigma 3 voxels).
planning::SparseMatrix gaussian_influence() {
  return sparse(120, 30, [](int v, int b) {
    const double c = 2 + 4.0 * b;
    const double w = std::exp(-0.5 * (v - c) * (v - c) / 9.0);
    return w > 1e-4 ? w : 0.0;
  });
}

planning::VoxelSet range(const std::string& name, int lo, int hi) {
  planning::VoxelSet s;
  s.name = name;
  for (int v = lo; v < hi; ++v) s.rows.push_back(v);
  s.voxel_volume_cc = 0.1;
  return s;
}

planning::FluenceProblem target_and_oar(const planning::SparseMatrix* A) {
  planning::FluenceProblem p;
  p.influence = A;
  p.structures = {range("PTV", 40, 70), range("OAR", 76, 100)};
  p.objectives = {{"PTV", ObjectiveType::MinDose, 60.0, 0, 100},
                  {"PTV", ObjectiveType::MaxDose, 63.0, 0, 100},
                  {"OAR", ObjectiveType::MaxDose, 10.0, 0, 10}};
  for (int b = 0; b + 1 < 30; ++b) p.neighbours.push_back({b, b + 1});
  p.smoothness_weight = 1e-4;
  p.normalisation_structure = "PTV";
  p.normalisation_dose_gy = 60.0;
  return p;
}

std::vector<float> doses(const planning::SparseMatrix& A, const std::vector<float>& x) {
  std::vector<float> d;
  A.multiply(x, &d);
  return d;
}

}  // namespace

TEST(SparseMatrix, MultipliesLikeDense) {
  auto A = gaussian_influence();
  A.validate("test");
  std::vector<float> x(30);
  for (int b = 0; b < 30; ++b) x[b] = 0.5f + 0.1f * b;
  std::vector<float> y;
  A.multiply(x, &y);
  std::vector<double> g(120), gt;
  for (int v = 0; v < 120; ++v) g[v] = std::sin(v * 0.1);
  A.multiply_transpose(g, &gt);
  for (int v = 0; v < 120; ++v) {
    double s = 0;
    for (int b = 0; b < 30; ++b) s += std::exp(-0.5 * std::pow(v - (2 + 4.0 * b), 2) / 9.0) * (std::exp(-0.5 * std::pow(v - (2 + 4.0 * b), 2) / 9.0) > 1e-4) * x[b];
    EXPECT_NEAR(y[v], s, 1e-4);
  }
  for (int b = 0; b < 30; ++b) {
    double s = 0;
    for (int v = 0; v < 120; ++v) {
      const double w = std::exp(-0.5 * std::pow(v - (2 + 4.0 * b), 2) / 9.0);
      if (w > 1e-4) s += static_cast<float>(w) * g[v];
    }
    EXPECT_NEAR(gt[b], s, 1e-9);
  }
}

TEST(Optimizer, CoversTargetAndSparesOar) {
  auto A = gaussian_influence();
  auto p = target_and_oar(&A);
  planning::OptimizerOptions opt;
  opt.max_iterations = 500;
  auto r = planning::optimize_fluence(p, opt);
  ASSERT_FALSE(r.weights.empty());
  for (float w : r.weights) EXPECT_GE(w, 0.f);
  auto d = doses(A, r.weights);
  const float ptv_min = *std::min_element(d.begin() + 40, d.begin() + 70);
  const float ptv_max = *std::max_element(d.begin() + 40, d.begin() + 70);
  const float oar_max = *std::max_element(d.begin() + 80, d.begin() + 100);
  EXPECT_GT(ptv_min, 59.f);
  EXPECT_LT(ptv_max, 64.f);
  EXPECT_LT(oar_max, 10.5f);  // 10 voxels (3 sigma) beyond the target edge
  EXPECT_LT(r.objective_history.back(), 0.01 * r.objective_history.front());
}

TEST(Optimizer, DeterministicForFixedThreads) {
  auto A = gaussian_influence();
  auto p = target_and_oar(&A);
  auto a = planning::optimize_fluence(p);
  auto b = planning::optimize_fluence(p);
  EXPECT_EQ(a.weights, b.weights);
  EXPECT_EQ(a.iterations, b.iterations);
}

TEST(Optimizer, MeanAndDoseVolumeObjectives) {
  auto A = gaussian_influence();
  planning::FluenceProblem p;
  p.influence = &A;
  p.structures = {range("PTV", 40, 70), range("Parotid", 60, 90)};  // overlaps the target
  p.objectives = {{"PTV", ObjectiveType::MinDvh, 60.0, 95.0, 100},
                  {"PTV", ObjectiveType::MaxDose, 64.0, 0, 50},
                  {"Parotid", ObjectiveType::MaxMean, 20.0, 0, 10}};
  p.normalisation_structure = "PTV";
  p.normalisation_dose_gy = 60.0;
  auto r = planning::optimize_fluence(p);
  auto d = doses(A, r.weights);
  std::vector<float> ptv(d.begin() + 40, d.begin() + 70);
  std::sort(ptv.begin(), ptv.end(), std::greater<float>());
  EXPECT_GT(ptv[static_cast<std::size_t>(0.95 * 30) - 1], 57.f);  // D95 close to 60
  const double parotid_mean = std::accumulate(d.begin() + 60, d.begin() + 90, 0.0) / 30;
  EXPECT_LT(parotid_mean, 24.0);
  // Without the mean objective the parotid gets more.
  p.objectives.pop_back();
  auto free_run = planning::optimize_fluence(p);
  auto d2 = doses(A, free_run.weights);
  EXPECT_GT(std::accumulate(d2.begin() + 60, d2.begin() + 90, 0.0) / 30, parotid_mean + 1.0);
}

TEST(Optimizer, FallOffLimitsDoseAwayFromTarget) {
  auto A = gaussian_influence();
  auto p = target_and_oar(&A);
  planning::VoxelSet ring = range("Ring", 70, 90);
  for (int v = 70; v < 90; ++v) ring.distance_mm.push_back(float(v - 69));
  p.structures.push_back(ring);
  p.objectives.push_back({"Ring", ObjectiveType::FallOff, 60.0, 0, 20, 10.0, 20.0});
  auto r = planning::optimize_fluence(p);
  auto d = doses(A, r.weights);
  EXPECT_LT(d[85], 25.f);
}

TEST(Optimizer, ClearErrors) {
  auto A = gaussian_influence();
  auto p = target_and_oar(&A);
  p.objectives.push_back({"Nowhere", ObjectiveType::MaxDose, 1.0, 0, 1});
  EXPECT_THROW(planning::optimize_fluence(p), core::InvalidInput);
  p = target_and_oar(&A);
  p.objectives[0].weight = -1;
  EXPECT_THROW(planning::optimize_fluence(p), core::InvalidInput);
  p = target_and_oar(&A);
  p.objectives.push_back({"OAR", ObjectiveType::MaxDvh, 5.0, 120.0, 1});
  EXPECT_THROW(planning::optimize_fluence(p), core::InvalidInput);
  planning::SparseMatrix bad = A;
  bad.col[3] = 99;
  p = target_and_oar(&bad);
  EXPECT_THROW(planning::optimize_fluence(p), core::InvalidInput);
}

TEST(Optimizer, ReportsProgress) {
  auto A = gaussian_influence();
  auto p = target_and_oar(&A);
  double last = -1;
  int calls = 0;
  core::Progress prog([&](const core::ProgressEvent& e) {
    EXPECT_GE(e.fraction, last);
    last = e.fraction;
    ++calls;
  });
  planning::optimize_fluence(p, {}, prog);
  EXPECT_GT(calls, 1);
  EXPECT_DOUBLE_EQ(last, 1.0);
}

namespace {

// A wider problem for the device tests: 3000 voxels x 240 beamlets, about 60 entries per row and
// 750 per column (warps loop over several chunks), some rows empty.
planning::SparseMatrix banded_influence() {
  return sparse(3000, 240, [](int v, int b) {
    const double c = v * 240 / 3000.0;
    const double w = std::exp(-0.5 * (b - c) * (b - c) / 100.0);
    return v % 97 == 13 || w <= 1e-2 ? 0.0 : w * (1.0 + 0.3 * std::sin(0.37 * v + b));
  });
}

planning::FluenceProblem banded_problem(const planning::SparseMatrix* A) {
  planning::FluenceProblem p;
  p.influence = A;
  p.structures = {range("PTV", 1000, 1800), range("OAR", 2000, 2600), range("Ring", 1800, 2000)};
  p.objectives = {{"PTV", ObjectiveType::MinDose, 60.0, 0, 100},
                  {"PTV", ObjectiveType::MaxDose, 63.0, 0, 100},
                  {"PTV", ObjectiveType::MinDvh, 61.0, 95.0, 50},
                  {"OAR", ObjectiveType::MaxMean, 20.0, 0, 5},
                  {"OAR", ObjectiveType::MaxDvh, 30.0, 20.0, 5},
                  {"Ring", ObjectiveType::MaxDose, 50.0, 0, 10}};
  for (int b = 0; b + 1 < A->cols; ++b) p.neighbours.push_back({b, b + 1});
  p.smoothness_weight = 1e-5;
  p.normalisation_structure = "PTV";
  p.normalisation_dose_gy = 60.0;
  p.offset_dose.assign(static_cast<std::size_t>(A->rows), 0.5f);
  return p;
}

bool cuda_here() { return core::built_with_cuda() && core::cuda_device_count() > 0; }

}  // namespace

// The matrix products on the GPU (OptimizerOptions::device) against the CPU: the same plan, to
// float precision along the optimisation path, and the same result from run to run.
TEST(OptimizerDevices, CpuAndCudaAgree) {
  if (!cuda_here()) GTEST_SKIP() << "no CUDA device (or no CUDA kernels in this build)";
  auto A = banded_influence();
  auto p = banded_problem(&A);
  planning::OptimizerOptions opt;
  opt.max_iterations = 200;
  const auto cpu = planning::optimize_fluence(p, opt);
  opt.device = core::Device::CUDA;
  const auto gpu = planning::optimize_fluence(p, opt);
  const auto gpu2 = planning::optimize_fluence(p, opt);
  EXPECT_EQ(gpu.weights, gpu2.weights);
  const auto dc = doses(A, cpu.weights), dg = doses(A, gpu.weights);
  const double dmax = *std::max_element(dc.begin(), dc.end());
  double diff = 0;
  for (std::size_t i = 0; i < dc.size(); ++i) diff = std::max<double>(diff, std::fabs(dc[i] - dg[i]));
  RecordProperty("max_dose_diff_percent", std::to_string(100 * diff / dmax));
  EXPECT_LT(diff, 0.01 * dmax);
  const double fc = planning::objective_value(p, cpu.weights), fg = planning::objective_value(p, gpu.weights);
  EXPECT_NEAR(fg, fc, 0.02 * fc + 1e-9);
  EXPECT_LT(fg, 0.5 * gpu.objective_history.front());  // it optimised (the objectives conflict)
}

TEST(OptimizerDevices, CudaRequestWithoutGpuIsAClearError) {
  if (cuda_here()) GTEST_SKIP() << "a CUDA device is present";
  auto A = gaussian_influence();
  auto p = target_and_oar(&A);
  planning::OptimizerOptions opt;
  opt.device = core::Device::CUDA;
  try {
    planning::optimize_fluence(p, opt);
    FAIL() << "expected a DeviceError";
  } catch (const core::DeviceError& e) {
    EXPECT_NE(std::string(e.what()).find("optimise fluence"), std::string::npos) << e.what();
  }
}
