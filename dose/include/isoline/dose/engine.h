// The dose engine's core: a 6 MV collapsed-cone convolution/superposition (CCCS) engine on
// plain structs. It depends only on the C++ standard library, OpenMP and (optionally) CUDA, so
// it builds on a bare GPU host (dose/engine/CMakeLists.txt, standalone). isoline::dose wraps it
// with core::Image, plans in JSON and the CLI (dose.h).
//
// Coordinates: the volume is in DICOM patient coordinates (LPS, mm), patient head-first supine
// (HFS). Beam geometry follows IEC 61217: gantry 0 = source above the patient (anterior),
// gantry 90 = source at the patient's left; collimator and couch angles counter-clockwise as
// seen from the source / from above. Beam-limiting-device (BLD) coordinates x_b, y_b are in the
// isocentre plane (mm); at collimator 0, +x_b = patient left and +y_b = patient superior (HFS).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace isoline::dose {

/// Errors of the engine. `kind` lets the wrapper map them to core's error classes.
class EngineError : public std::runtime_error {
 public:
  enum Kind { Input, Io, Device };
  EngineError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

/// A voxel grid: world (LPS mm) = origin + direction * diag(spacing) * (i, j, k), i fastest.
struct Grid {
  std::array<int, 3> size{0, 0, 0};
  std::array<double, 3> spacing{1, 1, 1};
  std::array<double, 3> origin{0, 0, 0};
  std::array<double, 9> direction{1, 0, 0, 0, 1, 0, 0, 0, 1};  ///< row-major; columns = axes

