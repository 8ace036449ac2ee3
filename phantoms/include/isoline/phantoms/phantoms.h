// Generated CT cases with exact ground truth: a seeded head-and-neck patient and dose
// phantoms (water box, lung and bone slabs, TG-119-like C-shape).
//
// Anatomy is defined in patient coordinates (DICOM LPS, mm: +x patient left, +y posterior,
// +z superior) from analytic solids (shapes.h), independently of the voxel grid. The grid
// (size, spacing, patient position) only decides how it is sampled, so HFS and FFS output
// of one seed hold the same patient stored differently.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "isoline/core/geometry.h"
#include "isoline/core/image.h"
#include "isoline/core/progress.h"
#include "isoline/core/structure.h"

namespace isoline::phantoms {

enum class PatientPosition { HFS, FFS, HFP, FFP };
const char* to_string(PatientPosition p);
/// Parses "HFS", "FFS", "HFP", "FFP" (case-insensitive); throws InvalidInput otherwise.
PatientPosition patient_position_from_string(const std::string& s);

/// The axial grid of `size` voxels of `spacing` mm centred on `centre` (LPS), stored the
/// way a scanner stores `position`: HFS identity direction; FFS rows towards patient right
/// and slices towards inferior (ImageOrientationPatient -1,0,0,0,1,0); HFP and FFP likewise.
core::Geometry make_grid(const core::Index3& size, const core::Vec3& spacing,
                         PatientPosition position, const core::Vec3& centre);

/// Tissue classes of the label image; HU values in tissue_hu().
enum Tissue : std::uint8_t {
  kAir = 0,
  kFat,
  kSoftTissue,  ///< muscle, tongue, mucosa
  kBrainWhite,
  kBrainGrey,
  kCsf,
  kCorticalBone,
  kCancellousBone,
  kTeeth,
  kCartilage,
  kParotid,
  kSpinalCord,
  kTumour,
  kEye,
  kThyroid,
  kDisc,
  kWater,
  kLung,
  kNumTissues
};
const char* tissue_name(Tissue t);
/// Nominal Hounsfield units of a tissue (before blur and noise).
double tissue_hu(Tissue t);

/// A generated case: CT, tissue labels and structures on one grid, plus ground truth.
struct Phantom {
  std::string kind;               ///< "hn", "water", "lung-slab", "bone-slab", "c-shape"
  core::Image ct;                 ///< int16 HU
  core::Image labels;             ///< uint8 Tissue per voxel (before blur)
  core::StructureSet structures;  ///< ground-truth masks (voxel centre inside the solid)
  PatientPosition position = PatientPosition::HFS;
  /// Exact volumes (cm^3) of the defining solids, for the structures that have one (a
  /// structure cropped by the body has none).
  std::map<std::string, double> analytic_volume_cc;
  /// Point of interest for previews (the tumour / target centre; x = 0 when the tumour is
  /// near the midline, so the sagittal view shows the spine), LPS mm.
  core::Vec3 focus{0, 0, 0};
  /// Free-form facts (seed, tumour site, margins, ...), written to ground_truth.json.
  std::map<std::string, std::string> facts;
  double noise_sd_hu = 0;  ///< standard deviation of the added noise (0 = none)
};

struct HeadNeckOptions {
  std::uint64_t seed = 7;
  core::Index3 size{512, 512, 160};
  core::Vec3 spacing{1.0, 1.0, 2.5};
  PatientPosition position = PatientPosition::HFS;
  /// Tumour site: "oropharynx", "larynx", "oral_cavity", "nasopharynx"; empty = drawn from
  /// the seed.
  std::string site;
  double noise_sd_hu = 12.0;  ///< 0 disables noise
  bool blur = true;           ///< Gaussian blur (in-plane sigma 0.5 mm, 0.8 mm along z)
  /// Scales the tumour (GTV semi-axes; CTV/PTV70 follow with their margins) after the
  /// patient is drawn: the same seed with tumour_scale < 1 is the same patient with a
  /// shrunken tumour (adaptive replanning tests).
  double tumour_scale = 1.0;
};

/// Tumour sites known to the generator.
const std::vector<std::string>& head_neck_sites();

/// Draws the head-and-neck patient of `seed` and samples it on the requested grid, centred
/// on (0, 5, -30) mm LPS (the default grid spans z -230 to +170 mm: shoulders to vertex).
/// Structures: Body, Brainstem, SpinalCord, RightParotid, LeftParotid, Esophagus, Larynx,
/// Mandible, GTV, CTV (GTV + margin, cropped to Body), PTV70 (CTV + margin, cropped to
/// Body), PTV63 (ipsilateral elective neck), PTV56 (contralateral elective neck).
/// Throws InvalidInput for an unusable grid, NotSupported for a non-axial one.
Phantom make_head_neck(const HeadNeckOptions& options, const core::Progress& progress = {});

enum class DosePhantomKind { WaterBox, LungSlab, BoneSlab, CShape };
const char* to_string(DosePhantomKind k);
DosePhantomKind dose_phantom_from_string(const std::string& s);

struct DosePhantomOptions {
  /// Empty size = the phantom's default (300 x 300 x 300 mm at 2.5 mm; C-shape 2 mm).
  core::Index3 size{0, 0, 0};
  core::Vec3 spacing{0, 0, 0};
  PatientPosition position = PatientPosition::HFS;
  double noise_sd_hu = 0.0;
};

/// Water box 300 x 300 x 300 mm (Body); lung slab: water 0-50 mm depth from the anterior
/// surface, lung (-740 HU) 50-150 mm, water beyond (structures Body, Lung); bone slab: water,
/// bone (cortical) 50-80 mm, water (Body, Bone); C-shape: water box with a TG-119-like
/// C-shaped PTV (annulus 15-37 mm, 90 degree opening towards anterior, 80 mm long) around a
/// 10 mm radius cylindrical Core (100 mm long).
Phantom make_dose_phantom(DosePhantomKind kind, const DosePhantomOptions& options = {},
                          const core::Progress& progress = {});

struct WriteOptions {
  bool nifti = true;   ///< ct.nii.gz, labels.nii.gz, masks/<name>.nii.gz
  bool dicom = true;   ///< dicom/CT*.dcm and dicom/RS.dcm (when built with rtstruct)
  bool preview = false;  ///< preview.png
  std::string patient_id;  ///< empty = derived from kind and seed
};

/// True when this build writes DICOM (the rtstruct module is linked).
bool dicom_output_available();

/// Writes a case into `dir`: ct.nii.gz, labels.nii.gz, masks/*.nii.gz, ground_truth.json,
/// dicom/ (CT series and RS.dcm), preview.png. Returns the files written.
std::vector<std::string> write_phantom(const Phantom& phantom, const std::string& dir,
                                       const WriteOptions& options = {},
                                       const core::Progress& progress = {});

/// Writes a PNG of the axial, coronal and sagittal slices through `phantom.focus`, soft-
/// tissue window, structure outlines in their colours, orientation letters (R/L, A/P, S/I)
/// and a legend of the structure names.
void write_preview_png(const Phantom& phantom, const std::string& path);

}  // namespace isoline::phantoms
