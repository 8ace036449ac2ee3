// Engine logic: JSON reader, machine file, line coverage, Fano's theorem (density scaling),
// geometry conventions, plan checks, influence matrix consistency, CPU/CUDA agreement.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "dose/engine/engine_internal.h"
#include "dose/engine/json_lite.h"
#include "tests/dose/dose_test_util.h"

using namespace isoline::dose;
using namespace isoline::dose::test;

namespace {

const Machine& machine() {
  static const Machine m = load_machine(machine_path());
  return m;
}

CalcOptions coarse_options() {
  CalcOptions o;  // logic tests: fewer cones
  o.n_zenith = 4;
  o.n_azimuth = 4;
  return o;
}

}  // namespace

TEST(DoseJson, ParsesNestedValues) {
  auto v = json::parse(R"({"a": [1, 2.5, -3e2], "b": {"c": "x\"y", "d": true, "e": null}})", "t");
  ASSERT_EQ(v.type, json::Value::Object);
  EXPECT_EQ(v.at("a", "t").numbers("t"), (std::vector<double>{1, 2.5, -300}));
  EXPECT_EQ(v.at("b", "t").at("c", "t").str, "x\"y");
  EXPECT_TRUE(v.at("b", "t").at("d", "t").b);
}

TEST(DoseJson, ReportsErrorsWithPosition) {
  try {
    json::parse(R"({"a": [1, 2,}")", "case.json");
    FAIL() << "no error";
  } catch (const EngineError& e) {
    EXPECT_NE(std::string(e.what()).find("case.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("byte"), std::string::npos) << e.what();
  }
}

TEST(DoseMachine, GenericMachineIsComplete) {
  const Machine& m = machine();
  EXPECT_EQ(m.sad_mm, 1000.0);
  EXPECT_EQ(m.kernel.size(), 48u);
  EXPECT_GE(m.energy_mev.size(), 8u);
  double w = std::accumulate(m.energy_weight.begin(), m.energy_weight.end(), 0.0);
  EXPECT_NEAR(w, 1.0, 1e-3);
  // the kernel is forward peaked: the first cone carries more short-range energy than the last
  EXPECT_GT(m.kernel[5].A / m.kernel[5].a, 10 * (m.kernel[40].A / m.kernel[40].a + 1e-12));
  EXPECT_NEAR(head_scatter(m, 10.0), 1.0, 1e-12);
  EXPECT_LT(head_scatter(m, 3.0), 1.0);
  EXPECT_GT(head_scatter(m, 30.0), 1.0);
}

TEST(DoseMachine, RejectsInconsistentModel) {
  Machine m = machine();
  m.kernel.pop_back();  // no longer reaches 180 degrees
  EXPECT_THROW(validate_machine(m, "test"), EngineError);
  Machine m2 = machine();
  m2.mu_rho_water_cm2_g.pop_back();
  EXPECT_THROW(validate_machine(m2, "test"), EngineError);
  EXPECT_THROW(load_machine("/nonexistent/machine.json"), EngineError);
}

TEST(DoseCones, EveryVoxelIsVisitedOncePerDirection) {
  impl::Box b{{0, 0, 0}, {13, 9, 17}};
  Grid g;
  g.size = {13, 9, 17};
  g.spacing = {2.0, 3.0, 2.5};
  Beam beam;
  beam.gantry_deg = 33;
  beam.couch_deg = 10;
  beam.collimator_deg = 20;
  const impl::BeamFrame f = detail::beam_frame(beam, machine());
  CalcOptions o;
  o.n_zenith = 6;
  o.n_azimuth = 8;
  const auto ds = detail::make_directions(f, machine(), o, detail::grid_geom(g));
  ASSERT_EQ(ds.dirs.size(), 48u);
  for (const auto& d : ds.dirs) {
    std::vector<int> visits(static_cast<std::size_t>(impl::box_count(b)), 0);
    std::vector<float> ta(visits.size(), 1.f), tb(visits.size(), 0.f), dose(visits.size(), 0.f);
    std::vector<std::uint16_t> q(visits.size(), 200);
    // a LUT whose "self" term is 1 counts visits in the dose array
    std::vector<float> lut(impl::kLutPerDirection, 0.f);
    std::fill(lut.begin() + 2 * impl::kDensityBins, lut.begin() + 3 * impl::kDensityBins, 1.f);
    int lo_i, n_i, lo_o, n_o;
    impl::line_range(d, b, lo_i, n_i, lo_o, n_o);
    std::vector<float> RA(n_i), RB(n_i);
    for (int oo = 0; oo < n_o; ++oo)
      impl::transport_sheet(d, b, lo_i, n_i, lo_o + oo, q.data(), ta.data(), tb.data(), lut.data(), dose.data(),
                            RA.data(), RB.data());
    for (float v : dose) ASSERT_EQ(v, 1.f) << "axis " << d.axis << " ti " << d.ti << " to " << d.to;
    // the GPU's per-line traversal visits the same voxels
    std::fill(dose.begin(), dose.end(), 0.f);
    for (int oo = 0; oo < n_o; ++oo)
      for (int oi = 0; oi < n_i; ++oi)
        impl::transport_line(d, b, lo_i + oi, lo_o + oo, q.data(), ta.data(), tb.data(), lut.data(), dose.data());
    for (float v : dose) ASSERT_EQ(v, 1.f);
  }
}

// Fano's theorem: with the same interaction density per unit mass everywhere, the dose is the
// same in every voxel whatever the density distribution (charged-particle equilibrium). With a
// short-range isotropic kernel the interior dose must equal T * (total kernel energy).
TEST(DoseCones, FanoTheoremHoldsAcrossDensityChanges) {
  Machine m = machine();
  for (auto& kb : m.kernel) {  // isotropic, short range (a = 8 /cm), no long-range part
    const double th0 = kb.theta0_deg * M_PI / 180, th1 = kb.theta1_deg * M_PI / 180;
    const double omega_frac = 0.5 * (std::cos(th0) - std::cos(th1));
    kb.a = 8.0;
    kb.A = omega_frac * kb.a;  // sum of A/a over bins = 1
    kb.B = 0.0;
    kb.b = 1.0;
  }
  Grid g;
  g.size = {40, 40, 40};
  g.spacing = {2.5, 2.5, 2.5};
  std::vector<float> rho(g.num_voxels());
  for (int k = 0; k < 40; ++k)
    for (int j = 0; j < 40; ++j)
      for (int i = 0; i < 40; ++i)
        rho[(static_cast<std::size_t>(k) * 40 + j) * 40 + i] = (j / 5) % 2 ? 0.25f : (i > 20 ? 1.8f : 1.0f);
  detail::PreparedBox pb = detail::prepare_box(g, rho, 0.01);
  Beam beam;
  beam.gantry_deg = 20;
  const auto ds = detail::make_directions(detail::beam_frame(beam, m), m, CalcOptions{}, pb.geom);
  EXPECT_NEAR(ds.kernel_total, 1.0, 1e-6);
  std::vector<float> ta(pb.density.size(), 1.f), tb(pb.density.size(), 0.f), dose;
  detail::cccs_cpu(pb, ds, ta, tb, dose);
  double lo = 1e9, hi = 0;
  for (int k = 15; k < 25; ++k)
    for (int j = 15; j < 25; ++j)
      for (int i = 15; i < 25; ++i) {
        const double d = dose[(static_cast<std::size_t>(k) * 40 + j) * 40 + i];
        lo = std::min(lo, d);
        hi = std::max(hi, d);
      }
  EXPECT_NEAR(lo, 1.0, 0.01);
  EXPECT_NEAR(hi, 1.0, 0.01);
}

TEST(DoseGeometry, GantryNinetyEntersFromPatientLeft) {
  auto p = make_slab_phantom(5.0, 200, 200, [](double) { return 1.0; });
  Beam b = water_beam(p, 60);
  b.isocenter_mm = {0, p.surface_mm + 100, 0};  // centre of the cube
  b.gantry_deg = 90;
  auto d = compute_dose(p.grid, p.density, {b}, machine(), coarse_options());
  const int n = p.grid.size[0], ny = p.grid.size[1];
  auto at = [&](int i, int j, int k) { return d[(static_cast<std::size_t>(k) * ny + j) * n + i]; };
  const int jc = ny / 2, kc = n / 2;
  EXPECT_GT(at(n / 2 + 14, jc, kc), 1.2 * at(n / 2 - 14, jc, kc));  // +x = patient left = source side
  // rotational consistency: gantry 270 mirrors gantry 90
  b.gantry_deg = 270;
  auto d2 = compute_dose(p.grid, p.density, {b}, machine(), coarse_options());
  for (int off : {-14, -6, 0, 6, 14})
    EXPECT_NEAR(at(n / 2 + off, jc, kc), d2[(static_cast<std::size_t>(kc) * ny + jc) * n + (n / 2 - off)],
                0.02 * at(n / 2, jc, kc));
}

TEST(DoseGeometry, DoseIsLinearInMonitorUnits) {
  auto p = make_slab_phantom(5.0, 150, 150, [](double) { return 1.0; });
  auto d1 = compute_dose(p.grid, p.density, {water_beam(p, 50, 50)}, machine(), coarse_options());
  auto d2 = compute_dose(p.grid, p.density, {water_beam(p, 50, 100)}, machine(), coarse_options());
  auto d0 = compute_dose(p.grid, p.density, {water_beam(p, 50, 0)}, machine(), coarse_options());
  for (std::size_t i = 0; i < d1.size(); i += 97) {
    EXPECT_NEAR(2 * d1[i], d2[i], 1e-5 + 1e-5 * d2[i]);
    EXPECT_EQ(d0[i], 0.f);
  }
}

TEST(DosePlanChecks, BadPlansGiveClearErrors) {
  auto p = make_slab_phantom(10.0, 200, 200, [](double) { return 1.0; });
  const Machine& m = machine();
  auto expect_error = [&](const std::vector<Beam>& beams, const std::string& needle) {
    try {
      compute_dose(p.grid, p.density, beams, m, coarse_options());
      ADD_FAILURE() << "no error for " << needle;
    } catch (const EngineError& e) {
      EXPECT_EQ(e.kind(), EngineError::Input);
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error({}, "no beams");
  Beam neg = water_beam(p, 50, -5);
  expect_error({neg}, "monitor units must be >= 0");
  Beam out = water_beam(p, 50);
  out.isocenter_mm = {0, 2000, 0};
  expect_error({out}, "outside the CT volume");
  Beam ap = water_beam(p, 50);
  ap.fluence.x0_mm = -40;  // bixels from -40 to +40 mm, jaws at +-25 mm
  ap.fluence.y0_mm = -10;
  ap.fluence.dx_mm = ap.fluence.dy_mm = 10;
  ap.fluence.nx = 8;
  ap.fluence.ny = 2;
  ap.fluence.weight.assign(16, 1.f);
  expect_error({ap}, "aperture outside the jaws");
  Beam jaws = water_beam(p, 50);
  jaws.jaw_x2_mm = -30;
  expect_error({jaws}, "x1 < x2");
}

TEST(DoseInfluence, BeamletSumReproducesOpenField) {
  auto p = make_slab_phantom(4.0, 160, 160, [](double) { return 1.0; });
  Beam b = water_beam(p, 40, 1.0);
  std::vector<std::uint8_t> target(p.grid.num_voxels(), 0);
  const int n = p.grid.size[0], ny = p.grid.size[1];
  for (int k = 0; k < n; ++k)
    for (int j = 5; j < 30; ++j)
      for (int i = 0; i < n; ++i)
        if (std::abs(i - n / 2) * 4 < 15 && std::abs(k - n / 2) * 4 < 15) target[(static_cast<std::size_t>(k) * ny + j) * n + i] = 1;
  InfluenceOptions io;
  io.bixel_mm = 5;
  io.lateral_cutoff_mm = 60;
  CalcOptions o = coarse_options();
  InfluenceMatrix A = compute_influence(p.grid, p.density, target, {b}, machine(), o, io);
  ASSERT_EQ(A.cols, 64);  // 8 x 8 bixels of 5 mm in a 40 mm field, all see the target
  ASSERT_EQ(A.row_ptr.size(), p.grid.num_voxels() + 1);
  auto y = A.multiply(std::vector<float>(A.cols, 1.f));
  auto d = compute_dose(p.grid, p.density, {b}, machine(), o);
  double dmax = *std::max_element(d.begin(), d.end());
  for (int j = 3; j < 30; j += 4) {
    const std::size_t c = (static_cast<std::size_t>(n / 2) * ny + j) * n + n / 2;
    EXPECT_NEAR(y[c], d[c], 0.02 * dmax) << "depth index " << j;
  }
  // a shorter cutoff drops entries but keeps the beam's core
  io.lateral_cutoff_mm = 15;
  InfluenceMatrix A2 = compute_influence(p.grid, p.density, target, {b}, machine(), o, io);
  EXPECT_LT(A2.nnz(), A.nnz());
}

TEST(DoseDevices, CpuAndCudaAgree) {
  if (!engine_cuda_available())
    GTEST_SKIP() << (engine_built_with_cuda() ? "built with CUDA but no CUDA device is available here"
                                              : "this build has no CUDA kernels");
  auto p = make_slab_phantom(3.0, 240, 240, [](double z) { return z > 60 && z < 120 ? 0.25 : 1.0; });
  Beam b = water_beam(p, 100);
  b.gantry_deg = 20;
  b.isocenter_mm = {0, p.surface_mm + 100, 0};
  Beam b2 = b;
  b2.gantry_deg = 300;
  b2.collimator_deg = 30;
  CalcOptions o;
  auto cpu = compute_dose(p.grid, p.density, {b, b2}, machine(), o);
  o.use_cuda = true;
  auto gpu = compute_dose(p.grid, p.density, {b, b2}, machine(), o);
  double dmax = *std::max_element(cpu.begin(), cpu.end()), diff = 0;
  for (std::size_t i = 0; i < cpu.size(); ++i) diff = std::max<double>(diff, std::fabs(cpu[i] - gpu[i]));
  RecordProperty("max_diff_percent", std::to_string(100 * diff / dmax));
  EXPECT_LT(diff, 0.01 * dmax);
}

// The influence matrix's CUDA path (beamlets batched on the GPU) against the CPU one: same
// beamlets, and the dose of every beamlet agrees within 1 % of the maximum.
TEST(DoseDevices, InfluenceCpuAndCudaAgree) {
  if (!engine_cuda_available())
    GTEST_SKIP() << (engine_built_with_cuda() ? "built with CUDA but no CUDA device is available here"
                                              : "this build has no CUDA kernels");
  auto p = make_slab_phantom(4.0, 160, 160, [](double z) { return z > 40 && z < 80 ? 0.3 : 1.0; });
  Beam b = water_beam(p, 40, 1.0);
  b.gantry_deg = 30;
  b.isocenter_mm = {0, p.surface_mm + 60, 0};
  std::vector<std::uint8_t> target(p.grid.num_voxels(), 0);
  const int n = p.grid.size[0], ny = p.grid.size[1];
  for (int k = n / 2 - 3; k <= n / 2 + 3; ++k)
    for (int j = 12; j < 18; ++j)
      for (int i = n / 2 - 3; i <= n / 2 + 3; ++i) target[(static_cast<std::size_t>(k) * ny + j) * n + i] = 1;
  InfluenceOptions io;
  CalcOptions o = coarse_options();
  InfluenceMatrix cpu = compute_influence(p.grid, p.density, target, {b}, machine(), o, io);
  o.use_cuda = true;
  InfluenceMatrix gpu = compute_influence(p.grid, p.density, target, {b}, machine(), o, io);
  ASSERT_EQ(cpu.cols, gpu.cols);
  ASSERT_GT(cpu.cols, 0);
  double worst = 0, dmax = 0;
  for (std::int64_t c = 0; c < cpu.cols; ++c) {
    std::vector<float> x(static_cast<std::size_t>(cpu.cols), 0.f);
    x[c] = 1.f;
    const auto yc = cpu.multiply(x), yg = gpu.multiply(x);
    for (std::size_t i = 0; i < yc.size(); ++i) {
      dmax = std::max<double>(dmax, yc[i]);
      worst = std::max<double>(worst, std::fabs(yc[i] - yg[i]));
    }
  }
  RecordProperty("influence_max_diff_percent", std::to_string(100 * worst / dmax));
  EXPECT_LT(worst, 0.01 * dmax);
}

TEST(DoseDevices, CudaRequestWithoutGpuIsAClearError) {
  if (engine_cuda_available()) GTEST_SKIP() << "a CUDA device is present";
  auto p = make_slab_phantom(10.0, 100, 100, [](double) { return 1.0; });
  CalcOptions o = coarse_options();
  o.use_cuda = true;
  try {
    compute_dose(p.grid, p.density, {water_beam(p, 50)}, machine(), o);
    FAIL() << "no error";
  } catch (const EngineError& e) {
    EXPECT_EQ(e.kind(), EngineError::Device);
    EXPECT_NE(std::string(e.what()).find("cuda"), std::string::npos);
  }
  try {
    std::vector<std::uint8_t> target(p.grid.num_voxels(), 1);
    compute_influence(p.grid, p.density, target, {water_beam(p, 50)}, machine(), o, InfluenceOptions{});
    FAIL() << "no error";
  } catch (const EngineError& e) {
    EXPECT_EQ(e.kind(), EngineError::Device);
    EXPECT_NE(std::string(e.what()).find("compute influence: cuda"), std::string::npos) << e.what();
  }
}
