// isoline::dose — dose calculation on core images: CT (HU) -> density, plan JSON, the CCCS
// engine (engine.h) on CPU or CUDA, and the beamlet influence matrix. See docs/dose.md.
#pragma once

#include <string>
#include <vector>

#include "isoline/core/device.h"
#include "isoline/core/image.h"
#include "isoline/core/progress.h"
#include "isoline/dose/engine.h"

namespace isoline::dose {

/// Piecewise-linear HU -> mass density (g/cm^3) and relative electron density curve.
struct HuCalibration {
  std::vector<double> hu;
  std::vector<double> mass_density;
  std::vector<double> relative_electron_density;

  /// A generic CT curve (air, lung, fat, water, soft tissue, bone); see docs/dose.md.
  static HuCalibration generic();
  /// Throws core::InvalidInput naming `source` when the table is unusable.
  void validate(const std::string& source) const;
  double mass(double hu) const;
  double electron(double hu) const;
};

/// Relative electron density (float32) of a CT in HU; the engine's density input.
core::Image electron_density_from_ct(const core::Image& ct_hu, const HuCalibration& cal);
/// Mass density (float32, g/cm^3) of a CT in HU.
core::Image mass_density_from_ct(const core::Image& ct_hu, const HuCalibration& cal);

/// A treatment plan: machine, beams, calculation options and the CT calibration curve.
struct Plan {
  std::string name;
  std::string machine_path;
  Machine machine;
  std::vector<Beam> beams;
  CalcOptions options;
  HuCalibration hu = HuCalibration::generic();
  /// Number of fractions ("fractions" in the plan JSON, default 1). Beam MU are per fraction:
  /// compute_dose() gives the dose of one fraction; the plan's dose is that times fractions.
  int fractions = 1;
};

/// Reads a plan JSON (format in docs/dose.md). The machine is resolved by name in
/// $ISOLINE_MACHINE_DIR, then beside the plan, then in the source tree's dose/machines.
/// Throws core::IoError (unreadable) or core::InvalidInput (malformed, bad values).
Plan read_plan(const std::string& path);
Plan parse_plan(const std::string& json_text, const std::string& source,
                const std::string& base_dir = ".");
/// Path of a machine file by name ("generic_6mv") or path; throws IoError when not found.
std::string find_machine(const std::string& name_or_path, const std::string& base_dir = ".");

/// Engine grid of a core geometry.
Grid to_grid(const core::Geometry& g);

/// Dose (float32, Gy) on the CT grid for the plan's beams and MU. Checks the plan against the
/// CT (isocentres inside, apertures inside jaws, MU >= 0) and the device (core::require_device).
core::Image compute_dose(const core::Image& ct_hu, const Plan& plan,
                         core::Device device = core::Device::CPU,
                         const core::Progress& progress = {});

/// Influence matrix of all beamlets of the plan's beams that see `target` (non-zero voxels,
/// same grid as the CT). Rows = CT voxels, columns = beamlets; Gy per MU per unit weight.
InfluenceMatrix compute_influence(const core::Image& ct_hu, const core::Image& target,
                                  const Plan& plan, const InfluenceOptions& options = {},
                                  core::Device device = core::Device::CPU,
                                  const core::Progress& progress = {});

}  // namespace isoline::dose
