// Reading and writing volumetric images and mask sets (NIfTI, NRRD, MetaImage) through ITK.
// ITK stays inside core's sources; this header is light.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "isoline/core/image.h"
#include "isoline/core/structure.h"

namespace isoline::core {

enum class ImageFormat { Unknown, Nifti, Nrrd, MetaImage };

/// Format from the file name: .nii/.nii.gz, .nrrd/.nhdr, .mha/.mhd.
ImageFormat image_format_from_path(const std::string& path);
bool is_image_path(const std::string& path);

/// Reads a 3-D scalar image with its LPS geometry.
///
/// Without `as`, the stored pixel type decides: uint8 -> UInt8, int8/int16 -> Int16,
/// anything else -> Float32 (scaled by the file's slope/intercept, e.g. NIfTI scl_slope).
/// With `as`, values are converted to that type.
/// Throws IoError (missing, unreadable, not an image) or NotSupported (not 3-D scalar).
Image read_image(const std::string& path, std::optional<PixelType> as = std::nullopt);

/// Writes an image; the format follows the extension (.nii.gz and .nrrd/.mha compressed).
/// Written atomically: a temporary file beside the target, renamed when complete.
void write_image(const Image& image, const std::string& path);

/// Reads one structure mask file: an image holding only 0 and 1 (in any stored pixel type),
/// returned as UInt8. Anything else is refused (InvalidInput, "OPERATION: PATH: not a structure
/// mask (values LO to HI...)") with what was found: fractional values (a probability map?),
/// whole numbers beyond 1 (a label map?), negative values (a CT?).
Image read_mask(const std::string& path, std::string_view operation = "read masks");

/// Reads every "<name>.nii.gz" (or other image) mask in `dir` whose stem is listed in
/// `names` (all image files when `names` is empty) into a StructureSet on `geometry`.
/// Missing names are skipped (a missing file means "not delineated"). Listing a whole folder
/// skips the images of a case folder that are not masks (ct, dose, labels, possible_dose_mask,
/// image, ct_hu); each file is read by read_mask (values other than 0 and 1 are refused).
StructureSet read_mask_dir(const std::string& dir, const std::vector<std::string>& names = {});
/// The structure names (file stems, sorted) of the masks read_mask_dir reads from `dir` when
/// given no names, without reading them. Throws IoError when `dir` is not a directory.
std::vector<std::string> mask_names(const std::string& dir);

/// The file stems (lower case) of a case folder's images that are not structure masks: ct,
/// dose, labels, possible_dose_mask, image, ct_hu. read_mask_dir skips them (compared without
/// case) and the Python package's load_patient uses the same list.
const std::vector<std::string>& not_mask_names();
/// True when the file stem `stem` (any case) is one of not_mask_names().
bool is_not_mask_name(const std::string& stem);

/// Writes each structure as "<dir>/<name><extension>" (default .nii.gz).
/// (A name's '/' and '\\' become '_', and a leading '.' gets a '_' before it: every file
/// stays inside `dir`.)
void write_mask_dir(const StructureSet& set, const std::string& dir,
                    const std::string& extension = ".nii.gz");

}  // namespace isoline::core
