// isoline info <file-or-dir>: geometry and content summary.
#include <cstdio>
#include <filesystem>
#include <string>

#include "command.h"
#include "isoline/core/error.h"
#include "isoline/core/io.h"

namespace fs = std::filesystem;

namespace isoline::cli {

namespace {

void describe_image(const std::string& path) {
  core::Image img = core::read_image(path);
  auto [lo, hi] = img.min_max();
  std::printf("file      %s\n", path.c_str());
  static const char* kNames[] = {"unknown", "NIfTI", "NRRD", "MetaImage"};
  std::printf("kind      %s 3-D image\n", kNames[static_cast<int>(core::image_format_from_path(path))]);
  std::printf("%s\n", img.geometry().describe().c_str());
  std::printf("pixels    %s, range [%g, %g], %zu non-zero of %zu\n", core::to_string(img.pixel_type()),
              lo, hi, img.count_nonzero(), img.num_voxels());
}

int run_info(const Args& args, const Context&) {
  const std::string path = args.positional(0);
  std::error_code ec;
  if (!fs::exists(path, ec)) core::fail<core::IoError>("info", path, "no such file or directory");
  if (core::is_image_path(path)) {
    describe_image(path);
    return 0;
  }
  if (fs::is_directory(path, ec))
    core::fail<core::IoError>("info", path, "directory holds no recognised image or DICOM data");
  core::fail<core::IoError>("info", path,
                            "not a recognised file (expected NIfTI .nii/.nii.gz, NRRD, MetaImage "
                            ".mha/.mhd, or DICOM)");
}

}  // namespace

Command make_info_command() {
  Command c;
  c.name = "info";
  c.summary = "describe a CT series, image, RT-STRUCT or RT-DOSE";
  c.description =
      "Prints the geometry (size, spacing, LPS origin, direction) and a content summary of\n"
      "a NIfTI/NRRD/MetaImage file, a DICOM file or a directory of DICOM files.";
  c.positionals = {{"PATH", "file or directory to describe"}};
  c.run = run_info;
  return c;
}

}  // namespace isoline::cli