  std::size_t num_voxels() const {
    return static_cast<std::size_t>(size[0]) * size[1] * size[2];
  }
  std::array<double, 3> index_to_world(double i, double j, double k) const;
  std::array<double, 3> world_to_index(const std::array<double, 3>& p) const;
  /// True when the world point lies inside the voxel grid (within half a voxel of centres).
  bool contains_world(const std::array<double, 3>& p) const;
};

/// One polar-angle bin of the point kernel: h r^2 dOmega integrated over the bin =
/// A e^{-a r} + B e^{-b r}, r in cm of water-equivalent path (Ahnesjo 1989).
struct KernelBin {
  double theta0_deg = 0, theta1_deg = 0;
  double A = 0, a = 1, B = 0, b = 1;  ///< A, B in 1/cm; a, b in 1/cm
};

/// The treatment machine (beam model). Read from JSON by parse_machine / load_machine.
struct Machine {
  std::string name;
  double sad_mm = 1000.0;
  // Spectrum: energy bins, relative energy-fluence weights (sum 1), water mass attenuation.
  std::vector<double> energy_mev, energy_weight, mu_rho_water_cm2_g, mu_en_rho_water_cm2_g;
  std::vector<KernelBin> kernel;  ///< polar bins covering 0..180 deg, ascending
  // Primary fluence on the isocentre plane: horn factor vs radius, Gaussian source blur.
  std::vector<double> horn_radius_mm, horn_factor;
  double source_sigma_mm = 1.5;    ///< effective focal-spot blur projected to the isocentre
  double jaw_transmission = 0.005; ///< relative fluence behind the jaws
  // Head scatter (in-air output ratio Sc) vs equivalent-square field side at the isocentre.
  std::vector<double> sc_field_cm, sc_value;
  double max_jaw_mm = 200.0;          ///< jaw travel limit from the axis
  double reference_gy_per_mu = 0.01;  ///< 1 cGy/MU at d_max, 10x10 cm, SSD 100 cm, water
  double reference_field_cm = 10.0;
  double reference_ssd_mm = 1000.0;
};

Machine parse_machine(const std::string& json_text, const std::string& source_name);
Machine load_machine(const std::string& path);
/// Throws EngineError(Input) naming `source_name` when the model is inconsistent.
void validate_machine(const Machine& m, const std::string& source_name);

/// Relative fluence on a bixel grid in the isocentre plane (BLD coordinates, mm).
/// weight[iy * nx + ix] covers x in [x0 + ix dx, x0 + (ix+1) dx), likewise y.
struct FluenceMap {
  double x0_mm = 0, y0_mm = 0;  ///< lower-left corner of bixel (0, 0)
  double dx_mm = 5, dy_mm = 5;
  int nx = 0, ny = 0;
  std::vector<float> weight;
  bool empty() const { return nx == 0 || ny == 0; }
};

struct Beam {
  std::string name;
  double gantry_deg = 0, couch_deg = 0, collimator_deg = 0;
  std::array<double, 3> isocenter_mm{0, 0, 0};  ///< LPS
  double jaw_x1_mm = -50, jaw_x2_mm = 50, jaw_y1_mm = -50, jaw_y2_mm = 50;  ///< signed, iso plane
  FluenceMap fluence;  ///< empty: open field between the jaws
  double mu = 100.0;
};

struct CalcOptions {
  int n_zenith = 6;    ///< polar cone bins over 0..180 deg (must divide the kernel's bins)
  int n_azimuth = 8;   ///< azimuthal directions per polar bin; directions = product (>= 48 default)
  double density_threshold = 0.05;  ///< voxels below carry no TERMA and bound the calculation box
  bool use_cuda = false;
  int cuda_device = 0;  ///< threads: OpenMP runtime default (OMP_NUM_THREADS)
};

/// Checks a plan against the machine and grid; throws EngineError(Input) with a clear message
/// (no beams, negative MU, aperture outside the jaws, isocentre outside the volume, ...).
void validate_beams(const std::vector<Beam>& beams, const Machine& m, const Grid& grid);

/// Dose in Gy (per the beams' MU) on `grid`, given relative electron density per voxel.
std::vector<float> compute_dose(const Grid& grid, const std::vector<float>& density,
                                const std::vector<Beam>& beams, const Machine& machine,
                                const CalcOptions& options);

/// Projection of a patient point (LPS mm) onto the beam's isocentre plane, in BLD coordinates
/// (mm) — the beam's-eye view used for jaws and fluence maps. False when the point lies
/// behind the source.
bool project_to_isocentre_plane(const Beam& beam, const Machine& machine,
                                const std::array<double, 3>& point_mm, double* x_mm, double* y_mm);

/// Gy/MU at d_max for the reference field, before calibration (for checks); cached.
double calibration_factor(const Machine& machine, const CalcOptions& options);

/// Head-scatter factor Sc for an equivalent square side (cm), normalised at 10 cm.
double head_scatter(const Machine& m, double eq_square_cm);

// ------------------------------------------------------------------------------------------
// Beamlet influence matrix for IMRT optimisation.

struct InfluenceOptions {
  double bixel_mm = 5.0;          ///< beamlet size in the isocentre plane
  double lateral_cutoff_mm = 30;  ///< dose beyond this distance from the beamlet axis is dropped
  double target_margin_mm = 5.0;  ///< beamlets whose axis passes within this of the target
  float relative_threshold = 1e-4f;  ///< entries below threshold * beamlet max are dropped
};

struct BeamletInfo {
  int beam = 0;
  double x_mm = 0, y_mm = 0;  ///< bixel centre in the isocentre plane (BLD coordinates)
};

/// Sparse matrix in CSR form, float32: rows = voxels (linear index of the grid), columns =
/// beamlets. Entry = dose in Gy per MU delivered through that beamlet with weight 1.
struct InfluenceMatrix {
  std::int64_t rows = 0, cols = 0;
  std::vector<std::int64_t> row_ptr;  ///< rows + 1
  std::vector<std::int32_t> col_index;
  std::vector<float> values;
  std::vector<BeamletInfo> beamlets;
  std::size_t nnz() const { return values.size(); }
  /// y = A x (y has `rows` entries).
  std::vector<float> multiply(const std::vector<float>& x) const;
};

/// Builds the matrix for all beamlets of all beams whose axis sees a voxel of `target`
/// (non-zero = target). The beams' jaws bound the beamlet grid; fluence maps and MU are ignored.
/// `progress` (optional) receives fractions 0..1.
InfluenceMatrix compute_influence(const Grid& grid, const std::vector<float>& density,
                                  const std::vector<std::uint8_t>& target,
                                  const std::vector<Beam>& beams, const Machine& machine,
                                  const CalcOptions& options, const InfluenceOptions& iopt,
                                  void (*progress)(double, void*) = nullptr,
                                  void* progress_user = nullptr);

/// True when this build contains the CUDA kernels and a CUDA device is usable.
bool engine_cuda_available();
bool engine_built_with_cuda();

}  // namespace isoline::dose
